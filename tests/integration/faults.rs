//! Faults: a seeded fault proxy between rotor and one service at a time — OpenBao, AWS Secrets
//! Manager (moto), the application, GitHub — injecting outages, throttling, answers lost after
//! the work was done, and slow answers, each in the service's own shapes (for AWS: a `400
//! ThrottlingException`, a `503 ServiceUnavailableException`, a connection closed before the
//! answer, with or without the request reaching moto). Every run must end settled: each ref untouched
//! or carrying a final marker that matches its pointer, the artifact committed exactly when
//! some ref changed and recording each ref's result; never a pending marker left behind, a
//! pointer moved without a final marker, or a final result without an artifact.
//! `ROTOR_FAULT_RUNS` sets the runs per service (default 8); the figures of the last run are
//! written to `fault-figures.txt` and `fault-figures-aws.txt` in `$ROTOR_FAULT_FIGURES`
//! (default `$CARGO_TARGET_TMPDIR`).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::apply::{Setup, Through, apply_command, review_event, setup_through};
use crate::plan::git;
use crate::services::block_on;
use rotor_sandbox::fault::{Faults, Style};

/// Where the figures go: a long run's own directory, so that a short run never overwrites them.
pub(crate) fn figures_path(name: &str) -> std::path::PathBuf {
    std::env::var_os("ROTOR_FAULT_FIGURES")
        .map_or_else(
            || std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")),
            std::path::PathBuf::from,
        )
        .join(name)
}

/// How many seeded runs each service gets (`ROTOR_FAULT_RUNS`, default 8).
pub(crate) fn runs() -> u64 {
    std::env::var("ROTOR_FAULT_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

/// Adds what the fault proxy at `proxy` injected into one run to `injected`, under `label`.
pub(crate) fn tally(proxy: &str, label: &str, injected: &mut BTreeMap<String, u64>) {
    let stats: Value = reqwest::blocking::get(format!("{proxy}/_fault/stats"))
        .expect("stats")
        .json()
        .expect("json");
    for key in [
        "requests",
        "unavailable",
        "throttled",
        "lost_answers",
        "closed_unsent",
        "slow",
    ] {
        *injected.entry(format!("{label} {key}")).or_default() += stats[key].as_u64().unwrap_or(0);
    }
}

/// Writes the figures of a fault suite to `file` and checks that faults were injected at all.
pub(crate) fn report_figures(
    file: &str,
    runs_label: &str,
    outcomes: &BTreeMap<String, u64>,
    injected: &BTreeMap<String, u64>,
) {
    let figures = format!(
        "{runs_label}: {}\noutcomes: {outcomes:#?}\nrequests and faults: {injected:#?}\n",
        runs()
    );
    std::fs::write(figures_path(file), &figures).expect("figures");
    let faults: u64 = injected
        .iter()
        .filter(|(k, _)| !k.ends_with("requests"))
        .map(|(_, v)| v)
        .sum();
    assert!(faults > 0, "faults were injected: {figures}");
}

/// The artifact's machine-readable part on the PR branch, if rotor committed one.
fn artifact_meta(s: &Setup) -> Option<Value> {
    let origin = s.w.dir.path().join("origin.git");
    let commits: u32 = git(
        &origin,
        &["rev-list", "--count", &format!("{}..rotate", s.w.head)],
    )
    .parse()
    .expect("count");
    assert!(commits <= 1, "at most one artifact commit, found {commits}");
    if commits == 0 {
        return None;
    }
    let text = crate::apply::artifact_on_branch(s);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("<!-- rotor:artifact "))
        .expect("the artifact has its data block");
    Some(serde_json::from_str(line.trim_end_matches(" -->")).expect("data block json"))
}

/// Checks that the run ended settled and names how.
fn settled(s: &Setup, code: Option<i32>, context: &str) -> String {
    let meta = artifact_meta(s);
    let mut touched = 0;
    for name in &s.names {
        let custom = block_on(s.bao.custom(name));
        let pointer = custom.get("current_version").map(String::as_str);
        let marker = custom.get("rotor_state").map(String::as_str);
        let recorded = meta.as_ref().and_then(|m| {
            m["refs"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["ref"] == name.as_str()))
                .and_then(|r| r["result"].as_str().map(str::to_owned))
        });
        match (marker, pointer) {
            (None, Some("1")) => {
                assert!(
                    recorded.as_deref().is_none_or(|r| r == "not_started"),
                    "{context}: {name} untouched but recorded as {recorded:?}"
                );
            }
            (Some("done" | "failed"), Some("2")) | (Some("rolled_back"), Some("1")) => {
                touched += 1;
                let expected = match marker {
                    Some("done") => "success",
                    Some("failed") => "failed",
                    _ => "rolled_back",
                };
                assert_eq!(
                    recorded.as_deref(),
                    Some(expected),
                    "{context}: {name} is final ({marker:?}) and the artifact must say so"
                );
            }
            other => panic!("{context}: {name} left half-done: marker, pointer = {other:?}"),
        }
    }
    run_outcome(touched, meta.as_ref(), code, context)
}

