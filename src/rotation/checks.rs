//! Verification (runbook step 4): the application resolves the new version, and each impacted
//! site's integration and each `checks.extra` check passes. An outage (the application
//! unavailable, or a health answer not in the contract's shape) is no verdict: it is asked again
//! within `settle_timeout`, in every check, before the move, after it and after a rollback.

use std::time::{Duration, Instant};

use super::Run;
use crate::app::AppError;
use crate::ids::VersionId;
use crate::outcome::Check;

/// The checks of a move back, named so in the artifact (`rollback resolve`).
pub(super) fn rollback_checks(checks: Vec<Check>) -> impl Iterator<Item = Check> {
    checks.into_iter().map(|c| Check {
        name: format!("rollback {}", c.name),
        ..c
    })
}

/// Polls resolve until the application reports `version` (it caches), then checks each site's
/// integration and each `checks.extra` check.
pub(super) async fn checks(run: &mut Run<'_>, version: &VersionId) -> Vec<Check> {
    let mut checks = Vec::new();
    let settle = run.settings.settle_timeout;
    let deadline = Instant::now() + settle;
    let mut wait = Duration::from_millis(25);
    let resolve = loop {
        match answered(deadline, || run.app.resolve(&run.job.secret.secret_ref)).await {
            Ok(r) if r.version_id.as_deref() == Some(version.as_str()) => {
                break check("resolve", true, format!("resolve returned {version}"));
            }
            Ok(r) if Instant::now() >= deadline => {
                let seen = r.version_id.as_deref().unwrap_or("nothing");
                break check(
                    "resolve",
                    false,
                    format!("resolve still returned {seen} after {settle:?}"),
                );
            }
            Err(e) => break check("resolve", false, e.to_string()),
            Ok(_) => {
                tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    };
    let resolved = resolve.ok;
    run.note(check_line(&resolve));
    checks.push(resolve);
    if !resolved {
        return checks;
    }
    let r = &run.job.secret.secret_ref;
    let provider = r.provider().to_owned();
    let app_base = run.app.base();
    for site in &run.job.sites {
        let name = format!("{site} health");
        let within = grace(deadline);
        let health = match answered(within, || run.app.health(site, &provider)).await {
            Ok(h) if h.ok => check(&name, true, "ok".to_owned()),
            Ok(h) => check(
                &name,
                false,
                h.detail.unwrap_or_else(|| format!("status {}", h.status)),
            ),
            Err(e) => check(&name, false, e.to_string()),
        };
        run.note(check_line(&health));
        checks.push(health);
        for extra in &run.settings.extra {
            let url = extra.url.render(&[
                ("app", &app_base),
                ("site", site.as_str()),
                ("ref", r.as_str()),
                ("slug", r.slug()),
                ("provider", r.provider()),
                ("key", r.key()),
            ]);
            let name = format!("{site} {}", extra.name);
            let within = grace(deadline);
            let asked = answered(within, || {
                run.app.extra_check(&url, extra.status, &extra.json)
            });
            let extra = match asked.await {
                Ok((ok, detail)) => check(&name, ok, detail),
                Err(e) => check(&name, false, e.to_string()),
            };
            run.note(check_line(&extra));
            checks.push(extra);
        }
    }
    checks
}

/// How long a check may ask again through an outage: until the verification's own deadline
/// (`settle_timeout` from its start), and at least a few seconds more for a check that comes
/// after a slow resolve, so that one pass over many sites stays within about one settle time.
fn grace(deadline: Instant) -> Instant {
    deadline.max(Instant::now() + Duration::from_secs(5))
}

/// Asks `call` until it answers or `deadline` passes: an outage (the application unavailable
/// after the client's own retries, or a health answer not in the contract's shape) is no
/// verdict, so it is asked again; any other answer, a refusal included, is final.
async fn answered<T, F, Fut>(deadline: Instant, mut call: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    let mut wait = Duration::from_millis(50);
    loop {
        match call().await {
            Err(AppError::Unavailable { .. }) if Instant::now() + wait < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            answer => return answer,
        }
    }
}

/// A check as a step of the log: `site-001 health: ok`, `resolve FAILED: resolve still
/// returned 3 after 120s`.
fn check_line(c: &Check) -> String {
    crate::outcome::summarise(std::slice::from_ref(c))
}

fn check(name: &str, ok: bool, detail: String) -> Check {
    Check {
        name: name.to_owned(),
        ok,
        detail,
    }
}
