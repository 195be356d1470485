//! `rotor apply`: the rotation procedure for the request an approved pull request carries.
//!
//! Order matters: an artifact already committed with a final result, which every backend
//! confirms, makes the run a `noop` before anything else (rotor's own commit moves the PR head);
//! then the approval gate (exit 3); then every precondition of every ref, read-only (exit 4);
//! then every template rendered once; then the gate again, right before the first change; then
//! the changes. The report goes to the sticky comment, the job summary, the outputs and
//! (`--format json`) one JSON object.
//!
//! `/rotor break-glass` takes the same path with the count of approvals lifted: its reason is
//! checked before any call, the team is told before the first change, the maintenance window
//! is recorded rather than enforced, and the record says break-glass from its first line. An
//! approving review of a break-glass rotation already applied countersigns it.

use std::collections::HashMap;

use std::path::Path;
use std::sync::Arc;

use crate::app::AppClient;
use crate::artifact::{self, ApprovalRecord};
use crate::break_glass;
use crate::config::CommitTarget;
use crate::context::Context;
use crate::error::Error;
use crate::gate::Approval;
use crate::github::event;
use crate::github::model::PullRequest;
use crate::gitops::GitError;
use crate::outcome::{RefOutcome, RefResult, RunResult};
use crate::policy::Decision;
use crate::preflight::{self, RefCheck};
use crate::progress::Progress;
use crate::report::{self, ArtifactFacts, RefReport, RunReport};
use crate::request::Request;
use crate::rotation::{self, Job, Settings};
use crate::session::{Applied, RunEnv, Session};

