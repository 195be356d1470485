//! `rotor apply`: the whole procedure of DESIGN §7 for the request an approved PR carries.
//!
//! Order matters: an artifact already committed with a final result makes the run a `noop`
//! before anything else (rotor's own commit moves the PR head); then the approval gate (exit 3);
//! then every precondition of every ref, read-only (exit 4); then, with the head fetched once
//! more, the changes. The report goes to the sticky comment, the job summary, the outputs and
//! (`--format json`) one JSON object.

use std::path::Path;

use chrono::Utc;
use serde::Serialize;

use super::plan::{self, COMMENT_ROWS, PrRun, RefPlan, ReportError, RunEnv, Trusted, View};
use crate::app::AppClient;
use crate::artifact::{self, ApprovalRecord, Artifact, RefRecord, TimelineEntry};
use crate::batch::map_bounded;
use crate::config::CommitTarget;
use crate::context::Context;
use crate::error::Error;
use crate::gate::{self, Subject};
use crate::github::event;
use crate::github::model::PullRequest;
use crate::gitops::Author;
use crate::output::{Format, github as gha};
use crate::policy::Decision;
use crate::preflight;
use crate::request::Request;
use crate::rotation::{self, Job, RefOutcome, RefResult, Settings};

#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    rotation_id: Option<&'a str>,
    result: &'a str,
    artifact_path: Option<&'a str>,
    approval: Option<&'a Decision>,
    commit_sha: Option<&'a str>,
    refs: &'a [RefOutcome],
    errors: &'a [ReportError],
}

