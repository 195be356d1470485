//! Races on AWS Secrets Manager (moto), as `races.rs` proves them on OpenBao. On AWS the lock is
//! a set of tags (TagResource: no check-and-set) and the move is `UpdateSecretVersionStage`
//! with `RemoveFromVersionId` (the service's compare-and-swap): two calls, not one write.
//! Whatever the interleaving: two runs of one rotation rotate once, commit one artifact and
//! leave one comment; of two rotations of one ref exactly one wins and the other changes
//! nothing and says so (exit 4).

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::faults::{AwsWorld, aws_apply, aws_world_with};
use crate::plan::{base_scenario, git, sandbox_state, scenario};
use crate::services::{block_on, moto_url, provision_aws, sm_client};

/// An AWS world of `n` refs (each a current and a pending version), no faults, rotor talking
/// to moto directly.
fn aws_world(n: usize) -> AwsWorld {
    aws_world_with(n, 0, 0.0, false, |name| {
        let (current, pending, _) = block_on(provision_aws(name));
        (current, pending)
    })
}

/// The world's rotation id (`aws_world_with` names it after the refs' slug).
fn rotation_id(a: &AwsWorld) -> String {
    let slug = a.names[0]
        .split('.')
        .nth(1)
        .expect("slug")
        .trim_end_matches("-0")
        .to_owned();
    format!("2026-11-25-{slug}")
}

/// `rotor apply` for pull request #7's approval, in `dir`, straight to moto.
fn apply_in(a: &AwsWorld, dir: &std::path::Path) -> crate::common::Rotor {
    aws_apply(a)
        .current_dir(dir)
        .env("AWS_ENDPOINT_URL", moto_url())
}

/// A secret's labels (version → stages) and tags, as the operator sees them.
fn aws_state(name: &str) -> (HashMap<String, Vec<String>>, HashMap<String, String>) {
    block_on(async {
        let d = sm_client()
            .await
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .expect("describe");
        (
            d.version_ids_to_stages().cloned().unwrap_or_default(),
            d.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
        )
    })
}

fn labelled(stages: &HashMap<String, Vec<String>>, label: &str) -> Option<String> {
    stages
        .iter()
        .find(|(_, l)| l.iter().any(|x| x == label))
        .map(|(id, _)| id.clone())
}

/// The artifact commits on `branch` since `base`.
fn commits(a: &AwsWorld, base: &str, branch: &str) -> String {
    git(
        &a.w.origin(),
        &["rev-list", "--count", &format!("{base}..{branch}")],
    )
}

/// Every ref's pointer on its pending version (AWSPREVIOUS on the old one) under `id`'s
/// `done` marker of pull request #`pr`.
fn rotated_by(a: &AwsWorld, id: &str, pr: u64, case: &str) {
    for (name, (v1, v2)) in a.names.iter().zip(&a.versions) {
        let (stages, tags) = aws_state(name);
        assert_eq!(
            (
                labelled(&stages, "AWSCURRENT"),
                labelled(&stages, "AWSPREVIOUS"),
                tags.get("rotor:rotation-id").cloned(),
                tags.get("rotor:state").cloned(),
                tags.get("rotor:pull-request").cloned(),
            ),
            (
                Some(v2.clone()),
                Some(v1.clone()),
                Some(id.to_owned()),
                Some("done".to_owned()),
                Some(pr.to_string()),
            ),
            "{case}, {name}: labels {stages:?}, tags {tags:?}"
        );
    }
}

/// Every ref rotated once (AWSCURRENT on the pending version, AWSPREVIOUS on the old one) and
/// marked done by `id` of pull request #`pr`, one artifact commit on the branch, one comment.
fn one_rotation_one_record(a: &AwsWorld, id: &str, pr: u64, case: &str) {
    rotated_by(a, id, pr, case);
    assert_eq!(
        commits(a, &a.w.head, "rotate"),
        "1",
        "{case}: one artifact commit: {}",
        git(&a.w.origin(), &["log", "--stat", "-3", "rotate"])
    );
    let comments = sandbox_state(&a.url)["comments"].clone();
    let on_7 = comments
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["issue"] == 7)
        .count();
    assert_eq!(on_7, 1, "{case}: one comment: {comments:#}");
}

fn artifact(a: &AwsWorld, id: &str) -> String {
    git(
        &a.w.origin(),
        &["show", &format!("rotate:docs/security/rotations/{id}.md")],
    )
}

