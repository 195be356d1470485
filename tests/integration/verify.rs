//! `rotor verify` end to end: a record built by rotor itself (apply, rollback) on a real git
//! remote, with real OpenBao and the stand-ins, merged the three ways GitHub merges, under both
//! commit targets; then every way a person could tamper with it, each caught as its own
//! finding, and the clean history verified with none.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::apply::Setup;
use crate::common::{Rotor, fixture, rotor};
use crate::plan::{git, scenario};
use crate::services::block_on;

/// How GitHub merges a pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// A merge commit of the branch into the base.
    Merge,
    /// One new commit with the branch's changes, authored by the pull request's author.
    Squash,
    /// Each of the branch's commits replayed onto the base, committed by GitHub.
    Rebase,
}

/// Runs git in `dir` as `author` (name, also the email's local part), committed by
/// `committer`; `None` keeps what the command takes from the commit it copies.
fn git_as(dir: &Path, args: &[&str], author: Option<&str>, committer: &str) -> String {
    let email = |who: &str| format!("{}@example.com", who.to_lowercase());
    git_id(
        dir,
        args,
        author.map(|a| (a.to_owned(), format!("{a}@example.com"))),
        (committer.to_owned(), email(committer)),
    )
}

/// `git ARGS` in `dir` as these identities (name, email).
pub(crate) fn git_id(
    dir: &Path,
    args: &[&str],
    author: Option<(String, String)>,
    committer: (String, String),
) -> String {
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .args(args)
        .env("GIT_COMMITTER_NAME", &committer.0)
        .env("GIT_COMMITTER_EMAIL", &committer.1)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir);
    if let Some((name, email)) = author {
        cmd.env("GIT_AUTHOR_NAME", name)
            .env("GIT_AUTHOR_EMAIL", email);
    }
    let out = cmd.output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository whose record rotor writes, pull request after pull request.
pub(crate) struct Record {
    pub(crate) s: Setup,
    /// The GitHub stand-in's pull requests, by number.
    pulls: BTreeMap<u64, Value>,
    /// Each pull request's branch and request id.
    branches: BTreeMap<u64, (String, String)>,
    /// More of the GitHub stand-in's scenario, kept across syncs (the repository it commits
    /// to, the token's identity, the key it signs with).
    github: serde_json::Map<String, Value>,
}

impl Record {
    /// A world with `n` refs on OpenBao and rotation pull request #7 (branch `rotate`) open.
    pub(crate) fn new(n: usize) -> Self {
        Self::with(n, |c| c)
    }

    /// As [`Record::new`], with the config on main changed by `config`.
    pub(crate) fn with(n: usize, config: fn(String) -> String) -> Self {
        let s = crate::apply::setup_configured(n, &[], |t| t, config, None);
        let file = format!("{}.yaml", s.id);
        let github = crate::plan::base_scenario(&s.w, &file);
        let mut pulls = BTreeMap::new();
        pulls.insert(7, github["pulls"]["7"].clone());
        let mut branches = BTreeMap::new();
        branches.insert(7, ("rotate".to_owned(), s.id.clone()));
        Self {
            s,
            pulls,
            branches,
            github: serde_json::Map::new(),
        }
    }

    /// Sets `key` of the GitHub stand-in's scenario, now and on every later sync.
    pub(crate) fn github(&mut self, key: &str, value: Value) {
        self.github.insert(key.to_owned(), value);
        self.sync();
    }

    pub(crate) fn origin(&self) -> PathBuf {
        self.s.w.origin()
    }

    fn work(&self) -> PathBuf {
        self.s.w.dir.path().join("work")
    }

    pub(crate) fn main(&self) -> String {
        git(&self.origin(), &["rev-parse", "main"])
    }

    /// Tells the GitHub stand-in where `main` is and which pull requests exist.
    pub(crate) fn sync(&self) {
        let mut github = crate::plan::base_scenario(&self.s.w, "x.yaml");
        github["branches"]["main"] = json!(self.main());
        github["pulls"] = json!(
            self.pulls
                .iter()
                .map(|(n, p)| (n.to_string(), p.clone()))
                .collect::<serde_json::Map<_, _>>()
        );
        for (k, v) in &self.github {
            github[k] = v.clone();
        }
        scenario(&self.s.url, &github);
    }

