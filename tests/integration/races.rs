//! Races: two applies of the same rotation at once. Whatever the interleaving, exactly one
//! rotation happens, one artifact commit lands, one comment exists, and each run's output says
//! what it did (success, noop, or "another run ... changed nothing" with exit 4).

use crate::apply::{apply_command, review_event, setup_refs};
use crate::plan::{git, sandbox_state};
use crate::services::block_on;

#[test]
fn two_applies_of_the_same_rotation_at_once_rotate_once() {
    for round in 0..4 {
        let s = setup_refs(2, &[], |t| t);
        let event = review_event(s.w.dir.path(), &s.w.head);
        // Two runners, two checkouts of the same remote, as on GitHub.
        let checkouts = [
            s.w.workspace("pull_request_review"),
            s.w.workspace("pull_request_review"),
        ];
        let runs: Vec<_> = checkouts
            .iter()
            .map(|dir| {
                let cmd = apply_command(&s, &event, "pull_request_review").current_dir(dir);
                std::thread::spawn(move || cmd.run_unchecked())
            })
            .collect();
        let outputs: Vec<_> = runs
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let mut results = Vec::new();
        for (code, stdout, stderr) in &outputs {
            let report: serde_json::Value = serde_json::from_str(stdout).unwrap_or_else(|e| {
                panic!("round {round}: one JSON object ({e}): {stdout}\n{stderr}")
            });
            let result = report["result"].as_str().unwrap_or_default().to_owned();
            match (code, result.as_str()) {
                (Some(0), "success" | "noop") => {}
                // The loser of a compare-and-swap leaves the rotation to the winner and says
                // why (its lock or its move lost to the other run); it commits nothing.
                (Some(4), "failed") => {
                    let text = report["refs"].to_string();
                    assert!(
                        report["commit_sha"].is_null()
                            && (text.contains("another run of rotation")
                                || text.contains("conflict")),
                        "round {round}: {report:#}"
                    );
                }
                other => panic!("round {round}: unexpected {other:?}: {report:#}\n{stderr}"),
            }
            results.push(result);
        }
        // A third run converges whatever the two left: a no-op when one of them committed the
        // artifact, else it gathers the refs' evidence and commits it.
        let (code, stdout, _) = apply_command(&s, &event, "pull_request_review").run_unchecked();
        assert_eq!(code, Some(0), "round {round}: {stdout}");
        assert!(
            crate::apply::artifact_on_branch(&s).contains("- Result: success"),
            "round {round}: the artifact records the rotation's success"
        );
        one_rotation_one_record(&s, &format!("round {round}"));
    }
}

/// The window the race above hits only sometimes, held open: a run whose preconditions read the
/// refs before another run of the same rotation finished them. Its compare-and-swap fails on
/// refs already done by its own rotation; it reports the other run's result as its own (not a
/// conflict, not a failed record), and the record stays one commit.
#[test]
fn a_run_held_after_its_preconditions_reports_what_another_run_of_its_rotation_finished() {
    let s = setup_refs(2, &[], |t| t);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let until = s.w.dir.path().join("go-on");
    let held_checkout = s.w.workspace("pull_request_review");
    let held = apply_command(&s, &event, "pull_request_review")
        .current_dir(&held_checkout)
        .held_at("preflighted", &until);

    // Meanwhile another run of the same rotation does all of it.
    let other = s.w.workspace("pull_request_review");
    let (code, stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .current_dir(&other)
        .run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let record = crate::apply::artifact_on_branch(&s);

    std::fs::write(&until, "").expect("release");
    let (code, stdout, stderr) = held.join().expect("thread");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(
        (code, report["result"].as_str()),
        (Some(0), Some("success")),
        "{report:#}\n{stderr}"
    );
    for r in report["refs"].as_array().expect("refs") {
        assert_eq!(
            (r["result"].as_str(), r["from"].as_str(), r["to"].as_str()),
            (Some("success"), Some("1"), Some("2")),
            "{r:#}"
        );
        assert!(
            r["audit_event_ids"]
                .as_array()
                .is_some_and(|ids| ids.len() == 1),
            "{r:#}"
        );
    }
    assert!(stderr.contains("finished this ref meanwhile"), "{stderr}");
    // One rotation, one record: the held run kept the artifact the other committed.
    one_rotation_one_record(&s, "held");
    assert_eq!(crate::apply::artifact_on_branch(&s), record);
}

/// Every ref rotated once and marked done, one artifact commit on the branch, one comment.
fn one_rotation_one_record(s: &crate::apply::Setup, case: &str) {
    for name in &s.names {
        let custom = block_on(s.bao.custom(name));
        assert_eq!(
            (
                custom.get("current_version").map(String::as_str),
                custom.get("rotor_state").map(String::as_str)
            ),
            (Some("2"), Some("done")),
            "{case}, {name}"
        );
    }
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(
        git(
            &origin,
            &["rev-list", "--count", &format!("{}..rotate", s.w.head)]
        ),
        "1",
        "{case}: one artifact commit: {}",
        git(&origin, &["log", "--stat", "-3", "rotate"])
    );
    // GitHub has no compare-and-swap for comments: a run that created one checks again and
    // keeps the oldest, so one sticky comment remains.
    assert_eq!(
        sandbox_state(&s.url)["comments"].as_array().map(Vec::len),
        Some(1),
        "{case}: one comment"
    );
}
