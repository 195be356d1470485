//! The config (`.github/rotor.yml`): its model and its parser.
//!
//! The config is policy: who holds `internal_admin`, how many approvals a rotation needs, where
//! each ref's secret lives. It is read from the base branch only, and parsed as strictly as a
//! request: unknown keys, settings that do not belong to a backend's type, bad globs, durations
//! without units and templates with unknown placeholders are errors with line and column.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use globset::{Glob, GlobMatcher};
use serde::Serialize;
use url::Url;

use crate::diagnostic::{Diagnostic, Diagnostics, quote};
use crate::yaml::{Document, Mapping, Node};

mod environment;
mod gcp;

use environment::environments;
pub use environment::{BreakGlass, COUNTERSIGN_WITHIN, Environment, Rollout, Share, said};
use gcp::GCP_KEYS;
pub use gcp::{DEFAULT_ENDPOINT as GCP_ENDPOINT, GcpBackend, valid_alias};

/// The config path when `--config` is not given, relative to the repository.
pub const DEFAULT_PATH: &str = ".github/rotor.yml";

/// A validated config.
#[derive(Debug, Clone)]
pub struct Config {
    /// Who holds `internal_admin`.
    pub admins: Admins,
    /// Distinct `internal_admin` approvals required, excluding the requester.
    pub approvals_required: u32,
    /// Where requests live, relative to the repository root.
    pub requests_dir: RepoDir,
    /// Where artifacts are written, relative to the repository root.
    pub artifacts_dir: RepoDir,
    /// Where and as whom rotor commits the artifact.
    pub commit: Commit,
    /// `record.signing_keys`: repository files holding the OpenPGP public keys that may sign
    /// rotor's commits made through GitHub's API; empty means GitHub's own web-flow keys.
    pub signing_keys: Vec<String>,
    /// The environments a request may name.
    pub environments: BTreeMap<String, Environment>,
    /// Backend rules, first match wins.
    pub backends: Vec<BackendRule>,
    /// The tenant application.
    pub app: App,
    /// Verification settings.
    pub checks: Checks,
    /// Refs in flight at once in a batch.
    pub concurrency: usize,
    /// `policy.max_age_days`: `rotor report` flags refs whose last successful rotation is older.
    pub max_age_days: u32,
}

/// Who holds `internal_admin` on the GitHub side; at least one source is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Admins {
    /// Active members of this team.
    pub team: Option<TeamRef>,
    /// An explicit list of logins.
    pub users: Vec<String>,
}

/// A GitHub team, `org/team-slug`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeamRef {
    /// The organisation login.
    pub org: String,
    /// The team slug.
    pub slug: String,
}

/// A directory inside the repository: relative, `/`-separated, without `.` or `..`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct RepoDir(String);

impl RepoDir {
    /// The directory, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `path` (repository-relative, `/`-separated) lies inside this directory.
    pub fn contains(&self, path: &str) -> bool {
        path.strip_prefix(self.0.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }
}

/// Where the artifact commit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitTarget {
    /// The PR branch: the artifact lands with the request.
    PrBranch,
    /// The repository's default branch.
    DefaultBranch,
}

/// How the artifact commit is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommitVia {
    /// rotor makes the commit and pushes it with git.
    Git,
    /// GitHub makes the commit (GraphQL `createCommitOnBranch`) and signs it.
    Api,
}

/// Commit settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Where the artifact commit goes.
    pub target: CommitTarget,
    /// Who makes the commit: rotor with git, or GitHub through its API.
    pub via: CommitVia,
    /// Author and committer name.
    pub author_name: String,
    /// Author and committer email.
    pub author_email: String,
}

/// One `backends` entry: a glob over refs and where their secrets live.
#[derive(Debug, Clone)]
pub struct BackendRule {
    /// The glob as written.
    pub pattern: String,
    matcher: GlobMatcher,
    /// The backend.
    pub backend: Backend,
    /// Writes per second at most, per backend client (`rate_limit`).
    pub rate_limit: u32,
}

impl BackendRule {
    /// Whether the rule applies to `secret_ref`.
    pub fn matches(&self, secret_ref: &str) -> bool {
        self.matcher.is_match(secret_ref)
    }
}

/// A secret manager holding some refs' secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Vault or OpenBao, KV version 2.
    Vault(VaultBackend),
    /// AWS Secrets Manager.
    Aws(AwsBackend),
    /// Google Cloud Secret Manager.
    Gcp(GcpBackend),
}

impl Backend {
    /// The name used in reports: `vault` or `aws-secrets-manager`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::Vault(_) => "vault",
            Self::Aws(_) => "aws-secrets-manager",
            Self::Gcp(_) => "gcp-secret-manager",
        }
    }
}

/// A Vault/OpenBao KV v2 backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultBackend {
    /// The server; `None` means `$VAULT_ADDR` or `$BAO_ADDR`.
    pub address: Option<Url>,
    /// The KV v2 mount.
    pub mount: String,
    /// The secret's path under the mount.
    pub path: Template,
    /// The `custom_metadata` key holding the pointer.
    pub pointer_key: String,
    /// How rotor logs in.
    pub auth: VaultAuth,
}

