//! The steps of the procedure, each a function of one ref's [`Run`]: the lock and the move,
//! recording in the application, verification, the rollback, the audit confirmation and the
//! final marker; with the race and resume branches each step needs, named.

use std::time::{Duration, Instant};

use super::audit::{Baseline, Lookup, beside_checks};
use super::checks::{checks, rollback_checks};
use super::{Run, StepResult, Stopped};
use crate::app::{AppError, Operation};
use crate::backend::{BackendError, ErrorKind, LockMoveError, Marker, MarkerState, RefState};
use crate::ids::VersionId;
use crate::outcome::{Check, RefFailure, RefResult};
use crate::request::RollbackMode;

/// Takes the lock and moves the pointer from `from` to `to` (runbook steps 2–3), unless an
/// earlier run of this rotation already did. A conflict leaves another writer's pointer where
/// it is and releases this rotation's own lock; a conflict with another run of this same
/// rotation defers to it.
pub(crate) async fn lock_and_move(
    run: &mut Run<'_>,
    state: RefState,
    from: &VersionId,
    to: &VersionId,
) -> StepResult<RefState> {
    let id = run.id();
    let resuming = run.ours(&state).is_some();
    if resuming && state.current.as_ref() == Some(to) {
        return Ok(state);
    }
    if resuming && state.current.as_ref() != Some(from) {
        return Err(moved_elsewhere(run, &state, from, to).await);
    }
    let secret = &run.job.secret;
    let pr = run.settings.pull_request;
    let moved = if resuming {
        // Locked by an earlier run that stopped before the move: move now.
        secret
            .repoint(&state, from, to)
            .await
            .map_err(|e| LockMoveError::Move(e, Box::new(state.clone())))
    } else if secret.moves_with_its_lock() {
        // Vault/OpenBao: the lock and the move are one check-and-set write.
        let moved = secret.lock_and_repoint(&state, id, pr, from, to).await;
        if moved.is_ok() {
            run.note(format!("locked for {id}"));
            crate::fault::point("locked");
        }
        moved
    } else {
        match secret.lock(&state, id, pr, from, to).await {
            Err(e) => Err(LockMoveError::Lock(e)),
            Ok(locked) => {
                run.note(format!("locked for {id}"));
                crate::fault::point("locked");
                secret
                    .repoint(&locked, from, to)
                    .await
                    .map_err(|e| LockMoveError::Move(e, Box::new(locked)))
            }
        }
    };
    let now = match moved {
        Ok(now) => now,
        Err(e) => lost_the_move(run, e, from, to).await?,
    };
    run.note(format!("pointer {from} → {to}"));
    run.outcome.pointer = Some(to.to_string());
    crate::fault::point("repointed");
    Ok(now)
}

/// The pointer designates neither `from` nor `to` under this rotation's own lock: another
/// writer moved it. The lock is released; their pointer stays.
async fn moved_elsewhere(
    run: &mut Run<'_>,
    state: &RefState,
    from: &VersionId,
    to: &VersionId,
) -> Stopped {
    let message = format!(
        "the pointer designates {} rather than {from} or {to}; another writer moved it",
        state.current.as_ref().map_or("nothing", VersionId::as_str)
    );
    // Their pointer stays; this rotation's lock goes, or the ref says it is still held.
    let current = state.current.clone();
    stop_before_move(run, RefFailure::PointerMoved(message), current.as_ref()).await
}

/// How many times a lock left by a failure before the move is read and released, with a
/// growing pause between rounds, before the ref is reported unsettled. A lock left behind
/// blocks every later rotation of the ref, so this gets more patience than one call's retries.
const RELEASE_ROUNDS: u32 = 4;

/// Ends the ref's work before the move because of `failure`, releasing this rotation's
/// `pending` lock if it holds one while the pointer is still on `pointer`. A lock that cannot
/// be released leaves the ref unsettled, reported as such, so that no run records it as
/// untouched while it is locked.
async fn stop_before_move(
    run: &mut Run<'_>,
    failure: RefFailure,
    pointer: Option<&VersionId>,
) -> Stopped {
    match release(run, pointer).await {
        Ok(()) => run.stop(RefResult::NotStarted, failure),
        Err(why) => {
            let stopped = run.stop(
                RefResult::NotStarted,
                RefFailure::Unsettled(format!(
                    "{failure}; this rotation's lock could not be released ({why}): run apply again to converge"
                )),
            );
            run.outcome.settled = false;
            stopped
        }
    }
}

