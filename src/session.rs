//! The pull-request session that `plan` and `apply` share (and `rollback` in part): the run's
//! GitHub environment, the client, the pull request as it is now, policy from the default
//! branch's tip (config and templates, as git objects), the request read from the approved head,
//! the approval gate, "already applied", and the one sticky comment.

use std::path::{Path, PathBuf};

use crate::artifact;
use crate::backend::MarkerState;
use crate::config::{self, Config};
use crate::context::Context;
use crate::diagnostic::{Diagnostic, Pos, quote};
use crate::error::Error;
use crate::gate::{self, Approval, Subject};
use crate::github::event::{Event, NotATrigger};
use crate::github::model::{ChangedFile, PullRequest, Review};
use crate::github::{GitHub, RepoName};
use crate::gitops::GitRepo;
use crate::outcome::RunResult;
use crate::output::github as gha;
use crate::render::{OVERRIDE_DIR, Renderer};
use crate::report::{Link, Links, RunReport, View};
use crate::request::{self, Request};
use crate::secret::SecretString;

/// The hidden marker that identifies rotor's one comment on a pull request.
pub const COMMENT_MARKER: &str = "<!-- rotor:comment -->";

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

    /// A page of this repository on GitHub: `<server>/<owner>/<name>/<rest>`.
    pub(crate) fn repo_url(&self, rest: &str) -> String {
        format!("{}/{}/{rest}", self.server_url, self.repository.full())
    }

    /// The links of a run: its pull request, the run, and the artifact at its commit when the
    /// report names them. The audit query is the caller's, who holds the application's config.
    pub(crate) fn links(&self, pull_request: Option<u64>, report: &RunReport) -> Links {
        let short = |sha: &str| sha.chars().take(7).collect::<String>();
        Links {
            artifact: report
                .commit_sha
                .as_ref()
                .zip(report.artifact_path.as_ref())
                .map(|(sha, path)| Link {
                    text: "artifact".to_owned(),
                    url: self.repo_url(&format!("blob/{sha}/{path}")),
                }),
            commit: report.commit_sha.as_ref().map(|sha| Link {
                text: format!("commit {}", short(sha)),
                url: self.repo_url(&format!("commit/{sha}")),
            }),
            pull_request: pull_request.map(|n| Link {
                text: format!("pull request #{n}"),
                url: self.repo_url(&format!("pull/{n}")),
            }),
            run: self.run_url().map(|url| Link {
                text: "workflow run".to_owned(),
                url,
            }),
            audit_query: None,
        }
    }

    /// The workflow run's page.
    pub(crate) fn run_url(&self) -> Option<String> {
        self.run_id.as_ref().map(|id| {
            format!(
                "{}/{}/actions/runs/{id}",
                self.server_url,
                self.repository.full()
            )
        })
    }

    /// The one GitHub client of the run.
    pub(crate) fn client(&self) -> Result<GitHub, Error> {
        Ok(GitHub::new(
            &self.api_url,
            &self.token,
            self.org_token.as_ref(),
            self.repository.clone(),
        )?)
    }
}

/// Policy from the default branch tip, read from git objects.
pub(crate) struct Trusted {
    pub(crate) config: Config,
    pub(crate) renderer: Renderer,
    pub(crate) git: GitRepo,
    pub(crate) base_sha: String,
}

impl Trusted {
    /// The comment body and the job summary for `view`, rendered.
    pub(crate) fn render(&self, view: &View<'_>) -> Result<(String, String), Error> {
        // The marker is rotor's, not the template's: an override cannot lose it.
        let body = format!(
            "{COMMENT_MARKER}\n{}",
            self.renderer.render("comment.md.j2", view)?
        );
        Ok((body, self.renderer.render("summary.md.j2", view)?))
    }

    /// The versions the record on the default branch's tip says rollbacks rejected.
    pub(crate) fn rejections(&self) -> Result<crate::backend::Rejections, Error> {
        crate::record::ledger::rejections_at(
            &self.git,
            &self.base_sha,
            self.config.artifacts_dir.as_str(),
        )
    }

    /// The artifact's path for `id`.
    pub(crate) fn artifact_path(&self, id: &str) -> String {
        format!("{}/{id}.md", self.config.artifacts_dir.as_str())
    }
}