/// How rotor logs in to Vault/OpenBao.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultAuth {
    /// `$VAULT_TOKEN` or `$BAO_TOKEN`.
    Token,
    /// JWT login with the GitHub Actions OIDC token.
    Jwt {
        /// The role to log in as.
        role: String,
        /// The auth mount path.
        path: String,
        /// The audience requested for the OIDC token; `None` uses GitHub's default.
        audience: Option<String>,
    },
}

/// An AWS Secrets Manager backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsBackend {
    /// The region; `None` means the standard chain (`AWS_REGION`, profile).
    pub region: Option<String>,
    /// The secret's name or ARN.
    pub name: Template,
    /// The staging label that is the pointer.
    pub stage: String,
}

/// The tenant application (`app-api.yaml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Base URL; paths of the API are relative to it.
    pub base_url: Url,
    /// The environment variable holding the bearer token.
    pub token_env: String,
    /// The audit action rotor confirms.
    pub audit_action: String,
    /// The `actorRole` the audit events must carry.
    pub actor_role: String,
    /// How long to wait for the audit events.
    pub audit_timeout: Duration,
}

/// Verification settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checks {
    /// How long to wait for the application to resolve the new version.
    pub settle_timeout: Duration,
    /// Additional HTTP checks, run per impacted site.
    pub extra: Vec<ExtraCheck>,
}

/// An additional HTTP check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraCheck {
    /// Its name in reports.
    pub name: String,
    /// The URL, a template over `{app} {site} {ref} {slug} {provider} {key}`.
    pub url: Template,
    /// The expected status.
    pub status: u16,
    /// JSON pointers into the body and the values they must hold.
    pub json: Vec<(String, serde_json::Value)>,
}

/// A string with `{placeholder}`s, checked against the placeholders its setting allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(String);

impl Template {
    /// Parses `text`, accepting only the `allowed` placeholders.
    pub fn parse(text: &str, allowed: &[&str]) -> Result<Self, String> {
        let mut rest = text;
        while let Some(open) = rest.find(['{', '}']) {
            if rest[open..].starts_with('}') {
                return Err("a `}` without its `{`".to_owned());
            }
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or("a `{` without its `}`")?;
            let name = &after[..close];
            if !allowed.contains(&name) {
                return Err(format!(
                    "unknown placeholder {}",
                    quote(&format!("{{{name}}}"))
                ));
            }
            rest = &after[close + 1..];
        }
        Ok(Self(text.to_owned()))
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The template's text without its placeholders.
    pub fn literal(&self) -> String {
        let mut out = String::new();
        let mut rest = self.0.as_str();
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            rest = rest[open..].split_once('}').map_or("", |(_, after)| after);
        }
        out.push_str(rest);
        out
    }

    /// Replaces each `{name}` by its value.
    pub fn render(&self, vars: &[(&str, &str)]) -> String {
        let mut out = self.0.clone();
        for (name, value) in vars {
            out = out.replace(&format!("{{{name}}}"), value);
        }
        out
    }
}

/// Parses a duration such as `120s`, `2m`, `1h30m` or `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return Err("an empty duration".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err("a duration is a number followed by a unit".to_owned());
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_owned())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err("the unit is missing".to_owned()),
            other => return Err(format!("unknown unit {}", quote(other))),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

const TOP_KEYS: &[&str] = &[
    "version",
    "admins",
    "approvals",
    "requests_dir",
    "artifacts_dir",
    "commit",
    "record",
    "environments",
    "backends",
    "app",
    "checks",
    "concurrency",
    "policy",
];
/// Default `rate_limit` of an AWS Secrets Manager backend: writes per second, under AWS's 50.
pub const DEFAULT_AWS_RATE: u32 = 40;
/// Default `rate_limit` of a Vault/OpenBao backend: neither publishes a write quota, so this
/// only keeps a batch of thousands from flooding the server.
pub const DEFAULT_VAULT_RATE: u32 = 2000;
/// Google Secret Manager's default write rate: its quota is 600 writes a minute per project
/// (10 per second), and `UpdateSecret` is soft-limited to 2 per second per secret.
pub const DEFAULT_GCP_RATE: u32 = 9;
const VAULT_KEYS: &[&str] = &["address", "mount", "path", "pointer_key", "auth"];
const AWS_KEYS: &[&str] = &["region", "name", "stage"];
pub(super) const REF_PLACEHOLDERS: &[&str] = &["ref", "slug", "provider", "key"];
const CHECK_PLACEHOLDERS: &[&str] = &["app", "site", "ref", "slug", "provider", "key"];

/// Parses and validates the config; `file` names it in diagnostics.
pub fn parse(file: &str, bytes: &[u8]) -> Result<Config, Vec<Diagnostic>> {
    let doc = Document::parse(file, bytes).map_err(|d| vec![d])?;
    let mut diags = Diagnostics::default();
    let config = from_document(&doc, &mut diags);
    diags.finish(config)
}

