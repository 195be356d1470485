//! Resume: `rotor apply` stopped abruptly after each step, then run again,
//! converges — one rotation, one artifact commit, the pointer never left on an unverified
//! version, a rollback never turned back into a rotation — and no secret value appears in
//! anything either run printed, sent or wrote.

use crate::apply::{Setup, apply_command, apply_printed, artifact_on_branch, review_event, setup};
use crate::plan::{git, sandbox_requests, sandbox_state};
use crate::services::block_on;

/// The exit code of a deliberate stop (`rotor::fault::EXIT`).
const STOPPED: i32 = 86;

fn stop_at(s: &Setup, point: &str) -> String {
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(s, &event, "pull_request_review")
        .env("ROTOR_FAULT_AT", point)
        .expects_exit(STOPPED)
        .run();
    format!("{stdout}{stderr}")
}

fn app_log(s: &Setup) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("app log")
        .json()
        .expect("json")
}

fn upserts(s: &Setup, operation: &str) -> usize {
    let needle = format!("\"operation\":\"{operation}\"");
    app_log(s)
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains(&needle))
        .count()
}

/// Commits rotor added on the PR branch since the approved head.
fn rotor_commits(s: &Setup) -> usize {
    let origin = s.w.dir.path().join("origin.git");
    git(
        &origin,
        &["rev-list", "--count", &format!("{}..rotate", s.w.head)],
    )
    .parse()
    .expect("count")
}

/// No canary in anything rotor printed, sent or wrote, and rotor's token never asked OpenBao
/// for a value.
pub(crate) fn assert_no_secret_anywhere(s: &Setup, printed: &str) {
    assert!(!s.canaries.is_empty());
    let origin = s.w.dir.path().join("origin.git");
    // Git objects are compressed on disk: read every object back through git.
    let objects = git(
        &origin,
        &["cat-file", "--batch-all-objects", "--batch", "--unordered"],
    );
    let summary = std::fs::read_to_string(s.w.dir.path().join("summary.md")).unwrap_or_default();
    let github = format!("{}{:?}", sandbox_state(&s.url), sandbox_requests(&s.url));
    let app = app_log(s).join("\n");
    for canary in &s.canaries {
        for (place, text) in [
            ("output", printed),
            ("git objects", &objects),
            ("job summary", &summary),
            ("GitHub stand-in", &github),
            ("application stand-in", &app),
        ] {
            assert!(
                !text.contains(canary.as_str()),
                "a secret value in the {place}"
            );
        }
    }
    let paths: Vec<String> = block_on(s.bao.audit_entries_of(&s.token.accessor))
        .iter()
        .filter_map(|e| e["request"]["path"].as_str().map(str::to_owned))
        .collect();
    assert!(
        paths.iter().any(|p| p.starts_with("secret/metadata/")),
        "the audit device saw rotor's requests"
    );
    assert!(
        paths.iter().all(|p| !p.starts_with("secret/data/")),
        "rotor asked for a value: {paths:?}"
    );
}

fn pointer_and_marker(s: &Setup) -> (Option<String>, Option<String>) {
    let custom = block_on(s.bao.custom(&s.name));
    (
        custom.get("current_version").cloned(),
        custom.get("rotor_state").cloned(),
    )
}

