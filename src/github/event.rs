//! The event that started the run (`$GITHUB_EVENT_PATH`, `$GITHUB_EVENT_NAME`), and whether it
//! is a trigger.
//!
//! Only a few (event, action) pairs start work: `pull_request` opened, synchronize or reopened
//! (`plan`); a submitted approving `pull_request_review` (`apply`, and `plan`); a `created`
//! `issue_comment` on a pull request whose first line is exactly `/rotor apply`, `/rotor plan`
//! or `/rotor break-glass`, written by the user who sent the event (`apply` / `plan` / `apply`
//! alone, the emergency path); `workflow_dispatch` (`rollback`, `countersign`).
//! Every other pair is not a trigger: `plan` and `apply` then change nothing and say which event
//! and action they saw and why it does not count ([`NotATrigger`]). An edited or deleted comment
//! never counts, whoever edited it: the text someone approved of is not the text that ran.
//!
//! The payload is GitHub's, but its free-text parts (titles, bodies) are untrusted; only
//! identifiers and the comment's first line are read from it — and, for `/rotor break-glass`,
//! the lines after it, which are the reason and are checked as any reason is.

use std::path::Path;

use serde_json::Value;

/// What a comment asks rotor to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommentCommand {
    /// `/rotor plan`.
    Plan,
    /// `/rotor apply`.
    Apply,
    /// `/rotor break-glass`: the requester alone, where the environment allows it.
    BreakGlass,
}

impl CommentCommand {
    /// The command as it is written.
    pub const fn word(self) -> &'static str {
        match self {
            Self::Plan => "/rotor plan",
            Self::Apply => "/rotor apply",
            Self::BreakGlass => "/rotor break-glass",
        }
    }
}

/// What kind of event started the run, with the fields that decide whether it is a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// `pull_request` (and `pull_request_target`, which is never a trigger).
    PullRequest {
        /// The action (`opened`, `synchronize`, `closed`…).
        action: String,
    },
    /// `pull_request_review`.
    Review {
        /// The action (`submitted`, `edited`, `dismissed`).
        action: String,
        /// The review's state, lowercase (`approved`, `changes_requested`, `commented`…).
        state: String,
        /// The reviewer, if the account still exists.
        reviewer: Option<String>,
    },
    /// `issue_comment`.
    Comment {
        /// The action (`created`, `edited`, `deleted`).
        action: String,
        /// `/rotor plan`, `/rotor apply` or `/rotor break-glass`, if the comment's first line is
        /// exactly one.
        command: Option<CommentCommand>,
        /// For `/rotor break-glass`: the lines after the first (the reason), as written.
        rest: Option<String>,
        /// When the comment was written (`comment.created_at`).
        created_at: Option<String>,
        /// The comment's author (`comment.user.login`).
        author: Option<String>,
        /// Whether the issue is a pull request (`issue.pull_request` present).
        on_pull_request: bool,
    },
    /// `workflow_dispatch`.
    Dispatch {
        /// The ref the workflow ran on (`refs/heads/main`).
        git_ref: String,
        /// The dispatch inputs, as strings.
        inputs: Vec<(String, String)>,
    },
    /// `schedule`, or any event rotor has no use for; `action` is the payload's, if any.
    Other {
        /// The payload's `action`, if any.
        action: Option<String>,
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
    /// `owner/name` of the repository the event is about (`repository.full_name`).
    pub repository: Option<String>,
    /// Who triggered it (`sender.login`).
    pub sender: Option<String>,
    /// The specifics.
    pub trigger: Trigger,
}

/// Why the event cannot be used at all (exit 2).
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
    /// An event the command cannot run on at all (`rollback` runs on `workflow_dispatch` only).
    #[error(
        "event `{name}` cannot start `rotor {command}`; it runs on {expected} (docs/events.md lists every event)"
    )]
    Unsupported {
        /// The event name.
        name: String,
        /// The command.
        command: &'static str,
        /// The events it runs on.
        expected: &'static str,
    },
    /// A field the event must have is missing.
    #[error("the `{name}` event payload has no `{field}`")]
    Missing {
        /// The event name.
        name: String,
        /// The field.
        field: &'static str,
    },
    /// The event is about another repository than the one the run is for.
    #[error(
        "the event is about repository {event}, but the run is for {run} ($GITHUB_REPOSITORY); rotor acts only on events of its own repository"
    )]
    OtherRepository {
        /// `repository.full_name` in the payload.
        event: String,
        /// `GITHUB_REPOSITORY`.
        run: String,
    },
}

/// An event that asks nothing of `plan` or `apply`: the run changes nothing and says why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotATrigger {
    /// The event name.
    pub event: String,
    /// The payload's action, if any.
    pub action: Option<String>,
    /// Why it does not count.
    pub reason: String,
}

