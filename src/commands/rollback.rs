//! `rotor rollback`: dispatched by an `internal_admin` from the default branch.
//!
//! Inputs come from trusted places only: the config and templates from the default branch's
//! tip, and `from`/`to` from the rotation's artifact on that same tip, confirmed by rotor's own
//! markers in the backends — never from the dispatch inputs, which only name the rotation and
//! say why. Each ref of the rotation (or the one `--ref`) moves back with compare-and-swap, is
//! verified, and its `rollback` audit event is confirmed; a `## Rollback` section is then
//! appended to the artifact and committed to the default branch.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};

use crate::app::AppClient;
use crate::artifact::{
    self, ArtifactMeta, MetaEvent, MetaRollback, MetaRollbackRef, RollbackRecord, RollbackSection,
};
use crate::context::Context;
use crate::dispatch::{self, Dispatch};
use crate::error::Error;
use crate::ids::SecretRef;
use crate::outcome::{RefOutcome, RefResult, RunResult};
use crate::output::github as gha;
use crate::preflight;
use crate::progress::Progress;
use crate::report::{RefReport, RunReport, View};
use crate::rotation::{self, Settings};
use crate::session::{self, Part, RunEnv, Trusted};

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
    pub event: Option<PathBuf>,
}

/// Runs `rotor rollback`.
pub async fn run(cx: &Context, args: &Args, config_rel: &Path) -> Result<(), Error> {
    let env = RunEnv::from_env(args.event.as_deref())?;
    let (d, only) = parse(args, &env)?;
    let gh = env.client()?;
    let default_branch = gh.default_branch().await?;
    dispatch::on_default_branch("rollback", &d, &default_branch)?;
    let trusted = session::load_trusted(cx, &env, &gh, None, &default_branch, config_rel).await?;
    let config = &trusted.config;
    dispatch::authorize(&gh, config, &d.dispatcher).await?;
    crate::publish::check_author(&gh, &config.commit).await?;
    let (path, text, meta) = read_artifact(&trusted, &d, &only, &default_branch)?;
    let app = Arc::new(AppClient::new(&config.app)?);
    let backends = crate::context::backend_environment();
    let plan = preflight::rollback_plan(config, &meta, &path, &only, &app, &backends).await?;
    if plan.jobs.is_empty() {
        for (r, why) in &plan.skipped {
            cx.output.log(&format!("{r}: {why}"));
        }
        return run_report(&d, RunResult::Noop, None, args.force, &[]).emit(&cx.output);
    }
    preview(&trusted, &d, &env, &text, &meta, &plan, args.force)?;
    if args.dry_run {
        cx.output.log(&format!(
            "dry run: {} refs would roll back; nothing changed",
            plan.jobs.len()
        ));
        return run_report(&d, RunResult::Planned, None, args.force, &[]).emit(&cx.output);
    }
    let settings = settings(config, &d, &meta);
    let indices: Vec<usize> = plan.jobs.iter().map(|(i, ..)| *i).collect();
    let jobs = plan
        .jobs
        .into_iter()
        .map(|(_, j, f, t)| (j, f, t))
        .collect();
    let progress = Arc::new(Progress::new(
        cx.output,
        indices.len(),
        Some(format!("{}/{}.yaml", config.requests_dir.as_str(), d.id)),
        true,
    ));
    let outcomes = rotation::roll_back_all(
        app.clone(),
        settings,
        jobs,
        args.force,
        config.concurrency,
        progress,
    )
    .await;
    let result = if outcomes.iter().all(|o| o.result == RefResult::RolledBack) {
        RunResult::RolledBack
    } else {
        RunResult::Failed
    };
    let moved = outcomes.iter().any(|o| o.result != RefResult::NotStarted);
    let settled = outcomes.iter().all(|o| o.settled);
    let mut commit = None;
    if moved && settled {
        let record = Record {
            trusted: &trusted,
            gh: &gh,
            d: &d,
            app: &app,
            path: &path,
            text: &text,
            force: args.force,
            run_url: env.run_url(),
        };
        let cited: Vec<String> = outcomes
            .iter()
            .flat_map(|o| o.audit_event_ids.iter().cloned())
            .collect();
        let times = app.event_times(&cited).await;
        commit = Some(
            record
                .commit(meta.clone(), &indices, &outcomes, result, &times)
                .await?,
        );
    }
    let report = run_report(&d, result, commit.map(|c| (path, c)), args.force, &outcomes);
    let mut view = view(&d, &env, headline(&report), &report, meta.pull_request);
    view.links.audit_query = Some(crate::report::Link {
        text: "audit query".to_owned(),
        url: app.audit_query_link(&config.app.audit_action),
    });
    comment(cx, &trusted, &gh, meta.pull_request, &view).await?;
    report.emit(&cx.output)?;
    ended(result, outcomes)
}