/// A settled run's outcome for the figures: refused before any change (no ref touched, no
/// artifact), or the artifact's result; an artifact without a change, or a change without an
/// artifact, fails the test.
pub(crate) fn run_outcome(
    touched: usize,
    meta: Option<&Value>,
    code: Option<i32>,
    context: &str,
) -> String {
    match (touched, meta) {
        (0, None) => format!("refused before any change (exit {})", code.unwrap_or(-1)),
        (0, Some(_)) => panic!("{context}: an artifact though nothing changed"),
        (_, None) => panic!("{context}: refs changed but no artifact was committed"),
        (_, Some(m)) => format!(
            "{} (exit {})",
            m["result"].as_str().unwrap_or("?"),
            code.unwrap_or(-1)
        ),
    }
}

#[test]
fn under_injected_faults_every_run_ends_settled() {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for (index, service) in [Through::Bao, Through::App, Through::GitHub]
        .into_iter()
        .enumerate()
    {
        for seed in 0..runs() {
            let faults = Faults {
                seed: seed * 31 + index as u64,
                rate: 0.3,
                style: Style::Http,
            };
            // Every other run against the application, the new versions fail their health
            // check: the rollback and its checks then meet the faults too (an outage is no
            // verdict, and a rolled-back ref is recorded as its marker says).
            let bad: &[&str] = if service == Through::App && seed % 2 == 1 {
                &["2"]
            } else {
                &[]
            };
            let s = setup_through(2, bad, |t| t, Some((service, faults)));
            let proxy = s
                .proxy
                .as_ref()
                .map(rotor_sandbox::Running::url)
                .expect("proxy");
            let event = review_event(s.w.dir.path(), &s.w.head);
            let mut cmd = apply_command(&s, &event, "pull_request_review");
            if service == Through::GitHub {
                cmd = cmd.env("GITHUB_API_URL", &proxy);
            }
            let (code, stdout, stderr) = cmd.run_unchecked();
            let context = format!("{service:?} seed {seed}, exit {code:?}:\n{stdout}\n{stderr}");
            let outcome = settled(&s, code, &context);
            *outcomes
                .entry(format!("{service:?}: {outcome}"))
                .or_default() += 1;
            tally(&proxy, &format!("{service:?}"), &mut injected);
        }
    }
    report_figures(
        "fault-figures.txt",
        "runs per service",
        &outcomes,
        &injected,
    );
}

/// An AWS world: refs on moto (a current and a pending version each), an approved rotation
/// pull request of them, the application resolving through moto's labels, and the fault proxy
/// between rotor and moto.
pub(crate) struct AwsWorld {
    pub(crate) w: crate::plan::World,
    pub(crate) url: String,
    pub(crate) names: Vec<String>,
    pub(crate) versions: Vec<(String, String)>,
    _sandbox: rotor_sandbox::Running,
    pub(crate) proxy: rotor_sandbox::Running,
}

fn aws_world(seed: u64, failing: bool) -> AwsWorld {
    aws_world_with(2, seed, 0.3, failing, |n| {
        let (current, pending, _) = block_on(crate::services::provision_aws(n));
        (current, pending)
    })
}

/// An AWS world of `n` refs, each provisioned by `provision` (which returns the current and the
/// pending version), with faults at `rate` (0: none).
pub(crate) fn aws_world_with(
    n: usize,
    seed: u64,
    rate: f64,
    failing: bool,
    provision: fn(&str) -> (String, String),
) -> AwsWorld {
    aws_world_in("us-east-1", n, seed, rate, failing, provision)
}