/// Releases this rotation's `pending` lock, patiently, if the pointer is still on `pointer`.
async fn release(run: &Run<'_>, pointer: Option<&VersionId>) -> Result<(), String> {
    let (id, pr) = (run.id(), run.settings.pull_request);
    let mut last = String::new();
    for round in 0..RELEASE_ROUNDS {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(500 << round)).await;
        }
        let now = match run.job.secret.read().await {
            Ok(now) => now,
            Err(e) => {
                last = e.to_string();
                continue;
            }
        };
        let ours = now
            .marker
            .as_ref()
            .is_some_and(|m| m.is_of(id, pr) && m.state == MarkerState::Pending);
        if !ours {
            return Ok(());
        }
        if now.current.as_ref() != pointer {
            return Err(format!(
                "the pointer designates {} under this rotation's lock",
                now.current.as_ref().map_or("nothing", VersionId::as_str)
            ));
        }
        match run.job.secret.unlock(&now, id).await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Pauses before round `round` of a patient step (none before the first).
async fn pause(round: u32) {
    if round > 0 {
        tokio::time::sleep(Duration::from_millis(500 << round)).await;
    }
}

/// Whether a backend error is worth more patience: the service stayed unavailable.
fn transient(e: &BackendError) -> bool {
    matches!(e.kind, ErrorKind::Unavailable { .. })
}

/// What a fresh read says about a write being retried patiently.
enum Found {
    /// The write is there already (an earlier attempt's answer was lost, or another run of
    /// this rotation wrote it).
    Landed,
    /// Not there: send it again, against this state.
    Again,
    /// The state changed in a way this write must not override.
    Stop,
}

/// Sends `write` patiently: a ref left half-way blocks every later rotation of it, so an
/// outage outlasting one call's retries is waited out for a few rounds. Each round after the
/// first starts from a fresh read, which `judge` reads; `again` says which errors are worth
/// another round. `call` names the step in errors.
async fn patiently<W, F>(
    run: &Run<'_>,
    call: &str,
    seen: RefState,
    judge: impl Fn(&RefState) -> Found,
    again: impl Fn(&BackendError) -> bool,
    write: W,
) -> Result<RefState, BackendError>
where
    W: Fn(RefState) -> F,
    F: std::future::Future<Output = Result<RefState, BackendError>>,
{
    let mut latest = seen;
    let mut last: Option<BackendError> = None;
    for round in 0..RELEASE_ROUNDS {
        pause(round).await;
        if round > 0 {
            match run.job.secret.read().await {
                Ok(now) => match judge(&now) {
                    Found::Landed => return Ok(now),
                    Found::Again => latest = now,
                    Found::Stop => {
                        return Err(last.unwrap_or_else(|| {
                            run.job.secret.error(
                                call,
                                ErrorKind::Conflict {
                                    detail: "the marker changed under this rotation".to_owned(),
                                },
                            )
                        }));
                    }
                },
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            }
        }
        match write(latest.clone()).await {
            Ok(now) => return Ok(now),
            Err(e) if again(&e) => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        run.job.secret.error(
            call,
            ErrorKind::Unavailable {
                detail: "no attempt was made".to_owned(),
            },
        )
    }))
}

/// Writes this rotation's final marker `state`, patiently. The read may show the marker
/// already final, written by this run's lost attempt or by another run of this rotation; after
/// a check-and-set conflict the write is sent again only while the marker is still this
/// rotation's `pending`.
async fn mark(
    run: &Run<'_>,
    seen: &RefState,
    state: MarkerState,
) -> Result<RefState, BackendError> {
    let (id, pr) = (run.id(), run.settings.pull_request);
    patiently(
        run,
        "mark",
        seen.clone(),
        |now| match now
            .marker
            .as_ref()
            .filter(|m| m.is_of(id, pr))
            .map(|m| m.state)
        {
            Some(s) if s == state => Found::Landed,
            // Still ours, but a final marker also says where the pointer is: `done` on the
            // rotation's `to`, `rolled_back` on its `from`. A pointer someone moved since is
            // not written over with a record of ours.
            Some(MarkerState::Pending) => {
                let expected = now.marker.as_ref().and_then(|m| match state {
                    MarkerState::Done => m.to.as_ref(),
                    MarkerState::RolledBack => m.from.as_ref(),
                    _ => None,
                });
                if expected.is_some_and(|v| now.current.as_ref() != Some(v)) {
                    Found::Stop
                } else {
                    Found::Again
                }
            }
            // Another writer's marker, or another final state: not ours to change.
            _ => Found::Stop,
        },
        |e| transient(e) || matches!(e.kind, ErrorKind::Conflict { .. }),
        |latest| async move { run.job.secret.finish(&latest, id, state).await },
    )
    .await
}

