//! `rotor new ID --environment ENV --reason TEXT (--ref REF… | --match GLOB… | --refs-file
//! PATH)`: writes `<requests_dir>/<ID>.yaml` from what the secret managers and the application
//! say.
//!
//! Every input is checked before any call (exit 2), the refs are read and decided on
//! ([`crate::draft`]), and the request is written only when at least one ref qualifies (else
//! exit 4) and every ref could be read. The text is checked by the parser `rotor validate` uses
//! before it is written, and an existing file is never overwritten.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use crate::app::AppClient;
use crate::config::Config;
use crate::context::Context;
use crate::diagnostic::{Diagnostic, Pos, quote};
use crate::draft::{self, Draft, Selection, Skip, Source};
use crate::error::Error;
use crate::ids::{RotationId, SecretRef, VersionId};
use crate::outcome::RefError;
use crate::output::Format;
use crate::request::{self, Maintenance, RollbackMode};

/// The command line of `rotor new`.
#[derive(Debug, Clone)]
pub struct Args {
    /// The rotation id.
    pub id: String,
    /// The environment (`None` only with `rest_of`: the other rotation's).
    pub environment: Option<String>,
    /// Why (`None` only with `rest_of`: the other rotation's).
    pub reason: Option<String>,
    /// `--rest-of`: the rotation whose skipped refs this request takes up.
    pub rest_of: Option<String>,
    /// `--ref`, repeated.
    pub refs: Vec<String>,
    /// `--match`, repeated.
    pub globs: Vec<String>,
    /// `--refs-file`.
    pub refs_file: Option<PathBuf>,
    /// `--to`.
    pub to: Option<String>,
    /// `--window START/END`.
    pub window: Option<String>,
    /// `--rollout-note`.
    pub rollout_note: Option<String>,
    /// `--rollback`.
    pub rollback: RollbackMode,
    /// `--dry-run`.
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
struct RefEntry<'a> {
    #[serde(rename = "ref")]
    secret_ref: &'a str,
    to: &'a str,
    sites: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
struct SkipEntry<'a> {
    #[serde(rename = "ref")]
    secret_ref: &'a str,
    reason: Skip,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    /// The request written (or, with `--dry-run`, printed); `null` when there is none.
    path: Option<&'a str>,
    refs: Vec<RefEntry<'a>>,
    skipped: Vec<SkipEntry<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RefError>,
}

/// Runs `rotor new`.
pub async fn run(cx: &Context, args: &Args) -> Result<(), Error> {
    let config = crate::context::require_config(cx)?;
    let draft = draft_of(cx, &config, args)?;
    let path = cx
        .repo
        .join(config.requests_dir.as_str())
        .join(format!("{}.yaml", draft.id));
    let shown = cx.display(&path);
    refuse_taken(cx, &config, &draft.id, &path, &shown)?;
    let app = Arc::new(AppClient::new(&config.app)?);
    let selection =
        draft::select(&config, &draft, app, &crate::context::backend_environment()).await?;
    for rule in &selection.unreadable {
        cx.output.warn(&format!(
            "backend rule {}: its template names neither {{ref}} nor all of {{slug}}, {{provider}} and {{key}}, so its secrets cannot be listed",
            quote(rule)
        ));
    }
    if !selection.failures.is_empty() {
        print(cx, &selection, None, None)?;
        return Err(Error::Refs {
            total: selection.chosen.len() + selection.skipped.len() + selection.failures.len(),
            failures: selection.failures,
        });
    }
    if selection.chosen.is_empty() {
        print(cx, &selection, None, None)?;
        return Err(Error::NothingQualified(match selection.skipped.len() {
            0 => "no secret the backends list is a ref that --match matches".to_owned(),
            n => format!("each of the {n} refs was skipped, for the reason listed"),
        }));
    }
    for c in selection.chosen.iter().filter(|c| !c.to_is_writable()) {
        cx.output.warn(&format!(
            "{}: version id {} cannot be written as `to`; the request leaves it out, and apply picks the same version by the same rule",
            c.secret_ref,
            quote(c.to.as_str())
        ));
    }
    let text = draft::request_text(&draft, &selection.chosen);
    check(cx, &config, &draft.id, &shown, &text)?;
    if args.dry_run {
        print(cx, &selection, Some(&shown), Some(&text))
    } else {
        write_new(cx, &path, &shown, &text)?;
        print(cx, &selection, Some(&shown), None)
    }
}

