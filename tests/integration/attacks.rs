//! The gate and the record against a contributor with write access: each way such a person
//! could get the wrong thing applied or recorded (push branches, open and retarget pull
//! requests, comment, change files anywhere in a pull request), as a test that failed before
//! the fix. `docs/threat-model.md` maps each to the rule that stops it.

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::apply::{Setup, apply, apply_command, review_event, setup, setup_configured};
use crate::common::rotor;
use crate::plan::{base_scenario, git, request, sandbox_state, scenario, unmet};
use crate::services::block_on;

pub(crate) fn pointer(s: &Setup, path: &str) -> Option<String> {
    block_on(s.bao.custom(path)).get("current_version").cloned()
}

pub(crate) fn marker(s: &Setup, path: &str) -> Option<String> {
    block_on(s.bao.custom(path)).get("rotor_state").cloned()
}

pub(crate) fn app_upserts(s: &Setup) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("log")
        .json::<Vec<String>>()
        .expect("json")
        .into_iter()
        .filter(|l| l.starts_with("PUT "))
        .collect()
}

/// Nothing changed anywhere: pointer and marker as provisioned, no upsert, no commit on the
/// pull request's branch beyond `head`.
pub(crate) fn untouched(s: &Setup, head: &str) {
    assert_eq!(
        pointer(s, &s.name).as_deref(),
        Some("1"),
        "the pointer did not move"
    );
    assert_eq!(marker(s, &s.name), None, "no lock was taken");
    assert!(
        app_upserts(s).is_empty(),
        "nothing was recorded in the application"
    );
    assert_eq!(
        git(&s.w.origin(), &["rev-parse", "rotate"]),
        head,
        "nothing was committed"
    );
}

/// Commits `files` (path, content or `None` to delete) on `branch` of origin through the
/// developer's clone, as a contributor pushing would; returns the new tip. The remote's hook
/// updates the pull request refs as GitHub does.
pub(crate) fn push(
    s: &Setup,
    branch: &str,
    files: &[(&str, Option<&str>)],
    message: &str,
) -> String {
    let work = s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    let start = format!("origin/{branch}");
    let exists = std::process::Command::new("git")
        .current_dir(&work)
        .args(["rev-parse", "--verify", "-q", &start])
        .output()
        .expect("git")
        .status
        .success();
    let base = if exists {
        start.as_str()
    } else {
        "origin/main"
    };
    git(&work, &["checkout", "-q", "-B", branch, base]);
    for (path, content) in files {
        let file = work.join(path);
        match content {
            Some(text) => {
                fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                fs::write(&file, text).expect("write");
            }
            None => {
                let _ = fs::remove_file(&file);
            }
        }
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", message]);
    git(
        &work,
        &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
    );
    git(&work, &["rev-parse", "HEAD"])
}

/// The stand-in's view after `main` moved: GitHub knows its own branches.
pub(crate) fn main_moved(s: &Setup, github: &mut Value) {
    github["branches"]["main"] = json!(git(&s.w.origin(), &["rev-parse", "main"]));
}

/// An approving review of PR `number` at `head`.
pub(crate) fn review_of(s: &Setup, number: u64, head: &str) -> PathBuf {
    let path = review_event(s.w.dir.path(), head);
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
    event["pull_request"]["number"] = json!(number);
    let path =
        s.w.dir
            .path()
            .join(format!("review-{number}-{}.json", &head[..7]));
    fs::write(&path, event.to_string()).expect("event");
    path
}

/// Runs apply for the approving review of PR `number` at `head`, in that event's workspace.
pub(crate) fn apply_review(s: &Setup, number: u64, head: &str, code: i32) -> (Value, String) {
    let event = review_of(s, number, head);
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request_review",
        number,
        crate::checkout::Inputs::default(),
    );
    let (stdout, stderr) = apply_command(s, &event, "pull_request_review")
        .current_dir(&ws)
        .expects_exit(code)
        .run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, stderr)
}

