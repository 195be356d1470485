//! The command line: global options and one subcommand per command.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

use crate::output::Format;

/// `--format`: `text` or `json` for every command; `evidence` also writes `md` (its text form)
/// and `html`. One flag serves both, since the global `--format` and evidence's own share the
/// name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Human-readable text (for `evidence`: markdown).
    Text,
    /// One JSON object on stdout.
    Json,
    /// Markdown (`evidence` only).
    Md,
    /// One self-contained HTML file (`evidence` only).
    Html,
}

impl FormatArg {
    /// How logs and reports are printed: JSON for `json`, text for everything else.
    pub const fn output(self) -> Format {
        match self {
            Self::Json => Format::Json,
            Self::Text | Self::Md | Self::Html => Format::Text,
        }
    }
}

/// A date on the command line: `YYYY-MM-DD` (UTC) or an RFC 3339 time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateArg {
    /// The moment given, or midnight UTC starting the day.
    pub at: DateTime<Utc>,
    /// Whether only a day was given.
    pub day: bool,
}

impl DateArg {
    /// The last moment the argument covers: the end of the day for a day, the moment itself
    /// otherwise (`--until` is inclusive).
    pub fn end(self) -> DateTime<Utc> {
        if self.day {
            self.at + chrono::Duration::days(1) - chrono::Duration::nanoseconds(1)
        } else {
            self.at
        }
    }
}

/// Parses a [`DateArg`].
pub fn parse_date(text: &str) -> Result<DateArg, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(DateArg {
            at: t.with_timezone(&Utc),
            day: false,
        });
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .filter(|_| text.len() == 10)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| DateArg {
            at: t.and_utc(),
            day: true,
        })
        .ok_or_else(|| {
            "write a day as YYYY-MM-DD (UTC) or a time in RFC 3339, e.g. 2026-11-25 or 2026-11-25T02:00:00Z".to_owned()
        })
}

