//! The secret managers: what one ref's secret looks like, and how its pointer moves.
//!
//! A backend answers, for one ref and **without ever reading a value**: the versions (id,
//! creation time, state), the version the pointer designates, the previous and pending ones,
//! and rotor's marker. It moves the pointer only by compare-and-swap. Two backends exist,
//! dispatched by enum: [`vault`] (Vault/OpenBao KV v2, over reqwest) and [`aws`] (AWS Secrets
//! Manager, over the official SDK).

pub mod aws;
pub mod gcp;
mod http;
pub mod list;
pub mod vault;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Backend as BackendConfig, Config};
use crate::ids::{SecretRef, VersionId};
use crate::secret::SecretString;

/// A version's state. AWS versions are always `enabled` while listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionState {
    /// Usable.
    Enabled,
    /// Kept but not usable.
    Disabled,
    /// Soft-deleted (Vault `deletion_time` in the past); recoverable.
    Deleted,
    /// Destroyed; gone for good.
    Destroyed,
}

impl VersionState {
    /// Its one spelling, in messages and in JSON alike.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
            Self::Deleted => "deleted",
            Self::Destroyed => "destroyed",
        }
    }
}

impl fmt::Display for VersionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    /// The version id.
    pub id: VersionId,
    /// When it was created, if the backend says.
    pub created: Option<DateTime<Utc>>,
    /// Its state.
    pub state: VersionState,
}

/// The state recorded by rotor's marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerState {
    /// A rotation holds the ref (written before the pointer moves).
    Pending,
    /// The rotation succeeded.
    Done,
    /// The rotation was rolled back.
    RolledBack,
    /// The pointer stays on the verified target but the audit trail was not confirmed.
    Failed,
}

impl MarkerState {
    /// The marker's spelling in the backend.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Done => "done",
            Self::RolledBack => "rolled_back",
            Self::Failed => "failed",
        }
    }

    /// Parses the backend's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "pending" => Self::Pending,
            "done" => Self::Done,
            "rolled_back" => Self::RolledBack,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// rotor's marker on a secret: which rotation last touched it, and how that ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    /// The rotation id.
    pub rotation_id: String,
    /// Its state; `pending` means the ref is locked by that rotation.
    pub state: MarkerState,
    /// The version the pointer moved from.
    pub from: Option<VersionId>,
    /// The version the pointer moved to.
    pub to: Option<VersionId>,
    /// A `pending` marker whose rotation decided to roll back: written before the pointer moves
    /// back, so that a run stopped half-way through a rollback finishes the rollback when run
    /// again instead of rotating forward once more.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rolling_back: bool,
    /// The pull request that carried the rotation: an id is never reused, so a marker of the
    /// same id from another pull request is never taken for this run's own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<u64>,
}

impl Marker {
    /// Whether this marker was written by rotation `rotation_id` of pull request `pull_request`.
    pub fn is_of(&self, rotation_id: &str, pull_request: Option<u64>) -> bool {
        self.rotation_id == rotation_id && self.pull_request == pull_request
    }
}

/// The names a backend gives the six fields of rotor's marker: AWS tags, Vault/OpenBao
/// `custom_metadata` keys. Both backends write and read a marker through this one table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MarkerKeys {
    /// The rotation id; a marker exists when it does.
    pub(crate) id: &'static str,
    /// The state.
    pub(crate) state: &'static str,
    /// The version moved from.
    pub(crate) from: &'static str,
    /// The version moved to.
    pub(crate) to: &'static str,
    /// `true` while a rollback is intended.
    pub(crate) rollback: &'static str,
    /// The pull request number.
    pub(crate) pull_request: &'static str,
}

impl MarkerKeys {
    /// Every name, for removing a marker or counting the room it needs.
    pub(crate) const fn all(&self) -> [&'static str; 6] {
        [
            self.id,
            self.state,
            self.from,
            self.to,
            self.rollback,
            self.pull_request,
        ]
    }

    /// The marker's fields under these names: a value to write, or `None` for a key the marker
    /// does not hold (removed, or left out).
    pub(crate) fn fields(&self, m: &Marker) -> [(&'static str, Option<String>); 6] {
        [
            (self.id, Some(m.rotation_id.clone())),
            (self.state, Some(m.state.as_str().to_owned())),
            (self.from, m.from.as_ref().map(ToString::to_string)),
            (self.to, m.to.as_ref().map(ToString::to_string)),
            (self.rollback, m.rolling_back.then(|| "true".to_owned())),
            (self.pull_request, m.pull_request.map(|n| n.to_string())),
        ]
    }

    /// `map` (a key-value store the marker lives in: Vault's `custom_metadata`, GCP's
    /// annotations) with these keys replaced by `marker`'s fields, or removed with `None`;
    /// every other key is kept.
    pub(crate) fn written_over(
        &self,
        map: &std::collections::BTreeMap<String, String>,
        marker: Option<&Marker>,
    ) -> std::collections::BTreeMap<String, String> {
        let mut desired = map.clone();
        for key in self.all() {
            desired.remove(key);
        }
        for (key, value) in marker.map(|m| self.fields(m)).into_iter().flatten() {
            if let Some(value) = value {
                desired.insert(key.to_owned(), value);
            }
        }
        desired
    }

    /// The marker these fields hold (`get` looks a name up): `None` without a rotation id;
    /// `Err` with the state's name when the state is missing or unknown.
    pub(crate) fn read<'a>(
        &self,
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Marker>, &'static str> {
        let Some(id) = get(self.id) else {
            return Ok(None);
        };
        let version = |name: &str| get(name).and_then(|v| VersionId::from_backend(v).ok());
        Ok(Some(Marker {
            rotation_id: id.to_owned(),
            state: get(self.state)
                .and_then(MarkerState::parse)
                .ok_or(self.state)?,
            from: version(self.from),
            to: version(self.to),
            rolling_back: get(self.rollback) == Some("true"),
            pull_request: get(self.pull_request).and_then(|n| n.parse().ok()),
        }))
    }
}