#[test]
fn an_id_reused_from_an_unmerged_pull_request_is_refused_not_inherited() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success", "PR #7 rotated 1 -> 2");
    // #7 is closed unmerged; its artifact stays on its branch. Version 3 is written.
    crate::checkout::close_pull(&s.w.origin(), 7);
    block_on(s.bao.provision(&s.name, 1, None));
    let file = format!("rotations/{}.yaml", s.id);
    let text = request(&s.id, std::slice::from_ref(&s.name)) + "    to: \"3\"\n";
    let head = push(
        &s,
        "rotate-b",
        &[(file.as_str(), Some(text.as_str()))],
        "reuse the id",
    );
    crate::checkout::open_pull(&s.w.origin(), 8, "rotate-b", "main");
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["8"] = json!({
        "author": "alice", "head_sha": head, "base": "main", "head_ref": "rotate-b",
        "files": [{"filename": file, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]
    });
    scenario(&s.url, &github);
    let before = app_upserts(&s).len();
    let (report, stderr) = apply_review(&s, 8, &head, 2);
    let printed = format!("{report}{stderr}");
    assert!(printed.contains("id_reused"), "{printed}");
    assert!(printed.contains("pull request #7"), "{printed}");
    assert_eq!(
        pointer(&s, &s.name).as_deref(),
        Some("2"),
        "still 2, not inherited"
    );
    assert_eq!(app_upserts(&s).len(), before, "no upsert for version 3");
}

#[test]
fn two_refs_mapping_to_one_secret_are_invalid_before_any_call() {
    let s = setup_configured(
        1,
        &[],
        |t| {
            let line = t
                .lines()
                .find(|l| l.contains("- ref:"))
                .expect("ref line")
                .replace("service_role", "anon_key");
            format!("{t}{line}\n")
        },
        |c| c.replace("mount: secret}", "mount: secret, path: \"{slug}/shared\"}"),
        None,
    );
    let (report, _) = apply_review(&s, 7, &s.w.head, 2);
    let error = &report["errors"][0];
    assert_eq!(error["code"], "shared_location", "{report:#}");
    assert_eq!(error["file"], format!("rotations/{}.yaml", s.id));
    assert_eq!(error["line"], 7, "the second ref's line");
    let slug = s.name.split('.').nth(1).expect("slug").to_owned();
    let (status, _) = block_on(s.bao.root(
        reqwest::Method::GET,
        &format!("secret/metadata/{slug}/shared"),
        None,
    ));
    assert_eq!(status, 404, "the shared secret was never written");
    assert!(app_upserts(&s).is_empty());
}

