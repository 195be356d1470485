//! The Secret Manager methods the stand-in serves, on its state: permission first, then the
//! project and resource, then the request's rules, then the change (see the README table of
//! `tests/fixtures/gcp/` for where each rule comes from).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::discovery::{self, discovery};
use super::filter::{self, Filter};
use super::{GcpError, Inner, Secret, Version, VersionState, base64, crc32c, now};

/// The methods served; every other method of the document answers `501 UNIMPLEMENTED`.
pub(super) const SERVED: &[&str] = &[
    "secrets.create",
    "secrets.get",
    "secrets.list",
    "secrets.patch",
    "secrets.addVersion",
    "secrets.versions.list",
    "secrets.versions.get",
    "secrets.versions.access",
    "secrets.versions.enable",
    "secrets.versions.disable",
    "secrets.versions.destroy",
];

/// The fields `secrets.patch` may change.
const MASKABLE: &[&str] = &[
    "labels",
    "annotations",
    "versionAliases",
    "topics",
    "rotation",
    "expireTime",
    "ttl",
    "versionDestroyTtl",
];

/// The server's page size when `pageSize` is 0 or absent (assumed), and the cap.
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 25_000;
const MAX_ALIASES: usize = 50;
const MAX_LABELS: usize = 64;
const MAX_PAYLOAD: usize = 64 * 1024;
const MAX_ANNOTATIONS_BYTES: usize = 16 * 1024;

/// One API call, routed and authenticated.
pub(super) struct Call<'a> {
    /// The discovery method id, e.g. `secrets.patch`.
    pub(super) api: &'a str,
    /// The path variables: project, then secret, then version.
    pub(super) vars: &'a [String],
    /// The query parameters.
    pub(super) query: &'a HashMap<String, String>,
    /// The token's permissions.
    pub(super) permissions: &'a BTreeSet<String>,
}

impl Call<'_> {
    fn var(&self, i: usize) -> &str {
        self.vars.get(i).map_or("", String::as_str)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .or_else(|| self.query.get(&snake_case(name)))
            .map(String::as_str)
    }

    /// The resource as the request named it (what a permission error quotes).
    fn resource(&self) -> String {
        let mut r = format!("projects/{}", self.var(0));
        if self.vars.len() > 1 {
            r.push_str(&format!("/secrets/{}", self.var(1)));
        }
        if self.vars.len() > 2 {
            r.push_str(&format!("/versions/{}", self.var(2)));
        }
        r
    }
}

fn snake_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn permission(api: &str) -> Option<&'static str> {
    Some(match api {
        "secrets.create" => "secretmanager.secrets.create",
        "secrets.get" => "secretmanager.secrets.get",
        "secrets.list" => "secretmanager.secrets.list",
        "secrets.patch" => "secretmanager.secrets.update",
        "secrets.addVersion" => "secretmanager.versions.add",
        "secrets.versions.list" => "secretmanager.versions.list",
        "secrets.versions.get" => "secretmanager.versions.get",
        "secrets.versions.access" => "secretmanager.versions.access",
        "secrets.versions.enable" => "secretmanager.versions.enable",
        "secrets.versions.disable" => "secretmanager.versions.disable",
        "secrets.versions.destroy" => "secretmanager.versions.destroy",
        _ => return None,
    })
}

