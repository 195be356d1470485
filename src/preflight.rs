//! The read-only preconditions of a rotation (runbook preconditions 1–4), one function for
//! `plan` and `apply`.
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
use crate::backend::{Backends, Environment, Rejections, ResolveError, Secret, TargetProblem};
use crate::batch::map_bounded;
use crate::config::Config;
use crate::ids::SiteId;
use crate::outcome::{RefFailure, RefResult};
use crate::report::{ErrorReport, RefReport};
use crate::request::{RefRequest, Request};
use crate::rotation::Job;

/// What the preconditions established for one ref.
#[derive(Debug)]
pub(crate) struct RefCheck {
    /// The ref.
    pub(crate) secret_ref: String,
    /// `vault`, `aws-secrets-manager`, or `-` when no backend could be set up.
    pub(crate) backend: &'static str,
    /// The version the pointer designates now.
    pub(crate) from: Option<String>,
    /// The version the rotation moves to.
    pub(crate) to: Option<String>,
    /// The first unmet precondition.
    pub(crate) failure: Option<RefFailure>,
    /// What `plan` should say although it does not block: a `to` a rollback rejected, no room
    /// for rotor's keys in the secret's metadata.
    pub(crate) warnings: Vec<crate::report::Warning>,
    /// What `rotate` needs, when every precondition holds.
    pub(crate) job: Option<Job>,
}

impl RefCheck {
    /// The ref's row: `planned`, or `not_started` with why.
    pub(crate) fn report(&self) -> RefReport {
        RefReport {
            secret_ref: self.secret_ref.clone(),
            backend: self.backend,
            from: self.from.clone(),
            to: self.to.clone(),
            result: if self.failure.is_some() {
                RefResult::NotStarted
            } else {
                RefResult::Planned
            },
            checks: Vec::new(),
            audit_event_ids: Vec::new(),
            error: self.failure.as_ref().map(ErrorReport::from),
            reason: None,
        }
    }
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
/// requires one.
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
        .environment(&request.environment)
        .requires_maintenance;
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

/// The longest a run needs its backend credentials after the first change: the settle and
/// audit timeouts, and a minute for the rest.
fn run_span(config: &Config) -> std::time::Duration {
    config.checks.settle_timeout + config.app.audit_timeout + std::time::Duration::from_secs(60)
}

/// As [`run_span`], for a request rolled out in waves: each wave may take that long, and the
/// pauses come between them.
fn rollout_span(config: &Config, request: &Request) -> std::time::Duration {
    let rollout = config.environment(&request.environment).rollout;
    let waves = u32::try_from(rollout.sizes(request.refs.len()).len().max(1)).unwrap_or(u32::MAX);
    run_span(config) * waves + rollout.pause * (waves - 1)
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
    rejections: &Rejections,
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
    let action = config.app.audit_action.clone();
    let need = rollout_span(config, request);
    // One read of the audit log begun since the preconditions began answers every ref's
    // question about this id: nothing this run does has reached the log yet.
    let began = std::time::Instant::now();
    let results = map_bounded(work, config.concurrency, |(entry, secret)| {
        let (app, id, action) = (app.clone(), id.clone(), action.clone());
        let rejected = rejections
            .get(entry.secret_ref.as_str())
            .cloned()
            .unwrap_or_default();
        async move {
            let app = app.as_deref().map(|a| (a, action.as_str()));
            let run = Asked {
                rotation_id: &id,
                pull_request,
                need,
                began,
            };
            check_ref(entry, secret, app, &run, rejected).await
        }
    })
    .await;
    results
        .into_iter()
        .zip(&request.refs)
        .map(|(r, entry)| {
            r.unwrap_or_else(|| RefCheck {
                secret_ref: entry.secret_ref.to_string(),
                backend: "-",
                from: None,
                to: None,
                failure: Some(RefFailure::Interrupted),
                warnings: Vec::new(),
                job: None,
            })
        })
        .collect()
}

/// Every precondition for `apply`, for every ref, before any change: the jobs, or every ref's
/// check when any precondition fails (the window counts for every ref, unless `window_binds`
/// is false: break-glass records being outside it, and is not refused).
pub(crate) async fn jobs(
    config: &Config,
    request: &Request,
    pull_request: Option<u64>,
    app: Arc<AppClient>,
    env: &Environment,
    rejections: &Rejections,
    window_binds: bool,
) -> Result<Vec<Job>, Vec<RefCheck>> {
    let outside = match window(config, request, Utc::now()) {
        Window::Open => None,
        Window::NotYet(text) | Window::Closed(text) => Some(text),
    }
    .filter(|_| window_binds);
    let mut checks = check(config, request, pull_request, Some(app), env, rejections).await;
    // A rollout an earlier run began (a ref carries this rotation's marker) is finished by
    // its waves, which stop at the window's end themselves and record why: refusing it here
    // would leave what it did unrecorded.
    let begun = checks.iter().any(|c| {
        c.job
            .as_ref()
            .is_some_and(|j| j.marked_by(request.id.as_str(), pull_request))
    });
    if let Some(text) = outside.filter(|_| !begun) {
        for c in &mut checks {
            c.failure = Some(RefFailure::OutsideWindow(text.clone()));
        }
    }
    if checks
        .iter()
        .any(|c| c.failure.is_some() || c.job.is_none())
    {
        return Err(checks);
    }
    Ok(checks.into_iter().filter_map(|c| c.job).collect())
}

/// What `plan` shows: every ref's check, and a note for the headline when the window has not
/// opened yet (a plan is made before the window; a closed one is a failure).
pub(crate) async fn plan(
    config: &Config,
    request: &Request,
    pull_request: Option<u64>,
    app: Option<Arc<AppClient>>,
    env: &Environment,
    rejections: &Rejections,
) -> (Vec<RefCheck>, Option<String>) {
    let (closed, note) = match window(config, request, Utc::now()) {
        Window::Open => (None, None),
        Window::NotYet(text) => (None, Some(text)),
        Window::Closed(text) => (Some(text), None),
    };
    let mut checks = check(config, request, pull_request, app, env, rejections).await;
    if let Some(text) = &closed {
        for c in &mut checks {
            c.failure = Some(RefFailure::OutsideWindow(text.clone()));
        }
    }
    (checks, note)
}

/// What every ref's check asks about: the rotation, how long the run needs its credentials,
/// and when the preconditions began.
struct Asked<'a> {
    rotation_id: &'a str,
    pull_request: Option<u64>,
    need: std::time::Duration,
    began: std::time::Instant,
}

