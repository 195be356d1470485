//! Audit (`audit_missing`, `audit_mismatch`, `audit_unrecorded`): the record against the
//! application's audit log, both ways. Each cited event exists, records the same ref, rotation,
//! operation and version, was made by the record's operator and created within the record's
//! span (by the application's clock, corrected); and the log is a second ledger: every event
//! naming a rotation the record holds is cited, and a `rotate` followed by a `rollback` of the
//! same ref is a rollback whatever the artifact says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Who may have acted (`actor`): the requester or an approver whose event started the
    /// run, for a rotation and its automatic rollback; the dispatcher, for a dispatched
    /// rollback. Empty: not recorded.
    pub(crate) actors: Vec<String>,
    /// When the record says its events were made, by the runner's clock: from its start (when
    /// recorded) to its finish.
    pub(crate) span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    /// The application's clock minus the runner's during that run, in seconds; `None` for a
    /// record that did not measure it (an older rotor's): its times are not held to anything.
    pub(crate) offset_s: Option<i64>,
    /// For a dispatched rollback, when the rotation it rolls back finished: its event comes
    /// after that, never within the rotation's own run.
    pub(crate) after: Option<DateTime<Utc>>,
}

/// How far outside a record's span its events' times may fall: times are kept to the second,
/// clocks are measured to the second, and an event may be made while the step that asked for
/// it is still being timed.
const SPAN_MARGIN: Duration = Duration::minutes(2);

/// Every audit event `entries` cite.
pub(crate) fn citations<'a>(entries: impl Iterator<Item = &'a Entry>) -> Vec<Citation> {
    let mut out = Vec::new();
    for e in entries {
        let Some(meta) = e.meta() else { continue };
        let mut cite = |r: &str, ev: &artifact::MetaEvent, by: &Run| {
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
                actors: by.actors.clone(),
                span: by.span,
                offset_s: by.offset_s,
                after: by.after,
            });
        };
        // The rotation's run: its requester, or an approver whose review started it.
        let rotation = Run {
            actors: meta
                .operator
                .iter()
                .cloned()
                .chain(meta.approvals.iter().map(|a| a.reviewer.clone()))
                .collect(),
            span: (
                time(meta.started_at.as_deref()),
                time(meta.finished_at.as_deref()),
            ),
            offset_s: meta.app_clock_offset_s,
            after: None,
        };
        for r in &meta.refs {
            for ev in &r.audit_events {
                cite(&r.secret_ref, ev, &rotation);
            }
        }
        for rb in &meta.rollbacks {
            let dispatched = Run {
                actors: vec![rb.operator.clone()],
                span: (time(rb.started_at.as_deref()), time(Some(&rb.finished_at))),
                offset_s: rb.app_clock_offset_s,
                after: time(meta.finished_at.as_deref()),
            };
            for r in &rb.refs {
                for ev in &r.audit_events {
                    cite(&r.secret_ref, ev, &dispatched);
                }
            }
        }
    }
    out
}

