//! The tenant application's API (`app-api.yaml`): the calls rotor makes during a rotation.
//!
//! Every call carries `Authorization: Bearer <token>` from the variable `app.token_env` names.
//! Reads, the resolve probe and the upsert (the same body twice records the same thing) are
//! retried with backoff; nothing sent ever carries a secret value: an upsert names a version id.

mod feed;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::config::App as AppConfig;
use crate::ids::{SecretRef, SiteId, VersionId};
use crate::retry::{self, Policy};
use crate::secret::SecretString;

pub use feed::Read;

/// A failed application call, with what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The token variable is not set.
    #[error("${var} is not set: rotor needs the application's token (app.token_env) to call it")]
    NoToken {
        /// The variable's name.
        var: String,
    },
    /// 401: the token is missing or wrong.
    #[error("the application rejected the token for {call} (401): check the value of ${var}")]
    Unauthorized {
        /// The call.
        call: String,
        /// The token's variable.
        var: String,
    },
    /// 403: the token's principal is not `internal_admin`.
    #[error(
        "the application refused {call} (403): the token's service principal must hold the role internal_admin"
    )]
    Forbidden {
        /// The call.
        call: String,
    },
    /// 404: the ref (or site) is unknown to the application.
    #[error("the application does not know {what} ({call}, 404)")]
    NotFound {
        /// The call.
        call: String,
        /// What it does not know.
        what: String,
    },
    /// 400: the application refused the body.
    #[error("the application refused {call} (400): {detail}")]
    Rejected {
        /// The call.
        call: String,
        /// Its explanation.
        detail: String,
    },
    /// The application redirected to another address; the token is not sent there.
    #[error(
        "the application answered {call} with a redirect to {target}; rotor does not send the token to another address: set app.base_url to it"
    )]
    Redirected {
        /// The call.
        call: String,
        /// Where the redirect pointed.
        target: String,
    },
    /// The application stayed unreachable or kept failing.
    #[error("the application is unavailable for {call} after retries: {detail}")]
    Unavailable {
        /// The call.
        call: String,
        /// The last failure.
        detail: String,
    },
    /// An answer rotor does not understand.
    #[error("unexpected answer from the application to {call}: {detail}")]
    Protocol {
        /// The call.
        call: String,
        /// What was unexpected.
        detail: String,
    },
}

/// What the application knows about a ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRef {
    /// The sites that use it.
    pub site_ids: Vec<String>,
    /// The version last recorded by an upsert.
    pub version_id: Option<String>,
    /// The provider.
    pub provider: String,
}

/// What the application resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    /// Whether it could resolve at all.
    pub resolved: bool,
    /// The version it resolved.
    pub version_id: Option<String>,
    /// Why not, if it could not.
    pub error: Option<String>,
}

/// A site's integration health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    /// `ok`.
    pub ok: bool,
    /// The HTTP status.
    pub status: u16,
    /// The detail the application gave.
    pub detail: Option<String>,
}

/// An audit event (only what rotor checks).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Id.
    pub id: String,
    /// Action.
    pub action: String,
    /// The actor's role.
    pub actor_role: String,
    /// Who the application says acted (rotor's `operator`).
    #[serde(default)]
    pub actor: Option<String>,
    /// Site context.
    #[serde(default)]
    pub site_id: Option<String>,
    /// Tenant context.
    #[serde(default)]
    pub tenant: Option<String>,
    /// When.
    pub created_at: String,
    /// Metadata: `ref`, `rotationId`, `versionId`, `operation`.
    #[serde(default)]
    pub metadata: Value,
}

/// `rotate` or `rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A rotation.
    Rotate,
    /// A rollback.
    Rollback,
}

/// The application client, built once per run.
#[derive(Debug)]
pub struct AppClient {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    token_var: String,
    policy: Policy,
    feed: std::sync::Mutex<feed::Feed>,
    clock: std::sync::Mutex<Clock>,
}

/// The most pages one search of the audit log reads (`verify`: one run): an application that
/// pages forever is reported, not followed.
pub const MAX_AUDIT_PAGES: usize = 1000;

