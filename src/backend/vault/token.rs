//! The Vault/OpenBao token's lifetime: looked up when rotor starts (`auth/token/lookup-self`),
//! renewed (`auth/token/renew-self`) whenever less than half its TTL is left, before each write
//! and while the run waits on the application, refused before any change when it cannot outlive
//! a run, and told apart from a missing permission when it has expired.

use std::time::Duration;

use chrono::Utc;
use reqwest::Method;
use serde_json::{Value, json};

use super::Vault;

/// What rotor knows of its token's lifetime.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lease {
    /// When the token expires, as of the last look-up or renewal.
    expires: std::time::Instant,
    /// Its TTL at the last look-up or renewal: a renewal is due once less than half is left.
    ttl: Duration,
    /// Whether `renew-self` can extend it.
    renewable: bool,
    /// The latest it can ever live to (its explicit or the system's maximum TTL), when known.
    max: Option<std::time::Instant>,
}

impl Lease {
    fn left(&self) -> Duration {
        self.expires
            .saturating_duration_since(std::time::Instant::now())
    }

    /// How long the token can last at best: renewed up to its maximum, or as it is.
    fn can_last(&self) -> Option<Duration> {
        if self.renewable {
            self.max
                .map(|m| m.saturating_duration_since(std::time::Instant::now()))
        } else {
            Some(self.left())
        }
    }
}

/// The lease `lookup-self`'s `data` describes; `None` for a token that never expires
/// (`ttl` 0, a root token).
fn lease_from(data: &Value) -> Option<Lease> {
    let ttl = data.get("ttl").and_then(Value::as_u64).filter(|t| *t > 0)?;
    let now = std::time::Instant::now();
    let renewable = data
        .get("renewable")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let max = data
        .get("explicit_max_ttl")
        .and_then(Value::as_u64)
        .filter(|m| *m > 0)
        .and_then(|max| {
            let created = data.get("creation_time").and_then(Value::as_i64)?;
            let end = created.checked_add(i64::try_from(max).ok()?)?;
            let left = end - Utc::now().timestamp();
            Some(now + Duration::from_secs(u64::try_from(left).unwrap_or(0)))
        });
    Some(Lease {
        expires: now + Duration::from_secs(ttl),
        ttl: Duration::from_secs(ttl),
        renewable,
        max,
    })
}

/// A duration in words for a message: `6 s`, `2 min 5 s`.
fn span_text(d: Duration) -> String {
    let s = d.as_secs();
    if s < 60 {
        format!("{s} s")
    } else {
        format!("{} min {} s", s / 60, s % 60)
    }
}

impl Vault {
    pub(super) fn lease(&self) -> std::sync::MutexGuard<'_, Option<Lease>> {
        self.lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET auth/token/lookup-self`: the token's TTL, whether it renews, and its maximum.
    /// `None` when the token never expires, or may not look itself up (a policy without
    /// `auth/token/lookup-self`): nothing is then known, and nothing is refused for it.
    pub(super) async fn look_up(&self) -> Option<Lease> {
        let url = self.url("auth/token/lookup-self", &[]);
        let (status, body) = self
            .exchange(Method::GET, url, None, Some(&self.token), true)
            .await
            .ok()?;
        if !status.is_success() {
            return None;
        }
        lease_from(&body["data"])
    }

    /// `POST auth/token/renew-self`: extends a renewable token; the answer's `lease_duration`
    /// is its new TTL (capped at its maximum).
    async fn renew(&self) -> bool {
        let url = self.url("auth/token/renew-self", &[]);
        let Ok((status, body)) = self
            .exchange(Method::POST, url, Some(&json!({})), Some(&self.token), true)
            .await
        else {
            return false;
        };
        let Some(ttl) = body
            .pointer("/auth/lease_duration")
            .and_then(Value::as_u64)
            .filter(|_| status.is_success())
        else {
            return false;
        };
        let mut lease = self.lease();
        if let Some(l) = lease.as_mut() {
            l.ttl = Duration::from_secs(ttl);
            l.expires = std::time::Instant::now() + l.ttl;
        }
        true
    }

    /// Renews the token when less than half its TTL is left (before each write, and from
    /// [`Self::keep_alive`] while the run waits on the application).
    pub(super) async fn refresh(&self) {
        let due = self
            .lease()
            .is_some_and(|l| l.renewable && l.left() < l.ttl / 2);
        // A renewal refused (revoked, past its maximum, denied) will not be granted by asking
        // again: the lease is then taken as it is, and nothing renews it any more.
        if due
            && !self.renew().await
            && let Some(l) = self.lease().as_mut()
        {
            l.renewable = false;
        }
    }

    /// Keeps a renewable token alive for as long as the client lives: a run can wait longer on
    /// the application (resolve, the audit log) than a short TTL lasts, with no request to
    /// Vault in between.
    pub(crate) fn keep_alive(vault: &std::sync::Arc<Self>) {
        let Some(first) = *vault.lease() else { return };
        if !first.renewable {
            return;
        }
        let weak = std::sync::Arc::downgrade(vault);
        tokio::spawn(async move {
            loop {
                let wait = {
                    let Some(v) = weak.upgrade() else { return };
                    let Some(l) = *v.lease() else { return };
                    // Wake when half the TTL is left (at least every 250 ms for short ones).
                    l.left()
                        .saturating_sub(l.ttl / 2)
                        .max(Duration::from_millis(250))
                };
                tokio::time::sleep(wait).await;
                let Some(v) = weak.upgrade() else { return };
                v.refresh().await;
                if v.lease().is_none_or(|l| !l.renewable) {
                    return;
                }
            }
        });
    }

    /// Whether the token can last `need`: refused (with when it expires) when it cannot, and
    /// cannot be renewed that far.
    pub(crate) fn lasts(&self, need: Duration) -> Result<(), String> {
        let Some(lease) = *self.lease() else {
            return Ok(());
        };
        match lease.can_last() {
            Some(left) if left < need => Err(format!(
                "the token expires in {}{}, and a run needs it for up to {} (settle_timeout + audit_timeout + 60 s): use a token with a longer TTL{}",
                span_text(lease.left()),
                if lease.renewable {
                    format!(
                        " (renewable only to its maximum, {} from now)",
                        span_text(left)
                    )
                } else {
                    ", not renewable".to_owned()
                },
                span_text(need),
                if lease.renewable {
                    " or maximum TTL"
                } else {
                    ", or a renewable one"
                }
            )),
            _ => Ok(()),
        }
    }

    /// Whether the token has expired (for a 403, which Vault also answers for an expired
    /// token): by what rotor knows of its lease, else by looking it up again.
    pub(super) async fn expired(&self) -> bool {
        let known = *self.lease();
        match known {
            Some(l) if l.left().is_zero() => true,
            Some(_) => self.look_up().await.is_none(),
            None => false,
        }
    }
}
