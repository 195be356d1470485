//! Searching a busy application's audit log: other tenants write a hundred events a second,
//! rotor's own event becomes visible seconds after its upsert (listed under its `createdAt`,
//! behind hundreds of newer ones), and the application's clock need not be the runner's. The
//! search reads back to two minutes before the run's first upsert by the application's clock,
//! from the first page on every poll, and finds it.

use serde_json::{Value, json};

use crate::apply::{apply, artifact_on_branch, setup_configured};
use crate::bounded::app_knob;

/// The config with an 8 s audit timeout (the event shows up after 3 s).
fn eight_seconds(config: String) -> String {
    config.replace("audit_timeout: 2s", "audit_timeout: 8s")
}

fn busy(skew_s: i64) -> Value {
    let s = setup_configured(1, &[], |t| t, eight_seconds, None);
    app_knob(&s.url, "clock_skew_s", json!(skew_s));
    app_knob(&s.url, "audit_delay_ms", json!(3000));
    app_knob(&s.url, "audit_noise_per_s", json!(100));
    let report = apply(&s, 0);
    app_knob(&s.url, "audit_noise_per_s", json!(0));
    let artifact = artifact_on_branch(&s);
    assert!(artifact.contains("- Result: success"), "{artifact}");
    report
}

/// About 300 newer events stand above rotor's own when it becomes visible: a search that
/// stopped at the first page holding an event it had seen would never reach it.
#[test]
fn a_busy_log_with_late_events_still_confirms_the_rotation() {
    let report = busy(0);
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(
        report["refs"][0]["audit_event_ids"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{report:#}"
    );
}

/// The same with the application's clock seven minutes ahead, and behind: the search's floor is
/// the application's own time of the upsert, so neither ends it early.
#[test]
fn a_skewed_application_clock_changes_nothing() {
    for skew in [420, -420] {
        let report = busy(skew);
        assert_eq!(report["result"], "success", "skew {skew}: {report:#}");
    }
}

/// The audit log alone is down for 2.5 s after the upsert while the verification takes about
/// 3 s (the application keeps serving the version it cached before the run): the lookup beside
/// the verification fails, but the event is looked for again, for `audit_timeout` after the
/// checks ended, as a lookup begun only then would be; the rotation succeeds and cites it.
#[test]
fn an_audit_log_down_while_the_checks_run_still_confirms_the_rotation() {
    let s = setup_configured(1, &[], |t| t, |c| c, None);
    app_knob(&s.url, "cache_ms", json!(2500));
    app_knob(&s.url, "audit_outage_ms", json!(2500));
    // The application resolves (and caches) the old version just before the run.
    let cached: Value = reqwest::blocking::Client::new()
        .post(format!("{}/api/v1/secret-refs/{}/resolve", s.url, s.name))
        .bearer_auth("app-token")
        .send()
        .expect("resolve")
        .json()
        .expect("json");
    assert_eq!(cached["versionId"], "1", "{cached:#}");
    let report = apply(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    let r = &report["refs"][0];
    assert_eq!(
        r["audit_event_ids"].as_array().map(Vec::len),
        Some(1),
        "{r:#}"
    );
    assert!(artifact_on_branch(&s).contains("- Result: success"));
}