/// Loads policy (config and template overrides) from the default branch's tip, fetching it, and
/// the pull request's head when given, into the checkout's object store.
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
    let Some(bytes) = git.read_file(&base_sha, &config_path)? else {
        let missing = Diagnostic::new(
            "unreadable_file",
            &config_path,
            Pos::START,
            format!("there is no {config_path} on {default_branch}"),
        )
        .help("policy is read from the default branch only: merge the config there first");
        cx.output.diagnostic(&missing)?;
        return Err(Error::Invalid {
            diagnostics: vec![missing],
        });
    };
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

/// A pull request opened for `plan` or `apply`: the client, the PR as it is now, the head the
/// run is about, policy from the default branch tip, and the files it changes.
pub(crate) struct Session {
    pub(crate) env: RunEnv,
    pub(crate) gh: GitHub,
    pub(crate) number: u64,
    pub(crate) pr: PullRequest,
    pub(crate) event_head: String,
    pub(crate) default_branch: String,
    pub(crate) trusted: Trusted,
    pub(crate) files: Vec<ChangedFile>,
    /// The pull request's reviews, read with it for the gate's first evaluation (a failure is
    /// the gate's, as when the gate read them itself).
    reviews: Result<Vec<Review>, crate::github::GitHubError>,
    /// For `/rotor apply`: the comment's author (who must hold `internal_admin` too).
    pub(crate) comment_author: Option<String>,
    /// For `/rotor break-glass`: the reason, checked, and whether the request's environment
    /// allows it.
    pub(crate) break_glass: Option<Glass>,
}

/// A `/rotor break-glass` comment, its reason checked before any call.
#[derive(Debug, Clone)]
pub(crate) struct Glass {
    /// The reason, as the lines after the command give it.
    pub(crate) reason: String,
    /// When the run began (RFC 3339): when the glass was broken.
    pub(crate) at: String,
    /// Whether the request's environment allows it (`None` until the request is read).
    pub(crate) allowed: Option<bool>,
    /// Who re-ran the job, when not the comment's author.
    pub(crate) rerun_by: Option<String>,
    /// The maintenance window the run began outside of, when it did.
    pub(crate) outside_window: Option<String>,
}

impl Session {
    /// Reads the pull request, the default branch (from the API, never the payload), policy
    /// from its tip, and the changed files.
    pub(crate) async fn open(
        cx: &Context,
        env: RunEnv,
        event: &Event,
        number: u64,
        comment_author: Option<String>,
        config_rel: &Path,
    ) -> Result<Self, Error> {
        let gh = env.client()?;
        // Independent reads, asked together; their errors are reported in this order.
        let (pr, default_branch, files, reviews) = tokio::join!(
            gh.pull(number),
            gh.default_branch(),
            gh.files(number),
            gh.reviews(number)
        );
        let pr = pr?;
        // A comment carries no head SHA: the one fetched now is the one this run approves.
        let event_head = event
            .head_sha
            .clone()
            .unwrap_or_else(|| pr.head_sha.clone());
        let default_branch = default_branch?;
        let trusted = load_trusted(cx, &env, &gh, Some(&pr), &default_branch, config_rel).await?;
        let files = files?;
        Ok(Self {
            env,
            gh,
            number,
            pr,
            event_head,
            default_branch,
            trusted,
            files,
            reviews,
            comment_author,
            break_glass: None,
        })
    }

    /// The request files the pull request changes, read from its head SHA, with every problem
    /// found and the number of request files (valid or not).
    pub(crate) fn requests(&self) -> (Vec<Request>, Vec<Diagnostic>, usize) {
        let trusted = &self.trusted;
        let dir = &trusted.config.requests_dir;
        let mut requests = Vec::new();
        let mut diagnostics = Vec::new();
        let mut candidates = 0;
        for file in self
            .files
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
            let bytes = match trusted.git.read_file(&self.pr.head_sha, &file.path) {
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
                    let shared =
                        crate::preflight::shared_locations(&trusted.config, &r, &file.path, &bytes);
                    if let Some(d) = self.id_reused(&r, &file.path, &bytes) {
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
                .help(
                    "open one pull request per rotation, so that each approval covers exactly one",
                ),
            );
        }
        (requests, diagnostics, candidates)
    }