/// Parses a request body (empty: `{}`), accepting proto field names, and checks it against
/// the method's request schema: an unknown field or a bad format is `400 INVALID_ARGUMENT`.
pub(super) fn parse_body(schema: Option<&str>, body: &[u8]) -> Result<Value, GcpError> {
    let Some(schema) = schema else {
        return Ok(json!({}));
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let mut value: Value = serde_json::from_slice(body)
        .map_err(|e| GcpError::invalid(format!("Invalid JSON payload received. {e}")))?;
    discovery().camelize_fields(schema, &mut value);
    discovery().validate(schema, &value).map_err(|errors| {
        GcpError::invalid(format!(
            "Invalid JSON payload received. {}",
            errors.join("; ")
        ))
    })?;
    Ok(value)
}

/// Answers one call; the JSON answer (validated by the caller) or Google's error.
pub(super) fn handle(inner: &mut Inner, call: &Call<'_>, body: Value) -> Result<Value, GcpError> {
    let Some(permission) = permission(call.api) else {
        return Err(GcpError::new(
            StatusCode::NOT_IMPLEMENTED,
            "UNIMPLEMENTED",
            format!(
                "Method secretmanager.projects.{} is not implemented by rotor-sandbox's Secret Manager stand-in.",
                call.api
            ),
        ));
    };
    let resource = call.resource();
    if !call.permissions.contains(permission) {
        return Err(GcpError::denied(permission, &resource));
    }
    let Some((project, number)) = inner.project(call.var(0)) else {
        // IAM cannot grant anything on a project that does not exist.
        return Err(GcpError::denied(permission, &resource));
    };
    match call.api {
        "secrets.create" => create(inner, call, &project, number, &body),
        "secrets.list" => list_secrets(inner, call, &project, number),
        _ => {
            let key = (project, call.var(1).to_owned());
            let name = format!("projects/{number}/secrets/{}", key.1);
            if !inner.secrets.contains_key(&key) {
                return Err(GcpError::not_found(format!("Secret [{name}] not found.")));
            }
            match call.api {
                "secrets.get" => Ok(secret_json(number, &key.1, secret(inner, &key)?)),
                "secrets.patch" => patch(inner, call, &key, number, &body),
                "secrets.addVersion" => add_version(inner, &key, number, &body),
                "secrets.versions.list" => list_versions(inner, call, &key, number),
                "secrets.versions.get" => {
                    let s = secret(inner, &key)?;
                    let n = resolve(s, &name, call.var(2))?;
                    version_json(&name, s, n)
                }
                "secrets.versions.access" => access(inner, &key, &name, call.var(2)),
                _ => version_state(inner, call, &key, &name, &body),
            }
        }
    }
}

fn secret<'i>(inner: &'i Inner, key: &(String, String)) -> Result<&'i Secret, GcpError> {
    inner
        .secrets
        .get(key)
        .ok_or_else(|| GcpError::not_found(format!("Secret [{}] not found.", key.1)))
}

/// A secret as Google answers it: defaults left out.
fn secret_json(number: u64, id: &str, s: &Secret) -> Value {
    let mut o = Map::new();
    o.insert(
        "name".into(),
        json!(format!("projects/{number}/secrets/{id}")),
    );
    o.insert("replication".into(), s.replication.clone());
    o.insert("createTime".into(), json!(s.create_time));
    if !s.labels.is_empty() {
        o.insert("labels".into(), json!(s.labels));
    }
    if let Some(t) = &s.topics {
        o.insert("topics".into(), t.clone());
    }
    if let Some(t) = &s.expire_time {
        o.insert("expireTime".into(), json!(t));
    }
    o.insert("etag".into(), json!(s.etag));
    if let Some(r) = &s.rotation {
        o.insert("rotation".into(), r.clone());
    }
    if !s.aliases.is_empty() {
        let aliases: Map<String, Value> = s
            .aliases
            .iter()
            .map(|(a, n)| (a.clone(), json!(n.to_string())))
            .collect();
        o.insert("versionAliases".into(), Value::Object(aliases));
    }
    if !s.annotations.is_empty() {
        o.insert("annotations".into(), json!(s.annotations));
    }
    if let Some(t) = &s.version_destroy_ttl {
        o.insert("versionDestroyTtl".into(), json!(t));
    }
    Value::Object(o)
}

fn version_json(secret_name: &str, s: &Secret, number: u64) -> Result<Value, GcpError> {
    let v = s.versions.get(&number).ok_or_else(|| {
        GcpError::not_found(format!(
            "Secret Version [{secret_name}/versions/{number}] not found."
        ))
    })?;
    let mut o = Map::new();
    o.insert(
        "name".into(),
        json!(format!("{secret_name}/versions/{number}")),
    );
    o.insert("createTime".into(), json!(v.create_time));
    if let Some(t) = &v.destroy_time {
        o.insert("destroyTime".into(), json!(t));
    }
    o.insert("state".into(), json!(v.state.as_str()));
    if s.replication.get("automatic").is_some() {
        o.insert("replicationStatus".into(), json!({"automatic": {}}));
    } else if let Some(replicas) = s.replication["userManaged"]["replicas"].as_array() {
        let replicas: Vec<Value> = replicas
            .iter()
            .map(|r| json!({"location": r["location"]}))
            .collect();
        o.insert(
            "replicationStatus".into(),
            json!({"userManaged": {"replicas": replicas}}),
        );
    }
    o.insert("etag".into(), json!(v.etag));
    if v.checksum_given {
        o.insert("clientSpecifiedPayloadChecksum".into(), json!(true));
    }
    if let Some(t) = &v.scheduled_destroy_time {
        o.insert("scheduledDestroyTime".into(), json!(t));
    }
    Ok(Value::Object(o))
}

