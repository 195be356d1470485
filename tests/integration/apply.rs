//! `rotor apply` end to end: real git remote, GitHub and application stand-ins, real OpenBao.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::{fixture, rotor};
use crate::plan::{
    World, base_scenario, config_with_app, git, request, sandbox_state, scenario, unmet, world,
};
use crate::services::{Bao, RotorToken, bao, block_on, unique};

/// GitHub's real `pull_request_review.submitted` payload, an approval of this head.
pub(crate) fn review_event(dir: &Path, head: &str) -> PathBuf {
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(fixture(
            "github/webhooks/pull_request_review.submitted.with-organization.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    event["pull_request"]["number"] = json!(7);
    event["pull_request"]["head"]["sha"] = json!(head);
    event["review"]["state"] = json!("approved");
    event["repository"]["full_name"] = json!("my-org/tenants");
    event["repository"]["default_branch"] = json!("main");
    let path = dir.join("review.json");
    fs::write(&path, event.to_string()).expect("event");
    path
}

pub(crate) struct Setup {
    pub(crate) bao: Bao,
    pub(crate) token: RotorToken,
    pub(crate) name: String,
    /// Every ref of the request (`name` is the first).
    pub(crate) names: Vec<String>,
    pub(crate) id: String,
    pub(crate) w: World,
    pub(crate) url: String,
    /// The values provisioned: none may appear in anything rotor prints, sends or writes.
    pub(crate) canaries: Vec<String>,
    _sandbox: rotor_sandbox::Running,
    /// A fault proxy in front of one service, when the test asked for one.
    pub(crate) proxy: Option<rotor_sandbox::Running>,
}

/// Which service a fault proxy stands in front of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Through {
    /// OpenBao (the config's backend address).
    Bao,
    /// The application (the config's `app.base_url`).
    App,
    /// GitHub (`GITHUB_API_URL`, set by `apply_command`).
    GitHub,
}

pub(crate) fn setup(bad_versions: &[&str]) -> Setup {
    setup_with(bad_versions, |text| text)
}

pub(crate) fn setup_with(bad_versions: &[&str], tweak: fn(String) -> String) -> Setup {
    setup_refs(1, bad_versions, tweak)
}

/// A rotation PR of `n` refs on OpenBao, approved, with both stand-ins ready.
pub(crate) fn setup_refs(n: usize, bad_versions: &[&str], tweak: fn(String) -> String) -> Setup {
    setup_through(n, bad_versions, tweak, None)
}

/// As [`setup_refs`], with a fault proxy in front of one service.
pub(crate) fn setup_through(
    n: usize,
    bad_versions: &[&str],
    tweak: fn(String) -> String,
    through: Option<(Through, rotor_sandbox::fault::Faults)>,
) -> Setup {
    setup_configured(n, bad_versions, tweak, |c| c, through)
}

/// As [`setup_through`], with the config on main changed by `config_tweak` first.
pub(crate) fn setup_configured(
    n: usize,
    bad_versions: &[&str],
    tweak: fn(String) -> String,
    config_tweak: fn(String) -> String,
    through: Option<(Through, rotor_sandbox::fault::Faults)>,
) -> Setup {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let reader = block_on(bao.rotor_token());
    let slug = unique("ap");
    let names: Vec<String> = (0..n)
        .map(|i| match i {
            0 => format!("tenant.{slug}.supabase.service_role"),
            i => format!("tenant.{slug}-{i}.supabase.service_role"),
        })
        .collect();
    let mut canaries = Vec::new();
    for name in &names {
        canaries.extend(block_on(bao.provision(name, 2, Some(1))));
    }
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let proxy = through.map(|(service, faults)| {
        let upstream = if service == Through::Bao {
            &bao.addr
        } else {
            &url
        };
        let p = rotor_sandbox::start_fault_proxy(
            "127.0.0.1:0".parse().expect("addr"),
            upstream,
            faults,
        )
        .expect("proxy");
        (service, p)
    });
    let via = |service: Through, direct: &str| match &proxy {
        Some((s, p)) if *s == service => p.url(),
        _ => direct.to_owned(),
    };
    let w = world(
        &config_tweak(config_with_app(
            &via(Through::Bao, &bao.addr),
            "{users: [alice, bob]}",
            &via(Through::App, &url),
        )),
        &[(file.as_str(), tweak(request(&id, &names)))],
        &[],
    );
    scenario(&url, &base_scenario(&w, &file));
    let refs: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                json!({"tenant": format!("{slug}-{i}"), "provider": "supabase", "site_ids": [format!("site-00{}", i + 1)]}),
            )
        })
        .collect();
    let resp = reqwest::blocking::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token",
            "refs": refs,
            "backend": {"type": "vault", "address": bao.addr, "token": reader.token, "mount": "secret", "pointer_key": "current_version"},
            "bad_versions": bad_versions
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    Setup {
        bao,
        token,
        name: names[0].clone(),
        names,
        id,
        w,
        url,
        canaries,
        _sandbox: sandbox,
        proxy: proxy.map(|(_, p)| p),
    }
}

