//! Attacks on the signed record (`commit.via: api`) and `rotor verify --offline`, as a
//! contributor with push access to branches and to the default branch, who holds neither
//! GitHub's signing key nor rotor's App token. Each test forges or rewrites a record and asserts
//! what verify should say: a finding that names the forged artifact.
//!
//! The tests marked `#[ignore = "attack that works: …"]` are forgeries that `verify --offline`
//! still accepts (exit 0, no finding naming the artifact), each a limit the threat model states;
//! the others document a defence that holds (the replay from another repository was one of the
//! former until a pull request's head had to reach the default branch's line).

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::common::fixture;
use crate::falsify::{join, split};
use crate::forged_records::{forge_text, rfc};
use crate::plan::git;
use crate::verify::{Record, Style, kinds};

/// The GitHub App rotor runs as (as in `signed.rs`).
const APP: &str = "rotor-app[bot]";

/// Where the public key the GitHub stand-in signs with is kept on main.
const KEY_PATH: &str = ".github/rotor-signing.asc";

/// GitHub's committer identity on the commits it makes.
const GITHUB: (&str, &str) = ("GitHub", "noreply@github.com");

/// mallory's own token: the stand-in makes (and signs) commits with it as `mallory`, as GitHub
/// does for a web edit or a squash merge of mallory's pull request.
const MALLORY_TOKEN: &str = "ghp_mallory";

/// A plain git identity for mallory's pushes.
const MALLORY: (&str, &str) = ("mallory", "mallory@example.com");

/// GitHub's no-reply address of `login`.
fn noreply(login: &str) -> String {
    format!(
        "{}+{login}@users.noreply.github.com",
        rotor_sandbox::github::user_id(login)
    )
}

fn app() -> String {
    format!("{APP} <{}>", noreply(APP))
}

fn via_api(config: String) -> String {
    format!(
        "{config}commit: {{via: api, author: \"{}\"}}\nrecord: {{signing_keys: [{KEY_PATH}]}}\n",
        app()
    )
}

fn key(name: &str) -> String {
    std::fs::read_to_string(fixture(&format!("signing/{name}"))).expect("key fixture")
}

/// A record whose config says `via: api` (rotor commits to the pull request's branch), the
/// stand-in committing as the App for rotor's token and as mallory for hers, the test key's
/// public half on main.
fn api_record() -> Record {
    let mut r = Record::with(1, via_api);
    r.github("git_dir", json!(r.origin()));
    r.github(
        "identities",
        json!({"ghs_repo_token": APP, MALLORY_TOKEN: "mallory"}),
    );
    r.push(
        "main",
        &[(KEY_PATH, Some(&key("current.asc")))],
        "alice",
        "Add rotor's signing key",
    );
    r
}

/// One rotation (pull request #7) applied through the API and merged; verify is clean.
fn one_signed_rotation() -> Record {
    let mut r = api_record();
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    r.merge(7, Style::Merge);
    clean_offline(&r);
    r
}

fn clean_offline(r: &Record) {
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(
        (code, kinds(&report)),
        (Some(0), Vec::new()),
        "{report:#}\n{stderr}"
    );
}

/// The artifact at `path` on `rev`, with its last newline.
fn text(r: &Record, rev: &str, path: &str) -> String {
    format!("{}\n", r.show(rev, path))
}

