//! `rotor plan`: what `apply` would do for this pull request, changing nothing.
//!
//! It validates the request the PR changes (read from the head SHA's git objects, with the
//! config from the default branch tip), evaluates the approval policy, reads each ref's state
//! from its secret manager, and reports in one sticky PR comment, the job summary, the step
//! outputs, annotations and (`--format json`) one JSON object. It exits 0 with result
//! `planned` whether or not the approval is complete, 2 on an invalid request, 4 when a
//! precondition fails.

use std::path::{Path, PathBuf};

use serde::Serialize;

use chrono::Utc;

use crate::app::AppClient;
use crate::artifact;
use crate::config::{self, Config};
use crate::context::Context;
use crate::diagnostic::{Diagnostic, Pos, quote};
use crate::error::Error;
use crate::gate::{self, Subject};
use crate::github::event::{self, Event, NotATrigger};
use crate::github::model::{ChangedFile, PullRequest};
use crate::github::{GitHub, RepoName};
use crate::gitops::GitRepo;
use crate::output::{Format, github as gha};
use crate::policy::Decision;
use crate::preflight;
use crate::render::{OVERRIDE_DIR, Renderer};
use crate::request::{self, Request};
use crate::secret::SecretString;

/// The hidden marker that identifies rotor's one comment on a pull request.
pub const COMMENT_MARKER: &str = "<!-- rotor:comment -->";

/// Rows of the ref table in the comment; the job summary has them all.
pub(crate) const COMMENT_ROWS: usize = 50;

/// The GitHub side of a run, from the environment the runner sets.
#[derive(Debug)]
pub(crate) struct RunEnv {
    pub(crate) repository: RepoName,
    pub(crate) api_url: String,
    pub(crate) server_url: String,
    pub(crate) token: SecretString,
    pub(crate) org_token: Option<SecretString>,
    pub(crate) event_path: PathBuf,
    pub(crate) event_name: Option<String>,
    pub(crate) run_id: Option<String>,
}

impl RunEnv {
    pub(crate) fn from_env(event_override: Option<&Path>) -> Result<Self, Error> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let repository = var("GITHUB_REPOSITORY")
            .as_deref()
            .and_then(RepoName::parse)
            .ok_or(Error::Env {
                var: "GITHUB_REPOSITORY",
                problem: "is not set to owner/name",
                hint: "run rotor in a GitHub workflow, or set it",
            })?;
        let token = SecretString::from_env("GITHUB_TOKEN").ok_or(Error::Env {
            var: "GITHUB_TOKEN",
            problem: "is not set",
            hint: "pass the github-token input, or set GITHUB_TOKEN",
        })?;
        let event_path = match event_override {
            Some(p) => p.to_owned(),
            None => var("GITHUB_EVENT_PATH")
                .map(PathBuf::from)
                .ok_or(Error::Env {
                    var: "GITHUB_EVENT_PATH",
                    problem: "is not set",
                    hint: "run rotor in a GitHub workflow, or pass --event PATH",
                })?,
        };
        Ok(Self {
            repository,
            api_url: var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".to_owned()),
            server_url: var("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".to_owned()),
            token,
            org_token: SecretString::from_env("ROTOR_ORG_TOKEN"),
            event_path,
            event_name: var("GITHUB_EVENT_NAME"),
            run_id: var("GITHUB_RUN_ID"),
        })
    }

    pub(crate) fn run_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|id| {
            format!(
                "{}/{}/actions/runs/{id}",
                self.server_url,
                self.repository.full()
            )
        })
    }
}

/// One ref in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RefPlan {
    #[serde(rename = "ref")]
    pub(crate) secret_ref: String,
    pub(crate) backend: &'static str,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) result: &'static str,
    pub(crate) problem: Option<String>,
}

impl RefPlan {
    /// The ref's line in the text report: `  REF (BACKEND): A -> B: RESULT (PROBLEM)`, where
    /// A -> B is from -> to, or to -> from for a move back.
    pub(crate) fn text_line(&self, moving_back: bool) -> String {
        let (from, to) = (
            self.from.as_deref().unwrap_or("-"),
            self.to.as_deref().unwrap_or("-"),
        );
        let (a, b) = if moving_back { (to, from) } else { (from, to) };
        let problem = self
            .problem
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        format!(
            "  {} ({}): {a} -> {b}: {}{problem}",
            self.secret_ref, self.backend, self.result
        )
    }
}

/// One problem in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReportError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) column: Option<usize>,
}