/// For a backend whose version ids are increasing numbers (Vault/OpenBao, GCP): sorts
/// `versions` newest first and returns the pending ones, the enabled versions newer than
/// `current`, oldest first (none without a pointer).
pub(crate) fn numbered_pending(
    versions: &mut [Version],
    current: Option<&VersionId>,
) -> Vec<VersionId> {
    let number = |v: &VersionId| v.as_str().parse::<u64>().unwrap_or(0);
    versions.sort_by_key(|v| std::cmp::Reverse(number(&v.id)));
    let Some(cur) = current else {
        return Vec::new();
    };
    versions
        .iter()
        .rev()
        .filter(|v| v.state == VersionState::Enabled && number(&v.id) > number(cur))
        .map(|v| v.id.clone())
        .collect()
}

/// Versions the record rejected, by ref: each with the rotation whose rollback rejected it.
pub type Rejections = HashMap<String, Vec<(VersionId, String)>>;

/// What a backend knows about one ref, read without reading any value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefState {
    /// The version the pointer designates; `None` when a Vault secret has no pointer yet.
    pub current: Option<VersionId>,
    /// The previous known-good version.
    pub previous: Option<VersionId>,
    /// Pending versions: AWS's `AWSPENDING`; on Vault, the usable versions newer than the pointer.
    pub pending: Vec<VersionId>,
    /// Every version, newest first.
    pub versions: Vec<Version>,
    /// rotor's marker, if any.
    pub marker: Option<Marker>,
    /// What the next compare-and-swap must check against.
    pub(crate) revision: Revision,
    /// Versions the record on the default branch says a rollback rejected, with the rotation
    /// that rejected each: the marker remembers only the last, and can be erased.
    pub record_rejected: Vec<(VersionId, String)>,
    /// States of the secret that are not rotor's to change.
    pub conditions: Conditions,
}

/// The backend-specific part of a read that a later write must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Revision {
    /// Vault/OpenBao: the whole `custom_metadata` (a write replaces it) and, on OpenBao, the
    /// `current_metadata_version` that `metadata_cas` checks.
    Vault {
        custom: std::collections::BTreeMap<String, String>,
        metadata_version: Option<u64>,
    },
    /// AWS: labels are checked by the service itself (`RemoveFromVersionId`); the tag keys
    /// the secret carries, for the room check.
    Aws {
        stages: HashMap<String, Vec<String>>,
        tags: std::collections::BTreeSet<String>,
    },
    /// GCP: the secret's etag, which every patch carries, and its aliases and annotations as
    /// read (a patch of a map replaces it whole).
    Gcp {
        etag: Option<String>,
        aliases: std::collections::BTreeMap<String, String>,
        annotations: std::collections::BTreeMap<String, String>,
    },
}

/// A secret without room for rotor's marker keys (see [`RefState::metadata_room`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Room {
    /// Keys (or tags) the secret holds now.
    pub held: usize,
    /// Keys rotor would add.
    pub needed: usize,
    /// The server's limit.
    pub limit: usize,
}

impl RefState {
    /// The version `id`, if the backend lists it.
    pub fn version(&self, id: &VersionId) -> Option<&Version> {
        self.versions.iter().find(|v| &v.id == id)
    }

    /// The version the marker says a rollback rejected: its `to` when it says `rolled_back`.
    fn marker_rejected(&self) -> Option<(&VersionId, &str)> {
        self.marker
            .as_ref()
            .filter(|m| m.state == MarkerState::RolledBack)
            .and_then(|m| m.to.as_ref().map(|to| (to, m.rotation_id.as_str())))
    }

    /// Every version a rollback of this ref rejected, with the rotation that rejected it: the
    /// union of the marker and the record, so that erasing a marker forgets nothing. None is
    /// ever a default target again.
    pub fn rejected(&self) -> Vec<(&VersionId, &str)> {
        let mut out: Vec<(&VersionId, &str)> = self.marker_rejected().into_iter().collect();
        for (v, id) in &self.record_rejected {
            if !out.iter().any(|(o, _)| *o == v) {
                out.push((v, id.as_str()));
            }
        }
        out
    }

    /// The rotation whose rollback rejected `version`, if one did.
    pub fn rejected_by(&self, version: &VersionId) -> Option<&str> {
        self.rejected()
            .into_iter()
            .find(|(v, _)| *v == version)
            .map(|(_, id)| id)
    }

    /// What a rotation without `to` could move to: the pending versions, less every one a
    /// rollback rejected.
    pub fn candidates(&self) -> Vec<VersionId> {
        self.pending
            .iter()
            .filter(|v| self.rejected_by(v).is_none())
            .cloned()
            .collect()
    }

    /// The version a rotation moves to: `to` when the request names one, else the single
    /// candidate (a pending version no rollback rejected); it must exist, be enabled and differ
    /// from the current one.
    pub fn target(&self, to: Option<&VersionId>) -> Result<VersionId, TargetProblem> {
        let current = self.current.as_ref().ok_or(TargetProblem::NoPointer)?;
        let candidates = self.candidates();
        let target = match to {
            Some(t) => t.clone(),
            None => match candidates.as_slice() {
                [] => {
                    let rejected = self
                        .rejected()
                        .into_iter()
                        .find(|(r, _)| self.pending.contains(r));
                    return Err(match rejected {
                        Some((r, _)) => TargetProblem::Rejected(r.to_string()),
                        None => TargetProblem::NoPending,
                    });
                }
                [one] => one.clone(),
                several => {
                    return Err(TargetProblem::SeveralPending(
                        several.iter().map(ToString::to_string).collect(),
                    ));
                }
            },
        };
        if let Some(function) = &self.conditions.rotation_function
            && self.pending.contains(&target)
        {
            return Err(TargetProblem::OwnedByRotation(
                target.to_string(),
                function.clone(),
            ));
        }
        let version = self
            .version(&target)
            .ok_or_else(|| TargetProblem::Missing(target.to_string()))?;
        if version.state != VersionState::Enabled {
            return Err(TargetProblem::NotEnabled(target.to_string(), version.state));
        }
        if &target == current {
            return Err(TargetProblem::AlreadyCurrent(target.to_string()));
        }
        Ok(target)
    }