/// Commits `changes` (path, content or `None` to delete) on `branch` through the stand-in's
/// `createCommitOnBranch` with `token`: GitHub's commit, authored as the token's identity and
/// signed with the key the stand-in holds.
fn gh_commit(r: &Record, token: &str, branch: &str, changes: &[(&str, Option<&str>)]) -> String {
    use base64::Engine as _;
    let head = git(&r.origin(), &["rev-parse", branch]);
    let additions: Vec<Value> = changes
        .iter()
        .filter_map(|(p, c)| {
            c.map(|c| {
                json!({"path": p, "contents": base64::engine::general_purpose::STANDARD.encode(c)})
            })
        })
        .collect();
    let deletions: Vec<Value> = changes
        .iter()
        .filter(|(_, c)| c.is_none())
        .map(|(p, _)| json!({"path": p}))
        .collect();
    let answer: Value = reqwest::blocking::Client::new()
        .post(format!("{}/graphql", r.s.url))
        .bearer_auth(token)
        .json(&json!({
            "query": "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid } } }",
            "variables": {"input": {
                "branch": {"repositoryNameWithOwner": "my-org/tenants", "branchName": branch},
                "expectedHeadOid": head,
                "message": {"headline": "Update the record"},
                "fileChanges": {"additions": additions, "deletions": deletions}
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

/// git in `dir` with `stdin` and, optionally, an index file of its own.
fn git_raw(dir: &Path, args: &[&str], stdin: Option<&[u8]>, index: Option<&Path>) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_DIR", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    let mut child = cmd.spawn().expect("git runs");
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).expect("stdin");
    }
    let out = child.wait_with_output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A detached, armored OpenPGP signature over `data` by the armored secret `key`, whose
/// signature packet says it was made at `created` (seconds since the epoch): whoever holds a
/// key chooses that time.
fn sign_at(key: &str, data: &[u8], created: u32) -> String {
    use pgp::composed::{ArmorOptions, Deserializable as _, DetachedSignature, SignedSecretKey};
    use pgp::crypto::hash::HashAlgorithm;
    use pgp::packet::{SignatureConfig, SignatureType, Subpacket, SubpacketData};
    use pgp::types::{KeyDetails as _, Password, Timestamp};
    let (secret, _) = SignedSecretKey::from_string(key).expect("secret key");
    let mut config = SignatureConfig::v4(
        SignatureType::Binary,
        secret.primary_key.algorithm(),
        HashAlgorithm::Sha256,
    );
    config.hashed_subpackets = vec![
        Subpacket::regular(SubpacketData::SignatureCreationTime(Timestamp::from_secs(
            created,
        )))
        .expect("subpacket"),
        Subpacket::regular(SubpacketData::IssuerFingerprint(
            secret.primary_key.fingerprint(),
        ))
        .expect("subpacket"),
    ];
    config.unhashed_subpackets = vec![
        Subpacket::regular(SubpacketData::IssuerKeyId(
            secret.primary_key.legacy_key_id(),
        ))
        .expect("subpacket"),
    ];
    let sig = config
        .sign(&secret.primary_key, &Password::empty(), data)
        .expect("sign");
    DetachedSignature::new(sig)
        .to_armored_string(ArmorOptions::default())
        .expect("armor")
}

/// When the key in the armored secret `key` was made.
fn born(key: &str) -> u32 {
    use pgp::composed::{Deserializable as _, SignedSecretKey};
    use pgp::types::KeyDetails as _;
    let (secret, _) = SignedSecretKey::from_string(key).expect("secret key");
    secret.primary_key.created_at().as_secs()
}

/// A commit object written straight into origin, as anyone can make one locally and push it:
/// `changes` applied to `parent`'s tree, authored and committed as given (git checks neither),
/// and with `signer` (an armored secret key and the signature's creation time) a `gpgsig`
/// made exactly as GitHub's (the stand-in's) is. The branch does not move: see [`land`].
fn craft(
    r: &Record,
    parent: &str,
    changes: &[(&str, Option<&str>)],
    author: (&str, &str),
    committer: (&str, &str),
    signer: Option<(&str, u32)>,
) -> String {
    let origin = r.origin();
    let index = origin.join(format!("attack-index-{}", crate::services::unique("i")));
    git_raw(&origin, &["read-tree", parent], None, Some(&index));
    for (path, content) in changes {
        match content {
            Some(text) => {
                let blob = git_raw(
                    &origin,
                    &["hash-object", "-w", "--stdin"],
                    Some(text.as_bytes()),
                    None,
                );
                git_raw(
                    &origin,
                    &[
                        "update-index",
                        "--add",
                        "--cacheinfo",
                        &format!("100644,{blob},{path}"),
                    ],
                    None,
                    Some(&index),
                );
            }
            None => {
                git_raw(
                    &origin,
                    &["update-index", "--force-remove", path],
                    None,
                    Some(&index),
                );
            }
        }
    }
    let tree = git_raw(&origin, &["write-tree"], None, Some(&index));
    let _ = std::fs::remove_file(&index);
    let now = chrono::Utc::now().timestamp();
    let mut object = format!(
        "tree {tree}\nparent {parent}\nauthor {} <{}> {now} +0000\ncommitter {} <{}> {now} +0000\n",
        author.0, author.1, committer.0, committer.1
    );
    let body = "\nrotor: rotation success\n";
    if let Some((key, created)) = signer {
        let armored = sign_at(key, format!("{object}{body}").as_bytes(), created);
        let mut lines = armored.trim_end().lines();
        object.push_str(&format!("gpgsig {}\n", lines.next().unwrap_or_default()));
        for line in lines {
            object.push_str(&format!(" {line}\n"));
        }
    }
    object.push_str(body);
    git_raw(
        &origin,
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        Some(object.as_bytes()),
        None,
    )
}

/// Pushes `new` to `branch` of origin as a fast-forward from `old` (one push of every commit
/// between them).
fn land(r: &Record, branch: &str, old: &str, new: &str) {
    git(
        &r.origin(),
        &["update-ref", &format!("refs/heads/{branch}"), new, old],
    );
    crate::checkout::refresh(&r.origin());
}

/// Sets `commit.author` in main's config to `author`, pushed by mallory.
fn set_author(r: &Record, author: &str, message: &str) -> String {
    let config = r.show("main", ".github/rotor.yml");
    let re = regex::Regex::new(r#"author: "[^"]*""#).expect("regex");
    assert!(re.is_match(&config), "{config}");
    let changed = re
        .replace(&config, format!("author: \"{author}\"").as_str())
        .into_owned();
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&format!("{changed}\n")))],
        "mallory",
        message,
    )
}

/// A record rotor never wrote: pull request #7's ref moved again, 2 → 3, under rotation
/// `<id>-9` of pull request #9, at `docs/security/rotations/<id>-9.md`.
fn forged_record(r: &Record, source: &str) -> (String, String) {
    let id = format!("{}-9", r.id(7));
    let forged = forge_text(
        source,
        &id,
        9,
        "2",
        "3",
        "success",
        &rfc(chrono::Utc::now()),
    );
    (format!("docs/security/rotations/{id}.md"), forged)
}

/// `old` with a dispatched rollback appended as rotor appends one (a `## Rollback` section and
/// the block recording it, the ref back on its `from`), which nobody dispatched.
fn forged_rollback(old: &str) -> String {
    let (above, mut meta) = split(old);
    let now = rfc(chrono::Utc::now());
    let name = meta["refs"][0]["ref"].as_str().expect("ref").to_owned();
    let from = meta["refs"][0]["from"].clone();
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(now);
    meta["refs"][0]["pointer"] = from;
    meta["refs"][0]["rollback"] = json!("rolled_back");
    meta["rollbacks"] = json!([{
        "operator": "bob", "reason": "errors after the rotation", "finished_at": now,
        "result": "rolled_back", "forced": false, "run_url": null,
        "refs": [{"ref": name, "result": "rolled_back", "audit_events": []}]
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Date: {}\n- Operator: bob (internal_admin)\n- Secret Ref: {name}\n- Provider: supabase\n- Result: rolled_back\n- Reason: errors after the rotation\n",
        above.trim_end(),
        &now[..10]
    );
    join(&above, &meta)
}

/// verify --offline must exit 1 with a `tampered` finding on `path`; returns the report.
fn tampered(r: &Record, path: &str) -> Value {
    let (code, report, stderr) = r.verify(&["--offline"]);
    let named = kinds(&report)
        .iter()
        .any(|(kind, artifact, _)| kind == "tampered" && artifact == path);
    assert!(
        code == Some(1) && named,
        "verify --offline exited {code:?} without a `tampered` finding on {path}: {report:#}\n{stderr}"
    );
    report
}

/// The reasons of the findings on `path`.
fn reasons_on(report: &Value, path: &str) -> Vec<String> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["artifact"] == path)
        .filter_map(|f| f["reason"].as_str().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Attacks that work: `commit.author` and `record.signing_keys` are the attacker's to change.
// ---------------------------------------------------------------------------------------------

/// mallory names herself `commit.author` on main, has GitHub sign a fabricated record for her
/// (a web edit: authored as mallory, committed and signed by GitHub), and names the App again.
/// The config at the tip is as it was; only the history shows the two config commits.
#[test]
#[ignore = "attack that works: a record counts when GitHub signed it for the commit.author in force where it came in, and commit.author is whatever main's config said at that commit; mallory names herself for one commit, lands a web-edit-signed record and names the App again, and verify reports nothing (no finding on the record, none on the config changes)"]
fn a_record_signed_for_a_commit_author_named_for_one_commit_is_tampered() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let config = r.show("main", ".github/rotor.yml");
    set_author(
        &r,
        &format!("mallory <{}>", noreply("mallory")),
        "Record rotations as the new App",
    );
    let (path, forged) = forged_record(&r, &source);
    gh_commit(&r, MALLORY_TOKEN, "main", &[(&path, Some(&forged))]);
    set_author(&r, &app(), "Back to the App");
    assert_eq!(
        r.show("main", ".github/rotor.yml"),
        config,
        "the tip's config is as it was"
    );
    tampered(&r, &path);
}

/// The same, appending a dispatched rollback nobody ran to a genuine record (rotor's own
/// rollback append is the one change a record may take after it landed).
#[test]
#[ignore = "attack that works: while main's config names mallory as commit.author, her GitHub-signed web edit that appends a `## Rollback` counts as rotor's own rollback append; after she names the App again verify --offline exits 0"]
fn a_rollback_appended_by_a_commit_author_named_for_one_commit_is_tampered() {
    let r = one_signed_rotation();
    let path = r.artifact(7);
    let old = text(&r, "main", &path);
    set_author(
        &r,
        &format!("mallory <{}>", noreply("mallory")),
        "Record rotations as the new App",
    );
    gh_commit(
        &r,
        MALLORY_TOKEN,
        "main",
        &[(&path, Some(&forged_rollback(&old)))],
    );
    set_author(&r, &app(), "Back to the App");
    tampered(&r, &path);
}

/// mallory adds her own key to `record.signing_keys` (and its file) and, in the same push, a
/// commit in rotor's name, committed as `GitHub <noreply@github.com>` (a string git does not
/// check), signed with her key.
#[test]
#[ignore = "attack that works: record.signing_keys is read at the tip, from a config anyone with push access to main can change; a key added there in the same push as a forged commit in rotor's name makes the forgery a valid signed commit, and verify --offline exits 0"]
fn a_key_added_to_signing_keys_in_the_same_push_does_not_sign_rotors_record() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let config = r.show("main", ".github/rotor.yml");
    let keys = format!("signing_keys: [{KEY_PATH}]");
    assert!(config.contains(&keys), "{config}");
    let config = config.replace(
        &keys,
        &format!("signing_keys: [{KEY_PATH}, .github/keys/release.asc]"),
    );
    let (path, forged) = forged_record(&r, &source);
    let old = r.main();
    let keyed = craft(
        &r,
        &old,
        &[
            (".github/rotor.yml", Some(&format!("{config}\n"))),
            (".github/keys/release.asc", Some(&key("other.asc"))),
        ],
        MALLORY,
        MALLORY,
        None,
    );
    let forgery = craft(
        &r,
        &keyed,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        Some((
            &key("other.secret.asc"),
            chrono::Utc::now().timestamp() as u32,
        )),
    );
    land(&r, "main", &old, &forgery);
    tampered(&r, &path);
}

/// The same without touching `.github/rotor.yml` (which CODEOWNERS may guard): mallory appends
/// her key to the key file the config already names.
#[test]
#[ignore = "attack that works: the key file record.signing_keys names is read at the tip too; appending a key of one's own to it (the config untouched) makes a commit in rotor's name signed with that key rotor's, and verify --offline exits 0"]
fn a_key_appended_to_the_named_key_file_does_not_sign_rotors_record() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let (path, forged) = forged_record(&r, &source);
    let old = r.main();
    let keyed = craft(
        &r,
        &old,
        &[(
            KEY_PATH,
            Some(&format!("{}{}", key("current.asc"), key("other.asc"))),
        )],
        MALLORY,
        MALLORY,
        None,
    );
    let forgery = craft(
        &r,
        &keyed,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        Some((
            &key("other.secret.asc"),
            chrono::Utc::now().timestamp() as u32,
        )),
    );
    land(&r, "main", &old, &forgery);
    tampered(&r, &path);
}

