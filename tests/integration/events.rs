//! Event intake on GitHub's real webhook payloads (tests/fixtures/github/webhooks, from
//! octokit/webhooks; see the LICENSE there), and the table of triggers in `docs/events.md`
//! held against the code row by row.

use std::path::PathBuf;

use rotor::github::event::{self, CommentCommand, Trigger};
use serde_json::{Value, json};

use crate::common::{fixture, root};

fn payload(name: &str) -> PathBuf {
    fixture(&format!("github/webhooks/{name}.json"))
}

fn read(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(payload(name)).expect("fixture")).expect("json")
}

#[test]
fn pull_request_events() {
    for (file, action) in [
        ("pull_request.opened.with-organization", "opened"),
        ("pull_request.synchronize", "synchronize"),
    ] {
        let e = event::load(&payload(file), Some("pull_request")).expect("valid");
        assert_eq!(
            e.trigger,
            Trigger::PullRequest {
                action: action.to_owned()
            },
            "{file}"
        );
        assert!(
            e.number.is_some() && e.head_sha.as_ref().is_some_and(|s| s.len() == 40),
            "{file}: {e:?}"
        );
        assert!(e.repository.is_some() && e.sender.is_some(), "{file}");
        assert_eq!(e.plan_trigger(), Ok(e.number.expect("number")));
    }
}

