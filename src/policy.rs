//! The approval policy as a pure function over facts fetched beforehand.
//!
//! [`evaluate`] never calls anything: the gate gathers the pull request, every page of reviews
//! and files, and each person's `internal_admin` status, and this module decides. The result
//! names every unmet rule with its stable name, which reviewer and which SHA.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::RepoDir;
use crate::github::model::{ChangedFile, PullRequest, Review};

/// Whether a person holds `internal_admin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminStatus {
    /// Listed in `admins.users`, or an active member of `admins.team`.
    Admin,
    /// Verified not to be.
    NotAdmin,
    /// Cannot be verified: the token cannot see the team.
    Unverifiable,
}

/// Everything the policy looks at.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The pull request as the API reports it now.
    pub pr: &'a PullRequest,
    /// The repository's default branch.
    pub default_branch: &'a str,
    /// The head SHA of the event (for a comment: the one fetched when the run began).
    pub event_head_sha: &'a str,
    /// Every review, oldest first.
    pub reviews: &'a [Review],
    /// Every changed file.
    pub files: &'a [ChangedFile],
    /// The config's `requests_dir`.
    pub requests_dir: &'a RepoDir,
    /// How many request files the PR changes.
    pub request_files: usize,
    /// `approvals.required`.
    pub required: u32,
    /// `internal_admin` status of the requester, the reviewers and the trigger, by login
    /// (lowercase). A login missing here is not an admin.
    pub admins: &'a BTreeMap<String, AdminStatus>,
    /// For `/rotor apply`: the comment's author (`None` inside: a deleted account).
    pub trigger: Option<Option<&'a str>>,
    /// For `/rotor break-glass`: what decides it besides the comment's author (`trigger`).
    pub break_glass: Option<GlassAsk<'a>>,
}

/// What `/rotor break-glass` is judged on besides the comment's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlassAsk<'a> {
    /// Whether the request's environment allows it (`None`: there is no valid request to ask).
    pub allowed: Option<bool>,
    /// Who re-ran the job, when that is not the comment's author (`GITHUB_TRIGGERING_ACTOR`): a
    /// re-run replays the comment's payload, sender and all.
    pub rerun_by: Option<&'a str>,
}

/// A break-glass rotation as the JSON report and the artifact record it: who, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BreakGlass {
    /// The requester who broke the glass.
    pub by: String,
    /// Why, as the comment gave it.
    pub reason: String,
    /// When the run that broke it began (RFC 3339).
    pub at: String,
}

/// One unmet rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unmet {
    /// Its stable name, e.g. `insufficient_approvals`.
    pub rule: &'static str,
    /// What exactly is missing: which reviewer, which SHA.
    pub message: String,
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether every rule holds.
    pub approved: bool,
    /// The `internal_admin` reviewers whose approval of the head counts.
    pub approvers: Vec<String>,
    /// Every unmet rule, in the policy's order.
    pub unmet: Vec<Unmet>,
    /// For `/rotor break-glass` once every rule holds: who broke the glass, why and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub break_glass: Option<BreakGlass>,
}