/// Replay from another repository: one GitHub App (the same `commit.author`) rotates secrets
/// for several repositories of the organisation. In `tenants-b` rotor recorded rotation B on
/// its pull request #41 (GitHub's signed commit, on the approved head that carries B's
/// request). mallory, who can read `tenants-b`, pushes that history to a branch of `tenants`
/// (joined to main by a merge, so that a pull request can be opened), opens it as pull request
/// #41 of `tenants`, and commits B's record to main by hand. rotor's signed commit of exactly
/// that blob is on `refs/pull/41/head`, but that head's own line never reaches this
/// repository's default branch: it holds nothing of rotor's here, and the record is `tampered`.
#[test]
fn a_signed_record_replayed_from_another_repository_is_tampered() {
    let mut r = api_record();
    // A record as rotor writes it, to stand for the one it wrote in tenants-b.
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    r.close(7);
    let source = text(&r, "rotate", &r.artifact(7));
    let b_id = format!("2026-11-20-{}", r.id(7).rsplit('-').next().expect("slug"));
    let b_path = format!("docs/security/rotations/{b_id}.md");

    // tenants-b's history: its pull request's approved head, carrying B's request.
    let b = r.s.w.dir.path().join("tenants-b");
    std::fs::create_dir_all(b.join("rotations")).expect("mkdir");
    git(&b, &["init", "-q", "-b", "main"]);
    std::fs::write(
        b.join(format!("rotations/{b_id}.yaml")),
        crate::plan::request(&b_id, &r.s.names),
    )
    .expect("request");
    git(&b, &["add", "-A"]);
    git(&b, &["commit", "-q", "-m", &format!("Rotate {b_id}")]);
    let origin = r.origin();
    git(
        &b,
        &[
            "push",
            "-q",
            origin.to_str().expect("utf-8"),
            "HEAD:refs/heads/tenants-b",
        ],
    );
    let b_head = git(&b, &["rev-parse", "HEAD"]);
    let (above, meta) = split(&source);
    let mut meta: Value = serde_json::from_str(
        &meta
            .to_string()
            .replace("my-org/tenants/", "my-org/tenants-b/"),
    )
    .expect("json");
    meta["rotation_id"] = json!(b_id);
    meta["pull_request"] = json!(41);
    for a in meta["approvals"].as_array_mut().expect("approvals") {
        a["sha"] = json!(b_head);
    }
    let above = above
        .replace(&r.id(7), &b_id)
        .replace("my-org/tenants/", "my-org/tenants-b/");
    let b_record = join(&above, &meta);
    assert!(
        b_record.contains("my-org/tenants-b/"),
        "the record names the repository it was made in: {b_record}"
    );
    // rotor in tenants-b: GitHub's commit for the App, signed.
    let g_b = gh_commit(
        &r,
        "ghs_repo_token",
        "tenants-b",
        &[(&b_path, Some(&b_record))],
    );

    // mallory: the fetched history on a branch of tenants, joined to main (first parent: B's).
    let m = r.s.w.dir.path().join("mallory");
    git(
        r.s.w.dir.path(),
        &["clone", "-q", origin.to_str().expect("utf-8"), "mallory"],
    );
    git(&m, &["checkout", "-q", "-B", "replay", &g_b]);
    git(
        &m,
        &[
            "merge",
            "-q",
            "--allow-unrelated-histories",
            "--no-edit",
            "origin/main",
        ],
    );
    git(&m, &["push", "-q", "origin", "HEAD:refs/heads/replay"]);
    git(&m, &["push", "-q", "origin", ":refs/heads/tenants-b"]);
    crate::checkout::open_pull(&origin, 41, "replay", "main");
    crate::checkout::close_pull(&origin, 41);
    // ...and B's record committed to main by hand.
    r.push(
        "main",
        &[(&b_path, Some(&b_record))],
        "mallory",
        "Add a record",
    );
    tampered(&r, &b_path);
}

