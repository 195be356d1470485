//! Crash safety on Google Cloud Secret Manager: `rotor apply` stopped abruptly at every step
//! boundary it passes on GCP (`ROTOR_FAULT_AT`: the lock-and-move patch, the record, the
//! verification, the rollback's steps, the final marker, between two waves, the artifact
//! commit), and killed with SIGKILL at seeded random moments, then run again. Afterwards every
//! ref is settled — its alias and `rotor-*` annotations agree with the artifact — there is
//! exactly one artifact commit, no ref is left `pending`, a rollback is never turned back into
//! a rotation, and the stand-in's log holds no `secrets.versions.access`.
//! `ROTOR_CRASH_RUNS` sets the number of SIGKILL runs (default 12, as for OpenBao).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::backend_gcp::{
    CANARY, GcpWorld, alias, annotations, artifact_on_branch, gcp_apply, gcp_world_with, json_of,
    log,
};
use crate::crash::{killed_at_random, runs};
use crate::faults_gcp::{rotor_commits, settled_gcp};

/// The exit code of a deliberate stop (`rotor::fault::EXIT`).
const STOPPED: i32 = 86;

fn world(n: usize, bad: &[&str], staging: &str) -> GcpWorld {
    gcp_world_with(n, bad, json!({}), None, staging, None)
}

fn stop_at(g: &GcpWorld, point: &str) -> String {
    let (stdout, stderr) = gcp_apply(g)
        .env("ROTOR_FAULT_AT", point)
        .expects_exit(STOPPED)
        .run();
    format!("{stdout}{stderr}")
}

/// The application's request log.
fn app_log(g: &GcpWorld) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", g.url))
        .expect("app log")
        .json()
        .expect("json")
}

/// The application's upserts of `name`, in order: `rotate` or `rollback`.
fn upserts(g: &GcpWorld, name: &str) -> Vec<&'static str> {
    let put = format!("PUT /api/v1/secret-refs/{name} ");
    app_log(g)
        .iter()
        .filter(|l| l.starts_with(&put))
        .map(|l| {
            if l.contains("\"operation\":\"rollback\"") {
                "rollback"
            } else {
                "rotate"
            }
        })
        .collect()
}

/// Settled on `expected` (`success` or `rolled_back`): each ref's alias and annotations agree
/// with the artifact, which says `expected`, in exactly one commit; nothing left `pending`; no
/// value read or printed.
fn converged(g: &GcpWorld, expected: &str, printed: &str, context: &str) {
    let outcome = settled_gcp(g, None, context);
    assert!(outcome.starts_with(expected), "{context}: {outcome}");
    let (pointer, marker) = if expected == "rolled_back" {
        ("1", "rolled_back")
    } else {
        ("2", "done")
    };
    for name in &g.names {
        assert_eq!(
            (
                alias(g, name).as_str(),
                annotations(g, name)["rotor-state"].as_str()
            ),
            (pointer, Some(marker)),
            "{context}: {name}"
        );
    }
    assert_eq!(rotor_commits(g), 1, "{context}: one artifact commit");
    let artifact = artifact_on_branch(g);
    assert!(
        artifact.contains(&format!("- Result: {expected}")),
        "{context}: {artifact}"
    );
    assert!(!artifact.contains(CANARY) && !printed.contains(CANARY));
    if expected == "rolled_back" {
        // Never forward again once the rollback began.
        for name in &g.names {
            let ops = upserts(g, name);
            let first_back = ops.iter().position(|o| *o == "rollback");
            assert!(
                first_back.is_some_and(|i| ops[i..].iter().all(|o| *o == "rollback")),
                "{context}, {name}: {ops:?}"
            );
        }
    }
}

/// The secret's etag per ref, to see that a no-op re-run writes nothing.
fn etags(g: &GcpWorld) -> Vec<Value> {
    g.names
        .iter()
        .map(|n| crate::backend_gcp::raw(g, n)["etag"].clone())
        .collect()
}

#[test]
fn gcp_a_rotation_stopped_after_any_step_converges_when_run_again() {
    for point in [
        "locked",
        "repointed",
        "recorded",
        "verified",
        "audited",
        "marked",
        "committed",
    ] {
        let g = world(2, &[], "{}");
        let mut printed = stop_at(&g, point);
        // Stopped after the lock and the move, one patch: the ref that got there first has its
        // alias moved and pending; the other (refs run concurrently) is untouched or the same,
        // never locked without its move.
        if point == "locked" {
            let states: Vec<(String, Option<String>)> = g
                .names
                .iter()
                .map(|n| {
                    let a = annotations(&g, n);
                    (alias(&g, n), a["rotor-state"].as_str().map(str::to_owned))
                })
                .collect();
            let moved = (String::from("2"), Some(String::from("pending")));
            let untouched = (String::from("1"), None);
            assert!(
                states.contains(&moved) && states.iter().all(|s| *s == moved || *s == untouched),
                "the lock and the move are one patch: {states:?}"
            );
        }
        let before = etags(&g);
        let (report, again) = json_of(gcp_apply(&g), 0);
        printed.push_str(&again);
        let expected = if point == "committed" {
            "noop"
        } else {
            "success"
        };
        assert_eq!(report["result"], expected, "stopped at {point}: {report:#}");
        if point == "committed" {
            assert_eq!(etags(&g), before, "a no-op re-run writes nothing");
        }
        converged(&g, "success", &printed, &format!("stopped at {point}"));
        // One forward move per ref: the re-run never moved the alias again.
        let patches = log(&g)["counts"]["secrets.patch"].as_u64().unwrap_or(0);
        assert_eq!(
            patches, 4,
            "stopped at {point}: one lock-and-move and one final marker per ref"
        );
    }
}