impl From<&Diagnostic> for ReportError {
    fn from(d: &Diagnostic) -> Self {
        Self {
            code: d.code,
            message: d.message.clone(),
            file: Some(d.file.clone()),
            line: Some(d.line),
            column: Some(d.column),
        }
    }
}

/// The JSON report of DESIGN §2.
#[derive(Debug, Serialize)]
struct Report<'a> {
    command: &'static str,
    rotation_id: Option<&'a str>,
    result: &'static str,
    artifact_path: Option<String>,
    approval: Option<&'a Decision>,
    commit_sha: Option<String>,
    refs: &'a [RefPlan],
    errors: &'a [ReportError],
}

/// What the comment and summary templates see.
#[derive(Debug, Serialize)]
pub(crate) struct View<'a> {
    pub(crate) command: &'static str,
    pub(crate) headline: &'a str,
    pub(crate) rotation_id: Option<&'a str>,
    pub(crate) environment: Option<&'a str>,
    pub(crate) requester: Option<&'a str>,
    pub(crate) reason: Option<&'a str>,
    pub(crate) approval: Option<&'a Decision>,
    pub(crate) refs: &'a [RefPlan],
    pub(crate) errors: &'a [ReportError],
    pub(crate) version: &'static str,
    pub(crate) run_url: Option<String>,
    pub(crate) comment_rows: usize,
}

/// The sticky comment's body and the job summary for `view`, rendered.
pub(crate) fn render_report(trusted: &Trusted, view: &View<'_>) -> Result<(String, String), Error> {
    // The marker is rotor's, not the template's: an override cannot lose it.
    let body = format!(
        "{COMMENT_MARKER}\n{}",
        trusted.renderer.render("comment.md.j2", view)?
    );
    Ok((body, trusted.renderer.render("summary.md.j2", view)?))
}

/// Posts the sticky comment and appends the job summary for `view`.
pub(crate) async fn publish_report(
    trusted: &Trusted,
    gh: &GitHub,
    number: u64,
    view: &View<'_>,
) -> Result<(), Error> {
    let (body, summary) = render_report(trusted, view)?;
    upsert_comment(gh, number, &body).await?;
    gha::append_summary(&summary)?;
    Ok(())
}

/// Runs `rotor plan`.
pub async fn run(cx: &Context, event_arg: Option<&Path>, config_rel: &Path) -> Result<(), Error> {
    let env = RunEnv::from_env(event_arg)?;
    let event = event::load(&env.event_path, env.event_name.as_deref())?;
    event.check_repository(&env.repository.full())?;
    let number = match event.plan_trigger() {
        Ok(number) => number,
        Err(not) => return noop(cx, "plan", &not),
    };
    let PrRun {
        gh,
        pr,
        event_head,
        default_branch,
        trusted,
        files,
    } = open_pr(cx, &env, &event, number, config_rel).await?;
    let (requests, mut diagnostics, request_files) = load_requests(&trusted, &files, &pr, number);
    let request = requests.first();

    let approval = gate::check(
        &gh,
        &trusted.config,
        Subject {
            pr: &pr,
            files: &files,
            request_files,
            default_branch: &default_branch,
            event_head_sha: &event_head,
            trigger: None,
        },
    )
    .await?;

    let mut refs = Vec::new();
    let mut worst = 0u8;
    let mut note = None;
    if let (Some(request), true) = (request, diagnostics.is_empty()) {
        let (planned, code, window_note) =
            plan_refs(cx, &trusted.config, request, Some(number)).await;
        refs = planned;
        worst = code;
        note = window_note;
    }
    diagnostics.sort_by(|a, b| (&a.file, a.pos()).cmp(&(&b.file, b.pos())));
    let errors: Vec<ReportError> = diagnostics.iter().map(ReportError::from).collect();
    for d in &diagnostics {
        cx.output.diagnostic(d)?;
    }

    let result = if diagnostics.is_empty() {
        "planned"
    } else {
        "invalid"
    };
    let headline = if !diagnostics.is_empty() {
        "the request is invalid"
    } else if worst != 0 {
        "a precondition fails"
    } else if approval.decision.approved {
        "approved, ready to apply"
    } else {
        "waiting for approval"
    };
    let headline = match &note {
        Some(n) if diagnostics.is_empty() && worst == 0 => format!("{headline} ({n})"),
        _ => headline.to_owned(),
    };
    let headline = headline.as_str();
    let view = View {
        command: "plan",
        headline,
        rotation_id: request.map(|r| r.id.as_str()),
        environment: request.map(|r| r.environment.as_str()),
        requester: pr.author.as_deref(),
        reason: request.map(|r| r.reason.as_str()),
        approval: Some(&approval.decision),
        refs: &refs,
        errors: &errors,
        version: env!("CARGO_PKG_VERSION"),
        run_url: env.run_url(),
        comment_rows: COMMENT_ROWS,
    };
    publish_report(&trusted, &gh, number, &view).await?;
    let artifact_path =
        request.map(|r| format!("{}/{}.md", trusted.config.artifacts_dir.as_str(), r.id));
    gha::write_outputs(&[
        (
            "rotation-id",
            request.map(|r| r.id.to_string()).unwrap_or_default(),
        ),
        ("result", result.to_owned()),
        ("artifact-path", artifact_path.clone().unwrap_or_default()),
        ("commit-sha", String::new()),
        ("refs", refs.len().to_string()),
    ])?;
    cx.output
        .debug(&format!("GitHub API calls: {}", gh.calls()));

    match cx.output.format {
        Format::Json => cx.output.json(&Report {
            command: "plan",
            rotation_id: request.map(|r| r.id.as_str()),
            result,
            artifact_path,
            approval: Some(&approval.decision),
            commit_sha: None,
            refs: &refs,
            errors: &errors,
        })?,
        Format::Text => {
            cx.output.report_line(&format!("rotor plan: {headline}"))?;
            for u in &approval.decision.unmet {
                cx.output
                    .report_line(&format!("  unmet {}: {}", u.rule, u.message))?;
            }
            for r in &refs {
                cx.output.report_line(&r.text_line(false))?;
            }
        }
    }
    if !diagnostics.is_empty() {
        return Err(Error::Invalid { diagnostics });
    }
    match worst {
        0 => Ok(()),
        code => Err(Error::Refs {
            count: refs.iter().filter(|r| r.result != "planned").count(),
            total: refs.len(),
            code,
        }),
    }
}

