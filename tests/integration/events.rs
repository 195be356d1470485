//! Event intake on GitHub's real webhook payloads (tests/fixtures/github/webhooks, from
//! octokit/webhooks; see the LICENSE there).

use std::path::PathBuf;

use rotor::github::event::{self, CommentCommand, Trigger};

use crate::common::fixture;

fn payload(name: &str) -> PathBuf {
    fixture(&format!("github/webhooks/{name}.json"))
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
        assert!(
            e.default_branch.is_some() && e.repository.is_some(),
            "{file}"
        );
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
}

#[test]
fn comments_are_commands_only_on_pull_requests_and_only_verbatim() {
    let path = payload("issue_comment.created.with-organization");
    let e = event::load(&path, Some("issue_comment")).expect("valid");
    // The fixture is a comment on a plain issue, with ordinary text.
    assert_eq!(
        e.trigger,
        Trigger::Comment {
            command: None,
            author: Some("Codertocat".to_owned())
        }
    );
    assert_eq!(e.head_sha, None, "a comment carries no head SHA");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
    v["comment"]["body"] = "/rotor apply".into();
    let on_issue = event::parse("issue_comment", &v).expect("valid");
    assert!(
        matches!(on_issue.trigger, Trigger::Comment { command: None, .. }),
        "not a pull request"
    );
    v["issue"]["pull_request"] =
        serde_json::json!({"url": "https://api.github.com/repos/o/r/pulls/1"});
    let on_pr = event::parse("issue_comment", &v).expect("valid");
    assert!(matches!(
        on_pr.trigger,
        Trigger::Comment {
            command: Some(CommentCommand::Apply),
            ..
        }
    ));
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
}

#[test]
fn unusable_events_are_input_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("e.json");
    std::fs::write(&bad, "[1, 2]").expect("write");
    assert!(matches!(
        event::load(&bad, None),
        Err(event::EventError::Json { .. })
    ));
    std::fs::write(&bad, r#"{"action": "created"}"#).expect("write");
    assert!(matches!(
        event::load(&bad, Some("push")),
        Err(event::EventError::Unsupported { .. })
    ));
    assert!(matches!(
        event::load(&bad, Some("pull_request")),
        Err(event::EventError::Missing { .. })
    ));
    assert!(matches!(
        event::load(&dir.path().join("missing.json"), None),
        Err(event::EventError::Read { .. })
    ));
}
