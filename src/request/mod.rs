//! The rotation request (`rotations/<rotation-id>.yaml`): its model and its parser.
//!
//! [`parse`] turns the bytes of a request file into a [`Request`] whose every field is a
//! validated value, or into the full list of [`Diagnostic`]s, each naming line and column. No
//! network call happens before this succeeds.

pub mod schema;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Environment;
use crate::diagnostic::{Diagnostic, Diagnostics, quote};
use crate::ids::{RotationId, SecretRef, SiteId, VersionId};
use crate::yaml::{Document, Node};

/// Most refs one request may hold.
pub const MAX_REFS: usize = 2000;

/// Longest `reason` or `rollout_note`, in characters.
pub const MAX_TEXT: usize = 4096;

/// A validated rotation request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Request {
    /// The rotation id, equal to the file stem.
    pub id: RotationId,
    /// A key of the config's `environments`.
    pub environment: String,
    /// Why the rotation happens.
    pub reason: String,
    /// The refs to rotate, at least one, no duplicates.
    pub refs: Vec<RefRequest>,
    /// The maintenance window or rollout note, if given.
    pub maintenance: Option<Maintenance>,
    /// What happens when verification fails.
    pub rollback: RollbackMode,
}

/// One ref of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefRequest {
    /// The secret ref.
    #[serde(rename = "ref")]
    pub secret_ref: SecretRef,
    /// The target version; `None` means the pending version.
    pub to: Option<VersionId>,
    /// The impacted sites the requester expects; must equal the application's view.
    pub sites: Option<Vec<SiteId>>,
}

/// The maintenance section (runbook precondition 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Maintenance {
    /// The window in which `apply` may run.
    pub window: Option<Window>,
    /// A link to, or the text of, the rollout note.
    pub rollout_note: Option<String>,
}

/// A maintenance window; `end` is after `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    /// When the window opens.
    pub start: DateTime<Utc>,
    /// When the window closes.
    pub end: DateTime<Utc>,
}

impl Window {
    /// Whether `now` lies inside the window (start inclusive, end exclusive).
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.start <= now && now < self.end
    }
}

/// What happens when verification fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RollbackMode {
    /// Roll back in the same run (the default).
    #[default]
    Auto,
    /// Leave the pointer and report; a human rolls back by dispatch.
    Manual,
}

const TOP_KEYS: &[&str] = &[
    "version",
    "id",
    "environment",
    "reason",
    "refs",
    "maintenance",
    "rollback",
];
const REF_KEYS: &[&str] = &["ref", "to", "sites"];
const MAINTENANCE_KEYS: &[&str] = &["window", "rollout_note"];
const WINDOW_KEYS: &[&str] = &["start", "end"];

/// What a request is checked against besides its own text.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The file name without `.yaml`, which the id must equal.
    pub stem: Option<&'a str>,
    /// The config's environments; `None` when the config itself is invalid, which skips the
    /// checks that need it rather than burying the config's errors under consequences.
    pub environments: Option<&'a BTreeMap<String, Environment>>,
}

/// Parses and validates one request file; `file` names it in diagnostics.
pub fn parse(file: &str, bytes: &[u8], cx: Context<'_>) -> Result<Request, Vec<Diagnostic>> {
    let doc = Document::parse(file, bytes).map_err(|d| vec![d])?;
    let mut diags = Diagnostics::default();
    let request = from_document(&doc, cx, &mut diags);
    diags.finish(request)
}

