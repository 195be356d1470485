//! A stand-in for the tenant application of `app-api.yaml`.
//!
//! It behaves like a real application would: it resolves a ref through the secret manager's
//! pointer (OpenBao's `custom_metadata`, AWS's staging label or Google Secret Manager's version
//! alias, read for real, never a value),
//! caches what it resolved for a while, reports integration health, and emits audit events on
//! upserts. Knobs make it misbehave: versions whose integration fails, a cache that lags,
//! audit events that arrive late or never. Driven with `PUT /_sandbox/app`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How the application reaches the secret manager's pointer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum BackendLink {
    /// Vault/OpenBao KV v2: `custom_metadata[pointer_key]` of `<mount>/metadata/<ref>`.
    Vault {
        /// Server address.
        address: String,
        /// A token that can read metadata.
        token: String,
        /// KV mount.
        mount: String,
        /// The pointer's key.
        pointer_key: String,
    },
    /// AWS Secrets Manager (or moto): the version holding `stage` on the secret named as the ref.
    Aws {
        /// Endpoint URL.
        endpoint: String,
        /// Region.
        region: String,
        /// The pointer label.
        stage: String,
    },
    /// Google Cloud Secret Manager: the version number the alias names, read with
    /// `versions.get` of `…/secrets/<id>/versions/<alias>` (never `:access`: the application's
    /// token needs only `secretmanager.versions.get`).
    Gcp {
        /// The REST base URL without `/v1` (the sandbox's own URL for its stand-in).
        endpoint: String,
        /// The application's bearer token (the stand-in registers `gcp-app` for this).
        token: String,
        /// The project id or number.
        project: String,
        /// The version alias that is the pointer.
        #[serde(default = "default_gcp_alias")]
        alias: String,
        /// The secret id, from the ref `tenant.<slug>.<provider>.<key>`: a template over
        /// `{slug}`, `{provider}`, `{key}` and `{ref}`, as rotor's config writes it.
        #[serde(default = "default_gcp_name")]
        name: String,
    },
}

fn default_gcp_alias() -> String {
    "current".to_owned()
}

fn default_gcp_name() -> String {
    "{slug}_{provider}_{key}".to_owned()
}

/// The secret id a ref maps to under a `{slug}_{provider}_{key}`-style template.
fn gcp_secret_id(template: &str, reference: &str) -> String {
    let rest = reference.strip_prefix("tenant.").unwrap_or(reference);
    let mut parts = rest.splitn(3, '.');
    let (slug, provider, key) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    template
        .replace("{slug}", slug)
        .replace("{provider}", provider)
        .replace("{key}", key)
        .replace("{ref}", reference)
}

/// The application's knowledge of one ref.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppRef {
    /// Tenant.
    pub tenant: String,
    /// Provider.
    pub provider: String,
    /// Sites using it.
    pub site_ids: Vec<String>,
    /// The last version recorded by an upsert.
    #[serde(default)]
    pub version_id: Option<String>,
}

/// The application's state and knobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppScenario {
    /// The bearer token the application accepts: its principal holds `internal_admin`.
    pub token: String,
    /// A valid token whose principal lacks `internal_admin` (403); any other token is 401.
    pub viewer_token: String,
    /// Known refs.
    pub refs: BTreeMap<String, AppRef>,
    /// How refs resolve.
    pub backend: Option<BackendLink>,
    /// How long the application keeps a resolved version before resolving again (ms).
    pub cache_ms: u64,
    /// Versions whose integration health fails.
    pub bad_versions: BTreeSet<String>,
    /// Refs whose integration health fails on every version but `1` (the one the tests
    /// provision first): a new credential that this tenant's integration rejects.
    pub bad_refs: BTreeSet<String>,
    /// How long an audit event takes to become visible (ms).
    pub audit_delay_ms: u64,
    /// Emit no audit events at all.
    pub audit_missing: bool,
    /// Page size of the audit list (the API's maximum is 100).
    pub audit_page_size: usize,
    /// Versions whose health check answers `200 {"status":"ok","detail":"…"}` of
    /// `huge_bytes` bytes, streamed with no declared length (a hostile or broken application).
    pub huge_versions: BTreeSet<String>,
    /// The size of those answers.
    pub huge_bytes: u64,
    /// The ref lookup (`GET /api/v1/secret-refs/{ref}`) answers with such a body too.
    pub huge_lookup: bool,
    /// How far the application's clock is ahead of the runner's (seconds; negative: behind).
    /// Its `Date` headers, its events' `createdAt` and its refs' `updatedAt` follow it.
    pub clock_skew_s: i64,
    /// Other tenants' rotations: this many `secret_ref_upserted` events a second, written
    /// while the scenario holds (a busy application's log, newest first).
    pub audit_noise_per_s: u64,
    /// The audit log pages forever: every page holds fresh events dated now and a new cursor.
    pub audit_endless: bool,
    /// How many bytes of huge answers were sent (read back with `GET /_sandbox/app`).
    pub huge_sent: u64,
    /// The audit log alone is down for this long after the first upsert (ms): its list answers
    /// `503`, while every other call answers.
    pub audit_outage_ms: u64,
}

