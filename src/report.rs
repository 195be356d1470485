//! One report model: a ref's outcome becomes the [`RefReport`] every view shows (the sticky
//! comment, the job summary, the JSON report, the text report and the artifact's table), each
//! through one conversion; a run becomes one [`RunReport`].

use chrono::Utc;
use serde::Serialize;

use crate::artifact::{ApprovalRecord, Artifact, RefRecord, TimelineEntry};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::outcome::{Check, RefFailure, RefOutcome, RefResult, RunResult};
use crate::output::{Format, Output, github as gha};
use crate::policy::Decision;

/// A problem in the report: `{code, message}`, with the file position when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// A stable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
    /// The file, for input problems.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// Its column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What to do next, for the comment and the summary.
    #[serde(skip)]
    pub next_step: Option<&'static str>,
}

impl ErrorReport {
    /// A problem with no file position and no next step.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            file: None,
            line: None,
            column: None,
            next_step: None,
        }
    }

    /// The same, with what to do next.
    #[must_use]
    pub fn with_next_step(mut self, step: &'static str) -> Self {
        self.next_step = Some(step);
        self
    }
}

impl From<&Diagnostic> for ErrorReport {
    fn from(d: &Diagnostic) -> Self {
        Self {
            code: d.code,
            message: d.message.clone(),
            file: Some(d.file.clone()),
            line: Some(d.line),
            column: Some(d.column),
            next_step: None,
        }
    }
}

impl From<&RefFailure> for ErrorReport {
    fn from(f: &RefFailure) -> Self {
        Self::new(f.code(), f.to_string()).with_next_step(f.next_step())
    }
}

/// Something the reader should know although it does not block: `{code, ref, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A stable code, e.g. `rejected_version`.
    pub code: &'static str,
    /// The ref concerned.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// What to know.
    pub message: String,
}

/// One ref as every view shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefReport {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// `vault`, `aws-secrets-manager`, or `-` when no backend was reached.
    pub backend: &'static str,
    /// The version the pointer moved (or would move) from.
    pub from: Option<String>,
    /// The version it moved (or would move) to.
    pub to: Option<String>,
    /// The result.
    pub result: RefResult,
    /// The checks that ran.
    pub checks: Vec<Check>,
    /// The confirmed audit event ids.
    pub audit_event_ids: Vec<String>,
    /// Why it did not succeed.
    pub error: Option<ErrorReport>,
    /// Why a skipped ref was skipped (`halted`, `window_closed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl From<&RefOutcome> for RefReport {
    fn from(o: &RefOutcome) -> Self {
        Self {
            reason: o.skipped,
            secret_ref: o.secret_ref.clone(),
            backend: o.backend,
            from: o.from.clone(),
            to: o.to.clone(),
            result: o.result,
            checks: o.checks.clone(),
            audit_event_ids: o.audit_event_ids.clone(),
            error: o.failure.as_ref().map(ErrorReport::from),
        }
    }
}

impl RefReport {
    /// The ref's line in the text report: `  REF (BACKEND): A -> B: RESULT (REASON)`, where
    /// A -> B is from -> to, or to -> from for a move back.
    pub fn text_line(&self, moving_back: bool) -> String {
        let (from, to) = (
            self.from.as_deref().unwrap_or("-"),
            self.to.as_deref().unwrap_or("-"),
        );
        let (a, b) = if moving_back { (to, from) } else { (from, to) };
        let reason = self
            .error
            .as_ref()
            .map(|e| format!(" ({})", e.message))
            .unwrap_or_default();
        format!(
            "  {} ({}): {a} -> {b}: {}{reason}",
            self.secret_ref, self.backend, self.result
        )
    }

    /// A ref as an artifact records it (a re-run's `noop` shows what the run that did the
    /// work did).
    pub fn recorded(m: &crate::artifact::MetaRef) -> Self {
        let result = match m.result.as_str() {
            "success" => RefResult::Success,
            "rolled_back" => RefResult::RolledBack,
            "not_started" => RefResult::NotStarted,
            "skipped" => RefResult::Skipped,
            _ => RefResult::Failed,
        };
        Self {
            secret_ref: m.secret_ref.clone(),
            backend: match m.backend.as_str() {
                "vault" => "vault",
                "aws-secrets-manager" => "aws-secrets-manager",
                _ => "-",
            },
            from: Some(m.from.clone()).filter(|v| !v.is_empty()),
            to: Some(m.to.clone()).filter(|v| !v.is_empty()),
            result,
            checks: Vec::new(),
            audit_event_ids: m.audit_events.iter().map(|e| e.id.clone()).collect(),
            error: None,
            reason: match m.reason.as_deref() {
                Some("halted") => Some("halted"),
                Some("window_closed") => Some("window_closed"),
                _ => None,
            },
        }
    }

