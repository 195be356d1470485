//! Git: trusted loading from commits, and the artifact commit.
//!
//! Policy (config, templates) is read from the default branch's tip and the request from the
//! PR's exact head SHA, both as git objects, never from the working tree (on GitHub the
//! workspace is often the merge commit). The checkout is whatever `actions/checkout` made:
//! usually one grafted commit (`fetch-depth: 1`), sometimes a full clone, with or without
//! credentials in `.git/config`.
//!
//! NOTE: the work is split between two tools on purpose. The network (fetch, push) goes through
//! the runner's own `git` program, the one that made the checkout: libgit2 supports shallow
//! repositories only partly, and a fetch through it into a `fetch-depth: 1` checkout fails and
//! rewrites `.git/shallow`, breaking `git log` for every later step. libgit2 keeps the object
//! work (reading blobs, building trees, writing the commit), which needs no network. The token
//! reaches `git` as environment-scoped config (`GIT_CONFIG_*`), the way actions/checkout sends
//! it, so it is in neither the process arguments nor `.git/config`.
//!
//! A shallow checkout stays shallow: what rotor fetches it fetches at depth 1, into refs of its
//! own (`refs/rotor/…`), without touching `refs/remotes/origin/*`, the index or the work tree.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use git2::{ObjectType, Oid, Repository};

use crate::secret::SecretString;

mod history;
mod publish;

/// A git failure, with what to check.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository cannot be opened.
    #[error("cannot open the git repository at {path}: {detail}; {hint}")]
    Open {
        /// Where.
        path: String,
        /// Why.
        detail: String,
        /// What to do: where the checkout is, when one lies a level down.
        hint: String,
    },
    /// The checkout belongs to another user (a container job), so git refuses to use it.
    #[error(
        "the git repository at {path} is owned by another user, so git refuses to use it (safe.directory); run `git config --global --add safe.directory {path}` in the job before rotor"
    )]
    NotOwned {
        /// The checkout.
        path: String,
    },
    /// The `git` program is missing or cannot be run.
    #[error(
        "cannot run the git program: {detail}; rotor needs git on PATH, as actions/checkout does"
    )]
    NoGit {
        /// Why.
        detail: String,
    },
    /// A commit is neither present nor fetchable.
    #[error("commit {sha} is not in the checkout and could not be fetched from origin: {detail}")]
    MissingCommit {
        /// The commit.
        sha: String,
        /// Why.
        detail: String,
    },
    /// A path in a commit is not a regular file.
    #[error("{path} at {sha} is a {kind}, not a regular file; rotor reads only regular files")]
    NotAFile {
        /// The path.
        path: String,
        /// The commit.
        sha: String,
        /// What it is.
        kind: &'static str,
    },
    /// The push kept losing the race to other commits.
    #[error(
        "pushing to {branch} kept being rejected after {attempts} attempts (others push to it at the same time)"
    )]
    PushRace {
        /// The branch.
        branch: String,
        /// How many times rotor tried.
        attempts: u32,
    },
    /// The remote refused the push for a reason other than a race: a protected branch, a
    /// pre-receive hook, a token without `contents: write`. Retrying cannot help.
    #[error("the remote refused the push to {branch}: {message}")]
    PushRefused {
        /// The branch.
        branch: String,
        /// The remote's own words.
        message: String,
    },
    /// GitHub refused to make the commit (`createCommitOnBranch`, `commit.via: api`) for a reason
    /// other than a moved branch: a ruleset, a protected branch, a token without
    /// `contents: write`. Retrying cannot help.
    #[error("GitHub refused the commit to {branch} (createCommitOnBranch): {message}")]
    CommitRefused {
        /// The branch.
        branch: String,
        /// GitHub's own words.
        message: String,
    },
    /// The pull request's branch no longer points at the head that was approved: rotor does not
    /// commit on top of commits nobody approved.
    #[error(
        "{branch} moved from the approved head {approved} to {found} after the approval (a push or a force-push): rotor commits the record only on the approved head"
    )]
    HeadMoved {
        /// The branch.
        branch: String,
        /// The head the gate approved.
        approved: String,
        /// Where the branch is now.
        found: String,
    },
    /// The remote stayed unreachable after retries.
    #[error("git {call}: origin stayed unreachable after {attempts} attempts: {detail}")]
    Unavailable {
        /// `fetch` or `push`.
        call: &'static str,
        /// How many times rotor tried.
        attempts: u32,
        /// The last failure, as git printed it.
        detail: String,
    },
    /// Anything else git reports.
    #[error("git: {0}")]
    Git(String),
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        Self::Git(e.message().to_owned())
    }
}

