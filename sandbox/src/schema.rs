//! GitHub's official example responses and their JSON Schemas, embedded from
//! `tests/fixtures/github/rest/` (extracted from GitHub's OpenAPI description; see its INDEX.md).
//!
//! Every answer the stand-in gives is built from an official example and validated against the
//! schema beside it before it is sent, so the stand-in cannot drift from GitHub's real shapes
//! without the tests noticing.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// One endpoint's example and schema.
struct Fixture {
    example: &'static str,
    schema: &'static str,
}

macro_rules! fixture {
    ($example:literal, $schema:literal) => {
        Fixture {
            example: include_str!(concat!("../../tests/fixtures/github/rest/", $example)),
            schema: include_str!(concat!("../../tests/fixtures/github/rest/", $schema)),
        }
    };
}

/// The endpoints the stand-in answers, by operation id.
fn fixtures() -> HashMap<&'static str, Fixture> {
    HashMap::from([
        (
            "repos/get",
            fixture!(
                "repos.get.200.default-response.json",
                "repos.get.200.schema.json"
            ),
        ),
        (
            "pulls/get",
            fixture!("pulls.get.200.default.json", "pulls.get.200.schema.json"),
        ),
        (
            "pulls/list-reviews",
            fixture!(
                "pulls.list-reviews.200.default.json",
                "pulls.list-reviews.200.schema.json"
            ),
        ),
        (
            "pulls/list-files",
            fixture!(
                "pulls.list-files.200.default.json",
                "pulls.list-files.200.schema.json"
            ),
        ),
        (
            "teams/get-by-name",
            fixture!(
                "teams.get-by-name.200.default.json",
                "teams.get-by-name.200.schema.json"
            ),
        ),
        (
            "teams/get-membership-for-user-in-org",
            fixture!(
                "teams.get-membership-for-user-in-org.200.response-if-user-is-a-team-maintainer.json",
                "teams.get-membership-for-user-in-org.200.schema.json"
            ),
        ),
        (
            "issues/list-comments",
            fixture!(
                "issues.list-comments.200.default.json",
                "issues.list-comments.200.schema.json"
            ),
        ),
        (
            "issues/create-comment",
            fixture!(
                "issues.create-comment.201.default.json",
                "issues.create-comment.201.schema.json"
            ),
        ),
        (
            "issues/update-comment",
            fixture!(
                "issues.update-comment.200.default.json",
                "issues.update-comment.200.schema.json"
            ),
        ),
        (
            "git/get-ref",
            fixture!(
                "git.get-ref.200.default.json",
                "git.get-ref.200.schema.json"
            ),
        ),
    ])
}

/// Rewrites an OpenAPI 3.0 Schema Object into JSON Schema: `nullable: true` becomes `null` in
/// `type` (or an `anyOf` with null where there is no `type`).
pub fn openapi_to_json_schema(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for value in map.values_mut() {
                openapi_to_json_schema(value);
            }
            if map.remove("nullable") == Some(Value::Bool(true)) {
                match map.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = t.clone();
                        map.insert("type".to_owned(), serde_json::json!([t, "null"]));
                    }
                    Some(Value::Array(types)) => {
                        if !types.contains(&Value::from("null")) {
                            types.push(Value::from("null"));
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert(
                            "anyOf".to_owned(),
                            serde_json::json!([inner, {"type": "null"}]),
                        );
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

struct Compiled {
    example: Value,
    validator: jsonschema::Validator,
}

fn compiled() -> &'static HashMap<&'static str, Compiled> {
    static COMPILED: OnceLock<HashMap<&'static str, Compiled>> = OnceLock::new();
    COMPILED.get_or_init(|| {
        fixtures()
            .into_iter()
            .map(|(op, f)| {
                let example: Value =
                    serde_json::from_str(f.example).unwrap_or_else(|e| panic!("{op} example: {e}"));
                let mut schema: Value =
                    serde_json::from_str(f.schema).unwrap_or_else(|e| panic!("{op} schema: {e}"));
                openapi_to_json_schema(&mut schema);
                let validator = jsonschema::draft202012::new(&schema)
                    .unwrap_or_else(|e| panic!("{op} schema: {e}"));
                (op, Compiled { example, validator })
            })
            .collect()
    })
}

/// The official example answer of an operation (for a list, the whole example list).
pub fn example(op: &str) -> Value {
    compiled()
        .get(op)
        .map(|c| c.example.clone())
        .unwrap_or_else(|| panic!("no fixture for {op}"))
}

/// Validates an answer against its operation's schema; the errors, if any.
pub fn validate(op: &str, answer: &Value) -> Result<(), Vec<String>> {
    let compiled = compiled()
        .get(op)
        .ok_or_else(|| vec![format!("no schema for {op}")])?;
    let errors: Vec<String> = compiled
        .validator
        .iter_errors(answer)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The operations the stand-in answers.
pub fn operations() -> Vec<&'static str> {
    let mut ops: Vec<&'static str> = compiled().keys().copied().collect();
    ops.sort_unstable();
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_null_in_type() {
        let mut s = serde_json::json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"allOf": [{"$ref": "#/x"}], "nullable": true}
        }});
        openapi_to_json_schema(&mut s);
        assert_eq!(
            s["properties"]["a"]["type"],
            serde_json::json!(["string", "null"])
        );
        assert_eq!(
            s["properties"]["b"]["anyOf"][1],
            serde_json::json!({"type": "null"})
        );
    }

    #[test]
    fn every_schema_compiles() {
        assert_eq!(operations().len(), 10);
    }
}

#[cfg(test)]
mod validation {
    use super::*;

    /// The validation is real: the official example with a documented gap is refused, and
    /// filled in it passes (the stand-in fills every gap INDEX.md lists).
    #[test]
    fn the_documented_gaps_are_caught_and_filled() {
        let mut repo = example("repos/get");
        assert!(
            validate("repos/get", &repo).is_err(),
            "the example lacks `language`"
        );
        if let Value::Object(map) = &mut repo {
            map.remove("source");
            map.remove("parent");
            map.remove("template_repository");
        }
        repo["language"] = Value::Null;
        assert_eq!(validate("repos/get", &repo), Ok(()));
        let mut membership = example("teams/get-membership-for-user-in-org");
        assert_eq!(
            validate("teams/get-membership-for-user-in-org", &membership),
            Ok(())
        );
        membership["state"] = serde_json::json!("sleeping");
        assert!(validate("teams/get-membership-for-user-in-org", &membership).is_err());
    }
}
