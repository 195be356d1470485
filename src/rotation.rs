//! The rotation procedure for one ref, readable top-down like the runbook: where are we, lock
//! and move the pointer, record, verify (roll back on failure), confirm the audit trail, mark
//! the result. Each step is a function of [`steps`]; every way a ref can end is in its
//! [`RefOutcome`]. A run stopped after any step and run again continues from the first step not
//! yet done, because every step starts from rotor's marker.

mod audit;
mod checks;
mod steps;
pub mod waves;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};

use crate::app::{AppClient, Operation};
use crate::backend::{Marker, MarkerState, RefState, Secret};
use crate::batch::map_bounded;
use crate::ids::{SiteId, VersionId};
use crate::outcome::{RefFailure, RefOutcome, RefResult, Step as TimedStep};
use crate::progress::Progress;
use crate::request::RollbackMode;

pub use crate::outcome::{Check, summarise};

/// The settings of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rotation id.
    pub rotation_id: String,
    /// The pull request that carried it, recorded in the marker: an id is never reused.
    pub pull_request: Option<u64>,
    /// The requester (operator of the upsert); for a rollback, the dispatcher.
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

impl Job {
    /// The move the preconditions found: from the pointer they read, to the requested target
    /// or the one the pending versions give.
    pub fn planned_move(&self) -> (Option<String>, Option<String>) {
        let seen = self.seen.as_ref();
        let from = seen
            .and_then(|s| s.current.as_ref())
            .map(ToString::to_string);
        let to = self
            .to
            .clone()
            .or_else(|| seen.and_then(|s| s.target(None).ok()))
            .map(|v| v.to_string());
        (from, to)
    }

    /// Whether the preconditions found a marker of rotation `id` of `pull_request` on the ref:
    /// an earlier run of this rotation began it.
    pub fn marked_by(&self, id: &str, pull_request: Option<u64>) -> bool {
        self.seen
            .as_ref()
            .and_then(|s| s.marker.as_ref())
            .is_some_and(|m| m.is_of(id, pull_request))
    }
}

/// A step ended the ref's work; its outcome already says how.
pub(crate) struct Stopped;

/// What a step returns: its value, or the end of this ref's work.
pub(crate) type StepResult<T> = Result<T, Stopped>;

/// One ref's work in progress.
pub(crate) struct Run<'a> {
    pub(crate) app: &'a AppClient,
    pub(crate) settings: &'a Settings,
    pub(crate) job: &'a Job,
    pub(crate) outcome: RefOutcome,
    /// The audit event the application's answer to the upsert named, if it named one.
    pub(crate) expected_event: Option<String>,
    /// Events matching this rotation's that were there before the upsert: never its proof.
    pub(crate) audit_baseline: Vec<String>,
    /// When this ref's work began.
    pub(crate) began: Instant,
    /// Whether this is a dispatched rollback (else a rotation, rolled back only when its
    /// verification fails).
    pub(crate) dispatched: bool,
    last: Instant,
}

impl<'a> Run<'a> {
    fn new(app: &'a AppClient, settings: &'a Settings, job: &'a Job) -> Self {
        Run {
            app,
            settings,
            job,
            outcome: RefOutcome::new(job.secret.secret_ref.to_string(), job.secret.backend()),
            expected_event: None,
            audit_baseline: Vec::new(),
            began: Instant::now(),
            dispatched: false,
            last: Instant::now(),
        }
    }

