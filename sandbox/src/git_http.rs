//! Git's smart HTTP protocol over the bare repositories of a directory, through the real
//! `git http-backend` (run as a CGI program), so that a push runs the repository's hooks as a
//! push to GitHub does: a `pre-receive` hook can refuse it with its own message, the way
//! GitHub's branch protection answers `GH006: Protected branch update failed`.
//!
//! Every request must carry `Authorization: Basic` with the user `x-access-token` and the
//! token the server was started with, as GitHub expects from a workflow; anything else is a
//! `401`. Requests are logged (`GET /_git/requests`) with whether they carried the token.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::io::AsyncWriteExt as _;

struct Server {
    root: PathBuf,
    token: String,
    log: Mutex<Vec<serde_json::Value>>,
}

/// The routes: the repositories under `root`, each at `/<name>.git`.
pub fn router(root: PathBuf, token: String) -> axum::Router {
    let server = Arc::new(Server {
        root,
        token,
        log: Mutex::new(Vec::new()),
    });
    axum::Router::new()
        .route(
            "/_git/requests",
            axum::routing::get(|State(s): State<Arc<Server>>| async move {
                let log = s.log.lock().map(|l| l.clone()).unwrap_or_default();
                axum::Json(log)
            }),
        )
        .fallback(serve)
        .with_state(server)
}

async fn serve(
    State(server): State<Arc<Server>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("x-access-token:{}", server.token));
    let authorized = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Basic ")
                .or_else(|| v.strip_prefix("basic "))
        })
        .is_some_and(|v| v == expected);
    if let Ok(mut log) = server.log.lock() {
        log.push(serde_json::json!({
            "method": method.as_str(),
            "path": uri.path(),
            "authorized": authorized,
        }));
    }
    if !authorized {
        let mut resp = (StatusCode::UNAUTHORIZED, "authentication required").into_response();
        resp.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Basic realm=\"git\""),
        );
        return resp;
    }
    match cgi(&server, &method, &uri, &headers, body).await {
        Ok(resp) => resp,
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Runs `git http-backend` for one request and turns its CGI answer into a response.
async fn cgi(
    server: &Server,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> std::io::Result<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &server.root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", &server.root)
        .env("REMOTE_USER", "x-access-token")
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body).await?;
    }
    let out = child.wait_with_output().await?;
    let text = out.stdout;
    let split = text
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, sep)) = split else {
        return Ok((StatusCode::BAD_GATEWAY, "no CGI headers").into_response());
    };
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    for line in String::from_utf8_lossy(&text[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("200");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|c| StatusCode::from_u16(c).ok())
                .unwrap_or(StatusCode::OK);
        } else if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response_headers.insert(n, v);
        }
    }
    let body = text[at + sep..].to_vec();
    Ok((status, response_headers, body).into_response())
}
