//! Google's discovery document of Secret Manager v1, embedded from
//! `tests/fixtures/gcp/secretmanager-v1.discovery.json` (see SOURCE.md beside it).
//!
//! It gives the stand-in its routes (every method's `flatPath` and `httpMethod`, so a URL the
//! document does not describe is Google's HTML 404 and one it describes but the stand-in does
//! not serve is a `501 UNIMPLEMENTED`) and the schema of every request and answer. The
//! validator reads the discovery dialect of JSON Schema: `type`, `properties`,
//! `additionalProperties`, `items`, `$ref` (into `schemas`), `format` and `enum`. Objects are
//! closed: a property the schema does not list is an error. Formats checked: `google-datetime`
//! (RFC 3339), `int64`/`uint64` (decimal strings), `int32`/`uint32` (ranges), `byte` (base64),
//! `google-duration` (`3.5s`).

use std::sync::OnceLock;

use base64::Engine as _;
use serde_json::Value;

/// The discovery document, as Google publishes it.
pub const DOCUMENT: &str =
    include_str!("../../../tests/fixtures/gcp/secretmanager-v1.discovery.json");

/// One method of the document.
#[derive(Debug, Clone)]
pub struct Method {
    /// Its id without the `secretmanager.projects.` prefix, e.g. `secrets.versions.access`.
    pub id: String,
    /// `GET`, `POST`, `PATCH`, `DELETE`.
    pub http_method: String,
    /// Its `flatPath` split on `/`, e.g. `["v1", "projects", "{projectsId}", ...]`.
    segments: Vec<String>,
    /// The answer's schema name (`$ref`), if any.
    pub response: Option<String>,
    /// The request body's schema name, if any.
    pub request: Option<String>,
}

/// The parsed document and its methods.
pub struct Discovery {
    doc: Value,
    methods: Vec<Method>,
}

/// The document, parsed once.
pub fn discovery() -> &'static Discovery {
    static PARSED: OnceLock<Discovery> = OnceLock::new();
    PARSED.get_or_init(|| {
        let doc: Value = serde_json::from_str(DOCUMENT)
            .unwrap_or_else(|e| panic!("the embedded discovery document does not parse: {e}"));
        let mut methods = Vec::new();
        collect(&doc, &mut methods);
        Discovery { doc, methods }
    })
}

fn collect(resource: &Value, out: &mut Vec<Method>) {
    if let Some(methods) = resource.get("methods").and_then(Value::as_object) {
        for m in methods.values() {
            let id = m["id"].as_str().unwrap_or_default();
            let flat = m["flatPath"].as_str().unwrap_or_default();
            out.push(Method {
                id: id
                    .strip_prefix("secretmanager.projects.")
                    .unwrap_or(id)
                    .to_owned(),
                http_method: m["httpMethod"].as_str().unwrap_or_default().to_owned(),
                segments: flat.split('/').map(str::to_owned).collect(),
                response: m["response"]["$ref"].as_str().map(str::to_owned),
                request: m["request"]["$ref"].as_str().map(str::to_owned),
            });
        }
    }
    if let Some(resources) = resource.get("resources").and_then(Value::as_object) {
        for r in resources.values() {
            collect(r, out);
        }
    }
}

/// What a request path matched.
#[derive(Debug)]
pub enum Matched<'d> {
    /// A method, with its path variables in order.
    Method(&'d Method, Vec<String>),
    /// The path is described, but not for this HTTP method.
    WrongMethod,
    /// The document describes no such path.
    Unknown,
}

/// Whether one path segment matches a `flatPath` segment; the captured variable, if any.
/// A variable never holds `:`, so `{secretsId}` does not swallow `x:getIamPolicy`.
fn segment(template: &str, given: &str) -> Option<Option<String>> {
    let Some(rest) = template.strip_prefix('{') else {
        return (template == given).then_some(None);
    };
    let (_, suffix) = rest.split_once('}')?;
    let value = given.strip_suffix(suffix)?;
    (!value.is_empty() && !value.contains(':')).then(|| Some(value.to_owned()))
}

