//! The signed record (`commit.via: api`): rotor's record committed by the GitHub stand-in's
//! `createCommitOnBranch` (authored as the token's identity, committed by GitHub, signed with a
//! test key), on both commit targets, for apply and rollback; the branch moved under the
//! commit; a token that is not `commit.author`; a ruleset requiring signed commits; and
//! `verify --offline` holding every commit in rotor's name to the signature.

use std::fs;

use serde_json::{Value, json};

use crate::common::fixture;
use crate::plan::git;
use crate::services::block_on;
use crate::verify::{Record, Style, kinds};

/// The GitHub App rotor runs as in these tests.
const APP: &str = "rotor-app[bot]";

/// Where the tests keep the public key the stand-in signs with.
const KEY_PATH: &str = ".github/rotor-signing.asc";

/// `commit.author` for the App: GitHub's no-reply address of its bot account.
fn app_email() -> String {
    format!(
        "{}+{APP}@users.noreply.github.com",
        rotor_sandbox::github::user_id(APP)
    )
}

fn via_api(config: String) -> String {
    format!(
        "{config}commit: {{via: api, author: \"{APP} <{}>\"}}\nrecord: {{signing_keys: [{KEY_PATH}]}}\n",
        app_email()
    )
}

fn via_api_to_main(config: String) -> String {
    format!(
        "{config}commit: {{target: default-branch, via: api, author: \"{APP} <{}>\"}}\nrecord: {{signing_keys: [{KEY_PATH}]}}\n",
        app_email()
    )
}

fn key(name: &str) -> String {
    fs::read_to_string(fixture(&format!("signing/{name}"))).expect("key fixture")
}

/// A record whose config says `via: api`, the stand-in committing to its origin as the App,
/// the test key's public half on main.
fn api_record(config: fn(String) -> String) -> Record {
    let mut r = Record::with(1, config);
    r.github("git_dir", json!(r.origin()));
    r.github("identities", json!({"ghs_repo_token": APP}));
    r.push(
        "main",
        &[(KEY_PATH, Some(&key("current.asc")))],
        "alice",
        "Add rotor's signing key",
    );
    r
}

/// `%an <%ae> | %cn <%ce>` of `rev` in origin, and whether it carries a `gpgsig`.
fn who(r: &Record, rev: &str) -> (String, bool) {
    let line = git(
        &r.origin(),
        &["log", "-1", "--format=%an <%ae> | %cn <%ce>", rev],
    );
    let object = git(&r.origin(), &["cat-file", "commit", rev]);
    (line, object.lines().any(|l| l.starts_with("gpgsig ")))
}

fn github_signed(r: &Record, rev: &str) {
    let (line, signed) = who(r, rev);
    assert_eq!(
        line,
        format!("{APP} <{}> | GitHub <noreply@github.com>", app_email()),
        "authored as the token, committed by GitHub"
    );
    assert!(signed, "GitHub signs the commits it makes");
}

/// A ruleset requiring signed commits, as a `pre-receive` hook (GitHub's words, GH013).
fn require_signed_commits(r: &Record) {
    let hook = r.origin().join("hooks/pre-receive");
    fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case \"$new\" in 0000000000000000000000000000000000000000) continue;; esac\n  for c in $(git rev-list \"$old..$new\"); do\n    if ! git cat-file commit \"$c\" | grep -q '^gpgsig '; then\n      echo \"GH013: Repository rule violations found for $ref. Commits must have verified signatures. $c\" >&2\n      exit 1\n    fi\n  done\ndone\n",
    )
    .expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// The findings of a verify report as (kind, reason).
