//! The command line (DESIGN §2): global options and one subcommand per command.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};

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
    /// Log every step.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
    /// Log errors only.
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
    Validate {
        /// Request files or directories.
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema (draft 2020-12) of the request format.
    Schema,
    /// Plan a rotation from a pull request: validate, check approval and preconditions, comment.
    ///
    /// Changes nothing. Reads the event from $GITHUB_EVENT_PATH; exits 0 (result `planned`)
    /// whether or not the approval is complete.
    Plan {
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
    },
    /// Apply the rotation an approved pull request carries (DESIGN §7).
    ///
    /// Runs on an approving review or a `/rotor apply` comment: enforces the approval policy,
    /// checks every precondition, moves each pointer with compare-and-swap, verifies, rolls
    /// back on failure, confirms the audit trail and commits the artifact.
    Apply {
        /// The event payload [default: $GITHUB_EVENT_PATH].
        #[arg(long, value_name = "PATH")]
        event: Option<PathBuf>,
        /// Check everything up to, not including, the first change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Roll a rotation back (DESIGN §8), from workflow_dispatch on the default branch.
    ///
    /// The dispatcher (GITHUB_TRIGGERING_ACTOR, else GITHUB_ACTOR) must hold internal_admin.
    /// from/to are read from the rotation's artifact on the default branch; a `## Rollback`
    /// section is appended to it and committed there.
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
    Drift,
    /// Per ref, the last successful rotation and its age against `policy.max_age_days`.
    ///
    /// Reads the artifacts in the checkout; prints markdown, or JSON with --format json.
    Report,
    /// Prove the record: each artifact's provenance in git, each ref's chain of versions, the
    /// live pointers and the application's audit events; exit 1 on any finding.
    ///
    /// Reads, never writes. Fetches the default branch's whole history (into a temporary
    /// repository, so a shallow checkout stays as it is).
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
    /// --format md (default), json or html; to stdout unless --out. Verify runs online when the
    /// application's token is set, offline otherwise, and the document says which.
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
    Status {
        /// Refs such as tenant.acme.supabase.service_role.
        #[arg(value_name = "REF")]
        refs: Vec<String>,
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
            Self::Drift => "drift",
            Self::Report => "report",
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
