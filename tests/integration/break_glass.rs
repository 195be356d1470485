//! Break-glass end to end, on OpenBao and on AWS (moto): `/rotor break-glass` commented by the
//! requester rotates alone where `environments.<env>.break_glass.allowed` says so, tells the
//! `notify` team once, and writes a record loud from its first line; every refusal changes
//! nothing; `rotor countersign` (dispatched on the default branch) or an approving review by
//! another `internal_admin` settles the owed approval; `verify` reports `approval_owed` until
//! then, and `evidence` and `report` list it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::apply::{Setup, apply_command, artifact_on_branch, review_event, setup_configured};
use crate::common::{Rotor, fixture, rotor};
use crate::plan::{base_scenario, git, sandbox_state, scenario, unmet};
use crate::rollback::{dispatch_event, dispatch_workspace, merge, sync};
use crate::services::{aws_env, block_on, moto_url, provision_aws};

const REASON: &str = "key leaked in INC-4211\nrotating before the attacker uses it";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Vault,
    Aws,
}

fn allowed(c: String) -> String {
    c.replace(
        "staging: {}",
        "staging: {break_glass: {allowed: true, notify: my-org/security}}",
    )
}

fn allowed_aws(c: String) -> String {
    on_aws(allowed(c))
}

fn allowed_within_1s(c: String) -> String {
    c.replace(
        "staging: {}",
        "staging: {break_glass: {allowed: true, notify: my-org/security, countersign_within: 1s}}",
    )
}

fn not_allowed(c: String) -> String {
    c
}