    pub(crate) fn id(&self) -> &'a str {
        &self.settings.rotation_id
    }

    /// Records a step that just ended, with how long it took.
    pub(crate) fn note(&mut self, what: impl Into<String>) {
        let now = Instant::now();
        self.outcome.steps.push(TimedStep {
            at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
            what: what.into(),
            took: now.duration_since(self.last),
        });
        self.last = now;
    }

    /// Ends the ref's work with `result` because of `failure`. A ref that did not start holds
    /// no lock of this rotation.
    pub(crate) fn stop(&mut self, result: RefResult, failure: RefFailure) -> Stopped {
        self.note(failure.to_string());
        if result == RefResult::NotStarted {
            self.outcome.settled = true;
        }
        self.outcome.result = result;
        self.outcome.failure = Some(failure);
        Stopped
    }

    /// The ref's state (the one the preconditions read, else a fresh read), refusing an id
    /// another pull request used and a ref another rotation holds.
    async fn open(&mut self) -> StepResult<RefState> {
        let state = match self.job.seen.clone() {
            Some(seen) => seen,
            None => match self.job.secret.read().await {
                Ok(state) => state,
                Err(e) => return Err(self.stop(RefResult::NotStarted, RefFailure::Backend(e))),
            },
        };
        self.outcome.pointer = state.current.as_ref().map(ToString::to_string);
        let (id, pr) = (self.id(), self.settings.pull_request);
        if let Some(other) = state.id_taken(id, pr) {
            let failure = RefFailure::IdReused {
                id: id.to_owned(),
                by: other
                    .pull_request
                    .map_or("an earlier rotation".to_owned(), |n| {
                        format!("pull request #{n}")
                    }),
            };
            return Err(self.stop(RefResult::NotStarted, failure));
        }
        if let Some(holder) = state.locked_by_other(id) {
            let failure = RefFailure::Locked {
                by: holder.rotation_id.clone(),
            };
            return Err(self.stop(RefResult::NotStarted, failure));
        }
        Ok(state)
    }

    /// This rotation's marker, if it is there.
    fn ours(&self, state: &RefState) -> Option<Marker> {
        state
            .marker_of(self.id(), self.settings.pull_request)
            .cloned()
    }

    /// The versions to move between: an earlier run's, from its pending marker, or the
    /// current version and the target.
    fn resume_point(&mut self, state: &RefState) -> StepResult<(VersionId, VersionId)> {
        let pair = match self.ours(state) {
            Some(Marker {
                from: Some(from),
                to: Some(to),
                ..
            }) => Ok((from, to)),
            Some(_) => Err(RefFailure::Target(
                "this rotation's marker lacks from/to; clear it and run again".to_owned(),
            )),
            None => match state.current.clone() {
                None => Err(RefFailure::Target(
                    crate::backend::TargetProblem::NoPointer.to_string(),
                )),
                Some(from) => state
                    .target(self.job.to.as_ref())
                    .map(|to| (from, to))
                    .map_err(|p| RefFailure::Target(p.to_string())),
            },
        };
        match pair {
            Ok((from, to)) => {
                self.outcome.from = Some(from.to_string());
                self.outcome.to = Some(to.to_string());
                Ok((from, to))
            }
            Err(failure) => Err(self.stop(RefResult::NotStarted, failure)),
        }
    }
}

