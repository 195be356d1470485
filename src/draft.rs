//! What `rotor new` decides: which refs a new request rotates, and the request's text.
//!
//! Refs come from the command line, from a refs file, or from the backends' listings filtered
//! by globs. Each is read (metadata only) and qualifies when it holds no lock, has exactly one
//! candidate (a version newer than the pointer that no rollback rejected) or the `--to` version
//! is usable, and the application knows it; its `sites` are the application's `siteIds`. Every
//! ref left out gets one of the contract's reasons, and at most [`MAX_REFS`] refs are chosen, the
//! first in ref order.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use globset::{Glob, GlobMatcher};
use serde::Serialize;

use crate::app::{AppClient, AppError};
use crate::backend::{Backends, Environment, MarkerState, RefState, Secret, TargetProblem};
use crate::batch::map_bounded;
use crate::config::Config;
use crate::diagnostic::{Diagnostic, Pos, quote};
use crate::error::Error;
use crate::ids::{RotationId, SecretRef, SiteId, VersionId};
use crate::outcome::RefFailure;
use crate::request::schema::SCHEMA_ID;
use crate::request::{MAX_REFS, Maintenance, RollbackMode, Window};

/// A request to write, its inputs validated.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The rotation id, also the file's stem.
    pub id: RotationId,
    /// A key of the config's `environments`.
    pub environment: String,
    /// Why (one line, the rules of a request's `reason`).
    pub reason: String,
    /// Where the refs come from.
    pub source: Source,
    /// The version every ref must move to, instead of its single candidate.
    pub to: Option<VersionId>,
    /// The maintenance window or rollout note.
    pub maintenance: Option<Maintenance>,
    /// What happens when verification fails.
    pub rollback: RollbackMode,
    /// The versions the record (the working tree's, the default branch's) says rollbacks
    /// rejected: never a candidate, whatever the markers say.
    pub rejections: crate::backend::Rejections,
}

/// Where a draft's refs come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// These refs (`--ref`, `--refs-file`), distinct, in the order given.
    Refs(Vec<SecretRef>),
    /// Every ref the backends list that one of these globs matches (`--match`).
    Match(Globs),
}

/// `--match` globs over refs, with the config's glob rules (`*` matches dots too).
#[derive(Debug, Clone)]
pub struct Globs(Vec<GlobMatcher>);

