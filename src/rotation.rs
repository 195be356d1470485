//! The rotation procedure (DESIGN §7) for one ref, readable top-down like the runbook.
//!
//! Lock, repoint with compare-and-swap, record in the application, verify, roll back on
//! failure, confirm the audit trail, mark the result. Each step checks the marker first, so a
//! run stopped after any step and run again continues from the first step not yet done.

use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use crate::app::{AppClient, AppError, Operation};
use crate::backend::{BackendError, ErrorKind, MarkerState, RefState, Secret};
use crate::ids::{SiteId, VersionId};
use crate::request::RollbackMode;

/// How a ref's rotation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefResult {
    /// Rotated, verified, audited.
    Success,
    /// Verification failed and the pointer went back.
    RolledBack,
    /// The pointer stays on the new version but verification or the audit trail failed.
    Failed,
    /// Nothing changed: a precondition or a conflict stopped it before the pointer moved.
    NotStarted,
}

/// One verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `resolve` or `site-001 health`.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// The checks in one line, for the artifact's `Verification` field:
/// `resolve: resolve returned 4; site-001 health ok; site-002 health FAILED: status 503`.
pub fn summarise(checks: &[Check]) -> String {
    checks
        .iter()
        .map(|c| match (c.ok, c.detail.as_str()) {
            (true, "ok") => format!("{} ok", c.name),
            (true, detail) => format!("{}: {detail}", c.name),
            (false, detail) => format!("{} FAILED: {detail}", c.name),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything that happened to one ref.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefOutcome {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// The backend.
    pub backend: &'static str,
    /// The version the pointer moved from.
    pub from: Option<String>,
    /// The version it moved to.
    pub to: Option<String>,
    /// The result.
    pub result: RefResult,
    /// The checks of the rotation (and of the rollback, if any).
    pub checks: Vec<Check>,
    /// Confirmed audit event ids.
    pub audit_event_ids: Vec<String>,
    /// What happened, with times.
    pub timeline: Vec<(String, String)>,
    /// Why it did not succeed, and the exit code that stands for it.
    pub error: Option<(u8, String)>,
    /// Whether this ref holds no lock of this rotation any more: a final marker was written, or
    /// nothing was locked. When false, the artifact must not be committed as final.
    pub final_marker: bool,
    /// The version the pointer designated when rotor last saw it: what `drift` expects later.
    pub pointer: Option<String>,
    /// Another run of this same rotation holds the ref and is finishing it; this run must
    /// leave the artifact and the report to that run.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub deferred: bool,
}

/// The settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rotation id.
    pub rotation_id: String,
    /// The pull request that carried it, recorded in the marker: an id is never reused.
    pub pull_request: Option<u64>,
    /// The requester (operator of the upsert).
    pub operator: String,
    /// What happens on a failed verification.
    pub rollback: RollbackMode,
    /// How long to wait for the application to resolve the target.
    pub settle_timeout: Duration,
    /// How long to wait for the audit event.
    pub audit_timeout: Duration,
    /// The audit action.
    pub audit_action: String,
    /// The actor role the event must carry.
    pub actor_role: String,
    /// `checks.extra`, run per impacted site.
    pub extra: Vec<crate::config::ExtraCheck>,
}

/// One ref to rotate, with what the preconditions established.
#[derive(Debug, Clone)]
pub struct Job {
    /// The secret.
    pub secret: Secret,
    /// The requested target, if named.
    pub to: Option<VersionId>,
    /// The impacted sites (the application's view).
    pub sites: Vec<SiteId>,
    /// The state the preconditions read, if any: the procedure starts from it rather than
    /// reading again. Every write is checked against it, so a change since then is a conflict
    /// (nothing changed, exit 4), never a write over it.
    pub seen: Option<RefState>,
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

struct Run<'a> {
    app: &'a AppClient,
    settings: &'a Settings,
    job: &'a Job,
    outcome: RefOutcome,
}

impl<'a> Run<'a> {
    fn new(app: &'a AppClient, settings: &'a Settings, job: &'a Job) -> Self {
        Run {
            app,
            settings,
            job,
            outcome: RefOutcome {
                secret_ref: job.secret.secret_ref.to_string(),
                backend: job.secret.backend(),
                from: None,
                to: None,
                result: RefResult::NotStarted,
                checks: Vec::new(),
                audit_event_ids: Vec::new(),
                timeline: Vec::new(),
                error: None,
                final_marker: false,
                pointer: None,
                deferred: false,
            },
        }
    }

    /// The ref's state (the one the preconditions read, else a fresh read), refusing a ref
    /// locked by another rotation: the exit code and message of a refusal.
    async fn open(&mut self) -> Result<RefState, (u8, String)> {
        let state = match self.job.seen.clone() {
            Some(seen) => seen,
            None => self
                .job
                .secret
                .read()
                .await
                .map_err(|e| backend_failure(&e))?,
        };
        self.outcome.pointer = state.current.as_ref().map(ToString::to_string);
        if let Some(other) = state.id_taken(&self.settings.rotation_id, self.settings.pull_request)
        {
            let message = format!(
                "rotation id {} is already used on this ref by {}; ids are never reused",
                self.settings.rotation_id,
                other
                    .pull_request
                    .map_or("another rotation".to_owned(), |n| format!(
                        "pull request #{n}"
                    ))
            );
            return Err((2, message));
        }
        if let Some(holder) = state.locked_by_other(&self.settings.rotation_id) {
            let message = format!("locked by rotation {} (marker pending)", holder.rotation_id);
            return Err((4, message));
        }
        Ok(state)
    }

    fn note(&mut self, event: impl Into<String>) {
        self.outcome.timeline.push((now(), event.into()));
    }

    fn stop(mut self, result: RefResult, code: u8, message: String) -> RefOutcome {
        self.note(message.clone());
        if result == RefResult::NotStarted {
            self.outcome.final_marker = true;
        }
        self.outcome.result = result;
        self.outcome.error = Some((code, message));
        self.outcome
    }
}

fn backend_failure(e: &BackendError) -> (u8, String) {
    (crate::error::backend_code(&e.kind), e.to_string())
}

fn app_failure(e: &AppError) -> (u8, String) {
    (crate::error::app_code(e), e.to_string())
}

/// Rotates one ref. Never panics; every way it can end is in the outcome.
pub async fn rotate(app: &AppClient, settings: &Settings, job: &Job) -> RefOutcome {
    let mut run = Run::new(app, settings, job);
    let id = settings.rotation_id.as_str();

    // Where are we? A marker of this rotation says how far an earlier run got.
    let state = match run.open().await {
        Ok(state) => state,
        Err((code, message)) => return run.stop(RefResult::NotStarted, code, message),
    };
    let ours = state.marker_of(id, settings.pull_request).cloned();
    if let Some(m) = ours.as_ref().filter(|m| m.state != MarkerState::Pending) {
        // Already finished by an earlier run: report what the marker says.
        run.outcome.from = m.from.clone();
        run.outcome.to = m.to.clone();
        run.outcome.result = match m.state {
            MarkerState::Done => RefResult::Success,
            MarkerState::RolledBack => RefResult::RolledBack,
            _ => RefResult::Failed,
        };
        run.note(format!("already {} by an earlier run", m.state));
        run.outcome.final_marker = true;
        // A run stopped between the final marker and the artifact lost its evidence: gather
        // it again, read-only, so the artifact the re-run commits still carries it.
        regather(&mut run, m).await;
        return run.outcome;
    }
    let (from, to) = match resume_point(&state, ours.as_ref(), job.to.as_ref()) {
        Ok(pair) => pair,
        Err(message) => return run.stop(RefResult::NotStarted, 4, message),
    };
    run.outcome.from = Some(from.to_string());
    run.outcome.to = Some(to.to_string());
    if ours.as_ref().is_some_and(|m| m.rolling_back) {
        // An earlier run decided to roll back and stopped: finish that, never go forward again.
        run.note("resuming the rollback an earlier run began");
        return roll_back(run, state, &from, &to).await;
    }

    // Runbook step 3: lock, then move the pointer with compare-and-swap.
    let mut state = state;
    if ours.is_none() {
        state = match job
            .secret
            .lock(&state, id, settings.pull_request, &from, &to)
            .await
        {
            Ok(s) => s,
            Err(e) => {
                let (code, mut message) = backend_failure(&e);
                if matches!(e.kind, ErrorKind::Conflict { .. })
                    && let Ok(now) = job.secret.read().await
                    && now.marker.as_ref().is_some_and(|m| {
                        m.is_of(id, settings.pull_request) && m.state == MarkerState::Pending
                    })
                {
                    // Another run of this same rotation locked it first and carries it on.
                    message = format!(
                        "another run of rotation {id} locked this ref first and is rotating it; this run changed nothing here"
                    );
                    run.outcome.deferred = true;
                }
                return run.stop(RefResult::NotStarted, code, message);
            }
        };
        run.note(format!("locked for {id}"));
        crate::fault::point("locked");
    }
    if state.current.as_ref() == Some(&from) {
        match job.secret.repoint(&state, &from, &to).await {
            Ok(s) => state = s,
            Err(e) => {
                let (code, mut message) = backend_failure(&e);
                if matches!(e.kind, ErrorKind::Conflict { .. })
                    && let Ok(now) = job.secret.read().await
                {
                    if now.current.as_ref() == Some(&to) && now.locked_by_other(id).is_none() {
                        // Another run of this same rotation won the move and holds the ref: it
                        // finishes the rotation; releasing its lock would strand its pointer.
                        message = format!(
                            "another run of rotation {id} moved the pointer to {to} first and is finishing the rotation; this run changed nothing"
                        );
                        run.outcome.deferred = true;
                    } else {
                        // Someone else moved it: release our lock, leave their pointer.
                        let _ = job.secret.unlock(&now, id).await;
                    }
                }
                return run.stop(RefResult::NotStarted, code, message);
            }
        }
        run.note(format!("pointer {from} → {to}"));
        run.outcome.pointer = Some(to.to_string());
        crate::fault::point("repointed");
    } else if state.current.as_ref() != Some(&to) {
        let message = format!(
            "the pointer designates {} rather than {from} or {to}; another writer moved it",
            state.current.as_ref().map_or("nothing", VersionId::as_str)
        );
        if let Ok(now) = job.secret.read().await {
            let _ = job.secret.unlock(&now, id).await;
        }
        return run.stop(RefResult::NotStarted, 4, message);
    }
    if let Err(e) = job.secret.clear_pending(&state, &to).await {
        run.note(format!("pending label not cleared: {e}"));
    }

    // Runbook step 4 (record): tell the application; it emits the audit event.
    if let Err(e) = app
        .upsert(
            &job.secret.secret_ref,
            &to,
            id,
            Operation::Rotate,
            &settings.operator,
        )
        .await
    {
        // The pointer moved but the application did not record it: the version is unverified.
        let (_, message) = app_failure(&e);
        run.outcome.checks.push(Check {
            name: "record".to_owned(),
            ok: false,
            detail: message.clone(),
        });
        return match settings.rollback {
            RollbackMode::Auto => roll_back(run, state, &from, &to).await,
            RollbackMode::Manual => {
                let message = format!("{message}; rollback is manual: dispatch `rotor rollback`");
                finish_failed(run, state, 1, message).await
            }
        };
    }
    run.note(format!("recorded version {to} in the application"));
    crate::fault::point("recorded");

    // Runbook step 4 (verify): the application resolves the new version; integrations work.
    let checks = verify(&mut run, &to).await;
    let verified = checks.iter().all(|c| c.ok);
    run.outcome.checks.extend(checks);
    crate::fault::point("verified");
    if !verified {
        return match settings.rollback {
            RollbackMode::Auto => roll_back(run, state, &from, &to).await,
            RollbackMode::Manual => {
                let message =
                    "verification failed; rollback is manual: dispatch `rotor rollback`".to_owned();
                finish_failed(run, state, 1, message).await
            }
        };
    }

    // Runbook step 6: the privileged audit event is visible.
    match confirm_audit(
        app,
        settings,
        &job.secret.secret_ref,
        Operation::Rotate,
        &to,
        &[],
    )
    .await
    {
        Ok(Some(event)) => {
            run.note(format!("audit event {event} confirmed"));
            run.outcome.audit_event_ids.push(event);
            crate::fault::point("audited");
        }
        Ok(None) => {
            let message = format!(
                "no `{}` audit event for this rotation within {:?}",
                settings.audit_action, settings.audit_timeout
            );
            return finish_failed(run, state, 1, message).await;
        }
        Err(e) => {
            let (_, message) = app_failure(&e);
            return finish_failed(run, state, 1, message).await;
        }
    }

    // Mark done: the lock is released.
    match job.secret.finish(&state, id, MarkerState::Done).await {
        Ok(_) => {
            run.note("marked done");
            crate::fault::point("marked");
            run.outcome.final_marker = true;
            run.outcome.result = RefResult::Success;
            run.outcome
        }
        Err(e) => {
            // Another run of this rotation may have marked it done first: then it is done.
            if let Ok(now) = job.secret.read().await
                && now.marker.as_ref().is_some_and(|m| {
                    m.is_of(id, settings.pull_request) && m.state == MarkerState::Done
                })
            {
                run.note("marked done by another run of this rotation");
                run.outcome.final_marker = true;
                run.outcome.result = RefResult::Success;
                return run.outcome;
            }
            let (code, message) = backend_failure(&e);
            run.stop(RefResult::Failed, code, message)
        }
    }
}

/// A rollback dispatched after the rotation (DESIGN §8): moves the pointer from the rotation's
/// `to` back to its `from` with compare-and-swap, records `operation: rollback` in the
/// application, re-runs the checks, confirms the audit event and marks `rolled_back`.
///
/// When the pointer no longer designates `to`, nothing changes (exit 4) unless `force`, which
/// moves it back from wherever it is. A ref already rolled back by this rotation is reported,
/// not redone; a run stopped half-way finishes when run again, through the same marker as
/// `rotate`. `settings.operator` is the dispatcher.
pub async fn roll_back_dispatched(
    app: &AppClient,
    settings: &Settings,
    job: &Job,
    from: &VersionId,
    to: &VersionId,
    force: bool,
) -> RefOutcome {
    let mut run = Run::new(app, settings, job);
    run.outcome.from = Some(from.to_string());
    run.outcome.to = Some(to.to_string());
    let id = settings.rotation_id.as_str();
    let state = match run.open().await {
        Ok(state) => state,
        Err((code, message)) => return run.stop(RefResult::NotStarted, code, message),
    };
    let ours = state.marker_of(id, settings.pull_request).cloned();
    let mut outcome = match ours {
        // A rollback of this rotation stopped half-way: finish it.
        Some(m) if m.state == MarkerState::Pending && m.rolling_back => {
            let parse = |v: &Option<String>| v.as_deref().and_then(|s| VersionId::parse(s).ok());
            let marked_to = parse(&m.to).unwrap_or_else(|| to.clone());
            run.note("resuming the rollback an earlier run began");
            roll_back(run, state, from, &marked_to).await
        }
        Some(m) if m.state == MarkerState::RolledBack && state.current.as_ref() == Some(from) => {
            run.note("already rolled back by an earlier run");
            run.outcome.result = RefResult::RolledBack;
            run.outcome.final_marker = true;
            run.outcome
        }
        Some(m) if m.state == MarkerState::Pending => {
            let message = format!(
                "rotation {id} still holds the ref (marker pending): run its apply again to converge first"
            );
            return run.stop(RefResult::NotStarted, 4, message);
        }
        _ => {
            let Some(current) = state.current.clone() else {
                return run.stop(
                    RefResult::NotStarted,
                    4,
                    "the secret has no pointer".to_owned(),
                );
            };
            if &current == from {
                let message =
                    format!("the pointer already designates {from}: nothing to roll back");
                return run.stop(RefResult::NotStarted, 4, message);
            }
            if &current != to && !force {
                let message = format!(
                    "the pointer designates {current}, not {to}: it moved since the rotation; pass --force to roll back from {current} anyway"
                );
                return run.stop(RefResult::NotStarted, 4, message);
            }
            if &current != to {
                run.note(format!(
                    "forced: the pointer designates {current}, not {to}"
                ));
            }
            // The same lock as a rotation, with the intent to roll back in the same write.
            let locked = match job
                .secret
                .lock_for_rollback(&state, id, settings.pull_request, from, &current)
                .await
            {
                Ok(s) => s,
                Err(e) => {
                    let (code, message) = backend_failure(&e);
                    return run.stop(RefResult::NotStarted, code, message);
                }
            };
            run.note(format!("locked for the rollback of {id}"));
            crate::fault::point("locked");
            roll_back(run, locked, from, &current).await
        }
    };
    if outcome.result == RefResult::RolledBack {
        // For a dispatched rollback, rolled back is the success.
        outcome.error = None;
    }
    outcome
}

/// The checks of a move back, named so in the artifact (`rollback resolve`).
fn rollback_checks(checks: Vec<Check>) -> impl Iterator<Item = Check> {
    checks.into_iter().map(|c| Check {
        name: format!("rollback {}", c.name),
        ..c
    })
}

/// Gathers again, read-only, the checks and audit event ids of a ref an earlier run finished.
async fn regather(run: &mut Run<'_>, marker: &crate::backend::Marker) {
    let parse = |v: &Option<String>| v.as_deref().and_then(|s| VersionId::parse(s).ok());
    let (Some(from), Some(to)) = (parse(&marker.from), parse(&marker.to)) else {
        return;
    };
    let (version, operation) = match marker.state {
        MarkerState::Done => (to, Operation::Rotate),
        MarkerState::RolledBack => (from, Operation::Rollback),
        MarkerState::Pending | MarkerState::Failed => return,
    };
    let checks = verify(run, &version).await;
    if operation == Operation::Rollback {
        run.outcome.checks.extend(rollback_checks(checks));
    } else {
        run.outcome.checks.extend(checks);
    }
    if let Ok(Some(event)) = confirm_audit(
        run.app,
        run.settings,
        &run.job.secret.secret_ref,
        operation,
        &version,
        &[],
    )
    .await
    {
        run.outcome.audit_event_ids.push(event);
    }
    if run.outcome.result == RefResult::RolledBack {
        run.outcome.error = Some((1, "verification failed; rolled back".to_owned()));
    }
}

/// The versions to move between: a fresh rotation's current → target, or the `from`/`to` an
/// earlier run of this rotation recorded in its pending marker.
fn resume_point(
    state: &RefState,
    ours: Option<&crate::backend::Marker>,
    to: Option<&VersionId>,
) -> Result<(VersionId, VersionId), String> {
    if let Some(m) = ours {
        let parse = |v: &Option<String>| v.as_deref().and_then(|s| VersionId::parse(s).ok());
        return match (parse(&m.from), parse(&m.to)) {
            (Some(from), Some(to)) => Ok((from, to)),
            _ => Err("this rotation's marker lacks from/to; clear it and run again".to_owned()),
        };
    }
    let from = state
        .current
        .clone()
        .ok_or("the secret has no pointer yet")?;
    let target = state.target(to).map_err(|p| p.to_string())?;
    Ok((from, target))
}

/// Polls resolve until the application reports `version` (it caches), then checks each site.
async fn verify(run: &mut Run<'_>, version: &VersionId) -> Vec<Check> {
    let mut checks = Vec::new();
    let deadline = Instant::now() + run.settings.settle_timeout;
    let mut wait = Duration::from_millis(25);
    let resolve = loop {
        match run.app.resolve(&run.job.secret.secret_ref).await {
            Ok(r) if r.version_id.as_deref() == Some(version.as_str()) => {
                break Check {
                    name: "resolve".to_owned(),
                    ok: true,
                    detail: format!("resolve returned {version}"),
                };
            }
            Ok(r) if Instant::now() >= deadline => {
                break Check {
                    name: "resolve".to_owned(),
                    ok: false,
                    detail: format!(
                        "resolve still returned {} after {:?}",
                        r.version_id.as_deref().unwrap_or("nothing"),
                        run.settings.settle_timeout
                    ),
                };
            }
            Err(e) => {
                break Check {
                    name: "resolve".to_owned(),
                    ok: false,
                    detail: e.to_string(),
                };
            }
            Ok(_) => {
                tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    };
    let resolved = resolve.ok;
    checks.push(resolve);
    if !resolved {
        return checks;
    }
    let r = &run.job.secret.secret_ref;
    let provider = r.provider().to_owned();
    let app_base = run.app.base();
    for site in &run.job.sites {
        let name = format!("{site} health");
        checks.push(match run.app.health(site, &provider).await {
            Ok(h) if h.ok => Check {
                name,
                ok: true,
                detail: "ok".to_owned(),
            },
            Ok(h) => Check {
                name,
                ok: false,
                detail: h.detail.unwrap_or_else(|| format!("status {}", h.status)),
            },
            Err(e) => Check {
                name,
                ok: false,
                detail: e.to_string(),
            },
        });
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
            checks.push(
                match run.app.extra_check(&url, extra.status, &extra.json).await {
                    Ok((ok, detail)) => Check { name, ok, detail },
                    Err(e) => Check {
                        name,
                        ok: false,
                        detail: e.to_string(),
                    },
                },
            );
        }
    }
    checks
}

/// Looks for this rotation's audit event until `audit_timeout`.
async fn confirm_audit(
    app: &AppClient,
    settings: &Settings,
    secret_ref: &crate::ids::SecretRef,
    operation: Operation,
    version: &VersionId,
    exclude: &[String],
) -> Result<Option<String>, AppError> {
    let deadline = Instant::now() + settings.audit_timeout;
    let op = serde_json::to_value(operation).unwrap_or_default();
    let mut wait = Duration::from_millis(20);
    loop {
        let found = app
            .find_audit_event(&settings.audit_action, secret_ref, AUDIT_FRESH, 20, |e| {
                e.action == settings.audit_action
                    && e.actor_role == settings.actor_role
                    && (e.site_id.is_some() || e.tenant.is_some())
                    && e.metadata["ref"] == secret_ref.as_str()
                    && e.metadata["rotationId"] == settings.rotation_id.as_str()
                    && (e.metadata.get("operation").is_none() || e.metadata["operation"] == op)
                    && (e.metadata.get("versionId").is_none()
                        || e.metadata["versionId"] == version.as_str())
                    && !exclude.contains(&e.id)
            })
            .await?;
        if found.is_some() {
            return Ok(found);
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
        wait = (wait * 2).min(Duration::from_secs(1));
    }
}

/// How old a read of the audit log may be before a ref that has not found its event reads it
/// again; every ref of a batch shares the reads.
const AUDIT_FRESH: Duration = Duration::from_millis(50);

/// Verification failed: the pointer goes back with compare-and-swap (runbook rollback 1–4).
async fn roll_back(
    mut run: Run<'_>,
    state: RefState,
    from: &VersionId,
    to: &VersionId,
) -> RefOutcome {
    let id = run.settings.rotation_id.clone();
    let job = run.job;
    // The intent is written before the move, so a re-run after a stop anywhere past this point
    // finishes the rollback (see `rotate`).
    let state = match job.secret.intend_rollback(&state, &id).await {
        Ok(s) => s,
        Err(e) => {
            let (code, message) = backend_failure(&e);
            return finish_failed(
                run,
                state,
                code,
                format!("verification failed and the rollback could not start: {message}"),
            )
            .await;
        }
    };
    crate::fault::point("rollback-intended");
    let back = if state.current.as_ref() == Some(from) {
        run.note(format!("pointer already back on {from}"));
        state
    } else if state.current.as_ref() == Some(to) {
        match job.secret.repoint(&state, to, from).await {
            Ok(s) => s,
            Err(e) => {
                let (code, message) = backend_failure(&e);
                return finish_failed(
                    run,
                    state,
                    code,
                    format!("verification failed and the rollback did not land: {message}"),
                )
                .await;
            }
        }
    } else {
        let message = format!(
            "verification failed and the pointer designates {} rather than {to}: another writer moved it; not rolled back",
            state.current.as_ref().map_or("nothing", VersionId::as_str)
        );
        return finish_failed(run, state, 4, message).await;
    };
    run.note(format!("rolled back: pointer {to} → {from}"));
    run.outcome.pointer = Some(from.to_string());
    crate::fault::point("rolled-back");
    if let Err(e) = run
        .app
        .upsert(
            &job.secret.secret_ref,
            from,
            &id,
            Operation::Rollback,
            &run.settings.operator,
        )
        .await
    {
        run.note(format!("rollback not recorded in the application: {e}"));
    }
    crate::fault::point("rollback-recorded");
    let checks = verify(&mut run, from).await;
    run.outcome.checks.extend(rollback_checks(checks));
    let mut problems = Vec::new();
    if run
        .outcome
        .checks
        .iter()
        .any(|c| c.name.starts_with("rollback ") && !c.ok)
    {
        problems.push("the rollback's checks failed".to_owned());
    }
    let recorded = run.outcome.audit_event_ids.clone();
    match confirm_audit(
        run.app,
        run.settings,
        &job.secret.secret_ref,
        Operation::Rollback,
        from,
        &recorded,
    )
    .await
    {
        Ok(Some(event)) => {
            run.note(format!("rollback audit event {event} confirmed"));
            run.outcome.audit_event_ids.push(event);
        }
        _ => problems.push("the rollback's audit event was not confirmed".to_owned()),
    }
    match job.secret.finish(&back, &id, MarkerState::RolledBack).await {
        Ok(_) => {
            crate::fault::point("marked");
            run.outcome.final_marker = true;
        }
        Err(e) => run.note(format!("marker not written: {e}")),
    }
    if problems.is_empty() {
        run.outcome.result = RefResult::RolledBack;
        run.outcome.error = Some((1, "verification failed; rolled back".to_owned()));
    } else {
        let message = format!(
            "verification failed; rolled back, but {}",
            problems.join(" and ")
        );
        run.note(message.clone());
        run.outcome.result = RefResult::Failed;
        run.outcome.error = Some((1, message));
    }
    run.outcome
}

/// The pointer stays on the new version; the marker says `failed`, releasing the lock.
async fn finish_failed(mut run: Run<'_>, state: RefState, code: u8, message: String) -> RefOutcome {
    let id = run.settings.rotation_id.clone();
    let latest = run.job.secret.read().await.unwrap_or(state);
    match run
        .job
        .secret
        .finish(&latest, &id, MarkerState::Failed)
        .await
    {
        Ok(_) => run.outcome.final_marker = true,
        Err(e) => run.note(format!("marker not written: {e}")),
    }
    run.stop(RefResult::Failed, code.max(1), message)
}
