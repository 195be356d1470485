//! Google Cloud Secret Manager v1, over its REST API with reqwest: the secret's metadata and
//! version list only, never a version's payload (`versions.access` is never called, and the
//! permissions rotor asks for cannot call it).
//!
//! The pointer is one of the secret's version aliases (`versionAliases[alias]`); rotor's marker
//! and the previous version are `rotor-*` annotations. The secret's `etag` is the
//! compare-and-swap: every write is one `secrets.patch?updateMask=versionAliases,annotations`
//! carrying the etag rotor read, so the lock and the move are one write, and a stale etag is
//! Google's `400 FAILED_PRECONDITION`, a conflict. A patch of a map field replaces the whole
//! map, so rotor sends back `versionAliases` and `annotations` as it read them, changing only
//! its alias and its own keys.
//!
//! Why reqwest and not Google's `google-cloud-secretmanager-v1`: rotor's guarantees live in its
//! HTTP layer — a cap on every answer's size, bounded retries of reads only, a write whose
//! answer is lost learned from a re-read and never re-sent blindly, a bounded walk of pages —
//! and the official client retries and reads bodies on its own terms; the REST surface rotor
//! needs is four calls.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use url::Url;

use super::http::{Api, Failure};
use super::{
    BackendError, Conditions, Environment, ErrorKind, Marker, MarkerKeys, RefState, Revision,
    Secret, Version, VersionState,
};
use crate::config::GcpBackend;
use crate::ids::VersionId;
use crate::retry::Policy;
use crate::secret::SecretString;

/// The annotations of rotor's marker.
pub(super) const MARKER_KEYS: MarkerKeys = MarkerKeys {
    id: "rotor-rotation-id",
    state: "rotor-state",
    from: "rotor-from",
    to: "rotor-to",
    rollback: "rotor-rollback",
    pull_request: "rotor-pull-request",
};
/// Where rotor keeps the previous pointer, for `rollback`.
pub(super) const PREVIOUS_KEY: &str = "rotor-previous";

/// The backend's name in reports.
const NAME: &str = "gcp-secret-manager";

/// What a conflict's detail starts with when the etag was stale: the secret changed since
/// rotor read it.
const STALE: &str = "the secret changed since rotor read it";

/// How often a write made while rotor holds its lock is sent again over a change that is not
/// its own (a label, another alias) before the run gives up.
const UNRELATED_CHANGES: usize = 3;

/// Versions asked per page, and the most pages one listing reads (a server that never stops
/// paging is refused, not followed for ever).
const PAGE_SIZE: u32 = 500;
const MAX_PAGES: usize = 200;

/// Where the access token comes from.
enum Credentials {
    /// `GOOGLE_OAUTH_ACCESS_TOKEN`, as given.
    Token(SecretString),
    /// Application Default Credentials, as Google's own library finds and refreshes them; each
    /// new token is masked in the log.
    Adc {
        credentials: google_cloud_auth::credentials::AccessTokenCredentials,
        mask: Option<super::Masker>,
        last: std::sync::Mutex<Option<String>>,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Token(_) => "GOOGLE_OAUTH_ACCESS_TOKEN",
            Self::Adc { .. } => "application default credentials",
        })
    }
}

/// A connection to Secret Manager with one identity.
#[derive(Debug)]
pub struct Gcp {
    http: reqwest::Client,
    endpoint: Url,
    project: String,
    credentials: Credentials,
    policy: Policy,
    pace: crate::ratelimit::RateLimit,
}

impl Gcp {
    /// Clients are shared per endpoint and project.
    pub(crate) fn client_key(cfg: &GcpBackend) -> String {
        format!("{} {}", cfg.endpoint, cfg.project)
    }