/// The command line as a draft: every input checked, before any call.
fn draft_of(cx: &Context, config: &Config, args: &Args) -> Result<Draft, Error> {
    let id = RotationId::parse(&args.id).map_err(|e| Error::BadArgument {
        name: "ID",
        problem: format!("{}: {}; {}", quote(&args.id), e.reason, e.help),
    })?;
    let rest = args
        .rest_of
        .as_deref()
        .map(|other| rest_of(cx, config, other))
        .transpose()?;
    let env_name = args
        .environment
        .clone()
        .or_else(|| rest.as_ref().and_then(|r| r.environment.clone()))
        .ok_or_else(|| Error::BadArgument {
            name: "--environment",
            problem: "the other rotation's request is not in the working tree to take its environment from: give --environment".to_owned(),
        })?;
    let reason = args
        .reason
        .clone()
        .or_else(|| rest.as_ref().and_then(|r| r.reason.clone()))
        .ok_or_else(|| Error::BadArgument {
            name: "--reason",
            problem: "the other rotation's request is not in the working tree to take its reason from: give --reason".to_owned(),
        })?;
    let args = &Args {
        environment: Some(env_name.clone()),
        reason: Some(reason),
        ..args.clone()
    };
    let (env_name, reason) = (
        env_name.as_str(),
        args.reason.as_deref().unwrap_or_default(),
    );
    let Some(environment) = config.environments.get(env_name) else {
        let known: Vec<&str> = config.environments.keys().map(String::as_str).collect();
        return Err(Error::BadArgument {
            name: "--environment",
            problem: format!(
                "{} is not an environment of the config; use one of: {}",
                quote(env_name),
                known.join(", ")
            ),
        });
    };
    request::check_text(reason).map_err(|(_, problem)| Error::BadArgument {
        name: "--reason",
        problem: format!("the reason {problem}; write one line of at most 4,096 characters"),
    })?;
    let window = args
        .window
        .as_deref()
        .map(|w| {
            let window = draft::parse_window(w).map_err(|problem| Error::BadArgument {
                name: "--window",
                problem,
            })?;
            if window.end <= chrono::Utc::now() {
                return Err(Error::BadArgument {
                    name: "--window",
                    problem: format!(
                        "the window closed at {}; apply could never run in it",
                        window.end
                    ),
                });
            }
            Ok(window)
        })
        .transpose()?;
    if let Some(note) = &args.rollout_note
        && (note.trim().is_empty() || note.chars().count() > request::MAX_TEXT)
    {
        return Err(Error::BadArgument {
            name: "--rollout-note",
            problem: "write a link to the note, or its text, of at most 4,096 characters"
                .to_owned(),
        });
    }
    let maintenance = (window.is_some() || args.rollout_note.is_some()).then(|| Maintenance {
        window,
        rollout_note: args.rollout_note.clone(),
    });
    if environment.requires_maintenance && maintenance.is_none() {
        return Err(Error::BadArgument {
            name: "--window",
            problem: format!(
                "environment {} requires a maintenance window or a rollout note: give --window START/END or --rollout-note URL",
                quote(env_name)
            ),
        });
    }
    let to = args
        .to
        .as_deref()
        .map(|t| {
            VersionId::parse(t).map_err(|e| Error::BadArgument {
                name: "--to",
                problem: format!("{}: {}; {}", quote(t), e.reason, e.help),
            })
        })
        .transpose()?;
    Ok(Draft {
        id,
        environment: env_name.to_owned(),
        reason: reason.to_owned(),
        source: match rest {
            Some(rest) => Source::Refs(rest.refs),
            None => source(cx, args)?,
        },
        to,
        maintenance,
        rollback: args.rollback,
        rejections: crate::record::ledger::rejections(cx, config)?,
    })
}

/// What `--rest-of OTHER_ID` takes from the other rotation: the refs its artifact records as
/// skipped (ordered by ref), and its request's environment and reason when the working tree
/// still holds the request.
struct RestOf {
    refs: Vec<SecretRef>,
    environment: Option<String>,
    reason: Option<String>,
}