    /// The artifact's record of this ref, with where the pointer was left.
    pub fn record(&self, pointer: Option<String>) -> RefRecord {
        RefRecord {
            secret_ref: self.secret_ref.clone(),
            provider: self
                .secret_ref
                .split('.')
                .nth(2)
                .unwrap_or_default()
                .to_owned(),
            backend: self.backend.to_owned(),
            from: self.from.clone().unwrap_or_default(),
            to: self.to.clone().unwrap_or_default(),
            result: self.result.as_str().to_owned(),
            checks: crate::outcome::summarise(&self.checks),
            audit_event_ids: self.audit_event_ids.clone(),
            rollback_event_ids: Vec::new(),
            pointer,
            reason: self.reason.map(str::to_owned),
        }
    }
}

/// A run's report: the JSON object of `--format json`, the text report, and the step outputs.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The command.
    pub command: &'static str,
    /// The rotation.
    pub rotation_id: Option<String>,
    /// The result.
    pub result: RunResult,
    /// What a `noop` saw and why it did nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The artifact's path.
    pub artifact_path: Option<String>,
    /// The approval decision (`plan`, `apply`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<Decision>,
    /// The commit holding the artifact.
    pub commit_sha: Option<String>,
    /// A rollback's dispatcher.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Whether a rollback was forced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced: Option<bool>,
    /// Each ref.
    pub refs: Vec<RefReport>,
    /// Every problem: invalid input, and each ref's failure.
    pub errors: Vec<ErrorReport>,
    /// What the reader should know although it does not block.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Lines of the text report before the refs (the headline, unmet rules).
    #[serde(skip)]
    pub text: Vec<String>,
    /// Whether the refs moved back (a rollback): the text shows to -> from.
    #[serde(skip)]
    pub moving_back: bool,
    /// How many refs the request has, for the `refs` output.
    #[serde(skip)]
    pub ref_count: usize,
    /// The rollout in waves (`apply`, `plan`): present even without one (`waves: 1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<crate::outcome::RolloutSummary>,
}

impl RunReport {
    /// A report of `command` with `result` and nothing else yet.
    pub fn new(command: &'static str, result: RunResult) -> Self {
        Self {
            command,
            rotation_id: None,
            result,
            message: None,
            artifact_path: None,
            approval: None,
            commit_sha: None,
            operator: None,
            forced: None,
            refs: Vec::new(),
            errors: Vec::new(),
            warnings: Vec::new(),
            text: vec![format!("rotor {command}: {}", result.as_str())],
            moving_back: false,
            ref_count: 0,
            rollout: None,
        }
    }

    /// Sets the refs, and adds each ref's failure to `errors` (`<ref>: <reason>`).
    pub fn with_refs(mut self, refs: Vec<RefReport>) -> Self {
        for r in &refs {
            if let Some(e) = &r.error {
                self.errors.push(ErrorReport {
                    message: format!("{}: {}", r.secret_ref, e.message),
                    ..e.clone()
                });
            }
        }
        self.ref_count = self.ref_count.max(refs.len());
        self.refs = refs;
        self
    }

    /// Prints the report (one JSON object, or the text lines) and writes the step outputs.
    pub fn emit(&self, output: &Output) -> Result<(), Error> {
        gha::write_outputs(&[
            ("rotation-id", self.rotation_id.clone().unwrap_or_default()),
            ("result", self.result.as_str().to_owned()),
            (
                "artifact-path",
                self.artifact_path.clone().unwrap_or_default(),
            ),
            ("commit-sha", self.commit_sha.clone().unwrap_or_default()),
            ("refs", self.ref_count.max(self.refs.len()).to_string()),
        ])?;
        match output.format {
            Format::Json => output.json(self)?,
            Format::Text => {
                for line in &self.text {
                    output.report_line(line)?;
                }
                for w in &self.warnings {
                    output.report_line(&format!(
                        "  warning {}: {}: {}",
                        w.code, w.secret_ref, w.message
                    ))?;
                }
                for r in &self.refs {
                    output.report_line(&r.text_line(self.moving_back))?;
                }
            }
        }
        Ok(())
    }
}

