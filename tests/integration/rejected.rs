//! A version a rollback rejected is never the default target again: not for a request without
//! `to` (then the ref has no pending version, exit 4), not in `rotor status`; and `plan` warns
//! when a request's `to` names it.

use serde_json::{Value, json};

use crate::apply::{apply, setup};
use crate::attacks::{pointer, push};
use crate::common::rotor;
use crate::plan::{base_scenario, request, scenario};

/// A second rotation pull request (#8) of the same ref, its request text given.
fn second_pull(s: &crate::apply::Setup, text: &str) -> (String, std::path::PathBuf) {
    let id = format!("{}-b", s.id);
    let file = format!("rotations/{id}.yaml");
    let head = push(s, "rotate-b", &[(file.as_str(), Some(text))], "rotation b");
    crate::checkout::open_pull(&s.w.origin(), 8, "rotate-b", "main");
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(crate::plan::git(&s.w.origin(), &["rev-parse", "main"]));
    github["pulls"]["8"] = json!({
        "author": "alice", "head_sha": head, "base": "main", "head_ref": "rotate-b",
        "files": [{"filename": file, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]
    });
    scenario(&s.url, &github);
    let path = crate::plan::pr_event(s.w.dir.path(), &head);
    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("event")).expect("json");
    event["number"] = json!(8);
    event["pull_request"]["number"] = json!(8);
    std::fs::write(&path, event.to_string()).expect("event");
    (id, path)
}

#[test]
fn a_rejected_version_is_never_the_default_target_and_plan_warns_when_named() {
    // Version 2's integration fails: apply rolls back, and the marker remembers 2 as rejected.
    let s = setup(&["2"]);
    assert_eq!(apply(&s, 1)["result"], "rolled_back");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));

    // status: 2 is rejected, not pending.
    let (stdout, _) = rotor()
        .current_dir(&s.w.checkout)
        .env("VAULT_TOKEN", &s.token.token)
        .args(["status", "--format", "json", &s.name])
        .run();
    let status: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(status["refs"][0]["pending"], Value::Null, "{status:#}");
    assert_eq!(status["refs"][0]["rejected"], "2", "{status:#}");

    // A new request without `to`: no pending version, exit 4, saying why.
    let id = format!("{}-b", s.id);
    let (_, event) = second_pull(&s, &request(&id, std::slice::from_ref(&s.name)));
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request",
        8,
        crate::checkout::Inputs::default(),
    );
    let (report, _) = crate::plan::run_plan_in(&s.w, &ws, &s.url, &s.token.token, &event, &[], 4);
    let message = report["refs"][0]["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("the only newer version, 2, was rejected by a rollback"),
        "{report:#}"
    );

    // Naming it with `to` is allowed, and warned about.
    let text = request(&id, std::slice::from_ref(&s.name)) + "    to: \"2\"\n";
    let (_, event) = second_pull(&s, &text);
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request",
        8,
        crate::checkout::Inputs::default(),
    );
    let (report, stderr) =
        crate::plan::run_plan_in(&s.w, &ws, &s.url, &s.token.token, &event, &[], 0);
    assert_eq!(
        report["warnings"][0]["code"], "rejected_version",
        "{report:#}"
    );
    assert_eq!(report["warnings"][0]["ref"], s.name.as_str());
    assert!(stderr.contains("::warning"), "an annotation too: {stderr}");
    let comment = crate::plan::sandbox_state(&s.url)["comments"]
        .as_array()
        .and_then(|c| c.last().cloned())
        .expect("comment");
    assert!(
        comment["body"]
            .as_str()
            .is_some_and(|b| b.contains("a rollback of rotation")),
        "{comment:#}"
    );
}

/// The marker is erased in the backend (someone with metadata rights, or a clean-up): the
/// record on the default branch still says version 2 was rejected, so neither `plan` nor
/// `rotor new` offers it as an ordinary pending version.
#[test]
fn an_erased_marker_forgets_no_rejected_version_the_record_holds() {
    let s = setup(&["2"]);
    assert_eq!(apply(&s, 1)["result"], "rolled_back");
    crate::rollback::merge(&s);
    let mut custom = crate::services::block_on(s.bao.custom(&s.name));
    custom.retain(|k, _| !k.starts_with("rotor_"));
    crate::services::block_on(s.bao.set_custom(&s.name, json!(custom)));

    // plan, a request without `to`: no default target, naming the rotation that rejected 2.
    let id = format!("{}-b", s.id);
    let (_, event) = second_pull(&s, &request(&id, std::slice::from_ref(&s.name)));
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request",
        8,
        crate::checkout::Inputs::default(),
    );
    let (report, _) = crate::plan::run_plan_in(&s.w, &ws, &s.url, &s.token.token, &event, &[], 4);
    let message = report["refs"][0]["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("the only newer version, 2, was rejected by a rollback"),
        "{report:#}"
    );

    // plan, `to: 2`: allowed, and warned about, naming the rotation from the record.
    let text = request(&id, std::slice::from_ref(&s.name)) + "    to: \"2\"\n";
    let (_, event) = second_pull(&s, &text);
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request",
        8,
        crate::checkout::Inputs::default(),
    );
    let (report, _) = crate::plan::run_plan_in(&s.w, &ws, &s.url, &s.token.token, &event, &[], 0);
    assert_eq!(
        report["warnings"][0]["code"], "rejected_version",
        "{report:#}"
    );
    assert!(
        report["warnings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&s.id)),
        "{report:#}"
    );

    // rotor new on the default branch's checkout: the ref is left out as rejected.
    let main = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "schedule",
        0,
        crate::checkout::Inputs::default(),
    );
    let (stdout, stderr) = rotor()
        .current_dir(&main)
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["new", "2026-12-01-again", "--environment", "staging"])
        .args(["--reason", "again", "--ref", &s.name, "--format", "json"])
        .expects_exit(4)
        .run();
    let new: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(new["skipped"][0]["reason"], "rejected", "{new:#}");
}
