//! The rotation artifact (`docs/security/rotations/<id>.md`): its machine-readable
//! part, which `plan`, `apply`, `rollback` and `drift` read back.
//!
//! The artifact carries one HTML comment, invisible when rendered, holding JSON:
//! `<!-- rotor:artifact {…} -->`. What later runs append to it (a `## Rollback`, a
//! `## Countersigned`) is in [`sections`].

use serde::{Deserialize, Serialize};

use crate::render::{RenderError, Renderer};

mod sections;

use sections::render_rollback;
pub use sections::{CountersignSection, RollbackSection, append_countersigned, append_rollback};

/// The marker opening the machine-readable part.
pub const DATA_MARKER: &str = "<!-- rotor:artifact ";

/// What an artifact records about its rotation, as far as reading it back needs: the
/// machine-readable part that `apply` (already applied?), `plan` (id reused?), `rollback`
/// (from/to), `drift` (where the pointer should be) and `report` (when) read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactMeta {
    /// The format of this block.
    #[serde(default = "one")]
    pub version: u32,
    /// The rotation id.
    pub rotation_id: String,
    /// The pull request that carried the request.
    #[serde(default)]
    pub pull_request: Option<u64>,
    /// The final result: `success`, `rolled_back` or `failed`.
    #[serde(default)]
    pub result: Option<String>,
    /// When the rotation finished (RFC 3339).
    #[serde(default)]
    pub finished_at: Option<String>,
    /// Each ref.
    #[serde(default)]
    pub refs: Vec<MetaRef>,
    /// Whether a dispatched rollback was recorded.
    #[serde(default)]
    pub rolled_back: bool,
    /// When it finished (RFC 3339).
    #[serde(default)]
    pub rolled_back_at: Option<String>,
    /// The requester (the runbook's `Operator`).
    #[serde(default)]
    pub operator: Option<String>,
    /// The approvals that counted, with the full SHA each approved.
    #[serde(default)]
    pub approvals: Vec<MetaApproval>,
    /// The workflow run's page.
    #[serde(default)]
    pub run_url: Option<String>,
    /// Each dispatched rollback, in the order they were appended.
    #[serde(default)]
    pub rollbacks: Vec<MetaRollback>,
    /// When the rotation's record begins (RFC 3339): its first step, or the first audit event
    /// it cites when an earlier run of it began before. With `finished_at`, the span its
    /// audit events were created in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The application's clock minus the runner's during the run, in seconds, as measured from
    /// the `Date` of its answers: what corrects its events' `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_clock_offset_s: Option<i64>,
    /// A rollout in waves that halted: how many waves it had and finished, and after which
    /// wave and why. Its skipped refs are in `refs` with result `skipped`: nothing was done to
    /// them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::outcome::RolloutSummary>,
    /// A break-glass rotation: who rotated alone, why and when. Its approval is owed until
    /// `countersigned`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<MetaBreakGlass>,
    /// The second `internal_admin`'s countersignature of a break-glass rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub countersigned: Option<MetaCountersigned>,
}

/// A break-glass rotation in the machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaBreakGlass {
    /// The requester who rotated alone.
    pub by: String,
    /// Why, as the `/rotor break-glass` comment gave it.
    pub reason: String,
    /// When (RFC 3339): what `countersign_within` is measured from.
    pub at: String,
    /// The request's environment, whose `break_glass.countersign_within` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The maintenance window it ran outside of, when it did: recorded, not enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outside_window: Option<String>,
    /// The pull request's head the run rotated from (full SHA): with no approval to name it,
    /// what rotor's commit on the pull request's branch sits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

impl MetaBreakGlass {
    /// Whether `within` has passed between the glass being broken and `when`. A record whose
    /// time cannot be read is taken as overdue: nothing vouches for it being recent.
    pub fn past(&self, within: std::time::Duration, when: chrono::DateTime<chrono::Utc>) -> bool {
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(&self.at) else {
            return true;
        };
        let within = chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        at.with_timezone(&chrono::Utc) + within < when
    }
}

/// A countersignature in the machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaCountersigned {
    /// The second `internal_admin`.
    pub by: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why (a dispatch's reason; for a review, which head it approved).
    pub reason: String,
    /// `dispatch` (the countersign workflow) or `review` (an approving review of the pull
    /// request's head).
    pub via: String,
    /// The workflow run's or the review's page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Whether it came after `countersign_within` had passed.
    #[serde(default)]
    pub late: bool,
    /// For a review: the head it approved (full SHA), which rotor's commit of the
    /// countersignature sits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha: Option<String>,
}

