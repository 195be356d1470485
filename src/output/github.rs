//! The job summary (`$GITHUB_STEP_SUMMARY`) and step outputs (`$GITHUB_OUTPUT`).

use std::fs::OpenOptions;
use std::io::{self, Write as _};

/// Appends markdown to the job summary, when the runner provides one.
pub fn append_summary(markdown: &str) -> io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    writeln!(file, "{markdown}")
}

/// Writes step outputs, when the runner provides the file. Values are single
/// lines: anything after a line break is dropped, so no value can forge another output.
pub fn write_outputs(pairs: &[(&str, String)]) -> io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_OUTPUT").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    for (key, value) in pairs {
        let value = value.lines().next().unwrap_or_default();
        writeln!(file, "{key}={value}")?;
    }
    Ok(())
}
