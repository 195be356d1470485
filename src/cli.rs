//! The command line (DESIGN §2): global options and one subcommand per command.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

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
    /// Report format; with json, stdout carries exactly one JSON object.
    #[arg(long, global = true, value_enum, env = "ROTOR_FORMAT", default_value_t = Format::Text)]
    pub format: Format,
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
    /// Show, read-only, each ref's pointer, previous and pending versions, versions and marker.
    ///
    /// With no REF: every ref named by a request in `requests_dir`. Never reads a secret value.
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
    /// tree. Exits 0 when the file was written (or printed, with --dry-run), 4 when no ref
    /// qualified, 2 on bad input (an id whose file exists included).
    #[command(group(clap::ArgGroup::new("source").required(true).multiple(false)))]
    New {
        /// The rotation id, also the file's name: 3 to 63 of a-z, 0-9 and `-`.
        #[arg(value_name = "ID")]
        id: String,
        /// The environment, a key of the config's `environments`.
        #[arg(long, value_name = "ENV")]
        environment: String,
        /// Why the secrets are rotated: one line of at most 4,096 characters.
        #[arg(long, value_name = "TEXT")]
        reason: String,
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
            Self::Drift => "drift",
            Self::Report => "report",
            Self::New { .. } => "new",
        }
    }
}
