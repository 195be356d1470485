//! How one ref ended, in one vocabulary shared by the procedure, the report and the exit code:
//! its [`RefResult`] (one spelling each, the contract's words), the run's [`RunResult`], and
//! when it did not succeed, the one [`RefFailure`] that says why. `error.rs` alone turns a
//! failure into an exit code.

use std::time::Duration;

use serde::Serialize;

use crate::app::AppError;
use crate::backend::BackendError;

/// How a ref ended, or would end (`planned`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefResult {
    /// Rotated (or rolled back by dispatch), verified, audited.
    Success,
    /// Verification failed and the pointer went back.
    RolledBack,
    /// The pointer moved, but verification, the audit trail or the rollback failed.
    Failed,
    /// Nothing changed: a precondition, a refusal or a conflict stopped it before the pointer
    /// moved.
    NotStarted,
    /// `plan` and `--dry-run`: every precondition holds; it would rotate.
    Planned,
    /// A rollout halted before this ref's wave: nothing was done to it (no lock, no move, no
    /// call to the application).
    Skipped,
}

impl RefResult {
    /// The contract's word for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::NotStarted => "not_started",
            Self::Planned => "planned",
            Self::Skipped => "skipped",
        }
    }
}

impl std::fmt::Display for RefResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a rollout in waves went, as the JSON report gives it (`apply`, `plan`) and a halted
/// rotation's artifact records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RolloutSummary {
    /// How many waves the rollout has.
    pub waves: usize,
    /// How many of them finished.
    pub completed: usize,
    /// Whether the rollout stopped before its last wave.
    pub halted: bool,
    /// `max_failures` as configured, or `None` without a budget.
    pub budget: Option<String>,
    /// Why it halted, and after which wave.
    pub reason: Option<String>,
    /// The waves' sizes (`plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Vec<usize>>,
    /// The pause between waves, as configured (`plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<String>,
}

/// A run's result: the step output `result` and the JSON report's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunResult {
    /// Every ref succeeded.
    Success,
    /// At least one ref was rolled back, none failed.
    RolledBack,
    /// A ref failed or could not start, or the run was refused.
    Failed,
    /// `plan` and `--dry-run`.
    Planned,
    /// Nothing to do: not a trigger, or already applied.
    Noop,
    /// A break-glass rotation's approval, given after the fact by a second `internal_admin`.
    Countersigned,
}

impl RunResult {
    /// The contract's word for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
            Self::Planned => "planned",
            Self::Noop => "noop",
            Self::Countersigned => "countersigned",
        }
    }

    /// The overall result of refs that ran: `success` only if every ref succeeded; `failed` if
    /// any ref failed or could not start; `rolled_back` otherwise.
    pub fn of(results: impl IntoIterator<Item = RefResult>) -> Self {
        let mut all_success = true;
        let mut failed = false;
        for r in results {
            match r {
                RefResult::Success => {}
                RefResult::Failed | RefResult::NotStarted | RefResult::Skipped => {
                    all_success = false;
                    failed = true;
                }
                RefResult::RolledBack | RefResult::Planned => all_success = false,
            }
        }
        if all_success {
            Self::Success
        } else if failed {
            Self::Failed
        } else {
            Self::RolledBack
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a ref did not succeed. Each variant has a stable report code ([`RefFailure::code`]); its
/// exit code is decided in `error.rs`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefFailure {
    /// No `backends` rule matches the ref (invalid config or request).
    #[error(
        "no `backends` rule in the config matches this ref; add one (rules are globs, first match wins)"
    )]
    NoBackendRule,
    /// The rotation id is already used on this ref by another pull request.
    #[error(
        "id_reused: rotation id {id} is already used on this ref by {by}; ids are never reused, so choose a new id"
    )]
    IdReused {
        /// The rotation id.
        id: String,
        /// Who holds it: `pull request #N` or `an earlier rotation`.
        by: String,
    },
    /// Another rotation holds the ref's lock.
    #[error("locked by rotation {by} (marker pending)")]
    Locked {
        /// The rotation holding it.
        by: String,
    },
    /// The pointer is not where rotor observed it: another writer moved it.
    #[error("{0}")]
    PointerMoved(String),
    /// No usable target: none pending, several pending, missing, not enabled, already current,
    /// or no pointer at all.
    #[error("{0}")]
    Target(String),
    /// Now is outside the request's maintenance window.
    #[error("{0}")]
    OutsideWindow(String),
    /// The request's `sites` differ from the application's `siteIds`, or the application names
    /// a site rotor cannot address.
    #[error("{0}")]
    Sites(String),
    /// A backend call failed (refused, unauthorized, missing, unavailable).
    #[error("{0}")]
    Backend(BackendError),
    /// An application call failed before any change (unknown ref, refused, unavailable).
    #[error("{0}")]
    App(AppError),
    /// Another run of this same rotation holds the ref and is finishing it; this run changed
    /// nothing here and leaves the artifact to that run.
    #[error("{0}")]
    Deferred(String),
    /// The application did not record the new version (after the move).
    #[error("{0}")]
    NotRecorded(String),
    /// Verification failed (the failing check and what it saw).
    #[error("{0}")]
    Verification(String),
    /// The audit event was not visible within `audit_timeout`.
    #[error("{0}")]
    AuditNotConfirmed(String),
    /// A rollback did not complete: it could not start or land, or its checks or audit failed.
    #[error("{0}")]
    Rollback(String),
    /// The final marker could not be written; the ref is still locked by this rotation.
    #[error("{0}")]
    Unsettled(String),
    /// An artifact's record of the ref cannot be used (an invalid ref or version in it).
    #[error("{0}")]
    BadRecord(String),
    /// The ref's task stopped unexpectedly; run again to converge.
    #[error("the work on this ref stopped unexpectedly; run again to converge")]
    Interrupted,
}