    /// The request id of pull request `number`.
    pub(crate) fn id(&self, number: u64) -> String {
        self.branches[&number].1.clone()
    }

    /// The artifact path of pull request `number`'s rotation.
    pub(crate) fn artifact(&self, number: u64) -> String {
        format!("docs/security/rotations/{}.md", self.id(number))
    }

    /// Opens pull request `number` from a new branch off main, with a request for `refs`
    /// (indices into the world's refs); `to` pins a target version.
    pub(crate) fn open(&mut self, number: u64, refs: &[usize], to: Option<&str>) -> String {
        let id = format!("{}-{number}", self.s.id);
        let branch = format!("rot-{number}");
        let names: Vec<String> = refs.iter().map(|i| self.s.names[*i].clone()).collect();
        let mut text = crate::plan::request(&id, &names);
        if let Some(v) = to {
            text = text.replace(
                ".service_role\n",
                &format!(".service_role\n    to: \"{v}\"\n"),
            );
        }
        let work = self.work();
        git(&work, &["fetch", "-q", "origin"]);
        git(&work, &["checkout", "-q", "-B", &branch, "origin/main"]);
        fs::create_dir_all(work.join("rotations")).expect("mkdir");
        fs::write(work.join(format!("rotations/{id}.yaml")), text).expect("request");
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", &format!("Rotate {id}")]);
        git(
            &work,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
        let head = git(&work, &["rev-parse", "HEAD"]);
        crate::checkout::open_pull(&self.origin(), number, &branch, "main");
        self.pulls.insert(
            number,
            json!({"author": "alice", "head_sha": head, "base": "main", "head_ref": branch,
                   "files": [{"filename": format!("rotations/{id}.yaml"), "status": "added"}],
                   "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head}]}),
        );
        self.branches.insert(number, (branch, id));
        head
    }

    /// `rotor apply` on bob's approval of pull request `number`'s head; its JSON report.
    pub(crate) fn apply(&mut self, number: u64, code: i32) -> Value {
        let head = self.pulls[&number]["head_sha"]
            .as_str()
            .expect("head")
            .to_owned();
        self.sync();
        let (report, _) = crate::attacks::apply_review(&self.s, number, &head, code);
        report
    }

    /// Merges pull request `number` into main as GitHub would in `style`, and closes it.
    pub(crate) fn merge(&mut self, number: u64, style: Style) -> String {
        let (branch, id) = self.branches[&number].clone();
        let work = self.work();
        git(&work, &["fetch", "-q", "origin"]);
        git(&work, &["checkout", "-q", "-B", "main", "origin/main"]);
        let from = format!("origin/{branch}");
        match style {
            Style::Merge => {
                git_as(
                    &work,
                    &[
                        "merge",
                        "-q",
                        "--no-ff",
                        "-m",
                        &format!("Merge pull request #{number}"),
                        &from,
                    ],
                    Some("alice"),
                    "GitHub",
                );
            }
            Style::Squash => {
                git_as(
                    &work,
                    &["merge", "-q", "--squash", &from],
                    Some("alice"),
                    "GitHub",
                );
                git_as(
                    &work,
                    &["commit", "-q", "-m", &format!("Rotate {id} (#{number})")],
                    Some("alice"),
                    "GitHub",
                );
            }
            Style::Rebase => {
                git_as(
                    &work,
                    &["cherry-pick", "--allow-empty", &format!("HEAD..{from}")],
                    None,
                    "GitHub",
                );
            }
        }
        git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
        crate::checkout::close_pull(&self.origin(), number);
        if let Some(p) = self.pulls.get_mut(&number) {
            p["state"] = json!("closed");
            p["merged"] = json!(true);
        }
        self.main()
    }

    /// Opens pull request `number` from `branch` (made off main when it does not exist yet),
    /// as anyone with push access can: a docs change, say.
    pub(crate) fn open_branch(&self, number: u64, branch: &str) {
        let origin = self.origin();
        if git(&origin, &["branch", "--list", branch]).is_empty() {
            git(&origin, &["branch", branch, "main"]);
        }
        crate::checkout::open_pull(&origin, number, branch, "main");
    }

    /// Merges `branch` into main with a merge commit, as GitHub merges pull request `number`,
    /// and closes it.
    pub(crate) fn merge_branch(&self, number: u64, branch: &str) -> String {
        let work = self.work();
        git(&work, &["fetch", "-q", "origin"]);
        git(&work, &["checkout", "-q", "-B", "main", "origin/main"]);
        git_as(
            &work,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-m",
                &format!("Merge pull request #{number}"),
                &format!("origin/{branch}"),
            ],
            Some("alice"),
            "GitHub",
        );
        git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
        crate::checkout::close_pull(&self.origin(), number);
        self.main()
    }

    /// Closes pull request `number` without merging it (a rotation that was rolled back).
    pub(crate) fn close(&mut self, number: u64) {
        crate::checkout::close_pull(&self.origin(), number);
        if let Some(p) = self.pulls.get_mut(&number) {
            p["state"] = json!("closed");
        }
    }

    /// The application stand-in's audit events, oldest first.
    pub(crate) fn app_events(&self) -> Vec<Value> {
        let state: Value = reqwest::blocking::get(format!("{}/_sandbox/app", self.s.url))
            .expect("sandbox")
            .json()
            .expect("json");
        state["events"].as_array().cloned().unwrap_or_default()
    }

    /// Commits `files` (path, content or `None` to delete) on `branch` of origin as `who`.
    pub(crate) fn push(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        who: &str,
        message: &str,
    ) -> String {
        self.push_as(
            branch,
            files,
            (who, &format!("{}@example.com", who.to_lowercase())),
            message,
        )
    }

    /// As [`Record::push`], authored and committed as `who` (name, email): rotor's own identity
    /// included, as anyone with push access can write it.
    pub(crate) fn push_as(
        &self,
        branch: &str,
        files: &[(&str, Option<&str>)],
        who: (&str, &str),
        message: &str,
    ) -> String {
        let work = self.work();
        git(&work, &["fetch", "-q", "origin"]);
        git(
            &work,
            &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
        );
        for (path, content) in files {
            let file = work.join(path);
            match content {
                Some(text) => {
                    fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
                    fs::write(&file, text).expect("write");
                }
                None => fs::remove_file(&file).expect("remove"),
            }
        }
        let id = (who.0.to_owned(), who.1.to_owned());
        git_id(&work, &["add", "-A"], Some(id.clone()), id.clone());
        git_id(
            &work,
            &["commit", "-q", "-m", message],
            Some(id.clone()),
            id,
        );
        git(
            &work,
            &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
        );
        crate::checkout::refresh(&self.origin());
        git(&work, &["rev-parse", "HEAD"])
    }

    /// The file at `path` on `branch` of origin.
    pub(crate) fn show(&self, branch: &str, path: &str) -> String {
        git(&self.origin(), &["show", &format!("{branch}:{path}")])
    }

    /// `rotor rollback` of pull request `number`'s rotation, dispatched by bob from main.
    pub(crate) fn rollback(&self, number: u64, code: i32) -> Value {
        self.sync();
        let mut event: Value = serde_json::from_str(
            &fs::read_to_string(fixture("github/webhooks/workflow_dispatch.json"))
                .expect("fixture"),
        )
        .expect("json");
        event["inputs"] =
            json!({"rotation_id": self.id(number), "reason": "errors after the rotation"});
        event["ref"] = json!("refs/heads/main");
        event["repository"]["full_name"] = json!("my-org/tenants");
        event["repository"]["default_branch"] = json!("main");
        let path = self.s.w.dir.path().join(format!("dispatch-{number}.json"));
        fs::write(&path, event.to_string()).expect("event");
        let ws = self.workspace("workflow_dispatch");
        let (stdout, stderr) = rotor()
            .current_dir(&ws)
            .env("GITHUB_REPOSITORY", "my-org/tenants")
            .env("GITHUB_TOKEN", "ghs_repo_token")
            .env("GITHUB_API_URL", &self.s.url)
            .env("GITHUB_EVENT_NAME", "workflow_dispatch")
            .env("GITHUB_EVENT_PATH", &path)
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_TRIGGERING_ACTOR", "bob")
            .env("GITHUB_RUN_ID", "4343")
            .env("VAULT_TOKEN", &self.s.token.token)
            .env("ROTOR_APP_TOKEN", "app-token")
            .args(["rollback", "--format", "json"])
            .expects_exit(code)
            .run();
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"))
    }

    /// A workspace of the default branch's tip, as actions/checkout makes it for `event`.
    pub(crate) fn workspace(&self, event: &str) -> PathBuf {
        crate::checkout::workspace(
            self.s.w.dir.path(),
            &self.origin(),
            event,
            0,
            crate::checkout::Inputs::default(),
        )
    }

    /// `rotor verify` (or another read-only command) in a fresh scheduled workspace, with the
    /// backend's and the application's tokens.
    pub(crate) fn rotor_in(&self, ws: &Path) -> Rotor {
        rotor()
            .current_dir(ws)
            .env("GITHUB_TOKEN", "ghs_repo_token")
            .env("VAULT_TOKEN", &self.s.token.token)
            .env("ROTOR_APP_TOKEN", "app-token")
    }

    /// `rotor verify --format json ARGS` in a new scheduled workspace: exit code, report, stderr.
    pub(crate) fn verify(&self, args: &[&str]) -> (Option<i32>, Value, String) {
        let ws = self.workspace("schedule");
        let (code, stdout, stderr) = self
            .rotor_in(&ws)
            .env("GITHUB_ACTIONS", "true")
            .args(["verify", "--format", "json"])
            .args(args)
            .run_unchecked();
        crate::checkout::assert_usable(&ws, true);
        let report = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
        (code, report, stderr)
    }

    /// Provisions one more version of ref `i` (the next pending one).
    pub(crate) fn provision(&self, i: usize) {
        block_on(self.s.bao.provision(&self.s.names[i], 1, None));
    }

    /// Moves ref `i`'s pointer to `version` by hand, as the operator could, keeping the rest
    /// of its metadata.
    pub(crate) fn move_by_hand(&self, i: usize, version: &str) {
        let name = &self.s.names[i];
        let mut custom = block_on(self.s.bao.custom(name));
        custom.insert("current_version".to_owned(), version.to_owned());
        block_on(self.s.bao.set_custom(name, json!(custom)));
    }

    /// Sets one knob of the application stand-in, keeping the rest of its scenario.
    pub(crate) fn app_knob(&self, key: &str, value: Value) {
        crate::bounded::app_knob(&self.s.url, key, value);
    }
}

/// The findings of a report as (kind, artifact, ref).
pub(crate) fn kinds(report: &Value) -> Vec<(String, String, Option<String>)> {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().expect("kind").to_owned(),
                f["artifact"].as_str().expect("artifact").to_owned(),
                f["ref"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// A record of one rotation (pull request #7 of `n` refs, pr-branch, merged by a merge
/// commit) to tamper with.
fn one_rotation(n: usize) -> Record {
    let mut r = Record::new(n);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    r
}

fn origin_refs(r: &Record) -> String {
    git(
        &r.origin(),
        &["for-each-ref", "--format=%(refname) %(objectname)"],
    )
}

#[test]
fn a_clean_history_of_rotations_and_rollbacks_verifies_with_no_finding() {
    let mut r = Record::new(2);
    // #7, both refs, pr-branch, merged by a merge commit, then rolled back by dispatch.
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    // #8, ref 0 again (its rejected version skipped), pr-branch, squash-merged.
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Squash);
    // #9, ref 1, pr-branch, rebase-merged: GitHub rewrites rotor's commit.
    r.provision(1);
    r.open(9, &[1], None);
    assert_eq!(r.apply(9, 0)["result"], "success");
    r.merge(9, Style::Rebase);
    // The config moves to default-branch: rotor commits to main before the merge.
    let config = r.show("main", ".github/rotor.yml").replace(
        "approvals: {required: 1}",
        "approvals: {required: 1}\ncommit: {target: default-branch}",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "alice",
        "Commit artifacts to main",
    );
    // #10, ref 0, default-branch, squash-merged.
    r.provision(0);
    r.open(10, &[0], None);
    assert_eq!(r.apply(10, 0)["result"], "success");
    r.merge(10, Style::Squash);
    // #11, ref 1, default-branch, rolled back automatically (its version fails), merged.
    r.provision(1);
    r.app_knob("bad_versions", json!(["4"]));
    r.open(11, &[1], Some("4"));
    assert_eq!(r.apply(11, 1)["result"], "rolled_back");
    r.merge(11, Style::Merge);
    // #12, ref 1, default-branch, rebase-merged.
    r.app_knob("bad_versions", json!([]));
    r.provision(1);
    r.open(12, &[1], Some("5"));
    assert_eq!(r.apply(12, 0)["result"], "success");
    r.merge(12, Style::Rebase);

    let before = origin_refs(&r);
    let pointers: Vec<_> =
        r.s.names
            .iter()
            .map(|n| block_on(r.s.bao.custom(n)))
            .collect();
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(
        (code, kinds(&report)),
        (Some(0), Vec::new()),
        "{report:#}\n{stderr}"
    );
    assert_eq!(report["artifacts"], 6);
    assert_eq!(report["refs"], 2);
    assert!(!stderr.contains("::error"), "{stderr}");
    // Read-only: nothing moved anywhere.
    assert_eq!(origin_refs(&r), before, "no ref of origin changed");
    let after: Vec<_> =
        r.s.names
            .iter()
            .map(|n| block_on(r.s.bao.custom(n)))
            .collect();
    assert_eq!(after, pointers, "no backend metadata changed");

    // Offline, it needs no credentials at all.
    let ws = r.workspace("schedule");
    let (stdout, _) = rotor().current_dir(&ws).args(["verify", "--offline"]).run();
    let text = stdout.replace(&r.main()[..7], "[TIP]");
    insta::assert_snapshot!("verify_clean_text", text);

    // --since: an empty range is 0 artifacts and exit 0.
    let (code, report, _) = r.verify(&["--since", "2999-01-01"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        report,
        json!({"command": "verify", "artifacts": 0, "refs": 0, "findings": []})
    );
}

/// Redacts what varies between runs: SHAs, the world's slug, event ids.
pub(crate) fn redact(text: &str, r: &Record) -> String {
    let slug = r.s.id.trim_start_matches("2026-11-25-");
    let text = text.replace(slug, "[SLUG]");
    let text = regex::Regex::new(r"[0-9a-f]{40}")
        .expect("regex")
        .replace_all(&text, "[SHA]");
    let text = regex::Regex::new(r"\b[0-9a-f]{7}\b")
        .expect("regex")
        .replace_all(&text, "[SHORT]");
    let text = regex::Regex::new(r"evt_[0-9]+")
        .expect("regex")
        .replace_all(&text, "evt_[N]");
    regex::Regex::new(r"http://127\.0\.0\.1:[0-9]+")
        .expect("regex")
        .replace_all(&text, "http://127.0.0.1:[PORT]")
        .into_owned()
}

#[test]
fn a_result_line_edited_later_by_another_author_is_tampered_and_inconsistent() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let edited = r
        .show("main", &path)
        .replace("- Result: success", "- Result: failed");
    let sha = r.push(
        "main",
        &[(&path, Some(&edited))],
        "mallory",
        "Fix the record",
    );
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        kinds(&report),
        [
            ("tampered".to_owned(), path.clone(), None),
            ("inconsistent".to_owned(), path.clone(), None),
        ],
        "{report:#}"
    );
    let tampered = &report["findings"][0];
    assert_eq!(tampered["commit"], sha.as_str());
    assert_eq!(tampered["author"], "mallory <mallory@example.com>");
    assert_eq!(tampered["previous_artifact"], Value::Null);
    assert!(
        stderr.contains(&format!("::error file={path}::tampered: ")),
        "one annotation per finding: {stderr}"
    );
    insta::assert_json_snapshot!(
        "verify_tampered_json",
        serde_json::from_str::<Value>(&redact(&report.to_string(), &r)).expect("json")
    );
    let ws = r.workspace("schedule");
    let (_, stdout, _) = r.rotor_in(&ws).args(["verify"]).run_unchecked();
    insta::assert_snapshot!("verify_tampered_text", redact(&stdout, &r));
    // Findings are reported for artifacts finished in the range only.
    let (code, report, _) = r.verify(&["--since", "2999-01-01T00:00:00Z"]);
    assert_eq!((code, report["artifacts"].clone()), (Some(0), json!(0)));
}

#[test]
fn a_squash_merged_pull_request_whose_artifact_was_edited_on_its_branch_is_tampered() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let edited = r
        .show("rotate", &path)
        .replace("- Verification: ", "- Verification: all green; ");
    r.push("rotate", &[(&path, Some(&edited))], "mallory", "Polish");
    let squash = r.merge(7, Style::Squash);
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        kinds(&report),
        [("tampered".to_owned(), path.clone(), None)],
        "{report:#}"
    );
    // GitHub's squash commit brought the difference in; its author is the pull request's.
    assert_eq!(report["findings"][0]["commit"], squash.as_str());
    assert_eq!(report["findings"][0]["author"], "alice <alice@example.com>");
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("differs from every version rotor committed")),
        "{report:#}"
    );
}

