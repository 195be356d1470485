//! One thin module per subcommand; [`dispatch`] runs the one the command line names.

pub mod apply;
pub mod drift;
pub mod new;
pub mod plan;
pub mod report;
pub mod rollback;
pub mod schema;
pub mod status;
pub mod validate;

use std::path::PathBuf;

use crate::cli::{Cli, Command};
use crate::context::{Context, runtime};
use crate::error::Error;
use crate::output::Output;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli, output: Output) -> Result<(), Error> {
    let repo = cli
        .global
        .repo
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let config_path = repo.join(&cli.global.config);
    let cx = Context {
        repo,
        config_path,
        output,
    };
    match cli.command {
        Command::Validate { paths } => validate::run(&cx, &paths),
        Command::Schema => schema::run(&cx),
        Command::Drift => runtime()?.block_on(drift::run(&cx)),
        Command::Report => report::run(&cx, chrono::Utc::now()),
        Command::Status { refs } => runtime()?.block_on(status::run(&cx, &refs)),
        Command::Apply { event, dry_run } => runtime()?.block_on(apply::run(
            &cx,
            event.as_deref(),
            &cli.global.config,
            dry_run,
        )),
        Command::Rollback {
            rotation_id,
            reason,
            refs,
            force,
            dry_run,
            event,
        } => {
            let args = rollback::Args {
                rotation_id,
                reason,
                refs,
                force,
                dry_run,
                event,
            };
            runtime()?.block_on(rollback::run(&cx, &args, &cli.global.config))
        }
        Command::New {
            id,
            environment,
            reason,
            refs,
            globs,
            refs_file,
            to,
            window,
            rollout_note,
            rollback,
            dry_run,
        } => {
            let args = new::Args {
                id,
                environment,
                reason,
                refs,
                globs,
                refs_file,
                to,
                window,
                rollout_note,
                rollback,
                dry_run,
            };
            runtime()?.block_on(new::run(&cx, &args))
        }
        Command::Plan { event } => {
            runtime()?.block_on(plan::run(&cx, event.as_deref(), &cli.global.config))
        }
    }
}
