//! Continuity (`gap`): each ref's records, in time order, form a chain: each rotation starts
//! where the previous record left the pointer.

use std::collections::BTreeMap;

use super::{Entry, Finding, Kind};
use crate::artifact::{self};

/// The pointer a record left a ref on: what the rotation (and any rollback after it) left.
pub(super) fn left(r: &artifact::MetaRef) -> &str {
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
        for r in meta.refs.iter().filter(|r| r.claims_move()) {
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

/// The records the records in `in_range` lean on: for each ref, the record just before an
/// in-range one in its chain (what its `from` must match). A period's findings hold only if
/// these are checked with it. (A ref's live pointer is held to its last record in every
/// period: drift is never filtered out.)
pub(crate) fn leaned_on<'a>(
    entries: &'a [Entry],
    in_range: &std::collections::BTreeSet<&str>,
) -> std::collections::BTreeSet<&'a str> {
    let mut out = std::collections::BTreeSet::new();
    for records in chains(entries).into_values() {
        for pair in records.windows(2) {
            if let [(prev, _), (cur, _)] = pair
                && in_range.contains(cur.path.as_str())
            {
                out.insert(prev.path.as_str());
            }
        }
    }
    out
}