/// Who rotor commits as (`commit.author`).
#[derive(Debug, Clone)]
pub struct Author {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
}

/// How often `publish` re-applies its commit onto a branch that moved under it.
pub const PUBLISH_ATTEMPTS: u32 = 8;

/// The namespace of the refs rotor fetches into; nothing else in the checkout is touched.
const REF_NAMESPACE: &str = "refs/rotor";

/// A repository checkout.
pub struct GitRepo {
    repo: Repository,
    git_dir: PathBuf,
    token: Option<SecretString>,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.git_dir)
            .finish_non_exhaustive()
    }
}

/// How a `git` network command ended.
enum Ran {
    /// Exit 0.
    Ok(Output),
    /// The remote answered and refused, or a definite local error.
    Failed(String),
    /// Could not reach the remote (worth retrying).
    Unreachable(String),
}

/// What git prints when the network, not the request, failed.
fn is_network_failure(stderr: &str) -> bool {
    const SIGNS: &[&str] = &[
        "Could not resolve host",
        "Failed to connect",
        "Connection refused",
        "Connection timed out",
        "Connection reset",
        "Operation timed out",
        "unable to access",
        "The remote end hung up unexpectedly",
        "early EOF",
        "RPC failed",
        "returned error: 5",
        "Empty reply from server",
        "SSL_ERROR",
        "gnutls_handshake",
        "Could not read from remote repository",
    ];
    // A 401/403 is an answer, not an outage.
    let refused = [
        "returned error: 401",
        "returned error: 403",
        "Authentication failed",
    ];
    !refused.iter().any(|r| stderr.contains(r)) && SIGNS.iter().any(|s| stderr.contains(s))
}

/// A checkout one level below `dir` (actions/checkout with `path: <dir>`), if there is one.
pub fn nested_checkout(dir: &Path) -> Option<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().join(".git").exists())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    found.sort();
    found.into_iter().next()
}

/// What to do when `dir` is no checkout: name the one a level down, as actions/checkout's
/// `path:` puts it, or say where rotor must run.
pub fn checkout_hint(dir: &Path) -> String {
    match nested_checkout(dir) {
        Some(sub) => format!(
            "the workspace holds a checkout in {sub}/ (actions/checkout's `path: {sub}`): give rotor's action the same `path: {sub}`, or pass --repo {sub}"
        ),
        None => "run rotor in a checkout (actions/checkout) or pass --repo".to_owned(),
    }
}

impl GitRepo {
    /// Opens the repository at (or above) `path`.
    pub fn open(path: &Path, token: Option<SecretString>) -> Result<Self, GitError> {
        let repo = Repository::discover(path).map_err(|e| {
            if e.code() == git2::ErrorCode::Owner {
                GitError::NotOwned {
                    path: path
                        .canonicalize()
                        .unwrap_or_else(|_| path.to_owned())
                        .display()
                        .to_string(),
                }
            } else {
                GitError::Open {
                    path: path.display().to_string(),
                    detail: e.message().to_owned(),
                    hint: checkout_hint(path),
                }
            }
        })?;
        let git_dir = repo.path().to_owned();
        Ok(Self {
            repo,
            git_dir,
            token,
        })
    }

    /// Whether the checkout is shallow (`.git/shallow`, actions/checkout's default).
    pub fn is_shallow(&self) -> bool {
        self.repo.is_shallow()
    }

