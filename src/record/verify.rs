//! Proving the record (`rotor verify`): each artifact against git's history (`tampered`),
//! each ref's chain of versions (`gap`), the live pointers (`drift`), the application's audit
//! log (`audit_missing`, `audit_mismatch`) and the artifact against itself (`inconsistent`).
//!
//! The checks are pure functions over what [`history`](super::history) read and what the
//! backends and the application answered, so each is tested here without git or a server;
//! [`check`] gathers the inputs and runs them. Nothing here writes anywhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::history::{ArtifactHistory, Change, History, Identities};
use crate::app::{AppClient, AuditEvent};
use crate::artifact::{self, ArtifactMeta, DATA_MARKER, MetaError};
use crate::backend::{Backends, ResolveError, Secret};
use crate::batch::map_bounded;
use crate::config::Config;
use crate::error::Error;
use crate::ids::SecretRef;
use crate::outcome::RefFailure;
use crate::render::escape_md;
use crate::secret::SecretString;

/// The kind of a finding; the names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An artifact differs from what rotor committed, or a record rotor committed was removed.
    Tampered,
    /// A ref's chain of versions is broken between two records.
    Gap,
    /// A ref's live pointer is not where its last record left it.
    Drift,
    /// A cited audit event is not in the application's log, or a rotated or rolled-back ref
    /// cites none.
    AuditMissing,
    /// A cited audit event records another ref, rotation or operation.
    AuditMismatch,
    /// The artifact's visible fields disagree with its machine-readable block.
    Inconsistent,
}

impl Kind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Gap => "gap",
            Self::Drift => "drift",
            Self::AuditMissing => "audit_missing",
            Self::AuditMismatch => "audit_mismatch",
            Self::Inconsistent => "inconsistent",
        }
    }
}

/// One finding, in the JSON shape of `rotor verify --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: Kind,
    /// The artifact concerned (for `gap`, the later one).
    pub artifact: String,
    /// For `gap`, the earlier artifact.
    pub previous_artifact: Option<String>,
    /// The ref concerned, when one is.
    #[serde(rename = "ref")]
    pub secret_ref: Option<String>,
    /// The commit that brought the difference in, when one did.
    pub commit: Option<String>,
    /// That commit's author, `Name <email>`.
    pub author: Option<String>,
    /// What is wrong, in words.
    pub message: String,
    /// When the commit it names was made: a change made in a period is reported for that
    /// period, whatever the age of the record it changed.
    #[serde(skip)]
    pub(crate) at: Option<DateTime<Utc>>,
}

impl Finding {
    fn new(kind: Kind, artifact: &str, message: String) -> Self {
        Self {
            kind,
            artifact: artifact.to_owned(),
            previous_artifact: None,
            secret_ref: None,
            commit: None,
            author: None,
            message,
            at: None,
        }
    }

    /// Names the commit that wrote the change (for a merge, the merged commit that made it).
    fn by(self, change: &Change) -> Self {
        self.naming(&change.by)
    }

    /// Names `commit` and its author.
    fn naming(mut self, commit: &crate::gitops::CommitInfo) -> Self {
        self.commit = Some(commit.sha.clone());
        self.author = Some(format!("{} <{}>", commit.author.name, commit.author.email));
        self.at = DateTime::from_timestamp(commit.time, 0);
        self
    }

    fn for_ref(mut self, r: &str) -> Self {
        self.secret_ref = Some(r.to_owned());
        self
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// What provenance found for one artifact.
#[derive(Debug, Default)]
pub(crate) struct Provenance {
    /// Its findings.
    pub(crate) findings: Vec<Finding>,
    /// rotor's own commit of the version the default branch first received, when it is one.
    pub(crate) origin: Option<String>,
    /// The change that removed it, when it is no longer on the default branch.
    pub(crate) removed: Option<Change>,
    /// The last version that is rotor's own (its commit, or its rollback appended to it): what
    /// dates the artifact, whatever a later hand changed.
    pub(crate) trusted_text: Option<String>,
}

/// The first line where `a` and `b` differ, quoted, for a message.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut n = 0;
    loop {
        n += 1;
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => {}
            (None, None) => return "the line endings differ".to_owned(),
            (x, y) => {
                let show = |l: Option<&str>| {
                    l.map_or_else(
                        || "nothing".to_owned(),
                        |l| format!("{:?}", l.chars().take(120).collect::<String>()),
                    )
                };
                return format!("line {n}: {} became {}", show(x), show(y));
            }
        }
    }
}

/// The artifact's text before its machine-readable block, trailing space trimmed.
fn body(text: &str) -> &str {
    text.find(DATA_MARKER)
        .map_or(text, |at| &text[..at])
        .trim_end()
}

/// Whether `new` is `old` with rotor's rollback appended: the text above stays byte for byte,
/// a `## Rollback` section follows, and the machine-readable block records the same rotation
/// with one more rollback. `Err` says what else changed.
pub(crate) fn rollback_appended(old: &str, new: &str) -> Result<(), String> {
    let before = body(old);
    let Some(rest) = new.strip_prefix(before) else {
        return Err(format!(
            "the text above changed ({})",
            first_difference(before, body(new))
        ));
    };
    let added = body(rest).trim_start();
    if !added.starts_with("## Rollback") {
        return Err(format!(
            "what was added is not a `## Rollback` section: {:?}",
            added.lines().next().unwrap_or("")
        ));
    }
    let (Ok(Some(a)), Ok(Some(b))) = (artifact::read_meta(old), artifact::read_meta(new)) else {
        return Err("the machine-readable block cannot be read on both sides".to_owned());
    };
    fn rotation(m: &ArtifactMeta) -> impl PartialEq + '_ {
        let refs: Vec<_> = m
            .refs
            .iter()
            .map(|r| {
                (
                    &r.secret_ref,
                    &r.backend,
                    &r.from,
                    &r.to,
                    &r.result,
                    &r.audit_events,
                )
            })
            .collect();
        (
            &m.rotation_id,
            m.pull_request,
            &m.result,
            &m.finished_at,
            &m.operator,
            &m.approvals,
            &m.run_url,
            refs,
        )
    }
    if rotation(&a) != rotation(&b) {
        return Err("the machine-readable block's record of the rotation changed".to_owned());
    }
    if !b.rolled_back || !b.rollbacks.starts_with(&a.rollbacks) {
        return Err(
            "the machine-readable block does not add a rollback to the ones before".to_owned(),
        );
    }
    // What the new rollback may change for a ref: only one it lists, its `rollback` to the
    // result it lists, and its pointer only back to the rotation's `from`.
    let added = b.rollbacks.get(a.rollbacks.len());
    for (old_ref, new_ref) in a.refs.iter().zip(&b.refs) {
        if (&old_ref.pointer, &old_ref.rollback) == (&new_ref.pointer, &new_ref.rollback) {
            continue;
        }
        let listed = added
            .and_then(|rb| rb.refs.iter().find(|r| r.secret_ref == new_ref.secret_ref))
            .map(|r| r.result.as_str());
        let pointer_ok = new_ref.pointer == old_ref.pointer
            || new_ref.pointer.as_deref() == Some(new_ref.from.as_str());
        if listed.is_none() || new_ref.rollback.as_deref() != listed || !pointer_ok {
            return Err(format!(
                "the machine-readable block changes {}'s recorded pointer or rollback other than a rollback of it back to {} would",
                new_ref.secret_ref, new_ref.from
            ));
        }
    }
    Ok(())
}