/// Runs `rotor apply`.
pub async fn run(
    cx: &Context,
    event_arg: Option<&Path>,
    config_rel: &Path,
    dry_run: bool,
    break_glass_flag: bool,
) -> Result<(), Error> {
    let env = RunEnv::from_env(event_arg)?;
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    event.check_repository(&env.repository.full())?;
    let trigger = event.apply_trigger();
    if break_glass_flag && !matches!(&trigger, Ok(t) if t.break_glass.is_some()) {
        return Err(Error::BadArgument {
            name: "--break-glass",
            problem: format!(
                "the event is `{}`, not a new `/rotor break-glass` comment by its author; break-glass runs only on that comment",
                event.name
            ),
        });
    }
    let trigger = match trigger {
        Ok(t) => t,
        Err(not) => return crate::session::noop(cx, "apply", &not),
    };
    // The reason is checked before any call: a break-glass without one changes nothing.
    let reason = trigger
        .break_glass
        .as_deref()
        .map(break_glass::reason)
        .transpose()?;
    let mut s = Session::open(
        cx,
        env,
        &event,
        trigger.number,
        trigger.comment_author.clone(),
        config_rel,
    )
    .await?;
    let (requests, diagnostics, request_files) = s.requests();
    if !diagnostics.is_empty() {
        for d in &diagnostics {
            cx.output.diagnostic(d)?;
        }
        return Err(Error::Invalid { diagnostics });
    }
    let request = requests.into_iter().next();
    // When the glass was broken is when the comment was written: a re-run keeps the deadline.
    let at = trigger
        .comment_at
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(break_glass::now, |t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        });
    let rerun_by = std::env::var("GITHUB_TRIGGERING_ACTOR")
        .ok()
        .filter(|a| !a.trim().is_empty())
        .filter(|a| {
            trigger
                .comment_author
                .as_deref()
                .is_none_or(|c| !c.eq_ignore_ascii_case(a))
        });
    s.break_glass = reason.map(|reason| crate::session::Glass {
        reason,
        at,
        allowed: request.as_ref().map(|r| {
            s.trusted
                .config
                .environment(&r.environment)
                .break_glass
                .allowed
        }),
        rerun_by,
        outside_window: request.as_ref().and_then(|r| {
            match preflight::window(&s.trusted.config, r, chrono::Utc::now()) {
                preflight::Window::Open => None,
                preflight::Window::NotYet(text) | preflight::Window::Closed(text) => Some(text),
            }
        }),
    });
    let s = s;
    let target = match s.trusted.config.commit.target {
        CommitTarget::PrBranch => s.pr.head_ref.clone(),
        CommitTarget::DefaultBranch => s.default_branch.clone(),
    };
    if let Some(r) = &request
        && already_applied(cx, &s, r, &target, trigger.reviewer.as_deref()).await?
    {
        return Ok(());
    }
    // With `commit.via: api` GitHub authors the record as the token: checked before the gate,
    // so that no rotation starts whose record would carry another name.
    crate::publish::check_author(&s.gh, &s.trusted.config.commit).await?;
    let approval = s.gate(request_files).await?;
    let Some(request) = request.filter(|_| approval.decision.approved) else {
        return refuse(cx, &s, &s.pr, &approval.decision).await;
    };
    let app = Arc::new(AppClient::new(&s.trusted.config.app)?);
    let backends = crate::context::backend_environment();
    let number = Some(s.number);
    let rejections = s.trusted.rejections()?;
    let config = &s.trusted.config;
    let environment = config.environment(&request.environment);
    let glass = approval.decision.break_glass.is_some();
    let jobs = match preflight::jobs(
        config,
        &request,
        number,
        app.clone(),
        &backends,
        &rejections,
        !glass,
    )
    .await
    {
        Ok(jobs) => jobs,
        Err(checks) => return blocked(cx, &s, &request, &approval.decision, &checks).await,
    };
    // Every template is rendered once with the run's data before anything changes: a broken
    // override stops the run here (exit 2), not after the pointers moved.
    preview(&s, &request, &approval, &jobs, &app)?;
    if dry_run {
        return dry_run_report(cx, &request, &approval.decision, &jobs);
    }
    // The gate again, in full, immediately before the first change. Its approvals are the ones
    // the record names.
    let (pr, approval) = s.gate_again(request_files).await?;
    if !approval.decision.approved {
        return refuse(cx, &s, &pr, &approval.decision).await;
    }
    // Told before the first change: a run that dies half-way has still said so.
    if let Some(glass) = &approval.decision.break_glass {
        break_glass::notify(&s, &request, glass, &environment.break_glass).await?;
    }
    let settings = settings(&s, &request, &pr);
    let concurrency = s.trusted.config.concurrency;
    let progress = Arc::new(Progress::new(
        cx.output,
        jobs.len(),
        Some(request_file(&s, &request)),
        false,
    ));
    crate::fault::pause("preflighted").await;
    // The window is enforced where the environment requires one: no wave starts after it.
    // Break-glass is not held to it (being outside it is recorded).
    let closes = request
        .maintenance
        .as_ref()
        .and_then(|m| m.window)
        .filter(|_| environment.requires_maintenance && !glass)
        .map(|w| w.end);
    let rolled = rotation::waves::rotate_in_waves(
        app.clone(),
        settings,
        jobs,
        &environment.rollout,
        closes,
        concurrency,
        progress,
    )
    .await;
    conclude(cx, &s, &request, &pr, &approval, &app, &target, rolled).await
}

/// `--dry-run`: everything up to the first change held; what would rotate.
fn dry_run_report(
    cx: &Context,
    request: &Request,
    decision: &Decision,
    jobs: &[Job],
) -> Result<(), Error> {
    cx.output.log(&format!(
        "dry run: {} refs would rotate; nothing changed",
        jobs.len()
    ));
    let rows = jobs.iter().map(|j| RefReport {
        result: RefResult::Planned,
        ..RefReport::from(&preview_outcome(j))
    });
    let mut report = RunReport::new("apply", RunResult::Planned).with_refs(rows.collect());
    report.rotation_id = Some(request.id.to_string());
    report.approval = Some(decision.clone());
    report.emit(&cx.output)
}