#[test]
fn an_artifact_removed_while_a_later_record_of_its_ref_exists_is_tampered() {
    let mut r = one_rotation(1);
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Merge);
    let path = r.artifact(7);
    let sha = r.push("main", &[(&path, None)], "mallory", "Tidy up old records");
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        kinds(&report),
        [("tampered".to_owned(), path, Some(r.s.names[0].clone()))],
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["commit"], sha.as_str());
    assert_eq!(
        report["findings"][0]["author"],
        "mallory <mallory@example.com>"
    );
    assert_eq!(
        report["artifacts"], 1,
        "the removed artifact is not counted"
    );
}

#[test]
fn a_rollback_section_appended_by_someone_else_is_tampered_and_inconsistent() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let text = r.show("main", &path);
    let at = text.find("<!-- rotor:artifact").expect("block");
    let forged = format!(
        "{}## Rollback\n- Date: 2026-11-27\n- Operator: bob (internal_admin)\n- Secret Ref: {}\n- Provider: supabase\n- Result: rolled_back\n- Verification: ok\n- Audit Evidence: evt_999999\n- Reason: none\n\n{}",
        &text[..at],
        r.s.names[0],
        &text[at..]
    );
    let sha = r.push(
        "main",
        &[(&path, Some(&forged))],
        "mallory",
        "Record the rollback",
    );
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        kinds(&report),
        [
            ("tampered".to_owned(), path.clone(), None),
            ("inconsistent".to_owned(), path, None),
        ],
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["commit"], sha.as_str());
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 `## Rollback` sections, the block records 0")),
        "{report:#}"
    );
}