/// A key that leaked after it expired, still listed (kept to verify old commits), signs a
/// forged commit in rotor's name dated, in its signature packet, before the expiry. The README
/// says so ("revoke a leaked key as compromised, do not wait for it to expire"); GitHub's
/// retired 2017 web-flow key, built in and valid for signatures dated before 2024-01-16, is the
/// case in the wild.
#[test]
#[ignore = "attack that works (documented): a signature's creation time is the signer's word; with an expired key that is still listed, a signature dated before the expiry is valid and verify --offline exits 0"]
fn a_leaked_expired_key_back_dating_its_signature_does_not_sign_rotors_record() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    r.push(
        "main",
        &[(
            KEY_PATH,
            Some(&format!("{}{}", key("current.asc"), key("expired.asc"))),
        )],
        "alice",
        "Keep the old key",
    );
    let (path, forged) = forged_record(&r, &source);
    let old = r.main();
    // 2020-06-01: after the key was made (2020-01-01), before it expired (2021-01-01).
    let forgery = craft(
        &r,
        &old,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        Some((&key("expired.secret.asc"), 1_590_969_600)),
    );
    land(&r, "main", &old, &forgery);
    tampered(&r, &path);
}

// ---------------------------------------------------------------------------------------------
// Attacks that were caught.
// ---------------------------------------------------------------------------------------------

