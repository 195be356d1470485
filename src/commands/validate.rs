//! `rotor validate [PATH...]`: offline validation of the config and request files.
//!
//! With no path it checks the config and every request in `requests_dir`. Every problem in
//! every file is reported (not only the first), each with file, line, column and a fix; the
//! exit code is 2 when there is any.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;
use crate::context::Context;
use crate::diagnostic::{Diagnostic, Pos};
use crate::error::Error;
use crate::output::Format;
use crate::request::{self, Request};
use crate::yaml;

/// What one checked file turned out to be.
#[derive(Debug, Serialize)]
struct FileReport {
    path: String,
    kind: &'static str,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rotation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refs: Option<usize>,
}

/// The JSON report of `rotor validate`.
#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    result: &'static str,
    files: &'a [FileReport],
    errors: &'a [Diagnostic],
}

/// Runs `rotor validate`.
pub fn run(cx: &Context, paths: &[PathBuf]) -> Result<(), Error> {
    let mut files = Vec::new();
    let mut errors = Vec::new();

    let config_display = cx.display(&cx.config_path);
    let config = match crate::context::load_config(&cx.config_path, &config_display) {
        Ok(config) => {
            files.push(FileReport {
                path: config_display.clone(),
                kind: "config",
                valid: true,
                rotation_id: None,
                environment: None,
                refs: None,
            });
            Some(config)
        }
        Err(diags) => {
            files.push(FileReport {
                path: config_display.clone(),
                kind: "config",
                valid: false,
                rotation_id: None,
                environment: None,
                refs: None,
            });
            errors.extend(diags);
            None
        }
    };

    let requests_dir = config
        .as_ref()
        .map_or("rotations", |c| c.requests_dir.as_str());
    let (targets, mut listing_errors) = if paths.is_empty() {
        list_dir(cx, &cx.repo.join(requests_dir))
    } else {
        let mut targets = Vec::new();
        let mut errs = Vec::new();
        for path in paths {
            if same_file(path, &cx.config_path) {
                continue;
            }
            if path.is_dir() {
                let (t, e) = list_dir(cx, path);
                targets.extend(t);
                errs.extend(e);
            } else {
                targets.push(path.clone());
            }
        }
        (targets, errs)
    };
    errors.append(&mut listing_errors);

    for path in targets {
        let display = cx.display(&path);
        match check_request(&path, &display, config.as_ref()) {
            Ok(req) => {
                warn_closed_window(cx, config.as_ref(), &req, &display);
                files.push(FileReport {
                    path: display,
                    kind: "request",
                    valid: true,
                    rotation_id: Some(req.id.to_string()),
                    environment: Some(req.environment.clone()),
                    refs: Some(req.refs.len()),
                });
            }
            Err(diags) => {
                files.push(FileReport {
                    path: display,
                    kind: "request",
                    valid: false,
                    rotation_id: None,
                    environment: None,
                    refs: None,
                });
                errors.extend(diags);
            }
        }
    }

    report(cx, &files, &errors)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Invalid {
            diagnostics: errors,
        })
    }
}

/// A valid request whose maintenance window has closed cannot be applied (plan and apply
/// refuse it, exit 4): worth a warning, unless the rotation already has its artifact (a past
/// rotation's request stays in the directory).
fn warn_closed_window(cx: &Context, config: Option<&Config>, req: &Request, display: &str) {
    let Some(window) = req.maintenance.as_ref().and_then(|m| m.window) else {
        return;
    };
    if window.end > chrono::Utc::now() {
        return;
    }
    // Without a valid config, where artifacts live is unknown: warn all the same.
    if let Some(config) = config
        && cx
            .repo
            .join(config.artifacts_dir.as_str())
            .join(format!("{}.md", req.id))
            .exists()
    {
        return;
    }
    cx.output.warn(&format!(
        "{display}: its maintenance window closed at {}; plan and apply refuse it (exit 4) until the window is moved",
        window.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    ));
}

fn check_request(
    path: &Path,
    display: &str,
    config: Option<&Config>,
) -> Result<Request, Vec<Diagnostic>> {
    let ext = path.extension().and_then(|e| e.to_str());
    if ext != Some("yaml") {
        return Err(vec![
            Diagnostic::new(
                "wrong_extension",
                display,
                Pos::START,
                "a request file's name is `<rotation-id>.yaml`",
            )
            .help("rename the file so that it ends in `.yaml`"),
        ]);
    }
    let stem = path.file_stem().and_then(|s| s.to_str());
    let bytes = yaml::read_limited(path, display).map_err(|d| vec![d])?;
    let request = request::parse(
        display,
        &bytes,
        request::Context {
            stem,
            environments: config.map(|c| &c.environments),
        },
    )?;
    if let Some(config) = config {
        let shared = crate::preflight::shared_locations(config, &request, display, &bytes);
        if !shared.is_empty() {
            return Err(shared);
        }
    }
    Ok(request)
}

/// The request files of a directory, and the misplaced files in it.
fn list_dir(cx: &Context, dir: &Path) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (Vec::new(), Vec::new());
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let ext = path.extension().and_then(|e| e.to_str());
        if path.is_dir() {
            errors.push(
                Diagnostic::new(
                    "misplaced_request",
                    &cx.display(&path),
                    Pos::START,
                    "requests live directly in the requests directory, not in subdirectories",
                )
                .help("move the request files up one level"),
            );
        } else if matches!(ext, Some("yaml" | "yml")) {
            // `.yml` is listed so that its wrong extension is reported, not silently skipped.
            targets.push(path);
        }
    }
    (targets, errors)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn report(cx: &Context, files: &[FileReport], errors: &[Diagnostic]) -> Result<(), Error> {
    let out = &cx.output;
    for d in errors {
        out.diagnostic(d)?;
    }
    match out.format {
        Format::Json => out.json(&Report {
            command: "validate",
            result: if errors.is_empty() {
                "valid"
            } else {
                "invalid"
            },
            files,
            errors,
        })?,
        Format::Text => {
            for f in files.iter().filter(|f| f.valid) {
                let line = match (&f.rotation_id, &f.environment, f.refs) {
                    (Some(id), Some(env), Some(n)) => format!(
                        "ok: {} (rotation {id}, environment {env}, {n} ref{})",
                        f.path,
                        if n == 1 { "" } else { "s" }
                    ),
                    _ => format!("ok: {} ({})", f.path, f.kind),
                };
                out.report_line(&line)?;
            }
            let requests = files.iter().filter(|f| f.kind == "request").count();
            out.report_line(&format!(
                "checked the config and {requests} request file{}: {}",
                if requests == 1 { "" } else { "s" },
                match errors.len() {
                    0 => "no problems".to_owned(),
                    1 => "1 problem".to_owned(),
                    n => format!("{n} problems"),
                }
            ))?;
        }
    }
    Ok(())
}