impl Default for AppScenario {
    fn default() -> Self {
        Self {
            token: "app-token".to_owned(),
            viewer_token: "viewer-token".to_owned(),
            refs: BTreeMap::new(),
            backend: None,
            cache_ms: 0,
            bad_versions: BTreeSet::new(),
            bad_refs: BTreeSet::new(),
            audit_delay_ms: 0,
            audit_missing: false,
            audit_page_size: 100,
            huge_versions: BTreeSet::new(),
            huge_bytes: 768 << 20,
            huge_lookup: false,
            audit_endless: false,
            audit_outage_ms: 0,
            clock_skew_s: 0,
            audit_noise_per_s: 0,
            huge_sent: 0,
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    scenario: AppScenario,
    /// Audit events, oldest first, with when they become visible.
    events: Vec<(Instant, Value)>,
    cache: HashMap<String, (String, Instant)>,
    log: Vec<String>,
    next_event: u64,
    /// Whether the task writing other tenants' events runs.
    noise: bool,
    /// When the first upsert since the scenario was set landed.
    first_upsert: Option<Instant>,
}

/// Shared state of the application stand-in.
#[derive(Debug, Default)]
pub struct App {
    inner: Mutex<Inner>,
    http: reqwest::Client,
}

type Shared = Arc<App>;

impl App {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Now by the application's own clock.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + chrono::Duration::seconds(self.inner().scenario.clock_skew_s)
    }
}

/// Every answer's `Date` header by the application's clock, as a server sets it.
async fn date_header(
    State(app): State<Shared>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let date = app.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    if let Ok(v) = axum::http::HeaderValue::from_str(&date) {
        response.headers_mut().insert(axum::http::header::DATE, v);
    }
    response
}

/// The application's routes and its control routes.
pub fn router() -> axum::Router {
    use axum::routing::{get, post};
    let app = Arc::new(App::default());
    axum::Router::new()
        .route("/_sandbox/app", get(get_scenario).put(put_scenario))
        .route("/_sandbox/app/requests", get(get_log).delete(clear_log))
        .route("/_sandbox/app/events", axum::routing::delete(clear_events))
        .route(
            "/_sandbox/app/events/{id}",
            axum::routing::delete(delete_event).patch(patch_event),
        )
        .route(
            "/api/v1/secret-refs/{secret_ref}",
            get(get_ref).put(upsert_ref),
        )
        .route(
            "/api/v1/secret-refs/{secret_ref}/resolve",
            post(resolve_ref),
        )
        .route(
            "/api/v1/sites/{site}/integrations/{provider}/health",
            get(health),
        )
        .route("/api/v1/audit/events", get(audit_events))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            date_header,
        ))
        .with_state(app)
}

async fn get_scenario(State(app): State<Shared>) -> Json<Value> {
    let inner = app.inner();
    Json(json!({
        "scenario": inner.scenario,
        "events": inner.events.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
    }))
}

async fn put_scenario(State(app): State<Shared>, Json(s): Json<AppScenario>) -> StatusCode {
    let mut inner = app.inner();
    let noisy = s.audit_noise_per_s > 0;
    inner.scenario = s;
    inner.cache.clear();
    inner.first_upsert = None;
    if noisy && !inner.noise {
        inner.noise = true;
        tokio::spawn(noise(app.clone()));
    }
    StatusCode::NO_CONTENT
}

/// Writes other tenants' audit events at the scenario's rate, each visible at once and
/// listed under its `createdAt`, until the scenario asks for none.
async fn noise(app: Shared) {
    let started = Instant::now();
    let mut written: u64 = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let mut inner = app.inner();
        let rate = inner.scenario.audit_noise_per_s;
        if rate == 0 {
            inner.noise = false;
            return;
        }
        let due = (started.elapsed().as_millis() as u64 * rate / 1000).saturating_sub(written);
        let now = chrono::Utc::now() + chrono::Duration::seconds(inner.scenario.clock_skew_s);
        let created = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        for _ in 0..due.min(10_000) {
            inner.next_event += 1;
            let n = inner.next_event;
            let event = json!({
                "id": format!("evt_{n:06}"), "action": "secret_ref_upserted", "actorRole": "internal_admin",
                "actor": "other-team", "siteId": format!("site-{}", n % 97), "tenant": format!("other-{}", n % 89),
                "createdAt": created,
                "metadata": {"ref": format!("tenant.other-{}.stripe.secret_key", n % 89), "rotationId": format!("other-{}", n / 100), "versionId": "2", "operation": "rotate"}
            });
            inner.events.push((Instant::now(), event));
        }
        written += due;
    }
}