    /// Builds the client. The access token is `GOOGLE_OAUTH_ACCESS_TOKEN` when it is set (what
    /// `google-github-actions/auth` exports with `token_format: access_token`); otherwise
    /// Application Default Credentials (`GOOGLE_APPLICATION_CREDENTIALS`, including the
    /// `external_account` file of Workload Identity Federation; gcloud's file; the metadata
    /// server), through Google's `google-cloud-auth`.
    pub(crate) fn connect(
        cfg: &GcpBackend,
        env: &Environment,
        for_ref: &str,
        writes_per_second: u32,
    ) -> Result<Self, BackendError> {
        let setup = |detail: String| BackendError {
            secret_ref: for_ref.to_owned(),
            backend: NAME,
            call: "connect".to_owned(),
            kind: ErrorKind::Setup { detail },
        };
        let credentials = match env.var("GOOGLE_OAUTH_ACCESS_TOKEN") {
            Some(token) => Credentials::Token(SecretString::new(token)),
            None => Credentials::Adc {
                credentials: google_cloud_auth::credentials::Builder::default()
                    .with_scopes(["https://www.googleapis.com/auth/cloud-platform"])
                    .build_access_token_credentials()
                    .map_err(|e| {
                        setup(format!(
                            "no Google credentials: set $GOOGLE_OAUTH_ACCESS_TOKEN, or $GOOGLE_APPLICATION_CREDENTIALS to a credentials file (google-github-actions/auth writes one) ({e})"
                        ))
                    })?,
                mask: env.mask.clone(),
                last: std::sync::Mutex::new(None),
            },
        };
        let http = crate::secret::http_client()
            .map_err(|e| setup(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            endpoint: cfg.endpoint.clone(),
            project: cfg.project.clone(),
            credentials,
            policy: Policy::default(),
            pace: crate::ratelimit::RateLimit::per_second(writes_per_second),
        })
    }

