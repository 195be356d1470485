//! A stand-in for Google Cloud Secret Manager's REST API v1 (`secretmanager.googleapis.com`),
//! for rotor's `gcp-secret-manager` backend.
//!
//! Its routes are the `flatPath`s and `httpMethod`s of Google's discovery document
//! (`tests/fixtures/gcp/secretmanager-v1.discovery.json`, see [`discovery`]); every answer is
//! validated against the document's schema before it is sent, and one that does not fit is a
//! `500 INTERNAL` naming the violation (a defect of the stand-in, never sent silently). The
//! semantics, and which of them are assumed rather than documented by Google, are the table of
//! `tests/fixtures/gcp/README.md`.
//!
//! Served: `secrets.create`, `.get`, `.list`, `.patch`, `.addVersion`, `secrets.versions.list`,
//! `.get`, `.access`, `.enable`, `.disable`, `.destroy` under `/v1/projects/{project}/…`. Every
//! other method of the document answers `501 UNIMPLEMENTED`; a URL it does not describe,
//! Google's HTML 404 page. Answers name the project by number whatever the request used.
//! Requests need `Authorization: Bearer <token>` of a registered token (401 otherwise), and the
//! token must hold the method's IAM permission, checked before the resource's existence (403).
//!
//! At start (and after a reset) there is one project, `rotor-test` = `779844219229`, and three
//! tokens:
//!
//! | token | permissions |
//! | --- | --- |
//! | `gcp-admin` | all of [`PERMISSIONS`] |
//! | `gcp-rotor` | `secretmanager.secrets.get`, `.secrets.list`, `.secrets.update`, `.versions.list` |
//! | `gcp-app` | `secretmanager.versions.get` (what the application stand-in resolves with) |
//!
//! # Control endpoints (JSON; the test-writer's reference)
//!
//! `{project}` is a project id or number; `{secret}` a secret id.
//!
//! | method and path | body | what |
//! | --- | --- | --- |
//! | `GET /_sandbox/gcp` | | projects, tokens, faults, races, served and unimplemented methods |
//! | `POST /_sandbox/gcp/reset` | | back to the start state (no secrets, default project and tokens, empty log) |
//! | `PUT /_sandbox/gcp/projects/{id}` | `{"number": 779844219229}` | registers a project or changes its number |
//! | `PUT /_sandbox/gcp/tokens/{token}` | `{"name": "rotor", "permissions": ["secretmanager.secrets.get", …]}` | registers a token (`name` defaults to the token; `"*"` is every permission) |
//! | `DELETE /_sandbox/gcp/tokens/{token}` | | forgets a token (then 401) |
//! | `POST /_sandbox/gcp/secrets` | `{"project": "rotor-test", "secret": "acme_stripe_key", "versions": 3, "aliases": {"current": 2}, "annotations": {…}, "labels": {…}, "expireTime": "2030-01-01T00:00:00Z", "versionDestroyTtl": "86400s"}` | seeds (or replaces) a secret; `versions` is a count (payloads `<secret>-v<n>`) or a list of `{"payload": "text"}` / `{"data": "base64"}`, each with an optional `"state": "DISABLED"`/`"DESTROYED"`; everything but `secret` optional (`project` defaults to `rotor-test`); not validated, so a test can build states the API would refuse; answers the raw state |
//! | `GET /_sandbox/gcp/secrets/{project}/{secret}` | | the raw state: `name`, `projectNumber`, `etag`, `createTime`, `versionAliases` (alias → number), `annotations`, `labels`, `expireTime`, `versionDestroyTtl`, `nextVersion`, `versions: [{number, state, etag, createTime, destroyTime, scheduledDestroyTime, payload}]` (`payload` as text, `null` once destroyed) |
//! | `POST /_sandbox/gcp/secrets/{project}/{secret}/versions` | `{"payload": "text"}` or `{"data": "base64"}` | adds a version (a new version etag; the secret's stays) |
//! | `PUT /_sandbox/gcp/secrets/{project}/{secret}/versions/{n}` | `{"state": "DISABLED"}` | sets a version's state as enable/disable/destroy would (new version etag; `DESTROYED` drops the payload) |
//! | `PUT /_sandbox/gcp/secrets/{project}/{secret}/aliases/{alias}` | `{"version": 3}` | moves (or adds) an alias as a person with gcloud would: validated like `secrets.patch` (a destroyed version is refused with the API's error), and a new secret etag |
//! | `DELETE /_sandbox/gcp/secrets/{project}/{secret}/aliases/{alias}` | | removes an alias (new secret etag) |
//! | `POST /_sandbox/gcp/faults` | `{"method": "GET", "path": ":access", "kind": "quota", "times": 1}` | the next `times` API calls whose method is `method` (`"*"`: any) and whose path and query contain `path` meet the fault: `quota` (429 `RESOURCE_EXHAUSTED`), `unavailable` (503 `UNAVAILABLE`) or `lost` (the call is applied, then the connection closes before the answer); checked after authentication, before permissions |
//! | `GET` / `DELETE /_sandbox/gcp/faults` | | the faults still armed / disarms them all |
//! | `POST /_sandbox/gcp/races` | `{"project": "rotor-test", "secret": "s", "updateMask": "versionAliases", "patch": {"versionAliases": {"current": "1"}}}` | before the next `secrets.patch` of that secret is applied (after its permission and existence checks, before its etag check), this patch is applied first as another writer's would be (no etag check, a new etag): the conflict between rotor's read and its write; `"after": N` lets N patches of the secret through first |
//! | `DELETE /_sandbox/gcp/races` | | disarms the races |
//! | `GET /_sandbox/gcp/log` | | `{"calls": [{"method", "path" (with query), "token" (its name, `"none"` or `"unknown"`), "status", "api" (e.g. `"secrets.versions.access"`, absent for an unknown URL), "fault"}], "counts": {"secrets.get": 2, …}}` |
//! | `DELETE /_sandbox/gcp/log` | | clears the log and the counts |
//! | `POST /_sandbox/gcp/oauth2/token` | form `grant_type=refresh_token&refresh_token=<a registered token>&…` | Google's OAuth token endpoint for `authorized_user` credentials: answers that token as the access token |
//!
//! Control errors are `400`/`404` with `{"error": "message"}` (a refused alias move answers the
//! API's own error).

