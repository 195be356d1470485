//! Credentials in memory: a string that never shows itself.
//!
//! Tokens (GitHub, Vault, the application's) live in [`SecretString`], whose `Debug` and
//! `Display` print `***`, so a stray `{:?}` in a log or an error cannot leak one. The value is
//! reachable only through [`SecretString::expose`], which is greppable.

use std::fmt;

/// A token or other credential. Never a secret *value* from a secret manager: rotor never
/// reads those.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The credential, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The credential as an HTTP header value (after `scheme`, e.g. `Bearer`), marked sensitive
    /// so the HTTP stack never prints it; `None` when it is not a valid header value.
    pub fn header(&self, scheme: Option<&str>) -> Option<reqwest::header::HeaderValue> {
        let text = match scheme {
            Some(scheme) => format!("{scheme} {}", self.0),
            None => self.0.clone(),
        };
        let mut value = reqwest::header::HeaderValue::from_str(&text).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// Reads a credential from the environment; empty counts as absent.
    pub fn from_env(name: &str) -> Option<Self> {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(Self)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The HTTP client every service rotor reaches over plain HTTP is asked through (OpenBao, the
/// application, Secret Manager, the runner's OIDC endpoint): rotor's user agent, a 5 s connect
/// and a 15 s overall timeout per call, and redirects only within the same origin
/// ([`same_origin_redirects`]). Built once per service.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("rotor/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(15))
        .redirect(same_origin_redirects())
        .build()
}

/// The redirect rule of every client that sends a credential: a redirect within the same
/// origin is followed; one to another origin (an OpenBao standby pointing at its active node,
/// a proxy) is not, so that `X-Vault-Token` or `Authorization` never reaches a host it was not
/// configured for. The 3xx answer then comes back to the caller, which names its target.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if same && attempt.previous().len() < 5 {
            attempt.follow()
        } else {
            attempt.stop()
        }
    })
}

/// Where a redirect answer points, for the error that names it.
pub fn redirect_target(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "an unnamed location".to_owned(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = SecretString::new("hvs.CANARY");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hvs.CANARY");
    }

    #[test]
    fn header_values_are_sensitive() {
        let s = SecretString::new("t0ken");
        let bearer = s.header(Some("Bearer")).expect("valid");
        assert!(bearer.is_sensitive());
        assert_eq!(bearer.to_str().ok(), Some("Bearer t0ken"));
        assert!(!format!("{bearer:?}").contains("t0ken"));
        assert_eq!(
            s.header(None)
                .and_then(|v| v.to_str().ok().map(str::to_owned))
                .as_deref(),
            Some("t0ken")
        );
        assert!(SecretString::new("a\nb").header(None).is_none());
    }
}