/// A forged record on a branch that starts from pull request #7's head (rotor's genuine signed
/// commit on top), opened as pull request #9 and merged with a merge commit: the merged side
/// holds a signed commit in rotor's name, of another pull request and another path.
#[test]
fn a_forged_record_merged_beside_another_pull_requests_signed_commit_is_tampered() {
    let mut r = api_record();
    let report = r.apply(7, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    let source = text(&r, "rotate", &r.artifact(7));
    let approved = git(&r.origin(), &["rev-parse", "rotate^"]);
    let id = format!("{}-9", r.id(7));
    let path = format!("docs/security/rotations/{id}.md");
    // The forgery names pull request #7, whose head is rotor's signed commit, and its
    // approved head.
    let (above, mut meta) = split(&forge_text(
        &source,
        &id,
        7,
        "2",
        "3",
        "success",
        &rfc(chrono::Utc::now()),
    ));
    meta["approvals"][0]["sha"] = json!(approved);
    let forged = join(&above, &meta);
    git(&r.origin(), &["branch", "docs", "rotate"]);
    r.open_branch(9, "docs");
    r.push(
        "docs",
        &[
            (&path, Some(&forged)),
            (
                &format!("rotations/{id}.yaml"),
                Some(&crate::plan::request(&id, &r.s.names)),
            ),
        ],
        "mallory",
        "Docs",
    );
    r.merge(7, Style::Merge);
    r.merge_branch(9, "docs");
    tampered(&r, &path);
}

/// rotor's genuine signed record copied, blob for blob, into another artifacts directory the
/// config is made to name.
#[test]
fn a_genuine_signed_record_copied_to_another_artifacts_dir_is_tampered() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let config = format!("{}\n", r.show("main", ".github/rotor.yml"));
    r.push(
        "main",
        &[(
            ".github/rotor.yml",
            Some(&format!(
                "{config}artifacts_dir: docs/security/rotation-records\n"
            )),
        )],
        "mallory",
        "Rename the records folder",
    );
    let copy = format!("docs/security/rotation-records/{}.md", r.id(7));
    r.push("main", &[(&copy, Some(&source))], "mallory", "Copy");
    tampered(&r, &copy);
}

