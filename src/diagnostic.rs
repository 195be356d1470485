//! Input diagnostics: what is wrong with a file, where, and what to write instead.
//!
//! Every validation error rotor reports about a user's file is a [`Diagnostic`]. It carries a
//! stable machine-readable `code` (used by the JSON report and by tests), the file as the user
//! knows it (relative to the repository), a 1-based line and column, a one-line message, and a
//! `help` line saying how to fix it.

use std::fmt;

use serde::Serialize;

/// A 1-based line and column in a text file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Pos {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column number in characters, starting at 1.
    pub column: usize,
}

impl Pos {
    /// The first character of a file.
    pub const START: Self = Self { line: 1, column: 1 };

    /// Builds a position from 1-based line and column.
    pub const fn new(line: usize, column: usize) -> Self {
        Self { line, column }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One problem found in one input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Stable identifier of the broken rule, e.g. `invalid_ref`.
    pub code: &'static str,
    /// What is wrong, in one line. User-supplied text in it is quoted and escaped.
    pub message: String,
    /// The file, as a path relative to the repository when it lies inside it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What to write instead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `pos` of `file`.
    pub fn new(code: &'static str, file: &str, pos: Pos, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            file: file.to_owned(),
            line: pos.line,
            column: pos.column,
            help: None,
        }
    }

    /// Adds the line that says how to fix the problem.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Where the problem is.
    pub const fn pos(&self) -> Pos {
        Pos::new(self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} [{}]",
            self.file, self.line, self.column, self.message, self.code
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// Quotes user-supplied text for a message: double quotes, with control characters, quotes and
/// non-ASCII escaped, so a value can never break a log line or look like something it is not.
pub fn quote(text: &str) -> String {
    const MAX: usize = 80;
    let mut out = String::with_capacity(text.len().min(MAX) + 2);
    out.push('"');
    for (count, c) in text.chars().enumerate() {
        if count == MAX {
            out.push('…');
            break;
        }
        if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out.push('"');
    out
}

/// Collects diagnostics while a whole file is checked, so that one run reports every problem.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Records one problem.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    /// How many problems have been recorded.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The problems in file order.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by(|a, b| (&a.file, a.pos()).cmp(&(&b.file, b.pos())));
        self.items
    }

    /// `Ok(value)` when nothing was recorded, the sorted problems otherwise.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Diagnostic>> {
        match value {
            Some(value) if self.is_empty() => Ok(value),
            _ => Err(self.into_sorted()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_control_and_non_ascii() {
        assert_eq!(quote("a\nb"), r#""a\nb""#);
        assert_eq!(quote("tenant.аcme"), r#""tenant.\u{430}cme""#);
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
    }

    #[test]
    fn quote_truncates_long_values() {
        let long = "x".repeat(200);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), 83);
        assert!(quoted.ends_with("…\""));
    }

    #[test]
    fn display_names_file_line_column_and_help() {
        let d = Diagnostic::new(
            "invalid_ref",
            "rotations/a.yaml",
            Pos::new(4, 10),
            "bad ref",
        )
        .help("write tenant.<slug>.<provider>.<key>");
        assert_eq!(
            d.to_string(),
            "rotations/a.yaml:4:10: bad ref [invalid_ref]\n  help: write tenant.<slug>.<provider>.<key>"
        );
    }
}