/// An approval in the machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaApproval {
    /// The reviewer's login.
    pub reviewer: String,
    /// The commit approved (full SHA).
    pub sha: String,
    /// The review's page.
    pub url: String,
}

/// A confirmed audit event the artifact cites, with the operation it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaEvent {
    /// The application's event id.
    pub id: String,
    /// `rotate` or `rollback`.
    pub operation: String,
}

impl MetaEvent {
    /// A ref's cited events, each named `rollback` when it is one of `rollback_ids`, else
    /// `rotate`.
    pub fn list(ids: &[String], rollback_ids: &[String]) -> Vec<Self> {
        ids.iter()
            .map(|id| Self {
                id: id.clone(),
                operation: if rollback_ids.contains(id) {
                    "rollback"
                } else {
                    "rotate"
                }
                .to_owned(),
            })
            .collect()
    }
}

/// A dispatched rollback in the machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRollback {
    /// The dispatcher.
    pub operator: String,
    /// Why.
    pub reason: String,
    /// When it finished (RFC 3339).
    pub finished_at: String,
    /// `rolled_back` or `failed`.
    pub result: String,
    /// Whether `--force` overrode the pointer check.
    #[serde(default)]
    pub forced: bool,
    /// The workflow run's page.
    #[serde(default)]
    pub run_url: Option<String>,
    /// Each ref it moved back.
    #[serde(default)]
    pub refs: Vec<MetaRollbackRef>,
    /// When it began (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// The application's clock minus the runner's during it, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_clock_offset_s: Option<i64>,
}

/// One ref of a dispatched rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRollbackRef {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// Its result.
    pub result: String,
    /// The confirmed audit events of the rollback (operation `rollback`).
    #[serde(default)]
    pub audit_events: Vec<MetaEvent>,
}

const fn one() -> u32 {
    1
}

/// One ref in the machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaRef {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// The backend.
    pub backend: String,
    /// The version the pointer moved from.
    pub from: String,
    /// The version it moved to.
    pub to: String,
    /// The rotation's result for this ref.
    pub result: String,
    /// The version the pointer designated when rotor last wrote this artifact: what drift
    /// expects to find.
    #[serde(default)]
    pub pointer: Option<String>,
    /// The dispatched rollback's result for this ref, if it was rolled back by dispatch.
    #[serde(default)]
    pub rollback: Option<String>,
    /// The confirmed audit events of the rotation (a rollback it made itself included).
    #[serde(default)]
    pub audit_events: Vec<MetaEvent>,
    /// Why a skipped ref was skipped (`halted`, `window_closed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl MetaRef {
    /// Whether the record says the rotation moved this ref's pointer: any result but
    /// `not_started` and `skipped` (a halted rollout never started it).
    pub fn claims_move(&self) -> bool {
        !matches!(self.result.as_str(), "not_started" | "skipped")
    }
}

impl ArtifactMeta {
    /// Whether `other` records the same outcome: the same rotation of the same pull request,
    /// the same result, and for every ref the same backend, move, result and final pointer.
    pub fn same_outcome(&self, other: &Self) -> bool {
        let key = |m: &Self| {
            let mut refs: Vec<_> = m
                .refs
                .iter()
                .map(|r| {
                    (
                        r.secret_ref.clone(),
                        r.backend.clone(),
                        r.from.clone(),
                        r.to.clone(),
                        r.result.clone(),
                        r.pointer.clone(),
                        r.rollback.clone(),
                    )
                })
                .collect();
            refs.sort();
            (
                m.rotation_id.clone(),
                m.pull_request,
                m.result.clone(),
                refs,
            )
        };
        key(self) == key(other)
    }

    /// `<!-- rotor:artifact {…} -->`; `<` and `>` are escaped so no value can close the comment.
    pub fn data_block(&self) -> String {
        let json = serde_json::to_string(self)
            .unwrap_or_default()
            .replace('>', "\\u003e")
            .replace('<', "\\u003c");
        format!("\n{DATA_MARKER}{json} -->\n")
    }
}