fn from_document(doc: &Document, diags: &mut Diagnostics) -> Option<Config> {
    let root = doc.root().mapping(diags, TOP_KEYS)?;
    if let Some(v) = root.require(diags, "version", "version: 1")
        && let Some(n) = v.unsigned(diags)
        && n != 1
    {
        diags.push(
            v.error(
                "unsupported_version",
                format!("config version {n} is not supported"),
            )
            .help("write `version: 1`"),
        );
    }
    let admins = root
        .require(diags, "admins", "admins: {team: my-org/internal-admins}")
        .and_then(|n| admins(&n, diags));
    let approvals_required = match root.get("approvals") {
        None => Some(1),
        Some(n) => approvals(&n, diags),
    };
    let requests_dir = dir(&root, "requests_dir", "rotations", diags);
    let artifacts_dir = dir(&root, "artifacts_dir", "docs/security/rotations", diags);
    if let (Some(req), Some(art)) = (&requests_dir, &artifacts_dir)
        && (req == art || req.contains(art.as_str()) || art.contains(req.as_str()))
        && let Some(n) = root
            .get("artifacts_dir")
            .or_else(|| root.get("requests_dir"))
    {
        diags.push(
                    n.error("overlapping_dirs", "`requests_dir` and `artifacts_dir` overlap")
                        .help("keep requests and artifacts in separate directories, so that a rotation PR can only touch requests"),
                );
    }
    // Policy lives under .github (this config, the template overrides, the workflows): a
    // request directory there would let one pull request carry its request and change the
    // policy that approves it.
    if let Some(req) = &requests_dir
        && (req.as_str() == ".github"
            || req.contains(".github/")
            || req.as_str().starts_with(".github/"))
        && let Some(n) = root.get("requests_dir")
    {
        diags.push(
            n.error(
                "requests_dir_in_github",
                format!(
                    "`requests_dir` {} lies inside .github, where the config, the template overrides and the workflows live",
                    quote(req.as_str())
                ),
            )
            .help("keep requests out of .github, e.g. `requests_dir: rotations`, so that a rotation PR can never change policy"),
        );
    }
    let commit = match root.get("commit") {
        None => Some(Commit {
            target: CommitTarget::PrBranch,
            via: CommitVia::Git,
            author_name: "rotor".to_owned(),
            author_email: "rotor@users.noreply.github.com".to_owned(),
        }),
        Some(n) => commit(&n, diags),
    };
    let signing_keys = match root.get("record") {
        None => Some(Vec::new()),
        Some(n) => record(&n, diags),
    };
    let environments = root
        .require(
            diags,
            "environments",
            "environments: {production: {requires_maintenance: true}}",
        )
        .and_then(|n| environments(&n, diags));
    let backends = root
        .require(
            diags,
            "backends",
            "backends: [{match: \"tenant.*.*.*\", type: vault, mount: secret}]",
        )
        .and_then(|n| backends(&n, diags));
    let app = root
        .require(diags, "app", "app: {base_url: https://app.example.com}")
        .and_then(|n| app(&n, diags));
    let checks = match root.get("checks") {
        None => Some(Checks {
            settle_timeout: Duration::from_secs(120),
            extra: Vec::new(),
        }),
        Some(n) => checks(&n, diags),
    };
    let concurrency = match root.get("concurrency") {
        None => Some(16),
        Some(n) => bounded(&n, 1, 256, diags).map(|c| c as usize),
    };
    let max_age_days = match root.get("policy") {
        None => Some(90),
        Some(n) => policy(&n, diags),
    };
    Some(Config {
        admins: admins?,
        approvals_required: approvals_required?,
        requests_dir: requests_dir?,
        artifacts_dir: artifacts_dir?,
        commit: commit?,
        signing_keys: signing_keys?,
        environments: environments?,
        backends: backends?,
        app: app?,
        checks: checks?,
        concurrency: concurrency?,
        max_age_days: max_age_days?,
    })
}

fn policy(node: &Node<'_>, diags: &mut Diagnostics) -> Option<u32> {
    let map = node.mapping(diags, &["max_age_days"])?;
    match map.get("max_age_days") {
        None => Some(90),
        Some(n) => bounded(&n, 1, 3650, diags).map(|v| v as u32),
    }
}

fn bounded(node: &Node<'_>, min: u64, max: u64, diags: &mut Diagnostics) -> Option<u64> {
    let n = node.unsigned(diags)?;
    if !(min..=max).contains(&n) {
        diags.push(
            node.error(
                "out_of_range",
                format!(
                    "{} must be between {min} and {max}, not {n}",
                    node.describe()
                ),
            )
            .help(format!("write a number from {min} to {max}")),
        );
        return None;
    }
    Some(n)
}

fn is_login(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 39
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !s.starts_with('-')
}