async fn get_log(State(app): State<Shared>) -> Json<Vec<String>> {
    Json(app.inner().log.clone())
}

async fn clear_events(State(app): State<Shared>) -> StatusCode {
    app.inner().events.clear();
    StatusCode::NO_CONTENT
}

/// Removes one audit event, as someone with the application's admin rights could: what
/// `rotor verify` must notice (`audit_missing`).
async fn delete_event(State(app): State<Shared>, Path(id): Path<String>) -> StatusCode {
    let mut inner = app.inner();
    let before = inner.events.len();
    inner.events.retain(|(_, e)| e["id"] != id.as_str());
    if inner.events.len() < before {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}

/// Merges `metadata` into one audit event's metadata (`audit_mismatch`).
async fn patch_event(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Json(patch): Json<Value>,
) -> StatusCode {
    let mut inner = app.inner();
    let Some((_, event)) = inner
        .events
        .iter_mut()
        .find(|(_, e)| e["id"] == id.as_str())
    else {
        return StatusCode::NOT_FOUND;
    };
    if let (Some(meta), Some(changes)) = (
        event["metadata"].as_object_mut(),
        patch.get("metadata").and_then(Value::as_object),
    ) {
        for (k, v) in changes {
            meta.insert(k.clone(), v.clone());
        }
    }
    StatusCode::NO_CONTENT
}

async fn clear_log(State(app): State<Shared>) -> StatusCode {
    app.inner().log.clear();
    StatusCode::NO_CONTENT
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

/// Checks the bearer token and logs the call; `Some` is the refusal to send.
fn refuse(app: &App, headers: &HeaderMap, line: String) -> Option<Response> {
    let mut inner = app.inner();
    inner.log.push(line);
    // As app-api.yaml says: 401 for a missing or bad token, 403 for a principal without
    // internal_admin.
    let expected = format!("Bearer {}", inner.scenario.token);
    let viewer = format!("Bearer {}", inner.scenario.viewer_token);
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(given) if given == expected => None,
        Some(given) if given == viewer => Some(error(
            StatusCode::FORBIDDEN,
            "the token's principal is not internal_admin",
        )),
        Some(_) => Some(error(StatusCode::UNAUTHORIZED, "bad bearer token")),
        None => Some(error(StatusCode::UNAUTHORIZED, "missing bearer token")),
    }
}

fn ref_json(name: &str, r: &AppRef) -> Value {
    json!({"ref": name, "tenant": r.tenant, "provider": r.provider, "siteIds": r.site_ids, "versionId": r.version_id})
}

async fn get_ref(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse(&app, &headers, format!("GET /api/v1/secret-refs/{name}")) {
        return r;
    }
    if app.inner().scenario.huge_lookup {
        return huge_answer(&app);
    }
    match app.inner().scenario.refs.get(&name) {
        Some(r) => Json(ref_json(&name, r)).into_response(),
        None => error(StatusCode::NOT_FOUND, "unknown ref"),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Upsert {
    version_id: String,
    rotation_id: String,
    operation: String,
    operator: String,
}

async fn upsert_ref(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    // The body is logged whole, so tests can prove no secret value was ever sent.
    let line = format!(
        "PUT /api/v1/secret-refs/{name} {}",
        String::from_utf8_lossy(&body)
    );
    if let Some(r) = refuse(&app, &headers, line) {
        return r;
    }
    // `additionalProperties: false`: a field that could carry a secret value is refused.
    let Ok(up) = serde_json::from_slice::<Upsert>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid body: only versionId, rotationId, operation and operator",
        );
    };
    if !matches!(up.operation.as_str(), "rotate" | "rollback") {
        return error(
            StatusCode::BAD_REQUEST,
            "operation must be rotate or rollback",
        );
    }
    let mut inner = app.inner();
    let now = chrono::Utc::now() + chrono::Duration::seconds(inner.scenario.clock_skew_s);
    let Some(r) = inner.scenario.refs.get_mut(&name) else {
        return error(StatusCode::NOT_FOUND, "unknown ref");
    };
    r.version_id = Some(up.version_id.clone());
    let mut answer = ref_json(&name, r);
    answer["updatedAt"] = json!(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let (tenant, site) = (r.tenant.clone(), r.site_ids.first().cloned());
    inner.next_event += 1;
    let id = format!("evt_{:06}", inner.next_event);
    if !inner.scenario.audit_missing {
        let visible = Instant::now() + Duration::from_millis(inner.scenario.audit_delay_ms);
        let event = json!({
            "id": id, "action": "secret_ref_upserted", "actorRole": "internal_admin", "actor": up.operator,
            "siteId": site, "tenant": tenant, "createdAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "metadata": {"ref": name, "rotationId": up.rotation_id, "versionId": up.version_id, "operation": up.operation}
        });
        inner.events.push((visible, event));
        inner.first_upsert.get_or_insert_with(Instant::now);
    }
    answer["auditEventId"] = json!(id);
    Json(answer).into_response()
}

/// Reads the pointer from the secret manager, as the application would at run time.
async fn pointer(app: &App, link: &BackendLink, name: &str) -> Result<String, String> {
    match link {
        BackendLink::Vault {
            address,
            token,
            mount,
            pointer_key,
        } => {
            let url = format!(
                "{}/v1/{mount}/metadata/{name}",
                address.trim_end_matches('/')
            );
            let v: Value = app
                .http
                .get(url)
                .header("X-Vault-Token", token)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            v.pointer(&format!("/data/custom_metadata/{pointer_key}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| "no pointer".to_owned())
        }
        BackendLink::Aws {
            endpoint,
            region,
            stage,
        } => {
            // moto answers the AWS JSON protocol without checking signatures.
            let v: Value = app
                .http
                .post(endpoint)
                .header("X-Amz-Target", "secretsmanager.DescribeSecret")
                .header("Content-Type", "application/x-amz-json-1.1")
                .header(
                    "Authorization",
                    format!("AWS4-HMAC-SHA256 Credential=testing/20261125/{region}/secretsmanager/aws4_request, SignedHeaders=host, Signature=0"),
                )
                .body(json!({"SecretId": name}).to_string())
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            v.get("VersionIdsToStages")
                .and_then(Value::as_object)
                .and_then(|m| {
                    m.iter()
                        .find(|(_, labels)| {
                            labels
                                .as_array()
                                .is_some_and(|l| l.iter().any(|x| x == stage.as_str()))
                        })
                        .map(|(id, _)| id.clone())
                })
                .ok_or_else(|| format!("no version holds {stage}"))
        }
        BackendLink::Gcp {
            endpoint,
            token,
            project,
            alias,
            name: template,
        } => {
            let id = gcp_secret_id(template, name);
            let url = format!(
                "{}/v1/projects/{project}/secrets/{id}/versions/{alias}",
                endpoint.trim_end_matches('/')
            );
            let answer = app
                .http
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let status = answer.status();
            let v: Value = answer.json().await.map_err(|e| e.to_string())?;
            if !status.is_success() {
                return Err(format!(
                    "secret manager answered {status}: {}",
                    v.pointer("/error/message")
                        .and_then(Value::as_str)
                        .unwrap_or("no message")
                ));
            }
            // `projects/N/secrets/<id>/versions/<number>`: the alias resolved.
            v.get("name")
                .and_then(Value::as_str)
                .and_then(|n| n.rsplit_once("/versions/"))
                .map(|(_, number)| number.to_owned())
                .ok_or_else(|| "no version name in the answer".to_owned())
        }
    }
}

/// The version the application uses now: from its cache while fresh, else from the pointer.
async fn resolved(app: &App, name: &str) -> Result<String, String> {
    let (link, cache_ms, cached) = {
        let inner = app.inner();
        (
            inner.scenario.backend.clone(),
            inner.scenario.cache_ms,
            inner.cache.get(name).cloned(),
        )
    };
    if let Some((version, at)) = cached
        && at.elapsed() < Duration::from_millis(cache_ms)
    {
        return Ok(version);
    }
    let link = link.ok_or_else(|| "the application has no backend configured".to_owned())?;
    let version = pointer(app, &link, name).await?;
    app.inner()
        .cache
        .insert(name.to_owned(), (version.clone(), Instant::now()));
    Ok(version)
}

async fn resolve_ref(
    State(app): State<Shared>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse(
        &app,
        &headers,
        format!("POST /api/v1/secret-refs/{name}/resolve"),
    ) {
        return r;
    }
    if !app.inner().scenario.refs.contains_key(&name) {
        return error(StatusCode::NOT_FOUND, "unknown ref");
    }
    match resolved(&app, &name).await {
        Ok(version) => {
            Json(json!({"ref": name, "resolved": true, "versionId": version})).into_response()
        }
        Err(e) => Json(json!({"ref": name, "resolved": false, "error": e})).into_response(),
    }
}

async fn health(
    State(app): State<Shared>,
    Path((site, provider)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refuse(
        &app,
        &headers,
        format!("GET /api/v1/sites/{site}/integrations/{provider}/health"),
    ) {
        return r;
    }
    let name = {
        let inner = app.inner();
        inner
            .scenario
            .refs
            .iter()
            .find(|(_, r)| r.provider == provider && r.site_ids.contains(&site))
            .map(|(n, _)| n.clone())
    };
    let Some(name) = name else {
        return error(StatusCode::NOT_FOUND, "no such site or integration");
    };
    match resolved(&app, &name).await {
        Ok(version) if app.inner().scenario.huge_versions.contains(&version) => {
            huge_answer(&app)
        }
        Ok(version)
            if app.inner().scenario.bad_versions.contains(&version)
                || (app.inner().scenario.bad_refs.contains(&name) && version != "1") =>
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "failing", "detail": format!("the {provider} credential (version {version}) is rejected")})),
        )
            .into_response(),
        Ok(version) => Json(json!({"status": "ok", "versionId": version})).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "failing", "detail": e}))).into_response(),
    }
}

