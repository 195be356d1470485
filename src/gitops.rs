//! Git, through libgit2: trusted loading from commits and, later, the artifact commit.
//!
//! Policy (config, templates) is read from the base branch tip and the request from the PR's
//! exact head SHA, both from git objects, never from the working tree (on GitHub the workspace
//! is often the merge commit). A commit the checkout lacks is fetched from `origin`, over HTTPS
//! with the token as `x-access-token`, or from a local path remote in tests.

use std::path::Path;

use git2::{
    Cred, FetchOptions, ObjectType, Oid, PushOptions, RemoteCallbacks, Repository, Signature,
};

use crate::secret::SecretString;

/// A git failure, with what to check.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository cannot be opened.
    #[error(
        "cannot open the git repository at {path}: {detail}; run rotor in a checkout (actions/checkout) or pass --repo"
    )]
    Open {
        /// Where.
        path: String,
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
    /// Anything else libgit2 reports.
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
const PUBLISH_ATTEMPTS: u32 = 8;

/// A repository checkout.
pub struct GitRepo {
    repo: Repository,
    token: Option<SecretString>,
}

impl std::fmt::Debug for GitRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitRepo")
            .field("path", &self.repo.path())
            .finish_non_exhaustive()
    }
}

impl GitRepo {
    /// Opens the repository at (or above) `path`.
    pub fn open(path: &Path, token: Option<SecretString>) -> Result<Self, GitError> {
        let repo = Repository::discover(path).map_err(|e| GitError::Open {
            path: path.display().to_string(),
            detail: e.message().to_owned(),
        })?;
        Ok(Self { repo, token })
    }

    fn fetch_options(&self) -> FetchOptions<'_> {
        let mut callbacks = RemoteCallbacks::new();
        let token = self.token.clone();
        callbacks.credentials(move |_url, _user, _allowed| match &token {
            Some(t) => Cred::userpass_plaintext("x-access-token", t.expose()),
            None => Err(git2::Error::from_str("no token for fetching from origin")),
        });
        let mut options = FetchOptions::new();
        options.remote_callbacks(callbacks);
        options
    }

    /// Whether the commit is present.
    pub fn has_commit(&self, sha: &str) -> bool {
        Oid::from_str(sha)
            .ok()
            .and_then(|oid| self.repo.find_commit(oid).ok())
            .is_some()
    }

    /// Makes sure `sha` is present, fetching `refspecs` from `origin` if it is not.
    pub fn ensure_commit(&self, sha: &str, refspecs: &[String]) -> Result<(), GitError> {
        if self.has_commit(sha) {
            return Ok(());
        }
        let missing = |detail: String| GitError::MissingCommit {
            sha: sha.to_owned(),
            detail,
        };
        let mut remote = self
            .repo
            .find_remote("origin")
            .map_err(|e| missing(e.message().to_owned()))?;
        let specs: Vec<&str> = refspecs.iter().map(String::as_str).collect();
        remote
            .fetch(&specs, Some(&mut self.fetch_options()), None)
            .map_err(|e| missing(e.message().to_owned()))?;
        if self.has_commit(sha) {
            Ok(())
        } else {
            Err(missing(format!(
                "fetching {} did not bring it",
                specs.join(" ")
            )))
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

    /// Fetches `branch` from origin and returns its tip.
    pub fn fetch_branch(&self, branch: &str) -> Result<String, GitError> {
        let tracking = format!("refs/remotes/origin/{branch}");
        let mut remote = self.repo.find_remote("origin")?;
        remote.fetch(
            &[format!("+refs/heads/{branch}:{tracking}")],
            Some(&mut self.fetch_options()),
            None,
        )?;
        Ok(self.repo.refname_to_id(&tracking)?.to_string())
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

    /// Pushes `commit` to `branch` on origin without force; `false` when the remote refused
    /// because the branch moved.
    fn push(&self, commit: Oid, branch: &str) -> Result<bool, GitError> {
        let local = "refs/rotor/publish";
        self.repo.reference(local, commit, true, "rotor: publish")?;
        let mut remote = self.repo.find_remote("origin")?;
        let rejected = std::cell::RefCell::new(None::<String>);
        let mut callbacks = RemoteCallbacks::new();
        let token = self.token.clone();
        callbacks.credentials(move |_url, _user, _allowed| match &token {
            Some(t) => Cred::userpass_plaintext("x-access-token", t.expose()),
            None => Err(git2::Error::from_str("no token for pushing to origin")),
        });
        callbacks.push_update_reference(|_refname, status| {
            if let Some(message) = status {
                *rejected.borrow_mut() = Some(message.to_owned());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let result = remote.push(
            &[format!("{local}:refs/heads/{branch}")],
            Some(&mut options),
        );
        drop(options);
        match result {
            Ok(()) if rejected.borrow().is_none() => Ok(true),
            Ok(()) => Ok(false),
            Err(e)
                if e.code() == git2::ErrorCode::NotFastForward
                    || e.message().contains("fast-forward")
                    || e.message().contains("fastforward") =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether `commit` is on `branch` at origin now. A server updates refs atomically, but a
    /// push is only trusted once the artifact is seen on the branch.
    fn landed(&self, branch: &str, commit: Oid) -> Result<bool, GitError> {
        let tip = Oid::from_str(&self.fetch_branch(branch)?)?;
        Ok(tip == commit || self.repo.graph_descendant_of(tip, commit)?)
    }

    /// Commits `content` at `path` on top of `branch` on origin and pushes it. When the branch
    /// moves under it, fetches the new tip, re-applies the file onto it and pushes again, a
    /// bounded number of times. Returns the commit now holding the file.
    ///
    /// When the file already on the tip satisfies `keep` (another run published it), nothing
    /// is written and the tip is returned.
    pub fn publish(
        &self,
        branch: &str,
        path: &str,
        content: &[u8],
        message: &str,
        author: &Author,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<String, GitError> {
        let policy = crate::retry::Policy::default();
        for attempt in 1..=PUBLISH_ATTEMPTS {
            if attempt > 1 {
                // Jittered backoff: two publishers that collided must not collide again in step.
                std::thread::sleep(policy.delay(attempt - 1, None));
            }
            let tip = self.fetch_branch(branch)?;
            if self
                .read_file(&tip, path)?
                .is_some_and(|existing| keep(&existing))
            {
                return Ok(tip);
            }
            let Some(commit) = self.commit_file(&tip, path, content, message, author)? else {
                return Ok(tip);
            };
            if self.push(commit, branch)? && self.landed(branch, commit)? {
                return Ok(commit.to_string());
            }
        }
        Err(GitError::PushRace {
            branch: branch.to_owned(),
            attempts: PUBLISH_ATTEMPTS,
        })
    }
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
