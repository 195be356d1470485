//! The identifiers of a rotation: secret refs, rotation ids, version ids and site ids; the
//! ground floor every layer may use (the request, the config, the backends, the application).
//!
//! Each is a newtype that can only be built by its parser, so a value of the type is valid by
//! construction. Nothing is normalised: uppercase, spaces and Unicode look-alikes are errors,
//! never lowered or trimmed, because a silently "fixed" ref could name another tenant's secret.

use std::fmt;

use serde::Serialize;

/// Why an identifier was refused, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// What is wrong with the text.
    pub reason: String,
    /// What a valid value looks like.
    pub help: &'static str,
}

fn invalid<T>(reason: impl Into<String>, help: &'static str) -> Result<T, Invalid> {
    Err(Invalid {
        reason: reason.into(),
        help,
    })
}

const REF_HELP: &str = "write refs as tenant.<slug>.<provider>.<key> in lowercase ASCII, e.g. tenant.acme.supabase.service_role";

/// The first character that is not printable ASCII, described for a message.
fn non_ascii(text: &str) -> Option<String> {
    text.chars().enumerate().find_map(|(i, c)| {
        (!c.is_ascii_graphic()).then(|| {
            let what = if c == ' ' {
                "a space".to_owned()
            } else if c.is_ascii() {
                format!("control character {}", c.escape_unicode())
            } else {
                format!("non-ASCII character {} ({})", c, c.escape_unicode())
            };
            format!("{what} at character {}", i + 1)
        })
    })
}

/// A secret reference, `tenant.<slug>.<provider>.<key>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SecretRef {
    text: String,
    #[serde(skip)]
    provider_at: usize,
    #[serde(skip)]
    key_at: usize,
}

impl SecretRef {
    /// Parses a ref, refusing anything outside the grammar.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if let Some(what) = non_ascii(text) {
            return invalid(
                format!("{what}; refs are ASCII only and never normalised"),
                REF_HELP,
            );
        }
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return invalid(
                "uppercase letters; refs are lowercase and are never lowered for you",
                REF_HELP,
            );
        }
        let parts: Vec<&str> = text.split('.').collect();
        if parts.first() != Some(&"tenant") {
            return invalid("a ref starts with `tenant.`", REF_HELP);
        }
        if parts.len() != 4 {
            return invalid(
                format!(
                    "a ref has exactly four dot-separated parts, this one has {}",
                    parts.len()
                ),
                REF_HELP,
            );
        }
        let (slug, provider, key) = (parts[1], parts[2], parts[3]);
        check_slug(slug)?;
        check_provider(provider)?;
        check_key(key)?;
        let provider_at = "tenant.".len() + slug.len() + 1;
        Ok(Self {
            text: text.to_owned(),
            provider_at,
            key_at: provider_at + provider.len() + 1,
        })
    }

    /// The whole ref.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The tenant slug.
    pub fn slug(&self) -> &str {
        &self.text["tenant.".len()..self.provider_at - 1]
    }

    /// The provider, e.g. `supabase`.
    pub fn provider(&self) -> &str {
        &self.text[self.provider_at..self.key_at - 1]
    }

    /// The key within the provider, e.g. `service_role`.
    pub fn key(&self) -> &str {
        &self.text[self.key_at..]
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn check_slug(slug: &str) -> Result<(), Invalid> {
    if slug.is_empty() || slug.len() > 63 {
        return invalid(
            format!(
                "the tenant slug must be 1 to 63 characters, it has {}",
                slug.len()
            ),
            REF_HELP,
        );
    }
    if let Some(c) = slug
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        return invalid(
            format!("the tenant slug may hold only a-z, 0-9 and `-`, not `{c}`"),
            REF_HELP,
        );
    }
    if slug.starts_with('-') || slug.ends_with('-') {
        return invalid("the tenant slug must not start or end with `-`", REF_HELP);
    }
    Ok(())
}

fn check_provider(provider: &str) -> Result<(), Invalid> {
    if provider.is_empty() || provider.len() > 32 {
        return invalid(
            format!(
                "the provider must be 1 to 32 characters, it has {}",
                provider.len()
            ),
            REF_HELP,
        );
    }
    if !provider.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("the provider must start with a letter a-z", REF_HELP);
    }
    if let Some(c) = provider
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
    {
        return invalid(
            format!("the provider may hold only a-z, 0-9 and `-`, not `{c}`"),
            REF_HELP,
        );
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), Invalid> {
    if key.is_empty() || key.len() > 64 {
        return invalid(
            format!("the key must be 1 to 64 characters, it has {}", key.len()),
            REF_HELP,
        );
    }
    if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("the key must start with a letter a-z", REF_HELP);
    }
    if let Some(c) = key
        .chars()
        .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '_'))
    {
        return invalid(
            format!("the key may hold only a-z, 0-9 and `_`, not `{c}`"),
            REF_HELP,
        );
    }
    Ok(())
}

const ID_HELP: &str = "use 3 to 63 characters of a-z, 0-9 and `-`, starting with a letter or digit, e.g. 2026-11-25-acme-supabase";

/// A rotation id: `^[a-z0-9][a-z0-9-]{2,62}$`, equal to the request's file stem.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct RotationId(String);

