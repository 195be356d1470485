//! Rollouts in waves (`environments.<env>.rollout`) against the real OpenBao and moto, with the
//! application stand-in failing a chosen set of refs: a canary failure halts the rollout and
//! leaves every later ref untouched; failures within the budget let it finish; a percentage
//! budget; a pause; a run stopped between waves goes on where it stopped; `rotor new
//! --rest-of` takes up what a halted rollout skipped; no rollout is one wave, as before.

use std::fs;

use serde_json::{Value, json};

use crate::apply::{Setup, apply_command, apply_printed, artifact_on_branch, review_event};
use crate::bounded::app_knob;
use crate::common::rotor;
use crate::plan::git;
use crate::services::block_on;

/// A rotation of `n` refs on OpenBao whose `staging` environment rolls out as `config` says.
fn world(n: usize, config: fn(String) -> String) -> Setup {
    crate::apply::setup_configured(n, &[], |t| t, config, None)
}

/// The app's request log.
fn app_log(s: &Setup) -> Vec<String> {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("app log")
        .json()
        .expect("json")
}

/// Each ref's result in the report, in the request's order.
fn results(report: &Value) -> Vec<String> {
    report["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .map(|r| r["result"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts that nothing was done to ref `name`: no marker, the pointer on 1, no call to the
/// application about it but the read-only existence check every ref's preconditions make
/// before the first wave.
fn untouched(s: &Setup, name: &str) {
    let custom = block_on(s.bao.custom(name));
    assert_eq!(custom["current_version"], "1", "{name} stays on 1");
    assert!(
        !custom.keys().any(|k| k.starts_with("rotor")),
        "{name} carries no marker: {custom:?}"
    );
    let about: Vec<String> = app_log(s)
        .into_iter()
        .filter(|l| l.contains(name) && !l.starts_with("GET /api/v1/secret-refs/"))
        .collect();
    assert!(
        about.is_empty(),
        "no application call about {name}: {about:?}"
    );
}

fn canary_two_budget_zero(c: String) -> String {
    c.replace(
        "staging: {}",
        "staging: {rollout: {canary: 2, wave: 2, max_failures: 0}}",
    )
}

#[test]
fn a_canary_failure_halts_the_rollout_and_leaves_every_later_ref_untouched() {
    let s = world(6, canary_two_budget_zero);
    // A systematic failure: every new version fails its health check.
    app_knob(&s.url, "bad_versions", json!(["2"]));
    let (report, printed) = apply_printed(&s, 1);
    assert_eq!(report["result"], "failed", "{report:#}");
    assert_eq!(
        results(&report),
        [
            "rolled_back",
            "rolled_back",
            "skipped",
            "skipped",
            "skipped",
            "skipped"
        ]
    );
    for r in &report["refs"].as_array().expect("refs")[2..] {
        assert_eq!(r["reason"], "halted", "{r:#}");
    }
    let rollout = &report["rollout"];
    assert_eq!(rollout["waves"], 3, "{rollout:#}");
    assert_eq!(rollout["completed"], 1);
    assert_eq!(rollout["halted"], true);
    assert_eq!(rollout["budget"], "0");
    assert!(
        rollout["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("after wave 1 of 3")),
        "{rollout:#}"
    );
    for name in &s.names[2..] {
        untouched(&s, name);
    }
    assert!(
        printed.contains("rollout halted after wave 1 of 3"),
        "{printed}"
    );
    let summary = fs::read_to_string(s.w.dir.path().join("summary.md")).expect("summary");
    assert!(
        summary.contains("6 refs: 2 rolled back, 4 skipped"),
        "{summary}"
    );
    assert!(summary.contains("halted after wave 1 of 3"), "{summary}");
    // The artifact says so, and records the skipped refs as skipped.
    let artifact = artifact_on_branch(&s);
    assert!(
        artifact.contains("- Rollout: halted after wave 1 of 3"),
        "{artifact}"
    );
    assert!(artifact.contains("\"result\":\"skipped\""), "{artifact}");
    // The same event again: already applied, the halt still said, nothing touched.
    let (again, _) = apply_printed(&s, 0);
    assert_eq!(again["result"], "noop", "{again:#}");
    assert_eq!(again["rollout"]["halted"], true, "{again:#}");
    assert_eq!(again["rollout"]["completed"], 1);
    for name in &s.names[2..] {
        untouched(&s, name);
    }
    // Merged, the record verifies clean online: the skipped refs' pointers are where the record
    // found them, and no continuity or audit check asks anything of them.
    let origin = s.w.origin();
    git(
        &origin,
        &["update-ref", "refs/heads/main", "refs/heads/rotate"],
    );
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &origin,
        "schedule",
        0,
        crate::checkout::Inputs::default(),
    );
    let (code, stdout, stderr) = rotor()
        .current_dir(&ws)
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["verify", "--format", "json"])
        .run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let (code, stdout, stderr) = rotor()
        .current_dir(&ws)
        .env("VAULT_TOKEN", &s.token.token)
        .args(["drift", "--format", "json"])
        .run_unchecked();
    assert_eq!(code, Some(0), "no drift: {stdout}\n{stderr}");
}

fn budget_of_one(c: String) -> String {
    c.replace(
        "staging: {}",
        "staging: {rollout: {canary: 1, wave: 50%, max_failures: 1}}",
    )
}

#[test]
fn failures_within_the_budget_let_the_rollout_finish() {
    let s = world(5, budget_of_one);
    app_knob(&s.url, "bad_refs", json!([s.names[2]]));
    let (report, printed) = apply_printed(&s, 1);
    assert_eq!(
        results(&report),
        ["success", "success", "rolled_back", "success", "success"],
        "{report:#}"
    );
    assert_eq!(report["result"], "rolled_back");
    let rollout = &report["rollout"];
    // A canary of 1, then waves of 3 (50% of 5, rounded up): 1, 3, 1.
    assert_eq!(rollout["waves"], 3, "{rollout:#}");
    assert_eq!(rollout["completed"], 3);
    assert_eq!(rollout["halted"], false);
    assert!(
        printed.contains("wave 2 of 3: 2 success, 1 rolled back"),
        "{printed}"
    );
}

fn fifteen_percent(c: String) -> String {
    c.replace(
        "staging: {}",
        "staging: {rollout: {canary: 2, wave: 3, max_failures: 15%}}",
    )
}

#[test]
fn a_percentage_budget_halts_when_failures_exceed_its_share_of_the_finished_refs() {
    let s = world(8, fifteen_percent);
    // One failure in wave 2: 1 × 100 > 15 × 5 finished, so it halts (a share of the request's
    // 8 refs, 15 × 8 = 120, would not).
    app_knob(&s.url, "bad_refs", json!([s.names[3]]));
    let (report, _) = apply_printed(&s, 1);
    assert_eq!(
        results(&report),
        [
            "success",
            "success",
            "success",
            "rolled_back",
            "success",
            "skipped",
            "skipped",
            "skipped"
        ],
        "{report:#}"
    );
    assert_eq!(report["rollout"]["budget"], "15%");
    assert_eq!(report["rollout"]["completed"], 2);
    for name in &s.names[5..] {
        untouched(&s, name);
    }
}

fn paused(c: String) -> String {
    c.replace("staging: {}", "staging: {rollout: {canary: 1, pause: 1s}}")
}

#[test]
fn a_pause_between_waves_is_in_the_log() {
    let s = world(3, paused);
    let (report, printed) = apply_printed(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(report["rollout"]["waves"], 2);
    assert!(
        printed.contains("pausing 1s before wave 2 of 2"),
        "{printed}"
    );
    assert!(printed.contains("wave 1 of 2: 1 success"), "{printed}");
}

#[test]
fn a_run_stopped_between_waves_goes_on_from_the_next_without_rotating_a_ref_twice() {
    let s = world(4, canary_two_budget_zero);
    let event = review_event(s.w.dir.path(), &s.w.head);
    apply_command(&s, &event, "pull_request_review")
        .env("ROTOR_FAULT_AT", "waved")
        .expects_exit(86)
        .run();
    // Stopped after the canary: its refs are done, the rest untouched.
    for name in &s.names[..2] {
        let custom = block_on(s.bao.custom(name));
        assert_eq!(
            custom["current_version"], "2",
            "{name} rotated in the canary"
        );
    }
    for name in &s.names[2..] {
        untouched(&s, name);
    }
    let (report, _) = apply_printed(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(report["rollout"]["completed"], 2);
    // One rotate upsert per ref, across both runs.
    let upserts = app_log(&s)
        .iter()
        .filter(|l| l.starts_with("PUT ") && l.contains("\"operation\":\"rotate\""))
        .count();
    assert_eq!(upserts, 4, "each ref rotated once");
}

#[test]
fn rest_of_writes_a_request_for_exactly_the_refs_a_halted_rollout_skipped() {
    let s = world(4, canary_two_budget_zero);
    app_knob(&s.url, "bad_versions", json!(["2"]));
    apply_printed(&s, 1);
    // The default branch after the merge: the request and its artifact.
    let ws = s.w.dir.path().join("merged");
    git(
        s.w.dir.path(),
        &["clone", "-q", "-b", "rotate", "origin.git", "merged"],
    );
    let new_id = format!("{}-rest", s.id);
    let (stdout, _) = rotor()
        .current_dir(&ws)
        .env("VAULT_TOKEN", &s.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["new", &new_id, "--rest-of", &s.id, "--format", "json"])
        .run();
    let out: Value = serde_json::from_str(&stdout).expect("json");
    let written: Vec<&str> = out["refs"]
        .as_array()
        .expect("refs")
        .iter()
        .filter_map(|r| r["ref"].as_str())
        .collect();
    let mut skipped: Vec<&str> = s.names[2..].iter().map(String::as_str).collect();
    skipped.sort_unstable();
    assert_eq!(written, skipped, "{out:#}");
    let text = fs::read_to_string(ws.join(format!("rotations/{new_id}.yaml"))).expect("request");
    assert!(text.contains("environment: staging"), "{text}");
    assert!(
        text.contains("Quarterly rotation"),
        "the reason carried over: {text}"
    );
    rotor()
        .current_dir(&ws)
        .args(["validate", &format!("rotations/{new_id}.yaml")])
        .run();
}

#[test]
fn without_a_rollout_every_ref_is_one_wave() {
    let s = crate::apply::setup_refs(3, &[], |t| t);
    let (report, printed) = apply_printed(&s, 0);
    assert_eq!(report["result"], "success");
    assert_eq!(
        report["rollout"],
        json!({"waves": 1, "completed": 1, "halted": false, "budget": null, "reason": null})
    );
    assert!(!printed.contains("wave 1"), "no wave in the log: {printed}");
}

#[test]
fn plan_shows_the_waves_it_would_run() {
    let s = world(6, canary_two_budget_zero);
    let event = crate::plan::pr_event(s.w.dir.path(), &s.w.head);
    let (report, _) = crate::plan::run_plan(
        &s.w,
        &s.url,
        &s.token.token,
        &event,
        &[("ROTOR_APP_TOKEN", "app-token")],
        0,
    );
    let rollout = &report["rollout"];
    assert_eq!(rollout["sizes"], json!([2, 2, 2]), "{rollout:#}");
    assert_eq!(rollout["budget"], "0");
    let summary = fs::read_to_string(s.w.dir.path().join("summary.md")).expect("summary");
    assert!(
        summary.contains("**Rollout:** 3 waves (2, 2, 2); budget max_failures: 0; pause 0s"),
        "{summary}"
    );
}

#[test]
fn on_aws_a_canary_failure_halts_the_rollout_too() {
    use crate::services::{aws_env, moto_url, provision_aws};
    let slug = crate::services::unique("wa");
    let names: Vec<String> = (0..3)
        .map(|i| format!("tenant.{slug}-{i}.stripe.secret_key"))
        .collect();
    let mut pendings = Vec::new();
    let mut currents = Vec::new();
    for name in &names {
        let (current, pending, _) = block_on(provision_aws(name));
        currents.push(current);
        pendings.push(pending);
    }
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let config = format!(
        "version: 1\nadmins: {{users: [alice, bob]}}\nenvironments: {{staging: {{rollout: {{canary: 1, max_failures: 0}}}}}}\n\
         backends:\n  - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: us-east-1}}\n\
         app: {{base_url: \"{url}\", audit_timeout: 2s}}\nchecks: {{settle_timeout: 3s}}\n"
    );
    let w = crate::plan::world(
        &config,
        &[(file.as_str(), crate::plan::request(&id, &names))],
        &[],
    );
    crate::plan::scenario(&url, &crate::plan::base_scenario(&w, &file));
    let refs: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                json!({"tenant": format!("{slug}-{i}"), "provider": "stripe", "site_ids": [format!("site-00{}", i + 1)]}),
            )
        })
        .collect();
    let resp = reqwest::blocking::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token", "refs": refs, "bad_versions": pendings,
            "backend": {"type": "aws", "endpoint": moto_url(), "region": "us-east-1", "stage": "AWSCURRENT"}
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let event = review_event(w.dir.path(), &w.head);
    let mut cmd = rotor()
        .current_dir(&w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "t")
        .env("GITHUB_API_URL", &url)
        .env("GITHUB_EVENT_NAME", "pull_request_review")
        .env("GITHUB_EVENT_PATH", &event)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["apply", "--format", "json"])
        .expects_exit(1);
    for (k, v) in aws_env() {
        cmd = cmd.env(k, v);
    }
    let (stdout, _) = cmd.run();
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        results(&report),
        ["rolled_back", "skipped", "skipped"],
        "{report:#}"
    );
    assert_eq!(report["rollout"]["halted"], true);
    // The skipped secrets' labels never moved.
    for (name, current) in names.iter().zip(&currents).skip(1) {
        let labels = block_on(async {
            crate::services::sm_client()
                .await
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .expect("describe")
                .version_ids_to_stages()
                .cloned()
                .unwrap_or_default()
        });
        assert_eq!(labels[current.as_str()], ["AWSCURRENT"], "{name} untouched");
    }
}