/// The procedure's settings for a rollback of the rotation `meta` records: the dispatcher is
/// the operator.
fn settings(config: &crate::config::Config, d: &Dispatch, meta: &ArtifactMeta) -> Arc<Settings> {
    Arc::new(Settings {
        rotation_id: d.id.to_string(),
        pull_request: meta.pull_request,
        operator: d.dispatcher.clone(),
        rollback: crate::request::RollbackMode::Auto,
        settle_timeout: config.checks.settle_timeout,
        audit_timeout: config.app.audit_timeout,
        audit_action: config.app.audit_action.clone(),
        actor_role: config.app.actor_role.clone(),
        extra: config.checks.extra.clone(),
    })
}

/// How the run ends: rolled back is the success; nothing moved is each ref's failure; a ref
/// left without a final marker asks for another dispatch.
fn ended(result: RunResult, outcomes: Vec<RefOutcome>) -> Result<(), Error> {
    let moved = outcomes.iter().any(|o| o.result != RefResult::NotStarted);
    let settled = outcomes.iter().all(|o| o.settled);
    match result {
        RunResult::RolledBack => Ok(()),
        _ if !moved => Err(Error::Refs {
            total: outcomes.len(),
            failures: outcomes
                .into_iter()
                .filter_map(|o| o.failure.map(|f| (o.secret_ref, f)))
                .collect(),
        }),
        _ if !settled => Err(Error::RotationFailed(
            "the rollback was interrupted before every ref had a final marker; nothing was committed, dispatch it again to converge".to_owned(),
        )),
        other => Err(Error::RotationFailed(format!("rollback {other}"))),
    }
}

/// Parses every input before any call: the dispatch, and the refs to roll back.
fn parse(args: &Args, env: &RunEnv) -> Result<(Dispatch, Vec<SecretRef>), Error> {
    let d = dispatch::parse(
        "rollback",
        args.rotation_id.clone(),
        args.reason.clone(),
        env,
    )?;
    let mut only = Vec::new();
    for text in &args.refs {
        only.push(SecretRef::parse(text).map_err(|e| Error::BadRef {
            text: crate::diagnostic::quote(text),
            reason: e.reason,
        })?);
    }
    Ok((d, only))
}

/// The rotation's artifact on the default branch, its text and its machine-readable part.
fn read_artifact(
    trusted: &Trusted,
    d: &Dispatch,
    only: &[SecretRef],
    default_branch: &str,
) -> Result<(String, String, ArtifactMeta), Error> {
    let (path, text, meta) = dispatch::artifact_on_default_branch(
        trusted,
        d,
        default_branch,
        |m| !m.refs.is_empty(),
        &dispatch::Remedies {
            missing: "rollback reads from/to from the artifact on the default branch (merge the rotation's pull request first)",
            untrusted: "run `rotor verify`, and roll back by hand if it was tampered with",
            unusable: "carries no readable from/to for its refs; roll back by hand",
        },
    )?;
    for r in only {
        if !meta.refs.iter().any(|m| m.secret_ref == r.as_str()) {
            return Err(Error::BadArgument {
                name: "--ref",
                problem: format!("{r} is not a ref of rotation {}", d.id),
            });
        }
    }
    Ok((path, text, meta))
}

