//! Faults (DESIGN §1, §6): a seeded fault proxy between rotor and one service at a time —
//! OpenBao, the application, GitHub — injecting 503s, 429s with `Retry-After`, answers lost
//! after the work was done, and slow answers. Every run must end settled: each ref untouched
//! or carrying a final marker that matches its pointer, the artifact committed exactly when
//! some ref changed and recording each ref's result; never a pending marker left behind, a
//! pointer moved without a final marker, or a final result without an artifact.
//! `ROTOR_FAULT_RUNS` sets the runs per service (default 8); the figures of the last run are
//! written to `$CARGO_TARGET_TMPDIR/fault-figures.txt`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::apply::{Setup, Through, apply_command, review_event, setup_through};
use crate::plan::git;
use crate::services::block_on;
use rotor_sandbox::fault::Faults;

fn runs() -> u64 {
    std::env::var("ROTOR_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// The artifact's machine-readable part on the PR branch, if rotor committed one.
fn artifact_meta(s: &Setup) -> Option<Value> {
    let origin = s.w.dir.path().join("origin.git");
    let commits: u32 = git(
        &origin,
        &["rev-list", "--count", &format!("{}..rotate", s.w.head)],
    )
    .parse()
    .expect("count");
    assert!(commits <= 1, "at most one artifact commit, found {commits}");
    if commits == 0 {
        return None;
    }
    let text = crate::apply::artifact_on_branch(s);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("<!-- rotor:artifact "))
        .expect("the artifact has its data block");
    Some(serde_json::from_str(line.trim_end_matches(" -->")).expect("data block json"))
}

/// Checks that the run ended settled and names how.
fn settled(s: &Setup, code: Option<i32>, context: &str) -> String {
    let meta = artifact_meta(s);
    let mut touched = 0;
    for name in &s.names {
        let custom = block_on(s.bao.custom(name));
        let pointer = custom.get("current_version").map(String::as_str);
        let marker = custom.get("rotor_state").map(String::as_str);
        let recorded = meta.as_ref().and_then(|m| {
            m["refs"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["ref"] == name.as_str()))
                .and_then(|r| r["result"].as_str().map(str::to_owned))
        });
        match (marker, pointer) {
            (None, Some("1")) => {
                assert!(
                    recorded.as_deref().is_none_or(|r| r == "not started"),
                    "{context}: {name} untouched but recorded as {recorded:?}"
                );
            }
            (Some("done" | "failed"), Some("2")) | (Some("rolled_back"), Some("1")) => {
                touched += 1;
                let expected = match marker {
                    Some("done") => "success",
                    Some("failed") => "failed",
                    _ => "rolled_back",
                };
                assert_eq!(
                    recorded.as_deref(),
                    Some(expected),
                    "{context}: {name} is final ({marker:?}) and the artifact must say so"
                );
            }
            other => panic!("{context}: {name} left half-done: marker, pointer = {other:?}"),
        }
    }
    match (touched, &meta) {
        (0, None) => format!("refused before any change (exit {})", code.unwrap_or(-1)),
        (0, Some(_)) => panic!("{context}: an artifact though nothing changed"),
        (_, None) => panic!("{context}: refs changed but no artifact was committed"),
        (_, Some(m)) => format!(
            "{} (exit {})",
            m["result"].as_str().unwrap_or("?"),
            code.unwrap_or(-1)
        ),
    }
}

#[test]
fn under_injected_faults_every_run_ends_settled() {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for (index, service) in [Through::Bao, Through::App, Through::GitHub]
        .into_iter()
        .enumerate()
    {
        for seed in 0..runs() {
            let faults = Faults {
                seed: seed * 31 + index as u64,
                rate: 0.3,
            };
            let s = setup_through(2, &[], |t| t, Some((service, faults)));
            let proxy = s
                .proxy
                .as_ref()
                .map(rotor_sandbox::Running::url)
                .expect("proxy");
            let event = review_event(s.w.dir.path(), &s.w.head);
            let mut cmd = apply_command(&s, &event, "pull_request_review");
            if service == Through::GitHub {
                cmd = cmd.env("GITHUB_API_URL", &proxy);
            }
            let (code, stdout, stderr) = cmd.run_unchecked();
            let context = format!("{service:?} seed {seed}, exit {code:?}:\n{stdout}\n{stderr}");
            let outcome = settled(&s, code, &context);
            *outcomes
                .entry(format!("{service:?}: {outcome}"))
                .or_default() += 1;
            let stats: Value = reqwest::blocking::get(format!("{proxy}/_fault/stats"))
                .expect("stats")
                .json()
                .expect("json");
            for key in [
                "requests",
                "unavailable",
                "throttled",
                "lost_answers",
                "slow",
            ] {
                *injected.entry(format!("{service:?} {key}")).or_default() +=
                    stats[key].as_u64().unwrap_or(0);
            }
        }
    }
    let figures = format!(
        "runs per service: {}\noutcomes: {outcomes:#?}\nrequests and faults: {injected:#?}\n",
        runs()
    );
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-figures.txt"),
        &figures,
    )
    .expect("figures");
    let faults: u64 = injected
        .iter()
        .filter(|(k, _)| !k.ends_with("requests"))
        .map(|(_, v)| v)
        .sum();
    assert!(faults > 0, "faults were injected: {figures}");
}