impl std::fmt::Display for NotATrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.action {
            Some(action) => write!(
                f,
                "event `{}` with action `{action}` is not a trigger: {}",
                self.event, self.reason
            ),
            None => write!(
                f,
                "event `{}` is not a trigger: {}",
                self.event, self.reason
            ),
        }
    }
}

/// What starts `apply`: the pull request, and for a comment its author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyTrigger {
    /// The pull request number.
    pub number: u64,
    /// For `/rotor apply`, the comment's author, who must hold `internal_admin` too.
    pub comment_author: Option<String>,
    /// For `/rotor break-glass`: the reason as the comment gives it (the lines after the
    /// first, CR LF read as LF, trimmed; not checked yet).
    pub break_glass: Option<String>,
    /// For an approving review: its author, whose approval may countersign a break-glass
    /// rotation already applied.
    pub reviewer: Option<String>,
    /// For a comment: when it was written (`comment.created_at`, RFC 3339).
    pub comment_at: Option<String>,
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
    } else if v.get("schedule").is_some() {
        "schedule"
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
    let action = text(v, "/action");
    let mut event = Event {
        name: name.to_owned(),
        number: None,
        head_sha: None,
        repository: text(v, "/repository/full_name"),
        sender: text(v, "/sender/login"),
        trigger: Trigger::Other {
            action: action.clone(),
        },
    };
    let action = action.unwrap_or_default();
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
            let body = text(v, "/comment/body").unwrap_or_default();
            let command = comment_command(&body);
            event.trigger = Trigger::Comment {
                action,
                command,
                rest: (command == Some(CommentCommand::BreakGlass))
                    .then(|| after_first_line(&body)),
                created_at: text(v, "/comment/created_at"),
                author: text(v, "/comment/user/login"),
                on_pull_request: v
                    .pointer("/issue/pull_request")
                    .is_some_and(|p| !p.is_null()),
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
        _ => {}
    }
    Ok(event)
}

/// `/rotor plan`, `/rotor apply` or `/rotor break-glass` when the comment's first line (up to
/// LF or CRLF), with the spaces and tabs at its two ends trimmed, is exactly that: one space
/// inside, lowercase, nothing after.
pub fn comment_command(body: &str) -> Option<CommentCommand> {
    let first = body.split('\n').next().unwrap_or_default();
    let first = first.strip_suffix('\r').unwrap_or(first);
    match first.trim_matches([' ', '\t']) {
        "/rotor plan" => Some(CommentCommand::Plan),
        "/rotor apply" => Some(CommentCommand::Apply),
        "/rotor break-glass" => Some(CommentCommand::BreakGlass),
        _ => None,
    }
}

/// The comment's lines after the first: CR LF read as LF, white space at the two ends trimmed.
fn after_first_line(body: &str) -> String {
    let body = body.replace("\r\n", "\n");
    body.split_once('\n')
        .map_or("", |(_, rest)| rest)
        .trim()
        .to_owned()
}

impl Event {
    fn not(&self, reason: impl Into<String>) -> NotATrigger {
        let action = match &self.trigger {
            Trigger::PullRequest { action }
            | Trigger::Review { action, .. }
            | Trigger::Comment { action, .. } => Some(action.clone()).filter(|a| !a.is_empty()),
            Trigger::Other { action } => action.clone(),
            Trigger::Dispatch { .. } => None,
        };
        NotATrigger {
            event: self.name.clone(),
            action,
            reason: reason.into(),
        }
    }

    /// Checks that the event is about `repository` (`GITHUB_REPOSITORY`), case aside as GitHub
    /// treats names.
    pub fn check_repository(&self, repository: &str) -> Result<(), EventError> {
        match &self.repository {
            Some(r) if r.eq_ignore_ascii_case(repository) => Ok(()),
            Some(r) => Err(EventError::OtherRepository {
                event: r.clone(),
                run: repository.to_owned(),
            }),
            None => Err(EventError::Missing {
                name: self.name.clone(),
                field: "repository.full_name",
            }),
        }
    }

    /// A comment trigger's command and author, once it passed every rule of a comment.
    fn comment(&self, wanted: CommentCommand) -> Result<(u64, Option<String>), NotATrigger> {
        let Trigger::Comment {
            action,
            command,
            author,
            on_pull_request,
            ..
        } = &self.trigger
        else {
            return Err(self.not("not a comment"));
        };
        let word = wanted.word();
        if action != "created" {
            return Err(self.not(
                "only a newly created comment is a command; an edited or deleted comment never is, whoever edited it (the text someone read is not the text that would run)",
            ));
        }
        if *command != Some(wanted) {
            return Err(self.not(format!("the comment's first line is not exactly `{word}`")));
        }
        let number = self.number.unwrap_or_default();
        if !on_pull_request {
            return Err(self.not(format!(
                "#{number} is an issue, not a pull request; `{word}` works only on a rotation pull request"
            )));
        }
        match (author, &self.sender) {
            (Some(a), Some(s)) if a.eq_ignore_ascii_case(s) => Ok((number, Some(a.clone()))),
            (a, s) => Err(self.not(format!(
                "the comment's author ({}) is not who sent the event ({})",
                a.as_deref().unwrap_or("a deleted account"),
                s.as_deref().unwrap_or("nobody")
            ))),
        }
    }