/// Provenance of one artifact: the version the default branch first received is one rotor
/// committed (on the default branch, or on the pull request's branch), and every later change
/// is rotor's own commit appending a rollback. An artifact removed and brought back must come
/// back as it was removed. `identities` names rotor's commit identities.
pub(crate) fn provenance(a: &ArtifactHistory, identities: &Identities) -> Provenance {
    let mut out = Provenance::default();
    let mut current: Option<&str> = None;
    // Whether the current version is rotor's (a rotor commit may restore an untrusted one).
    let mut trusted = false;
    // The version a removal took, and the removal: what a version brought back must equal.
    let mut taken: Option<(&str, &Change)> = None;
    for change in &a.changes {
        match (current, change.text.as_deref(), change.blob.as_deref()) {
            (None, Some(new), _) if taken.is_some() => {
                let Some((old, removal)) = taken.take() else {
                    continue;
                };
                let restored =
                    new == old || (change.by_rotor && rollback_appended(old, new).is_ok());
                if !restored {
                    trusted = false;
                    out.findings.push(
                        Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was removed by {} and brought back by {} other than it was: {}",
                                a.path,
                                short(&removal.by.sha),
                                short(&change.commit.sha),
                                first_difference(old, new)
                            ),
                        )
                        .naming(&change.commit),
                    );
                }
                out.removed = None;
            }
            (None, Some(_), Some(blob)) => {
                if let Some(rotor) = a.rotor_blobs.get(blob) {
                    out.origin = Some(rotor.clone());
                    trusted = true;
                } else {
                    trusted = false;
                    let message = if a.rotor_blobs.is_empty() {
                        format!(
                            "{} is not what rotor committed: no commit by rotor ({}) ever wrote it; {} brought it in",
                            a.path,
                            identities.describe(),
                            short(&change.commit.sha)
                        )
                    } else {
                        format!(
                            "{} as {} brought it in differs from every version rotor committed",
                            a.path,
                            short(&change.commit.sha)
                        )
                    };
                    out.findings
                        .push(Finding::new(Kind::Tampered, &a.path, message).by(change));
                }
                out.removed = None;
            }
            (Some(old), Some(new), _) => {
                if change.by_rotor {
                    match rollback_appended(old, new) {
                        Ok(()) => {}
                        Err(_) if !trusted => trusted = true,
                        Err(why) => out.findings.push(
                            Finding::new(
                                Kind::Tampered,
                                &a.path,
                                format!(
                                    "{} was rewritten by a commit in rotor's name ({}) that does more than append a rollback: {why}",
                                    a.path,
                                    short(&change.by.sha)
                                ),
                            )
                            .by(change),
                        ),
                    }
                } else {
                    trusted = false;
                    out.findings.push(
                        Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was changed by {}, which is not rotor's own commit: {}",
                                a.path,
                                short(&change.by.sha),
                                first_difference(old, new)
                            ),
                        )
                        .by(change),
                    );
                }
            }
            (Some(old), None, _) => {
                out.removed = Some(change.clone());
                taken = Some((old, change));
            }
            _ => {}
        }
        current = change.text.as_deref();
        if trusted && let Some(text) = current {
            out.trusted_text = Some(text.to_owned());
        }
    }
    out
}

/// An artifact as the checks see it: where it is, what it says, and what provenance found.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its path.
    pub(crate) path: String,
    /// Its text at the default branch's tip; `None` once removed.
    pub(crate) text: Option<String>,
    /// Its machine-readable block (of the last version, when removed).
    pub(crate) meta: Result<Option<ArtifactMeta>, MetaError>,
    /// When its rotation finished, as rotor recorded it.
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// When its rotation and each of its rollbacks finished, as rotor recorded them: what
    /// places it in a period.
    pub(crate) moments: Vec<DateTime<Utc>>,
    /// rotor's own commit of it.
    pub(crate) origin: Option<String>,
    /// The change that removed it.
    pub(crate) removed: Option<Change>,
    /// Where it first came onto the default branch, in first-parent order: the order of
    /// records whose times are equal (times are kept to the second).
    pub(crate) introduced: usize,
}

impl Entry {
    pub(crate) fn meta(&self) -> Option<&ArtifactMeta> {
        self.meta.as_ref().ok().and_then(Option::as_ref)
    }

    /// Whether it is on the default branch now.
    pub(crate) fn present(&self) -> bool {
        self.text.is_some()
    }
}

