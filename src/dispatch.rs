//! A `workflow_dispatch` run (`rollback`, `countersign`): its inputs parsed before any call —
//! the rotation, the reason (the rules of a request's reason), who dispatched it and from
//! which branch — and the checks every dispatched command makes first: the default branch
//! only, and a dispatcher who holds `internal_admin`.

use crate::artifact::{self, ArtifactMeta};
use crate::config::Config;
use crate::error::Error;
use crate::gate;
use crate::github::GitHub;
use crate::github::event::{self, Trigger};
use crate::ids::RotationId;
use crate::policy::AdminStatus;
use crate::session::{RunEnv, Trusted};

/// The dispatch, parsed before any call.
#[derive(Debug, Clone)]
pub struct Dispatch {
    /// The rotation it is about.
    pub id: RotationId,
    /// Why.
    pub reason: String,
    /// Who caused this run: `GITHUB_TRIGGERING_ACTOR` (who re-ran it), else `GITHUB_ACTOR`.
    pub dispatcher: String,
    /// Every account the runner names for this run (`GITHUB_ACTOR` and
    /// `GITHUB_TRIGGERING_ACTOR`): a re-run by one of a dispatch by the other involves both.
    pub actors: Vec<String>,
    /// The ref the workflow runs on (`refs/heads/main`).
    pub git_ref: String,
}

impl Dispatch {
    /// The branch the workflow runs on.
    pub fn branch(&self) -> &str {
        self.git_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.git_ref)
    }
}

/// Parses the dispatch of `command`: `rotation_id` and `reason` from the flags, else from the
/// dispatch inputs of the same names.
pub(crate) fn parse(
    command: &'static str,
    rotation_id: Option<String>,
    reason: Option<String>,
    env: &RunEnv,
) -> Result<Dispatch, Error> {
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    let Trigger::Dispatch { git_ref, inputs } = &event.trigger else {
        return Err(Error::Event(event::EventError::Unsupported {
            name: event.name.clone(),
            command,
            expected: "workflow_dispatch",
        }));
    };
    event.check_repository(&env.repository.full())?;
    let input = |name: &str| {
        inputs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let id_text = rotation_id
        .or_else(|| input("rotation_id"))
        .ok_or_else(|| Error::BadArgument {
            name: "--rotation-id",
            problem: "missing: pass --rotation-id or the dispatch input rotation_id".to_owned(),
        })?;
    let id = RotationId::parse(&id_text).map_err(|e| Error::BadArgument {
        name: "--rotation-id",
        problem: format!("{}: {}", crate::diagnostic::quote(&id_text), e.reason),
    })?;
    let reason = reason
        .or_else(|| input("reason"))
        .map(|r| r.replace("\r\n", "\n").trim().to_owned())
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::BadArgument {
            name: "--reason",
            problem: "missing: say why, with --reason or the dispatch input reason".to_owned(),
        })?;
    crate::request::check_text(&reason).map_err(|(_, problem)| Error::BadArgument {
        name: "--reason",
        problem: format!(
            "the reason {problem}; it follows the rules of a request's reason (at most 4,096 characters, line feeds and tabs the only controls)"
        ),
    })?;
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let (actor, triggering) = (var("GITHUB_ACTOR"), var("GITHUB_TRIGGERING_ACTOR"));
    let dispatcher = triggering.clone().or(actor.clone()).ok_or(Error::Env {
        var: "GITHUB_ACTOR",
        problem: "is not set (nor GITHUB_TRIGGERING_ACTOR)",
        hint: "run it from workflow_dispatch, which sets them",
    })?;
    let git_ref = var("GITHUB_REF").unwrap_or_else(|| git_ref.clone());
    Ok(Dispatch {
        id,
        reason,
        dispatcher,
        actors: actor.into_iter().chain(triggering).collect(),
        git_ref,
    })
}

/// A dispatched command runs only from the default branch (exit 3 elsewhere).
pub(crate) fn on_default_branch(
    command: &str,
    d: &Dispatch,
    default_branch: &str,
) -> Result<(), Error> {
    if d.git_ref != format!("refs/heads/{default_branch}") {
        return Err(Error::NotApproved(vec![format!(
            "branch: {command} runs only from the default branch ({default_branch}), not {}",
            d.git_ref
        )]));
    }
    Ok(())
}

/// The dispatcher must hold `internal_admin`, by the gate's rules (exit 3).
pub(crate) async fn authorize(gh: &GitHub, config: &Config, dispatcher: &str) -> Result<(), Error> {
    match gate::admin_status(gh, &config.admins, dispatcher).await? {
        AdminStatus::Admin => Ok(()),
        AdminStatus::NotAdmin => Err(Error::NotApproved(vec![format!(
            "dispatcher_not_admin: {dispatcher} does not hold internal_admin"
        )])),
        AdminStatus::Unverifiable => Err(Error::NotApproved(vec![
            "team_not_visible: the token cannot see the admins team, so nobody can be verified; give ROTOR_ORG_TOKEN Organization Members: read".to_owned(),
        ])),
    }
}

/// What a dispatched command tells its user when the rotation's artifact is not usable.
pub(crate) struct Remedies<'a> {
    /// After `no artifact <path> on <branch>: `.
    pub(crate) missing: &'a str,
    /// After `<path> is not trusted: <why>; `.
    pub(crate) untrusted: &'a str,
    /// After `<path> `, when it has no block the command can use.
    pub(crate) unusable: &'a str,
}

/// The rotation's artifact on the default branch's tip: its path, its text and its
/// machine-readable block, which must be one the command can use (`usable`) and record this
/// rotation; otherwise a precondition (exit 4) saying what to do.
pub(crate) fn artifact_on_default_branch(
    trusted: &Trusted,
    d: &Dispatch,
    default_branch: &str,
    usable: fn(&ArtifactMeta) -> bool,
    remedies: &Remedies<'_>,
) -> Result<(String, String, ArtifactMeta), Error> {
    let path = trusted.artifact_path(d.id.as_str());
    let text = trusted
        .git
        .read_file(&trusted.base_sha, &path)?
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .ok_or_else(|| {
            Error::Precondition(format!(
                "no artifact {path} on {default_branch}: {}",
                remedies.missing
            ))
        })?;
    let meta = artifact::read_meta(&text)
        .map_err(|e| {
            Error::Precondition(format!(
                "{path} is not trusted: {e}; {}",
                remedies.untrusted
            ))
        })?
        .filter(usable)
        .ok_or_else(|| Error::Precondition(format!("{path} {}", remedies.unusable)))?;
    if meta.rotation_id != d.id.as_str() {
        return Err(Error::Precondition(format!(
            "{path} records rotation {}, not {}",
            meta.rotation_id, d.id
        )));
    }
    Ok((path, text, meta))
}