fn rest_of(cx: &Context, config: &Config, other: &str) -> Result<RestOf, Error> {
    let bad = |problem: String| Error::BadArgument {
        name: "--rest-of",
        problem,
    };
    let other = RotationId::parse(other)
        .map_err(|e| bad(format!("{}: {}; {}", quote(other), e.reason, e.help)))?;
    let rel = format!("{}/{other}.md", config.artifacts_dir.as_str());
    let text = std::fs::read_to_string(cx.repo.join(&rel)).map_err(|e| {
        bad(format!(
            "{rel} cannot be read ({e}): run `rotor new` in a checkout of the default branch, where rotation {other}'s artifact is"
        ))
    })?;
    let meta = match crate::artifact::read_meta(&text) {
        Ok(Some(meta)) if meta.rotation_id == other.as_str() => meta,
        Ok(_) => return Err(bad(format!("{rel} holds no record of rotation {other}"))),
        Err(e) => return Err(bad(format!("{rel} is not rotor's record: {e}"))),
    };
    let mut refs: Vec<SecretRef> = Vec::new();
    for r in meta.refs.iter().filter(|r| r.result == "skipped") {
        let parsed = SecretRef::parse(&r.secret_ref).map_err(|e| {
            bad(format!(
                "{rel} records {} as skipped, which is not a ref: {}",
                quote(&r.secret_ref),
                e.reason
            ))
        })?;
        refs.push(parsed);
    }
    refs.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    refs.dedup();
    if refs.is_empty() {
        return Err(bad(format!(
            "rotation {other} skipped nothing: its rollout did not halt, so there is no rest to rotate"
        )));
    }
    let request = std::fs::read(
        cx.repo
            .join(config.requests_dir.as_str())
            .join(format!("{other}.yaml")),
    )
    .ok()
    .and_then(|bytes| {
        request::parse(
            &format!("{}/{other}.yaml", config.requests_dir.as_str()),
            &bytes,
            request::Context {
                stem: Some(other.as_str()),
                environments: Some(&config.environments),
            },
        )
        .ok()
    });
    Ok(RestOf {
        refs,
        environment: request.as_ref().map(|r| r.environment.clone()),
        reason: request.map(|r| r.reason),
    })
}

/// Where the refs come from: `--match`, `--refs-file` or `--ref` (clap allows exactly one).
fn source(cx: &Context, args: &Args) -> Result<Source, Error> {
    if !args.globs.is_empty() {
        let globs = draft::Globs::parse(&args.globs).map_err(|problem| Error::BadArgument {
            name: "--match",
            problem,
        })?;
        return Ok(Source::Match(globs));
    }
    let refs = match &args.refs_file {
        Some(file) => refs_file(cx, file)?,
        None => {
            let mut refs: Vec<SecretRef> = Vec::with_capacity(args.refs.len());
            for text in &args.refs {
                let r = SecretRef::parse(text).map_err(|e| Error::BadRef {
                    text: quote(text),
                    reason: format!("{}; {}", e.reason, e.help),
                })?;
                if !refs.contains(&r) {
                    refs.push(r);
                }
            }
            refs
        }
    };
    Ok(Source::Refs(refs))
}

/// The refs of `--refs-file` (relative to the current directory); every invalid line is
/// reported with its position.
fn refs_file(cx: &Context, file: &Path) -> Result<Vec<SecretRef>, Error> {
    let path = std::env::current_dir()
        .map_err(|e| Error::BadArgument {
            name: "--refs-file",
            problem: format!("no current directory to find it in: {e}"),
        })?
        .join(file);
    let shown = cx.display(&path);
    let refs = crate::yaml::read_limited(&path, &shown)
        .map_err(|d| vec![d])
        .and_then(|bytes| {
            let text = String::from_utf8(bytes).map_err(|_| {
                vec![Diagnostic::new(
                    "invalid_utf8",
                    &shown,
                    Pos::START,
                    "the refs file is not UTF-8 text",
                )]
            })?;
            draft::parse_refs_file(&shown, &text)
        })
        .or_else(|diagnostics| {
            for d in &diagnostics {
                cx.output.diagnostic(d)?;
            }
            Err(Error::Invalid { diagnostics })
        })?;
    if refs.is_empty() {
        return Err(Error::NoRefs {
            action: "write a request for",
            hint: format!("{shown} lists none (one ref a line)"),
        });
    }
    Ok(refs)
}

/// Refuses an id that is taken: its request file exists (never overwritten), or it has an
/// artifact (ids are never reused).
fn refuse_taken(
    cx: &Context,
    config: &Config,
    id: &RotationId,
    path: &Path,
    shown: &str,
) -> Result<(), Error> {
    if path.symlink_metadata().is_ok() {
        return Err(Error::BadArgument {
            name: "ID",
            problem: format!(
                "{shown} already exists, and rotor new never overwrites a file; choose another id, or edit that request"
            ),
        });
    }
    let artifact = cx
        .repo
        .join(config.artifacts_dir.as_str())
        .join(format!("{id}.md"));
    if artifact.symlink_metadata().is_ok() {
        return Err(Error::BadArgument {
            name: "ID",
            problem: format!(
                "rotation {id} already has an artifact ({}), and ids are never reused; choose another id",
                cx.display(&artifact)
            ),
        });
    }
    Ok(())
}