fn reasons(report: &Value) -> Vec<(String, Option<String>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap_or_default().to_owned(),
                f["reason"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// Commits `files` on `branch` through the stand-in's `createCommitOnBranch`, as the App's
/// token can: GitHub's commit, signed with whatever key the stand-in holds now.
fn api_commit(r: &Record, branch: &str, files: &[(&str, &str)]) -> String {
    let head = git(&r.origin(), &["rev-parse", branch]);
    let additions: Vec<Value> = files
        .iter()
        .map(|(p, c)| {
            use base64::Engine as _;
            json!({"path": p, "contents": base64::engine::general_purpose::STANDARD.encode(c)})
        })
        .collect();
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", r.s.url))
        .bearer_auth("ghs_repo_token")
        .json(&json!({
            "query": "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid } } }",
            "variables": {"input": {
                "branch": {"repositoryNameWithOwner": "my-org/tenants", "branchName": branch},
                "expectedHeadOid": head,
                "message": {"headline": "Fix the record"},
                "fileChanges": {"additions": additions}
            }}
        }))
        .send()
        .expect("stand-in")
        .json()
        .expect("json");
    answer["data"]["createCommitOnBranch"]["commit"]["oid"]
        .as_str()
        .unwrap_or_else(|| panic!("a commit: {answer:#}"))
        .to_owned()
}

#[test]
fn on_the_pull_requests_branch_github_makes_and_signs_the_record_and_verify_offline_is_clean() {
    let mut r = api_record(via_api);
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    let sha = report["commit_sha"].as_str().expect("commit").to_owned();
    assert_eq!(git(&r.origin(), &["rev-parse", "rotate"]), sha);
    github_signed(&r, &sha);
    assert_eq!(
        git(&r.origin(), &["rev-parse", &format!("{sha}^")]),
        r.s.w.head,
        "the record sits on the approved head"
    );
    // A re-run finds the record and changes nothing.
    assert_eq!(r.apply(7, 0)["result"], "noop");
    assert_eq!(git(&r.origin(), &["rev-parse", "rotate"]), sha);
    r.merge(7, Style::Merge);
    // A second rotation of the same ref, squash-merged: GitHub's copy on main is judged by its
    // content against rotor's signed commit on the pull request's head.
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Squash);
    // A third, rebase-merged: GitHub's copy on main is not signed (rebase merges never are),
    // and is judged by its content against rotor's signed commit on the pull request's head.
    r.provision(0);
    r.open(9, &[0], None);
    assert_eq!(r.apply(9, 0)["result"], "success");
    r.merge(9, Style::Rebase);
    // Rolled back by dispatch: GitHub's signed commit on main appends the rollback.
    let rolled = r.rollback(9, 0);
    assert_eq!(rolled["result"], "rolled_back", "{rolled:#}");
    github_signed(&r, "main");
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
    assert_eq!(report["artifacts"], 3);
}

#[test]
fn on_the_default_branch_a_stale_head_is_retried_and_a_rollback_is_signed_too() {
    let mut r = api_record(via_api_to_main);
    // Another writer lands on main between rotor's read and its commit.
    r.github("commit_races", json!(1));
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    let sha = report["commit_sha"].as_str().expect("commit").to_owned();
    assert_eq!(r.main(), sha);
    github_signed(&r, &sha);
    assert_eq!(
        git(
            &r.origin(),
            &["log", "-1", "--format=%s", &format!("{sha}^")]
        ),
        "another writer's commit",
        "rotor read the moved branch and committed on its new tip"
    );
    r.github("commit_races", json!(0));
    let rolled = r.rollback(7, 0);
    assert_eq!(rolled["result"], "rolled_back", "{rolled:#}");
    let tip = r.main();
    assert_ne!(tip, sha);
    github_signed(&r, &tip);
    assert!(r.show("main", &r.artifact(7)).contains("## Rollback"));
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
}

#[test]
fn on_the_pull_requests_branch_a_branch_moved_before_the_commit_is_refused_then_recorded() {
    let mut r = api_record(via_api);
    r.github("commit_races", json!(1));
    let report = r.apply(7, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(report["errors"][0]["code"], "head_moved", "{report:#}");
    let moved = git(&r.origin(), &["rev-parse", "rotate"]);
    assert_ne!(moved, r.s.w.head);
    assert_eq!(
        git(&r.origin(), &["log", "-1", "--format=%s", &moved]),
        "another writer's commit",
        "nothing of rotor's on commits nobody approved"
    );
    let custom = block_on(r.s.bao.custom(&r.s.names[0]));
    assert_eq!(custom["current_version"], "2", "the rotation itself stands");
    // The branch is put back on the approved head: the re-run commits the record, once.
    git(
        &r.origin(),
        &["update-ref", "refs/heads/rotate", &r.s.w.head],
    );
    crate::checkout::refresh(&r.origin());
    r.github("commit_races", json!(0));
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    github_signed(&r, "rotate");
    assert_eq!(
        git(&r.origin(), &["rev-parse", "rotate^"]),
        r.s.w.head,
        "on the approved head"
    );
}

#[test]
fn a_token_that_is_not_commit_author_stops_before_any_change() {
    fn api_as_rotor(config: String) -> String {
        format!(
            "{config}commit: {{via: api, author: \"rotor <rotor@users.noreply.github.com>\"}}\n"
        )
    }
    let mut r = Record::with(1, api_as_rotor);
    r.github("git_dir", json!(r.origin()));
    let head = r.s.w.head.clone();
    let (report, stderr) = crate::attacks::apply_review(&r.s, 7, &head, 2);
    let text = format!("{report}\n{stderr}");
    assert!(
        text.contains("github-actions") && text.contains("41898282"),
        "names the token's identity: {text}"
    );
    let custom = block_on(r.s.bao.custom(&r.s.names[0]));
    assert_eq!(custom["current_version"], "1", "nothing moved");
    assert_eq!(
        git(&r.origin(), &["rev-parse", "rotate"]),
        head,
        "nothing committed"
    );
}

#[test]
fn a_ruleset_requiring_signed_commits_refuses_the_git_path_and_passes_the_api_path() {
    // rotor's own push (`via: git`) is unsigned: GitHub's rule refuses it, rotor says so.
    let mut pushed = Record::new(1);
    require_signed_commits(&pushed);
    let report = pushed.apply(7, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(report["errors"][0]["code"], "push_refused", "{report:#}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Commits must have verified signatures")),
        "{report:#}"
    );
    // GitHub's own commit (`via: api`) is signed: the same rule lets it through.
    let mut signed = api_record(via_api);
    require_signed_commits(&signed);
    let report = signed.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    github_signed(&signed, "rotate");
}

#[test]
fn verify_offline_finds_every_commit_in_rotors_name_that_github_did_not_sign_with_a_valid_key() {
    let mut r = api_record(via_api_to_main);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let text = r.show("main", &path);
    let clean = r.verify(&["--offline"]);
    assert_eq!(clean.0, Some(0), "{:#}", clean.1);

    // Each forger adds a line above the machine-readable block.
    let edited = |n: &str| {
        text.replacen(
            "<!-- rotor:artifact",
            &format!("{n}\n\n<!-- rotor:artifact"),
            1,
        )
    };
    // 1. A commit in rotor's name, pushed with git: no signature.
    let unsigned = edited("Checked by hand.");
    let c1 = r.push_as(
        "main",
        &[(path.as_str(), Some(unsigned.as_str()))],
        (APP, &app_email()),
        "rotor: rotation fixed",
    );
    // 2. GitHub's commit in rotor's name, signed by a key that is not a signing key.
    r.github("signing_key", json!(key("other.secret.asc")));
    let c2 = api_commit(&r, "main", &[(&path, &edited("Checked twice."))]);
    // 3. Signed by a listed key after it expired (a key retired, or leaked once expired).
    let listed = format!("{}{}", key("current.asc"), key("expired.asc"));
    r.github("signing_key", json!(key("current.secret.asc")));
    r.push(
        "main",
        &[(KEY_PATH, Some(&listed))],
        "alice",
        "Keep the old key",
    );
    r.github("signing_key", json!(key("expired.secret.asc")));
    let c3 = api_commit(&r, "main", &[(&path, &edited("Checked three times."))]);
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let mut found: Vec<(String, Option<String>)> = reasons(&report);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("tampered".to_owned(), Some("bad_signature".to_owned())),
            ("tampered".to_owned(), Some("bad_signature".to_owned())),
            ("tampered".to_owned(), Some("unsigned".to_owned())),
        ],
        "{report:#}"
    );
    let mut commits: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["commit"].as_str())
        .collect();
    commits.sort_unstable();
    let mut forged = vec![c1.as_str(), c2.as_str(), c3.as_str()];
    forged.sort_unstable();
    assert_eq!(commits, forged, "each forged commit named");
    let messages = report["findings"].to_string();
    assert!(messages.contains("not signed"), "{messages}");
    assert!(
        messages.contains("was not made by any of the keys"),
        "{messages}"
    );
    assert!(messages.contains("stopped being valid"), "{messages}");
    assert!(
        stderr.contains("::error file=") && stderr.contains(&c1[..7]),
        "each finding is an annotation naming its commit: {stderr}"
    );
}