/// Runs `rotor apply`.
pub async fn run(
    cx: &Context,
    event_arg: Option<&Path>,
    config_rel: &Path,
    dry_run: bool,
) -> Result<(), Error> {
    let env = RunEnv::from_env(event_arg)?;
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    event.check_repository(&env.repository.full())?;
    let (number, trigger) = match event.apply_trigger() {
        Ok(t) => (t.number, t.comment_author.map(Some)),
        Err(not) => return plan::noop(cx, "apply", &not),
    };
    let PrRun {
        gh,
        pr,
        event_head,
        default_branch,
        trusted,
        files,
    } = plan::open_pr(cx, &env, &event, number, config_rel).await?;
    let (requests, diagnostics, request_files) = plan::load_requests(&trusted, &files, &pr, number);
    if !diagnostics.is_empty() {
        for d in &diagnostics {
            cx.output.diagnostic(d)?;
        }
        return Err(Error::Invalid { diagnostics });
    }
    let request = requests.into_iter().next();
    let target_branch = match trusted.config.commit.target {
        CommitTarget::PrBranch => pr.head_ref.clone(),
        CommitTarget::DefaultBranch => default_branch.clone(),
    };

    // Already applied comes first: rotor's own artifact commit moves the PR head and adds a
    // file outside requests_dir, so a re-run would otherwise be refused instead of recognised.
    // The artifact is trusted only when every ref's marker agrees with it.
    if let Some(r) = &request {
        match already_applied(&trusted, r, number, &target_branch).await? {
            Applied::No => {}
            Applied::Yes { path, tip } => {
                let view = view(
                    "already applied: nothing to do",
                    Some(r),
                    &pr,
                    None,
                    &[],
                    &env,
                );
                plan::publish_report(&trusted, &gh, number, &view).await?;
                outputs(Some(r), "noop", Some(&path), Some(&tip), r.refs.len())?;
                report(cx, Some(r), "noop", Some(&path), None, Some(&tip), &[])?;
                return Ok(());
            }
            Applied::Contradicted { path, problems } => {
                let rows: Vec<RefPlan> = problems.iter().map(|(r, p)| blocked(r, p)).collect();
                let view = view(
                    "the artifact on the branch is contradicted by the backends: nothing changed",
                    Some(r),
                    &pr,
                    None,
                    &rows,
                    &env,
                );
                plan::publish_report(&trusted, &gh, number, &view).await?;
                return Err(Error::Precondition(format!(
                    "{path} says this rotation is already applied, but {}; an artifact anyone with push access could have written is not trusted, so nothing was changed",
                    problems
                        .iter()
                        .map(|(r, p)| format!("{r}: {p}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
    }

    let subject = |pr, files| Subject {
        pr,
        files,
        request_files,
        default_branch: &default_branch,
        event_head_sha: &event_head,
        trigger: trigger.as_ref().map(|t| t.as_deref()),
    };
    let approval = gate::check(&gh, &trusted.config, subject(&pr, &files)).await?;
    let Some(request) = request.filter(|_| approval.decision.approved) else {
        return refuse(cx, &trusted, &gh, number, &pr, &approval.decision, &env).await;
    };

    // Preconditions, read-only, for every ref before any change.
    let app = std::sync::Arc::new(AppClient::new(&trusted.config.app)?);
    let jobs = match preconditions(&trusted, &request, number, &app).await {
        Ok(jobs) => jobs,
        Err(problems) => {
            let rows: Vec<RefPlan> = problems.iter().map(|(r, p, _)| blocked(r, p)).collect();
            let view = view(
                "a precondition fails",
                Some(&request),
                &pr,
                Some(&approval.decision),
                &rows,
                &env,
            );
            plan::publish_report(&trusted, &gh, number, &view).await?;
            // Each reason in the log and the JSON report too, not only in the comment.
            let refused: Vec<RefOutcome> = problems
                .iter()
                .map(|(r, p, c)| RefOutcome {
                    secret_ref: r.clone(),
                    backend: "-",
                    from: None,
                    to: None,
                    result: RefResult::NotStarted,
                    checks: Vec::new(),
                    audit_event_ids: Vec::new(),
                    timeline: Vec::new(),
                    error: Some((*c, p.clone())),
                    final_marker: true,
                    pointer: None,
                    deferred: false,
                })
                .collect();
            for (r, p, _) in &problems {
                cx.output.log(&format!("{r}: {p}"));
            }
            outputs(Some(&request), "failed", None, None, request.refs.len())?;
            report(
                cx,
                Some(&request),
                "failed",
                None,
                Some(&approval.decision),
                None,
                &refused,
            )?;
            let code = problems.iter().map(|(_, _, c)| *c).max().unwrap_or(4);
            let text = problems
                .iter()
                .map(|(r, p, _)| format!("{r}: {p}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(if code == 4 {
                Error::Precondition(text)
            } else {
                Error::Refs {
                    count: problems.len(),
                    total: request.refs.len(),
                    code,
                }
            });
        }
    };
    // Every template is rendered once with the run's data before anything changes: a broken
    // override stops the run here (exit 2), not after the pointers moved.
    let preview: Vec<RefOutcome> = jobs.iter().map(preview_outcome).collect();
    build_artifact(
        &request, &pr, &approval, &preview, "success", &app, &trusted, &env,
    )
    .render(&trusted.renderer)?;
    let preview_rows: Vec<RefPlan> = preview.iter().map(row).collect();
    plan::render_report(
        &trusted,
        &view(
            "rotated",
            Some(&request),
            &pr,
            Some(&approval.decision),
            &preview_rows,
            &env,
        ),
    )?;
    if dry_run {
        cx.output.log(&format!(
            "dry run: {} refs would rotate; nothing changed",
            jobs.len()
        ));
        report(
            cx,
            Some(&request),
            "planned",
            None,
            Some(&approval.decision),
            None,
            &[],
        )?;
        return Ok(());
    }
    // The gate again, in full, immediately before the first change: a dismissal, a request
    // for changes, a close, a draft or a new head since it was evaluated stops the run here.
    let now = gh.pull(number).await?;
    let now_files = gh.files(number).await?;
    let again = gate::check(&gh, &trusted.config, subject(&now, &now_files)).await?;
    if !again.decision.approved {
        return refuse(cx, &trusted, &gh, number, &now, &again.decision, &env).await;
    }

    let settings = Settings {
        rotation_id: request.id.to_string(),
        pull_request: Some(number),
        operator: pr.author.clone().unwrap_or_default(),
        rollback: request.rollback,
        settle_timeout: trusted.config.checks.settle_timeout,
        audit_timeout: trusted.config.app.audit_timeout,
        audit_action: trusted.config.app.audit_action.clone(),
        actor_role: trusted.config.app.actor_role.clone(),
        extra: trusted.config.checks.extra.clone(),
    };
    let settings = std::sync::Arc::new(settings);
    let names: Vec<(String, &'static str)> = jobs
        .iter()
        .map(|j| (j.secret.secret_ref.to_string(), j.secret.backend()))
        .collect();
    let outcomes: Vec<RefOutcome> = map_bounded(jobs, trusted.config.concurrency, |job: Job| {
        let (app, settings) = (app.clone(), settings.clone());
        async move { rotation::rotate(&app, &settings, &job).await }
    })
    .await
    .into_iter()
    .zip(names)
    .map(|(outcome, (secret_ref, backend))| {
        outcome.unwrap_or_else(|| RefOutcome {
            secret_ref,
            backend,
            from: None,
            to: None,
            result: RefResult::Failed,
            checks: Vec::new(),
            audit_event_ids: Vec::new(),
            timeline: Vec::new(),
            error: Some((
                1,
                "the rotation of this ref stopped unexpectedly; run again to converge".to_owned(),
            )),
            final_marker: false,
            pointer: None,
            deferred: false,
        })
    })
    .collect();

    // Another run of this rotation won a compare-and-swap on some ref and carries it on: no
    // artifact from this run, which would record that ref as not started. The refs this run did
    // finish keep their final markers; the next apply gathers every ref's evidence and commits
    // the one artifact.
    if let Some(o) = outcomes.iter().find(|o| o.deferred) {
        report(
            cx,
            Some(&request),
            "failed",
            None,
            Some(&approval.decision),
            None,
            &outcomes,
        )?;
        return Err(Error::Precondition(format!(
            "{}: {}; run apply again once the other run has finished to commit the artifact",
            o.secret_ref,
            o.error.as_ref().map(|e| e.1.as_str()).unwrap_or_default()
        )));
    }
    let result = overall(&outcomes);
    let path = format!(
        "{}/{}.md",
        trusted.config.artifacts_dir.as_str(),
        request.id
    );
    let started = outcomes.iter().any(|o| o.result != RefResult::NotStarted);
    let unsettled: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.final_marker)
        .map(|o| o.secret_ref.as_str())
        .collect();
    if !unsettled.is_empty() {
        let rows: Vec<RefPlan> = outcomes.iter().map(row).collect();
        let view = view(
            "interrupted: run again to converge",
            Some(&request),
            &pr,
            Some(&approval.decision),
            &rows,
            &env,
        );
        plan::publish_report(&trusted, &gh, number, &view).await?;
        report(
            cx,
            Some(&request),
            "failed",
            None,
            Some(&approval.decision),
            None,
            &outcomes,
        )?;
        return Err(Error::RotationFailed(format!(
            "no final marker could be written for {}; nothing was committed, run apply again to converge",
            unsettled.join(", ")
        )));
    }
    let mut commit = None;
    if started {
        let artifact = build_artifact(
            &request, &pr, &approval, &outcomes, result, &app, &trusted, &env,
        );
        let text = artifact.render(&trusted.renderer)?;
        let author = Author {
            name: trusted.config.commit.author_name.clone(),
            email: trusted.config.commit.author_email.clone(),
        };
        let message = format!("rotor: rotation {} {result}", request.id);
        let git = &trusted.git;
        // A concurrent run of this rotation that committed its final artifact first wins.
        let final_artifact = |existing: &[u8]| {
            artifact::read_meta(&String::from_utf8_lossy(existing)).is_ok_and(|m| {
                m.is_some_and(|m| {
                    m.rotation_id == request.id.as_str()
                        && m.pull_request == Some(number)
                        && m.result.is_some()
                })
            })
        };
        commit = Some(git.publish(
            &target_branch,
            &path,
            text.as_bytes(),
            &message,
            &author,
            &final_artifact,
        )?);
        crate::fault::point("committed");
    }
    let rows: Vec<RefPlan> = outcomes.iter().map(row).collect();
    let headline = match result {
        "success" => "rotated",
        "rolled_back" => "verification failed: rolled back",
        "failed" => "failed",
        _ => "nothing changed",
    };
    let view = view(
        headline,
        Some(&request),
        &pr,
        Some(&approval.decision),
        &rows,
        &env,
    );
    plan::publish_report(&trusted, &gh, number, &view).await?;
    outputs(
        Some(&request),
        result,
        started.then_some(path.as_str()),
        commit.as_deref(),
        outcomes.len(),
    )?;
    report(
        cx,
        Some(&request),
        result,
        started.then_some(path.as_str()),
        Some(&approval.decision),
        commit.as_deref(),
        &outcomes,
    )?;
    cx.output
        .debug(&format!("GitHub API calls: {}", gh.calls()));
    match result {
        "success" => Ok(()),
        _ if !started => {
            let code = outcomes
                .iter()
                .filter_map(|o| o.error.as_ref().map(|e| e.0))
                .max()
                .unwrap_or(4);
            Err(Error::Refs {
                count: outcomes.len(),
                total: outcomes.len(),
                code,
            })
        }
        other => Err(Error::RotationFailed(other.to_owned())),
    }
}

/// The overall result (DESIGN §2's values): success only if every ref succeeded; failed if any
/// ref failed or could not start; rolled_back otherwise.
fn overall(outcomes: &[RefOutcome]) -> &'static str {
    if outcomes.iter().all(|o| o.result == RefResult::Success) {
        "success"
    } else if outcomes
        .iter()
        .any(|o| matches!(o.result, RefResult::Failed | RefResult::NotStarted))
    {
        "failed"
    } else {
        "rolled_back"
    }
}

fn blocked(r: &str, problem: &str) -> RefPlan {
    RefPlan {
        secret_ref: r.to_owned(),
        backend: "-",
        from: None,
        to: None,
        result: "blocked",
        problem: Some(problem.to_owned()),
    }
}

pub(crate) fn row(o: &RefOutcome) -> RefPlan {
    RefPlan {
        secret_ref: o.secret_ref.clone(),
        backend: o.backend,
        from: o.from.clone(),
        to: o.to.clone(),
        result: match o.result {
            RefResult::Success => "success",
            RefResult::RolledBack => "rolled_back",
            RefResult::Failed => "failed",
            RefResult::NotStarted => "not started",
        },
        problem: o.error.as_ref().map(|e| e.1.clone()),
    }
}

/// Every precondition of DESIGN §7 step 2, for every ref, before any change: the jobs, or
/// each unmet precondition with its exit code.
async fn preconditions(
    trusted: &Trusted,
    request: &Request,
    number: u64,
    app: &std::sync::Arc<AppClient>,
) -> Result<Vec<Job>, Vec<(String, String, u8)>> {
    if let preflight::Window::NotYet(text) | preflight::Window::Closed(text) =
        preflight::window(&trusted.config, request, Utc::now())
    {
        return Err(vec![("*".to_owned(), text, 4)]);
    }
    let checks = preflight::check(
        &trusted.config,
        request,
        Some(number),
        Some(app.clone()),
        &crate::context::backend_environment(),
    )
    .await;
    let mut jobs = Vec::with_capacity(checks.len());
    let mut problems = Vec::new();
    for c in checks {
        match (c.problem, c.job) {
            (Some((code, text)), _) => problems.push((c.secret_ref, text, code)),
            (None, Some(job)) => jobs.push(job),
            (None, None) => problems.push((c.secret_ref, "not checked".to_owned(), 5)),
        }
    }
    if problems.is_empty() {
        Ok(jobs)
    } else {
        Err(problems)
    }
}

#[allow(clippy::too_many_arguments)]
fn build_artifact(
    request: &Request,
    pr: &PullRequest,
    approval: &gate::Approval,
    outcomes: &[RefOutcome],
    result: &str,
    app: &AppClient,
    trusted: &Trusted,
    env: &RunEnv,
) -> Artifact {
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
            sha: r.commit_id.chars().take(7).collect(),
        })
        .collect();
    let refs = outcomes
        .iter()
        .map(|o| RefRecord {
            secret_ref: o.secret_ref.clone(),
            provider: o
                .secret_ref
                .split('.')
                .nth(2)
                .unwrap_or_default()
                .to_owned(),
            backend: o.backend.to_owned(),
            from: o.from.clone().unwrap_or_default(),
            to: o.to.clone().unwrap_or_default(),
            result: row(o).result.to_owned(),
            checks: rotation::summarise(&o.checks),
            audit_event_ids: o.audit_event_ids.clone(),
            pointer: o.pointer.clone(),
        })
        .collect();
    let mut timeline: Vec<TimelineEntry> = outcomes
        .iter()
        .flat_map(|o| {
            o.timeline.iter().map(move |(at, e)| TimelineEntry {
                at: at.clone(),
                event: format!("{}: {e}", o.secret_ref),
            })
        })
        .collect();
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    Artifact {
        rotation_id: request.id.to_string(),
        date: Utc::now().format("%Y-%m-%d").to_string(),
        operator: pr.author.clone().unwrap_or_default(),
        result: result.to_owned(),
        refs,
        approvals,
        pull_request: Some(pr.number),
        pull_request_url: Some(pr.html_url.clone()).filter(|u| !u.is_empty()),
        run_url: env.run_url(),
        timeline,
        audit_query: app.audit_query_link(&trusted.config.app.audit_action),
        rollback: None,
        finished_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    }
}

#[allow(clippy::too_many_arguments)]
fn view<'a>(
    headline: &'a str,
    request: Option<&'a Request>,
    pr: &'a PullRequest,
    approval: Option<&'a Decision>,
    rows: &'a [RefPlan],
    env: &RunEnv,
) -> View<'a> {
    View {
        command: "apply",
        headline,
        rotation_id: request.map(|r| r.id.as_str()),
        environment: request.map(|r| r.environment.as_str()),
        requester: pr.author.as_deref(),
        reason: request.map(|r| r.reason.as_str()),
        approval,
        refs: rows,
        errors: &[],
        version: env!("CARGO_PKG_VERSION"),
        run_url: env.run_url(),
        comment_rows: COMMENT_ROWS,
    }
}

fn outputs(
    request: Option<&Request>,
    result: &str,
    path: Option<&str>,
    commit: Option<&str>,
    refs: usize,
) -> Result<(), Error> {
    gha::write_outputs(&[
        (
            "rotation-id",
            request.map(|r| r.id.to_string()).unwrap_or_default(),
        ),
        ("result", result.to_owned()),
        ("artifact-path", path.unwrap_or_default().to_owned()),
        ("commit-sha", commit.unwrap_or_default().to_owned()),
        ("refs", refs.to_string()),
    ])?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn report(
    cx: &Context,
    request: Option<&Request>,
    result: &str,
    path: Option<&str>,
    approval: Option<&Decision>,
    commit: Option<&str>,
    refs: &[RefOutcome],
) -> Result<(), Error> {
    // Every ref's failure reason is also one entry of `errors`, with a stable code.
    let errors: Vec<ReportError> = refs
        .iter()
        .filter_map(|o| {
            let (code, message) = o.error.as_ref()?;
            let stable = match (message.split_once(':'), code) {
                (Some(("id_reused", _)), _) => "id_reused",
                (_, 1) => "rotation_failed",
                (_, 2) => "invalid_input",
                (_, 3) => "not_authorized",
                (_, 4) => "precondition",
                _ => "unavailable",
            };
            Some(ReportError {
                code: stable,
                message: format!("{}: {message}", o.secret_ref),
                file: None,
                line: None,
                column: None,
            })
        })
        .collect();
    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "apply",
            rotation_id: request.map(|r| r.id.as_str()),
            result,
            artifact_path: path,
            approval,
            commit_sha: commit,
            refs,
            errors: &errors,
        })?,
        Format::Text => {
            cx.output.report_line(&format!("rotor apply: {result}"))?;
            for o in refs {
                cx.output.report_line(&row(o).text_line(false))?;
            }
        }
    }
    Ok(())
}

