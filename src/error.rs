//! The one error type every command returns, and the one place that maps it to an exit code
//! (DESIGN §2: 0 success, 1 rotation did not succeed, 2 invalid input, 3 not authorized,
//! 4 precondition or conflict, 5 external system unreachable before any change).

use std::process::ExitCode;

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line is invalid, or asked for help or the version.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// Input files are invalid; each problem has already been reported with its position.
    #[error("{count} problem{} found in the input", if *count == 1 { "" } else { "s" })]
    Invalid {
        /// How many problems were reported.
        count: usize,
    },
    /// Writing the report failed (a closed pipe, a full disk).
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

impl Error {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// The numeric exit code, per DESIGN §2.
    pub fn code(&self) -> u8 {
        match self {
            Self::Usage(e) if !e.use_stderr() => 0,
            Self::Usage(_) | Self::Invalid { .. } => 2,
            Self::Output(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_input_is_exit_2() {
        assert_eq!(Error::Invalid { count: 3 }.code(), 2);
        assert_eq!(
            Error::Invalid { count: 1 }.to_string(),
            "1 problem found in the input"
        );
    }
}