#[test]
fn a_pointer_moved_by_hand_between_two_rotations_is_a_gap_and_after_the_last_a_drift() {
    let mut r = one_rotation(1);
    r.provision(0);
    r.provision(0);
    // Someone moves the pointer from 2 (where #7 left it) to 3, outside rotor.
    r.move_by_hand(0, "3");
    r.open(8, &[0], Some("4"));
    let report = r.apply(8, 0);
    assert_eq!(report["refs"][0]["from"], "3", "{report:#}");
    r.merge(8, Style::Merge);
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let name = r.s.names[0].clone();
    assert_eq!(
        kinds(&report),
        [("gap".to_owned(), r.artifact(8), Some(name.clone()))],
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["previous_artifact"], r.artifact(7));
    // After the last rotation too: that is drift.
    r.move_by_hand(0, "2");
    let (code, report, _) = r.verify(&[]);
    assert_eq!(code, Some(1));
    assert_eq!(
        kinds(&report),
        [
            ("gap".to_owned(), r.artifact(8), Some(name.clone())),
            ("drift".to_owned(), r.artifact(8), Some(name.clone())),
        ],
        "{report:#}"
    );
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("designates 2") && m.contains("left it on 4")),
        "{report:#}"
    );
    // Offline, the live state is not read: the gap only.
    let (code, report, _) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        kinds(&report),
        [("gap".to_owned(), r.artifact(8), Some(name))]
    );
}