mod api;
mod control;
pub mod discovery;
pub mod filter;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use discovery::{Matched, discovery};

/// The project every reset starts with.
pub const DEFAULT_PROJECT: &str = "rotor-test";

/// Its number, which answers carry.
pub const DEFAULT_PROJECT_NUMBER: u64 = 779_844_219_229;

/// The IAM permissions the stand-in checks.
pub const PERMISSIONS: &[&str] = &[
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.update",
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.versions.list",
    "secretmanager.versions.get",
    "secretmanager.versions.access",
    "secretmanager.versions.add",
    "secretmanager.versions.enable",
    "secretmanager.versions.disable",
    "secretmanager.versions.destroy",
];

/// The permissions of rotor's typical token, `gcp-rotor`.
pub const ROTOR_PERMISSIONS: &[&str] = &[
    "secretmanager.secrets.get",
    "secretmanager.secrets.list",
    "secretmanager.secrets.update",
    "secretmanager.versions.list",
];

/// A version's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VersionState {
    /// Accessible.
    Enabled,
    /// Kept, not accessible, can be enabled again.
    Disabled,
    /// Gone for good.
    Destroyed,
}

impl VersionState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "ENABLED",
            Self::Disabled => "DISABLED",
            Self::Destroyed => "DESTROYED",
        }
    }
}

/// One secret version.
#[derive(Debug, Clone)]
struct Version {
    create_time: String,
    state: VersionState,
    destroy_time: Option<String>,
    scheduled_destroy_time: Option<String>,
    etag: String,
    /// Kept until destroyed; only `:access` returns it.
    payload: Option<Vec<u8>>,
    /// Whether `addVersion` carried `dataCrc32c`.
    checksum_given: bool,
}