/// Rows a table shows before it folds into `<details>`.
pub const FOLD_AFTER: usize = 20;

/// Rows of each table in the comment: GitHub refuses a comment over 65,536 characters. The job
/// summary has every row.
pub const COMMENT_ROWS: usize = 150;

/// A link the views show: its text and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// What the reader sees, e.g. a short SHA or `#7`.
    pub text: String,
    /// Where it goes.
    pub url: String,
}

/// The links of a run, each when it exists. Templates see each by name and, as `all`, those
/// that exist in this order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// The artifact, at the commit that holds it.
    pub artifact: Option<Link>,
    /// The commit that holds the artifact.
    pub commit: Option<Link>,
    /// The rotation's pull request.
    pub pull_request: Option<Link>,
    /// The workflow run.
    pub run: Option<Link>,
    /// The application's audit log, filtered to the rotation's action.
    pub audit_query: Option<Link>,
}

impl Links {
    /// The links that exist, in the order the views show them.
    pub fn all(&self) -> Vec<&Link> {
        [
            &self.artifact,
            &self.commit,
            &self.pull_request,
            &self.run,
            &self.audit_query,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl Serialize for Links {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut s = serializer.serialize_struct("Links", 6)?;
        s.serialize_field("artifact", &self.artifact)?;
        s.serialize_field("commit", &self.commit)?;
        s.serialize_field("pull_request", &self.pull_request)?;
        s.serialize_field("run", &self.run)?;
        s.serialize_field("audit_query", &self.audit_query)?;
        s.serialize_field("all", &self.all())?;
        s.end()
    }
}

/// One ref as the comment and the summary show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    /// The ref.
    #[serde(rename = "ref")]
    pub secret_ref: String,
    /// The backend.
    pub backend: &'static str,
    /// Where the pointer moved from, as the move happened (a rollback moves from the
    /// rotation's `to`).
    pub from: String,
    /// Where it moved to, as the move happened.
    pub to: String,
    /// The result, in the contract's words.
    pub result: RefResult,
    /// Why it did not succeed: the failing check and what it saw.
    pub reason: Option<String>,
    /// What to do next.
    pub next_step: Option<&'static str>,
    /// The checks, in one line.
    pub checks: String,
    /// The confirmed audit event ids, comma-separated.
    pub audit_event_ids: String,
}

impl Row {
    fn of(r: &RefReport, moving_back: bool) -> Self {
        let (from, to) = (
            r.from.clone().unwrap_or_else(|| "-".to_owned()),
            r.to.clone().unwrap_or_else(|| "-".to_owned()),
        );
        let (from, to) = if moving_back { (to, from) } else { (from, to) };
        Self {
            secret_ref: r.secret_ref.clone(),
            backend: r.backend,
            from,
            to,
            result: r.result,
            reason: r.error.as_ref().map(|e| e.message.clone()).or_else(|| {
                r.reason.map(|why| match why {
                    "window_closed" => "the maintenance window closed before its wave".to_owned(),
                    _ => "the rollout halted before its wave".to_owned(),
                })
            }),
            next_step: r.error.as_ref().and_then(|e| e.next_step).or_else(|| {
                r.reason
                    .map(|_| "rotate it with a new request: `rotor new <id> --rest-of <this id>`")
            }),
            checks: crate::outcome::summarise(&r.checks),
            audit_event_ids: r.audit_event_ids.join(", "),
        }
    }

    /// Whether the row needs the reader: it did not end as hoped. For a dispatched rollback,
    /// `rolled_back` is the hoped-for end.
    fn needs_attention(&self, moving_back: bool) -> bool {
        match self.result {
            RefResult::Success | RefResult::Planned => false,
            RefResult::RolledBack => !moving_back,
            RefResult::Failed | RefResult::NotStarted | RefResult::Skipped => true,
        }
    }
}

/// A problem as the comment and the summary show it: the report's, with what to do next.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The problem as the JSON report has it.
    #[serde(flatten)]
    pub error: ErrorReport,
    /// What to do next.
    pub next_step: Option<&'static str>,
}

