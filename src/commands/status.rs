//! `rotor status [REF...]`: what each ref's secret manager says, read-only.
//!
//! For each ref (default: every ref named by a request in `requests_dir`): the backend, the
//! version the pointer designates, the previous and pending versions, every version with its
//! date and state, and rotor's marker. Reads run concurrently up to `concurrency`; no value is
//! ever read.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::backend::{Backends, Marker, RefState, Secret, Version};
use crate::batch::map_bounded;
use crate::context::Context;
use crate::diagnostic::quote;
use crate::error::Error;
use crate::ids::SecretRef;
use crate::outcome::{RefError, RefFailure};
use crate::output::Format;

/// Versions shown per ref in text; JSON lists them all.
const TEXT_VERSIONS: usize = 10;

#[derive(Debug, Serialize)]
struct VersionReport {
    id: String,
    created: Option<String>,
    state: crate::backend::VersionState,
}

#[derive(Debug, Serialize)]
struct RefReport {
    #[serde(rename = "ref")]
    secret_ref: String,
    backend: &'static str,
    location: String,
    current: Option<String>,
    previous: Option<String>,
    pending: Option<String>,
    pending_versions: Vec<String>,
    /// The version a rollback rejected: never pending, never a default target.
    rejected: Option<String>,
    versions: Vec<VersionReport>,
    marker: Option<Marker>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    refs: &'a [RefReport],
    errors: &'a [RefError],
}

/// Runs `rotor status`.
pub async fn run(cx: &Context, args: &[String]) -> Result<(), Error> {
    let config = crate::context::require_config(cx)?;
    let refs = refs_to_show(cx, &config, args)?;
    let env = crate::context::backend_environment();
    let mut backends = Backends::default();
    let mut secrets = Vec::with_capacity(refs.len());
    for r in &refs {
        secrets.push(backends.resolve(&config, r, &env).await?);
    }
    let results = map_bounded(
        secrets.clone(),
        config.concurrency,
        |secret: Secret| async move { secret.read().await },
    )
    .await;

    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let mut failures = Vec::new();
    for (secret, result) in secrets.iter().zip(results) {
        let failure = match result {
            Some(Ok(state)) => {
                reports.push(report(secret, &state));
                continue;
            }
            Some(Err(e)) => RefFailure::Backend(e),
            None => RefFailure::Interrupted,
        };
        errors.push(RefError::new(secret.secret_ref.as_str(), &failure));
        failures.push((secret.secret_ref.to_string(), failure));
    }
    print(cx, &secrets, &reports, &errors)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Refs {
            total: refs.len(),
            failures,
        })
    }
}

fn refs_to_show(
    cx: &Context,
    config: &crate::config::Config,
    args: &[String],
) -> Result<Vec<SecretRef>, Error> {
    let mut refs: Vec<SecretRef> = Vec::new();
    if args.is_empty() {
        for request in crate::context::load_requests(cx, config)? {
            for entry in request.refs {
                if !refs.contains(&entry.secret_ref) {
                    refs.push(entry.secret_ref);
                }
            }
        }
        if refs.is_empty() {
            return Err(Error::NoRefs {
                action: "show",
                hint: format!(
                    "name refs as arguments, or add requests to {}/",
                    config.requests_dir.as_str()
                ),
            });
        }
    } else {
        for text in args {
            let r = SecretRef::parse(text).map_err(|e| Error::BadRef {
                text: quote(text),
                reason: format!("{}; {}", e.reason, e.help),
            })?;
            if !refs.contains(&r) {
                refs.push(r);
            }
        }
    }
    Ok(refs)
}

fn timestamp(v: &Version) -> Option<String> {
    v.created
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn report(secret: &Secret, state: &RefState) -> RefReport {
    RefReport {
        secret_ref: secret.secret_ref.to_string(),
        backend: secret.backend(),
        location: secret.location.clone(),
        current: state.current.as_ref().map(ToString::to_string),
        previous: state.previous.as_ref().map(ToString::to_string),
        pending: match state.candidates().as_slice() {
            [one] => Some(one.to_string()),
            _ => None,
        },
        pending_versions: state.candidates().iter().map(ToString::to_string).collect(),
        rejected: state.rejected().first().map(|(v, _)| v.to_string()),
        versions: state
            .versions
            .iter()
            .map(|v| VersionReport {
                id: v.id.to_string(),
                created: timestamp(v),
                state: v.state,
            })
            .collect(),
        marker: state.marker.clone(),
    }
}

fn print(
    cx: &Context,
    secrets: &[Secret],
    reports: &[RefReport],
    errors: &[RefError],
) -> Result<(), Error> {
    let out = &cx.output;
    match out.format {
        Format::Json => out.json(&Report {
            command: "status",
            refs: reports,
            errors,
        })?,
        Format::Text => {
            for (i, r) in reports.iter().enumerate() {
                if i > 0 {
                    out.report_line("")?;
                }
                let secret = secrets
                    .iter()
                    .find(|s| s.secret_ref.as_str() == r.secret_ref);
                out.report_line(&format!(
                    "{} ({})",
                    r.secret_ref,
                    secret.map_or_else(|| r.backend.to_owned(), Secret::describe)
                ))?;
                let none = || "-".to_owned();
                let current = match (&r.current, secret.and_then(Secret::pointer_hint)) {
                    (Some(c), _) => c.clone(),
                    (None, Some(hint)) => format!("none (set it: {hint})"),
                    (None, None) => none(),
                };
                out.report_line(&format!("  current:  {current}"))?;
                out.report_line(&format!(
                    "  previous: {}",
                    r.previous.clone().unwrap_or_else(none)
                ))?;
                let pending = if r.pending_versions.is_empty() {
                    none()
                } else if r.pending_versions.len() == 1 {
                    r.pending_versions[0].clone()
                } else {
                    format!(
                        "{} (several: a request must name `to`)",
                        r.pending_versions.join(", ")
                    )
                };
                out.report_line(&format!("  pending:  {pending}"))?;
                if let Some(rejected) = &r.rejected {
                    out.report_line(&format!("  rejected: {rejected} (by a rollback)"))?;
                }
                let marker = r.marker.as_ref().map_or_else(none, |m| {
                    format!(
                        "{} {} ({} -> {})",
                        m.rotation_id,
                        m.state,
                        m.from.as_ref().map_or("?", |v| v.as_str()),
                        m.to.as_ref().map_or("?", |v| v.as_str())
                    )
                });
                out.report_line(&format!("  marker:   {marker}"))?;
                let mut versions: Vec<String> = r
                    .versions
                    .iter()
                    .take(TEXT_VERSIONS)
                    .map(|v| {
                        let state = serde_json::to_value(v.state)
                            .ok()
                            .and_then(|s| s.as_str().map(str::to_owned))
                            .unwrap_or_default();
                        match &v.created {
                            Some(t) => format!("{} {state} {t}", v.id),
                            None => format!("{} {state}", v.id),
                        }
                    })
                    .collect();
                if r.versions.len() > TEXT_VERSIONS {
                    versions.push(format!(
                        "… {} more (--format json lists all)",
                        r.versions.len() - TEXT_VERSIONS
                    ));
                }
                out.report_line(&format!("  versions: {}", versions.join("; ")))?;
            }
            for e in errors {
                out.report_line(&format!("error[{}]: {}", e.code, e.message))?;
            }
        }
    }
    Ok(())
}
