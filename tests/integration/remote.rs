//! A remote that refuses the artifact's push: served over git's smart HTTP by the real
//! `git http-backend`, so that a `pre-receive` hook runs and refuses as GitHub's branch
//! protection does (libgit2's local-path transport would run no hook). The token reaches the
//! server as `x-access-token` Basic credentials, from environment-scoped config.

use std::fs;

use serde_json::Value;

use crate::apply::{apply_command, review_event, setup};
use crate::attacks::{app_upserts, marker, pointer};
use crate::plan::git;

/// GitHub's answer to a push to a protected branch, as a `pre-receive` hook.
const PROTECTED: &str = r#"#!/bin/sh
while read -r old new ref; do
  case "$ref" in
    refs/heads/rotate*)
      echo "GH006: Protected branch update failed for $ref." >&2
      echo "error: Changes must be made through a pull request." >&2
      exit 1
      ;;
  esac
done
"#;

#[test]
fn a_push_the_remote_refuses_is_reported_in_its_words_and_a_rerun_commits_without_rotating() {
    let s = setup(&[]);
    let server = rotor_sandbox::start_git_http(
        "127.0.0.1:0".parse().expect("addr"),
        s.w.dir.path().to_path_buf(),
        "ghs_repo_token",
    )
    .expect("git server");
    let hook = s.w.origin().join("hooks/pre-receive");
    fs::write(&hook, PROTECTED).expect("hook");
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let ws = s.w.workspace("pull_request_review");
    git(
        &ws,
        &[
            "remote",
            "set-url",
            "origin",
            &format!("{}/origin.git", server.url()),
        ],
    );
    let event = review_event(s.w.dir.path(), &s.w.head);
    let outputs = s.w.dir.path().join("outputs-refused");
    let started = std::time::Instant::now();
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .current_dir(&ws)
        .env("GITHUB_OUTPUT", &outputs)
        .expects_exit(1)
        .run();
    let elapsed = started.elapsed();
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "failed", "{report:#}");
    assert!(
        report["errors"]
            .to_string()
            .contains("GH006: Protected branch update failed"),
        "the remote's own words in the report: {report:#}"
    );
    assert!(stderr.contains("GH006"), "and in the log: {stderr}");
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "a refusal is not retried as a race: {elapsed:?}"
    );
    let written = fs::read_to_string(&outputs).expect("outputs");
    assert!(written.contains("result=failed\n"), "{written}");
    // The rotation itself happened and is settled; only the record is missing.
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("2"));
    assert_eq!(marker(&s, &s.name).as_deref(), Some("done"));
    assert_eq!(git(&s.w.origin(), &["rev-parse", "rotate"]), s.w.head);
    let upserts = app_upserts(&s).len();

    // The protection is lifted: a re-run commits the artifact without rotating again.
    fs::remove_file(&hook).expect("unhook");
    let (stdout, _) = apply_command(&s, &event, "pull_request_review")
        .current_dir(&ws)
        .run();
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(app_upserts(&s).len(), upserts, "no second rotation");
    assert_ne!(
        git(&s.w.origin(), &["rev-parse", "rotate"]),
        s.w.head,
        "committed"
    );
    let log: Vec<Value> = reqwest::blocking::get(format!("{}/_git/requests", server.url()))
        .expect("log")
        .json()
        .expect("json");
    assert!(!log.is_empty(), "rotor went through the HTTP remote");
    assert!(
        log.iter().all(|r| r["authorized"] == true),
        "every request carried the token as x-access-token: {log:#?}"
    );
}