#[test]
fn aws_two_applies_of_the_same_rotation_at_once_rotate_once() {
    for round in 0..rounds() {
        let a = aws_world(2);
        let id = rotation_id(&a);
        let checkouts = [
            a.w.workspace("pull_request_review"),
            a.w.workspace("pull_request_review"),
        ];
        let runs: Vec<_> = checkouts
            .iter()
            .map(|dir| {
                let cmd = apply_in(&a, dir);
                std::thread::spawn(move || cmd.run_unchecked())
            })
            .collect();
        let outputs: Vec<_> = runs
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let mut seen = Vec::new();
        for (code, stdout, stderr) in &outputs {
            let report: Value = serde_json::from_str(stdout).unwrap_or_else(|e| {
                panic!("round {round}: one JSON object ({e}): {stdout}\n{stderr}")
            });
            let result = report["result"].as_str().unwrap_or_default().to_owned();
            match (code, result.as_str()) {
                (Some(0), "success" | "noop") => {}
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
            let refs: Vec<String> = report["refs"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .map(|x| {
                            format!(
                                "{}:{}",
                                x["result"].as_str().unwrap_or("?"),
                                x["failure"]["kind"].as_str().unwrap_or("-")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            seen.push(format!("exit {code:?} {result} {refs:?}"));
        }
        // Whatever the two left, right after them (before any third run): nothing half-done.
        let mut left = Vec::new();
        for name in &a.names {
            let (stages, tags) = aws_state(name);
            left.push(format!(
                "{name}: current {:?} state {:?}",
                labelled(&stages, "AWSCURRENT"),
                tags.get("rotor:state")
            ));
        }
        let (code, stdout, stderr) =
            apply_in(&a, &a.w.workspace("pull_request_review")).run_unchecked();
        assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
        assert!(
            artifact(&a, &id).contains("- Result: success"),
            "round {round}: the artifact records the rotation's success"
        );
        one_rotation_one_record(&a, &id, 7, &format!("round {round} ({seen:?}; {left:?})"));
    }
}

/// Holds a run after its preconditions until `release` is called; returns the thread and the
/// file whose creation releases it.
fn held(
    a: &AwsWorld,
    cmd: crate::common::Rotor,
) -> (
    std::thread::JoinHandle<(Option<i32>, String, String)>,
    PathBuf,
) {
    let until =
        a.w.dir
            .path()
            .join(format!("go-on-{}", crate::services::unique("h")));
    let thread = cmd.held_at("preflighted", &until);
    (thread, until)
}

/// The window the race above hits only sometimes, held open (as on OpenBao): a run whose
/// preconditions read the refs before another run of the same rotation finished them reports
/// the other run's result as its own, changes nothing, and the record stays one commit.
#[test]
fn aws_a_run_held_after_its_preconditions_reports_what_another_run_of_its_rotation_finished() {
    let a = aws_world(2);
    let id = rotation_id(&a);
    let (thread, until) = held(&a, apply_in(&a, &a.w.workspace("pull_request_review")));

    let (code, stdout, stderr) =
        apply_in(&a, &a.w.workspace("pull_request_review")).run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let record = artifact(&a, &id);
    let before: Vec<_> = a.names.iter().map(|n| aws_state(n)).collect();

    fs::write(&until, "").expect("release");
    let (code, stdout, stderr) = thread.join().expect("thread");
    let after: Vec<_> = a.names.iter().map(|n| aws_state(n)).collect();
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    // The held run changed nothing on AWS: labels and tags as the other run left them.
    assert_eq!(
        before, after,
        "the held run changed the secrets\n{report:#}\n{stderr}"
    );
    assert_eq!(
        (code, report["result"].as_str()),
        (Some(0), Some("success")),
        "{report:#}\n{stderr}"
    );
    for (r, (v1, v2)) in report["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .zip(&a.versions)
    {
        assert_eq!(
            (r["result"].as_str(), r["from"].as_str(), r["to"].as_str()),
            (Some("success"), Some(v1.as_str()), Some(v2.as_str())),
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
    one_rotation_one_record(&a, &id, 7, "held");
    assert_eq!(artifact(&a, &id), record);
}

/// A second rotation of the world's refs: pull request #8 (id `<id>-b`) from main, approved;
/// returns its id and the `rotor apply` that its approval runs.
fn second_rotation(a: &AwsWorld) -> (String, crate::common::Rotor) {
    let work = a.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin", "main"]);
    git(&work, &["checkout", "-q", "-b", "rotate-b", "origin/main"]);
    let id = format!("{}-b", rotation_id(a));
    let file = format!("rotations/{id}.yaml");
    fs::create_dir_all(work.join("rotations")).expect("mkdir");
    fs::write(work.join(&file), crate::plan::request(&id, &a.names)).expect("request");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "second rotation"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/rotate-b"]);
    let origin = a.w.origin();
    crate::checkout::open_pull(&origin, 8, "rotate-b", "main");
    let mut github = base_scenario(&a.w, &format!("{}.yaml", rotation_id(a)));
    github["pulls"]["8"] = json!({
        "author": "alice", "head_sha": head, "base": "main", "head_ref": "rotate-b",
        "files": [{"filename": file, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]
    });
    scenario(&a.url, &github);
    let path = crate::apply::review_event(a.w.dir.path(), &head);
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
    event["pull_request"]["number"] = json!(8);
    let path = a.w.dir.path().join("review-8.json");
    fs::write(&path, event.to_string()).expect("event");
    // The first rotation's review event is rewritten by review_event: write it back.
    crate::apply::review_event(a.w.dir.path(), &a.w.head);
    let ws = crate::checkout::workspace(
        a.w.dir.path(),
        &origin,
        "pull_request_review",
        8,
        crate::checkout::Inputs::default(),
    );
    let cmd = aws_apply(a)
        .current_dir(&ws)
        .env("GITHUB_EVENT_PATH", &path)
        .env("AWS_ENDPOINT_URL", moto_url());
    (id, cmd)
}

/// After two rotations raced: the winner's (`id`, pull request `pr`) marker is on every ref,
/// done, with the pointer on the pending version; the loser's branch has no artifact.
fn won_by(a: &AwsWorld, id: &str, pr: u64, branch_of_loser: &str, case: &str) {
    rotated_by(a, id, pr, case);
    let base = git(&a.w.origin(), &["rev-parse", "main"]);
    let loser_commits = if branch_of_loser == "rotate" {
        commits(a, &a.w.head, "rotate")
    } else {
        git(
            &a.w.origin(),
            &["rev-list", "--count", &format!("{base}..{branch_of_loser}")],
        )
    };
    let expected = if branch_of_loser == "rotate" {
        "0"
    } else {
        "1"
    };
    assert_eq!(
        loser_commits, expected,
        "{case}: the loser committed nothing on {branch_of_loser}"
    );
}

/// The loser of two rotations: exit 4, nothing committed, and it says why.
fn lost(out: &(Option<i32>, String, String), case: &str) {
    let (code, stdout, stderr) = out;
    let report: Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("{case}: one JSON object ({e}): {stdout}\n{stderr}"));
    assert_eq!(*code, Some(4), "{case}: {report:#}\n{stderr}");
    assert!(report["commit_sha"].is_null(), "{case}: {report:#}");
    let text = format!("{report}");
    assert!(
        !text.contains("another run of rotation"),
        "{case}: the loser takes the other rotation's work for its own: {report:#}\n{stderr}"
    );
}

/// Two rotations (pull requests #7 and #8, different ids) of the same refs, at once: exactly
/// one wins; the other changes nothing (no marker of its own left, the winner's marker intact)
/// and says so with exit 4.
#[test]
fn aws_two_rotations_of_the_same_ref_at_once_exactly_one_wins() {
    for round in 0..rounds() {
        let a = aws_world(1);
        let id_a = rotation_id(&a);
        let (id_b, b) = second_rotation(&a);
        let first = apply_in(&a, &a.w.workspace("pull_request_review"));
        let (ta, tb) = (
            std::thread::spawn(move || first.run_unchecked()),
            std::thread::spawn(move || b.run_unchecked()),
        );
        let (ra, rb) = (ta.join().expect("thread"), tb.join().expect("thread"));
        let (stages, tags) = aws_state(&a.names[0]);
        let case = format!(
            "round {round}: A exit {:?} {}\n{}\nB exit {:?} {}\n{}\nlabels {stages:?}\ntags {tags:?}",
            ra.0, ra.1, ra.2, rb.0, rb.1, rb.2
        );
        match (ra.0, rb.0) {
            (Some(0), _) => {
                lost(&rb, &case);
                won_by(&a, &id_a, 7, "rotate-b", &case);
            }
            (_, Some(0)) => {
                lost(&ra, &case);
                won_by(&a, &id_b, 8, "rotate", &case);
            }
            _ => panic!("exactly one must win: {case}"),
        }
    }
}

/// The window held open: rotation B's run read the ref, then rotation A rotated it completely;
/// B must change nothing (A's done marker stays A's) and say so with exit 4.
#[test]
fn aws_a_rotation_held_after_its_preconditions_leaves_another_rotations_work_alone() {
    let a = aws_world(1);
    let id_a = rotation_id(&a);
    let (_, b) = second_rotation(&a);
    let (thread, until) = held(&a, b);
    let (code, stdout, stderr) =
        apply_in(&a, &a.w.workspace("pull_request_review")).run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let before = aws_state(&a.names[0]);
    fs::write(&until, "").expect("release");
    let out = thread.join().expect("thread");
    let after = aws_state(&a.names[0]);
    let case = format!(
        "B exit {:?} {}\n{}\nbefore {before:?}\nafter {after:?}",
        out.0, out.1, out.2
    );
    assert_eq!(before, after, "B changed the secret: {case}");
    lost(&out, &case);
    won_by(&a, &id_a, 7, "rotate-b", &case);
}

/// Holds both runs after their preconditions and releases them at once: each waits for its own
/// file, both files being links to one `go` file, so that their locks and moves land as close
/// together as the pause's polling allows (within 20 ms): the window in which two runs both
/// pass the lock's fresh read and both write their tags.
fn released_together(
    a: &AwsWorld,
    cmds: [crate::common::Rotor; 2],
) -> [(Option<i32>, String, String); 2] {
    let go =
        a.w.dir
            .path()
            .join(format!("go-{}", crate::services::unique("t")));
    let threads: Vec<_> = cmds
        .into_iter()
        .enumerate()
        .map(|(i, cmd)| {
            let until = PathBuf::from(format!("{}-{i}", go.display()));
            std::os::unix::fs::symlink(&go, &until).expect("link");
            let cmd = cmd
                .env("ROTOR_PAUSE_AT", "preflighted")
                .env("ROTOR_PAUSE_UNTIL", &until);
            let signal = PathBuf::from(format!("{}.held", until.display()));
            (std::thread::spawn(move || cmd.run_unchecked()), signal)
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !threads.iter().all(|(_, s)| s.exists()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the runs were never held"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    fs::write(&go, "").expect("release");
    let mut outs = threads.into_iter().map(|(t, _)| t.join().expect("thread"));
    [outs.next().expect("a"), outs.next().expect("b")]
}

fn rounds() -> usize {
    std::env::var("ROTOR_RACE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4)
}

/// Two runs of one rotation released together from after their preconditions.
#[test]
fn aws_two_runs_of_one_rotation_released_together_rotate_once() {
    for round in 0..rounds() {
        let a = aws_world(2);
        let id = rotation_id(&a);
        let outs = released_together(
            &a,
            [
                apply_in(&a, &a.w.workspace("pull_request_review")),
                apply_in(&a, &a.w.workspace("pull_request_review")),
            ],
        );
        let mut seen = Vec::new();
        for (code, stdout, stderr) in &outs {
            let report: Value = serde_json::from_str(stdout).unwrap_or_else(|e| {
                panic!("round {round}: one JSON object ({e}): {stdout}\n{stderr}")
            });
            let result = report["result"].as_str().unwrap_or_default().to_owned();
            match (code, result.as_str()) {
                (Some(0), "success" | "noop") => {}
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
            seen.push(format!("exit {code:?} {result} {}", report["errors"]));
        }
        let (code, stdout, stderr) =
            apply_in(&a, &a.w.workspace("pull_request_review")).run_unchecked();
        assert_eq!(code, Some(0), "round {round}: {stdout}\n{stderr}");
        one_rotation_one_record(&a, &id, 7, &format!("together round {round} ({seen:?})"));
    }
}

/// Two rotations of one ref released together from after their preconditions: exactly one
/// wins, the other changes nothing and says so.
#[test]
fn aws_two_rotations_released_together_exactly_one_wins() {
    for round in 0..rounds() {
        let a = aws_world(1);
        let id_a = rotation_id(&a);
        let (id_b, b) = second_rotation(&a);
        let [ra, rb] =
            released_together(&a, [apply_in(&a, &a.w.workspace("pull_request_review")), b]);
        let (stages, tags) = aws_state(&a.names[0]);
        let case = format!(
            "round {round}: A exit {:?} {}\n{}\nB exit {:?} {}\n{}\nlabels {stages:?}\ntags {tags:?}",
            ra.0, ra.1, ra.2, rb.0, rb.1, rb.2
        );
        match (ra.0, rb.0) {
            (Some(0), _) => {
                lost(&rb, &case);
                won_by(&a, &id_a, 7, "rotate-b", &case);
            }
            (_, Some(0)) => {
                lost(&ra, &case);
                won_by(&a, &id_b, 8, "rotate", &case);
            }
            _ => panic!("exactly one must win: {case}"),
        }
    }
}