#[test]
fn a_rotation_stopped_after_any_step_converges_when_run_again() {
    for point in [
        "baseline-read",
        "locked",
        "repointed",
        "recorded",
        "audit-found",
        "verified",
        "audited",
        "marked",
        "committed",
    ] {
        let s = setup(&[]);
        let mut printed = stop_at(&s, point);
        let (report, again) = apply_printed(&s, 0);
        printed.push_str(&again);
        let expected = if point == "committed" {
            "noop"
        } else {
            "success"
        };
        assert_eq!(report["result"], expected, "stopped at {point}: {report:#}");
        assert_eq!(
            pointer_and_marker(&s),
            (Some("2".to_owned()), Some("done".to_owned())),
            "stopped at {point}"
        );
        assert_eq!(
            rotor_commits(&s),
            1,
            "one artifact commit (stopped at {point})"
        );
        assert_eq!(
            sandbox_state(&s.url)["comments"].as_array().map(Vec::len),
            Some(1),
            "one sticky comment, edited (stopped at {point})"
        );
        let artifact = artifact_on_branch(&s);
        assert!(
            artifact.contains("- Result: success"),
            "{point}: {artifact}"
        );
        if point != "committed" {
            // The evidence survives the stop: the re-run found the checks and the event again.
            let r = &report["refs"][0];
            assert!(
                r["audit_event_ids"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
                "{point}: {r:#}"
            );
            assert!(
                r["checks"].as_array().is_some_and(|c| !c.is_empty()),
                "{point}: {r:#}"
            );
        }
        let audit_line = artifact
            .lines()
            .find(|l| l.starts_with("- Audit Evidence:"))
            .expect("audit line");
        assert!(audit_line.contains("evt"), "{point}: {audit_line}");
        assert_no_secret_anywhere(&s, &printed);
    }
}

#[test]
fn a_rollback_stopped_after_any_step_finishes_the_rollback_and_never_rotates_again() {
    for point in [
        "baseline-read",
        "locked",
        "repointed",
        "recorded",
        // The first audit event found: the rotation's, if its lookup beside the failing
        // verification found it first, else the rollback's, beside the rollback's checks.
        "audit-found",
        "verified",
        "rollback-intended",
        "rolled-back",
        "rollback-recorded",
        "marked",
    ] {
        let s = setup(&["2"]);
        let mut printed = stop_at(&s, point);
        let forward_before = upserts(&s, "rotate");
        let (report, again) = apply_printed(&s, 1);
        printed.push_str(&again);
        assert_eq!(
            report["result"], "rolled_back",
            "stopped at {point}: {report:#}"
        );
        assert_eq!(
            pointer_and_marker(&s),
            (Some("1".to_owned()), Some("rolled_back".to_owned())),
            "stopped at {point}"
        );
        if [
            "rollback-intended",
            "rolled-back",
            "rollback-recorded",
            "marked",
        ]
        .contains(&point)
        {
            assert_eq!(
                upserts(&s, "rotate"),
                forward_before,
                "stopped at {point}: the re-run must not rotate forward again"
            );
        }
        assert!(upserts(&s, "rollback") >= 1, "{point}");
        assert_eq!(
            rotor_commits(&s),
            1,
            "one artifact commit (stopped at {point})"
        );
        assert!(artifact_on_branch(&s).contains("- Result: rolled_back"));
        assert_no_secret_anywhere(&s, &printed);
    }
}

/// A rotation stopped after its upsert and run again upserts again (the marker is still
/// `pending`), so the application's log holds two `rotate` events of the same move, one cited:
/// once merged, `rotor verify` finds the record clean, online (the second event accounts for the
/// first), and an automatic rollback resumed the same way likewise.
#[test]
fn a_resumed_rotation_verifies_clean_though_it_upserted_twice() {
    for (bad, point) in [(&[][..], "recorded"), (&["2"][..], "rollback-recorded")] {
        let s = setup(bad);
        stop_at(&s, point);
        let (report, _) = apply_printed(&s, if bad.is_empty() { 0 } else { 1 });
        assert!(
            matches!(report["result"].as_str(), Some("success" | "rolled_back")),
            "{point}: {report:#}"
        );
        assert!(upserts(&s, "rotate") >= 1, "{point}");
        crate::rollback::merge(&s);
        let ws = crate::checkout::workspace(
            s.w.dir.path(),
            &s.w.origin(),
            "schedule",
            0,
            crate::checkout::Inputs::default(),
        );
        let (code, stdout, stderr) = crate::common::rotor()
            .current_dir(&ws)
            .env("GITHUB_TOKEN", "ghs_repo_token")
            .env("VAULT_TOKEN", &s.token.token)
            .env("ROTOR_APP_TOKEN", "app-token")
            .args(["verify", "--format", "json"])
            .run_unchecked();
        assert_eq!(code, Some(0), "{point}: {stdout}\n{stderr}");
    }
}