async fn check_ref(
    entry: RefRequest,
    secret: Result<Secret, ResolveError>,
    app: Option<(&AppClient, &str)>,
    run: &Asked<'_>,
    rejected: Vec<(crate::ids::VersionId, String)>,
) -> RefCheck {
    let Asked {
        rotation_id,
        pull_request,
        need,
        began,
    } = *run;
    let mut check = RefCheck {
        secret_ref: entry.secret_ref.to_string(),
        backend: "-",
        from: None,
        to: entry.to.as_ref().map(ToString::to_string),
        failure: None,
        warnings: Vec::new(),
        job: None,
    };
    let secret = match secret {
        Ok(s) => s,
        Err(ResolveError::NoRule(_)) => {
            check.failure = Some(RefFailure::NoBackendRule);
            return check;
        }
        Err(ResolveError::Setup(b)) => {
            check.failure = Some(RefFailure::Backend(b));
            return check;
        }
    };
    check.backend = secret.backend();
    // Judged after the application's view, as before the reads overlapped.
    let lasts = secret.lasts(need);
    // The application's view, the secret manager's state and the audit log's memory of this
    // id are independent reads: asked together, judged in order below.
    let known = async {
        match app {
            Some((app, _)) => Some(app.get_ref(&entry.secret_ref).await),
            None => None,
        }
    };
    let used = async {
        match app {
            Some((app, action)) => {
                Some(used_before(app, action, &entry.secret_ref, rotation_id, began).await)
            }
            None => None,
        }
    };
    let (known, state, used) = tokio::join!(known, secret.read(), used);
    // The application's view: the ref exists, and its sites are the request's.
    let mut sites = Vec::new();
    if let Some(known) = known {
        let known = match known {
            Ok(k) => k,
            Err(e) => {
                check.failure = Some(RefFailure::App(e));
                return check;
            }
        };
        if let Some(wanted) = &entry.sites {
            let mut wanted: Vec<&str> = wanted.iter().map(SiteId::as_str).collect();
            let mut actual: Vec<&str> = known.site_ids.iter().map(String::as_str).collect();
            wanted.sort_unstable();
            actual.sort_unstable();
            if wanted != actual {
                check.failure = Some(RefFailure::Sites(format!(
                    "the request names sites {} but the application says {}",
                    wanted.join(", "),
                    actual.join(", ")
                )));
                return check;
            }
        }
        for site in &known.site_ids {
            match SiteId::parse(site) {
                Ok(s) => sites.push(s),
                // Fail closed: a site rotor cannot address would go unchecked.
                Err(_) => {
                    check.failure = Some(RefFailure::Sites(format!(
                        "the application names site {}, which is not a usable site id",
                        crate::diagnostic::quote(site)
                    )));
                    return check;
                }
            }
        }
    }
    if let Err(e) = lasts {
        check.failure = Some(RefFailure::Backend(e));
        return check;
    }
    let mut state = match state {
        Ok(s) => s,
        Err(e) => {
            check.failure = Some(RefFailure::Backend(e));
            return check;
        }
    };
    state.record_rejected = rejected;
    check.from = state.current.as_ref().map(ToString::to_string);
    if let Err(e) = secret.changeable(&state, need) {
        check.failure = Some(RefFailure::Backend(e));
        return check;
    }
    if let Some(other) = state.id_taken(rotation_id, pull_request) {
        check.failure = Some(RefFailure::IdReused {
            id: rotation_id.to_owned(),
            by: other
                .pull_request
                .map_or("an earlier rotation".to_owned(), |n| {
                    format!("pull request #{n}")
                }),
        });
        return check;
    }
    if state.marker_of(rotation_id, pull_request).is_none()
        && let Some(used) = used
    {
        // The marker shows only a ref's last rotation: once another rotation re-marked the
        // ref, the application's audit log still remembers this id on it.
        match used {
            Ok(Some(_)) => {
                // The event may be another run of this rotation's, which locked and recorded
                // the ref after the state above was read: a read begun after the log's tells.
                match secret.read().await {
                    Ok(mut fresh) if fresh.marker_of(rotation_id, pull_request).is_some() => {
                        fresh.record_rejected = std::mem::take(&mut state.record_rejected);
                        check.from = fresh.current.as_ref().map(ToString::to_string);
                        state = fresh;
                    }
                    Err(e) => {
                        check.failure = Some(RefFailure::Backend(e));
                        return check;
                    }
                    Ok(_) => {
                        check.failure = Some(RefFailure::IdReused {
                            id: rotation_id.to_owned(),
                            by: "an earlier rotation, which the application's audit log records"
                                .to_owned(),
                        });
                        return check;
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                check.failure = Some(RefFailure::App(e));
                return check;
            }
        }
    }
    if let Some(holder) = state.locked_by_other(rotation_id) {
        check.failure = Some(RefFailure::Locked {
            by: holder.rotation_id.clone(),
        });
        return check;
    }
    if let Some(to) = &entry.to
        && let Some(by) = state.rejected_by(to)
    {
        check.warnings.push(crate::report::Warning {
            code: "rejected_version",
            secret_ref: entry.secret_ref.to_string(),
            message: format!("`to` names version {to}, which a rollback of rotation {by} rejected"),
        });
    }
    if let Some(room) = state.metadata_room() {
        let what = match state.revision {
            crate::backend::Revision::Vault { .. } => "custom_metadata keys",
            crate::backend::Revision::Aws { .. } => "tags",
            crate::backend::Revision::Gcp { .. } => "annotations",
        };
        check.warnings.push(crate::report::Warning {
            code: "metadata_full",
            secret_ref: entry.secret_ref.to_string(),
            message: format!(
                "the secret holds {} {what} and rotor needs {} more, but the server allows {}: apply would be refused; remove unused ones first",
                room.held, room.needed, room.limit
            ),
        });
    }
    match state.marker_of(rotation_id, pull_request) {
        // This rotation already touched the ref: `rotate` resumes from its marker.
        Some(m) => {
            check.from = m.from.as_ref().map(ToString::to_string).or(check.from);
            check.to = m.to.as_ref().map(ToString::to_string).or(check.to);
        }
        None => match state.target(entry.to.as_ref()) {
            Ok(target) => check.to = Some(target.to_string()),
            Err(TargetProblem::NoPointer) => {
                check.failure = Some(RefFailure::Target(format!(
                    "{}; set it to the version the application uses now: `{}`",
                    TargetProblem::NoPointer,
                    secret.pointer_hint().unwrap_or_default()
                )));
                return check;
            }
            Err(p) => {
                let remedy = match &p {
                    TargetProblem::NotEnabled(v, _) => secret.enable_hint(v),
                    _ => None,
                };
                check.failure = Some(RefFailure::Target(match remedy {
                    Some(r) => format!("{p}; {r}"),
                    None => p.to_string(),
                }));
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

/// An audit event of the application recording rotation `rotation_id` on `secret_ref`, if any:
/// the id was used on this ref before.
async fn used_before(
    app: &AppClient,
    action: &str,
    secret_ref: &crate::ids::SecretRef,
    rotation_id: &str,
    since: std::time::Instant,
) -> Result<Option<String>, crate::app::AppError> {
    app.find_audit_event(
        action,
        secret_ref,
        crate::app::Read::StartedAfter(since),
        20,
        |e| e.metadata["ref"] == secret_ref.as_str() && e.metadata["rotationId"] == rotation_id,
    )
    .await
}

/// What a dispatched rollback will do: each ref to move back (with its job and the rotation's
/// `from` and `to`), and each ref it leaves alone with why.
#[derive(Debug, Default)]
pub(crate) struct RollbackPlan {
    /// Index in the artifact's refs, the job, and the rotation's `from` and `to`.
    pub(crate) jobs: Vec<(usize, Job, crate::ids::VersionId, crate::ids::VersionId)>,
    /// Refs left alone, with why.
    pub(crate) skipped: Vec<(String, String)>,
}

/// Decides, from rotor's markers rather than from the artifact's word alone, which refs of the
/// rotation `meta` records a dispatched rollback moves back, and checks each before any change:
/// the artifact is a file anyone with push access could have written, so every ref to move must
/// carry this rotation's own marker (same id, same pull request, the same `from` and `to`), and
/// its `from` must be usable. A contradiction stops the run (exit 4) with nothing changed.
pub(crate) async fn rollback_plan(
    config: &Config,
    meta: &crate::artifact::ArtifactMeta,
    path: &str,
    only: &[crate::ids::SecretRef],
    app: &AppClient,
    env: &Environment,
) -> Result<RollbackPlan, crate::error::Error> {
    use crate::backend::MarkerState;
    use crate::error::Error;
    use crate::ids::{SecretRef, VersionId};
    let id = meta.rotation_id.as_str();
    let untrusted = |secret_ref: &str, why: String| {
        Error::Precondition(format!(
            "{secret_ref}: {path} is not trusted: {why}; nothing was changed (run `rotor verify`)"
        ))
    };
    let mut backends = Backends::default();
    let mut plan = RollbackPlan::default();
    for (index, m) in meta.refs.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|r| r.as_str() == m.secret_ref) {
            continue;
        }
        if m.result == "skipped" {
            // A halted rollout never started it: nothing to read, nothing to roll back.
            plan.skipped.push((
                m.secret_ref.clone(),
                "the rollout halted before it: nothing to roll back".to_owned(),
            ));
            continue;
        }
        let secret_ref = SecretRef::parse(&m.secret_ref)
            .map_err(|e| untrusted(&m.secret_ref, format!("ref: {}", e.reason)))?;
        let version = |v: &str| {
            VersionId::from_backend(v)
                .map_err(|e| untrusted(&m.secret_ref, format!("version {v:?}: {}", e.reason)))
        };
        let (from, to) = (version(&m.from)?, version(&m.to)?);
        let secret = backends.resolve(config, &secret_ref, env).await?;
        secret.lasts(run_span(config))?;
        let state = secret.read().await?;
        secret.changeable(&state, run_span(config))?;
        let marker = state.marker.as_ref().filter(|mk| mk.rotation_id == id);
        let claims_moved = m.claims_move();
        let claims_back = m.rollback.as_deref() == Some("rolled_back");
        let Some(mk) = marker else {
            if !claims_moved {
                plan.skipped.push((
                    m.secret_ref.clone(),
                    "the rotation never moved it: nothing to roll back".to_owned(),
                ));
                continue;
            }
            let why = match state.marker.as_ref() {
                Some(other) => format!(
                    "the backend's marker is rotation {}'s: the ref moved since this rotation (roll that one back first, or move it by hand)",
                    other.rotation_id
                ),
                None => format!("the backend carries no marker of rotation {id}"),
            };
            return Err(untrusted(&m.secret_ref, why));
        };
        if mk.pull_request != meta.pull_request {
            return Err(untrusted(
                &m.secret_ref,
                format!(
                    "it records pull request {} but the backend's marker of rotation {id} records {}",
                    meta.pull_request
                        .map_or("none".to_owned(), |n| format!("#{n}")),
                    mk.pull_request
                        .map_or("none".to_owned(), |n| format!("#{n}")),
                ),
            ));
        }
        if mk.from.as_ref() != Some(&from) {
            return Err(untrusted(
                &m.secret_ref,
                format!(
                    "it records a move from {from} but the backend's marker of rotation {id} records {}",
                    mk.from.as_ref().map_or("nothing", VersionId::as_str)
                ),
            ));
        }
        match mk.state {
            MarkerState::RolledBack => {
                plan.skipped
                    .push((m.secret_ref.clone(), "already rolled back".to_owned()));
                continue;
            }
            MarkerState::Done | MarkerState::Failed => {
                if !claims_moved || claims_back || mk.to.as_ref() != Some(&to) {
                    return Err(untrusted(
                        &m.secret_ref,
                        format!(
                            "it records {} {from} → {to}{} but the backend's marker of rotation {id} says {} {from} → {}",
                            m.result,
                            if claims_back { ", rolled back" } else { "" },
                            mk.state,
                            mk.to.as_ref().map_or("nothing", VersionId::as_str)
                        ),
                    ));
                }
            }
            MarkerState::Pending => {}
        }
        match state.version(&from) {
            Some(v) if v.state == crate::backend::VersionState::Enabled => {}
            Some(v) => {
                return Err(Error::Precondition(format!(
                    "{secret_ref}: the version to roll back to, {from}, is {}; it cannot be the pointer again",
                    v.state.as_str()
                )));
            }
            None => {
                return Err(Error::Precondition(format!(
                    "{secret_ref}: the version to roll back to, {from}, does not exist"
                )));
            }
        }
        let known = app.get_ref(&secret_ref).await?;
        let sites = known
            .site_ids
            .iter()
            .map(|s| SiteId::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::Precondition(format!(
                    "{secret_ref}: the application names a site that is not a usable site id"
                ))
            })?;
        plan.jobs.push((
            index,
            Job {
                secret,
                to: None,
                sites,
                seen: Some(state),
            },
            from,
            to,
        ));
    }
    Ok(plan)
}