/// A forged record that GitHub signed for mallory (her web edit, or GitHub's squash merge of
/// her pull request): signed by the right key, authored by someone who is not `commit.author`.
#[test]
fn a_record_github_signed_for_mallory_is_tampered() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let (path, forged) = forged_record(&r, &source);
    gh_commit(&r, MALLORY_TOKEN, "main", &[(&path, Some(&forged))]);
    tampered(&r, &path);
}

/// A forged rollback append that GitHub signed for mallory, `commit.author` unchanged.
#[test]
fn a_rollback_appended_by_mallorys_signed_web_edit_is_tampered() {
    let r = one_signed_rotation();
    let path = r.artifact(7);
    let old = text(&r, "main", &path);
    gh_commit(
        &r,
        MALLORY_TOKEN,
        "main",
        &[(&path, Some(&forged_rollback(&old)))],
    );
    tampered(&r, &path);
}

/// A real dispatched rollback (GitHub's signed commit on main) erased: the artifact deleted,
/// then rotor's own first version (the blob of its signed commit on the pull request's head)
/// put back by a GitHub-signed web edit of mallory's. (The deletion is a plain push: the
/// stand-in's `createCommitOnBranch` cannot delete in a bare repository.)
#[test]
fn a_rollback_erased_by_deleting_and_re_adding_the_signed_first_version_is_tampered() {
    let r = one_signed_rotation();
    let path = r.artifact(7);
    let first = text(&r, "main", &path);
    let rolled = r.rollback(7, 0);
    assert_eq!(rolled["result"], "rolled_back", "{rolled:#}");
    clean_offline(&r);
    r.push("main", &[(&path, None)], "mallory", "Tidy the records");
    gh_commit(&r, MALLORY_TOKEN, "main", &[(&path, Some(&first))]);
    tampered(&r, &path);
}