    /// Ids are never reused: an artifact on the default branch recording another pull request
    /// takes the id. An artifact rotor cannot read takes it too: fail closed.
    fn id_reused(&self, r: &Request, file: &str, text: &[u8]) -> Option<Diagnostic> {
        let trusted = &self.trusted;
        let path = trusted.artifact_path(r.id.as_str());
        let existing = match trusted.git.read_file(&trusted.base_sha, &path) {
            Ok(Some(bytes)) => Some(artifact::read_meta(&String::from_utf8_lossy(&bytes))),
            Ok(None) => return None,
            Err(_) => None,
        };
        let recorded = existing
            .as_ref()
            .and_then(|m| m.as_ref().ok())
            .and_then(|m| m.as_ref())
            .and_then(|m| m.pull_request);
        if recorded == Some(self.number) {
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
                    recorded.map_or("an earlier rotation".to_owned(), |n| format!(
                        "pull request #{n}"
                    ))
                ),
            )
            .help("ids are never reused: choose a new id and rename the file to match"),
        )
    }

    /// The approval gate on the pull request as it was read when the run began.
    pub(crate) async fn gate(&self, request_files: usize) -> Result<Approval, Error> {
        let approval = gate::check(
            &self.gh,
            &self.trusted.config,
            self.subject(&self.pr, &self.files, request_files),
            self.reviews.clone()?,
        )
        .await?;
        Ok(self.glass(approval, &self.pr))
    }

    /// A break-glass decision that holds records who broke the glass, why and when.
    fn glass(&self, mut approval: Approval, pr: &PullRequest) -> Approval {
        if let (Some(glass), true) = (&self.break_glass, approval.decision.approved) {
            approval.decision.break_glass = Some(crate::policy::BreakGlass {
                by: pr.author.clone().unwrap_or_default(),
                reason: glass.reason.clone(),
                at: glass.at.clone(),
            });
        }
        approval
    }

    /// The gate again, in full, against the API as it is now: a dismissal, a request for
    /// changes, a close, a draft or a new head since the first evaluation is seen here.
    pub(crate) async fn gate_again(
        &self,
        request_files: usize,
    ) -> Result<(PullRequest, Approval), Error> {
        let (pr, files, reviews) = tokio::join!(
            self.gh.pull(self.number),
            self.gh.files(self.number),
            self.gh.reviews(self.number)
        );
        let (pr, files, reviews) = (pr?, files?, reviews?);
        let approval = gate::check(
            &self.gh,
            &self.trusted.config,
            self.subject(&pr, &files, request_files),
            reviews,
        )
        .await?;
        let approval = self.glass(approval, &pr);
        Ok((pr, approval))
    }

    fn subject<'a>(
        &'a self,
        pr: &'a PullRequest,
        files: &'a [ChangedFile],
        request_files: usize,
    ) -> Subject<'a> {
        Subject {
            pr,
            files,
            request_files,
            default_branch: &self.default_branch,
            event_head_sha: &self.event_head,
            trigger: self.comment_author.as_ref().map(|a| Some(a.as_str())),
            break_glass: self.break_glass.as_ref().map(|g| crate::policy::GlassAsk {
                allowed: g.allowed,
                rerun_by: g.rerun_by.as_deref(),
            }),
        }
    }

    /// A view for the comment and the summary, with this session's facts.
    pub(crate) fn view<'a>(
        &'a self,
        command: &'static str,
        headline: &'a str,
        request: Option<&'a Request>,
        report: &'a RunReport,
    ) -> View<'a> {
        View {
            rotation_id: request
                .map(|r| r.id.as_str())
                .or(report.rotation_id.as_deref()),
            environment: request.map(|r| r.environment.as_str()),
            requester: self.pr.author.as_deref(),
            reason: request.map(|r| r.reason.as_str()),
            links: self.env.links(Some(self.number), report),
            break_glass: self.break_glass.is_some(),
            ..View::new(command, headline, report)
        }
    }

    /// Posts the sticky comment and appends the job summary for `view`.
    pub(crate) async fn publish(&self, view: &View<'_>) -> Result<(), Error> {
        let (body, summary) = self.trusted.render(view)?;
        upsert_comment(&self.gh, self.number, &body, Part::Main).await?;
        gha::append_summary(&summary)?;
        Ok(())
    }

    /// Whether `request` is already applied: a final artifact on the commit target, recording
    /// this pull request, whose every ref's marker (same rotation id, same pull request, the
    /// final state the artifact records, the same from and to) and pointer agree with it.
    /// Anyone who can push to the branch can write a file; only the backends, which rotor alone
    /// writes to, can confirm it.
    pub(crate) async fn already_applied(
        &self,
        request: &Request,
        target_branch: &str,
    ) -> Result<Applied, Error> {
        let trusted = &self.trusted;
        let path = trusted.artifact_path(request.id.as_str());
        let tip = trusted.git.fetch_branch(target_branch)?;
        let existing = match trusted.git.read_file(&tip, &path) {
            Ok(Some(existing)) => existing,
            Ok(None) => return Ok(Applied::No),
            Err(e) => {
                return Ok(Applied::contradicted(
                    path,
                    format!("the artifact cannot be read: {e}"),
                ));
            }
        };
        let meta = match artifact::read_meta(&String::from_utf8_lossy(&existing)) {
            Ok(Some(meta)) if meta.result.is_some() => meta,
            Ok(_) => return Ok(Applied::No),
            Err(e) => {
                return Ok(Applied::contradicted(
                    path,
                    format!("the artifact is not rotor's: {e}"),
                ));
            }
        };
        let number = self.number;
        if meta.rotation_id != request.id.as_str() || meta.pull_request != Some(number) {
            let what = format!(
                "the artifact records rotation {} of {}, not {} of pull request #{number}",
                meta.rotation_id,
                meta.pull_request
                    .map_or("no pull request".to_owned(), |n| format!(
                        "pull request #{n}"
                    )),
                request.id
            );
            return Ok(Applied::contradicted(path, what));
        }
        let mut wanted: Vec<&str> = request.refs.iter().map(|r| r.secret_ref.as_str()).collect();
        let mut recorded: Vec<&str> = meta.refs.iter().map(|r| r.secret_ref.as_str()).collect();
        wanted.sort_unstable();
        recorded.sort_unstable();
        if wanted != recorded {
            let what = "the artifact records other refs than the request".to_owned();
            return Ok(Applied::contradicted(path, what));
        }
        let env = crate::context::backend_environment();
        let mut backends = crate::backend::Backends::default();
        let mut problems = Vec::new();
        for entry in &request.refs {
            let Some(record) = meta
                .refs
                .iter()
                .find(|r| r.secret_ref == entry.secret_ref.as_str())
            else {
                continue;
            };
            let secret = backends
                .resolve(&trusted.config, &entry.secret_ref, &env)
                .await?;
            let state = secret.read().await?;
            if let Some(p) = disagreement(record, &state, request.id.as_str(), number) {
                problems.push((record.secret_ref.clone(), p));
            }
        }
        Ok(if problems.is_empty() {
            Applied::Yes {
                path,
                tip,
                meta: Box::new(meta),
            }
        } else {
            Applied::Contradicted { path, problems }
        })
    }
}