/// One secret, keyed by project id and secret id.
#[derive(Debug, Clone)]
struct Secret {
    /// Creation order, for "newest first".
    seq: u64,
    create_time: String,
    etag: String,
    replication: Value,
    aliases: BTreeMap<String, u64>,
    annotations: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    expire_time: Option<String>,
    topics: Option<Value>,
    rotation: Option<Value>,
    version_destroy_ttl: Option<String>,
    versions: BTreeMap<u64, Version>,
    next_version: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Token {
    name: String,
    permissions: BTreeSet<String>,
}

/// What an armed fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FaultKind {
    /// `429 RESOURCE_EXHAUSTED`, Google's quota message.
    Quota,
    /// `503 UNAVAILABLE`.
    Unavailable,
    /// Applied, then the connection closes before the answer.
    Lost,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Fault {
    #[serde(default = "any_method")]
    method: String,
    #[serde(default)]
    path: String,
    kind: FaultKind,
    #[serde(default = "one")]
    times: u32,
}

fn any_method() -> String {
    "*".to_owned()
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Race {
    #[serde(default = "default_project")]
    project: String,
    secret: String,
    update_mask: String,
    patch: Value,
    /// Patches of this secret to let through before the race fires (0: the next one).
    #[serde(default)]
    after: u32,
}

fn default_project() -> String {
    DEFAULT_PROJECT.to_owned()
}

/// One call the stand-in received on Google's routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logged {
    /// HTTP method.
    pub method: String,
    /// Path and query, as received.
    pub path: String,
    /// The token's registered name, `none` or `unknown`.
    pub token: String,
    /// The HTTP status answered (for a lost answer, the one the caller never saw).
    pub status: u16,
    /// The discovery method, e.g. `secrets.versions.access`; absent for an unknown URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    /// The injected fault, if one met the call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

#[derive(Debug)]
struct Inner {
    /// Project id → number.
    projects: BTreeMap<String, u64>,
    /// (project id, secret id) → secret.
    secrets: BTreeMap<(String, String), Secret>,
    tokens: BTreeMap<String, Token>,
    faults: Vec<Fault>,
    races: Vec<Race>,
    log: Vec<Logged>,
    counts: BTreeMap<String, u64>,
    seq: u64,
    last_etag: i64,
}

impl Default for Inner {
    fn default() -> Self {
        let all: BTreeSet<String> = PERMISSIONS.iter().map(|p| (*p).to_owned()).collect();
        let token = |name: &str, perms: BTreeSet<String>| {
            (
                name.to_owned(),
                Token {
                    name: name.to_owned(),
                    permissions: perms,
                },
            )
        };
        Self {
            projects: BTreeMap::from([(DEFAULT_PROJECT.to_owned(), DEFAULT_PROJECT_NUMBER)]),
            secrets: BTreeMap::new(),
            tokens: BTreeMap::from([
                token("gcp-admin", all),
                token(
                    "gcp-rotor",
                    ROTOR_PERMISSIONS.iter().map(|p| (*p).to_owned()).collect(),
                ),
                token(
                    "gcp-app",
                    BTreeSet::from(["secretmanager.versions.get".to_owned()]),
                ),
            ]),
            faults: Vec::new(),
            races: Vec::new(),
            log: Vec::new(),
            counts: BTreeMap::new(),
            seq: 0,
            last_etag: 0,
        }
    }
}

impl Inner {
    /// The project id a request's `{project}` (id or number) names.
    fn project(&self, given: &str) -> Option<(String, u64)> {
        self.projects
            .iter()
            .find(|(id, number)| *id == given || number.to_string() == given)
            .map(|(id, number)| (id.clone(), *number))
    }

    /// The project, registered with a fresh number if unknown (control endpoints only).
    fn project_or_register(&mut self, given: &str) -> (String, u64) {
        if let Some(p) = self.project(given) {
            return p;
        }
        let number = self
            .projects
            .values()
            .max()
            .map_or(DEFAULT_PROJECT_NUMBER, |n| n + 1);
        self.projects.insert(given.to_owned(), number);
        (given.to_owned(), number)
    }

    /// A fresh etag: hex microseconds, strictly increasing, in double quotes as Google's are.
    fn etag(&mut self) -> String {
        let now = chrono::Utc::now().timestamp_micros();
        self.last_etag = now.max(self.last_etag + 1);
        format!("\"{:x}\"", self.last_etag)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// RFC 3339 UTC with nanoseconds, as Google writes timestamps.
fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Shared state of the Secret Manager stand-in.
#[derive(Debug, Default)]
pub struct Gcp {
    inner: Mutex<Inner>,
}

type Shared = Arc<Gcp>;

impl Gcp {
    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The stand-in's routes: Google's under `/v1/` and the control ones under `/_sandbox/gcp`.
pub fn router() -> axum::Router {
    use axum::routing::{any, get, post, put};
    axum::Router::new()
        .route("/_sandbox/gcp", get(control::overview))
        .route("/_sandbox/gcp/reset", post(control::reset))
        .route("/_sandbox/gcp/projects/{id}", put(control::put_project))
        .route(
            "/_sandbox/gcp/tokens/{token}",
            put(control::put_token).delete(control::delete_token),
        )
        .route("/_sandbox/gcp/secrets", post(control::seed))
        .route(
            "/_sandbox/gcp/secrets/{project}/{secret}",
            get(control::raw),
        )
        .route(
            "/_sandbox/gcp/secrets/{project}/{secret}/versions",
            post(control::control_add_version),
        )
        .route(
            "/_sandbox/gcp/secrets/{project}/{secret}/versions/{number}",
            put(control::control_version_state),
        )
        .route(
            "/_sandbox/gcp/secrets/{project}/{secret}/aliases/{alias}",
            put(control::control_move_alias).delete(control::control_delete_alias),
        )
        .route(
            "/_sandbox/gcp/faults",
            get(control::get_faults)
                .post(control::add_fault)
                .delete(control::clear_faults),
        )
        .route(
            "/_sandbox/gcp/races",
            post(control::add_race).delete(control::clear_races),
        )
        .route(
            "/_sandbox/gcp/log",
            get(control::get_log).delete(control::clear_log),
        )
        .route("/_sandbox/gcp/oauth2/token", post(control::oauth_token))
        .route("/v1/{*rest}", any(google))
        .with_state(Arc::new(Gcp::default()))
}

/// An error of Google's API, `{"error": {"code", "message", "status", "details"?}}`.
#[derive(Debug, Clone)]
struct GcpError {
    code: StatusCode,
    status: &'static str,
    message: String,
    details: Option<Value>,
}

impl GcpError {
    fn new(code: StatusCode, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
            details: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", message)
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    fn denied(permission: &str, resource: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            format!(
                "Permission '{permission}' denied for resource '{resource}' (or it may not exist)."
            ),
        )
        .with_details(json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "IAM_PERMISSION_DENIED",
            "domain": "secretmanager.googleapis.com",
            "metadata": {"permission": permission, "resource": resource}
        }]))
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    fn response(&self) -> Response {
        let mut error = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if let Some(details) = &self.details {
            error["details"] = details.clone();
        }
        json_response(self.code, &json!({ "error": error }))
    }
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    let mut response = (code, body.to_string()).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// Google's HTML 404 page, as its front end answers a URL no API serves.
fn html_not_found(path: &str) -> Response {
    let path = path.replace('&', "&amp;").replace('<', "&lt;");
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <meta name=viewport content=\"initial-scale=1, minimum-scale=1, width=device-width\">\n  <title>Error 404 (Not Found)!!1</title>\n  <a href=//www.google.com/><span id=logo aria-label=Google></span></a>\n  <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not found on this server.  <ins>That’s all we know.</ins>\n"
    );
    let mut response = (StatusCode::NOT_FOUND, page).into_response();
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

/// Decodes `%XX` escapes of a path.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The gRPC method name Google's ErrorInfo metadata carries.
fn rpc_name(api: &str) -> String {
    let name = match api {
        "secrets.create" => "CreateSecret",
        "secrets.get" => "GetSecret",
        "secrets.list" => "ListSecrets",
        "secrets.patch" => "UpdateSecret",
        "secrets.delete" => "DeleteSecret",
        "secrets.addVersion" => "AddSecretVersion",
        "secrets.versions.get" => "GetSecretVersion",
        "secrets.versions.list" => "ListSecretVersions",
        "secrets.versions.access" => "AccessSecretVersion",
        "secrets.versions.enable" => "EnableSecretVersion",
        "secrets.versions.disable" => "DisableSecretVersion",
        "secrets.versions.destroy" => "DestroySecretVersion",
        other => other.rsplit('.').next().unwrap_or(other),
    };
    format!("google.cloud.secretmanager.v1.SecretManagerService.{name}")
}

fn unauthenticated(api: &str, missing: bool) -> Response {
    let (message, reason) = if missing {
        (
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "CREDENTIALS_MISSING",
        )
    } else {
        (
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            "ACCESS_TOKEN_TYPE_UNSUPPORTED",
        )
    };
    let mut response = GcpError::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", message)
        .with_details(json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "secretmanager.googleapis.com", "method": rpc_name(api)}
        }]))
        .response();
    if !missing {
        response.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(
                "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
            ),
        );
    }
    response
}

