//! Live state (`drift`): each ref's pointer, read from its backend (metadata only), is where
//! its last record left it.

use std::collections::HashMap;

use super::continuity::last_records;
use super::{Entry, Finding, Kind};
use crate::backend::{Backends, ResolveError, Secret};
use crate::batch::map_bounded;
use crate::config::Config;
use crate::ids::SecretRef;
use crate::outcome::RefFailure;

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

/// Each recorded ref's live pointer, read concurrently (metadata only); refs that cannot be
/// read are returned apart, with why.
pub(super) async fn live_pointers(
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