pub(crate) fn apply(s: &Setup, code: i32) -> Value {
    apply_printed(s, code).0
}

/// Runs apply on the approval; returns the report and everything printed (stdout, stderr).
pub(crate) fn apply_printed(s: &Setup, code: i32) -> (Value, String) {
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(s, &event, "pull_request_review")
        .expects_exit(code)
        .run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, format!("{stdout}{stderr}"))
}

fn apply_with(s: &Setup, event: &Path, event_name: &str, args: &[&str], code: i32) -> Value {
    let (stdout, stderr) = apply_command(s, event, event_name)
        .args(args)
        .expects_exit(code)
        .run();
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"))
}

/// `rotor apply --format json` with everything the run needs; more arguments may follow.
pub(crate) fn apply_command(s: &Setup, event: &Path, event_name: &str) -> crate::common::Rotor {
    rotor()
        .current_dir(&s.w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &s.url)
        .env("GITHUB_EVENT_NAME", event_name)
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_STEP_SUMMARY", s.w.dir.path().join("summary.md"))
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["apply", "--format", "json"])
}

pub(crate) fn artifact_on_branch(s: &Setup) -> String {
    let origin = s.w.dir.path().join("origin.git");
    git(
        &origin,
        &[
            "show",
            &format!("rotate:docs/security/rotations/{}.md", s.id),
        ],
    )
}

#[test]
fn an_approved_rotation_is_applied_committed_reported_and_a_rerun_is_a_noop() {
    let s = setup(&[]);
    let (report, printed) = apply_printed(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(report["refs"][0]["from"], "1");
    assert_eq!(report["refs"][0]["to"], "2");
    assert_eq!(report["approval"]["approved"], true);
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("2")
    );
    let artifact = artifact_on_branch(&s);
    let head: Vec<&str> = artifact.lines().take(6).collect();
    assert_eq!(head[0], format!("# Rotation {}", s.id));
    assert_eq!(head[2], "- Operator: alice (internal_admin)");
    assert_eq!(head[3], format!("- Secret Ref: {}", s.name));
    assert_eq!(head[4], "- Provider: supabase");
    assert_eq!(head[5], "- Result: success");
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(
        report["commit_sha"].as_str(),
        Some(git(&origin, &["rev-parse", "rotate"]).as_str())
    );
    assert_eq!(
        git(&origin, &["rev-parse", "rotate^"]),
        s.w.head,
        "the PR head is the parent"
    );
    let comment = sandbox_state(&s.url)["comments"][0]["body"]
        .as_str()
        .expect("comment")
        .to_owned();
    assert!(comment.contains("### rotor apply: rotated"), "{comment}");
    let slug = s.id.trim_start_matches("2026-11-25-").to_owned();
    let summary = fs::read_to_string(s.w.dir.path().join("summary.md")).expect("summary");
    insta::with_settings!({filters => vec![
        (slug.as_str(), "[SLUG]"),
        (r"\b[0-9a-f]{40}\b", "[SHA]"),
        (r"commit [0-9a-f]{7}\b", "commit [SHORT]"),
        (r"127\.0\.0\.1:\d+", "[APP]"),
    ]}, {
        insta::assert_snapshot!("apply_comment", comment);
        insta::assert_snapshot!("apply_summary", summary);
    });

    // Running again finds the artifact with a final result: nothing to do, nothing changed.
    let (again, printed_again) = apply_printed(&s, 0);
    assert_eq!(again["result"], "noop", "{again:#}");
    crate::resume::assert_no_secret_anywhere(&s, &(printed + &printed_again));
    assert_eq!(
        git(&origin, &["rev-parse", "rotate"]),
        report["commit_sha"].as_str().expect("sha")
    );
}

