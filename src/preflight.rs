//! The read-only preconditions of DESIGN §7 step 2, one function for `plan` and `apply`.
//!
//! For every ref of a request, concurrently up to `concurrency`: the backend rule and client,
//! the application's view of the ref (it exists; a `sites` list equals its `siteIds`), the
//! backend state (not locked by another rotation; the target exists, is enabled and differs
//! from the current version, unless this rotation already holds the ref and is resuming).
//! `plan` runs it without the application when no application token is configured, and treats
//! a maintenance window that has not opened yet as information rather than a failure.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::app::AppClient;
use crate::backend::{Backends, Environment, ResolveError, Secret, TargetProblem};
use crate::batch::map_bounded;
use crate::config::Config;
use crate::error::{app_code, backend_code};
use crate::ids::SiteId;
use crate::request::{RefRequest, Request};
use crate::rotation::Job;

/// What the preconditions established for one ref.
#[derive(Debug)]
pub(crate) struct RefCheck {
    /// The ref.
    pub(crate) secret_ref: String,
    /// `vault`, `aws-secrets-manager`, or `unknown` when no backend could be set up.
    pub(crate) backend: &'static str,
    /// The version the pointer designates now.
    pub(crate) from: Option<String>,
    /// The version the rotation moves to.
    pub(crate) to: Option<String>,
    /// The first unmet precondition and its exit code.
    pub(crate) problem: Option<(u8, String)>,
    /// What `rotate` needs, when every precondition holds.
    pub(crate) job: Option<Job>,
}

/// Refs of one request that map to one backend location are one secret under two names: the
/// first rotation would move it, the second find it moved. Invalid input (`shared_location`),
/// reported on each later ref's line, before any call.
pub(crate) fn shared_locations(
    config: &Config,
    request: &Request,
    file: &str,
    text: &[u8],
) -> Vec<crate::diagnostic::Diagnostic> {
    // Only the variables matter here (VAULT_ADDR, AWS_REGION): no client is built.
    let env = Environment::default();
    let text = String::from_utf8_lossy(text);
    let mut seen: std::collections::HashMap<String, &crate::ids::SecretRef> =
        std::collections::HashMap::new();
    let mut out = Vec::new();
    for entry in &request.refs {
        let Some(key) = crate::backend::location_key(config, &entry.secret_ref, &env) else {
            continue;
        };
        match seen.get(&key) {
            Some(first) => out.push(
                crate::diagnostic::Diagnostic::new(
                    "shared_location",
                    file,
                    ref_position(&text, entry.secret_ref.as_str()),
                    format!(
                        "{} and {} map to the same secret ({}); one secret is rotated once",
                        first,
                        entry.secret_ref,
                        crate::backend::describe_location(config, &entry.secret_ref)
                    ),
                )
                .help("list the secret once, or give the refs distinct paths in the backend rule's template"),
            ),
            None => {
                seen.insert(key, &entry.secret_ref);
            }
        }
    }
    out
}

/// Where `name` is written as a `ref:` value in the request's text.
fn ref_position(text: &str, name: &str) -> crate::diagnostic::Pos {
    for (i, line) in text.lines().enumerate() {
        if let Some(at) = line.find(name) {
            let before = line[..at].trim_end_matches(['"', '\'']).trim_end();
            if before.ends_with("ref:") {
                let quoted = line[..at].ends_with(['"', '\'']);
                return crate::diagnostic::Pos::new(i + 1, at + 1 - usize::from(quoted));
            }
        }
    }
    crate::diagnostic::Pos::START
}

/// Where `now` stands against the request's maintenance window, for an environment that
/// requires one (DESIGN §4, §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Window {
    /// No window applies, or now is inside it.
    Open,
    /// The window has not opened yet: `apply` would be refused now, `plan` only says so.
    NotYet(String),
    /// The window has closed: no apply of this request can succeed.
    Closed(String),
}

/// Where `now` stands against the request's window.
pub(crate) fn window(config: &Config, request: &Request, now: DateTime<Utc>) -> Window {
    let required = config
        .environments
        .get(&request.environment)
        .is_some_and(|e| e.requires_maintenance);
    match request.maintenance.as_ref().and_then(|m| m.window) {
        Some(w) if required && now < w.start => Window::NotYet(format!(
            "outside the maintenance window {} – {}: it has not opened yet",
            w.start, w.end
        )),
        Some(w) if required && !w.contains(now) => Window::Closed(format!(
            "outside the maintenance window {} – {}: it has closed",
            w.start, w.end
        )),
        _ => Window::Open,
    }
}