    /// When the secret has no room for rotor's marker keys: how many keys it holds, how many
    /// rotor would add, and the server's limit (Vault/OpenBao: 64 `custom_metadata` keys; AWS:
    /// 50 tags per secret).
    pub fn metadata_room(&self) -> Option<Room> {
        let (held, limit, missing) = match &self.revision {
            Revision::Vault { custom, .. } => (
                custom.len(),
                64,
                vault::MARKER_KEYS
                    .all()
                    .iter()
                    .chain([&vault::PREVIOUS_KEY])
                    .filter(|k| !custom.contains_key(**k))
                    .count(),
            ),
            Revision::Aws { tags, .. } => (
                tags.len(),
                50,
                aws::MARKER_TAGS
                    .all()
                    .iter()
                    .filter(|k| !tags.contains(**k))
                    .count(),
            ),
            // Google limits the annotations' total size (16 KiB), not their number: rotor's
            // few short keys fit any secret that has room for one more.
            Revision::Gcp { .. } => return None,
        };
        (held + missing > limit).then_some(Room {
            held,
            needed: missing,
            limit,
        })
    }

    /// Whether the ref is locked by a rotation other than `rotation_id`.
    pub fn locked_by_other(&self, rotation_id: &str) -> Option<&Marker> {
        self.marker
            .as_ref()
            .filter(|m| m.state == MarkerState::Pending && m.rotation_id != rotation_id)
    }

    /// The marker of rotation `rotation_id` from pull request `pull_request`, if it is there.
    pub fn marker_of(&self, rotation_id: &str, pull_request: Option<u64>) -> Option<&Marker> {
        self.marker
            .as_ref()
            .filter(|m| m.is_of(rotation_id, pull_request))
    }

    /// A marker with this rotation id written for another pull request (or by a rotor that
    /// did not record one): the id is taken, and this run must not treat it as its own.
    pub fn id_taken(&self, rotation_id: &str, pull_request: Option<u64>) -> Option<&Marker> {
        self.marker
            .as_ref()
            .filter(|m| m.rotation_id == rotation_id && m.pull_request != pull_request)
    }
}

/// Why a ref has no version to rotate to (preconditions; exit 4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetProblem {
    /// The pointer is absent (Vault), so there is nothing to compare or roll back to.
    #[error("the secret has no pointer yet")]
    NoPointer,
    /// No `to` in the request and no pending version in the backend.
    #[error(
        "no pending version: provision the new value in the secret manager first (runbook precondition 3), or name `to`"
    )]
    NoPending,
    /// No `to`, and the only pending version is the one a rollback rejected.
    #[error(
        "no pending version: the only newer version, {0}, was rejected by a rollback; provision a new value in the secret manager (runbook precondition 3), or name `to` to use {0} anyway"
    )]
    Rejected(String),
    /// No `to` and several pending versions.
    #[error("several pending versions ({}): name the target with `to`", .0.join(", "))]
    SeveralPending(Vec<String>),
    /// The target version does not exist.
    #[error("target version {0} does not exist")]
    Missing(String),
    /// The target version exists but cannot be used.
    #[error("target version {0} is {1}, not enabled")]
    NotEnabled(String, VersionState),
    /// The target is already what the pointer designates.
    #[error("the pointer already designates version {0}")]
    AlreadyCurrent(String),
    /// The target is the version an AWS rotation function left `AWSPENDING`: the function owns
    /// it, and the service behind it may never have received it.
    #[error(
        "version {0} is the one the secret's rotation function {1} left AWSPENDING: the function owns it, and the service behind it may never have received it; turn the function's rotation off (aws secretsmanager cancel-rotate-secret), or let it finish"
    )]
    OwnedByRotation(String, String),
}

/// States a backend can be in that are not rotor's to change: `plan`, `apply` and `rollback`
/// refuse them before any change (exit 4), naming the state and its remedy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// AWS: the secret is scheduled for deletion, on this date.
    pub deletion: Option<String>,
    /// AWS: this region holds a replica; the primary is in this region.
    pub replica_of: Option<String>,
    /// AWS: rotation is enabled, with this function.
    pub rotation_function: Option<String>,
    /// GCP: the secret expires (is deleted) at this time.
    pub expires: Option<DateTime<Utc>>,
}

