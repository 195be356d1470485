//! Break-glass: one `internal_admin` rotates alone where the environment allows it, loudly, and
//! the second approval stays owed until another `internal_admin` countersigns.
//!
//! What is shared by `apply` (the `/rotor break-glass` comment, the team's notification, a
//! countersignature by an approving review) and `countersign` (the dispatched one): the
//! reason's rules, the notification, the `## Countersigned` section and when one is late.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use crate::artifact::{self, ArtifactMeta, CountersignSection, MetaBreakGlass, MetaCountersigned};
use crate::config::{BreakGlass as Policy, said};
use crate::error::Error;
use crate::github::GitHub;
use crate::policy::AdminStatus;
use crate::request::Request;
use crate::session::{Session, Trusted};

/// Where rotor's notification of a break-glass rotation starts: one per rotation, found again
/// by a re-run so that the team is told once.
const NOTIFY_MARKER: &str = "<!-- rotor:break-glass ";

/// The reason a `/rotor break-glass` comment gives in its following lines, by the rules of a
/// request's `reason`: missing is `reason_missing`, breaking a rule `reason_invalid` (exit 2).
pub fn reason(raw: &str) -> Result<String, Error> {
    if raw.trim().is_empty() {
        return Err(Error::Reason {
            code: "reason_missing",
            problem: "`/rotor break-glass` needs a reason: write it on the lines after the command (the first line is the command alone), e.g. `/rotor break-glass` then `key leaked in INC-4211`".to_owned(),
        });
    }
    crate::request::check_text(raw).map_err(|(_, problem)| Error::Reason {
        code: "reason_invalid",
        problem: format!(
            "the reason of `/rotor break-glass` {problem}; it follows the rules of a request's reason (at most 4,096 characters, line feeds and tabs the only controls)"
        ),
    })?;
    Ok(raw.to_owned())
}

/// Posts the one new comment that mentions `policy.notify` (the one mention rotor writes: a
/// mention added by editing may not notify), saying who rotated what and why; a re-run finds
/// it and posts nothing. Before the first change, so that a run that dies half-way was told.
pub(crate) async fn notify(
    s: &Session,
    request: &Request,
    glass: &crate::policy::BreakGlass,
    policy: &Policy,
) -> Result<(), Error> {
    let marker = format!("{NOTIFY_MARKER}{} -->", request.id);
    if s.gh.find_marked(s.number, &marker).await?.is_some() {
        return Ok(());
    }
    let refs = match request.refs.as_slice() {
        [one] => one.secret_ref.to_string(),
        many => format!("{} refs", many.len()),
    };
    let text = s.trusted.renderer.render(
        "notify.md.j2",
        serde_json::json!({
            "by": glass.by, "rotation_id": request.id.as_str(), "refs": refs,
            "environment": request.environment, "reason": glass.reason,
            "within": said(policy.countersign_within), "run_url": s.env.run_url(),
            "head": s.event_head.get(..7).unwrap_or(&s.event_head),
        }),
    )?;
    // The team is validated `org/team-slug` from the config on the default branch: the only
    // text rotor writes unescaped.
    let mention = policy
        .notify
        .as_ref()
        .map(|t| format!("@{}/{} ", t.org, t.slug))
        .unwrap_or_default();
    let body = format!("{marker}\n{mention}{text}");
    s.gh.create_comment(s.number, &body, &marker).await?;
    Ok(())
}

/// Where a countersignature is committed: the branch, the artifact's path and text there,
/// and, on a pull request's branch, the head it must sit on.
pub(crate) struct Target<'a> {
    /// The branch.
    pub(crate) branch: &'a str,
    /// The artifact's path.
    pub(crate) path: &'a str,
    /// The artifact's text on that branch.
    pub(crate) text: &'a str,
    /// On a pull request's branch, the approved head: the commit's only parent.
    pub(crate) approved: Option<&'a str>,
}

/// Appends the `## Countersigned` section to the artifact, records `countersigned` in its
/// block, and commits it (`commit.via`) in rotor's own commit; the commit holding it. A file
/// already countersigned there (another run of this countersignature) is kept.
pub(crate) async fn commit_countersignature(
    trusted: &Trusted,
    gh: &GitHub,
    target: Target<'_>,
    mut meta: ArtifactMeta,
    countersigned: MetaCountersigned,
    within: Duration,
) -> Result<String, Error> {
    let operator = meta
        .break_glass
        .as_ref()
        .map(|g| g.by.clone())
        .unwrap_or_default();
    let section = CountersignSection {
        countersigned: &countersigned,
        operator: &operator,
        within: said(within),
    };
    let message = format!(
        "rotor: countersign of break-glass rotation {}",
        meta.rotation_id
    );
    meta.countersigned = Some(countersigned.clone());
    let updated = artifact::append_countersigned(target.text, &section, &meta, &trusted.renderer)?;
    let keep = |existing: &[u8]| {
        artifact::read_meta(&String::from_utf8_lossy(existing))
            .ok()
            .flatten()
            .is_some_and(|m| m.countersigned.is_some())
    };
    let record = crate::publish::Record {
        branch: target.branch,
        path: target.path,
        content: updated.as_bytes(),
        message: &message,
        keep: &keep,
        approved: target.approved,
    };
    crate::publish::publish(&trusted.git, gh, &trusted.config.commit, &record).await
}

/// Now, as the record writes times.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// What an approving review of a break-glass rotation amounts to.
pub(crate) enum ReviewVerdict {
    /// It countersigns; `url` is the review's page.
    Countersigns {
        /// The review's page, when GitHub gives one.
        url: Option<String>,
    },
    /// It does not, and why.
    DoesNot(String),
}

