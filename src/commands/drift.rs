//! `rotor drift`: every ref with an artifact, its live pointer against what the latest
//! artifact says it should be (`schedule`). Read-only; exit 1 on drift.
//!
//! Reads run concurrently up to `concurrency`, one state read per ref, so the cost is linear in
//! the number of refs.

use serde::Serialize;

use crate::backend::{Backends, ResolveError, Secret};
use crate::batch::map_bounded;
use crate::context::Context;
use crate::error::Error;
use crate::ids::SecretRef;
use crate::outcome::RefFailure;
use crate::output::{Format, github as gha};
use crate::record::ledger;
use crate::render::Renderer;
use crate::report::FOLD_AFTER;

/// One ref's comparison.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(rename = "ref")]
    secret_ref: String,
    backend: &'static str,
    rotation_id: String,
    artifact: String,
    expected: String,
    actual: Option<String>,
    actual_created: Option<String>,
    drifted: bool,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    result: &'static str,
    refs: &'a [Row],
    drifted: usize,
}

/// What to do about a drifted ref.
const DRIFT_NEXT_STEP: &str = "find out who moved the pointer: if it was meant, record it with a new rotation; if not, dispatch `rotor rollback` or move it back by hand";

/// What the summary shows: the counts, then the rows that need the reader (drifted, or not
/// checked) with what to do, then the others, folded past [`FOLD_AFTER`] rows.
fn view(rows: &[Row], artifacts_dir: &str) -> serde_json::Value {
    let (attention, others): (Vec<&Row>, Vec<&Row>) =
        rows.iter().partition(|r| r.drifted || r.error.is_some());
    let drifted = rows.iter().filter(|r| r.drifted).count();
    let errors = rows.iter().filter(|r| r.error.is_some()).count();
    let ok = rows.len() - drifted - errors;
    let words: Vec<String> = [(ok, "ok"), (drifted, "drifted"), (errors, "not checked")]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, w)| format!("{n} {w}"))
        .collect();
    let n = rows.len();
    let attention: Vec<serde_json::Value> = attention
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["next_step"] = serde_json::json!(if r.drifted {
                DRIFT_NEXT_STEP
            } else {
                "fix the access or availability named, then run drift again"
            });
            v
        })
        .collect();
    serde_json::json!({
        "counts": format!("{n} {}: {}", if n == 1 { "ref" } else { "refs" }, words.join(", ")),
        "drifted": drifted,
        "total": n,
        "attention": attention,
        "others": others,
        "fold_after": FOLD_AFTER,
        "run_url": run_url(),
        "artifacts_dir": artifacts_dir,
    })
}

/// The workflow run's page, when rotor runs in one.
fn run_url() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Some(format!(
        "{}/{}/actions/runs/{}",
        var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".to_owned()),
        var("GITHUB_REPOSITORY")?,
        var("GITHUB_RUN_ID")?
    ))
}

/// Runs `rotor drift`.
pub async fn run(cx: &Context) -> Result<(), Error> {
    let config = crate::context::require_config(cx)?;
    let ledger = ledger::load(cx, &config)?;
    if ledger.is_empty() {
        // A repository before its first merged rotation: nothing is wrong, and a scheduled job
        // must not fail every day until then.
        cx.output.annotate(
            crate::output::Level::Notice,
            None,
            "rotor",
            &format!(
                "nothing to check for drift yet: no artifact under {}/ (the first merged rotation adds one)",
                config.artifacts_dir.as_str()
            ),
        );
    }
    let env = crate::context::backend_environment();
    let mut backends = Backends::default();
    let mut work = Vec::with_capacity(ledger.len());
    let mut failures = Vec::new();
    let mut rows = Vec::with_capacity(ledger.len());
    for (name, entries) in &ledger {
        let Some(latest) = entries.last() else {
            continue;
        };
        let mut row = Row {
            secret_ref: name.clone(),
            backend: "unknown",
            rotation_id: latest.rotation_id.clone(),
            artifact: latest.path.clone(),
            expected: latest.expected().to_owned(),
            actual: None,
            actual_created: None,
            drifted: false,
            error: None,
        };
        let secret = match SecretRef::parse(name) {
            Ok(r) => backends
                .resolve(&config, &r, &env)
                .await
                .map_err(|e| match e {
                    ResolveError::NoRule(_) => RefFailure::NoBackendRule,
                    ResolveError::Setup(b) => RefFailure::Backend(b),
                }),
            Err(e) => Err(RefFailure::BadRecord(format!(
                "{}: invalid ref: {}",
                latest.path, e.reason
            ))),
        };
        match secret {
            Ok(s) => {
                row.backend = s.backend();
                work.push((rows.len(), s));
            }
            Err(f) => {
                row.error = Some(f.to_string());
                failures.push((name.clone(), f));
            }
        }
        rows.push(row);
    }
    let reads = map_bounded(
        work,
        config.concurrency,
        |(i, secret): (usize, Secret)| async move { (i, secret.read().await) },
    )
    .await;
    for (i, state) in reads.into_iter().flatten() {
        let row = &mut rows[i];
        match state {
            Ok(state) => {
                row.actual = state.current.as_ref().map(ToString::to_string);
                row.actual_created = state
                    .current
                    .as_ref()
                    .and_then(|c| state.version(c))
                    .and_then(|v| v.created)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
                row.drifted = row.actual.as_deref() != Some(row.expected.as_str());
            }
            Err(e) => {
                row.error = Some(e.to_string());
                failures.push((row.secret_ref.clone(), RefFailure::Backend(e)));
            }
        }
    }
    for row in &mut rows {
        if row.actual.is_none() && row.error.is_none() && !row.drifted {
            // The read never completed.
            row.error = Some("not checked".to_owned());
            failures.push((row.secret_ref.clone(), RefFailure::Interrupted));
        }
    }
    let drifted = rows.iter().filter(|r| r.drifted).count();
    let result = if drifted > 0 { "drift" } else { "clean" };

    let summary = Renderer::new(Vec::new())?
        .render("drift.md.j2", view(&rows, config.artifacts_dir.as_str()))?;
    gha::append_summary(&summary)?;
    gha::write_outputs(&[
        ("result", result.to_owned()),
        ("refs", rows.len().to_string()),
    ])?;
    for r in rows.iter().filter(|r| r.drifted) {
        cx.output.annotate_warning(&format!(
            "drift: {} designates {} but {} ({}) left it on {}",
            r.secret_ref,
            r.actual.as_deref().unwrap_or("nothing"),
            r.artifact,
            r.rotation_id,
            r.expected
        ));
    }
    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "drift",
            result,
            refs: &rows,
            drifted,
        })?,
        Format::Text => {
            for r in &rows {
                let status = match (&r.error, r.drifted) {
                    (Some(e), _) => format!("error: {e}"),
                    (None, true) => format!(
                        "DRIFTED: expected {}, found {}{}",
                        r.expected,
                        r.actual.as_deref().unwrap_or("nothing"),
                        r.actual_created
                            .as_ref()
                            .map(|c| format!(" (created {c})"))
                            .unwrap_or_default()
                    ),
                    (None, false) => format!("ok ({})", r.expected),
                };
                cx.output
                    .report_line(&format!("{} ({}): {status}", r.secret_ref, r.backend))?;
            }
            cx.output.report_line(&format!(
                "rotor drift: {drifted} of {} drifted",
                crate::output::count(rows.len(), "ref")
            ))?;
        }
    }
    if !failures.is_empty() {
        return Err(Error::Refs {
            total: rows.len(),
            failures,
        });
    }
    if drifted > 0 {
        return Err(Error::Drift(drifted));
    }
    Ok(())
}