/// A version named by number, `latest` or alias.
fn resolve(s: &Secret, secret_name: &str, v: &str) -> Result<u64, GcpError> {
    if v == "latest" {
        return s.versions.keys().next_back().copied().ok_or_else(|| {
            GcpError::not_found(format!(
                "Secret [{secret_name}] not found or has no versions."
            ))
        });
    }
    let number = if v.chars().all(|c| c.is_ascii_digit()) {
        v.parse::<u64>().ok()
    } else {
        s.aliases.get(v).copied()
    };
    number
        .filter(|n| s.versions.contains_key(n))
        .ok_or_else(|| {
            GcpError::not_found(format!(
                "Secret Version [{secret_name}/versions/{v}] not found."
            ))
        })
}

// ---- paging ---------------------------------------------------------------------------------

/// A listed resource's fields, by filter name.
type Fields<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

struct Page {
    size: usize,
    /// Serve only keys below this one (newest first).
    below: Option<u64>,
    filter: Option<Filter>,
    filter_text: String,
}

fn page(call: &Call<'_>) -> Result<Page, GcpError> {
    let size = match call.param("pageSize") {
        None | Some("") => 0,
        Some(s) => s
            .parse::<i64>()
            .map_err(|_| GcpError::invalid(format!("Invalid value for page_size: {s:?}")))?,
    };
    if size < 0 {
        return Err(GcpError::invalid("page_size must not be negative."));
    }
    let size = match usize::try_from(size).unwrap_or(MAX_PAGE_SIZE) {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let filter_text = call.param("filter").unwrap_or("").trim().to_owned();
    let filter = if filter_text.is_empty() {
        None
    } else {
        Some(
            filter::parse(&filter_text)
                .map_err(|e| GcpError::invalid(format!("Invalid filter [{filter_text}]: {e}")))?,
        )
    };
    let below = match call.param("pageToken") {
        None | Some("") => None,
        Some(token) => {
            let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(token)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| GcpError::invalid("Invalid page token."))?;
            let (cursor, filter) = decoded
                .split_once('|')
                .ok_or_else(|| GcpError::invalid("Invalid page token."))?;
            if filter != filter_text {
                return Err(GcpError::invalid(
                    "The page token was issued for another filter.",
                ));
            }
            Some(
                cursor
                    .parse::<u64>()
                    .map_err(|_| GcpError::invalid("Invalid page token."))?,
            )
        }
    };
    Ok(Page {
        size,
        below,
        filter,
        filter_text,
    })
}

/// Cuts a page out of `items` (key, answer, filter fields), sorted newest first.
fn paginate(page: &Page, mut items: Vec<(u64, Value, Fields<'_>)>, list_key: &str) -> Value {
    items.sort_by_key(|item| std::cmp::Reverse(item.0));
    let total = items.len();
    let matching: Vec<(u64, Value)> = items
        .into_iter()
        .filter(|(_, _, fields)| page.filter.as_ref().is_none_or(|f| f.matches(fields)))
        .filter(|(key, _, _)| page.below.is_none_or(|b| *key < b))
        .map(|(key, answer, _)| (key, answer))
        .collect();
    let more = matching.len() > page.size;
    let served: Vec<(u64, Value)> = matching.into_iter().take(page.size).collect();
    let mut o = Map::new();
    if let (true, Some((last, _))) = (more, served.last()) {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{last}|{}", page.filter_text));
        o.insert("nextPageToken".into(), json!(token));
    }
    if !served.is_empty() {
        o.insert(
            list_key.into(),
            Value::Array(served.into_iter().map(|(_, v)| v).collect()),
        );
    }
    if page.filter.is_none() && total > 0 {
        o.insert("totalSize".into(), json!(total));
    }
    Value::Object(o)
}

fn list_secrets(
    inner: &Inner,
    call: &Call<'_>,
    project: &str,
    number: u64,
) -> Result<Value, GcpError> {
    let page = page(call)?;
    let items = inner
        .secrets
        .iter()
        .filter(|((p, _), _)| p == project)
        .map(|((_, id), s)| {
            let name = format!("projects/{number}/secrets/{id}");
            let fields: Fields<'_> = Box::new(move |f: &str| match f {
                "name" => Some(name.clone()),
                "create_time" => Some(s.create_time.clone()),
                f => f
                    .strip_prefix("labels.")
                    .and_then(|k| s.labels.get(k))
                    .or_else(|| {
                        f.strip_prefix("annotations.")
                            .and_then(|k| s.annotations.get(k))
                    })
                    .cloned(),
            });
            (s.seq, secret_json(number, id, s), fields)
        })
        .collect();
    Ok(paginate(&page, items, "secrets"))
}

