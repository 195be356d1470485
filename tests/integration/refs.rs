//! The ref parser and the `Ref` pattern of `app-api.yaml` agree on every string.

use proptest::prelude::*;
use regex::Regex;
use rotor::ids::SecretRef;
use rotor::request::schema::REF_PATTERN;

/// The pattern exactly as `app-api.yaml` (copied to tests/fixtures/app-api.yaml) states it.
fn app_api_pattern() -> String {
    let spec =
        std::fs::read_to_string(crate::common::fixture("app-api.yaml")).expect("app-api.yaml");
    let line = spec
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Ref:"))
        .find(|l| l.trim_start().starts_with("pattern:"))
        .expect("the Ref pattern");
    let quoted = line.trim_start().trim_start_matches("pattern:").trim();
    serde_norway::from_str::<String>(quoted).expect("a YAML string")
}

#[test]
fn schema_pattern_is_the_app_api_pattern() {
    assert_eq!(REF_PATTERN, app_api_pattern());
}

fn regex() -> Regex {
    Regex::new(&app_api_pattern()).expect("the pattern compiles")
}

/// Strings near the grammar: right shape, wrong characters, lengths around every limit.
fn near_miss() -> impl Strategy<Value = String> {
    let part = "[a-z0-9_\\-A-Zа. ]{0,70}";
    (
        prop_oneof![Just("tenant".to_owned()), "[a-zA-Z]{0,8}"],
        part,
        part,
        part,
        prop::option::of("[.a-z\\n]{0,3}"),
    )
        .prop_map(|(head, slug, provider, key, tail)| {
            format!("{head}.{slug}.{provider}.{key}{}", tail.unwrap_or_default())
        })
}

proptest! {
    // More on demand: ROTOR_PROPTEST_CASES=200000 cargo test refs
    #![proptest_config(ProptestConfig { cases: crate::common::proptest_cases(4000), ..ProptestConfig::default() })]

    #[test]
    fn parser_accepts_exactly_the_pattern(s in prop_oneof![
        proptest::string::string_regex(REF_PATTERN.trim_start_matches('^').trim_end_matches('$')).expect("regex strategy"),
        near_miss(),
        any::<String>(),
    ]) {
        let re = regex();
        prop_assert_eq!(SecretRef::parse(&s).is_ok(), re.is_match(&s), "disagree on {:?}", s);
    }
}
