//! The event that started the run (`$GITHUB_EVENT_PATH`, `$GITHUB_EVENT_NAME`).
//!
//! Only the four events of DESIGN §2 are accepted. The payload is GitHub's, but its free-text
//! parts (titles, bodies) are untrusted; only identifiers are taken from it.

use std::path::Path;

use serde_json::Value;

/// What a comment asks rotor to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentCommand {
    /// `/rotor plan`.
    Plan,
    /// `/rotor apply`.
    Apply,
}

/// What kind of event started the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `pull_request` (`opened`, `synchronize`, `reopened`…).
    PullRequest {
        /// The action.
        action: String,
    },
    /// `pull_request_review`.
    Review {
        /// The action (`submitted`, `dismissed`…).
        action: String,
        /// The review's state, lowercase as in the payload (`approved`…).
        state: String,
        /// The reviewer, if the account still exists.
        reviewer: Option<String>,
    },
    /// `issue_comment` on a pull request.
    Comment {
        /// `/rotor plan` or `/rotor apply`, if the comment is one.
        command: Option<CommentCommand>,
        /// The comment's author.
        author: Option<String>,
    },
    /// `workflow_dispatch`.
    Dispatch {
        /// The ref the workflow ran on (`refs/heads/main`).
        git_ref: String,
        /// The dispatch inputs, as strings.
        inputs: Vec<(String, String)>,
    },
}

/// The event, reduced to what rotor uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The pull request number, for PR events and comments on PRs.
    pub number: Option<u64>,
    /// The PR head SHA the event carries (not for comments, which carry none).
    pub head_sha: Option<String>,
    /// The repository's default branch.
    pub default_branch: Option<String>,
    /// `owner/name`.
    pub repository: Option<String>,
    /// Who triggered it (`sender.login`).
    pub sender: Option<String>,
    /// The specifics.
    pub trigger: Trigger,
}

/// Why the event cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event file is missing or unreadable.
    #[error(
        "cannot read the event file {path}: {detail}; run rotor from a GitHub workflow or pass --event PATH"
    )]
    Read {
        /// The path.
        path: String,
        /// Why.
        detail: String,
    },
    /// The event file is not a JSON object.
    #[error("the event file {path} is not a JSON event payload: {detail}")]
    Json {
        /// The path.
        path: String,
        /// Why.
        detail: String,
    },
    /// An event rotor does not handle, or handles elsewhere.
    #[error(
        "event `{name}` cannot start `rotor {command}`; see DESIGN §2 for which event runs which command"
    )]
    Unsupported {
        /// The event name.
        name: String,
        /// The command.
        command: &'static str,
    },
    /// A field the event must have is missing.
    #[error("the `{name}` event payload has no `{field}`")]
    Missing {
        /// The event name.
        name: String,
        /// The field.
        field: &'static str,
    },
}

/// Reads the event file. `name` is `$GITHUB_EVENT_NAME`; without it the kind is inferred.
pub fn load(path: &Path, name: Option<&str>) -> Result<Event, EventError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| EventError::Read {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    let v: Value = serde_json::from_str(&text).map_err(|e| EventError::Json {
        path: shown.clone(),
        detail: e.to_string(),
    })?;
    if !v.is_object() {
        return Err(EventError::Json {
            path: shown,
            detail: "not an object".to_owned(),
        });
    }
    let name = name.map_or_else(|| infer(&v).to_owned(), str::to_owned);
    parse(&name, &v)
}

fn infer(v: &Value) -> &'static str {
    if v.get("review").is_some() {
        "pull_request_review"
    } else if v.get("comment").is_some() && v.get("issue").is_some() {
        "issue_comment"
    } else if v.get("pull_request").is_some() {
        "pull_request"
    } else if v.get("inputs").is_some() {
        "workflow_dispatch"
    } else {
        "unknown"
    }
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Parses a payload of event `name`.
pub fn parse(name: &str, v: &Value) -> Result<Event, EventError> {
    let missing = |field| EventError::Missing {
        name: name.to_owned(),
        field,
    };
    let mut event = Event {
        name: name.to_owned(),
        number: None,
        head_sha: None,
        default_branch: text(v, "/repository/default_branch"),
        repository: text(v, "/repository/full_name"),
        sender: text(v, "/sender/login"),
        trigger: Trigger::PullRequest {
            action: String::new(),
        },
    };
    let action = text(v, "/action").unwrap_or_default();
    match name {
        "pull_request" | "pull_request_target" | "pull_request_review" => {
            event.number = Some(
                v.pointer("/pull_request/number")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing("pull_request.number"))?,
            );
            event.head_sha = Some(
                text(v, "/pull_request/head/sha")
                    .ok_or_else(|| missing("pull_request.head.sha"))?,
            );
            event.trigger = if name == "pull_request_review" {
                Trigger::Review {
                    action,
                    state: text(v, "/review/state")
                        .ok_or_else(|| missing("review.state"))?
                        .to_lowercase(),
                    reviewer: text(v, "/review/user/login"),
                }
            } else {
                Trigger::PullRequest { action }
            };
        }
        "issue_comment" => {
            event.number = Some(
                v.pointer("/issue/number")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| missing("issue.number"))?,
            );
            // A comment on an issue that is not a pull request asks nothing of rotor.
            let on_pr = v
                .pointer("/issue/pull_request")
                .is_some_and(|p| !p.is_null());
            let body = text(v, "/comment/body").unwrap_or_default();
            event.trigger = Trigger::Comment {
                command: if on_pr { comment_command(&body) } else { None },
                author: text(v, "/comment/user/login"),
            };
        }
        "workflow_dispatch" => {
            let inputs = v
                .get("inputs")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            event.trigger = Trigger::Dispatch {
                git_ref: text(v, "/ref").ok_or_else(|| missing("ref"))?,
                inputs,
            };
        }
        other => {
            return Err(EventError::Unsupported {
                name: other.to_owned(),
                command: "plan/apply/rollback",
            });
        }
    }
    Ok(event)
}

/// `/rotor plan` or `/rotor apply` as the comment's first non-blank line, nothing else.
pub fn comment_command(body: &str) -> Option<CommentCommand> {
    let first = body.lines().map(str::trim).find(|l| !l.is_empty())?;
    let words: Vec<&str> = first.split_whitespace().collect();
    match words.as_slice() {
        ["/rotor", "plan"] => Some(CommentCommand::Plan),
        ["/rotor", "apply"] => Some(CommentCommand::Apply),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_commands_are_exact() {
        assert_eq!(comment_command("/rotor apply"), Some(CommentCommand::Apply));
        assert_eq!(
            comment_command("\n  /rotor   plan  \nthanks"),
            Some(CommentCommand::Plan)
        );
        assert_eq!(comment_command("please /rotor apply"), None);
        assert_eq!(comment_command("/rotor apply now"), None);
        assert_eq!(comment_command("/rotor"), None);
        assert_eq!(comment_command(""), None);
    }
}