fn list_versions(
    inner: &Inner,
    call: &Call<'_>,
    key: &(String, String),
    number: u64,
) -> Result<Value, GcpError> {
    let page = page(call)?;
    let s = secret(inner, key)?;
    let secret_name = format!("projects/{number}/secrets/{}", key.1);
    let mut items = Vec::new();
    for (n, v) in &s.versions {
        let name = format!("{secret_name}/versions/{n}");
        let fields: Fields<'_> = Box::new(move |f: &str| match f {
            "name" => Some(name.clone()),
            "state" => Some(v.state.as_str().to_owned()),
            "create_time" => Some(v.create_time.clone()),
            _ => None,
        });
        items.push((*n, version_json(&secret_name, s, *n)?, fields));
    }
    Ok(paginate(&page, items, "versions"))
}

// ---- writes ---------------------------------------------------------------------------------

fn valid_secret_id(id: &str) -> bool {
    (1..=255).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn create(
    inner: &mut Inner,
    call: &Call<'_>,
    project: &str,
    number: u64,
    body: &Value,
) -> Result<Value, GcpError> {
    let id = call
        .param("secretId")
        .ok_or_else(|| GcpError::invalid("secret_id is required."))?
        .to_owned();
    if !valid_secret_id(&id) {
        return Err(GcpError::invalid(format!(
            "Secret id [{id}] is invalid: 1 to 255 letters, digits, `-` and `_`."
        )));
    }
    let name = format!("projects/{number}/secrets/{id}");
    let key = (project.to_owned(), id.clone());
    if inner.secrets.contains_key(&key) {
        return Err(GcpError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("Secret [{name}] already exists."),
        ));
    }
    let replication = body.get("replication").cloned().unwrap_or(Value::Null);
    let automatic = replication.get("automatic").is_some();
    let user_managed = replication["userManaged"]["replicas"]
        .as_array()
        .is_some_and(|r| !r.is_empty());
    if automatic == user_managed {
        return Err(GcpError::invalid(
            "Secret.replication must set exactly one of automatic or user_managed (with replicas).",
        ));
    }
    for immutable in ["tags", "secretType", "customerManagedEncryption"] {
        if body.get(immutable).is_some() {
            return Err(GcpError::invalid(format!(
                "Secret.{immutable} is not supported by rotor-sandbox's stand-in."
            )));
        }
    }
    let seq = inner.next_seq();
    let blank = Secret {
        seq,
        create_time: now(),
        etag: inner.etag(),
        replication,
        aliases: BTreeMap::new(),
        annotations: BTreeMap::new(),
        labels: BTreeMap::new(),
        expire_time: None,
        topics: None,
        rotation: None,
        version_destroy_ttl: None,
        versions: BTreeMap::new(),
        next_version: 1,
    };
    inner.secrets.insert(key.clone(), blank);
    let fields: Vec<&str> = MASKABLE
        .iter()
        .copied()
        .filter(|f| body.get(*f).is_some())
        .collect();
    if let Err(e) = apply_fields(inner, &key, &name, &fields, body) {
        inner.secrets.remove(&key);
        return Err(e);
    }
    Ok(secret_json(number, &id, secret(inner, &key)?))
}

