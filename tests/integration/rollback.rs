//! `rotor rollback` from `workflow_dispatch`: a rotation applied by `apply`, merged,
//! then rolled back by an `internal_admin` from the default branch; the artifact shows both
//! sections. Real OpenBao, the stand-ins, a real git remote.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::apply::{Setup, apply, setup, setup_refs};
use crate::common::{Rotor, fixture, rotor};
use crate::plan::{base_scenario, git, scenario};
use crate::services::block_on;

/// Merges the PR branch (with rotor's artifact commit) into `main` on the remote, as GitHub's
/// merge button would, and tells the GitHub stand-in.
pub(crate) fn merge(s: &Setup) -> String {
    let origin = s.w.origin();
    git(
        &origin,
        &["update-ref", "refs/heads/main", "refs/heads/rotate"],
    );
    crate::checkout::close_pull(&origin, 7);
    crate::checkout::refresh(&origin);
    sync(s)
}

/// Tells the GitHub stand-in where `main` is now (GitHub knows its own branches).
pub(crate) fn sync(s: &Setup) -> String {
    let origin = s.w.dir.path().join("origin.git");
    let sha = git(&origin, &["rev-parse", "main"]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(sha);
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    scenario(&s.url, &github);
    sha
}

/// GitHub's real `workflow_dispatch` payload, for this repository and these inputs.
pub(crate) fn dispatch_event(s: &Setup, git_ref: &str, reason: &str) -> PathBuf {
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(fixture("github/webhooks/workflow_dispatch.json")).expect("fixture"),
    )
    .expect("json");
    event["inputs"] = json!({"rotation_id": s.id, "reason": reason});
    event["ref"] = json!(git_ref);
    event["repository"]["full_name"] = json!("my-org/tenants");
    event["repository"]["default_branch"] = json!("main");
    let path = s.w.dir.path().join("dispatch.json");
    fs::write(&path, event.to_string()).expect("event");
    path
}

fn rollback_as(s: &Setup, actor: &str, git_ref: &str) -> Rotor {
    let ws = dispatch_workspace(s, git_ref, crate::checkout::Inputs::default());
    rollback_in(s, &ws, actor, git_ref)
}

/// The workspace of a workflow dispatched from `git_ref`: its tip, as actions/checkout makes it.
pub(crate) fn dispatch_workspace(
    s: &Setup,
    git_ref: &str,
    inputs: crate::checkout::Inputs,
) -> PathBuf {
    let branch = git_ref.strip_prefix("refs/heads/").unwrap_or("main");
    let origin = s.w.origin();
    let sha = git(&origin, &["rev-parse", git_ref]);
    let ws =
        s.w.dir
            .path()
            .join(format!("ws-{}", crate::services::unique("dispatch")));
    crate::checkout::checkout(&origin, &format!("refs/heads/{branch}"), &sha, inputs, &ws);
    ws
}

/// `rotor rollback` dispatched by `actor` from `git_ref`, run in `ws`.
pub(crate) fn rollback_in(s: &Setup, ws: &std::path::Path, actor: &str, git_ref: &str) -> Rotor {
    sync(s);
    let event = dispatch_event(s, git_ref, "Supabase errors after the rotation");
    rotor()
        .current_dir(ws)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &s.url)
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_ACTOR", "someone-else")
        .env("GITHUB_TRIGGERING_ACTOR", actor)
        .env("GITHUB_RUN_ID", "4343")
        .env("GITHUB_STEP_SUMMARY", s.w.dir.path().join("summary.md"))
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["rollback", "--format", "json"])
}

fn run(cmd: Rotor, code: i32) -> (Value, String) {
    let (stdout, stderr) = cmd.expects_exit(code).run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, format!("{stdout}{stderr}"))
}

fn pointer(s: &Setup, name: &str) -> Option<String> {
    block_on(s.bao.custom(name)).get("current_version").cloned()
}