/// The rollout of `request`'s environment as the JSON report gives it for a run that did not
/// roll out (`completed` 0) or whose record says it finished: present even without a rollout
/// (`waves: 1`).
fn rollout_summary(
    s: &Session,
    request: &Request,
    finished: bool,
) -> crate::outcome::RolloutSummary {
    let rollout = s.trusted.config.environment(&request.environment).rollout;
    let planned = rotation::waves::planned(&rollout, request.refs.len());
    crate::outcome::RolloutSummary {
        completed: if finished { planned.waves } else { 0 },
        sizes: None,
        pause: None,
        ..planned
    }
}

/// The request's file, which the annotations point at.
fn request_file(s: &Session, request: &Request) -> String {
    format!(
        "{}/{}.yaml",
        s.trusted.config.requests_dir.as_str(),
        request.id
    )
}

/// The procedure's settings for this request.
fn settings(s: &Session, request: &Request, pr: &PullRequest) -> Arc<Settings> {
    let config = &s.trusted.config;
    Arc::new(Settings {
        rotation_id: request.id.to_string(),
        pull_request: Some(s.number),
        operator: pr.author.clone().unwrap_or_default(),
        rollback: request.rollback,
        settle_timeout: config.checks.settle_timeout,
        audit_timeout: config.app.audit_timeout,
        audit_action: config.app.audit_action.clone(),
        actor_role: config.app.actor_role.clone(),
        extra: config.checks.extra.clone(),
    })
}