#[test]
fn a_halt_decided_after_a_stop_between_waves_is_decided_again_on_resume() {
    let s = world(4, canary_two_budget_zero);
    app_knob(&s.url, "bad_versions", json!(["2"]));
    let event = review_event(s.w.dir.path(), &s.w.head);
    // The canary fails; the run stops before it judges the budget.
    apply_command(&s, &event, "pull_request_review")
        .env("ROTOR_FAULT_AT", "waved")
        .expects_exit(86)
        .run();
    for name in &s.names[2..] {
        untouched(&s, name);
    }
    // Run again: the canary's refs report what they recorded, and the budget halts.
    let (report, _) = apply_printed(&s, 1);
    assert_eq!(
        results(&report),
        ["rolled_back", "rolled_back", "skipped", "skipped"],
        "{report:#}"
    );
    assert_eq!(report["rollout"]["halted"], true);
    for name in &s.names[2..] {
        untouched(&s, name);
    }
}

fn no_budget(c: String) -> String {
    c.replace("staging: {}", "staging: {rollout: {canary: 1, wave: 2}}")
}

#[test]
fn a_rollout_that_cannot_halt_runs_as_one_pool() {
    let s = world(5, no_budget);
    app_knob(&s.url, "bad_refs", json!([s.names[0]]));
    let (report, printed) = apply_printed(&s, 1);
    // Nothing can halt it: the canary's failure stops nothing.
    assert_eq!(
        results(&report),
        ["rolled_back", "success", "success", "success", "success"],
        "{report:#}"
    );
    assert_eq!(report["rollout"]["waves"], 3);
    assert_eq!(report["rollout"]["completed"], 3);
    assert_eq!(report["rollout"]["halted"], false);
    assert!(printed.contains("run as one"), "{printed}");
}