    /// `<endpoint>/v1/projects/<project>/secrets[/<id>[/<rest>]]`.
    fn url(&self, secret: Option<&str>, rest: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .extend(["v1", "projects", &self.project, "secrets"]);
            if let Some(id) = secret {
                segments.push(id);
            }
            segments.extend(rest);
        }
        url
    }

    /// The `Authorization` header: the given token, or the current one of the Application
    /// Default Credentials (Google's library caches it and refreshes it before it expires).
    async fn authorization(&self) -> Result<reqwest::header::HeaderValue, ErrorKind> {
        let token = match &self.credentials {
            Credentials::Token(token) => token.clone(),
            Credentials::Adc {
                credentials,
                mask,
                last,
            } => {
                let token = credentials
                    .access_token()
                    .await
                    .map_err(|e| ErrorKind::Unauthorized {
                        hint: format!(
                            "the application default credentials gave no access token ({e}); check $GOOGLE_APPLICATION_CREDENTIALS and the identity it names"
                        ),
                    })?
                    .token;
                // A token derived from the job's credentials is masked once, when it is new.
                let mut seen = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if seen.as_deref() != Some(token.as_str()) {
                    if let Some(mask) = mask {
                        mask(&token);
                    }
                    *seen = Some(token.clone());
                }
                SecretString::new(token)
            }
        };
        token
            .header(Some("Bearer"))
            .ok_or_else(|| ErrorKind::Setup {
                detail: "the Google access token is not a valid header value".to_owned(),
            })
    }

    /// One exchange (`http::Api::exchange`) with the current access token.
    async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<(StatusCode, Value), Failure> {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            self.authorization().await.map_err(Failure::Final)?,
        );
        let api = Api {
            http: &self.http,
            policy: &self.policy,
            service: NAME,
            errors: google_error,
            redirect_remedy: "rotor does not send the token to another address: set the backend rule's `endpoint`",
        };
        api.exchange(method, url, headers, body, idempotent).await
    }

    /// What a refusal means, with the permission to grant where one is missing.
    fn refusal(
        &self,
        status: StatusCode,
        body: &Value,
        location: &str,
        permission: &str,
    ) -> ErrorKind {
        match status {
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized {
                hint: format!(
                    "Google refused the access token from {:?} ({}); mint a fresh one (access tokens last an hour)",
                    self.credentials,
                    google_error(body)
                ),
            },
            StatusCode::FORBIDDEN => ErrorKind::Forbidden {
                permission: format!(
                    "`{permission}` on projects/{}/secrets/{location} (a custom role with secretmanager.secrets.get, .list, .update and secretmanager.versions.list; never versions.access)",
                    self.project
                ),
            },
            StatusCode::NOT_FOUND => ErrorKind::NotFound {
                location: format!(
                    "projects/{}/secrets/{location} ({})",
                    self.project, self.endpoint
                ),
            },
            _ => ErrorKind::Protocol {
                detail: format!("{status}: {}", google_error(body)),
            },
        }
    }

    /// A read: `secrets.get` or a page of `versions.list`.
    async fn get(&self, url: Url, location: &str, permission: &str) -> Result<Value, ErrorKind> {
        let (status, body) = self
            .exchange(Method::GET, url, None, true)
            .await
            .map_err(Failure::of_read)?;
        if !status.is_success() {
            return Err(self.refusal(status, &body, location, permission));
        }
        Ok(body)
    }

    /// The secret (`secrets.get`): aliases, annotations, etag, expiry.
    async fn secret(&self, location: &str) -> Result<Value, ErrorKind> {
        self.get(
            self.url(Some(location), &[]),
            location,
            "secretmanager.secrets.get",
        )
        .await
    }

    /// Every item of a Google list (`method`, the items under `field`), page by page from
    /// `first` (the list's URL with its own parameters), bounded: a page token answered twice, or
    /// more than [`MAX_PAGES`] pages, is a protocol error rather than a walk without end.
    async fn all_pages(
        &self,
        method: &str,
        first: Url,
        field: &str,
        location: &str,
        permission: &str,
    ) -> Result<Vec<Value>, ErrorKind> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut url = first.clone();
            url.query_pairs_mut()
                .append_pair("pageSize", &PAGE_SIZE.to_string());
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("pageToken", t);
            }
            let mut page = self.get(url, location, permission).await?;
            if let Some(Value::Array(items)) = page.get_mut(field).map(Value::take) {
                out.extend(items);
            }
            match page.get("nextPageToken").and_then(Value::as_str) {
                Some(next) if !next.is_empty() => {
                    if token.as_deref() == Some(next) {
                        return Err(ErrorKind::Protocol {
                            detail: format!("{method} answered the same page token twice"),
                        });
                    }
                    token = Some(next.to_owned());
                }
                _ => return Ok(out),
            }
        }
        Err(ErrorKind::Protocol {
            detail: format!("{method} did not end within {MAX_PAGES} pages"),
        })
    }

    /// Every version (`versions.list`, every page, bounded).
    async fn versions(&self, location: &str) -> Result<Vec<Version>, ErrorKind> {
        self.all_pages(
            "versions.list",
            self.url(Some(location), &["versions"]),
            "versions",
            location,
            "secretmanager.versions.list",
        )
        .await?
        .iter()
        .map(version)
        .collect()
    }

    /// Reads the secret and its versions and derives the ref's state.
    pub(crate) async fn read(
        &self,
        secret: &Secret,
        alias: &str,
    ) -> Result<RefState, BackendError> {
        let err = |kind| secret.error(&format!("secrets.get {}", secret.location), kind);
        // The secret and its versions are independent reads: together, judged in this order.
        let (body, versions) = tokio::join!(
            self.secret(&secret.location),
            self.versions(&secret.location)
        );
        let body = body.map_err(err)?;
        let mut versions = versions.map_err(err)?;
        // The list may have been answered before the secret: a version added and aliased in
        // between is aliased but not listed. Listed once more, after the secret, it is.
        let (aliases, _) = maps(&body);
        if aliases
            .values()
            .any(|n| !versions.iter().any(|v| v.id.as_str() == n.as_str()))
        {
            versions = self.versions(&secret.location).await.map_err(err)?;
        }
        derive(&body, versions, alias).map_err(err)
    }

    /// One patch of `versionAliases` and `annotations`, carrying the etag of `seen`. A stale
    /// etag is a conflict; a lost answer is learned from a re-read (the alias, the annotations
    /// and the etag say whether it landed) and sent again only if it did not.
    async fn patch(
        &self,
        secret: &Secret,
        alias: &str,
        seen: &RefState,
        aliases: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        what: &str,
    ) -> Result<RefState, BackendError> {
        let call = format!("secrets.patch {} ({what})", secret.location);
        let err = |kind| secret.error(&call, kind);
        let Revision::Gcp { etag, .. } = &seen.revision else {
            return Err(err(ErrorKind::Protocol {
                detail: "state read from another backend".to_owned(),
            }));
        };
        let mut etag = etag.clone();
        let mut url = self.url(Some(&secret.location), &[]);
        url.query_pairs_mut()
            .append_pair("updateMask", "versionAliases,annotations");
        let rounds = self.policy.attempts.max(2);
        for round in 1..=rounds {
            self.pace.acquire().await;
            let body = json!({
                "etag": etag,
                "versionAliases": aliases,
                "annotations": annotations,
            });
            match self
                .exchange(Method::PATCH, url.clone(), Some(&body), false)
                .await
            {
                Ok((status, answer)) if status.is_success() => {
                    let versions = seen.versions.clone();
                    return derive(&answer, versions, alias).map_err(err);
                }
                Ok((status, answer))
                    if status == StatusCode::BAD_REQUEST
                        && status_name(&answer) == Some("FAILED_PRECONDITION")
                        && google_error(&answer).to_ascii_lowercase().contains("etag") =>
                {
                    return Err(err(ErrorKind::Conflict {
                        detail: format!(
                            "{STALE} (its etag no longer matches: {})",
                            google_error(&answer)
                        ),
                    }));
                }
                Ok((status, answer)) if status == StatusCode::BAD_REQUEST => {
                    // A definite refusal (an alias naming a destroyed version, an annotation
                    // over Google's limits): nothing changed; said in Google's words.
                    return Err(err(ErrorKind::Refused {
                        detail: google_error(&answer),
                    }));
                }
                Ok((status, answer)) => {
                    return Err(err(self.refusal(
                        status,
                        &answer,
                        &secret.location,
                        "secretmanager.secrets.update",
                    )));
                }
                Err(Failure::Final(kind)) => return Err(err(kind)),
                Err(Failure::Lost(detail)) => {
                    let now = self.secret(&secret.location).await.map_err(err)?;
                    let (now_aliases, now_annotations) = maps(&now);
                    if &now_aliases == aliases && &now_annotations == annotations {
                        let versions = seen.versions.clone();
                        return derive(&now, versions, alias).map_err(err);
                    }
                    let now_etag = now.get("etag").and_then(Value::as_str).map(str::to_owned);
                    let unchanged = match &seen.revision {
                        Revision::Gcp {
                            aliases: a,
                            annotations: n,
                            ..
                        } => &now_aliases == a && &now_annotations == n,
                        _ => false,
                    };
                    if !unchanged {
                        return Err(err(ErrorKind::Conflict {
                            detail: format!(
                                "the answer to the patch was lost ({detail}) and the secret now differs from both the old and the new state"
                            ),
                        }));
                    }
                    if round == rounds {
                        return Err(err(ErrorKind::Unavailable {
                            detail: format!(
                                "the patch did not land after {rounds} attempts ({detail})"
                            ),
                        }));
                    }
                    // It did not land; a label may have changed the etag meanwhile: the next
                    // attempt carries the etag read now, over the same maps.
                    etag = now_etag;
                    tokio::time::sleep(self.policy.delay(round, None)).await;
                }
            }
        }
        Err(err(ErrorKind::Unavailable {
            detail: "the patch did not land".to_owned(),
        }))
    }

    /// Writes (or with `None` removes) rotor's marker, keeping every other annotation and alias.
    pub(crate) async fn write_marker(
        &self,
        secret: &Secret,
        alias: &str,
        seen: &RefState,
        marker: Option<&Marker>,
    ) -> Result<RefState, BackendError> {
        let what = marker.map_or("clear marker".to_owned(), |m| format!("marker {}", m.state));
        self.patch_holding(secret, alias, seen, &what, |aliases, annotations| {
            (
                aliases.clone(),
                MARKER_KEYS.written_over(annotations, marker),
            )
        })
        .await
    }

    /// [`Self::patch`] of the maps `build` makes from a state's aliases and annotations (a
    /// state of another backend is a protocol error). While rotor holds its lock (the
    /// state it read carries its `pending` marker), a stale etag is not yet a conflict: rotor
    /// reads the secret again and, when the alias and its own marker are as it left them
    /// (someone changed a label, another alias or annotation), sends the write again with the
    /// new etag over the maps as they are now; otherwise the write fails naming what changed.
    /// Before the lock, a stale etag is a conflict at once.
    async fn patch_holding(
        &self,
        secret: &Secret,
        alias: &str,
        seen: &RefState,
        what: &str,
        build: impl Fn(
            &BTreeMap<String, String>,
            &BTreeMap<String, String>,
        ) -> (BTreeMap<String, String>, BTreeMap<String, String>),
    ) -> Result<RefState, BackendError> {
        let holding = seen
            .marker
            .as_ref()
            .is_some_and(|m| m.state == super::MarkerState::Pending);
        let mut base = seen.clone();
        let mut rounds = 0;
        loop {
            let Revision::Gcp {
                aliases,
                annotations,
                ..
            } = &base.revision
            else {
                return Err(secret.error(
                    what,
                    ErrorKind::Protocol {
                        detail: "state read from another backend".to_owned(),
                    },
                ));
            };
            let (aliases, annotations) = build(aliases, annotations);
            let stale = match self
                .patch(secret, alias, &base, &aliases, &annotations, what)
                .await
            {
                Err(e)
                    if holding
                        && rounds < UNRELATED_CHANGES
                        && matches!(&e.kind, ErrorKind::Conflict { detail } if detail.starts_with(STALE)) =>
                {
                    e
                }
                other => return other,
            };
            rounds += 1;
            let fresh = self.read(secret, alias).await?;
            if fresh.current != base.current || fresh.marker != base.marker {
                return Err(secret.error(
                    &stale.call,
                    ErrorKind::Conflict {
                        detail: format!(
                            "another writer changed the alias or rotor's marker while rotor held the lock (the alias now designates {}, the marker is {})",
                            fresh.current.as_ref().map_or("nothing", VersionId::as_str),
                            fresh.marker.as_ref().map_or("absent".to_owned(), |m| format!(
                                "{} {}",
                                m.rotation_id,
                                m.state.as_str()
                            ))
                        ),
                    },
                ));
            }
            base = fresh;
        }
    }

    /// The alias moved from `from` to `to` in one patch, with `from` as the previous version
    /// and, when given, `marker` in the same write.
    pub(crate) async fn move_alias(
        &self,
        secret: &Secret,
        alias: &str,
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
        if seen.current.as_ref() != Some(from) {
            return Err(secret.error(
                call,
                ErrorKind::Conflict {
                    detail: format!(
                        "the alias {alias} designates {} rather than {from}",
                        seen.current.as_ref().map_or("nothing", VersionId::as_str)
                    ),
                },
            ));
        }
        self.patch_holding(
            secret,
            alias,
            seen,
            &format!("{call} {from} -> {to}"),
            |aliases, annotations| {
                let mut desired_aliases = aliases.clone();
                desired_aliases.insert(alias.to_owned(), to.to_string());
                let mut desired = match marker {
                    Some(m) => MARKER_KEYS.written_over(annotations, Some(m)),
                    None => annotations.clone(),
                };
                desired.insert(PREVIOUS_KEY.to_owned(), from.to_string());
                (desired_aliases, desired)
            },
        )
        .await
    }

    /// `secrets.list` of the project, every page, filtered on the names' fixed `prefix`: the
    /// secret ids.
    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<String>, ErrorKind> {
        let mut url = self.url(None, &[]);
        if !prefix.is_empty() {
            url.query_pairs_mut()
                .append_pair("filter", &format!("name:{prefix}"));
        }
        let secrets = self
            .all_pages(
                "secrets.list",
                url,
                "secrets",
                "*",
                "secretmanager.secrets.list",
            )
            .await?;
        // Matched as an id: answers name the project by its number.
        Ok(secrets
            .iter()
            .filter_map(|s| s.get("name").and_then(Value::as_str))
            .filter_map(|n| n.rsplit_once("/secrets/").map(|(_, id)| id))
            .filter(|id| id.starts_with(prefix))
            .map(str::to_owned)
            .collect())
    }
}