/// At most five paths, then how many more.
fn listed(paths: &[&str]) -> String {
    let shown: Vec<&str> = paths.iter().take(5).copied().collect();
    let more = if paths.len() > 5 {
        format!(" and {} more", paths.len() - 5)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// Evaluates the policy.
pub fn evaluate(f: &Facts<'_>) -> Decision {
    let mut unmet = Vec::new();
    let mut push = |rule, message: String| unmet.push(Unmet { rule, message });
    let status = |login: &str| {
        f.admins
            .get(&login.to_ascii_lowercase())
            .copied()
            .unwrap_or(AdminStatus::NotAdmin)
    };
    let head = f.pr.head_sha.as_str();

    // Rule 1: open, not a draft, on the default branch, not from a fork.
    if f.pr.merged {
        push("pr_state", "the pull request is already merged".to_owned());
    } else if f.pr.state != "open" {
        push("pr_state", format!("the pull request is {}", f.pr.state));
    }
    if f.pr.draft {
        push(
            "draft",
            "the pull request is a draft; mark it ready for review".to_owned(),
        );
    }
    if f.pr.base_ref != f.default_branch {
        push(
            "base_not_default",
            format!(
                "the pull request targets `{}`, not the default branch `{}`",
                f.pr.base_ref, f.default_branch
            ),
        );
    }
    if f.pr.head_repo.as_deref() != Some(f.pr.base_repo.as_str()) {
        push(
            "fork",
            format!(
                "the head is in {}, not in {}; rotations come from branches of the repository itself",
                f.pr.head_repo.as_deref().unwrap_or("a deleted repository"),
                f.pr.base_repo
            ),
        );
    }
    // Rule 2: the head has not moved since the event.
    if f.pr.head_sha != f.event_head_sha {
        push(
            "head_moved",
            format!(
                "the head moved from {} to {} after this run began; the new head needs its own approval",
                short(f.event_head_sha),
                short(head)
            ),
        );
    }

    let mut unverifiable = Vec::new();
    // Rule 3: the requester holds internal_admin.
    let requester = f.pr.author.as_deref().filter(|a| *a != "ghost");
    match requester.map(status) {
        Some(AdminStatus::Admin) => {}
        Some(AdminStatus::Unverifiable) => {
            unverifiable.push(requester.unwrap_or_default().to_owned())
        }
        Some(AdminStatus::NotAdmin) => push(
            "requester_not_admin",
            format!(
                "the requester {} does not hold internal_admin",
                requester.unwrap_or_default()
            ),
        ),
        None => push(
            "requester_not_admin",
            "the requester's account no longer exists".to_owned(),
        ),
    }

    // Rule 4: each reviewer's latest review that is not COMMENTED (nor an unsubmitted PENDING).
    let mut latest: BTreeMap<String, (&str, &Review)> = BTreeMap::new();
    for r in f.reviews {
        let Some(login) = r.reviewer.as_deref() else {
            continue; // a deleted account can approve nothing
        };
        if matches!(r.state.as_str(), "COMMENTED" | "PENDING") {
            continue;
        }
        latest.insert(login.to_ascii_lowercase(), (login, r));
    }
    let mut approvers = Vec::new();
    let mut not_counted = Vec::new();
    let mut blocking = Vec::new();
    for (key, (login, review)) in &latest {
        let is_requester = requester.is_some_and(|a| a.eq_ignore_ascii_case(login));
        let admin = status(key);
        match review.state.as_str() {
            "APPROVED" if is_requester => not_counted.push(format!(
                "{login} (the requester cannot approve their own rotation)"
            )),
            "APPROVED" if review.commit_id != head => {
                not_counted.push(format!(
                    "{login} (approved {}, not the head {})",
                    short(&review.commit_id),
                    short(head)
                ));
            }
            "APPROVED" => match admin {
                AdminStatus::Admin => approvers.push((*login).to_owned()),
                AdminStatus::NotAdmin => {
                    not_counted.push(format!("{login} (does not hold internal_admin)"))
                }
                AdminStatus::Unverifiable => unverifiable.push((*login).to_owned()),
            },
            "CHANGES_REQUESTED" if admin != AdminStatus::NotAdmin => {
                blocking.push(format!(
                    "{login} requested changes on {}",
                    short(&review.commit_id)
                ));
            }
            _ => {}
        }
    }
    if !unverifiable.is_empty() {
        push(
            "team_not_visible",
            format!(
                "the token cannot see the admins team, so internal_admin cannot be verified for {}; give ROTOR_ORG_TOKEN Organization `Members: read`",
                unverifiable.join(", ")
            ),
        );
    }
    let required = f.required as usize;
    // Break-glass lifts the count of approvals, and only that: a request for changes still
    // blocks, and whoever approved is not recorded as an approval of this run.
    if f.break_glass.is_some() {
        approvers.clear();
    } else if approvers.len() < required {
        let mut message = format!(
            "{} of {required} required internal_admin approval{} of the head {}",
            approvers.len(),
            if required == 1 { "" } else { "s" },
            short(head)
        );
        if !approvers.is_empty() {
            message.push_str(&format!(" (from {})", approvers.join(", ")));
        }
        if !not_counted.is_empty() {
            message.push_str(&format!("; not counted: {}", not_counted.join(", ")));
        }
        push("insufficient_approvals", message);
    }
    if !blocking.is_empty() {
        push("changes_requested", blocking.join("; "));
    }

    // Rule 5: the PR only adds or modifies files under requests_dir. A request removed (or
    // renamed away) is its own rule: a PR could otherwise retire another rotation's request.
    let removed: Vec<&str> = f
        .files
        .iter()
        .filter_map(|file| match file.status.as_str() {
            "removed" if f.requests_dir.contains(&file.path) => Some(file.path.as_str()),
            // A rename takes the old name away, wherever the new one is: a request renamed to
            // `older.yaml.retired` is a request removed.
            "renamed"
                if file
                    .previous_path
                    .as_deref()
                    .is_some_and(|p| f.requests_dir.contains(p)) =>
            {
                file.previous_path.as_deref()
            }
            _ => None,
        })
        .collect();
    if !removed.is_empty() {
        push(
            "request_removed",
            format!(
                "the pull request removes {} from {}/; a rotation pull request only adds or modifies requests",
                listed(&removed),
                f.requests_dir.as_str()
            ),
        );
    }
    let outside: Vec<&str> = f
        .files
        .iter()
        .flat_map(|file| std::iter::once(file.path.as_str()).chain(file.previous_path.as_deref()))
        .filter(|p| !f.requests_dir.contains(p))
        .collect();
    if !outside.is_empty() {
        push(
            "files_outside_requests_dir",
            format!(
                "the pull request also changes {}; policy and requests are never approved together",
                listed(&outside)
            ),
        );
    } else if let Some(total) = f.pr.changed_files
        && (f.files.len() as u64) < total
    {
        // GitHub lists at most 3,000 files of a pull request: what was not listed cannot be
        // judged, so it is not approved.
        push(
            "files_outside_requests_dir",
            format!(
                "GitHub listed {} of the pull request's {total} changed files (it stops at 3,000); the rest cannot be checked",
                f.files.len()
            ),
        );
    }
    if f.request_files == 0 {
        push(
            "no_requests",
            format!(
                "the pull request changes no request file under {}/",
                f.requests_dir.as_str()
            ),
        );
    }

    // Rule 6: `/rotor apply` comes from an internal_admin; the comment is never an approval.
    let word = if f.break_glass.is_some() {
        "/rotor break-glass"
    } else {
        "/rotor apply"
    };
    if let Some(trigger) = f.trigger {
        match trigger.map(status) {
            Some(AdminStatus::Admin) => {}
            _ => push(
                "trigger_not_admin",
                format!(
                    "`{word}` was commented by {}, who does not hold internal_admin",
                    trigger.unwrap_or("a deleted account")
                ),
            ),
        }
    }
    // Break-glass: only where the environment allows it, and only by the requester.
    if let Some(ask) = f.break_glass {
        if ask.allowed == Some(false) {
            push(
                "break_glass_not_allowed",
                "the request's environment does not allow break-glass (`break_glass.allowed` is not true in the config); a second internal_admin must approve".to_owned(),
            );
        }
        let by = f.trigger.flatten();
        let is_requester = by
            .zip(requester)
            .is_some_and(|(b, r)| b.eq_ignore_ascii_case(r));
        if !is_requester {
            push(
                "break_glass_not_requester",
                format!(
                    "`/rotor break-glass` was commented by {}, not by the requester {}: only the requester may break the glass",
                    by.unwrap_or("a deleted account"),
                    requester.unwrap_or("(a deleted account)")
                ),
            );
        } else if let Some(other) = ask.rerun_by {
            push(
                "break_glass_not_requester",
                format!(
                    "this run is a re-run by {other} of {}'s `/rotor break-glass`: only the requester may break the glass, so only they may run it again",
                    by.unwrap_or_default()
                ),
            );
        }
    }

    Decision {
        approved: unmet.is_empty(),
        approvers,
        unmet,
        break_glass: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AdminStatus::{Admin, NotAdmin, Unverifiable};

    const HEAD: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OLD: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    struct Case {
        pr: PullRequest,
        event_head: String,
        reviews: Vec<Review>,
        files: Vec<ChangedFile>,
        request_files: usize,
        required: u32,
        admins: BTreeMap<String, AdminStatus>,
        trigger: Option<Option<String>>,
        break_glass: Option<Option<bool>>,
        rerun_by: Option<String>,
    }

    fn review(who: Option<&str>, state: &str, commit: &str) -> Review {
        Review {
            reviewer: who.map(str::to_owned),
            state: state.to_owned(),
            commit_id: commit.to_owned(),
            html_url: String::new(),
        }
    }

    fn file(path: &str) -> ChangedFile {
        ChangedFile {
            path: path.to_owned(),
            status: "added".to_owned(),
            previous_path: None,
        }
    }

    /// An approvable PR: alice (admin) requests, bob (admin) approved the head.
    fn base() -> Case {
        Case {
            pr: PullRequest {
                number: 7,
                state: "open".to_owned(),
                merged: false,
                draft: false,
                author: Some("alice".to_owned()),
                title: String::new(),
                head_sha: HEAD.to_owned(),
                head_ref: "rotate".to_owned(),
                head_repo: Some("my-org/tenants".to_owned()),
                base_ref: "main".to_owned(),
                base_repo: "my-org/tenants".to_owned(),
                html_url: String::new(),
                changed_files: Some(1),
            },
            event_head: HEAD.to_owned(),
            reviews: vec![review(Some("bob"), "APPROVED", HEAD)],
            files: vec![file("rotations/r-1.yaml")],
            request_files: 1,
            required: 1,
            admins: BTreeMap::from([
                ("alice".to_owned(), Admin),
                ("bob".to_owned(), Admin),
                ("carol".to_owned(), Admin),
                ("mallory".to_owned(), NotAdmin),
            ]),
            trigger: None,
            break_glass: None,
            rerun_by: None,
        }
    }

    fn decide(c: &Case) -> Decision {
        let dir = crate::config::parse(
            "c.yml",
            b"version: 1\nadmins: {users: [x]}\nenvironments: {s: {}}\nbackends: [{match: '*', type: vault}]\napp: {base_url: 'http://a'}\n",
        )
        .expect("config")
        .requests_dir;
        evaluate(&Facts {
            pr: &c.pr,
            default_branch: "main",
            event_head_sha: &c.event_head,
            reviews: &c.reviews,
            files: &c.files,
            requests_dir: &dir,
            request_files: c.request_files,
            required: c.required,
            admins: &c.admins,
            trigger: c.trigger.as_ref().map(|t| t.as_deref()),
            break_glass: c.break_glass.map(|allowed| GlassAsk {
                allowed,
                rerun_by: c.rerun_by.as_deref(),
            }),
        })
    }

    /// `/rotor break-glass` by alice, the requester, where it is allowed, with no review.
    fn glass(c: &mut Case) {
        c.reviews.clear();
        c.trigger = Some(Some("alice".to_owned()));
        c.break_glass = Some(Some(true));
    }

    fn rules(d: &Decision) -> Vec<&'static str> {
        d.unmet.iter().map(|u| u.rule).collect()
    }

    /// The table: a name, a change to the approvable base, the expected unmet rules.
    #[test]
    fn situations() {
        type Tweak = fn(&mut Case);
        let table: Vec<(&str, Tweak, Vec<&str>)> = vec![
            ("approvable", |_| {}, vec![]),
            (
                "approval on an older commit",
                |c| c.reviews = vec![review(Some("bob"), "APPROVED", OLD)],
                vec!["insufficient_approvals"],
            ),
            (
                "self-approval",
                |c| c.reviews = vec![review(Some("alice"), "APPROVED", HEAD)],
                vec!["insufficient_approvals"],
            ),
            (
                "self-approval with different case",
                |c| c.reviews = vec![review(Some("ALICE"), "APPROVED", HEAD)],
                vec!["insufficient_approvals"],
            ),
            (
                "non-admin approver",
                |c| c.reviews = vec![review(Some("mallory"), "APPROVED", HEAD)],
                vec!["insufficient_approvals"],
            ),
            (
                "unknown approver is no admin",
                |c| c.reviews = vec![review(Some("stranger"), "APPROVED", HEAD)],
                vec!["insufficient_approvals"],
            ),
            (
                "pending team membership",
                |c| {
                    c.admins.insert("bob".into(), NotAdmin);
                },
                vec!["insufficient_approvals"],
            ),
            (
                "latest review dismissed",
                |c| c.reviews.push(review(Some("bob"), "DISMISSED", HEAD)),
                vec!["insufficient_approvals"],
            ),
            (
                "a later COMMENTED review keeps the approval",
                |c| c.reviews.push(review(Some("bob"), "COMMENTED", HEAD)),
                vec![],
            ),
            (
                "a PENDING review is ignored",
                |c| c.reviews.push(review(Some("bob"), "PENDING", HEAD)),
                vec![],
            ),
            (
                "an admin's CHANGES_REQUESTED after another's approval blocks",
                |c| {
                    c.reviews
                        .push(review(Some("carol"), "CHANGES_REQUESTED", HEAD))
                },
                vec!["changes_requested"],
            ),
            (
                "a non-admin's CHANGES_REQUESTED does not block",
                |c| {
                    c.reviews
                        .push(review(Some("mallory"), "CHANGES_REQUESTED", HEAD))
                },
                vec![],
            ),
            (
                "the approver later requested changes",
                |c| {
                    c.reviews
                        .push(review(Some("bob"), "CHANGES_REQUESTED", HEAD))
                },
                vec!["insufficient_approvals", "changes_requested"],
            ),
            (
                "changes requested, then approved",
                |c| {
                    c.reviews = vec![
                        review(Some("bob"), "CHANGES_REQUESTED", OLD),
                        review(Some("bob"), "APPROVED", HEAD),
                    ]
                },
                vec![],
            ),
            (
                "a deleted reviewer (null) counts for nothing",
                |c| c.reviews = vec![review(None, "APPROVED", HEAD)],
                vec!["insufficient_approvals"],
            ),
            (
                "two required, one given",
                |c| c.required = 2,
                vec!["insufficient_approvals"],
            ),
            (
                "two required, two given",
                |c| {
                    c.required = 2;
                    c.reviews.push(review(Some("carol"), "APPROVED", HEAD));
                },
                vec![],
            ),
            (
                "two approvals by one reviewer count once",
                |c| {
                    c.required = 2;
                    c.reviews.push(review(Some("bob"), "APPROVED", HEAD));
                },
                vec!["insufficient_approvals"],
            ),
            (
                "a fork",
                |c| c.pr.head_repo = Some("a-forker/tenants".into()),
                vec!["fork"],
            ),
            (
                "a deleted head repository",
                |c| c.pr.head_repo = None,
                vec!["fork"],
            ),
            ("a draft", |c| c.pr.draft = true, vec!["draft"]),
            (
                "a closed PR",
                |c| c.pr.state = "closed".into(),
                vec!["pr_state"],
            ),
            (
                "a merged PR",
                |c| {
                    c.pr.state = "closed".into();
                    c.pr.merged = true;
                },
                vec!["pr_state"],
            ),
            (
                "a base that is not the default branch",
                |c| c.pr.base_ref = "release".into(),
                vec!["base_not_default"],
            ),
            (
                "files outside requests_dir",
                |c| {
                    c.files.push(file(".github/rotor.yml"));
                    c.pr.changed_files = Some(2);
                },
                vec!["files_outside_requests_dir"],
            ),
            (
                "a rename from outside requests_dir",
                |c| {
                    c.files = vec![ChangedFile {
                        path: "rotations/r.yaml".into(),
                        status: "renamed".into(),
                        previous_path: Some("docs/r.yaml".into()),
                    }]
                },
                vec!["files_outside_requests_dir"],
            ),
            (
                "another request removed",
                |c| {
                    c.files.push(ChangedFile {
                        path: "rotations/older.yaml".into(),
                        status: "removed".into(),
                        previous_path: None,
                    });
                    c.pr.changed_files = Some(2);
                },
                vec!["request_removed"],
            ),
            (
                "a request renamed away from requests_dir",
                |c| {
                    c.files.push(ChangedFile {
                        path: "archive/older.yaml".into(),
                        status: "renamed".into(),
                        previous_path: Some("rotations/older.yaml".into()),
                    });
                    c.pr.changed_files = Some(2);
                },
                vec!["request_removed", "files_outside_requests_dir"],
            ),
            (
                "a request renamed within requests_dir",
                |c| {
                    c.files.push(ChangedFile {
                        path: "rotations/newer.yaml".into(),
                        status: "renamed".into(),
                        previous_path: Some("rotations/older.yaml".into()),
                    });
                    c.pr.changed_files = Some(2);
                },
                vec!["request_removed"],
            ),
            (
                "more files than GitHub lists",
                |c| c.pr.changed_files = Some(3001),
                vec!["files_outside_requests_dir"],
            ),
            (
                "a file in a directory named like requests_dir",
                |c| {
                    c.files.push(file("rotations-old/x.yaml"));
                    c.pr.changed_files = Some(2);
                },
                vec!["files_outside_requests_dir"],
            ),
            (
                "head moved after checkout",
                |c| c.event_head = OLD.into(),
                vec!["head_moved"],
            ),
            (
                "a team the token cannot see",
                |c| {
                    c.admins.insert("alice".into(), Unverifiable);
                    c.admins.insert("bob".into(), Unverifiable);
                },
                vec!["team_not_visible", "insufficient_approvals"],
            ),
            (
                "zero request files",
                |c| {
                    c.files.clear();
                    c.pr.changed_files = Some(0);
                    c.request_files = 0;
                },
                vec!["no_requests"],
            ),
            (
                "requester not admin",
                |c| c.pr.author = Some("mallory".into()),
                vec!["requester_not_admin"],
            ),
            (
                "requester's account deleted",
                |c| c.pr.author = Some("ghost".into()),
                vec!["requester_not_admin"],
            ),
            (
                "/rotor apply by a non-admin",
                |c| c.trigger = Some(Some("mallory".into())),
                vec!["trigger_not_admin"],
            ),
            (
                "/rotor apply by a deleted account",
                |c| c.trigger = Some(None),
                vec!["trigger_not_admin"],
            ),
            (
                "/rotor apply by an admin",
                |c| c.trigger = Some(Some("carol".into())),
                vec![],
            ),
            (
                "the trigger's comment is no approval",
                |c| {
                    c.reviews.clear();
                    c.trigger = Some(Some("carol".into()));
                },
                vec!["insufficient_approvals"],
            ),
            (
                "everything wrong at once",
                |c| {
                    c.pr.draft = true;
                    c.pr.head_repo = Some("x/y".into());
                    c.pr.author = Some("mallory".into());
                    c.reviews.clear();
                    c.files.push(file("README.md"));
                },
                vec![
                    "draft",
                    "fork",
                    "requester_not_admin",
                    "insufficient_approvals",
                    "files_outside_requests_dir",
                ],
            ),
            ("break-glass by the requester, allowed", glass, vec![]),
            (
                "break-glass where the environment does not allow it",
                |c| {
                    glass(c);
                    c.break_glass = Some(Some(false));
                },
                vec!["break_glass_not_allowed"],
            ),
            (
                "break-glass by another admin",
                |c| {
                    glass(c);
                    c.trigger = Some(Some("carol".to_owned()));
                },
                vec!["break_glass_not_requester"],
            ),
            (
                "break-glass by a non-admin who is not the requester",
                |c| {
                    glass(c);
                    c.trigger = Some(Some("mallory".to_owned()));
                },
                vec!["trigger_not_admin", "break_glass_not_requester"],
            ),
            (
                "break-glass by a requester who is no admin",
                |c| {
                    glass(c);
                    c.admins.insert("alice".into(), NotAdmin);
                },
                vec!["requester_not_admin", "trigger_not_admin"],
            ),
            (
                "break-glass still blocked by an admin's request for changes",
                |c| {
                    glass(c);
                    c.reviews = vec![review(Some("carol"), "CHANGES_REQUESTED", HEAD)];
                },
                vec!["changes_requested"],
            ),
            (
                "break-glass keeps every other rule",
                |c| {
                    glass(c);
                    c.files.push(file(".github/rotor.yml"));
                    c.pr.draft = true;
                },
                vec!["draft", "files_outside_requests_dir"],
            ),
            (
                "break-glass re-run by another user",
                |c| {
                    glass(c);
                    c.rerun_by = Some("mallory".to_owned());
                },
                vec!["break_glass_not_requester"],
            ),
            (
                "break-glass from a deleted account",
                |c| {
                    glass(c);
                    c.trigger = Some(None);
                },
                vec!["trigger_not_admin", "break_glass_not_requester"],
            ),
        ];
        assert!(table.len() >= 25);
        for (name, tweak, expected) in table {
            let mut c = base();
            tweak(&mut c);
            let d = decide(&c);
            assert_eq!(rules(&d), expected, "{name}: {:#?}", d.unmet);
            assert_eq!(d.approved, expected.is_empty(), "{name}");
            if c.break_glass.is_some() {
                assert!(
                    d.approvers.is_empty(),
                    "{name}: break-glass counts no approver"
                );
            }
        }
    }

    #[test]
    fn many_reviews_take_each_reviewers_latest() {
        let mut c = base();
        c.required = 2;
        c.reviews = (0..250)
            .map(|i| {
                review(
                    Some(if i % 2 == 0 { "bob" } else { "carol" }),
                    if i < 248 {
                        "CHANGES_REQUESTED"
                    } else {
                        "APPROVED"
                    },
                    HEAD,
                )
            })
            .collect();
        let d = decide(&c);
        assert!(d.approved, "{:?}", d.unmet);
        assert_eq!(d.approvers, ["bob", "carol"]);
    }

    #[test]
    fn messages_name_the_reviewer_and_the_sha() {
        let mut c = base();
        c.reviews = vec![
            review(Some("bob"), "APPROVED", OLD),
            review(Some("mallory"), "APPROVED", HEAD),
        ];
        let d = decide(&c);
        assert_eq!(
            d.unmet[0].message,
            "0 of 1 required internal_admin approval of the head aaaaaaa; not counted: bob (approved bbbbbbb, not the head aaaaaaa), mallory (does not hold internal_admin)"
        );
    }
}