/// Where a lock and move that failed without a definite answer left the ref, read patiently:
/// this rotation's move landed (its lock, the pointer on `to`), or it did not.
async fn landed(run: &Run<'_>, to: &VersionId) -> Option<RefState> {
    let (id, pr) = (run.id(), run.settings.pull_request);
    for round in 0..RELEASE_ROUNDS {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(500 << round)).await;
        }
        if let Ok(now) = run.job.secret.read().await {
            let ours = now
                .marker
                .as_ref()
                .is_some_and(|m| m.is_of(id, pr) && m.state == MarkerState::Pending);
            return (ours && now.current.as_ref() == Some(to)).then_some(now);
        }
    }
    None
}

/// The lock or the move failed. Without a definite answer (the service stayed unavailable,
/// or the read after a lost answer failed), the move may have landed: a patient read finds
/// out, and a landed move carries on. Otherwise nothing moved: this rotation's lock is
/// released. A conflict is read again to learn who won: another run of this same rotation
/// (defer to it), another rotation (locked), or another writer (release this rotation's lock
/// if it took one, and leave their pointer).
async fn lost_the_move(
    run: &mut Run<'_>,
    error: LockMoveError,
    from: &VersionId,
    to: &VersionId,
) -> StepResult<RefState> {
    let id = run.id();
    let pr = run.settings.pull_request;
    let e = error.error().clone();
    if !matches!(e.kind, ErrorKind::Conflict { .. }) {
        if let Some(now) = landed(run, to).await {
            run.note("the move landed although its answer was lost");
            return Ok(now);
        }
        return Err(stop_before_move(run, RefFailure::Backend(e), Some(from)).await);
    }
    let Ok(now) = run.job.secret.read().await else {
        return Err(stop_before_move(run, RefFailure::Backend(e), Some(from)).await);
    };
    if let Some(marker) = run.ours(&now).filter(|m| m.state != MarkerState::Pending) {
        // The preconditions' read is older than the ref's work: another run of this rotation
        // finished the ref in between. Its result is this rotation's, reported as a re-run
        // reports it, so both runs commit the same record.
        run.note(format!(
            "another run of rotation {id} finished this ref meanwhile"
        ));
        run.outcome.pointer = now.current.as_ref().map(ToString::to_string);
        report_finished(run, &marker).await?;
        return Err(Stopped);
    }
    let ours_pending = now
        .marker
        .as_ref()
        .is_some_and(|m| m.is_of(id, pr) && m.state == MarkerState::Pending);
    let failure = if ours_pending && now.current.as_ref() == Some(to) {
        RefFailure::Deferred(format!(
            "another run of rotation {id} moved the pointer to {to} first and is finishing the rotation; this run changed nothing"
        ))
    } else if ours_pending
        && now.current.as_ref() == Some(from)
        && matches!(error, LockMoveError::Lock(_))
    {
        RefFailure::Deferred(format!(
            "another run of rotation {id} locked this ref first and is rotating it; this run changed nothing here"
        ))
    } else if let Some(holder) = now.locked_by_other(id) {
        RefFailure::Locked {
            by: holder.rotation_id.clone(),
        }
    } else {
        // Another writer won: their pointer stays, this rotation's lock goes.
        let current = now.current.clone();
        return Err(stop_before_move(run, RefFailure::Backend(e), current.as_ref()).await);
    };
    Err(run.stop(RefResult::NotStarted, failure))
}

