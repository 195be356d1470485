//! Runbook step 6 for one ref: finding the audit event of its rotation or rollback in the
//! application's log. A [`Lookup`] carries what it needs by value, borrowing nothing of the
//! ref's run, so that it proceeds while the run verifies (the two are independent reads, and
//! both must pass before the final marker). The events of this rotation that were there before
//! an upsert (an earlier run's, or a reused id's) never confirm it: that [`Baseline`] is read
//! alongside the lock (see its doc for when no read is needed).

use std::time::{Duration, Instant};

use super::{Run, Settings};
use crate::app::{AppClient, AppError, AuditEvent, Operation, Read};
use crate::ids::{SecretRef, VersionId};

/// Whether `e` is the audit event of `operation` to `version` on `secret_ref` in this
/// rotation: the action, the actor's role, a site or tenant context, and the metadata.
pub(crate) fn matches_event(
    settings: &Settings,
    secret_ref: &SecretRef,
    e: &AuditEvent,
    operation: Operation,
    version: &VersionId,
) -> bool {
    let op = serde_json::to_value(operation).unwrap_or_default();
    e.action == settings.audit_action
        && e.actor_role == settings.actor_role
        && (e.site_id.is_some() || e.tenant.is_some())
        && e.metadata["ref"] == secret_ref.as_str()
        && e.metadata["rotationId"] == settings.rotation_id.as_str()
        && (e.metadata.get("operation").is_none() || e.metadata["operation"] == op)
        && (e.metadata.get("versionId").is_none() || e.metadata["versionId"] == version.as_str())
}

/// The search for one event of one ref, owning what it needs.
pub(crate) struct Lookup<'a> {
    app: &'a AppClient,
    settings: &'a Settings,
    secret_ref: &'a SecretRef,
    operation: Operation,
    version: VersionId,
    /// The event the upsert's answer named, if it named one: only it confirms.
    expected: Option<String>,
    /// Events matching that were there before the upsert.
    before: Vec<String>,
    /// Events the ref's outcome already cites.
    cited: Vec<String>,
}

impl<'a> Lookup<'a> {
    /// The search for the event of the run's last upsert (`operation` to `version`).
    pub(crate) fn of(run: &Run<'a>, operation: Operation, version: &VersionId) -> Self {
        Self::after(
            run,
            operation,
            version,
            run.expected_event.clone(),
            run.audit_baseline.clone(),
        )
    }

    /// The search for the event of an upsert other than the run's last: `expected` is the
    /// event its answer named, `before` what was there before it.
    pub(crate) fn after(
        run: &Run<'a>,
        operation: Operation,
        version: &VersionId,
        expected: Option<String>,
        before: Vec<String>,
    ) -> Self {
        Self {
            app: run.app,
            settings: run.settings,
            secret_ref: &run.job.secret.secret_ref,
            operation,
            version: version.clone(),
            expected,
            before,
            cited: run.outcome.audit_event_ids.clone(),
        }
    }

    /// Looks for the event until `audit_timeout`: the one the upsert named when the
    /// application names it, else one that was not there before the upsert.
    pub(crate) async fn find(&self) -> Result<Option<String>, AppError> {
        let deadline = Instant::now() + self.settings.audit_timeout;
        self.find_until(deadline).await
    }

    /// As [`Self::find`], until `deadline`.
    pub(crate) async fn find_until(&self, deadline: Instant) -> Result<Option<String>, AppError> {
        let mut wait = Duration::from_millis(20);
        // Only a read begun after the upsert can hold its event; every ref of a batch shares
        // the reads, so one read answers all the refs that recorded before it began.
        let mut after = Instant::now();
        loop {
            let asked = Instant::now();
            let found = self
                .app
                .find_audit_event(
                    &self.settings.audit_action,
                    self.secret_ref,
                    Read::StartedAfter(after),
                    20,
                    |e| {
                        matches_event(
                            self.settings,
                            self.secret_ref,
                            e,
                            self.operation,
                            &self.version,
                        ) && self.expected.as_ref().is_none_or(|x| &e.id == x)
                            && !self.cited.contains(&e.id)
                            && !self.before.contains(&e.id)
                    },
                )
                .await?;
            if found.is_some() {
                crate::fault::point("audit-found");
                return Ok(found);
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            // The event was not in a read begun after `after`: the next look needs a newer read.
            after = asked;
            tokio::time::sleep(wait.min(deadline.saturating_duration_since(Instant::now()))).await;
            wait = (wait * 2).min(Duration::from_secs(1));
        }
    }
}

/// What a lookup run beside checks answers, once the checks ended at `checked`: what it found,
/// or, if it found nothing (its deadline ran while the checks waited out an outage, or a read
/// failed), what a lookup finds until `audit_timeout` after the checks ended, as a lookup begun
/// only then would have had.
pub(crate) async fn beside_checks(
    found: Result<Option<String>, AppError>,
    again: &Lookup<'_>,
    checked: Instant,
) -> Result<Option<String>, AppError> {
    let deadline = checked + again.settings.audit_timeout;
    match found {
        Ok(Some(event)) => Ok(Some(event)),
        not_found if Instant::now() >= deadline => not_found,
        _ => again.find_until(deadline).await,
    }
}

/// The events of `operation` to `version` in this rotation already there, before the ref's
/// upsert: a read begun since the ref's work began (the lock keeps every other run of this
/// rotation from recording it in between), plus what the run's reads already hold.
///
/// Only the latter for a fresh ref (`fresh`: the preconditions found no marker of this
/// rotation on it, and no event of it in the audit log) while every upsert answer of the run
/// named its event: the preconditions already showed that no earlier event of this rotation
/// exists for it, and its own event will be known by its id. A ref an earlier run began is
/// always read: that run may have recorded it.
pub(crate) struct Baseline<'a> {
    app: &'a AppClient,
    settings: &'a Settings,
    secret_ref: &'a SecretRef,
    began: Instant,
    operation: Operation,
    version: VersionId,
    fresh: bool,
}

impl<'a> Baseline<'a> {
    /// The baseline of the ref `run` works on (`fresh`: see the type's doc).
    pub(crate) fn of(
        run: &Run<'a>,
        operation: Operation,
        version: &VersionId,
        fresh: bool,
    ) -> Self {
        Self {
            app: run.app,
            settings: run.settings,
            secret_ref: &run.job.secret.secret_ref,
            began: run.began,
            operation,
            version: version.clone(),
            fresh,
        }
    }

    fn matches(&self, e: &AuditEvent) -> bool {
        matches_event(
            self.settings,
            self.secret_ref,
            e,
            self.operation,
            &self.version,
        )
    }

    /// Reads it (see the type's doc).
    pub(crate) async fn read(self) -> Vec<String> {
        let mut ids = self.app.known_events(self.secret_ref, |e| self.matches(e));
        if self.fresh && self.app.names_events() {
            crate::fault::point("baseline-read");
            return ids;
        }
        while let Ok(Some(event)) = self
            .app
            .find_audit_event(
                &self.settings.audit_action,
                self.secret_ref,
                Read::StartedAfter(self.began),
                20,
                |e| self.matches(e) && !ids.contains(&e.id),
            )
            .await
        {
            ids.push(event);
        }
        crate::fault::point("baseline-read");
        ids
    }
}