/// Whether `reviewer`'s approval countersigns the break-glass rotation `glass` of the
/// session's pull request (with the review's page, for the record), or why not. It does when the pull request is open, its head has not
/// moved since the event, the reviewer is another `internal_admin` than the operator, and
/// their latest review approves that head. On the pull request's branch (`on_branch`: the
/// artifact's path there), the head must be rotor's record commit itself — on the head the
/// glass was broken on, changing only the artifact — so that what is countersigned is what
/// rotor wrote, not a later hand's edit of it.
pub(crate) async fn review_countersigns(
    s: &Session,
    reviewer: &str,
    glass: &MetaBreakGlass,
    on_branch: Option<&str>,
) -> Result<ReviewVerdict, Error> {
    if s.pr.merged || s.pr.state != "open" {
        return Ok(ReviewVerdict::DoesNot(
            "the pull request is no longer open: countersign with the countersign workflow"
                .to_owned(),
        ));
    }
    if s.pr.head_sha != s.event_head {
        return Ok(ReviewVerdict::DoesNot(format!(
            "the head moved to {} after the review: approve the current head",
            s.pr.head_sha.get(..7).unwrap_or(&s.pr.head_sha)
        )));
    }
    if let Some(path) = on_branch {
        let git = &s.trusted.git;
        let parent = git.recorded_parent(&s.pr.head_sha)?;
        let on_glass = parent.is_some() && parent.as_deref() == glass.sha.as_deref();
        let only_the_record = match (on_glass, &glass.sha) {
            (true, Some(sha)) => {
                git.ensure_commit(sha, &format!("refs/pull/{}/head", s.number))?;
                git.paths_between(sha, &s.pr.head_sha)? == [path]
            }
            _ => false,
        };
        if !only_the_record {
            return Ok(ReviewVerdict::DoesNot(format!(
                "the head {} is not rotor's record of the rotation (a commit changed the branch after it): countersign after the merge, with the countersign workflow",
                s.pr.head_sha.get(..7).unwrap_or(&s.pr.head_sha)
            )));
        }
    }
    if reviewer.eq_ignore_ascii_case(&glass.by) {
        return Ok(ReviewVerdict::DoesNot(format!(
            "{reviewer} broke the glass: the operator cannot countersign their own rotation"
        )));
    }
    match crate::gate::admin_status(&s.gh, &s.trusted.config.admins, reviewer).await? {
        AdminStatus::Admin => {}
        AdminStatus::NotAdmin => {
            return Ok(ReviewVerdict::DoesNot(format!(
                "{reviewer} does not hold internal_admin"
            )));
        }
        AdminStatus::Unverifiable => {
            return Ok(ReviewVerdict::DoesNot(
                "the token cannot see the admins team, so the reviewer cannot be verified; give ROTOR_ORG_TOKEN Organization Members: read".to_owned(),
            ));
        }
    }
    let reviews = s.gh.reviews(s.number).await?;
    let latest = reviews.iter().rfind(|r| {
        r.reviewer
            .as_deref()
            .is_some_and(|l| l.eq_ignore_ascii_case(reviewer))
            && !matches!(r.state.as_str(), "COMMENTED" | "PENDING")
    });
    match latest {
        Some(r) if r.state == "APPROVED" && r.commit_id == s.pr.head_sha => {
            Ok(ReviewVerdict::Countersigns {
                url: Some(r.html_url.clone()).filter(|u| !u.is_empty()),
            })
        }
        Some(r) => Ok(ReviewVerdict::DoesNot(format!(
            "{reviewer}'s latest review is {} of {}, not an approval of the head {}",
            r.state,
            r.commit_id.get(..7).unwrap_or(&r.commit_id),
            s.pr.head_sha.get(..7).unwrap_or(&s.pr.head_sha)
        ))),
        None => Ok(ReviewVerdict::DoesNot(format!(
            "{reviewer} has no review of the pull request"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Renderer;

    #[test]
    fn a_reason_is_required_and_follows_the_rules() {
        assert_eq!(
            reason("key leaked\nINC-42").expect("valid"),
            "key leaked\nINC-42"
        );
        let missing = reason(" \n\t").expect_err("blank");
        assert_eq!(
            (missing.code(), missing.report_code()),
            (2, "reason_missing")
        );
        let bidi = reason("leak \u{202e}dekcah").expect_err("bidi");
        assert_eq!((bidi.code(), bidi.report_code()), (2, "reason_invalid"));
        assert!(bidi.to_string().contains("\\u{202e}"), "{bidi}");
        let long = reason(&"x".repeat(4097)).expect_err("too long");
        assert_eq!(long.report_code(), "reason_invalid");
    }

    #[test]
    fn the_notification_says_who_what_and_why_without_any_other_mention() {
        let text = Renderer::new(Vec::new())
            .expect("renderer")
            .render(
                "notify.md.j2",
                serde_json::json!({
                    "by": "alice", "rotation_id": "2026-12-05-acme-leak",
                    "refs": "tenant.acme.supabase.service_role", "environment": "production",
                    "reason": "key leaked in INC-4211\ncc @mallory",
                    "within": "24h", "run_url": "https://github.com/my-org/tenants/actions/runs/9",
                    "head": "4f2c9a1",
                }),
            )
            .expect("render");
        assert!(!text.contains("@mallory"), "{text}");
        insta::assert_snapshot!("notify", text);
    }
}