impl Conditions {
    /// Why rotor must not change the secret at all, with the remedy; `need` is how long the
    /// run may hold it (a GCP secret expiring before then is not rotor's to move).
    pub fn refusal(&self, location: &str, need: Duration) -> Option<String> {
        if let Some(at) = self.expires
            && at < Utc::now() + chrono::Duration::from_std(need).unwrap_or(chrono::Duration::MAX)
        {
            return Some(format!(
                "the secret expires at {} (its expireTime), before the run could finish: remove the expiration first (gcloud secrets update {location} --remove-expiration), or leave it out of the request",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        if let Some(date) = &self.deletion {
            return Some(format!(
                "the secret is scheduled for deletion on {date}: restore it first (aws secretsmanager restore-secret --secret-id {location}), or leave it out of the request"
            ));
        }
        self.replica_of.as_ref().map(|primary| {
            format!(
                "this region holds a replica of the secret, whose primary is in {primary}: rotor writes only to the primary; point the backend rule's `region` at {primary}"
            )
        })
    }
}

/// What went wrong, in terms the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The backend rejected rotor's credentials (401, or AWS's unrecognised/expired token).
    #[error("the credentials were rejected: {hint}")]
    Unauthorized {
        /// Where rotor took the credentials from.
        hint: String,
    },
    /// The credentials lack a permission (403, `AccessDeniedException`).
    #[error("permission denied: rotor needs {permission}")]
    Forbidden {
        /// The permission to grant.
        permission: String,
    },
    /// The secret does not exist where the config says (404, `ResourceNotFoundException`).
    #[error("no secret at {location}; check the backend rule's path/name template and mount")]
    NotFound {
        /// Where rotor looked.
        location: String,
    },
    /// A Vault secret without its pointer in `custom_metadata`.
    #[error(
        "the secret has no pointer yet; set it to the version the application uses now: `{command}`"
    )]
    PointerAbsent {
        /// The command that sets it.
        command: String,
    },
    /// The compare-and-swap found the state changed since rotor read it.
    #[error("conflict: {detail}")]
    Conflict {
        /// What changed.
        detail: String,
    },
    /// The backend refused a write for good, in its own words (OpenBao's limit of 64
    /// `custom_metadata` keys, an invalid value): nothing was changed by it.
    #[error("refused: {detail}")]
    Refused {
        /// The backend's own message.
        detail: String,
    },
    /// The backend stayed unreachable, throttled or failing after retries.
    #[error("unavailable after retries: {detail}")]
    Unavailable {
        /// The last failure.
        detail: String,
    },
    /// rotor cannot reach or authenticate to the backend as configured (no address, no token).
    #[error("{detail}")]
    Setup {
        /// What is missing.
        detail: String,
    },
    /// The backend answered something rotor does not understand.
    #[error("unexpected answer: {detail}")]
    Protocol {
        /// What was unexpected.
        detail: String,
    },
    /// A state of the secret that is not rotor's to change (scheduled for deletion, a replica).
    #[error("{detail}")]
    NotRotors {
        /// The state and its remedy.
        detail: String,
    },
    /// The Vault/OpenBao token will not outlive the run, or has expired: not a missing
    /// permission, and said as such.
    #[error("{detail}")]
    TokenLifetime {
        /// When it expires, and what to do.
        detail: String,
    },
}

impl ErrorKind {
    /// A stable code for reports.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "backend_unauthorized",
            Self::Forbidden { .. } => "backend_forbidden",
            Self::NotFound { .. } => "secret_not_found",
            Self::PointerAbsent { .. } => "pointer_absent",
            Self::Conflict { .. } => "conflict",
            Self::Refused { .. } => "backend_refused",
            Self::Unavailable { .. } => "backend_unavailable",
            Self::Setup { .. } => "backend_setup",
            Self::Protocol { .. } => "backend_protocol",
            Self::NotRotors { .. } => "backend_state",
            Self::TokenLifetime { .. } => "token_lifetime",
        }
    }
}

/// A backend call that failed: which ref, which backend, which call, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{secret_ref}: {backend} {call}: {kind}")]
pub struct BackendError {
    /// The ref concerned.
    pub secret_ref: String,
    /// `vault` or `aws-secrets-manager`.
    pub backend: &'static str,
    /// The API call, e.g. `GET secret/metadata/…` or `UpdateSecretVersionStage`.
    pub call: String,
    /// Why.
    pub kind: ErrorKind,
}

/// Where one ref's secret lives, and the client that reaches it.
#[derive(Debug, Clone)]
pub struct Secret {
    /// The ref.
    pub secret_ref: SecretRef,
    /// The secret's path (Vault) or name (AWS), from the backend rule's template.
    pub location: String,
    client: Client,
}

/// The client (one per service, shared by every ref it serves) and the rule's settings.
#[derive(Debug, Clone)]
enum Client {
    Vault {
        client: Arc<vault::Vault>,
        mount: String,
        pointer_key: String,
    },
    Aws {
        client: Arc<aws::Aws>,
        stage: String,
    },
    Gcp {
        client: Arc<gcp::Gcp>,
        project: String,
        alias: String,
    },
}

