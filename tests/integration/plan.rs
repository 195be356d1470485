//! `rotor plan` end to end: a real git remote and checkout, the GitHub stand-in, real OpenBao.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{fixture, rotor};
use crate::services::{bao, block_on, unique};

pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "alice")
        .env("GIT_AUTHOR_EMAIL", "alice@example.com")
        .env("GIT_COMMITTER_NAME", "alice")
        .env("GIT_COMMITTER_EMAIL", "alice@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A remote with `main` (the config) and pull request #7 from branch `rotate` (the request, in
/// two commits), its `refs/pull/7/head` and `refs/pull/7/merge` kept as GitHub keeps them, and a
/// workspace made by actions/checkout for the `pull_request` event: the merge commit, one
/// grafted commit deep.
pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) checkout: PathBuf,
    pub(crate) main_sha: String,
    pub(crate) first_head: String,
    pub(crate) head: String,
}

impl World {
    /// The bare remote.
    pub(crate) fn origin(&self) -> PathBuf {
        self.dir.path().join("origin.git")
    }

    /// A new workspace as actions/checkout makes it for `event_name` now, at its defaults.
    pub(crate) fn workspace(&self, event_name: &str) -> PathBuf {
        self.workspace_with(event_name, crate::checkout::Inputs::default())
    }

    /// A new workspace for `event_name` with these checkout inputs.
    pub(crate) fn workspace_with(
        &self,
        event_name: &str,
        inputs: crate::checkout::Inputs,
    ) -> PathBuf {
        crate::checkout::workspace(self.dir.path(), &self.origin(), event_name, 7, inputs)
    }
}

pub(crate) fn world(
    config: &str,
    request_files: &[(&str, String)],
    extra_files: &[(&str, &str)],
) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
    let origin = root.join("origin.git");
    crate::checkout::install_github_hook(&origin);
    git(root, &["init", "-q", "-b", "main", "work"]);
    let work = root.join("work");
    fs::create_dir_all(work.join(".github")).expect("mkdir");
    fs::write(work.join(".github/rotor.yml"), config).expect("config");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "config"]);
    git(&work, &["remote", "add", "origin", "../origin.git"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let main_sha = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["checkout", "-q", "-b", "rotate"]);
    fs::create_dir_all(work.join("rotations")).expect("mkdir");
    for (name, text) in request_files {
        fs::write(work.join("rotations").join(name), text).expect("request");
    }
    for (name, text) in extra_files {
        if let Some(parent) = Path::new(name).parent() {
            fs::create_dir_all(work.join(parent)).expect("mkdir");
        }
        fs::write(work.join(name), text).expect("file");
    }
    fs::write(work.join("rotations/.keep"), "").expect("keep");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "request"]);
    let first_head = git(&work, &["rev-parse", "HEAD"]);
    fs::write(work.join("rotations/.keep"), "2").expect("keep");
    git(&work, &["commit", "-q", "-am", "touch"]);
    let head = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/rotate"]);
    crate::checkout::open_pull(&origin, 7, "rotate", "main");
    assert_eq!(git(&origin, &["rev-parse", "refs/pull/7/head"]), head);
    let checkout = crate::checkout::workspace(
        root,
        &origin,
        "pull_request",
        7,
        crate::checkout::Inputs::default(),
    );
    World {
        checkout,
        dir,
        main_sha,
        first_head,
        head,
    }
}

pub(crate) fn config(bao_addr: &str, admins: &str) -> String {
    config_with_app(bao_addr, admins, "http://127.0.0.1:9")
}

pub(crate) fn config_with_app(bao_addr: &str, admins: &str, app: &str) -> String {
    format!(
        "version: 1\nadmins: {admins}\napprovals: {{required: 1}}\nenvironments: {{staging: {{}}, production: {{requires_maintenance: true}}}}\n\
         backends:\n  - {{match: \"tenant.*.*.*\", type: vault, address: \"{bao_addr}\", mount: secret}}\n\
         app: {{base_url: \"{app}\", audit_timeout: 2s}}\nchecks: {{settle_timeout: 3s}}\n"
    )
}

pub(crate) fn request(id: &str, refs: &[String]) -> String {
    let mut text =
        format!("version: 1\nid: {id}\nenvironment: staging\nreason: Quarterly rotation\nrefs:\n");
    for r in refs {
        text.push_str(&format!("  - ref: {r}\n"));
    }
    text
}

