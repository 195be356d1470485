//! Vault and OpenBao KV version 2, metadata only, over reqwest.
//!
//! rotor touches exactly one path per secret: `<mount>/metadata/<path>`. The pointer and
//! rotor's marker live in its `custom_metadata`; no request ever goes to `<mount>/data/`, so a
//! token with no access to data at all is enough (and is what the tests use). `rotor new
//! --match` also lists folders of the metadata tree (`LIST <mount>/metadata/<folder>/`).
//!
//! Compare-and-swap: OpenBao reports `current_metadata_version` and checks `metadata_cas`
//! against it on every metadata write. HashiCorp Vault has no metadata check-and-set; rotor
//! recognises it by the missing field and falls back to write-then-verify (docs/secret-managers.md).

mod token;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::http::{Api, Failure};
use super::{
    BackendError, Environment, ErrorKind, Marker, MarkerKeys, RefState, Revision, Secret, Version,
    VersionState,
};
use crate::config::{VaultAuth, VaultBackend};
use crate::ids::VersionId;
use crate::retry::Policy;
use crate::secret::SecretString;

/// The `custom_metadata` keys of rotor's marker.
pub(super) const MARKER_KEYS: MarkerKeys = MarkerKeys {
    id: "rotor_rotation_id",
    state: "rotor_state",
    from: "rotor_from",
    to: "rotor_to",
    rollback: "rotor_rollback",
    pull_request: "rotor_pull_request",
};
/// Where rotor keeps the previous pointer, for `rollback`.
pub(super) const PREVIOUS_KEY: &str = "rotor_previous";

/// A connection to one Vault/OpenBao server with one identity.
#[derive(Debug)]
pub struct Vault {
    http: reqwest::Client,
    address: Url,
    token: SecretString,
    namespace: Option<String>,
    policy: Policy,
    pace: crate::ratelimit::RateLimit,
    /// The token's lifetime as `auth/token/lookup-self` told it; `None` when the token may not
    /// look itself up (nothing is then known of its lifetime) or never expires.
    lease: std::sync::Mutex<Option<token::Lease>>,
}

#[derive(Debug, Deserialize)]
struct MetadataResponse {
    data: Metadata,
}

#[derive(Debug, Deserialize)]
struct Metadata {
    #[serde(default)]
    current_metadata_version: Option<u64>,
    #[serde(default)]
    custom_metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    versions: BTreeMap<String, VersionMeta>,
}

#[derive(Debug, Deserialize)]
struct VersionMeta {
    #[serde(default)]
    created_time: Option<String>,
    #[serde(default)]
    deletion_time: Option<String>,
    #[serde(default)]
    destroyed: bool,
}

impl Vault {
    /// Clients are shared per server and identity.
    pub(crate) fn client_key(cfg: &VaultBackend, env: &Environment) -> String {
        let address = address(cfg, env).map_or_else(String::new, |u| u.to_string());
        match &cfg.auth {
            VaultAuth::Token => format!("{address} token"),
            VaultAuth::Jwt {
                role,
                path,
                audience,
            } => {
                format!(
                    "{address} jwt {path} {role} {}",
                    audience.as_deref().unwrap_or("")
                )
            }
        }
    }

    /// Builds the client and authenticates (a JWT login happens here, once).
    pub(crate) async fn connect(
        cfg: &VaultBackend,
        env: &Environment,
        for_ref: &str,
        writes_per_second: u32,
    ) -> Result<Self, BackendError> {
        let setup = |call: &str, detail: String| BackendError {
            secret_ref: for_ref.to_string(),
            backend: "vault",
            call: call.to_owned(),
            kind: ErrorKind::Setup { detail },
        };
        let address = address(cfg, env).ok_or_else(|| {
            setup(
                "connect",
                "no Vault address: set `address` in the backend rule, or $VAULT_ADDR / $BAO_ADDR"
                    .to_owned(),
            )
        })?;
        let http = crate::secret::http_client()
            .map_err(|e| setup("connect", format!("cannot build the HTTP client: {e}")))?;
        let namespace = env
            .var("VAULT_NAMESPACE")
            .or_else(|| env.var("BAO_NAMESPACE"));
        let mut vault = Self {
            http,
            address,
            token: SecretString::new(String::new()),
            namespace,
            policy: Policy::default(),
            pace: crate::ratelimit::RateLimit::per_second(writes_per_second),
            lease: std::sync::Mutex::new(None),
        };
        vault.token = match &cfg.auth {
            VaultAuth::Token => env
                .var("VAULT_TOKEN")
                .or_else(|| env.var("BAO_TOKEN"))
                .map(SecretString::new)
                .ok_or_else(|| {
                    setup(
                        "connect",
                        "no Vault token: set $VAULT_TOKEN or $BAO_TOKEN, or use `auth: {method: jwt, role: …}` with GitHub OIDC".to_owned(),
                    )
                })?,
            VaultAuth::Jwt { role, path, audience } => {
                // The read-only jobs log in with a read-only role under the same config.
                let role = env.var("ROTOR_VAULT_ROLE").unwrap_or_else(|| role.clone());
                vault
                    .login_jwt(env, &role, path, audience.as_deref(), for_ref)
                    .await?
            }
        };
        let lease = vault.look_up().await;
        *vault.lease() = lease;
        Ok(vault)
    }