/// The `## Rollback` section with its runbook fields.
fn section(
    d: &Dispatch,
    outcomes: &[RefOutcome],
    result: RunResult,
    audit_query: &str,
    forced: bool,
) -> RollbackSection {
    let verification = match outcomes {
        [one] => crate::outcome::summarise(&one.checks),
        many => {
            let ok = many
                .iter()
                .filter(|o| o.result == RefResult::RolledBack)
                .count();
            format!("{ok} of {} refs rolled back and verified", many.len())
        }
    };
    let ids: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.audit_event_ids.iter().map(String::as_str))
        .collect();
    let shown = match ids.len() {
        0 => "no confirmed event".to_owned(),
        1..=10 => ids.join(", "),
        n => format!("{} and {} more", ids[..10].join(", "), n - 10),
    };
    let mut providers: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| o.secret_ref.split('.').nth(2))
        .collect();
    providers.sort_unstable();
    providers.dedup();
    RollbackSection {
        record: RollbackRecord {
            date: Utc::now().format("%Y-%m-%d").to_string(),
            operator: d.dispatcher.clone(),
            result: result.as_str().to_owned(),
            verification,
            audit_evidence: shown,
            audit_query: audit_query.to_owned(),
            reason: d.reason.clone(),
            forced,
        },
        secret_ref: match outcomes {
            [one] => one.secret_ref.clone(),
            many => format!("{} refs", many.len()),
        },
        provider: providers.join(", "),
    }
}

/// Renders every template this run will render before anything changes (exit 2 when an
/// override is broken).
fn preview(
    trusted: &Trusted,
    d: &Dispatch,
    env: &RunEnv,
    text: &str,
    meta: &ArtifactMeta,
    plan: &preflight::RollbackPlan,
    forced: bool,
) -> Result<(), Error> {
    let outcomes: Vec<RefOutcome> = plan
        .jobs
        .iter()
        .map(|(i, job, from, to)| RefOutcome {
            from: Some(from.to_string()),
            to: Some(to.to_string()),
            result: RefResult::RolledBack,
            audit_event_ids: vec!["preview".to_owned()],
            settled: true,
            ..RefOutcome::new(meta.refs[*i].secret_ref.clone(), job.secret.backend())
        })
        .collect();
    let preview = section(d, &outcomes, RunResult::RolledBack, "preview", forced);
    artifact::append_rollback(text, &preview, meta, &trusted.renderer)?;
    let report = run_report(d, RunResult::RolledBack, None, forced, &outcomes);
    trusted.render(&view(d, env, "rolled back", &report, meta.pull_request))?;
    Ok(())
}

/// What the comment and summary of a rollback show: the move as it happened (to → from) and
/// the dispatcher as such.
fn view<'a>(
    d: &'a Dispatch,
    env: &RunEnv,
    headline: &'a str,
    report: &'a RunReport,
    pull_request: Option<u64>,
) -> View<'a> {
    View {
        rotation_id: Some(d.id.as_str()),
        dispatcher: Some(&d.dispatcher),
        reason: Some(&d.reason),
        links: env.links(pull_request, report),
        ..View::new("rollback", headline, report)
    }
}

/// What committing the rollback's section needs.
struct Record<'a> {
    trusted: &'a Trusted,
    gh: &'a crate::github::GitHub,
    d: &'a Dispatch,
    app: &'a AppClient,
    path: &'a str,
    text: &'a str,
    force: bool,
    run_url: Option<String>,
}