/// GitHub's real `pull_request.opened` payload, pointed at this repository and head.
pub(crate) fn pr_event(dir: &Path, head: &str) -> PathBuf {
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(fixture(
            "github/webhooks/pull_request.opened.with-organization.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    event["number"] = json!(7);
    event["pull_request"]["number"] = json!(7);
    event["pull_request"]["head"]["sha"] = json!(head);
    event["repository"]["full_name"] = json!("my-org/tenants");
    event["repository"]["default_branch"] = json!("main");
    let path = dir.join("event.json");
    fs::write(&path, event.to_string()).expect("event");
    path
}

/// Sets the stand-in's GitHub state.
pub(crate) fn scenario(sandbox: &str, value: &Value) {
    let resp = reqwest::blocking::Client::new()
        .put(format!("{sandbox}/_sandbox/github"))
        .json(value)
        .send()
        .expect("sandbox");
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().unwrap_or_default()
    );
}

pub(crate) fn sandbox_state(sandbox: &str) -> Value {
    reqwest::blocking::get(format!("{sandbox}/_sandbox/github"))
        .expect("sandbox")
        .json()
        .expect("json")
}

pub(crate) fn sandbox_requests(sandbox: &str) -> Vec<Value> {
    reqwest::blocking::get(format!("{sandbox}/_sandbox/requests"))
        .expect("sandbox")
        .json()
        .expect("json")
}

pub(crate) fn clear_requests(sandbox: &str) {
    let resp = reqwest::blocking::Client::new()
        .delete(format!("{sandbox}/_sandbox/requests"))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
}

pub(crate) fn run_plan(
    w: &World,
    sandbox: &str,
    vault_token: &str,
    event: &Path,
    extra: &[(&str, &str)],
    code: i32,
) -> (Value, String) {
    run_plan_in(w, &w.checkout, sandbox, vault_token, event, extra, code)
}

/// `rotor plan` in the workspace `ws`.
pub(crate) fn run_plan_in(
    w: &World,
    ws: &Path,
    sandbox: &str,
    vault_token: &str,
    event: &Path,
    extra: &[(&str, &str)],
    code: i32,
) -> (Value, String) {
    let summary = w.dir.path().join("summary.md");
    let outputs = w.dir.path().join("outputs.txt");
    let mut cmd = rotor()
        .current_dir(ws)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", sandbox)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", event)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_ACTIONS", "true")
        .env("VAULT_TOKEN", vault_token)
        .args(["plan", "--format", "json"])
        .expects_exit(code);
    for (k, v) in extra {
        cmd = cmd.env(k, v);
    }
    let (stdout, stderr) = cmd.run();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, stderr)
}

pub(crate) fn unmet(report: &Value) -> Vec<String> {
    report["approval"]["unmet"]
        .as_array()
        .expect("unmet")
        .iter()
        .map(|u| u["rule"].as_str().expect("rule").to_owned())
        .collect()
}

pub(crate) fn base_scenario(w: &World, request_file: &str) -> Value {
    json!({
        "owner": "my-org", "repo": "tenants", "default_branch": "main",
        "branches": {"main": w.main_sha},
        "pulls": {"7": {
            "author": "alice", "head_sha": w.head, "base": "main", "head_ref": "rotate",
            "files": [{"filename": format!("rotations/{request_file}"), "status": "added"}, {"filename": "rotations/.keep", "status": "added"}],
            "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": w.head}]
        }},
        "teams": [{"org": "my-org", "slug": "admins", "members": {"alice": "active", "bob": "active", "carol": "active", "dave": "pending"}}]
    })
}