/// Rotates every job, at most `concurrency` at a time, each ref independently; a ref whose task
/// stopped unexpectedly is reported as interrupted, not lost.
pub async fn rotate_all(
    app: Arc<AppClient>,
    settings: Arc<Settings>,
    jobs: Vec<Job>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Vec<RefOutcome> {
    each_ref(
        jobs,
        concurrency,
        progress,
        |job| interrupted(job, None),
        |job| {
            let (app, settings) = (app.clone(), settings.clone());
            async move { rotate(&app, &settings, &job).await }
        },
    )
    .await
}

/// Rolls every job back from its `to` to its `from` (a dispatched rollback), at most
/// `concurrency` at a time.
pub async fn roll_back_all(
    app: Arc<AppClient>,
    settings: Arc<Settings>,
    jobs: Vec<(Job, VersionId, VersionId)>,
    force: bool,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Vec<RefOutcome> {
    each_ref(
        jobs,
        concurrency,
        progress,
        |(job, from, to)| interrupted(job, Some((from, to))),
        |(job, from, to)| {
            let (app, settings) = (app.clone(), settings.clone());
            async move { roll_back_dispatched(&app, &settings, &job, &from, &to, force).await }
        },
    )
    .await
}

/// Runs `work` on every item, at most `concurrency` at a time, telling `progress` as each ref
/// settles; an item whose task stopped unexpectedly is reported as `stand_in` describes it.
async fn each_ref<T, F, Fut>(
    items: Vec<T>,
    concurrency: usize,
    progress: Arc<Progress>,
    stand_in: impl Fn(&T) -> RefOutcome,
    work: F,
) -> Vec<RefOutcome>
where
    T: Send + 'static,
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = RefOutcome> + Send + 'static,
{
    let stand_ins: Vec<RefOutcome> = items.iter().map(stand_in).collect();
    let done = map_bounded(items, concurrency, |item| {
        let (outcome, progress) = (work(item), progress.clone());
        async move {
            let outcome = outcome.await;
            progress.settled(&outcome);
            outcome
        }
    });
    progress
        .around(done)
        .await
        .into_iter()
        .zip(stand_ins)
        .map(|(outcome, stand_in)| outcome.unwrap_or(stand_in))
        .collect()
}

/// A ref whose task stopped unexpectedly (with the rollback's versions, for a rollback).
fn interrupted(job: &Job, versions: Option<(&VersionId, &VersionId)>) -> RefOutcome {
    RefOutcome {
        from: versions.map(|(from, _)| from.to_string()),
        to: versions.map(|(_, to)| to.to_string()),
        result: RefResult::Failed,
        failure: Some(RefFailure::Interrupted),
        ..RefOutcome::new(job.secret.secret_ref.to_string(), job.secret.backend())
    }
}

/// Rotates one ref. Never panics; every way it can end is in the outcome.
pub async fn rotate(app: &AppClient, settings: &Settings, job: &Job) -> RefOutcome {
    let mut run = Run::new(app, settings, job);
    let _ = runbook(&mut run).await;
    run.outcome
}

/// The runbook's steps 2–6 for one ref.
async fn runbook(run: &mut Run<'_>) -> StepResult<()> {
    // Where are we? A marker of this rotation says how far an earlier run got.
    let state = run.open().await?;
    if let Some(marker) = run.ours(&state).filter(|m| m.state != MarkerState::Pending) {
        return steps::report_finished(run, &marker).await;
    }
    let (from, to) = run.resume_point(&state)?;
    if run.ours(&state).is_some_and(|m| m.rolling_back) {
        // An earlier run decided to roll back and stopped: finish that, never go forward again.
        run.note("resuming the rollback an earlier run began");
        return steps::roll_back(run, state, &from, &to).await;
    }
    // Runbook 2–3: the lock and the move, compare-and-swap; beside them, the events of this
    // rotation already in the audit log, which never confirm it.
    let fresh = run.ours(&state).is_none();
    let baseline = audit::Baseline::of(run, Operation::Rotate, &to, fresh).read();
    let (moved, baseline) = tokio::join!(steps::lock_and_move(run, state, &from, &to), baseline);
    let state = moved?;
    run.audit_baseline = baseline;
    // Runbook 4: record in the application (beside it, the pending label leaves the new
    // version: it only marked what was provisioned), then verify (roll back on failure) while
    // the audit event is looked up (runbook 6): both hold before the final marker.
    let secret = &run.job.secret;
    let (cleared, recorded) =
        tokio::join!(secret.clear_pending(&state, &to), steps::record(run, &to));
    if let Err(e) = cleared {
        run.note(format!("pending label not cleared: {e}"));
    }
    if let Err(failure) = recorded {
        return steps::on_failed_verification(run, state, &from, &to, failure).await;
    }
    let audited = match steps::verify_and_audit(run, &to).await {
        Ok(audited) => audited,
        Err((failure, found)) => {
            if let Some(event) = found {
                // Found before the verification failed: the rollback cites it with its own,
                // by this id, without another search.
                run.expected_event = Some(event);
            }
            return steps::on_failed_verification(run, state, &from, &to, failure).await;
        }
    };
    steps::confirm_audit(run, &state, audited).await?;
    // Mark done: the lock is released.
    steps::finish(run, state).await
}

/// A rollback dispatched after the rotation: moves the pointer from the rotation's `to` back
/// to its `from` with compare-and-swap, records `operation: rollback` in the application,
/// re-runs the checks, confirms the audit event and marks `rolled_back`.
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
    run.dispatched = true;
    run.outcome.from = Some(from.to_string());
    run.outcome.to = Some(to.to_string());
    let _ = dispatched(&mut run, from, to, force).await;
    if run.outcome.result == RefResult::RolledBack {
        // For a dispatched rollback, rolled back is the success.
        run.outcome.failure = None;
    }
    run.outcome
}

async fn dispatched(
    run: &mut Run<'_>,
    from: &VersionId,
    to: &VersionId,
    force: bool,
) -> StepResult<()> {
    let state = run.open().await?;
    match run.ours(&state) {
        // A rollback of this rotation stopped half-way: finish it.
        Some(m) if m.state == MarkerState::Pending && m.rolling_back => {
            let marked_to = m.to.clone().unwrap_or_else(|| to.clone());
            run.note("resuming the rollback an earlier run began");
            steps::roll_back(run, state, from, &marked_to).await
        }
        Some(m) if m.state == MarkerState::RolledBack && state.current.as_ref() == Some(from) => {
            run.note("already rolled back by an earlier run");
            steps::recall_rollback_event(run, from).await;
            run.outcome.result = RefResult::RolledBack;
            run.outcome.settled = true;
            Ok(())
        }
        Some(m) if m.state == MarkerState::Pending => {
            let failure = RefFailure::Locked {
                by: format!(
                    "{} (its apply has not finished: run it again to converge first)",
                    run.id()
                ),
            };
            Err(run.stop(RefResult::NotStarted, failure))
        }
        _ => {
            let current = steps::rollback_start(run, &state, from, to, force)?;
            let locked = steps::lock_for_rollback(run, &state, from, &current).await?;
            steps::roll_back(run, locked, from, &current).await
        }
    }
}
