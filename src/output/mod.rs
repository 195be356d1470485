//! Everything rotor prints: reports on stdout, logs and annotations on stderr.
//!
//! With `--format json`, stdout carries exactly one JSON object and nothing else; every log line
//! and workflow command goes to stderr. With `GITHUB_ACTIONS=true`, diagnostics also become
//! `::error` annotations on the file, line and column.

pub mod github;
pub mod workflow;

use std::io::{self, Write as _};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::diagnostic::Diagnostic;

/// The report format chosen with `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// How much rotor logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// Errors only (`-q`).
    Quiet,
    /// The default.
    Normal,
    /// Every step (`-v`).
    Verbose,
}

/// An annotation's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// `::error`: a ref failed or could not start.
    Error,
    /// `::warning`: a ref was rolled back, or something was not checked.
    Warning,
    /// `::notice`: worth knowing, nothing wrong (nothing to check yet).
    Notice,
}

impl Level {
    const fn command(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Notice => "notice",
        }
    }
}

/// The output channel of one run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// The report format.
    pub format: Format,
    /// The log level.
    pub verbosity: Verbosity,
    /// Whether to emit workflow commands (`GITHUB_ACTIONS=true`).
    pub github_actions: bool,
}

impl Output {
    /// A line of the human report: stdout in text mode, nothing in JSON mode (the JSON object
    /// carries the same facts).
    pub fn report_line(&self, line: &str) -> io::Result<()> {
        if self.format == Format::Text && self.verbosity > Verbosity::Quiet {
            let mut out = io::stdout().lock();
            writeln!(out, "{}", workflow::neutralise(line))?;
        }
        Ok(())
    }

    /// A log line on stderr, shown unless `-q`.
    pub fn log(&self, line: &str) {
        if self.verbosity > Verbosity::Quiet {
            let _ = writeln!(io::stderr().lock(), "{}", workflow::neutralise(line));
        }
    }

    /// A warning on stderr, shown unless `-q`: something was not checked or not done.
    pub fn warn(&self, line: &str) {
        self.log(&format!("warning: {line}"));
    }

    /// A warning the runner shows as an annotation (`::warning::`) under Actions; a plain
    /// warning line otherwise.
    pub fn annotate_warning(&self, message: &str) {
        self.annotate(Level::Warning, None, "rotor", message);
    }

    /// An annotation on `file` (`::error` or `::warning`) under Actions; outside Actions, a
    /// plain `error: …`/`warning: …` line. Shown even with `-q`.
    pub fn annotate(&self, level: Level, file: Option<&str>, title: &str, message: &str) {
        let line = if self.github_actions {
            let file = file
                .map(|f| format!("file={},", workflow::escape_property(f)))
                .unwrap_or_default();
            format!(
                "::{} {file}title={}::{}",
                level.command(),
                workflow::escape_property(title),
                workflow::escape_data(message)
            )
        } else {
            workflow::neutralise(&format!("{}: {message}", level.command()))
        };
        let _ = writeln!(io::stderr().lock(), "{line}");
    }

    /// One unit of work's log, printed whole so that concurrent work never interleaves: a
    /// collapsible `::group::` under Actions, a heading with indented lines otherwise. Not
    /// shown with `-q`.
    pub fn group(&self, title: &str, lines: &[String]) {
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        let mut text = String::new();
        if self.github_actions {
            text.push_str(&format!(
                "::group::{}\n",
                workflow::escape_data(&workflow::neutralise(title))
            ));
        } else {
            text.push_str(&workflow::neutralise(title));
            text.push('\n');
        }
        for line in lines {
            text.push_str(&workflow::neutralise(&format!("  {line}")));
            text.push('\n');
        }
        if self.github_actions {
            text.push_str("::endgroup::\n");
        }
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }

    /// An error the runner shows as an annotation on `file` (`::error file=…::`) under Actions;
    /// nothing otherwise (the report already says it).
    pub fn annotate_error(&self, file: &str, message: &str) {
        if self.github_actions {
            let _ = writeln!(
                io::stderr().lock(),
                "::error file={}::{}",
                workflow::escape_property(file),
                workflow::escape_data(message)
            );
        }
    }