/// The application's audit events, as its stand-in holds them.
fn app_events(r: &Record) -> Vec<Value> {
    let state: Value = reqwest::blocking::get(format!("{}/_sandbox/app", r.s.url))
        .expect("sandbox")
        .json()
        .expect("json");
    state["events"].as_array().expect("events").clone()
}

#[test]
fn an_audit_event_removed_or_changed_in_the_application_is_missing_or_mismatched() {
    let r = one_rotation(2);
    // Small pages: the lookup pages back by cursor.
    r.app_knob("audit_page_size", json!(1));
    let events = app_events(&r);
    let of = |name: &str| {
        events
            .iter()
            .find(|e| e["metadata"]["ref"] == name)
            .and_then(|e| e["id"].as_str())
            .expect("event")
            .to_owned()
    };
    let (gone, changed) = (of(&r.s.names[0]), of(&r.s.names[1]));
    let client = reqwest::blocking::Client::new();
    let resp = client
        .delete(format!("{}/_sandbox/app/events/{gone}", r.s.url))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let resp = client
        .patch(format!("{}/_sandbox/app/events/{changed}", r.s.url))
        .json(&json!({"metadata": {"operation": "rollback"}}))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let path = r.artifact(7);
    assert_eq!(
        kinds(&report),
        [
            (
                "audit_missing".to_owned(),
                path.clone(),
                Some(r.s.names[0].clone())
            ),
            (
                "audit_mismatch".to_owned(),
                path,
                Some(r.s.names[1].clone())
            ),
        ],
        "{report:#}"
    );
    assert!(
        report["findings"][1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("metadata.operation is \"rollback\", not \"rotate\"")),
        "{report:#}"
    );
    // The application was only read.
    let log: Vec<String> = reqwest::blocking::get(format!("{}/_sandbox/app/requests", r.s.url))
        .expect("log")
        .json()
        .expect("json");
    assert!(log.iter().any(|l| l == "GET /api/v1/audit/events"));
    // Offline skips the audit log: nothing found.
    let (code, report, _) = r.verify(&["--offline"]);
    assert_eq!((code, kinds(&report)), (Some(0), Vec::new()));
}