/// What the commit target says about this rotation.
enum Applied {
    /// No final artifact of this rotation there.
    No,
    /// A final artifact, and every ref's marker agrees with it.
    Yes {
        /// The artifact's path.
        path: String,
        /// The target's tip.
        tip: String,
    },
    /// A final artifact the backends contradict, with each disagreement.
    Contradicted {
        /// The artifact's path.
        path: String,
        /// Each ref and what disagrees.
        problems: Vec<(String, String)>,
    },
}

/// Whether `request` is already applied: a final artifact on the commit target, recording this
/// pull request, whose every ref's marker (same rotation id, same pull request, a final state)
/// and pointer agree with it. Anyone who can push to the branch can write a file; only the
/// backends, which rotor alone writes to, can confirm it.
async fn already_applied(
    trusted: &Trusted,
    request: &Request,
    number: u64,
    target_branch: &str,
) -> Result<Applied, Error> {
    let path = format!(
        "{}/{}.md",
        trusted.config.artifacts_dir.as_str(),
        request.id
    );
    let tip = trusted.git.fetch_branch(target_branch)?;
    let Some(existing) = trusted.git.read_file(&tip, &path)? else {
        return Ok(Applied::No);
    };
    let contradicted = |what: String| Applied::Contradicted {
        path: path.clone(),
        problems: vec![("*".to_owned(), what)],
    };
    let meta = match artifact::read_meta(&String::from_utf8_lossy(&existing)) {
        Ok(Some(meta)) if meta.result.is_some() => meta,
        Ok(_) => return Ok(Applied::No),
        Err(e) => return Ok(contradicted(format!("the artifact is not rotor's: {e}"))),
    };
    if meta.rotation_id != request.id.as_str() || meta.pull_request != Some(number) {
        return Ok(contradicted(format!(
            "the artifact records rotation {} of {}, not {} of pull request #{number}",
            meta.rotation_id,
            meta.pull_request
                .map_or("no pull request".to_owned(), |n| format!(
                    "pull request #{n}"
                )),
            request.id
        )));
    }
    let mut wanted: Vec<&str> = request.refs.iter().map(|r| r.secret_ref.as_str()).collect();
    let mut recorded: Vec<&str> = meta.refs.iter().map(|r| r.secret_ref.as_str()).collect();
    wanted.sort_unstable();
    recorded.sort_unstable();
    if wanted != recorded {
        return Ok(contradicted(
            "the artifact records other refs than the request".to_owned(),
        ));
    }
    let env = crate::context::backend_environment();
    let mut backends = crate::backend::Backends::default();
    let mut problems = Vec::new();
    for record in &meta.refs {
        let entry = request
            .refs
            .iter()
            .find(|r| r.secret_ref.as_str() == record.secret_ref)
            .map(|r| r.secret_ref.clone());
        let Some(secret_ref) = entry else { continue };
        let secret = backends.resolve(&trusted.config, &secret_ref, &env).await?;
        let state = secret.read().await?;
        let expected = record.pointer.clone().unwrap_or_else(|| {
            if matches!(record.result.as_str(), "success" | "failed") {
                record.to.clone()
            } else {
                record.from.clone()
            }
        });
        let marker = state.marker.as_ref();
        let problem = match marker {
            None => Some("the backend carries no rotor marker".to_owned()),
            Some(m) if !m.is_of(request.id.as_str(), Some(number)) => Some(format!(
                "the backend's marker is rotation {} of {}",
                m.rotation_id,
                m.pull_request
                    .map_or("no pull request".to_owned(), |n| format!(
                        "pull request #{n}"
                    ))
            )),
            Some(m) if m.state == crate::backend::MarkerState::Pending => {
                Some("the backend's marker is still pending".to_owned())
            }
            Some(_) if state.current.as_ref().map(|c| c.as_str()) != Some(expected.as_str()) => {
                Some(format!(
                    "the pointer designates {} where the artifact records {expected}",
                    state.current.as_ref().map_or("nothing", |c| c.as_str())
                ))
            }
            Some(_) => None,
        };
        if let Some(p) = problem {
            problems.push((record.secret_ref.clone(), p));
        }
    }
    Ok(if problems.is_empty() {
        Applied::Yes { path, tip }
    } else {
        Applied::Contradicted { path, problems }
    })
}