fn from_document(doc: &Document, cx: Context<'_>, diags: &mut Diagnostics) -> Option<Request> {
    let root = doc.root().mapping_in(
        diags,
        TOP_KEYS,
        &[
            ("ref", "in an item of `refs` (`- ref: …`)"),
            (
                "to",
                "to one ref: indent it under that ref's `- ref:` line in `refs`",
            ),
            (
                "sites",
                "to one ref: indent it under that ref's `- ref:` line in `refs`",
            ),
            ("window", "under `maintenance:`"),
            ("rollout_note", "under `maintenance:`"),
        ],
    )?;
    if let Some(v) = root.require(diags, "version", "version: 1") {
        check_version(&v, diags);
    }
    let id = root
        .require(diags, "id", "id: <the file name without .yaml>")
        .and_then(|n| rotation_id(&n, cx.stem, diags));
    let environment = root
        .require(diags, "environment", "environment: production")
        .and_then(|n| environment(&n, cx.environments, diags));
    let reason = root
        .require(diags, "reason", "reason: <why this secret is rotated>")
        .and_then(|n| bounded_text(&n, true, diags));
    let refs = root
        .require(
            diags,
            "refs",
            "refs: [{ref: tenant.<slug>.<provider>.<key>}]",
        )
        .and_then(|n| refs(&n, diags));
    let maintenance = match root.get("maintenance") {
        Some(n) => Some(maintenance(&n, diags)?),
        None => None,
    };
    let rollback = match root.get("rollback") {
        None => Some(RollbackMode::Auto),
        Some(n) => match n.string(diags)? {
            "auto" => Some(RollbackMode::Auto),
            "manual" => Some(RollbackMode::Manual),
            other => {
                diags.push(
                    n.error(
                        "invalid_rollback",
                        format!("unknown rollback mode {}", quote(other)),
                    )
                    .help("write `rollback: auto` (the default) or `rollback: manual`"),
                );
                None
            }
        },
    };
    // Precondition 4 of the runbook: production needs a window or a rollout note.
    if let (Some((env_node, env)), Some(policy)) = (
        environment.as_ref(),
        environment
            .as_ref()
            .and_then(|(_, e)| cx.environments?.get(e.as_str())),
    ) && policy.requires_maintenance
        && maintenance.is_none()
    {
        diags.push(
                env_node
                    .error(
                        "maintenance_required",
                        format!("environment {} requires a maintenance window or a rollout note", quote(env)),
                    )
                    .help("add `maintenance: {window: {start: <RFC 3339>, end: <RFC 3339>}}` or `maintenance: {rollout_note: <link>}`"),
            );
    }
    Some(Request {
        id: id?,
        environment: environment?.1,
        reason: reason?.to_owned(),
        refs: refs?,
        maintenance,
        rollback: rollback?,
    })
}

fn check_version(node: &Node<'_>, diags: &mut Diagnostics) {
    if let Some(v) = node.unsigned(diags)
        && v != 1
    {
        diags.push(
            node.error(
                "unsupported_version",
                format!("format version {v} is not supported"),
            )
            .help("write `version: 1`"),
        );
    }
}

fn rotation_id(node: &Node<'_>, stem: Option<&str>, diags: &mut Diagnostics) -> Option<RotationId> {
    let text = node.non_empty_string(diags)?;
    let id = match RotationId::parse(text) {
        Ok(id) => id,
        Err(e) => {
            diags.push(
                node.error(
                    "invalid_id",
                    format!("invalid id {}: {}", quote(text), e.reason),
                )
                .help(e.help),
            );
            return None;
        }
    };
    if let Some(stem) = stem
        && stem != id.as_str()
    {
        diags.push(
            node.error(
                "id_mismatch",
                format!(
                    "id {} does not match the file name {}",
                    quote(text),
                    quote(&format!("{stem}.yaml"))
                ),
            )
            .help(if RotationId::parse(stem).is_ok() {
                format!("rename the file to {id}.yaml, or write `id: {stem}`")
            } else {
                // The file's own name is no valid id: suggesting it would be a second error.
                format!("rename the file to {id}.yaml")
            }),
        );
        return None;
    }
    Some(id)
}

fn environment<'d>(
    node: &Node<'d>,
    environments: Option<&BTreeMap<String, Environment>>,
    diags: &mut Diagnostics,
) -> Option<(Node<'d>, String)> {
    let text = node.non_empty_string(diags)?;
    let Some(environments) = environments else {
        return Some((node.clone(), text.to_owned()));
    };
    if !environments.contains_key(text) {
        let known: Vec<&str> = environments.keys().map(String::as_str).collect();
        diags.push(
            node.error(
                "unknown_environment",
                format!("environment {} is not defined in the config", quote(text)),
            )
            .help(format!("use one of: {}", known.join(", "))),
        );
        return None;
    }
    Some((node.clone(), text.to_owned()))
}

/// The rules of a free text such as `reason` (a request's, a dispatched rollback's, a
/// break-glass comment's): not blank, at most [`MAX_TEXT`] characters (a CR LF pair counts as
/// one line feed), and no control character but the line feed and the tab: a reason may span
/// lines, to add a ticket line. Every other C0 or C1 control, DEL, and the Unicode
/// bidirectional controls (U+202A–U+202E, U+2066–U+2069, which can make a text read otherwise
/// than it is) are refused, naming the character and where it stands in the text.
pub fn check_text(text: &str) -> Result<(), (&'static str, String)> {
    if text.trim().is_empty() {
        return Err(("empty_text", "is empty".to_owned()));
    }
    let normalized = text.replace("\r\n", "\n");
    if normalized.chars().count() > MAX_TEXT {
        return Err((
            "text_too_long",
            format!("is longer than {MAX_TEXT} characters"),
        ));
    }
    let (mut line, mut column) = (1, 0);
    for c in normalized.chars() {
        column += 1;
        let refused = (c.is_control() && !matches!(c, '\n' | '\t'))
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if refused {
            let what = if c.is_control() {
                "the control character"
            } else {
                "the bidirectional control"
            };
            return Err((
                "control_character",
                format!(
                    "contains {what} {} at line {line}, column {column} of the text (line feeds and tabs are the only controls allowed)",
                    c.escape_unicode()
                ),
            ));
        }
        if c == '\n' {
            (line, column) = (line + 1, 0);
        }
    }
    Ok(())
}

