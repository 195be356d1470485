//! The rotation procedure for one ref, against real OpenBao and the application stand-in.

use std::collections::HashMap;
use std::time::Duration;

use rotor::app::AppClient;
use rotor::backend::{Backends, Environment, MarkerState, Secret};
use rotor::config;
use rotor::ids::{SecretRef, SiteId, VersionId};
use rotor::outcome::{RefOutcome, RefResult};
use rotor::request::RollbackMode;
use rotor::rotation::{self, Job, Settings};
use rotor::secret::SecretString;
use serde_json::json;

use crate::services::{Bao, bao, unique};

struct Fixture {
    bao: Bao,
    name: String,
    secret: Secret,
    app: AppClient,
    settings: Settings,
    canaries: Vec<String>,
    _sandbox: rotor_sandbox::Running,
}

struct Knobs {
    bad_versions: Vec<&'static str>,
    audit_missing: bool,
    cache_ms: u64,
    settle: Duration,
    rollback: RollbackMode,
}

impl Default for Knobs {
    fn default() -> Self {
        Self {
            bad_versions: Vec::new(),
            audit_missing: false,
            cache_ms: 0,
            settle: Duration::from_secs(3),
            rollback: RollbackMode::Auto,
        }
    }
}

async fn fixture(k: Knobs) -> Fixture {
    let bao = bao();
    let slug = unique("rot");
    let name = format!("tenant.{slug}.supabase.service_role");
    let canaries = bao.provision(&name, 2, Some(1)).await;
    let rotor_token = bao.rotor_token().await;
    let app_reader = bao.rotor_token().await;
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let resp = reqwest::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token",
            "refs": {name.clone(): {"tenant": slug, "provider": "supabase", "site_ids": ["site-001", "site-002"]}},
            "backend": {"type": "vault", "address": bao.addr, "token": app_reader.token, "mount": "secret", "pointer_key": "current_version"},
            "bad_versions": k.bad_versions,
            "audit_missing": k.audit_missing,
            "cache_ms": k.cache_ms
        }))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let text = format!(
        "version: 1\nadmins: {{users: [a]}}\nenvironments: {{s: {{}}}}\n\
         backends: [{{match: '*', type: vault, address: \"{}\", mount: secret}}]\napp: {{base_url: \"{url}\"}}\n",
        bao.addr
    );
    let cfg = config::parse("c.yml", text.as_bytes()).expect("config");
    let env = Environment::with_vars(HashMap::from([(
        "VAULT_TOKEN".to_owned(),
        rotor_token.token,
    )]));
    let secret = Backends::default()
        .resolve(&cfg, &SecretRef::parse(&name).expect("ref"), &env)
        .await
        .expect("resolve");
    let app = AppClient::with_token(&cfg.app, SecretString::new("app-token")).expect("client");
    Fixture {
        bao,
        name,
        secret,
        app,
        settings: Settings {
            rotation_id: unique("r-"),
            pull_request: Some(7),
            operator: "alice".to_owned(),
            rollback: k.rollback,
            settle_timeout: k.settle,
            audit_timeout: Duration::from_secs(1),
            audit_action: "secret_ref_upserted".to_owned(),
            actor_role: "internal_admin".to_owned(),
            extra: Vec::new(),
        },
        canaries,
        _sandbox: sandbox,
    }
}

fn job(f: &Fixture) -> Job {
    Job {
        secret: f.secret.clone(),
        to: None,
        sites: ["site-001", "site-002"]
            .iter()
            .map(|s| SiteId::parse(s).expect("site"))
            .collect(),
        seen: None,
    }
}

fn v(id: &str) -> VersionId {
    VersionId::parse(id).expect("version")
}