#[test]
fn without_approval_nothing_changes_and_the_exit_is_3() {
    let s = setup(&[]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["reviews"] =
        json!([{"user": "mallory", "state": "APPROVED", "commit_id": s.w.head}]);
    scenario(&s.url, &github);
    let report = apply(&s, 3);
    assert_eq!(unmet(&report), ["insufficient_approvals"]);
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("1")
    );
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(
        git(&origin, &["rev-parse", "rotate"]),
        s.w.head,
        "nothing was committed"
    );
}

#[test]
fn a_failing_integration_rolls_back_records_it_and_exits_1() {
    let s = setup(&["2"]);
    let (report, printed) = apply_printed(&s, 1);
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    crate::resume::assert_no_secret_anywhere(&s, &printed);
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("1")
    );
    let artifact = artifact_on_branch(&s);
    assert!(artifact.contains("- Result: rolled_back"), "{artifact}");
}

fn unchanged(s: &Setup) {
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("1")
    );
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(
        git(&origin, &["rev-parse", "rotate"]),
        s.w.head,
        "nothing was committed"
    );
}

#[test]
fn dry_run_checks_everything_and_changes_nothing() {
    let s = setup(&[]);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let report = apply_with(&s, &event, "pull_request_review", &["--dry-run"], 0);
    assert_eq!(report["result"], "planned", "{report:#}");
    unchanged(&s);
    let marker = block_on(s.bao.custom(&s.name));
    assert!(
        !marker.contains_key("rotor_state"),
        "no lock was taken: {marker:?}"
    );
}

#[test]
fn outside_the_maintenance_window_is_refused_with_4() {
    let s = setup_with(&[], |text| {
        text.replace("environment: staging", "environment: production")
            + "maintenance:\n  window: {start: 2020-01-01T00:00:00Z, end: 2020-01-01T02:00:00Z}\n"
    });
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (_, stderr) = rotor()
        .current_dir(&s.w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "t")
        .env("GITHUB_API_URL", &s.url)
        .env("GITHUB_EVENT_NAME", "pull_request_review")
        .env("GITHUB_EVENT_PATH", &event)
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["apply"])
        .expects_exit(4)
        .run();
    assert!(
        stderr.contains("outside the maintenance window"),
        "{stderr}"
    );
    unchanged(&s);
}

#[test]
fn rotor_apply_commented_by_a_non_admin_is_refused_with_3() {
    let s = setup(&[]);
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(fixture(
            "github/webhooks/issue_comment.created.with-organization.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    event["issue"]["number"] = json!(7);
    event["issue"]["pull_request"] =
        json!({"url": "https://api.github.com/repos/my-org/tenants/pulls/7"});
    event["comment"]["body"] = json!("/rotor apply");
    event["comment"]["user"]["login"] = json!("mallory");
    event["sender"]["login"] = json!("mallory");
    event["repository"]["full_name"] = json!("my-org/tenants");
    event["repository"]["default_branch"] = json!("main");
    let path = s.w.dir.path().join("comment.json");
    fs::write(&path, event.to_string()).expect("event");
    // A comment's run checks out the default branch's tip.
    let (stdout, stderr) = apply_command(&s, &path, "issue_comment")
        .current_dir(&s.w.workspace("issue_comment"))
        .expects_exit(3)
        .run();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    assert_eq!(unmet(&report), ["trigger_not_admin"], "{report:#}");
    unchanged(&s);
}

/// A batch of `n` refs on OpenBao, all rotated by one apply; returns the report and the number of
/// GitHub calls it made.
fn batch(n: usize) -> (Value, usize, Vec<String>, Bao) {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let reader = block_on(bao.rotor_token());
    let slug = unique("b");
    let names: Vec<String> = (0..n)
        .map(|i| format!("tenant.{slug}{i}.supabase.service_role"))
        .collect();
    for name in &names {
        block_on(bao.provision(name, 2, Some(1)));
    }
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let w = world(
        &config_with_app(&bao.addr, "{users: [alice, bob]}", &url),
        &[(file.as_str(), request(&id, &names))],
        &[],
    );
    scenario(&url, &base_scenario(&w, &file));
    let refs: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), json!({"tenant": format!("{slug}{i}"), "provider": "supabase", "site_ids": [format!("site-{i}")]})))
        .collect();
    let resp = reqwest::blocking::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token", "refs": refs,
            "backend": {"type": "vault", "address": bao.addr, "token": reader.token, "mount": "secret", "pointer_key": "current_version"}
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let s = Setup {
        bao,
        token,
        name: names[0].clone(),
        names: names.clone(),
        id,
        w,
        url,
        canaries: Vec::new(),
        _sandbox: sandbox,
        proxy: None,
    };
    crate::plan::clear_requests(&s.url);
    let report = apply(&s, 0);
    let calls = crate::plan::sandbox_requests(&s.url).len();
    let audit_reads = reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("app log")
        .json::<Vec<String>>()
        .expect("json")
        .iter()
        .filter(|l| l.starts_with("GET /api/v1/audit/events") && !l.contains("cursor="))
        .count();
    // One reader of the audit log for the whole batch: the reads (each from the first page back
    // to two minutes before the run's first upsert) grow with the refs that recorded at
    // different moments (a read answers every ref that recorded before it began), never with
    // refs x events.
    assert!(
        audit_reads <= 10 + n / 3,
        "{audit_reads} audit log reads for {n} refs"
    );
    (report, calls, names, s.bao)
}

