//! The artifact commit by git: a commit of one file on the branch's tip, pushed without force
//! (the server accepts only a fast-forward of the tip it was made on, a compare-and-swap), and
//! what a tip already settles (another run's record, a branch that moved after the approval).

use std::path::Path;

use git2::{ObjectType, Oid, Repository, Signature};

use super::{Author, GitError, GitRepo, PUBLISH_ATTEMPTS, is_network_failure};

impl GitRepo {
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

/// Why a push failed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The branch moved since rotor fetched it (non-fast-forward): fetch and try again.
    Race,
    /// Refused for good (hook, protected branch, permission), with the remote's words.
    Final(String),
    /// The remote could not be reached.
    Unreachable(String),
}

/// Reads `git push --porcelain`'s status line and the remote's messages.
pub(super) fn push_refusal(stdout: &str, stderr: &str) -> Refusal {
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
pub(super) fn insert(
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
