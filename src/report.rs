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

/// Rows of the ref table in the comment; the job summary has them all.
pub const COMMENT_ROWS: usize = 50;

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
}

impl From<&Diagnostic> for ErrorReport {
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

impl From<&RefFailure> for ErrorReport {
    fn from(f: &RefFailure) -> Self {
        Self {
            code: f.code(),
            message: f.to_string(),
            file: None,
            line: None,
            column: None,
        }
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
}

impl From<&RefOutcome> for RefReport {
    fn from(o: &RefOutcome) -> Self {
        Self {
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

/// What the comment and summary templates see.
#[derive(Debug, Clone, Serialize)]
pub struct View<'a> {
    /// The command.
    pub command: &'static str,
    /// The headline.
    pub headline: &'a str,
    /// The rotation.
    pub rotation_id: Option<&'a str>,
    /// The request's environment.
    pub environment: Option<&'a str>,
    /// The requester (the dispatcher, for a rollback).
    pub requester: Option<&'a str>,
    /// The request's (or the rollback's) reason.
    pub reason: Option<&'a str>,
    /// The approval decision.
    pub approval: Option<&'a Decision>,
    /// The refs.
    pub refs: &'a [RefReport],
    /// The problems.
    pub errors: &'a [ErrorReport],
    /// The warnings.
    pub warnings: &'a [Warning],
    /// rotor's version.
    pub version: &'static str,
    /// The workflow run's page.
    pub run_url: Option<String>,
    /// How many rows the comment shows.
    pub comment_rows: usize,
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
                event: format!("{}: {}", o.secret_ref, s.what),
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
    }
}
