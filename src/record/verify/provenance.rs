//! Provenance (`tampered`): each artifact on the default branch is exactly what rotor wrote,
//! changed afterwards only by rotor's own commits appending a rollback or a countersignature;
//! a record rotor committed is never removed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{Entry, Finding, Kind, short};
use crate::artifact::{self, ArtifactMeta, DATA_MARKER};
use crate::record::history::{ArtifactHistory, Change, Judge};

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
pub(super) fn body(text: &str) -> &str {
    text.find(DATA_MARKER)
        .map_or(text, |at| &text[..at])
        .trim_end()
}

/// Whether `new` is `old` with rotor's rollback or countersignature appended: the text above
/// stays byte for byte, a `## Rollback` (or `## Countersigned`) section follows, and the
/// machine-readable block records the same rotation with one more rollback (or the
/// countersignature). `Err` says what else changed.
pub(crate) fn section_appended(old: &str, new: &str) -> Result<(), String> {
    let before = body(old);
    let Some(rest) = new.strip_prefix(before) else {
        return Err(format!(
            "the text above changed ({})",
            first_difference(before, body(new))
        ));
    };
    let added = body(rest).trim_start();
    let (Ok(Some(a)), Ok(Some(b))) = (artifact::read_meta(old), artifact::read_meta(new)) else {
        return Err("the machine-readable block cannot be read on both sides".to_owned());
    };
    if added.starts_with("## Countersigned") {
        return countersign_added(&a, &b);
    }
    if !added.starts_with("## Rollback") {
        return Err(format!(
            "what was added is neither a `## Rollback` nor a `## Countersigned` section: {:?}",
            added.lines().next().unwrap_or("")
        ));
    }
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
            (&m.break_glass, &m.countersigned),
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
        // Back to `from` only by a rollback it lists (rolled back, or failed after the move
        // back landed); online, such a move back owes its `rollback` event.
        let pointer_ok = new_ref.pointer == old_ref.pointer
            || (new_ref.pointer.as_deref() == Some(new_ref.from.as_str())
                && matches!(listed, Some("rolled_back" | "failed")));
        if listed.is_none() || new_ref.rollback.as_deref() != listed || !pointer_ok {
            return Err(format!(
                "the machine-readable block changes {}'s recorded pointer or rollback other than a rollback of it back to {} would",
                new_ref.secret_ref, new_ref.from
            ));
        }
    }
    Ok(())
}

/// Whether `b` is `a` with a countersignature added to a break-glass rotation that had none,
/// and nothing else changed.
fn countersign_added(a: &ArtifactMeta, b: &ArtifactMeta) -> Result<(), String> {
    if a.break_glass.is_none() {
        return Err(
            "a countersignature was added to a rotation that was not break-glass".to_owned(),
        );
    }
    if a.countersigned.is_some() {
        return Err("a second countersignature was added".to_owned());
    }
    let Some(cs) = &b.countersigned else {
        return Err("the machine-readable block records no countersignature".to_owned());
    };
    if a.break_glass
        .as_ref()
        .is_some_and(|g| g.by.eq_ignore_ascii_case(&cs.by))
    {
        return Err(format!(
            "the countersignature is by {}, who broke the glass",
            cs.by
        ));
    }
    let unchanged = ArtifactMeta {
        countersigned: None,
        ..b.clone()
    };
    if &unchanged != a {
        return Err("the machine-readable block changes more than the countersignature".to_owned());
    }
    Ok(())
}

/// Provenance of one artifact: the version the default branch first received is one rotor
/// committed (on the default branch, or on the pull request's branch), and every later change
/// is rotor's own commit appending a rollback. An artifact removed and brought back must come
/// back as it was removed. `judge` names rotor's commit identities and signing keys.
pub(crate) fn provenance(a: &ArtifactHistory, judge: &Judge) -> Provenance {
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
                    new == old || (change.by_rotor && section_appended(old, new).is_ok());
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
                // Where `commit.via: api` governed the commit that brought it in, only GitHub's
                // signed commit in the name then in force vouches for it.
                let vouched = match &change.api {
                    None => a.rotor_blobs.get(blob),
                    Some(author) => a
                        .signed_blobs
                        .get(blob)
                        .filter(|by| *by == author)
                        .and_then(|_| a.rotor_blobs.get(blob)),
                };
                let signed_as = change.api.as_ref().and_then(|_| a.signed_blobs.get(blob));
                if let Some(rotor) = vouched {
                    out.origin = Some(rotor.clone());
                    trusted = true;
                } else if let (Some(author), Some(by)) = (&change.api, signed_as) {
                    trusted = false;
                    out.findings.push(
                        Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was committed by GitHub as {} <{}>, but commit.author was {} <{}> when {} brought it in",
                                a.path, by.name, by.email, author.name, author.email,
                                short(&change.commit.sha)
                            ),
                        )
                        .by(change),
                    );
                } else if let Some((commit, problem)) = a.refused.get(blob) {
                    trusted = false;
                    out.findings.push(
                        Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was written by {}, a commit in rotor's name that is not rotor's: with commit.via: api rotor's commits are GitHub's, signed by {}, and {}; {} brought it in",
                                a.path,
                                short(&commit.sha),
                                judge.keys.source,
                                problem.describe(),
                                short(&change.commit.sha)
                            ),
                        )
                        .naming(commit)
                        .because(problem),
                    );
                } else {
                    trusted = false;
                    let message = if a.rotor_blobs.is_empty() {
                        format!(
                            "{} is not what rotor committed: no commit by rotor ({}) ever wrote it; {} brought it in",
                            a.path,
                            judge.identities.describe(),
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
                    match section_appended(old, new) {
                        Ok(()) => {}
                        Err(_) if !trusted => trusted = true,
                        Err(why) => out.findings.push(
                            Finding::new(
                                Kind::Tampered,
                                &a.path,
                                format!(
                                    "{} was rewritten by a commit in rotor's name ({}) that does more than append a rollback or a countersignature: {why}",
                                    a.path,
                                    short(&change.by.sha)
                                ),
                            )
                            .by(change),
                        ),
                    }
                } else {
                    trusted = false;
                    let finding = match &change.refused {
                        Some(problem) => Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was changed by {}, a commit in rotor's name that is not rotor's: with commit.via: api rotor's commits are GitHub's, signed by {}, and {}: {}",
                                a.path,
                                short(&change.by.sha),
                                judge.keys.source,
                                problem.describe(),
                                first_difference(old, new)
                            ),
                        )
                        .because(problem),
                        None => Finding::new(
                            Kind::Tampered,
                            &a.path,
                            format!(
                                "{} was changed by {}, which is not rotor's own commit: {}",
                                a.path,
                                short(&change.by.sha),
                                first_difference(old, new)
                            ),
                        ),
                    };
                    out.findings.push(finding.by(change));
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