fn closing_window(c: String) -> String {
    c.replace(
        "staging: {}, production: {requires_maintenance: true}",
        "staging: {}, production: {requires_maintenance: true, rollout: {canary: 1}}",
    )
}

#[test]
fn a_window_that_closes_between_waves_halts_the_rollout() {
    // The window closes a few seconds after the run starts; the run is held between its waves
    // until it has.
    fn windowed(text: String) -> String {
        let at = |secs: i64| {
            (chrono::Utc::now() + chrono::Duration::seconds(secs))
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        };
        text.replace("environment: staging", "environment: production")
            .replace(
                "refs:\n",
                &format!(
                    "maintenance:\n  window: {{start: \"{}\", end: \"{}\"}}\nrefs:\n",
                    at(-300),
                    at(8)
                ),
            )
    }
    let s = crate::apply::setup_configured(3, &[], windowed, closing_window, None);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let until = s.w.dir.path().join("release");
    let run = apply_command(&s, &event, "pull_request_review").held_at("between-waves", &until);
    std::thread::sleep(std::time::Duration::from_secs(9));
    fs::write(&until, "").expect("release");
    let (code, stdout, stderr) = run.join().expect("run");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        results(&report),
        ["success", "skipped", "skipped"],
        "{report:#}"
    );
    for r in &report["refs"].as_array().expect("refs")[1..] {
        assert_eq!(r["reason"], "window_closed", "{r:#}");
    }
    assert!(
        report["rollout"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("maintenance window closed")),
        "{report:#}"
    );
}