impl Globs {
    /// Compiles the globs; the error names the first invalid one and why.
    pub fn parse(texts: &[String]) -> Result<Self, String> {
        texts
            .iter()
            .map(|t| {
                Glob::new(t)
                    .map(|g| g.compile_matcher())
                    .map_err(|e| format!("invalid glob {}: {}", quote(t), e.kind()))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether any glob matches the ref.
    pub fn matches(&self, secret_ref: &SecretRef) -> bool {
        self.0.iter().any(|g| g.is_match(secret_ref.as_str()))
    }

    /// Whether a ref matched by the config glob `rule` could be matched by one of these: a
    /// rule that cannot is not listed at all (its backend is never asked, nor its credentials
    /// needed).
    pub fn may_overlap(&self, rule: &str) -> bool {
        self.0.iter().any(|g| may_overlap(g.glob().glob(), rule))
    }
}

/// Whether two globs can match one ref (a string of four dot-separated parts). Exact for
/// globs of literals and `*` (which matches any run of characters, dots included), up to the
/// parts' own characters; any other glob syntax (`?`, classes, alternatives, escapes) is taken
/// to overlap, so that nothing that could match is left out.
fn may_overlap(a: &str, b: &str) -> bool {
    const DOTS: usize = 3;
    let special = |g: &str| g.contains(['?', '[', ']', '{', '}', '\\']);
    if special(a) || special(b) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // meet[i][j][r]: the rests a[i..] and b[j..] can produce one string with exactly r dots.
    let mut meet = vec![vec![[false; DOTS + 1]; b.len() + 1]; a.len() + 1];
    for i in (0..=a.len()).rev() {
        for j in (0..=b.len()).rev() {
            for r in 0..=DOTS {
                let dot = |c: char| usize::from(c == '.');
                meet[i][j][r] = match (a.get(i).copied(), b.get(j).copied()) {
                    (None, None) => r == 0,
                    // Two stars: either ends, or both produce a dot (other characters change
                    // nothing here).
                    (Some('*'), Some('*')) => {
                        meet[i + 1][j][r] || meet[i][j + 1][r] || (r > 0 && meet[i][j][r - 1])
                    }
                    // A star ends, or produces the other side's next character and stays.
                    (Some('*'), other) => {
                        meet[i + 1][j][r]
                            || other.is_some_and(|c| r >= dot(c) && meet[i][j + 1][r - dot(c)])
                    }
                    (other, Some('*')) => {
                        meet[i][j + 1][r]
                            || other.is_some_and(|c| r >= dot(c) && meet[i + 1][j][r - dot(c)])
                    }
                    (Some(x), Some(y)) => x == y && r >= dot(x) && meet[i + 1][j + 1][r - dot(x)],
                    _ => false,
                };
            }
        }
    }
    meet[0][0][DOTS]
}

/// Why a matched ref was left out of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// No candidate: no version newer than the pointer (or no pointer), or `--to` names a
    /// version that is missing, not enabled or already current.
    NoPending,
    /// The only newer version, or the `--to` version, was rejected by a rollback.
    Rejected,
    /// Several candidates: the target must be named with `--to`.
    SeveralPending,
    /// Another rotation holds the ref (its marker is `pending`).
    Locked,
    /// The application does not know the ref (404).
    UnknownToApp,
    /// Past the first [`MAX_REFS`] qualifying refs in ref order.
    OverLimit,
}

impl Skip {
    /// The contract's word for it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoPending => "no_pending",
            Self::Rejected => "rejected",
            Self::SeveralPending => "several_pending",
            Self::Locked => "locked",
            Self::UnknownToApp => "unknown_to_app",
            Self::OverLimit => "over_limit",
        }
    }
}

/// A ref the request rotates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The ref.
    pub secret_ref: SecretRef,
    /// `vault` or `aws-secrets-manager`.
    pub backend: &'static str,
    /// The version the pointer designates now.
    pub from: Option<VersionId>,
    /// The version it moves to.
    pub to: VersionId,
    /// The application's `siteIds`, sorted.
    pub sites: Vec<SiteId>,
}

impl Chosen {
    /// Whether `to` can be written in the request: a backend's id may hold characters a
    /// request's `to` refuses (an AWS id with `_`). Without it, `apply` picks the same version
    /// by the same rule.
    pub fn to_is_writable(&self) -> bool {
        VersionId::parse(self.to.as_str()).is_ok()
    }
}

/// A matched ref left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The ref.
    pub secret_ref: SecretRef,
    /// The contract's reason.
    pub reason: Skip,
    /// What exactly, for a person.
    pub detail: String,
}

/// What the backends and the application said about every ref.
#[derive(Debug, Default)]
pub struct Selection {
    /// The refs to write, in ref order.
    pub chosen: Vec<Chosen>,
    /// The refs left out, in ref order.
    pub skipped: Vec<Skipped>,
    /// Refs that could not be read or looked up: nothing is written when there is one.
    pub failures: Vec<(String, RefFailure)>,
    /// Backend rules whose template cannot be read back into refs (with `--match`).
    pub unreadable: Vec<String>,
}

