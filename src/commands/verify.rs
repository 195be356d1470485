//! `rotor verify`: proves the record on the default branch against git's history, itself, the
//! backends and the application's audit log, read-only. Exit 0 with no finding, 1 with any.
//!
//! The checks live in `record::verify`; this prints what they found: one line per finding (or
//! one JSON object), an `::error file=<artifact>::` annotation each under Actions, and the job
//! summary.

use std::path::Path;

use serde::Serialize;

use crate::cli::DateArg;
use crate::context::Context;
use crate::error::Error;
use crate::outcome::RefError;
use crate::output::{Format, github as gha};
use crate::record::verify::{self, Finding, Mode, Options, Verified};
use crate::render::Renderer;
use crate::secret::SecretString;

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    artifacts: usize,
    refs: usize,
    findings: &'a [Finding],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RefError>,
}

/// Runs `rotor verify`.
pub async fn run(
    cx: &Context,
    config_rel: &Path,
    since: Option<DateArg>,
    offline: bool,
) -> Result<(), Error> {
    let opts = Options {
        config_rel: config_rel.to_string_lossy().replace('\\', "/"),
        since: since.map(|d| d.at),
        until: None,
        mode: if offline { Mode::Offline } else { Mode::Online },
        token: SecretString::from_env("GITHUB_TOKEN"),
    };
    let v = verify::check(&cx.repo, &opts, &|line| cx.output.log(line))
        .await
        .map_err(|e| crate::context::reported(cx, e))?;
    publish(cx, &v)?;
    conclude(&v)
}

/// The annotations, the job summary, the outputs and the report.
fn publish(cx: &Context, v: &Verified) -> Result<(), Error> {
    // Not findings: a reviewed change of who signs is honest. Said where a reader sees it.
    for change in &v.history.trust_changes {
        cx.output
            .annotate_warning(&format!("trust changed: {change}"));
    }
    for f in &v.findings {
        cx.output
            .annotate_error(&f.artifact, &format!("{}: {}", f.kind.as_str(), f.message));
    }
    let mode = match v.mode {
        Mode::Online => "online",
        Mode::Offline => "offline",
    };
    let summary = Renderer::new(Vec::new())?.render(
        "verify.md.j2",
        serde_json::json!({
            "findings": v.findings, "artifacts": v.artifacts, "refs": v.refs, "mode": mode,
            "branch": v.history.branch, "tip": v.history.tip.get(..7).unwrap_or(&v.history.tip),
        }),
    )?;
    gha::append_summary(&summary)?;
    gha::write_outputs(&[
        (
            "result",
            if v.findings.is_empty() {
                "clean"
            } else {
                "findings"
            }
            .to_owned(),
        ),
        ("findings", v.findings.len().to_string()),
    ])?;
    for (r, f) in &v.failures {
        cx.output.log(&format!("{r}: not checked: {f}"));
    }
    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "verify",
            artifacts: v.artifacts,
            refs: v.refs,
            findings: &v.findings,
            errors: v
                .failures
                .iter()
                .map(|(r, f)| RefError::new(r, f))
                .collect(),
        })?,
        Format::Text => {
            // The message names the commit and its author when there is one.
            for f in &v.findings {
                cx.output
                    .report_line(&format!("{}: {}", f.kind.as_str(), f.message))?;
            }
            let count = crate::output::count;
            cx.output.report_line(&format!(
                "rotor verify: {}, {} on {} at {}, {} ({mode})",
                count(v.artifacts, "artifact"),
                count(v.refs, "ref"),
                v.history.branch,
                v.history.tip.get(..7).unwrap_or(&v.history.tip),
                count(v.findings.len(), "finding"),
            ))?;
        }
    }
    Ok(())
}

/// The exit: a check that could not run is graver than a finding (nothing vouches for what
/// it would have found); then any finding is 1.
fn conclude(v: &Verified) -> Result<(), Error> {
    if !v.failures.is_empty() {
        return Err(Error::Refs {
            total: v.refs,
            failures: v.failures.clone(),
        });
    }
    if !v.findings.is_empty() {
        return Err(Error::Findings(v.findings.len()));
    }
    Ok(())
}
