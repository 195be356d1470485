//! Two small servers for the credential tests: one that redirects every request to another
//! origin, and one that records what reaches it (method, path and the credential headers), so
//! a test can prove that a token never followed a redirect there.

use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A request the recorder received.
#[derive(Debug, Clone, Serialize)]
pub struct Seen {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The credential headers it carried (`authorization`, `x-vault-token`), values included:
    /// the test needs to see whether a token arrived.
    pub credentials: Vec<(String, String)>,
}

/// Answers every request with `307 Temporary Redirect` to the same path under `target`.
pub fn redirector(target: &str) -> axum::Router {
    let target = target.trim_end_matches('/').to_owned();
    axum::Router::new().fallback(move |req: Request| {
        let target = target.clone();
        async move {
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned();
            let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{target}{path}")) {
                resp.headers_mut().insert("location", v);
            }
            resp
        }
    })
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Records every request and answers 200 `{}`; `GET /_recorder/requests` lists them.
pub fn recorder() -> axum::Router {
    let log: Log = Arc::default();
    axum::Router::new()
        .route(
            "/_recorder/requests",
            axum::routing::get(|State(log): State<Log>| async move {
                let seen = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                axum::Json(seen)
            }),
        )
        .fallback(|State(log): State<Log>, req: Request| async move {
            let credentials = req
                .headers()
                .iter()
                .filter(|(k, _)| matches!(k.as_str(), "authorization" | "x-vault-token"))
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                .collect();
            log.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(Seen {
                    method: req.method().to_string(),
                    path: req
                        .uri()
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_owned(),
                    credentials,
                });
            let resp: Response =
                (StatusCode::OK, axum::Json(serde_json::json!({}))).into_response();
            resp
        })
        .with_state(log)
}