#[test]
fn a_batch_rotates_every_ref_with_as_many_github_calls_as_a_single_ref() {
    let (one, calls_one, _, _) = batch(1);
    assert_eq!(one["result"], "success", "{one:#}");
    let (many, calls_many, names, bao) = batch(200);
    assert_eq!(many["result"], "success", "{many:#}");
    let refs = many["refs"].as_array().expect("refs");
    assert_eq!(refs.len(), 200);
    assert!(
        refs.iter()
            .all(|r| r["result"] == "success" && r["to"] == "2")
    );
    for name in &names {
        assert_eq!(
            block_on(bao.custom(name))
                .get("current_version")
                .map(String::as_str),
            Some("2")
        );
    }
    assert_eq!(
        calls_one, calls_many,
        "GitHub calls for 1 ref and for 200 refs"
    );
}

#[test]
fn an_aws_secret_rotates_through_the_same_apply() {
    use crate::services::{aws_env, moto_url, provision_aws};
    let slug = unique("aw");
    let name = format!("tenant.{slug}.stripe.secret_key");
    let (current, pending, _) = block_on(provision_aws(&name));
    let bao = bao();
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let config = format!(
        "version: 1\nadmins: {{users: [alice, bob]}}\nenvironments: {{staging: {{}}}}\n\
         backends:\n  - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: us-east-1}}\n\
         app: {{base_url: \"{url}\", audit_timeout: 2s}}\nchecks: {{settle_timeout: 3s}}\n"
    );
    let w = world(
        &config,
        &[(file.as_str(), request(&id, std::slice::from_ref(&name)))],
        &[],
    );
    scenario(&url, &base_scenario(&w, &file));
    let resp = reqwest::blocking::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token",
            "refs": {name.clone(): {"tenant": slug, "provider": "stripe", "site_ids": ["site-001"]}},
            "backend": {"type": "aws", "endpoint": moto_url(), "region": "us-east-1", "stage": "AWSCURRENT"}
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let event = review_event(w.dir.path(), &w.head);
    let mut cmd = rotor()
        .current_dir(&w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "t")
        .env("GITHUB_API_URL", &url)
        .env("GITHUB_EVENT_NAME", "pull_request_review")
        .env("GITHUB_EVENT_PATH", &event)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["apply", "--format", "json"]);
    for (k, v) in aws_env() {
        cmd = cmd.env(k, v);
    }
    let (stdout, _) = cmd.run();
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(
        (
            report["refs"][0]["from"].as_str(),
            report["refs"][0]["to"].as_str()
        ),
        (Some(current.as_str()), Some(pending.as_str()))
    );
    drop(bao);
    let labels = block_on(async {
        crate::services::sm_client()
            .await
            .describe_secret()
            .secret_id(&name)
            .send()
            .await
            .expect("describe")
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default()
    });
    assert_eq!(
        labels[pending.as_str()],
        ["AWSCURRENT"],
        "the label moved and AWSPENDING is gone"
    );
    assert_eq!(labels[current.as_str()], ["AWSPREVIOUS"]);
}