/// A pull request opened for `plan` or `apply`: the client, the PR as it is now, the head the
/// run is about, and policy from the default branch tip.
pub(crate) struct PrRun {
    pub(crate) gh: GitHub,
    pub(crate) pr: PullRequest,
    pub(crate) event_head: String,
    pub(crate) default_branch: String,
    pub(crate) trusted: Trusted,
    pub(crate) files: Vec<ChangedFile>,
}

pub(crate) async fn open_pr(
    cx: &Context,
    env: &RunEnv,
    event: &Event,
    number: u64,
    config_rel: &Path,
) -> Result<PrRun, Error> {
    let gh = GitHub::new(
        &env.api_url,
        &env.token,
        env.org_token.as_ref(),
        env.repository.clone(),
    )?;
    let pr = gh.pull(number).await?;
    // A comment carries no head SHA: the one fetched now is the one this run approves.
    let event_head = event
        .head_sha
        .clone()
        .unwrap_or_else(|| pr.head_sha.clone());
    let default_branch = gh.default_branch().await?;
    let trusted = load_trusted(cx, env, &gh, Some(&pr), &default_branch, config_rel).await?;
    let files = gh.files(number).await?;
    Ok(PrRun {
        gh,
        pr,
        event_head,
        default_branch,
        trusted,
        files,
    })
}

/// An event that is not a trigger: nothing is read or changed and no comment is written; the
/// log, the outputs and the JSON report say which event and action it was and why it does not
/// count. Exit 0, result `noop`.
pub(crate) fn noop(cx: &Context, command: &'static str, not: &NotATrigger) -> Result<(), Error> {
    let message = format!("{not}; nothing to {command}");
    cx.output.log(&format!("rotor {command}: {message}"));
    gha::write_outputs(&[
        ("rotation-id", String::new()),
        ("result", "noop".to_owned()),
        ("artifact-path", String::new()),
        ("commit-sha", String::new()),
        ("refs", "0".to_owned()),
    ])?;
    match cx.output.format {
        Format::Json => cx.output.json(&serde_json::json!({
            "command": command,
            "rotation_id": null,
            "result": "noop",
            "message": message,
            "artifact_path": null,
            "approval": null,
            "commit_sha": null,
            "refs": [],
            "errors": [],
        }))?,
        Format::Text => cx.output.report_line(&format!("rotor {command}: noop"))?,
    }
    Ok(())
}

/// Policy from the default branch tip, read from git objects.
pub(crate) struct Trusted {
    pub(crate) config: Config,
    pub(crate) renderer: Renderer,
    pub(crate) git: GitRepo,
    pub(crate) base_sha: String,
}

