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