/// Runbook step 4 (record): tells the application which version the ref designates now; the
/// application emits the audit event. Remembers that event's id when the answer names it.
pub(crate) async fn record(run: &mut Run<'_>, to: &VersionId) -> Result<(), RefFailure> {
    let secret_ref = &run.job.secret.secret_ref;
    let id = run.id();
    match run
        .app
        .upsert(
            secret_ref,
            to,
            id,
            Operation::Rotate,
            &run.settings.operator,
        )
        .await
    {
        Ok(event) => {
            run.expected_event = event;
            run.note(format!("recorded version {to} in the application"));
            crate::fault::point("recorded");
            Ok(())
        }
        Err(e) => {
            // The pointer moved but the application did not record it: the version is
            // unverified.
            let message = e.to_string();
            run.outcome.checks.push(Check {
                name: "record".to_owned(),
                ok: false,
                detail: message.clone(),
            });
            Err(RefFailure::NotRecorded(message))
        }
    }
}

/// Runbook step 4 (verify): the application resolves the new version; integrations work.
pub(crate) async fn verify(run: &mut Run<'_>, to: &VersionId) -> Result<(), RefFailure> {
    let checks = checks(run, to).await;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.name, c.detail))
        .collect();
    run.outcome.checks.extend(checks);
    crate::fault::point("verified");
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RefFailure::Verification(format!(
            "verification failed: {}",
            failed.join("; ")
        )))
    }
}

/// Runbook steps 4 (verify) and 6 (the audit event) together: independent reads, both
/// needed before the final marker. Verified, what the lookup found; not, the failure, and the
/// rotation's event if the lookup found it first: a failed verification does not wait for the
/// audit event (the rollback starts at once), and an event already found is cited.
pub(crate) async fn verify_and_audit(
    run: &mut Run<'_>,
    to: &VersionId,
) -> Result<Result<Option<String>, AppError>, (RefFailure, Option<String>)> {
    let again = Lookup::of(run, Operation::Rotate, to);
    let mut lookup = std::pin::pin!(again.find());
    let mut audited = None;
    let verified = {
        let verify = verify(run, to);
        let mut verify = std::pin::pin!(verify);
        loop {
            tokio::select! {
                verified = &mut verify => break verified,
                found = &mut lookup, if audited.is_none() => audited = Some(found),
            }
        }
    };
    let checked = Instant::now();
    match (verified, audited) {
        (Ok(()), Some(audited)) => Ok(beside_checks(audited, &again, checked).await),
        (Ok(()), None) => Ok(beside_checks(lookup.await, &again, checked).await),
        (Err(failure), audited) => Err((failure, audited.and_then(Result::ok).flatten())),
    }
}

/// The checks of `version` and, looked up beside them, the audit event of `operation` to it
/// (both run to their end: for a move back, and for a ref an earlier run finished).
async fn checked_and_audited(
    run: &mut Run<'_>,
    operation: Operation,
    version: &VersionId,
) -> (Vec<Check>, Result<Option<String>, AppError>) {
    let lookup = Lookup::of(run, operation, version);
    let checked = async { (checks(run, version).await, Instant::now()) };
    let ((gathered, checked), found) = tokio::join!(checked, lookup.find());
    (gathered, beside_checks(found, &lookup, checked).await)
}

/// Verification failed (or the application did not record the version): with
/// `rollback: auto` the pointer goes back; with `manual` it stays, marked `failed`.
pub(crate) async fn on_failed_verification(
    run: &mut Run<'_>,
    state: RefState,
    from: &VersionId,
    to: &VersionId,
    failure: RefFailure,
) -> StepResult<()> {
    match run.settings.rollback {
        RollbackMode::Auto => {
            run.outcome.failure = Some(failure);
            roll_back(run, state, from, to).await
        }
        RollbackMode::Manual => {
            let failure = RefFailure::Verification(format!(
                "{failure}; rollback is manual: dispatch `rotor rollback`"
            ));
            finish_failed(run, state, failure).await
        }
    }
}