    /// `git --git-dir <dir> ARGS`, with the token as environment-scoped config when origin is
    /// HTTP(S), never prompting.
    fn git(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("--git-dir").arg(&self.git_dir).args(args);
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        let mut config: Vec<(String, String)> = vec![("protocol.version".into(), "2".into())];
        if let (Some(token), Some(base)) = (&self.token, self.origin_http_base()) {
            let key = format!("http.{base}.extraheader");
            // An empty value first resets the list, so a header actions/checkout persisted in
            // .git/config is not sent beside this one (GitHub refuses duplicate Authorization).
            config.push((key.clone(), String::new()));
            config.push((
                key,
                format!(
                    "AUTHORIZATION: basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("x-access-token:{}", token.expose()))
                ),
            ));
            // The header is scoped to origin's URL; a redirect elsewhere must not carry it.
            config.push(("http.followRedirects".into(), "false".into()));
        }
        cmd.env("GIT_CONFIG_COUNT", config.len().to_string());
        for (i, (key, value)) in config.into_iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{i}"), key);
            cmd.env(format!("GIT_CONFIG_VALUE_{i}"), value);
        }
        cmd
    }

    /// `scheme://host[:port]/` of origin's URL when it is HTTP(S), the scope of the header.
    fn origin_http_base(&self) -> Option<String> {
        let remote = self.repo.find_remote("origin").ok()?;
        let url = url::Url::parse(remote.url().ok()?).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        Some(format!("{}/", url.origin().ascii_serialization()))
    }

    /// Runs a network command with bounded retries of network failures (fetch and a push that
    /// did not reach the remote are safe to repeat).
    fn network(&self, call: &'static str, args: &[&str]) -> Result<Output, GitError> {
        let policy = crate::retry::Policy::default();
        let mut last = String::new();
        for attempt in 1..=policy.attempts {
            if attempt > 1 {
                std::thread::sleep(policy.delay(attempt - 1, None));
            }
            match self.run(args)? {
                Ran::Ok(out) => return Ok(out),
                Ran::Failed(detail) => return Err(GitError::Git(detail)),
                Ran::Unreachable(detail) => last = detail,
            }
        }
        Err(GitError::Unavailable {
            call,
            attempts: policy.attempts,
            detail: last,
        })
    }

    fn run(&self, args: &[&str]) -> Result<Ran, GitError> {
        let out = self
            .git(args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| GitError::NoGit {
                detail: e.to_string(),
            })?;
        if out.status.success() {
            return Ok(Ran::Ok(out));
        }
        let stderr = self.scrub(&String::from_utf8_lossy(&out.stderr));
        Ok(if is_network_failure(&stderr) {
            Ran::Unreachable(stderr.trim().to_owned())
        } else {
            Ran::Failed(stderr.trim().to_owned())
        })
    }

    /// Git never prints the header, but an error must never carry the token whatever happens.
    fn scrub(&self, text: &str) -> String {
        match &self.token {
            Some(t) if !t.expose().is_empty() => text.replace(t.expose(), "***"),
            _ => text.to_owned(),
        }
    }

    /// Fetches `refspecs` from origin: at depth 1 in a shallow checkout (which stays shallow),
    /// whole otherwise; the refs configured for origin are left alone (`--refmap=`).
    fn fetch(&self, refspecs: &[String]) -> Result<(), GitError> {
        let mut args = vec![
            "fetch",
            "--quiet",
            "--no-tags",
            "--no-recurse-submodules",
            "--refmap=",
        ];
        if self.is_shallow() {
            args.push("--depth=1");
        }
        args.push("origin");
        args.extend(refspecs.iter().map(String::as_str));
        self.network("fetch", &args).map(|_| ())
    }

    /// Whether the commit is present.
    pub fn has_commit(&self, sha: &str) -> bool {
        Oid::from_str(sha)
            .ok()
            .and_then(|oid| self.repo.find_commit(oid).ok())
            .is_some()
    }

    /// Makes sure commit `sha` is present, fetching it from origin if it is not: first through
    /// `source` (a ref of origin that should point at it), then by the SHA itself, which
    /// GitHub serves for any reachable commit.
    pub fn ensure_commit(&self, sha: &str, source: &str) -> Result<(), GitError> {
        if self.has_commit(sha) {
            return Ok(());
        }
        let missing = |detail: String| GitError::MissingCommit {
            sha: sha.to_owned(),
            detail,
        };
        let local = format!("{REF_NAMESPACE}/fetched/{}", sha);
        let through_ref = self.fetch(&[format!("+{source}:{local}")]);
        if self.has_commit(sha) {
            return Ok(());
        }
        match self.fetch(&[format!("+{sha}:{local}")]) {
            Ok(()) if self.has_commit(sha) => Ok(()),
            Ok(()) => Err(missing(format!("fetching {source} did not bring it"))),
            Err(e @ GitError::Unavailable { .. }) => Err(e),
            Err(e) => Err(missing(match through_ref {
                Err(first) => format!("{first}; {e}"),
                Ok(()) => e.to_string(),
            })),
        }
    }

    /// The bytes of `path` at commit `sha`; `None` when there is no such path.
    pub fn read_file(&self, sha: &str, path: &str) -> Result<Option<Vec<u8>>, GitError> {
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        let tree = commit.tree()?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(entry) => entry,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let kind = match (entry.kind(), entry.filemode()) {
            (Some(ObjectType::Blob), 0o120_000) => Some("symbolic link"),
            (Some(ObjectType::Blob), _) => None,
            (Some(ObjectType::Tree), _) => Some("directory"),
            (Some(ObjectType::Commit), _) => Some("submodule"),
            _ => Some("special entry"),
        };
        if let Some(kind) = kind {
            return Err(GitError::NotAFile {
                path: path.to_owned(),
                sha: sha.to_owned(),
                kind,
            });
        }
        let blob = entry.to_object(&self.repo)?.peel_to_blob()?;
        Ok(Some(blob.content().to_vec()))
    }

    /// The names of the entries of directory `dir` at commit `sha` (empty when absent).
    pub fn list_dir(&self, sha: &str, dir: &str) -> Result<Vec<String>, GitError> {
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        let tree = commit.tree()?;
        let sub = match tree.get_path(Path::new(dir)) {
            Ok(entry) => entry.to_object(&self.repo)?.peel_to_tree()?,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        Ok(sub
            .iter()
            .filter_map(|e| e.name().ok().map(str::to_owned))
            .collect())
    }

    /// Fetches `branch` from origin (into rotor's own ref) and returns its tip.
    pub fn fetch_branch(&self, branch: &str) -> Result<String, GitError> {
        let local = format!("{REF_NAMESPACE}/branches/{branch}");
        self.fetch(&[format!("+refs/heads/{branch}:{local}")])?;
        Ok(self.repo.refname_to_id(&local)?.to_string())
    }
}