impl Record<'_> {
    /// Appends the `## Rollback` section and the updated machine-readable block, and commits
    /// them to the default branch.
    async fn commit(
        &self,
        mut meta: ArtifactMeta,
        indices: &[usize],
        outcomes: &[RefOutcome],
        result: RunResult,
        times: &std::collections::HashMap<String, chrono::DateTime<Utc>>,
    ) -> Result<String, Error> {
        for (o, &i) in outcomes.iter().zip(indices) {
            let m = &mut meta.refs[i];
            m.pointer = o.pointer.clone().or(m.pointer.take());
            m.rollback = Some(o.result.as_str().to_owned());
        }
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true);
        meta.rolled_back = true;
        meta.rolled_back_at = Some(now.clone());
        // Each rollback is recorded whole, with the operation of every audit event it cites,
        // so that `rotor verify` can look each one up and `rotor evidence` can list it.
        meta.rollbacks.push(MetaRollback {
            operator: self.d.dispatcher.clone(),
            reason: self.d.reason.clone(),
            finished_at: now,
            result: result.as_str().to_owned(),
            forced: self.force,
            run_url: self.run_url.clone(),
            refs: outcomes
                .iter()
                .map(|o| MetaRollbackRef {
                    secret_ref: o.secret_ref.clone(),
                    result: o.result.as_str().to_owned(),
                    audit_events: MetaEvent::list(&o.audit_event_ids, &o.rollback_event_ids),
                })
                .collect(),
            started_at: crate::report::started_at(outcomes, times),
            app_clock_offset_s: self.app.clock_offset(),
        });
        let config = &self.trusted.config;
        let query = self.app.audit_query_link(&config.app.audit_action);
        let section = section(self.d, outcomes, result, &query, self.force);
        let updated =
            artifact::append_rollback(self.text, &section, &meta, &self.trusted.renderer)?;
        let branch = self.d.branch();
        let message = format!("rotor: rollback of {} {result}", self.d.id);
        let record = crate::publish::Record {
            branch,
            path: self.path,
            content: updated.as_bytes(),
            message: &message,
            keep: &|_| false,
            approved: None,
        };
        crate::publish::publish(&self.trusted.git, self.gh, &config.commit, &record).await
    }
}

/// The headline of a rollback's comment and summary.
fn headline(report: &RunReport) -> &'static str {
    match report.result {
        RunResult::RolledBack => "rolled back",
        _ if report
            .refs
            .iter()
            .all(|r| r.result == RefResult::NotStarted) =>
        {
            "nothing changed"
        }
        _ => "rollback failed",
    }
}

/// The rotation's pull-request comment, when the artifact names it (a failure there does not
/// undo a rollback that happened, so it is a warning): its rollback section, below the
/// rotation's own report, which stays. And the job summary.
async fn comment(
    cx: &Context,
    trusted: &Trusted,
    gh: &crate::github::GitHub,
    pull_request: Option<u64>,
    view: &View<'_>,
) -> Result<(), Error> {
    let (body, summary) = trusted.render(view)?;
    if let Some(number) = pull_request
        && let Err(e) = session::upsert_comment(gh, number, &body, Part::Rollback).await
    {
        cx.output.warn(&format!(
            "the comment on pull request #{number} was not updated: {e}"
        ));
    }
    gha::append_summary(&summary)?;
    Ok(())
}

/// The run's report: the step outputs, the JSON and the text.
fn run_report(
    d: &Dispatch,
    result: RunResult,
    committed: Option<(String, String)>,
    forced: bool,
    outcomes: &[RefOutcome],
) -> RunReport {
    let rows = outcomes
        .iter()
        .map(|o| {
            let mut row = RefReport::from(o);
            if let (Some(e), Some(f)) = (row.error.as_mut(), o.failure.as_ref()) {
                e.next_step = Some(f.next_step_rolling_back());
            }
            row
        })
        .collect();
    let mut report = RunReport::new("rollback", result).with_refs(rows);
    report.rotation_id = Some(d.id.to_string());
    report.operator = Some(d.dispatcher.clone());
    report.forced = Some(forced);
    report.moving_back = true;
    report.text = vec![format!("rotor rollback {}: {result}", d.id)];
    if let Some((path, sha)) = committed {
        report.artifact_path = Some(path);
        report.commit_sha = Some(sha);
    }
    report
}