impl RotationId {
    /// Parses a rotation id.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if let Some(what) = non_ascii(text) {
            return invalid(format!("{what}; ids are ASCII only"), ID_HELP);
        }
        if !(3..=63).contains(&text.len()) {
            return invalid(
                format!(
                    "an id is 3 to 63 characters long, this one has {}",
                    text.len()
                ),
                ID_HELP,
            );
        }
        if let Some(c) = text
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-'))
        {
            return invalid(
                format!("an id may hold only a-z, 0-9 and `-`, not `{c}`"),
                ID_HELP,
            );
        }
        if text.starts_with('-') {
            return invalid("an id must not start with `-`", ID_HELP);
        }
        Ok(Self(text.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RotationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const VERSION_HELP: &str = "write the secret manager's version id: a Vault version number such as \"4\", or an AWS version id";

/// A secret manager's version id: a Vault/OpenBao version number or an AWS version id (a UUID).
///
/// Limited to 1–64 characters of `[A-Za-z0-9-]` so that it can be put in URLs, tags and
/// markdown without escaping.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct VersionId(String);

impl VersionId {
    /// Parses a version id.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.is_empty() || text.len() > 64 {
            return invalid(
                format!(
                    "a version id is 1 to 64 characters, this one has {}",
                    text.len()
                ),
                VERSION_HELP,
            );
        }
        if let Some(what) = non_ascii(text) {
            return invalid(what, VERSION_HELP);
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return invalid(
                format!("a version id may hold only letters, digits and `-`, not `{c}`"),
                VERSION_HELP,
            );
        }
        Ok(Self(text.to_owned()))
    }

    /// A version id as a backend reports it, taken as an opaque string: AWS version ids are
    /// `ClientRequestToken`s (32–64 characters, not always UUIDs; Terraform writes
    /// `terraform-…`, underscores occur), Vault's are numbers. Only an empty id, one over 64
    /// characters or one with a control character is refused: such an id cannot be printed or
    /// tagged safely.
    pub fn from_backend(text: &str) -> Result<Self, Invalid> {
        if text.is_empty() || text.chars().count() > 64 {
            return invalid(
                format!(
                    "a backend version id is 1 to 64 characters, this one has {}",
                    text.chars().count()
                ),
                VERSION_HELP,
            );
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return invalid(
                format!("control character {} in a version id", c.escape_unicode()),
                VERSION_HELP,
            );
        }
        Ok(Self(text.to_owned()))
    }

    /// The version id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const SITE_HELP: &str = "write the site id as the application knows it: 1 to 128 characters of letters, digits, `.`, `_` and `-`";

/// An application site id, as it appears in `siteIds` and in health-check URLs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SiteId(String);

impl SiteId {
    /// Parses a site id.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.is_empty() || text.len() > 128 {
            return invalid(
                format!(
                    "a site id is 1 to 128 characters, this one has {}",
                    text.len()
                ),
                SITE_HELP,
            );
        }
        if let Some(what) = non_ascii(text) {
            return invalid(what, SITE_HELP);
        }
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return invalid(format!("a site id may not hold `{c}`"), SITE_HELP);
        }
        if text == "." || text == ".." {
            return invalid("a site id may not be `.` or `..`", SITE_HELP);
        }
        Ok(Self(text.to_owned()))
    }

    /// The site id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_parts() {
        let r = SecretRef::parse("tenant.acme-co.supabase.service_role").expect("valid");
        assert_eq!(
            (r.slug(), r.provider(), r.key()),
            ("acme-co", "supabase", "service_role")
        );
    }

    #[test]
    fn ref_limits() {
        let ok = |s: &str| SecretRef::parse(s).is_ok();
        assert!(ok(&format!("tenant.{}.p.k", "a".repeat(63))));
        assert!(!ok(&format!("tenant.{}.p.k", "a".repeat(64))));
        assert!(ok(&format!("tenant.a.{}.k", "p".repeat(32))));
        assert!(!ok(&format!("tenant.a.{}.k", "p".repeat(33))));
        assert!(ok(&format!("tenant.a.p.{}", "k".repeat(64))));
        assert!(!ok(&format!("tenant.a.p.{}", "k".repeat(65))));
        assert!(ok("tenant.0.p-.k_"));
        assert!(!ok("tenant.-a.p.k"));
        assert!(!ok("tenant.a-.p.k"));
        assert!(!ok("tenant.a.1p.k"));
        assert!(!ok("tenant.a.p._k"));
        assert!(!ok("tenant.a.p.k\n"));
        assert!(!ok(" tenant.a.p.k"));
        assert!(!ok("Tenant.a.p.k"));
        assert!(!ok("tenant.a.p.k.x"));
    }

    #[test]
    fn ref_reasons_name_the_part() {
        let reason = |s: &str| SecretRef::parse(s).expect_err("invalid").reason;
        assert!(reason("tenant.acme.Supabase.k").contains("uppercase"));
        assert!(reason("tenant.аcme.supabase.k").contains("non-ASCII character а (\\u{430})"));
        assert!(reason("tenant.acme.supa_base.k").contains("provider"));
        assert!(reason("tenant.acme.supabase.service-role").contains("key"));
        assert!(reason("tenant.acme.supabase").contains("four"));
    }

    #[test]
    fn rotation_ids() {
        assert!(RotationId::parse("2026-11-25-acme").is_ok());
        assert!(RotationId::parse("abc").is_ok());
        assert!(RotationId::parse("ab").is_err());
        assert!(RotationId::parse("-abc").is_err());
        assert!(RotationId::parse("abc-").is_ok());
        assert!(RotationId::parse("ABC").is_err());
        assert!(RotationId::parse(&"a".repeat(64)).is_err());
        assert!(RotationId::parse("../etc").is_err());
    }

    #[test]
    fn version_and_site_ids() {
        assert!(VersionId::parse("4").is_ok());
        assert!(VersionId::parse("a1b2c3d4-0000-4000-8000-000000000000").is_ok());
        assert!(VersionId::parse("").is_err());
        assert!(VersionId::parse("4 ").is_err());
        assert!(SiteId::parse("site-001").is_ok());
        assert!(SiteId::parse("..").is_err());
        assert!(SiteId::parse("a/b").is_err());
    }
}