/// Secret Manager's `503 UNAVAILABLE`, as the stand-in's faults and the fault proxy give it.
pub(crate) fn unavailable() -> Response {
    GcpError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The service is currently unavailable.",
    )
    .response()
}

/// Secret Manager's quota error for a call of `api` (`secrets.get`, …) in the project of
/// `project_number`, as the stand-in's faults and the fault proxy give it.
pub(crate) fn quota_exceeded(api: &str, project_number: Option<u64>) -> Response {
    quota_error(api, project_number).response()
}

/// The quota an API call counts against (Secret Manager's: access, read, write).
fn quota_error(api: &str, project_number: Option<u64>) -> GcpError {
    let (metric, limit, metric_id, limit_id) = match api {
        "secrets.versions.access" => (
            "Access requests",
            "Access requests per minute per project",
            "access_requests",
            "AccessRequestsPerMinutePerProject",
        ),
        "secrets.get" | "secrets.list" | "secrets.versions.get" | "secrets.versions.list" => (
            "Read requests",
            "Read requests per minute per project",
            "read_requests",
            "ReadRequestsPerMinutePerProject",
        ),
        _ => (
            "Write requests",
            "Write requests per minute per project",
            "write_requests",
            "WriteRequestsPerMinutePerProject",
        ),
    };
    let consumer = project_number.map_or_else(|| "unknown".to_owned(), |n| n.to_string());
    GcpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        format!(
            "Quota exceeded for quota metric '{metric}' and limit '{limit}' of service 'secretmanager.googleapis.com' for consumer 'project_number:{consumer}'."
        ),
    )
    .with_details(json!([{
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "RATE_LIMIT_EXCEEDED",
        "domain": "googleapis.com",
        "metadata": {
            "service": "secretmanager.googleapis.com",
            "consumer": format!("projects/{consumer}"),
            "quota_metric": format!("secretmanager.googleapis.com/{metric_id}"),
            "quota_limit": limit_id,
        }
    }]))
}