pub(crate) fn time(t: Option<&str>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Artifacts rotor recorded that are no longer on the default branch: a record is never
/// removed. The finding names the removal, and a later record of one of its refs when there is
/// one.
pub(crate) fn removals(entries: &[Entry]) -> Vec<Finding> {
    // "Later" as the chain orders records: by finish, then (same second) by when they came
    // onto the default branch.
    let mut latest: HashMap<&str, ((DateTime<Utc>, usize), &str)> = HashMap::new();
    for e in entries.iter().filter(|e| e.present()) {
        let (Some(meta), Some(at)) = (e.meta(), e.finished_at) else {
            continue;
        };
        let when = (at, e.introduced);
        for r in &meta.refs {
            let slot = latest
                .entry(r.secret_ref.as_str())
                .or_insert((when, &e.path));
            if when > slot.0 {
                *slot = (when, &e.path);
            }
        }
    }
    let mut out = Vec::new();
    for e in entries.iter().filter(|e| e.origin.is_some()) {
        let (Some(change), Some(meta)) = (&e.removed, e.meta()) else {
            continue;
        };
        let later = meta.refs.iter().find_map(|r| {
            latest
                .get(r.secret_ref.as_str())
                .filter(|(when, _)| {
                    e.finished_at
                        .is_none_or(|mine| *when > (mine, e.introduced))
                })
                .map(|(_, path)| (r.secret_ref.as_str(), *path))
        });
        let finding = match later {
            Some((r, path)) => Finding::new(
                Kind::Tampered,
                &e.path,
                format!(
                    "{} was removed by {} although a later record of {r} exists ({path})",
                    e.path,
                    short(&change.by.sha)
                ),
            )
            .for_ref(r),
            None => Finding::new(
                Kind::Tampered,
                &e.path,
                format!(
                    "{} was removed by {}: rotor recorded rotation {} there, and a record is never removed",
                    e.path,
                    short(&change.by.sha),
                    meta.rotation_id
                ),
            ),
        };
        out.push(finding.by(change));
    }
    out
}

/// The pointer a record left a ref on: what the rotation (and any rollback after it) left.
fn left(r: &artifact::MetaRef) -> &str {
    match &r.pointer {
        Some(p) => p,
        None if matches!(r.result.as_str(), "success" | "failed") => &r.to,
        None => &r.from,
    }
}

/// Each ref's records on the default branch in time order, the ones that moved it.
fn chains(entries: &[Entry]) -> BTreeMap<&str, Vec<(&Entry, &artifact::MetaRef)>> {
    let mut by_ref: BTreeMap<&str, Vec<(&Entry, &artifact::MetaRef)>> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.present()) {
        let Some(meta) = e.meta() else { continue };
        for r in meta.refs.iter().filter(|r| r.result != "not_started") {
            by_ref.entry(&r.secret_ref).or_default().push((e, r));
        }
    }
    for records in by_ref.values_mut() {
        records.sort_by(|(a, _), (b, _)| {
            (a.finished_at, a.introduced, &a.path).cmp(&(b.finished_at, b.introduced, &b.path))
        });
        *records = follow_chain(std::mem::take(records));
    }
    by_ref
}

/// Orders records that finished in the same second (times are kept to the second) the way
/// their chain links them: the one that starts where the previous record left the ref first;
/// when none does, the one that came onto the default branch first.
fn follow_chain<'a>(
    sorted: Vec<(&'a Entry, &'a artifact::MetaRef)>,
) -> Vec<(&'a Entry, &'a artifact::MetaRef)> {
    let mut out: Vec<(&Entry, &artifact::MetaRef)> = Vec::with_capacity(sorted.len());
    let mut rest = sorted.into_iter().peekable();
    while let Some(first) = rest.next() {
        let mut group = vec![first];
        while let Some(next) = rest.next_if(|(e, _)| e.finished_at == first.0.finished_at) {
            group.push(next);
        }
        while !group.is_empty() {
            let pick = match out.last() {
                Some((_, prev)) => group.iter().position(|(_, r)| r.from == left(prev)),
                // The group's start: a record no other record of the group leads to.
                None => group
                    .iter()
                    .position(|(_, r)| !group.iter().any(|(_, o)| left(o) == r.from)),
            };
            out.push(group.remove(pick.unwrap_or(0)));
        }
    }
    out
}

/// Continuity: each rotation of a ref moves it from where the previous record left it.
pub(crate) fn continuity(entries: &[Entry]) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, records) in chains(entries) {
        for pair in records.windows(2) {
            let [(prev, p), (cur, c)] = pair else {
                continue;
            };
            let was = left(p);
            if c.from != was {
                let mut f = Finding::new(
                    Kind::Gap,
                    &cur.path,
                    format!(
                        "{name}: {} moved it from {} but {} left it on {was}: it moved outside rotor in between",
                        cur.path, c.from, prev.path
                    ),
                )
                .for_ref(name);
                f.previous_artifact = Some(prev.path.clone());
                out.push(f);
            }
        }
    }
    out
}

/// Each ref's last record and the pointer it left.
pub(crate) fn last_records(entries: &[Entry]) -> Vec<(String, String, String)> {
    chains(entries)
        .into_iter()
        .filter_map(|(name, records)| {
            records
                .last()
                .map(|(e, r)| (name.to_owned(), e.path.clone(), left(r).to_owned()))
        })
        .collect()
}

/// Live state: each ref's pointer against its last record (`live`: ref → pointer).
pub(crate) fn drift(entries: &[Entry], live: &HashMap<String, Option<String>>) -> Vec<Finding> {
    let mut out = Vec::new();
    for (name, path, expected) in last_records(entries) {
        let Some(actual) = live.get(&name) else {
            continue;
        };
        if actual.as_deref() != Some(expected.as_str()) {
            out.push(
                Finding::new(
                    Kind::Drift,
                    &path,
                    format!(
                        "{name} designates {} but its last record, {path}, left it on {expected}",
                        actual.as_deref().unwrap_or("nothing")
                    ),
                )
                .for_ref(&name),
            );
        }
    }
    out
}

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

/// The value of the runbook field `- <name>: ` among `lines`.
fn field<'a>(lines: &[&'a str], name: &str) -> Option<&'a str> {
    let prefix = format!("- {name}: ");
    lines.iter().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// The cells of a markdown table row, split on unescaped `|`.
fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let mut out = Vec::new();
    let mut cell = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cell.push(c);
                if let Some(n) = chars.next() {
                    cell.push(n);
                }
            }
            '|' => out.push(std::mem::take(&mut cell).trim().to_owned()),
            c => cell.push(c),
        }
    }
    if !cell.trim().is_empty() {
        out.push(cell.trim().to_owned());
    }
    out
}

