//! `rotor report`: per ref, its last successful rotation (date, rotation id, result) read from
//! the artifacts, and whether it is older than `policy.max_age_days` — the evidence a compliance
//! reviewer asks for — and every break-glass rotation whose second approval is still owed, or
//! was given late. Offline: it reads the checkout only. Markdown (text format) or JSON.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::context::Context;
use crate::error::Error;
use crate::output::{Format, github as gha};
use crate::record::ledger;
use crate::render::Renderer;

/// One ref's line.
#[derive(Debug, Serialize)]
struct Row {
    #[serde(rename = "ref")]
    secret_ref: String,
    /// The date of the last successful rotation that still stands (not rolled back).
    last_rotated: Option<String>,
    rotation_id: Option<String>,
    /// That rotation's result, or the latest attempt's when none succeeded.
    result: String,
    artifact: String,
    age_days: Option<i64>,
    stale: bool,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    generated_at: String,
    max_age_days: u32,
    stale: usize,
    refs: &'a [Row],
    /// Break-glass rotations owed a countersignature, or countersigned late.
    break_glass: &'a [crate::record::glass::GlassRow],
}

/// Runs `rotor report`.
pub fn run(cx: &Context, now: DateTime<Utc>) -> Result<(), Error> {
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
                "nothing to report on yet: no artifact under {}/ (the first merged rotation adds one)",
                config.artifacts_dir.as_str()
            ),
        );
    }
    let max_age = i64::from(config.max_age_days);
    let rows: Vec<Row> = ledger
        .iter()
        .map(|(name, entries)| {
            let success = entries
                .iter()
                .filter(|e| e.succeeded())
                .max_by_key(|e| (e.finished_at, e.rotation_id.clone()));
            match success {
                Some(e) => {
                    let age = e.finished_at.map(|t| (now - t).num_days());
                    Row {
                        secret_ref: name.clone(),
                        last_rotated: e.finished_at.map(|t| t.format("%Y-%m-%d").to_string()),
                        rotation_id: Some(e.rotation_id.clone()),
                        result: e.record.result.clone(),
                        artifact: e.path.clone(),
                        age_days: age,
                        // Unknown age is not evidence of a recent rotation.
                        stale: age.is_none_or(|a| a > max_age),
                    }
                }
                None => {
                    let last = entries.last();
                    Row {
                        secret_ref: name.clone(),
                        last_rotated: None,
                        rotation_id: None,
                        result: last.map_or_else(String::new, |e| {
                            match e.record.rollback.as_deref() {
                                Some("rolled_back") => "rolled_back".to_owned(),
                                _ => e.record.result.clone(),
                            }
                        }),
                        artifact: last.map(|e| e.path.clone()).unwrap_or_default(),
                        age_days: None,
                        stale: true,
                    }
                }
            }
        })
        .collect();
    let stale = rows.iter().filter(|r| r.stale).count();
    let mut glass = Vec::new();
    for (path, text) in ledger::artifact_files(cx, &config)? {
        if let Ok(Some(meta)) = crate::artifact::read_meta(&text)
            && let Some(row) =
                crate::record::glass::row(&path, &meta, meta.countersigned.as_ref(), &config, now)
            && (row.owed || row.late)
        {
            glass.push(row);
        }
    }
    let generated = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let markdown = Renderer::new(Vec::new())?.render(
        "report.md.j2",
        serde_json::json!({
            "rows": rows, "stale": stale, "total": rows.len(),
            "max_age_days": config.max_age_days, "generated": generated,
            "artifacts_dir": config.artifacts_dir.as_str(), "break_glass": glass,
        }),
    )?;
    gha::append_summary(&markdown)?;
    gha::write_outputs(&[
        ("refs", rows.len().to_string()),
        ("stale", stale.to_string()),
        (
            "approvals-owed",
            glass.iter().filter(|g| g.owed).count().to_string(),
        ),
    ])?;
    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "report",
            generated_at: generated,
            max_age_days: config.max_age_days,
            stale,
            refs: &rows,
            break_glass: &glass,
        })?,
        Format::Text => {
            for line in markdown.lines() {
                cx.output.report_line(line)?;
            }
        }
    }
    Ok(())
}