/// Runbook step 6: the privileged audit event of this rotation is visible (`audited`: what
/// the lookup beside the verification found).
pub(crate) async fn confirm_audit(
    run: &mut Run<'_>,
    state: &RefState,
    audited: Result<Option<String>, AppError>,
) -> StepResult<()> {
    match audited {
        Ok(Some(event)) => {
            run.note(format!("audit event {event} confirmed"));
            run.outcome.audit_event_ids.push(event);
            crate::fault::point("audited");
            Ok(())
        }
        Ok(None) => {
            let failure = RefFailure::AuditNotConfirmed(format!(
                "no `{}` audit event for this rotation within {:?}",
                run.settings.audit_action, run.settings.audit_timeout
            ));
            finish_failed(run, state.clone(), failure).await
        }
        Err(e) => {
            let failure = RefFailure::AuditNotConfirmed(e.to_string());
            finish_failed(run, state.clone(), failure).await
        }
    }
}

/// Marks the rotation `done`, releasing the lock. Another run of this rotation may have marked
/// it first: then it is done.
pub(crate) async fn finish(run: &mut Run<'_>, state: RefState) -> StepResult<()> {
    match mark(run, &state, MarkerState::Done).await {
        Ok(_) => {
            run.note("marked done");
            crate::fault::point("marked");
        }
        Err(e) => return Err(run.stop(RefResult::Failed, RefFailure::Unsettled(e.to_string()))),
    }
    run.outcome.settled = true;
    run.outcome.result = RefResult::Success;
    Ok(())
}

/// The pointer stays on the new version; the marker says `failed`, releasing the lock.
pub(crate) async fn finish_failed(
    run: &mut Run<'_>,
    state: RefState,
    failure: RefFailure,
) -> StepResult<()> {
    let latest = run.job.secret.read().await.unwrap_or(state);
    match mark(run, &latest, MarkerState::Failed).await {
        Ok(_) => {
            run.note("marked failed");
            run.outcome.settled = true;
        }
        Err(e) => run.note(format!("marker not written: {e}")),
    }
    Err(run.stop(RefResult::Failed, failure))
}

/// Writes the intent to roll back into this rotation's `pending` marker, patiently.
async fn intend_rollback(run: &Run<'_>, seen: RefState) -> Result<RefState, BackendError> {
    let id = run.id();
    patiently(
        run,
        "mark rollback",
        seen,
        |now| {
            let intended = now
                .marker
                .as_ref()
                .is_some_and(|m| m.rotation_id == id && m.rolling_back);
            if intended {
                Found::Landed
            } else {
                Found::Again
            }
        },
        transient,
        |latest| async move { run.job.secret.intend_rollback(&latest, id).await },
    )
    .await
}

/// Moves the pointer from `to` back to `from`, patiently: each round starts from a fresh read,
/// which may show the move back already landed.
async fn move_back(
    run: &Run<'_>,
    seen: RefState,
    to: &VersionId,
    from: &VersionId,
) -> Result<RefState, BackendError> {
    patiently(
        run,
        "move back",
        seen,
        |now| {
            if now.current.as_ref() == Some(from) {
                Found::Landed
            } else {
                Found::Again
            }
        },
        transient,
        |latest| async move { run.job.secret.repoint(&latest, to, from).await },
    )
    .await
}

