//! What every command is handed: the checkout, the config path and the output channel, the
//! async runtime, and the config and requests read from the checkout.

use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::output::Output;
use crate::request::{self, Request};
use crate::yaml;

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

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Reads and validates the config.
pub(crate) fn load_config(path: &Path, display: &str) -> Result<Config, Vec<Diagnostic>> {
    let bytes = yaml::read_limited(path, display).map_err(|d| {
        vec![d.help(format!(
            "create {display} (docs/configuration.md has an example), or point --config at it"
        ))]
    })?;
    config::parse(display, &bytes)
}

/// Loads the config, reporting its problems and failing with exit 2 when it is invalid.
pub(crate) fn require_config(cx: &Context) -> Result<Config, Error> {
    let display = cx.display(&cx.config_path);
    let loaded = load_config(&cx.config_path, &display).map_err(|mut diags| {
        // No config where the repository should be, and a checkout one level down: the
        // workflow checked out into a sub-path.
        if !cx.config_path.exists()
            && crate::gitops::nested_checkout(&cx.repo).is_some()
            && let Some(first) = diags.first_mut()
        {
            *first = first.clone().help(crate::gitops::checkout_hint(&cx.repo));
        }
        diags
    });
    loaded.or_else(|diags| {
        for d in &diags {
            cx.output.diagnostic(d)?;
        }
        Err(Error::Invalid { diagnostics: diags })
    })
}

/// Reports the diagnostics an invalid-input error carries (they name file, line and column),
/// and passes any error on.
pub(crate) fn reported(cx: &Context, err: Error) -> Error {
    if let Error::Invalid { diagnostics } = &err {
        for d in diagnostics {
            let _ = cx.output.diagnostic(d);
        }
    }
    err
}

/// Every valid request directly in `requests_dir`; any invalid one is reported and fails the run.
pub(crate) fn load_requests(cx: &Context, config: &Config) -> Result<Vec<Request>, Error> {
    let dir = cx.repo.join(config.requests_dir.as_str());
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    let mut requests = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        let display = cx.display(&path);
        let parsed = yaml::read_limited(&path, &display)
            .map_err(|d| vec![d])
            .and_then(|bytes| {
                request::parse(
                    &display,
                    &bytes,
                    request::Context {
                        stem: path.file_stem().and_then(|s| s.to_str()),
                        environments: Some(&config.environments),
                    },
                )
            });
        match parsed {
            Ok(r) => requests.push(r),
            Err(diags) => {
                for d in &diags {
                    cx.output.diagnostic(d)?;
                }
                problems.extend(diags);
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid {
            diagnostics: problems,
        });
    }
    Ok(requests)
}

/// The backends' view of the process: its variables, the runner's OIDC tokens when the job may
/// ask for them, and the runner's mask for every credential derived from them.
pub(crate) fn backend_environment() -> crate::backend::Environment {
    crate::backend::Environment {
        vars: None,
        jwt: crate::github::oidc::Runner::from_env().map(crate::github::oidc::Runner::source),
        mask: Some(std::sync::Arc::new(crate::output::workflow::add_mask)),
    }
}
