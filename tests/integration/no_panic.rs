//! Nothing panics on any input: random and YAML-shaped text through both parsers.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rotor::config::{self, Environment};
use rotor::request;

/// Text made of YAML's structural characters, keys rotor knows and values near the limits.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("version: 1\n".to_owned()),
        Just("id: abc\n".to_owned()),
        Just("refs:\n".to_owned()),
        Just("  - ref: tenant.a.b.c\n".to_owned()),
        Just("    to: ".to_owned()),
        Just("maintenance: {window: {start: ".to_owned()),
        Just("backends: [{match: \"".to_owned()),
        Just("environments: {".to_owned()),
        Just("app: {base_url: ".to_owned()),
        "[-:{}\\[\\],&*!?|>'\"#%@` \\n\\t.a-z0-9]{0,12}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    // More on demand: ROTOR_PROPTEST_CASES=200000 cargo test no_panic
    #![proptest_config(ProptestConfig { cases: crate::common::proptest_cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(text in prop_oneof![yamlish(), any::<String>()], bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let envs = BTreeMap::from([("staging".to_owned(), Environment::default())]);
        let cx = request::Context { stem: Some("abc"), environments: Some(&envs) };
        let _ = request::parse("r.yaml", text.as_bytes(), cx);
        let _ = config::parse("c.yml", text.as_bytes());
        let _ = request::parse("r.yaml", &bytes, cx);
        // Diagnostics always point inside the file.
        if let Err(diags) = request::parse("r.yaml", text.as_bytes(), cx) {
            // YAML breaks lines at LF, CRLF and a lone CR.
            let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
            for d in diags {
                prop_assert!(d.line >= 1 && d.line <= lines + 1, "line {} of {}: {:?}", d.line, lines, d);
                prop_assert!(d.column >= 1);
            }
        }
    }
}

/// Found by `parsers_never_panic`: a lone CR breaks a line for the parser, so it must for
/// every position rotor computes too; and an error at the end of input stays inside the file.
#[test]
fn lone_carriage_return_counts_as_a_line_break() {
    let text = "backends: [{match: \"\rbackends: [{match: \"";
    let envs = BTreeMap::from([("staging".to_owned(), Environment::default())]);
    let cx = request::Context {
        stem: Some("abc"),
        environments: Some(&envs),
    };
    let diags = request::parse("r.yaml", text.as_bytes(), cx).expect_err("invalid");
    assert_eq!((diags[0].line, diags[0].column), (2, 21), "{diags:?}");
}

/// Found by `parsers_never_panic` in CI: U+2028 breaks a line for libyaml (YAML 1.1) but not
/// for YAML 1.2 or editors; rotor refuses it rather than report positions nobody can find.
#[test]
fn unicode_line_separators_are_refused() {
    let envs = BTreeMap::from([("staging".to_owned(), Environment::default())]);
    let cx = request::Context {
        stem: Some("abc"),
        environments: Some(&envs),
    };
    for text in ["\u{3a3}:\u{2028}\u{ffd2}", "reason: a\u{2029}b\n"] {
        let diags = request::parse("r.yaml", text.as_bytes(), cx).expect_err("refused");
        assert_eq!(
            (diags[0].code, diags[0].line),
            ("control_character", 1),
            "{diags:?}"
        );
    }
}

proptest! {
    // The id parsers and the event intake see text from requests, the command line and
    // webhook payloads: nothing panics, and what they accept is exactly what they print back.
    #![proptest_config(ProptestConfig { cases: crate::common::proptest_cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn id_parsers_never_panic_and_round_trip(text in prop_oneof![
        "tenant\\.[a-z0-9.-]{0,12}\\.[a-z0-9_.-]{0,8}\\.[a-z0-9_]{0,8}",
        "[a-z0-9./%:-]{0,70}",
        any::<String>(),
    ]) {
        if let Ok(r) = rotor::ids::SecretRef::parse(&text) {
            prop_assert_eq!(r.as_str(), text.as_str());
        }
        if let Ok(id) = rotor::ids::RotationId::parse(&text) {
            prop_assert_eq!(id.as_str(), text.as_str());
            // An id is a file stem: never a path.
            prop_assert!(!text.contains('/') && !text.contains("..") && !text.starts_with('-'));
        }
        if let Ok(v) = rotor::ids::VersionId::parse(&text) {
            prop_assert_eq!(v.as_str(), text.as_str());
        }
    }

    #[test]
    fn event_intake_never_panics(
        name in prop_oneof![
            Just("pull_request"), Just("pull_request_review"), Just("issue_comment"),
            Just("workflow_dispatch"), Just("push"),
        ],
        payload in json_value(),
    ) {
        let _ = rotor::github::event::parse(name, &payload);
    }
}

/// JSON shaped like webhook payloads: the fields rotor reads, with any types.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z/ .:-]{0,12}".prop_map(serde_json::Value::from),
    ];
    let keys = prop_oneof![
        Just("pull_request"),
        Just("number"),
        Just("head"),
        Just("sha"),
        Just("review"),
        Just("state"),
        Just("user"),
        Just("login"),
        Just("issue"),
        Just("comment"),
        Just("body"),
        Just("repository"),
        Just("default_branch"),
        Just("full_name"),
        Just("inputs"),
        Just("ref"),
        Just("action"),
        Just("sender"),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| {
                serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}