/// Verification failed: the pointer goes back with compare-and-swap (runbook rollback 1–4).
/// The intent is written before the move, so a re-run after a stop anywhere past this point
/// finishes the rollback.
pub(crate) async fn roll_back(
    run: &mut Run<'_>,
    state: RefState,
    from: &VersionId,
    to: &VersionId,
) -> StepResult<()> {
    let id = run.id();
    // What led here: a failed verification, or (dispatched) someone's decision.
    let lead = if run.dispatched {
        ""
    } else {
        "verification failed and "
    };
    let state = match intend_rollback(run, state.clone()).await {
        Ok(s) => s,
        Err(e) => {
            let failure = RefFailure::Rollback(format!("{lead}the rollback could not start: {e}"));
            return finish_failed(run, state, failure).await;
        }
    };
    crate::fault::point("rollback-intended");
    let back = if state.current.as_ref() == Some(from) {
        run.note(format!("pointer already back on {from}"));
        state
    } else if state.current.as_ref() == Some(to) {
        match move_back(run, state.clone(), to, from).await {
            Ok(s) => s,
            Err(e) => {
                let failure = RefFailure::Rollback(format!("{lead}the rollback did not land: {e}"));
                return finish_failed(run, state, failure).await;
            }
        }
    } else {
        let failure = RefFailure::PointerMoved(format!(
            "{lead}the pointer designates {} rather than {to}: another writer moved it; not rolled back",
            state.current.as_ref().map_or("nothing", VersionId::as_str)
        ));
        return finish_failed(run, state, failure).await;
    };
    run.note(format!("rolled back: pointer {to} → {from}"));
    run.outcome.pointer = Some(from.to_string());
    crate::fault::point("rolled-back");
    // An automatic rollback cites the rotation's event too: every event rotor caused is cited
    // by exactly one record (an uncited `rotate` event would be free for a forger to claim).
    let rotation_upsert = (!run.dispatched).then(|| {
        (
            run.expected_event.take(),
            std::mem::take(&mut run.audit_baseline),
        )
    });
    run.audit_baseline = Baseline::of(run, Operation::Rollback, from, false)
        .read()
        .await;
    match run
        .app
        .upsert(
            &run.job.secret.secret_ref,
            from,
            id,
            Operation::Rollback,
            &run.settings.operator,
        )
        .await
    {
        Ok(event) => run.expected_event = event,
        Err(e) => run.note(format!("rollback not recorded in the application: {e}")),
    }
    crate::fault::point("rollback-recorded");
    // The move back's checks and its audit event: independent reads, together.
    let (checks, audited) = checked_and_audited(run, Operation::Rollback, from).await;
    let checks_failed = checks.iter().any(|c| !c.ok);
    run.outcome.checks.extend(rollback_checks(checks));
    let mut problems = Vec::new();
    if checks_failed {
        problems.push("the rollback's checks failed".to_owned());
    }
    match audited {
        Ok(Some(event)) => {
            run.note(format!("rollback audit event {event} confirmed"));
            run.outcome.rollback_event_ids.push(event.clone());
            run.outcome.audit_event_ids.push(event);
        }
        _ => problems.push("the rollback's audit event was not confirmed".to_owned()),
    }
    if let Some((expected, before)) = rotation_upsert {
        cite_rotation_event(run, to, expected, &before).await;
    }
    match mark(run, &back, MarkerState::RolledBack).await {
        Ok(_) => {
            run.note("marked rolled_back");
            crate::fault::point("marked");
            run.outcome.settled = true;
        }
        Err(e) => run.note(format!("marker not written: {e}")),
    }
    if run.dispatched {
        // A dispatched rollback that landed, checked and audited is its own success.
        if problems.is_empty() {
            run.outcome.result = RefResult::RolledBack;
            return Ok(());
        }
        return Err(run.stop(
            RefResult::Failed,
            RefFailure::Rollback(format!("rolled back, but {}", problems.join(" and "))),
        ));
    }
    let why = run
        .outcome
        .failure
        .take()
        .map_or_else(|| "verification failed".to_owned(), |f| f.to_string());
    // A rollback whose own checks (asked again through any outage, within settle_timeout)
    // still fail is no verified state: the pointer is back, but the ref needs a person.
    if problems.is_empty() {
        Err(run.stop(
            RefResult::RolledBack,
            RefFailure::Verification(format!("{why}; rolled back")),
        ))
    } else {
        Err(run.stop(
            RefResult::Failed,
            RefFailure::Rollback(format!(
                "{why}; rolled back, but {}",
                problems.join(" and ")
            )),
        ))
    }
}

/// Where a dispatched rollback starts: the version the pointer designates now, which must be
/// the rotation's `to` unless `force`.
pub(crate) fn rollback_start(
    run: &mut Run<'_>,
    state: &RefState,
    from: &VersionId,
    to: &VersionId,
    force: bool,
) -> StepResult<VersionId> {
    let Some(current) = state.current.clone() else {
        let failure = RefFailure::Target("the secret has no pointer".to_owned());
        return Err(run.stop(RefResult::NotStarted, failure));
    };
    if &current == from {
        let failure = RefFailure::Target(format!(
            "the pointer already designates {from}: nothing to roll back"
        ));
        return Err(run.stop(RefResult::NotStarted, failure));
    }
    if &current != to && !force {
        let failure = RefFailure::PointerMoved(format!(
            "the pointer designates {current}, not {to}: it moved since the rotation; pass --force to roll back from {current} anyway"
        ));
        return Err(run.stop(RefResult::NotStarted, failure));
    }
    if &current != to {
        run.note(format!(
            "forced: the pointer designates {current}, not {to}"
        ));
    }
    Ok(current)
}

