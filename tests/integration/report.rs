//! `rotor report` over a repository with several artifacts, written by rotor's own artifact
//! model: ages, staleness against `policy.max_age_days`, rollbacks and never-successful refs.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::common::rotor;
use rotor::artifact::{Artifact, RefRecord};
use rotor::render::Renderer;

fn record(r: &str, result: &str) -> RefRecord {
    RefRecord {
        secret_ref: r.to_owned(),
        provider: r.split('.').nth(2).unwrap_or_default().to_owned(),
        backend: "vault".to_owned(),
        from: "1".to_owned(),
        to: "2".to_owned(),
        result: result.to_owned(),
        checks: "resolve: resolve returned 2".to_owned(),
        audit_event_ids: vec!["evt_000001".to_owned()],
        rollback_event_ids: Vec::new(),
        pointer: Some(if result == "success" { "2" } else { "1" }.to_owned()),
        reason: None,
    }
}

fn artifact(id: &str, days_ago: i64, refs: Vec<RefRecord>) -> String {
    let at = Utc::now() - Duration::days(days_ago);
    let result = if refs.iter().all(|r| r.result == "success") {
        "success"
    } else {
        "rolled_back"
    };
    Artifact {
        app_clock_offset_s: None,
        started_at: None,
        rotation_id: id.to_owned(),
        date: at.format("%Y-%m-%d").to_string(),
        operator: "alice".to_owned(),
        result: result.to_owned(),
        refs,
        approvals: Vec::new(),
        pull_request: Some(7),
        pull_request_url: None,
        run_url: None,
        timeline: Vec::new(),
        audit_query:
            "https://app.example.com/api/v1/audit/events?action=secret_ref_upserted&limit=100"
                .to_owned(),
        rollback: None,
        finished_at: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        halted: None,
        break_glass: None,
    }
    .render(&Renderer::new(Vec::new()).expect("renderer"))
    .expect("render")
}

#[test]
fn the_report_lists_every_refs_last_successful_rotation_and_flags_old_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".github")).expect("dir");
    std::fs::create_dir_all(root.join("docs/security/rotations")).expect("dir");
    std::fs::write(
        root.join(".github/rotor.yml"),
        "version: 1\nadmins: {users: [alice]}\nenvironments: {staging: {}}\n\
         backends: [{match: \"tenant.*.*.*\", type: vault, mount: secret}]\n\
         app: {base_url: \"http://127.0.0.1:9\"}\npolicy: {max_age_days: 30}\n",
    )
    .expect("config");
    let (acme, globex, initech) = (
        "tenant.acme.supabase.service_role",
        "tenant.globex.stripe.secret_key",
        "tenant.initech.supabase.service_role",
    );
    for (id, days, refs) in [
        // acme: rotated 100 days ago, then again 5 days ago.
        ("acme-q3", 100, vec![record(acme, "success")]),
        ("acme-q4", 5, vec![record(acme, "success")]),
        // globex: rotated 45 days ago (too old); a later attempt rolled back.
        ("batch-oct", 45, vec![record(globex, "success")]),
        ("globex-retry", 3, vec![record(globex, "rolled_back")]),
        // initech: never successfully rotated.
        ("initech-first", 2, vec![record(initech, "rolled_back")]),
    ] {
        std::fs::write(
            root.join(format!("docs/security/rotations/{id}.md")),
            artifact(id, days, refs),
        )
        .expect("artifact");
    }
    let (stdout, _) = rotor()
        .args(["report", "--format", "json", "--repo"])
        .args([root])
        .run();
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["max_age_days"], 30);
    assert_eq!(report["stale"], 2, "{report:#}");
    let row = |r: &str| -> Value {
        report["refs"]
            .as_array()
            .expect("refs")
            .iter()
            .find(|x| x["ref"] == r)
            .cloned()
            .unwrap_or_else(|| panic!("{r} missing: {report:#}"))
    };
    assert_eq!(row(acme)["rotation_id"], "acme-q4");
    assert_eq!(row(acme)["age_days"], 5);
    assert_eq!(row(acme)["stale"], false);
    assert_eq!(row(globex)["rotation_id"], "batch-oct");
    assert_eq!(row(globex)["age_days"], 45);
    assert_eq!(row(globex)["stale"], true);
    assert_eq!(row(initech)["last_rotated"], Value::Null);
    assert_eq!(row(initech)["result"], "rolled_back");
    assert_eq!(row(initech)["stale"], true);

    // The markdown a reviewer reads.
    let (markdown, _) = rotor().args(["report", "--repo"]).args([root]).run();
    let today = Utc::now();
    let dates: Vec<(String, &str)> = [(5, "[5 DAYS AGO]"), (45, "[45 DAYS AGO]")]
        .into_iter()
        .map(|(d, label)| {
            (
                (today - Duration::days(d)).format("%Y-%m-%d").to_string(),
                label,
            )
        })
        .collect();
    let mut text = markdown;
    for (date, label) in &dates {
        text = text.replace(date.as_str(), label);
    }
    insta::with_settings!({filters => vec![(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[NOW]")]}, {
        insta::assert_snapshot!("report_markdown", text);
    });
}

#[test]
fn before_the_first_rotation_drift_and_report_say_there_is_nothing_yet_and_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join(".github")).expect("dir");
    std::fs::write(
        root.join(".github/rotor.yml"),
        "version: 1\nadmins: {users: [alice]}\nenvironments: {staging: {}}\n\
         backends: [{match: \"tenant.*.*.*\", type: vault, mount: secret}]\n\
         app: {base_url: \"http://127.0.0.1:9\"}\n",
    )
    .expect("config");
    let summary = root.join("summary.md");
    for command in ["drift", "report"] {
        std::fs::write(&summary, "").expect("summary");
        let (stdout, stderr) = rotor()
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_STEP_SUMMARY", &summary)
            .args([command, "--format", "json", "--repo"])
            .args([root])
            .expects_exit(0)
            .run();
        let report: Value = serde_json::from_str(&stdout).expect("json");
        assert_eq!(report["refs"], serde_json::json!([]), "{report:#}");
        if command == "drift" {
            assert_eq!(report["result"], "clean");
        }
        assert!(
            stderr.contains("::notice title=rotor::nothing to ")
                && stderr.contains("no artifact under docs/security/rotations/"),
            "{command}: {stderr}"
        );
        let written = std::fs::read_to_string(&summary).expect("summary");
        assert!(
            written.contains("the first merged rotation adds one") && !written.contains("| ref |"),
            "{command}: {written}"
        );
    }
}