#[test]
fn gcp_a_rollback_stopped_after_any_step_finishes_the_rollback_and_never_rotates_again() {
    for point in [
        "locked",
        "repointed",
        "recorded",
        "verified",
        "rollback-intended",
        "rolled-back",
        "rollback-recorded",
        "marked",
        "committed",
    ] {
        let g = world(1, &["2"], "{}");
        let mut printed = stop_at(&g, point);
        let (code, stdout, stderr) = gcp_apply(&g).run_unchecked();
        printed.push_str(&stdout);
        printed.push_str(&stderr);
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{point}: one JSON object ({e}): {stdout}\n{stderr}"));
        let expected = if point == "committed" {
            ("noop", Some(0))
        } else {
            ("rolled_back", Some(1))
        };
        assert_eq!(
            (report["result"].as_str().unwrap_or_default(), code),
            expected,
            "stopped at {point}: {report:#}\n{stderr}"
        );
        converged(&g, "rolled_back", &printed, &format!("stopped at {point}"));
        assert_eq!(
            annotations(&g, &g.names[0])["rotor-previous"],
            "2",
            "stopped at {point}: the rollback moved the alias from 2"
        );
    }
}

#[test]
fn gcp_a_rollout_stopped_between_waves_goes_on_from_the_next_without_moving_a_ref_twice() {
    let g = world(2, &[], "{rollout: {canary: 1, wave: 1, max_failures: 0}}");
    let mut printed = stop_at(&g, "waved");
    // Stopped after the canary: its ref is done, the other untouched.
    assert_eq!(alias(&g, &g.names[0]), "2");
    assert_eq!(annotations(&g, &g.names[0])["rotor-state"], "done");
    assert_eq!(alias(&g, &g.names[1]), "1");
    assert!(annotations(&g, &g.names[1]).get("rotor-state").is_none());
    assert_eq!(rotor_commits(&g), 0, "nothing committed yet");
    let (report, again) = json_of(gcp_apply(&g), 0);
    printed.push_str(&again);
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(report["rollout"]["completed"], 2, "{report:#}");
    converged(&g, "success", &printed, "stopped between waves");
    for name in &g.names {
        assert_eq!(upserts(&g, name), ["rotate"], "{name} rotated once");
    }
}

/// How long an uninterrupted apply takes here, to spread the kills over its whole length.
fn full_run(rollback: bool) -> Duration {
    let g = world(3, if rollback { &["2"] } else { &[] }, "{}");
    let started = Instant::now();
    json_of(gcp_apply(&g), i32::from(rollback));
    started.elapsed()
}

#[test]
fn gcp_apply_killed_at_a_random_moment_converges_when_run_again() {
    let lengths = [full_run(false), full_run(true)];
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..runs() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let rollback = seed % 2 == 1;
        let g = world(3, if rollback { &["2"] } else { &[] }, "{}");
        let length = lengths[usize::from(rollback)];
        let (kill_after, finished_first) = killed_at_random(gcp_apply(&g), length, &mut rng);

        let (code, stdout, stderr) = gcp_apply(&g).run_unchecked();
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("seed {seed}: one JSON object ({e}): {stdout}\n{stderr}"));
        let expected = if rollback { "rolled_back" } else { "success" };
        let result = report["result"].as_str().unwrap_or_default();
        let expected_code = if rollback && result != "noop" { 1 } else { 0 };
        let context = format!("seed {seed} (killed after {kill_after:?}), exit {code:?}");
        assert!(
            (result == expected || result == "noop") && code == Some(expected_code),
            "{context}: {report:#}\n{stderr}"
        );
        *outcomes
            .entry(format!(
                "{result}{}",
                if finished_first {
                    " (first run had finished)"
                } else {
                    ""
                }
            ))
            .or_default() += 1;
        converged(&g, expected, &format!("{stdout}{stderr}"), &context);
    }
    // Both kinds of run were exercised, to their converged results.
    assert!(
        outcomes
            .keys()
            .any(|k| k.starts_with("success") || k.starts_with("noop"))
            && outcomes.len() >= 2,
        "{outcomes:?}"
    );
}
