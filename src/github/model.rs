//! The facts rotor takes from GitHub: only the fields the approval policy and the report use.

use serde_json::Value;

/// A pull request, as the API reports it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Number.
    pub number: u64,
    /// `open` or `closed`.
    pub state: String,
    /// Merged.
    pub merged: bool,
    /// Draft.
    pub draft: bool,
    /// The author's login (`ghost` when the account was deleted).
    pub author: Option<String>,
    /// Title (untrusted text).
    pub title: String,
    /// The head commit.
    pub head_sha: String,
    /// The head branch.
    pub head_ref: String,
    /// `owner/name` of the head repository; `None` when it was deleted.
    pub head_repo: Option<String>,
    /// The base branch.
    pub base_ref: String,
    /// `owner/name` of the base repository.
    pub base_repo: String,
    /// The web page.
    pub html_url: String,
    /// How many files it changes, as GitHub counts them (its file list stops at 3,000).
    pub changed_files: Option<u64>,
}

fn s(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl PullRequest {
    /// From the API's JSON (or an event payload's `pull_request`).
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            number: v.get("number")?.as_u64()?,
            state: s(v, "/state")?,
            merged: v.get("merged").and_then(Value::as_bool).unwrap_or(false),
            draft: v.get("draft").and_then(Value::as_bool).unwrap_or(false),
            author: s(v, "/user/login"),
            title: s(v, "/title").unwrap_or_default(),
            head_sha: s(v, "/head/sha")?,
            head_ref: s(v, "/head/ref").unwrap_or_default(),
            head_repo: s(v, "/head/repo/full_name"),
            base_ref: s(v, "/base/ref")?,
            base_repo: s(v, "/base/repo/full_name")?,
            html_url: s(v, "/html_url").unwrap_or_default(),
            changed_files: v.get("changed_files").and_then(Value::as_u64),
        })
    }
}

/// A review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The reviewer; `None` when the account was deleted.
    pub reviewer: Option<String>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    pub state: String,
    /// The commit reviewed.
    pub commit_id: String,
    /// The review's page.
    pub html_url: String,
}

impl Review {
    /// From the API's JSON.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            reviewer: s(v, "/user/login"),
            state: s(v, "/state")?,
            commit_id: s(v, "/commit_id").unwrap_or_default(),
            html_url: s(v, "/html_url").unwrap_or_default(),
        })
    }
}

/// A file a pull request changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedFile {
    /// Path in the repository.
    pub path: String,
    /// `added`, `modified`, `removed`, `renamed`…
    pub status: String,
    /// For a rename, the old path (which the PR also touches).
    pub previous_path: Option<String>,
}

impl ChangedFile {
    /// From the API's JSON.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            path: s(v, "/filename")?,
            status: s(v, "/status").unwrap_or_default(),
            previous_path: s(v, "/previous_filename"),
        })
    }
}

/// A comment on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// Text.
    pub body: String,
    /// `User` or `Bot`.
    pub user_type: String,
    /// The author's account id.
    pub user_id: Option<u64>,
    /// The page of the comment.
    pub html_url: String,
}

impl Comment {
    /// From the API's JSON.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(Self {
            id: v.get("id")?.as_u64()?,
            body: s(v, "/body").unwrap_or_default(),
            user_type: s(v, "/user/type").unwrap_or_default(),
            user_id: v.pointer("/user/id").and_then(Value::as_u64),
            html_url: s(v, "/html_url").unwrap_or_default(),
        })
    }

    /// Whether this is rotor's sticky comment: written by rotor's own identity (`viewer`, the
    /// token's user or app) and carrying the marker. Another account pasting the marker, person
    /// or bot, never captures rotor's updates.
    pub fn is_rotors(&self, marker: &str, viewer: u64) -> bool {
        self.user_id == Some(viewer) && self.body.contains(marker)
    }
}

/// Membership of a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// An active member.
    Active,
    /// Invited, not yet a member.
    Pending,
    /// Not a member.
    None,
}

/// A team, `org/slug`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSlug {
    /// Organisation.
    pub org: String,
    /// Slug.
    pub slug: String,
}