/// Self-consistency: the visible fields (heading, Operator, Secret Ref, Provider, Result, the
/// batch table, each rollback section's Operator and Result) against the machine-readable
/// block, and the block's rotation id against the file name.
pub(crate) fn consistency(path: &str, text: &str, meta: &ArtifactMeta) -> Vec<Finding> {
    let mut problems = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let sections: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| **l == "## Rollback")
        .map(|(i, _)| i)
        .collect();
    let end = lines
        .iter()
        .skip(1)
        .position(|l| l.starts_with("## "))
        .map_or(lines.len(), |i| i + 1);
    let head = &lines[..end.min(lines.len())];
    let stem = path
        .rsplit('/')
        .next()
        .and_then(|n| n.strip_suffix(".md"))
        .unwrap_or("");
    if meta.rotation_id != stem {
        problems.push(format!(
            "the block records rotation {:?} but the file is named {stem:?}",
            meta.rotation_id
        ));
    }
    // Only the results rotor writes: any other word would let a record move the chain unseen.
    const RESULTS: &[&str] = &["success", "rolled_back", "failed", "not_started"];
    for r in meta
        .refs
        .iter()
        .filter(|r| !RESULTS.contains(&r.result.as_str()))
    {
        problems.push(format!(
            "{} has the result {:?}, which rotor never writes (it writes {})",
            r.secret_ref,
            r.result,
            RESULTS.join(", ")
        ));
    }
    let heading = format!("# Rotation {}", escape_md(&meta.rotation_id));
    if lines.first() != Some(&heading.as_str()) {
        problems.push(format!(
            "the heading is {:?}, the block says {heading:?}",
            lines.first().unwrap_or(&"")
        ));
    }
    fn compare(problems: &mut Vec<String>, name: &str, seen: Option<&str>, expected: String) {
        match seen {
            Some(v) if v == expected => {}
            Some(v) => problems.push(format!("{name} shows {v:?}, the block says {expected:?}")),
            None => problems.push(format!("there is no `- {name}:` line")),
        }
    }
    if let Some(result) = &meta.result {
        compare(
            &mut problems,
            "Result",
            field(head, "Result"),
            escape_md(result),
        );
    }
    let refs = &meta.refs;
    let secret_ref = match refs.as_slice() {
        [one] => escape_md(&one.secret_ref),
        many => format!("{} refs", many.len()),
    };
    compare(
        &mut problems,
        "Secret Ref",
        field(head, "Secret Ref"),
        secret_ref,
    );
    let mut providers: Vec<&str> = refs
        .iter()
        .filter_map(|r| r.secret_ref.split('.').nth(2))
        .collect();
    providers.sort_unstable();
    providers.dedup();
    compare(
        &mut problems,
        "Provider",
        field(head, "Provider"),
        escape_md(&providers.join(", ")),
    );
    if let Some(operator) = &meta.operator {
        compare(
            &mut problems,
            "Operator",
            field(head, "Operator"),
            format!("{} (internal_admin)", escape_md(operator)),
        );
    }
    if refs.len() > 1 {
        let shown: BTreeSet<Vec<String>> = head
            .iter()
            .filter(|l| l.starts_with('|') && !l.starts_with("| ref |") && !l.starts_with("| ---"))
            .map(|l| cells(l).into_iter().take(3).collect())
            .collect();
        let recorded: BTreeSet<Vec<String>> = refs
            .iter()
            .map(|r| {
                vec![
                    escape_md(&r.secret_ref),
                    format!("{} → {}", escape_md(&r.from), escape_md(&r.to)),
                    escape_md(&r.result),
                ]
            })
            .collect();
        for row in recorded.difference(&shown) {
            problems.push(format!(
                "the table has no row `{}` that the block records",
                row.join(" | ")
            ));
        }
        for row in shown.difference(&recorded) {
            problems.push(format!(
                "the table shows `{}`, which the block does not record",
                row.join(" | ")
            ));
        }
    }
    let recorded_rollbacks = if meta.rollbacks.is_empty() {
        usize::from(meta.rolled_back)
    } else {
        meta.rollbacks.len()
    };
    if sections.len() != recorded_rollbacks {
        problems.push(format!(
            "it shows {} `## Rollback` sections, the block records {recorded_rollbacks}",
            sections.len()
        ));
    } else {
        for (n, (&start, rb)) in sections.iter().zip(&meta.rollbacks).enumerate() {
            let stop = sections.get(n + 1).copied().unwrap_or(lines.len());
            let part = &lines[start..stop];
            let name = |f: &str| format!("rollback {}'s {f}", n + 1);
            let (r, o) = (field(part, "Result"), field(part, "Operator"));
            compare(&mut problems, &name("Result"), r, escape_md(&rb.result));
            compare(
                &mut problems,
                &name("Operator"),
                o,
                format!("{} (internal_admin)", escape_md(&rb.operator)),
            );
        }
    }
    problems
        .into_iter()
        .map(|p| Finding::new(Kind::Inconsistent, path, format!("{path}: {p}")))
        .collect()
}

/// Whether the checks reached the backends and the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Live state and audit checked too.
    Online,
    /// git only.
    Offline,
}

/// What to check.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The config's path relative to the repository.
    pub(crate) config_rel: String,
    /// Report findings only for artifacts finished on or after this.
    pub(crate) since: Option<DateTime<Utc>>,
    /// ...and on or before this.
    pub(crate) until: Option<DateTime<Utc>>,
    /// Whether to read the backends and the application.
    pub(crate) mode: Mode,
    /// The token git fetches with.
    pub(crate) token: Option<SecretString>,
}

/// The result of the checks.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The history read.
    pub(crate) history: History,
    /// Every artifact the default branch has or had, by path.
    pub(crate) entries: Vec<Entry>,
    /// The findings for artifacts in the range, in a stable order.
    pub(crate) findings: Vec<Finding>,
    /// Artifacts on the default branch in the range.
    pub(crate) artifacts: usize,
    /// Distinct refs they record.
    pub(crate) refs: usize,
    /// Whether the live checks ran.
    pub(crate) mode: Mode,
    /// Refs whose live state could not be read, with why: the run cannot vouch for them.
    pub(crate) failures: Vec<(String, RefFailure)>,
}

/// When a record's rotation and each of its rollbacks finished.
pub(crate) fn moments(meta: &ArtifactMeta) -> Vec<DateTime<Utc>> {
    std::iter::once(meta.finished_at.as_deref())
        .chain(
            meta.rollbacks
                .iter()
                .map(|rb| Some(rb.finished_at.as_str())),
        )
        .chain(std::iter::once(meta.rolled_back_at.as_deref()))
        .filter_map(time)
        .collect()
}