/// Who acted in one run of a record, and when it ran.
struct Run {
    actors: Vec<String>,
    span: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    offset_s: Option<i64>,
    after: Option<DateTime<Utc>>,
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
                // Rolled back in the run that rotated it: both moves are on the record (rotor
                // cites the `rotate` one since it records when its runs begin).
                "rolled_back" => {
                    let owed: &[&str] = if meta.started_at.is_some() {
                        &["rotate", "rollback"]
                    } else {
                        &["rollback"]
                    };
                    for operation in owed {
                        if !cites(&r.audit_events, operation) {
                            missing(&r.secret_ref, "rotated and rolled back", operation);
                        }
                    }
                }
                // A failed ref whose record leaves the pointer moved (whatever its rollback
                // field says): the move is recorded in the application before anything can
                // fail after it.
                "failed" if left(r) != r.from && !cites(&r.audit_events, "rotate") => {
                    missing(&r.secret_ref, "moved to another version", "rotate");
                }
                _ => {}
            }
        }
        for rb in &meta.rollbacks {
            for r in &rb.refs {
                // A failed rollback that the record says moved the pointer back: the move
                // back is recorded in the application before its checks run.
                let moved_back = r.result == "failed"
                    && meta.refs.iter().any(|m| {
                        m.secret_ref == r.secret_ref
                            && m.pointer.as_deref() == Some(m.from.as_str())
                    });
                if (r.result == "rolled_back" || moved_back) && !cites(&r.audit_events, "rollback")
                {
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
            // An application that leaves versionId or operation out cannot be held to them.
            let optional = matches!(key, "versionId" | "operation");
            if optional
                && (event.metadata.get(key).is_none()
                    || (key == "versionId" && c.version.is_none()))
            {
                continue;
            }
            if field(key) != expected {
                wrong.push(format!(
                    "metadata.{key} is {:?}, not {expected:?}",
                    field(key)
                ));
            }
        }
        // Who: the operator the record names for this operation.
        if let Some(actor) = event.actor.as_deref()
            && !c.actors.is_empty()
            && !c.actors.iter().any(|a| a == actor)
        {
            wrong.push(format!(
                "its actor is {actor:?}, but the record's operator for this {} is {}",
                c.operation,
                c.actors
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        // When: inside the record's span, by the runner's clock.
        if let (Some(created), Some(offset_s)) = (time(Some(&event.created_at)), c.offset_s) {
            let at = created - Duration::seconds(offset_s);
            if let Some(finished) = c.after
                && at < finished
            {
                wrong.push(format!(
                    "it was created at {} ({} by the runner's clock), before the rotation it rolls back finished ({}): a dispatched rollback comes after its rotation, so this is the rotation's own event",
                    event.created_at,
                    at.format("%Y-%m-%dT%H:%M:%SZ"),
                    finished.format("%Y-%m-%dT%H:%M:%SZ")
                ));
            }
            let early = c.span.0.is_some_and(|start| at < start - SPAN_MARGIN);
            let late = c.span.1.is_some_and(|end| at > end + SPAN_MARGIN);
            if early || late {
                let show = |t: Option<DateTime<Utc>>| {
                    t.map_or_else(
                        || "?".to_owned(),
                        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                    )
                };
                wrong.push(format!(
                    "it was created at {} ({} by the runner's clock, the application's being {}s ahead), outside the record's span {} to {} (give or take two minutes)",
                    event.created_at,
                    show(Some(at)),
                    offset_s,
                    show(c.span.0),
                    show(c.span.1)
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

/// The log as a second ledger: every event in it that names a rotation the record holds is
/// cited by some record (`audit_unrecorded` otherwise), and a ref the log shows rotated and
/// then rolled back by one rotation is recorded as rolled back, automatically or by dispatch
/// (`audit_mismatch` otherwise, whatever the artifact says). `entries` is the whole record;
/// `log` the events read.
pub(crate) fn ledger<'a>(
    entries: impl Iterator<Item = &'a Entry> + Clone,
    log: &[AuditEvent],
) -> Vec<Finding> {
    let mut records: HashMap<&str, (&Entry, &artifact::ArtifactMeta)> = HashMap::new();
    for e in entries.clone() {
        if let Some(meta) = e.meta() {
            records
                .entry(meta.rotation_id.as_str())
                .or_insert((e, meta));
        }
    }
    let all = citations(entries);
    let cited: BTreeSet<String> = all.iter().map(|c| c.id.clone()).collect();
    // The moves the record cites an event for: (rotation, ref, operation, version).
    let cited_moves: BTreeSet<(String, String, String, String)> = all
        .into_iter()
        .map(|c| {
            (
                c.rotation_id,
                c.secret_ref,
                c.operation,
                c.version.unwrap_or_default(),
            )
        })
        .collect();
    let field = |e: &'_ AuditEvent, k: &str| -> String {
        e.metadata
            .get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let mut out = Vec::new();
    let mut operations: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut latest: BTreeMap<(String, String), DateTime<Utc>> = BTreeMap::new();
    for event in log {
        let rotation = field(event, "rotationId");
        let Some((entry, _)) = records.get(rotation.as_str()) else {
            continue;
        };
        let secret_ref = field(event, "ref");
        operations
            .entry((rotation.clone(), secret_ref.clone()))
            .or_default()
            .insert(field(event, "operation"));
        if let Some(t) = time(Some(&event.created_at)) {
            let slot = latest
                .entry((rotation.clone(), secret_ref.clone()))
                .or_insert(t);
            *slot = (*slot).max(t);
        }
        // The same move cited through another event (a resumed run that upserted again, an
        // upsert re-sent after its answer was lost) is accounted for; so are the `rotate`
        // events of records an older rotor wrote before it cited them.
        let same_move = cited_moves.contains(&(
            rotation.clone(),
            secret_ref.clone(),
            field(event, "operation"),
            field(event, "versionId"),
        ));
        let old_format = records
            .get(rotation.as_str())
            .is_some_and(|(_, m)| m.started_at.is_none());
        if !cited.contains(&event.id) && !same_move && !old_format {
            let mut f = Finding::new(
                    Kind::AuditUnrecorded,
                    &entry.path,
                    format!(
                        "audit event {} ({} of {secret_ref} to version {} by {}, created {}) names rotation {rotation}, which {} records, but no record cites it: a move the application saw is missing from the record",
                        event.id,
                        field(event, "operation"),
                        field(event, "versionId"),
                        event.actor.as_deref().unwrap_or("an unnamed actor"),
                        event.created_at,
                        entry.path
                    ),
                )
                .for_ref(&secret_ref);
            // Reported for the period the event was made in, whatever the record's age.
            f.at = time(Some(&event.created_at));
            out.push(f);
        }
    }
    for ((rotation, secret_ref), ops) in operations {
        if !(ops.contains("rotate") && ops.contains("rollback")) {
            continue;
        }
        let Some((entry, meta)) = records.get(rotation.as_str()) else {
            continue;
        };
        let Some(r) = meta.refs.iter().find(|r| r.secret_ref == secret_ref) else {
            continue;
        };
        // Rolled back: so recorded, or left on `from`, or moved back by a rollback the record
        // lists (whatever that rollback's checks said afterwards).
        let by_dispatch = meta.rollbacks.iter().any(|rb| {
            rb.refs.iter().any(|x| {
                x.secret_ref == secret_ref
                    && !matches!(x.result.as_str(), "not_started" | "skipped")
            })
        });
        let back = r.result == "rolled_back"
            || left(r) == r.from
            || r.audit_events.iter().any(|e| e.operation == "rollback");
        if !back && !by_dispatch {
            let mut f = Finding::new(
                Kind::AuditMismatch,
                &entry.path,
                format!(
                    "the application's log shows {secret_ref} rotated and then rolled back by rotation {rotation}, but {} records it as {} with no rollback",
                    entry.path, r.result
                ),
            )
            .for_ref(&secret_ref);
            f.at = latest.get(&(rotation.clone(), secret_ref.clone())).copied();
            out.push(f);
        }
    }
    out
}

/// How far before the oldest cited artifact's finish the log is read: a batch's events are
/// emitted while it runs, which can be long before it finishes.
const AUDIT_MARGIN_DAYS: i64 = 7;

/// What verify read of the application's audit log.
pub(super) struct LogRead {
    /// The cited events found, by id.
    pub(super) found: HashMap<String, AuditEvent>,
    /// Every event read that names a rotation the record holds: the second ledger.
    pub(super) recorded: Vec<AuditEvent>,
}

/// The application's audit log, read newest first, page by page, back past the oldest
/// artifact checked (less a margin), so that every event of the rotations the record holds is
/// seen; without such a date, until every cited id is found. Bounded as every audit search
/// is.
pub(super) async fn audit_log(
    config: &Config,
    cited: &[Citation],
    rotations: &BTreeSet<&str>,
    oldest: Option<DateTime<Utc>>,
    log: &(dyn Fn(&str) + Sync),
) -> Result<LogRead, Error> {
    let app = Arc::new(AppClient::new(&config.app)?);
    let mut wanted: BTreeSet<&str> = cited.iter().map(|c| c.id.as_str()).collect();
    let bound = oldest.map(|t| t - Duration::days(AUDIT_MARGIN_DAYS));
    let mut read = LogRead {
        found: HashMap::new(),
        recorded: Vec::new(),
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut pages = 0;
    app.audit_pages(&config.app.audit_action, |page| {
        pages += 1;
        for e in page {
            if !seen.insert(e.id.clone()) {
                continue;
            }
            if wanted.remove(e.id.as_str()) {
                read.found.insert(e.id.clone(), e.clone());
            }
            let rotation = e.metadata["rotationId"].as_str().unwrap_or_default();
            if rotations.contains(rotation) {
                read.recorded.push(e.clone());
            }
        }
        match bound {
            Some(b) => !page
                .iter()
                .filter_map(|e| time(Some(&e.created_at)))
                .any(|t| t < b),
            None => !wanted.is_empty(),
        }
    })
    .await?;
    log(&format!(
        "audit: {}, {} found, {} of the record's rotations, {} read",
        crate::output::count(cited.len(), "cited event"),
        read.found.len(),
        crate::output::count(read.recorded.len(), "event"),
        crate::output::count(pages, "page")
    ));
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{R, dispatched, entry, meta};
    use super::*;
    use crate::artifact::MetaEvent;

    fn event(id: &str, op: &str, version: &str, actor: &str, at: &str) -> AuditEvent {
        AuditEvent {
            id: id.to_owned(),
            action: "secret_ref_upserted".to_owned(),
            actor_role: "internal_admin".to_owned(),
            actor: Some(actor.to_owned()),
            site_id: Some("site-001".to_owned()),
            tenant: None,
            created_at: at.to_owned(),
            metadata: serde_json::json!({"ref": R, "rotationId": "r-1", "operation": op, "versionId": version}),
        }
    }

    /// A rotation by alice, approved by bob, from 02:08 to 02:10:06, rolled back automatically:
    /// it cites both events.
    fn rolled_back() -> artifact::ArtifactMeta {
        let mut m = meta("r-1", &[(R, "1", "2", "rolled_back")]);
        m.operator = Some("alice".to_owned());
        m.approvals = vec![artifact::MetaApproval {
            reviewer: "bob".to_owned(),
            sha: "a".repeat(40),
            url: "https://github.com/o/r/pull/7#pullrequestreview-1".to_owned(),
        }];
        m.started_at = Some("2026-11-26T02:08:00Z".to_owned());
        m.app_clock_offset_s = Some(0);
        m.refs[0].audit_events = vec![
            MetaEvent {
                id: "evt-1".to_owned(),
                operation: "rotate".to_owned(),
            },
            MetaEvent {
                id: "evt-2".to_owned(),
                operation: "rollback".to_owned(),
            },
        ];
        m
    }

    fn log() -> HashMap<String, AuditEvent> {
        HashMap::from([
            (
                "evt-1".to_owned(),
                event("evt-1", "rotate", "2", "alice", "2026-11-26T02:09:00Z"),
            ),
            (
                "evt-2".to_owned(),
                event("evt-2", "rollback", "1", "alice", "2026-11-26T02:10:00Z"),
            ),
        ])
    }

    #[test]
    fn cited_events_are_held_to_their_actor_and_the_records_span() {
        let entries = [entry("r-1.md", rolled_back(), true)];
        let cited = citations(entries.iter());
        assert_eq!(audit(&cited, &log()), Vec::new());

        // Made by someone the record does not name.
        let mut by_mallory = log();
        by_mallory.insert(
            "evt-2".to_owned(),
            event("evt-2", "rollback", "1", "mallory", "2026-11-26T02:10:00Z"),
        );
        let found = audit(&cited, &by_mallory);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].message.contains("its actor is \"mallory\""),
            "{found:#?}"
        );

        // Created an hour after the record finished.
        let mut late = log();
        late.insert(
            "evt-1".to_owned(),
            event("evt-1", "rotate", "2", "alice", "2026-11-26T03:10:00Z"),
        );
        let found = audit(&cited, &late);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].message.contains("outside the record's span"),
            "{found:#?}"
        );
    }

    #[test]
    fn a_skewed_application_clock_is_never_a_finding() {
        // The application's clock ran seven minutes ahead, and the run measured it.
        let mut m = rolled_back();
        m.app_clock_offset_s = Some(420);
        let entries = [entry("r-1.md", m, true)];
        let cited = citations(entries.iter());
        let skewed = HashMap::from([
            (
                "evt-1".to_owned(),
                event("evt-1", "rotate", "2", "alice", "2026-11-26T02:16:00Z"),
            ),
            (
                "evt-2".to_owned(),
                event("evt-2", "rollback", "1", "alice", "2026-11-26T02:17:00Z"),
            ),
        ]);
        assert_eq!(audit(&cited, &skewed), Vec::new());
    }

    #[test]
    fn a_dispatched_rollback_is_the_dispatchers_and_happens_when_it_ran() {
        let mut m = meta("r-1", &[(R, "1", "2", "success")]);
        m.operator = Some("alice".to_owned());
        m.app_clock_offset_s = Some(0);
        m.refs[0].audit_events[0].id = "evt-1".to_owned();
        let mut rb = dispatched("2026-11-27T09:00:00Z", &[(R, "rolled_back")]);
        rb.operator = "erin".to_owned();
        rb.started_at = Some("2026-11-27T08:59:00Z".to_owned());
        rb.app_clock_offset_s = Some(0);
        rb.refs[0].audit_events = vec![MetaEvent {
            id: "evt-2".to_owned(),
            operation: "rollback".to_owned(),
        }];
        m.rollbacks.push(rb);
        let entries = [entry("r-1.md", m, true)];
        let cited = citations(entries.iter());
        // The log's rollback was alice's, a day earlier, within the rotation: the re-telling
        // of an automatic rollback as erin's dispatch.
        let found = audit(&cited, &log());
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0].message.contains("\"erin\"")
                && found[0].message.contains("outside the record's span"),
            "{found:#?}"
        );
    }

    #[test]
    fn the_log_is_a_second_ledger() {
        let entries = [entry("r-1.md", rolled_back(), true)];
        let events: Vec<AuditEvent> = log().into_values().collect();
        assert_eq!(ledger(entries.iter(), &events), Vec::new());

        // A third event of the rotation, of a move no record cites (to version 3).
        let mut more = events.clone();
        more.push(event(
            "evt-9",
            "rotate",
            "3",
            "alice",
            "2026-11-26T02:09:30Z",
        ));
        let found = ledger(entries.iter(), &more);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].kind, Kind::AuditUnrecorded);
        assert!(found[0].message.contains("evt-9"), "{found:#?}");

        // The same move upserted twice (a resumed run, a re-sent upsert): one cited, the other
        // accounted for by it.
        let mut again = events.clone();
        again.push(event(
            "evt-8",
            "rotate",
            "2",
            "alice",
            "2026-11-26T02:09:10Z",
        ));
        assert_eq!(ledger(entries.iter(), &again), Vec::new());

        // The record re-told as a success: the log still shows the rollback.
        let mut success = rolled_back();
        success.refs[0].result = "success".to_owned();
        success.refs[0].pointer = Some("2".to_owned());
        success.refs[0].audit_events.pop();
        let entries = [entry("r-1.md", success, true)];
        let found = ledger(entries.iter(), &events);
        let kinds: Vec<Kind> = found.iter().map(|f| f.kind).collect();
        assert!(
            kinds.contains(&Kind::AuditMismatch) && kinds.contains(&Kind::AuditUnrecorded),
            "{found:#?}"
        );
    }
}