fn patch(
    inner: &mut Inner,
    call: &Call<'_>,
    key: &(String, String),
    number: u64,
    body: &Value,
) -> Result<Value, GcpError> {
    // Another writer's change lands between the caller's read and this write.
    let (mine, rest): (Vec<_>, Vec<_>) =
        std::mem::take(&mut inner.races).into_iter().partition(|r| {
            inner.project(&r.project).map(|p| p.0).as_ref() == Some(&key.0) && r.secret == key.1
        });
    inner.races = rest;
    // A race armed to fire later lets this patch through, one fewer to wait for.
    let mut races = Vec::new();
    for mut race in mine {
        if race.after > 0 {
            race.after -= 1;
            inner.races.push(race);
        } else {
            races.push(race);
        }
    }
    for race in races {
        apply_patch(inner, key, &race.update_mask, &race.patch).map_err(|e| {
            GcpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!(
                    "rotor-sandbox: the race staged for this secret could not be applied: {} {}",
                    e.status, e.message
                ),
            )
        })?;
    }
    let mask = call
        .param("updateMask")
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| GcpError::invalid("update_mask is required."))?;
    let paths = mask_paths(mask)?;
    let current = &secret(inner, key)?.etag;
    if let Some(given) = body.get("etag").and_then(Value::as_str)
        && !given.is_empty()
        && given != current
    {
        return Err(GcpError::precondition(format!(
            "The etag provided in the request does not match the current etag of Secret [projects/{number}/secrets/{}].",
            key.1
        )));
    }
    let name = format!("projects/{number}/secrets/{}", key.1);
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    apply_fields(inner, key, &name, &paths, body)?;
    Ok(secret_json(number, &key.1, secret(inner, key)?))
}

fn mask_paths(mask: &str) -> Result<Vec<String>, GcpError> {
    let mut paths = Vec::new();
    for path in mask.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let camel = discovery::camel_case(path);
        if !MASKABLE.contains(&camel.as_str()) {
            return Err(GcpError::invalid(format!(
                "The field [{path}] in update_mask cannot be updated: maskable are {}.",
                MASKABLE.join(", ")
            )));
        }
        paths.push(camel);
    }
    if paths.is_empty() {
        return Err(GcpError::invalid("update_mask is required."));
    }
    Ok(paths)
}