/// A commit in rotor's name committed as `GitHub <noreply@github.com>`, unsigned, as GitHub's
/// rebase merges are, writing a record rotor never signed anywhere.
#[test]
fn an_unsigned_commit_posing_as_a_rebase_merge_copy_is_unsigned() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let (path, forged) = forged_record(&r, &source);
    let old = r.main();
    let forgery = craft(
        &r,
        &old,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        None,
    );
    land(&r, "main", &old, &forgery);
    let report = tampered(&r, &path);
    assert_eq!(reasons_on(&report, &path), vec!["unsigned"], "{report:#}");
}

/// A commit in rotor's name signed by a listed key, its signature dated before the key was
/// made (as a key holder could date it to look older than a revocation, say).
#[test]
fn a_signature_dated_before_its_key_was_made_is_a_bad_signature() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let (path, forged) = forged_record(&r, &source);
    let secret = key("current.secret.asc");
    let old = r.main();
    let forgery = craft(
        &r,
        &old,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        Some((&secret, born(&secret) - 86_400)),
    );
    land(&r, "main", &old, &forgery);
    let report = tampered(&r, &path);
    assert_eq!(
        reasons_on(&report, &path),
        vec!["bad_signature"],
        "{report:#}"
    );
    assert!(
        report["findings"].to_string().contains("before its key"),
        "{report:#}"
    );
}

/// The same forged commit signed now by that listed key, crafted by hand: a control that the
/// crafted commit is exactly what the stand-in makes (it verifies as rotor's).
#[test]
fn a_hand_crafted_commit_signed_by_the_listed_key_now_counts_as_rotors() {
    let r = one_signed_rotation();
    let source = text(&r, "main", &r.artifact(7));
    let (path, forged) = forged_record(&r, &source);
    let old = r.main();
    let forgery = craft(
        &r,
        &old,
        &[(&path, Some(&forged))],
        (APP, &noreply(APP)),
        GITHUB,
        Some((
            &key("current.secret.asc"),
            chrono::Utc::now().timestamp() as u32,
        )),
    );
    land(&r, "main", &old, &forgery);
    clean_offline(&r);
}