#[test]
fn a_broken_template_override_stops_the_run_before_any_change() {
    let s = setup(&[]);
    push(
        &s,
        "main",
        &[(
            ".github/rotor/templates/artifact.md.j2",
            Some("# Rotation {{ rotation_id }}\n- Result: {{ no_such_value }}\n"),
        )],
        "a broken override",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    main_moved(&s, &mut github);
    scenario(&s.url, &github);
    let (report, _) = apply_review(&s, 7, &s.w.head, 2);
    assert!(report.to_string().contains("artifact.md.j2"), "{report:#}");
    untouched(&s, &s.w.head);
    // A template may not print rotor's own marker either: it would plant a second block.
    push(
        &s,
        "main",
        &[(
            ".github/rotor/templates/artifact.md.j2",
            Some("# Rotation {{ rotation_id }}\n<!-- rotor:artifact {\"rotation_id\":\"x\"} -->\n"),
        )],
        "an override that plants a block",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    main_moved(&s, &mut github);
    scenario(&s.url, &github);
    let (report, _) = apply_review(&s, 7, &s.w.head, 2);
    assert!(
        report.to_string().contains("only rotor writes"),
        "{report:#}"
    );
    untouched(&s, &s.w.head);
}

#[test]
fn a_stray_file_among_the_overrides_is_ignored() {
    let s = setup(&[]);
    push(
        &s,
        "main",
        &[(
            ".github/rotor/templates/README.md",
            Some("Our templates.\n"),
        )],
        "document the overrides",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    main_moved(&s, &mut github);
    scenario(&s.url, &github);
    let (report, _) = apply_review(&s, 7, &s.w.head, 0);
    assert_eq!(report["result"], "success", "{report:#}");
}

#[test]
fn a_requests_dir_inside_github_is_a_config_error() {
    let s = setup_configured(
        1,
        &[],
        |t| t,
        |c| format!("{c}requests_dir: .github\n"),
        None,
    );
    let (report, _) = apply_review(&s, 7, &s.w.head, 2);
    assert_eq!(
        report["errors"][0]["code"], "requests_dir_in_github",
        "{report:#}"
    );
    untouched(&s, &s.w.head);
}

#[test]
fn a_forged_artifact_on_the_branch_is_not_taken_for_already_applied() {
    let s = setup(&[]);
    let meta = json!({"version": 1, "rotation_id": s.id, "pull_request": 7, "result": "success",
        "finished_at": "2026-11-26T02:10:06Z",
        "refs": [{"ref": s.name, "backend": "vault", "from": "1", "to": "2", "result": "success", "pointer": "2"}]});
    let forged = format!(
        "# Rotation {}\n- Date: 2026-11-26\n- Operator: alice (internal_admin)\n- Secret Ref: {}\n- Provider: supabase\n- Result: success\n- Verification: resolve ok\n- Audit Evidence: evt_1\n\n<!-- rotor:artifact {} -->\n",
        s.id, s.name, meta
    );
    let path = format!("docs/security/rotations/{}.md", s.id);
    let head = push(
        &s,
        "rotate",
        &[(path.as_str(), Some(forged.as_str()))],
        "looks applied",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["head_sha"] = json!(head);
    github["pulls"]["7"]["reviews"] =
        json!([{"user": "bob", "state": "APPROVED", "commit_id": head}]);
    scenario(&s.url, &github);
    let (report, stderr) = apply_review(&s, 7, &head, 4);
    let printed = format!("{report}{stderr}");
    assert!(printed.contains("not trusted"), "{printed}");
    assert!(printed.contains("carries no rotor marker"), "{printed}");
    untouched(&s, &head);
}

#[test]
fn a_pull_request_that_removes_another_request_is_refused() {
    let s = setup(&[]);
    let older = request("2026-10-01-older", std::slice::from_ref(&s.name));
    push(
        &s,
        "main",
        &[("rotations/2026-10-01-older.yaml", Some(older.as_str()))],
        "an older request",
    );
    // The contributor brings main into the branch and deletes the other request.
    let work = s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "rotate", "origin/rotate"]);
    git(&work, &["merge", "-q", "--no-edit", "origin/main"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/rotate"]);
    let head = push(
        &s,
        "rotate",
        &[("rotations/2026-10-01-older.yaml", None)],
        "retire the other request",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    main_moved(&s, &mut github);
    github["pulls"]["7"]["head_sha"] = json!(head);
    github["pulls"]["7"]["files"]
        .as_array_mut()
        .expect("files")
        .push(json!({"filename": "rotations/2026-10-01-older.yaml", "status": "removed"}));
    github["pulls"]["7"]["reviews"] =
        json!([{"user": "bob", "state": "APPROVED", "commit_id": head}]);
    scenario(&s.url, &github);
    let (report, _) = apply_review(&s, 7, &head, 3);
    assert_eq!(unmet(&report), ["request_removed"], "{report:#}");
    untouched(&s, &head);
}

#[test]
fn an_event_about_another_repository_is_invalid_input() {
    let s = setup(&[]);
    let path = review_event(s.w.dir.path(), &s.w.head);
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(&path).expect("event")).expect("json");
    event["repository"]["full_name"] = json!("someone/elsewhere");
    event["pull_request"]["base"]["repo"]["full_name"] = json!("someone/elsewhere");
    event["pull_request"]["head"]["repo"]["full_name"] = json!("someone/elsewhere");
    event["repository"]["default_branch"] = json!("release");
    fs::write(&path, event.to_string()).expect("event");
    let (stdout, _) = apply_command(&s, &path, "pull_request_review")
        .expects_exit(2)
        .run();
    assert!(stdout.contains("someone/elsewhere"), "{stdout}");
    untouched(&s, &s.w.head);
}

#[test]
fn a_dismissal_between_the_gate_and_the_first_change_stops_the_run() {
    for (what, change, rule) in [
        (
            "dismissed",
            json!({"reviews": [{"user": "bob", "state": "DISMISSED", "commit_id": "HEAD"}]}),
            "insufficient_approvals",
        ),
        (
            "changes requested",
            json!({"reviews": [{"user": "bob", "state": "APPROVED", "commit_id": "HEAD"},
                               {"user": "bob", "state": "CHANGES_REQUESTED", "commit_id": "HEAD"}]}),
            "changes_requested",
        ),
        ("closed", json!({"state": "closed"}), "pr_state"),
        ("drafted", json!({"draft": true}), "draft"),
    ] {
        let s = setup(&[]);
        let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
        let mut then = github["pulls"]["7"].clone();
        for (k, v) in change.as_object().expect("change") {
            let v = serde_json::from_str(&v.to_string().replace("HEAD", &s.w.head)).expect("json");
            then[k] = v;
        }
        github["pulls"]["7"]["then"] = then;
        scenario(&s.url, &github);
        let (report, _) = apply_review(&s, 7, &s.w.head, 3);
        assert!(
            unmet(&report).contains(&rule.to_owned()),
            "{what}: {report:#}"
        );
        untouched(&s, &s.w.head);
    }
}

#[test]
fn a_pull_request_github_lists_only_partly_is_not_approved() {
    let s = setup(&[]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    let files = github["pulls"]["7"]["files"].as_array_mut().expect("files");
    for i in 0..3000 {
        files.push(json!({"filename": format!("rotations/x{i}.yaml"), "status": "added"}));
    }
    scenario(&s.url, &github);
    let (report, _) = apply_review(&s, 7, &s.w.head, 3);
    assert_eq!(unmet(&report), ["files_outside_requests_dir"], "{report:#}");
    assert!(report.to_string().contains("3,000"), "{report:#}");
    untouched(&s, &s.w.head);
}

#[test]
fn another_bots_comment_with_the_marker_is_never_edited() {
    let s = setup(&[]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["comments"] = json!([{"id": 500, "issue": 7, "user": "other-bot[bot]", "user_type": "Bot",
        "body": "<!-- rotor:comment -->\nI am not rotor"}]);
    scenario(&s.url, &github);
    let event = crate::plan::pr_event(s.w.dir.path(), &s.w.head);
    crate::plan::run_plan(&s.w, &s.url, &s.token.token, &event, &[], 0);
    let comments = sandbox_state(&s.url)["comments"].clone();
    let comments = comments.as_array().expect("comments");
    assert_eq!(comments.len(), 2, "{comments:#?}");
    assert_eq!(
        comments[0]["body"],
        "<!-- rotor:comment -->\nI am not rotor"
    );
    assert_eq!(comments[1]["user"], "github-actions[bot]");
}

#[test]
fn credentials_never_follow_a_redirect_to_another_origin() {
    let recorder =
        rotor_sandbox::start_recorder("127.0.0.1:0".parse().expect("addr")).expect("recorder");
    let redirect =
        rotor_sandbox::start_redirector("127.0.0.1:0".parse().expect("addr"), &recorder.url())
            .expect("redirector");
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
    fs::write(
        dir.path().join(".github/rotor.yml"),
        crate::plan::config_with_app(&redirect.url(), "{users: [alice]}", &redirect.url()),
    )
    .expect("config");
    let (stdout, stderr) = rotor()
        .current_dir(dir.path())
        .env("VAULT_TOKEN", "hvs.never-forwarded")
        .args(["status", "tenant.acme.supabase.service_role"])
        .expects_exit(2)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("redirect to"),
        "{stdout}{stderr}"
    );
    let seen: Value = reqwest::blocking::get(format!("{}/_recorder/requests", recorder.url()))
        .expect("recorder")
        .json()
        .expect("json");
    assert!(
        !seen.to_string().contains("hvs.never-forwarded"),
        "the Vault token reached another origin: {seen}"
    );
}

#[test]
fn a_dispatched_rollbacks_reason_obeys_a_requests_rules() {
    let s = setup(&[]);
    for reason in [
        "x".repeat(4097),
        "bell\u{7}here".to_owned(),
        "bidi\u{202e}here".to_owned(),
        "delete\u{7f}here".to_owned(),
        "c1\u{85}here".to_owned(),
    ] {
        let ws = crate::rollback::dispatch_workspace(
            &s,
            "refs/heads/main",
            crate::checkout::Inputs::default(),
        );
        let (stdout, stderr) = crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main")
            .args(["--reason", &reason])
            .expects_exit(2)
            .run();
        assert!(
            format!("{stdout}{stderr}").contains("--reason"),
            "{stdout}{stderr}"
        );
    }
    // A reason may span lines (a ticket line) and hold tabs: it passes, and the run goes on
    // to what it lacks here (no artifact on main yet).
    let ws = crate::rollback::dispatch_workspace(
        &s,
        "refs/heads/main",
        crate::checkout::Inputs::default(),
    );
    let (stdout, stderr) = crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main")
        .args(["--reason", "Errors after the rotation\r\nTicket:\tSEC-1234"])
        .expects_exit(4)
        .run();
    assert!(
        !format!("{stdout}{stderr}").contains("--reason"),
        "{stdout}{stderr}"
    );
}

#[test]
fn an_artifact_with_a_second_data_block_is_not_trusted_by_rollback() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    crate::rollback::merge(&s);
    let path = format!("docs/security/rotations/{}.md", s.id);
    let text = git(&s.w.origin(), &["show", &format!("main:{path}")]);
    let planted = text.replacen(
        "## Approvals",
        &format!(
            "<!-- rotor:artifact {{\"rotation_id\":\"{}\",\"pull_request\":7,\"result\":\"success\",\"refs\":[{{\"ref\":\"{}\",\"backend\":\"vault\",\"from\":\"9\",\"to\":\"2\",\"result\":\"success\"}}]}} -->\n## Approvals",
            s.id, s.name
        ),
        1,
    );
    push(
        &s,
        "main",
        &[(path.as_str(), Some(planted.as_str()))],
        "an extra block",
    );
    let ws = crate::rollback::dispatch_workspace(
        &s,
        "refs/heads/main",
        crate::checkout::Inputs::default(),
    );
    let (stdout, stderr) = crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main")
        .expects_exit(4)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("machine-readable blocks"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        pointer(&s, &s.name).as_deref(),
        Some("2"),
        "nothing moved back"
    );
}

#[test]
fn plan_does_not_run_on_pull_request_target() {
    let s = setup(&[]);
    let event = crate::plan::pr_event(s.w.dir.path(), &s.w.head);
    let (report, _) = crate::plan::run_plan(
        &s.w,
        &s.url,
        &s.token.token,
        &event,
        &[("GITHUB_EVENT_NAME", "pull_request_target")],
        0,
    );
    assert_eq!(report["result"], "noop", "{report:#}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("pull_request_target"))
    );
    assert_eq!(
        sandbox_state(&s.url)["comments"].as_array().map(Vec::len),
        Some(0)
    );
}
