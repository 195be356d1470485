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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints_itself() {
        let s = SecretString::new("hvs.CANARY");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "hvs.CANARY");
    }
}
