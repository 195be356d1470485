//! Faults against Google Cloud Secret Manager: the seeded fault proxy (`Style::Gcp`) between
//! rotor and the sandbox's Secret Manager stand-in answers a share of Secret Manager's calls
//! itself, in Google's shapes — `429 RESOURCE_EXHAUSTED` with the quota message, `503
//! UNAVAILABLE`, a connection closed before the answer with or without the call applied, a slow
//! answer — while GitHub and the application, served by the same stand-in, are reached
//! directly. Every run must end settled: each ref untouched, or final with its alias, its
//! `rotor-*` annotations and the one artifact agreeing; never a `pending` marker left behind,
//! an alias moved without a final marker, a final result without an artifact, or a value read.
//! `ROTOR_FAULT_RUNS` sets the runs (default 8, as for the other services); the figures of the
//! last run are written to `fault-figures-gcp.txt` in `$ROTOR_FAULT_FIGURES` (default
//! `$CARGO_TARGET_TMPDIR`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::backend_gcp::{GcpWorld, alias, annotations, gcp_apply, gcp_world_with, no_access};
use crate::faults::{report_figures, runs, tally};
use crate::plan::git;
use rotor_sandbox::fault::{Faults, Style};

/// The commits rotor added on the pull request's branch since the approved head.
pub(crate) fn rotor_commits(g: &GcpWorld) -> u32 {
    git(
        &g.w.origin(),
        &["rev-list", "--count", &format!("{}..rotate", g.w.head)],
    )
    .parse()
    .expect("count")
}

/// The artifact's machine-readable part on the pull request's branch, if rotor committed one
/// (never more than one commit).
pub(crate) fn artifact_meta(g: &GcpWorld, context: &str) -> Option<Value> {
    let commits = rotor_commits(g);
    assert!(
        commits <= 1,
        "{context}: at most one artifact commit, found {commits}"
    );
    if commits == 0 {
        return None;
    }
    let text = crate::backend_gcp::artifact_on_branch(g);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("<!-- rotor:artifact "))
        .expect("the artifact has its data block");
    Some(serde_json::from_str(line.trim_end_matches(" -->")).expect("data block json"))
}

/// Checks that every ref ended settled — untouched, or final with its alias, its `rotor-*`
/// annotations and the artifact agreeing — and that no value was read; names how it ended.
pub(crate) fn settled_gcp(g: &GcpWorld, code: Option<i32>, context: &str) -> String {
    let meta = artifact_meta(g, context);
    let mut touched = 0;
    for name in &g.names {
        let pointer = alias(g, name);
        let a = annotations(g, name);
        let marker = a["rotor-state"].as_str();
        let recorded = meta.as_ref().and_then(|m| {
            m["refs"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["ref"] == name.as_str()))
                .and_then(|r| r["result"].as_str().map(str::to_owned))
        });
        match (marker, pointer.as_str()) {
            (None, "1") => {
                assert!(
                    a.as_object()
                        .is_none_or(|m| m.keys().all(|k| !k.starts_with("rotor-"))),
                    "{context}: {name} untouched but annotated: {a:#}"
                );
                assert!(
                    recorded.as_deref().is_none_or(|r| r == "not_started"),
                    "{context}: {name} untouched but recorded as {recorded:?}"
                );
            }
            (Some(state @ ("done" | "failed")), "2") | (Some(state @ "rolled_back"), "1") => {
                touched += 1;
                let expected = match state {
                    "done" => "success",
                    "failed" => "failed",
                    _ => "rolled_back",
                };
                assert_eq!(
                    recorded.as_deref(),
                    Some(expected),
                    "{context}: {name} is final ({state}) and the artifact must say so: {a:#}"
                );
                assert_eq!(
                    (
                        a["rotor-rotation-id"].as_str(),
                        a["rotor-from"].as_str(),
                        a["rotor-to"].as_str()
                    ),
                    (Some(g.id.as_str()), Some("1"), Some("2")),
                    "{context}: {name}'s marker names this rotation: {a:#}"
                );
                // The other annotations and aliases are kept through every write.
                assert_eq!(a["owner"], "team-payments", "{context}: {a:#}");
            }
            other => panic!(
                "{context}: {name} left half-done: marker, alias = {other:?}; annotations {a:#}"
            ),
        }
    }
    no_access(g);
    crate::faults::run_outcome(touched, meta.as_ref(), code, context)
}