/// A team, `org/team-slug` (`admins.team`, `break_glass.notify`).
pub(crate) fn team_ref(node: &Node<'_>, diags: &mut Diagnostics) -> Option<TeamRef> {
    let s = node.non_empty_string(diags)?;
    match s.split_once('/') {
        Some((org, slug))
            if is_login(org)
                && !slug.is_empty()
                && slug
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Some(TeamRef {
                org: org.to_owned(),
                slug: slug.to_owned(),
            })
        }
        _ => {
            diags.push(
                node.error(
                    "invalid_team",
                    format!("team {} is not `org/team-slug`", quote(s)),
                )
                .help("write the organisation and the team's slug, e.g. `my-org/internal-admins`"),
            );
            None
        }
    }
}

fn admins(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Admins> {
    let map = node.mapping(diags, &["team", "users"])?;
    let team = match map.get("team") {
        None => Some(None),
        Some(n) => team_ref(&n, diags).map(Some),
    };
    let users = match map.get("users") {
        None => Some(Vec::new()),
        Some(n) => n.string_set(diags).and_then(|items| {
            let before = diags.len();
            let users: Vec<String> = items
                .into_iter()
                .filter_map(|(item, s)| {
                    if is_login(s) {
                        Some(s.to_owned())
                    } else {
                        diags.push(
                            item.error(
                                "invalid_login",
                                format!("{} is not a GitHub login", quote(s)),
                            )
                            .help("write the login without `@`, e.g. `alice`"),
                        );
                        None
                    }
                })
                .collect();
            (diags.len() == before).then_some(users)
        }),
    };
    let (team, users) = (team?, users?);
    if team.is_none() && users.is_empty() {
        diags.push(
            node.error("no_admin_source", "`admins` names neither a team nor users")
                .help("add `team: <org>/<team-slug>` or `users: [<login>, …]`"),
        );
        return None;
    }
    Some(Admins { team, users })
}

fn approvals(node: &Node<'_>, diags: &mut Diagnostics) -> Option<u32> {
    let map = node.mapping(diags, &["required"])?;
    match map.get("required") {
        None => Some(1),
        Some(n) => bounded(&n, 1, 10, diags).map(|v| v as u32),
    }
}

fn dir(root: &Mapping<'_>, key: &str, default: &str, diags: &mut Diagnostics) -> Option<RepoDir> {
    let Some(node) = root.get(key) else {
        return Some(RepoDir(default.to_owned()));
    };
    let text = node.non_empty_string(diags)?;
    let trimmed = text.trim_end_matches('/');
    let bad = trimmed.starts_with('/')
        || trimmed.contains('\\')
        || trimmed.is_empty()
        || trimmed.split('/').any(|seg| {
            seg.is_empty() || seg == "." || seg == ".." || seg.starts_with(".git") && seg.len() == 4
        })
        || trimmed.chars().any(|c| c.is_control());
    if bad {
        diags.push(
            node.error(
                "invalid_path",
                format!("{} is not a directory inside the repository", quote(text)),
            )
            .help(format!(
                "write a relative path without `.` or `..`, e.g. `{default}`"
            )),
        );
        return None;
    }
    Some(RepoDir(trimmed.to_owned()))
}

fn commit(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Commit> {
    let map = node.mapping(diags, &["target", "via", "author"])?;
    let target = match map.get("target") {
        None => Some(CommitTarget::PrBranch),
        Some(n) => match n.string(diags)? {
            "pr-branch" => Some(CommitTarget::PrBranch),
            "default-branch" => Some(CommitTarget::DefaultBranch),
            other => {
                diags.push(
                    n.error(
                        "invalid_commit_target",
                        format!("unknown commit target {}", quote(other)),
                    )
                    .help("write `pr-branch` or `default-branch`"),
                );
                None
            }
        },
    };
    let via = match map.get("via") {
        None => Some(CommitVia::Git),
        Some(n) => {
            match n.string(diags)? {
                "git" => Some(CommitVia::Git),
                "api" => Some(CommitVia::Api),
                other => {
                    diags.push(
                    n.error(
                        "invalid_commit_via",
                        format!("unknown commit method {}", quote(other)),
                    )
                    .help("write `git` (rotor pushes) or `api` (GitHub makes and signs the commit)"),
                );
                    None
                }
            }
        }
    };
    let author = match map.get("author") {
        None => Some((
            "rotor".to_owned(),
            "rotor@users.noreply.github.com".to_owned(),
        )),
        Some(n) => n
            .non_empty_string(diags)
            .and_then(|s| match parse_author(s) {
                Some(pair) => Some(pair),
                None => {
                    diags.push(
                        n.error(
                            "invalid_author",
                            format!("{} is not `Name <email>`", quote(s)),
                        )
                        .help("write e.g. `rotor <rotor@users.noreply.github.com>`"),
                    );
                    None
                }
            }),
    };
    let (author_name, author_email) = author?;
    Some(Commit {
        target: target?,
        via: via?,
        author_name,
        author_email,
    })
}

/// `record: {signing_keys: [...]}`: each a repository file (relative, no `.` or `..`).
fn record(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let map = node.mapping(diags, &["signing_keys"])?;
    let Some(list) = map.get("signing_keys") else {
        return Some(Vec::new());
    };
    let mut keys = Vec::new();
    let mut ok = true;
    for item in list.sequence(diags)? {
        let Some(text) = item.non_empty_string(diags) else {
            ok = false;
            continue;
        };
        let bad = text.starts_with('/')
            || text.ends_with('/')
            || text.contains('\\')
            || text
                .split('/')
                .any(|seg| seg.is_empty() || seg == "." || seg == "..")
            || text.chars().any(char::is_control);
        if bad {
            diags.push(
                item.error(
                    "invalid_path",
                    format!("{} is not a file inside the repository", quote(text)),
                )
                .help("name the key file by its path from the repository root, e.g. `.github/rotor-signing.asc`"),
            );
            ok = false;
            continue;
        }
        keys.push(text.to_owned());
    }
    ok.then_some(keys)
}

fn parse_author(s: &str) -> Option<(String, String)> {
    let (name, rest) = s.split_once('<')?;
    let email = rest.strip_suffix('>')?;
    let name = name.trim();
    let ok_email = email
        .split_once('@')
        .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
    let clean = |t: &str| !t.chars().any(|c| c.is_control() || matches!(c, '<' | '>'));
    (!name.is_empty() && ok_email && clean(name) && clean(email) && !email.contains(' '))
        .then(|| (name.to_owned(), email.to_owned()))
}

fn backends(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Vec<BackendRule>> {
    let items = node.sequence(diags)?;
    if items.is_empty() {
        diags.push(node.error("no_backends", "`backends` is empty").help(
            "add at least one rule, e.g. `- {match: \"tenant.*.*.*\", type: vault, mount: secret}`",
        ));
        return None;
    }
    let before = diags.len();
    let rules: Vec<BackendRule> = items
        .iter()
        .filter_map(|item| backend(item, diags))
        .collect();
    (diags.len() == before).then_some(rules)
}

fn backend(node: &Node<'_>, diags: &mut Diagnostics) -> Option<BackendRule> {
    let mut all: Vec<&str> = vec!["match", "type", "rate_limit"];
    all.extend(VAULT_KEYS);
    all.extend(AWS_KEYS);
    all.extend(GCP_KEYS.iter().filter(|k| !AWS_KEYS.contains(k)));
    let map = node.mapping(diags, &all)?;
    let rule = map
        .require(diags, "match", "match: \"tenant.*.*.*\"")
        .and_then(|n| {
            let text = n.non_empty_string(diags)?;
            match Glob::new(text) {
                Ok(glob) => Some((text.to_owned(), glob.compile_matcher())),
                Err(e) => {
                    diags.push(
                        n.error(
                            "invalid_glob",
                            format!("invalid glob {}: {}", quote(text), e.kind()),
                        )
                        .help("use `*` for any characters, e.g. \"tenant.*.supabase.*\""),
                    );
                    None
                }
            }
        });
    let type_node = map.require(diags, "type", "type: vault")?;
    let kinds: [(&str, &[&str]); 3] = [
        ("vault", VAULT_KEYS),
        ("aws-secrets-manager", AWS_KEYS),
        ("gcp-secret-manager", GCP_KEYS),
    ];
    let kind = type_node.string(diags)?;
    let Some(&(kind, own)) = kinds.iter().find(|(k, _)| *k == kind) else {
        diags.push(
            type_node
                .error(
                    "invalid_backend_type",
                    format!("unknown backend type {}", quote(kind)),
                )
                .help("write `vault` (Vault or OpenBao KV v2), `aws-secrets-manager` or `gcp-secret-manager`"),
        );
        return None;
    };
    let before = diags.len();
    for (key, value) in map.entries() {
        let elsewhere = kinds
            .iter()
            .find(|(k, keys)| *k != kind && keys.contains(&key));
        if let (Some((other_kind, _)), false) = (elsewhere, own.contains(&key)) {
            diags.push(
                value
                    .key_error(
                        "field_not_for_backend",
                        format!("`{key}` is a setting of {other_kind} backends, not of this one"),
                    )
                    .help(format!("remove it; this backend takes: {}", own.join(", "))),
            );
        }
    }
    let backend = match kind {
        "vault" => vault(&map, diags),
        "aws-secrets-manager" => aws(&map, diags),
        _ => gcp::gcp(&map, diags),
    };
    // Defaults under the services' quotas: AWS Secrets Manager allows about 50 writes per
    // second per region; Vault and OpenBao publish none, so theirs only keeps a batch polite.
    let rate_limit = match map.get("rate_limit") {
        None if kind == "vault" => Some(DEFAULT_VAULT_RATE),
        None if kind == "gcp-secret-manager" => Some(DEFAULT_GCP_RATE),
        None => Some(DEFAULT_AWS_RATE),
        Some(n) => bounded(&n, 1, 10_000, diags).map(|v| v as u32),
    };
    let (pattern, matcher) = rule?;
    let backend = backend?;
    (diags.len() == before).then_some(BackendRule {
        pattern,
        matcher,
        backend,
        rate_limit: rate_limit?,
    })
}

pub(super) fn string_or(
    map: &Mapping<'_>,
    key: &str,
    default: &str,
    diags: &mut Diagnostics,
) -> Option<String> {
    match map.get(key) {
        None => Some(default.to_owned()),
        Some(n) => n.non_empty_string(diags).map(str::to_owned),
    }
}

pub(super) fn template_or(
    map: &Mapping<'_>,
    key: &str,
    default: &str,
    allowed: &[&str],
    diags: &mut Diagnostics,
) -> Option<Template> {
    let Some(node) = map.get(key) else {
        return Template::parse(default, allowed).ok();
    };
    let text = node.non_empty_string(diags)?;
    Template::parse(text, allowed)
        .map_err(|e| {
            diags.push(
                node.error(
                    "invalid_template",
                    format!("invalid template {}: {e}", quote(text)),
                )
                .help(format!(
                    "use only {}",
                    allowed
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
            );
        })
        .ok()
}

pub(super) fn http_url(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Url> {
    let text = node.non_empty_string(diags)?;
    match Url::parse(text) {
        Ok(url)
            if matches!(url.scheme(), "http" | "https")
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none() =>
        {
            Some(url)
        }
        Ok(_) => {
            diags.push(
                node.error(
                    "invalid_url",
                    format!("{} is not an http(s) base URL", quote(text)),
                )
                .help("write e.g. https://app.example.com, without query or fragment"),
            );
            None
        }
        Err(e) => {
            diags.push(
                node.error("invalid_url", format!("{} is not a URL: {e}", quote(text)))
                    .help("write e.g. https://app.example.com"),
            );
            None
        }
    }
}

fn vault(map: &Mapping<'_>, diags: &mut Diagnostics) -> Option<Backend> {
    let address = match map.get("address") {
        None => Some(None),
        Some(n) => http_url(&n, diags).map(Some),
    };
    let mount = string_or(map, "mount", "secret", diags);
    let path = template_or(map, "path", "{ref}", REF_PLACEHOLDERS, diags);
    let pointer_key = string_or(map, "pointer_key", "current_version", diags);
    let auth = match map.get("auth") {
        None => Some(VaultAuth::Token),
        Some(n) => vault_auth(&n, diags),
    };
    Some(Backend::Vault(VaultBackend {
        address: address?,
        mount: mount?,
        path: path?,
        pointer_key: pointer_key?,
        auth: auth?,
    }))
}

fn vault_auth(node: &Node<'_>, diags: &mut Diagnostics) -> Option<VaultAuth> {
    let map = node.mapping(diags, &["method", "role", "path", "audience"])?;
    let method = map.require(diags, "method", "method: token")?;
    match method.string(diags)? {
        "token" => {
            for key in ["role", "path", "audience"] {
                if let Some(n) = map.get(key) {
                    diags.push(
                        n.key_error(
                            "field_not_for_auth",
                            format!("`{key}` applies to `method: jwt` only"),
                        )
                        .help("remove it, or use `method: jwt`"),
                    );
                }
            }
            Some(VaultAuth::Token)
        }
        "jwt" => {
            let role = map
                .require(diags, "role", "role: rotor")
                .and_then(|n| n.non_empty_string(diags).map(str::to_owned));
            let path = string_or(&map, "path", "jwt", diags);
            let audience = match map.get("audience") {
                None => Some(None),
                Some(n) => n.non_empty_string(diags).map(|s| Some(s.to_owned())),
            };
            Some(VaultAuth::Jwt {
                role: role?,
                path: path?,
                audience: audience?,
            })
        }
        other => {
            diags.push(
                method
                    .error(
                        "invalid_auth_method",
                        format!("unknown auth method {}", quote(other)),
                    )
                    .help("write `token` ($VAULT_TOKEN or $BAO_TOKEN) or `jwt` (GitHub OIDC)"),
            );
            None
        }
    }
}

fn aws(map: &Mapping<'_>, diags: &mut Diagnostics) -> Option<Backend> {
    let region = match map.get("region") {
        None => Some(None),
        Some(n) => n.non_empty_string(diags).and_then(|s| {
            if s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                Some(Some(s.to_owned()))
            } else {
                diags.push(
                    n.error(
                        "invalid_region",
                        format!("{} is not an AWS region", quote(s)),
                    )
                    .help("write e.g. `us-east-1`"),
                );
                None
            }
        }),
    };
    let name = template_or(map, "name", "{ref}", REF_PLACEHOLDERS, diags);
    let stage = string_or(map, "stage", "AWSCURRENT", diags);
    if let (Some(stage), Some(node)) = (&stage, map.get("stage"))
        && (stage == "AWSPENDING" || stage == "AWSPREVIOUS")
    {
        diags.push(
            node.error(
                "invalid_stage",
                format!("{} cannot be the pointer", quote(stage)),
            )
            .help("use AWSCURRENT (the default) or a label of your own"),
        );
        return None;
    }
    Some(Backend::Aws(AwsBackend {
        region: region?,
        name: name?,
        stage: stage?,
    }))
}

fn duration_or(
    map: &Mapping<'_>,
    key: &str,
    default: Duration,
    diags: &mut Diagnostics,
) -> Option<Duration> {
    let Some(node) = map.get(key) else {
        return Some(default);
    };
    if let serde_norway::Value::Number(n) = node.value() {
        diags.push(
            node.error("invalid_duration", format!("duration {n} has no unit"))
                .help(format!(
                    "write a number and a unit (ms, s, m, h), e.g. `{n}s`"
                )),
        );
        return None;
    }
    let text = node.string(diags)?;
    match parse_duration(text) {
        Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(6 * 3600) => Some(d),
        Ok(_) => {
            diags.push(
                node.error(
                    "out_of_range",
                    format!("{} must be more than 0s and at most 6h", node.describe()),
                )
                .help("write e.g. `120s`"),
            );
            None
        }
        Err(e) => {
            diags.push(
                node.error(
                    "invalid_duration",
                    format!("invalid duration {}: {e}", quote(text)),
                )
                .help("write a number and a unit (ms, s, m, h), e.g. `120s` or `2m`"),
            );
            None
        }
    }
}

fn app(node: &Node<'_>, diags: &mut Diagnostics) -> Option<App> {
    let map = node.mapping(
        diags,
        &[
            "base_url",
            "token_env",
            "audit_action",
            "actor_role",
            "audit_timeout",
        ],
    )?;
    let base_url = map
        .require(diags, "base_url", "base_url: https://app.example.com")
        .and_then(|n| http_url(&n, diags));
    let token_env = string_or(&map, "token_env", "ROTOR_APP_TOKEN", diags);
    if let (Some(name), Some(n)) = (&token_env, map.get("token_env")) {
        let ok = name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            diags.push(
                n.error(
                    "invalid_env_name",
                    format!("{} is not an environment variable name", quote(name)),
                )
                .help("write the variable's name, e.g. `ROTOR_APP_TOKEN`, never the token itself"),
            );
            return None;
        }
    }
    let audit_action = string_or(&map, "audit_action", "secret_ref_upserted", diags);
    let actor_role = string_or(&map, "actor_role", "internal_admin", diags);
    let audit_timeout = duration_or(&map, "audit_timeout", Duration::from_secs(60), diags);
    Some(App {
        base_url: base_url?,
        token_env: token_env?,
        audit_action: audit_action?,
        actor_role: actor_role?,
        audit_timeout: audit_timeout?,
    })
}

fn checks(node: &Node<'_>, diags: &mut Diagnostics) -> Option<Checks> {
    let map = node.mapping(diags, &["settle_timeout", "extra"])?;
    let settle_timeout = duration_or(&map, "settle_timeout", Duration::from_secs(120), diags);
    let extra = match map.get("extra") {
        None => Some(Vec::new()),
        Some(n) => n.sequence(diags).and_then(|items| {
            let before = diags.len();
            let mut names = HashSet::new();
            let mut checks = Vec::with_capacity(items.len());
            for item in &items {
                let Some(check) = extra_check(item, diags) else {
                    continue;
                };
                if names.insert(check.name.clone()) {
                    checks.push(check);
                } else {
                    diags.push(
                        item.error(
                            "duplicate_check",
                            format!("check name {} is used twice", quote(&check.name)),
                        )
                        .help("give each check its own name"),
                    );
                }
            }
            (diags.len() == before).then_some(checks)
        }),
    };
    Some(Checks {
        settle_timeout: settle_timeout?,
        extra: extra?,
    })
}

fn extra_check(node: &Node<'_>, diags: &mut Diagnostics) -> Option<ExtraCheck> {
    let map = node.mapping(diags, &["name", "url", "expect"])?;
    let name = map
        .require(diags, "name", "name: supabase-health")
        .and_then(|n| n.non_empty_string(diags).map(str::to_owned));
    let url = map.require(
        diags,
        "url",
        "url: \"{app}/api/v1/sites/{site}/integrations/{provider}/health\"",
    );
    let url = url.and_then(|n| {
        let t = template_or(&map, "url", "", CHECK_PLACEHOLDERS, diags)?;
        let s = t.as_str();
        if s.starts_with("{app}/") || s.starts_with("https://") || s.starts_with("http://") {
            Some(t)
        } else {
            diags.push(
                n.error(
                    "invalid_url",
                    format!(
                        "check URL {} must start with `{{app}}/` or http(s)://",
                        quote(s)
                    ),
                )
                .help("write e.g. \"{app}/api/v1/sites/{site}/integrations/{provider}/health\""),
            );
            None
        }
    });
    let (status, json) = match map.get("expect") {
        None => (Some(200), Some(Vec::new())),
        Some(n) => match n.mapping(diags, &["status", "json"]) {
            None => (None, None),
            Some(expect) => {
                let status = match expect.get("status") {
                    None => Some(200),
                    Some(s) => bounded(&s, 100, 599, diags).map(|v| v as u16),
                };
                let json = match expect.get("json") {
                    None => Some(Vec::new()),
                    Some(j) => expectations(&j, diags),
                };
                (status, json)
            }
        },
    };
    Some(ExtraCheck {
        name: name?,
        url: url?,
        status: status?,
        json: json?,
    })
}

fn expectations(
    node: &Node<'_>,
    diags: &mut Diagnostics,
) -> Option<Vec<(String, serde_json::Value)>> {
    let map = node.mapping(diags, &[])?;
    let before = diags.len();
    let mut out = Vec::new();
    for (pointer, value) in map.entries() {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            diags.push(
                value
                    .key_error(
                        "invalid_json_pointer",
                        format!("{} is not a JSON pointer", quote(pointer)),
                    )
                    .help("start it with `/`, e.g. \"/status\""),
            );
            continue;
        }
        match serde_json::to_value(value.value()) {
            Ok(json) if !json.is_object() && !json.is_array() => {
                out.push((pointer.to_owned(), json))
            }
            _ => diags.push(
                value
                    .error(
                        "wrong_type",
                        "an expected JSON value must be a string, number, boolean or null",
                    )
                    .help("compare one field per pointer"),
            ),
        }
    }
    (diags.len() == before).then_some(out)
}

impl Config {
    /// The policy of environment `name` (the default policy for a name the config lacks: a
    /// request naming one is invalid before it gets here).
    pub fn environment(&self, name: &str) -> Environment {
        self.environments.get(name).cloned().unwrap_or_default()
    }

    /// The `break_glass.countersign_within` of `environment` (the default when it is not
    /// named or no longer configured).
    pub fn countersign_within(&self, environment: Option<&str>) -> Duration {
        environment.map_or(COUNTERSIGN_WITHIN, |env| {
            self.environment(env).break_glass.countersign_within
        })
    }

    /// The first backend rule matching `secret_ref`.
    pub fn backend_for(&self, secret_ref: &str) -> Option<&BackendRule> {
        self.backends.iter().find(|r| r.matches(secret_ref))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "version: 1\nadmins: {users: [alice]}\nenvironments: {staging: {}}\nbackends:\n  - {match: \"tenant.*.*.*\", type: vault}\napp: {base_url: \"https://app.example.com\"}\n";

    #[test]
    fn defaults() {
        let c = parse("c.yml", MINIMAL.as_bytes()).expect("valid");
        assert_eq!(c.approvals_required, 1);
        assert_eq!(c.requests_dir.as_str(), "rotations");
        assert_eq!(c.artifacts_dir.as_str(), "docs/security/rotations");
        assert_eq!(c.commit.target, CommitTarget::PrBranch);
        assert_eq!(c.concurrency, 16);
        assert_eq!(c.checks.settle_timeout, Duration::from_secs(120));
        assert_eq!(c.app.audit_timeout, Duration::from_secs(60));
        let Backend::Vault(v) = &c.backends[0].backend else {
            panic!("vault expected")
        };
        assert_eq!(
            (v.mount.as_str(), v.pointer_key.as_str()),
            ("secret", "current_version")
        );
        assert!(c.backend_for("tenant.acme.supabase.service_role").is_some());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("120").is_err());
        assert!(parse_duration("2 m").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn templates() {
        let t = Template::parse("kv/{slug}/{key}", REF_PLACEHOLDERS).expect("valid");
        assert_eq!(t.render(&[("slug", "acme"), ("key", "k")]), "kv/acme/k");
        assert!(Template::parse("{site}", REF_PLACEHOLDERS).is_err());
        assert!(Template::parse("{ref", REF_PLACEHOLDERS).is_err());
        assert!(Template::parse("ref}", REF_PLACEHOLDERS).is_err());
    }

    #[test]
    fn authors() {
        assert_eq!(
            parse_author("rotor <rotor@users.noreply.github.com>"),
            Some(("rotor".into(), "rotor@users.noreply.github.com".into()))
        );
        assert_eq!(parse_author("rotor"), None);
        assert_eq!(parse_author("<a@b>"), None);
    }

    #[test]
    fn first_backend_rule_wins() {
        let text = MINIMAL.replace(
            "  - {match: \"tenant.*.*.*\", type: vault}\n",
            "  - {match: \"tenant.*.stripe.*\", type: aws-secrets-manager}\n  - {match: \"tenant.*.*.*\", type: vault}\n",
        );
        let c = parse("c.yml", text.as_bytes()).expect("valid");
        assert_eq!(
            c.backend_for("tenant.a.stripe.k").map(|r| r.backend.kind()),
            Some("aws-secrets-manager")
        );
        assert_eq!(
            c.backend_for("tenant.a.supabase.k")
                .map(|r| r.backend.kind()),
            Some("vault")
        );
        assert!(c.backend_for("other").is_none());
    }
}
