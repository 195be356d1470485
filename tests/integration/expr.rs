//! A small evaluator of GitHub Actions expressions (`${{ … }}` and `if:`), enough for the
//! example workflows: literals, context paths (`github.event.review.state`), `==` `!=` `<` `>`
//! `&&` `||` `!`, parentheses, and `startsWith`, `endsWith`, `contains`, `format`-free calls.
//!
//! Semantics follow GitHub's "Expressions" reference: `==` compares strings ignoring case, `&&`
//! and `||` return an operand (not a boolean), and falsy values are `null`, `false`, `0`, `-0`,
//! `NaN` and `''`.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ident(String),
    Op(&'static str),
}

fn tokens(text: &str) -> Vec<Tok> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                    None => panic!("unterminated string in {text}"),
                }
            }
            out.push(Tok::Str(s));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let n: String = chars[start..i].iter().collect();
            out.push(Tok::Num(n.parse().expect("number")));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | '*'))
            {
                i += 1;
            }
            out.push(Tok::Ident(chars[start..i].iter().collect()));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = match two.as_str() {
                "==" => Some("=="),
                "!=" => Some("!="),
                "&&" => Some("&&"),
                "||" => Some("||"),
                "<=" => Some("<="),
                ">=" => Some(">="),
                _ => None,
            };
            if let Some(op) = op {
                out.push(Tok::Op(op));
                i += 2;
            } else {
                out.push(Tok::Op(match c {
                    '!' => "!",
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    '<' => "<",
                    '>' => ">",
                    other => panic!("unexpected {other:?} in {text}"),
                }));
                i += 1;
            }
        }
    }
    out
}

/// Whether a value is truthy.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        // Mixed types compare as numbers in GitHub's rules: null and '' are 0, so an unset
        // secret equals ''.
        (x, y) => {
            let (x, y) = (number(x), number(y));
            !x.is_nan() && x == y
        }
    }
}

/// A value as GitHub's expressions coerce it to a number (NaN when it is not one).
fn number(v: &Value) -> f64 {
    match v {
        Value::Null => 0.0,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) if s.trim().is_empty() => 0.0,
        Value::String(s) => s.trim().parse().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    cx: &'a Value,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at)
    }

    fn eat(&mut self, op: &str) -> bool {
        if self.peek()
            == Some(&Tok::Op(match op {
                "||" => "||",
                "&&" => "&&",
                "!" => "!",
                "(" => "(",
                ")" => ")",
                "," => ",",
                "==" => "==",
                "!=" => "!=",
                "<" => "<",
                ">" => ">",
                "<=" => "<=",
                ">=" => ">=",
                _ => unreachable!(),
            }))
        {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Value {
        let mut left = self.and();
        while self.eat("||") {
            let right = self.and();
            left = if truthy(&left) { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Value {
        let mut left = self.cmp();
        while self.eat("&&") {
            let right = self.cmp();
            left = if truthy(&left) { right } else { left };
        }
        left
    }

    fn cmp(&mut self) -> Value {
        let left = self.unary();
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            if self.eat(op) {
                let right = self.unary();
                let n = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
                return Value::Bool(match op {
                    "==" => equal(&left, &right),
                    "!=" => !equal(&left, &right),
                    "<" => n(&left) < n(&right),
                    ">" => n(&left) > n(&right),
                    "<=" => n(&left) <= n(&right),
                    _ => n(&left) >= n(&right),
                });
            }
        }
        left
    }

    fn unary(&mut self) -> Value {
        if self.eat("!") {
            return Value::Bool(!truthy(&self.unary()));
        }
        self.primary()
    }

    fn primary(&mut self) -> Value {
        if self.eat("(") {
            let v = self.or();
            assert!(self.eat(")"), "missing )");
            return v;
        }
        match self.toks.get(self.at).cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Value::String(s)
            }
            Some(Tok::Num(n)) => {
                self.at += 1;
                serde_json::json!(n)
            }
            Some(Tok::Ident(name)) => {
                self.at += 1;
                if self.eat("(") {
                    let mut args = Vec::new();
                    if !self.eat(")") {
                        loop {
                            args.push(self.or());
                            if self.eat(")") {
                                break;
                            }
                            assert!(self.eat(","), "expected , in call of {name}");
                        }
                    }
                    return call(&name, &args);
                }
                match name.as_str() {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    "null" => Value::Null,
                    path => {
                        let mut v = self.cx;
                        for part in path.split('.') {
                            v = v.get(part).unwrap_or(&Value::Null);
                        }
                        v.clone()
                    }
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn call(name: &str, args: &[Value]) -> Value {
    let text = |i: usize| as_text(args.get(i).unwrap_or(&Value::Null)).to_lowercase();
    Value::Bool(match name.to_ascii_lowercase().as_str() {
        "startswith" => text(0).starts_with(&text(1)),
        "endswith" => text(0).ends_with(&text(1)),
        "contains" => match args.first() {
            Some(Value::Array(items)) => items
                .iter()
                .any(|i| equal(i, args.get(1).unwrap_or(&Value::Null))),
            _ => text(0).contains(&text(1)),
        },
        "always" | "success" => true,
        "failure" | "cancelled" => false,
        other => panic!("function {other} is not supported by the test evaluator"),
    })
}

/// Evaluates an expression (with or without `${{ }}`) in context `cx`.
pub(crate) fn eval(text: &str, cx: &Value) -> Value {
    let inner = text
        .trim()
        .strip_prefix("${{")
        .and_then(|t| t.strip_suffix("}}"))
        .unwrap_or(text);
    let mut p = Parser {
        toks: tokens(inner),
        at: 0,
        cx,
    };
    let v = p.or();
    assert_eq!(p.at, p.toks.len(), "trailing input in {text}");
    v
}

/// Replaces every `${{ … }}` in a string value by its evaluation.
pub(crate) fn interpolate(text: &str, cx: &Value) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("closing }}") + start + 2;
        out.push_str(&as_text(&eval(&rest[start..end], cx)));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn an_unset_secret_equals_the_empty_string() {
    let cx = serde_json::json!({"secrets": {"SET": "k"}});
    assert!(!truthy(&eval("secrets.UNSET != ''", &cx)));
    assert!(truthy(&eval("secrets.SET != ''", &cx)));
    assert_eq!(interpolate("${{ secrets.UNSET != '' }}", &cx), "false");
}

#[test]
fn the_evaluator_follows_githubs_rules() {
    let cx = serde_json::json!({"github": {"event_name": "issue_comment", "event": {
        "issue": {"pull_request": {"url": "x"}}, "comment": {"body": "/rotor apply"}}}});
    assert!(truthy(&eval("github.event_name == 'ISSUE_COMMENT'", &cx)));
    assert!(truthy(&eval(
        "github.event_name == 'issue_comment' && github.event.issue.pull_request && startsWith(github.event.comment.body, '/rotor apply')",
        &cx
    )));
    assert!(!truthy(&eval(
        "github.event.review.state == 'approved'",
        &cx
    )));
    assert!(truthy(&eval("!(github.event.review) || false", &cx)));
    assert_eq!(
        eval("github.event.comment.body || 'x'", &cx),
        "/rotor apply"
    );
    assert_eq!(
        interpolate("a-${{ github.event_name }}-b", &cx),
        "a-issue_comment-b"
    );
}
