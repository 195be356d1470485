//! One HTTP exchange with a secret manager's REST API, for the backends that speak it over
//! reqwest (Vault/OpenBao and Google Cloud Secret Manager): retries where repeating is safe
//! (every attempt of a read, and a write the server refused unprocessed with 429), a cap on the
//! answer's size, no redirect followed with the credentials, and a write whose answer is lost
//! reported as [`Failure::Lost`], so that the caller learns from a re-read whether it landed
//! and never sends it blindly again.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::ErrorKind;
use crate::retry::{self, Policy};

/// The outcome of one exchange that did not answer.
pub(super) enum Failure {
    /// The request may or may not have been processed (timeout, reset, 5xx on a write).
    Lost(String),
    /// A definite failure.
    Final(ErrorKind),
}

impl Failure {
    /// For a read, a lost answer is only the service being unavailable.
    pub(super) fn of_read(self) -> ErrorKind {
        match self {
            Self::Lost(detail) => ErrorKind::Unavailable { detail },
            Self::Final(kind) => kind,
        }
    }
}

/// A service's REST API as one exchange needs it.
pub(super) struct Api<'a> {
    /// The client, built once per service.
    pub(super) http: &'a reqwest::Client,
    /// The retry policy.
    pub(super) policy: &'a Policy,
    /// The name the `-v` log gives the service (`vault`, `gcp-secret-manager`).
    pub(super) service: &'static str,
    /// The service's error message in an answer, for the failure's detail.
    pub(super) errors: fn(&Value) -> String,
    /// What to do when the service redirects (rotor never sends its credentials elsewhere).
    pub(super) redirect_remedy: &'static str,
}

impl Api<'_> {
    /// One exchange of `method` on `url` with `headers` (the credentials among them) and a JSON
    /// `body`; `idempotent` says whether repeating it is safe. The answer's status and JSON body
    /// (`null` when it has none or is not JSON).
    pub(super) async fn exchange(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<&Value>,
        idempotent: bool,
    ) -> Result<(StatusCode, Value), Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(body) = body {
                req = req.json(body);
            }
            let last = attempt >= self.policy.attempts;
            let started = std::time::Instant::now();
            let sent = req.send().await;
            crate::output::http_call(
                self.service,
                method.as_str(),
                url.as_str(),
                sent.as_ref().ok().map(|r| r.status().as_u16()),
                started.elapsed(),
            );
            let resp = match sent {
                Err(e) => {
                    // A connection that was never made cannot have delivered a write.
                    let undelivered = e.is_connect();
                    let detail = e.without_url().to_string();
                    if (idempotent || undelivered) && !last {
                        tokio::time::sleep(self.policy.delay(attempt, None)).await;
                        continue;
                    }
                    return Err(if idempotent || undelivered {
                        Failure::Final(ErrorKind::Unavailable { detail })
                    } else {
                        Failure::Lost(detail)
                    });
                }
                Ok(resp) => resp,
            };
            let status = resp.status();
            if status.is_redirection() {
                let target = crate::secret::redirect_target(resp.headers());
                return Err(Failure::Final(ErrorKind::Setup {
                    detail: format!(
                        "the server answered {status} with a redirect to {target}; {}",
                        self.redirect_remedy
                    ),
                }));
            }
            let retry_after = retry::retry_after(resp.headers());
            let value = if status == StatusCode::NO_CONTENT {
                Value::Null
            } else {
                match crate::body::read_response(resp).await {
                    Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                    Err(e) => {
                        let retry = matches!(e, crate::body::BodyError::Broken(_));
                        if retry && idempotent && !last {
                            tokio::time::sleep(self.policy.delay(attempt, None)).await;
                            continue;
                        }
                        // A write whose answer could not be read may have landed: the caller
                        // re-reads to learn whether it did.
                        let detail = format!("{status}: {e}");
                        return Err(if idempotent {
                            Failure::Final(ErrorKind::Unavailable { detail })
                        } else {
                            Failure::Lost(detail)
                        });
                    }
                }
            };
            // Throttling (429) and outages (5xx but 501) are transient.
            let transient = status == StatusCode::TOO_MANY_REQUESTS
                || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
            if transient {
                let safe = idempotent || status == StatusCode::TOO_MANY_REQUESTS;
                if safe && !last {
                    tokio::time::sleep(self.policy.delay(attempt, retry_after)).await;
                    continue;
                }
                let detail = format!("{status}: {}", (self.errors)(&value));
                return Err(if safe {
                    Failure::Final(ErrorKind::Unavailable { detail })
                } else {
                    Failure::Lost(detail)
                });
            }
            return Ok((status, value));
        }
    }
}
