//! Listing the secrets of every backend rule, each name read back into its ref (`rotor new
//! --match`), without reading any value.
//!
//! A rule's path or name template is read backwards: `tenants/{slug}/{provider}/{key}` turns
//! the name `tenants/acme/supabase/service_role` into `tenant.acme.supabase.service_role`. A
//! name is kept when exactly one ref renders to it and that ref's first matching rule is the
//! rule that listed it; any other name is not the secret of a ref and is passed over.
//!
//! - Vault/OpenBao: `LIST <mount>/metadata/<folder>/`, from the template's fixed prefix (its
//!   leading segments without a placeholder) down one folder level per remaining segment,
//!   descending only into folders whose name fits the template at that level.
//! - AWS: `ListSecrets`, every page, filtered by the template's literal prefix. Its answer
//!   carries each secret's labels and tags, so the listing also gives each secret's state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::aws::ListedSecret;
use super::vault::Vault;
use super::{BackendError, Backends, Environment, ErrorKind, RefState};
use crate::batch::map_bounded;
use crate::config::{Backend as BackendConfig, Config, Template};
use crate::diagnostic::quote;
use crate::ids::SecretRef;

/// What the listing found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every ref read back from a name, once each, in ref order.
    pub refs: Vec<Listed>,
    /// The `match` globs of rules whose template does not name every part of a ref (neither
    /// `{ref}` nor all of `{slug}`, `{provider}` and `{key}`): their names cannot be read back.
    pub unreadable: Vec<String>,
}

/// A ref whose secret the listing found.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The ref.
    pub secret_ref: SecretRef,
    /// Its state, when the listing itself says it (AWS: labels and tags). Its version list then
    /// holds only the versions that carry a label.
    pub state: Option<RefState>,
}

impl Backends {
    /// Lists the secrets of every backend rule `wanted` accepts (by its glob) and reads each
    /// name back into its ref, with at most `concurrency` listing calls in flight. Rules that
    /// share a server and a listing share its calls.
    pub async fn list(
        &mut self,
        config: &Config,
        env: &Environment,
        concurrency: usize,
        wanted: &(dyn Fn(&str) -> bool + Sync),
    ) -> Result<Listing, BackendError> {
        let mut found: BTreeMap<SecretRef, Listed> = BTreeMap::new();
        let mut unreadable = Vec::new();
        let mut folders = Folders::default();
        let mut aws_lists: HashMap<(Option<String>, Option<String>), Vec<ListedSecret>> =
            HashMap::new();
        for (index, rule) in config.backends.iter().enumerate() {
            // A rule whose refs the caller cannot want is never asked (nor its credentials).
            if !wanted(&rule.pattern) {
                continue;
            }
            let subject = format!("backend rule {}", quote(&rule.pattern));
            let mut keep = |secret_ref: SecretRef, state: Option<RefState>| {
                let first = config
                    .backends
                    .iter()
                    .position(|r| r.matches(secret_ref.as_str()));
                if first == Some(index) {
                    found
                        .entry(secret_ref.clone())
                        .or_insert(Listed { secret_ref, state });
                }
            };
            match &rule.backend {
                BackendConfig::Vault(cfg) => {
                    let pattern = Pattern::vault(&cfg.path);
                    if !pattern.names_a_ref() {
                        unreadable.push(rule.pattern.clone());
                        continue;
                    }
                    let client = self
                        .vault_client(cfg, env, &subject, rule.rate_limit)
                        .await?;
                    let walk = Walk {
                        client,
                        server: Vault::client_key(cfg, env),
                        mount: cfg.mount.clone(),
                        subject,
                        concurrency,
                    };
                    for name in walk.names(&cfg.path, &mut folders).await? {
                        if let Some(r) = pattern.read_back(&name) {
                            keep(r, None);
                        }
                    }
                }
                BackendConfig::Gcp(cfg) => {
                    let pattern = Pattern::aws(&cfg.name);
                    if !pattern.names_a_ref() {
                        unreadable.push(rule.pattern.clone());
                        continue;
                    }
                    let client = self.gcp_client(cfg, env, &subject, rule.rate_limit)?;
                    let prefix = pattern.fixed_prefix();
                    let ids = client.list(&prefix).await.map_err(|kind| BackendError {
                        secret_ref: subject.clone(),
                        backend: "gcp-secret-manager",
                        call: format!("secrets.list projects/{}", cfg.project),
                        kind,
                    })?;
                    for id in ids {
                        if let Some(r) = pattern.read_back(&id) {
                            keep(r, None);
                        }
                    }
                }
                BackendConfig::Aws(cfg) => {
                    let pattern = Pattern::aws(&cfg.name);
                    if !pattern.names_a_ref() {
                        unreadable.push(rule.pattern.clone());
                        continue;
                    }
                    let prefix = pattern.name_filter();
                    let key = (cfg.region.clone(), prefix.clone());
                    if !aws_lists.contains_key(&key) {
                        let client = self.aws_client(cfg, env, rule.rate_limit).await;
                        let listed = client.list(prefix.as_deref(), &subject).await?;
                        aws_lists.insert(key.clone(), listed);
                    }
                    for secret in aws_lists.get(&key).into_iter().flatten() {
                        if let Some(r) = pattern.read_back(&secret.name) {
                            // A state the labels cannot give is left to a full read, which
                            // reports the problem.
                            keep(r, secret.state(&cfg.stage).ok());
                        }
                    }
                }
            }
        }
        Ok(Listing {
            refs: found.into_values().collect(),
            unreadable,
        })
    }
}