/// One ref's line in the artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefRecord {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// Its provider.
    pub provider: String,
    /// `vault` or `aws-secrets-manager`.
    pub backend: String,
    /// The version the pointer moved from.
    pub from: String,
    /// The version the pointer moved to.
    pub to: String,
    /// `success`, `rolled_back` or `failed`.
    pub result: String,
    /// The checks, summarised (`resolve 4 ok; site-001 health ok`).
    pub checks: String,
    /// The confirmed audit events.
    pub audit_event_ids: Vec<String>,
    /// Those of `audit_event_ids` that record a rollback (the others record the rotation).
    #[serde(default)]
    pub rollback_event_ids: Vec<String>,
    /// The version the pointer designated at the end.
    #[serde(default)]
    pub pointer: Option<String>,
    /// Why a skipped ref was skipped (`halted`, `window_closed`).
    #[serde(default)]
    pub reason: Option<String>,
}

/// An approval as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The reviewer.
    pub reviewer: String,
    /// The review's page.
    pub url: String,
    /// The commit approved (the full SHA; the artifact shows its first seven characters).
    pub sha: String,
}

/// A step of the timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (RFC 3339).
    pub at: String,
    /// What happened.
    pub event: String,
    /// The ref it happened to.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<String>,
}

/// One ref's steps, for the timeline of a batch.
#[derive(Debug, Serialize)]
struct TimelineGroup<'a> {
    #[serde(rename = "ref")]
    secret_ref: &'a str,
    entries: Vec<&'a TimelineEntry>,
}

/// The `## Rollback` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRecord {
    /// The date (YYYY-MM-DD).
    pub date: String,
    /// The dispatcher.
    pub operator: String,
    /// The rollback's result.
    pub result: String,
    /// Its checks, summarised.
    pub verification: String,
    /// Its audit evidence: the confirmed event ids.
    pub audit_evidence: String,
    /// The audit query link, shown after the ids.
    pub audit_query: String,
    /// Why.
    pub reason: String,
    /// Whether `--force` overrode the pointer check.
    pub forced: bool,
}

/// Everything the artifact records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// The rotation id.
    pub rotation_id: String,
    /// The date (YYYY-MM-DD).
    pub date: String,
    /// The requester.
    pub operator: String,
    /// The overall result.
    pub result: String,
    /// Each ref.
    pub refs: Vec<RefRecord>,
    /// Approvals.
    pub approvals: Vec<ApprovalRecord>,
    /// The pull request's number.
    pub pull_request: Option<u64>,
    /// The pull request's page.
    pub pull_request_url: Option<String>,
    /// The workflow run's page.
    pub run_url: Option<String>,
    /// What happened, in order.
    pub timeline: Vec<TimelineEntry>,
    /// The audit query link.
    pub audit_query: String,
    /// The rollback, if there was one.
    pub rollback: Option<RollbackRecord>,
    /// When the rotation finished (RFC 3339).
    pub finished_at: String,
    /// When its record begins (RFC 3339).
    pub started_at: Option<String>,
    /// The application's clock minus the runner's, in seconds.
    pub app_clock_offset_s: Option<i64>,
    /// A rollout in waves that halted: after which wave and why.
    pub halted: Option<crate::outcome::RolloutSummary>,
    /// A break-glass rotation: who, why, when.
    pub break_glass: Option<MetaBreakGlass>,
}

#[derive(Serialize)]
struct View<'a> {
    /// A break-glass rotation: who, why, when; the heading and the approvals say so.
    break_glass: Option<&'a MetaBreakGlass>,
    /// A rollout in waves that halted: after which wave and why.
    halted: Option<&'a str>,
    rotation_id: &'a str,
    date: &'a str,
    operator: &'a str,
    secret_ref: String,
    provider: String,
    result: &'a str,
    verification: String,
    audit_evidence: String,
    refs: &'a [RefRecord],
    approvals: &'a [ApprovalRecord],
    pull_request: Option<&'a str>,
    run_url: Option<&'a str>,
    timeline: &'a [TimelineEntry],
    /// For a batch: the timeline grouped by ref, in the refs' order, so that it stays readable
    /// at thousands of refs. Empty for one ref.
    timeline_groups: Vec<TimelineGroup<'a>>,
    audit_query: &'a str,
}