impl Entry {
    /// Whether its rotation or one of its rollbacks finished in the range, by rotor's own
    /// record of when (a later hand cannot move it out).
    pub(crate) fn in_range(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> bool {
        // An artifact rotor never wrote, or whose time cannot be read, is always in range: its
        // problem is reported whatever the period.
        self.moments.is_empty()
            || self
                .moments
                .iter()
                .any(|t| since.is_none_or(|s| *t >= s) && until.is_none_or(|u| *t <= u))
    }
}

/// Every check, reading the history from the checkout at `repo` (and, online, each ref's
/// state and the application's audit log). Logs through `log`.
pub(crate) async fn check(
    repo: &std::path::Path,
    opts: &Options,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Verified, Error> {
    let history = super::history::load(repo, &opts.config_rel, opts.token.clone(), log)?;
    let mut entries = Vec::new();
    let mut findings = Vec::new();
    for a in history.artifacts.values() {
        if a.changes.is_empty() || !a.is_artifact() {
            continue;
        }
        let p = provenance(a, &history.identities);
        findings.extend(p.findings);
        let text = a.current().map(str::to_owned);
        let last = a
            .changes
            .iter()
            .rev()
            .find_map(|c| c.text.as_deref())
            .unwrap_or("");
        let meta = artifact::read_meta(last);
        // Dated by rotor's own version: a hand that back-dates a block moves nothing.
        let trusted = p
            .trusted_text
            .as_deref()
            .and_then(|t| artifact::read_meta(t).ok().flatten());
        let dated = trusted
            .as_ref()
            .or_else(|| meta.as_ref().ok().and_then(Option::as_ref));
        let finished_at = dated.and_then(|m| time(m.finished_at.as_deref()));
        // Only rotor's own version places an artifact in a period: one rotor never wrote is in
        // every period, whatever date it claims.
        let moments = trusted.as_ref().map(moments).unwrap_or_default();
        entries.push(Entry {
            path: a.path.clone(),
            text,
            meta,
            finished_at,
            moments,
            origin: p.origin,
            removed: p.removed.filter(|_| a.current().is_none()),
            introduced: a.changes.first().map_or(0, |c| c.seq),
        });
    }
    findings.extend(removals(&entries));
    for e in entries.iter().filter(|e| e.present()) {
        match &e.meta {
            Ok(Some(meta)) => {
                findings.extend(consistency(&e.path, e.text.as_deref().unwrap_or(""), meta))
            }
            Ok(None) => findings.push(Finding::new(
                Kind::Inconsistent,
                &e.path,
                format!(
                    "{}: it has no machine-readable block, so nothing it shows can be checked",
                    e.path
                ),
            )),
            Err(err) => findings.push(Finding::new(
                Kind::Inconsistent,
                &e.path,
                format!("{}: {err}", e.path),
            )),
        }
    }
    findings.extend(continuity(&entries));
    let mut failures = Vec::new();
    if opts.mode == Mode::Online {
        let (live, failed) = live_pointers(&history.config, &entries).await;
        failures = failed;
        findings.extend(drift(&entries, &live));
        let in_range: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.in_range(opts.since, opts.until))
            .map(|e| e.path.as_str())
            .collect();
        let listed = || {
            entries
                .iter()
                .filter(|e| e.present() && in_range.contains(e.path.as_str()))
        };
        findings.extend(uncited(listed()));
        // Citations are unique across the whole record; the range filter below keeps the
        // findings of the period.
        let mut by_arrival: Vec<&Entry> = entries.iter().filter(|e| e.present()).collect();
        by_arrival.sort_by(|a, b| (a.introduced, &a.path).cmp(&(b.introduced, &b.path)));
        findings.extend(cited_twice(&citations(by_arrival.into_iter())));
        let cited = citations(listed());
        if !cited.is_empty() {
            let oldest = entries
                .iter()
                .filter(|e| in_range.contains(e.path.as_str()))
                .filter_map(|e| e.finished_at)
                .min();
            let events = audit_log(&history.config, &cited, oldest, log).await?;
            findings.extend(audit(&cited, &events));
        }
    }
    let by_path: HashMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let in_period =
        |t: DateTime<Utc>| opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u);
    findings.retain(|f| {
        by_path
            .get(f.artifact.as_str())
            .is_none_or(|e| e.in_range(opts.since, opts.until))
            || f.at.is_some_and(in_period)
    });
    findings.sort_by(|a, b| {
        (&a.artifact, a.kind, &a.secret_ref, &a.message).cmp(&(
            &b.artifact,
            b.kind,
            &b.secret_ref,
            &b.message,
        ))
    });
    findings.dedup();
    let counted: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.present() && e.in_range(opts.since, opts.until))
        .collect();
    let refs: BTreeSet<&str> = counted
        .iter()
        .filter_map(|e| e.meta())
        .flat_map(|m| m.refs.iter().map(|r| r.secret_ref.as_str()))
        .collect();
    Ok(Verified {
        artifacts: counted.len(),
        refs: refs.len(),
        history,
        entries,
        findings,
        mode: opts.mode,
        failures,
    })
}

/// Each recorded ref's live pointer, read concurrently (metadata only); refs that cannot be
/// read are returned apart, with why.
async fn live_pointers(
    config: &Config,
    entries: &[Entry],
) -> (HashMap<String, Option<String>>, Vec<(String, RefFailure)>) {
    let env = crate::context::backend_environment();
    let mut backends = Backends::default();
    let mut work = Vec::new();
    let mut failures = Vec::new();
    for (name, _, _) in last_records(entries) {
        let secret = match SecretRef::parse(&name) {
            Ok(r) => backends
                .resolve(config, &r, &env)
                .await
                .map_err(|e| match e {
                    ResolveError::NoRule(_) => RefFailure::NoBackendRule,
                    ResolveError::Setup(b) => RefFailure::Backend(b),
                }),
            Err(e) => Err(RefFailure::BadRecord(format!("invalid ref: {}", e.reason))),
        };
        match secret {
            Ok(s) => work.push((name, s)),
            Err(f) => failures.push((name, f)),
        }
    }
    let reads = map_bounded(
        work,
        config.concurrency,
        |(name, secret): (String, Secret)| async move { (name, secret.read().await) },
    )
    .await;
    let mut live = HashMap::new();
    for (name, state) in reads.into_iter().flatten() {
        match state {
            Ok(state) => {
                live.insert(name, state.current.as_ref().map(ToString::to_string));
            }
            Err(e) => failures.push((name, RefFailure::Backend(e))),
        }
    }
    (live, failures)
}