/// "Already applied" (checked before the gate): a confirmed artifact is a `noop` that refreshes
/// the comment; one the backends contradict stops the run with nothing changed (exit 4).
async fn already_applied(
    cx: &Context,
    s: &Session,
    request: &Request,
    target: &str,
    reviewer: Option<&str>,
) -> Result<bool, Error> {
    match s.already_applied(request, target).await? {
        Applied::No => Ok(false),
        Applied::Yes { path, tip, meta }
            if meta.break_glass.is_some() && meta.countersigned.is_none() && reviewer.is_some() =>
        {
            let reviewer = reviewer.unwrap_or_default();
            countersign_by_review(cx, s, request, target, &path, &tip, *meta, reviewer).await?;
            Ok(true)
        }
        Applied::Yes { path, tip, meta } => {
            // The comment is refreshed with what the artifact records, confirmed by the
            // backends: a re-run never blanks the table of the run that did the work.
            let mut report = RunReport::new("apply", RunResult::Noop)
                .with_refs(meta.refs.iter().map(RefReport::recorded).collect());
            report.rotation_id = Some(request.id.to_string());
            report.artifact_path = Some(path);
            report.commit_sha = Some(tip);
            report.ref_count = request.refs.len();
            // What the rollout did is the record's: a halt stays said.
            let halted = meta.rollout.clone().filter(|r| r.halted);
            report.rollout = Some(
                halted
                    .clone()
                    .unwrap_or_else(|| rollout_summary(s, request, true)),
            );
            let said = halted
                .and_then(|r| r.reason)
                .map(|why| format!("already applied (halted {why}): nothing to do"));
            // A break-glass record stays loud, whatever comment refreshes it.
            let glass = meta.break_glass.as_ref().map(|g| match &meta.countersigned {
                Some(c) => format!(
                    "already applied by break-glass ({}), countersigned by {}: nothing to do",
                    g.by, c.by
                ),
                None => format!(
                    "already applied by break-glass ({}), its countersignature owed: nothing to do",
                    g.by
                ),
            });
            let headline = glass
                .as_deref()
                .or(said.as_deref())
                .unwrap_or("already applied: nothing to do");
            let view = crate::report::View {
                break_glass: s.break_glass.is_some() || meta.break_glass.is_some(),
                ..s.view("apply", headline, Some(request), &report)
            };
            s.publish(&view).await?;
            report.emit(&cx.output)?;
            Ok(true)
        }
        Applied::Contradicted { path, problems } => {
            let mut report = RunReport::new("apply", RunResult::Failed);
            report.rotation_id = Some(request.id.to_string());
            report.rollout = Some(rollout_summary(s, request, false));
            report.refs = problems
                .iter()
                .map(|(r, p)| not_started(r, "artifact_contradicted", p))
                .collect();
            let headline =
                "the artifact on the branch is contradicted by the backends: nothing changed";
            s.publish(&s.view("apply", headline, Some(request), &report))
                .await?;
            Err(Error::Precondition(format!(
                "{path} says this rotation is already applied, but {}; an artifact anyone with push access could have written is not trusted, so nothing was changed",
                problems
                    .iter()
                    .map(|(r, p)| format!("{r}: {p}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )))
        }
    }
}

/// An approving review of a break-glass rotation already applied: it countersigns, when the
/// reviewer is another `internal_admin` approving the open pull request's current head, by a
/// `## Countersigned` section committed on the commit target (result `countersigned`);
/// otherwise the run is a `noop` that says why the review does not count.
#[allow(clippy::too_many_arguments)]
async fn countersign_by_review(
    cx: &Context,
    s: &Session,
    request: &Request,
    target: &str,
    path: &str,
    tip: &str,
    meta: artifact::ArtifactMeta,
    reviewer: &str,
) -> Result<(), Error> {
    let Some(glass) = meta.break_glass.clone() else {
        return Ok(());
    };
    let mut report = RunReport::new("apply", RunResult::Noop)
        .with_refs(meta.refs.iter().map(RefReport::recorded).collect());
    report.rotation_id = Some(request.id.to_string());
    report.artifact_path = Some(path.to_owned());
    report.commit_sha = Some(tip.to_owned());
    report.ref_count = request.refs.len();
    let config = &s.trusted.config;
    let on_branch = (config.commit.target == CommitTarget::PrBranch).then_some(path);
    let url = match break_glass::review_countersigns(s, reviewer, &glass, on_branch).await? {
        break_glass::ReviewVerdict::Countersigns { url } => url,
        break_glass::ReviewVerdict::DoesNot(why) => {
            let message = format!(
                "already applied by break-glass; the review does not countersign it: {why}"
            );
            cx.output.log(&message);
            report.message = Some(message);
            return report.emit(&cx.output);
        }
    };
    crate::publish::check_author(&s.gh, &config.commit).await?;
    let within = config.countersign_within(glass.environment.as_deref());
    let at = break_glass::now();
    let late = glass.past(within, chrono::Utc::now());
    let countersigned = artifact::MetaCountersigned {
        by: reviewer.to_owned(),
        at,
        reason: format!(
            "approved the pull request's head {}",
            s.pr.head_sha.get(..7).unwrap_or(&s.pr.head_sha)
        ),
        via: "review".to_owned(),
        url,
        late,
        sha: Some(s.pr.head_sha.clone()),
    };
    let text = s
        .trusted
        .git
        .read_file(tip, path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let approved =
        (config.commit.target == CommitTarget::PrBranch).then_some(s.pr.head_sha.as_str());
    let target = break_glass::Target {
        branch: target,
        path,
        text: &text,
        approved,
    };
    let sha = break_glass::commit_countersignature(
        &s.trusted,
        &s.gh,
        target,
        meta,
        countersigned,
        within,
    )
    .await?;
    report.result = RunResult::Countersigned;
    report.commit_sha = Some(sha);
    let headline =
        format!("countersigned by {reviewer}: the break-glass approval is no longer owed");
    let view = crate::report::View {
        break_glass: true,
        ..s.view("apply", &headline, Some(request), &report)
    };
    s.publish(&view).await?;
    report.emit(&cx.output)
}

/// A row for a ref that did not start, with a reason that is not a ref failure.
fn not_started(secret_ref: &str, code: &'static str, message: &str) -> RefReport {
    RefReport {
        secret_ref: secret_ref.to_owned(),
        backend: "-",
        from: None,
        to: None,
        result: RefResult::NotStarted,
        checks: Vec::new(),
        audit_event_ids: Vec::new(),
        error: Some(report::ErrorReport::new(code, message)),
        reason: None,
    }
}

/// The approval gate refused: the comment and the report name every unmet rule; exit 3.
async fn refuse(
    cx: &Context,
    s: &Session,
    pr: &PullRequest,
    decision: &Decision,
) -> Result<(), Error> {
    let mut report = RunReport::new("apply", RunResult::Failed);
    report.approval = Some(decision.clone());
    let view = crate::report::View {
        requester: pr.author.as_deref(),
        ..s.view("apply", "not authorized", None, &report)
    };
    s.publish(&view).await?;
    report.emit(&cx.output)?;
    Err(Error::NotApproved(
        decision
            .unmet
            .iter()
            .map(|u| format!("{}: {}", u.rule, u.message))
            .collect(),
    ))
}

/// A precondition fails for some ref: nothing changed; every reason in the comment, the log,
/// the JSON report and the summary.
async fn blocked(
    cx: &Context,
    s: &Session,
    request: &Request,
    decision: &Decision,
    checks: &[RefCheck],
) -> Result<(), Error> {
    let mut report = RunReport::new("apply", RunResult::Failed)
        .with_refs(checks.iter().map(RefCheck::report).collect());
    report.rollout = Some(rollout_summary(s, request, false));
    report.rotation_id = Some(request.id.to_string());
    report.approval = Some(decision.clone());
    s.publish(&s.view("apply", "a precondition fails", Some(request), &report))
        .await?;
    let failures: Vec<_> = checks
        .iter()
        .filter_map(|c| c.failure.clone().map(|f| (c.secret_ref.clone(), f)))
        .collect();
    let progress = Progress::new(
        cx.output,
        checks.len(),
        Some(request_file(s, request)),
        false,
    );
    for (r, f) in &failures {
        progress.not_succeeded(r, RefResult::NotStarted, Some(f));
    }
    report.emit(&cx.output)?;
    Err(Error::Refs {
        total: request.refs.len(),
        failures,
    })
}

/// What a ref's row looks like if it rotates as planned: the data every template is rendered
/// with before the first change.
fn preview_outcome(job: &Job) -> RefOutcome {
    let (from, to) = job.planned_move();
    RefOutcome {
        from,
        to: to.clone(),
        result: RefResult::Success,
        audit_event_ids: vec!["preview".to_owned()],
        settled: true,
        pointer: to,
        ..RefOutcome::new(job.secret.secret_ref.to_string(), job.secret.backend())
    }
}

/// Renders every template this run will render (artifact, comment, summary) with its data.
fn preview(
    s: &Session,
    request: &Request,
    approval: &Approval,
    jobs: &[Job],
    app: &AppClient,
) -> Result<(), Error> {
    let outcomes: Vec<RefOutcome> = jobs.iter().map(preview_outcome).collect();
    report::artifact(
        &facts(s, request, &s.pr, approval, app, HashMap::new()),
        &outcomes,
        RunResult::Success,
    )
    .render(&s.trusted.renderer)?;
    let mut report = RunReport::new("apply", RunResult::Success)
        .with_refs(outcomes.iter().map(RefReport::from).collect());
    report.approval = Some(approval.decision.clone());
    s.trusted
        .render(&s.view("apply", "rotated", Some(request), &report))?;
    Ok(())
}

/// What the artifact records besides its refs: the requester, the approvals that counted (of
/// the gate's last evaluation), the links.
fn facts<'a>(
    s: &'a Session,
    request: &'a Request,
    pr: &'a PullRequest,
    approval: &Approval,
    app: &AppClient,
    event_times: HashMap<String, chrono::DateTime<chrono::Utc>>,
) -> ArtifactFacts<'a> {
    let approvers = &approval.decision.approvers;
    let approvals = approval
        .reviews
        .iter()
        .filter(|r| {
            r.state == "APPROVED"
                && r.commit_id == pr.head_sha
                && r.reviewer.as_ref().is_some_and(|u| approvers.contains(u))
        })
        .map(|r| ApprovalRecord {
            reviewer: r.reviewer.clone().unwrap_or_default(),
            url: r.html_url.clone(),
            sha: r.commit_id.clone(),
        })
        .collect();
    ArtifactFacts {
        rotation_id: request.id.as_str(),
        operator: pr.author.as_deref().unwrap_or_default(),
        pull_request: (s.number, pr.html_url.as_str()),
        approvals,
        run_url: s.env.run_url(),
        audit_query: app.audit_query_link(&s.trusted.config.app.audit_action),
        app_clock_offset_s: app.clock_offset(),
        halted: None,
        event_times,
        break_glass: approval.decision.break_glass.as_ref().map(|g| {
            crate::artifact::MetaBreakGlass {
                by: g.by.clone(),
                reason: g.reason.clone(),
                at: g.at.clone(),
                environment: Some(request.environment.clone()),
                outside_window: s
                    .break_glass
                    .as_ref()
                    .and_then(|g| g.outside_window.clone()),
                sha: Some(pr.head_sha.clone()),
            }
        }),
    }
}

/// After the rotation: the artifact committed (for every result), the comment, the summary,
/// the outputs and the report; the exit code from the refs' results.
#[allow(clippy::too_many_arguments)]
async fn conclude(
    cx: &Context,
    s: &Session,
    request: &Request,
    pr: &PullRequest,
    approval: &Approval,
    app: &AppClient,
    target: &str,
    rolled: rotation::waves::Rolled,
) -> Result<(), Error> {
    let rotation::waves::Rolled { outcomes, summary } = rolled;
    let rows: Vec<RefReport> = outcomes.iter().map(RefReport::from).collect();
    let result = RunResult::of(outcomes.iter().map(|o| o.result));
    let started = outcomes
        .iter()
        .any(|o| !matches!(o.result, RefResult::NotStarted | RefResult::Skipped));
    let halted = summary.halted.then(|| summary.clone());
    let mut report = RunReport::new("apply", result).with_refs(rows);
    report.rotation_id = Some(request.id.to_string());
    report.approval = Some(approval.decision.clone());
    report.rollout = Some(summary);
    // Another run of this rotation won some ref and carries it on; the refs this run finished
    // keep their final markers, and the next apply commits the one artifact. A ref left locked
    // (no final marker could be written) must not be recorded as final either.
    let deferred = outcomes.iter().any(RefOutcome::deferred);
    let unsettled = outcomes.iter().any(|o| !o.settled);
    if deferred || unsettled {
        report.result = RunResult::Failed;
        let headline = if deferred {
            "another run of this rotation is finishing it: run apply again to commit the artifact"
        } else {
            "interrupted: run again to converge"
        };
        s.publish(&audited(
            s.view("apply", headline, Some(request), &report),
            s,
            app,
        ))
        .await?;
        report.emit(&cx.output)?;
        return Err(failed_refs(&outcomes, deferred));
    }
    let path = s.trusted.artifact_path(request.id.as_str());
    if started {
        let cited: Vec<String> = outcomes
            .iter()
            .flat_map(|o| o.audit_event_ids.iter().cloned())
            .collect();
        let times = app.event_times(&cited).await;
        crate::fault::pause("rotated").await;
        let facts = ArtifactFacts {
            halted: halted.clone(),
            ..facts(s, request, pr, approval, app, times)
        };
        let artifact = report::artifact(&facts, &outcomes, result);
        match commit(s, request, target, &path, &artifact, result).await {
            Ok(sha) => {
                report.commit_sha = Some(sha);
                report.artifact_path = Some(path);
            }
            // The rotation is done and its markers final; only the record is owed. Reported
            // as failed, with what to do: a re-run once the cause is fixed commits it without
            // rotating again.
            Err(Error::Git(
                e @ (GitError::HeadMoved { .. }
                | GitError::PushRefused { .. }
                | GitError::CommitRefused { .. }),
            )) => {
                let (code, next, headline) = match e {
                    GitError::HeadMoved { .. } => (
                        "head_moved",
                        "put the branch back on the approved head, or approve the new head, then run apply again: it commits the artifact without rotating again",
                        "rotated, but the branch moved after the approval: the artifact is not committed on commits nobody approved",
                    ),
                    _ => (
                        "push_refused",
                        "let rotor's token push to the commit target (or commit to the PR branch), then re-run the job: it commits the artifact without rotating again",
                        "rotated, but the remote refused the artifact: fix the cause and run apply again to commit it",
                    ),
                };
                report.result = RunResult::Failed;
                report
                    .errors
                    .push(report::ErrorReport::new(code, e.to_string()).with_next_step(next));
                s.publish(&audited(
                    s.view("apply", headline, Some(request), &report),
                    s,
                    app,
                ))
                .await?;
                report.emit(&cx.output)?;
                return Err(Error::Git(e));
            }
            Err(other) => return Err(other),
        }
    }
    let halted_line = halted.as_ref().and_then(|r| r.reason.as_ref()).map(|why| {
        format!("halted {why}: the refs of later waves are skipped, untouched; `rotor new <id> --rest-of {}` writes a request for them", request.id)
    });
    let headline = match result {
        _ if halted_line.is_some() => halted_line.as_deref().unwrap_or_default(),
        RunResult::Success => "rotated",
        RunResult::RolledBack => "verification failed: rolled back",
        RunResult::Failed if started => "failed",
        _ => "nothing changed",
    };
    s.publish(&audited(
        s.view("apply", headline, Some(request), &report),
        s,
        app,
    ))
    .await?;
    report.emit(&cx.output)?;
    cx.output
        .debug(&format!("GitHub API calls: {}", s.gh.calls()));
    match result {
        RunResult::Success => Ok(()),
        _ if !started => Err(failed_refs(&outcomes, false)),
        other => Err(Error::RotationFailed(other.as_str().to_owned())),
    }
}

/// `view` with the link to the application's audit log.
fn audited<'a>(mut view: report::View<'a>, s: &Session, app: &AppClient) -> report::View<'a> {
    view.links.audit_query = Some(report::Link {
        text: "audit query".to_owned(),
        url: app.audit_query_link(&s.trusted.config.app.audit_action),
    });
    view
}

/// The failure of a run whose refs did not all end: the deferred refs, or every failed one.
fn failed_refs(outcomes: &[RefOutcome], deferred_only: bool) -> Error {
    let failures = outcomes
        .iter()
        .filter(|o| !deferred_only || o.deferred())
        .filter_map(|o| {
            o.failure
                .clone()
                .map(|f| (o.secret_ref.clone(), f))
                .or_else(|| {
                    (!o.settled).then(|| {
                        (
                            o.secret_ref.clone(),
                            crate::outcome::RefFailure::Unsettled(
                                "no final marker could be written; nothing was committed, run apply again to converge".to_owned(),
                            ),
                        )
                    })
                })
        })
        .collect();
    Error::Refs {
        total: outcomes.len(),
        failures,
    }
}

/// Renders the artifact and commits it to the target branch (`commit.via`). An artifact already
/// there is kept only when it records exactly this run's outcome (another run of this rotation
/// committed it); any other file at that path is replaced by rotor's record.
async fn commit(
    s: &Session,
    request: &Request,
    target: &str,
    path: &str,
    artifact: &artifact::Artifact,
    result: RunResult,
) -> Result<String, Error> {
    let text = artifact.render(&s.trusted.renderer)?;
    let config = &s.trusted.config;
    let ours = artifact.meta();
    let keep = |existing: &[u8]| {
        artifact::read_meta(&String::from_utf8_lossy(existing))
            .ok()
            .flatten()
            .is_some_and(|m| m.same_outcome(&ours))
    };
    // On the pull request's branch, the record's parent is the head the gate approved.
    let approved =
        (config.commit.target == CommitTarget::PrBranch).then_some(s.pr.head_sha.as_str());
    let message = format!("rotor: rotation {} {result}", request.id);
    let record = crate::publish::Record {
        branch: target,
        path,
        content: text.as_bytes(),
        message: &message,
        keep: &keep,
        approved,
    };
    let sha = crate::publish::publish(&s.trusted.git, &s.gh, &config.commit, &record).await?;
    crate::fault::point("committed");
    Ok(sha)
}
