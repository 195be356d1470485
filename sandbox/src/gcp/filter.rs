//! The `filter` of `secrets.list` and `versions.list`: a subset of Google's list filtering
//! (AIP-160, cloud.google.com/secret-manager/docs/filtering).
//!
//! Served: terms `field OP value` with `OP` one of `:` (has: a substring, or `:*` for
//! presence), `=`, `!=`, `<`, `>`, `<=`, `>=`; fields `name` (the full resource name, with the
//! project number), `state`, `create_time`, `labels.K`, `annotations.K` (camelCase spellings
//! accepted); values bare or double-quoted; `AND`, `OR`, `NOT` (or a `-` prefix), parentheses,
//! and terms side by side meaning `AND`. As in AIP-160, `OR` binds tighter than `AND`
//! (`a AND b OR c` is `a AND (b OR c)`). A bare word is a `name` substring. Matching is
//! case-sensitive (assumed). Times compare as instants.

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Both hold.
    And(Box<Self>, Box<Self>),
    /// Either holds.
    Or(Box<Self>, Box<Self>),
    /// It does not hold.
    Not(Box<Self>),
    /// `field op value`.
    Term {
        /// The field, normalized to snake_case (`create_time`, `labels.env`).
        field: String,
        /// The operator.
        op: String,
        /// The value, unquoted.
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Open,
    Close,
    Op(String),
    Word(String),
    Quoted(String),
}

