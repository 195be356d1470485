//! rotor-sandbox: stand-ins for the systems rotor talks to, for tests, the quickstart and the
//! benchmark. One HTTP server answers GitHub's REST API (in GitHub's real shapes, validated
//! against the official schemas), Google Cloud Secret Manager's REST API v1 (validated against
//! Google's discovery document) and the tenant application's API (`app-api.yaml`, resolving
//! through the real secret manager's pointer), driven through `/_sandbox/*` control endpoints.

pub mod app;
mod commits;
pub mod fault;
pub mod gcp;
pub mod git_http;
pub mod github;
mod graphql;
pub mod latency;
mod lost;
pub mod redirect;
pub mod schema;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The whole stand-in's routes.
pub fn router() -> axum::Router {
    github::router_with(graphql::routes())
        .merge(app::router())
        .merge(gcp::router())
}

/// A running stand-in on its own thread and runtime, stopped when dropped.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts the stand-in on `addr` (port 0 for a free one) in a background thread.
pub fn start(addr: SocketAddr) -> std::io::Result<Running> {
    serve(addr, router)
}

/// Starts a fault-injecting proxy to `upstream` on `addr` (see [`fault`]).
pub fn start_fault_proxy(
    addr: SocketAddr,
    upstream: &str,
    faults: fault::Faults,
) -> std::io::Result<Running> {
    let upstream = upstream.to_owned();
    serve(addr, move || fault::router(&upstream, faults))
}

/// Starts a proxy to `upstream` on `addr` that delays every request by `delay` and logs it
/// (see [`latency`]).
pub fn start_latency_proxy(
    addr: SocketAddr,
    upstream: &str,
    delay: std::time::Duration,
) -> std::io::Result<Running> {
    let upstream = upstream.to_owned();
    serve(addr, move || latency::router(&upstream, delay))
}

/// Serves the bare repositories under `root` over git's smart HTTP, for the token `token`
/// (see [`git_http`]).
pub fn start_git_http(
    addr: SocketAddr,
    root: std::path::PathBuf,
    token: &str,
) -> std::io::Result<Running> {
    let token = token.to_owned();
    serve(addr, move || git_http::router(root, token))
}

/// Starts a server that redirects every request to `target` (see [`redirect`]).
pub fn start_redirector(addr: SocketAddr, target: &str) -> std::io::Result<Running> {
    let target = target.to_owned();
    serve(addr, move || redirect::redirector(&target))
}

/// Starts a server that records what reaches it (see [`redirect`]).
pub fn start_recorder(addr: SocketAddr) -> std::io::Result<Running> {
    serve(addr, redirect::recorder)
}

fn serve(
    addr: SocketAddr,
    make: impl FnOnce() -> axum::Router + Send + 'static,
) -> std::io::Result<Running> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let thread = std::thread::spawn(move || {
        runtime.block_on(async move {
            let Ok(listener) = TcpListener::from_std(listener) else {
                return;
            };
            let _ = axum::serve(listener, make())
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
    });
    Ok(Running {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
