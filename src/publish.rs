//! The record's commit, made one of two ways (`commit.via`): rotor commits with git and pushes
//! (`git`), or GitHub makes the commit through GraphQL `createCommitOnBranch` and signs it
//! (`api`). Both are a compare-and-swap on the branch (a fast-forward push; `expectedHeadOid`),
//! both keep what another run already recorded, and both commit on a pull request's branch
//! only on the head that was approved.
//!
//! With `api`, nothing is pushed and no credential is handed to git for the commit: git only
//! reads the branch's tip (the fetch every run already makes) to judge what is there.

use crate::config::{Commit, CommitVia};
use crate::error::Error;
use crate::github::commit::Committed;
use crate::github::{GitHub, GitHubError};
use crate::gitops::{Author, GitError, GitRepo, PUBLISH_ATTEMPTS};

/// One commit of the record: `content` at `path` on `branch`.
pub struct Record<'a> {
    /// The branch.
    pub branch: &'a str,
    /// The artifact's path.
    pub path: &'a str,
    /// The artifact.
    pub content: &'a [u8],
    /// The commit message (its headline with `via: api`).
    pub message: &'a str,
    /// Whether a file already at `path` records this outcome (another run committed it).
    pub keep: &'a dyn Fn(&[u8]) -> bool,
    /// On a pull request's branch, the head the gate approved: the record's only parent.
    pub approved: Option<&'a str>,
}

/// The author `commit.author` names.
pub fn author(commit: &Commit) -> Author {
    Author {
        name: commit.author_name.clone(),
        email: commit.author_email.clone(),
    }
}

/// Commits `record` the way `commit.via` says; returns the commit now holding it.
pub async fn publish(
    git: &GitRepo,
    gh: &GitHub,
    commit: &Commit,
    record: &Record<'_>,
) -> Result<String, Error> {
    let author = author(commit);
    if commit.via == CommitVia::Git {
        return Ok(git.publish(
            record.branch,
            record.path,
            record.content,
            record.message,
            &author,
            record.keep,
            record.approved,
        )?);
    }
    let policy = crate::retry::Policy::default();
    for attempt in 1..=PUBLISH_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(policy.delay(attempt - 1, None)).await;
        }
        let tip = git.fetch_branch(record.branch)?;
        if let Some(done) = settled(git, record, &tip, &author)? {
            return Ok(done);
        }
        let answer = gh
            .create_commit_on_branch(
                record.branch,
                &tip,
                record.path,
                record.content,
                record.message,
            )
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // A refusal in GitHub's words: the record is owed, as when a push is refused.
            Err(
                e @ (GitHubError::Unauthorized { .. }
                | GitHubError::Forbidden { .. }
                | GitHubError::NotFound { .. }),
            ) => {
                return Err(GitError::CommitRefused {
                    branch: record.branch.to_owned(),
                    message: e.to_string(),
                }
                .into());
            }
            // No answer, or one that says nothing of the commit: it may have landed. Look
            // once more before giving up.
            Err(e) => {
                let tip = git.fetch_branch(record.branch)?;
                if let Some(done) = settled(git, record, &tip, &author)? {
                    return Ok(done);
                }
                return Err(e.into());
            }
        };
        match answer {
            Committed::Made(sha) => return Ok(sha),
            // The branch moved between the read and the commit: read it again. On a pull
            // request's branch the next look finds rotor's own record (a lost answer whose
            // commit landed) or a branch that moved after the approval.
            Committed::Stale => {}
            Committed::Refused(message) => {
                return Err(GitError::CommitRefused {
                    branch: record.branch.to_owned(),
                    message,
                }
                .into());
            }
        }
    }
    Err(GitError::PushRace {
        branch: record.branch.to_owned(),
        attempts: PUBLISH_ATTEMPTS,
    }
    .into())
}

/// What the branch's tip already settles (see [`GitRepo::settled`]); GitHub's commits are
/// committed as GitHub, so only such a commit on the approved head is the record.
fn settled(
    git: &GitRepo,
    record: &Record<'_>,
    tip: &str,
    author: &Author,
) -> Result<Option<String>, GitError> {
    git.settled(
        record.branch,
        tip,
        record.path,
        record.content,
        author,
        ("GitHub", "noreply@github.com"),
        record.keep,
        record.approved,
    )
}

/// With `commit.via: api`, GitHub authors the commit as the token's identity, so
/// `commit.author` must name exactly that identity: `<login> <<id>+<login>@users.noreply.github.com>`
/// (a GitHub App's login ends in `[bot]`). Asked of GraphQL `viewer` before anything changes;
/// never guessed from comments.
pub async fn check_author(gh: &GitHub, commit: &Commit) -> Result<(), Error> {
    if commit.via != CommitVia::Api {
        return Ok(());
    }
    let viewer = match gh.viewer().await {
        Ok(v) => v,
        Err(e @ crate::github::GitHubError::Unavailable { .. }) => return Err(e.into()),
        Err(e) => {
            return Err(Error::Identity(format!(
                "commit.via is api, and GitHub would not say who the token is ({e}); rotor needs GraphQL `viewer` to know the author GitHub will write"
            )));
        }
    };
    if authored_as(
        &commit.author_name,
        &commit.author_email,
        &viewer.login,
        viewer.id,
    ) {
        return Ok(());
    }
    let login = &viewer.login;
    Err(Error::Identity(format!(
        "commit.author is `{} <{}>`, but with commit.via: api GitHub authors the commit as the token's identity, {login} (id {}): set commit.author to `{login} <{}+{login}@users.noreply.github.com>`, or give rotor the token of the identity commit.author names",
        commit.author_name, commit.author_email, viewer.id, viewer.id
    )))
}

/// Whether `name <email>` is the identity GraphQL `viewer` names (`login`, `id`): the login as
/// the name (a GitHub App's bot account's, `<slug>[bot]`, as GitHub writes it) and GitHub's
/// no-reply address of that account.
fn authored_as(name: &str, email: &str, login: &str, id: u64) -> bool {
    name == login && email.eq_ignore_ascii_case(&format!("{id}+{login}@users.noreply.github.com"))
}

#[cfg(test)]
mod tests {
    use super::authored_as;

    #[test]
    fn the_author_is_the_viewer_and_its_noreply_address() {
        assert!(authored_as(
            "octocat",
            "583231+octocat@users.noreply.github.com",
            "octocat",
            583_231
        ));
        assert!(authored_as(
            "rotor-app[bot]",
            "41898282+rotor-app[bot]@users.noreply.github.com",
            "rotor-app[bot]",
            41_898_282
        ));
        // GitHub writes a bot's name with `[bot]`: without it, the record would not match.
        assert!(!authored_as(
            "rotor-app",
            "41898282+rotor-app@users.noreply.github.com",
            "rotor-app[bot]",
            41_898_282
        ));
        assert!(!authored_as(
            "rotor",
            "rotor@users.noreply.github.com",
            "rotor-app",
            41_898_282
        ));
        assert!(!authored_as(
            "octocat",
            "1+octocat@users.noreply.github.com",
            "octocat",
            583_231
        ));
        assert!(!authored_as(
            "octodog",
            "583231+octodog@users.noreply.github.com",
            "octocat",
            583_231
        ));
    }
}
