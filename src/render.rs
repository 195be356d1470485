//! Rendering what people read (the sticky comment, the job summary; the artifact with `apply`)
//! from minijinja templates in `templates/`, overridable from the base branch.
//!
//! Every value a template prints is escaped for markdown and HTML unless the code marked it
//! safe, so an override cannot forget to escape: untrusted text (a reason, a PR title, an
//! error quoting user input) can never inject markup, links, mentions or `<script>`. Escaping
//! leaves validated identifiers such as `tenant.acme.supabase.service_role` readable as they are.

use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde::Serialize;

/// The built-in templates, by the name an override must use.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "artifact.md.j2",
        include_str!("../templates/artifact.md.j2"),
    ),
    ("comment.md.j2", include_str!("../templates/comment.md.j2")),
    ("drift.md.j2", include_str!("../templates/drift.md.j2")),
    ("report.md.j2", include_str!("../templates/report.md.j2")),
    (
        "rollback.md.j2",
        include_str!("../templates/rollback.md.j2"),
    ),
    ("summary.md.j2", include_str!("../templates/summary.md.j2")),
    (
        "countersigned.md.j2",
        include_str!("../templates/countersigned.md.j2"),
    ),
    ("notify.md.j2", include_str!("../templates/notify.md.j2")),
    ("verify.md.j2", include_str!("../templates/verify.md.j2")),
    (
        "evidence.md.j2",
        include_str!("../templates/evidence.md.j2"),
    ),
];

/// Where a repository keeps its overrides, read from the base branch only.
pub const OVERRIDE_DIR: &str = ".github/rotor/templates";

/// A template that cannot be loaded or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// An override whose name is not one of rotor's templates.
    #[error("{OVERRIDE_DIR}/{0} overrides no template; the names are: {names}", names = TEMPLATES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
    UnknownOverride(String),
    /// A template with a syntax error or a missing variable.
    #[error("template {name}: {detail}")]
    Template {
        /// The template.
        name: String,
        /// What is wrong.
        detail: String,
    },
}