pub(crate) async fn load_trusted(
    cx: &Context,
    env: &RunEnv,
    gh: &GitHub,
    pr: Option<&PullRequest>,
    default_branch: &str,
    config_rel: &Path,
) -> Result<Trusted, Error> {
    let base_sha = gh.branch_sha(default_branch).await?;
    let git = GitRepo::open(&cx.repo, Some(env.token.clone()))?;
    git.ensure_commit(&base_sha, &format!("refs/heads/{default_branch}"))?;
    if let Some(pr) = pr {
        git.ensure_commit(&pr.head_sha, &format!("refs/pull/{}/head", pr.number))?;
    }
    let config_path = config_rel.to_string_lossy().replace('\\', "/");
    let config_display = format!("{config_path} (at {default_branch})");
    let bytes = git
        .read_file(&base_sha, &config_path)?
        .ok_or_else(|| Error::Invalid {
            diagnostics: vec![
                Diagnostic::new(
                    "unreadable_file",
                    &config_path,
                    Pos::START,
                    format!("there is no {config_path} on {default_branch}"),
                )
                .help("policy is read from the default branch only: merge the config there first"),
            ],
        })?;
    let config = config::parse(&config_path, &bytes).map_err(|diagnostics| {
        for d in &diagnostics {
            let _ = cx.output.diagnostic(d);
        }
        cx.output
            .log(&format!("the config {config_display} is invalid"));
        Error::Invalid { diagnostics }
    })?;
    let mut overrides = Vec::new();
    // Only `*.md.j2` files are overrides; a README or anything else there is not rotor's.
    for name in git
        .list_dir(&base_sha, OVERRIDE_DIR)?
        .into_iter()
        .filter(|n| n.ends_with(".md.j2"))
    {
        if let Some(bytes) = git.read_file(&base_sha, &format!("{OVERRIDE_DIR}/{name}"))? {
            overrides.push((name, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    let renderer = Renderer::new(overrides)?;
    Ok(Trusted {
        config,
        renderer,
        git,
        base_sha,
    })
}

/// The request files the PR changes, read from its head SHA, with every problem found and the
/// number of request files (valid or not).
pub(crate) fn load_requests(
    trusted: &Trusted,
    files: &[ChangedFile],
    pr: &PullRequest,
    number: u64,
) -> (Vec<Request>, Vec<Diagnostic>, usize) {
    let dir = &trusted.config.requests_dir;
    let mut requests = Vec::new();
    let mut diagnostics = Vec::new();
    let mut candidates = 0;
    for file in files
        .iter()
        .filter(|f| f.status != "removed" && dir.contains(&f.path))
    {
        let rest = &file.path[dir.as_str().len() + 1..];
        let is_yaml = Path::new(rest)
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        candidates += 1;
        if rest.contains('/') {
            diagnostics.push(
                Diagnostic::new(
                    "misplaced_request",
                    &file.path,
                    Pos::START,
                    "requests live directly in the requests directory",
                )
                .help(format!("move it to {}/", dir.as_str())),
            );
            continue;
        }
        if !rest.ends_with(".yaml") {
            diagnostics.push(
                Diagnostic::new(
                    "wrong_extension",
                    &file.path,
                    Pos::START,
                    "a request file's name is `<rotation-id>.yaml`",
                )
                .help("rename the file so that it ends in `.yaml`"),
            );
            continue;
        }
        let stem = rest.trim_end_matches(".yaml");
        let bytes = match trusted.git.read_file(&pr.head_sha, &file.path) {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) => {
                diagnostics.push(
                    Diagnostic::new("unreadable_file", &file.path, Pos::START, e.to_string())
                        .help("commit the request as a regular file"),
                );
                continue;
            }
        };
        match request::parse(
            &file.path,
            &bytes,
            request::Context {
                stem: Some(stem),
                environments: Some(&trusted.config.environments),
            },
        ) {
            Ok(r) => {
                let shared = preflight::shared_locations(&trusted.config, &r, &file.path, &bytes);
                if let Some(d) = id_reused(trusted, &r, &file.path, &bytes, number) {
                    diagnostics.push(d);
                } else if !shared.is_empty() {
                    diagnostics.extend(shared);
                } else {
                    requests.push(r);
                }
            }
            Err(ds) => diagnostics.extend(ds),
        }
    }
    if requests.len() > 1 {
        let names: Vec<String> = requests.iter().map(|r| r.id.to_string()).collect();
        diagnostics.push(
            Diagnostic::new(
                "multiple_requests",
                dir.as_str(),
                Pos::START,
                format!(
                    "the pull request changes {} requests ({}); one rotation per pull request",
                    names.len(),
                    names.join(", ")
                ),
            )
            .help("open one pull request per rotation, so that each approval covers exactly one"),
        );
    }
    (requests, diagnostics, candidates)
}

/// Ids are never reused: an artifact on the default branch recording another pull request.
fn id_reused(
    trusted: &Trusted,
    r: &Request,
    file: &str,
    text: &[u8],
    number: u64,
) -> Option<Diagnostic> {
    let path = format!("{}/{}.md", trusted.config.artifacts_dir.as_str(), r.id);
    let existing = trusted.git.read_file(&trusted.base_sha, &path).ok()??;
    // An artifact rotor cannot read counts as taken: fail closed.
    let meta = artifact::read_meta(&String::from_utf8_lossy(&existing))
        .ok()
        .flatten();
    if meta.as_ref().and_then(|m| m.pull_request) == Some(number) {
        return None;
    }
    let pos = String::from_utf8_lossy(text)
        .lines()
        .enumerate()
        .find(|(_, l)| l.starts_with("id:"))
        .map_or(Pos::START, |(i, l)| {
            Pos::new(i + 1, l.len() - l["id:".len()..].trim_start().len() + 1)
        });
    Some(
        Diagnostic::new(
            "id_reused",
            file,
            pos,
            format!(
                "rotation id {} is already used by {} ({path})",
                quote(r.id.as_str()),
                meta.and_then(|m| m.pull_request)
                    .map_or("an earlier rotation".to_owned(), |n| format!(
                        "pull request #{n}"
                    ))
            ),
        )
        .help("ids are never reused: choose a new id and rename the file to match"),
    )
}

/// Checks every precondition read-only (the same function `apply` runs) and says what apply
/// would do. Returns the rows, the worst exit code, and a note for the headline.
pub(crate) async fn plan_refs(
    cx: &Context,
    config: &Config,
    request: &Request,
    pull_request: Option<u64>,
) -> (Vec<RefPlan>, u8, Option<String>) {
    // Without the application's token the plan still reads the backends; it says so.
    let app = match AppClient::new(&config.app) {
        Ok(app) => Some(std::sync::Arc::new(app)),
        Err(e) => {
            cx.output
                .warn(&format!("the application was not checked: {e}"));
            None
        }
    };
    let (window_problem, note) = match preflight::window(config, request, Utc::now()) {
        preflight::Window::Open => (None, None),
        preflight::Window::NotYet(text) => (None, Some(text)),
        preflight::Window::Closed(text) => (Some(text), None),
    };
    let checks = preflight::check(
        config,
        request,
        pull_request,
        app,
        &crate::context::backend_environment(),
    )
    .await;
    let mut worst = 0u8;
    let plans = checks
        .into_iter()
        .map(|c| {
            let problem = window_problem.clone().map(|w| (4, w)).or(c.problem);
            if let Some((code, _)) = &problem {
                worst = worst.max(*code);
            }
            RefPlan {
                secret_ref: c.secret_ref,
                backend: c.backend,
                from: c.from,
                to: c.to,
                result: if problem.is_some() {
                    "blocked"
                } else {
                    "planned"
                },
                problem: problem.map(|p| p.1),
            }
        })
        .collect();
    (plans, worst, note)
}

/// Edits rotor's one comment on the PR, or creates it; never a second one.
pub(crate) async fn upsert_comment(gh: &GitHub, number: u64, body: &str) -> Result<(), Error> {
    let me = gh.viewer().await?.id;
    let comments = gh.comments(number).await?;
    match comments.iter().find(|c| c.is_rotors(COMMENT_MARKER, me)) {
        Some(existing) => gh.update_comment(existing.id, body).await?,
        None => {
            gh.create_comment(number, body, COMMENT_MARKER).await?;
            // GitHub has no compare-and-swap for comments: another run may have created one at
            // the same time. Keep the oldest, with this run's text, and delete the others;
            // every run converges on the same one.
            let mut ours: Vec<u64> = gh
                .comments(number)
                .await?
                .iter()
                .filter(|c| c.is_rotors(COMMENT_MARKER, me))
                .map(|c| c.id)
                .collect();
            ours.sort_unstable();
            if let [keep, extra @ ..] = ours.as_slice()
                && !extra.is_empty()
            {
                gh.update_comment(*keep, body).await?;
                for id in extra {
                    gh.delete_comment(*id).await?;
                }
            }
        }
    }
    Ok(())
}