impl Artifact {
    /// A batch's timeline grouped by ref, in the refs' order; empty for a single ref.
    fn timeline_groups(&self) -> Vec<TimelineGroup<'_>> {
        if self.refs.len() < 2 {
            return Vec::new();
        }
        let mut groups: Vec<TimelineGroup<'_>> = self
            .refs
            .iter()
            .map(|r| TimelineGroup {
                secret_ref: &r.secret_ref,
                entries: Vec::new(),
            })
            .collect();
        let index: std::collections::HashMap<&str, usize> = self
            .refs
            .iter()
            .enumerate()
            .map(|(i, r)| (r.secret_ref.as_str(), i))
            .collect();
        for entry in &self.timeline {
            if let Some(&i) = entry.secret_ref.as_deref().and_then(|r| index.get(r)) {
                groups[i].entries.push(entry);
            }
        }
        groups
    }

    /// The runbook's `Secret Ref` field: the ref, or for a batch the number of refs.
    pub fn secret_ref_field(&self) -> String {
        match self.refs.as_slice() {
            [one] => one.secret_ref.clone(),
            many => format!("{} refs", many.len()),
        }
    }

    /// The runbook's `Provider` field: every distinct provider.
    pub fn provider_field(&self) -> String {
        let mut providers: Vec<&str> = self.refs.iter().map(|r| r.provider.as_str()).collect();
        providers.sort_unstable();
        providers.dedup();
        providers.join(", ")
    }

    fn verification_field(&self) -> String {
        match self.refs.as_slice() {
            [one] => one.checks.clone(),
            many => {
                let ok = many.iter().filter(|r| r.result == "success").count();
                format!("{ok} of {} refs verified; per ref below", many.len())
            }
        }
    }

    fn audit_evidence_field(&self) -> String {
        let ids: Vec<&str> = self
            .refs
            .iter()
            .flat_map(|r| r.audit_event_ids.iter().map(String::as_str))
            .collect();
        if ids.len() > 10 {
            format!("{} and {} more", ids[..10].join(", "), ids.len() - 10)
        } else if ids.is_empty() {
            "no confirmed event".to_owned()
        } else {
            ids.join(", ")
        }
    }

    /// Renders the artifact: the template, then rotor's own machine-readable block, which an
    /// override cannot remove.
    pub fn render(&self, renderer: &Renderer) -> Result<String, RenderError> {
        let view = View {
            rotation_id: &self.rotation_id,
            date: &self.date,
            operator: &self.operator,
            secret_ref: self.secret_ref_field(),
            provider: self.provider_field(),
            result: &self.result,
            verification: self.verification_field(),
            audit_evidence: self.audit_evidence_field(),
            refs: &self.refs,
            approvals: &self.approvals,
            pull_request: self.pull_request_url.as_deref(),
            run_url: self.run_url.as_deref(),
            timeline: &self.timeline,
            timeline_groups: self.timeline_groups(),
            audit_query: &self.audit_query,
            halted: self.halted.as_ref().and_then(|r| r.reason.as_deref()),
            break_glass: self.break_glass.as_ref(),
        };
        let mut text = renderer.render("artifact.md.j2", view)?;
        refuse_marker("artifact.md.j2", &text)?;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if let Some(record) = &self.rollback {
            text.push('\n');
            text.push_str(&render_rollback(
                renderer,
                record,
                &self.secret_ref_field(),
                &self.provider_field(),
            )?);
        }
        text.push_str(&self.meta().data_block());
        Ok(text)
    }

    /// The machine-readable part.
    pub fn meta(&self) -> ArtifactMeta {
        ArtifactMeta {
            version: 1,
            rotation_id: self.rotation_id.clone(),
            pull_request: self.pull_request,
            result: Some(self.result.clone()),
            finished_at: Some(self.finished_at.clone()),
            refs: self
                .refs
                .iter()
                .map(|r| MetaRef {
                    secret_ref: r.secret_ref.clone(),
                    backend: r.backend.clone(),
                    from: r.from.clone(),
                    to: r.to.clone(),
                    result: r.result.clone(),
                    pointer: r.pointer.clone(),
                    rollback: None,
                    audit_events: MetaEvent::list(&r.audit_event_ids, &r.rollback_event_ids),
                    reason: r.reason.clone(),
                })
                .collect(),
            rolled_back: self.rollback.is_some(),
            rolled_back_at: None,
            operator: Some(self.operator.clone()),
            approvals: self
                .approvals
                .iter()
                .map(|a| MetaApproval {
                    reviewer: a.reviewer.clone(),
                    sha: a.sha.clone(),
                    url: a.url.clone(),
                })
                .collect(),
            run_url: self.run_url.clone(),
            rollbacks: Vec::new(),
            started_at: self.started_at.clone(),
            app_clock_offset_s: self.app_clock_offset_s,
            rollout: self.halted.clone(),
            break_glass: self.break_glass.clone(),
            countersigned: None,
        }
    }
}