/// Checks every ref, read-only. `app` is `None` only for a `plan` without an application token.
/// `pull_request` is the one carrying the request: a marker of the same id from another one
/// means the id is taken.
pub(crate) async fn check(
    config: &Config,
    request: &Request,
    pull_request: Option<u64>,
    app: Option<Arc<AppClient>>,
    env: &Environment,
) -> Vec<RefCheck> {
    // Clients are built once per backend rule, in order; the reads then run concurrently.
    let mut backends = Backends::default();
    let mut work = Vec::with_capacity(request.refs.len());
    for entry in &request.refs {
        work.push((
            entry.clone(),
            backends.resolve(config, &entry.secret_ref, env).await,
        ));
    }
    let id = request.id.to_string();
    let results = map_bounded(work, config.concurrency, |(entry, secret)| {
        let (app, id) = (app.clone(), id.clone());
        async move { check_ref(entry, secret, app.as_deref(), &id, pull_request).await }
    })
    .await;
    results
        .into_iter()
        .zip(&request.refs)
        .map(|(r, entry)| {
            r.unwrap_or_else(|| RefCheck {
                secret_ref: entry.secret_ref.to_string(),
                backend: "unknown",
                from: None,
                to: None,
                problem: Some((5, "the check did not complete".to_owned())),
                job: None,
            })
        })
        .collect()
}

async fn check_ref(
    entry: RefRequest,
    secret: Result<Secret, ResolveError>,
    app: Option<&AppClient>,
    rotation_id: &str,
    pull_request: Option<u64>,
) -> RefCheck {
    let mut check = RefCheck {
        secret_ref: entry.secret_ref.to_string(),
        backend: "unknown",
        from: None,
        to: entry.to.as_ref().map(ToString::to_string),
        problem: None,
        job: None,
    };
    let secret = match secret {
        Ok(s) => s,
        Err(e) => {
            let code = match &e {
                ResolveError::NoRule(_) => 2,
                ResolveError::Setup(b) => backend_code(&b.kind),
            };
            check.problem = Some((code, e.to_string()));
            return check;
        }
    };
    check.backend = secret.backend();
    // The application's view: the ref exists, and its sites are the request's.
    let mut sites = Vec::new();
    if let Some(app) = app {
        let known = match app.get_ref(&entry.secret_ref).await {
            Ok(k) => k,
            Err(e) => {
                check.problem = Some((app_code(&e), e.to_string()));
                return check;
            }
        };
        if let Some(wanted) = &entry.sites {
            let mut wanted: Vec<&str> = wanted.iter().map(SiteId::as_str).collect();
            let mut actual: Vec<&str> = known.site_ids.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            actual.sort_unstable();
            if wanted != actual {
                check.problem = Some((
                    4,
                    format!(
                        "the request names sites {} but the application says {}",
                        wanted.join(", "),
                        actual.join(", ")
                    ),
                ));
                return check;
            }
        }
        for site in &known.site_ids {
            match SiteId::parse(site) {
                Ok(s) => sites.push(s),
                // Fail closed: a site rotor cannot address would go unchecked.
                Err(_) => {
                    check.problem = Some((
                        4,
                        format!(
                            "the application names site {}, which is not a usable site id",
                            crate::diagnostic::quote(site)
                        ),
                    ));
                    return check;
                }
            }
        }
    }
    let state = match secret.read().await {
        Ok(s) => s,
        Err(e) => {
            check.problem = Some((backend_code(&e.kind), e.to_string()));
            return check;
        }
    };
    check.from = state.current.as_ref().map(ToString::to_string);
    if let Some(other) = state.id_taken(rotation_id, pull_request) {
        check.problem = Some((
            2,
            format!(
                "id_reused: rotation id {rotation_id} is already used on this ref by {}; ids are never reused, so choose a new id",
                other
                    .pull_request
                    .map_or("an earlier rotation".to_owned(), |n| format!(
                        "pull request #{n}"
                    ))
            ),
        ));
        return check;
    }
    if let Some(holder) = state.locked_by_other(rotation_id) {
        check.problem = Some((
            4,
            format!("locked by rotation {} (marker pending)", holder.rotation_id),
        ));
        return check;
    }
    let ours = state.marker_of(rotation_id, pull_request);
    match ours {
        // This rotation already touched the ref: `rotate` resumes from its marker.
        Some(m) => {
            check.from = m.from.clone().or(check.from);
            check.to = m.to.clone().or(check.to);
        }
        None => match state.target(entry.to.as_ref()) {
            Ok(target) => check.to = Some(target.to_string()),
            Err(TargetProblem::NoPointer) => {
                check.problem = Some((
                    4,
                    format!(
                        "{}; set it to the version the application uses now: `{}`",
                        TargetProblem::NoPointer,
                        secret.pointer_hint().unwrap_or_default()
                    ),
                ));
                return check;
            }
            Err(p) => {
                check.problem = Some((4, p.to_string()));
                return check;
            }
        },
    }
    check.job = Some(Job {
        secret,
        to: entry.to.clone(),
        sites,
        seen: Some(state),
    });
    check
}
