//! Crash safety: `rotor apply` killed with SIGKILL at a random moment, then run
//! again, over seeded runs. Afterwards: every ref on the version its outcome requires (the
//! target after a success, the old one after a rollback), a final marker, exactly one artifact
//! commit with a final result, no ref rotated forward again after its rollback began, and no
//! secret value anywhere. `ROTOR_CRASH_RUNS` sets the number of runs (default 12).

use std::time::{Duration, Instant};

use crate::apply::{
    Setup, apply_command, apply_printed, artifact_on_branch, review_event, setup_refs,
};
use crate::plan::git;
use crate::services::block_on;

/// How many seeded SIGKILL runs a crash test makes (`ROTOR_CRASH_RUNS`, default 12).
pub(crate) fn runs() -> u64 {
    std::env::var("ROTOR_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12)
}

fn app_log(s: &Setup) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("app log")
        .json()
        .expect("json")
}

/// How long an uninterrupted apply takes here, to spread the kills over its whole length.
fn full_run(rollback: bool) -> Duration {
    let s = setup_refs(3, if rollback { &["2"] } else { &[] }, |t| t);
    let started = Instant::now();
    apply_printed(&s, if rollback { 1 } else { 0 });
    started.elapsed()
}

/// Starts `rotor` and kills it with SIGKILL at a moment drawn from `rng` within `length` (an
/// uninterrupted run's time): when it was killed, and whether it had finished by then.
pub(crate) fn killed_at_random(
    rotor: crate::common::Rotor,
    length: Duration,
    rng: &mut fastrand::Rng,
) -> (Duration, bool) {
    let kill_after = Duration::from_micros(rng.u64(0..=length.as_micros() as u64));
    let mut child = rotor.spawn();
    std::thread::sleep(kill_after);
    let finished_first = child.try_wait().expect("wait").is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    (kill_after, finished_first)
}

#[test]
fn apply_killed_at_a_random_moment_converges_when_run_again() {
    let lengths = [full_run(false), full_run(true)];
    let mut outcomes = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..runs() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let rollback = seed % 2 == 1;
        let s = setup_refs(3, if rollback { &["2"] } else { &[] }, |t| t);
        let event = review_event(s.w.dir.path(), &s.w.head);
        let length = lengths[usize::from(rollback)];
        let (kill_after, finished_first) = killed_at_random(
            apply_command(&s, &event, "pull_request_review"),
            length,
            &mut rng,
        );

        let (code, stdout, stderr) =
            apply_command(&s, &event, "pull_request_review").run_unchecked();
        let report: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("seed {seed}: one JSON object ({e}): {stdout}\n{stderr}"));
        let printed = format!("{stdout}{stderr}");
        let expected = if rollback { "rolled_back" } else { "success" };
        let result = report["result"].as_str().unwrap_or_default();
        let expected_code = if rollback && result != "noop" { 1 } else { 0 };
        assert!(
            (result == expected || result == "noop") && code == Some(expected_code),
            "seed {seed} (killed after {kill_after:?}), exit {code:?}: {report:#}\n{stderr}"
        );
        *outcomes
            .entry(format!(
                "{}{}",
                result,
                if finished_first {
                    " (first run had finished)"
                } else {
                    ""
                }
            ))
            .or_default() += 1;
        let (pointer, marker) = if rollback {
            ("1", "rolled_back")
        } else {
            ("2", "done")
        };
        for name in &s.names {
            let custom = block_on(s.bao.custom(name));
            assert_eq!(
                (
                    custom.get("current_version").map(String::as_str),
                    custom.get("rotor_state").map(String::as_str)
                ),
                (Some(pointer), Some(marker)),
                "seed {seed}, {name}: {custom:?}"
            );
        }
        let origin = s.w.dir.path().join("origin.git");
        let commits = git(
            &origin,
            &["rev-list", "--count", &format!("{}..rotate", s.w.head)],
        );
        assert_eq!(commits, "1", "seed {seed}: one artifact commit");
        let artifact = artifact_on_branch(&s);
        assert!(
            artifact.contains(&format!("- Result: {expected}")),
            "seed {seed}: {artifact}"
        );
        // Never forward again after a rollback began, for any ref.
        if rollback {
            let log = app_log(&s);
            for name in &s.names {
                let put = format!("PUT /api/v1/secret-refs/{name} ");
                let ops: Vec<&str> = log
                    .iter()
                    .filter(|l| l.starts_with(&put))
                    .map(|l| {
                        if l.contains("\"operation\":\"rollback\"") {
                            "rollback"
                        } else {
                            "rotate"
                        }
                    })
                    .collect();
                let first_back = ops.iter().position(|o| *o == "rollback");
                assert!(
                    first_back.is_some_and(|i| ops[i..].iter().all(|o| *o == "rollback")),
                    "seed {seed}, {name}: {ops:?}"
                );
            }
        }
        crate::resume::assert_no_secret_anywhere(&s, &printed);
    }
    // Both kinds of run were exercised: rotations and rollbacks, to their converged results.
    assert!(
        outcomes
            .keys()
            .any(|k| k.starts_with("success") || k.starts_with("noop"))
            && outcomes.len() >= 2,
        "{outcomes:?}"
    );
}
