//! `createCommitOnBranch` as GitHub performs it, on the bare repository the scenario names
//! (`git_dir`, the same one the tests use as origin):
//!
//! - the new tree is the expected head's with the file changes applied;
//! - the author is the token's identity (`<login> <<id>+<login>@users.noreply.github.com>`),
//!   the committer `GitHub <noreply@github.com>`, and the commit carries a `gpgsig`: a detached
//!   OpenPGP signature over the commit object, made with the scenario's key (a test key by
//!   default), the way GitHub signs with its web-flow key;
//! - `expectedHeadOid` is a compare-and-swap: the branch moves with `git update-ref <new> <old>`,
//!   which fails when the branch is elsewhere, answered with GitHub's `STALE_DATA` error;
//! - the repository's `pre-receive` hook (a ruleset) may refuse the commit, answered as
//!   GitHub's `UNPROCESSABLE` rule violation; `post-receive` runs after, as after any push (it
//!   keeps `refs/pull/<n>/head` current).
//!
//! The knob `commit_races` makes another writer land on the branch first, once per count: the
//! expected head is then stale, as when someone pushes between rotor's read and its commit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use pgp::composed::{Deserializable as _, DetachedSignature, SignedSecretKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::types::Password;
use serde_json::{Map, Value, json};

use crate::github::{Shared, identity, user_id};

/// A field's failure as GitHub reports it: the error `type` and its message.
pub(crate) struct FieldError {
    /// GitHub's error type (`STALE_DATA`, `NOT_FOUND`, `UNPROCESSABLE`, `FORBIDDEN`).
    pub(crate) kind: &'static str,
    /// The message.
    pub(crate) message: String,
}

/// The test key the stand-in signs with unless the scenario names another (its public half
/// is `tests/fixtures/signing/current.asc`).
const TEST_KEY: &str = include_str!("../../tests/fixtures/signing/current.secret.asc");

fn refused(kind: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        kind,
        message: message.into(),
    }
}

/// What one commit needs.
struct Plan {
    git_dir: PathBuf,
    branch: String,
    expected: String,
    additions: Vec<(String, Vec<u8>)>,
    deletions: Vec<String>,
    message: String,
    author: (String, String),
    key: String,
    race: bool,
}

