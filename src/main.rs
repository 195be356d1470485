//! The `rotor` binary: all behaviour lives in the library; this only maps the outcome.

use std::process::ExitCode;

fn main() -> ExitCode {
    match rotor::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => rotor::report_error(&err),
    }
}
