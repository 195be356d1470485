//! A fault-injecting HTTP proxy, put between rotor and one service by the fault tests.
//!
//! Each request draws, from a seeded generator, whether it meets a fault and which one: an
//! outage before forwarding (nothing happened), throttling before forwarding, an answer lost
//! after forwarding (the request landed and the caller never learns it), or a slow answer.
//! The faults take the shapes the service gives them ([`Style`]): generic HTTP (`503`, `429`
//! with `Retry-After: 1`, a `502` for a lost answer), or AWS's (a `400` whose
//! `x-amzn-ErrorType` is `ThrottlingException`, a `503 ServiceUnavailableException`, and a
//! connection closed before the answer, with or without the request reaching the service), or
//! Google Cloud's (a `429 RESOURCE_EXHAUSTED` with Secret Manager's quota message, a
//! `503 UNAVAILABLE`, and a connection closed before the answer, with or without the request
//! reaching the service; only for Secret Manager's calls, under `/v1/projects/`, so that the
//! sandbox's GitHub and application routes behind the same proxy pass untouched).
//! Requests to `/_fault/stats` are answered by the proxy itself with what it injected.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// How often and with what seed faults happen, and in which service's shapes.
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// The generator's seed: the same seed, the same faults in the same order.
    pub seed: u64,
    /// The share of requests that meet a fault, from 0 to 1.
    pub rate: f64,
    /// The shape of the faults.
    pub style: Style,
}

/// The shape faults take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Plain HTTP: `503`, `429` with `Retry-After`, `502` for a lost answer.
    #[default]
    Http,
    /// AWS's JSON protocol: throttling is a `400` with `x-amzn-ErrorType: ThrottlingException`,
    /// an outage a `503 ServiceUnavailableException`, and a lost answer a connection closed
    /// before the answer (the request not forwarded, or forwarded and done).
    Aws,
    /// Google Cloud's JSON errors, for Secret Manager's calls (paths under `/v1/projects/`)
    /// only: throttling is `429 {"error": {"code": 429, "message": "Quota exceeded for quota
    /// metric …", "status": "RESOURCE_EXHAUSTED", "details": […]}}`, an outage
    /// `503 {"error": {"code": 503, "message": "The service is currently unavailable.",
    /// "status": "UNAVAILABLE"}}`, and a lost answer a connection closed before the answer (the
    /// request not forwarded, or forwarded and done). Every other request is forwarded as is,
    /// drawing nothing and counted nowhere.
    Gcp,
}

impl Style {
    /// Whether a request to `path` may meet a fault in this style.
    fn faults(self, path: &str) -> bool {
        match self {
            Self::Http | Self::Aws => true,
            Self::Gcp => path.starts_with("/v1/projects/"),
        }
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
struct Stats {
    requests: u64,
    unavailable: u64,
    throttled: u64,
    lost_answers: u64,
    closed_unsent: u64,
    slow: u64,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    rate: f64,
    style: Style,
    state: Mutex<(u64, Stats)>,
}

/// splitmix64: small, seeded and good enough to spread faults.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The proxy's routes, forwarding to `upstream` (e.g. `http://127.0.0.1:8200`).
pub fn router(upstream: &str, faults: Faults) -> axum::Router {
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        rate: faults.rate,
        style: faults.style,
        state: Mutex::new((faults.seed, Stats::default())),
    });
    axum::Router::new()
        .route("/_fault/stats", axum::routing::get(stats))
        .fallback(forward)
        .with_state(proxy)
}

async fn stats(State(proxy): State<Arc<Proxy>>) -> Response {
    let stats = proxy.state.lock().map(|s| s.1.clone()).unwrap_or_default();
    axum::Json(json!(stats)).into_response()
}

#[derive(Clone, Copy)]
enum Fault {
    None,
    Unavailable,
    Throttled,
    LostAnswer,
    /// The connection closes before the request is forwarded (AWS style only).
    ClosedUnsent,
    Slow,
}

/// An AWS JSON-protocol error answer.
fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"__type": code, "message": message})),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = if !proxy.style.faults(uri.path()) {
        Fault::None
    } else {
        let Ok(mut state) = proxy.state.lock() else {
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        };
        let (seed, stats) = &mut *state;
        stats.requests += 1;
        let draw = (next(seed) >> 11) as f64 / (1u64 << 53) as f64;
        let fault = if draw >= proxy.rate {
            Fault::None
        } else {
            match (next(seed) % 5, proxy.style) {
                (0, _) => Fault::Unavailable,
                (1, _) => Fault::Throttled,
                (2, _) => Fault::LostAnswer,
                (3, Style::Aws | Style::Gcp) => Fault::ClosedUnsent,
                _ => Fault::Slow,
            }
        };
        match fault {
            Fault::Unavailable => stats.unavailable += 1,
            Fault::Throttled => stats.throttled += 1,
            Fault::LostAnswer => stats.lost_answers += 1,
            Fault::ClosedUnsent => stats.closed_unsent += 1,
            Fault::Slow => stats.slow += 1,
            Fault::None => {}
        }
        fault
    };
    match (fault, proxy.style) {
        (Fault::Unavailable, Style::Aws) => {
            return aws_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailableException",
                "injected: the service is unavailable",
            );
        }
        (Fault::Throttled, Style::Aws) => {
            return aws_error(
                StatusCode::BAD_REQUEST,
                "ThrottlingException",
                "injected: Rate exceeded",
            );
        }
        (Fault::Unavailable, Style::Gcp) => return crate::gcp::unavailable(),
        (Fault::Throttled, Style::Gcp) => {
            // Reads count against the read quota, every other call against the write quota.
            let api = if method == Method::GET {
                "secrets.get"
            } else {
                "secrets.patch"
            };
            return crate::gcp::quota_exceeded(api, Some(crate::gcp::DEFAULT_PROJECT_NUMBER));
        }
        (Fault::ClosedUnsent, _) => return crate::lost::broken(),
        (Fault::Unavailable, Style::Http) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"errors": ["injected: unavailable"], "message": "injected"})),
            )
                .into_response();
        }
        (Fault::Throttled, Style::Http) => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({"errors": ["injected: slow down"], "message": "injected"})),
            )
                .into_response();
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return response;
        }
        (Fault::Slow, _) => tokio::time::sleep(Duration::from_millis(300)).await,
        (Fault::None | Fault::LostAnswer, _) => {}
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = forwarded(
        &proxy.http,
        method,
        &format!("{}{path}", proxy.upstream),
        &headers,
        body,
    );
    let Ok(answer) = request.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    if matches!(fault, Fault::LostAnswer) && matches!(proxy.style, Style::Aws | Style::Gcp) {
        // The upstream did the work; the connection breaks before the answer.
        return crate::lost::broken();
    }
    if matches!(fault, Fault::LostAnswer) {
        // The upstream did the work; the caller never learns it.
        return (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"errors": ["injected: answer lost"], "message": "injected"})),
        )
            .into_response();
    }
    relayed(answer).await
}

/// The request a proxy forwards to `url`: the caller's method, headers (but those of the
/// connection) and body.
pub(crate) fn forwarded(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> reqwest::RequestBuilder {
    let mut request = http.request(method, url).body(body);
    for (name, value) in headers {
        if !matches!(name.as_str(), "host" | "content-length" | "connection") {
            request = request.header(name, value);
        }
    }
    request
}

/// The upstream's answer, as the proxy gives it back: its status, headers (but those of the
/// connection and the framing) and body.
pub(crate) async fn relayed(answer: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HeaderMap::new();
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) && let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.insert(n, v);
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    (status, out, bytes).into_response()
}
