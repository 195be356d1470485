//! One thin module per subcommand; [`dispatch`] runs the one the command line names.

pub mod apply;
pub mod countersign;
pub mod drift;
pub mod evidence;
pub mod new;
pub mod plan;
pub mod report;
pub mod rollback;
pub mod schema;
pub mod status;
pub mod validate;
pub mod verify;

use std::path::PathBuf;

use crate::cli::{Cli, Command, FormatArg};
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
    let format = cli.global.format;
    if matches!(format, FormatArg::Md | FormatArg::Html)
        && !matches!(cli.command, Command::Evidence { .. })
    {
        return Err(Error::BadArgument {
            name: "--format",
            problem: format!(
                "{} is a format of rotor evidence only; {} writes text or json",
                if format == FormatArg::Md {
                    "md"
                } else {
                    "html"
                },
                cli.command.name()
            ),
        });
    }
    match cli.command {
        Command::Validate { paths } => validate::run(&cx, &paths),
        Command::Schema => schema::run(&cx),
        Command::Drift => runtime()?.block_on(drift::run(&cx)),
        Command::Report => report::run(&cx, chrono::Utc::now()),
        Command::Verify { since, offline } => {
            runtime()?.block_on(verify::run(&cx, &cli.global.config, since, offline))
        }
        Command::Evidence { since, until, out } => {
            let args = evidence::Args {
                since,
                until,
                out,
                format,
            };
            runtime()?.block_on(evidence::run(&cx, &cli.global.config, &args))
        }
        Command::Status { refs } => runtime()?.block_on(status::run(&cx, &refs)),
        Command::Apply {
            event,
            dry_run,
            break_glass,
        } => runtime()?.block_on(apply::run(
            &cx,
            event.as_deref(),
            &cli.global.config,
            dry_run,
            break_glass,
        )),
        Command::Countersign {
            rotation_id,
            reason,
            event,
        } => {
            let args = countersign::Args {
                rotation_id,
                reason,
                event,
            };
            runtime()?.block_on(countersign::run(&cx, &args, &cli.global.config))
        }
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
            rest_of,
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
                rest_of,
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