impl Secret {
    /// `vault` or `aws-secrets-manager`.
    pub const fn backend(&self) -> &'static str {
        match self.client {
            Client::Vault { .. } => "vault",
            Client::Aws { .. } => "aws-secrets-manager",
            Client::Gcp { .. } => "gcp-secret-manager",
        }
    }

    /// A description for logs: backend and location.
    pub fn describe(&self) -> String {
        match &self.client {
            Client::Vault { mount, .. } => format!("vault {mount}/{}", self.location),
            Client::Aws { stage, .. } => format!("aws-secrets-manager {} ({stage})", self.location),
            Client::Gcp { project, alias, .. } => {
                format!(
                    "gcp-secret-manager projects/{project}/secrets/{} ({alias})",
                    self.location
                )
            }
        }
    }

    /// For a Vault secret without its pointer: the command that sets it.
    pub fn pointer_hint(&self) -> Option<String> {
        match &self.client {
            Client::Vault {
                mount, pointer_key, ..
            } => Some(vault::set_pointer_command(
                mount,
                pointer_key,
                &self.location,
            )),
            Client::Aws { .. } => None,
            Client::Gcp { project, alias, .. } => {
                Some(gcp::set_alias_command(project, &self.location, alias))
            }
        }
    }

    /// For a version that is not enabled: what makes it a target, where the backend has a
    /// command for it (GCP: a `DISABLED` version can be enabled again; a `DESTROYED` one never).
    pub fn enable_hint(&self, version: &str) -> Option<String> {
        match &self.client {
            Client::Gcp { project, .. } => Some(format!(
                "if it is DISABLED, enable it (`gcloud secrets versions enable {version} --secret {} --project {project}`); a DESTROYED version is gone: provision a new one",
                self.location
            )),
            _ => None,
        }
    }

    /// Reads the state.
    pub async fn read(&self) -> Result<RefState, BackendError> {
        match &self.client {
            Client::Vault {
                client,
                mount,
                pointer_key,
            } => client.read(self, mount, pointer_key).await,
            Client::Aws { client, stage } => client.read(self, stage).await,
            Client::Gcp { client, alias, .. } => client.read(self, alias).await,
        }
    }

    /// Locks the ref for `rotation_id` of `pull_request` by writing a `pending` marker,
    /// checked against `seen`.
    pub async fn lock(
        &self,
        seen: &RefState,
        rotation_id: &str,
        pull_request: Option<u64>,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        self.lock_as(seen, rotation_id, pull_request, from, to, false)
            .await
    }

    /// Locks the ref for a dispatched rollback of `rotation_id`: the lock and the intent to
    /// move back in one write, so that a stop right after it resumes the rollback.
    pub async fn lock_for_rollback(
        &self,
        seen: &RefState,
        rotation_id: &str,
        pull_request: Option<u64>,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        self.lock_as(seen, rotation_id, pull_request, from, to, true)
            .await
    }

    async fn lock_as(
        &self,
        seen: &RefState,
        rotation_id: &str,
        pull_request: Option<u64>,
        from: &VersionId,
        to: &VersionId,
        rolling_back: bool,
    ) -> Result<RefState, BackendError> {
        let marker = Marker {
            rotation_id: rotation_id.to_owned(),
            state: MarkerState::Pending,
            from: Some(from.clone()),
            to: Some(to.clone()),
            rolling_back,
            pull_request,
        };
        // On AWS tags have no compare-and-swap: TagResource overwrites whatever marker is
        // there, so the lock is checked against `seen` by a fresh read just before it is
        // written. `seen` may be the preconditions' read, seconds old: another run may have
        // finished the ref (a `done` marker, the pointer moved) or another rotation locked it
        // since. Writing then would replace their marker with this run's `pending` one: a
        // conflict, with nothing written, which `lost_the_move` reads to learn who won.
        // On OpenBao the marker write below is itself a check-and-set against `seen`.
        if !self.moves_with_its_lock() {
            let fresh = self.read().await?;
            if fresh.marker != seen.marker || fresh.current != seen.current {
                return Err(self.error(
                    "lock",
                    ErrorKind::Conflict {
                        detail: format!(
                            "the ref changed since it was read (marker now {}, pointer on {}); nothing was written",
                            fresh.marker.as_ref().map_or("absent".to_owned(), |m| format!(
                                "{} {}",
                                m.rotation_id,
                                m.state.as_str()
                            )),
                            fresh.current.as_ref().map_or("no version", VersionId::as_str)
                        ),
                    },
                ));
            }
        }
        // On AWS, read back to make sure the lock is ours (another run's tags may have landed
        // after ours). On OpenBao the check-and-set write itself proved it.
        let now = match self.write_marker(seen, Some(&marker)).await? {
            Some(known) => known,
            None => self.read().await?,
        };
        match now.marker.as_ref() {
            Some(m) if m.is_of(rotation_id, pull_request) && m.state == MarkerState::Pending => {
                Ok(now)
            }
            other => Err(self.error(
                "lock",
                ErrorKind::Conflict {
                    detail: format!(
                        "another writer changed the marker while rotor locked the ref (now {})",
                        other.map_or("absent".to_owned(), |m| format!(
                            "{} {}",
                            m.rotation_id,
                            m.state.as_str()
                        ))
                    ),
                },
            )),
        }
    }

    /// Whether the lock and the move are one write here (Vault/OpenBao: the marker and the
    /// pointer live in one metadata object; GCP: one patch of the secret, checked by its etag).
    pub const fn moves_with_its_lock(&self) -> bool {
        matches!(self.client, Client::Vault { .. } | Client::Gcp { .. })
    }

    /// Whether `state` (read from this secret) is one rotor may change: a state that is not
    /// rotor's to change (scheduled for deletion, a replica) is a precondition, exit 4.
    pub fn changeable(&self, state: &RefState, need: Duration) -> Result<(), BackendError> {
        match state.conditions.refusal(&self.location, need) {
            Some(detail) => Err(BackendError {
                secret_ref: self.secret_ref.to_string(),
                backend: self.backend(),
                call: match self.client {
                    Client::Gcp { .. } => "secrets.get",
                    _ => "DescribeSecret",
                }
                .to_owned(),
                kind: ErrorKind::NotRotors { detail },
            }),
            None => Ok(()),
        }
    }

    /// Whether the backend's credentials can last `need` (a run's longest stretch: the
    /// settle and audit timeouts and a minute); a Vault/OpenBao token that cannot, and cannot
    /// be renewed, is a precondition (exit 4) before any change.
    pub fn lasts(&self, need: Duration) -> Result<(), BackendError> {
        match &self.client {
            Client::Vault { client, .. } => client.lasts(need).map_err(|detail| BackendError {
                secret_ref: self.secret_ref.to_string(),
                backend: "vault",
                call: "auth/token/lookup-self".to_owned(),
                kind: ErrorKind::TokenLifetime { detail },
            }),
            Client::Aws { .. } | Client::Gcp { .. } => Ok(()),
        }
    }

    /// Locks the ref for `rotation_id` of `pull_request` and moves its pointer from `from` to
    /// `to`. On Vault/OpenBao the marker and the pointer live in one metadata object, so this
    /// is one check-and-set write: no state "locked, pointer not moved" ever exists. On AWS the
    /// lock (tags) comes first, then the move (the service's compare-and-swap on the label).
    pub async fn lock_and_repoint(
        &self,
        seen: &RefState,
        rotation_id: &str,
        pull_request: Option<u64>,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, LockMoveError> {
        let marker = Marker {
            rotation_id: rotation_id.to_owned(),
            state: MarkerState::Pending,
            from: Some(from.clone()),
            to: Some(to.clone()),
            rolling_back: false,
            pull_request,
        };
        match &self.client {
            Client::Vault {
                client,
                mount,
                pointer_key,
            } => client
                .lock_and_repoint(self, mount, pointer_key, seen, &marker, from, to)
                .await
                .map_err(LockMoveError::Lock),
            Client::Gcp { client, alias, .. } => client
                .move_alias(self, alias, seen, Some(&marker), from, to)
                .await
                .map_err(LockMoveError::Lock),
            Client::Aws { .. } => {
                let locked = self
                    .lock(seen, rotation_id, pull_request, from, to)
                    .await
                    .map_err(LockMoveError::Lock)?;
                self.repoint(&locked, from, to)
                    .await
                    .map_err(|e| LockMoveError::Move(e, Box::new(locked)))
            }
        }
    }

    /// Moves the pointer from `from` to `to`, failing with a conflict if it no longer
    /// designates `from`. Records `from` as the previous version.
    pub async fn repoint(
        &self,
        seen: &RefState,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        match &self.client {
            Client::Vault {
                client,
                mount,
                pointer_key,
            } => {
                client
                    .repoint(self, mount, pointer_key, seen, from, to)
                    .await
            }
            Client::Aws { client, stage } => client.repoint(self, stage, seen, from, to).await,
            Client::Gcp { client, alias, .. } => {
                client.move_alias(self, alias, seen, None, from, to).await
            }
        }
    }

    /// Records the rotation's final state in the marker, releasing the lock.
    pub async fn finish(
        &self,
        seen: &RefState,
        rotation_id: &str,
        state: MarkerState,
    ) -> Result<RefState, BackendError> {
        // Never over another rotation's marker: on AWS two rotations can both believe they
        // locked a ref (tags have no check-and-set); the one whose marker is not there stops.
        if let Some(other) = seen
            .marker
            .as_ref()
            .filter(|m| m.rotation_id != rotation_id)
        {
            return Err(self.error(
                "mark",
                ErrorKind::Conflict {
                    detail: format!(
                        "the marker is rotation {}'s, not this rotation's",
                        other.rotation_id
                    ),
                },
            ));
        }
        let mut marker = seen.marker.clone().unwrap_or(Marker {
            rotation_id: rotation_id.to_owned(),
            state,
            from: None,
            to: None,
            rolling_back: false,
            pull_request: None,
        });
        marker.rotation_id = rotation_id.to_owned();
        marker.state = state;
        marker.rolling_back = false;
        // On AWS the final marker's writes succeeding say what the state is: no read after
        // them. (Plain Vault, without check-and-set, reads its write back.)
        match self.write_marker(seen, Some(&marker)).await? {
            Some(known) => Ok(known),
            None if matches!(self.client, Client::Aws { .. }) => Ok(aws::marked(seen, &marker)),
            None => self.read().await,
        }
    }

    /// Records, in this rotation's `pending` marker, that it is rolling back (before the
    /// pointer moves back). Returns the state read back.
    pub async fn intend_rollback(
        &self,
        seen: &RefState,
        rotation_id: &str,
    ) -> Result<RefState, BackendError> {
        let Some(mut marker) = seen
            .marker
            .clone()
            .filter(|m| m.rotation_id == rotation_id && m.state == MarkerState::Pending)
        else {
            return Err(self.error(
                "mark rollback",
                ErrorKind::Conflict {
                    detail: "this rotation no longer holds the lock".to_owned(),
                },
            ));
        };
        if marker.rolling_back {
            return Ok(seen.clone());
        }
        marker.rolling_back = true;
        let now = match self.write_marker(seen, Some(&marker)).await? {
            Some(known) => known,
            None => self.read().await?,
        };
        match now.marker.as_ref() {
            Some(m) if m.rotation_id == rotation_id && m.rolling_back => Ok(now),
            _ => Err(self.error(
                "mark rollback",
                ErrorKind::Conflict {
                    detail: "another writer changed the marker".to_owned(),
                },
            )),
        }
    }

    /// Removes rotor's marker (a lock released after a conflict); only if it is `rotation_id`'s.
    pub async fn unlock(
        &self,
        seen: &RefState,
        rotation_id: &str,
    ) -> Result<RefState, BackendError> {
        if seen
            .marker
            .as_ref()
            .is_some_and(|m| m.rotation_id == rotation_id)
        {
            return match self.write_marker(seen, None).await? {
                Some(known) => Ok(known),
                None => self.read().await,
            };
        }
        Ok(seen.clone())
    }

    /// Removes the pending label from `version` (AWS `AWSPENDING`); nothing to do on Vault.
    pub async fn clear_pending(
        &self,
        seen: &RefState,
        version: &VersionId,
    ) -> Result<(), BackendError> {
        match &self.client {
            Client::Vault { .. } | Client::Gcp { .. } => Ok(()),
            Client::Aws { client, stage } => client.clear_pending(self, stage, seen, version).await,
        }
    }

    /// Writes the marker; returns the new state when the backend knows it without a read.
    async fn write_marker(
        &self,
        seen: &RefState,
        marker: Option<&Marker>,
    ) -> Result<Option<RefState>, BackendError> {
        match &self.client {
            Client::Vault {
                client,
                mount,
                pointer_key,
            } => {
                client
                    .write_marker(self, mount, pointer_key, seen, marker)
                    .await
            }
            Client::Aws { client, stage } => {
                let _ = seen;
                client.write_marker(self, stage, marker).await
            }
            Client::Gcp { client, alias, .. } => client
                .write_marker(self, alias, seen, marker)
                .await
                .map(Some),
        }
    }

    /// An error of this secret's `call`.
    pub(crate) fn error(&self, call: &str, kind: ErrorKind) -> BackendError {
        BackendError {
            secret_ref: self.secret_ref.to_string(),
            backend: self.backend(),
            call: call.to_owned(),
            kind,
        }
    }
}

