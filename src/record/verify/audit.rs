//! Audit (`audit_missing`, `audit_mismatch`, `audit_unrecorded`): the record against the
//! application's audit log, both ways. Each cited event exists, records the same ref, rotation,
//! operation and version, was made by the record's operator and created within the record's
//! span (by the application's clock, corrected); and the log is a second ledger: every event
//! naming a rotation the record holds is cited, and a `rotate` followed by a `rollback` of the
//! same ref is a rollback whatever the artifact says.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::continuity::left;
use super::{Entry, Finding, Kind, time};
use crate::app::{AppClient, AuditEvent};
use crate::artifact::{self};
use crate::config::Config;
use crate::error::Error;

/// An audit event an artifact cites, and what it must record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Citation {
    /// The artifact.
    pub(crate) artifact: String,
    /// The event id.
    pub(crate) id: String,
    /// The ref it must name.
    pub(crate) secret_ref: String,
    /// The rotation it must name.
    pub(crate) rotation_id: String,
    /// `rotate` or `rollback`.
    pub(crate) operation: String,
    /// The version it must record: the rotation's `to` (rotate) or `from` (rollback).
    pub(crate) version: Option<String>,
}

/// Every audit event `entries` cite.
pub(crate) fn citations<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<Citation> {
    let mut out = Vec::new();
    for e in entries {
        let Some(meta) = e.meta() else { continue };
        let mut cite = |r: &str, ev: &artifact::MetaEvent| {
            let moved = meta.refs.iter().find(|m| m.secret_ref == r);
            let version = moved.map(|m| match ev.operation.as_str() {
                "rollback" => m.from.clone(),
                _ => m.to.clone(),
            });
            out.push(Citation {
                artifact: e.path.clone(),
                id: ev.id.clone(),
                secret_ref: r.to_owned(),
                rotation_id: meta.rotation_id.clone(),
                operation: ev.operation.clone(),
                version,
            });
        };
        for r in &meta.refs {
            for ev in &r.audit_events {
                cite(&r.secret_ref, ev);
            }
        }
        for rb in &meta.rollbacks {
            for r in &rb.refs {
                for ev in &r.audit_events {
                    cite(&r.secret_ref, ev);
                }
            }
        }
    }
    out
}

/// Audit, the other way: a ref that rotor records as rotated cites its `rotate` event, one
/// it records as rolled back (automatically or by dispatch) its `rollback` event. rotor never
/// records either without the application's event, so a record without one is not rotor's
/// account of a rotation the application saw.
pub(crate) fn uncited<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<Finding> {
    let mut out = Vec::new();
    let cites = |events: &[artifact::MetaEvent], operation: &str| {
        events.iter().any(|e| e.operation == operation)
    };
    for e in entries {
        let Some(meta) = e.meta() else { continue };
        for rb in meta
            .rollbacks
            .iter()
            .filter(|rb| rb.result == "rolled_back")
        {
            if rb.refs.is_empty() {
                out.push(Finding::new(
                    Kind::AuditMissing,
                    &e.path,
                    format!(
                        "{}: a rollback recorded as rolled back lists no ref, so it cites no `rollback` audit event",
                        e.path
                    ),
                ));
            }
        }
        let mut missing = |r: &str, what: &str, operation: &str| {
            out.push(
                Finding::new(
                    Kind::AuditMissing,
                    &e.path,
                    format!(
                        "{}: {r} is recorded as {what} but the record cites no `{operation}` audit event for it (rotor cites the event of every rotation and rollback it records)",
                        e.path
                    ),
                )
                .for_ref(r),
            );
        };
        for r in &meta.refs {
            match r.result.as_str() {
                "success" if !cites(&r.audit_events, "rotate") => {
                    missing(&r.secret_ref, "rotated", "rotate");
                }
                "rolled_back" if !cites(&r.audit_events, "rollback") => {
                    missing(&r.secret_ref, "rolled back", "rollback");
                }
                // A failed ref whose record leaves the pointer moved: the move is recorded in
                // the application before anything can fail after it.
                "failed"
                    if r.rollback.is_none()
                        && left(r) != r.from
                        && !cites(&r.audit_events, "rotate") =>
                {
                    missing(&r.secret_ref, "moved to another version", "rotate");
                }
                _ => {}
            }
        }
        for rb in &meta.rollbacks {
            for r in rb.refs.iter().filter(|r| r.result == "rolled_back") {
                if !cites(&r.audit_events, "rollback") {
                    missing(&r.secret_ref, "rolled back by dispatch", "rollback");
                }
            }
        }
    }
    out
}