/// Reads every ref of the draft and decides which qualify. Every client is set up before any
/// read, so that a ref without a backend rule stops the run before any call.
pub async fn select(
    config: &Config,
    draft: &Draft,
    app: Arc<AppClient>,
    env: &Environment,
) -> Result<Selection, Error> {
    let mut backends = Backends::default();
    let mut selection = Selection::default();
    let found: Vec<(SecretRef, Option<RefState>)> = match &draft.source {
        Source::Refs(refs) => {
            if let Some(problem) = shared_location(config, refs) {
                return Err(Error::BadArgument {
                    name: "refs",
                    problem,
                });
            }
            refs.iter().map(|r| (r.clone(), None)).collect()
        }
        Source::Match(globs) => {
            let wanted = |rule: &str| globs.may_overlap(rule);
            let listing = backends
                .list(config, env, config.concurrency, &wanted)
                .await?;
            selection.unreadable = listing.unreadable;
            listing
                .refs
                .into_iter()
                .filter(|l| globs.matches(&l.secret_ref))
                // The listing's state has only labelled versions: `--to` needs them all.
                .map(|l| (l.secret_ref, l.state.filter(|_| draft.to.is_none())))
                .collect()
        }
    };
    let mut secrets = Vec::with_capacity(found.len());
    for (r, state) in found {
        secrets.push((backends.resolve(config, &r, env).await?, state));
    }
    let qualified = judge(config, draft, secrets, &mut selection).await;
    let chosen = with_sites(config, &app, qualified, &mut selection).await;
    let (chosen, over) = cut_off(chosen, MAX_REFS);
    selection.chosen = chosen;
    selection.skipped.extend(over);
    selection
        .skipped
        .sort_by(|a, b| a.secret_ref.cmp(&b.secret_ref));
    selection.failures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(selection)
}

/// Reads each ref's state (unless the listing gave it) and judges it: the refs the backends
/// qualify, the others added to `selection` as skipped or failed.
async fn judge(
    config: &Config,
    draft: &Draft,
    secrets: Vec<(Secret, Option<RefState>)>,
    selection: &mut Selection,
) -> Vec<Chosen> {
    let refs: Vec<Secret> = secrets.iter().map(|(secret, _)| secret.clone()).collect();
    let reads = map_bounded(
        secrets,
        config.concurrency,
        |(secret, known): (Secret, Option<RefState>)| async move {
            match known {
                Some(state) => Ok(state),
                None => secret.read().await,
            }
        },
    )
    .await;
    let mut qualified = Vec::new();
    for (secret, read) in refs.iter().zip(reads) {
        let name = secret.secret_ref.to_string();
        let mut state = match read {
            Some(Ok(state)) => state,
            Some(Err(e)) => {
                selection.failures.push((name, RefFailure::Backend(e)));
                continue;
            }
            None => {
                selection.failures.push((name, RefFailure::Interrupted));
                continue;
            }
        };
        state.record_rejected = draft.rejections.get(&name).cloned().unwrap_or_default();
        match verdict(&state, draft.to.as_ref()) {
            Ok(to) => qualified.push(Chosen {
                secret_ref: secret.secret_ref.clone(),
                backend: secret.backend(),
                from: state.current.clone(),
                to,
                sites: Vec::new(),
            }),
            Err((reason, mut detail)) => {
                if state.current.is_none()
                    && let Some(hint) = secret.pointer_hint()
                {
                    detail = format!("{detail}; set it: {hint}");
                }
                selection.skipped.push(Skipped {
                    secret_ref: secret.secret_ref.clone(),
                    reason,
                    detail,
                });
            }
        }
    }
    qualified
}