#[test]
fn every_situation_gets_the_right_decision_through_the_stand_in() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let r = format!("tenant.{}.supabase.service_role", unique("pl"));
    block_on(bao.provision(&r, 2, Some(1)));
    let id = "2026-11-25-plan";
    let file = format!("{id}.yaml");
    let w = world(
        &config(&bao.addr, "{team: my-org/admins}"),
        &[(file.as_str(), request(id, std::slice::from_ref(&r)))],
        &[],
    );
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();

    type Tweak = Box<dyn Fn(&mut Value, &World)>;
    let cases: Vec<(&str, Tweak, Vec<&str>)> = vec![
        ("approved", Box::new(|_, _| {}), vec![]),
        (
            "approval on an older commit",
            Box::new(|s, w| s["pulls"]["7"]["reviews"][0]["commit_id"] = json!(w.first_head)),
            vec!["insufficient_approvals"],
        ),
        (
            "self-approval",
            Box::new(|s, _| s["pulls"]["7"]["reviews"][0]["user"] = json!("alice")),
            vec!["insufficient_approvals"],
        ),
        (
            "non-admin approver",
            Box::new(|s, _| s["pulls"]["7"]["reviews"][0]["user"] = json!("mallory")),
            vec!["insufficient_approvals"],
        ),
        (
            "pending membership",
            Box::new(|s, _| s["pulls"]["7"]["reviews"][0]["user"] = json!("dave")),
            vec!["insufficient_approvals"],
        ),
        (
            "latest review dismissed",
            Box::new(|s, w| {
                s["pulls"]["7"]["reviews"]
                    .as_array_mut()
                    .expect("reviews")
                    .push(json!({"user": "bob", "state": "DISMISSED", "commit_id": w.head}))
            }),
            vec!["insufficient_approvals"],
        ),
        (
            "a later COMMENTED review keeps the approval",
            Box::new(|s, w| {
                s["pulls"]["7"]["reviews"]
                    .as_array_mut()
                    .expect("reviews")
                    .push(json!({"user": "bob", "state": "COMMENTED", "commit_id": w.head}))
            }),
            vec![],
        ),
        (
            "an admin's CHANGES_REQUESTED after another's approval",
            Box::new(|s, w| {
                s["pulls"]["7"]["reviews"]
                    .as_array_mut()
                    .expect("reviews")
                    .push(
                        json!({"user": "carol", "state": "CHANGES_REQUESTED", "commit_id": w.head}),
                    )
            }),
            vec!["changes_requested"],
        ),
        (
            "a deleted reviewer (null)",
            Box::new(|s, _| s["pulls"]["7"]["reviews"][0]["user"] = Value::Null),
            vec!["insufficient_approvals"],
        ),
        (
            "reviews over several pages",
            Box::new(|s, w| {
                s["max_per_page"] = json!(2);
                let mut reviews: Vec<Value> = (0..5)
                    .map(|_| json!({"user": "mallory", "state": "COMMENTED", "commit_id": w.head}))
                    .collect();
                reviews.push(json!({"user": "bob", "state": "APPROVED", "commit_id": w.head}));
                s["pulls"]["7"]["reviews"] = json!(reviews);
            }),
            vec![],
        ),
        (
            "a fork",
            Box::new(|s, _| s["pulls"]["7"]["fork"] = json!(true)),
            vec!["fork"],
        ),
        (
            "a draft",
            Box::new(|s, _| s["pulls"]["7"]["draft"] = json!(true)),
            vec!["draft"],
        ),
        (
            "a closed PR",
            Box::new(|s, _| s["pulls"]["7"]["state"] = json!("closed")),
            vec!["pr_state"],
        ),
        (
            "a base that is not the default branch",
            Box::new(|s, w| {
                s["pulls"]["7"]["base"] = json!("release");
                s["branches"]["release"] = json!(w.main_sha);
            }),
            vec!["base_not_default"],
        ),
        (
            "files outside requests_dir",
            Box::new(|s, _| {
                s["pulls"]["7"]["files"]
                    .as_array_mut()
                    .expect("files")
                    .push(json!({"filename": ".github/workflows/x.yml", "status": "added"}))
            }),
            vec!["files_outside_requests_dir"],
        ),
        (
            "requester not admin",
            Box::new(|s, _| s["pulls"]["7"]["author"] = json!("mallory")),
            vec!["requester_not_admin"],
        ),
        (
            "a team the token cannot see",
            Box::new(|s, _| s["team_token"] = json!("the-org-token")),
            vec!["team_not_visible", "insufficient_approvals"],
        ),
        (
            "zero request files",
            Box::new(|s, _| {
                s["pulls"]["7"]["files"] =
                    json!([{"filename": "rotations/.keep", "status": "added"}])
            }),
            vec!["no_requests"],
        ),
    ];
    for (name, tweak, expected) in cases {
        let mut s = base_scenario(&w, &file);
        tweak(&mut s, &w);
        scenario(&url, &s);
        let event = pr_event(w.dir.path(), &w.head);
        let (report, _) = run_plan(&w, &url, &token.token, &event, &[], 0);
        assert_eq!(unmet(&report), expected, "{name}: {report:#}");
        assert_eq!(
            report["approval"]["approved"],
            json!(expected.is_empty()),
            "{name}"
        );
        assert_eq!(report["result"], "planned", "{name}");
        let expected_id = if name == "zero request files" {
            Value::Null
        } else {
            json!(id)
        };
        assert_eq!(report["rotation_id"], expected_id, "{name}");
    }

    // The team is visible to the org token: with ROTOR_ORG_TOKEN the membership is verified.
    let mut s = base_scenario(&w, &file);
    s["team_token"] = json!("the-org-token");
    scenario(&url, &s);
    let event = pr_event(w.dir.path(), &w.head);
    clear_requests(&url);
    let (report, _) = run_plan(
        &w,
        &url,
        &token.token,
        &event,
        &[("ROTOR_ORG_TOKEN", "the-org-token")],
        0,
    );
    assert_eq!(unmet(&report), Vec::<String>::new(), "{report:#}");
    let team_calls: Vec<Value> = sandbox_requests(&url)
        .into_iter()
        .filter(|r| r["path"].as_str().is_some_and(|p| p.starts_with("/orgs/")))
        .collect();
    assert!(!team_calls.is_empty());
    assert!(
        team_calls.iter().all(|r| r["token"] == "the-org-token"),
        "team membership uses ROTOR_ORG_TOKEN: {team_calls:?}"
    );

    // Head moved after checkout: the event's head is the older commit.
    scenario(&url, &base_scenario(&w, &file));
    let event = pr_event(w.dir.path(), &w.first_head);
    let (report, _) = run_plan(&w, &url, &token.token, &event, &[], 0);
    assert_eq!(unmet(&report), ["head_moved"], "{report:#}");
}