/// Escapes text for inline markdown and HTML: no markup, links, autolinks, images, code
/// spans, table breaks, mentions, character references or line breaks survive; words and
/// identifiers stay as they are.
///
/// GitHub turns a bare `https://…` or `www.…` into a link, and decodes a character reference
/// such as `&#64;` to `@` after its mention filter ran: so `&` is escaped, and the `:` of a
/// scheme before `//` and the `.` of a leading `www.` are backslash-escaped. A backslash escape
/// renders as the character itself, in text and in the destination of a link rotor builds
/// (`[run](https\://…)` still points at `https://…`), but no autolink starts from it.
pub fn escape_md(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let at = |j: usize| chars.get(j).copied();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {}
            '\n' | '\t' => out.push(' '),
            // `#` and `!` are left alone: values never start a line, and `[` is escaped.
            '\\' | '`' | '*' | '[' | ']' | '|' | '~' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // A scheme's `:` before `//` (`https://`, `HTTP://`, `ftp://`).
            ':' if at(i + 1) == Some('/') && at(i + 2) == Some('/') => out.push_str("\\:"),
            // The `.` of `www.` where GitHub starts an autolink: at the start, or after white
            // space or one of `*_~(` (in `tenant.www.x.y` it links nothing).
            '.' if i >= 3
                && chars[i - 3..i].iter().all(|w| w.eq_ignore_ascii_case(&'w'))
                && (i == 3 || chars[i - 4].is_whitespace() || "*_~(".contains(chars[i - 4])) =>
            {
                out.push_str("\\.");
            }
            // GitHub ignores underscores inside words; only those at a word's edge could emphasise.
            '_' => {
                let inner = |j: Option<usize>| {
                    j.and_then(|j| chars.get(j))
                        .is_some_and(|c| c.is_alphanumeric())
                };
                if !(inner(i.checked_sub(1)) && inner(Some(i + 1))) {
                    out.push('\\');
                }
                out.push('_');
            }
            // A zero-width space keeps `@name` from notifying anyone.
            '@' => out.push_str("@\u{200b}"),
            // Bidirectional controls could make the text read otherwise than it is.
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A link rotor built itself (to the run, a review, the audit query): an absolute `http(s)`
/// URL, printed so that GitHub links it and nothing can close a markdown link around it
/// (parentheses and angle brackets percent-encoded). Anything else is `None`, to be escaped
/// as text.
pub fn link(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for c in url.as_str().chars() {
        match c {
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            '\\' => out.push_str("%5C"),
            '`' => out.push_str("%60"),
            c if c.is_whitespace() || c.is_control() => {}
            c => out.push(c),
        }
    }
    Some(out)
}

/// Escapes rotor's own sentences, which quote names and commands in backticks (`` `to` ``,
/// `` `Members: read` ``), keeping those code spans: everything is escaped as [`escape_md`]
/// does, then the backticks are restored. A code span shows its content literally, so a value
/// quoted inside one can still not make markup, links or mentions.
pub fn prose(text: &str) -> String {
    escape_md(text).replace("\\`", "`")
}

/// rotor's HTML templates: built in only, never overridden (an auditor's document is rotor's
/// own), every value escaped for HTML by minijinja's auto-escaping.
pub const HTML_TEMPLATES: &[(&str, &str)] = &[(
    "evidence.html.j2",
    include_str!("../templates/evidence.html.j2"),
)];

/// Renders the HTML template `name` with `context`, escaping every value for HTML (`<`, `>`,
/// `&`, quotes and `/`), in text and attributes alike.
pub fn render_html<S: Serialize>(name: &str, context: S) -> Result<String, RenderError> {
    let err = |e: minijinja::Error| RenderError::Template {
        name: name.to_owned(),
        detail: e.to_string(),
    };
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    for (n, source) in HTML_TEMPLATES {
        env.add_template(n, source).map_err(err)?;
    }
    env.get_template(name)
        .map_err(err)?
        .render(minijinja::Value::from(minijinja::value::Serde(&context)))
        .map_err(err)
}

/// The template environment with rotor's templates and the repository's overrides.
pub struct Renderer {
    env: Environment<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// Loads the built-in templates, replaced by `overrides` (name, source) where given.
    pub fn new(overrides: Vec<(String, String)>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_formatter(|out, _state, value| {
            if value.is_undefined() || value.is_none() {
                return Ok(());
            }
            let text = if value.is_safe() {
                value.to_string()
            } else {
                escape_md(
                    &value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned),
                )
            };
            out.write_str(&text)
                .map_err(|_| minijinja::Error::new(ErrorKind::WriteFailure, "cannot write"))
        });
        env.add_filter("prose", |text: Option<String>| {
            minijinja::Value::from_safe_string(prose(text.as_deref().unwrap_or_default()))
        });
        env.add_filter("link", |text: Option<String>| {
            let text = text.unwrap_or_default();
            minijinja::Value::from_safe_string(link(&text).unwrap_or_else(|| escape_md(&text)))
        });
        for (name, source) in TEMPLATES {
            env.add_template_owned(*name, *source)
                .map_err(|e| RenderError::Template {
                    name: (*name).to_owned(),
                    detail: e.to_string(),
                })?;
        }
        for (name, source) in overrides {
            if !TEMPLATES.iter().any(|(n, _)| *n == name) {
                return Err(RenderError::UnknownOverride(name));
            }
            env.add_template_owned(name.clone(), source)
                .map_err(|e| RenderError::Template {
                    name,
                    detail: e.to_string(),
                })?;
        }
        Ok(Self { env })
    }

    /// Renders template `name` with `context`.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, RenderError> {
        let err = |e: minijinja::Error| RenderError::Template {
            name: name.to_owned(),
            detail: e.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(minijinja::Value::from(minijinja::value::Serde(&context)))
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_untouched_and_markup_is_not() {
        assert_eq!(
            escape_md("tenant.acme.supabase.service_role"),
            "tenant.acme.supabase.service_role"
        );
        assert_eq!(escape_md("2026-11-25-acme"), "2026-11-25-acme");
        assert_eq!(
            escape_md("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape_md("[click](https://evil)"),
            "\\[click\\](https\\://evil)"
        );
        assert_eq!(escape_md("a | b\nc"), "a \\| b c");
        assert_eq!(
            escape_md("_emph_ **bold** `code`"),
            "\\_emph\\_ \\*\\*bold\\*\\* \\`code\\`"
        );
        assert_eq!(escape_md("ping @security"), "ping @\u{200b}security");
        assert_eq!(
            escape_md("abc\u{202e}fed"),
            "abcfed",
            "no bidirectional override"
        );
        assert_eq!(escape_md("![img](x)"), "!\\[img\\](x)");
        assert_eq!(
            escape_md("https://x/pull/7#review-80"),
            "https\\://x/pull/7#review-80"
        );
    }

    #[test]
    fn references_autolinks_and_mentions_come_out_as_text() {
        assert_eq!(
            escape_md("cc &#64;mallory and &#x40;acme/security"),
            "cc &amp;#64;mallory and &amp;#x40;acme/security"
        );
        assert_eq!(
            escape_md("see https://evil.example/x and HTTP://b and www.evil.example"),
            "see https\\://evil.example/x and HTTP\\://b and www\\.evil.example"
        );
        assert_eq!(escape_md("WWW.Evil.example"), "WWW\\.Evil.example");
        // Words that merely contain the letters stay as they are.
        assert_eq!(escape_md("awww.x a:b c://"), "awww.x a:b c\\://");
        assert_eq!(escape_md("tenant.www.x.y"), "tenant.www.x.y");
        assert_eq!(escape_md("(www.evil.example)"), "(www\\.evil.example)");
        assert_eq!(escape_md("mailto:x@y"), "mailto:x@\u{200b}y");
    }

    #[test]
    fn prose_keeps_code_spans_and_nothing_else() {
        assert_eq!(
            prose("give ROTOR_ORG_TOKEN `Members: read` <b>now</b>"),
            "give ROTOR_ORG_TOKEN `Members: read` &lt;b&gt;now&lt;/b&gt;"
        );
        assert_eq!(prose("[x](y) @team"), "\\[x\\](y) @\u{200b}team");
    }

    #[test]
    fn every_printed_value_is_escaped_even_in_an_override() {
        let r = Renderer::new(vec![(
            "summary.md.j2".to_owned(),
            "{{ reason }}".to_owned(),
        )])
        .expect("renderer");
        assert_eq!(
            r.render("summary.md.j2", serde_json::json!({"reason": "<b>x</b>"}))
                .expect("render"),
            "&lt;b&gt;x&lt;/b&gt;"
        );
    }

    #[test]
    fn html_escapes_text_and_attributes() {
        let html = render_html(
            "evidence.html.j2",
            serde_json::json!({
                "since": "<script>alert(1)</script>", "until": "x\" onload=\"y",
                "branch": "main", "tip": "abc", "generated": "now", "version": "0",
                "verify": {"mode": "offline", "findings": []},
                "totals": {"rotations": 0, "refs_rotated": 0, "rolled_back": 0, "failed": 0, "break_glass": 0, "approvals_owed": 0, "countersigned_late": 0}, "break_glass": [],
                "charts": {"weekly": {"width": 1.0, "height": 1.0, "bars": [], "labels": [], "line": null},
                           "ages": {"width": 1.0, "height": 1.0, "bars": [], "labels": [], "line": null}},
                "rotations": [], "overdue_refs": [], "max_age_days": 90, "artifacts_dir": "d",
            }),
        )
        .expect("render");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("x\" onload"));
    }

    #[test]
    fn unknown_overrides_and_missing_variables_are_errors() {
        assert!(matches!(
            Renderer::new(vec![("../../etc/passwd".to_owned(), String::new())]),
            Err(RenderError::UnknownOverride(_))
        ));
        let r = Renderer::new(vec![("summary.md.j2".to_owned(), "{{ nope }}".to_owned())])
            .expect("renderer");
        assert!(r.render("summary.md.j2", serde_json::json!({})).is_err());
    }
}