/// Why [`Secret::lock_and_repoint`] failed, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockMoveError {
    /// Nothing landed: the lock (or, on Vault, the one write) was refused.
    Lock(BackendError),
    /// The lock landed (its state is given) but the move did not.
    Move(BackendError, Box<RefState>),
}

impl LockMoveError {
    /// The backend's error.
    pub fn error(&self) -> &BackendError {
        match self {
            Self::Lock(e) | Self::Move(e, _) => e,
        }
    }
}

/// Why a ref cannot be given a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No `backends` rule matches the ref.
    #[error(
        "{0}: no `backends` rule in the config matches this ref; add one (rules are globs, first match wins)"
    )]
    NoRule(String),
    /// The backend cannot be set up (no address, no token, a failed login).
    #[error(transparent)]
    Setup(#[from] BackendError),
}

/// Builds each backend client once and hands out [`Secret`]s.
#[derive(Debug, Default)]
pub struct Backends {
    vault: HashMap<String, Arc<vault::Vault>>,
    aws: HashMap<Option<String>, Arc<aws::Aws>>,
    gcp: HashMap<String, Arc<gcp::Gcp>>,
}

/// Fetches a JWT for an audience (in Actions, the runner's OIDC token): what a Vault or
/// OpenBao JWT role trusts. The GitHub side provides it (`github::oidc`); the backends only
/// receive the token.
pub type JwtSource = Arc<
    dyn Fn(
            Option<String>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<SecretString, String>> + Send>,
        > + Send
        + Sync,
>;

/// Told each credential a backend derives (a Vault login token), so that the caller can have
/// the runner mask it; a backend itself prints nothing.
pub type Masker = Arc<dyn Fn(&str) + Send + Sync>;

/// How clients reach the outside world; a seam for tests, defaulting to the process environment.
#[derive(Clone, Default)]
pub struct Environment {
    /// Variables to read instead of the process environment, when set.
    pub vars: Option<HashMap<String, String>>,
    /// Where JWTs come from, for `auth: {method: jwt}`.
    pub jwt: Option<JwtSource>,
    /// Who is told derived credentials.
    pub mask: Option<Masker>,
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Environment")
            .field(
                "vars",
                &self.vars.as_ref().map(|v| v.keys().collect::<Vec<_>>()),
            )
            .field("jwt", &self.jwt.is_some())
            .finish_non_exhaustive()
    }
}