fn artifact_on_main(s: &Setup) -> String {
    let origin = s.w.dir.path().join("origin.git");
    git(
        &origin,
        &["show", &format!("main:docs/security/rotations/{}.md", s.id)],
    )
}

fn app_upserts(s: &Setup) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("log")
        .json::<Vec<String>>()
        .expect("json")
        .into_iter()
        .filter(|l| l.starts_with("PUT "))
        .collect()
}

#[test]
fn an_admin_rolls_back_an_applied_rotation_and_the_artifact_shows_both_sections() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    let merged = merge(&s);
    let before = artifact_on_main(&s);

    let (report, mut printed) = run(rollback_as(&s, "bob", "refs/heads/main"), 0);
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    // A dispatched rollback is someone's decision, not a failed verification.
    assert!(!printed.contains("verification failed"), "{printed}");
    assert_eq!(report["refs"][0]["error"], Value::Null, "{report:#}");
    assert_eq!(report["operator"], "bob");
    assert_eq!(report["refs"][0]["from"], "1");
    assert_eq!(report["refs"][0]["to"], "2");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("rotor_state")
            .map(String::as_str),
        Some("rolled_back")
    );
    let upserts = app_upserts(&s);
    assert!(
        upserts
            .last()
            .is_some_and(|l| l.contains("\"operation\":\"rollback\"")
                && l.contains("\"operator\":\"bob\"")
                && l.contains("\"versionId\":\"1\"")),
        "{upserts:#?}"
    );

    // One commit on main, by rotor, whose parent is the merge; the rotation's section is
    // untouched and the rollback section follows it.
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(git(&origin, &["rev-parse", "main^"]), merged);
    assert_eq!(
        report["commit_sha"].as_str(),
        Some(git(&origin, &["rev-parse", "main"]).as_str())
    );
    let after = artifact_on_main(&s);
    let data_at = before.find("<!-- rotor:artifact").expect("data block");
    assert!(
        after.starts_with(before[..data_at].trim_end()),
        "the rotation's section is kept byte for byte"
    );
    let section: Vec<&str> = after
        .lines()
        .skip_while(|l| *l != "## Rollback")
        .take(10)
        .collect();
    let slug_free: Vec<String> = section
        .iter()
        .map(|l| l.replace(&s.name, "[REF]"))
        .map(|l| {
            if l.starts_with("- Date: ") {
                "- Date: [DATE]".to_owned()
            } else {
                l
            }
        })
        .map(|l| regex_lite_evt(&l))
        .collect();
    insta::assert_snapshot!("rollback_section", slug_free.join("\n"));
    let meta = after
        .lines()
        .find(|l| l.starts_with("<!-- rotor:artifact"))
        .expect("meta");
    assert!(meta.contains("\"rolled_back\":true"), "{meta}");

    // The pull request's one comment keeps the rotation's report, and below it the rollback's
    // own section: the move as it happened (2 → 1) and bob as the dispatcher.
    let comments = crate::plan::sandbox_state(&s.url)["comments"].clone();
    assert_eq!(comments.as_array().map(Vec::len), Some(1), "{comments:#}");
    let body = comments[0]["body"].as_str().expect("body");
    let (main_part, rollback_part) = body
        .split_once("<!-- rotor:rollback -->")
        .unwrap_or_else(|| panic!("a rollback section: {body}"));
    assert!(main_part.contains("### rotor apply: rotated"), "{body}");
    assert!(
        rollback_part.contains(&format!("### Rollback of {}: rolled back", s.id))
            && rollback_part.contains("Dispatched by bob.")
            && rollback_part.contains(&format!("| {} | vault | 2 → 1 | rolled_back |", s.name)),
        "{body}"
    );
    assert!(!rollback_part.contains("requested by"), "{body}");

    // Dispatching again finds nothing left to do.
    let (again, more) = run(rollback_as(&s, "bob", "refs/heads/main"), 0);
    assert_eq!(again["result"], "noop", "{again:#}");
    assert_eq!(
        report["commit_sha"].as_str(),
        Some(git(&origin, &["rev-parse", "main"]).as_str())
    );
    printed.push_str(&more);
    crate::resume::assert_no_secret_anywhere(&s, &printed);
}