/// rotor executes the secret rotation runbook from a pull request.
#[derive(Debug, Parser)]
#[command(name = "rotor", version, about, max_term_width = 100)]
pub struct Cli {
    /// Options every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Parses the command line. `rotor schema` takes the global options like every command but
/// uses none of them, so its `--help` does not list them.
pub fn parse<I, T>(args: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let mut command = Cli::command();
    // Globals reach the subcommands when the command is built; hide them there afterwards.
    command.build();
    // `mut_args` changes the arguments in place; the built command's index of them stays right.
    let command = command.mut_subcommand("schema", |schema| {
        schema.mut_args(|a| {
            let global =
                ["config", "repo", "format", "verbose", "quiet"].contains(&a.get_id().as_str());
            a.hide(global)
        })
    });
    let matches = command.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// The exit codes each command's `--help` names.
mod exits {
    pub(super) const VALIDATE: &str = "Exit codes: 0 everything is valid; 2 a file is invalid (each problem is printed with its file, line and column).";
    pub(super) const SCHEMA: &str = "Exit codes: 0; 1 when the schema cannot be written.";
    pub(super) const PLAN: &str = "Exit codes: 0 planned, approved or not (or noop: not a trigger, or the rotation is already applied); 2 invalid request, config or event; 3 GitHub refused the token; 4 a precondition fails; 5 GitHub, a secret manager or the application stayed unreachable.";
    pub(super) const APPLY: &str = "Exit codes: 0 success, or noop; 1 a ref was rolled back or failed, or the remote refused the artifact's push; 2 invalid input; 3 not authorized (each unmet rule is named); 4 a precondition or a conflict, nothing changed; 5 a service stayed unreachable, nothing changed.";
    pub(super) const COUNTERSIGN: &str = "Exit codes: 0 countersigned, or noop (already countersigned); 1 the remote refused the commit; 2 invalid input, or a rotation that was not break-glass; 3 not authorized (not an internal_admin, the break-glass operator themselves, not the default branch); 4 the artifact is not on the default branch yet; 5 a service stayed unreachable.";
    pub(super) const ROLLBACK: &str = "Exit codes: 0 rolled back, or noop; 1 a ref's rollback failed its checks or its audit; 2 invalid input; 3 not authorized (the dispatcher, the branch); 4 a precondition (the pointer moved: see --force), nothing changed; 5 a service stayed unreachable, nothing changed.";
    pub(super) const DRIFT: &str = "Exit codes: 0 no drift, or nothing to check yet; 1 drift found; 2 invalid config; 4 a ref could not be read (missing, denied); 5 a secret manager stayed unreachable.";
    pub(super) const REPORT: &str = "Exit codes: 0 whatever the ages; 2 invalid config.";
    pub(super) const STATUS: &str = "Exit codes: 0 every ref was read; 2 invalid input; 4 a ref's secret is missing or access is denied; 5 a secret manager stayed unreachable.";
    pub(super) const VERIFY: &str = "Exit codes: 0 no finding; 1 a finding; 2 invalid input (flags, the config); 4 a backend or the application refused rotor's credentials; 5 a system stayed unreachable (a check that could not run takes precedence over findings).";
    pub(super) const EVIDENCE: &str = "Exit codes: 0 the document was written and verification found nothing; 1 verification found something (the document is written all the same); 2 invalid input; 4 or 5, online, a backend or the application refused or stayed unreachable.";
    pub(super) const NEW: &str = "Exit codes: 0 the file was written (or printed, with --dry-run); 2 bad input, an id whose file exists included; 4 no ref qualified; 5 a service stayed unreachable.";
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The config file, relative to the repository unless absolute.
    #[arg(long, global = true, value_name = "PATH", env = "ROTOR_CONFIG", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The repository checkout [default: $GITHUB_WORKSPACE, else the current directory].
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "GITHUB_WORKSPACE",
        hide_env = true
    )]
    pub repo: Option<PathBuf>,
    /// Report format; with json, stdout carries exactly one JSON object. md and html are
    /// for `evidence` only.
    #[arg(long, global = true, value_enum, env = "ROTOR_FORMAT", default_value_t = FormatArg::Text)]
    pub format: FormatArg,
    /// Also log each HTTP call: method, path, status and duration (never a header or body).
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Log only errors and annotations: one line per ref that did not succeed, no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate request files and the config offline.
    ///
    /// With no PATH: the config and every request in `requests_dir`. A PATH may be a request
    /// file or a directory of them.
    #[command(after_help = exits::VALIDATE)]
    Validate {
        /// Request files or directories.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of the request format.
    #[command(after_help = exits::SCHEMA)]
    Schema,
    /// Plan a rotation from a pull request: validate, check approval and preconditions, comment.
    ///
    /// Changes nothing. Reads the event from $GITHUB_EVENT_PATH; exits 0 (result `planned`)
    /// whether or not the approval is complete.
    #[command(after_help = exits::PLAN)]
    Plan {
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
    },
    /// Apply the rotation an approved pull request carries.
    ///
    /// Runs on an approving review or a `/rotor apply` comment: enforces the approval policy,
    /// checks every precondition, moves each pointer with compare-and-swap, verifies, rolls
    /// back on failure, confirms the audit trail and commits the artifact.
    #[command(after_help = exits::APPLY)]
    Apply {
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
        /// Check everything up to, not including, the first change.
        #[arg(long)]
        dry_run: bool,
        /// Say that the event is a `/rotor break-glass` comment (rotor recognises it without
        /// this); refused on any other event.
        #[arg(long)]
        break_glass: bool,
    },
    /// Countersign a break-glass rotation, from workflow_dispatch on the default branch.
    ///
    /// The dispatcher (GITHUB_TRIGGERING_ACTOR, else GITHUB_ACTOR) must hold internal_admin
    /// and must not be the one who broke the glass. A `## Countersigned` section is appended to
    /// the rotation's artifact on the default branch and committed there.
    #[command(after_help = exits::COUNTERSIGN)]
    Countersign {
        /// The break-glass rotation [default: the dispatch input `rotation_id`].
        #[arg(long, value_name = "ID")]
        rotation_id: Option<String>,
        /// Why [default: the dispatch input `reason`].
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
    },
    /// Roll a rotation back, from workflow_dispatch on the default branch.
    ///
    /// The dispatcher (GITHUB_TRIGGERING_ACTOR, else GITHUB_ACTOR) must hold internal_admin.
    /// from/to are read from the rotation's artifact on the default branch; a `## Rollback`
    /// section is appended to it and committed there.
    #[command(after_help = exits::ROLLBACK)]
    Rollback {
        /// The rotation to roll back [default: the dispatch input `rotation_id`].
        #[arg(long, value_name = "ID")]
        rotation_id: Option<String>,
        /// Why [default: the dispatch input `reason`].
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Roll back only this ref of the rotation (repeatable).
        #[arg(long = "ref", value_name = "REF")]
        refs: Vec<String>,
        /// Roll back even if the pointer no longer designates the rotation's target.
        #[arg(long)]
        force: bool,
        /// Check everything up to, not including, the first change.
        #[arg(long)]
        dry_run: bool,
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
    },
    /// Compare every managed ref's live pointer with its latest artifact; exit 1 on drift.
    ///
    /// Reads the artifacts in the checkout (on a schedule: the default branch) and each ref's
    /// state, read-only.
    #[command(after_help = exits::DRIFT)]
    Drift,
    /// Per ref, the last successful rotation and its age against `policy.max_age_days`.
    ///
    /// Reads the artifacts in the checkout; prints markdown, or JSON with --format json.
    #[command(after_help = exits::REPORT)]
    Report,
    /// Prove the record: each artifact's provenance in git, each ref's chain of versions, the
    /// live pointers and the application's audit events; exit 1 on any finding.
    ///
    /// Reads, never writes. Fetches the default branch's whole history (into a temporary
    /// repository, so a shallow checkout stays as it is).
    #[command(after_help = exits::VERIFY)]
    Verify {
        /// Report findings for artifacts finished on or after DATE (YYYY-MM-DD, UTC, or RFC
        /// 3339); provenance and continuity still cover the whole history.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: Option<DateArg>,
        /// Check git only: no backend or application credentials needed.
        #[arg(long)]
        offline: bool,
    },
    /// Write one document for auditors covering a period: every rotation and rollback with its
    /// approvals, audit events and verification.
    ///
    /// --format text (markdown, the default; `md` is the same), json or html; to stdout unless
    /// --out. Verify runs online when the application's token is set, offline otherwise, and the
    /// document says which.
    #[command(after_help = exits::EVIDENCE)]
    Evidence {
        /// The period's first day (YYYY-MM-DD, UTC) or moment (RFC 3339).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        since: DateArg,
        /// The period's last day, inclusive, or moment [default: now].
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        until: Option<DateArg>,
        /// Write the document to PATH instead of stdout.
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
    },
    /// Show, read-only, each ref's pointer, previous and pending versions, versions and marker.
    ///
    /// With no REF: every ref named by a request in `requests_dir`. Never reads a secret value.
    #[command(after_help = exits::STATUS)]
    Status {
        /// Refs such as tenant.acme.supabase.service_role.
        #[arg(value_name = "REF")]
        refs: Vec<String>,
    },
    /// Write a rotation request from what the secret managers and the application say.
    ///
    /// Writes `<requests_dir>/<ID>.yaml` (a request `rotor validate` accepts) with every ref
    /// that qualifies: no lock, exactly one version newer than the pointer that no rollback
    /// rejected (or the `--to` version, existing, enabled, not rejected), known to the
    /// application, whose `siteIds` become `sites`. Every matched ref left out is listed with
    /// its reason: no_pending, rejected, several_pending, locked, unknown_to_app, over_limit.
    /// Reads metadata only, never a secret value, and changes nothing outside the working
    /// tree.
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
    #[command(after_help = exits::NEW)]
    New {
        /// The rotation id, also the file's name: 3 to 63 of a-z, 0-9 and `-`.
        #[arg(value_name = "ID")]
        id: String,
        /// The environment, a key of the config's `environments` (with --rest-of: the other
        /// rotation's, unless given).
        #[arg(long, value_name = "ENV", required_unless_present = "rest_of")]
        environment: Option<String>,
        /// Why the secrets are rotated: at most 4,096 characters (with --rest-of: the other
        /// rotation's, unless given).
        #[arg(long, value_name = "TEXT", required_unless_present = "rest_of")]
        reason: Option<String>,
        /// The refs another rotation's halted rollout skipped, read from its artifact in the
        /// working tree (the default branch's checkout).
        #[arg(long, value_name = "OTHER_ID", group = "source")]
        rest_of: Option<String>,
        /// A ref to rotate (repeatable).
        #[arg(long = "ref", value_name = "REF", group = "source")]
        refs: Vec<String>,
        /// A glob over refs: every ref the backends list that it matches (repeatable; `*`
        /// matches dots too).
        #[arg(long = "match", value_name = "GLOB", group = "source")]
        globs: Vec<String>,
        /// A file of refs, one a line; blank lines and `#` comments are ignored.
        #[arg(long, value_name = "PATH", group = "source")]
        refs_file: Option<PathBuf>,
        /// The version every ref moves to, instead of its single pending version.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// The maintenance window: two RFC 3339 timestamps, e.g.
        /// 2026-11-26T02:00:00Z/2026-11-26T04:00:00Z.
        #[arg(long, value_name = "START/END")]
        window: Option<String>,
        /// The rollout note: a link to it, or its text.
        #[arg(long, value_name = "URL")]
        rollout_note: Option<String>,
        /// What `apply` does when verification fails.
        #[arg(long, value_enum, default_value_t = crate::request::RollbackMode::Auto)]
        rollback: crate::request::RollbackMode,
        /// Print the request on stdout instead of writing it.
        #[arg(long)]
        dry_run: bool,
    },
}

impl Command {
    /// The command's name, as typed.
    pub const fn name(&self) -> &'static str {
        match self {
            Self::Validate { .. } => "validate",
            Self::Schema => "schema",
            Self::Status { .. } => "status",
            Self::Plan { .. } => "plan",
            Self::Apply { .. } => "apply",
            Self::Rollback { .. } => "rollback",
            Self::Countersign { .. } => "countersign",
            Self::Drift => "drift",
            Self::Report => "report",
            Self::New { .. } => "new",
            Self::Verify { .. } => "verify",
            Self::Evidence { .. } => "evidence",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_rfc_3339() {
        let day = parse_date("2026-11-25").expect("day");
        assert!(day.day);
        assert_eq!(day.at.to_rfc3339(), "2026-11-25T00:00:00+00:00");
        assert_eq!(
            day.end().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "2026-11-25T23:59:59Z"
        );
        let at = parse_date("2026-11-25T02:00:00+02:00").expect("time");
        assert!(!at.day);
        assert_eq!(at.end().to_rfc3339(), "2026-11-25T00:00:00+00:00");
        for bad in ["2026-13-01", "25/11/2026", "2026-1-5", "", "yesterday"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