/// A dispatched rollback's lock: the same as a rotation's, with the intent to roll back in the
/// same write, so that a stop right after it resumes the rollback.
pub(crate) async fn lock_for_rollback(
    run: &mut Run<'_>,
    state: &RefState,
    from: &VersionId,
    current: &VersionId,
) -> StepResult<RefState> {
    let id = run.id();
    match run
        .job
        .secret
        .lock_for_rollback(state, id, run.settings.pull_request, from, current)
        .await
    {
        Ok(locked) => {
            run.note(format!("locked for the rollback of {id}"));
            crate::fault::point("locked");
            Ok(locked)
        }
        Err(e) => Err(run.stop(RefResult::NotStarted, RefFailure::Backend(e))),
    }
}

/// A ref an earlier run finished: what its marker says, with the checks and audit event ids
/// gathered again, read-only, so that the artifact a re-run commits still carries them.
pub(crate) async fn report_finished(run: &mut Run<'_>, marker: &Marker) -> StepResult<()> {
    run.outcome.from = marker.from.as_ref().map(ToString::to_string);
    run.outcome.to = marker.to.as_ref().map(ToString::to_string);
    run.outcome.result = match marker.state {
        MarkerState::Done => RefResult::Success,
        MarkerState::RolledBack => RefResult::RolledBack,
        _ => RefResult::Failed,
    };
    run.note(format!("already {} by an earlier run", marker.state));
    run.outcome.settled = true;
    let (Some(from), Some(to)) = (marker.from.clone(), marker.to.clone()) else {
        return Ok(());
    };
    let (version, operation) = match marker.state {
        MarkerState::Done => (to, Operation::Rotate),
        MarkerState::RolledBack => (from, Operation::Rollback),
        MarkerState::Pending | MarkerState::Failed => return Ok(()),
    };
    let (gathered, audited) = checked_and_audited(run, operation, &version).await;
    if operation == Operation::Rollback {
        run.outcome.checks.extend(rollback_checks(gathered));
    } else {
        run.outcome.checks.extend(gathered);
    }
    if let Ok(Some(event)) = audited {
        if operation == Operation::Rollback {
            run.outcome.rollback_event_ids.push(event.clone());
        }
        run.outcome.audit_event_ids.push(event);
    }
    if operation == Operation::Rollback
        && !run.dispatched
        && let Some(to) = marker.to.clone()
    {
        cite_rotation_event(run, &to, None, &[]).await;
    }
    if run.outcome.result == RefResult::RolledBack {
        run.outcome.failure = Some(RefFailure::Verification(
            "verification failed; rolled back".to_owned(),
        ));
    }
    Ok(())
}

/// The audit event of a rollback an earlier run finished, looked up again so that the record
/// a re-run commits cites it as the first run's would have.
pub(crate) async fn recall_rollback_event(run: &mut Run<'_>, from: &VersionId) {
    if let Ok(Some(event)) = Lookup::of(run, Operation::Rollback, from).find().await {
        run.outcome.rollback_event_ids.push(event.clone());
        run.outcome.audit_event_ids.push(event);
    }
}

/// Cites the `rotate` event of a rotation that was rolled back in the same run (or by an
/// earlier run of it), before the `rollback` one: both moves are on the record. An event not
/// found is noted; the rollback stands.
async fn cite_rotation_event(
    run: &mut Run<'_>,
    to: &VersionId,
    expected: Option<String>,
    before: &[String],
) {
    if run
        .outcome
        .audit_event_ids
        .iter()
        .any(|id| !run.outcome.rollback_event_ids.contains(id))
    {
        return;
    }
    let lookup = Lookup::after(run, Operation::Rotate, to, expected, before.to_vec());
    match lookup.find().await {
        Ok(Some(event)) => {
            run.note(format!("rotation audit event {event} confirmed"));
            run.outcome.audit_event_ids.insert(0, event);
        }
        _ => run.note("the rotation's audit event was not found"),
    }
}