/// A free text: `reason` obeys every rule of [`check_text`]; a rollout note may run over
/// several lines (it can be the note itself) and only has the length limit.
fn bounded_text<'d>(
    node: &Node<'d>,
    reason_rules: bool,
    diags: &mut Diagnostics,
) -> Option<&'d str> {
    let text = node.non_empty_string(diags)?;
    let checked = if reason_rules {
        check_text(text)
    } else if text.chars().count() > MAX_TEXT {
        Err((
            "text_too_long",
            format!("is longer than {MAX_TEXT} characters"),
        ))
    } else {
        Ok(())
    };
    if let Err((code, problem)) = checked {
        diags.push(
            node.error(code, format!("{} {problem}", node.describe()))
                .help("write at most 4,096 characters of plain text (lines and tabs are fine), and link to the details"),
        );
        return None;
    }
    Some(text)
}

fn refs(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Vec<RefRequest>> {
    let items = node.sequence(diags)?;
    if items.is_empty() {
        diags.push(
            node.error(
                "no_refs",
                "`refs` is empty; a request rotates at least one ref",
            )
            .help("list at least one `- ref: tenant.<slug>.<provider>.<key>`"),
        );
        return None;
    }
    if items.len() > MAX_REFS {
        diags.push(
            items[MAX_REFS]
                .error(
                    "too_many_refs",
                    format!(
                        "a request holds at most {MAX_REFS} refs, this one has {}",
                        items.len()
                    ),
                )
                .help("split the batch into several requests"),
        );
        return None;
    }
    let before = diags.len();
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let Some((entry, ref_node)) = ref_entry(item, diags) else {
            continue;
        };
        let line = ref_node.pos().line;
        if let Some(first) = seen.insert(entry.secret_ref.as_str().to_owned(), line) {
            diags.push(
                ref_node
                    .error(
                        "duplicate_ref",
                        format!(
                            "ref {} is listed twice (first at line {first})",
                            quote(entry.secret_ref.as_str())
                        ),
                    )
                    .help("list each ref once"),
            );
            continue;
        }
        out.push(entry);
    }
    (diags.len() == before).then_some(out)
}

fn ref_entry<'d>(item: &Node<'d>, diags: &mut Diagnostics) -> Option<(RefRequest, Node<'d>)> {
    let map = item.mapping_in(
        diags,
        REF_KEYS,
        &[
            ("id", "at the top level, not in a ref"),
            ("environment", "at the top level, not in a ref"),
            ("reason", "at the top level, not in a ref"),
            ("maintenance", "at the top level, not in a ref"),
            ("rollback", "at the top level, not in a ref"),
        ],
    )?;
    let ref_node = map.require(diags, "ref", "ref: tenant.<slug>.<provider>.<key>");
    let secret_ref = ref_node.as_ref().and_then(|n| {
        let text = n.string(diags)?;
        SecretRef::parse(text)
            .map_err(|e| {
                diags.push(
                    n.error(
                        "invalid_ref",
                        format!("invalid ref {}: {}", quote(text), e.reason),
                    )
                    .help(e.help),
                );
            })
            .ok()
    });
    let to = match map.get("to") {
        None => Some(None),
        Some(n) => version_id(&n, diags).map(Some),
    };
    let sites = match map.get("sites") {
        None => Some(None),
        Some(n) => site_list(&n, diags).map(Some),
    };
    let entry = RefRequest {
        secret_ref: secret_ref?,
        to: to?,
        sites: sites?,
    };
    Some((entry, ref_node?))
}

fn version_id(node: &Node<'_>, diags: &mut Diagnostics) -> Option<VersionId> {
    use serde_norway::Value;
    let text = match node.value() {
        Value::String(s) => s.clone(),
        Value::Number(n) if n.as_u64().is_some() => n.to_string(),
        _ => {
            diags.push(
                node.error(
                    "wrong_type",
                    format!("{} must be a version id (a string or a non-negative integer)", node.describe()),
                )
                .help("write the target version, e.g. `to: \"4\"`, or remove `to` to use the pending version"),
            );
            return None;
        }
    };
    VersionId::parse(&text)
        .map_err(|e| {
            diags.push(
                node.error(
                    "invalid_version_id",
                    format!("invalid version id {}: {}", quote(&text), e.reason),
                )
                .help(e.help),
            );
        })
        .ok()
}