/// The folders of the metadata trees listed so far: (server, mount, folder) to its names.
#[derive(Debug, Default)]
struct Folders(HashMap<(String, String, String), Vec<String>>);

/// One walk down a Vault/OpenBao metadata tree.
struct Walk {
    client: Arc<Vault>,
    /// The server and identity, as clients are shared.
    server: String,
    mount: String,
    subject: String,
    concurrency: usize,
}

impl Walk {
    /// The paths of the secrets whose every segment fits the template's.
    async fn names(
        &self,
        template: &Template,
        folders: &mut Folders,
    ) -> Result<Vec<String>, BackendError> {
        let segments: Vec<&str> = template
            .as_str()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let fixed = segments.iter().take_while(|s| !s.contains('{')).count();
        let mut frontier = vec![segments[..fixed].join("/")];
        for (depth, segment) in segments.iter().enumerate().skip(fixed) {
            let last = depth + 1 == segments.len();
            if !last && !segment.contains('{') {
                // A literal folder needs no listing.
                frontier = frontier.iter().map(|f| join(f, segment)).collect();
                continue;
            }
            let fits = Pattern::new(segment);
            self.list_folders(folders, &frontier).await?;
            let mut next = Vec::new();
            for folder in &frontier {
                let names = folders
                    .0
                    .get(&self.key(folder))
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                for name in names {
                    match (last, name.strip_suffix('/')) {
                        (true, None) if fits.fits(name) => next.push(join(folder, name)),
                        (false, Some(sub)) if fits.fits(sub) => next.push(join(folder, sub)),
                        _ => {}
                    }
                }
            }
            frontier = next;
        }
        Ok(frontier)
    }

    fn key(&self, folder: &str) -> (String, String, String) {
        (self.server.clone(), self.mount.clone(), folder.to_owned())
    }

    /// Lists, concurrently, every folder of `wanted` not listed yet.
    async fn list_folders(
        &self,
        folders: &mut Folders,
        wanted: &[String],
    ) -> Result<(), BackendError> {
        let missing: Vec<String> = wanted
            .iter()
            .filter(|f| !folders.0.contains_key(&self.key(f)))
            .cloned()
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let results = map_bounded(missing.clone(), self.concurrency, |folder| {
            let (client, mount, subject) = (
                self.client.clone(),
                self.mount.clone(),
                self.subject.clone(),
            );
            async move { client.list(&mount, &folder, &subject).await }
        })
        .await;
        for (folder, result) in missing.into_iter().zip(results) {
            let names = result.unwrap_or_else(|| {
                Err(BackendError {
                    secret_ref: self.subject.clone(),
                    backend: "vault",
                    call: format!("LIST {}/metadata/{folder}", self.mount),
                    kind: ErrorKind::Protocol {
                        detail: "the listing stopped unexpectedly".to_owned(),
                    },
                })
            })?;
            folders.0.insert(self.key(&folder), names);
        }
        Ok(())
    }
}

fn join(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

/// A placeholder of a path or name template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Ref,
    Slug,
    Provider,
    Key,
}

impl Slot {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ref" => Self::Ref,
            "slug" => Self::Slug,
            "provider" => Self::Provider,
            "key" => Self::Key,
            _ => return None,
        })
    }

    /// Whether `value` is a valid value of this placeholder: a whole ref, or one of its parts.
    fn accepts(self, value: &str) -> bool {
        let probe = match self {
            Self::Ref => return SecretRef::parse(value).is_ok(),
            Self::Slug => format!("tenant.{value}.p.k"),
            Self::Provider => format!("tenant.s.{value}.k"),
            Self::Key => format!("tenant.s.p.{value}"),
        };
        !value.contains('.') && SecretRef::parse(&probe).is_ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Text(String),
    Slot(Slot),
}

