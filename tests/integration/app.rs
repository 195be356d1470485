//! rotor's application client against the application stand-in, which resolves through the real
//! secret manager's pointer (OpenBao, moto).

use rotor::app::{AppClient, AppError, Operation};
use rotor::config;
use rotor::ids::{SecretRef, SiteId, VersionId};
use rotor::secret::SecretString;
use serde_json::{Value, json};

use crate::services::{bao, moto_url, provision_aws, unique};

fn client(url: &str, token: &str) -> AppClient {
    let text = format!(
        "version: 1\nadmins: {{users: [a]}}\nenvironments: {{s: {{}}}}\nbackends: [{{match: '*', type: vault}}]\napp: {{base_url: \"{url}\"}}\n"
    );
    let cfg = config::parse("c.yml", text.as_bytes()).expect("config");
    AppClient::with_token(&cfg.app, SecretString::new(token)).expect("client")
}

async fn put_app(url: &str, scenario: &Value) {
    let resp = reqwest::Client::new()
        .put(format!("{url}/_sandbox/app"))
        .json(scenario)
        .send()
        .await
        .expect("sandbox");
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().await.unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_resolve_through_the_openbao_pointer_health_and_audit() {
    let bao = bao();
    let slug = unique("app");
    let name = format!("tenant.{slug}.supabase.service_role");
    bao.provision(&name, 2, Some(1)).await;
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let reader = bao.rotor_token().await;
    put_app(
        &url,
        &json!({
            "token": "app-secret-token",
            "refs": {name.clone(): {"tenant": slug, "provider": "supabase", "site_ids": ["site-001", "site-002"]}},
            "backend": {"type": "vault", "address": bao.addr, "token": reader.token, "mount": "secret", "pointer_key": "current_version"},
            "bad_versions": ["2"]
        }),
    )
    .await;
    let app = client(&url, "app-secret-token");
    let r = SecretRef::parse(&name).expect("ref");
    let known = app.get_ref(&r).await.expect("known");
    assert_eq!(known.site_ids, ["site-001", "site-002"]);
    assert_eq!(
        app.resolve(&r)
            .await
            .expect("resolve")
            .version_id
            .as_deref(),
        Some("1")
    );
    let site = SiteId::parse("site-001").expect("site");
    assert!(app.health(&site, "supabase").await.expect("health").ok);

    // The operator moves the pointer to a version the integration rejects.
    bao.set_custom(&name, json!({"current_version": "2"})).await;
    assert_eq!(
        app.resolve(&r)
            .await
            .expect("resolve")
            .version_id
            .as_deref(),
        Some("2")
    );
    let health = app.health(&site, "supabase").await.expect("health");
    assert!(!health.ok && health.status == 503, "{health:?}");

    let event = app
        .upsert(
            &r,
            &VersionId::parse("2").expect("v"),
            "rot-app",
            Operation::Rotate,
            "alice",
        )
        .await
        .expect("upsert")
        .expect("an audit event id");
    let events = app
        .audit_events("secret_ref_upserted", 10)
        .await
        .expect("events");
    let e = events
        .iter()
        .find(|e| e.id == event)
        .expect("the event is visible");
    assert_eq!(
        (e.actor_role.as_str(), e.site_id.as_deref()),
        ("internal_admin", Some("site-001"))
    );
    assert_eq!(e.metadata["ref"], name.as_str());
    assert_eq!(e.metadata["rotationId"], "rot-app");
    assert_eq!(
        app.audit_query_link("secret_ref_upserted"),
        format!("{url}/api/v1/audit/events?action=secret_ref_upserted&limit=100")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refs_resolve_through_the_aws_label() {
    let name = format!("tenant.{}.stripe.secret_key", unique("apa"));
    let (current, _, _) = provision_aws(&name).await;
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    put_app(
        &url,
        &json!({
            "refs": {name.clone(): {"tenant": "t", "provider": "stripe", "site_ids": ["s1"]}},
            "backend": {"type": "aws", "endpoint": moto_url(), "region": "us-east-1", "stage": "AWSCURRENT"}
        }),
    )
    .await;
    let app = client(&url, "app-token");
    let resolved = app
        .resolve(&SecretRef::parse(&name).expect("ref"))
        .await
        .expect("resolve");
    assert_eq!(resolved.version_id.as_deref(), Some(current.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_pages_delays_and_errors() {
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let name = "tenant.acme.supabase.service_role";
    put_app(&url, &json!({"refs": {name: {"tenant": "acme", "provider": "supabase", "site_ids": ["s1"]}}, "audit_page_size": 2})).await;
    let app = client(&url, "app-token");
    let r = SecretRef::parse(name).expect("ref");
    for i in 0..5 {
        app.upsert(
            &r,
            &VersionId::parse(&i.to_string()).expect("v"),
            &format!("rot-{i}"),
            Operation::Rotate,
            "alice",
        )
        .await
        .expect("upsert");
    }
    let events = app
        .audit_events("secret_ref_upserted", 10)
        .await
        .expect("events");
    assert_eq!(events.len(), 5, "every page read");
    assert_eq!(events[0].metadata["rotationId"], "rot-4", "newest first");

    put_app(&url, &json!({"refs": {name: {"tenant": "acme", "provider": "supabase", "site_ids": ["s1"]}}, "audit_delay_ms": 400})).await;
    app.upsert(
        &r,
        &VersionId::parse("9").expect("v"),
        "late",
        Operation::Rollback,
        "bob",
    )
    .await
    .expect("upsert");
    let now = app
        .audit_events("secret_ref_upserted", 10)
        .await
        .expect("events");
    assert!(
        now.iter().all(|e| e.metadata["rotationId"] != "late"),
        "not visible yet"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let later = app
        .audit_events("secret_ref_upserted", 10)
        .await
        .expect("events");
    assert!(
        later
            .iter()
            .any(|e| e.metadata["rotationId"] == "late" && e.metadata["operation"] == "rollback")
    );

    // Errors name what to fix.
    let wrong = client(&url, "not-the-token");
    assert!(matches!(
        wrong.get_ref(&r).await,
        Err(AppError::Unauthorized { .. })
    ));
    let viewer = client(&url, "viewer-token");
    assert!(matches!(
        viewer.get_ref(&r).await,
        Err(AppError::Forbidden { .. })
    ));
    let unknown = SecretRef::parse("tenant.nobody.supabase.k").expect("ref");
    let err = app.get_ref(&unknown).await.expect_err("unknown");
    assert_eq!(
        err.to_string(),
        "the application does not know the ref tenant.nobody.supabase.k (GET /api/v1/secret-refs/tenant.nobody.supabase.k, 404)"
    );
    let resp = reqwest::Client::new()
        .put(format!("{url}/api/v1/secret-refs/{name}"))
        .bearer_auth("app-token")
        .json(&json!({"versionId": "1", "rotationId": "r", "operation": "rotate", "operator": "a", "value": "CANARY"}))
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status().as_u16(),
        400,
        "a body that could carry a value is refused"
    );
}
