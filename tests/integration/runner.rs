//! rotor in the runner users really have: workspaces made by actions/checkout with each of its
//! settings, every event shape GitHub sends for the triggers (edited and deleted comments
//! included), and a workspace owned by another user, as in a container job.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::apply::{Setup, apply_command, review_event, setup};
use crate::checkout::{Inputs, assert_usable};
use crate::common::fixture;
use crate::plan::{pr_event, sandbox_state};
use crate::services::block_on;

fn pointer(s: &Setup) -> Option<String> {
    block_on(s.bao.custom(&s.name))
        .get("current_version")
        .cloned()
}

/// GitHub's `issue_comment` payload on PR #7 with this action, body, author and sender.
fn comment_event(s: &Setup, action: &str, body: &str, author: &str, sender: &str) -> PathBuf {
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(fixture(
            "github/webhooks/issue_comment.created.with-organization.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    event["action"] = json!(action);
    event["issue"]["number"] = json!(7);
    event["issue"]["pull_request"] =
        json!({"url": "https://api.github.com/repos/my-org/tenants/pulls/7"});
    event["comment"]["body"] = json!(body);
    event["comment"]["user"]["login"] = json!(author);
    event["sender"]["login"] = json!(sender);
    event["repository"]["full_name"] = json!("my-org/tenants");
    if action == "edited" {
        event["changes"] = json!({"body": {"from": "LGTM, thanks"}});
    }
    let path =
        s.w.dir
            .path()
            .join(format!("comment-{}.json", crate::services::unique("c")));
    fs::write(&path, event.to_string()).expect("event");
    path
}

/// Runs apply in `ws` for `event`; returns the report, stderr and the outputs written.
fn apply_in(s: &Setup, ws: &Path, event: &Path, name: &str, code: i32) -> (Value, String, String) {
    let outputs =
        s.w.dir
            .path()
            .join(format!("outputs-{}", crate::services::unique("o")));
    let (stdout, stderr) = apply_command(s, event, name)
        .current_dir(ws)
        .env("GITHUB_OUTPUT", &outputs)
        .expects_exit(code)
        .run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (
        report,
        stderr,
        fs::read_to_string(&outputs).unwrap_or_default(),
    )
}

/// A non-trigger: exit 0, `noop` everywhere, a message naming the event and action, nothing
/// changed and no comment written.
fn assert_noop(
    s: &Setup,
    (report, stderr, outputs): (Value, String, String),
    event: &str,
    action: &str,
) -> String {
    assert_eq!(report["result"], "noop", "{report:#}");
    let message = report["message"].as_str().expect("message").to_owned();
    assert!(
        message.contains(&format!("`{event}`")) && message.contains(&format!("`{action}`")),
        "{message}"
    );
    assert!(stderr.contains(&message), "the log says it too: {stderr}");
    assert!(outputs.contains("result=noop\n"), "{outputs}");
    assert_eq!(pointer(s).as_deref(), Some("1"), "nothing moved");
    assert_eq!(
        sandbox_state(&s.url)["comments"].as_array().map(Vec::len),
        Some(0),
        "no comment written"
    );
    message
}

#[test]
fn edited_and_deleted_comments_never_apply_whoever_edited_them() {
    let s = setup(&[]);
    let ws = s.w.workspace("issue_comment");
    // An internal_admin's comment, edited into `/rotor apply` by someone else.
    for action in ["edited", "deleted"] {
        let event = comment_event(&s, action, "/rotor apply", "bob", "mallory");
        let message = assert_noop(
            &s,
            apply_in(&s, &ws, &event, "issue_comment", 0),
            "issue_comment",
            action,
        );
        assert!(message.contains("edited or deleted"), "{message}");
    }
    // Even edited by its own author.
    let event = comment_event(&s, "edited", "/rotor apply", "bob", "bob");
    assert_noop(
        &s,
        apply_in(&s, &ws, &event, "issue_comment", 0),
        "issue_comment",
        "edited",
    );
    assert_usable(&ws, true);
}

#[test]
fn a_comment_relayed_by_another_sender_or_not_verbatim_is_not_a_trigger() {
    let s = setup(&[]);
    let ws = s.w.workspace("issue_comment");
    let event = comment_event(&s, "created", "/rotor apply", "bob", "mallory");
    let message = assert_noop(
        &s,
        apply_in(&s, &ws, &event, "issue_comment", 0),
        "issue_comment",
        "created",
    );
    assert!(message.contains("mallory"), "{message}");
    for body in [
        "/rotor  apply",
        "/Rotor apply",
        "\n/rotor apply",
        "/rotor apply please",
    ] {
        let event = comment_event(&s, "created", body, "bob", "bob");
        assert_noop(
            &s,
            apply_in(&s, &ws, &event, "issue_comment", 0),
            "issue_comment",
            "created",
        );
    }
}

#[test]
fn rotor_apply_on_an_issue_says_it_is_an_issue() {
    let s = setup(&[]);
    let ws = s.w.workspace("issue_comment");
    let path = comment_event(&s, "created", "/rotor apply", "bob", "bob");
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
    event["issue"]
        .as_object_mut()
        .expect("issue")
        .remove("pull_request");
    fs::write(&path, event.to_string()).expect("event");
    let message = assert_noop(
        &s,
        apply_in(&s, &ws, &path, "issue_comment", 0),
        "issue_comment",
        "created",
    );
    assert!(
        message.contains("#7 is an issue, not a pull request"),
        "{message}"
    );
}

#[test]
fn an_edited_or_dismissed_review_and_a_non_approval_never_apply() {
    let s = setup(&[]);
    let ws = s.w.workspace("pull_request_review");
    for (action, state) in [
        ("edited", "approved"),
        ("dismissed", "dismissed"),
        ("submitted", "commented"),
        ("submitted", "changes_requested"),
    ] {
        let path = review_event(s.w.dir.path(), &s.w.head);
        let mut event: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
        event["action"] = json!(action);
        event["review"]["state"] = json!(state);
        fs::write(&path, event.to_string()).expect("event");
        assert_noop(
            &s,
            apply_in(&s, &ws, &path, "pull_request_review", 0),
            "pull_request_review",
            action,
        );
    }
    assert_usable(&ws, true);
}

#[test]
fn plan_ignores_pull_request_actions_other_than_opened_synchronize_reopened() {
    let s = setup(&[]);
    let ws = s.w.workspace("pull_request");
    for action in ["closed", "labeled", "edited"] {
        let path = pr_event(s.w.dir.path(), &s.w.head);
        let mut event: Value =
            serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
        event["action"] = json!(action);
        fs::write(&path, event.to_string()).expect("event");
        let outputs = s.w.dir.path().join("plan-outputs");
        let (stdout, stderr) = crate::common::rotor()
            .current_dir(&ws)
            .env("GITHUB_REPOSITORY", "my-org/tenants")
            .env("GITHUB_TOKEN", "ghs_repo_token")
            .env("GITHUB_API_URL", &s.url)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &path)
            .env("GITHUB_OUTPUT", &outputs)
            .args(["plan", "--format", "json"])
            .run();
        let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
        assert_noop(
            &s,
            (
                report,
                stderr,
                fs::read_to_string(&outputs).unwrap_or_default(),
            ),
            "pull_request",
            action,
        );
    }
}

/// The whole life of a rotation in the workspaces each event gets, for one setting of
/// actions/checkout; after every command the workspace is still a usable repository.
fn life_in_workspaces(inputs: Inputs) {
    let s = setup(&[]);
    let shallow = inputs.fetch_depth != 0;
    // plan on pull_request: the merge commit.
    let ws = s.w.workspace_with("pull_request", inputs);
    let event = pr_event(s.w.dir.path(), &s.w.head);
    let (plan, _) = crate::plan::run_plan_in(&s.w, &ws, &s.url, &s.token.token, &event, &[], 0);
    assert_eq!(plan["result"], "planned", "{plan:#}");
    assert_usable(&ws, shallow);
    // apply on the approving review: the merge commit again.
    let ws = s.w.workspace_with("pull_request_review", inputs);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (report, _, outputs) = apply_in(&s, &ws, &event, "pull_request_review", 0);
    assert_eq!(report["result"], "success", "{report:#}");
    assert!(outputs.contains("result=success\n"), "{outputs}");
    assert_eq!(pointer(&s).as_deref(), Some("2"));
    assert_usable(&ws, shallow);
    // `/rotor apply` again, from the default branch's checkout: already applied.
    let ws = s.w.workspace_with("issue_comment", inputs);
    let event = comment_event(&s, "created", "/rotor apply", "bob", "bob");
    let (again, _, _) = apply_in(&s, &ws, &event, "issue_comment", 0);
    assert_eq!(again["result"], "noop", "{again:#}");
    assert_usable(&ws, shallow);
    // Merged, then rolled back from a dispatch on main.
    crate::rollback::merge(&s);
    let ws = crate::rollback::dispatch_workspace(&s, "refs/heads/main", inputs);
    let (stdout, _) = crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main").run();
    let back: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(back["result"], "rolled_back", "{back:#}");
    assert_eq!(pointer(&s).as_deref(), Some("1"));
    assert_usable(&ws, shallow);
    // Drift and status on schedule, from the default branch.
    let ws = s.w.workspace_with("schedule", inputs);
    let (stdout, _) = crate::common::rotor()
        .current_dir(&ws)
        .env("VAULT_TOKEN", &s.token.token)
        .args(["drift", "--format", "json"])
        .run();
    let drift: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(drift["result"], "clean", "{drift:#}");
    assert_usable(&ws, shallow);
    crate::common::rotor()
        .current_dir(&ws)
        .env("VAULT_TOKEN", &s.token.token)
        .args(["status", &s.name])
        .run();
    assert_usable(&ws, shallow);
    for dir in std::fs::read_dir(s.w.dir.path()).expect("dir") {
        let config = dir.expect("entry").path().join(".git/config");
        if let Ok(text) = std::fs::read_to_string(&config) {
            assert!(
                !text.contains("ghs_repo_token"),
                "the token never lands in {}",
                config.display()
            );
        }
    }
}

#[test]
fn a_default_shallow_checkout_works_for_every_command_and_stays_usable() {
    life_in_workspaces(Inputs::default());
}

#[test]
fn a_checkout_without_persisted_credentials_works_for_every_command() {
    life_in_workspaces(Inputs {
        fetch_depth: 1,
        persist_credentials: false,
    });
}

#[test]
fn a_full_history_checkout_works_for_every_command() {
    life_in_workspaces(Inputs {
        fetch_depth: 0,
        persist_credentials: true,
    });
}

/// A workspace owned by another user (a container job): refused before any change, with the
/// command that fixes it. Needs to run as root to hand the files to another user.
#[test]
fn a_workspace_owned_by_another_user_names_the_safe_directory_command() {
    let s = setup(&[]);
    let ws = s.w.workspace("pull_request_review");
    let uid = std::process::Command::new("id")
        .arg("-u")
        .output()
        .expect("id");
    assert_eq!(
        String::from_utf8_lossy(&uid.stdout).trim(),
        "0",
        "this test hands the workspace to another user, which needs root (as CI runs)"
    );
    let chown = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&ws)
        .status()
        .expect("chown");
    assert!(chown.success());
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .current_dir(&ws)
        .expects_exit(2)
        .run();
    let path = ws.canonicalize().expect("path");
    let fix = format!(
        "git config --global --add safe.directory {}",
        path.display()
    );
    assert!(stderr.contains(&fix), "{stderr}");
    assert!(
        stdout.contains("safe.directory"),
        "the JSON report says so too: {stdout}"
    );
    assert_eq!(pointer(&s).as_deref(), Some("1"), "nothing moved");
    assert_eq!(
        sandbox_state(&s.url)["comments"].as_array().map(Vec::len),
        Some(0)
    );
}