#[test]
fn visible_fields_that_disagree_with_the_block_are_inconsistent() {
    let mut r = Record::new(1);
    // An override that always shows success: rotor writes it, so nothing is tampered with,
    // but what a reader sees is not what the record says.
    let template = fs::read_to_string(crate::common::root().join("templates/artifact.md.j2"))
        .expect("template")
        .replace("- Result: {{ result }}", "- Result: success");
    r.push(
        "main",
        &[(".github/rotor/templates/artifact.md.j2", Some(&template))],
        "alice",
        "Our own artifact template",
    );
    r.app_knob("bad_versions", json!(["2"]));
    assert_eq!(r.apply(7, 1)["result"], "rolled_back");
    r.merge(7, Style::Rebase);
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{stderr}");
    let path = r.artifact(7);
    assert_eq!(
        kinds(&report),
        [("inconsistent".to_owned(), path.clone(), None)],
        "{report:#}"
    );
    assert_eq!(
        report["findings"][0]["message"],
        format!("{path}: Result shows \"success\", the block says \"rolled_back\"")
    );
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let r = one_rotation(1);
    let ws = r.workspace("schedule");
    for (args, says) in [
        (vec!["verify", "--since", "yesterday"], "YYYY-MM-DD"),
        (
            vec!["verify", "--format", "html"],
            "format of rotor evidence only",
        ),
        (
            vec!["verify", "--config", ".github/none.yml"],
            "there is no .github/none.yml on main",
        ),
    ] {
        let (code, stdout, stderr) = r.rotor_in(&ws).args(&args).run_unchecked();
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            format!("{stdout}{stderr}").contains(says),
            "{args:?}: {stdout}{stderr}"
        );
    }
    crate::checkout::assert_usable(&ws, true);
}

#[test]
fn an_application_that_stays_unreachable_is_exit_5() {
    let r = one_rotation(1);
    let config = r
        .show("main", ".github/rotor.yml")
        .replace(&r.s.url, "http://127.0.0.1:9");
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "alice",
        "Move the application",
    );
    let ws = r.workspace("schedule");
    let (code, stdout, stderr) = r
        .rotor_in(&ws)
        .args(["verify", "--format", "json"])
        .run_unchecked();
    assert_eq!(code, Some(5), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "error");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unavailable")),
        "{report:#}"
    );
    // Offline, the application is not needed.
    let (code, _, _) = r
        .rotor_in(&ws)
        .args(["verify", "--offline"])
        .run_unchecked();
    assert_eq!(code, Some(0));
}