/// What in a ref's backend state contradicts its record in an artifact, if anything.
fn disagreement(
    record: &artifact::MetaRef,
    state: &crate::backend::RefState,
    id: &str,
    number: u64,
) -> Option<String> {
    if record.result == "skipped" {
        // A halted rollout never started it: no marker of this rotation, the pointer where the
        // record found it, unless a later rotation (`rotor new --rest-of`) has since moved it.
        if state
            .marker
            .as_ref()
            .is_some_and(|m| m.is_of(id, Some(number)))
        {
            return Some(
                "the artifact records it skipped, but the backend carries this rotation's marker"
                    .to_owned(),
            );
        }
        if state
            .marker
            .as_ref()
            .is_some_and(|m| m.rotation_id != id && m.state != MarkerState::Pending)
        {
            return None;
        }
        let current = state.current.as_ref().map(|c| c.as_str());
        if current != Some(record.from.as_str()) {
            return Some(format!(
                "the artifact records it skipped on {}, but the pointer designates {}",
                record.from,
                current.unwrap_or("nothing")
            ));
        }
        return None;
    }
    let expected_pointer = record.pointer.clone().unwrap_or_else(|| {
        if matches!(record.result.as_str(), "success" | "failed") {
            record.to.clone()
        } else {
            record.from.clone()
        }
    });
    let Some(m) = state.marker.as_ref() else {
        return Some("the backend carries no rotor marker".to_owned());
    };
    if !m.is_of(id, Some(number)) {
        return Some(format!(
            "the backend's marker is rotation {} of {}",
            m.rotation_id,
            m.pull_request
                .map_or("no pull request".to_owned(), |n| format!(
                    "pull request #{n}"
                ))
        ));
    }
    let marked = match m.state {
        MarkerState::Pending => return Some("the backend's marker is still pending".to_owned()),
        MarkerState::Done => "success",
        MarkerState::RolledBack => "rolled_back",
        MarkerState::Failed => "failed",
    };
    // A rollback that landed and whose own checks then failed: the pointer is back on
    // `from`, the marker says rolled_back, the record says failed. That is rotor's own record.
    let back_but_failed = record.result == "failed"
        && m.state == MarkerState::RolledBack
        && state.current.as_ref().map(|v| v.as_str()) == Some(record.from.as_str());
    if marked != record.result && !back_but_failed {
        return Some(format!(
            "the artifact records {} but the backend's marker says {}",
            record.result, m.state
        ));
    }
    let moved = (
        m.from.as_ref().map(|v| v.as_str()),
        m.to.as_ref().map(|v| v.as_str()),
    );
    if moved != (Some(record.from.as_str()), Some(record.to.as_str())) {
        return Some(format!(
            "the artifact records {} → {} but the backend's marker records {} → {}",
            record.from,
            record.to,
            moved.0.unwrap_or("nothing"),
            moved.1.unwrap_or("nothing")
        ));
    }
    let current = state.current.as_ref().map(|c| c.as_str());
    if current != Some(expected_pointer.as_str()) {
        return Some(format!(
            "the pointer designates {} where the artifact records {expected_pointer}",
            current.unwrap_or("nothing")
        ));
    }
    None
}