impl Environment {
    /// An environment of these variables only (tests, embedding).
    pub fn with_vars(vars: HashMap<String, String>) -> Self {
        Self {
            vars: Some(vars),
            ..Self::default()
        }
    }

    /// Hands a derived credential to the masker, if there is one.
    pub(crate) fn derived(&self, credential: &str) {
        if let Some(mask) = &self.mask {
            mask(credential);
        }
    }

    /// A variable, from the override map or the process environment; empty counts as absent.
    pub fn var(&self, name: &str) -> Option<String> {
        let value = match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        value.filter(|v| !v.trim().is_empty())
    }
}

/// Where `secret_ref`'s secret lives, as a comparable key, worked out from the config and the
/// environment without any call: the server (address and namespace, or region), the mount and
/// the rendered path or name. Two refs with the same key are one secret; `None` when no rule
/// matches the ref.
pub fn location_key(config: &Config, secret_ref: &SecretRef, env: &Environment) -> Option<String> {
    let rule = config.backend_for(secret_ref.as_str())?;
    let vars = [
        ("ref", secret_ref.as_str()),
        ("slug", secret_ref.slug()),
        ("provider", secret_ref.provider()),
        ("key", secret_ref.key()),
    ];
    Some(match &rule.backend {
        BackendConfig::Vault(cfg) => format!(
            "vault {} {} {}/metadata/{}",
            vault::Vault::client_key(cfg, env),
            env.var("VAULT_NAMESPACE")
                .or_else(|| env.var("BAO_NAMESPACE"))
                .unwrap_or_default(),
            cfg.mount,
            cfg.path.render(&vars).trim_matches('/')
        ),
        BackendConfig::Aws(cfg) => format!(
            "aws-secrets-manager {} {}",
            cfg.region
                .clone()
                .or_else(|| env.var("AWS_REGION"))
                .or_else(|| env.var("AWS_DEFAULT_REGION"))
                .unwrap_or_default(),
            cfg.name.render(&vars)
        ),
        BackendConfig::Gcp(cfg) => format!(
            "gcp-secret-manager {} {}",
            gcp::Gcp::client_key(cfg),
            cfg.name.render(&vars)
        ),
    })
}

/// Where a location key says the secret is, for a message: `vault secret/…` or
/// `aws-secrets-manager <name>`.
pub fn describe_location(config: &Config, secret_ref: &SecretRef) -> String {
    let vars = [
        ("ref", secret_ref.as_str()),
        ("slug", secret_ref.slug()),
        ("provider", secret_ref.provider()),
        ("key", secret_ref.key()),
    ];
    match config.backend_for(secret_ref.as_str()).map(|r| &r.backend) {
        Some(BackendConfig::Vault(cfg)) => {
            format!("vault {}/{}", cfg.mount, cfg.path.render(&vars))
        }
        Some(BackendConfig::Aws(cfg)) => {
            format!("aws-secrets-manager {}", cfg.name.render(&vars))
        }
        Some(BackendConfig::Gcp(cfg)) => format!(
            "gcp-secret-manager projects/{}/secrets/{}",
            cfg.project,
            cfg.name.render(&vars)
        ),
        None => "no backend".to_owned(),
    }
}