#[test]
fn under_gcp_shaped_faults_every_run_ends_settled() {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..runs() {
        // A third of the runs fail verification: the rollback runs under faults too.
        let bad: &[&str] = if seed % 3 == 2 { &["2"] } else { &[] };
        let faults = Faults {
            seed: seed * 23 + 11,
            rate: 0.3,
            style: Style::Gcp,
        };
        let g = gcp_world_with(2, bad, json!({}), None, "{}", Some(faults));
        let (code, stdout, stderr) = gcp_apply(&g).run_unchecked();
        let context = format!("GCP seed {seed}, exit {code:?}:\n{stdout}\n{stderr}");
        let outcome = settled_gcp(&g, code, &context);
        *outcomes.entry(format!("Gcp: {outcome}")).or_default() += 1;
        let proxy = g.proxy.as_ref().map(rotor_sandbox::Running::url);
        tally(&proxy.expect("proxy"), "Gcp", &mut injected);
    }
    report_figures("fault-figures-gcp.txt", "runs", &outcomes, &injected);
}

/// The proxy answers Secret Manager's calls in Google's shapes, and passes every other route
/// of the stand-in (GitHub, the application, the control endpoints) untouched.
#[test]
fn the_gcp_fault_proxy_answers_in_googles_shapes_and_only_for_secret_manager() {
    let faults = Faults {
        seed: 3,
        rate: 1.0,
        style: Style::Gcp,
    };
    let g = gcp_world_with(1, &[], json!({}), None, "{}", Some(faults));
    let proxy = g
        .proxy
        .as_ref()
        .map(rotor_sandbox::Running::url)
        .expect("proxy");
    let http = reqwest::blocking::Client::new();
    // Not Secret Manager: never faulted, never counted.
    for _ in 0..20 {
        let resp = http
            .get(format!("{proxy}/_sandbox/gcp/log"))
            .send()
            .expect("control");
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let mut seen = BTreeMap::<String, u64>::new();
    for _ in 0..60 {
        let resp = http
            .get(format!(
                "{proxy}/v1/projects/rotor-test/secrets/{}",
                crate::backend_gcp::secret_id(&g.names[0])
            ))
            .bearer_auth("gcp-rotor")
            .send();
        let Ok(resp) = resp else {
            *seen.entry("closed".to_owned()).or_default() += 1;
            continue;
        };
        let status = resp.status().as_u16();
        let Ok(body) = resp.json::<Value>() else {
            *seen.entry("closed".to_owned()).or_default() += 1;
            continue;
        };
        match status {
            429 => {
                assert_eq!(body["error"]["code"], 429, "{body:#}");
                assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED", "{body:#}");
                assert!(
                    body["error"]["message"].as_str().is_some_and(
                        |m| m.starts_with("Quota exceeded for quota metric 'Read requests'")
                    ),
                    "{body:#}"
                );
            }
            503 => assert_eq!(
                body["error"],
                json!({"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"})
            ),
            200 => assert!(body["etag"].is_string(), "{body:#}"),
            other => panic!("unexpected {other}: {body:#}"),
        }
        *seen.entry(status.to_string()).or_default() += 1;
    }
    for kind in ["429", "503", "closed", "200"] {
        assert!(seen.contains_key(kind), "{kind} never seen: {seen:?}");
    }
    let stats: Value = http
        .get(format!("{proxy}/_fault/stats"))
        .send()
        .expect("stats")
        .json()
        .expect("json");
    assert_eq!(
        stats["requests"], 60,
        "only Secret Manager's calls drew: {stats:#}"
    );
    no_access(&g);
}
