//! The real servers started by `scripts/services` (OpenBao dev server with a file audit
//! device, moto's Secrets Manager), and helpers to provision them as an operator would.
//!
//! Tests that need a server fail, never skip, when it is not there.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use aws_sdk_secretsmanager::Client as SmClient;
use serde_json::{Value, json};

/// An environment variable `scripts/services` exports; a clear failure when it is missing.
pub(crate) fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the backend tests run against real OpenBao and moto servers; \
             run them through `scripts/test` or `scripts/services run -- cargo test`"
        )
    })
}

/// Runs a future to completion from a synchronous test.
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// A unique tenant slug, so that tests sharing a server never collide.
pub(crate) fn unique(prefix: &str) -> String {
    format!("{prefix}{:08x}", fastrand::u32(..))
}

/// A secret value that must never appear in anything rotor prints, sends or writes.
pub(crate) fn canary() -> String {
    format!("{}{:016x}", crate::common::CANARY_PREFIX, fastrand::u64(..))
}

/// The OpenBao dev server.
pub(crate) struct Bao {
    pub(crate) addr: String,
    root: String,
    pub(crate) audit_log: PathBuf,
    http: reqwest::Client,
}

/// rotor's own identity on OpenBao: metadata only, nothing on `secret/data/`.
pub(crate) struct RotorToken {
    pub(crate) token: String,
    pub(crate) accessor: String,
}

pub(crate) fn bao() -> Bao {
    Bao {
        addr: service_env("ROTOR_TEST_BAO_ADDR"),
        root: service_env("ROTOR_TEST_BAO_ROOT_TOKEN"),
        audit_log: PathBuf::from(service_env("ROTOR_TEST_BAO_AUDIT_LOG")),
        http: reqwest::Client::new(),
    }
}

/// The policy rotor's test token gets: exactly what rotor needs.
pub(crate) const ROTOR_POLICY: &str = r#"
path "secret/metadata/*" {
  capabilities = ["read", "create", "update"]
}
"#;

impl Bao {
    /// A request as the root token (the operator), returning status and body.
    pub(crate) async fn root(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.with_token(&self.root.clone(), method, path, body)
            .await
    }

    /// A request with `token`.
    pub(crate) async fn with_token(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("OpenBao answers");
        let status = resp.status().as_u16();
        let body = resp.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A fresh token for rotor with only the metadata policy.
    pub(crate) async fn rotor_token(&self) -> RotorToken {
        let (status, _) = self
            .root(
                reqwest::Method::PUT,
                "sys/policies/acl/rotor-metadata",
                Some(json!({"policy": ROTOR_POLICY})),
            )
            .await;
        assert!(status < 300, "policy write: {status}");
        let (status, body) = self
            .root(
                reqwest::Method::POST,
                "auth/token/create",
                Some(
                    json!({"policies": ["rotor-metadata"], "no_default_policy": true, "ttl": "1h"}),
                ),
            )
            .await;
        assert_eq!(status, 200, "token create: {body}");
        RotorToken {
            token: body["auth"]["client_token"]
                .as_str()
                .expect("token")
                .to_owned(),
            accessor: body["auth"]["accessor"]
                .as_str()
                .expect("accessor")
                .to_owned(),
        }
    }

    /// Writes `count` versions with canary values, as an operator provisions them, and sets the
    /// pointer if given. Returns the canaries.
    pub(crate) async fn provision(
        &self,
        path: &str,
        count: u32,
        pointer: Option<u32>,
    ) -> Vec<String> {
        let mut canaries = Vec::new();
        for _ in 0..count {
            let value = canary();
            let (status, body) = self
                .root(
                    reqwest::Method::POST,
                    &format!("secret/data/{path}"),
                    Some(json!({"data": {"value": value}})),
                )
                .await;
            assert_eq!(status, 200, "write {path}: {body}");
            canaries.push(value);
        }
        if let Some(p) = pointer {
            self.set_custom(path, json!({"current_version": p.to_string()}))
                .await;
        }
        canaries
    }

    /// Replaces the secret's custom metadata as the operator (no check-and-set).
    pub(crate) async fn set_custom(&self, path: &str, custom: Value) {
        let (status, body) = self
            .root(
                reqwest::Method::POST,
                &format!("secret/metadata/{path}"),
                Some(json!({"custom_metadata": custom})),
            )
            .await;
        assert!(status < 300, "metadata write {path}: {status} {body}");
    }

    /// The secret's custom metadata, as the operator sees it.
    pub(crate) async fn custom(&self, path: &str) -> HashMap<String, String> {
        let (status, body) = self
            .root(
                reqwest::Method::GET,
                &format!("secret/metadata/{path}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["data"]["custom_metadata"].clone()).unwrap_or_default()
    }

    /// The HMAC under which `accessor` appears in the file audit log.
    pub(crate) async fn audit_hash(&self, accessor: &str) -> String {
        let (status, body) = self
            .root(
                reqwest::Method::POST,
                "sys/audit-hash/file",
                Some(json!({"input": accessor})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["hash"].as_str().expect("hash").to_owned()
    }

    /// Every audit entry (request and response) made with the token whose accessor is given.
    pub(crate) async fn audit_entries_of(&self, accessor: &str) -> Vec<Value> {
        let hashed = self.audit_hash(accessor).await;
        let log = std::fs::read_to_string(&self.audit_log).expect("the audit log exists");
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["auth"]["accessor"].as_str() == Some(hashed.as_str()))
            .collect()
    }
}

/// moto's Secrets Manager.
pub(crate) fn moto_url() -> String {
    service_env("ROTOR_TEST_MOTO_URL")
}

/// The environment rotor gets to reach moto.
pub(crate) fn aws_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", moto_url()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
    ]
}

/// An SDK client for provisioning, as the operator.
pub(crate) async fn sm_client() -> SmClient {
    static CONFIG: OnceLock<aws_sdk_secretsmanager::Config> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return SmClient::from_conf(c.clone());
    }
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "testing", "testing", None, None, "test",
        ))
        .load()
        .await;
    let conf = aws_sdk_secretsmanager::Config::from(&shared);
    let _ = CONFIG.set(conf.clone());
    SmClient::from_conf(conf)
}

/// Creates a secret with a current version and a pending one; returns (current, pending, canaries).
pub(crate) async fn provision_aws(name: &str) -> (String, String, Vec<String>) {
    let c = sm_client().await;
    let (v1, v2) = (canary(), canary());
    let created = c
        .create_secret()
        .name(name)
        .secret_string(&v1)
        .send()
        .await
        .expect("create");
    let put = c
        .put_secret_value()
        .secret_id(name)
        .secret_string(&v2)
        .version_stages("AWSPENDING")
        .send()
        .await
        .expect("put pending");
    (
        created.version_id().expect("id").to_owned(),
        put.version_id().expect("id").to_owned(),
        vec![v1, v2],
    )
}