impl Backends {
    /// The secret of `secret_ref`, building the client of its backend on first use.
    pub async fn resolve(
        &mut self,
        config: &Config,
        secret_ref: &SecretRef,
        env: &Environment,
    ) -> Result<Secret, ResolveError> {
        let rule = config
            .backend_for(secret_ref.as_str())
            .ok_or_else(|| ResolveError::NoRule(secret_ref.to_string()))?;
        let vars = [
            ("ref", secret_ref.as_str()),
            ("slug", secret_ref.slug()),
            ("provider", secret_ref.provider()),
            ("key", secret_ref.key()),
        ];
        let (location, client) = match &rule.backend {
            BackendConfig::Vault(cfg) => {
                let client = Client::Vault {
                    client: self
                        .vault_client(cfg, env, secret_ref.as_str(), rule.rate_limit)
                        .await?,
                    mount: cfg.mount.clone(),
                    pointer_key: cfg.pointer_key.clone(),
                };
                (cfg.path.render(&vars), client)
            }
            BackendConfig::Aws(cfg) => {
                let client = Client::Aws {
                    client: self.aws_client(cfg, env, rule.rate_limit).await,
                    stage: cfg.stage.clone(),
                };
                (cfg.name.render(&vars), client)
            }
            BackendConfig::Gcp(cfg) => {
                let client = Client::Gcp {
                    client: self.gcp_client(cfg, env, secret_ref.as_str(), rule.rate_limit)?,
                    project: cfg.project.clone(),
                    alias: cfg.alias.clone(),
                };
                (cfg.name.render(&vars), client)
            }
        };
        Ok(Secret {
            secret_ref: secret_ref.clone(),
            location,
            client,
        })
    }

    /// The client of a Vault/OpenBao server and identity, built (and logged in) on first use;
    /// `subject` is what a setup error names.
    async fn vault_client(
        &mut self,
        cfg: &crate::config::VaultBackend,
        env: &Environment,
        subject: &str,
        writes_per_second: u32,
    ) -> Result<Arc<vault::Vault>, BackendError> {
        let key = vault::Vault::client_key(cfg, env);
        if let Some(c) = self.vault.get(&key) {
            return Ok(c.clone());
        }
        let c = Arc::new(vault::Vault::connect(cfg, env, subject, writes_per_second).await?);
        vault::Vault::keep_alive(&c);
        self.vault.insert(key, c.clone());
        Ok(c)
    }

    /// The client of a Secret Manager endpoint and project, built on first use.
    pub(crate) fn gcp_client(
        &mut self,
        cfg: &crate::config::GcpBackend,
        env: &Environment,
        subject: &str,
        writes_per_second: u32,
    ) -> Result<Arc<gcp::Gcp>, BackendError> {
        let key = gcp::Gcp::client_key(cfg);
        if let Some(c) = self.gcp.get(&key) {
            return Ok(c.clone());
        }
        let c = Arc::new(gcp::Gcp::connect(cfg, env, subject, writes_per_second)?);
        self.gcp.insert(key, c.clone());
        Ok(c)
    }

    /// The client of an AWS region, built on first use.
    async fn aws_client(
        &mut self,
        cfg: &crate::config::AwsBackend,
        env: &Environment,
        writes_per_second: u32,
    ) -> Arc<aws::Aws> {
        if let Some(c) = self.aws.get(&cfg.region) {
            return c.clone();
        }
        let c = Arc::new(aws::Aws::connect(cfg, env, writes_per_second).await);
        self.aws.insert(cfg.region.clone(), c.clone());
        c
    }
}

impl fmt::Display for MarkerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(id: &str) -> VersionId {
        VersionId::parse(id).expect("version id")
    }

    fn state(
        current: Option<&str>,
        pending: &[&str],
        versions: &[(&str, VersionState)],
    ) -> RefState {
        RefState {
            record_rejected: Vec::new(),
            conditions: Conditions::default(),
            current: current.map(v),
            previous: None,
            pending: pending.iter().map(|p| v(p)).collect(),
            versions: versions
                .iter()
                .map(|(id, state)| Version {
                    id: v(id),
                    created: None,
                    state: *state,
                })
                .collect(),
            marker: None,
            revision: Revision::Aws {
                stages: HashMap::new(),
                tags: std::collections::BTreeSet::new(),
            },
        }
    }

    #[test]
    fn target_rules() {
        use VersionState::{Destroyed, Enabled};
        let s = state(
            Some("2"),
            &["3"],
            &[
                ("1", Enabled),
                ("2", Enabled),
                ("3", Enabled),
                ("4", Destroyed),
            ],
        );
        assert_eq!(s.target(None), Ok(v("3")));
        assert_eq!(s.target(Some(&v("1"))), Ok(v("1")));
        assert_eq!(
            s.target(Some(&v("9"))),
            Err(TargetProblem::Missing("9".into()))
        );
        assert_eq!(
            s.target(Some(&v("4"))),
            Err(TargetProblem::NotEnabled("4".into(), Destroyed))
        );
        assert_eq!(
            s.target(Some(&v("2"))),
            Err(TargetProblem::AlreadyCurrent("2".into()))
        );
        let none = state(Some("2"), &[], &[("2", Enabled)]);
        assert_eq!(none.target(None), Err(TargetProblem::NoPending));
        let several = state(
            Some("1"),
            &["2", "3"],
            &[("1", Enabled), ("2", Enabled), ("3", Enabled)],
        );
        assert_eq!(
            several.target(None),
            Err(TargetProblem::SeveralPending(vec!["2".into(), "3".into()]))
        );
        assert_eq!(
            state(None, &[], &[]).target(None),
            Err(TargetProblem::NoPointer)
        );
    }
}