fn assert_no_canary(f: &Fixture, outcome: &RefOutcome) {
    let text = format!("{outcome:?}");
    for c in &f.canaries {
        assert!(
            !text.contains(c.as_str()),
            "a secret value reached the outcome"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_audited_rotation_succeeds_and_releases_the_lock() {
    let f = fixture(Knobs::default()).await;
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::Success, "{out:#?}");
    assert_eq!(
        (out.from.as_deref(), out.to.as_deref()),
        (Some("1"), Some("2"))
    );
    assert_eq!(
        out.checks
            .iter()
            .map(|c| (c.name.as_str(), c.ok))
            .collect::<Vec<_>>(),
        [
            ("resolve", true),
            ("site-001 health", true),
            ("site-002 health", true)
        ]
    );
    assert_eq!(out.audit_event_ids.len(), 1);
    let state = f.secret.read().await.expect("read");
    assert_eq!(
        (state.current, state.previous),
        (Some(v("2")), Some(v("1")))
    );
    assert_eq!(state.marker.map(|m| m.state), Some(MarkerState::Done));
    assert_no_canary(&f, &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_integration_rolls_back_to_the_previous_version() {
    let f = fixture(Knobs {
        bad_versions: vec!["2"],
        ..Knobs::default()
    })
    .await;
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::RolledBack, "{out:#?}");
    assert_eq!(failure(&out).as_ref().map(|e| e.0), Some(1));
    assert!(
        out.checks
            .iter()
            .any(|c| c.name == "site-001 health" && !c.ok)
    );
    assert!(
        out.checks
            .iter()
            .any(|c| c.name == "rollback resolve" && c.ok)
    );
    // Both moves are on the record: the rotation's event, then the rollback's.
    assert_eq!(
        out.audit_event_ids.len(),
        2,
        "the rotation's and the rollback's audit events"
    );
    assert_eq!(out.rollback_event_ids.len(), 1, "{out:#?}");
    assert_eq!(out.audit_event_ids[1], out.rollback_event_ids[0]);
    let state = f.secret.read().await.expect("read");
    assert_eq!(state.current, Some(v("1")));
    assert_eq!(state.marker.map(|m| m.state), Some(MarkerState::RolledBack));
    assert_no_canary(&f, &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_audit_event_fails_and_leaves_the_verified_version() {
    let f = fixture(Knobs {
        audit_missing: true,
        ..Knobs::default()
    })
    .await;
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::Failed, "{out:#?}");
    assert!(
        failure(&out).as_ref().is_some_and(
            |(code, m)| *code == 1 && m.contains("no `secret_ref_upserted` audit event")
        )
    );
    let state = f.secret.read().await.expect("read");
    assert_eq!(
        state.current,
        Some(v("2")),
        "the pointer stays on the verified version"
    );
    assert_eq!(state.marker.map(|m| m.state), Some(MarkerState::Failed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caching_application_is_polled_until_it_resolves_the_target() {
    let f = fixture(Knobs {
        cache_ms: 700,
        ..Knobs::default()
    })
    .await;
    // Warm the application's cache with the old version.
    f.app
        .resolve(&SecretRef::parse(&f.name).expect("ref"))
        .await
        .expect("resolve");
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::Success, "{out:#?}");

    let slow = fixture(Knobs {
        cache_ms: 5000,
        settle: Duration::from_millis(400),
        ..Knobs::default()
    })
    .await;
    slow.app
        .resolve(&SecretRef::parse(&slow.name).expect("ref"))
        .await
        .expect("resolve");
    let out = rotation::rotate(&slow.app, &slow.settings, &job(&slow)).await;
    assert_eq!(
        out.result,
        RefResult::RolledBack,
        "not resolved within settle_timeout: {out:#?}"
    );
    assert!(
        out.checks[0]
            .detail
            .starts_with("resolve still returned 1 after"),
        "{:?}",
        out.checks[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_rollback_leaves_the_pointer_and_says_how_to_roll_back() {
    let f = fixture(Knobs {
        bad_versions: vec!["2"],
        rollback: RollbackMode::Manual,
        ..Knobs::default()
    })
    .await;
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::Failed);
    assert!(
        failure(&out)
            .as_ref()
            .is_some_and(|(_, m)| m.contains("rotor rollback"))
    );
    assert_eq!(f.secret.read().await.expect("read").current, Some(v("2")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_after_the_lock_or_the_repoint_converges_when_run_again() {
    for stop_after_repoint in [false, true] {
        let f = fixture(Knobs::default()).await;
        let seen = f.secret.read().await.expect("read");
        let locked = f
            .secret
            .lock(&seen, &f.settings.rotation_id, Some(7), &v("1"), &v("2"))
            .await
            .expect("lock");
        if stop_after_repoint {
            f.secret
                .repoint(&locked, &v("1"), &v("2"))
                .await
                .expect("repoint");
        }
        let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
        assert_eq!(
            out.result,
            RefResult::Success,
            "stopped after {}: {out:#?}",
            if stop_after_repoint {
                "repoint"
            } else {
                "lock"
            }
        );
        let state = f.secret.read().await.expect("read");
        assert_eq!(
            (state.current, state.previous),
            (Some(v("2")), Some(v("1"))),
            "no double rotation"
        );
        // And a third run changes nothing.
        let before = f.bao.custom(&f.name).await;
        let again = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
        assert_eq!(again.result, RefResult::Success);
        assert!(
            again
                .steps
                .iter()
                .any(|s| s.what == "already done by an earlier run")
        );
        assert_eq!(f.bao.custom(&f.name).await, before);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ref_locked_by_another_rotation_is_not_touched() {
    let f = fixture(Knobs::default()).await;
    let seen = f.secret.read().await.expect("read");
    f.secret
        .lock(&seen, "someone-else", Some(7), &v("1"), &v("2"))
        .await
        .expect("lock");
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::NotStarted);
    assert_eq!(failure(&out).as_ref().map(|e| e.0), Some(4));
    assert!(
        failure(&out)
            .as_ref()
            .is_some_and(|(_, m)| m.contains("locked by rotation someone-else"))
    );
    assert_eq!(f.secret.read().await.expect("read").current, Some(v("1")));
}

fn extra(name: &str, status: u16, json: &[(&str, serde_json::Value)]) -> rotor::config::ExtraCheck {
    rotor::config::ExtraCheck {
        name: name.to_owned(),
        url: rotor::config::Template::parse(
            "{app}/api/v1/sites/{site}/integrations/{provider}/health",
            &["app", "site", "ref", "slug", "provider", "key"],
        )
        .expect("template"),
        status,
        json: json
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_checks_run_per_site_and_a_failing_one_rolls_back_or_fails() {
    let mut f = fixture(Knobs::default()).await;
    f.settings.extra = vec![extra(
        "supabase-health",
        200,
        &[("/status", json!("ok")), ("/versionId", json!("2"))],
    )];
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_eq!(out.result, RefResult::Success, "{out:#?}");
    assert!(
        out.checks
            .iter()
            .any(|c| c.name == "site-002 supabase-health" && c.ok && c.detail == "status 200")
    );

    // A check only the new version fails: the rollback verifies, the result is rolled_back.
    let mut h = fixture(Knobs::default()).await;
    h.settings.extra = vec![extra("pinned", 200, &[("/versionId", json!("1"))])];
    let out = rotation::rotate(&h.app, &h.settings, &job(&h)).await;
    assert_eq!(out.result, RefResult::RolledBack, "{out:#?}");
    assert!(
        out.checks
            .iter()
            .any(|c| c.name == "rollback site-001 pinned" && c.ok)
    );
    assert_eq!(h.secret.read().await.expect("read").current, Some(v("1")));

    // A check that can never pass fails the rollback's verification too: the result is failed.
    let mut g = fixture(Knobs::default()).await;
    g.settings.extra = vec![extra("teapot", 418, &[])];
    let out = rotation::rotate(&g.app, &g.settings, &job(&g)).await;
    assert_eq!(out.result, RefResult::Failed, "{out:#?}");
    assert!(
        failure(&out)
            .as_ref()
            .is_some_and(|(_, m)| m.contains("rolled back, but the rollback's checks failed"))
    );
    assert_eq!(
        g.secret.read().await.expect("read").current,
        Some(v("1")),
        "the pointer is back"
    );
    assert!(
        out.checks.iter().any(|c| c.name == "site-001 teapot"
            && !c.ok
            && c.detail == "status 200 (expected 418)")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_that_cannot_record_the_version_never_leaves_it_in_place() {
    let f = fixture(Knobs::default()).await;
    // The application forgets the ref after the preconditions: the upsert is refused.
    let url = f.app.base();
    let resp = reqwest::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({"token": "app-token"}))
        .send()
        .await
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
    let out = rotation::rotate(&f.app, &f.settings, &job(&f)).await;
    assert_ne!(out.result, RefResult::Success, "{out:#?}");
    assert!(
        out.checks.iter().any(|c| c.name == "record" && !c.ok),
        "{out:#?}"
    );
    assert!(out.settled, "the lock is released");
    let state = f.secret.read().await.expect("read");
    assert_eq!(
        state.current,
        Some(v("1")),
        "the unverified version was rolled back"
    );
}

/// A ref's failure as its exit code and message.
fn failure(out: &RefOutcome) -> Option<(u8, String)> {
    out.failure
        .as_ref()
        .map(|f| (rotor::error::ref_failure_code(f), f.to_string()))
}
