//! The one error type every command returns, and the one place that maps it to an exit code
//! (0 success, 1 rotation did not succeed, 2 invalid input, 3 not authorized,
//! 4 precondition or conflict, 5 external system unreachable before any change).

use std::process::ExitCode;

/// The exit code of a deliberate stop at a fault point (debug builds only, for the resume
/// tests); outside rotor's exit codes on purpose.
pub const FAULT_STOP: i32 = 86;

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is invalid, or asked for help or the version.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// Input files are invalid; each problem has already been reported with its position.
    #[error("{} problem{} found in the input", diagnostics.len(), if diagnostics.len() == 1 { "" } else { "s" })]
    Invalid {
        /// The problems.
        diagnostics: Vec<crate::diagnostic::Diagnostic>,
    },
    /// Writing the report failed (a closed pipe, a full disk).
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
    /// A ref named on the command line is not a valid ref.
    #[error("invalid ref {text}: {reason}")]
    BadRef {
        /// The argument, quoted.
        text: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The command has no ref to work on; zero refs is an error, not a success.
    #[error("no refs to {action}: {hint}")]
    NoRefs {
        /// What the command would have done.
        action: &'static str,
        /// Where refs come from.
        hint: String,
    },
    /// A command-line argument (or the dispatch input it defaults from) is invalid.
    #[error("invalid {name}: {problem}")]
    BadArgument {
        /// The flag, e.g. `--rotation-id`.
        name: &'static str,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A ref has no backend rule, or its backend cannot be set up.
    #[error(transparent)]
    Resolve(#[from] crate::backend::ResolveError),
    /// A backend call failed.
    #[error(transparent)]
    Backend(#[from] crate::backend::BackendError),
    /// A `/rotor break-glass` comment gives no reason after its first line, or one that breaks
    /// the rules of a reason.
    #[error("{problem}")]
    Reason {
        /// `reason_missing` or `reason_invalid`.
        code: &'static str,
        /// What is wrong, and what to do.
        problem: String,
    },
    /// A variable the run needs is missing or malformed.
    #[error("${var} {problem}; {hint}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        problem: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// With `commit.via: api`, `commit.author` is not the identity GitHub will author the
    /// commit as (the token's, as GraphQL `viewer` names it), or that identity cannot be read.
    #[error("{0}")]
    Identity(String),
    /// The event payload cannot start this command.
    #[error(transparent)]
    Event(#[from] crate::github::event::EventError),
    /// A GitHub call failed.
    #[error(transparent)]
    GitHub(#[from] crate::github::GitHubError),
    /// Git failed.
    #[error(transparent)]
    Git(#[from] crate::gitops::GitError),
    /// An application call failed.
    #[error(transparent)]
    App(#[from] crate::app::AppError),
    /// A template cannot be loaded or rendered.
    #[error(transparent)]
    Render(#[from] crate::render::RenderError),
    /// The approval policy is not met; every unmet rule has been reported.
    #[error("not authorized: {}", .0.join("; "))]
    NotApproved(Vec<String>),
    /// The rotation ran and did not succeed (rolled back, failed verification or audit).
    #[error("the rotation did not succeed: {0}")]
    RotationFailed(String),
    /// `rotor drift` found refs whose pointer is not where their latest artifact left it.
    #[error("{} drifted from their latest artifact", crate::output::count(*.0, "ref"))]
    Drift(usize),
    /// `rotor verify` (or the verification inside `rotor evidence`) found something wrong with
    /// the record; each finding has been reported.
    #[error("{}: the record does not prove itself (see each above)", crate::output::count(*.0, "finding"))]
    Findings(usize),
    /// A precondition of the rotation does not hold; each ref's problem has been reported.
    #[error("{0}")]
    Precondition(String),
    /// `rotor new` found no ref that qualifies for a request; each ref left out has been
    /// reported with its reason, and nothing was written.
    #[error("no ref qualified: {0}; nothing was written")]
    NothingQualified(String),
    /// `rotor new` cannot write the request file.
    #[error("cannot write {path}: {problem}")]
    WriteRequest {
        /// The file, as the user knows it.
        path: String,
        /// Why.
        problem: String,
    },
    /// Refs failed before anything changed; each has been reported. The exit code is that of
    /// the gravest failure.
    #[error("{} of {} failed: {}", failures.len(), crate::output::count(*total, "ref"), first(failures))]
    Refs {
        /// How many refs there were.
        total: usize,
        /// Each ref that failed, with why.
        failures: Vec<(String, crate::outcome::RefFailure)>,
    },
}

fn first(failures: &[(String, crate::outcome::RefFailure)]) -> String {
    failures
        .first()
        .map(|(r, f)| {
            // Most failures name their ref already.
            let text = f.to_string();
            if text.starts_with(r.as_str()) {
                text
            } else {
                format!("{r}: {text}")
            }
        })
        .unwrap_or_default()
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The numeric exit code (README, "Exit codes").
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(e) if !e.use_stderr() => 0,
            Self::Usage(_)
            | Self::Invalid { .. }
            | Self::BadRef { .. }
            | Self::NoRefs { .. }
            | Self::BadArgument { .. }
            | Self::Reason { .. } => 2,
            Self::Output(_) => 1,
            Self::Resolve(crate::backend::ResolveError::NoRule(_)) => 2,
            Self::Resolve(crate::backend::ResolveError::Setup(e)) | Self::Backend(e) => {
                backend_code(&e.kind)
            }
            Self::Refs { failures, .. } => failures
                .iter()
                .map(|(_, f)| ref_failure_code(f))
                .max()
                .unwrap_or(4),
            Self::Env { .. }
            | Self::Identity(_)
            | Self::Event(_)
            | Self::Render(_)
            | Self::WriteRequest { .. } => 2,
            Self::GitHub(e) => github_code(e),
            Self::Git(e) => git_code(e),
            Self::Precondition(_) | Self::NothingQualified(_) => 4,
            Self::NotApproved(_) => 3,
            Self::App(e) => app_code(e),
            Self::RotationFailed(_) | Self::Drift(_) | Self::Findings(_) => 1,
        }
    }
}

/// The exit code that stands for one ref's failure: invalid input (2) for what the request or
/// the config got wrong; a precondition or conflict (4) for what stopped it before the pointer
/// moved; the kind of a backend's or the application's failure; a rotation that did not
/// succeed (1) for anything after the move.
pub fn ref_failure_code(f: &crate::outcome::RefFailure) -> u8 {
    use crate::outcome::RefFailure as F;
    match f {
        F::NoBackendRule | F::IdReused { .. } | F::BadRecord(_) => 2,
        F::Locked { .. }
        | F::PointerMoved(_)
        | F::Target(_)
        | F::OutsideWindow(_)
        | F::Sites(_)
        | F::Deferred(_) => 4,
        F::Backend(e) => backend_code(&e.kind),
        F::App(e) => app_code(e),
        F::NotRecorded(_)
        | F::Verification(_)
        | F::AuditNotConfirmed(_)
        | F::Rollback(_)
        | F::Unsettled(_)
        | F::Interrupted => 1,
    }
}

/// The exit code of an application failure: a missing token is input (2), an unknown ref or a
/// refused credential a precondition (4), an outage 5.
pub fn app_code(e: &crate::app::AppError) -> u8 {
    use crate::app::AppError as A;
    match e {
        A::NoToken { .. } | A::Redirected { .. } => 2,
        A::Unauthorized { .. } | A::Forbidden { .. } | A::NotFound { .. } | A::Rejected { .. } => 4,
        A::Unavailable { .. } | A::Protocol { .. } => 5,
    }
}

/// The exit code of a git failure: a checkout rotor cannot use is input (2); a remote that
/// refused the artifact after the pointer moved is a rotation that did not succeed (1); a remote
/// that stayed unreachable is 5; a missing commit or a lost race is a precondition (4).
pub fn git_code(e: &crate::gitops::GitError) -> u8 {
    use crate::gitops::GitError as G;
    match e {
        G::Open { .. } | G::NotOwned { .. } | G::NoGit { .. } | G::NotAFile { .. } => 2,
        G::PushRefused { .. } | G::CommitRefused { .. } | G::HeadMoved { .. } => 1,
        G::Unavailable { .. } => 5,
        G::MissingCommit { .. } | G::PushRace { .. } | G::Git(_) => 4,
    }
}

/// The exit code of a GitHub failure: credentials the run is not authorized with (3), a
/// resource that does not exist (4), a service that kept failing (5).
pub fn github_code(e: &crate::github::GitHubError) -> u8 {
    use crate::github::GitHubError as G;
    match e {
        G::Unauthorized { .. } | G::Forbidden { .. } => 3,
        G::NotFound { .. } => 4,
        G::RateLimited { .. } | G::Unavailable { .. } | G::Protocol { .. } => 5,
    }
}

impl Error {
    /// A stable code for the JSON report.
    pub fn report_code(&self) -> &'static str {
        match self {
            Self::Usage(_) => "usage",
            Self::Invalid { .. } => "invalid_input",
            Self::Output(_) => "output",
            Self::BadRef { .. } => "invalid_ref",
            Self::NoRefs { .. } => "no_refs",
            Self::BadArgument { .. } => "invalid_argument",
            Self::Reason { code, .. } => code,
            Self::Resolve(crate::backend::ResolveError::NoRule(_)) => "no_backend_rule",
            Self::Resolve(crate::backend::ResolveError::Setup(e)) | Self::Backend(e) => {
                e.kind.code()
            }
            Self::Refs { .. } => "refs_failed",
            Self::Env { .. } => "environment",
            Self::Identity(_) => "commit_identity",
            Self::Event(_) => "invalid_event",
            Self::GitHub(_) => "github",
            Self::Git(_) => "git",
            Self::Render(_) => "template",
            Self::Precondition(_) => "precondition",
            Self::NothingQualified(_) => "nothing_qualified",
            Self::WriteRequest { .. } => "write_request",
            Self::NotApproved(_) => "not_approved",
            Self::App(_) => "application",
            Self::RotationFailed(_) => "rotation_failed",
            Self::Drift(_) => "drift",
            Self::Findings(_) => "findings",
        }
    }
}

/// The exit code of a backend failure: a state or permission the user must fix
/// is a precondition (4); a service that kept failing is unreachable (5); a missing address or
/// credential is invalid input (2).
pub fn backend_code(kind: &crate::backend::ErrorKind) -> u8 {
    use crate::backend::ErrorKind as K;
    match kind {
        K::Setup { .. } => 2,
        K::Unauthorized { .. }
        | K::Forbidden { .. }
        | K::NotFound { .. }
        | K::PointerAbsent { .. }
        | K::Conflict { .. }
        | K::Refused { .. }
        | K::TokenLifetime { .. }
        | K::NotRotors { .. } => 4,
        K::Unavailable { .. } | K::Protocol { .. } => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_is_exit_2() {
        let d = crate::diagnostic::Diagnostic::new("x", "f", crate::diagnostic::Pos::START, "m");
        let two = Error::Invalid {
            diagnostics: vec![d.clone(), d.clone()],
        };
        assert_eq!(two.code(), 2);
        assert_eq!(two.to_string(), "2 problems found in the input");
        assert_eq!(
            Error::Invalid {
                diagnostics: vec![d]
            }
            .to_string(),
            "1 problem found in the input"
        );
    }

    #[test]
    fn rotor_new_outcomes_map_to_the_contract() {
        let none = Error::NothingQualified("each of the 2 refs was skipped".to_owned());
        assert_eq!((none.code(), none.report_code()), (4, "nothing_qualified"));
        let unwritable = Error::WriteRequest {
            path: "rotations/x.yaml".to_owned(),
            problem: "permission denied".to_owned(),
        };
        assert_eq!(unwritable.code(), 2);
    }

    #[test]
    fn backend_failures_map_to_the_contract() {
        use crate::backend::ErrorKind as K;
        assert_eq!(
            backend_code(&K::Conflict {
                detail: String::new()
            }),
            4
        );
        assert_eq!(
            backend_code(&K::Forbidden {
                permission: String::new()
            }),
            4
        );
        assert_eq!(
            backend_code(&K::Unavailable {
                detail: String::new()
            }),
            5
        );
        assert_eq!(
            backend_code(&K::Setup {
                detail: String::new()
            }),
            2
        );
    }
}