    /// Logs in with the GitHub Actions OIDC token (`auth/<path>/login`).
    async fn login_jwt(
        &self,
        env: &Environment,
        role: &str,
        path: &str,
        audience: Option<&str>,
        for_ref: &str,
    ) -> Result<SecretString, BackendError> {
        let err = |call: &str, kind: ErrorKind| BackendError {
            secret_ref: for_ref.to_string(),
            backend: "vault",
            call: call.to_owned(),
            kind,
        };
        let Some(source) = &env.jwt else {
            return Err(err(
                "OIDC token request",
                ErrorKind::Setup {
                    detail: "no GitHub OIDC token: the job needs `permissions: id-token: write` (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN are unset)".to_owned(),
                },
            ));
        };
        let jwt = source(audience.map(str::to_owned))
            .await
            .map_err(|detail| {
                err(
                    "OIDC token request",
                    ErrorKind::Unauthorized { hint: detail },
                )
            })?;

        let login_path = format!("auth/{path}/login");
        let call = format!("POST {login_path}");
        let body = json!({"role": role, "jwt": jwt.expose()});
        let (status, answer) = self
            .exchange(
                Method::POST,
                self.url(&login_path, &[]),
                Some(&body),
                None,
                false,
            )
            .await
            .map_err(|f| err(&call, f.of_read()))?;
        if !status.is_success() {
            return Err(err(
                &call,
                match status {
                    StatusCode::BAD_REQUEST | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
                        ErrorKind::Unauthorized {
                            hint: format!(
                                "the JWT login as role `{role}` was refused ({}); check the role's bound_audiences and bound_claims for this repository and workflow",
                                vault_errors(&answer)
                            ),
                        }
                    }
                    _ => ErrorKind::Protocol {
                        detail: format!("{status}: {}", vault_errors(&answer)),
                    },
                },
            ));
        }
        let token = answer
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .map(SecretString::new)
            .ok_or_else(|| {
                err(
                    &call,
                    ErrorKind::Protocol {
                        detail: "no auth.client_token in the login answer".to_owned(),
                    },
                )
            })?;
        env.derived(token.expose());
        Ok(token)
    }

    fn url(&self, path: &str, extra: &[&str]) -> Url {
        let mut url = self.address.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1");
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
            segments.extend(
                extra
                    .iter()
                    .flat_map(|p| p.split('/'))
                    .filter(|s| !s.is_empty()),
            );
        }
        url
    }

    fn metadata_url(&self, mount: &str, location: &str) -> Url {
        self.url(mount, &["metadata", location])
    }

    /// One exchange (`http::Api::exchange`), with Vault's headers: the token, when given, and
    /// the namespace.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        token: Option<&SecretString>,
        idempotent: bool,
    ) -> Result<(StatusCode, Value), Failure> {
        let mut headers = HeaderMap::new();
        headers.insert("X-Vault-Request", HeaderValue::from_static("true"));
        if let Some(token) = token {
            let value = token.header(None).ok_or_else(|| {
                Failure::Final(ErrorKind::Setup {
                    detail: "the Vault token is not a valid header value".to_owned(),
                })
            })?;
            headers.insert("X-Vault-Token", value);
        }
        if let Some(ns) = &self.namespace {
            let value = HeaderValue::from_str(ns).map_err(|_| {
                Failure::Final(ErrorKind::Setup {
                    detail: "the Vault namespace is not a valid header value".to_owned(),
                })
            })?;
            headers.insert("X-Vault-Namespace", value);
        }
        let api = Api {
            http: &self.http,
            policy: &self.policy,
            service: "vault",
            errors: vault_errors,
            redirect_remedy: "rotor does not send the token to another address (an OpenBao standby redirects to its active node): set the backend rule's `address` (or VAULT_ADDR) to that node",
        };
        api.exchange(method, url, headers, body, idempotent).await
    }

    /// Reads the secret's metadata and derives its state.
    pub(crate) async fn read(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
    ) -> Result<RefState, BackendError> {
        let err = |kind| BackendError {
            secret_ref: secret.secret_ref.to_string(),
            backend: "vault",
            call: format!("GET {mount}/metadata/{}", secret.location),
            kind,
        };
        let meta = self.fetch_metadata(secret, mount).await.map_err(err)?;
        state_from(meta, pointer_key, mount, &secret.location).map_err(err)
    }

    /// `GET <mount>/metadata/<path>`, parsed.
    async fn fetch_metadata(&self, secret: &Secret, mount: &str) -> Result<Metadata, ErrorKind> {
        let (status, body) = self
            .exchange(
                Method::GET,
                self.metadata_url(mount, &secret.location),
                None,
                Some(&self.token),
                true,
            )
            .await
            .map_err(Failure::of_read)?;
        if !status.is_success() {
            return Err(self
                .refused(status, &body, mount, &secret.location, "read")
                .await);
        }
        let meta: MetadataResponse =
            serde_json::from_value(body).map_err(|e| ErrorKind::Protocol {
                detail: format!("metadata: {e}"),
            })?;
        Ok(meta.data)
    }

    /// [`Self::status_error`], telling an expired token from a missing permission: Vault
    /// answers 403 for both.
    async fn refused(
        &self,
        status: StatusCode,
        body: &Value,
        mount: &str,
        location: &str,
        capability: &str,
    ) -> ErrorKind {
        let kind = self.status_error(status, body, mount, location, capability);
        if matches!(kind, ErrorKind::Forbidden { .. }) && self.expired().await {
            return ErrorKind::TokenLifetime {
                detail: "the Vault token has expired (or was revoked): nothing it was refused is a missing permission; give the run a token that outlives it (a renewable one, or a longer TTL)".to_owned(),
            };
        }
        kind
    }

    fn status_error(
        &self,
        status: StatusCode,
        body: &Value,
        mount: &str,
        location: &str,
        capability: &str,
    ) -> ErrorKind {
        match status {
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized {
                hint: "the Vault token is missing or invalid".to_owned(),
            },
            StatusCode::FORBIDDEN => ErrorKind::Forbidden {
                permission: format!(
                    "the `{capability}` capability on `{mount}/metadata/{location}` (and nothing on `{mount}/data/`); or the token expired"
                ),
            },
            StatusCode::NOT_FOUND => ErrorKind::NotFound {
                location: format!("{mount}/metadata/{location} on {}", self.address),
            },
            _ => ErrorKind::Protocol {
                detail: format!("{status}: {}", vault_errors(body)),
            },
        }
    }

    /// Replaces `custom_metadata` with `desired`, checked against `seen`'s metadata version.
    async fn write_custom(
        &self,
        secret: &Secret,
        mount: &str,
        seen: &RefState,
        desired: &BTreeMap<String, String>,
        what: &str,
    ) -> Result<Option<u64>, BackendError> {
        let call = format!("POST {mount}/metadata/{} ({what})", secret.location);
        let err = |kind| BackendError {
            secret_ref: secret.secret_ref.to_string(),
            backend: "vault",
            call: call.clone(),
            kind,
        };
        let Revision::Vault {
            metadata_version,
            custom: seen_custom,
        } = &seen.revision
        else {
            return Err(err(ErrorKind::Protocol {
                detail: "state read from another backend".to_owned(),
            }));
        };
        let mut body = json!({ "custom_metadata": desired });
        if let Some(version) = metadata_version {
            body["metadata_cas"] = json!(version);
        }
        let url = self.metadata_url(mount, &secret.location);
        let rounds = self.policy.attempts.max(2);
        for round in 1..=rounds {
            self.pace.acquire().await;
            self.refresh().await;
            match self
                .exchange(
                    Method::POST,
                    url.clone(),
                    Some(&body),
                    Some(&self.token),
                    false,
                )
                .await
            {
                Ok((status, _)) if status.is_success() => {
                    if metadata_version.is_none() {
                        // Plain Vault: no metadata check-and-set, so verify what landed.
                        let now = self.raw_custom(secret, mount).await.map_err(err)?;
                        if &now != desired {
                            return Err(err(ErrorKind::Conflict {
                                detail: "another writer changed the metadata at the same time (Vault has no metadata check-and-set; rotor verified after writing)".to_owned(),
                            }));
                        }
                    }
                    // A check-and-set write that succeeded moved the metadata version by one:
                    // the new state is known without reading it back.
                    return Ok(metadata_version.map(|v| v + 1));
                }
                Ok((status, answer))
                    if status == StatusCode::BAD_REQUEST
                        && vault_errors(&answer).contains("check-and-set") =>
                {
                    return Err(err(ErrorKind::Conflict {
                        detail:
                            "the metadata changed since rotor read it (metadata_cas did not match)"
                                .to_owned(),
                    }));
                }
                Ok((status, answer)) if status == StatusCode::BAD_REQUEST => {
                    // A definite refusal of this write (OpenBao's limit of 64 custom_metadata
                    // keys, an invalid value): nothing changed; say it in the server's words.
                    return Err(err(ErrorKind::Refused {
                        detail: vault_errors(&answer),
                    }));
                }
                Ok((status, answer)) => {
                    let refused = self
                        .refused(status, &answer, mount, &secret.location, "update")
                        .await;
                    return Err(err(refused));
                }
                Err(Failure::Final(kind)) => return Err(err(kind)),
                Err(Failure::Lost(detail)) => {
                    // Never re-send blindly: learn from the server whether the write landed.
                    let now = self.raw_custom(secret, mount).await.map_err(err)?;
                    if &now == desired {
                        return Ok(None);
                    }
                    if &now != seen_custom {
                        return Err(err(ErrorKind::Conflict {
                            detail: format!(
                                "the answer to the write was lost ({detail}) and the metadata now differs from both the old and the new state"
                            ),
                        }));
                    }
                    if round == rounds {
                        return Err(err(ErrorKind::Unavailable {
                            detail: format!(
                                "the write did not land after {rounds} attempts ({detail})"
                            ),
                        }));
                    }
                    // Unchanged: the write did not land; sending it again is safe (and CAS-checked).
                    tokio::time::sleep(self.policy.delay(round, None)).await;
                }
            }
        }
        Err(err(ErrorKind::Unavailable {
            detail: "the write did not land".to_owned(),
        }))
    }

    async fn raw_custom(
        &self,
        secret: &Secret,
        mount: &str,
    ) -> Result<BTreeMap<String, String>, ErrorKind> {
        Ok(self
            .fetch_metadata(secret, mount)
            .await?
            .custom_metadata
            .unwrap_or_default())
    }

    /// Writes (or with `None` removes) rotor's marker, keeping every other key.
    pub(crate) async fn write_marker(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
        seen: &RefState,
        marker: Option<&Marker>,
    ) -> Result<Option<RefState>, BackendError> {
        let Revision::Vault { custom, .. } = &seen.revision else {
            return Err(BackendError {
                secret_ref: secret.secret_ref.to_string(),
                backend: "vault",
                call: "write marker".to_owned(),
                kind: ErrorKind::Protocol {
                    detail: "state read from another backend".to_owned(),
                },
            });
        };
        let desired = MARKER_KEYS.written_over(custom, marker);
        let what = marker.map_or("clear marker".to_owned(), |m| format!("marker {}", m.state));
        let written = self
            .write_custom(secret, mount, seen, &desired, &what)
            .await?;
        Ok(self.known_after(secret, mount, pointer_key, seen, desired, written))
    }

    /// The lock and the move in one check-and-set write of the metadata: the pending marker,
    /// the pointer on `to`, and `from` as the previous version.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn lock_and_repoint(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
        seen: &RefState,
        marker: &Marker,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        self.move_pointer(secret, mount, pointer_key, seen, Some(marker), from, to)
            .await
    }

    /// The pointer moved from `from` to `to` in one check-and-set write of the metadata, with
    /// `from` as the previous version and, when given, `marker` in the same write.
    #[allow(clippy::too_many_arguments)]
    async fn move_pointer(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
        seen: &RefState,
        marker: Option<&Marker>,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        let call = if marker.is_some() {
            "lock and repoint"
        } else {
            "repoint"
        };
        let error = |kind| BackendError {
            secret_ref: secret.secret_ref.to_string(),
            backend: "vault",
            call: call.to_owned(),
            kind,
        };
        if seen.current.as_ref() != Some(from) {
            return Err(error(ErrorKind::Conflict {
                detail: format!(
                    "the pointer designates {} rather than {from}",
                    seen.current.as_ref().map_or("nothing", VersionId::as_str)
                ),
            }));
        }
        let Revision::Vault { custom, .. } = &seen.revision else {
            return Err(error(ErrorKind::Protocol {
                detail: "state read from another backend".to_owned(),
            }));
        };
        let mut desired = match marker {
            Some(m) => MARKER_KEYS.written_over(custom, Some(m)),
            None => custom.clone(),
        };
        desired.insert(pointer_key.to_owned(), to.to_string());
        desired.insert(PREVIOUS_KEY.to_owned(), from.to_string());
        let written = self
            .write_custom(
                secret,
                mount,
                seen,
                &desired,
                &format!("{call} {from} -> {to}"),
            )
            .await?;
        match self.known_after(secret, mount, pointer_key, seen, desired, written) {
            Some(state) => Ok(state),
            None => self.read(secret, mount, pointer_key).await,
        }
    }

    /// The state after a check-and-set write of `custom` that moved the metadata version to
    /// `written`; `None` when it must be read back.
    fn known_after(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
        seen: &RefState,
        custom: BTreeMap<String, String>,
        written: Option<u64>,
    ) -> Option<RefState> {
        let version = written?;
        derive(
            custom,
            seen.versions.clone(),
            Some(version),
            pointer_key,
            mount,
            &secret.location,
        )
        .ok()
    }

    /// Moves the pointer from `from` to `to` with compare-and-swap, recording `from` as previous.
    pub(crate) async fn repoint(
        &self,
        secret: &Secret,
        mount: &str,
        pointer_key: &str,
        seen: &RefState,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        self.move_pointer(secret, mount, pointer_key, seen, None, from, to)
            .await
    }

    /// `LIST <mount>/metadata/<folder>/`: the names in one folder of the metadata tree, each
    /// subfolder's with a trailing `/`. A folder that does not exist lists nothing. Needs the
    /// `list` capability there; never touches `<mount>/data/`. `subject` says what is listed,
    /// in errors.
    pub(crate) async fn list(
        &self,
        mount: &str,
        folder: &str,
        subject: &str,
    ) -> Result<Vec<String>, BackendError> {
        let shown = format!("{mount}/metadata/{folder}");
        let err = |kind| BackendError {
            secret_ref: subject.to_owned(),
            backend: "vault",
            call: format!("LIST {}", shown.trim_end_matches('/')),
            kind,
        };
        let mut url = self.metadata_url(mount, folder);
        // `GET …?list=true` is Vault's LIST; a folder is named with its trailing `/`.
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.push("");
        }
        url.query_pairs_mut().append_pair("list", "true");
        let (status, body) = self
            .exchange(Method::GET, url, None, Some(&self.token), true)
            .await
            .map_err(|f| err(f.of_read()))?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(err(self
                .refused(status, &body, mount, folder, "list")
                .await));
        }
        body.pointer("/data/keys")
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_owned))
                    .collect()
            })
            .ok_or_else(|| {
                err(ErrorKind::Protocol {
                    detail: "no data.keys in the list answer".to_owned(),
                })
            })
    }
}

