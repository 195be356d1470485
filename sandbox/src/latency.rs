//! A latency proxy, put between a client and one service by the benchmark (`scripts/bench`):
//! every request waits a fixed delay before it is forwarded, so that a request costs what a
//! request to a service some milliseconds away costs, and a chain of dependent requests costs
//! its length times the delay. Requests overlapping in time each pay the delay once, in
//! parallel, as they would on a real network.
//!
//! Every forwarded request is logged with when it reached the proxy and when its answer left
//! (Unix time in microseconds, so that logs of several proxies and the benchmark's own clock
//! compare), its method and path, and the `SecretId` and operation (`X-Amz-Target`) of an AWS
//! JSON request (the path of an AWS call names neither). `GET /_latency/log` answers the log; `DELETE /_latency/log`
//! empties it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One forwarded request.
#[derive(Debug, Clone, serde::Serialize)]
struct Entry {
    /// When it reached the proxy, in microseconds since the Unix epoch.
    start_us: u128,
    /// When its answer left the proxy.
    end_us: u128,
    method: String,
    path: String,
    /// The `SecretId` of an AWS JSON-protocol request, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_id: Option<String>,
    /// Its operation (`X-Amz-Target`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
}

struct Proxy {
    upstream: String,
    http: reqwest::Client,
    delay: Duration,
    log: Mutex<Vec<Entry>>,
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

/// The proxy's routes, forwarding to `upstream` after `delay`.
pub fn router(upstream: &str, delay: Duration) -> axum::Router {
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        delay,
        log: Mutex::new(Vec::new()),
    });
    axum::Router::new()
        .route("/_latency/log", axum::routing::get(log).delete(clear))
        .fallback(forward)
        .with_state(proxy)
}

async fn log(State(proxy): State<Arc<Proxy>>) -> Response {
    let entries = proxy.log.lock().map(|l| l.clone()).unwrap_or_default();
    axum::Json(entries).into_response()
}

async fn clear(State(proxy): State<Arc<Proxy>>) -> StatusCode {
    if let Ok(mut l) = proxy.log.lock() {
        l.clear();
    }
    StatusCode::NO_CONTENT
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let start_us = now_us();
    let secret_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("SecretId").and_then(Value::as_str).map(str::to_owned));
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    tokio::time::sleep(proxy.delay).await;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", proxy.upstream);
    let request = crate::fault::forwarded(&proxy.http, method.clone(), &url, &headers, body);
    let response = match request.send().await {
        Ok(answer) => crate::fault::relayed(answer).await,
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    };
    let entry = Entry {
        start_us,
        end_us: now_us(),
        method: method.to_string(),
        path: uri.path().to_owned(),
        secret_id,
        target,
    };
    if let Ok(mut l) = proxy.log.lock() {
        l.push(entry);
    }
    response
}