/// A ref that could not be worked on, as the read-only commands' JSON reports list it
/// (`errors[]`: `{"ref","code","message"}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefError {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// The failure's stable code.
    pub code: &'static str,
    /// What happened, in words.
    pub message: String,
}

impl RefError {
    /// `failure` of `secret_ref`, as a report row.
    pub fn new(secret_ref: &str, failure: &RefFailure) -> Self {
        Self {
            secret_ref: secret_ref.to_owned(),
            code: failure.code(),
            message: failure.to_string(),
        }
    }
}

impl RefFailure {
    /// A stable code for reports (`errors[].code`, `refs[].error.code`).
    pub const fn code(&self) -> &'static str {
        match self {
            Self::NoBackendRule => "no_backend_rule",
            Self::IdReused { .. } => "id_reused",
            Self::Locked { .. } => "locked",
            Self::PointerMoved(_) => "pointer_moved",
            Self::Target(_) => "target_unusable",
            Self::OutsideWindow(_) => "outside_window",
            Self::Sites(_) => "sites_mismatch",
            Self::Backend(e) => e.kind.code(),
            Self::App(_) => "application",
            Self::Deferred(_) => "deferred",
            Self::NotRecorded(_) => "not_recorded",
            Self::Verification(_) => "verification_failed",
            Self::AuditNotConfirmed(_) => "audit_not_confirmed",
            Self::Rollback(_) => "rollback_incomplete",
            Self::Unsettled(_) => "unsettled",
            Self::BadRecord(_) => "bad_record",
            Self::Interrupted => "interrupted",
        }
    }

    /// What the person reading the report should do next.
    pub fn next_step(&self) -> &'static str {
        match self {
            Self::NoBackendRule => {
                "add a `backends` rule that matches the ref to the config on the default branch"
            }
            Self::IdReused { .. } => {
                "choose a new rotation id and rename the request file to match"
            }
            Self::Locked { .. } => {
                "wait for the other rotation to finish (or run its apply again), then apply again"
            }
            Self::PointerMoved(_) => {
                "find out who moved the pointer; update the request's target and apply again"
            }
            Self::Target(_) => {
                "provision the new value in the secret manager, or name `to` in the request, then apply again"
            }
            Self::OutsideWindow(_) => {
                "apply inside the maintenance window, or change the window in a new request"
            }
            Self::Sites(_) => {
                "make the request's `sites` match the application, or leave `sites` out"
            }
            Self::Backend(_) => {
                "fix the backend's access or availability named above, then apply again"
            }
            Self::App(_) => {
                "fix the application's access or availability named above, then apply again"
            }
            Self::Deferred(_) => "let the other run finish; run apply again to commit the artifact",
            Self::NotRecorded(_) | Self::Verification(_) => {
                "look at the failing check; fix the application or the new value, then open a new rotation"
            }
            Self::AuditNotConfirmed(_) => {
                "check the application's audit log; the pointer stays on the verified version"
            }
            Self::Rollback(_) => {
                "check the pointer and the application by hand; dispatch `rotor rollback` if it must move back"
            }
            Self::Unsettled(_) | Self::Interrupted => {
                "run apply again: it continues from the marker and converges"
            }
            Self::BadRecord(_) => "run `rotor verify`: the artifact was edited by hand",
        }
    }
}