#[test]
fn a_ref_locked_by_another_rotation_is_refused_with_4_and_left_alone() {
    let s = setup(&[]);
    let mut custom = block_on(s.bao.custom(&s.name));
    custom.insert("rotor_rotation_id".into(), "2026-11-24-other".into());
    custom.insert("rotor_state".into(), "pending".into());
    block_on(s.bao.set_custom(&s.name, json!(custom)));
    let (report, printed) = apply_printed(&s, 4);
    assert!(
        report["errors"]
            .to_string()
            .contains("locked by rotation 2026-11-24-other"),
        "{report:#}"
    );
    unchanged(&s);
    assert_eq!(
        block_on(s.bao.custom(&s.name)),
        custom,
        "the other lock stays"
    );
    crate::resume::assert_no_secret_anywhere(&s, &printed);
}

#[test]
fn a_pointer_moved_by_someone_else_mid_rotation_is_a_conflict_with_4() {
    let s = setup(&[]);
    // The run locks the ref and stops; meanwhile an operator moves the pointer to a third version.
    let event = review_event(s.w.dir.path(), &s.w.head);
    apply_command(&s, &event, "pull_request_review")
        .env("ROTOR_FAULT_AT", "locked")
        .expects_exit(86)
        .run();
    block_on(s.bao.provision(&s.name, 1, None));
    let mut custom = block_on(s.bao.custom(&s.name));
    custom.insert("current_version".into(), "3".into());
    block_on(s.bao.set_custom(&s.name, json!(custom)));
    let (report, _) = apply_printed(&s, 4);
    assert_eq!(report["refs"][0]["result"], "not_started", "{report:#}");
    assert_eq!(
        report["refs"][0]["error"],
        json!({
            "code": "pointer_moved",
            "message": "the pointer designates 3 rather than 1 or 2; another writer moved it"
        })
    );
    let after = block_on(s.bao.custom(&s.name));
    assert_eq!(after.get("current_version").map(String::as_str), Some("3"));
    assert!(
        !after.contains_key("rotor_state"),
        "rotor released its lock: {after:?}"
    );
    let origin = s.w.dir.path().join("origin.git");
    assert_eq!(
        git(&origin, &["rev-parse", "rotate"]),
        s.w.head,
        "nothing committed"
    );
}

#[test]
fn plan_on_the_artifact_commit_of_an_applied_rotation_is_a_noop_that_says_so() {
    // With `commit.target: pr-branch` the artifact's commit is the pull request's new head,
    // and `pull_request: synchronize` starts plan on it.
    let s = setup(&[]);
    apply(&s, 0);
    let origin = s.w.dir.path().join("origin.git");
    let head = git(&origin, &["rev-parse", "rotate"]);
    let mut github = crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["head_sha"] = json!(head);
    crate::plan::scenario(&s.url, &github);
    let before = sandbox_state(&s.url)["comments"][0]["body"].clone();
    let event = crate::plan::pr_event(s.w.dir.path(), &head);
    let (report, stderr) = crate::plan::run_plan(&s.w, &s.url, &s.token.token, &event, &[], 0);
    assert_eq!(report["result"], "noop", "{report:#}");
    assert!(
        report["message"]
            .as_str()
            .is_some_and(|m| m.contains("is already applied") && m.contains("nothing to plan")),
        "{report:#}"
    );
    assert_eq!(
        report["refs"][0]["result"], "success",
        "what the artifact records"
    );
    assert!(stderr.contains("is already applied"), "{stderr}");
    assert_eq!(
        sandbox_state(&s.url)["comments"][0]["body"],
        before,
        "the apply's comment stays"
    );
}

/// A rollback that lands but whose own checks then fail (an extra check no version passes):
/// the pointer is back, the marker says `rolled_back`, the record says `failed`. A re-run of
/// the same event takes that record for what it is, rotor's own: a `noop`, not a contradiction.
#[test]
fn a_rerun_after_a_rollback_whose_checks_failed_is_a_noop() {
    let s = setup_configured(
        1,
        &["2"],
        |t| t,
        |c| {
            c.replace(
                "checks: {settle_timeout: 3s}",
                "checks: {settle_timeout: 3s, extra: [{name: teapot, url: \"{app}/api/v1/sites/{site}/integrations/{provider}/health\", expect: {status: 418}}]}",
            )
        },
        None,
    );
    let report = apply(&s, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("rotor_state")
            .map(String::as_str),
        Some("rolled_back")
    );
    let again = apply(&s, 0);
    assert_eq!(again["result"], "noop", "{again:#}");
}