/// Asks the application about each ref the backends qualified: the ones it knows, with its
/// `siteIds` as `sites`; the others added to `selection` as `unknown_to_app` or failed.
async fn with_sites(
    config: &Config,
    app: &Arc<AppClient>,
    qualified: Vec<Chosen>,
    selection: &mut Selection,
) -> Vec<Chosen> {
    let lookups = map_bounded(
        qualified.iter().map(|c| c.secret_ref.clone()).collect(),
        config.concurrency,
        |r: SecretRef| {
            let app = app.clone();
            async move { app.get_ref(&r).await }
        },
    )
    .await;
    let mut chosen = Vec::with_capacity(qualified.len());
    for (mut c, lookup) in qualified.into_iter().zip(lookups) {
        let name = c.secret_ref.to_string();
        match lookup {
            Some(Ok(known)) => match sites(&known.site_ids) {
                Ok(sites) => {
                    c.sites = sites;
                    chosen.push(c);
                }
                Err(problem) => selection.failures.push((name, RefFailure::Sites(problem))),
            },
            Some(Err(e @ AppError::NotFound { .. })) => selection.skipped.push(Skipped {
                secret_ref: c.secret_ref,
                reason: Skip::UnknownToApp,
                detail: e.to_string(),
            }),
            Some(Err(e)) => selection.failures.push((name, RefFailure::App(e))),
            None => selection.failures.push((name, RefFailure::Interrupted)),
        }
    }
    chosen
}

/// Whether a ref's state qualifies it, and for which version: no lock (any `pending` marker),
/// then `to` when given (existing, enabled, not current, not rejected by a rollback), else its
/// single candidate.
fn verdict(state: &RefState, to: Option<&VersionId>) -> Result<VersionId, (Skip, String)> {
    if let Some(m) = state
        .marker
        .as_ref()
        .filter(|m| m.state == MarkerState::Pending)
    {
        let locked = RefFailure::Locked {
            by: m.rotation_id.clone(),
        };
        return Err((Skip::Locked, locked.to_string()));
    }
    if let Some(to) = to
        && let Some(by) = state.rejected_by(to)
    {
        return Err((
            Skip::Rejected,
            format!("version {to} was rejected by a rollback of {by}; provision a new value"),
        ));
    }
    state.target(to).map_err(|problem| {
        let reason = match problem {
            TargetProblem::Rejected(_) => Skip::Rejected,
            TargetProblem::SeveralPending(_) => Skip::SeveralPending,
            TargetProblem::NoPointer
            | TargetProblem::NoPending
            | TargetProblem::Missing(_)
            | TargetProblem::NotEnabled(..)
            | TargetProblem::AlreadyCurrent(_)
            | TargetProblem::OwnedByRotation(..) => Skip::NoPending,
        };
        // The request's `to` is `--to` on rotor new's command line.
        let detail = problem
            .to_string()
            .replace("name `to`", "pass `--to`")
            .replace("with `to`", "with `--to`");
        (reason, detail)
    })
}

/// The application's `siteIds` as a request's `sites`: valid, distinct, sorted.
fn sites(site_ids: &[String]) -> Result<Vec<SiteId>, String> {
    let mut sites = BTreeSet::new();
    for s in site_ids {
        let site = SiteId::parse(s).map_err(|e| {
            format!(
                "the application names site {}, which a request cannot hold: {}",
                quote(s),
                e.reason
            )
        })?;
        sites.insert(site);
    }
    Ok(sites.into_iter().collect())
}

/// The first `limit` chosen refs in ref order; the rest are skipped as `over_limit`.
fn cut_off(mut chosen: Vec<Chosen>, limit: usize) -> (Vec<Chosen>, Vec<Skipped>) {
    chosen.sort_by(|a, b| a.secret_ref.cmp(&b.secret_ref));
    let over = chosen.split_off(limit.min(chosen.len()));
    let over = over
        .into_iter()
        .map(|c| Skipped {
            secret_ref: c.secret_ref,
            reason: Skip::OverLimit,
            detail: format!(
                "past the first {limit} refs in ref order, the most a request holds; write another request for the rest"
            ),
        })
        .collect();
    (chosen, over)
}

/// Two refs that map to one secret (the same backend location): one secret is rotated once.
fn shared_location(config: &Config, refs: &[SecretRef]) -> Option<String> {
    let env = Environment::default();
    let mut seen = std::collections::HashMap::new();
    for r in refs {
        let key = crate::backend::location_key(config, r, &env)?;
        if let Some(first) = seen.insert(key, r) {
            return Some(format!(
                "{first} and {r} map to the same secret ({}); name it once",
                crate::backend::describe_location(config, r)
            ));
        }
    }
    None
}

