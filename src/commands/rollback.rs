//! `rotor rollback`: DESIGN §8, dispatched by an `internal_admin` from the default branch.
//!
//! Inputs come from trusted places only: the config and templates from the default branch's
//! tip, and `from`/`to` from the rotation's artifact on that same tip — never from the
//! dispatch inputs, which only name the rotation and say why. Each ref of the rotation (or the
//! one `--ref`) moves back with compare-and-swap, is verified, and its `rollback` audit event is
//! confirmed; a `## Rollback` section is then appended to the artifact and committed to the
//! default branch.

use std::path::Path;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde::Serialize;

use super::apply::row;
use super::plan::{self, COMMENT_ROWS, RefPlan, ReportError, RunEnv, View};
use crate::app::AppClient;
use crate::artifact::{self, RollbackRecord, RollbackSection};
use crate::backend::Backends;
use crate::batch::map_bounded;
use crate::context::Context;
use crate::error::Error;
use crate::gate;
use crate::github::GitHub;
use crate::github::event::{self, Trigger};
use crate::gitops::Author;
use crate::ids::{RotationId, SecretRef, SiteId, VersionId};
use crate::output::{Format, github as gha};
use crate::policy::AdminStatus;
use crate::rotation::{self, Job, RefOutcome, RefResult, Settings};

/// What the command line asked.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// `--rotation-id` (default: the dispatch input `rotation_id`).
    pub rotation_id: Option<String>,
    /// `--reason` (default: the dispatch input `reason`).
    pub reason: Option<String>,
    /// `--ref`: roll back only these refs of the rotation.
    pub refs: Vec<String>,
    /// `--force`: roll back even if the pointer moved since the rotation.
    pub force: bool,
    /// `--dry-run`: everything up to, not including, the first change.
    pub dry_run: bool,
    /// `--event`: the event payload.
    pub event: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    rotation_id: &'a str,
    result: &'a str,
    artifact_path: Option<&'a str>,
    commit_sha: Option<&'a str>,
    operator: &'a str,
    forced: bool,
    refs: &'a [RefOutcome],
    errors: &'a [ReportError],
}