/// The request is checked as `rotor validate` checks it; a problem is reported against the
/// file it would be.
fn check(
    cx: &Context,
    config: &Config,
    id: &RotationId,
    shown: &str,
    text: &str,
) -> Result<(), Error> {
    let diagnostics = match request::parse(
        shown,
        text.as_bytes(),
        request::Context {
            stem: Some(id.as_str()),
            environments: Some(&config.environments),
        },
    ) {
        Ok(parsed) => crate::preflight::shared_locations(config, &parsed, shown, text.as_bytes()),
        Err(diagnostics) => diagnostics,
    };
    if diagnostics.is_empty() {
        return Ok(());
    }
    for d in &diagnostics {
        cx.output.diagnostic(d)?;
    }
    Err(Error::Invalid { diagnostics })
}

/// Writes the request as a new file inside the working tree; an existing file is refused.
fn write_new(cx: &Context, path: &Path, shown: &str, text: &str) -> Result<(), Error> {
    let fail = |problem: String| Error::WriteRequest {
        path: shown.to_owned(),
        problem,
    };
    let dir = path
        .parent()
        .ok_or_else(|| fail("no directory".to_owned()))?;
    std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    // `requests_dir` is relative and has no `..`; a symbolic link could still lead outside.
    let inside = match (dir.canonicalize(), cx.repo.canonicalize()) {
        (Ok(dir), Ok(repo)) => dir.starts_with(repo),
        _ => false,
    };
    if !inside {
        return Err(fail(
            "the requests directory lies outside the repository (a symbolic link?)".to_owned(),
        ));
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                fail("it appeared meanwhile, and rotor new never overwrites a file".to_owned())
            }
            _ => fail(e.to_string()),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| fail(e.to_string()))
}

/// The report: one JSON object, or text lines. With `--dry-run` in text, stdout carries exactly
/// the request and the summary goes to stderr.
fn print(
    cx: &Context,
    selection: &Selection,
    path: Option<&str>,
    content: Option<&str>,
) -> Result<(), Error> {
    let out = &cx.output;
    if out.format == Format::Json {
        out.json(&Report {
            command: "new",
            path,
            refs: selection
                .chosen
                .iter()
                .map(|c| RefEntry {
                    secret_ref: c.secret_ref.as_str(),
                    to: c.to.as_str(),
                    sites: c.sites.iter().map(|s| s.as_str()).collect(),
                })
                .collect(),
            skipped: selection
                .skipped
                .iter()
                .map(|s| SkipEntry {
                    secret_ref: s.secret_ref.as_str(),
                    reason: s.reason,
                })
                .collect(),
            content,
            errors: selection
                .failures
                .iter()
                .map(|(r, f)| RefError::new(r, f))
                .collect(),
        })?;
        return Ok(());
    }
    let mut lines = Vec::new();
    let (n, skipped) = (selection.chosen.len(), selection.skipped.len());
    let refs = |n: usize| {
        if n == 1 {
            "1 ref".to_owned()
        } else {
            format!("{n} refs")
        }
    };
    lines.push(match (path, content) {
        (Some(p), Some(_)) => format!(
            "{p} (not written, --dry-run): {}, {skipped} skipped",
            refs(n)
        ),
        (Some(p), None) => format!("wrote {p}: {}, {skipped} skipped", refs(n)),
        (None, _) => format!("no request written: {}, {skipped} skipped", refs(n)),
    });
    for c in &selection.chosen {
        let sites = c
            .sites
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "  {} ({}): {} -> {}, sites: {}",
            c.secret_ref,
            c.backend,
            c.from.as_ref().map_or("-", |v| v.as_str()),
            c.to,
            if sites.is_empty() { "-" } else { &sites }
        ));
    }
    for s in &selection.skipped {
        lines.push(format!(
            "  {}: skipped, {} ({})",
            s.secret_ref,
            s.reason.as_str(),
            s.detail
        ));
    }
    for (_, f) in &selection.failures {
        lines.push(format!("error[{}]: {f}", f.code()));
    }
    match content {
        Some(text) => {
            for line in &lines {
                out.log(line);
            }
            out.report_line(text.trim_end_matches('\n'))?;
        }
        None => {
            for line in &lines {
                out.report_line(line)?;
            }
        }
    }
    Ok(())
}