    /// The pull request `plan` runs for, or why this event asks nothing of it.
    pub fn plan_trigger(&self) -> Result<u64, NotATrigger> {
        let number = self.number.unwrap_or_default();
        match (&self.trigger, self.name.as_str()) {
            (Trigger::PullRequest { .. }, "pull_request_target") => Err(self.not(
                "rotor plan does not run on pull_request_target, which runs with the base branch's secrets for pull requests from anyone; trigger it on pull_request",
            )),
            (Trigger::PullRequest { action }, _) => match action.as_str() {
                "opened" | "synchronize" | "reopened" => Ok(number),
                _ => Err(self.not(
                    "rotor plan runs when a pull request is opened, pushed to (synchronize) or reopened",
                )),
            },
            (Trigger::Review { .. }, _) => self.approval().map(|()| number),
            (Trigger::Comment { .. }, _) => self.comment(CommentCommand::Plan).map(|(n, _)| n),
            _ => Err(self.not(
                "rotor plan runs on pull_request, an approving pull_request_review, or a `/rotor plan` comment",
            )),
        }
    }

    /// The pull request `apply` runs for, or why this event asks nothing of it.
    pub fn apply_trigger(&self) -> Result<ApplyTrigger, NotATrigger> {
        match &self.trigger {
            Trigger::Review { reviewer, .. } => self.approval().map(|()| ApplyTrigger {
                number: self.number.unwrap_or_default(),
                comment_author: None,
                break_glass: None,
                reviewer: reviewer.clone(),
                comment_at: None,
            }),
            Trigger::Comment {
                command: Some(CommentCommand::BreakGlass),
                rest,
                created_at,
                ..
            } => self
                .comment(CommentCommand::BreakGlass)
                .map(|(number, comment_author)| ApplyTrigger {
                    number,
                    comment_author,
                    break_glass: Some(rest.clone().unwrap_or_default()),
                    reviewer: None,
                    comment_at: created_at.clone(),
                }),
            Trigger::Comment { created_at, .. } => self
                .comment(CommentCommand::Apply)
                .map(|(number, comment_author)| ApplyTrigger {
                    number,
                    comment_author,
                    break_glass: None,
                    reviewer: None,
                    comment_at: created_at.clone(),
                }),
            _ => Err(self.not(
                "rotor apply runs on an approving pull_request_review, a `/rotor apply` or a `/rotor break-glass` comment",
            )),
        }
    }

    /// A review counts when it was just submitted and approves.
    fn approval(&self) -> Result<(), NotATrigger> {
        let Trigger::Review { action, state, .. } = &self.trigger else {
            return Err(self.not("not a review"));
        };
        if action != "submitted" {
            return Err(self.not(
                "only a submitted review starts rotor; an edited or dismissed review never does",
            ));
        }
        if !state.eq_ignore_ascii_case("approved") {
            return Err(self.not(format!("the review is `{state}`, not an approval")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_commands_are_exact() {
        assert_eq!(comment_command("/rotor apply"), Some(CommentCommand::Apply));
        assert_eq!(
            comment_command(" \t/rotor plan\t \r\nthanks"),
            Some(CommentCommand::Plan)
        );
        assert_eq!(
            comment_command("/rotor apply\nnow"),
            Some(CommentCommand::Apply)
        );
        assert_eq!(
            comment_command(" /rotor break-glass\r\nkey leaked"),
            Some(CommentCommand::BreakGlass)
        );
        for not in [
            "please /rotor apply",
            "/rotor apply now",
            "/rotor  apply",
            "/rotor\tapply",
            "/Rotor apply",
            "/rotor APPLY",
            "\n/rotor apply",
            "/rotor apply\u{a0}",
            "/rotor",
            "/rotor break-glass now",
            "/rotor break glass",
            "/rotor Break-Glass",
            "",
        ] {
            assert_eq!(comment_command(not), None, "{not:?}");
        }
    }

    #[test]
    fn the_break_glass_reason_is_every_line_after_the_first() {
        assert_eq!(
            after_first_line("/rotor break-glass\r\n  key leaked\r\nINC-42\r\n\r\n"),
            "key leaked\nINC-42"
        );
        assert_eq!(after_first_line("/rotor break-glass"), "");
        assert_eq!(after_first_line("/rotor break-glass\n \t\n"), "");
    }
}