#[test]
fn a_validly_signed_lone_commit_in_rotors_name_on_a_branch_without_the_request_is_not_rotors() {
    let mut r = api_record(via_api);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    // A docs branch; GitHub (the App's token) writes a fabricated record on it: signed by the
    // right key, in rotor's name, on a pull request that never held the request.
    let text = r.show("main", &r.artifact(7));
    let forged_id = format!("{}-forged", r.id(7));
    let forged = text
        .replace(&r.id(7), &forged_id)
        .replace("\"pull_request\":7", "\"pull_request\":9");
    r.open_branch(9, "docs");
    let path = format!("docs/security/rotations/{forged_id}.md");
    let sha = api_commit(&r, "docs", &[(&path, &forged)]);
    github_signed(&r, &sha);
    crate::checkout::refresh(&r.origin());
    r.merge_branch(9, "docs");
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let found = kinds(&report);
    assert!(
        found
            .iter()
            .any(|(kind, artifact, _)| kind == "tampered" && artifact == &path),
        "{report:#}"
    );
}

#[test]
fn githubs_refusal_of_the_commit_is_reported_in_its_words_and_a_rerun_records_it() {
    let mut r = api_record(via_api);
    r.github("commit_refused", json!("BRANCH_PROTECTION_RULE_VIOLATION"));
    let report = r.apply(7, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(report["errors"][0]["code"], "push_refused", "{report:#}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("Changes must be made through a pull request")),
        "{report:#}"
    );
    r.github("commit_refused", Value::Null);
    assert_eq!(r.apply(7, 0)["result"], "success");
    github_signed(&r, "rotate");
}

/// The config on main with `via: api` as the App, and the key that signs.
fn switch_to_api(r: &mut Record) {
    let config = r.show("main", ".github/rotor.yml");
    r.github("git_dir", json!(r.origin()));
    r.github("identities", json!({"ghs_repo_token": APP}));
    r.push(
        "main",
        &[
            (".github/rotor.yml", Some(&via_api(format!("{config}\n")))),
            (KEY_PATH, Some(&key("current.asc"))),
        ],
        "alice",
        "Record rotations through GitHub, signed",
    );
}

#[test]
fn a_pull_request_opened_before_the_switch_to_api_and_applied_after_it_verifies_clean() {
    let mut r = Record::new(1);
    switch_to_api(&mut r);
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    github_signed(&r, "rotate");
    r.merge(7, Style::Merge);
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(0), "{report:#}\n{stderr}");
}

