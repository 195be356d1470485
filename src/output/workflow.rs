//! GitHub Actions workflow commands, escaped so that untrusted text can never issue one.
//!
//! The runner reads `::command …::` lines from both stdout and stderr. Everything rotor prints
//! that contains text from a request, a PR or an API answer goes through [`neutralise`], and
//! every annotation's properties and message are escaped as the runner expects
//! (actions/toolkit `command.ts`): `%`, CR and LF in data; also `:` and `,` in properties.

/// Escapes an annotation's message.
pub fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an annotation property value (`file=`, `title=`).
pub fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// An `::error` annotation on `file` at `line`:`col`.
pub fn error_annotation(file: &str, line: usize, col: usize, title: &str, message: &str) -> String {
    format!(
        "::error file={},line={line},col={col},title={}::{}",
        escape_property(file),
        escape_property(title),
        escape_data(message)
    )
}

/// Tells the runner to mask a derived credential (an OIDC token, a Vault login token) in every
/// later log line. Only under GitHub Actions; on stderr, which the runner also reads, so that
/// stdout stays one JSON object with `--format json`.
pub fn add_mask(value: &str) {
    use std::io::Write as _;
    if std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true") && !value.is_empty() {
        let _ = writeln!(
            std::io::stderr().lock(),
            "::add-mask::{}",
            escape_data(value)
        );
    }
}

/// Makes untrusted text safe to print on its own lines: a line that would start with `::`
/// (after the whitespace the runner trims) gets a zero-width space between the colons.
pub fn neutralise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    // The runner ends a line at LF, CRLF and a lone CR: each can start a command.
    for (i, line) in text.split(['\n', '\r']).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("::") {
            out.push_str(&line[..line.len() - trimmed.len()]);
            out.push_str(":\u{200b}:");
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotation_escapes_properties_and_data() {
        assert_eq!(
            error_annotation("rot:a,b.yaml", 3, 7, "rotor invalid_ref", "50% bad\nref"),
            "::error file=rot%3Aa%2Cb.yaml,line=3,col=7,title=rotor invalid_ref::50%25 bad%0Aref"
        );
    }

    #[test]
    fn injected_commands_are_neutralised() {
        let hostile = "ok\n::set-output name=x::y\n  ::add-mask::z\r\n%0A::error::w\r::warning::cr";
        let safe = neutralise(hostile);
        assert!(
            safe.lines().all(|l| !l.trim_start().starts_with("::")),
            "{safe}"
        );
        assert!(safe.contains("set-output name=x::y"));
    }
}