/// Applies a masked patch without an etag check (a race's, a person's): a new etag.
pub(super) fn apply_patch(
    inner: &mut Inner,
    key: &(String, String),
    mask: &str,
    body: &Value,
) -> Result<(), GcpError> {
    let paths = mask_paths(mask)?;
    let number = inner.projects.get(&key.0).copied().unwrap_or_default();
    let name = format!("projects/{number}/secrets/{}", key.1);
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    apply_fields(inner, key, &name, &paths, body)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Replaces each listed field by the body's (absent: cleared), validated first: on any error
/// the secret is left as it was. Every application makes a new secret etag.
fn apply_fields(
    inner: &mut Inner,
    key: &(String, String),
    name: &str,
    fields: &[&str],
    body: &Value,
) -> Result<(), GcpError> {
    let mut s = secret(inner, key)?.clone();
    for field in fields {
        let value = body.get(*field).filter(|v| !v.is_null());
        match *field {
            "labels" => {
                let labels = string_map(value);
                check_labels(&labels)?;
                s.labels = labels;
            }
            "annotations" => {
                let annotations = string_map(value);
                check_annotations(&annotations)?;
                s.annotations = annotations;
            }
            "versionAliases" => {
                let mut aliases = BTreeMap::new();
                for (alias, v) in string_map(value) {
                    let n = v.parse::<u64>().map_err(|_| {
                        GcpError::invalid(format!(
                            "Alias [{alias}] names [{v}], not a version number."
                        ))
                    })?;
                    aliases.insert(alias, n);
                }
                check_aliases(&s, name, &aliases)?;
                s.aliases = aliases;
            }
            "topics" => {
                s.topics = value
                    .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
                    .cloned();
            }
            "rotation" => {
                s.rotation = value
                    .filter(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                    .cloned();
            }
            "expireTime" => s.expire_time = value.and_then(Value::as_str).map(str::to_owned),
            "ttl" => {
                s.expire_time = match value.and_then(Value::as_str) {
                    None => None,
                    Some(ttl) => {
                        let seconds = discovery::parse_duration(ttl).map_err(GcpError::invalid)?;
                        Some(
                            (chrono::Utc::now() + chrono::Duration::seconds(seconds))
                                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                        )
                    }
                }
            }
            "versionDestroyTtl" => {
                s.version_destroy_ttl = value.and_then(Value::as_str).map(str::to_owned);
            }
            _ => {}
        }
    }
    s.etag = inner.etag();
    inner.secrets.insert(key.clone(), s);
    Ok(())
}

fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), GcpError> {
    if labels.len() > MAX_LABELS {
        return Err(GcpError::invalid(format!(
            "A secret can have at most {MAX_LABELS} labels."
        )));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
    for (k, v) in labels {
        let key_ok = (1..=63).contains(&k.len())
            && k.starts_with(|c: char| c.is_ascii_lowercase())
            && k.chars().all(ok_char);
        let value_ok = v.len() <= 63 && v.chars().all(ok_char);
        if !key_ok || !value_ok {
            return Err(GcpError::invalid(format!(
                "Invalid label [{k}={v}]: keys are 1 to 63 lowercase letters, digits, `_` and `-` starting with a letter; values 0 to 63 of the same."
            )));
        }
    }
    Ok(())
}

fn check_annotations(annotations: &BTreeMap<String, String>) -> Result<(), GcpError> {
    let mut total = 0;
    for (k, v) in annotations {
        let inner_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        let key_ok = (1..=63).contains(&k.chars().count())
            && k.len() <= 128
            && k.starts_with(|c: char| c.is_ascii_alphanumeric())
            && k.ends_with(|c: char| c.is_ascii_alphanumeric())
            && k.chars().all(inner_ok);
        if !key_ok {
            return Err(GcpError::invalid(format!(
                "Invalid annotation key [{k}]: 1 to 63 characters, beginning and ending with an alphanumeric character, with `-`, `_`, `.` and alphanumerics between."
            )));
        }
        total += k.len() + v.len();
    }
    if total >= MAX_ANNOTATIONS_BYTES {
        return Err(GcpError::invalid(format!(
            "The total size of annotation keys and values must be less than 16KiB; it is {total} bytes."
        )));
    }
    Ok(())
}

fn check_aliases(s: &Secret, name: &str, aliases: &BTreeMap<String, u64>) -> Result<(), GcpError> {
    if aliases.len() > MAX_ALIASES {
        return Err(GcpError::invalid(format!(
            "A secret can have at most {MAX_ALIASES} version aliases."
        )));
    }
    for (alias, number) in aliases {
        let valid = alias.len() <= 63
            && alias.starts_with(|c: char| c.is_ascii_alphabetic())
            && alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !alias.eq_ignore_ascii_case("latest")
            && !alias.eq_ignore_ascii_case("new");
        if !valid {
            return Err(GcpError::invalid(format!(
                "Invalid version alias [{alias}]: at most 63 letters, digits, `-` and `_`, starting with a letter, and not `latest` or `NEW`."
            )));
        }
        match s.versions.get(number) {
            None => {
                return Err(GcpError::invalid(format!(
                    "Version alias [{alias}] names version [{number}], which does not exist in Secret [{name}]."
                )));
            }
            Some(v) if v.state == VersionState::Destroyed => {
                return Err(GcpError::precondition(format!(
                    "Version alias [{alias}] cannot name Secret Version [{name}/versions/{number}]: it is in DESTROYED state."
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn add_version(
    inner: &mut Inner,
    key: &(String, String),
    number: u64,
    body: &Value,
) -> Result<Value, GcpError> {
    let payload = body
        .get("payload")
        .ok_or_else(|| GcpError::invalid("payload is required."))?;
    let data = discovery::decode_bytes(payload["data"].as_str().unwrap_or_default())
        .map_err(|e| GcpError::invalid(format!("payload.data is not base64: {e}")))?;
    if data.len() > MAX_PAYLOAD {
        return Err(GcpError::invalid(format!(
            "Secret Payload cannot be larger than 64KiB; it is {} bytes.",
            data.len()
        )));
    }
    let given = payload.get("dataCrc32c").and_then(Value::as_str);
    if let Some(given) = given
        && given.parse::<i64>().ok() != Some(i64::from(crc32c(&data)))
    {
        return Err(GcpError::invalid(
            "Checksum mismatch: payload.data_crc32c does not match the CRC32C of payload.data.",
        ));
    }
    let etag = inner.etag();
    let s = inner
        .secrets
        .get_mut(key)
        .ok_or_else(|| GcpError::not_found("Secret not found."))?;
    let n = s.next_version;
    s.next_version += 1;
    s.versions.insert(
        n,
        Version {
            create_time: now(),
            state: VersionState::Enabled,
            destroy_time: None,
            scheduled_destroy_time: None,
            etag,
            payload: Some(data),
            checksum_given: given.is_some(),
        },
    );
    let name = format!("projects/{number}/secrets/{}", key.1);
    version_json(&name, secret(inner, key)?, n)
}

fn access(
    inner: &Inner,
    key: &(String, String),
    secret_name: &str,
    v: &str,
) -> Result<Value, GcpError> {
    let s = secret(inner, key)?;
    let n = resolve(s, secret_name, v)?;
    let version = s
        .versions
        .get(&n)
        .ok_or_else(|| GcpError::not_found("Secret Version not found."))?;
    let name = format!("{secret_name}/versions/{n}");
    if version.state != VersionState::Enabled {
        return Err(GcpError::precondition(format!(
            "Secret Version [{name}] is in {} state.",
            version.state.as_str()
        )));
    }
    let data = version.payload.clone().unwrap_or_default();
    let mut payload = Map::new();
    if !data.is_empty() {
        payload.insert("data".into(), json!(base64(&data)));
        payload.insert("dataCrc32c".into(), json!(crc32c(&data).to_string()));
    }
    Ok(json!({"name": name, "payload": payload}))
}

/// Sets a version's state as enable/disable/destroy do, with a new version etag.
pub(super) fn set_state(v: &mut Version, state: VersionState, etag: String) {
    v.state = state;
    v.etag = etag;
    match state {
        VersionState::Destroyed => {
            v.destroy_time = Some(now());
            v.scheduled_destroy_time = None;
            v.payload = None;
        }
        VersionState::Enabled => v.scheduled_destroy_time = None,
        VersionState::Disabled => {}
    }
}

fn version_state(
    inner: &mut Inner,
    call: &Call<'_>,
    key: &(String, String),
    secret_name: &str,
    body: &Value,
) -> Result<Value, GcpError> {
    let v = call.var(2);
    let Some(n) = v
        .parse::<u64>()
        .ok()
        .filter(|_| v.chars().all(|c| c.is_ascii_digit()))
    else {
        return Err(GcpError::invalid(format!(
            "Secret Version [{secret_name}/versions/{v}]: this method takes a version number, not `latest` or an alias."
        )));
    };
    let name = format!("{secret_name}/versions/{n}");
    let etag = inner.etag();
    let s = inner
        .secrets
        .get_mut(key)
        .ok_or_else(|| GcpError::not_found(format!("Secret [{secret_name}] not found.")))?;
    let destroy_ttl = s.version_destroy_ttl.clone();
    let version = s
        .versions
        .get_mut(&n)
        .ok_or_else(|| GcpError::not_found(format!("Secret Version [{name}] not found.")))?;
    if let Some(given) = body.get("etag").and_then(Value::as_str)
        && !given.is_empty()
        && given != version.etag
    {
        return Err(GcpError::precondition(format!(
            "The etag provided in the request does not match the current etag of Secret Version [{name}]."
        )));
    }
    if version.state == VersionState::Destroyed {
        return Err(GcpError::precondition(format!(
            "Secret Version [{name}] is in DESTROYED state."
        )));
    }
    match call.api {
        "secrets.versions.enable" => set_state(version, VersionState::Enabled, etag),
        "secrets.versions.disable" => set_state(version, VersionState::Disabled, etag),
        _ => match destroy_ttl
            .as_deref()
            .map(discovery::parse_duration)
            .transpose()
            .map_err(GcpError::invalid)?
        {
            // Delayed destruction: disabled now, destroyed after the TTL (not simulated).
            Some(seconds) => {
                set_state(version, VersionState::Disabled, etag);
                version.scheduled_destroy_time = Some(
                    (chrono::Utc::now() + chrono::Duration::seconds(seconds))
                        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                );
            }
            None => set_state(version, VersionState::Destroyed, etag),
        },
    }
    version_json(secret_name, secret(inner, key)?, n)
}