/// How far before rotor's first upsert of the run (by the application's clock) a search for
/// its events reads back: events are listed under their `createdAt`, and may become visible
/// some seconds after newer ones.
pub const AUDIT_LOOKBACK: chrono::Duration = chrono::Duration::minutes(2);

/// The application's clock as this run saw it.
#[derive(Debug, Default)]
struct Clock {
    /// The application's clock minus the runner's, from the `Date` header of its last answer.
    offset: Option<chrono::Duration>,
    /// rotor's first upsert of the run, by the application's clock.
    first_upsert: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether every upsert's answer this run named its audit event (`None` before the first).
    named_events: Option<bool>,
}

/// The oldest `createdAt` of a page: where a newest-first read has got to.
fn oldest_of(page: &[AuditEvent]) -> Option<chrono::DateTime<chrono::Utc>> {
    page.iter()
        .filter_map(|e| chrono::DateTime::parse_from_rfc3339(&e.created_at).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .min()
}

impl AppClient {
    /// Builds the client; the token comes from the variable `app.token_env` names.
    pub fn new(config: &AppConfig) -> Result<Self, AppError> {
        let token = SecretString::from_env(&config.token_env).ok_or_else(|| AppError::NoToken {
            var: config.token_env.clone(),
        })?;
        Self::with_token(config, token)
    }

    /// Builds the client with an explicit token.
    pub fn with_token(config: &AppConfig, token: SecretString) -> Result<Self, AppError> {
        let http = crate::secret::http_client().map_err(|e| AppError::Protocol {
            call: "connect".to_owned(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            http,
            base: config.base_url.clone(),
            token,
            token_var: config.token_env.clone(),
            policy: Policy::default(),
            feed: std::sync::Mutex::new(feed::Feed::default()),
            clock: std::sync::Mutex::new(Clock::default()),
        })
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn clock(&self) -> std::sync::MutexGuard<'_, Clock> {
        self.clock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Measures the application's clock against the runner's from an answer's `Date`.
    fn saw_date(&self, headers: &reqwest::header::HeaderMap) {
        let Some(date) = headers
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
        else {
            return;
        };
        self.clock().offset = Some(date.with_timezone(&chrono::Utc) - chrono::Utc::now());
    }

    /// The application's clock minus the runner's, in whole seconds, as last measured (`None`
    /// when no answer carried a `Date`).
    pub fn clock_offset(&self) -> Option<i64> {
        self.clock().offset.map(|d| d.num_seconds())
    }

    /// Now by the application's clock, as far as this run measured it.
    fn app_now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.clock().offset.unwrap_or_default()
    }

    /// How far back a search for this run's events reads: two minutes before its first upsert,
    /// by the application's clock; `None` before any upsert.
    pub fn audit_floor(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.clock().first_upsert.map(|t| t - AUDIT_LOOKBACK)
    }

    /// One call, retried while it fails transiently; every call here is safe to repeat.
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        call: &str,
    ) -> Result<(StatusCode, Value), AppError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let auth = self
                .token
                .header(Some("Bearer"))
                .ok_or_else(|| AppError::Protocol {
                    call: call.to_owned(),
                    detail: "the token is not a valid header value".to_owned(),
                })?;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(reqwest::header::AUTHORIZATION, auth);
            if let Some(body) = body {
                req = req.json(body);
            }
            let last = attempt >= self.policy.attempts;
            let started = std::time::Instant::now();
            let sent = req.send().await;
            crate::output::http_call(
                "app",
                method.as_str(),
                url.as_str(),
                sent.as_ref().ok().map(|r| r.status().as_u16()),
                started.elapsed(),
            );
            match sent {
                Err(e) if !last => {
                    let _ = e;
                    tokio::time::sleep(self.policy.delay(attempt, None)).await;
                }
                Err(e) => {
                    return Err(AppError::Unavailable {
                        call: call.to_owned(),
                        detail: e.without_url().to_string(),
                    });
                }
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_redirection() {
                        return Err(AppError::Redirected {
                            call: call.to_owned(),
                            target: crate::secret::redirect_target(resp.headers()),
                        });
                    }
                    let retry_after = retry::retry_after(resp.headers());
                    self.saw_date(resp.headers());
                    let value = match crate::body::read_response(resp).await {
                        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                        // Too large: the same answer again would be no smaller.
                        Err(e @ crate::body::BodyError::TooLarge) => {
                            return Err(AppError::Protocol {
                                call: call.to_owned(),
                                detail: e.to_string(),
                            });
                        }
                        Err(e) if last => {
                            return Err(AppError::Unavailable {
                                call: call.to_owned(),
                                detail: e.to_string(),
                            });
                        }
                        Err(_) => {
                            tokio::time::sleep(self.policy.delay(attempt, None)).await;
                            continue;
                        }
                    };
                    // A failing integration answers 503 by contract: that is an answer, not an outage.
                    let transient = status == StatusCode::TOO_MANY_REQUESTS
                        || (status.is_server_error()
                            && !(status == StatusCode::SERVICE_UNAVAILABLE
                                && value.get("status").is_some()));
                    if transient && !last {
                        tokio::time::sleep(self.policy.delay(attempt, retry_after)).await;
                        continue;
                    }
                    if transient {
                        return Err(AppError::Unavailable {
                            call: call.to_owned(),
                            detail: status.to_string(),
                        });
                    }
                    return Ok((status, value));
                }
            }
        }
    }

    fn check(
        &self,
        status: StatusCode,
        body: &Value,
        call: &str,
        what: &str,
    ) -> Result<(), AppError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(AppError::Unauthorized {
                call: call.to_owned(),
                var: self.token_var.clone(),
            }),
            StatusCode::FORBIDDEN => Err(AppError::Forbidden {
                call: call.to_owned(),
            }),
            StatusCode::NOT_FOUND => Err(AppError::NotFound {
                call: call.to_owned(),
                what: what.to_owned(),
            }),
            StatusCode::BAD_REQUEST => Err(AppError::Rejected {
                call: call.to_owned(),
                detail: body
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no detail")
                    .to_owned(),
            }),
            other => Err(AppError::Protocol {
                call: call.to_owned(),
                detail: other.to_string(),
            }),
        }
    }

    /// `GET /api/v1/secret-refs/{ref}`: the ref exists; which sites use it.
    pub async fn get_ref(&self, r: &SecretRef) -> Result<AppRef, AppError> {
        let call = format!("GET /api/v1/secret-refs/{r}");
        let (status, body) = self
            .call(
                Method::GET,
                self.url(&["api", "v1", "secret-refs", r.as_str()]),
                None,
                &call,
            )
            .await?;
        self.check(status, &body, &call, &format!("the ref {r}"))?;
        let site_ids = body
            .get("siteIds")
            .and_then(Value::as_array)
            .ok_or_else(|| AppError::Protocol {
                call: call.clone(),
                detail: "no siteIds".to_owned(),
            })?
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        Ok(AppRef {
            site_ids,
            version_id: body
                .get("versionId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            provider: body
                .get("provider")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
    }

    /// `PUT /api/v1/secret-refs/{ref}`: records the new version; returns the audit event id.
    pub async fn upsert(
        &self,
        r: &SecretRef,
        version: &VersionId,
        rotation_id: &str,
        operation: Operation,
        operator: &str,
    ) -> Result<Option<String>, AppError> {
        let call = format!("PUT /api/v1/secret-refs/{r}");
        let body = json!({"versionId": version, "rotationId": rotation_id, "operation": operation, "operator": operator});
        let (status, answer) = self
            .call(
                Method::PUT,
                self.url(&["api", "v1", "secret-refs", r.as_str()]),
                Some(&body),
                &call,
            )
            .await?;
        self.check(status, &answer, &call, &format!("the ref {r}"))?;
        // When the application stored it, by its own clock: `updatedAt`, else its `Date`.
        let at = answer
            .get("updatedAt")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| self.app_now(), |t| t.with_timezone(&chrono::Utc));
        let event = answer
            .get("auditEventId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        {
            let mut clock = self.clock();
            if clock.first_upsert.is_none_or(|first| at < first) {
                clock.first_upsert = Some(at);
            }
            clock.named_events = Some(clock.named_events.unwrap_or(true) && event.is_some());
        }
        Ok(event)
    }

    /// Whether the application named its audit event in every upsert answer of this run, and
    /// answered at least one: then a ref's own event is known by its id, and the events that
    /// were there before its upsert need no read of their own.
    pub fn names_events(&self) -> bool {
        self.clock().named_events == Some(true)
    }

    /// `POST /api/v1/secret-refs/{ref}/resolve`: which version the application resolves now.
    pub async fn resolve(&self, r: &SecretRef) -> Result<Resolution, AppError> {
        let call = format!("POST /api/v1/secret-refs/{r}/resolve");
        let (status, body) = self
            .call(
                Method::POST,
                self.url(&["api", "v1", "secret-refs", r.as_str(), "resolve"]),
                None,
                &call,
            )
            .await?;
        self.check(status, &body, &call, &format!("the ref {r}"))?;
        Ok(Resolution {
            resolved: body
                .get("resolved")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            version_id: body
                .get("versionId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            error: body.get("error").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// `GET /api/v1/sites/{site}/integrations/{provider}/health`.
    pub async fn health(&self, site: &SiteId, provider: &str) -> Result<Health, AppError> {
        let call = format!("GET /api/v1/sites/{site}/integrations/{provider}/health");
        let (status, body) = self
            .call(
                Method::GET,
                self.url(&[
                    "api",
                    "v1",
                    "sites",
                    site.as_str(),
                    "integrations",
                    provider,
                    "health",
                ]),
                None,
                &call,
            )
            .await?;
        // A verdict only in the contract's shape: `200 {"status":"ok"}` or `503
        // {"status":"failing"}`. Anything else (another body, another 5xx, a 200 that says
        // something else) is no verdict: an outage, asked again by the caller.
        let said = body.get("status").and_then(Value::as_str);
        let detail = body
            .get("detail")
            .and_then(Value::as_str)
            .map(str::to_owned);
        match (status, said) {
            (StatusCode::OK, Some("ok")) => {
                return Ok(Health {
                    ok: true,
                    status: 200,
                    detail,
                });
            }
            (StatusCode::SERVICE_UNAVAILABLE, Some("failing")) => {
                return Ok(Health {
                    ok: false,
                    status: 503,
                    detail,
                });
            }
            (s, _) if s.is_success() || s.is_server_error() => {
                return Err(AppError::Unavailable {
                    call,
                    detail: format!(
                        "no verdict: {s} with {}, not the contract's 200 {{\"status\":\"ok\"}} or 503 {{\"status\":\"failing\"}}",
                        said.map_or_else(|| "no status".to_owned(), |v| format!("status {v:?}"))
                    ),
                });
            }
            _ => {}
        }
        self.check(
            status,
            &body,
            &call,
            &format!("site {site}'s {provider} integration"),
        )?;
        Err(AppError::Protocol {
            call,
            detail: status.to_string(),
        })
    }

    /// One page of `GET /api/v1/audit/events?action=…&limit=100`: its events and the cursor of
    /// the next page, if any.
    async fn audit_page(
        &self,
        action: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<AuditEvent>, Option<String>), AppError> {
        let call = format!("GET /api/v1/audit/events?action={action}");
        let mut url = self.url(&["api", "v1", "audit", "events"]);
        url.query_pairs_mut()
            .append_pair("action", action)
            .append_pair("limit", "100");
        if let Some(c) = cursor {
            url.query_pairs_mut().append_pair("cursor", c);
        }
        let (status, body) = self.call(Method::GET, url, None, &call).await?;
        self.check(status, &body, &call, "the audit log")?;
        let page = body
            .get("events")
            .and_then(Value::as_array)
            .ok_or_else(|| AppError::Protocol {
                call: call.clone(),
                detail: "no events".to_owned(),
            })?;
        let events = page
            .iter()
            .filter_map(|e| serde_json::from_value::<AuditEvent>(e.clone()).ok())
            .collect();
        let next = body
            .get("nextCursor")
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        Ok((events, next))
    }

    /// `GET /api/v1/audit/events?action=…&limit=100`, every page (at most `max_pages`).
    pub async fn audit_events(
        &self,
        action: &str,
        max_pages: usize,
    ) -> Result<Vec<AuditEvent>, AppError> {
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..max_pages.max(1) {
            let (page, next) = self.audit_page(action, cursor.as_deref()).await?;
            events.extend(page);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(events)
    }

    /// Reads `GET /api/v1/audit/events?action=…&limit=100` newest first, page after page by
    /// `cursor`, handing each page to `more`, until it answers `false` or the log ends; returns
    /// how many pages it read. Bounded: at most [`MAX_AUDIT_PAGES`], and a page holding events
    /// newer than the page before (a log that is not newest first, or pages forever) ends the
    /// read with an error that says so.
    pub async fn audit_pages(
        &self,
        action: &str,
        mut more: impl FnMut(&[AuditEvent]) -> bool,
    ) -> Result<usize, AppError> {
        let call = format!("GET /api/v1/audit/events?action={action}");
        let mut cursor: Option<String> = None;
        let mut previous: Option<chrono::DateTime<chrono::Utc>> = None;
        for read in 1..=MAX_AUDIT_PAGES {
            let (page, next) = self.audit_page(action, cursor.as_deref()).await?;
            let oldest = oldest_of(&page);
            if let (Some(oldest), Some(before)) = (oldest, previous)
                && oldest > before
            {
                return Err(AppError::Protocol {
                    call,
                    detail: format!(
                        "page {read} of the audit log ends on an event newer ({oldest}) than the page before it ended ({before}): the log is not newest first, or pages forever; stopped reading"
                    ),
                });
            }
            if !more(&page) {
                return Ok(read);
            }
            previous = oldest.or(previous);
            match next {
                Some(next) if !page.is_empty() => cursor = Some(next),
                _ => return Ok(read),
            }
        }
        Err(AppError::Protocol {
            call,
            detail: format!(
                "the audit log did not end within {MAX_AUDIT_PAGES} pages; stopped reading"
            ),
        })
    }

    /// The application's base URL without a trailing `/`, for `{app}` in check templates.
    pub fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// An extra HTTP check (`checks.extra`): `GET url`, the expected status and JSON values.
    /// The bearer token goes only to the application's own origin, never to another host.
    pub async fn extra_check(
        &self,
        url: &str,
        status: u16,
        json: &[(String, Value)],
    ) -> Result<(bool, String), AppError> {
        let call = format!("GET {url}");
        let target = Url::parse(url).map_err(|e| AppError::Protocol {
            call: call.clone(),
            detail: e.to_string(),
        })?;
        let (got, body) = if target.origin() == self.base.origin() {
            self.call(Method::GET, target, None, &call).await?
        } else {
            let started = std::time::Instant::now();
            let path = target.path().to_owned();
            let sent = self.http.get(target).send().await;
            crate::output::http_call(
                "check",
                "GET",
                &path,
                sent.as_ref().ok().map(|r| r.status().as_u16()),
                started.elapsed(),
            );
            let resp = sent.map_err(|e| AppError::Unavailable {
                call: call.clone(),
                detail: e.without_url().to_string(),
            })?;
            let got = resp.status();
            let body = crate::body::read_response(resp)
                .await
                .map_err(|e| AppError::Protocol {
                    call: call.clone(),
                    detail: e.to_string(),
                })?;
            (got, serde_json::from_slice(&body).unwrap_or(Value::Null))
        };
        if got.as_u16() != status {
            return Ok((
                false,
                format!("status {} (expected {status})", got.as_u16()),
            ));
        }
        for (pointer, expected) in json {
            let actual = body.pointer(pointer).cloned().unwrap_or(Value::Null);
            if &actual != expected {
                return Ok((
                    false,
                    format!("{pointer} is {actual} (expected {expected})"),
                ));
            }
        }
        Ok((true, format!("status {status}")))
    }

    /// The audit query link for the artifact.
    pub fn audit_query_link(&self, action: &str) -> String {
        let mut url = self.url(&["api", "v1", "audit", "events"]);
        url.query_pairs_mut()
            .append_pair("action", action)
            .append_pair("limit", "100");
        url.to_string()
    }
}