/// Runs `rotor rollback`.
pub async fn run(cx: &Context, args: &Args, config_rel: &Path) -> Result<(), Error> {
    let env = RunEnv::from_env(args.event.as_deref())?;
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    let (git_ref, inputs) = match &event.trigger {
        Trigger::Dispatch { git_ref, inputs } => (git_ref.clone(), inputs.clone()),
        _ => {
            return Err(Error::Event(event::EventError::Unsupported {
                name: event.name.clone(),
                command: "rollback",
                expected: "workflow_dispatch",
            }));
        }
    };
    event.check_repository(&env.repository.full())?;
    let input = |name: &str| {
        inputs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };

    // Parse every input before any call.
    let id_text = args
        .rotation_id
        .clone()
        .or_else(|| input("rotation_id"))
        .ok_or_else(|| Error::BadArgument {
            name: "--rotation-id",
            problem: "missing: pass --rotation-id or the dispatch input rotation_id".to_owned(),
        })?;
    let id = RotationId::parse(&id_text).map_err(|e| Error::BadArgument {
        name: "--rotation-id",
        problem: format!("{}: {}", crate::diagnostic::quote(&id_text), e.reason),
    })?;
    let reason = args
        .reason
        .clone()
        .or_else(|| input("reason"))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::BadArgument {
            name: "--reason",
            problem: "missing: say why, with --reason or the dispatch input reason".to_owned(),
        })?;
    crate::request::check_text(&reason).map_err(|(_, problem)| Error::BadArgument {
        name: "--reason",
        problem: format!(
            "the reason {problem}; write one line of at most 4,096 characters, as a request's reason"
        ),
    })?;
    let mut only = Vec::new();
    for text in &args.refs {
        only.push(SecretRef::parse(text).map_err(|e| Error::BadRef {
            text: crate::diagnostic::quote(text),
            reason: e.reason,
        })?);
    }
    let dispatcher = std::env::var("GITHUB_TRIGGERING_ACTOR")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("GITHUB_ACTOR").ok())
        .filter(|v| !v.trim().is_empty())
        .ok_or(Error::Env {
            var: "GITHUB_ACTOR",
            problem: "is not set (nor GITHUB_TRIGGERING_ACTOR)",
            hint: "run rollback from workflow_dispatch, which sets them",
        })?;
    let gh = GitHub::new(
        &env.api_url,
        &env.token,
        env.org_token.as_ref(),
        env.repository.clone(),
    )?;
    let default_branch = gh.default_branch().await?;

    // Only from the default branch.
    let run_ref = std::env::var("GITHUB_REF")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or(git_ref);
    if run_ref != format!("refs/heads/{default_branch}") {
        return Err(Error::NotApproved(vec![format!(
            "branch: rollback runs only from the default branch ({default_branch}), not {run_ref}"
        )]));
    }
    let trusted = plan::load_trusted(cx, &env, &gh, None, &default_branch, config_rel).await?;
    let config = &trusted.config;

    // The dispatcher must hold internal_admin, by the gate's rules.
    match gate::admin_status(&gh, &config.admins, &dispatcher).await? {
        AdminStatus::Admin => {}
        AdminStatus::NotAdmin => {
            return Err(Error::NotApproved(vec![format!(
                "dispatcher_not_admin: {dispatcher} does not hold internal_admin"
            )]));
        }
        AdminStatus::Unverifiable => {
            return Err(Error::NotApproved(vec![
                "team_not_visible: the token cannot see the admins team, so nobody can be verified; give ROTOR_ORG_TOKEN Organization Members: read".to_owned(),
            ]));
        }
    }

    // from/to come from the artifact on the default branch.
    let path = format!("{}/{}.md", config.artifacts_dir.as_str(), id);
    let text = trusted
        .git
        .read_file(&trusted.base_sha, &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .ok_or_else(|| {
            Error::Precondition(format!(
                "no artifact {path} on {default_branch}: rollback reads from/to from the artifact on the default branch (merge the rotation's pull request first)"
            ))
        })?;
    let mut meta = artifact::read_meta(&text)
        .map_err(|e| {
            Error::Precondition(format!(
                "{path} is not trusted: {e}; run `rotor verify`, and roll back by hand if it was tampered with"
            ))
        })?
        .filter(|m| !m.refs.is_empty())
        .ok_or_else(|| {
            Error::Precondition(format!(
                "{path} carries no readable from/to for its refs; roll back by hand"
            ))
        })?;
    if meta.rotation_id != id.as_str() {
        return Err(Error::Precondition(format!(
            "{path} records rotation {}, not {id}",
            meta.rotation_id
        )));
    }
    for r in &only {
        if !meta.refs.iter().any(|m| m.secret_ref == r.as_str()) {
            return Err(Error::BadArgument {
                name: "--ref",
                problem: format!("{r} is not a ref of rotation {id}"),
            });
        }
    }

    // Which refs move: those whose pointer the rotation left on `to`.
    let mut skipped = Vec::new();
    let mut chosen = Vec::new();
    for (index, m) in meta.refs.iter().enumerate() {
        if !only.is_empty() && !only.iter().any(|r| r.as_str() == m.secret_ref) {
            continue;
        }
        let moved_forward = m
            .pointer
            .as_deref()
            .map_or(matches!(m.result.as_str(), "success" | "failed"), |p| {
                p == m.to
            });
        if m.rollback.as_deref() == Some("rolled_back") {
            skipped.push((m.secret_ref.clone(), "already rolled back".to_owned()));
        } else if !moved_forward && !args.force {
            skipped.push((
                m.secret_ref.clone(),
                format!(
                    "the rotation left it on {} ({}): nothing to roll back",
                    m.from, m.result
                ),
            ));
        } else {
            chosen.push(index);
        }
    }
    if chosen.is_empty() {
        for (r, why) in &skipped {
            cx.output.log(&format!("{r}: {why}"));
        }
        finish(
            cx,
            &id,
            "noop",
            Some(&path),
            None,
            &dispatcher,
            args.force,
            &[],
        )?;
        return Ok(());
    }

    // Clients, then each ref's sites from the application, before any change.
    let app = Arc::new(AppClient::new(&config.app)?);
    let env_vars = crate::context::backend_environment();
    let mut backends = Backends::default();
    let mut jobs = Vec::new();
    for &index in &chosen {
        let m = &meta.refs[index];
        let secret_ref = SecretRef::parse(&m.secret_ref).map_err(|e| {
            Error::Precondition(format!("{path}: ref {}: {}", m.secret_ref, e.reason))
        })?;
        let version = |v: &str| {
            VersionId::parse(v)
                .map_err(|e| Error::Precondition(format!("{path}: version {v:?}: {}", e.reason)))
        };
        let (from, to) = (version(&m.from)?, version(&m.to)?);
        let secret = backends.resolve(config, &secret_ref, &env_vars).await?;
        // The artifact is a file anyone with push access could have written; the backend's
        // marker, which only rotor writes, must not contradict it.
        let state = secret.read().await?;
        if let Some(mk) = state
            .marker
            .as_ref()
            .filter(|mk| mk.rotation_id == id.as_str())
        {
            if mk.pull_request != meta.pull_request {
                return Err(Error::Precondition(format!(
                    "{secret_ref}: {path} records pull request {} but the backend's marker of rotation {id} records {}; the artifact is not trusted, nothing was changed (run `rotor verify`)",
                    meta.pull_request
                        .map_or("none".to_owned(), |n| format!("#{n}")),
                    mk.pull_request
                        .map_or("none".to_owned(), |n| format!("#{n}")),
                )));
            }
            if mk.from.as_deref().is_some_and(|f| f != m.from) {
                return Err(Error::Precondition(format!(
                    "{secret_ref}: {path} records a move from {} but the backend's marker of rotation {id} records {}; the artifact is not trusted, nothing was changed (run `rotor verify`)",
                    m.from,
                    mk.from.as_deref().unwrap_or("nothing")
                )));
            }
        }
        let known = app.get_ref(&secret_ref).await?;
        let sites = known
            .site_ids
            .iter()
            .map(|s| SiteId::parse(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| {
                Error::Precondition(format!(
                    "{secret_ref}: the application names a site that is not a usable site id"
                ))
            })?;
        jobs.push((
            index,
            Job {
                secret,
                to: None,
                sites,
                seen: Some(state),
            },
            from,
            to,
        ));
    }
    // Every template this run renders is rendered once before anything changes, so a broken
    // override stops it here (exit 2).
    let preview_rows: Vec<RefPlan> = jobs
        .iter()
        .map(|(i, job, from, to)| RefPlan {
            secret_ref: meta.refs[*i].secret_ref.clone(),
            backend: job.secret.backend(),
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            result: "rolled_back",
            problem: None,
        })
        .collect();
    let preview = RollbackSection {
        record: RollbackRecord {
            date: Utc::now().format("%Y-%m-%d").to_string(),
            operator: dispatcher.clone(),
            result: "rolled_back".to_owned(),
            verification: "preview".to_owned(),
            audit_evidence: "preview".to_owned(),
            reason: reason.clone(),
            forced: args.force,
        },
        secret_ref: meta.refs[0].secret_ref.clone(),
        provider: "preview".to_owned(),
    };
    artifact::append_rollback(&text, &preview, &meta, &trusted.renderer)?;
    plan::render_report(
        &trusted,
        &View {
            command: "rollback",
            headline: "rolled back",
            rotation_id: Some(id.as_str()),
            environment: None,
            requester: Some(&dispatcher),
            reason: Some(&reason),
            approval: None,
            refs: &preview_rows,
            errors: &[],
            version: env!("CARGO_PKG_VERSION"),
            run_url: env.run_url(),
            comment_rows: COMMENT_ROWS,
        },
    )?;
    if args.dry_run {
        cx.output.log(&format!(
            "dry run: {} refs would roll back; nothing changed",
            jobs.len()
        ));
        finish(
            cx,
            &id,
            "planned",
            Some(&path),
            None,
            &dispatcher,
            args.force,
            &[],
        )?;
        return Ok(());
    }

    let settings = Arc::new(Settings {
        rotation_id: id.to_string(),
        pull_request: meta.pull_request,
        operator: dispatcher.clone(),
        rollback: crate::request::RollbackMode::Auto,
        settle_timeout: config.checks.settle_timeout,
        audit_timeout: config.app.audit_timeout,
        audit_action: config.app.audit_action.clone(),
        actor_role: config.app.actor_role.clone(),
        extra: config.checks.extra.clone(),
    });
    let force = args.force;
    let indices: Vec<usize> = jobs.iter().map(|(i, ..)| *i).collect();
    let outcomes: Vec<RefOutcome> = map_bounded(jobs, config.concurrency, |(_, job, from, to)| {
        let (app, settings) = (app.clone(), settings.clone());
        async move { rotation::roll_back_dispatched(&app, &settings, &job, &from, &to, force).await }
    })
    .await
    .into_iter()
    .zip(&indices)
    .map(|(o, &i)| {
        o.unwrap_or_else(|| RefOutcome {
            secret_ref: meta.refs[i].secret_ref.clone(),
            backend: "unknown",
            from: Some(meta.refs[i].from.clone()),
            to: Some(meta.refs[i].to.clone()),
            result: RefResult::Failed,
            checks: Vec::new(),
            audit_event_ids: Vec::new(),
            timeline: Vec::new(),
            error: Some((1, "the rollback of this ref stopped unexpectedly; run again".to_owned())),
            final_marker: false,
            pointer: None,
            deferred: false,
        })
    })
    .collect();

    let moved = outcomes.iter().any(|o| o.result != RefResult::NotStarted);
    let result = if outcomes.iter().all(|o| o.result == RefResult::RolledBack) {
        "rolled_back"
    } else if moved {
        "failed"
    } else {
        "not_started"
    };
    let mut commit = None;
    if moved && outcomes.iter().all(|o| o.final_marker) {
        for (o, &i) in outcomes.iter().zip(&indices) {
            let m = &mut meta.refs[i];
            m.pointer = o.pointer.clone().or(m.pointer.take());
            m.rollback = Some(row(o).result.to_owned());
        }
        let now = Utc::now();
        meta.rolled_back = true;
        meta.rolled_back_at = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
        let record = RollbackRecord {
            date: now.format("%Y-%m-%d").to_string(),
            operator: dispatcher.clone(),
            result: result.to_owned(),
            verification: verification(&outcomes),
            audit_evidence: audit_evidence(
                &outcomes,
                &app.audit_query_link(&config.app.audit_action),
            ),
            reason: reason.clone(),
            forced: force,
        };
        let section = RollbackSection {
            record,
            secret_ref: match outcomes.as_slice() {
                [one] => one.secret_ref.clone(),
                many => format!("{} refs", many.len()),
            },
            provider: {
                let mut p: Vec<&str> = outcomes
                    .iter()
                    .filter_map(|o| o.secret_ref.split('.').nth(2))
                    .collect();
                p.sort_unstable();
                p.dedup();
                p.join(", ")
            },
        };
        let updated = artifact::append_rollback(&text, &section, &meta, &trusted.renderer)?;
        let author = Author {
            name: config.commit.author_name.clone(),
            email: config.commit.author_email.clone(),
        };
        commit = Some(trusted.git.publish(
            &default_branch,
            &path,
            updated.as_bytes(),
            &format!("rotor: rollback of {id} {result}"),
            &author,
            &|_| false,
        )?);
    }

    // The comment on the rotation's pull request, when it is known; a failure there does not
    // undo a rollback that happened, so it is a warning.
    let rows: Vec<_> = outcomes.iter().map(row).collect();
    let headline = match result {
        "rolled_back" => "rolled back",
        "failed" => "rollback failed",
        _ => "nothing changed",
    };
    let view = View {
        command: "rollback",
        headline,
        rotation_id: Some(id.as_str()),
        environment: None,
        requester: Some(&dispatcher),
        reason: Some(&reason),
        approval: None,
        refs: &rows,
        errors: &[],
        version: env!("CARGO_PKG_VERSION"),
        run_url: env.run_url(),
        comment_rows: COMMENT_ROWS,
    };
    if let Some(number) = meta.pull_request {
        let body = format!(
            "{}\n{}",
            plan::COMMENT_MARKER,
            trusted.renderer.render("comment.md.j2", &view)?
        );
        if let Err(e) = plan::upsert_comment(&gh, number, &body).await {
            cx.output.warn(&format!(
                "the comment on pull request #{number} was not updated: {e}"
            ));
        }
    }
    gha::append_summary(&trusted.renderer.render("summary.md.j2", &view)?)?;
    finish(
        cx,
        &id,
        result,
        commit.as_ref().map(|_| path.as_str()),
        commit.as_deref(),
        &dispatcher,
        force,
        &outcomes,
    )?;
    match result {
        "rolled_back" => Ok(()),
        "not_started" => Err(Error::Refs {
            count: outcomes.len(),
            total: outcomes.len(),
            code: outcomes
                .iter()
                .filter_map(|o| o.error.as_ref().map(|e| e.0))
                .max()
                .unwrap_or(4),
        }),
        _ if commit.is_none() => Err(Error::RotationFailed(
            "the rollback was interrupted before every ref had a final marker; nothing was committed, dispatch it again to converge".to_owned(),
        )),
        other => Err(Error::RotationFailed(format!("rollback {other}"))),
    }
}

fn verification(outcomes: &[RefOutcome]) -> String {
    match outcomes {
        [one] => rotation::summarise(&one.checks),
        many => {
            let ok = many
                .iter()
                .filter(|o| o.result == RefResult::RolledBack)
                .count();
            format!("{ok} of {} refs rolled back and verified", many.len())
        }
    }
}

fn audit_evidence(outcomes: &[RefOutcome], query: &str) -> String {
    let ids: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.audit_event_ids.iter().map(String::as_str))
        .collect();
    let shown = match ids.len() {
        0 => "no confirmed event".to_owned(),
        1..=10 => ids.join(", "),
        n => format!("{} and {} more", ids[..10].join(", "), n - 10),
    };
    format!("{shown}; {query}")
}

#[allow(clippy::too_many_arguments)]
fn finish(
    cx: &Context,
    id: &RotationId,
    result: &str,
    path: Option<&str>,
    commit: Option<&str>,
    operator: &str,
    forced: bool,
    refs: &[RefOutcome],
) -> Result<(), Error> {
    gha::write_outputs(&[
        ("rotation-id", id.to_string()),
        ("result", result.to_owned()),
        ("artifact-path", path.unwrap_or_default().to_owned()),
        ("commit-sha", commit.unwrap_or_default().to_owned()),
        ("refs", refs.len().to_string()),
    ])?;
    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "rollback",
            rotation_id: id.as_str(),
            result,
            artifact_path: path,
            commit_sha: commit,
            operator,
            forced,
            refs,
            errors: &[],
        })?,
        Format::Text => {
            cx.output
                .report_line(&format!("rotor rollback {id}: {result}"))?;
            for o in refs {
                cx.output.report_line(&row(o).text_line(true))?;
            }
        }
    }
    Ok(())
}
