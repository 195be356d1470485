//! rotor executes the Secret Rotation Runbook (v3) from a pull request.
//!
//! The layers import downward only: [`commands`] (one module per subcommand) use the
//! procedure and policy modules, which use the models ([`request`], [`config`]), the clients
//! and [`output`]. [`run`] parses the command line and dispatches; the binary maps the one
//! [`Error`] type to an exit code in one place ([`report_error`]).

pub mod app;
pub mod artifact;
pub mod backend;
pub mod batch;
pub mod body;
pub mod break_glass;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context;
pub mod diagnostic;
pub mod dispatch;
pub mod draft;
pub mod error;
pub mod fault;
pub mod gate;
pub mod github;
pub mod gitops;
pub mod ids;
pub mod outcome;
pub mod output;
pub mod policy;
pub mod preflight;
pub mod progress;
pub mod publish;
pub mod ratelimit;
pub mod record;
pub mod render;
pub mod report;
pub mod request;
pub mod retry;
pub mod rotation;
pub mod secret;
pub mod session;
pub mod yaml;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

pub use crate::error::Error;
use crate::output::{Output, Verbosity};

/// Parses `args` and runs the command.
pub fn run<I, T>(args: I) -> Result<(), Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = cli::parse(args)?;
    let output = Output {
        format: cli.global.format.output(),
        verbosity: if cli.global.quiet {
            Verbosity::Quiet
        } else if cli.global.verbose {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        },
        github_actions: std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true"),
    };
    output::log_http_calls(output.verbosity == Verbosity::Verbose);
    let command = cli.command.name();
    let result = commands::dispatch(cli, output);
    if let Err(err) = &result
        && output.format == output::Format::Json
        && !output::json_written()
    {
        // Failed before its report: stdout still carries exactly one JSON object.
        let errors = match err {
            Error::Invalid { diagnostics } => serde_json::to_value(diagnostics).unwrap_or_default(),
            other => {
                serde_json::json!([{"code": other.report_code(), "message": other.to_string()}])
            }
        };
        output
            .json(&serde_json::json!({"command": command, "result": "error", "errors": errors}))?;
    }
    result
}

/// Prints what the user needs to know about `err` on stderr and returns its exit code.
pub fn report_error(err: &Error) -> ExitCode {
    match err {
        // clap formats its own help, version and usage errors.
        Error::Usage(e) => {
            let _ = e.print();
        }
        // Each problem has been printed with its file, line and column, in the report; a count
        // on another stream would only split it.
        Error::Invalid { .. } => {}
        other => {
            // Error text may quote untrusted input (an API's message, a request field).
            let text = output::workflow::neutralise(&format!("error: {other}"));
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }
    err.exit_code()
}