/// How far before the oldest cited artifact's finish the log is read: a batch's events are
/// emitted while it runs, which can be long before it finishes.
const AUDIT_MARGIN_DAYS: i64 = 7;

/// The cited events found in the application's audit log, read newest first, page by page,
/// until every cited id is found or the log reaches back past the oldest cited artifact.
async fn audit_log(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifact::{MetaEvent, MetaRef, MetaRollback, MetaRollbackRef};
    use crate::gitops::{CommitInfo, Person};

    fn commit(sha: &str, who: &str) -> CommitInfo {
        let p = Person {
            name: who.to_owned(),
            email: format!("{who}@example.com"),
        };
        CommitInfo {
            sha: sha.repeat(40 / sha.len()),
            author: p.clone(),
            committer: p,
            parents: vec!["0".repeat(40)],
            time: 0,
        }
    }

    fn meta(id: &str, refs: &[(&str, &str, &str, &str)]) -> ArtifactMeta {
        ArtifactMeta {
            version: 1,
            rotation_id: id.to_owned(),
            pull_request: Some(7),
            result: Some("success".to_owned()),
            finished_at: Some("2026-11-26T02:10:06Z".to_owned()),
            refs: refs
                .iter()
                .map(|(r, from, to, result)| MetaRef {
                    secret_ref: (*r).to_owned(),
                    backend: "vault".to_owned(),
                    from: (*from).to_owned(),
                    to: (*to).to_owned(),
                    result: (*result).to_owned(),
                    pointer: Some(if *result == "success" { *to } else { *from }.to_owned()),
                    rollback: None,
                    audit_events: vec![MetaEvent {
                        id: format!("evt-{r}"),
                        operation: "rotate".to_owned(),
                    }],
                })
                .collect(),
            rolled_back: false,
            rolled_back_at: None,
            operator: Some("alice".to_owned()),
            approvals: Vec::new(),
            run_url: None,
            rollbacks: Vec::new(),
        }
    }

    /// The artifact as rotor renders it, for these records.
    fn render(m: &ArtifactMeta) -> String {
        let refs: Vec<crate::artifact::RefRecord> = m
            .refs
            .iter()
            .map(|r| crate::artifact::RefRecord {
                secret_ref: r.secret_ref.clone(),
                provider: r.secret_ref.split('.').nth(2).unwrap_or("").to_owned(),
                backend: r.backend.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                result: r.result.clone(),
                checks: "ok".to_owned(),
                audit_event_ids: r.audit_events.iter().map(|e| e.id.clone()).collect(),
                rollback_event_ids: Vec::new(),
                pointer: r.pointer.clone(),
            })
            .collect();
        let a = crate::artifact::Artifact {
            rotation_id: m.rotation_id.clone(),
            date: "2026-11-26".to_owned(),
            operator: "alice".to_owned(),
            result: m.result.clone().unwrap_or_default(),
            refs,
            approvals: Vec::new(),
            pull_request: m.pull_request,
            pull_request_url: None,
            run_url: None,
            timeline: Vec::new(),
            audit_query: "https://app.example.com/q".to_owned(),
            rollback: None,
            finished_at: m.finished_at.clone().unwrap_or_default(),
        };
        a.render(&crate::render::Renderer::new(Vec::new()).expect("renderer"))
            .expect("render")
    }

    fn change(c: CommitInfo, text: Option<&str>, by_rotor: bool) -> Change {
        Change {
            seq: 0,
            by: c.clone(),
            commit: c,
            by_rotor,
            blob: text.map(|t| format!("blob-{}", t.len())),
            text: text.map(str::to_owned),
        }
    }

    fn rotor_ids() -> Identities {
        let mut ids = Identities::default();
        ids.add("rotor", "rotor@example.com");
        ids
    }

    const R: &str = "tenant.acme.supabase.service_role";

    /// A rollback bob dispatched, finished `at`, with each ref at its result (citing no event).
    fn dispatched(at: &str, refs: &[(&str, &str)]) -> MetaRollback {
        MetaRollback {
            operator: "bob".to_owned(),
            reason: "errors".to_owned(),
            finished_at: at.to_owned(),
            result: "rolled_back".to_owned(),
            forced: false,
            run_url: None,
            refs: refs
                .iter()
                .map(|(r, result)| MetaRollbackRef {
                    secret_ref: (*r).to_owned(),
                    result: (*result).to_owned(),
                    audit_events: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_version_rotor_committed_then_a_rollback_by_rotor_is_clean() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let mut m2 = m.clone();
        m2.rolled_back = true;
        m2.refs[0].pointer = Some("1".to_owned());
        m2.refs[0].rollback = Some("rolled_back".to_owned());
        m2.rollbacks
            .push(dispatched("2026-11-27T00:00:00Z", &[(R, "rolled_back")]));
        let section = "## Rollback\n- Date: 2026-11-27\n- Operator: bob (internal_admin)\n- Result: rolled_back\n";
        let v1 = format!("{}\n\n{section}{}", body(&v0), m2.data_block());
        assert_eq!(rollback_appended(&v0, &v1), Ok(()));
        let a = ArtifactHistory {
            path: "docs/security/rotations/r-1.md".to_owned(),
            changes: vec![
                change(commit("a", "alice"), Some(&v0), false),
                change(commit("b", "rotor"), Some(&v1), true),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "c".repeat(40))].into(),
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings, Vec::new());
        assert_eq!(p.origin, Some("c".repeat(40)));
        // The rollback's Result and Operator lines agree with the block.
        assert_eq!(consistency(&a.path, &v1, &m2), Vec::new());
    }

    #[test]
    fn an_edit_by_anyone_else_is_tampered_and_names_the_commit_and_its_author() {
        let v0 = render(&meta("r-1", &[(R, "1", "2", "success")]));
        let v1 = v0.replace("- Result: success", "- Result: failed");
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "mallory"), Some(&v1), false),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "a".repeat(40))].into(),
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings.len(), 1, "{:?}", p.findings);
        let f = &p.findings[0];
        assert_eq!(f.kind, Kind::Tampered);
        assert_eq!(f.commit.as_deref(), Some("b".repeat(40).as_str()));
        assert_eq!(f.author.as_deref(), Some("mallory <mallory@example.com>"));
        assert!(
            f.message
                .contains("\"- Result: success\" became \"- Result: failed\""),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_first_version_rotor_never_wrote_is_tampered() {
        let v0 = render(&meta("r-1", &[(R, "1", "2", "success")]));
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![change(commit("s", "alice"), Some(&v0), false)],
            rotor_blobs: [("other".to_owned(), "a".repeat(40))].into(),
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings.len(), 1);
        assert!(
            p.findings[0]
                .message
                .contains("differs from every version rotor committed")
        );
        assert_eq!(p.origin, None);
    }

    #[test]
    fn a_fake_rollback_section_in_rotors_name_is_caught_by_its_block() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        // The section is appended but the block still records no rollback.
        let v1 = format!(
            "{}\n\n## Rollback\n- Result: rolled_back\n{}",
            body(&v0),
            m.data_block()
        );
        assert!(rollback_appended(&v0, &v1).is_err());
        // And text above a rollback may not change.
        let v2 = v1.replace("- Result: success", "- Result: rolled_back");
        assert!(
            rollback_appended(&v0, &v2)
                .expect_err("changed")
                .contains("the text above changed")
        );
    }

    fn entry(path: &str, m: ArtifactMeta, present: bool) -> Entry {
        Entry {
            path: path.to_owned(),
            text: present.then(|| render(&m)),
            finished_at: time(m.finished_at.as_deref()),
            moments: moments(&m),
            meta: Ok(Some(m)),
            origin: Some("c".repeat(40)),
            removed: None,
            introduced: 0,
        }
    }

    #[test]
    fn a_chain_with_a_hole_is_a_gap_naming_both_artifacts() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let mut b = meta("r-2", &[(R, "3", "4", "success")]);
        b.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        let mut c = meta("r-3", &[(R, "4", "5", "success")]);
        c.finished_at = Some("2026-12-02T00:00:00Z".to_owned());
        let entries = vec![
            entry("r-1.md", a, true),
            entry("r-2.md", b, true),
            entry("r-3.md", c, true),
        ];
        let gaps = continuity(&entries);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].artifact, "r-2.md");
        assert_eq!(gaps[0].previous_artifact.as_deref(), Some("r-1.md"));
        assert_eq!(gaps[0].secret_ref.as_deref(), Some(R));
        // A rotation rolled back leaves the pointer on its `from`: the next one starts there.
        let mut rb = meta("r-1", &[(R, "1", "2", "rolled_back")]);
        rb.refs[0].pointer = Some("1".to_owned());
        let mut next = meta("r-2", &[(R, "1", "3", "success")]);
        next.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        assert_eq!(
            continuity(&[entry("r-1.md", rb, true), entry("r-2.md", next, true)]),
            Vec::new()
        );
    }

    #[test]
    fn records_of_the_same_second_follow_their_chain() {
        let mut a = meta("r-b", &[(R, "2", "3", "success")]);
        let mut b = meta("r-a", &[(R, "1", "2", "success")]);
        let mut c = meta("r-c", &[(R, "3", "4", "success")]);
        for m in [&mut a, &mut b, &mut c] {
            m.finished_at = Some("2026-11-26T02:10:06Z".to_owned());
        }
        let entries = [
            entry("b.md", a, true),
            entry("a.md", b, true),
            entry("c.md", c, true),
        ];
        assert_eq!(continuity(&entries), Vec::new());
        assert_eq!(last_records(&entries)[0].1, "c.md");
        // With a real gap in the same second, the order they came onto the branch decides.
        let first = meta("r-z", &[(R, "1", "2", "success")]);
        let later = meta("r-a", &[(R, "3", "4", "success")]);
        let mut entries = [entry("z.md", first, true), entry("a.md", later, true)];
        entries[1].introduced = 5;
        let gaps = continuity(&entries);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].artifact, "a.md");
    }

    #[test]
    fn removing_an_artifact_with_a_later_record_is_tampered() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let mut b = meta("r-2", &[(R, "2", "3", "success")]);
        b.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        let found = removals(&[gone, entry("r-2.md", b, true)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, Kind::Tampered);
        assert_eq!(found[0].commit.as_deref(), Some("d".repeat(40).as_str()));
        // A later record of the same second counts when it came onto the branch later.
        let mut same = meta("r-2", &[(R, "2", "3", "success")]);
        same.finished_at = a.finished_at.clone();
        let mut later = entry("r-2.md", same, true);
        later.introduced = 3;
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        assert_eq!(removals(&[gone, later]).len(), 1);
        // The latest record removed: nothing later exists, and a record is still never removed.
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        let found = removals(&[gone]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("a record is never removed"),
            "{found:?}"
        );
        assert_eq!(
            found[0].author.as_deref(),
            Some("mallory <mallory@example.com>")
        );
        // A file rotor never wrote, removed: not a record, nothing to say.
        let mut stray = entry("r-1.md", a, false);
        stray.origin = None;
        stray.removed = Some(change(commit("d", "mallory"), None, false));
        assert_eq!(removals(&[stray]), Vec::new());
    }

    #[test]
    fn drift_compares_the_pointer_with_the_last_record() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let entries = [entry("r-1.md", a, true)];
        let live = HashMap::from([(R.to_owned(), Some("2".to_owned()))]);
        assert_eq!(drift(&entries, &live), Vec::new());
        let live = HashMap::from([(R.to_owned(), Some("1".to_owned()))]);
        let d = drift(&entries, &live);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, Kind::Drift);
        assert!(d[0].message.contains("designates 1"), "{}", d[0].message);
    }

    #[test]
    fn audit_events_must_exist_and_match() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let entries = [entry("r-1.md", a, true)];
        let cited = citations(entries.iter());
        assert_eq!(cited.len(), 1);
        let event = |r: &str, op: &str| AuditEvent {
            id: format!("evt-{R}"),
            action: "secret_ref_upserted".to_owned(),
            actor_role: "internal_admin".to_owned(),
            site_id: None,
            tenant: None,
            created_at: "2026-11-26T02:10:00Z".to_owned(),
            metadata: serde_json::json!({"ref": r, "rotationId": "r-1", "operation": op}),
        };
        let log = HashMap::from([(format!("evt-{R}"), event(R, "rotate"))]);
        assert_eq!(audit(&cited, &log), Vec::new());
        let log = HashMap::from([(format!("evt-{R}"), event("tenant.x.y.z", "rollback"))]);
        let m = audit(&cited, &log);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, Kind::AuditMismatch);
        assert!(
            m[0].message.contains("metadata.ref") && m[0].message.contains("metadata.operation")
        );
        let missing = audit(&cited, &HashMap::new());
        assert_eq!(missing[0].kind, Kind::AuditMissing);
    }

    #[test]
    fn a_record_brought_back_must_come_back_as_it_was_removed() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let mut rolled = m.clone();
        rolled.refs[0].rollback = Some("rolled_back".to_owned());
        rolled.refs[0].pointer = Some("1".to_owned());
        rolled.rolled_back = true;
        rolled
            .rollbacks
            .push(dispatched("2026-11-27T00:00:00Z", &[(R, "rolled_back")]));
        let v1 = format!(
            "{}\n\n## Rollback\n- Result: rolled_back\n{}",
            body(&v0),
            rolled.data_block()
        );
        let blobs: HashMap<String, String> = [
            (format!("blob-{}", v0.len()), "a".repeat(40)),
            (format!("blob-{}", v1.len()), "b".repeat(40)),
        ]
        .into();
        let history = |back: &str| ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "rotor"), Some(&v1), true),
                change(commit("d", "mallory"), None, false),
                change(commit("e", "mallory"), Some(back), false),
            ],
            rotor_blobs: blobs.clone(),
        };
        // Restored exactly: the removal is undone, nothing to say.
        let p = provenance(&history(&v1), &rotor_ids());
        assert_eq!(
            (p.findings.len(), p.removed.is_none()),
            (0, true),
            "{:?}",
            p.findings
        );
        // rotor's own earlier version, which drops the rollback: tampered, naming both commits.
        let p = provenance(&history(&v0), &rotor_ids());
        assert_eq!(p.findings.len(), 1, "{:?}", p.findings);
        let f = &p.findings[0];
        assert_eq!(f.kind, Kind::Tampered);
        assert!(
            f.message
                .contains("removed by ddddddd and brought back by eeeeeee"),
            "{}",
            f.message
        );
        assert_eq!(f.author.as_deref(), Some("mallory <mallory@example.com>"));
    }

    #[test]
    fn a_rollback_section_may_move_only_the_refs_it_rolls_back_and_only_back() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let appended = |b: &ArtifactMeta| {
            format!(
                "{}\n\n## Rollback\n- Result: rolled_back\n{}",
                body(&v0),
                b.data_block()
            )
        };
        let at = "2026-11-27T00:00:00Z";
        let mut good = m.clone();
        good.rolled_back = true;
        good.refs[0].pointer = Some("1".to_owned());
        good.refs[0].rollback = Some("rolled_back".to_owned());
        good.rollbacks.push(dispatched(at, &[(R, "rolled_back")]));
        assert_eq!(rollback_appended(&v0, &appended(&good)), Ok(()));
        // A rollback that lists no ref cannot move one.
        let mut empty = good.clone();
        empty.rollbacks = vec![dispatched(at, &[])];
        assert!(rollback_appended(&v0, &appended(&empty)).is_err());
        // Nor move it anywhere but back to `from`.
        let mut elsewhere = good.clone();
        elsewhere.refs[0].pointer = Some("3".to_owned());
        assert!(rollback_appended(&v0, &appended(&elsewhere)).is_err());
        // A failed rollback of the ref records its result, the pointer left where it was.
        let mut failed = m.clone();
        failed.rolled_back = true;
        failed.refs[0].rollback = Some("failed".to_owned());
        failed.rollbacks.push(dispatched(at, &[(R, "failed")]));
        assert_eq!(rollback_appended(&v0, &appended(&failed)), Ok(()));
    }

    #[test]
    fn an_artifact_is_dated_by_rotors_own_version_not_a_later_hand() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let v1 = v0.replace("2026-11-26T02:10:06Z", "2020-01-01T00:00:00Z");
        assert_ne!(v0, v1);
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "mallory"), Some(&v1), false),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "a".repeat(40))].into(),
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.trusted_text.as_deref(), Some(v0.as_str()));
        // A rotation whose dispatched rollback finished in the range is in the range.
        let mut rolled = m;
        rolled
            .rollbacks
            .push(dispatched("2026-12-05T00:00:00Z", &[]));
        let e = entry("r-1.md", rolled, true);
        let day = |d: &str| time(Some(d));
        assert!(e.in_range(day("2026-12-01T00:00:00Z"), None));
        assert!(!e.in_range(day("2026-12-06T00:00:00Z"), None));
        assert!(e.in_range(None, day("2026-11-27T00:00:00Z")));
    }

    #[test]
    fn a_rotated_or_rolled_back_ref_must_cite_its_event() {
        let mut m = meta(
            "r-1",
            &[
                (R, "1", "2", "success"),
                ("tenant.b.c.d", "1", "2", "rolled_back"),
            ],
        );
        m.refs[1].audit_events[0].operation = "rollback".to_owned();
        assert_eq!(
            uncited([entry("r-1.md", m.clone(), true)].iter()),
            Vec::new()
        );
        let mut forged = m.clone();
        forged.refs[0].audit_events.clear();
        forged.refs[1].audit_events[0].operation = "rotate".to_owned();
        forged
            .rollbacks
            .push(dispatched("2026-12-05T00:00:00Z", &[(R, "rolled_back")]));
        let found = uncited([entry("r-1.md", forged, true)].iter());
        let said: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(found.len(), 3, "{said:#?}");
        assert!(found.iter().all(|f| f.kind == Kind::AuditMissing));
        assert!(said[2].contains("rolled back by dispatch"), "{said:#?}");
    }

    #[test]
    fn visible_fields_must_agree_with_the_block() {
        let m = meta(
            "r-1",
            &[
                (R, "1", "2", "success"),
                ("tenant.globex.stripe.secret_key", "7", "8", "success"),
            ],
        );
        let text = render(&m);
        assert_eq!(consistency("x/r-1.md", &text, &m), Vec::new());
        let edited = text.replace("| 7 → 8 | success |", "| 7 → 9 | success |");
        let found = consistency("x/r-1.md", &edited, &m);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.kind == Kind::Inconsistent));
        let edited = text.replace("- Result: success", "- Result: failed");
        assert!(
            consistency("x/r-1.md", &edited, &m)[0]
                .message
                .contains("Result shows \"failed\"")
        );
        assert!(
            !consistency("x/other.md", &text, &m).is_empty(),
            "the file name is the id"
        );
    }
}