/// What the comment and summary templates see. Built by [`View::new`] from a run's report, so
/// that every view orders, counts and folds its rows the same way.
#[derive(Debug, Clone, Serialize)]
pub struct View<'a> {
    /// The command.
    pub command: &'static str,
    /// The headline.
    pub headline: &'a str,
    /// The line of counts: `500 refs: 497 success, 2 rolled back, 1 failed` (empty without
    /// refs).
    pub counts: String,
    /// The rotation.
    pub rotation_id: Option<&'a str>,
    /// The request's environment.
    pub environment: Option<&'a str>,
    /// The requester (`plan`, `apply`).
    pub requester: Option<&'a str>,
    /// Who dispatched the rollback (`rollback`).
    pub dispatcher: Option<&'a str>,
    /// The request's (or the rollback's) reason.
    pub reason: Option<&'a str>,
    /// The approval decision.
    pub approval: Option<&'a Decision>,
    /// The rollout in waves, in words, when there is more than one wave.
    pub rollout: Option<String>,
    /// The rows that need the reader, first: each with its reason and next step.
    pub attention: Vec<Row>,
    /// The other rows, in the request's order.
    pub others: Vec<Row>,
    /// The counts of `others`, e.g. `27 success`.
    pub others_counts: String,
    /// Every row (`attention`, then `others`).
    pub refs: Vec<Row>,
    /// Rows a table shows before it folds into `<details>`.
    pub fold_after: usize,
    /// Rows of each table the comment shows.
    pub comment_rows: usize,
    /// Problems that are not one ref's: invalid input, a refused push.
    pub errors: Vec<Problem>,
    /// The warnings.
    pub warnings: &'a [Warning],
    /// The links.
    pub links: Links,
    /// Whether the rows moved back (a rollback): the table shows the move as it happened.
    pub moving_back: bool,
    /// Whether the run was asked by `/rotor break-glass`: its first line says so.
    pub break_glass: bool,
    /// rotor's version.
    pub version: &'static str,
}