/// Performs the mutation for `token` with `args` (already validated against the schema).
pub(crate) async fn create_commit_on_branch(
    gh: &Shared,
    token: Option<&str>,
    args: &Map<String, Value>,
) -> Result<Value, FieldError> {
    let plan = {
        let mut s = gh.scenario();
        let input = args.get("input").cloned().unwrap_or(Value::Null);
        let text = |p: &str| input.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let repo = text("/branch/repositoryNameWithOwner").unwrap_or_default();
        if repo != format!("{}/{}", s.owner, s.repo) {
            return Err(refused(
                "NOT_FOUND",
                format!("Could not resolve to a Repository with the name '{repo}'."),
            ));
        }
        if let Some(kind) = s.commit_refused.clone() {
            return Err(FieldError {
                kind: if kind == "BRANCH_PROTECTION_RULE_VIOLATION" {
                    "BRANCH_PROTECTION_RULE_VIOLATION"
                } else {
                    "UNPROCESSABLE"
                },
                message: format!(
                    "Changes must be made through a pull request. ({kind} on {})",
                    text("/branch/branchName").unwrap_or_default()
                ),
            });
        }
        let Some(git_dir) = s.git_dir.clone() else {
            return Err(refused(
                "NOT_FOUND",
                "the stand-in has no repository to commit to (set git_dir in the scenario)",
            ));
        };
        let (Some(branch), Some(expected)) = (text("/branch/branchName"), text("/expectedHeadOid"))
        else {
            return Err(refused(
                "UNPROCESSABLE",
                "branch and expectedHeadOid are required",
            ));
        };
        let mut additions = Vec::new();
        for a in input
            .pointer("/fileChanges/additions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let path = a.get("path").and_then(Value::as_str).unwrap_or_default();
            let contents = a
                .get("contents")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(contents)
                .map_err(|e| refused("UNPROCESSABLE", format!("contents of {path}: {e}")))?;
            additions.push((path.to_owned(), bytes));
        }
        let deletions = input
            .pointer("/fileChanges/deletions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("path").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let headline = text("/message/headline").unwrap_or_default();
        let message = match text("/message/body").filter(|b| !b.is_empty()) {
            Some(body) => format!("{headline}\n\n{body}\n"),
            None => format!("{headline}\n"),
        };
        let login = identity(&s, token);
        let email = format!("{}+{login}@users.noreply.github.com", user_id(&login));
        let race = s.commit_races > 0;
        if race {
            s.commit_races -= 1;
        }
        Plan {
            git_dir: PathBuf::from(git_dir),
            branch,
            expected: expected.to_ascii_lowercase(),
            additions,
            deletions,
            message,
            author: (login, email),
            key: s.signing_key.clone().unwrap_or_else(|| TEST_KEY.to_owned()),
            race,
        }
    };
    let branch = plan.branch.clone();
    let made = tokio::task::spawn_blocking(move || commit(&plan))
        .await
        .map_err(|e| refused("INTERNAL", e.to_string()))??;
    Ok(json!({
        "clientMutationId": Value::Null,
        "commit": {
            "oid": made,
            "abbreviatedOid": &made[..7],
            "url": format!("https://github.com/commit/{made}"),
        },
        "ref": {"name": branch, "prefix": "refs/heads/", "id": format!("REF_{branch}")},
    }))
}

/// Runs `git` in `dir` with `stdin`; its trimmed stdout, or its stderr as the error.
fn git(
    dir: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    index: Option<&Path>,
) -> Result<String, String> {
    use std::io::Write as _;
    let mut cmd = Command::new("git");
    cmd.current_dir(dir)
        .env("GIT_DIR", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
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
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(bytes).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

fn internal(e: String) -> FieldError {
    refused("INTERNAL", e)
}

/// The commit, signed, and the branch moved to it.
fn commit(plan: &Plan) -> Result<String, FieldError> {
    let dir = &plan.git_dir;
    let refname = format!("refs/heads/{}", plan.branch);
    let Ok(tip) = git(
        dir,
        &["rev-parse", "--verify", &format!("{refname}^{{commit}}")],
        None,
        None,
    ) else {
        return Err(refused(
            "NOT_FOUND",
            format!("A ref named \"{refname}\" does not exist."),
        ));
    };
    if plan.race {
        // Someone else's push lands first.
        let theirs = write_commit(
            dir,
            &tip,
            &[(
                format!("race/{}.txt", fastrand()),
                b"another writer\n".to_vec(),
            )],
            &[],
            "another writer's commit\n",
            ("someone", "someone@example.com"),
            ("someone", "someone@example.com"),
            None,
        )?;
        git(dir, &["update-ref", &refname, &theirs, &tip], None, None).map_err(internal)?;
        let _ = run_hook(dir, "post-receive", &tip, &theirs, &refname);
    }
    if git(
        dir,
        &["cat-file", "-e", &format!("{}^{{commit}}", plan.expected)],
        None,
        None,
    )
    .is_err()
    {
        return Err(refused(
            "UNPROCESSABLE",
            format!("No commit exists with the OID {}", plan.expected),
        ));
    }
    let made = write_commit(
        dir,
        &plan.expected,
        &plan.additions,
        &plan.deletions,
        &plan.message,
        (&plan.author.0, &plan.author.1),
        ("GitHub", "noreply@github.com"),
        Some(&plan.key),
    )?;
    let stale = || {
        refused(
            "STALE_DATA",
            format!(
                "Expected branch to point to \"{}\" but it did not. Pull and try again.",
                plan.expected
            ),
        )
    };
    let current = git(dir, &["rev-parse", &refname], None, None).map_err(internal)?;
    if current != plan.expected {
        return Err(stale());
    }
    if let Err(message) = run_hook(dir, "pre-receive", &plan.expected, &made, &refname) {
        return Err(refused(
            "UNPROCESSABLE",
            format!("Repository rule violations found\n\n{message}"),
        ));
    }
    // The compare-and-swap itself: git moves the ref only from the expected head.
    if git(
        dir,
        &["update-ref", &refname, &made, &plan.expected],
        None,
        None,
    )
    .is_err()
    {
        return Err(stale());
    }
    let _ = run_hook(dir, "post-receive", &plan.expected, &made, &refname);
    Ok(made)
}

/// A commit object on `parent` with the changes, written to the repository; with `key`, signed.
#[allow(clippy::too_many_arguments)]
fn write_commit(
    dir: &Path,
    parent: &str,
    additions: &[(String, Vec<u8>)],
    deletions: &[String],
    message: &str,
    author: (&str, &str),
    committer: (&str, &str),
    key: Option<&str>,
) -> Result<String, FieldError> {
    let index = tempfile_path(dir);
    let result = (|| {
        git(dir, &["read-tree", parent], None, Some(&index)).map_err(internal)?;
        for (path, bytes) in additions {
            let blob =
                git(dir, &["hash-object", "-w", "--stdin"], Some(bytes), None).map_err(internal)?;
            git(
                dir,
                &[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    &format!("100644,{blob},{path}"),
                ],
                None,
                Some(&index),
            )
            .map_err(|e| refused("UNPROCESSABLE", e))?;
        }
        for path in deletions {
            // Mode 0 removes the entry; `--force-remove` would want a work tree.
            let line = format!("0 {}\t{path}\n", "0".repeat(40));
            git(
                dir,
                &["update-index", "--index-info"],
                Some(line.as_bytes()),
                Some(&index),
            )
            .map_err(internal)?;
        }
        git(dir, &["write-tree"], None, Some(&index)).map_err(internal)
    })();
    let _ = std::fs::remove_file(&index);
    let tree = result?;
    let now = chrono::Utc::now().timestamp();
    let mut object = format!(
        "tree {tree}\nparent {parent}\nauthor {} <{}> {now} +0000\ncommitter {} <{}> {now} +0000\n",
        author.0, author.1, committer.0, committer.1
    );
    let body = format!("\n{message}");
    if let Some(key) = key {
        let payload = format!("{object}{body}");
        let armored = sign(key, payload.as_bytes())?;
        let mut lines = armored.trim_end().lines();
        object.push_str(&format!("gpgsig {}\n", lines.next().unwrap_or_default()));
        for line in lines {
            object.push_str(&format!(" {line}\n"));
        }
    }
    object.push_str(&body);
    git(
        dir,
        &["hash-object", "-t", "commit", "-w", "--stdin"],
        Some(object.as_bytes()),
        None,
    )
    .map_err(internal)
}

/// A detached, armored OpenPGP signature over `data` with the armored secret key `key`.
fn sign(key: &str, data: &[u8]) -> Result<String, FieldError> {
    let (secret, _) = SignedSecretKey::from_string(key)
        .map_err(|e| internal(format!("the signing key cannot be read: {e}")))?;
    let sig = DetachedSignature::sign_binary_data(
        rand::thread_rng(),
        &secret.primary_key,
        &Password::empty(),
        HashAlgorithm::Sha256,
        data,
    )
    .map_err(|e| internal(format!("signing failed: {e}")))?;
    sig.to_armored_string(pgp::composed::ArmorOptions::default())
        .map_err(|e| internal(e.to_string()))
}

/// Runs the repository's hook `name`, if it has one, as git runs it for a push of `refname`
/// from `old` to `new`; `Err` holds what a refusing hook printed.
fn run_hook(dir: &Path, name: &str, old: &str, new: &str, refname: &str) -> Result<(), String> {
    use std::io::Write as _;
    let hook = dir.join("hooks").join(name);
    if !hook.exists() {
        return Ok(());
    }
    let mut child = Command::new(&hook)
        .current_dir(dir)
        .env("GIT_DIR", ".")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(format!("{old} {new} {refname}\n").as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .trim()
        .to_owned())
    }
}

/// A fresh index file's path inside the repository.
fn tempfile_path(dir: &Path) -> PathBuf {
    dir.join(format!("rotor-sandbox-index-{}", fastrand()))
}

fn fastrand() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