/// `200 {"status":"ok","detail":"xxxx…"}` of `huge_bytes`, produced as it is sent (the
/// stand-in holds none of it) with no `Content-Length`, counting what the client took.
fn huge_answer(app: &Shared) -> Response {
    const CHUNK: usize = 64 * 1024;
    let total = app.inner().scenario.huge_bytes;
    let app = app.clone();
    let head = r#"{"status":"ok","detail":""#;
    let chunks = (total / CHUNK as u64) + 1;
    let stream = futures_util::stream::iter(0..=chunks).map(move |i| {
        let bytes = match i {
            0 => head.as_bytes().to_vec(),
            i if i == chunks => br#""}"#.to_vec(),
            _ => vec![b'x'; CHUNK],
        };
        app.inner().scenario.huge_sent += bytes.len() as u64;
        Ok::<_, std::convert::Infallible>(bytes)
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(Debug, Deserialize)]
struct AuditQuery {
    action: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn audit_events(
    State(app): State<Shared>,
    Query(q): Query<AuditQuery>,
    headers: HeaderMap,
) -> Response {
    let line = match &q.cursor {
        Some(c) => format!("GET /api/v1/audit/events cursor={c}"),
        None => "GET /api/v1/audit/events".to_owned(),
    };
    if let Some(r) = refuse(&app, &headers, line) {
        return r;
    }
    let mut inner = app.inner();
    let outage = Duration::from_millis(inner.scenario.audit_outage_ms);
    if inner.first_upsert.is_some_and(|at| at.elapsed() < outage) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"message": "the audit log is unavailable"})),
        )
            .into_response();
    }
    if inner.scenario.audit_endless {
        // A fresh page of events dated now, and a fresh cursor, every time.
        inner.next_event += 100;
        let base = inner.next_event;
        let now = (chrono::Utc::now() + chrono::Duration::seconds(inner.scenario.clock_skew_s))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let page: Vec<Value> = (0..100)
            .map(|i| json!({"id": format!("evt_loop_{}", base + i), "action": "secret_ref_upserted", "actorRole": "internal_admin", "actor": "loop", "createdAt": now, "metadata": {"ref": "tenant.loop.supabase.service_role", "rotationId": "loop", "operation": "rotate", "versionId": "1"}}))
            .collect();
        return Json(json!({"events": page, "nextCursor": format!("loop{base}")})).into_response();
    }
    let limit = q
        .limit
        .unwrap_or(100)
        .clamp(1, 100)
        .min(inner.scenario.audit_page_size.max(1));
    let now = Instant::now();
    // Newest first, as the API promises.
    let visible: Vec<&Value> = inner
        .events
        .iter()
        .rev()
        .filter(|(at, _)| *at <= now)
        .map(|(_, e)| e)
        .filter(|e| q.action.as_deref().is_none_or(|a| e["action"] == a))
        .collect();
    let start = q
        .cursor
        .as_deref()
        .and_then(|c| c.strip_prefix("c"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let page: Vec<Value> = visible
        .iter()
        .skip(start)
        .take(limit)
        .map(|e| (*e).clone())
        .collect();
    let next = (start + limit < visible.len()).then(|| format!("c{}", start + limit));
    Json(json!({"events": page, "nextCursor": next})).into_response()
}