/// Every request under `/v1/`: routed by the discovery document, authenticated, faulted,
/// authorized and answered, then logged.
async fn google(
    State(gcp): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw_path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let path = percent_decode(uri.path());
    let query: HashMap<String, String> =
        axum::extract::Query::<HashMap<String, String>>::try_from_uri(&uri)
            .map(|q| q.0)
            .unwrap_or_default();
    let mut inner = gcp.inner();
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.strip_prefix("Bearer ").unwrap_or("").trim().to_owned());
    let token = bearer.as_deref().and_then(|t| inner.tokens.get(t)).cloned();
    let token_name = match (&bearer, &token) {
        (None, _) => "none".to_owned(),
        (Some(_), None) => "unknown".to_owned(),
        (Some(_), Some(t)) => t.name.clone(),
    };
    let mut logged = Logged {
        method: method.as_str().to_owned(),
        path: raw_path.clone(),
        token: token_name,
        status: 0,
        api: None,
        fault: None,
    };
    let (m, vars) = match discovery().route(method.as_str(), path.trim_start_matches('/')) {
        Matched::Method(m, vars) => (m, vars),
        Matched::WrongMethod | Matched::Unknown => {
            logged.status = 404;
            inner.log.push(logged);
            return html_not_found(uri.path());
        }
    };
    logged.api = Some(m.id.clone());
    *inner.counts.entry(m.id.clone()).or_default() += 1;
    let mut lost = false;
    let response = 'answer: {
        let Some(token) = token else {
            break 'answer unauthenticated(&m.id, bearer.is_none());
        };
        let project_number = vars.first().and_then(|p| inner.project(p)).map(|p| p.1);
        let method_name = method.as_str();
        if let Some(fault) = inner.faults.iter_mut().find(|f| {
            f.times > 0
                && (f.method == "*" || f.method.eq_ignore_ascii_case(method_name))
                && raw_path.contains(&f.path)
        }) {
            fault.times -= 1;
            let kind = fault.kind;
            inner.faults.retain(|f| f.times > 0);
            logged.fault = Some(
                match kind {
                    FaultKind::Quota => "quota",
                    FaultKind::Unavailable => "unavailable",
                    FaultKind::Lost => "lost",
                }
                .to_owned(),
            );
            match kind {
                FaultKind::Quota => break 'answer quota_exceeded(&m.id, project_number),
                FaultKind::Unavailable => break 'answer unavailable(),
                FaultKind::Lost => lost = true,
            }
        }
        let call = api::Call {
            api: &m.id,
            vars: &vars,
            query: &query,
            permissions: &token.permissions,
        };
        let result = api::parse_body(m.request.as_deref(), &body)
            .and_then(|body| api::handle(&mut inner, &call, body));
        match result {
            Ok(answer) => validated(&m.id, m.response.as_deref(), &answer),
            Err(e) => e.response(),
        }
    };
    logged.status = response.status().as_u16();
    inner.log.push(logged);
    if lost {
        return crate::lost::broken();
    }
    response
}