/// Google's error message (`error.message`), or the answer itself when it is not one.
fn google_error(body: &Value) -> String {
    body.pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(|| body.to_string(), str::to_owned)
        .chars()
        .take(500)
        .collect()
}

/// Google's status name (`error.status`: `FAILED_PRECONDITION`, …).
fn status_name(body: &Value) -> Option<&str> {
    body.pointer("/error/status").and_then(Value::as_str)
}

/// A string map field of a secret (`versionAliases`, `annotations`); absent is empty.
fn string_map(body: &Value, field: &str) -> BTreeMap<String, String> {
    body.get(field)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The secret's aliases and annotations.
fn maps(body: &Value) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    (
        string_map(body, "versionAliases"),
        string_map(body, "annotations"),
    )
}

fn parse_time(text: Option<&str>) -> Option<DateTime<Utc>> {
    text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// One `SecretVersion`: its number (the last segment of its name), creation and state.
fn version(v: &Value) -> Result<Version, ErrorKind> {
    let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
    let number = name.rsplit('/').next().unwrap_or_default();
    let id = VersionId::from_backend(number).map_err(|e| ErrorKind::Protocol {
        detail: format!("version {name:?}: {}", e.reason),
    })?;
    let state = match v.get("state").and_then(Value::as_str) {
        Some("ENABLED") => VersionState::Enabled,
        Some("DISABLED") => VersionState::Disabled,
        Some("DESTROYED") => VersionState::Destroyed,
        other => {
            return Err(ErrorKind::Protocol {
                detail: format!("version {name:?} has the state {other:?}"),
            });
        }
    };
    Ok(Version {
        id,
        created: parse_time(v.get("createTime").and_then(Value::as_str)),
        state,
    })
}

/// The ref's state from a `Secret` and its versions.
fn derive(body: &Value, mut versions: Vec<Version>, alias: &str) -> Result<RefState, ErrorKind> {
    let (aliases, annotations) = maps(body);
    let version_of = |map: &BTreeMap<String, String>, key: &str, what: &str| {
        map.get(key)
            .map(|v| {
                VersionId::from_backend(v).map_err(|e| ErrorKind::Protocol {
                    detail: format!("{what} {key} = {v:?} is not a version: {}", e.reason),
                })
            })
            .transpose()
    };
    let current = version_of(&aliases, alias, "the alias")?;
    let previous = version_of(&annotations, PREVIOUS_KEY, "the annotation")?;
    let pending = super::numbered_pending(&mut versions, current.as_ref());
    let marker = MARKER_KEYS
        .read(|k| annotations.get(k).map(String::as_str))
        .map_err(|key| ErrorKind::Protocol {
            detail: format!("the annotation {key} is missing or unknown"),
        })?;
    let etag = body.get("etag").and_then(Value::as_str).map(str::to_owned);
    Ok(RefState {
        record_rejected: Vec::new(),
        conditions: Conditions {
            expires: parse_time(body.get("expireTime").and_then(Value::as_str)),
            ..Conditions::default()
        },
        current,
        previous,
        pending,
        versions,
        marker,
        revision: Revision::Gcp {
            etag,
            aliases,
            annotations,
        },
    })
}

/// The command that sets a missing alias.
pub fn set_alias_command(project: &str, location: &str, alias: &str) -> String {
    format!(
        "gcloud secrets update {location} --project {project} --update-version-aliases={alias}=<N>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: Value) -> RefState {
        let versions = ["1", "2", "3", "4"]
            .iter()
            .map(|n| {
                version(&json!({"name": format!("projects/77/secrets/s/versions/{n}"), "state": if *n == "3" { "DISABLED" } else { "ENABLED" }, "createTime": "2026-11-25T10:00:00Z"}))
                    .expect("version")
            })
            .collect();
        derive(&json, versions, "current").expect("state")
    }

    #[test]
    fn the_alias_is_the_pointer_and_annotations_the_marker() {
        let s = secret(json!({
            "name": "projects/77/secrets/s",
            "etag": "\"e1\"",
            "versionAliases": {"current": "2", "canary": "1"},
            "annotations": {"rotor-previous": "1", "rotor-rotation-id": "r-1", "rotor-state": "done",
                            "rotor-from": "1", "rotor-to": "2", "owner": "team-a"},
        }));
        assert_eq!(s.current.as_ref().map(VersionId::as_str), Some("2"));
        assert_eq!(s.previous.as_ref().map(VersionId::as_str), Some("1"));
        // Only ENABLED versions newer than the alias are pending: 3 is disabled.
        assert_eq!(
            s.pending.iter().map(VersionId::as_str).collect::<Vec<_>>(),
            ["4"]
        );
        assert_eq!(
            s.marker.as_ref().map(|m| m.rotation_id.as_str()),
            Some("r-1")
        );
        let Revision::Gcp { etag, aliases, .. } = &s.revision else {
            panic!("gcp revision");
        };
        assert_eq!(etag.as_deref(), Some("\"e1\""));
        assert_eq!(aliases.get("canary").map(String::as_str), Some("1"));
    }

    #[test]
    fn no_alias_means_no_current_and_the_marker_keeps_other_annotations() {
        let s = secret(json!({"name": "projects/77/secrets/s", "etag": "\"e\""}));
        assert_eq!(s.current, None);
        assert!(s.pending.is_empty());
        let mut annotations = BTreeMap::new();
        annotations.insert("owner".to_owned(), "team-a".to_owned());
        annotations.insert("rotor-state".to_owned(), "pending".to_owned());
        let cleared = MARKER_KEYS.written_over(&annotations, None);
        assert_eq!(cleared.len(), 1);
        assert!(cleared.contains_key("owner"));
        assert_eq!(
            set_alias_command("acme", "acme_supabase_key", "current"),
            "gcloud secrets update acme_supabase_key --project acme --update-version-aliases=current=<N>"
        );
    }
}