fn site_list(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Vec<SiteId>> {
    let items = node.string_set(diags)?;
    let before = diags.len();
    let sites: Vec<SiteId> = items
        .into_iter()
        .filter_map(|(n, s)| {
            SiteId::parse(s)
                .map_err(|e| {
                    diags.push(
                        n.error(
                            "invalid_site",
                            format!("invalid site id {}: {}", quote(s), e.reason),
                        )
                        .help(e.help),
                    );
                })
                .ok()
        })
        .collect();
    (diags.len() == before).then_some(sites)
}

fn maintenance(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Maintenance> {
    let map = node.mapping(diags, MAINTENANCE_KEYS)?;
    let window = match map.get("window") {
        None => Some(None),
        Some(n) => window(&n, diags).map(Some),
    };
    let rollout_note = match map.get("rollout_note") {
        None => Some(None),
        Some(n) => bounded_text(&n, false, diags).map(|s| Some(s.to_owned())),
    };
    let (window, rollout_note) = (window?, rollout_note?);
    if window.is_none() && rollout_note.is_none() {
        diags.push(
            node.error(
                "empty_maintenance",
                "`maintenance` names neither a window nor a rollout note",
            )
            .help("add `window: {start: …, end: …}` or `rollout_note: <link>`"),
        );
        return None;
    }
    Some(Maintenance {
        window,
        rollout_note,
    })
}

fn window(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Window> {
    let map = node.mapping(diags, WINDOW_KEYS)?;
    let start = map
        .require(diags, "start", "start: 2026-11-26T02:00:00Z")
        .and_then(|n| timestamp(&n, diags));
    let end_node = map.require(diags, "end", "end: 2026-11-26T04:00:00Z");
    let end = end_node.as_ref().and_then(|n| timestamp(n, diags));
    let (start, end, end_node) = (start?, end?, end_node?);
    if end <= start {
        diags.push(
            end_node
                .error(
                    "invalid_window",
                    "the window's `end` is not after its `start`",
                )
                .help("make `end` later than `start`"),
        );
        return None;
    }
    Some(Window { start, end })
}

fn timestamp(node: &Node<'_>, diags: &mut Diagnostics) -> Option<DateTime<Utc>> {
    let text = node.string(diags)?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            diags.push(
                node.error(
                    "invalid_timestamp",
                    format!("{} is not an RFC 3339 timestamp: {e}", quote(text)),
                )
                .help("write a date, time and offset, e.g. 2026-11-26T02:00:00Z"),
            );
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environments() -> BTreeMap<String, Environment> {
        BTreeMap::from([
            (
                "production".to_owned(),
                Environment {
                    requires_maintenance: true,
                    ..Environment::default()
                },
            ),
            ("staging".to_owned(), Environment::default()),
        ])
    }

    fn check(text: &str) -> Result<Request, Vec<Diagnostic>> {
        let envs = environments();
        parse(
            "rotations/abc.yaml",
            text.as_bytes(),
            Context {
                stem: Some("abc"),
                environments: Some(&envs),
            },
        )
    }

    #[test]
    fn minimal_request() {
        let r = check("version: 1\nid: abc\nenvironment: staging\nreason: r\nrefs:\n  - ref: tenant.a.p.k\n    to: 4\n")
            .expect("valid");
        assert_eq!(r.refs[0].to.as_ref().map(VersionId::as_str), Some("4"));
        assert_eq!(r.rollback, RollbackMode::Auto);
    }

    #[test]
    fn reports_every_problem_at_once() {
        let errs = check("version: 2\nid: abd\nenvironment: prod\nreason: ''\nrefs: []\n")
            .expect_err("invalid");
        let codes: Vec<_> = errs.iter().map(|d| (d.code, d.line)).collect();
        assert_eq!(
            codes,
            [
                ("unsupported_version", 1),
                ("id_mismatch", 2),
                ("unknown_environment", 3),
                ("empty_value", 4),
                ("no_refs", 5)
            ]
        );
    }

    #[test]
    fn production_needs_maintenance() {
        let errs = check("version: 1\nid: abc\nenvironment: production\nreason: r\nrefs: [{ref: tenant.a.p.k}]\n")
            .expect_err("invalid");
        assert_eq!(
            (errs[0].code, errs[0].line, errs[0].column),
            ("maintenance_required", 3, 14)
        );
        let ok = check(
            "version: 1\nid: abc\nenvironment: production\nreason: r\nrefs: [{ref: tenant.a.p.k}]\nmaintenance: {rollout_note: https://x}\n",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn window_contains_is_half_open() {
        let w = Window {
            start: "2026-11-26T02:00:00Z".parse().expect("ts"),
            end: "2026-11-26T04:00:00Z".parse().expect("ts"),
        };
        assert!(w.contains(w.start));
        assert!(!w.contains(w.end));
    }
}
