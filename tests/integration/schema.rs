//! `rotor schema`: identical to the committed file, accepts every valid fixture, and refuses
//! the structural mistakes a schema can express.

use std::fs;

use serde_json::Value;

use crate::common::{fixture, root, rotor};

fn schema() -> Value {
    let (stdout, _) = rotor().args(["schema"]).run();
    serde_json::from_str(&stdout).expect("the schema is JSON")
}

fn yaml_to_json(path: &std::path::Path) -> Value {
    let text = fs::read_to_string(path).expect("fixture");
    let value: serde_norway::Value = serde_norway::from_str(&text).expect("yaml");
    serde_json::to_value(value).expect("json")
}

#[test]
fn printed_schema_equals_the_committed_file() {
    let (stdout, _) = rotor().args(["schema"]).run();
    let committed = fs::read_to_string(root().join("schema/rotation-request.schema.json"))
        .expect("schema/rotation-request.schema.json is committed");
    assert_eq!(
        stdout, committed,
        "run `cargo run -- schema > schema/rotation-request.schema.json`"
    );
}

#[test]
fn schema_is_draft_2020_12_and_accepts_every_valid_request() {
    let schema = schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let validator = jsonschema::draft202012::new(&schema).expect("a valid schema");
    let mut paths: Vec<_> = fs::read_dir(fixture("requests/valid"))
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.push(root().join("examples/demo/rotations/2026-11-25-acme-supabase.yaml"));
    for path in paths {
        let instance = yaml_to_json(&path);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
}

#[test]
fn schema_refuses_what_it_can_express() {
    let validator = jsonschema::draft202012::new(&schema()).expect("a valid schema");
    for case in [
        "unknown-top-key",
        "version-two",
        "version-string",
        "refs-empty",
        "refs-too-many",
        "ref-uppercase",
        "ref-cyrillic-lookalike",
        "ref-key-hyphen",
        "ref-entry-unknown-key",
        "to-negative",
        "to-float",
        "sites-empty",
        "sites-duplicate",
        "rollback-unknown",
        "reason-blank",
        "reason-bidi",
        "reason-c1-control",
        "id-uppercase",
        "maintenance-empty",
    ] {
        let instance = yaml_to_json(&fixture(&format!("requests/invalid/{case}.yaml")));
        assert!(!validator.is_valid(&instance), "the schema accepts {case}");
    }
}
