//! One module per subcommand, and what they share: the resolved repository, config path and
//! output channel.

pub mod schema;
pub mod validate;

use std::path::{Path, PathBuf};

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::output::Output;

/// What every command needs, resolved from the global options and the environment.
#[derive(Debug)]
pub struct Context {
    /// The repository checkout.
    pub repo: PathBuf,
    /// The config file.
    pub config_path: PathBuf,
    /// Where the report goes.
    pub output: Output,
}

impl Context {
    /// `path` as the user knows it: relative to the repository when inside it, `/`-separated.
    pub fn display(&self, path: &Path) -> String {
        let shown = path.strip_prefix(&self.repo).unwrap_or(path);
        shown
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }
}

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
    }
}