    /// A log line shown with `-v` only.
    pub fn debug(&self, line: &str) {
        if self.verbosity >= Verbosity::Verbose {
            let _ = writeln!(io::stderr().lock(), "{}", workflow::neutralise(line));
        }
    }

    /// Reports a diagnostic: in text mode on stdout, as an annotation on stderr under Actions.
    pub fn diagnostic(&self, d: &Diagnostic) -> io::Result<()> {
        if self.format == Format::Text {
            let mut out = io::stdout().lock();
            writeln!(out, "{}", workflow::neutralise(&render_diagnostic(d)))?;
        }
        if self.github_actions {
            let message = match &d.help {
                Some(help) => format!("{}\nhelp: {help}", d.message),
                None => d.message.clone(),
            };
            let line = workflow::error_annotation(
                &d.file,
                d.line,
                d.column,
                &format!("rotor: {}", d.code),
                &message,
            );
            writeln!(io::stderr().lock(), "{line}")?;
        }
        Ok(())
    }

    /// Prints the one JSON object of a `--format json` run on stdout.
    pub fn json<T: Serialize>(&self, value: &T) -> io::Result<()> {
        JSON_WRITTEN.store(true, Ordering::SeqCst);
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)
    }
}

/// Whether `-v` asked for every HTTP call. Process-wide, because every client logs its calls
/// and none of them should carry the output channel just for this.
static HTTP_LOG: AtomicBool = AtomicBool::new(false);

/// Turns the HTTP call log of `-v` on or off.
pub fn log_http_calls(on: bool) {
    HTTP_LOG.store(on, Ordering::SeqCst);
}

/// Logs one HTTP call with `-v`: the service, its method, path (of a URL or a path), status
/// and duration. Never a header, a query string or a body: those can carry tokens.
pub fn http_call(service: &str, method: &str, target: &str, status: Option<u16>, took: Duration) {
    if !HTTP_LOG.load(Ordering::SeqCst) {
        return;
    }
    let path = match reqwest::Url::parse(target) {
        Ok(url) => url.path().to_owned(),
        Err(_) => target
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_owned(),
    };
    let status = status.map_or_else(|| "no answer".to_owned(), |s| s.to_string());
    let _ = writeln!(
        io::stderr().lock(),
        "{}",
        workflow::neutralise(&format!(
            "http: {service} {method} {path} -> {status} ({})",
            took_text(took)
        ))
    );
}

/// Logs a line with `-v` only (what rotor chose where it had to, such as how it found its own
/// identity), on stderr, neutralised.
pub fn verbose(line: &str) {
    if HTTP_LOG.load(Ordering::SeqCst) {
        let _ = writeln!(io::stderr().lock(), "{}", workflow::neutralise(line));
    }
}

/// `n` things in words: `1 artifact`, `3 artifacts` (`what` takes a plain `s`).
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// A duration as people read it in a log: `850 ms`, `1.2 s`, `2 min 5 s`.
pub fn took_text(took: Duration) -> String {
    let ms = took.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", took.as_secs_f64())
    } else {
        format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Whether this process has printed its JSON report: one process, one object.
static JSON_WRITTEN: AtomicBool = AtomicBool::new(false);

/// Records that the one JSON object of this run went to stdout by another path (a document
/// written whole), so that a later error adds no second object.
pub fn mark_json_written() {
    JSON_WRITTEN.store(true, Ordering::SeqCst);
}

/// Whether the JSON report has been printed already.
pub fn json_written() -> bool {
    JSON_WRITTEN.load(Ordering::SeqCst)
}

/// A diagnostic as text, the way compilers print theirs.
pub fn render_diagnostic(d: &Diagnostic) -> String {
    let mut text = format!(
        "error[{}]: {}\n  --> {}:{}:{}",
        d.code, d.message, d.file, d.line, d.column
    );
    if let Some(help) = &d.help {
        text.push_str("\n  help: ");
        text.push_str(help);
    }
    text
}