#[test]
fn one_sticky_comment_summary_outputs_and_what_apply_would_do() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let slug = unique("st");
    let refs: Vec<String> = (0..3)
        .map(|i| format!("tenant.{slug}{i}.supabase.service_role"))
        .collect();
    for r in &refs {
        block_on(bao.provision(r, 3, Some(2)));
    }
    let id = "2026-11-25-sticky";
    let file = format!("{id}.yaml");
    let w = world(
        &config(&bao.addr, "{users: [alice, bob]}"),
        &[(file.as_str(), request(id, &refs))],
        &[],
    );
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let mut s = base_scenario(&w, &file);
    // Someone quoting rotor's marker in their own comment does not capture rotor's updates.
    s["comments"] = json!([{"id": 1, "issue": 7, "user": "mallory", "user_type": "User", "body": "<!-- rotor:comment --> fake"}]);
    scenario(&url, &s);
    let event = pr_event(w.dir.path(), &w.head);
    let mut report = Value::Null;
    for _ in 0..3 {
        report = run_plan(&w, &url, &token.token, &event, &[], 0).0;
    }
    let summary = fs::read_to_string(w.dir.path().join("summary.md")).expect("summary");
    assert!(
        summary.contains("## rotor plan: approved, ready to apply"),
        "{summary}"
    );
    let outputs = fs::read_to_string(w.dir.path().join("outputs.txt")).expect("outputs");
    assert!(
        outputs.ends_with(&format!("rotation-id={id}\nresult=planned\nartifact-path=docs/security/rotations/{id}.md\ncommit-sha=\nrefs=3\n")),
        "{outputs}"
    );
    let state = sandbox_state(&url);
    let rotors: Vec<&Value> = state["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["user_type"] == "Bot")
        .collect();
    assert_eq!(
        rotors.len(),
        1,
        "exactly one rotor comment after three runs: {state:#}"
    );
    assert_eq!(rotors[0]["edits"], 2);
    assert_eq!(
        state["comments"][0]["body"], "<!-- rotor:comment --> fake",
        "the user's comment is untouched"
    );
    let body = rotors[0]["body"].as_str().expect("body");
    insta::with_settings!({filters => vec![(slug.as_str(), "[SLUG]")]}, {
        insta::assert_snapshot!("plan_comment", body);
    });
    assert!(
        body.starts_with("<!-- rotor:comment -->\n### rotor plan: approved, ready to apply"),
        "{body}"
    );
    assert!(
        body.contains(&format!("| {} | vault | 2 → 3 | planned |", refs[0])),
        "{body}"
    );
    assert_eq!(report["refs"][0]["from"], "2");
    assert_eq!(report["refs"][0]["to"], "3");
    assert_eq!(
        report["approval"],
        json!({"approved": true, "approvers": ["bob"], "unmet": []})
    );
}

