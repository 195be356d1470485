//! What people see of a batch, through the binary under Actions: 30 refs on OpenBao, two whose
//! new version the application rejects (rolled back), one whose old version it rejects too (the
//! rollback's checks fail: failed), far down the request. The log has a group per ref with its
//! steps and durations, a progress line and an annotation per ref that did not succeed; the
//! comment and the summary open with the counts, list those refs first with the failing check
//! and the next step, fold the 27 successes into `<details>`, and link the artifact at its
//! commit, the commit, the pull request, the run and the audit query. And the log of a small
//! batch, run one ref at a time so that its order is fixed, as a snapshot.

use std::fs;

use regex::Regex;

use crate::apply::{Setup, apply_command, review_event, setup_configured};
use crate::plan::sandbox_state;
use crate::services::block_on;

/// Refs 13 and 24 move 2 → 3, ref 29 moves 4 → 5; the application rejects 3, 4 and 5. The
/// others move 1 → 2.
fn batch() -> Setup {
    let s = setup_configured(30, &["3", "4", "5"], |t| t, |c| c, None);
    for i in [12, 23] {
        block_on(s.bao.provision(&s.names[i], 1, Some(2)));
    }
    block_on(s.bao.provision(&s.names[28], 3, Some(4)));
    s
}

/// Runs the apply as the runner would; returns the report, the log (stderr), the comment and
/// the summary.
fn run(s: &Setup, code: i32) -> (serde_json::Value, String, String, String) {
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(s, &event, "pull_request_review")
        .env("GITHUB_ACTIONS", "true")
        .expects_exit(code)
        .run();
    let report = serde_json::from_str(&stdout).expect("one JSON object");
    let comment = sandbox_state(&s.url)["comments"][0]["body"]
        .as_str()
        .expect("comment")
        .to_owned();
    let summary = fs::read_to_string(s.w.dir.path().join("summary.md")).expect("summary");
    (report, stderr, comment, summary)
}