/// A refs file: one ref a line; blank lines and `#` comments (whole lines, or after a ref) are
/// ignored, as are spaces and tabs around a ref. A ref listed twice counts once. Every invalid
/// line is reported with its position.
pub fn parse_refs_file(file: &str, text: &str) -> Result<Vec<SecretRef>, Vec<Diagnostic>> {
    let mut refs: Vec<SecretRef> = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default();
        let entry = content.trim_matches([' ', '\t']);
        if entry.is_empty() {
            continue;
        }
        match SecretRef::parse(entry) {
            Ok(r) if refs.contains(&r) => {}
            Ok(r) => refs.push(r),
            Err(e) => {
                let column = content
                    [..content.len() - content.trim_start_matches([' ', '\t']).len()]
                    .chars()
                    .count()
                    + 1;
                problems.push(
                    Diagnostic::new(
                        "invalid_ref",
                        file,
                        Pos::new(i + 1, column),
                        format!("invalid ref {}: {}", quote(entry), e.reason),
                    )
                    .help(e.help),
                );
            }
        }
    }
    if problems.is_empty() {
        Ok(refs)
    } else {
        Err(problems)
    }
}

/// Parses `--window START/END`: two RFC 3339 timestamps with an offset, `END` after `START`.
pub fn parse_window(text: &str) -> Result<Window, String> {
    let (start, end) = text
        .split_once('/')
        .ok_or("write START/END, e.g. 2026-11-26T02:00:00Z/2026-11-26T04:00:00Z")?;
    let at = |part: &str, which: &str| {
        DateTime::parse_from_rfc3339(part)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                format!(
                    "the {which} {} is not an RFC 3339 timestamp: {e}",
                    quote(part)
                )
            })
    };
    let window = Window {
        start: at(start, "start")?,
        end: at(end, "end")?,
    };
    if window.end <= window.start {
        return Err("the window's end is not after its start".to_owned());
    }
    Ok(window)
}

/// The request's text: the schema line, then the fields in the order of the format, with
/// `to` pinned to the version each ref was chosen for and `sites` from the application.
pub fn request_text(draft: &Draft, chosen: &[Chosen]) -> String {
    let mut text = format!("# yaml-language-server: $schema={SCHEMA_ID}\n");
    let _ = writeln!(text, "version: 1");
    let _ = writeln!(text, "id: {}", scalar(draft.id.as_str()));
    let _ = writeln!(text, "environment: {}", scalar(&draft.environment));
    let _ = writeln!(text, "reason: {}", quoted(&draft.reason));
    let _ = writeln!(text, "refs:");
    for c in chosen {
        let _ = writeln!(text, "  - ref: {}", c.secret_ref);
        if c.to_is_writable() {
            let _ = writeln!(text, "    to: {}", quoted(c.to.as_str()));
        }
        if !c.sites.is_empty() {
            let sites: Vec<String> = c.sites.iter().map(|s| quoted(s.as_str())).collect();
            let _ = writeln!(text, "    sites: [{}]", sites.join(", "));
        }
    }
    if let Some(m) = &draft.maintenance {
        let _ = writeln!(text, "maintenance:");
        if let Some(w) = &m.window {
            let at = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            let _ = writeln!(
                text,
                "  window: {{start: {}, end: {}}}",
                at(&w.start),
                at(&w.end)
            );
        }
        if let Some(note) = &m.rollout_note {
            let _ = writeln!(text, "  rollout_note: {}", quoted(note));
        }
    }
    let rollback = match draft.rollback {
        RollbackMode::Auto => "auto",
        RollbackMode::Manual => "manual",
    };
    let _ = writeln!(text, "rollback: {rollback}");
    text
}