/// Sends an answer that fits the discovery document's schema; one that does not is the
/// stand-in's own defect, answered `500 INTERNAL` with every violation named.
fn validated(api: &str, schema: Option<&str>, answer: &Value) -> Response {
    let Some(schema) = schema else {
        return json_response(StatusCode::OK, answer);
    };
    match discovery().validate(schema, answer) {
        Ok(()) => json_response(StatusCode::OK, answer),
        Err(errors) => GcpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            format!(
                "rotor-sandbox defect: the {api} answer does not match the discovery document's {schema}: {}",
                errors.join("; ")
            ),
        )
        .response(),
    }
}

/// CRC-32C (Castagnoli), the checksum `dataCrc32c` carries.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0x82F6_3B78 & mask);
        }
    }
    !crc
}

fn base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    /// A hand-broken answer never leaves the stand-in: it becomes a 500 naming the defect.
    #[tokio::test]
    async fn an_answer_that_does_not_fit_is_a_500() {
        let broken = json!({"name": "projects/1/secrets/s", "createTime": "now", "etag": "\"1\""});
        let response = validated("secrets.get", Some("Secret"), &broken);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        let body: Value = serde_json::from_slice(&body).expect("json");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with("rotor-sandbox defect: the secrets.get answer")
                && message.contains("$.createTime"),
            "{message}"
        );
        let fine = json!({"name": "projects/1/secrets/s", "etag": "\"1\""});
        assert_eq!(
            validated("secrets.get", Some("Secret"), &fine).status(),
            StatusCode::OK
        );
    }

    #[test]
    fn paths_are_decoded() {
        assert_eq!(percent_decode("/v1/a%3Ab%2f"), "/v1/a:b/");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