/// Someone as git records them (author or committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The email address.
    pub email: String,
}

/// A commit as the record's history reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Its SHA.
    pub sha: String,
    /// Who wrote it.
    pub author: Person,
    /// Who committed it.
    pub committer: Person,
    /// Its parents' SHAs, the first parent first.
    pub parents: Vec<String>,
    /// When it was committed (seconds since the epoch).
    pub time: i64,
}

/// A name in a directory and what it is now: its id and whether it is a regular file, or
/// `None` when it is gone.
pub type EntryChange = (String, Option<(String, bool)>);

/// One side of a changed entry: its id and whether it is a tree.
type Side = Option<(Oid, bool)>;

/// An entry of a directory at some commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Its name in the directory.
    pub name: String,
    /// Its object id.
    pub id: String,
    /// Whether it is a regular file (not a link, directory or submodule).
    pub is_file: bool,
}

#[cfg(test)]
mod tests {
    use super::publish::{Refusal, insert, push_refusal};
    use super::*;
    use git2::Signature;

    /// A commit whose tree holds `files` (path, content), on `parent`.
    fn commit_files(repo: &Repository, files: &[(&str, &str)], parent: Option<Oid>) -> Oid {
        let mut tree: Option<Oid> = None;
        for (path, content) in files {
            let blob = repo.blob(content.as_bytes()).expect("blob");
            let base = tree.map(|t| repo.find_tree(t).expect("tree"));
            let parts: Vec<&str> = path.split('/').collect();
            tree = Some(insert(repo, base.as_ref(), &parts, blob).expect("insert"));
        }
        let tree = repo.find_tree(tree.expect("files")).expect("tree");
        let sig = Signature::now("t", "t@example.com").expect("sig");
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| repo.find_commit(p).expect("parent"))
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        repo.commit(None, &sig, &sig, "m", &tree, &refs)
            .expect("commit")
    }

    #[test]
    fn tree_changes_and_changed_paths_agree_with_libgit2s_diff() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = Repository::init_bare(dir.path()).expect("init");
        let first = commit_files(
            &repo,
            &[
                ("d/a.md", "a"),
                ("d/b.md", "b"),
                ("d/b/x.md", "x"),
                ("d/c.md", "c"),
                ("top.txt", "t"),
            ],
            None,
        );
        let second = commit_files(
            &repo,
            &[
                ("d/a.md", "a2"),
                ("d/b/x.md", "x"),
                ("d/b.mdx", "new"),
                ("d/c.md", "c"),
                ("d/e.md", "e"),
                ("top.txt", "t"),
            ],
            Some(first),
        );
        let git = GitRepo::open(dir.path(), None).expect("open");
        let (one, two) = (first.to_string(), second.to_string());
        let changes = git
            .tree_changes(
                git.tree_at(&one, "d").expect("tree").as_deref(),
                git.tree_at(&two, "d").expect("tree").as_deref(),
            )
            .expect("changes");
        let names: Vec<(&str, bool)> = changes
            .iter()
            .map(|(n, now)| (n.as_str(), now.is_some()))
            .collect();
        assert_eq!(
            names,
            [
                ("a.md", true),
                ("b.md", false),
                ("b.mdx", true),
                ("e.md", true)
            ]
        );
        // libgit2's own diff says the same.
        let a = repo.find_commit(first).expect("c").tree().expect("t");
        let b = repo.find_commit(second).expect("c").tree().expect("t");
        let diff = repo
            .diff_tree_to_tree(Some(&a), Some(&b), None)
            .expect("diff");
        let mut expected: Vec<String> = diff
            .deltas()
            .filter_map(|d| d.new_file().path().or(d.old_file().path()))
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        expected.sort();
        assert_eq!(git.changed_paths(&two).expect("paths"), expected);
        assert_eq!(
            git.changed_paths(&one).expect("root"),
            ["d/a.md", "d/b.md", "d/b/x.md", "d/c.md", "top.txt"]
        );
    }

    #[test]
    fn push_refusals_are_told_apart() {
        assert_eq!(
            push_refusal(
                "To origin\n!\tabc:refs/heads/rotate\t[rejected] (fetch first)\nDone\n",
                "error: failed to push some refs"
            ),
            Refusal::Race
        );
        assert_eq!(
            push_refusal(
                "To origin\n!\tabc:refs/heads/rotate\t[remote rejected] (pre-receive hook declined)\nDone\n",
                "remote: GH006: Protected branch update failed for refs/heads/rotate.\nremote: error: Changes must be made through a pull request.\nerror: failed to push some refs"
            ),
            Refusal::Final(
                "GH006: Protected branch update failed for refs/heads/rotate. / error: Changes must be made through a pull request. ([remote rejected] (pre-receive hook declined))"
                    .to_owned()
            )
        );
        assert_eq!(
            push_refusal(
                "To origin\n!\tabc:refs/heads/main\t[remote rejected] (failed to update ref)\nDone\n",
                "error: cannot lock ref 'refs/heads/main': is at 96229 but expected 5837b\nerror: failed to push some refs"
            ),
            Refusal::Race,
            "two pushes at once: the loser's ref update lost"
        );
        assert!(matches!(
            push_refusal(
                "",
                "fatal: unable to access 'https://127.0.0.1:1/x.git/': Failed to connect to 127.0.0.1 port 1"
            ),
            Refusal::Unreachable(_)
        ));
        assert_eq!(
            push_refusal(
                "",
                "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 403"
            ),
            Refusal::Final(
                "fatal: unable to access 'https://h/x.git/': The requested URL returned error: 403"
                    .to_owned()
            )
        );
    }
}