impl Discovery {
    /// Finds the method a request names (`path` without the leading `/`, already decoded).
    pub fn route(&self, http_method: &str, path: &str) -> Matched<'_> {
        let given: Vec<&str> = path.split('/').collect();
        let mut wrong_method = false;
        for m in &self.methods {
            if m.segments.len() != given.len() {
                continue;
            }
            let vars: Option<Vec<Option<String>>> = m
                .segments
                .iter()
                .zip(&given)
                .map(|(t, g)| segment(t, g))
                .collect();
            let Some(vars) = vars else { continue };
            if !m.http_method.eq_ignore_ascii_case(http_method) {
                wrong_method = true;
                continue;
            }
            return Matched::Method(m, vars.into_iter().flatten().collect());
        }
        if wrong_method {
            Matched::WrongMethod
        } else {
            Matched::Unknown
        }
    }

    /// Every method's id, sorted.
    pub fn method_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.methods.iter().map(|m| m.id.clone()).collect();
        ids.sort_unstable();
        ids
    }

    /// Renames the proto field names (snake_case) of a request body to their JSON names
    /// (camelCase), as Google's JSON parser accepts both; map keys are left alone.
    pub fn camelize_fields(&self, schema: &str, value: &mut Value) {
        self.camelize(&serde_json::json!({"$ref": schema}), value, 0);
    }

    fn camelize(&self, schema: &Value, value: &mut Value, depth: usize) {
        if depth > 32 {
            return;
        }
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            if let Some(s) = self.doc["schemas"].get(name) {
                self.camelize(s, value, depth + 1);
            }
            return;
        }
        match value {
            Value::Object(map) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                if let Some(properties) = properties {
                    let keys: Vec<String> = map.keys().cloned().collect();
                    for key in keys {
                        let camel = camel_case(&key);
                        if camel != key
                            && properties.contains_key(&camel)
                            && !map.contains_key(&camel)
                            && let Some(v) = map.remove(&key)
                        {
                            map.insert(camel, v);
                        }
                    }
                }
                for (key, v) in map.iter_mut() {
                    let sub = properties
                        .and_then(|p| p.get(key))
                        .or_else(|| schema.get("additionalProperties"));
                    if let Some(sub) = sub {
                        self.camelize(sub, v, depth + 1);
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item) = schema.get("items") {
                    for v in items {
                        self.camelize(item, v, depth + 1);
                    }
                }
            }
            _ => {}
        }
    }

    /// Validates `value` against the schema named `schema`; every violation, with its path.
    pub fn validate(&self, schema: &str, value: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.check(
            &serde_json::json!({"$ref": schema}),
            value,
            "$",
            &mut errors,
        );
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        if let Some(name) = schema.get("$ref").and_then(Value::as_str) {
            match self.doc["schemas"].get(name) {
                Some(s) => self.check(s, value, at, errors),
                None => errors.push(format!("{at}: the document has no schema {name}")),
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!(
                "{at}: {value} is not one of {}",
                Value::from(allowed.clone())
            ));
        }
        let kind = schema.get("type").and_then(Value::as_str).unwrap_or("any");
        match (kind, value) {
            ("any", _) => {}
            ("object", Value::Object(map)) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (key, v) in map {
                    let here = format!("{at}.{key}");
                    match (properties.and_then(|p| p.get(key)), additional) {
                        (Some(s), _) | (None, Some(s)) => self.check(s, v, &here, errors),
                        (None, None) => {
                            errors.push(format!("{here}: the schema has no such property"));
                        }
                    }
                }
            }
            ("array", Value::Array(items)) => {
                let item = schema.get("items").cloned().unwrap_or(Value::Null);
                for (i, v) in items.iter().enumerate() {
                    self.check(&item, v, &format!("{at}[{i}]"), errors);
                }
            }
            ("string", Value::String(s)) => {
                if let Some(format) = schema.get("format").and_then(Value::as_str)
                    && let Err(why) = check_format(format, s)
                {
                    errors.push(format!("{at}: {s:?} is not {format}: {why}"));
                }
            }
            ("integer", Value::Number(n)) => {
                let fits = match schema.get("format").and_then(Value::as_str) {
                    Some("int32") => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                    Some("uint32") => n.as_u64().is_some_and(|i| u32::try_from(i).is_ok()),
                    _ => n.is_i64() || n.is_u64(),
                };
                if !fits {
                    errors.push(format!("{at}: {n} is not an integer of its format"));
                }
            }
            ("number", Value::Number(_)) | ("boolean", Value::Bool(_)) => {}
            (kind, v) => errors.push(format!("{at}: {v} is not of type {kind}")),
        }
    }
}

/// `version_aliases` → `versionAliases`.
pub fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks a string against a discovery `format`.
pub fn check_format(format: &str, s: &str) -> Result<(), String> {
    match format {
        "google-datetime" => chrono::DateTime::parse_from_rfc3339(s)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "int64" => s.parse::<i64>().map(|_| ()).map_err(|e| e.to_string()),
        "uint64" => s.parse::<u64>().map(|_| ()).map_err(|e| e.to_string()),
        "byte" => decode_bytes(s).map(|_| ()),
        "google-duration" => parse_duration(s).map(|_| ()),
        _ => Ok(()),
    }
}