/// As [`aws_world_with`], with the backend rule (and the application) in `region`.
pub(crate) fn aws_world_in(
    region: &str,
    n: usize,
    seed: u64,
    rate: f64,
    failing: bool,
    provision: fn(&str) -> (String, String),
) -> AwsWorld {
    use crate::services::{moto_url, unique};
    let slug = unique("fa");
    let names: Vec<String> = (0..n)
        .map(|i| format!("tenant.{slug}-{i}.stripe.secret_key"))
        .collect();
    let versions: Vec<(String, String)> = names.iter().map(|n| provision(n)).collect();
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let proxy = rotor_sandbox::start_fault_proxy(
        "127.0.0.1:0".parse().expect("addr"),
        &moto_url(),
        Faults {
            seed,
            rate,
            style: Style::Aws,
        },
    )
    .expect("proxy");
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let config = format!(
        "version: 1\nadmins: {{users: [alice, bob]}}\nenvironments: {{staging: {{}}}}\n\
         backends:\n  - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: {region}}}\n\
         app: {{base_url: \"{url}\", audit_timeout: 3s}}\nchecks: {{settle_timeout: 3s}}\n"
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
                serde_json::json!({"tenant": format!("{slug}-{i}"), "provider": "stripe", "site_ids": [format!("site-{i}")]}),
            )
        })
        .collect();
    let bad: Vec<&str> = if failing {
        versions.iter().map(|(_, p)| p.as_str()).take(1).collect()
    } else {
        Vec::new()
    };
    let resp = reqwest::blocking::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&serde_json::json!({
            "token": "app-token", "refs": refs, "bad_versions": bad,
            "backend": {"type": "aws", "endpoint": moto_url(), "region": region, "stage": "AWSCURRENT"}
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    AwsWorld {
        w,
        url,
        names,
        versions,
        _sandbox: sandbox,
        proxy,
    }
}

/// Each AWS ref is untouched, or final with its pointer and the artifact agreeing.
fn settled_aws(a: &AwsWorld, code: Option<i32>, context: &str) -> String {
    let origin = a.w.origin();
    let commits: u32 = git(
        &origin,
        &["rev-list", "--count", &format!("{}..rotate", a.w.head)],
    )
    .parse()
    .expect("count");
    assert!(
        commits <= 1,
        "{context}: at most one artifact commit, found {commits}"
    );
    let meta: Option<Value> = (commits == 1).then(|| {
        let id = a.names[0]
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .trim_end_matches("-0")
            .to_owned();
        let text = git(
            &origin,
            &[
                "show",
                &format!("rotate:docs/security/rotations/2026-11-25-{id}.md"),
            ],
        );
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("<!-- rotor:artifact "))
            .expect("data block");
        serde_json::from_str(line.trim_end_matches(" -->")).expect("json")
    });
    let mut touched = 0;
    for (name, (v1, v2)) in a.names.iter().zip(&a.versions) {
        let described = block_on(async {
            crate::services::sm_client()
                .await
                .describe_secret()
                .secret_id(name)
                .send()
                .await
                .expect("describe")
        });
        let current = described
            .version_ids_to_stages()
            .and_then(|m| {
                m.iter()
                    .find(|(_, labels)| labels.iter().any(|l| l == "AWSCURRENT"))
                    .map(|(id, _)| id.clone())
            })
            .expect("AWSCURRENT");
        let marker = described
            .tags()
            .iter()
            .find(|t| t.key() == Some("rotor:state"))
            .and_then(|t| t.value().map(str::to_owned));
        let recorded = meta.as_ref().and_then(|m| {
            m["refs"]
                .as_array()
                .and_then(|refs| refs.iter().find(|r| r["ref"] == name.as_str()))
                .and_then(|r| r["result"].as_str().map(str::to_owned))
        });
        match (marker.as_deref(), current == *v1, current == *v2) {
            (None, true, _) => assert!(
                recorded.as_deref().is_none_or(|r| r == "not_started"),
                "{context}: {name} untouched but recorded as {recorded:?}"
            ),
            (Some(state @ ("done" | "failed")), _, true)
            | (Some(state @ "rolled_back"), true, _) => {
                touched += 1;
                let expected = match state {
                    "done" => "success",
                    "failed" => "failed",
                    _ => "rolled_back",
                };
                assert_eq!(recorded.as_deref(), Some(expected), "{context}: {name}");
            }
            other => panic!("{context}: {name} left half-done: marker, on v1, on v2 = {other:?}"),
        }
    }
    run_outcome(touched, meta.as_ref(), code, context)
}

#[test]
fn under_aws_shaped_faults_every_run_ends_settled() {
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..runs() {
        // A third of the runs fail verification: the rollback runs under faults too.
        let a = aws_world(seed * 17 + 5, seed % 3 == 2);
        let (code, stdout, stderr) = aws_apply(&a).run_unchecked();
        let context = format!("AWS seed {seed}, exit {code:?}:\n{stdout}\n{stderr}");
        let outcome = settled_aws(&a, code, &context);
        *outcomes.entry(format!("Aws: {outcome}")).or_default() += 1;
        tally(&a.proxy.url(), "Aws", &mut injected);
    }
    report_figures("fault-figures-aws.txt", "runs", &outcomes, &injected);
}

/// `rotor apply` on the AWS world's approval, reaching moto through the proxy.
pub(crate) fn aws_apply(a: &AwsWorld) -> crate::common::Rotor {
    let event = review_event(a.w.dir.path(), &a.w.head);
    let mut cmd = crate::common::rotor()
        .current_dir(&a.w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &a.url)
        .env("GITHUB_EVENT_NAME", "pull_request_review")
        .env("GITHUB_EVENT_PATH", &event)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args(["apply", "--format", "json"]);
    for (k, v) in crate::services::aws_env() {
        cmd = cmd.env(k, v);
    }
    cmd.env("AWS_ENDPOINT_URL", a.proxy.url())
}