/// What a match bound each placeholder to, indexed by [`Slot`].
type Binding<'a> = [Option<&'a str>; 4];

/// A template read backwards.
#[derive(Debug, Clone)]
struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// The tokens of template text whose placeholders were checked when the config was parsed.
    fn new(text: &str) -> Self {
        let mut tokens = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}').map(|c| open + c) else {
                break;
            };
            match Slot::parse(&rest[open + 1..close]) {
                Some(slot) => {
                    if open > 0 {
                        tokens.push(Token::Text(rest[..open].to_owned()));
                    }
                    tokens.push(Token::Slot(slot));
                }
                None => tokens.push(Token::Text(rest[..=close].to_owned())),
            }
            rest = &rest[close + 1..];
        }
        if !rest.is_empty() {
            tokens.push(Token::Text(rest.to_owned()));
        }
        Self { tokens }
    }

    /// A Vault path template as its paths are listed: segments joined by one `/`, without a
    /// leading or trailing one (the client sends `a//b/` as `a/b`).
    fn vault(template: &Template) -> Self {
        let segments: Vec<&str> = template
            .as_str()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        Self::new(&segments.join("/"))
    }

    /// An AWS name template: the name is exactly what it renders.
    fn aws(template: &Template) -> Self {
        Self::new(template.as_str())
    }

    /// Whether a name read back gives a whole ref.
    fn names_a_ref(&self) -> bool {
        let has = |slot| self.tokens.contains(&Token::Slot(slot));
        has(Slot::Ref) || (has(Slot::Slug) && has(Slot::Provider) && has(Slot::Key))
    }

    /// Every name this template renders starts with this: its leading text, then `tenant.` when
    /// `{ref}` comes next. Empty when it starts with another placeholder.
    fn fixed_prefix(&self) -> String {
        let mut prefix = String::new();
        for token in &self.tokens {
            match token {
                Token::Text(t) => prefix.push_str(t),
                Token::Slot(Slot::Ref) => {
                    prefix.push_str("tenant.");
                    break;
                }
                Token::Slot(_) => break,
            }
        }
        prefix
    }

    /// The fixed prefix as an AWS `name` filter value, when it is one: not empty, at most 512
    /// characters of the filter's alphabet, and not starting with `!` (a negation).
    fn name_filter(&self) -> Option<String> {
        let prefix = self.fixed_prefix();
        let allowed = |c: char| c.is_ascii_alphanumeric() || " :_@/+=.-".contains(c);
        (!prefix.is_empty() && prefix.len() <= 512 && prefix.chars().all(allowed)).then_some(prefix)
    }

    /// Whether some values of the placeholders render `text`.
    fn fits(&self, text: &str) -> bool {
        let mut found = Vec::new();
        bind(&self.tokens, text, [None; 4], &mut found);
        !found.is_empty()
    }

    /// The one ref that renders `name`; `None` when no ref does, or several do.
    fn read_back(&self, name: &str) -> Option<SecretRef> {
        let mut found = Vec::new();
        bind(&self.tokens, name, [None; 4], &mut found);
        let mut refs: Vec<SecretRef> = found.iter().filter_map(ref_of).collect();
        refs.sort();
        refs.dedup();
        match refs.as_slice() {
            [one] => Some(one.clone()),
            _ => None,
        }
    }
}

/// Every way `tokens` render `text`, given the placeholders already `bound`, added to `out`.
fn bind<'a>(tokens: &[Token], text: &'a str, bound: Binding<'a>, out: &mut Vec<Binding<'a>>) {
    let Some((token, rest)) = tokens.split_first() else {
        if text.is_empty() {
            out.push(bound);
        }
        return;
    };
    let slot = match token {
        Token::Text(t) => {
            if let Some(after) = text.strip_prefix(t.as_str()) {
                bind(rest, after, bound, out);
            }
            return;
        }
        Token::Slot(slot) => *slot,
    };
    if let Some(value) = bound[slot as usize] {
        // A placeholder used twice stands for the same value both times.
        if let Some(after) = text.strip_prefix(value) {
            bind(rest, after, bound, out);
        }
        return;
    }
    // Where the value can end: at the end of the text, or where the next text begins.
    let ends: Vec<usize> = match rest.first() {
        None => vec![text.len()],
        Some(Token::Text(next)) => text.match_indices(next.as_str()).map(|(i, _)| i).collect(),
        Some(Token::Slot(_)) => text.char_indices().map(|(i, _)| i).skip(1).collect(),
    };
    for end in ends {
        let value = &text[..end];
        if !value.is_empty() && slot.accepts(value) {
            let mut next = bound;
            next[slot as usize] = Some(value);
            bind(rest, &text[end..], next, out);
        }
    }
}

