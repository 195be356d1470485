//! Git, through libgit2: trusted loading from commits and, later, the artifact commit.
//!
//! Policy (config, templates) is read from the base branch tip and the request from the PR's
//! exact head SHA, both from git objects, never from the working tree (on GitHub the workspace
//! is often the merge commit). A commit the checkout lacks is fetched from `origin`, over HTTPS
//! with the token as `x-access-token`, or from a local path remote in tests.

use std::path::Path;

use git2::{Cred, FetchOptions, ObjectType, Oid, RemoteCallbacks, Repository};

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
    /// Anything else libgit2 reports.
    #[error("git: {0}")]
    Git(String),
}

impl From<git2::Error> for GitError {
    fn from(e: git2::Error) -> Self {
        Self::Git(e.message().to_owned())
    }
}

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
}
