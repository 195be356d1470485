//! The GitHub Actions OIDC token: what a job with `permissions: id-token: write` can ask the
//! runner for (`ACTIONS_ID_TOKEN_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`), and what a
//! Vault or OpenBao JWT role trusts. It belongs to the runner, so it is fetched here and handed
//! to the backends as a [`JwtSource`]; the token is masked in the log as soon as it is known.

use std::sync::Arc;

use serde_json::Value;

use crate::backend::JwtSource;
use crate::secret::SecretString;

/// Where the runner hands out OIDC tokens, when the job may ask for one.
#[derive(Debug, Clone)]
pub struct Runner {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL`.
    pub request_url: String,
    /// `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub request_token: SecretString,
}

impl Runner {
    /// From the process environment; `None` when the job has no `id-token: write`.
    pub fn from_env() -> Option<Self> {
        let url = std::env::var("ACTIONS_ID_TOKEN_REQUEST_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        Some(Self {
            request_url: url,
            request_token: SecretString::from_env("ACTIONS_ID_TOKEN_REQUEST_TOKEN")?,
        })
    }

    /// Asks the runner for a token for `audience`, and masks it.
    pub async fn token(&self, audience: Option<&str>) -> Result<SecretString, String> {
        let mut url = url::Url::parse(&self.request_url)
            .map_err(|e| format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}"))?;
        if let Some(aud) = audience {
            url.query_pairs_mut().append_pair("audience", aud);
        }
        let auth = self
            .request_token
            .header(Some("Bearer"))
            .ok_or("ACTIONS_ID_TOKEN_REQUEST_TOKEN is not a valid header value")?;
        let http = crate::secret::http_client()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let (started, path) = (std::time::Instant::now(), url.path().to_owned());
        let sent = http
            .get(url)
            .header(reqwest::header::AUTHORIZATION, auth)
            .send()
            .await;
        crate::output::http_call(
            "oidc",
            "GET",
            &path,
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        let resp = sent.map_err(|e| {
            format!(
                "the runner's OIDC endpoint is unreachable: {}",
                e.without_url()
            )
        })?;
        if !resp.status().is_success() {
            return Err(format!(
                "GitHub answered {} to the OIDC token request",
                resp.status()
            ));
        }
        let bytes = crate::body::read_response(resp)
            .await
            .map_err(|e| format!("the OIDC answer: {e}"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the OIDC answer is not JSON: {e}"))?;
        let jwt = body
            .get("value")
            .and_then(Value::as_str)
            .map(SecretString::new)
            .ok_or("no `value` in the OIDC answer")?;
        crate::output::workflow::add_mask(jwt.expose());
        Ok(jwt)
    }

    /// This runner as the backends' source of JWTs.
    pub fn source(self) -> JwtSource {
        let runner = Arc::new(self);
        Arc::new(move |audience: Option<String>| {
            let runner = runner.clone();
            Box::pin(async move { runner.token(audience.as_deref()).await })
        })
    }
}