fn address(cfg: &VaultBackend, env: &Environment) -> Option<Url> {
    cfg.address.clone().or_else(|| {
        env.var("VAULT_ADDR")
            .or_else(|| env.var("BAO_ADDR"))
            .and_then(|a| Url::parse(&a).ok())
    })
}

/// The `errors` array of a Vault answer, joined.
fn vault_errors(body: &Value) -> String {
    match body.get("errors").and_then(Value::as_array) {
        Some(errors) if !errors.is_empty() => errors
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no detail".to_owned(),
    }
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.filter(|t| !t.is_empty())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Derives the ref's state from its metadata.
fn state_from(
    meta: Metadata,
    pointer_key: &str,
    mount: &str,
    location: &str,
) -> Result<RefState, ErrorKind> {
    let now = Utc::now();
    let mut versions = Vec::with_capacity(meta.versions.len());
    for (id, v) in &meta.versions {
        let id = VersionId::from_backend(id).map_err(|e| ErrorKind::Protocol {
            detail: format!("version {id:?}: {}", e.reason),
        })?;
        let state = if v.destroyed {
            VersionState::Destroyed
        } else if parse_time(v.deletion_time.as_deref()).is_some_and(|t| t <= now) {
            VersionState::Deleted
        } else {
            VersionState::Enabled
        };
        versions.push(Version {
            id,
            created: parse_time(v.created_time.as_deref()),
            state,
        });
    }
    derive(
        meta.custom_metadata.unwrap_or_default(),
        versions,
        meta.current_metadata_version,
        pointer_key,
        mount,
        location,
    )
}

/// The state that `custom` and `versions` describe: pointer, previous, pending, marker.
fn derive(
    custom: BTreeMap<String, String>,
    mut versions: Vec<Version>,
    metadata_version: Option<u64>,
    pointer_key: &str,
    mount: &str,
    location: &str,
) -> Result<RefState, ErrorKind> {
    let version_of = |key: &str| -> Result<Option<VersionId>, ErrorKind> {
        custom
            .get(key)
            .map(|v| {
                VersionId::from_backend(v).map_err(|e| ErrorKind::Protocol {
                    detail: format!(
                        "custom_metadata.{key} = {:?} is not a version id: {}",
                        v, e.reason
                    ),
                })
            })
            .transpose()
    };
    let current = version_of(pointer_key)?;
    let previous = version_of(PREVIOUS_KEY)?;
    let pending = super::numbered_pending(&mut versions, current.as_ref());
    let marker = MARKER_KEYS
        .read(|k| custom.get(k).map(String::as_str))
        .map_err(|key| ErrorKind::Protocol {
            detail: format!("{mount}/metadata/{location}: {key} is missing or unknown"),
        })?;
    Ok(RefState {
        record_rejected: Vec::new(),
        conditions: Default::default(),
        current,
        previous,
        pending,
        versions,
        marker,
        revision: Revision::Vault {
            custom,
            metadata_version,
        },
    })
}

/// The command that sets a missing pointer.
pub fn set_pointer_command(mount: &str, pointer_key: &str, location: &str) -> String {
    format!("bao kv metadata patch -mount={mount} -custom-metadata={pointer_key}=<N> {location}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::MarkerState;

    fn meta(json: Value) -> Metadata {
        serde_json::from_value(json).expect("metadata")
    }

    #[test]
    fn derives_pointer_previous_pending_and_marker() {
        let m = meta(json!({
            "current_metadata_version": 3,
            "custom_metadata": {"current_version": "2", "rotor_previous": "1",
                "rotor_rotation_id": "r-1", "rotor_state": "pending", "rotor_from": "2", "rotor_to": "4"},
            "versions": {
                "1": {"created_time": "2026-01-01T00:00:00Z", "deletion_time": "", "destroyed": false},
                "2": {"created_time": "2026-02-01T00:00:00Z", "deletion_time": "", "destroyed": false},
                "3": {"created_time": "2026-03-01T00:00:00Z", "deletion_time": "", "destroyed": true},
                "4": {"created_time": "2026-04-01T00:00:00Z", "deletion_time": "", "destroyed": false},
                "10": {"created_time": "2026-05-01T00:00:00Z", "deletion_time": "2026-05-02T00:00:00Z", "destroyed": false}
            }
        }));
        let s = state_from(m, "current_version", "secret", "p").expect("state");
        assert_eq!(s.current.as_ref().map(VersionId::as_str), Some("2"));
        assert_eq!(s.previous.as_ref().map(VersionId::as_str), Some("1"));
        assert_eq!(
            s.pending.iter().map(VersionId::as_str).collect::<Vec<_>>(),
            ["4"]
        );
        assert_eq!(
            s.versions
                .iter()
                .map(|v| (v.id.as_str(), v.state))
                .collect::<Vec<_>>(),
            [
                ("10", VersionState::Deleted),
                ("4", VersionState::Enabled),
                ("3", VersionState::Destroyed),
                ("2", VersionState::Enabled),
                ("1", VersionState::Enabled)
            ]
        );
        let marker = s.marker.expect("marker");
        assert_eq!(
            (marker.rotation_id.as_str(), marker.state),
            ("r-1", MarkerState::Pending)
        );
    }

    #[test]
    fn no_pointer_means_no_current_and_no_pending() {
        let m = meta(json!({"custom_metadata": null, "versions": {"1": {}, "2": {}}}));
        let s = state_from(m, "current_version", "secret", "p").expect("state");
        assert_eq!((s.current, s.pending.len()), (None, 0));
        assert!(matches!(
            s.revision,
            Revision::Vault {
                metadata_version: None,
                ..
            }
        ));
    }
}
