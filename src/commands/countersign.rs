//! `rotor countersign`: a second `internal_admin` approves a break-glass rotation after the
//! fact, from `workflow_dispatch` on the default branch.
//!
//! The rotation is read from its artifact on the default branch's tip, never from the inputs,
//! which only name it and say why. The dispatcher must hold `internal_admin` and must not be the
//! one who broke the glass (nor may anyone the runner names for the run: a re-run by the
//! operator of another's dispatch is the operator's). A `## Countersigned` section is appended
//! to the artifact and committed by rotor (`commit.via`); a second countersignature changes
//! nothing.

use std::path::{Path, PathBuf};

use crate::artifact::{ArtifactMeta, MetaCountersigned};
use crate::break_glass;
use crate::context::Context;
use crate::dispatch::{self, Dispatch};
use crate::error::Error;
use crate::outcome::RunResult;
use crate::output::github as gha;
use crate::report::{RunReport, View};
use crate::session::{self, RunEnv, Trusted};

/// What the command line asked.
#[derive(Debug, Clone, Default)]
pub struct Args {
    /// `--rotation-id` (default: the dispatch input `rotation_id`).
    pub rotation_id: Option<String>,
    /// `--reason` (default: the dispatch input `reason`).
    pub reason: Option<String>,
    /// `--event`: the event payload.
    pub event: Option<PathBuf>,
}

/// Runs `rotor countersign`.
pub async fn run(cx: &Context, args: &Args, config_rel: &Path) -> Result<(), Error> {
    let env = RunEnv::from_env(args.event.as_deref())?;
    let d = dispatch::parse(
        "countersign",
        args.rotation_id.clone(),
        args.reason.clone(),
        &env,
    )?;
    let gh = env.client()?;
    let default_branch = gh.default_branch().await?;
    dispatch::on_default_branch("countersign", &d, &default_branch)?;
    let trusted = session::load_trusted(cx, &env, &gh, None, &default_branch, config_rel).await?;
    let config = &trusted.config;
    dispatch::authorize(&gh, config, &d.dispatcher).await?;
    let (path, text, meta) = read_artifact(&trusted, &d, &default_branch)?;
    let Some(glass) = meta.break_glass.clone() else {
        return Err(Error::BadArgument {
            name: "--rotation-id",
            problem: format!(
                "rotation {} was not break-glass: it was approved before it ran, and there is nothing to countersign",
                d.id
            ),
        });
    };
    if let Some(actor) = d.actors.iter().find(|a| a.eq_ignore_ascii_case(&glass.by)) {
        return Err(Error::NotApproved(vec![format!(
            "countersign_by_operator: {actor} broke the glass on rotation {}; another internal_admin must countersign it",
            d.id
        )]));
    }
    let mut report = RunReport::new("countersign", RunResult::Noop);
    report.rotation_id = Some(d.id.to_string());
    report.operator = Some(d.dispatcher.clone());
    report.artifact_path = Some(path.clone());
    if let Some(already) = &meta.countersigned {
        let message = format!(
            "rotation {} is already countersigned by {} ({}): nothing to do",
            d.id, already.by, already.at
        );
        cx.output.log(&message);
        report.message = Some(message);
        report.commit_sha = Some(trusted.base_sha.clone());
        return report.emit(&cx.output);
    }
    crate::publish::check_author(&gh, &config.commit).await?;
    let within = config.countersign_within(glass.environment.as_deref());
    let countersigned = MetaCountersigned {
        by: d.dispatcher.clone(),
        at: break_glass::now(),
        reason: d.reason.clone(),
        via: "dispatch".to_owned(),
        url: env.run_url(),
        late: glass.past(within, chrono::Utc::now()),
        sha: None,
    };
    let late = countersigned.late;
    let target = break_glass::Target {
        branch: d.branch(),
        path: &path,
        text: &text,
        approved: None,
    };
    let sha =
        break_glass::commit_countersignature(&trusted, &gh, target, meta, countersigned, within)
            .await?;
    report.result = RunResult::Countersigned;
    report.commit_sha = Some(sha);
    report.text = vec![format!(
        "rotor countersign {}: countersigned by {}{}",
        d.id,
        d.dispatcher,
        if late {
            format!(
                " (late: after countersign_within, {})",
                crate::config::said(within)
            )
        } else {
            String::new()
        }
    )];
    let headline = if late {
        "countersigned, late"
    } else {
        "countersigned"
    };
    let view = View {
        rotation_id: Some(d.id.as_str()),
        dispatcher: Some(&d.dispatcher),
        reason: Some(&d.reason),
        links: env.links(None, &report),
        ..View::new("countersign", headline, &report)
    };
    let (_, summary) = trusted.render(&view)?;
    gha::append_summary(&summary)?;
    report.emit(&cx.output)
}

/// The rotation's artifact on the default branch, its text and its machine-readable part; one
/// not there yet is a precondition (exit 4): a pull request still open is countersigned by
/// approving it.
fn read_artifact(
    trusted: &Trusted,
    d: &Dispatch,
    default_branch: &str,
) -> Result<(String, String, ArtifactMeta), Error> {
    dispatch::artifact_on_default_branch(
        trusted,
        d,
        default_branch,
        |_| true,
        &dispatch::Remedies {
            missing: "countersign by approving the pull request, or after it is merged",
            untrusted: "run `rotor verify` before countersigning",
            unusable: "carries no machine-readable block: it is not rotor's record",
        },
    )
}