/// Event ids and times vary; the snapshot keeps their shape.
fn regex_lite_evt(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("evt_") {
        out.push_str(&rest[..at]);
        out.push_str("evt_[N]");
        rest = rest[at + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out.split("http://127.0.0.1:")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part.to_owned()
            } else {
                format!(
                    "http://127.0.0.1:[PORT]{}",
                    part.trim_start_matches(|c: char| c.is_ascii_digit())
                )
            }
        })
        .collect()
}

#[test]
fn a_dispatcher_without_internal_admin_is_refused_with_3_and_nothing_changes() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    let (report, _) = run(rollback_as(&s, "mallory", "refs/heads/main"), 3);
    assert!(
        report["errors"]
            .to_string()
            .contains("dispatcher_not_admin"),
        "{report:#}"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("2"));
    assert!(!artifact_on_main(&s).contains("## Rollback"));
}

#[test]
fn a_dispatch_from_another_branch_is_refused_with_3() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    let (report, _) = run(rollback_as(&s, "bob", "refs/heads/rotate"), 3);
    assert!(
        report["errors"]
            .to_string()
            .contains("only from the default branch"),
        "{report:#}"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("2"));
}

#[test]
fn a_pointer_moved_since_is_refused_with_4_unless_forced() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    // An operator provisions and points at a third version by hand.
    block_on(s.bao.provision(&s.name, 1, None));
    let mut custom = block_on(s.bao.custom(&s.name));
    custom.insert("current_version".into(), "3".into());
    block_on(s.bao.set_custom(&s.name, json!(custom)));

    let (report, _) = run(rollback_as(&s, "bob", "refs/heads/main"), 4);
    assert_eq!(report["refs"][0]["result"], "not_started", "{report:#}");
    assert!(
        report["refs"][0]["error"]["message"]
            .as_str()
            .is_some_and(|e| e.contains("the pointer designates 3, not 2")),
        "{report:#}"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("3"));
    assert!(!artifact_on_main(&s).contains("## Rollback"));

    let (forced, _) = run(
        rollback_as(&s, "bob", "refs/heads/main").args(["--force"]),
        0,
    );
    assert_eq!(forced["result"], "rolled_back", "{forced:#}");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));
    let artifact = artifact_on_main(&s);
    assert!(artifact.contains("- Forced: yes"), "{artifact}");
}

#[test]
fn every_ref_of_a_batch_rolls_back_or_only_the_one_named() {
    let s = setup_refs(3, &[], |t| t);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    let (one, _) = run(
        rollback_as(&s, "bob", "refs/heads/main").args(["--ref", &s.names[1]]),
        0,
    );
    assert_eq!(one["refs"].as_array().map(Vec::len), Some(1), "{one:#}");
    assert_eq!(pointer(&s, &s.names[1]).as_deref(), Some("1"));
    assert_eq!(pointer(&s, &s.names[0]).as_deref(), Some("2"));

    // The rest: the one already rolled back is skipped, the two others move back.
    let (rest, _) = run(rollback_as(&s, "bob", "refs/heads/main"), 0);
    assert_eq!(rest["result"], "rolled_back", "{rest:#}");
    assert_eq!(rest["refs"].as_array().map(Vec::len), Some(2), "{rest:#}");
    for name in &s.names {
        assert_eq!(pointer(&s, name).as_deref(), Some("1"), "{name}");
    }
    let artifact = artifact_on_main(&s);
    assert_eq!(artifact.matches("## Rollback").count(), 2, "{artifact}");
    assert!(artifact.contains("- Secret Ref: 2 refs"), "{artifact}");
}

