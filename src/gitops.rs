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
use git2::{ObjectType, Oid, Repository, Signature};

use crate::secret::SecretString;

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

    /// A commit whose tree is `parent`'s with `path` set to `content`, and `parent` as its only
    /// parent; `None` when `path` already holds exactly `content` there.
    fn commit_file(
        &self,
        parent: &str,
        path: &str,
        content: &[u8],
        message: &str,
        author: &Author,
    ) -> Result<Option<Oid>, GitError> {
        let parent = self.repo.find_commit(Oid::from_str(parent)?)?;
        let tree = parent.tree()?;
        if let Ok(entry) = tree.get_path(Path::new(path))
            && entry.kind() == Some(ObjectType::Blob)
            && entry.filemode() == 0o100_644
            && entry.to_object(&self.repo)?.peel_to_blob()?.content() == content
        {
            return Ok(None);
        }
        let blob = self.repo.blob(content)?;
        let components: Vec<&str> = path.split('/').collect();
        let new_tree = insert(&self.repo, Some(&tree), &components, blob)?;
        let tree = self.repo.find_tree(new_tree)?;
        let sig = Signature::now(&author.name, &author.email)?;
        Ok(Some(self.repo.commit(
            None,
            &sig,
            &sig,
            message,
            &tree,
            &[&parent],
        )?))
    }

    /// Pushes `commit` to `branch` on origin without force: the server accepts it only as a
    /// fast-forward of the tip it was made on, so the push is a compare-and-swap. `Ok(false)`
    /// when the branch moved (a race, worth another attempt); any other refusal is final.
    fn push(&self, commit: Oid, branch: &str) -> Result<bool, GitError> {
        let spec = format!("{commit}:refs/heads/{branch}");
        let policy = crate::retry::Policy::default();
        let mut last = String::new();
        for attempt in 1..=policy.attempts {
            if attempt > 1 {
                std::thread::sleep(policy.delay(attempt - 1, None));
            }
            let out = self
                .git(&["push", "--porcelain", "origin", &spec])
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|e| GitError::NoGit {
                    detail: e.to_string(),
                })?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = self.scrub(&String::from_utf8_lossy(&out.stderr));
            if out.status.success() {
                return Ok(true);
            }
            match push_refusal(&stdout, &stderr) {
                Refusal::Race => return Ok(false),
                Refusal::Final(message) => {
                    return Err(GitError::PushRefused {
                        branch: branch.to_owned(),
                        message,
                    });
                }
                Refusal::Unreachable(detail) => last = detail,
            }
        }
        Err(GitError::Unavailable {
            call: "push",
            attempts: policy.attempts,
            detail: last,
        })
    }

    /// What the record at `path` on `tip` (the tip of `branch` just fetched) already settles:
    /// `Some(tip)` when nothing is to be committed (the file there satisfies `keep`, or holds
    /// exactly `content`), `None` when a commit of `content` on `tip` is due.
    ///
    /// With `approved` (a pull request's branch), the record's parent is that head, always: a
    /// branch that moved on (a push or a force-push after the gate) is [`GitError::HeadMoved`],
    /// never built upon; only rotor's own record of this outcome on top of that head (authored
    /// by `author`, committed by `committer`) is kept.
    #[allow(clippy::too_many_arguments)]
    pub fn settled(
        &self,
        branch: &str,
        tip: &str,
        path: &str,
        content: &[u8],
        author: &Author,
        committer: (&str, &str),
        keep: &dyn Fn(&[u8]) -> bool,
        approved: Option<&str>,
    ) -> Result<Option<String>, GitError> {
        if let Some(head) = approved
            && tip != head
        {
            // Kept only when it is the record itself: rotor's commit of that one file, on
            // the approved head.
            let info = self.commit_info(tip)?;
            let on_head = info.parents.first().map(String::as_str) == Some(head)
                && info.author.name == author.name
                && info.author.email == author.email
                && (info.committer.name.as_str(), info.committer.email.as_str()) == committer
                && self.changed_paths(tip)?.as_slice() == [path.to_owned()];
            let ours = on_head
                && matches!(self.read_file(tip, path), Ok(Some(existing)) if keep(&existing) || existing == content);
            if ours {
                return Ok(Some(tip.to_owned()));
            }
            return Err(GitError::HeadMoved {
                branch: branch.to_owned(),
                approved: head.to_owned(),
                found: tip.to_owned(),
            });
        }
        match self.read_file(tip, path) {
            Ok(Some(existing)) if keep(&existing) || existing == content => {
                Ok(Some(tip.to_owned()))
            }
            // Whatever else is at the path (a file, a symbolic link a contributor pushed) is
            // replaced by rotor's record.
            Ok(_) | Err(GitError::NotAFile { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Commits `content` at `path` on top of `branch` on origin and pushes it. When the branch
    /// moves under it, fetches the new tip, re-applies the file onto it and pushes again, a
    /// bounded number of times. Returns the commit now holding the file.
    ///
    /// What is already there is judged by [`GitRepo::settled`].
    #[allow(clippy::too_many_arguments)]
    pub fn publish(
        &self,
        branch: &str,
        path: &str,
        content: &[u8],
        message: &str,
        author: &Author,
        keep: &dyn Fn(&[u8]) -> bool,
        approved: Option<&str>,
    ) -> Result<String, GitError> {
        let policy = crate::retry::Policy::default();
        for attempt in 1..=PUBLISH_ATTEMPTS {
            if attempt > 1 {
                // Jittered backoff: two publishers that collided must not collide again in step.
                std::thread::sleep(policy.delay(attempt - 1, None));
            }
            let tip = self.fetch_branch(branch)?;
            let committer = (author.name.as_str(), author.email.as_str());
            if let Some(done) = self.settled(
                branch, &tip, path, content, author, committer, keep, approved,
            )? {
                return Ok(done);
            }
            let Some(commit) = self.commit_file(&tip, path, content, message, author)? else {
                return Ok(tip);
            };
            if self.push(commit, branch)? {
                return Ok(commit.to_string());
            }
        }
        Err(GitError::PushRace {
            branch: branch.to_owned(),
            attempts: PUBLISH_ATTEMPTS,
        })
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

/// Reading history: whole, not shallow, for `rotor verify` and `rotor evidence`.
///
/// NOTE: a shallow checkout cannot be deepened without changing it (`git fetch --unshallow`
/// rewrites `.git/shallow`, which later steps may rely on), so the history is fetched into a
/// separate bare repository (see [`GitRepo::history_clone`]) and read there; the checkout is
/// left exactly as it was.
impl GitRepo {
    /// Whether the checkout has a remote named `origin`.
    pub fn has_origin(&self) -> bool {
        self.repo.find_remote("origin").is_ok()
    }

    /// The branch `HEAD` is on, if it is on one.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.find_reference("HEAD").ok()?;
        head.symbolic_target()
            .ok()
            .flatten()
            .and_then(|t| t.strip_prefix("refs/heads/"))
            .map(str::to_owned)
    }

    /// The default branch as origin itself names it (`git ls-remote --symref origin HEAD`).
    pub fn origin_default_branch(&self) -> Result<Option<String>, GitError> {
        let out = self.network("ls-remote", &["ls-remote", "--symref", "origin", "HEAD"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().find_map(|l| {
            l.strip_prefix("ref: refs/heads/")
                .and_then(|rest| rest.split('\t').next())
                .map(str::to_owned)
        }))
    }

    /// origin's URL, a relative local path made absolute against the checkout.
    fn origin_url(&self) -> Result<String, GitError> {
        let remote = self.repo.find_remote("origin")?;
        let url = remote
            .url()
            .map_err(|_| GitError::Git("origin's URL is not UTF-8".to_owned()))?;
        let path = Path::new(url);
        // A URL (`https://…`, `file://…`) or scp-like address (`git@host:x`) is kept as is.
        if url.contains(':') || path.is_absolute() {
            return Ok(url.to_owned());
        }
        let base = self.repo.workdir().unwrap_or(&self.git_dir);
        Ok(base.join(path).to_string_lossy().into_owned())
    }

    /// A new, empty bare repository in `dir` whose origin is this checkout's origin, opened
    /// with the same token, into which history can be fetched whole.
    pub fn history_clone(&self, dir: &Path) -> Result<Self, GitError> {
        let url = self.origin_url()?;
        let repo = Repository::init_bare(dir)?;
        repo.remote("origin", &url)?;
        drop(repo);
        Self::open(dir, self.token.clone())
    }

    /// Fetches `refspecs` from origin whole, for a repository that is not shallow (a history
    /// clone). Sources that do not exist are an error, so callers use patterns or known refs.
    pub fn fetch_refs(&self, refspecs: &[String]) -> Result<(), GitError> {
        if refspecs.is_empty() {
            return Ok(());
        }
        self.fetch(refspecs)
    }

    /// The refs of origin matching `pattern` (e.g. `refs/pull/*/head`), with their commits
    /// (`git ls-remote`).
    pub fn remote_refs(&self, pattern: &str) -> Result<Vec<(String, String)>, GitError> {
        let out = self.network("ls-remote", &["ls-remote", "origin", pattern])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (sha, name) = l.split_once('\t')?;
                Some((name.to_owned(), sha.to_owned()))
            })
            .collect())
    }

    /// Fetches the commits `shas` (and their history) from origin by id, creating no ref: a
    /// few hundred pull request heads would otherwise be as many files.
    pub fn fetch_commits(&self, shas: &[String]) -> Result<(), GitError> {
        for chunk in shas.chunks(500) {
            let mut args = vec![
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-recurse-submodules",
                "--no-write-fetch-head",
                "origin",
            ];
            args.extend(chunk.iter().map(String::as_str));
            self.network("fetch", &args)?;
        }
        Ok(())
    }

    /// The commit `name` (a full ref name) points at, if it exists.
    pub fn ref_target(&self, name: &str) -> Option<String> {
        self.repo
            .refname_to_id(name)
            .ok()
            .and_then(|id| self.repo.find_commit(id).ok())
            .map(|c| c.id().to_string())
    }

    /// Every ref matching `glob` (e.g. `refs/pull/*/head`) with its commit.
    pub fn refs_matching(&self, glob: &str) -> Result<Vec<(String, String)>, GitError> {
        let mut out = Vec::new();
        for r in self.repo.references_glob(glob)? {
            let r = r?;
            if let (Ok(name), Ok(commit)) = (r.name(), r.peel_to_commit()) {
                out.push((name.to_owned(), commit.id().to_string()));
            }
        }
        Ok(out)
    }

    fn info(commit: &git2::Commit<'_>) -> CommitInfo {
        let person = |s: git2::Signature<'_>| Person {
            name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(s.email_bytes()).into_owned(),
        };
        CommitInfo {
            sha: commit.id().to_string(),
            author: person(commit.author()),
            committer: person(commit.committer()),
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
            time: commit.time().seconds(),
        }
    }

    /// One commit.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo, GitError> {
        Ok(Self::info(&self.repo.find_commit(Oid::from_str(sha)?)?))
    }

    /// The first-parent history of `tip`, oldest first: the default branch as its own
    /// commits and merges made it.
    pub fn first_parent_history(&self, tip: &str) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk()?;
        walk.push(Oid::from_str(tip)?)?;
        walk.simplify_first_parent()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mut out = Vec::new();
        for oid in walk {
            out.push(Self::info(&self.repo.find_commit(oid?)?));
        }
        Ok(out)
    }

    /// Every commit reachable from `tips` and not from `hide`, newest first.
    pub fn commits_between(
        &self,
        tips: &[String],
        hide: &[String],
    ) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk()?;
        for t in tips {
            walk.push(Oid::from_str(t)?)?;
        }
        for h in hide {
            walk.hide(Oid::from_str(h)?)?;
        }
        walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
        let mut out = Vec::new();
        for oid in walk {
            out.push(Self::info(&self.repo.find_commit(oid?)?));
        }
        Ok(out)
    }

    /// The id of the tree at `path` (a directory) in commit `sha`, if there is one.
    pub fn tree_at(&self, sha: &str, path: &str) -> Result<Option<String>, GitError> {
        let tree = self.repo.find_commit(Oid::from_str(sha)?)?.tree()?;
        match tree.get_path(Path::new(path)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => Ok(Some(e.id().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The entries of tree `id`.
    pub fn tree_entries(&self, id: &str) -> Result<Vec<DirEntry>, GitError> {
        let tree = self.repo.find_tree(Oid::from_str(id)?)?;
        Ok(tree
            .iter()
            .filter_map(|e| {
                Some(DirEntry {
                    name: e.name().ok()?.to_owned(),
                    id: e.id().to_string(),
                    is_file: e.kind() == Some(ObjectType::Blob)
                        && matches!(e.filemode(), 0o100_644 | 0o100_755),
                })
            })
            .collect())
    }

    /// The entries that differ between trees `old` and `new` (either may be absent): each
    /// name directly in them, with its new id and whether it is a regular file, or `None` when
    /// it is gone. Entries are compared in place, in git's order, without building paths: a
    /// commit that changes one file of a directory of thousands costs one pass over it.
    pub fn tree_changes(
        &self,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<Vec<EntryChange>, GitError> {
        let tree = |id: Option<&str>| -> Result<Option<git2::Tree<'_>>, GitError> {
            Ok(match id {
                Some(id) => Some(self.repo.find_tree(Oid::from_str(id)?)?),
                None => None,
            })
        };
        let (a, b) = (tree(old)?, tree(new)?);
        let mut out = Vec::new();
        merge_entries(a.as_ref(), b.as_ref(), |before, after| {
            let entry = after.or(before);
            if let Some(name) = entry.and_then(|e| e.name().ok()) {
                out.push((
                    name.to_owned(),
                    after.map(|e| {
                        (
                            e.id().to_string(),
                            e.kind() == Some(ObjectType::Blob)
                                && matches!(e.filemode(), 0o100_644 | 0o100_755),
                        )
                    }),
                ));
            }
        });
        Ok(out)
    }

    /// The id of the blob at `path` in commit `sha`, if a regular file is there.
    pub fn blob_at(&self, sha: &str, path: &str) -> Result<Option<String>, GitError> {
        let tree = self.repo.find_commit(Oid::from_str(sha)?)?.tree()?;
        match tree.get_path(Path::new(path)) {
            Ok(e) if e.kind() == Some(ObjectType::Blob) => Ok(Some(e.id().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of blob `id`.
    pub fn blob(&self, id: &str) -> Result<Vec<u8>, GitError> {
        Ok(self.repo.find_blob(Oid::from_str(id)?)?.content().to_vec())
    }

    /// The commit's signature (`gpgsig`, armored) and the bytes it signs, or `None` when the
    /// commit is not signed.
    pub fn signature(&self, sha: &str) -> Result<Option<(String, Vec<u8>)>, GitError> {
        match self.repo.extract_signature(&Oid::from_str(sha)?, None) {
            Ok((sig, data)) => Ok(Some((
                String::from_utf8_lossy(&sig).into_owned(),
                data.to_vec(),
            ))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The paths commit `sha` changes against its first parent (against nothing for a root
    /// commit), renames seen as a deletion and an addition. Only subtrees whose ids differ are
    /// entered, and entries are compared in place.
    pub fn changed_paths(&self, sha: &str) -> Result<Vec<String>, GitError> {
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        let tree = commit.tree()?;
        let parent = match commit.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let mut out = Vec::new();
        self.changed_under(parent.as_ref(), Some(&tree), "", &mut out)?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn changed_under(
        &self,
        old: Option<&git2::Tree<'_>>,
        new: Option<&git2::Tree<'_>>,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), GitError> {
        let mut pairs: Vec<(Side, Side, String)> = Vec::new();
        merge_entries(old, new, |before, after| {
            let is_tree = |e: &git2::TreeEntry<'_>| e.kind() == Some(ObjectType::Tree);
            if let Some(name) = after.or(before).and_then(|e| e.name().ok()) {
                pairs.push((
                    before.map(|e| (e.id(), is_tree(e))),
                    after.map(|e| (e.id(), is_tree(e))),
                    format!("{prefix}{name}"),
                ));
            }
        });
        for (before, after, path) in pairs {
            let sub = |side: Side| -> Result<Option<git2::Tree<'_>>, GitError> {
                Ok(match side {
                    Some((id, true)) => Some(self.repo.find_tree(id)?),
                    _ => None,
                })
            };
            let (a, b) = (sub(before)?, sub(after)?);
            if a.is_some() || b.is_some() {
                self.changed_under(a.as_ref(), b.as_ref(), &format!("{path}/"), out)?;
            }
            // A file on either side (or a tree turned into a file) is a change of this path.
            if before.is_some_and(|(_, t)| !t) || after.is_some_and(|(_, t)| !t) {
                out.push(path);
            }
        }
        Ok(())
    }
}

/// Walks two trees' entries together in git's order (a tree's name sorts as if it ended in
/// `/`) and calls `changed` with each pair that differs: `(None, Some)` added, `(Some, None)`
/// removed, `(Some, Some)` changed in id or mode.
fn merge_entries<'t>(
    old: Option<&'t git2::Tree<'_>>,
    new: Option<&'t git2::Tree<'_>>,
    mut changed: impl FnMut(Option<&git2::TreeEntry<'t>>, Option<&git2::TreeEntry<'t>>),
) {
    fn key<'e>(e: &'e git2::TreeEntry<'_>) -> (&'e [u8], u8) {
        let dir = e.kind() == Some(ObjectType::Tree);
        (e.name_bytes(), if dir { b'/' } else { 0 })
    }
    /// git's order: byte-wise by name, a tree's name continuing with `/`.
    fn order(a: &git2::TreeEntry<'_>, b: &git2::TreeEntry<'_>) -> std::cmp::Ordering {
        let ((na, ta), (nb, tb)) = (key(a), key(b));
        let common = na.len().min(nb.len());
        na[..common].cmp(&nb[..common]).then_with(|| {
            let next = |n: &[u8], t: u8| n.get(common).copied().unwrap_or(t);
            next(na, ta).cmp(&next(nb, tb))
        })
    }
    let (a_len, b_len) = (
        old.map_or(0, git2::Tree::len),
        new.map_or(0, git2::Tree::len),
    );
    let (mut i, mut j) = (0, 0);
    while i < a_len || j < b_len {
        let a = old.and_then(|t| t.get(i));
        let b = new.and_then(|t| t.get(j));
        match (&a, &b) {
            (Some(x), Some(y)) => match order(x, y) {
                std::cmp::Ordering::Equal => {
                    if x.id() != y.id() || x.filemode() != y.filemode() {
                        changed(a.as_ref(), b.as_ref());
                    }
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    changed(a.as_ref(), None);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    changed(None, b.as_ref());
                    j += 1;
                }
            },
            (Some(_), None) => {
                changed(a.as_ref(), None);
                i += 1;
            }
            (None, Some(_)) => {
                changed(None, b.as_ref());
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// Why a push failed.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    /// The branch moved since rotor fetched it (non-fast-forward): fetch and try again.
    Race,
    /// Refused for good (hook, protected branch, permission), with the remote's words.
    Final(String),
    /// The remote could not be reached.
    Unreachable(String),
}

/// Reads `git push --porcelain`'s status line and the remote's messages.
fn push_refusal(stdout: &str, stderr: &str) -> Refusal {
    // Porcelain: `!\t<src>:<dst>\t[rejected] (fetch first)` for a race,
    // `!\t…\t[remote rejected] (pre-receive hook declined)` for a hook or protection.
    let status = stdout
        .lines()
        .find(|l| l.starts_with('!'))
        .and_then(|l| l.split('\t').nth(2))
        .unwrap_or("");
    let remote: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote: "))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // The branch moved under the push: refused as not a fast-forward, or, when two pushes
    // reach the server together, the loser's ref update finds another value than expected.
    let moved = (status.starts_with("[rejected]")
        && (status.contains("non-fast-forward") || status.contains("fetch first")))
        || (status.starts_with("[remote rejected]")
            && (status.contains("failed to update ref")
                || status.contains("incorrect old value")
                || status.contains("cannot lock ref"))
            && (stderr.contains("cannot lock ref") || stderr.contains("but expected")));
    if moved {
        return Refusal::Race;
    }
    if !status.is_empty() {
        let mut message = status.to_owned();
        if !remote.is_empty() {
            message = format!("{} ({status})", remote.join(" / "));
        }
        return Refusal::Final(message);
    }
    if is_network_failure(stderr) {
        return Refusal::Unreachable(stderr.trim().to_owned());
    }
    let text = if remote.is_empty() {
        stderr.trim().to_owned()
    } else {
        remote.join(" / ")
    };
    Refusal::Final(text)
}

/// `tree` with the blob at `components` (a path) inserted, creating directories as needed.
fn insert(
    repo: &Repository,
    tree: Option<&git2::Tree<'_>>,
    components: &[&str],
    blob: Oid,
) -> Result<Oid, GitError> {
    let mut builder = repo.treebuilder(tree)?;
    match components {
        [] => Err(GitError::Git("empty path".to_owned())),
        [name] => {
            builder.insert(name, blob, 0o100_644)?;
            Ok(builder.write()?)
        }
        [dir, rest @ ..] => {
            let sub = match tree.and_then(|t| t.get_name(dir)) {
                Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
                    Some(repo.find_tree(entry.id())?)
                }
                _ => None,
            };
            let sub_id = insert(repo, sub.as_ref(), rest, blob)?;
            builder.insert(dir, sub_id, 0o040_000)?;
            Ok(builder.write()?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
