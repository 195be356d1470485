//! The stand-in's control endpoints (`/_sandbox/gcp/...`, listed in the parent module's
//! docs): seeding projects, tokens, secrets and versions, moving an alias as a person with gcloud
//! would, faults and races, the call log, and Google's OAuth token endpoint for `authorized_user`
//! credentials.

use super::*;

pub(super) fn control_error(code: StatusCode, message: impl std::fmt::Display) -> Response {
    (code, Json(json!({"error": message.to_string()}))).into_response()
}

pub(super) async fn overview(State(gcp): State<Shared>) -> Json<Value> {
    let inner = gcp.inner();
    let served = api::SERVED;
    let unimplemented: Vec<String> = discovery()
        .method_ids()
        .into_iter()
        .filter(|id| !served.contains(&id.as_str()))
        .collect();
    Json(json!({
        "projects": inner.projects,
        "tokens": inner.tokens,
        "faults": inner.faults,
        "races": inner.races,
        "served": served,
        "unimplemented": unimplemented,
    }))
}

pub(super) async fn reset(State(gcp): State<Shared>) -> StatusCode {
    *gcp.inner() = Inner::default();
    StatusCode::NO_CONTENT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProjectBody {
    number: NumberOrString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum NumberOrString {
    Number(u64),
    String(String),
}

impl NumberOrString {
    fn number(&self) -> Option<u64> {
        match self {
            Self::Number(n) => Some(*n),
            Self::String(s) => s.parse().ok(),
        }
    }
}

pub(super) async fn put_project(
    State(gcp): State<Shared>,
    Path(id): Path<String>,
    Json(body): Json<ProjectBody>,
) -> Response {
    let Some(number) = body.number.number() else {
        return control_error(StatusCode::BAD_REQUEST, "number: a project number");
    };
    gcp.inner().projects.insert(id, number);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenBody {
    #[serde(default)]
    name: Option<String>,
    permissions: Vec<String>,
}

pub(super) async fn put_token(
    State(gcp): State<Shared>,
    Path(token): Path<String>,
    Json(body): Json<TokenBody>,
) -> Response {
    let mut permissions = BTreeSet::new();
    for p in body.permissions {
        if p == "*" {
            permissions.extend(PERMISSIONS.iter().map(|p| (*p).to_owned()));
        } else if PERMISSIONS.contains(&p.as_str()) {
            permissions.insert(p);
        } else {
            return control_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "unknown permission {p:?}; known: {}",
                    PERMISSIONS.join(", ")
                ),
            );
        }
    }
    let name = body.name.unwrap_or_else(|| token.clone());
    gcp.inner()
        .tokens
        .insert(token, Token { name, permissions });
    StatusCode::NO_CONTENT.into_response()
}

pub(super) async fn delete_token(
    State(gcp): State<Shared>,
    Path(token): Path<String>,
) -> StatusCode {
    match gcp.inner().tokens.remove(&token) {
        Some(_) => StatusCode::NO_CONTENT,
        None => StatusCode::NOT_FOUND,
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SeedVersions {
    Count(u64),
    List(Vec<SeedVersion>),
}

impl Default for SeedVersions {
    fn default() -> Self {
        Self::Count(0)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SeedVersion {
    #[serde(default)]
    payload: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    state: Option<VersionState>,
}

impl SeedVersion {
    fn bytes(&self, fallback: String) -> Result<Vec<u8>, String> {
        match (&self.payload, &self.data) {
            (Some(_), Some(_)) => Err("give `payload` or `data`, not both".to_owned()),
            (Some(text), None) => Ok(text.clone().into_bytes()),
            (None, Some(data)) => discovery::decode_bytes(data).map_err(|e| format!("data: {e}")),
            (None, None) => Ok(fallback.into_bytes()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct Seed {
    #[serde(default = "default_project")]
    project: String,
    secret: String,
    #[serde(default)]
    versions: SeedVersions,
    #[serde(default)]
    aliases: BTreeMap<String, u64>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    expire_time: Option<String>,
    #[serde(default)]
    version_destroy_ttl: Option<String>,
}

/// Adds a version to `secret` in the given state (the secret's etag stays).
pub(super) fn push_version(
    inner: &mut Inner,
    secret: &mut Secret,
    payload: Vec<u8>,
    state: VersionState,
) {
    let number = secret.next_version;
    secret.next_version += 1;
    let created = now();
    let destroyed = state == VersionState::Destroyed;
    let version = Version {
        create_time: created.clone(),
        state,
        destroy_time: destroyed.then_some(created),
        scheduled_destroy_time: None,
        etag: inner.etag(),
        payload: (!destroyed).then_some(payload),
        checksum_given: false,
    };
    secret.versions.insert(number, version);
}

pub(super) async fn seed(State(gcp): State<Shared>, Json(seed): Json<Seed>) -> Response {
    let mut inner = gcp.inner();
    let (project, _) = inner.project_or_register(&seed.project);
    let seq = inner.next_seq();
    let mut secret = Secret {
        seq,
        create_time: now(),
        etag: inner.etag(),
        replication: json!({"automatic": {}}),
        aliases: seed.aliases,
        annotations: seed.annotations,
        labels: seed.labels,
        expire_time: seed.expire_time,
        topics: None,
        rotation: None,
        version_destroy_ttl: seed.version_destroy_ttl,
        versions: BTreeMap::new(),
        next_version: 1,
    };
    let versions = match seed.versions {
        SeedVersions::Count(n) => (0..n).map(|_| SeedVersion::default()).collect(),
        SeedVersions::List(list) => list,
    };
    for v in versions {
        let fallback = format!("{}-v{}", seed.secret, secret.next_version);
        let bytes = match v.bytes(fallback) {
            Ok(b) => b,
            Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
        };
        push_version(
            &mut inner,
            &mut secret,
            bytes,
            v.state.unwrap_or(VersionState::Enabled),
        );
    }
    let key = (project, seed.secret);
    inner.secrets.insert(key.clone(), secret);
    Json(raw_json(&inner, &key)).into_response()
}

/// A secret's whole state, payloads included, for a test's assertions.
pub(super) fn raw_json(inner: &Inner, key: &(String, String)) -> Value {
    let Some(s) = inner.secrets.get(key) else {
        return Value::Null;
    };
    let number = inner.projects.get(&key.0).copied().unwrap_or_default();
    let versions: Vec<Value> = s
        .versions
        .iter()
        .map(|(n, v)| {
            json!({
                "number": n,
                "state": v.state,
                "etag": v.etag,
                "createTime": v.create_time,
                "destroyTime": v.destroy_time,
                "scheduledDestroyTime": v.scheduled_destroy_time,
                "payload": v.payload.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
            })
        })
        .collect();
    json!({
        "name": format!("projects/{number}/secrets/{}", key.1),
        "project": key.0,
        "projectNumber": number.to_string(),
        "etag": s.etag,
        "createTime": s.create_time,
        "replication": s.replication,
        "versionAliases": s.aliases,
        "annotations": s.annotations,
        "labels": s.labels,
        "expireTime": s.expire_time,
        "versionDestroyTtl": s.version_destroy_ttl,
        "topics": s.topics,
        "rotation": s.rotation,
        "nextVersion": s.next_version,
        "versions": versions,
    })
}

/// The key of an existing secret named by a control path.
pub(super) fn control_key(
    inner: &Inner,
    project: &str,
    secret: &str,
) -> Result<(String, String), String> {
    let (id, _) = inner
        .project(project)
        .ok_or_else(|| format!("no project {project}"))?;
    let key = (id, secret.to_owned());
    if inner.secrets.contains_key(&key) {
        Ok(key)
    } else {
        Err(format!("no secret {secret} in {project}"))
    }
}

pub(super) async fn raw(
    State(gcp): State<Shared>,
    Path((project, secret)): Path<(String, String)>,
) -> Response {
    let inner = gcp.inner();
    match control_key(&inner, &project, &secret) {
        Ok(key) => Json(raw_json(&inner, &key)).into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

pub(super) async fn control_add_version(
    State(gcp): State<Shared>,
    Path((project, secret)): Path<(String, String)>,
    Json(body): Json<SeedVersion>,
) -> Response {
    let mut inner = gcp.inner();
    let key = match control_key(&inner, &project, &secret) {
        Ok(k) => k,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    let Some(mut s) = inner.secrets.remove(&key) else {
        return control_error(StatusCode::NOT_FOUND, "no such secret");
    };
    let fallback = format!("{secret}-v{}", s.next_version);
    match body.bytes(fallback) {
        Ok(bytes) => push_version(
            &mut inner,
            &mut s,
            bytes,
            body.state.unwrap_or(VersionState::Enabled),
        ),
        Err(e) => {
            inner.secrets.insert(key, s);
            return control_error(StatusCode::BAD_REQUEST, e);
        }
    }
    inner.secrets.insert(key.clone(), s);
    Json(raw_json(&inner, &key)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StateBody {
    state: VersionState,
}

pub(super) async fn control_version_state(
    State(gcp): State<Shared>,
    Path((project, secret, number)): Path<(String, String, u64)>,
    Json(body): Json<StateBody>,
) -> Response {
    let mut inner = gcp.inner();
    let key = match control_key(&inner, &project, &secret) {
        Ok(k) => k,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    let etag = inner.etag();
    let Some(v) = inner
        .secrets
        .get_mut(&key)
        .and_then(|s| s.versions.get_mut(&number))
    else {
        return control_error(StatusCode::NOT_FOUND, format!("no version {number}"));
    };
    api::set_state(v, body.state, etag);
    Json(raw_json(&inner, &key)).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AliasBody {
    version: NumberOrString,
}

pub(super) async fn control_move_alias(
    State(gcp): State<Shared>,
    Path((project, secret, alias)): Path<(String, String, String)>,
    Json(body): Json<AliasBody>,
) -> Response {
    let mut inner = gcp.inner();
    let key = match control_key(&inner, &project, &secret) {
        Ok(k) => k,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    let Some(version) = body.version.number() else {
        return control_error(StatusCode::BAD_REQUEST, "version: a version number");
    };
    let mut aliases = inner
        .secrets
        .get(&key)
        .map(|s| s.aliases.clone())
        .unwrap_or_default();
    aliases.insert(alias, version);
    let patch = json!({"versionAliases": aliases
        .iter()
        .map(|(a, n)| (a.clone(), Value::from(n.to_string())))
        .collect::<serde_json::Map<String, Value>>()});
    match api::apply_patch(&mut inner, &key, "versionAliases", &patch) {
        Ok(()) => Json(raw_json(&inner, &key)).into_response(),
        Err(e) => e.response(),
    }
}

pub(super) async fn control_delete_alias(
    State(gcp): State<Shared>,
    Path((project, secret, alias)): Path<(String, String, String)>,
) -> Response {
    let mut inner = gcp.inner();
    let key = match control_key(&inner, &project, &secret) {
        Ok(k) => k,
        Err(e) => return control_error(StatusCode::NOT_FOUND, e),
    };
    let etag = inner.etag();
    let Some(s) = inner.secrets.get_mut(&key) else {
        return control_error(StatusCode::NOT_FOUND, "no such secret");
    };
    if s.aliases.remove(&alias).is_none() {
        return control_error(StatusCode::NOT_FOUND, format!("no alias {alias}"));
    }
    s.etag = etag;
    Json(raw_json(&inner, &key)).into_response()
}

pub(super) async fn get_faults(State(gcp): State<Shared>) -> Json<Value> {
    Json(json!(gcp.inner().faults))
}

pub(super) async fn add_fault(State(gcp): State<Shared>, Json(fault): Json<Fault>) -> StatusCode {
    if fault.times > 0 {
        gcp.inner().faults.push(fault);
    }
    StatusCode::NO_CONTENT
}

pub(super) async fn clear_faults(State(gcp): State<Shared>) -> StatusCode {
    gcp.inner().faults.clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn add_race(State(gcp): State<Shared>, Json(race): Json<Race>) -> StatusCode {
    gcp.inner().races.push(race);
    StatusCode::NO_CONTENT
}

pub(super) async fn clear_races(State(gcp): State<Shared>) -> StatusCode {
    gcp.inner().races.clear();
    StatusCode::NO_CONTENT
}

pub(super) async fn get_log(State(gcp): State<Shared>) -> Json<Value> {
    let inner = gcp.inner();
    Json(json!({"calls": inner.log, "counts": inner.counts}))
}

/// Google's OAuth 2.0 token endpoint (`https://oauth2.googleapis.com/token`) for the
/// `authorized_user` credentials of Application Default Credentials: a form (or JSON)
/// `grant_type=refresh_token&refresh_token=R&client_id=…&client_secret=…` whose refresh token is
/// a registered token's value answers that token as the access token, for an hour; anything
/// else is Google's `400 {"error": "invalid_grant"}`. Logged as `oauth2.token`.
pub(super) async fn oauth_token(State(gcp): State<Shared>, body: String) -> Response {
    // Google's endpoint takes the request as a form or as JSON (Google's Rust library sends
    // JSON).
    let json: Option<Value> = serde_json::from_str(&body).ok();
    let field = |name: &str| match &json {
        Some(v) => v.get(name).and_then(Value::as_str).map(str::to_owned),
        None => body.split('&').find_map(|pair| {
            pair.split_once('=')
                .filter(|(k, _)| *k == name)
                .map(|(_, v)| v.replace('+', " ").replace("%2F", "/").replace("%3A", ":"))
        }),
    };
    let mut inner = gcp.inner();
    let granted = (field("grant_type").as_deref() == Some("refresh_token"))
        .then(|| field("refresh_token"))
        .flatten()
        .filter(|r| inner.tokens.contains_key(r));
    let status = if granted.is_some() { 200 } else { 400 };
    inner.log.push(Logged {
        method: "POST".to_owned(),
        path: "/_sandbox/gcp/oauth2/token".to_owned(),
        token: "none".to_owned(),
        status,
        api: Some("oauth2.token".to_owned()),
        fault: None,
    });
    *inner.counts.entry("oauth2.token".to_owned()).or_default() += 1;
    match granted {
        Some(token) => Json(json!({
            "access_token": token, "expires_in": 3599, "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
        }))
        .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "invalid_grant", "error_description": "Bad Request"})),
        )
            .into_response(),
    }
}

pub(super) async fn clear_log(State(gcp): State<Shared>) -> StatusCode {
    let mut inner = gcp.inner();
    inner.log.clear();
    inner.counts.clear();
    StatusCode::NO_CONTENT
}
