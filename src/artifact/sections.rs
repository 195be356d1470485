//! What later runs append to an artifact: a dispatched rollback's `## Rollback` section, and a
//! second `internal_admin`'s `## Countersigned` section of a break-glass rotation. Each leaves
//! everything above it byte for byte and replaces only the machine-readable block: evidence is
//! added to, never rewritten.

use super::{ArtifactMeta, DATA_MARKER, MetaCountersigned, RollbackRecord, refuse_marker};
use crate::render::{RenderError, Renderer};

/// What a dispatched rollback appends to an artifact.
#[derive(Debug, Clone)]
pub struct RollbackSection {
    /// The runbook fields and the reason.
    pub record: RollbackRecord,
    /// `Secret Ref`: the ref, or for a batch the number of refs.
    pub secret_ref: String,
    /// `Provider`: every distinct provider.
    pub provider: String,
}

/// Renders the `## Rollback` section alone (template `rollback.md.j2`).
pub(super) fn render_rollback(
    renderer: &Renderer,
    record: &RollbackRecord,
    secret_ref: &str,
    provider: &str,
) -> Result<String, RenderError> {
    let text = renderer.render(
        "rollback.md.j2",
        serde_json::json!({"rollback": record, "secret_ref": secret_ref, "provider": provider}),
    )?;
    refuse_marker("rollback.md.j2", &text)?;
    Ok(text)
}

/// Appends a `## Rollback` section to an artifact's text and replaces its machine-readable
/// part with `meta`. Everything the rotation wrote above stays byte for byte: evidence is added
/// to, never rewritten.
pub fn append_rollback(
    text: &str,
    section: &RollbackSection,
    meta: &ArtifactMeta,
    renderer: &Renderer,
) -> Result<String, RenderError> {
    let rendered = render_rollback(
        renderer,
        &section.record,
        &section.secret_ref,
        &section.provider,
    )?;
    Ok(appended(text, &rendered, meta))
}

/// What a countersignature appends to an artifact.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CountersignSection<'a> {
    /// Who, when, why, how.
    pub countersigned: &'a MetaCountersigned,
    /// The break-glass operator, whom it countersigns.
    pub operator: &'a str,
    /// `countersign_within`, as the config writes it (`24h`), for a late one.
    pub within: String,
}

/// Appends a `## Countersigned` section (template `countersigned.md.j2`) and replaces the
/// machine-readable block with `meta`.
pub fn append_countersigned(
    text: &str,
    section: &CountersignSection<'_>,
    meta: &ArtifactMeta,
    renderer: &Renderer,
) -> Result<String, RenderError> {
    let rendered = renderer.render("countersigned.md.j2", section)?;
    refuse_marker("countersigned.md.j2", &rendered)?;
    Ok(appended(text, &rendered, meta))
}

/// `text` above its block, a blank line, `section`, and `meta`'s block.
fn appended(text: &str, section: &str, meta: &ArtifactMeta) -> String {
    let body = match text.find(DATA_MARKER) {
        Some(at) => &text[..at],
        None => text,
    };
    let mut out = body.trim_end().to_owned();
    out.push_str("\n\n");
    out.push_str(section.trim_end());
    out.push('\n');
    out.push_str(&meta.data_block());
    out
}