#[test]
fn an_unsigned_record_on_a_branch_forked_before_the_switch_is_caught_where_it_comes_in() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    let source = r.show("main", &r.artifact(7));
    // mallory's branch leaves main while it still says `via: git`, and carries a request and a
    // record in rotor's (git) name on top of it, as rotor would have committed it then.
    let id = format!("{}-x", r.s.id);
    r.open_branch(9, "forged");
    let head = r.push(
        "forged",
        &[(
            &format!("rotations/{id}.yaml"),
            Some(&crate::plan::request(&id, &r.s.names)),
        )],
        "mallory",
        "Rotate",
    );
    let forged = crate::forged_records::forge_text(
        &source,
        &id,
        9,
        "2",
        "3",
        "success",
        "2026-11-30T10:00:00Z",
    );
    let (above, mut meta) = crate::falsify::split(&forged);
    meta["approvals"][0]["sha"] = json!(head);
    let forged = crate::falsify::join(&above, &meta);
    let path = format!("docs/security/rotations/{id}.md");
    r.push_as(
        "forged",
        &[(&path, Some(&forged))],
        ("rotor", "rotor@users.noreply.github.com"),
        "rotor: rotation success",
    );
    // main switches to `via: api`; then the branch is merged.
    switch_to_api(&mut r);
    r.merge_branch(9, "forged");
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let unsigned = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .any(|f| f["artifact"] == path.as_str() && f["reason"] == "unsigned");
    assert!(unsigned, "{report:#}");
}

#[test]
fn switching_back_to_git_does_not_lift_the_signature_requirement() {
    let mut r = api_record(via_api_to_main);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let config = r.show("main", ".github/rotor.yml");
    r.push(
        "main",
        &[(
            ".github/rotor.yml",
            Some(&format!("{}\n", config.replace("via: api", "via: git"))),
        )],
        "mallory",
        "Simplify the config",
    );
    let path = r.artifact(7);
    let text = r.show("main", &path);
    r.push_as(
        "main",
        &[(
            path.as_str(),
            Some(&text.replacen("<!-- rotor:artifact", "Checked.\n\n<!-- rotor:artifact", 1)),
        )],
        (APP, &app_email()),
        "rotor: rotation fixed",
    );
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(
        reasons(&report),
        vec![("tampered".to_owned(), Some("unsigned".to_owned()))],
        "{report:#}"
    );
}

#[test]
fn verify_says_each_change_of_who_signs_while_api_is_in_force() {
    let mut r = api_record(via_api_to_main);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let config = r.show("main", ".github/rotor.yml");
    let mallory = r.push(
        "main",
        &[(
            ".github/rotor.yml",
            Some(&config.replace(
                &format!("{APP} <{}>", app_email()),
                "mallory <mallory@example.com>",
            )),
        )],
        "mallory",
        "Tidy the config",
    );
    let keys = r.push(
        "main",
        &[(
            KEY_PATH,
            Some(&format!("{}{}", key("current.asc"), key("other.asc"))),
        )],
        "mallory",
        "Another key",
    );
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(
        code,
        Some(0),
        "an honest-looking change is no finding: {report:#}\n{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "trust changed: {} (authored by mallory",
            &mallory[..7]
        )) && stderr.contains("commit.author from rotor-app[bot]"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "trust changed: {} (authored by mallory",
            &keys[..7]
        )) && stderr.contains("the key file(s) .github/rotor-signing.asc"),
        "{stderr}"
    );
}