/// The ref a binding names: its `{ref}`, agreeing with any part also bound, or the ref its
/// three parts make.
fn ref_of(binding: &Binding<'_>) -> Option<SecretRef> {
    let [whole, slug, provider, key] = *binding;
    match whole {
        Some(text) => {
            let r = SecretRef::parse(text).ok()?;
            let agrees = slug.is_none_or(|s| s == r.slug())
                && provider.is_none_or(|p| p == r.provider())
                && key.is_none_or(|k| k == r.key());
            agrees.then_some(r)
        }
        None => SecretRef::parse(&format!("tenant.{}.{}.{}", slug?, provider?, key?)).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> Template {
        Template::parse(text, &["ref", "slug", "provider", "key"]).expect("template")
    }

    fn back(t: &str, name: &str) -> Option<String> {
        Pattern::vault(&template(t))
            .read_back(name)
            .map(|r| r.to_string())
    }

    #[test]
    fn reads_templates_backwards() {
        let acme = Some("tenant.acme.supabase.service_role".to_owned());
        assert_eq!(back("{ref}", "tenant.acme.supabase.service_role"), acme);
        assert_eq!(
            back(
                "tenants/{slug}/{provider}/{key}",
                "tenants/acme/supabase/service_role"
            ),
            acme
        );
        assert_eq!(
            back(
                "/kv//{slug}/{provider}-{key}/",
                "kv/acme/supabase-service_role"
            ),
            acme
        );
        // `{ref}` and its parts together must agree.
        assert_eq!(
            back("{slug}/{ref}", "acme/tenant.acme.supabase.service_role"),
            acme
        );
        assert_eq!(
            back("{slug}/{ref}", "other/tenant.acme.supabase.service_role"),
            None
        );
        // A name the template cannot render gives nothing.
        assert_eq!(back("{ref}", "tenant.Acme.supabase.service_role"), None);
        assert_eq!(
            back("{ref}", "prod/tenant.acme.supabase.service_role"),
            None
        );
        assert_eq!(
            back("tenants/{slug}/{provider}/{key}", "tenants/acme/supabase"),
            None
        );
        assert_eq!(
            back("tenants/{slug}/{provider}/{key}", "other/acme/supabase/k"),
            None
        );
    }

    #[test]
    fn adjacent_placeholders_are_split_by_their_grammars() {
        // A key never holds `-`, so `a-b-c` splits one way only: slug `a-b`, key `c`.
        assert_eq!(
            back("{slug}-{key}/{provider}", "a-b-c/supabase"),
            Some("tenant.a-b.supabase.c".to_owned())
        );
        // Two refs render the same name: neither is read back.
        assert_eq!(back("{slug}{provider}/{key}", "acmesupabase/k"), None);
    }

    #[test]
    fn aws_names_keep_their_slashes() {
        let prod = Pattern::aws(&template("prod/{ref}"));
        assert_eq!(
            prod.read_back("prod/tenant.a.stripe.secret_key")
                .map(|r| r.to_string()),
            Some("tenant.a.stripe.secret_key".to_owned())
        );
        assert_eq!(prod.read_back("/prod/tenant.a.stripe.secret_key"), None);
        assert_eq!(prod.name_filter().as_deref(), Some("prod/tenant."));
        assert_eq!(
            Pattern::aws(&template("{ref}")).name_filter().as_deref(),
            Some("tenant.")
        );
        assert_eq!(
            Pattern::aws(&template("{slug}/{provider}/{key}")).name_filter(),
            None
        );
        assert_eq!(
            Pattern::aws(&template("team#1/{ref}")).name_filter(),
            None,
            "`#` is not in the filter's alphabet"
        );
    }

    #[test]
    fn a_template_must_name_every_part() {
        assert!(Pattern::vault(&template("{ref}")).names_a_ref());
        assert!(Pattern::vault(&template("{key}/{provider}/{slug}")).names_a_ref());
        assert!(!Pattern::vault(&template("{slug}/{key}")).names_a_ref());
        assert!(!Pattern::vault(&template("static")).names_a_ref());
    }

    #[test]
    fn segments_fit_their_template() {
        assert!(Pattern::new("{slug}").fits("acme-co"));
        assert!(!Pattern::new("{slug}").fits("-acme"));
        assert!(Pattern::new("x-{key}").fits("x-service_role"));
        assert!(!Pattern::new("x-{key}").fits("y-service_role"));
        assert!(Pattern::new("kv").fits("kv"));
    }
}