#[test]
fn github_calls_do_not_grow_with_the_number_of_refs() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let mut counts = Vec::new();
    for n in [1usize, 40] {
        let slug = unique("n");
        let refs: Vec<String> = (0..n)
            .map(|i| format!("tenant.{slug}{i}.supabase.service_role"))
            .collect();
        for r in &refs {
            block_on(bao.provision(r, 2, Some(1)));
        }
        let id = format!("2026-11-25-calls-{n}");
        let file = format!("{id}.yaml");
        let w = world(
            &config(&bao.addr, "{team: my-org/admins}"),
            &[(file.as_str(), request(&id, &refs))],
            &[],
        );
        // A repository of its own on the shared stand-in: no comment from the last world.
        let mut github = base_scenario(&w, &file);
        github["comments"] = json!([]);
        scenario(&url, &github);
        clear_requests(&url);
        let event = pr_event(w.dir.path(), &w.head);
        let (report, _) = run_plan(&w, &url, &token.token, &event, &[], 0);
        assert_eq!(report["refs"].as_array().map(Vec::len), Some(n));
        counts.push(sandbox_requests(&url).len());
    }
    assert_eq!(
        counts[0], counts[1],
        "GitHub calls for 1 ref and for 40 refs: {counts:?}"
    );
}

#[test]
fn invalid_requests_are_annotated_on_the_right_lines_and_exit_2() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let id = "2026-11-25-bad";
    let file = format!("{id}.yaml");
    let text = "version: 1\nid: 2026-11-25-bad\nenvironment: staging\nreason: Quarterly\nrefs:\n  - ref: tenant.Acme.supabase.service_role\n";
    let w = world(
        &config(&bao.addr, "{users: [alice, bob]}"),
        &[(file.as_str(), text.to_owned())],
        &[],
    );
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    scenario(&url, &base_scenario(&w, &file));
    let event = pr_event(w.dir.path(), &w.head);
    let (report, stderr) = run_plan(&w, &url, &token.token, &event, &[], 2);
    assert!(
        stderr.contains(&format!(
            "::error file=rotations/{file},line=6,col=10,title=rotor%3A invalid_ref::invalid ref"
        )),
        "{stderr}"
    );
    assert_eq!(
        report["result"], "failed",
        "one of the contract's five results"
    );
    assert_eq!(report["errors"][0]["code"], "invalid_ref");
    assert_eq!(report["errors"][0]["line"], 6);
    let body = sandbox_state(&url)["comments"][0]["body"]
        .as_str()
        .expect("comment")
        .to_owned();
    assert!(
        body.contains("### rotor plan: the request is invalid"),
        "{body}"
    );
    assert!(
        body.contains(&format!("- rotations/{file}:6: invalid ref")),
        "{body}"
    );
}

#[test]
fn policy_comes_from_the_default_branch_never_from_the_head_or_the_working_tree() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let r = format!("tenant.{}.supabase.service_role", unique("tr"));
    block_on(bao.provision(&r, 2, Some(1)));
    let id = "2026-11-25-trust";
    let file = format!("{id}.yaml");
    // The PR head makes its author an admin; the default branch does not.
    let hostile = config(&bao.addr, "{users: [mallory, bob]}");
    let w = world(
        &config(&bao.addr, "{users: [alice, bob]}"),
        &[(file.as_str(), request(id, &[r]))],
        &[(".github/rotor.yml", hostile.as_str())],
    );
    // And the working tree holds something else again.
    fs::write(w.checkout.join(".github/rotor.yml"), "not: [valid").expect("write");
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let mut s = base_scenario(&w, &file);
    s["pulls"]["7"]["author"] = json!("mallory");
    s["pulls"]["7"]["files"]
        .as_array_mut()
        .expect("files")
        .push(json!({"filename": ".github/rotor.yml", "status": "modified"}));
    scenario(&url, &s);
    let event = pr_event(w.dir.path(), &w.head);
    let (report, _) = run_plan(&w, &url, &token.token, &event, &[], 0);
    assert_eq!(
        unmet(&report),
        ["requester_not_admin", "files_outside_requests_dir"],
        "{report:#}"
    );
}

