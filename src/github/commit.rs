//! The artifact commit made by GitHub (`commit.via: api`): GraphQL `createCommitOnBranch`, which
//! GitHub authors as the token's identity, commits as `GitHub <noreply@github.com>` and signs
//! with its web-flow key ("Commits made using this mutation are automatically signed by
//! GitHub", in the schema's own words).
//!
//! `expectedHeadOid` makes the mutation a compare-and-swap on the branch: GitHub refuses a
//! stale one with an error of `type` `STALE_DATA`, which rotor recognises by that type, never by
//! the message. That also makes the mutation safe to send again when its answer was lost: a
//! second copy either lands (the first did not) or is refused as stale, and the caller then
//! reads the branch and finds its own commit.

use base64::Engine as _;
use serde_json::{Value, json};

use super::GitHub;
use super::GitHubError;
use super::client::message;

/// How `createCommitOnBranch` ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// GitHub made the commit; its SHA.
    Made(String),
    /// The branch no longer points at `expectedHeadOid` (`STALE_DATA`).
    Stale,
    /// GitHub refused the commit for another reason (a ruleset, a protected branch, a token
    /// without `contents: write`): its own words.
    Refused(String),
}

/// The mutation, asking only for the new commit's id.
const MUTATION: &str = "mutation($input: CreateCommitOnBranchInput!) { createCommitOnBranch(input: $input) { commit { oid } } }";

/// The GraphQL error types that say nothing about the commit itself: it may yet land, or may
/// have landed (GitHub's own timeout, a rate limit). Every other typed error is a refusal
/// (`UNPROCESSABLE`, `FORBIDDEN`, `NOT_FOUND`, `BRANCH_PROTECTION_RULE_VIOLATION`, …).
const TRANSIENT: &[&str] = &["TIMEOUT", "RATE_LIMITED", "SERVICE_UNAVAILABLE", "INTERNAL"];

impl GitHub {
    /// Commits `contents` at `path` on `branch`, on top of `expected_head`, with `headline` as
    /// the message.
    pub async fn create_commit_on_branch(
        &self,
        branch: &str,
        expected_head: &str,
        path: &str,
        contents: &[u8],
        headline: &str,
    ) -> Result<Committed, GitHubError> {
        let call = format!("POST graphql {{ createCommitOnBranch({branch}) }}");
        let body = json!({
            "query": MUTATION,
            "variables": {"input": {
                "branch": {
                    "repositoryNameWithOwner": self.repo.full(),
                    "branchName": branch,
                },
                "expectedHeadOid": expected_head,
                "message": {"headline": headline},
                "fileChanges": {"additions": [{
                    "path": path,
                    "contents": base64::engine::general_purpose::STANDARD.encode(contents),
                }]},
            }},
        });
        let url = self.graphql_url.clone();
        let (status, _, text) = self
            .request(false, "POST", &url, Some(&body), &call)
            .await?;
        match status.as_u16() {
            200 => {}
            401 => return Err(GitHubError::Unauthorized { call }),
            403 => {
                return Err(GitHubError::Forbidden {
                    call,
                    permission: "`contents: write` on the repository".to_owned(),
                });
            }
            other => {
                return Err(GitHubError::Protocol {
                    call,
                    detail: format!("{other}: {}", message(&text)),
                });
            }
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| GitHubError::Protocol {
            call: call.clone(),
            detail: e.to_string(),
        })?;
        interpret(&v).map_err(|detail| GitHubError::Protocol { call, detail })
    }
}

/// What an answer of `200` says: the new commit, a stale head, or a refusal.
fn interpret(v: &Value) -> Result<Committed, String> {
    let errors = v
        .get("errors")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let kind = |e: &Value| e.get("type").and_then(Value::as_str).map(str::to_owned);
    let said = |e: &Value| {
        e.get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .chars()
            .take(500)
            .collect::<String>()
    };
    if errors
        .iter()
        .any(|e| kind(e).as_deref() == Some("STALE_DATA"))
    {
        return Ok(Committed::Stale);
    }
    if let Some(e) = errors
        .iter()
        .find(|e| kind(e).is_some_and(|k| !TRANSIENT.contains(&k.as_str())))
    {
        let k = kind(e).unwrap_or_default();
        return Ok(Committed::Refused(format!("{k}: {}", said(e))));
    }
    if let Some(e) = errors.first() {
        return Err(format!("GraphQL error: {}", said(e)));
    }
    match v
        .pointer("/data/createCommitOnBranch/commit/oid")
        .and_then(Value::as_str)
    {
        Some(oid) if oid.len() == 40 && oid.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Committed::Made(oid.to_ascii_lowercase()))
        }
        _ => Err("no commit in the answer".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stale_head_is_known_by_its_type_not_its_words() {
        let v = json!({"data": {"createCommitOnBranch": null}, "errors": [{
            "type": "STALE_DATA", "path": ["createCommitOnBranch"],
            "message": "Something else entirely"}]});
        assert_eq!(interpret(&v), Ok(Committed::Stale));
        let v = json!({"data": {"createCommitOnBranch": null}, "errors": [{
            "message": "Expected branch to point to \"abc\" but it did not. Pull and try again."}]});
        assert!(
            interpret(&v).is_err(),
            "no type: not taken for a stale head"
        );
    }

    #[test]
    fn a_rule_is_a_refusal_in_githubs_words() {
        let v = json!({"data": {"createCommitOnBranch": null}, "errors": [{
            "type": "UNPROCESSABLE", "message": "Repository rule violations found"}]});
        assert_eq!(
            interpret(&v),
            Ok(Committed::Refused(
                "UNPROCESSABLE: Repository rule violations found".to_owned()
            ))
        );
        // A type rotor has never seen is a refusal too, in GitHub's words.
        let v = json!({"data": {"createCommitOnBranch": null}, "errors": [{
            "type": "BRANCH_PROTECTION_RULE_VIOLATION",
            "message": "Changes must be made through a pull request."}]});
        assert!(
            matches!(interpret(&v), Ok(Committed::Refused(m)) if m.contains("through a pull request"))
        );
        // A timeout says nothing of the commit: not a refusal.
        let v = json!({"data": null, "errors": [{"type": "TIMEOUT", "message": "timed out"}]});
        assert!(interpret(&v).is_err());
    }

    #[test]
    fn the_commit_is_its_oid() {
        let oid = "a".repeat(40);
        let v = json!({"data": {"createCommitOnBranch": {"commit": {"oid": oid}}}});
        assert_eq!(interpret(&v), Ok(Committed::Made("a".repeat(40))));
        let v = json!({"data": {"createCommitOnBranch": {"commit": {"oid": "zz"}}}});
        assert!(interpret(&v).is_err());
    }
}