/// Each audit event is cited once in the whole record: one event proves one move. A second
/// citation (a copy of a record, a rollback that never happened) is `audit_mismatch` on every
/// artifact but the first that cites it.
pub(crate) fn cited_twice(cited: &[Citation]) -> Vec<Finding> {
    let mut first: HashMap<&str, &Citation> = HashMap::new();
    let mut out = Vec::new();
    for c in cited {
        match first.get(c.id.as_str()) {
            None => {
                first.insert(&c.id, c);
            }
            Some(earlier) => out.push(
                Finding::new(
                    Kind::AuditMismatch,
                    &c.artifact,
                    format!(
                        "audit event {} is cited again ({} of {} by {}) after {} cited it ({} of {}): one event proves one move",
                        c.id,
                        c.operation,
                        c.secret_ref,
                        c.rotation_id,
                        earlier.artifact,
                        earlier.operation,
                        earlier.secret_ref
                    ),
                )
                .for_ref(&c.secret_ref),
            ),
        }
    }
    out
}

/// Audit: each cited event is in the log (`events`, by id) and records the same ref, rotation
/// and operation.
pub(crate) fn audit(cited: &[Citation], events: &HashMap<String, AuditEvent>) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in cited {
        let Some(event) = events.get(&c.id) else {
            out.push(
                Finding::new(
                    Kind::AuditMissing,
                    &c.artifact,
                    format!(
                        "audit event {} ({} of {} by {}) is not in the application's audit log",
                        c.id, c.operation, c.secret_ref, c.rotation_id
                    ),
                )
                .for_ref(&c.secret_ref),
            );
            continue;
        };
        let field = |k: &str| event.metadata.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let mut wrong = Vec::new();
        let version = c.version.clone().unwrap_or_default();
        for (key, expected) in [
            ("ref", &c.secret_ref),
            ("rotationId", &c.rotation_id),
            ("operation", &c.operation),
            ("versionId", &version),
        ] {
            // An application that leaves versionId out cannot be held to it.
            if key == "versionId" && (c.version.is_none() || event.metadata.get(key).is_none()) {
                continue;
            }
            if field(key) != expected {
                wrong.push(format!(
                    "metadata.{key} is {:?}, not {expected:?}",
                    field(key)
                ));
            }
        }
        if !wrong.is_empty() {
            out.push(
                Finding::new(
                    Kind::AuditMismatch,
                    &c.artifact,
                    format!("audit event {}: {}", c.id, wrong.join("; ")),
                )
                .for_ref(&c.secret_ref),
            );
        }
    }
    out
}

/// How far before the oldest cited artifact's finish the log is read: a batch's events are
/// emitted while it runs, which can be long before it finishes.
const AUDIT_MARGIN_DAYS: i64 = 7;

/// The cited events found in the application's audit log, read newest first, page by page,
/// until every cited id is found or the log reaches back past the oldest cited artifact.
pub(super) async fn audit_log(
    config: &Config,
    cited: &[Citation],
    oldest: Option<DateTime<Utc>>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<HashMap<String, AuditEvent>, Error> {
    let app = Arc::new(AppClient::new(&config.app)?);
    let mut wanted: BTreeSet<&str> = cited.iter().map(|c| c.id.as_str()).collect();
    let bound = oldest.map(|t| t - Duration::days(AUDIT_MARGIN_DAYS));
    let mut found = HashMap::new();
    let mut pages = 0;
    app.audit_pages(&config.app.audit_action, |page| {
        pages += 1;
        for e in page {
            if wanted.remove(e.id.as_str()) {
                found.insert(e.id.clone(), e.clone());
            }
        }
        let past = bound.is_some_and(|b| {
            page.last()
                .and_then(|e| time(Some(&e.created_at)))
                .is_some_and(|t| t < b)
        });
        !wanted.is_empty() && !past
    })
    .await?;
    log(&format!(
        "audit: {}, {} found, {} read",
        crate::output::count(cited.len(), "cited event"),
        found.len(),
        crate::output::count(pages, "page")
    ));
    Ok(found)
}