/// A YAML double-quoted scalar: JSON's escaping (a subset of YAML's), and `\uXXXX` for the
/// characters JSON leaves as they are but YAML reads as a line break or refuses in a file.
fn quoted(text: &str) -> String {
    let json = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned());
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` plain when YAML reads it back as that same string (and no YAML 1.1 reader takes it
/// for a boolean or null), else double-quoted.
fn scalar(text: &str) -> String {
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf",
    ];
    let plain = text.starts_with(|c: char| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && !WORDS.contains(&text)
        && serde_norway::from_str::<serde_norway::Value>(text)
            .is_ok_and(|v| v.as_str() == Some(text));
    if plain { text.to_owned() } else { quoted(text) }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::backend::{Marker, Revision, Version, VersionState};

    fn v(id: &str) -> VersionId {
        VersionId::from_backend(id).expect("version id")
    }

    fn r(text: &str) -> SecretRef {
        SecretRef::parse(text).expect("ref")
    }

    /// A Vault-like state: versions 1..=newest, the pointer on `current`, the newer enabled
    /// ones pending, and a marker if given.
    fn state(current: u32, newest: u32, marker: Option<(&str, MarkerState, &str)>) -> RefState {
        RefState {
            record_rejected: Vec::new(),
            conditions: Default::default(),
            current: Some(v(&current.to_string())),
            previous: None,
            pending: (current + 1..=newest).map(|n| v(&n.to_string())).collect(),
            versions: (1..=newest)
                .rev()
                .map(|n| Version {
                    id: v(&n.to_string()),
                    created: None,
                    state: VersionState::Enabled,
                })
                .collect(),
            marker: marker.map(|(id, state, to)| Marker {
                rotation_id: id.to_owned(),
                state,
                from: None,
                to: Some(v(to)),
                rolling_back: false,
                pull_request: None,
            }),
            revision: Revision::Aws {
                stages: HashMap::new(),
                tags: std::collections::BTreeSet::new(),
            },
        }
    }

    fn reason(s: &RefState, to: Option<&str>) -> Result<String, Skip> {
        verdict(s, to.map(v).as_ref())
            .map(|v| v.to_string())
            .map_err(|(skip, _)| skip)
    }

    #[test]
    fn a_ref_qualifies_with_exactly_one_candidate_and_no_lock() {
        assert_eq!(reason(&state(1, 2, None), None), Ok("2".to_owned()));
        assert_eq!(reason(&state(2, 2, None), None), Err(Skip::NoPending));
        assert_eq!(reason(&state(1, 3, None), None), Err(Skip::SeveralPending));
        let rolled_back = Some(("r-old", MarkerState::RolledBack, "2"));
        assert_eq!(reason(&state(1, 2, rolled_back), None), Err(Skip::Rejected));
        // The rejected version is not a candidate: one other remains.
        assert_eq!(reason(&state(1, 3, rolled_back), None), Ok("3".to_owned()));
        // A lock comes first, whatever the versions.
        let locked = Some(("r-other", MarkerState::Pending, "2"));
        assert_eq!(reason(&state(1, 2, locked), None), Err(Skip::Locked));
        assert_eq!(reason(&state(2, 2, locked), None), Err(Skip::Locked));
        let done = Some(("r-old", MarkerState::Done, "1"));
        assert_eq!(reason(&state(1, 2, done), None), Ok("2".to_owned()));
    }

    #[test]
    fn to_must_exist_be_usable_and_not_rejected() {
        assert_eq!(reason(&state(1, 3, None), Some("3")), Ok("3".to_owned()));
        assert_eq!(reason(&state(1, 3, None), Some("9")), Err(Skip::NoPending));
        assert_eq!(reason(&state(3, 3, None), Some("3")), Err(Skip::NoPending));
        let rolled_back = Some(("r-old", MarkerState::RolledBack, "3"));
        assert_eq!(
            reason(&state(1, 3, rolled_back), Some("3")),
            Err(Skip::Rejected)
        );
        assert_eq!(
            reason(&state(1, 3, rolled_back), Some("2")),
            Ok("2".to_owned())
        );
    }

    fn chosen(name: &str) -> Chosen {
        Chosen {
            secret_ref: r(name),
            backend: "vault",
            from: Some(v("1")),
            to: v("2"),
            sites: Vec::new(),
        }
    }

    #[test]
    fn the_first_refs_in_ref_order_are_kept_and_the_rest_are_over_limit() {
        let refs = [
            "tenant.c.p.k",
            "tenant.a.p.k",
            "tenant.d.p.k",
            "tenant.b.p.k",
        ];
        let (kept, over) = cut_off(refs.iter().map(|n| chosen(n)).collect(), 2);
        let names = |c: &[Chosen]| {
            c.iter()
                .map(|c| c.secret_ref.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&kept), ["tenant.a.p.k", "tenant.b.p.k"]);
        assert_eq!(
            over.iter()
                .map(|s| (s.secret_ref.as_str(), s.reason))
                .collect::<Vec<_>>(),
            [
                ("tenant.c.p.k", Skip::OverLimit),
                ("tenant.d.p.k", Skip::OverLimit)
            ]
        );
        let (all, none) = cut_off(refs.iter().map(|n| chosen(n)).collect(), MAX_REFS);
        assert_eq!((all.len(), none.len()), (4, 0));
    }

    #[test]
    fn refs_files_ignore_blanks_comments_and_repeats() {
        let text =
            "# the acme batch\n\ntenant.a.p.k\n  tenant.b.p.k\t# second\r\ntenant.a.p.k\n   \n";
        let refs = parse_refs_file("refs.txt", text).expect("valid");
        assert_eq!(refs, [r("tenant.a.p.k"), r("tenant.b.p.k")]);
        let errs = parse_refs_file("refs.txt", "tenant.a.p.k\n  Tenant.b.p.k\ntenant.c\n")
            .expect_err("invalid");
        assert_eq!(
            errs.iter()
                .map(|d| (d.code, d.line, d.column))
                .collect::<Vec<_>>(),
            [("invalid_ref", 2, 3), ("invalid_ref", 3, 1)]
        );
        assert!(errs[0].message.contains("uppercase"), "{}", errs[0].message);
    }

    #[test]
    fn a_rule_is_listed_only_when_its_glob_can_meet_a_match_glob() {
        let globs = Globs::parse(&["tenant.*.supabase.*".to_owned()]).expect("globs");
        assert!(!globs.may_overlap("tenant.*.stripe.*"));
        assert!(globs.may_overlap("tenant.*.*.*"));
        assert!(globs.may_overlap("*"));
        assert!(globs.may_overlap("tenant.acme.supabase.service_role"));
        assert!(!globs.may_overlap("other.*"));
        // `*` matches dots too: `tenant.*` can be `tenant.x.supabase.y`.
        assert!(globs.may_overlap("tenant.*"));
        // Other syntax is taken to overlap: nothing that could match is left out.
        assert!(globs.may_overlap("tenant.?.stripe.*"));
        assert!(may_overlap("t.a*c.p.k", "t.*b*.p.k"));
        assert!(!may_overlap("t.a*.p.k", "t.b*.p.k"));
        assert!(!may_overlap("*a", "*b"));
        // Four parts: `tenant.*.supabase.*` and `tenant.*.stripe.*` meet only in strings of
        // more parts, which are not refs.
        assert!(!may_overlap("tenant.*.supabase.*", "tenant.*.stripe.*"));
        assert!(!may_overlap("a.b", "a.*"), "two parts are no ref");
    }

    #[test]
    fn globs_match_like_the_config() {
        let globs = Globs::parse(&[
            "tenant.acme*.*.*".to_owned(),
            "tenant.*.stripe.*".to_owned(),
        ])
        .expect("globs");
        assert!(globs.matches(&r("tenant.acme-co.supabase.k")));
        assert!(globs.matches(&r("tenant.globex.stripe.k")));
        assert!(!globs.matches(&r("tenant.globex.supabase.k")));
        assert!(Globs::parse(&["tenant.[a.*".to_owned()]).is_err());
    }

    #[test]
    fn windows() {
        let w = parse_window("2026-11-26T02:00:00Z/2026-11-26T04:00:00+01:00").expect("window");
        assert_eq!(w.end.to_rfc3339(), "2026-11-26T03:00:00+00:00");
        assert!(parse_window("2026-11-26T02:00:00Z").is_err());
        assert!(parse_window("2026-11-26T02:00:00Z/2026-11-26T02:00:00Z").is_err());
        assert!(parse_window("2026-11-26/2026-11-27").is_err());
    }

    #[test]
    fn the_text_reads_back_as_the_same_request() {
        let window =
            parse_window("2099-01-01T02:00:00+01:00/2099-01-01T04:00:00Z").expect("window");
        let draft = Draft {
            id: RotationId::parse("123").expect("id"),
            environment: "production".to_owned(),
            reason: "Rotate \"all\": ü, # not a comment".to_owned(),
            source: Source::Refs(Vec::new()),
            to: None,
            maintenance: Some(Maintenance {
                window: Some(window),
                rollout_note: Some("line one\nline\u{2028}two \u{85}".to_owned()),
            }),
            rollback: RollbackMode::Manual,
            rejections: Default::default(),
        };
        let mut odd = chosen("tenant.b.p.k");
        odd.to = v("terraform_2026");
        let mut one = chosen("tenant.a.p.k");
        one.sites = vec![
            SiteId::parse("1.5").expect("site"),
            SiteId::parse("site-2").expect("site"),
        ];
        let text = request_text(&draft, &[one, odd]);
        assert!(
            text.starts_with("# yaml-language-server: $schema=https://"),
            "{text}"
        );
        let environments = std::collections::BTreeMap::from([(
            "production".to_owned(),
            crate::config::Environment {
                requires_maintenance: true,
                ..crate::config::Environment::default()
            },
        )]);
        let request = crate::request::parse(
            "rotations/123.yaml",
            text.as_bytes(),
            crate::request::Context {
                stem: Some("123"),
                environments: Some(&environments),
            },
        )
        .unwrap_or_else(|d| panic!("{d:?}\n{text}"));
        assert_eq!(request.id.as_str(), "123");
        assert_eq!(request.reason, draft.reason);
        assert_eq!(request.maintenance, draft.maintenance);
        assert_eq!(request.rollback, RollbackMode::Manual);
        assert_eq!(request.refs[0].to, Some(v("2")));
        assert_eq!(
            request.refs[0]
                .sites
                .as_deref()
                .map(|s| s.iter().map(SiteId::as_str).collect::<Vec<_>>()),
            Some(vec!["1.5", "site-2"])
        );
        // A backend id a request cannot hold is left out: apply picks it by the same rule.
        assert_eq!(
            (request.refs[1].to.as_ref(), request.refs[1].sites.as_ref()),
            (None, None)
        );
    }

    #[test]
    fn scalars_stay_strings() {
        assert_eq!(scalar("2026-11-25-acme"), "2026-11-25-acme");
        assert_eq!(scalar("staging"), "staging");
        assert_eq!(scalar("123"), "\"123\"");
        assert_eq!(scalar("1e5"), "\"1e5\"");
        assert_eq!(scalar("0x1f"), "\"0x1f\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("Prod"), "\"Prod\"");
        assert_eq!(quoted("say \"hi\" ü"), "\"say \\\"hi\\\" ü\"");
        assert_eq!(quoted("a\u{85}b\u{2028}c\nd"), "\"a\\u0085b\\u2028c\\nd\"");
    }
}