#[test]
fn a_batch_of_30_shows_progress_and_puts_what_needs_attention_first() {
    let s = batch();
    let (report, log, comment, summary) = run(&s, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    let (rolled, failed) = ([&s.names[12], &s.names[23]], &s.names[28]);
    let file = format!("rotations/{}.yaml", s.id);

    // The log: a whole group per ref, its steps with durations; the progress; annotations.
    assert_eq!(log.matches("::endgroup::").count(), 30, "{log}");
    let duration = r"\((\d+ ms|\d+\.\d s)\)";
    for (name, title) in [
        (&s.names[0], "success \\(1 → 2, "),
        (rolled[0], "rolled_back \\(2 → 3, "),
        (failed, "failed \\(4 → 5, "),
    ] {
        let group = Regex::new(&format!(
            r"(?s)::group::{}: {title}[^\n]*\n(.*?)::endgroup::",
            regex::escape(name)
        ))
        .expect("regex");
        let steps = &group
            .captures(&log)
            .unwrap_or_else(|| panic!("{name}: {log}"))[1];
        for line in steps.lines() {
            assert!(
                Regex::new(&format!("^  .+ {duration}$"))
                    .expect("regex")
                    .is_match(line),
                "a step with its duration: {line:?}"
            );
        }
        assert!(steps.contains("locked for"), "{steps}");
        assert!(steps.contains("resolve: resolve returned"), "{steps}");
        assert!(steps.contains("site-"), "each health check: {steps}");
    }
    assert!(
        log.contains("[30/30] 27 success, 2 rolled back, 1 failed"),
        "{log}"
    );
    for name in rolled {
        let warning = format!(
            "::warning file={file},title=rotor%3A {name} rolled_back::{name}: rolled_back: verification failed: "
        );
        assert!(log.contains(&warning), "{warning}\n{log}");
    }
    let error = format!("::error file={file},title=rotor%3A {failed} failed::{failed}: failed: ");
    assert!(log.contains(&error), "{error}\n{log}");
    assert_eq!(log.matches("::warning file=").count(), 2, "{log}");
    assert_eq!(log.matches("::error file=").count(), 1, "{log}");

    let sha = report["commit_sha"].as_str().expect("commit");
    let artifact = report["artifact_path"].as_str().expect("artifact");
    for (name, text) in [("comment", &comment), ("summary", &summary)] {
        assert!(
            text.contains("**30 refs: 27 success, 2 rolled back, 1 failed**"),
            "{name}: {text}"
        );
        // The three first, in the request's order, before any success.
        let row = |r: &str| {
            text.find(&format!("| {r} |"))
                .unwrap_or_else(|| panic!("{name}: no row for {r}: {text}"))
        };
        let first_success = row(&s.names[0]);
        assert!(row(rolled[0]) < row(rolled[1]), "{name}");
        assert!(row(rolled[1]) < row(failed), "{name}");
        assert!(row(failed) < first_success, "{name}");
        // Each with the failing check, what it saw, and the next step.
        for r in rolled {
            let line = &text[row(r)..];
            let line = &line[..line.find('\n').unwrap_or(line.len())];
            assert!(
                line.contains("site-0")
                    && line.contains("credential (version 3) is rejected")
                    && line.contains("look at the failing check"),
                "{name}: {line}"
            );
        }
        let line = &text[row(failed)..];
        let line = &line[..line.find('\n').unwrap_or(line.len())];
        assert!(
            line.contains("rollback")
                && line.contains("check the pointer and the application by hand"),
            "{name}: {line}"
        );
        assert!(
            text.contains("<details><summary>27 success</summary>"),
            "{name}: {text}"
        );
        for link in [
            format!("[artifact](https://github.com/my-org/tenants/blob/{sha}/{artifact})"),
            format!(
                "[commit {}](https://github.com/my-org/tenants/commit/{sha})",
                &sha[..7]
            ),
            "[pull request #7](https://github.com/my-org/tenants/pull/7)".to_owned(),
            "[workflow run](https://github.com/my-org/tenants/actions/runs/4242)".to_owned(),
            format!(
                "[audit query]({}/api/v1/audit/events?action=secret\\_ref\\_upserted&limit=100)",
                s.url
            ),
        ] {
            let plain = link.replace("\\_", "_");
            assert!(
                text.contains(&link) || text.contains(&plain),
                "{name}: {link}\n{text}"
            );
        }
    }
    // The summary's rows carry the checks and the audit event ids.
    let success_row = summary
        .lines()
        .find(|l| l.starts_with(&format!("| {} |", s.names[0])))
        .expect("row");
    assert!(
        success_row.contains("site-001 health ok")
            && Regex::new(r"\| evt_\d+ \|$")
                .expect("regex")
                .is_match(success_row),
        "{success_row}"
    );
}

#[test]
fn the_log_of_a_small_batch() {
    let s = setup_configured(3, &["3"], |t| t, |c| c + "concurrency: 1\n", None);
    block_on(s.bao.provision(&s.names[1], 1, Some(2)));
    let (_, log, _, _) = run(&s, 1);
    let slug = s.id.trim_start_matches("2026-11-25-").to_owned();
    insta::with_settings!({filters => vec![
        (slug.as_str(), "[SLUG]"),
        (r"\d+ ms\b|\d+\.\d s\b", "[T]"),
        (r"evt_\d+", "evt_[N]"),
    ]}, {
        insta::assert_snapshot!(log);
    });
}

#[test]
fn quiet_keeps_the_annotations_and_verbose_adds_each_http_call_without_secrets() {
    let s = setup_configured(2, &["3"], |t| t, |c| c, None);
    block_on(s.bao.provision(&s.names[1], 1, Some(2)));
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (_, quiet) = apply_command(&s, &event, "pull_request_review")
        .env("GITHUB_ACTIONS", "true")
        .args(["-q"])
        .expects_exit(1)
        .run();
    assert!(!quiet.contains("::group::"), "{quiet}");
    assert!(!quiet.contains("[2/2]"), "{quiet}");
    assert!(
        quiet.contains(&format!("::warning file=rotations/{}.yaml", s.id))
            && quiet.contains(&s.names[1]),
        "the result line of the ref that did not succeed: {quiet}"
    );

    let v = setup_configured(1, &[], |t| t, |c| c, None);
    let event = review_event(v.w.dir.path(), &v.w.head);
    let (_, verbose) = apply_command(&v, &event, "pull_request_review")
        .args(["-v"])
        .expects_exit(0)
        .run();
    let call = Regex::new(r"(?m)^http: (vault|app|github) (GET|POST|PUT|PATCH|DELETE) /\S* -> \d{3} \((\d+ ms|\d+\.\d s)\)$")
        .expect("regex");
    let calls: Vec<&str> = verbose
        .lines()
        .filter(|l| l.starts_with("http: "))
        .collect();
    assert!(calls.len() > 5, "{verbose}");
    for line in &calls {
        assert!(
            call.is_match(line),
            "method, path, status, duration: {line}"
        );
    }
    for service in ["vault", "app", "github"] {
        assert!(
            calls
                .iter()
                .any(|l| l.starts_with(&format!("http: {service} "))),
            "{service}: {verbose}"
        );
    }
    assert!(
        calls.iter().any(|l| l.contains("/v1/secret/metadata/")),
        "{verbose}"
    );
    for secret in [v.token.token.as_str(), "app-token", "ghs_repo_token", "?"] {
        assert!(
            !calls.iter().any(|l| l.contains(secret)),
            "no token, header or query string: {secret}"
        );
    }
    for canary in &v.canaries {
        assert!(!verbose.contains(canary.as_str()));
    }
}
