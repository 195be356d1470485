//! The approval gate: gathers from GitHub the facts the approval policy needs and lets [`crate::policy`]
//! decide. The number of API calls depends on the number of people involved, never on the
//! number of refs.

use std::collections::BTreeMap;

use crate::config::Admins;
use crate::github::model::{ChangedFile, Membership, PullRequest, Review, TeamSlug};
use crate::github::{GitHub, GitHubError};
use crate::policy::{self, AdminStatus, Decision, Facts};

/// What the gate saw and decided.
#[derive(Debug, Clone)]
pub struct Approval {
    /// The decision.
    pub decision: Decision,
    /// Every review, for the report's approval links.
    pub reviews: Vec<Review>,
}

/// The inputs of one evaluation that do not come from the reviews.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The pull request as fetched.
    pub pr: &'a PullRequest,
    /// Its changed files.
    pub files: &'a [ChangedFile],
    /// How many request files it changes.
    pub request_files: usize,
    /// The default branch.
    pub default_branch: &'a str,
    /// The event's head SHA.
    pub event_head_sha: &'a str,
    /// For `/rotor apply` and `/rotor break-glass`: the comment's author.
    pub trigger: Option<Option<&'a str>>,
    /// For `/rotor break-glass`: whether the environment allows it, and who re-ran the job.
    pub break_glass: Option<crate::policy::GlassAsk<'a>>,
}

/// Fetches the people's `internal_admin` status, then evaluates the policy on `reviews` (the
/// pull request's, read by the caller with the pull request itself).
pub async fn check(
    gh: &GitHub,
    config: &crate::config::Config,
    subject: Subject<'_>,
    reviews: Vec<Review>,
) -> Result<Approval, GitHubError> {
    let mut people: Vec<String> = Vec::new();
    let mut add = |login: &str| {
        let login = login.to_ascii_lowercase();
        if !people.contains(&login) {
            people.push(login);
        }
    };
    if let Some(author) = &subject.pr.author {
        add(author);
    }
    for r in &reviews {
        if let (Some(login), false) = (
            &r.reviewer,
            matches!(r.state.as_str(), "COMMENTED" | "PENDING"),
        ) {
            add(login);
        }
    }
    if let Some(Some(trigger)) = subject.trigger {
        add(trigger);
    }
    let admins = statuses(gh, &config.admins, &people).await?;
    let decision = policy::evaluate(&Facts {
        pr: subject.pr,
        default_branch: subject.default_branch,
        event_head_sha: subject.event_head_sha,
        reviews: &reviews,
        files: subject.files,
        requests_dir: &config.requests_dir,
        request_files: subject.request_files,
        required: config.approvals_required,
        admins: &admins,
        trigger: subject.trigger,
        break_glass: subject.break_glass,
    });
    Ok(Approval { decision, reviews })
}

/// One person's `internal_admin` status (the dispatcher of a rollback), by the same rules as
/// the approval gate's.
pub async fn admin_status(
    gh: &GitHub,
    admins: &Admins,
    login: &str,
) -> Result<AdminStatus, GitHubError> {
    let login = login.to_ascii_lowercase();
    let statuses = statuses(gh, admins, std::slice::from_ref(&login)).await?;
    Ok(statuses
        .get(&login)
        .copied()
        .unwrap_or(AdminStatus::NotAdmin))
}

/// Each person's `internal_admin` status: listed users first; then active team membership,
/// once the token has shown it can see the team at all.
async fn statuses(
    gh: &GitHub,
    admins: &Admins,
    people: &[String],
) -> Result<BTreeMap<String, AdminStatus>, GitHubError> {
    let mut out = BTreeMap::new();
    let mut team_visible: Option<bool> = None;
    for login in people {
        if admins.users.iter().any(|u| u.eq_ignore_ascii_case(login)) {
            out.insert(login.clone(), AdminStatus::Admin);
            continue;
        }
        let Some(team) = &admins.team else {
            out.insert(login.clone(), AdminStatus::NotAdmin);
            continue;
        };
        let team = TeamSlug {
            org: team.org.clone(),
            slug: team.slug.clone(),
        };
        let visible = match team_visible {
            Some(v) => v,
            None => {
                let v = gh.team_visible(&team).await?;
                team_visible = Some(v);
                v
            }
        };
        let status = if !visible {
            AdminStatus::Unverifiable
        } else if gh.membership(&team, login).await? == Membership::Active {
            AdminStatus::Admin
        } else {
            AdminStatus::NotAdmin
        };
        out.insert(login.clone(), status);
    }
    Ok(out)
}