/// The config's one backend, made AWS Secrets Manager (moto).
fn on_aws(c: String) -> String {
    c.lines()
        .map(|l| {
            if l.contains("type: vault") {
                "  - {match: \"tenant.*.*.*\", type: aws-secrets-manager, region: us-east-1}"
                    .to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A one-ref rotation PR by alice whose staging environment's config is `config`, with no
/// review at all (break-glass needs none).
fn world(config: fn(String) -> String) -> Setup {
    let s = setup_configured(1, &[], |t| t, config, None);
    unreviewed(&s);
    s
}

/// The same on AWS: the ref provisioned on moto with a current and a pending version, the
/// application stand-in reading it there.
fn aws_world() -> Setup {
    let s = setup_configured(1, &[], |t| t, allowed_aws, None);
    block_on(provision_aws(&s.name));
    let slug = s.name.split('.').nth(1).expect("slug").to_owned();
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/_sandbox/app", s.url))
        .json(&json!({
            "token": "app-token",
            "refs": {s.name.clone(): {"tenant": format!("{slug}-0"), "provider": "supabase", "site_ids": ["site-001"]}},
            "backend": {"type": "aws", "endpoint": moto_url(), "region": "us-east-1", "stage": "AWSCURRENT"}
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    unreviewed(&s);
    s
}

/// Pull request #7 as the stand-in serves it, without reviews.
fn unreviewed(s: &Setup) {
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["reviews"] = json!([]);
    scenario(&s.url, &github);
}

/// An `issue_comment` on pull request #7, written by `author`, sent by `sender`.
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
    // GitHub stamps the comment when it is written: now, for a comment just posted.
    event["comment"]["created_at"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    event["comment"]["user"]["login"] = json!(author);
    event["sender"]["login"] = json!(sender);
    event["repository"]["full_name"] = json!("my-org/tenants");
    event["repository"]["default_branch"] = json!("main");
    let path =
        s.w.dir
            .path()
            .join(format!("{}.json", crate::services::unique("comment")));
    fs::write(&path, event.to_string()).expect("event");
    path
}

fn glass_body(reason: &str) -> String {
    format!("/rotor break-glass\n{reason}")
}

fn with_backend(mut cmd: Rotor, b: Backend) -> Rotor {
    if b == Backend::Aws {
        for (k, v) in aws_env() {
            cmd = cmd.env(k, v);
        }
    }
    cmd
}

/// `rotor apply` on a comment event, in the workspace a comment's run checks out.
fn apply_comment(s: &Setup, b: Backend, event: &Path) -> Rotor {
    let cmd = apply_command(s, event, "issue_comment")
        .current_dir(&s.w.workspace("issue_comment"))
        .env("GITHUB_OUTPUT", s.w.dir.path().join("outputs.txt"));
    with_backend(cmd, b)
}

fn json_of(cmd: Rotor, code: i32) -> (Value, String) {
    let (stdout, stderr) = cmd.expects_exit(code).run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, format!("{stdout}{stderr}"))
}

/// `/rotor break-glass` with [`REASON`] by alice, the requester.
fn break_glass(s: &Setup, b: Backend, code: i32) -> (Value, String) {
    let event = comment_event(s, "created", &glass_body(REASON), "alice", "alice");
    json_of(apply_comment(s, b, &event), code)
}

/// The ref's current version, as its backend says.
fn current(s: &Setup, b: Backend) -> String {
    match b {
        Backend::Vault => block_on(s.bao.custom(&s.name))["current_version"].clone(),
        Backend::Aws => block_on(async {
            let d = crate::services::sm_client()
                .await
                .describe_secret()
                .secret_id(&s.name)
                .send()
                .await
                .expect("describe");
            d.version_ids_to_stages()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .find(|(_, st)| st.iter().any(|x| x == "AWSCURRENT"))
                .map(|(v, _)| v)
                .expect("current")
        }),
    }
}

/// Nothing changed: the pointer where it was, no artifact commit on the branch, no comment
/// mentioning the team.
fn nothing_changed(s: &Setup, before: &str) {
    assert_eq!(current(s, Backend::Vault), before, "the pointer stays");
    assert_eq!(
        git(&s.w.origin(), &["rev-parse", "refs/heads/rotate"]),
        s.w.head,
        "no artifact commit"
    );
    assert_eq!(
        git(&s.w.origin(), &["rev-parse", "refs/heads/main"]),
        s.w.main_sha,
        "main untouched"
    );
    assert!(notifications(s).is_empty(), "no team told");
}

fn comments(s: &Setup) -> Vec<String> {
    sandbox_state(&s.url)["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .map(|c| c["body"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn notifications(s: &Setup) -> Vec<String> {
    comments(s)
        .into_iter()
        .filter(|c| c.starts_with("<!-- rotor:break-glass "))
        .collect()
}

fn sticky(s: &Setup) -> String {
    comments(s)
        .into_iter()
        .find(|c| c.contains("<!-- rotor:comment -->"))
        .expect("the sticky comment")
}

/// The first line of `text` that is not an HTML comment.
fn headline(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with("<!--"))
        .unwrap_or_default()
        .to_owned()
}

fn meta(artifact: &str) -> Value {
    let line = artifact
        .lines()
        .rfind(|l| l.starts_with("<!-- rotor:artifact "))
        .expect("the machine-readable block");
    let inner = line
        .trim_start_matches("<!-- rotor:artifact ")
        .trim_end_matches("-->")
        .trim();
    serde_json::from_str(inner).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn artifact_path(s: &Setup) -> String {
    format!("docs/security/rotations/{}.md", s.id)
}

fn artifact_on_main(s: &Setup) -> String {
    git(
        &s.w.origin(),
        &["show", &format!("main:{}", artifact_path(s))],
    )
}

/// `rotor countersign` dispatched from `git_ref` by `actor` (`GITHUB_ACTOR` too unless
/// `actor_env` names another), in that ref's workspace.
fn countersign(s: &Setup, b: Backend, git_ref: &str, actor: &str, triggering: &str) -> Rotor {
    let ws = dispatch_workspace(s, git_ref, crate::checkout::Inputs::default());
    sync(s);
    let event = dispatch_event(s, git_ref, "checked the rotation with the incident lead");
    let cmd = rotor()
        .current_dir(&ws)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &s.url)
        .env("GITHUB_EVENT_NAME", "workflow_dispatch")
        .env("GITHUB_EVENT_PATH", &event)
        .env("GITHUB_REF", git_ref)
        .env("GITHUB_ACTOR", actor)
        .env("GITHUB_TRIGGERING_ACTOR", triggering)
        .env("GITHUB_RUN_ID", "4444")
        .env("GITHUB_STEP_SUMMARY", s.w.dir.path().join("summary.md"))
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args([
            "countersign",
            "--rotation-id",
            &s.id,
            "--reason",
            "checked the rotation with the incident lead",
            "--format",
            "json",
        ]);
    with_backend(cmd, b)
}

/// A workspace of main's tip, as a scheduled run checks it out.
fn main_workspace(s: &Setup) -> PathBuf {
    crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "schedule",
        0,
        crate::checkout::Inputs::default(),
    )
}

/// `rotor verify --offline --format json` on main's tip: exit code and report.
fn verify(s: &Setup) -> (Option<i32>, Value) {
    let ws = main_workspace(s);
    let (code, stdout, stderr) = rotor()
        .current_dir(&ws)
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .args(["verify", "--offline", "--format", "json"])
        .run_unchecked();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (code, report)
}

fn finding_kinds(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["kind"].as_str().expect("kind").to_owned())
        .collect()
}

/// An offline command on main's tip, which exits `code`.
fn offline(s: &Setup, args: &[&str], code: i32) -> Value {
    let ws = main_workspace(s);
    let (got, stdout, stderr) = rotor()
        .current_dir(&ws)
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .args(args)
        .run_unchecked();
    assert_eq!(got, Some(code), "{args:?}: {stdout}\n{stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}"))
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// `rotor evidence` of today, which exits 1 while the record has a finding.
fn evidence(s: &Setup, code: i32) -> Value {
    offline(
        s,
        &["evidence", "--since", &today(), "--format", "json"],
        code,
    )
}

/// The core path on one backend: break the glass, tell the team once, record it loudly; merge;
/// verify says the approval is owed, evidence and report list it; another admin countersigns
/// and verify is clean.
fn rotates_alone_tells_the_team_once_and_countersign_settles_it(b: Backend) {
    let s = match b {
        Backend::Vault => world(allowed),
        Backend::Aws => aws_world(),
    };
    let before = current(&s, b);
    let (report, printed) = break_glass(&s, b, 0);
    assert_eq!(report["result"], "success", "{report:#}\n{printed}");
    assert_ne!(current(&s, b), before, "rotated");
    let approval = &report["approval"];
    let glass = &approval["break_glass"];
    assert_eq!(
        approval,
        &json!({"approved": true, "approvers": [], "unmet": [], "break_glass": {
            "by": "alice", "reason": REASON, "at": glass["at"].clone()
        }}),
        "{report:#}"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(glass["at"].as_str().expect("at")).is_ok(),
        "{glass}"
    );

    // The record, loud from its first line.
    let artifact = artifact_on_branch(&s);
    assert_eq!(
        artifact.lines().next(),
        Some(format!("# Rotation {} (break-glass)", s.id).as_str()),
        "{artifact}"
    );
    let first_reason_line = REASON.lines().next().expect("line");
    assert!(
        artifact
            .lines()
            .any(|l| l.starts_with("- break-glass by alice: ")
                && l.contains(first_reason_line)
                && l.ends_with("— countersignature owed")),
        "{artifact}"
    );
    assert!(
        artifact
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("<!-- rotor:artifact ")),
        "the block is the last line: {artifact}"
    );
    let m = meta(&artifact);
    assert_eq!(m["break_glass"]["by"], "alice", "{m:#}");
    assert_eq!(m["break_glass"]["reason"], REASON);
    assert_eq!(m["break_glass"]["at"], glass["at"]);
    assert_eq!(m["break_glass"]["environment"], "staging");
    assert!(m["countersigned"].is_null(), "{m:#}");

    // The sticky comment and the job summary say so from their first line.
    assert!(
        headline(&sticky(&s)).contains("(break-glass)"),
        "{}",
        sticky(&s)
    );
    let summary = fs::read_to_string(s.w.dir.path().join("summary.md")).expect("summary");
    assert!(headline(&summary).contains("(break-glass)"), "{summary}");

    // One new comment tells the team: who, what, why.
    let told = notifications(&s);
    assert_eq!(told.len(), 1, "{told:#?}");
    let mut lines = told[0].lines();
    assert_eq!(
        lines.next(),
        Some(format!("<!-- rotor:break-glass {} -->", s.id).as_str())
    );
    let second = lines.next().expect("the mention");
    assert!(second.starts_with("@my-org/security "), "{}", told[0]);
    assert!(told[0].contains("alice"), "{}", told[0]);
    assert!(told[0].contains(first_reason_line), "{}", told[0]);

    // The same event again: nothing to do, and the team is not told twice.
    let n = comments(&s).len();
    let event = comment_event(&s, "created", &glass_body(REASON), "alice", "alice");
    let (again, _) = json_of(
        apply_comment(&s, b, &event).env("GITHUB_RUN_ATTEMPT", "2"),
        0,
    );
    assert_eq!(again["result"], "noop", "{again:#}");
    assert_eq!(notifications(&s).len(), 1);
    assert_eq!(comments(&s).len(), n);

    // Merged: verify says the approval is owed, not overdue.
    merge(&s);
    let (code, v) = verify(&s);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(finding_kinds(&v), ["approval_owed"], "{v:#}");
    let owed = &v["findings"][0];
    assert_eq!(owed["ref"], Value::Null, "{owed:#}");
    assert_eq!(owed["overdue"], false, "{owed:#}");
    assert!(owed["commit"].is_string(), "{owed:#}");
    assert_eq!(owed["artifact"], artifact_path(&s).as_str());

    let e = evidence(&s, 1);
    let rows = e["break_glass"].as_array().expect("break_glass");
    assert_eq!(rows.len(), 1, "{e:#}");
    assert_eq!(rows[0]["rotation_id"], s.id.as_str());
    assert_eq!(rows[0]["by"], "alice");
    assert_eq!(rows[0]["owed"], true);
    assert_eq!(e["totals"]["break_glass"], 1, "{e:#}");
    assert_eq!(e["totals"]["approvals_owed"], 1, "{e:#}");
    let r = offline(&s, &["report", "--format", "json"], 0);
    let rows = r["break_glass"].as_array().expect("break_glass");
    assert_eq!(rows.len(), 1, "{r:#}");
    assert_eq!(rows[0]["rotation_id"], s.id.as_str());
    assert_eq!(rows[0]["owed"], true);

    // bob, another internal_admin, countersigns from main.
    let on_main = git(&s.w.origin(), &["rev-parse", "main"]);
    let (signed, printed) = json_of(countersign(&s, b, "refs/heads/main", "bob", "bob"), 0);
    assert_eq!(signed["result"], "countersigned", "{signed:#}\n{printed}");
    let origin = s.w.origin();
    assert_eq!(git(&origin, &["rev-parse", "main^"]), on_main);
    let after = artifact_on_main(&s);
    assert!(after.contains("\n## Countersigned\n"), "{after}");
    assert!(after.contains("- By: bob (internal_admin)"), "{after}");
    assert!(
        after.contains("- Countersigns: break-glass by alice"),
        "{after}"
    );
    let m = meta(&after);
    assert_eq!(m["countersigned"]["by"], "bob", "{m:#}");
    assert_eq!(m["countersigned"]["via"], "dispatch", "{m:#}");
    assert_eq!(m["break_glass"]["by"], "alice");

    // A second countersignature changes nothing.
    let tip = git(&origin, &["rev-parse", "main"]);
    let (twice, _) = json_of(countersign(&s, b, "refs/heads/main", "bob", "bob"), 0);
    assert_eq!(twice["result"], "noop", "{twice:#}");
    assert_eq!(git(&origin, &["rev-parse", "main"]), tip);

    // Verify is clean exactly now; evidence sees it countersigned.
    let (code, v) = verify(&s);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(finding_kinds(&v), Vec::<String>::new(), "{v:#}");
    let e = evidence(&s, 0);
    assert_eq!(e["break_glass"][0]["owed"], false, "{e:#}");
    assert_eq!(e["break_glass"][0]["countersigned"]["by"], "bob", "{e:#}");
    assert_eq!(e["totals"]["approvals_owed"], 0, "{e:#}");
    let r = offline(&s, &["report", "--format", "json"], 0);
    assert_eq!(r["break_glass"], json!([]), "{r:#}");
}

#[test]
fn vault_break_glass_rotates_alone_tells_the_team_once_and_countersign_settles_it() {
    rotates_alone_tells_the_team_once_and_countersign_settles_it(Backend::Vault);
}

#[test]
fn aws_break_glass_rotates_alone_tells_the_team_once_and_countersign_settles_it() {
    rotates_alone_tells_the_team_once_and_countersign_settles_it(Backend::Aws);
}

#[test]
fn break_glass_where_the_environment_does_not_allow_it_is_refused_with_3() {
    let s = world(not_allowed);
    let before = current(&s, Backend::Vault);
    let (report, _) = break_glass(&s, Backend::Vault, 3);
    assert_eq!(unmet(&report), ["break_glass_not_allowed"], "{report:#}");
    nothing_changed(&s, &before);
}

#[test]
fn break_glass_by_another_admin_than_the_requester_is_refused_with_3() {
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    let event = comment_event(&s, "created", &glass_body(REASON), "bob", "bob");
    let (report, _) = json_of(apply_comment(&s, Backend::Vault, &event), 3);
    assert_eq!(unmet(&report), ["break_glass_not_requester"], "{report:#}");
    nothing_changed(&s, &before);
}

#[test]
fn a_re_run_of_the_requesters_comment_by_another_user_is_refused_with_3() {
    // GitHub replays a re-run with the original payload (sender alice); only
    // GITHUB_TRIGGERING_ACTOR says who clicked "Re-run".
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    let event = comment_event(&s, "created", &glass_body(REASON), "alice", "alice");
    let cmd = apply_comment(&s, Backend::Vault, &event)
        .env("GITHUB_RUN_ATTEMPT", "2")
        .env("GITHUB_TRIGGERING_ACTOR", "mallory");
    let (report, _) = json_of(cmd, 3);
    assert_eq!(unmet(&report), ["break_glass_not_requester"], "{report:#}");
    let message = report["approval"]["unmet"][0]["message"]
        .as_str()
        .expect("message");
    assert!(message.contains("re-run by mallory"), "{message}");
    nothing_changed(&s, &before);
}

#[test]
fn the_glass_is_broken_when_the_comment_was_written_so_a_late_run_is_already_overdue() {
    // A run that starts two days after the comment (queued, re-run) keeps the comment's time:
    // the deadline runs from the break, not from the run.
    let s = world(allowed);
    let event = comment_event(&s, "created", &glass_body(REASON), "alice", "alice");
    let mut payload: Value =
        serde_json::from_str(&fs::read_to_string(&event).expect("event")).expect("json");
    let written = (chrono::Utc::now() - chrono::Duration::days(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    payload["comment"]["created_at"] = json!(written);
    fs::write(&event, payload.to_string()).expect("event");
    let (report, _) = json_of(apply_comment(&s, Backend::Vault, &event), 0);
    assert_eq!(
        report["approval"]["break_glass"]["at"],
        json!(written),
        "{report:#}"
    );
    crate::rollback::merge(&s);
    let (code, verified) = verify(&s);
    assert_eq!(code, Some(1), "{verified:#}");
    let owed: Vec<&Value> = verified["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == "approval_owed")
        .collect();
    assert_eq!(owed.len(), 1, "{verified:#}");
    assert_eq!(
        owed[0]["overdue"],
        json!(true),
        "24h have passed since the comment"
    );
}

#[test]
fn break_glass_without_a_reason_or_with_a_bidi_control_is_refused_with_2() {
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    for (body, code) in [
        ("/rotor break-glass".to_owned(), "reason_missing"),
        ("/rotor break-glass\n  \n".to_owned(), "reason_missing"),
        (glass_body("leak \u{202e}dekcah"), "reason_invalid"),
    ] {
        let event = comment_event(&s, "created", &body, "alice", "alice");
        let (report, _) = json_of(apply_comment(&s, Backend::Vault, &event), 2);
        assert_eq!(report["errors"][0]["code"], code, "{body:?}: {report:#}");
        nothing_changed(&s, &before);
    }
}

#[test]
fn an_edited_comment_or_one_sent_by_another_is_a_noop() {
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    for (action, author, sender) in [("edited", "alice", "alice"), ("created", "alice", "bob")] {
        let event = comment_event(&s, action, &glass_body(REASON), author, sender);
        let (report, _) = json_of(apply_comment(&s, Backend::Vault, &event), 0);
        assert_eq!(report["result"], "noop", "{action} {sender}: {report:#}");
        nothing_changed(&s, &before);
    }
}

#[test]
fn the_break_glass_flag_on_a_review_is_refused_with_2() {
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .args(["--break-glass"])
        .expects_exit(2)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("--break-glass"),
        "{stdout}\n{stderr}"
    );
    nothing_changed(&s, &before);
}

#[test]
fn an_admins_request_for_changes_still_blocks_break_glass() {
    let s = world(allowed);
    let before = current(&s, Backend::Vault);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["reviews"] =
        json!([{"user": "bob", "state": "CHANGES_REQUESTED", "commit_id": s.w.head}]);
    scenario(&s.url, &github);
    let (report, _) = break_glass(&s, Backend::Vault, 3);
    assert_eq!(unmet(&report), ["changes_requested"], "{report:#}");
    nothing_changed(&s, &before);
}

fn production(c: String) -> String {
    c.replace(
        "production: {requires_maintenance: true}",
        "production: {requires_maintenance: true, break_glass: {allowed: true, notify: my-org/security}}",
    )
}

#[test]
fn outside_a_required_window_break_glass_still_rotates_and_records_it() {
    let s = setup_configured(
        1,
        &[],
        |text| {
            text.replace("environment: staging", "environment: production")
                + "maintenance:\n  window: {start: 2020-01-01T00:00:00Z, end: 2020-01-01T02:00:00Z}\n"
        },
        production,
        None,
    );
    // With an approval, a normal apply is held to the window.
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (_, stderr) = apply_command(&s, &event, "pull_request_review")
        .expects_exit(4)
        .run();
    assert!(
        stderr.contains("outside the maintenance window"),
        "{stderr}"
    );
    assert_eq!(current(&s, Backend::Vault), "1");
    unreviewed(&s);
    let (report, printed) = break_glass(&s, Backend::Vault, 0);
    assert_eq!(report["result"], "success", "{report:#}\n{printed}");
    assert_eq!(current(&s, Backend::Vault), "2");
    let m = meta(&artifact_on_branch(&s));
    assert_eq!(m["break_glass"]["environment"], "production", "{m:#}");
    assert!(
        m["break_glass"]["outside_window"]
            .as_str()
            .is_some_and(|w| !w.is_empty()),
        "{m:#}"
    );
}

#[test]
fn countersign_is_refused_to_the_operator_a_non_admin_a_plain_rotation_before_merge_and_off_main() {
    let s = world(allowed);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    // Before the merge: the artifact is not on main.
    let main_before = git(&s.w.origin(), &["rev-parse", "main"]);
    let (_, stderr) = countersign(&s, Backend::Vault, "refs/heads/main", "bob", "bob")
        .expects_exit(4)
        .run();
    assert!(stderr.contains("no artifact"), "{stderr}");
    merge(&s);
    let main = git(&s.w.origin(), &["rev-parse", "main"]);
    assert_ne!(main, main_before);
    for (actor, triggering, code) in [
        ("alice", "alice", 3),
        ("alice", "bob", 3),
        ("mallory", "mallory", 3),
    ] {
        let (stdout, stderr) =
            countersign(&s, Backend::Vault, "refs/heads/main", actor, triggering)
                .expects_exit(code)
                .run();
        assert_eq!(
            git(&s.w.origin(), &["rev-parse", "main"]),
            main,
            "{actor}/{triggering}: nothing committed\n{stdout}\n{stderr}"
        );
    }
    // From another branch.
    git(
        &s.w.origin(),
        &["update-ref", "refs/heads/other", "refs/heads/main"],
    );
    countersign(&s, Backend::Vault, "refs/heads/other", "bob", "bob")
        .expects_exit(3)
        .run();
    assert_eq!(git(&s.w.origin(), &["rev-parse", "main"]), main);
    assert!(!artifact_on_main(&s).contains("## Countersigned"));
}

#[test]
fn countersign_of_a_rotation_that_was_not_break_glass_is_refused_with_2() {
    let s = world(allowed);
    // Approved by bob as usual.
    scenario(&s.url, &base_scenario(&s.w, &format!("{}.yaml", s.id)));
    assert_eq!(crate::apply::apply(&s, 0)["result"], "success");
    merge(&s);
    let main = git(&s.w.origin(), &["rev-parse", "main"]);
    let (stdout, stderr) = countersign(&s, Backend::Vault, "refs/heads/main", "bob", "bob")
        .expects_exit(2)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("not break-glass"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(git(&s.w.origin(), &["rev-parse", "main"]), main);
}

/// The stand-in's pull request #7 at the branch's current head, reviewed as `reviews` says.
fn head_reviewed_by(s: &Setup, reviewer: &str) -> String {
    let head = git(&s.w.origin(), &["rev-parse", "refs/heads/rotate"]);
    git(&s.w.origin(), &["update-ref", "refs/pull/7/head", &head]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["head_sha"] = json!(head);
    github["pulls"]["7"]["reviews"] =
        json!([{"user": reviewer, "state": "APPROVED", "commit_id": head}]);
    scenario(&s.url, &github);
    head
}

#[test]
fn an_approving_review_of_the_current_head_by_another_admin_countersigns_on_the_branch() {
    let s = world(allowed);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    let moved = git(&s.w.origin(), &["rev-parse", "refs/heads/rotate"]);
    assert_ne!(moved, s.w.head, "rotor's artifact commit moved the head");

    // The operator's own approval does not countersign.
    let head = head_reviewed_by(&s, "alice");
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(review_event(s.w.dir.path(), &head)).expect("e"))
            .expect("json");
    event["review"]["user"]["login"] = json!("alice");
    event["sender"]["login"] = json!("alice");
    let path = s.w.dir.path().join("review-alice.json");
    fs::write(&path, event.to_string()).expect("event");
    let (report, _) = json_of(apply_command(&s, &path, "pull_request_review"), 0);
    assert_eq!(report["result"], "noop", "{report:#}");
    assert_eq!(
        git(&s.w.origin(), &["rev-parse", "refs/heads/rotate"]),
        head,
        "nothing appended"
    );
    assert!(!artifact_on_branch(&s).contains("## Countersigned"));

    // bob's approval of the current head does.
    let head = head_reviewed_by(&s, "bob");
    let mut event: Value =
        serde_json::from_str(&fs::read_to_string(review_event(s.w.dir.path(), &head)).expect("e"))
            .expect("json");
    event["review"]["user"]["login"] = json!("bob");
    event["sender"]["login"] = json!("bob");
    let path = s.w.dir.path().join("review-bob.json");
    fs::write(&path, event.to_string()).expect("event");
    let (report, printed) = json_of(apply_command(&s, &path, "pull_request_review"), 0);
    assert_eq!(report["result"], "countersigned", "{report:#}\n{printed}");
    let artifact = artifact_on_branch(&s);
    assert!(artifact.contains("\n## Countersigned\n"), "{artifact}");
    assert!(
        artifact.contains("- By: bob (internal_admin)"),
        "{artifact}"
    );
    assert!(artifact.contains("- Via: approving review"), "{artifact}");
    let m = meta(&artifact);
    assert_eq!(m["countersigned"]["by"], "bob", "{m:#}");
    assert_eq!(m["countersigned"]["via"], "review", "{m:#}");
    // Merged, nothing is owed.
    merge(&s);
    let (code, v) = verify(&s);
    assert_eq!(code, Some(0), "{v:#}");
}

#[test]
fn a_review_of_a_head_edited_after_rotors_record_does_not_countersign_it() {
    // alice breaks the glass, then rewrites her record on the branch (another operator, no
    // missed window) and asks bob to approve: the countersignature would launder the edit.
    let s = world(allowed);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    let clone = s.w.dir.path().join("alice-edit");
    git(
        s.w.dir.path(),
        &[
            "clone",
            "-q",
            "-b",
            "rotate",
            "origin.git",
            clone.to_str().expect("utf-8"),
        ],
    );
    let path = artifact_path(&s);
    let text = fs::read_to_string(clone.join(&path)).expect("artifact");
    fs::write(clone.join(&path), text.replace("alice", "carol")).expect("write");
    git(&clone, &["add", "-A"]);
    git(
        &clone,
        &[
            "-c",
            "user.name=alice",
            "-c",
            "user.email=alice@example.com",
            "commit",
            "-q",
            "-m",
            "fix record",
        ],
    );
    git(&clone, &["push", "-q", "origin", "HEAD:refs/heads/rotate"]);
    let edited = head_reviewed_by(&s, "bob");
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(review_event(s.w.dir.path(), &edited)).expect("e"),
    )
    .expect("json");
    event["review"]["user"]["login"] = json!("bob");
    event["sender"]["login"] = json!("bob");
    let review = s.w.dir.path().join("review-bob-edited.json");
    fs::write(&review, event.to_string()).expect("event");
    let (report, printed) = json_of(apply_command(&s, &review, "pull_request_review"), 0);
    assert_eq!(report["result"], "noop", "{report:#}\n{printed}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not rotor's record")),
        "{report:#}"
    );
    assert_eq!(
        git(&s.w.origin(), &["rev-parse", "refs/heads/rotate"]),
        edited,
        "nothing appended to the edited record"
    );
}

#[test]
fn a_later_apply_comment_keeps_the_sticky_comment_loud() {
    let s = world(allowed);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    let event = comment_event(&s, "created", "/rotor apply", "bob", "bob");
    let (report, _) = json_of(apply_comment(&s, Backend::Vault, &event), 0);
    assert_eq!(report["result"], "noop", "{report:#}");
    let first = headline(&sticky(&s));
    assert!(first.contains("(break-glass)"), "{first}");
    assert!(first.contains("countersignature owed"), "{first}");
}

#[test]
fn an_owed_approval_becomes_overdue_once_countersign_within_has_passed() {
    let s = world(allowed_within_1s);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    merge(&s);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (code, v) = verify(&s);
    assert_eq!(code, Some(1), "{v:#}");
    assert_eq!(finding_kinds(&v), ["approval_owed"], "{v:#}");
    assert_eq!(v["findings"][0]["overdue"], true, "{v:#}");
    let e = evidence(&s, 1);
    assert_eq!(e["break_glass"][0]["overdue"], true, "{e:#}");
}

#[test]
fn a_countersigned_section_written_by_hand_is_tampered_and_the_approval_still_owed() {
    let s = world(allowed);
    assert_eq!(break_glass(&s, Backend::Vault, 0).0["result"], "success");
    merge(&s);
    // mallory writes a countersignature into the record with a plain commit on main.
    let clone = s.w.dir.path().join("mallory");
    git(
        s.w.dir.path(),
        &["clone", "-q", "origin.git", clone.to_str().expect("utf-8")],
    );
    let path = artifact_path(&s);
    let text = fs::read_to_string(clone.join(&path)).expect("artifact");
    let (body, block) = text
        .trim_end()
        .rsplit_once('\n')
        .expect("the block is the last line");
    let forged = format!(
        "{body}\n\n## Countersigned\n- By: bob (internal_admin)\n- Date: 2026-12-05T04:00:00Z\n- Countersigns: break-glass by alice\n- Reason: looks fine\n- Via: countersign workflow\n\n{block}\n"
    );
    fs::write(clone.join(&path), forged).expect("write");
    git(&clone, &["add", "-A"]);
    git(
        &clone,
        &[
            "-c",
            "user.name=mallory",
            "-c",
            "user.email=mallory@example.com",
            "commit",
            "-q",
            "--author",
            "mallory <mallory@example.com>",
            "-m",
            "countersign",
        ],
    );
    git(&clone, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let (code, v) = verify(&s);
    assert_eq!(code, Some(1), "{v:#}");
    let kinds = finding_kinds(&v);
    assert!(kinds.iter().any(|k| k == "tampered"), "{v:#}");
    assert!(kinds.iter().any(|k| k == "approval_owed"), "{v:#}");
}