/// Decodes proto3 JSON `bytes`: standard or URL-safe base64, padded or not.
pub fn decode_bytes(s: &str) -> Result<Vec<u8>, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(s))
        .or_else(|_| STANDARD.decode(s))
        .or_else(|_| URL_SAFE.decode(s))
        .map_err(|e| e.to_string())
}

/// Parses a `google-duration` (`"3600s"`, `"1.5s"`) into whole seconds (fractions dropped).
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let number = s
        .strip_suffix('s')
        .ok_or_else(|| "a duration ends in `s`".to_owned())?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    if fraction.is_empty() || fraction.len() > 9 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err("at most 9 fractional digits".to_owned());
    }
    let digits = whole.strip_prefix('-').unwrap_or(whole);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err("not a number of seconds".to_owned());
    }
    whole.parse::<i64>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn routes_come_from_the_document() {
        let d = discovery();
        let Matched::Method(m, vars) =
            d.route("GET", "v1/projects/p/secrets/s/versions/current:access")
        else {
            panic!("access not routed");
        };
        assert_eq!(m.id, "secrets.versions.access");
        assert_eq!(vars, ["p", "s", "current"]);
        let Matched::Method(m, _) = d.route("GET", "v1/projects/p/secrets/s:getIamPolicy") else {
            panic!("getIamPolicy not routed");
        };
        assert_eq!(m.id, "secrets.getIamPolicy");
        assert!(matches!(
            d.route("PUT", "v1/projects/p/secrets/s"),
            Matched::WrongMethod
        ));
        assert!(matches!(
            d.route("GET", "v1/projects/p/secretz"),
            Matched::Unknown
        ));
        assert!(d.method_ids().contains(&"secrets.patch".to_owned()));
    }

    fn secret() -> Value {
        json!({
            "name": "projects/779844219229/secrets/s",
            "replication": {"automatic": {}},
            "createTime": "2026-12-04T10:00:00.123456789Z",
            "etag": "\"16300a2b3c4d5e\"",
            "versionAliases": {"current": "2"},
            "annotations": {"rotor.dev/x": "y"},
        })
    }

    #[test]
    fn a_good_answer_passes() {
        assert_eq!(discovery().validate("Secret", &secret()), Ok(()));
        let access = json!({"name": "projects/1/secrets/s/versions/1",
            "payload": {"data": "aGVsbG8=", "dataCrc32c": "2596930085"}});
        assert_eq!(
            discovery().validate("AccessSecretVersionResponse", &access),
            Ok(())
        );
    }

    /// Hand-broken answers, each refused with a message naming the place and the rule.
    #[test]
    fn hand_broken_answers_are_caught() {
        let d = discovery();
        let broken = |f: &dyn Fn(&mut Value)| {
            let mut s = secret();
            f(&mut s);
            d.validate("Secret", &s)
                .expect_err("must be refused")
                .join("; ")
        };
        let e = broken(&|s| s["versionAliases"]["current"] = json!(2));
        assert!(e.contains("$.versionAliases.current"), "{e}");
        let e = broken(&|s| s["versionAliases"]["current"] = json!("two"));
        assert!(e.contains("is not int64"), "{e}");
        let e = broken(&|s| s["createTime"] = json!("yesterday"));
        assert!(
            e.contains("$.createTime") && e.contains("google-datetime"),
            "{e}"
        );
        let e = broken(&|s| s["versionCount"] = json!("3"));
        assert!(
            e.contains("$.versionCount: the schema has no such property"),
            "{e}"
        );
        let e = broken(&|s| s["replication"]["automatic"]["extra"] = json!(true));
        assert!(e.contains("$.replication.automatic.extra"), "{e}");
        let e = broken(&|s| s["ttl"] = json!("an hour"));
        assert!(e.contains("google-duration"), "{e}");
        let e = broken(&|s| s["secretType"] = json!("PASSWORD"));
        assert!(e.contains("is not one of"), "{e}");
        let version = json!({"name": "n", "state": "ENABLED", "etag": 7});
        let e = d
            .validate("SecretVersion", &version)
            .expect_err("etag as a number");
        assert!(e.join(";").contains("$.etag"), "{e:?}");
        let access = json!({"name": "n", "payload": {"data": "not base64!"}});
        assert!(d.validate("AccessSecretVersionResponse", &access).is_err());
        let list = json!({"secrets": [secret()], "totalSize": "3"});
        assert!(d.validate("ListSecretsResponse", &list).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600s"), Ok(3600));
        assert_eq!(parse_duration("1.5s"), Ok(1));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("s").is_err());
    }
}