#[test]
fn a_comment_post_whose_answer_is_lost_is_not_sent_twice() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let r = format!("tenant.{}.supabase.service_role", unique("lo"));
    block_on(bao.provision(&r, 2, Some(1)));
    let id = "2026-11-25-lost";
    let file = format!("{id}.yaml");
    let w = world(
        &config(&bao.addr, "{users: [alice, bob]}"),
        &[(file.as_str(), request(id, &[r]))],
        &[],
    );
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let mut s = base_scenario(&w, &file);
    // GitHub creates the comment but the answer is a 502.
    s["posts_lost"] = json!(1);
    scenario(&url, &s);
    let event = pr_event(w.dir.path(), &w.head);
    run_plan(&w, &url, &token.token, &event, &[], 0);
    let posts = sandbox_requests(&url)
        .into_iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"].as_str().is_some_and(|p| p.ends_with("/comments"))
        })
        .count();
    assert_eq!(
        posts, 1,
        "rotor looked for its comment instead of posting again"
    );
    let comments = sandbox_state(&url)["comments"].as_array().map(Vec::len);
    assert_eq!(comments, Some(1));
}

/// `plan` runs the same preconditions as `apply`: with the application's token it asks the
/// application about each ref; a window not yet open is news, a closed one is a failure.
#[test]
fn plan_checks_the_application_and_the_window_like_apply() {
    let bao = bao();
    let token = block_on(bao.rotor_token());
    let slug = unique("pw");
    let (known, unknown) = (
        format!("tenant.{slug}.supabase.service_role"),
        format!("tenant.{slug}x.supabase.service_role"),
    );
    for r in [&known, &unknown] {
        block_on(bao.provision(r, 2, Some(1)));
    }
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let put_app = || {
        let resp = reqwest::blocking::Client::new()
            .put(format!("{url}/_sandbox/app"))
            .json(&json!({"token": "app-token",
                "refs": {known.clone(): {"tenant": slug, "provider": "supabase", "site_ids": ["site-001"]}}}))
            .send()
            .expect("sandbox");
        assert_eq!(resp.status().as_u16(), 204);
    };
    let cases = [
        // (refs, maintenance, exit, what the report must say)
        (
            vec![known.clone(), unknown.clone()],
            "maintenance: {rollout_note: https://status.example.com/notes/1}\n",
            4,
            "the application does not know the ref",
        ),
        (
            vec![known.clone()],
            "maintenance:\n  window: {start: 2099-01-01T00:00:00Z, end: 2099-01-01T02:00:00Z}\n",
            0,
            "has not opened yet",
        ),
        (
            vec![known.clone()],
            "maintenance:\n  window: {start: 2020-01-01T00:00:00Z, end: 2020-01-01T02:00:00Z}\n",
            4,
            "it has closed",
        ),
    ];
    for (refs, maintenance, code, says) in cases {
        let id = format!("2026-11-25-{}", unique("w"));
        let file = format!("{id}.yaml");
        let text = request(&id, &refs).replace("environment: staging", "environment: production")
            + maintenance;
        let w = world(
            &config_with_app(&bao.addr, "{users: [alice, bob]}", &url),
            &[(file.as_str(), text)],
            &[],
        );
        scenario(&url, &base_scenario(&w, &file));
        put_app();
        let event = pr_event(w.dir.path(), &w.head);
        let (report, stderr) = run_plan(
            &w,
            &url,
            &token.token,
            &event,
            &[("ROTOR_APP_TOKEN", "app-token")],
            code,
        );
        let comment = sandbox_state(&url)["comments"][0]["body"].to_string();
        assert!(
            report.to_string().contains(says) || comment.contains(says),
            "{says}: {report:#}\n{comment}\n{stderr}"
        );
        assert_eq!(report["result"], "planned", "{report:#}");
        assert!(
            !stderr.contains("the application was not checked"),
            "{stderr}"
        );
    }
}