/// A template's output may never contain rotor's marker: the one machine-readable block is
/// rotor's own, and a second one would be taken for a forgery.
pub(crate) fn refuse_marker(template: &str, text: &str) -> Result<(), RenderError> {
    if text.contains(DATA_MARKER.trim_end()) {
        return Err(RenderError::Template {
            name: template.to_owned(),
            detail: format!(
                "the output contains `{}`, which only rotor writes (its machine-readable block)",
                DATA_MARKER.trim_end()
            ),
        });
    }
    Ok(())
}

/// Why an artifact's machine-readable block cannot be read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    /// More than one block: rotor writes one, so another was planted (by hand, or by a template
    /// printing text that looks like one).
    #[error("it carries {0} machine-readable blocks; rotor writes exactly one, on the last line")]
    Several(usize),
    /// The block is not the artifact's last line.
    #[error("its machine-readable block is not on its last line, where rotor writes it")]
    NotLast,
    /// The block is not rotor's JSON.
    #[error("its machine-readable block is garbled: {0}")]
    Garbled(String),
}

/// Reads the machine-readable part of an artifact: `Ok(None)` when there is none; an error when
/// there are several, or the one is not the last line, or it is not rotor's JSON.
pub fn read_meta(text: &str) -> Result<Option<ArtifactMeta>, MetaError> {
    match text.matches(DATA_MARKER).count() {
        0 => return Ok(None),
        1 => {}
        n => return Err(MetaError::Several(n)),
    }
    let body = text.trim_end_matches(['\n', '\r']);
    let last = body.rsplit('\n').next().unwrap_or(body);
    let Some(json) = last
        .strip_prefix(DATA_MARKER)
        .and_then(|rest| rest.strip_suffix("-->"))
    else {
        return Err(MetaError::NotLast);
    };
    serde_json::from_str(json.trim())
        .map(Some)
        .map_err(|e| MetaError::Garbled(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_ref(r: &str, provider: &str, result: &str, events: &[&str]) -> RefRecord {
        RefRecord {
            secret_ref: r.to_owned(),
            provider: provider.to_owned(),
            backend: "vault".to_owned(),
            from: "3".to_owned(),
            to: "4".to_owned(),
            result: result.to_owned(),
            checks: "resolve returned 4; site-001 health ok; site-002 health ok".to_owned(),
            audit_event_ids: events.iter().map(|e| (*e).to_owned()).collect(),
            rollback_event_ids: Vec::new(),
            pointer: Some(if result == "success" { "4" } else { "3" }.to_owned()),
            reason: None,
        }
    }

    fn artifact(refs: Vec<RefRecord>) -> Artifact {
        Artifact {
            app_clock_offset_s: None,
            started_at: None,
            rotation_id: "2026-11-25-acme-supabase".to_owned(),
            date: "2026-11-26".to_owned(),
            operator: "alice".to_owned(),
            result: "success".to_owned(),
            refs,
            approvals: vec![ApprovalRecord {
                reviewer: "bob".to_owned(),
                url: "https://github.com/my-org/tenants/pull/7#pullrequestreview-80".to_owned(),
                sha: "aaaaaaa0000000000000000000000000000000aa".to_owned(),
            }],
            pull_request: Some(7),
            pull_request_url: Some("https://github.com/my-org/tenants/pull/7".to_owned()),
            run_url: Some("https://github.com/my-org/tenants/actions/runs/4242".to_owned()),
            timeline: vec![
                TimelineEntry {
                    at: "2026-11-26T02:10:00Z".to_owned(),
                    event: "locked; pointer 3 → 4".to_owned(),
                    secret_ref: None,
                },
                TimelineEntry {
                    at: "2026-11-26T02:10:05Z".to_owned(),
                    event: "verified; audit confirmed".to_owned(),
                    secret_ref: None,
                },
            ],
            audit_query:
                "https://app.example.com/api/v1/audit/events?action=secret_ref_upserted&limit=100"
                    .to_owned(),
            rollback: None,
            finished_at: "2026-11-26T02:10:06Z".to_owned(),
            halted: None,
            break_glass: None,
        }
    }

    #[test]
    fn a_single_ref_artifact_reads_like_the_runbook_template() {
        let a = artifact(vec![one_ref(
            "tenant.acme.supabase.service_role",
            "supabase",
            "success",
            &["evt_000001"],
        )]);
        let text = a
            .render(&Renderer::new(Vec::new()).expect("renderer"))
            .expect("render");
        let head: Vec<&str> = text.lines().take(8).collect();
        assert_eq!(
            head,
            [
                "# Rotation 2026-11-25-acme-supabase",
                "- Date: 2026-11-26",
                "- Operator: alice (internal_admin)",
                "- Secret Ref: tenant.acme.supabase.service_role",
                "- Provider: supabase",
                "- Result: success",
                "- Verification: resolve returned 4; site-001 health ok; site-002 health ok",
                "- Audit Evidence: evt_000001; https://app.example.com/api/v1/audit/events?action=secret_ref_upserted&limit=100",
            ]
        );
        insta::assert_snapshot!("artifact_single", text);
        let meta = read_meta(&text).expect("valid").expect("readable back");
        assert_eq!(
            (
                meta.rotation_id.as_str(),
                meta.pull_request,
                meta.result.as_deref()
            ),
            ("2026-11-25-acme-supabase", Some(7), Some("success"))
        );
    }

    #[test]
    fn a_batch_artifact_counts_refs_lists_providers_and_has_a_table_and_a_rollback() {
        let mut a = artifact(vec![
            one_ref(
                "tenant.acme.supabase.service_role",
                "supabase",
                "rolled_back",
                &["evt_1"],
            ),
            one_ref(
                "tenant.globex.stripe.secret_key",
                "stripe",
                "rolled_back",
                &["evt_2"],
            ),
        ]);
        a.result = "rolled_back".to_owned();
        let step = |at: &str, r: &str, event: &str| TimelineEntry {
            at: at.to_owned(),
            event: event.to_owned(),
            secret_ref: Some(r.to_owned()),
        };
        let (acme, globex) = (
            "tenant.acme.supabase.service_role",
            "tenant.globex.stripe.secret_key",
        );
        // Interleaved as concurrent refs finish their steps; the artifact groups them by ref.
        a.timeline = vec![
            step("2026-11-26T02:10:00Z", acme, "locked for 2026-11-26-acme"),
            step("2026-11-26T02:10:00Z", globex, "locked for 2026-11-26-acme"),
            step("2026-11-26T02:10:01Z", globex, "pointer 7 → 8"),
            step("2026-11-26T02:10:01Z", acme, "pointer 3 → 4"),
            step(
                "2026-11-26T02:10:05Z",
                acme,
                "site-002 health FAILED: status 503",
            ),
            step("2026-11-26T02:10:06Z", acme, "rolled back: pointer 4 → 3"),
            step(
                "2026-11-26T02:10:07Z",
                globex,
                "site-001 health FAILED: status 401",
            ),
            step("2026-11-26T02:10:08Z", globex, "rolled back: pointer 8 → 7"),
        ];
        a.rollback = Some(RollbackRecord {
            date: "2026-11-27".to_owned(),
            operator: "carol".to_owned(),
            result: "success".to_owned(),
            verification: "resolve returned 3 for 2 refs".to_owned(),
            audit_evidence: "evt_3, evt_4".to_owned(),
            audit_query:
                "https://app.example.com/api/v1/audit/events?action=secret_ref_upserted&limit=100"
                    .to_owned(),
            reason: crate::report::tests::HOSTILE.to_owned(),
            forced: true,
        });
        let text = a
            .render(&Renderer::new(Vec::new()).expect("renderer"))
            .expect("render");
        let above = &text[..text.find(DATA_MARKER).expect("block")];
        crate::report::tests::assert_neutral(above);
        assert!(
            text.contains("- Secret Ref: 2 refs\n- Provider: stripe, supabase\n"),
            "{text}"
        );
        assert!(!text.contains("<script>"), "untrusted text is escaped");
        assert!(text.contains("- Forced: yes"));
        insta::assert_snapshot!("artifact_batch_rolled_back", text);
    }

    #[test]
    fn reads_the_data_comment() {
        let text = "# Rotation r-1\n- Date: x\n\n<!-- rotor:artifact {\"rotation_id\":\"r-1\",\"pull_request\":7,\"result\":\"success\"} -->\n";
        let meta = read_meta(text).expect("valid").expect("meta");
        assert_eq!(
            (
                meta.rotation_id.as_str(),
                meta.pull_request,
                meta.result.as_deref()
            ),
            ("r-1", Some(7), Some("success"))
        );
        assert_eq!(read_meta("# Rotation r-1\n"), Ok(None));
        assert!(matches!(
            read_meta("<!-- rotor:artifact {not json} -->"),
            Err(MetaError::Garbled(_))
        ));
        let planted =
            format!("# Rotation r-1\n<!-- rotor:artifact {{\"rotation_id\":\"r-1\"}} -->\n{text}");
        assert_eq!(read_meta(&planted), Err(MetaError::Several(2)));
        let moved = text.replace("-->\n", "-->\n\nmore text\n");
        assert_eq!(read_meta(&moved), Err(MetaError::NotLast));
    }

    #[test]
    fn a_template_printing_the_marker_is_refused() {
        let r = Renderer::new(vec![(
            "artifact.md.j2".to_owned(),
            "# Rotation {{ rotation_id }}\n<!-- rotor:artifact {} -->".to_owned(),
        )])
        .expect("renderer");
        let a = artifact(vec![one_ref(
            "tenant.acme.supabase.service_role",
            "supabase",
            "success",
            &["evt_1"],
        )]);
        assert!(a.render(&r).is_err());
    }

    #[test]
    fn overdue_is_measured_from_the_break() {
        let glass = MetaBreakGlass {
            by: "alice".to_owned(),
            reason: "leak".to_owned(),
            at: "2026-12-01T03:00:00Z".to_owned(),
            environment: None,
            outside_window: None,
            sha: None,
        };
        let at = |t: &str| {
            chrono::DateTime::parse_from_rfc3339(t)
                .expect("time")
                .with_timezone(&chrono::Utc)
        };
        let day = std::time::Duration::from_secs(24 * 3600);
        assert!(!glass.past(day, at("2026-12-02T03:00:00Z")));
        assert!(glass.past(day, at("2026-12-02T03:00:01Z")));
        let garbled = MetaBreakGlass {
            at: "yesterday".to_owned(),
            ..glass
        };
        assert!(garbled.past(day, at("2026-12-01T03:00:00Z")));
    }

    #[test]
    fn a_break_glass_artifact_says_so_first_and_a_countersignature_is_appended() {
        let r = Renderer::new(Vec::new()).expect("renderer");
        let mut a = artifact(vec![one_ref(
            "tenant.acme.supabase.service_role",
            "supabase",
            "success",
            &["evt_000001"],
        )]);
        a.approvals.clear();
        a.break_glass = Some(MetaBreakGlass {
            by: "alice".to_owned(),
            reason: "key leaked in INC-4211\n@everyone <b>now</b>".to_owned(),
            at: "2026-11-26T02:09:00Z".to_owned(),
            environment: Some("production".to_owned()),
            outside_window: Some(
                "outside the maintenance window 2026-11-27T02:00:00Z – 2026-11-27T04:00:00Z: it has not opened yet"
                    .to_owned(),
            ),
            sha: Some("a".repeat(40)),
        });
        let text = a.render(&r).expect("render");
        assert!(text.starts_with("# Rotation 2026-11-25-acme-supabase (break-glass)\n"));
        let visible = text.split(DATA_MARKER).next().expect("body");
        assert!(
            !visible.contains("@everyone") && !visible.contains("<b>"),
            "a reason is text: no mention, no markup"
        );
        insta::assert_snapshot!("artifact_break_glass", text);
        let meta = read_meta(&text).expect("block").expect("meta");
        let countersigned = MetaCountersigned {
            by: "bob".to_owned(),
            at: "2026-11-27T09:00:00Z".to_owned(),
            reason: "checked INC-4211 and the new key's audit events".to_owned(),
            via: "dispatch".to_owned(),
            url: None,
            late: true,
            sha: None,
        };
        let section = CountersignSection {
            countersigned: &countersigned,
            operator: "alice",
            within: "24h".to_owned(),
        };
        let mut after = meta.clone();
        after.countersigned = Some(countersigned.clone());
        let signed = append_countersigned(&text, &section, &after, &r).expect("append");
        let body = text.split(DATA_MARKER).next().expect("body").trim_end();
        assert!(
            signed.starts_with(body),
            "the record above stays byte for byte"
        );
        insta::assert_snapshot!("artifact_countersigned", &signed[body.len()..]);
        assert_eq!(
            read_meta(&signed)
                .expect("block")
                .expect("meta")
                .countersigned,
            Some(countersigned)
        );
    }
}