#[test]
fn review_events_carry_state_reviewer_and_head() {
    let e = event::load(
        &payload("pull_request_review.submitted.with-organization"),
        Some("pull_request_review"),
    )
    .expect("valid");
    let Trigger::Review {
        action,
        state,
        reviewer,
    } = &e.trigger
    else {
        panic!("a review: {e:?}")
    };
    assert_eq!(action, "submitted");
    assert!(!state.is_empty() && state.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
    assert!(reviewer.is_some());
    assert!(e.head_sha.is_some());
    let dismissed = event::load(&payload("pull_request_review.dismissed"), None).expect("inferred");
    assert_eq!(dismissed.name, "pull_request_review");
    assert!(
        matches!(dismissed.trigger, Trigger::Review { ref action, .. } if action == "dismissed")
    );
    let not = dismissed
        .apply_trigger()
        .expect_err("a dismissal applies nothing");
    assert_eq!(not.action.as_deref(), Some("dismissed"));
}

#[test]
fn comments_are_commands_only_on_pull_requests_only_verbatim_and_only_by_their_sender() {
    let mut v = read("issue_comment.created.with-organization");
    // The fixture is a comment on a plain issue, with ordinary text.
    let e = event::parse("issue_comment", &v).expect("valid");
    assert!(matches!(
        e.trigger,
        Trigger::Comment { command: None, on_pull_request: false, ref author, .. } if author.as_deref() == Some("Codertocat")
    ));
    assert_eq!(e.head_sha, None, "a comment carries no head SHA");
    v["comment"]["body"] = "/rotor apply".into();
    let on_issue = event::parse("issue_comment", &v).expect("valid");
    let not = on_issue.apply_trigger().expect_err("not a pull request");
    assert!(
        not.to_string().contains("is an issue, not a pull request"),
        "{not}"
    );
    v["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
    let on_pr = event::parse("issue_comment", &v).expect("valid");
    assert!(matches!(
        on_pr.trigger,
        Trigger::Comment {
            command: Some(CommentCommand::Apply),
            ..
        }
    ));
    let t = on_pr.apply_trigger().expect("a trigger");
    assert_eq!(t.comment_author.as_deref(), Some("Codertocat"));
    v["sender"]["login"] = "mallory".into();
    let relayed = event::parse("issue_comment", &v).expect("valid");
    let not = relayed
        .apply_trigger()
        .expect_err("author is not the sender");
    assert!(not.to_string().contains("mallory"), "{not}");
}

#[test]
fn workflow_dispatch_carries_ref_and_inputs() {
    let e = event::load(&payload("workflow_dispatch"), None).expect("valid");
    let Trigger::Dispatch { git_ref, inputs } = &e.trigger else {
        panic!("a dispatch: {e:?}")
    };
    assert_eq!(git_ref, "refs/heads/master");
    assert_eq!(
        inputs,
        &[("name".to_owned(), "Mona the Octocat".to_owned())]
    );
    assert!(e.plan_trigger().is_err() && e.apply_trigger().is_err());
}

#[test]
fn unusable_payloads_are_input_errors_and_other_events_are_not_triggers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("e.json");
    std::fs::write(&bad, "[1, 2]").expect("write");
    assert!(matches!(
        event::load(&bad, None),
        Err(event::EventError::Json { .. })
    ));
    std::fs::write(&bad, r#"{"action": "created"}"#).expect("write");
    let push = event::load(&bad, Some("push")).expect("any event parses");
    assert!(push.plan_trigger().is_err() && push.apply_trigger().is_err());
    assert!(matches!(
        event::load(&bad, Some("pull_request")),
        Err(event::EventError::Missing { .. })
    ));
    assert!(matches!(
        event::load(&dir.path().join("missing.json"), None),
        Err(event::EventError::Read { .. })
    ));
}

#[test]
fn an_event_about_another_repository_is_refused() {
    let e = event::load(&payload("pull_request.opened.with-organization"), None).expect("valid");
    let own = e.repository.clone().expect("repository");
    assert_eq!(e.check_repository(&own), Ok(()));
    assert_eq!(
        e.check_repository(&own.to_uppercase()),
        Ok(()),
        "names ignore case"
    );
    assert!(matches!(
        e.check_repository("my-org/tenants"),
        Err(event::EventError::OtherRepository { .. })
    ));
}

/// What a row of docs/events.md says a command does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Does {
    Runs,
    Noop,
}

/// One row: the event, the action cell as written, the payload, what plan and apply do.
struct Row {
    event: &'static str,
    action: String,
    payload: Value,
    plan: Does,
    apply: Does,
}

fn pr_payload(action: &str) -> Value {
    let mut v = read("pull_request.opened.with-organization");
    v["action"] = action.into();
    v
}

fn review_payload(action: &str, state: &str) -> Value {
    let mut v = read("pull_request_review.submitted.with-organization");
    v["action"] = action.into();
    v["review"]["state"] = state.into();
    v
}

fn comment_payload(action: &str, body: &str, on_pr: bool, sender: Option<&str>) -> Value {
    let mut v = read("issue_comment.created.with-organization");
    v["action"] = action.into();
    v["comment"]["body"] = body.into();
    if on_pr {
        v["issue"]["pull_request"] = json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
    }
    if let Some(s) = sender {
        v["sender"]["login"] = s.into();
    }
    v
}

/// Every (event, action) pair GitHub documents for the four events, and what rotor does.
fn rows() -> Vec<Row> {
    use Does::{Noop, Runs};
    let mut rows = Vec::new();
    // GitHub's "Webhook events and payloads": the 21 actions of pull_request.
    for action in [
        "opened",
        "synchronize",
        "reopened",
        "assigned",
        "auto_merge_disabled",
        "auto_merge_enabled",
        "closed",
        "converted_to_draft",
        "demilestoned",
        "dequeued",
        "edited",
        "enqueued",
        "labeled",
        "locked",
        "milestoned",
        "ready_for_review",
        "review_request_removed",
        "review_requested",
        "unassigned",
        "unlabeled",
        "unlocked",
    ] {
        let plans = matches!(action, "opened" | "synchronize" | "reopened");
        rows.push(Row {
            event: "pull_request",
            action: format!("`{action}`"),
            payload: pr_payload(action),
            plan: if plans { Runs } else { Noop },
            apply: Noop,
        });
    }
    for (action, state, plan, apply) in [
        ("submitted", "approved", Runs, Runs),
        ("submitted", "changes_requested", Noop, Noop),
        ("submitted", "commented", Noop, Noop),
    ] {
        rows.push(Row {
            event: "pull_request_review",
            action: format!("`{action}`, state `{state}`"),
            payload: review_payload(action, state),
            plan,
            apply,
        });
    }
    for action in ["edited", "dismissed"] {
        rows.push(Row {
            event: "pull_request_review",
            action: format!("`{action}`"),
            payload: review_payload(action, "approved"),
            plan: Noop,
            apply: Noop,
        });
    }
    let comments = [
        (
            "`created`, `/rotor plan` on a pull request by its sender",
            comment_payload("created", "/rotor plan", true, None),
            Runs,
            Noop,
        ),
        (
            "`created`, `/rotor apply` on a pull request by its sender",
            comment_payload("created", "/rotor apply", true, None),
            Noop,
            Runs,
        ),
        (
            "`created`, `/rotor break-glass` on a pull request by its sender",
            comment_payload("created", "/rotor break-glass\nkey leaked", true, None),
            Noop,
            Runs,
        ),
        (
            "`created`, any other first line",
            comment_payload("created", "/rotor  apply", true, None),
            Noop,
            Noop,
        ),
        (
            "`created`, on an issue that is not a pull request",
            comment_payload("created", "/rotor apply", false, None),
            Noop,
            Noop,
        ),
        (
            "`created`, author is not the sender",
            comment_payload("created", "/rotor apply", true, Some("mallory")),
            Noop,
            Noop,
        ),
        (
            "`edited`",
            comment_payload("edited", "/rotor apply", true, None),
            Noop,
            Noop,
        ),
        (
            "`deleted`",
            comment_payload("deleted", "/rotor apply", true, None),
            Noop,
            Noop,
        ),
    ];
    for (action, payload, plan, apply) in comments {
        rows.push(Row {
            event: "issue_comment",
            action: action.to_owned(),
            payload,
            plan,
            apply,
        });
    }
    for (event, payload) in [
        ("workflow_dispatch", read("workflow_dispatch")),
        ("schedule", json!({"schedule": "17 6 * * *"})),
        ("push", json!({"ref": "refs/heads/main"})),
    ] {
        rows.push(Row {
            event,
            action: "—".to_owned(),
            payload,
            plan: Noop,
            apply: Noop,
        });
    }
    rows
}

#[test]
fn every_documented_event_and_action_does_what_docs_events_md_says() {
    let doc = std::fs::read_to_string(root().join("docs/events.md")).expect("docs/events.md");
    let word = |d: Does, runs: &str| match d {
        Does::Runs => runs.to_owned(),
        Does::Noop => "noop".to_owned(),
    };
    for row in rows() {
        let e = event::parse(row.event, &row.payload).expect("parses");
        let plan = if e.plan_trigger().is_ok() {
            Does::Runs
        } else {
            Does::Noop
        };
        let apply = if e.apply_trigger().is_ok() {
            Does::Runs
        } else {
            Does::Noop
        };
        assert_eq!(
            (plan, apply),
            (row.plan, row.apply),
            "{} {}",
            row.event,
            row.action
        );
        if let Err(not) = e.apply_trigger() {
            // The message names the event and, where there is one, its action.
            assert!(not.to_string().contains(row.event), "{not}");
        }
        let line = format!(
            "| `{}` | {} | {} | {} |",
            row.event,
            row.action,
            word(row.plan, "plans"),
            word(row.apply, "applies")
        );
        assert!(
            doc.lines().any(|l| l == line),
            "docs/events.md has no row\n{line}"
        );
    }
    let documented = doc
        .lines()
        .filter(|l| l.starts_with("| `") && l.matches(" | ").count() == 3)
        .count();
    assert_eq!(documented, rows().len(), "every row of the table is tested");
}