/// The approval gate refused: the comment and the report name every unmet rule; exit 3.
async fn refuse(
    cx: &Context,
    trusted: &Trusted,
    gh: &crate::github::GitHub,
    number: u64,
    pr: &PullRequest,
    decision: &Decision,
    env: &RunEnv,
) -> Result<(), Error> {
    let view = view("not authorized", None, pr, Some(decision), &[], env);
    plan::publish_report(trusted, gh, number, &view).await?;
    report(cx, None, "failed", None, Some(decision), None, &[])?;
    Err(Error::NotApproved(
        decision
            .unmet
            .iter()
            .map(|u| format!("{}: {}", u.rule, u.message))
            .collect(),
    ))
}

/// What a ref's row looks like if it rotates as planned: the data every template is rendered
/// with before the first change.
fn preview_outcome(job: &Job) -> RefOutcome {
    let from = job
        .seen
        .as_ref()
        .and_then(|s| s.current.as_ref())
        .map(ToString::to_string);
    let to = job
        .to
        .clone()
        .or_else(|| job.seen.as_ref().and_then(|s| s.target(None).ok()))
        .map(|v| v.to_string());
    RefOutcome {
        secret_ref: job.secret.secret_ref.to_string(),
        backend: job.secret.backend(),
        from,
        to: to.clone(),
        result: RefResult::Success,
        checks: vec![rotation::Check {
            name: "resolve".to_owned(),
            ok: true,
            detail: "preview".to_owned(),
        }],
        audit_event_ids: vec!["preview".to_owned()],
        timeline: vec![("1970-01-01T00:00:00Z".to_owned(), "preview".to_owned())],
        error: None,
        final_marker: true,
        pointer: to,
        deferred: false,
    }
}
