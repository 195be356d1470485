//! `rotor plan`: what `apply` would do for this pull request, changing nothing.
//!
//! It validates the request the PR changes (read from the head SHA's git objects, with the
//! config from the default branch tip), evaluates the approval policy, reads each ref's state
//! from its secret manager, and reports in one sticky PR comment, the job summary, the step
//! outputs, annotations and (`--format json`) one JSON object. It exits 0 with result
//! `planned` whether or not the approval is complete, 2 on an invalid request, 4 when a
//! precondition fails.

use std::path::Path;
use std::sync::Arc;

use crate::app::AppClient;
use crate::context::Context;
use crate::error::Error;
use crate::github::event;
use crate::outcome::RunResult;
use crate::preflight;
use crate::report::{ErrorReport, RunReport};
use crate::session::{self, Applied, RunEnv, Session};

/// Runs `rotor plan`.
pub async fn run(cx: &Context, event_arg: Option<&Path>, config_rel: &Path) -> Result<(), Error> {
    let env = RunEnv::from_env(event_arg)?;
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    event.check_repository(&env.repository.full())?;
    let number = match event.plan_trigger() {
        Ok(number) => number,
        Err(not) => return session::noop(cx, "plan", &not),
    };
    let s = Session::open(cx, env, &event, number, None, config_rel).await?;
    let (requests, mut diagnostics, request_files) = s.requests();
    let request = requests.first();
    if let Some(r) = request.filter(|_| diagnostics.is_empty())
        && let Applied::Yes { path, tip, meta } = s.already_applied(r, &commit_target(&s)).await?
    {
        return applied(cx, &s, r, path, tip, &meta);
    }
    let approval = s.gate(request_files).await?;

    let (checks, note) = match request.filter(|_| diagnostics.is_empty()) {
        Some(r) => {
            // Without the application's token the plan still reads the backends; it says so.
            let app = AppClient::new(&s.trusted.config.app)
                .map(Arc::new)
                .map_err(|e| {
                    cx.output
                        .warn(&format!("the application was not checked: {e}"))
                })
                .ok();
            let env = crate::context::backend_environment();
            let rejections = s.trusted.rejections()?;
            preflight::plan(&s.trusted.config, r, Some(number), app, &env, &rejections).await
        }
        None => (Vec::new(), None),
    };
    diagnostics.sort_by(|a, b| (&a.file, a.pos()).cmp(&(&b.file, b.pos())));
    for d in &diagnostics {
        cx.output.diagnostic(d)?;
    }
    let failures: Vec<_> = checks
        .iter()
        .filter_map(|c| c.failure.clone().map(|f| (c.secret_ref.clone(), f)))
        .collect();
    let headline = match (&note, diagnostics.is_empty(), failures.is_empty()) {
        (_, false, _) => "the request is invalid".to_owned(),
        (_, true, false) => "a precondition fails".to_owned(),
        (Some(n), true, true) if approval.decision.approved => {
            format!("approved, ready to apply ({n})")
        }
        (Some(n), true, true) => format!("waiting for approval ({n})"),
        (None, true, true) if approval.decision.approved => "approved, ready to apply".to_owned(),
        (None, true, true) => "waiting for approval".to_owned(),
    };

    let result = if diagnostics.is_empty() {
        RunResult::Planned
    } else {
        RunResult::Failed
    };
    let mut report = RunReport::new("plan", result);
    report.errors = diagnostics.iter().map(ErrorReport::from).collect();
    report = report.with_refs(checks.iter().map(preflight::RefCheck::report).collect());
    report.rotation_id = request.map(|r| r.id.to_string());
    report.artifact_path = request.map(|r| s.trusted.artifact_path(r.id.as_str()));
    report.approval = Some(approval.decision.clone());
    if let Some(r) = request {
        let rollout = s.trusted.config.environment(&r.environment).rollout;
        report.rollout = Some(crate::rotation::waves::planned(&rollout, r.refs.len()));
    }
    report.warnings = checks.iter().flat_map(|c| c.warnings.clone()).collect();
    for w in &report.warnings {
        cx.output
            .annotate_warning(&format!("{}: {}", w.secret_ref, w.message));
    }
    report.text = std::iter::once(format!("rotor plan: {headline}"))
        .chain(
            approval
                .decision
                .unmet
                .iter()
                .map(|u| format!("  unmet {}: {}", u.rule, u.message)),
        )
        .collect();
    s.publish(&s.view("plan", &headline, request, &report))
        .await?;
    report.emit(&cx.output)?;
    cx.output
        .debug(&format!("GitHub API calls: {}", s.gh.calls()));
    if !diagnostics.is_empty() {
        return Err(Error::Invalid { diagnostics });
    }
    if !failures.is_empty() {
        return Err(Error::Refs {
            total: checks.len(),
            failures,
        });
    }
    Ok(())
}

/// The branch the artifact is committed to.
fn commit_target(s: &Session) -> String {
    match s.trusted.config.commit.target {
        crate::config::CommitTarget::PrBranch => s.pr.head_ref.clone(),
        crate::config::CommitTarget::DefaultBranch => s.default_branch.clone(),
    }
}

/// The rotation is already applied, confirmed by the backends (with the artifact on the pull
/// request's branch, its commit is the new head and starts this plan): nothing to plan. The
/// sticky comment keeps the apply's report; the log, the summary and the report say so.
fn applied(
    cx: &Context,
    s: &Session,
    request: &crate::request::Request,
    path: String,
    tip: String,
    meta: &crate::artifact::ArtifactMeta,
) -> Result<(), Error> {
    let mut report = RunReport::new("plan", RunResult::Noop).with_refs(
        meta.refs
            .iter()
            .map(crate::report::RefReport::recorded)
            .collect(),
    );
    report.rotation_id = Some(request.id.to_string());
    report.message = Some(format!(
        "rotation {} is already applied ({path} at {}); nothing to plan",
        request.id,
        tip.chars().take(7).collect::<String>()
    ));
    report.artifact_path = Some(path);
    report.commit_sha = Some(tip);
    report.text = vec![format!(
        "rotor plan: {}",
        report.message.as_deref().unwrap_or_default()
    )];
    let headline = "already applied: nothing to plan";
    let (_, summary) = s
        .trusted
        .render(&s.view("plan", headline, Some(request), &report))?;
    crate::output::github::append_summary(&summary)?;
    cx.output.log(&format!(
        "rotor plan: {}",
        report.message.as_deref().unwrap_or_default()
    ));
    report.emit(&cx.output)
}