/// A fresh checkout of `main`, as a scheduled workflow's `actions/checkout` leaves it.
fn checkout_main(s: &Setup) -> PathBuf {
    s.w.workspace("schedule")
}

fn drift(s: &Setup, code: i32) -> (Value, String) {
    let repo = checkout_main(s);
    let (stdout, stderr) = rotor()
        .env("VAULT_TOKEN", &s.token.token)
        .env("GITHUB_ACTIONS", "true")
        .args(["drift", "--format", "json", "--repo"])
        .args([&repo])
        .expects_exit(code)
        .run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, stderr)
}

#[test]
fn drift_catches_a_pointer_moved_by_hand_and_follows_a_rollback() {
    let s = setup_refs(2, &[], |t| t);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    let (clean, _) = drift(&s, 0);
    assert_eq!(clean["result"], "clean", "{clean:#}");
    assert_eq!(clean["drifted"], 0);
    assert_eq!(clean["refs"].as_array().map(Vec::len), Some(2));

    // Someone points the second ref back at version 1 by hand.
    let mut custom = block_on(s.bao.custom(&s.names[1]));
    custom.insert("current_version".into(), "1".into());
    block_on(s.bao.set_custom(&s.names[1], json!(custom)));
    let (found, stderr) = drift(&s, 1);
    assert_eq!(found["result"], "drift", "{found:#}");
    let drifted: Vec<&Value> = found["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .filter(|r| r["drifted"] == true)
        .collect();
    assert_eq!(drifted.len(), 1, "{found:#}");
    assert_eq!(drifted[0]["ref"], s.names[1].as_str());
    assert_eq!(drifted[0]["expected"], "2");
    assert_eq!(drifted[0]["actual"], "1");
    assert!(
        drifted[0]["actual_created"]
            .as_str()
            .is_some_and(|c| c.ends_with('Z'))
    );
    assert!(
        stderr.contains(&format!("::warning title=rotor::drift: {}", s.names[1])),
        "{stderr}"
    );

    // A dispatched rollback of that ref is the artifact's new truth: no drift for it.
    let mut custom = block_on(s.bao.custom(&s.names[1]));
    custom.insert("current_version".into(), "2".into());
    block_on(s.bao.set_custom(&s.names[1], json!(custom)));
    run(
        rollback_as(&s, "bob", "refs/heads/main").args(["--ref", &s.names[1]]),
        0,
    );
    let (after, _) = drift(&s, 0);
    assert_eq!(after["result"], "clean", "{after:#}");
    let expected: Vec<&str> = after["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .filter_map(|r| r["expected"].as_str())
        .collect();
    assert!(
        expected.contains(&"1") && expected.contains(&"2"),
        "{after:#}"
    );
}

#[test]
fn a_rotation_id_that_is_a_path_is_refused_with_2_before_any_call() {
    let s = setup(&[]);
    for id in [
        "../../../etc/passwd",
        "2026-11-25-x/../../secrets",
        "a%2f..%2fb",
    ] {
        let cmd = rollback_as(&s, "bob", "refs/heads/main").args(["--rotation-id", id]);
        crate::plan::clear_requests(&s.url);
        let (report, _) = run(cmd, 2);
        assert!(
            report["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("invalid --rotation-id")),
            "{id}: {report:#}"
        );
        assert!(
            crate::plan::sandbox_requests(&s.url).is_empty(),
            "{id}: nothing was asked of GitHub"
        );
    }
}

/// A second rotation (PR #8, to version 3) of a ref whose first rotation (#7) is merged, and
/// the event that approves it.
fn second_rotation(s: &Setup) -> PathBuf {
    let work = s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin", "main"]);
    git(&work, &["checkout", "-q", "-b", "rotate2", "origin/main"]);
    let id = format!("{}-b", s.id);
    let file = format!("rotations/{id}.yaml");
    fs::write(
        work.join(&file),
        crate::plan::request(&id, std::slice::from_ref(&s.name)),
    )
    .expect("request");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "second rotation"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/rotate2"]);
    let origin = s.w.origin();
    crate::checkout::open_pull(&origin, 8, "rotate2", "main");
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(git(&origin, &["rev-parse", "main"]));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    github["pulls"]["8"] = json!({
        "author": "alice", "head_sha": head, "base": "main", "head_ref": "rotate2",
        "files": [{"filename": file, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]
    });
    scenario(&s.url, &github);
    let path = crate::apply::review_event(s.w.dir.path(), &head);
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
    event["pull_request"]["number"] = json!(8);
    let path = s.w.dir.path().join("review-8.json");
    fs::write(&path, event.to_string()).expect("event");
    path
}

#[test]
fn an_apply_racing_a_rollback_of_the_same_ref_lets_exactly_one_win() {
    for round in 0..3 {
        let s = setup(&[]);
        assert_eq!(apply(&s, 0)["result"], "success");
        merge(&s);
        block_on(s.bao.provision(&s.name, 1, None)); // version 3, pending
        // rollback_as tells the stand-in the state of main; PR #8 is added after it.
        let rollback = rollback_as(&s, "bob", "refs/heads/main");
        let event = second_rotation(&s);
        let ws = crate::checkout::workspace(
            s.w.dir.path(),
            &s.w.origin(),
            "pull_request_review",
            8,
            crate::checkout::Inputs::default(),
        );
        let apply = crate::apply::apply_command(&s, &event, "pull_request_review").current_dir(&ws);
        let (back, forward) = (
            std::thread::spawn(move || rollback.run_unchecked()),
            std::thread::spawn(move || apply.run_unchecked()),
        );
        let (back, forward) = (
            back.join().expect("thread"),
            forward.join().expect("thread"),
        );
        let pointer = pointer(&s, &s.name);
        let custom = block_on(s.bao.custom(&s.name));
        let explain =
            format!("round {round}: rollback {back:?}\napply {forward:?}\nstate {custom:?}");
        match (back.0, forward.0, pointer.as_deref()) {
            // The rollback won: back on 1; the apply changed nothing and said why.
            (Some(0), Some(4), Some("1")) => {
                assert!(
                    forward.1.contains("locked by rotation")
                        || forward.1.contains("pending")
                        || forward.1.contains("conflict"),
                    "{explain}"
                );
            }
            // No overlap: the rollback finished before the apply read the ref, so the apply
            // rotated from where the rollback left it (1), not from the version it replaced.
            (Some(0), Some(0), Some("3")) => {
                let report: Value = serde_json::from_str(&forward.1).expect("json");
                assert_eq!(report["refs"][0]["from"], "1", "{explain}");
                assert_eq!(custom.get("rotor_from").map(String::as_str), Some("1"));
            }
            // The apply won: on 3; the rollback changed nothing and said why.
            (Some(4), Some(0), Some("3")) => {
                assert!(
                    back.1.contains("locked by rotation")
                        || back.1.contains("not 2")
                        || back.1.contains("conflict"),
                    "{explain}"
                );
            }
            _ => panic!("exactly one must win: {explain}"),
        }
        assert_ne!(
            custom.get("rotor_state").map(String::as_str),
            Some("pending"),
            "{explain}"
        );
    }
}

#[test]
fn a_rollback_stopped_right_after_its_lock_finishes_when_dispatched_again() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    merge(&s);
    let stopped = rollback_as(&s, "bob", "refs/heads/main")
        .env("ROTOR_FAULT_AT", "locked")
        .expects_exit(86);
    stopped.run();
    let marker = block_on(s.bao.custom(&s.name));
    assert_eq!(
        (
            marker.get("rotor_state").map(String::as_str),
            marker.get("rotor_rollback").map(String::as_str)
        ),
        (Some("pending"), Some("true")),
        "the lock carries the intent: {marker:?}"
    );
    let (report, _) = run(rollback_as(&s, "bob", "refs/heads/main"), 0);
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));
}