impl RefFailure {
    /// What to do next when this stopped a dispatched rollback.
    pub fn next_step_rolling_back(&self) -> &'static str {
        match self {
            Self::PointerMoved(_) => {
                "find out who moved the pointer; to move it back from where it is now, dispatch the rollback again with force"
            }
            Self::Locked { .. } => {
                "wait for the other rotation to finish (or run its apply again), then dispatch the rollback again"
            }
            Self::Target(_) | Self::BadRecord(_) => {
                "run `rotor verify`; roll back by hand if the record cannot be trusted"
            }
            Self::Backend(_) | Self::App(_) => {
                "fix the access or availability named above, then dispatch the rollback again"
            }
            Self::Unsettled(_) | Self::Interrupted => {
                "dispatch the rollback again: it continues from the marker and converges"
            }
            other => other.next_step(),
        }
    }
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

/// One step of a ref's work: when it ended, what it was, how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// When it ended (RFC 3339, seconds).
    pub at: String,
    /// What happened.
    pub what: String,
    /// How long it took.
    pub took: Duration,
}

/// Everything that happened to one ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefOutcome {
    /// The ref.
    pub secret_ref: String,
    /// The backend.
    pub backend: &'static str,
    /// The version the pointer moved from (for a dispatched rollback: the rotation's `from`).
    pub from: Option<String>,
    /// The version it moved to (for a dispatched rollback: the rotation's `to`).
    pub to: Option<String>,
    /// The result.
    pub result: RefResult,
    /// The checks of the rotation (and of the rollback, if any).
    pub checks: Vec<Check>,
    /// Confirmed audit event ids.
    pub audit_event_ids: Vec<String>,
    /// Those of `audit_event_ids` that record a rollback (`operation: rollback`); the others
    /// record the rotation. The artifact cites each with its operation, for `rotor verify`.
    pub rollback_event_ids: Vec<String>,
    /// What happened, step by step.
    pub steps: Vec<Step>,
    /// Why it did not succeed.
    pub failure: Option<RefFailure>,
    /// Whether this ref holds no lock of this rotation any more: a final marker was written, or
    /// nothing was locked. When false, the artifact must not be committed as final.
    pub settled: bool,
    /// The version the pointer designated when rotor last saw it: what `drift` expects later.
    pub pointer: Option<String>,
    /// Why a skipped ref was skipped: `halted` (the error budget) or `window_closed`.
    pub skipped: Option<&'static str>,
}

impl RefOutcome {
    /// A ref nothing was done to yet.
    pub fn new(secret_ref: String, backend: &'static str) -> Self {
        Self {
            secret_ref,
            backend,
            from: None,
            to: None,
            result: RefResult::NotStarted,
            checks: Vec::new(),
            audit_event_ids: Vec::new(),
            rollback_event_ids: Vec::new(),
            steps: Vec::new(),
            failure: None,
            settled: false,
            pointer: None,
            skipped: None,
        }
    }

    /// A ref that did not start, and why; it holds no lock.
    pub fn not_started(secret_ref: String, backend: &'static str, failure: RefFailure) -> Self {
        Self {
            failure: Some(failure),
            settled: true,
            ..Self::new(secret_ref, backend)
        }
    }

    /// Whether another run of this rotation holds the ref and will finish it.
    pub fn deferred(&self) -> bool {
        matches!(self.failure, Some(RefFailure::Deferred(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_result_follows_its_refs() {
        use RefResult::{Failed, NotStarted, RolledBack, Success};
        assert_eq!(RunResult::of([Success, Success]), RunResult::Success);
        assert_eq!(RunResult::of([Success, RolledBack]), RunResult::RolledBack);
        assert_eq!(RunResult::of([RolledBack, Failed]), RunResult::Failed);
        assert_eq!(RunResult::of([Success, NotStarted]), RunResult::Failed);
        assert_eq!(
            serde_json::to_value(RefResult::NotStarted).ok(),
            Some(serde_json::json!("not_started"))
        );
    }
}
