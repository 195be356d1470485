//! `type: gcp-secret-manager` backend rules: the project, the secret id template, the version
//! alias that is the pointer, and (for tests) the REST endpoint.
//!
//! Google's rules, checked before any call: a secret id is 1–255 letters, digits, `-` and `_`
//! (so `{ref}`, which holds dots, cannot be one; `{slug}_{provider}_{key}` reads back
//! unambiguously, slugs and providers having no `_`); an alias is at most 63 letters, digits,
//! `-` and `_`, starts with a letter, and is not `latest` or `NEW` in any case.

use url::Url;

use super::{REF_PLACEHOLDERS, Template, http_url, string_or, template_or};
use crate::diagnostic::{Diagnostics, quote};
use crate::yaml::Mapping;

/// The keys of a `gcp-secret-manager` rule.
pub(super) const GCP_KEYS: &[&str] = &["project", "name", "alias", "endpoint"];

/// The default secret id template.
pub(super) const DEFAULT_NAME: &str = "{slug}_{provider}_{key}";

/// Google's REST base URL (without `/v1`).
pub const DEFAULT_ENDPOINT: &str = "https://secretmanager.googleapis.com";

/// A Google Cloud Secret Manager backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcpBackend {
    /// The project id (or number).
    pub project: String,
    /// The secret id, from the ref.
    pub name: Template,
    /// The version alias that is the pointer.
    pub alias: String,
    /// The REST base URL without `/v1` (`http://` accepted, for tests).
    pub endpoint: Url,
}

/// Whether `alias` is one Google accepts as a version alias.
pub fn valid_alias(alias: &str) -> bool {
    alias.len() <= 63
        && alias.starts_with(|c: char| c.is_ascii_alphabetic())
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !alias.eq_ignore_ascii_case("latest")
        && !alias.eq_ignore_ascii_case("new")
}

/// Parses a `gcp-secret-manager` rule.
pub(super) fn gcp(map: &Mapping<'_>, diags: &mut Diagnostics) -> Option<super::Backend> {
    let project = match map.require(diags, "project", "project: my-project") {
        None => None,
        Some(n) => n.non_empty_string(diags).and_then(|s| {
            let id = (6..=30).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_lowercase())
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !s.ends_with('-');
            let number = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
            if id || number {
                Some(s.to_owned())
            } else {
                diags.push(
                    n.error(
                        "invalid_project",
                        format!("{} is not a Google Cloud project id or number", quote(s)),
                    )
                    .help("write the project id (6–30 lowercase letters, digits and `-`), e.g. `acme-tenants`"),
                );
                None
            }
        }),
    };
    let name_placeholders: Vec<&str> = REF_PLACEHOLDERS
        .iter()
        .copied()
        .filter(|p| *p != "ref")
        .collect();
    let name = template_or(map, "name", DEFAULT_NAME, &name_placeholders, diags).and_then(|t| {
        let literal_ok = t
            .literal()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if literal_ok {
            Some(t)
        } else {
            let node = map.get("name");
            if let Some(node) = node {
                diags.push(
                    node.error(
                        "invalid_secret_id",
                        format!(
                            "{} cannot make a Secret Manager secret id: an id holds only letters, digits, `-` and `_`",
                            quote(t.as_str())
                        ),
                    )
                    .help("join the parts with `_` or `-`, e.g. \"{slug}_{provider}_{key}\""),
                );
            }
            None
        }
    });
    let alias = string_or(map, "alias", "current", diags).and_then(|a| {
        if valid_alias(&a) {
            Some(a)
        } else {
            if let Some(node) = map.get("alias") {
                diags.push(
                    node.error(
                        "invalid_alias",
                        format!("{} is not a version alias Google accepts", quote(&a)),
                    )
                    .help("at most 63 letters, digits, `-` and `_`, starting with a letter; not `latest` or `NEW`"),
                );
            }
            None
        }
    });
    let endpoint = match map.get("endpoint") {
        None => Url::parse(DEFAULT_ENDPOINT).ok(),
        Some(n) => http_url(&n, diags),
    };
    Some(super::Backend::Gcp(GcpBackend {
        project: project?,
        name: name?,
        alias: alias?,
        endpoint: endpoint?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_follow_googles_rules() {
        for ok in ["current", "live", "a", "prod_v2", "Current-1"] {
            assert!(valid_alias(ok), "{ok}");
        }
        for bad in [
            "latest",
            "LATEST",
            "new",
            "NEW",
            "1st",
            "",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!valid_alias(bad), "{bad}");
        }
    }
}