fn tokens(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("an unterminated string".to_owned()),
                        Some('"') => break,
                        Some('\\') => text.extend(chars.next()),
                        Some(c) => text.push(c),
                    }
                }
                out.push(Token::Quoted(text));
            }
            ':' | '=' | '!' | '<' | '>' => {
                chars.next();
                let mut op = c.to_string();
                if matches!(c, '!' | '<' | '>') && chars.peek() == Some(&'=') {
                    chars.next();
                    op.push('=');
                }
                if op == "!" {
                    return Err("`!` must be `!=`".to_owned());
                }
                out.push(Token::Op(op));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace()
                        || matches!(c, '(' | ')' | '"' | ':' | '=' | '!' | '<' | '>')
                    {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == k)
    }

    /// `and := or { [AND] or }`
    fn and(&mut self) -> Result<Filter, String> {
        let mut left = self.or()?;
        loop {
            if self.keyword("AND") {
                self.next();
            } else if matches!(self.peek(), None | Some(Token::Close)) {
                return Ok(left);
            }
            let right = self.or()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    /// `or := unary { OR unary }`
    fn or(&mut self) -> Result<Filter, String> {
        let mut left = self.unary()?;
        while self.keyword("OR") {
            self.next();
            let right = self.unary()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("NOT") {
            self.next();
            return Ok(Filter::Not(Box::new(self.unary()?)));
        }
        if let Some(Token::Word(w)) = self.peek()
            && w.len() > 1
            && let Some(rest) = w.strip_prefix('-')
        {
            let rest = rest.to_owned();
            self.tokens[self.at] = Token::Word(rest);
            return Ok(Filter::Not(Box::new(self.primary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, String> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.and()?;
                match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err("a `(` without its `)`".to_owned()),
                }
            }
            Some(Token::Word(field)) if matches!(self.peek(), Some(Token::Op(_))) => {
                let Some(Token::Op(op)) = self.next() else {
                    return Err("an operator expected".to_owned());
                };
                let value = match self.next() {
                    Some(Token::Word(v) | Token::Quoted(v)) => v,
                    _ => return Err(format!("a value expected after `{field}{op}`")),
                };
                let field = normalize(&field)?;
                Ok(Filter::Term { field, op, value })
            }
            Some(Token::Word(w) | Token::Quoted(w)) => Ok(Filter::Term {
                field: "name".to_owned(),
                op: ":".to_owned(),
                value: w,
            }),
            Some(t) => Err(format!("unexpected {t:?}")),
            None => Err("an expression expected".to_owned()),
        }
    }
}

fn normalize(field: &str) -> Result<String, String> {
    let (head, key) = field.split_once('.').unwrap_or((field, ""));
    let head = match head {
        "name" => "name",
        "state" => "state",
        "create_time" | "createTime" => "create_time",
        "labels" => "labels",
        "annotations" => "annotations",
        other => return Err(format!("the field `{other}` cannot be filtered on here")),
    };
    match (head, key.is_empty()) {
        ("labels" | "annotations", true) => Err(format!("`{head}` needs a key: `{head}.KEY`")),
        ("labels" | "annotations", false) => Ok(format!("{head}.{key}")),
        (_, true) => Ok(head.to_owned()),
        (_, false) => Err(format!("the field `{field}` cannot be filtered on here")),
    }
}

/// Parses a filter; the message says what is wrong.
pub fn parse(s: &str) -> Result<Filter, String> {
    let mut parser = Parser {
        tokens: tokens(s)?,
        at: 0,
    };
    let filter = parser.and()?;
    if parser.at < parser.tokens.len() {
        return Err("a `)` without its `(`".to_owned());
    }
    Ok(filter)
}

impl Filter {
    /// Whether a resource matches; `field` gives a field's value (`None` when absent).
    pub fn matches(&self, field: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Self::And(a, b) => a.matches(field) && b.matches(field),
            Self::Or(a, b) => a.matches(field) || b.matches(field),
            Self::Not(a) => !a.matches(field),
            Self::Term {
                field: name,
                op,
                value,
            } => {
                let Some(actual) = field(name) else {
                    return op == "!=";
                };
                if name == "create_time" && op != ":" {
                    let (Ok(a), Ok(v)) = (
                        chrono::DateTime::parse_from_rfc3339(&actual),
                        chrono::DateTime::parse_from_rfc3339(value),
                    ) else {
                        return false;
                    };
                    return compare(op, a.cmp(&v));
                }
                match op.as_str() {
                    ":" => value == "*" || actual.contains(value.as_str()),
                    _ => compare(op, actual.as_str().cmp(value.as_str())),
                }
            }
        }
    }
}

fn compare(op: &str, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::{Equal, Greater, Less};
    match op {
        "=" => ordering == Equal,
        "!=" => ordering != Equal,
        "<" => ordering == Less,
        ">" => ordering == Greater,
        "<=" => ordering != Greater,
        ">=" => ordering != Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(name: &'static str) -> impl Fn(&str) -> Option<String> {
        move |f| match f {
            "name" => Some(name.to_owned()),
            "state" => Some("ENABLED".to_owned()),
            "labels.env" => Some("prod".to_owned()),
            "create_time" => Some("2026-12-04T10:00:00Z".to_owned()),
            _ => None,
        }
    }

    fn holds(filter: &str, name: &'static str) -> bool {
        parse(filter).expect("parses").matches(&on(name))
    }

    #[test]
    fn terms_and_connectives() {
        let n = "projects/1/secrets/acme_stripe_key";
        assert!(holds("name:stripe", n));
        assert!(!holds("name:github", n));
        assert!(holds("name:github OR name:stripe", n));
        assert!(holds("name:acme AND name:key", n));
        assert!(holds("name:acme name:key", n));
        assert!(!holds("name:acme AND NOT name:key", n));
        assert!(!holds("name:acme -name:key", n));
        assert!(holds("name:zzz OR name:acme AND state=ENABLED", n));
        assert!(!holds("name:zzz AND name:yyy OR name:acme", n));
        assert!(holds("(name:zzz OR name:acme) AND labels.env=prod", n));
        assert!(holds("labels.env:*", n));
        assert!(!holds("labels.team:*", n));
        assert!(holds("labels.team!=x", n));
        assert!(holds("create_time>\"2026-01-01T00:00:00Z\"", n));
        assert!(!holds("createTime<\"2026-01-01T00:00:00Z\"", n));
        assert!(holds("stripe", n));
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            "name:",
            "(name:a",
            "name:a)",
            "color=red",
            "labels:x",
            "name ! a",
            "\"x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