impl<'a> View<'a> {
    /// The view of `report` under `headline`; the caller adds who, why and the links.
    pub fn new(command: &'static str, headline: &'a str, report: &'a RunReport) -> Self {
        let moving_back = report.moving_back;
        let rows: Vec<Row> = report
            .refs
            .iter()
            .map(|r| Row::of(r, moving_back))
            .collect();
        let (attention, others): (Vec<Row>, Vec<Row>) = rows
            .into_iter()
            .partition(|r| r.needs_attention(moving_back));
        let counts = if report.refs.is_empty() {
            String::new()
        } else {
            crate::progress::Counts::of(report.refs.iter().map(|r| r.result)).headline()
        };
        // Each ref's failure is on its row; the list of problems keeps the rest.
        let errors = report
            .errors
            .iter()
            .filter(|e| {
                !report.refs.iter().any(|r| {
                    r.error
                        .as_ref()
                        .is_some_and(|re| e.message == format!("{}: {}", r.secret_ref, re.message))
                })
            })
            .map(|e| Problem {
                error: e.clone(),
                next_step: e.next_step,
            })
            .collect();
        Self {
            command,
            headline,
            counts,
            rotation_id: report.rotation_id.as_deref(),
            environment: None,
            requester: None,
            dispatcher: None,
            reason: None,
            approval: report.approval.as_ref(),
            rollout: report.rollout.as_ref().and_then(rollout_words),
            refs: attention.iter().chain(&others).cloned().collect(),
            others_counts: crate::progress::Counts::of(others.iter().map(|r| r.result)).words(),
            attention,
            others,
            fold_after: FOLD_AFTER,
            comment_rows: COMMENT_ROWS,
            errors,
            warnings: &report.warnings,
            links: Links::default(),
            moving_back,
            break_glass: false,
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A rollout of more than one wave, in words: `10 waves (5, 4, 4, …); budget max_failures: 2%;
/// pause 0s` for a plan, `3 of 10 waves; halted after wave 3 …` for a run.
fn rollout_words(r: &crate::outcome::RolloutSummary) -> Option<String> {
    if r.waves < 2 {
        return None;
    }
    let budget = r.budget.as_ref().map_or_else(
        || "no budget".to_owned(),
        |b| format!("budget max_failures: {b}"),
    );
    if let Some(sizes) = &r.sizes {
        let mut shown: Vec<String> = sizes.iter().take(4).map(ToString::to_string).collect();
        if sizes.len() > 4 {
            shown.push("…".to_owned());
        }
        return Some(format!(
            "{} waves ({}); {budget}; pause {}",
            r.waves,
            shown.join(", "),
            r.pause.as_deref().unwrap_or("0s")
        ));
    }
    Some(match (&r.reason, r.halted) {
        (Some(why), true) => format!("{} of {} waves; halted {why}", r.completed, r.waves),
        (Some(why), false) => format!("{} of {} waves; {why}", r.completed, r.waves),
        (None, _) => format!("{} of {} waves; {budget}", r.completed, r.waves),
    })
}

/// What a rotation's artifact is built from, besides its refs.
#[derive(Debug, Clone)]
pub struct ArtifactFacts<'a> {
    /// The rotation id.
    pub rotation_id: &'a str,
    /// The requester.
    pub operator: &'a str,
    /// The pull request's number and page.
    pub pull_request: (u64, &'a str),
    /// The approvals that counted.
    pub approvals: Vec<ApprovalRecord>,
    /// The workflow run's page.
    pub run_url: Option<String>,
    /// The audit query link.
    pub audit_query: String,
    /// The application's clock minus the runner's, in seconds, as the run measured it.
    pub app_clock_offset_s: Option<i64>,
    /// When each cited audit event was created, by the runner's clock.
    pub event_times: std::collections::HashMap<String, chrono::DateTime<Utc>>,
    /// A rollout in waves that halted: its summary, saying after which wave and why.
    pub halted: Option<crate::outcome::RolloutSummary>,
    /// A break-glass rotation: who, why, when.
    pub break_glass: Option<crate::artifact::MetaBreakGlass>,
}

/// When a record begins: its first step's start, or an audit event it cites that is older (an
/// earlier run of the rotation began before this one).
pub fn started_at(
    outcomes: &[RefOutcome],
    event_times: &std::collections::HashMap<String, chrono::DateTime<Utc>>,
) -> Option<String> {
    let steps = outcomes.iter().flat_map(|o| &o.steps).filter_map(|s| {
        chrono::DateTime::parse_from_rfc3339(&s.at)
            .ok()
            .map(|t| t.with_timezone(&Utc) - chrono::Duration::from_std(s.took).unwrap_or_default())
    });
    steps
        .chain(event_times.values().copied())
        .min()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The artifact of a rotation whose refs ended as `outcomes`.
pub fn artifact(facts: &ArtifactFacts<'_>, outcomes: &[RefOutcome], result: RunResult) -> Artifact {
    let refs = outcomes
        .iter()
        .map(|o| RefRecord {
            rollback_event_ids: o.rollback_event_ids.clone(),
            ..RefReport::from(o).record(o.pointer.clone())
        })
        .collect();
    let mut timeline: Vec<TimelineEntry> = outcomes
        .iter()
        .flat_map(|o| {
            o.steps.iter().map(move |s| TimelineEntry {
                at: s.at.clone(),
                event: s.what.clone(),
                secret_ref: Some(o.secret_ref.clone()),
            })
        })
        .collect();
    timeline.sort_by(|a, b| a.at.cmp(&b.at));
    let (number, url) = facts.pull_request;
    Artifact {
        rotation_id: facts.rotation_id.to_owned(),
        date: Utc::now().format("%Y-%m-%d").to_string(),
        operator: facts.operator.to_owned(),
        result: result.as_str().to_owned(),
        refs,
        approvals: facts.approvals.clone(),
        pull_request: Some(number),
        pull_request_url: Some(url.to_owned()).filter(|u| !u.is_empty()),
        run_url: facts.run_url.clone(),
        timeline,
        audit_query: facts.audit_query.clone(),
        rollback: None,
        finished_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        started_at: started_at(outcomes, &facts.event_times),
        app_clock_offset_s: facts.app_clock_offset_s,
        halted: facts.halted.clone(),
        break_glass: facts.break_glass.clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Every view a person reads, rendered by the built-in templates and snapshotted: plan
    //! (waiting, approved, refused), apply (success, a mixed batch, rolled back, failed,
    //! already applied), a dispatched rollback, and the JSON report of a batch.

    use super::*;
    use crate::outcome::RefFailure;
    use crate::policy::Unmet;
    use crate::render::Renderer;

    fn row(i: usize, result: RefResult, failure: Option<RefFailure>) -> RefReport {
        let ok = |name: &str, detail: &str| Check {
            name: name.to_owned(),
            ok: true,
            detail: detail.to_owned(),
        };
        let checks = match result {
            RefResult::Success => vec![
                ok("resolve", "resolve returned 4"),
                ok("site-001 health", "ok"),
            ],
            RefResult::RolledBack => vec![
                ok("resolve", "resolve returned 4"),
                Check {
                    name: "site-002 health".to_owned(),
                    ok: false,
                    detail: "status 503".to_owned(),
                },
                ok("rollback resolve", "resolve returned 3"),
            ],
            _ => Vec::new(),
        };
        let audit = match result {
            RefResult::Success | RefResult::RolledBack => vec![format!("evt_{i:06}")],
            _ => Vec::new(),
        };
        RefReport {
            secret_ref: format!("tenant.t{i:03}.supabase.service_role"),
            backend: "vault",
            from: Some("3".to_owned()),
            to: Some("4".to_owned()),
            result,
            checks,
            audit_event_ids: audit,
            error: failure.as_ref().map(ErrorReport::from),
            reason: None,
        }
    }

    fn approved() -> Decision {
        Decision {
            approved: true,
            approvers: vec!["bob".to_owned()],
            unmet: Vec::new(),
            break_glass: None,
        }
    }

    fn links(commit: bool) -> Links {
        let link = |text: &str, url: &str| {
            Some(Link {
                text: text.to_owned(),
                url: url.to_owned(),
            })
        };
        let sha = "4f2c9a1e0b7d3c5a6e8f9012345678901234abcd";
        Links {
            artifact: commit
                .then(|| Link {
                    text: "artifact".to_owned(),
                    url: format!("https://github.com/acme/tenants/blob/{sha}/docs/security/rotations/2026-11-25-acme.md"),
                }),
            commit: commit.then(|| Link {
                text: "commit 4f2c9a1".to_owned(),
                url: format!("https://github.com/acme/tenants/commit/{sha}"),
            }),
            pull_request: link("pull request #7", "https://github.com/acme/tenants/pull/7"),
            run: link("workflow run", "https://github.com/acme/tenants/actions/runs/4242"),
            audit_query: commit
                .then(|| Link {
                    text: "audit query".to_owned(),
                    url: "https://app.example/api/v1/audit/events?action=secret_ref_upserted&limit=100".to_owned(),
                }),
        }
    }

    /// The comment and the summary of `report`, as a rotation of alice's would show them.
    fn render(command: &'static str, headline: &str, report: &RunReport, commit: bool) -> String {
        let view = View {
            rotation_id: Some("2026-11-25-acme"),
            environment: (command != "rollback").then_some("production"),
            requester: (command != "rollback").then_some("alice"),
            dispatcher: (command == "rollback").then_some("carol"),
            reason: Some(if command == "rollback" {
                "site-002 rejects the new key"
            } else {
                "Quarterly rotation of the Supabase service role keys"
            }),
            links: links(commit),
            ..View::new(command, headline, report)
        };
        let r = Renderer::new(Vec::new()).expect("renderer");
        format!(
            "{}\n======== summary ========\n{}",
            r.render("comment.md.j2", &view).expect("comment"),
            r.render("summary.md.j2", &view).expect("summary")
        )
    }

    /// A reason written to ping, link and mark up under rotor's name.
    pub(crate) const HOSTILE: &str = "cc &#64;mallory and &#x40;acme/security @eve\nsee https://evil.example/x and www.evil.example <script>alert(1)</script> [x](javascript:1) **now**";

    /// What no Markdown view may carry out of an untrusted text: a character reference that
    /// decodes to a mention, a bare URL or `www.` GitHub would link, a raw element.
    pub(crate) fn assert_neutral(text: &str) {
        for bad in [
            "&#64;",
            "&#x40;",
            "@eve",
            "https://evil",
            "www.evil",
            "<script",
            "[x](javascript",
        ] {
            assert!(!text.contains(bad), "{bad:?} came through:\n{text}");
        }
    }

    #[test]
    fn a_hostile_reason_is_text_in_the_comment_and_the_summary() {
        let r = report("plan", vec![row(1, RefResult::Planned, None)]);
        let view = View {
            rotation_id: Some("2026-11-25-acme"),
            environment: Some("production"),
            requester: Some("alice"),
            reason: Some(HOSTILE),
            links: links(false),
            ..View::new("plan", "waiting for approval", &r)
        };
        let renderer = Renderer::new(Vec::new()).expect("renderer");
        let text = format!(
            "{}\n======== summary ========\n{}",
            renderer.render("comment.md.j2", &view).expect("comment"),
            renderer.render("summary.md.j2", &view).expect("summary")
        );
        assert_neutral(&text);
        // rotor's own links stay links.
        assert!(
            text.contains("(https://github.com/acme/tenants/pull/7)"),
            "{text}"
        );
        insta::assert_snapshot!(text);
    }

    fn report(command: &'static str, refs: Vec<RefReport>) -> RunReport {
        let result = RunResult::of(refs.iter().map(|r| r.result));
        let mut report = RunReport::new(command, result).with_refs(refs);
        report.rotation_id = Some("2026-11-25-acme".to_owned());
        report
    }

    #[test]
    fn plan_waiting_for_approval() {
        let mut r = report(
            "plan",
            (1..=2).map(|i| row(i, RefResult::Planned, None)).collect(),
        );
        r.approval = Some(Decision {
            approved: false,
            approvers: Vec::new(),
            break_glass: None,
            unmet: vec![Unmet {
                rule: "insufficient_approvals",
                message: "1 approval by an internal_admin other than the requester is required on head 4f2c9a1; 0 counted".to_owned(),
            }],
        });
        insta::assert_snapshot!(render("plan", "waiting for approval", &r, false));
    }

    #[test]
    fn plan_approved_with_a_warning() {
        let mut r = report(
            "plan",
            (1..=2).map(|i| row(i, RefResult::Planned, None)).collect(),
        );
        r.approval = Some(approved());
        r.warnings.push(Warning {
            code: "rejected_version",
            secret_ref: "tenant.t002.supabase.service_role".to_owned(),
            message: "`to` names version 4, which a rollback of rotation 2026-11-01-acme rejected"
                .to_owned(),
        });
        insta::assert_snapshot!(render("plan", "approved, ready to apply", &r, false));
    }

    #[test]
    fn plan_refused_names_every_unmet_rule() {
        let mut refs: Vec<RefReport> = (1..=2).map(|i| row(i, RefResult::Planned, None)).collect();
        refs.push(row(
            3,
            RefResult::NotStarted,
            Some(RefFailure::Target(
                "no pending version: provision the new value in the secret manager first, or name `to`".to_owned(),
            )),
        ));
        let mut r = report("plan", refs);
        let unmet = |rule, message: &str| Unmet {
            rule,
            message: message.to_owned(),
        };
        r.approval = Some(Decision {
            approved: false,
            approvers: Vec::new(),
            break_glass: None,
            unmet: vec![
                unmet(
                    "draft",
                    "the pull request is a draft; mark it ready for review",
                ),
                unmet(
                    "fork",
                    "the pull request comes from the fork mallory/tenants; rotations run only from branches of my-org/tenants",
                ),
                unmet(
                    "requester_not_admin",
                    "the requester mallory does not hold internal_admin",
                ),
                unmet(
                    "insufficient_approvals",
                    "1 approval by an internal_admin other than the requester is required on head 4f2c9a1; not counted: dave (does not hold internal_admin)",
                ),
                unmet("changes_requested", "carol requested changes on 4f2c9a1"),
                unmet(
                    "team_not_visible",
                    "the token cannot see the team my-org/secops; give ROTOR_ORG_TOKEN `Members: read`",
                ),
                unmet(
                    "files_outside_requests_dir",
                    "the pull request also changes .github/rotor.yml; a rotation PR changes only files under rotations/",
                ),
            ],
        });
        insta::assert_snapshot!(render("plan", "not approved", &r, false));
    }

    #[test]
    fn apply_success() {
        let mut r = report("apply", vec![row(1, RefResult::Success, None)]);
        r.approval = Some(approved());
        insta::assert_snapshot!(render("apply", "rotated", &r, true));
    }

    /// 30 refs, two rolled back and one failed, far down the request: they come first, with
    /// their reasons and next steps; the 27 successes fold into `<details>`.
    fn batch() -> RunReport {
        let refs = (1..=30)
            .map(|i| match i {
                13 | 24 => row(
                    i,
                    RefResult::RolledBack,
                    Some(RefFailure::Verification(
                        "verification failed: site-002 health: status 503; rolled back".to_owned(),
                    )),
                ),
                29 => row(
                    i,
                    RefResult::Failed,
                    Some(RefFailure::AuditNotConfirmed(
                        "audit event not visible within 120s; the pointer stays on 4".to_owned(),
                    )),
                ),
                i => row(i, RefResult::Success, None),
            })
            .collect();
        let mut r = report("apply", refs);
        r.approval = Some(approved());
        r
    }

    #[test]
    fn apply_mixed_batch() {
        insta::assert_snapshot!(render("apply", "failed", &batch(), true));
    }

    #[test]
    fn apply_batch_json_report() {
        let mut r = batch();
        r.artifact_path = Some("docs/security/rotations/2026-11-25-acme.md".to_owned());
        r.commit_sha = Some("4f2c9a1e0b7d3c5a6e8f9012345678901234abcd".to_owned());
        insta::assert_json_snapshot!(r);
    }

    #[test]
    fn apply_rolled_back() {
        let mut r = report(
            "apply",
            vec![row(
                1,
                RefResult::RolledBack,
                Some(RefFailure::Verification(
                    "verification failed: site-002 health: status 503; rolled back".to_owned(),
                )),
            )],
        );
        r.approval = Some(approved());
        insta::assert_snapshot!(render(
            "apply",
            "verification failed: rolled back",
            &r,
            true
        ));
    }

    #[test]
    fn apply_failed_with_manual_rollback() {
        let mut r = report(
            "apply",
            vec![row(
                1,
                RefResult::Failed,
                Some(RefFailure::Verification(
                    "verification failed: resolve: resolve still returned 3 after 120s; rollback is manual: dispatch `rotor rollback`".to_owned(),
                )),
            )],
        );
        r.approval = Some(approved());
        insta::assert_snapshot!(render("apply", "failed", &r, true));
    }

    #[test]
    fn apply_already_applied() {
        let recorded = crate::artifact::MetaRef {
            secret_ref: "tenant.t001.supabase.service_role".to_owned(),
            backend: "vault".to_owned(),
            from: "3".to_owned(),
            to: "4".to_owned(),
            result: "success".to_owned(),
            pointer: Some("4".to_owned()),
            rollback: None,
            audit_events: Vec::new(),
            reason: None,
        };
        let mut r = RunReport::new("apply", RunResult::Noop)
            .with_refs(vec![RefReport::recorded(&recorded)]);
        r.rotation_id = Some("2026-11-25-acme".to_owned());
        insta::assert_snapshot!(render("apply", "already applied: nothing to do", &r, true));
    }

    #[test]
    fn a_dispatched_rollback_shows_the_move_as_it_happened() {
        let back = |i: usize, result: RefResult, failure: Option<RefFailure>| RefReport {
            checks: vec![Check {
                name: "rollback resolve".to_owned(),
                ok: result == RefResult::RolledBack,
                detail: "resolve returned 3".to_owned(),
            }],
            ..row(i, result, failure)
        };
        let mut r = report(
            "rollback",
            vec![
                back(1, RefResult::RolledBack, None),
                back(
                    2,
                    RefResult::NotStarted,
                    Some(RefFailure::PointerMoved(
                        "the pointer designates 5, not 4: it moved since the rotation; pass --force to roll back from 5".to_owned(),
                    )),
                ),
            ],
        );
        // As the rollback command words it.
        if let Some(e) = r.refs[1].error.as_mut() {
            e.next_step = Some(RefFailure::PointerMoved(String::new()).next_step_rolling_back());
        }
        r.moving_back = true;
        r.result = RunResult::Failed;
        let text = render("rollback", "rollback failed", &r, true);
        assert!(text.contains("| 4 → 3 |"), "to → from: {text}");
        insta::assert_snapshot!(text);
    }
}