/// What the commit target says about this rotation.
pub(crate) enum Applied {
    /// No final artifact of this rotation there.
    No,
    /// A final artifact, and every ref's marker agrees with it.
    Yes {
        /// The artifact's path.
        path: String,
        /// The target's tip.
        tip: String,
        /// What the artifact records.
        meta: Box<artifact::ArtifactMeta>,
    },
    /// A final artifact the backends contradict, with each disagreement.
    Contradicted {
        /// The artifact's path.
        path: String,
        /// Each ref and what disagrees.
        problems: Vec<(String, String)>,
    },
}

impl Applied {
    fn contradicted(path: String, what: String) -> Self {
        Self::Contradicted {
            path,
            problems: vec![("*".to_owned(), what)],
        }
    }
}

/// An event that is not a trigger: nothing is read or changed and no comment is written; the
/// log, the outputs and the JSON report say which event and action it was and why it does not
/// count. Exit 0, result `noop`.
pub(crate) fn noop(cx: &Context, command: &'static str, not: &NotATrigger) -> Result<(), Error> {
    let message = format!("{not}; nothing to {command}");
    cx.output.log(&format!("rotor {command}: {message}"));
    let mut report = RunReport::new(command, RunResult::Noop);
    report.message = Some(message);
    report.emit(&cx.output)
}

/// Where a dispatched rollback's section starts in the sticky comment.
pub const ROLLBACK_MARKER: &str = "<!-- rotor:rollback -->";

/// Which part of the sticky comment a run writes: `plan` and `apply` the main part, a
/// dispatched rollback its own section below it. Each keeps the other's part as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The rotation's own report.
    Main,
    /// The rollback section.
    Rollback,
}

impl Part {
    /// The comment's new body: `body` in this part's place, the other part of `existing` kept.
    fn merge(self, existing: &str, body: &str) -> String {
        let (main, rollback) = match existing.split_once(ROLLBACK_MARKER) {
            Some((main, rollback)) => (main.trim_end(), Some(rollback)),
            None => (existing.trim_end(), None),
        };
        match self {
            Self::Main => match rollback {
                Some(section) => format!("{}\n\n{ROLLBACK_MARKER}{section}", body.trim_end()),
                None => body.to_owned(),
            },
            Self::Rollback => {
                let main = if main.is_empty() {
                    COMMENT_MARKER
                } else {
                    main
                };
                let section = body
                    .strip_prefix(COMMENT_MARKER)
                    .unwrap_or(body)
                    .trim_start();
                format!("{main}\n\n{ROLLBACK_MARKER}\n{section}")
            }
        }
    }
}

/// Edits rotor's one comment on the PR, or creates it; never a second one. rotor's comment is
/// the one its own identity wrote that carries the marker.
pub(crate) async fn upsert_comment(
    gh: &GitHub,
    number: u64,
    body: &str,
    part: Part,
) -> Result<(), Error> {
    // rotor's identity is read beside the comments (and kept): `own_id` then asks nothing.
    let (comments, _) = tokio::join!(gh.comments(number), gh.viewer());
    let comments = comments?;
    let me = gh.own_id(&comments, COMMENT_MARKER).await;
    let ours =
        |c: &crate::github::model::Comment| me.is_some_and(|me| c.is_rotors(COMMENT_MARKER, me));
    match comments.iter().find(|c| ours(c)) {
        Some(existing) => {
            gh.update_comment(existing.id, &part.merge(&existing.body, body))
                .await?;
        }
        None => {
            let body = part.merge("", body);
            let body = body.as_str();
            let created = gh.create_comment(number, body, COMMENT_MARKER).await?;
            // Without `viewer`, the comment just written says who rotor is.
            let me = me.or(created.user_id).unwrap_or_default();
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
