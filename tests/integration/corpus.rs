//! The invalid-input corpus: one broken rule per file, each rejected at the right place.
//!
//! Every file under `tests/fixtures/{requests,configs}/invalid/` starts with
//! `# expect: <code> at <line>:<col>: <message fragment>`. The library must report a diagnostic
//! with exactly that code and position whose message contains the fragment; the binary must exit
//! 2 on it; and all messages, with their help lines, are kept in snapshots for review.

use std::fs;
use std::path::{Path, PathBuf};

use rotor::config;
use rotor::diagnostic::Diagnostic;
use rotor::output::render_diagnostic;
use rotor::request;

use crate::common::{fixture, rotor};

struct Expect {
    code: String,
    line: usize,
    column: usize,
    fragment: String,
}

fn expectation(path: &Path) -> Expect {
    let bytes = fs::read(path).expect("fixture is readable");
    let first = bytes.split(|b| *b == b'\n').next().expect("first line");
    let first = String::from_utf8_lossy(first);
    let spec = first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} lacks its `# expect:` line", path.display()));
    let (code, rest) = spec.split_once(" at ").expect("`<code> at`");
    let (pos, fragment) = rest.split_once(": ").expect("`<line>:<col>: <fragment>`");
    let (line, column) = pos.split_once(':').expect("line:col");
    Expect {
        code: code.to_owned(),
        line: line.parse().expect("line"),
        column: column.parse().expect("column"),
        fragment: fragment.to_owned(),
    }
}

fn files(dir: &str) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = fs::read_dir(fixture(dir))
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    paths
}

fn test_config() -> config::Config {
    let path = fixture("repo/.github/rotor.yml");
    config::parse("rotor.yml", &fs::read(path).expect("config")).expect("the test config is valid")
}

fn check_request(path: &Path, cfg: &config::Config) -> Result<request::Request, Vec<Diagnostic>> {
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let display = format!("rotations/{name}");
    request::parse(&display, &fs::read(path).expect("fixture"), ctx(path, cfg))
}

fn ctx<'a>(path: &'a Path, cfg: &'a config::Config) -> request::Context<'a> {
    request::Context {
        stem: path.file_stem().and_then(|s| s.to_str()),
        environments: Some(&cfg.environments),
    }
}

/// `None` when the expected diagnostic is among `diags`, a description of the mismatch otherwise.
fn mismatch(path: &Path, expect: &Expect, diags: &[Diagnostic]) -> Option<String> {
    let found = diags.iter().any(|d| {
        d.code == expect.code
            && d.line == expect.line
            && d.column == expect.column
            && (d.message.contains(&expect.fragment)
                || d.help
                    .as_ref()
                    .is_some_and(|h| h.contains(&expect.fragment)))
    });
    if let Some(d) = diags.iter().find(|d| d.help.is_none()) {
        return Some(format!(
            "{}: {} says nothing about how to fix it",
            path.display(),
            d.code
        ));
    }
    (!found).then(|| {
        format!(
            "{}: expected {} at {}:{} with message or help containing {:?}, got:\n{}",
            path.display(),
            expect.code,
            expect.line,
            expect.column,
            expect.fragment,
            diags
                .iter()
                .map(|d| format!("  {} at {}:{}: {}", d.code, d.line, d.column, d.message))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

fn assert_no_mismatch(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} corpus cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_invalid_request_is_rejected_at_the_right_place() {
    let cfg = test_config();
    let mut rendered = String::new();
    let mut failures = Vec::new();
    let paths = files("requests/invalid");
    assert!(
        paths.len() >= 60,
        "the request corpus has {} cases",
        paths.len()
    );
    // The `.yml` case is the command's rule (the file name), covered by the binary test below.
    for path in paths
        .iter()
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("yaml"))
    {
        let expect = expectation(path);
        let diags =
            check_request(path, &cfg).expect_err(&format!("{} must be invalid", path.display()));
        failures.extend(mismatch(path, &expect, &diags));
        for d in &diags {
            rendered.push_str(&render_diagnostic(d));
            rendered.push('\n');
        }
    }
    assert_no_mismatch(&failures);
    insta::assert_snapshot!("request_corpus", rendered);
}

#[test]
fn every_invalid_config_is_rejected_at_the_right_place() {
    let mut rendered = String::new();
    let mut failures = Vec::new();
    let paths = files("configs/invalid");
    assert!(
        paths.len() >= 40,
        "the config corpus has {} cases",
        paths.len()
    );
    for path in &paths {
        let expect = expectation(path);
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let display = format!(".github/{name}");
        let diags = config::parse(&display, &fs::read(path).expect("fixture"))
            .expect_err(&format!("{} must be invalid", path.display()));
        failures.extend(mismatch(path, &expect, &diags));
        for d in &diags {
            rendered.push_str(&render_diagnostic(d));
            rendered.push('\n');
        }
    }
    assert_no_mismatch(&failures);
    insta::assert_snapshot!("config_corpus", rendered);
}

#[test]
fn the_binary_exits_2_with_file_line_and_annotation_for_every_case() {
    let repo = fixture("repo");
    for path in files("requests/invalid") {
        let expect = expectation(&path);
        let (stdout, stderr) = rotor()
            .args([
                "--repo".as_ref(),
                repo.as_os_str(),
                "validate".as_ref(),
                path.as_os_str(),
            ])
            .env("GITHUB_ACTIONS", "true")
            .expects_exit(2)
            .run();
        let needle = format!(":{}:{}", expect.line, expect.column);
        assert!(
            stdout.contains(&needle) && stdout.contains(&expect.code),
            "{}: {stdout}",
            path.display()
        );
        let annotation = format!(
            ",line={},col={},title=rotor%3A {}::",
            expect.line, expect.column, expect.code
        );
        assert!(
            stderr.contains(&annotation),
            "{}: no annotation {annotation} in {stderr}",
            path.display()
        );
    }
    for path in files("configs/invalid") {
        let expect = expectation(&path);
        let (stdout, _) = rotor()
            .args([
                "--repo".as_ref(),
                repo.as_os_str(),
                "--config".as_ref(),
                path.as_os_str(),
                "validate".as_ref(),
            ])
            .expects_exit(2)
            .run();
        assert!(
            stdout.contains(&format!(":{}:{}", expect.line, expect.column)),
            "{}: {stdout}",
            path.display()
        );
    }
}

#[test]
fn a_file_over_one_mebibyte_is_refused_and_exactly_one_is_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let head = "version: 1\nid: big\nenvironment: staging\nrefs:\n  - ref: tenant.acme.supabase.service_role\nreason: ";
    let exact = rotor::yaml::MAX_FILE_BYTES as usize;
    let mut text = String::from(head);
    text.push_str(&"x".repeat(exact - head.len() - 1));
    text.push('\n');
    assert_eq!(text.len(), exact);
    let path = dir.path().join("big.yaml");
    fs::write(&path, &text).expect("write");
    let cfg = test_config();
    // Exactly 1 MiB passes the size check and fails only on the reason's length.
    let diags = check_request(&path, &cfg).expect_err("reason too long");
    assert_eq!(
        diags.iter().map(|d| d.code).collect::<Vec<_>>(),
        ["text_too_long"]
    );
    text.push('\n');
    fs::write(&path, &text).expect("write");
    let diags = check_request(&path, &cfg).expect_err("too large");
    assert_eq!(
        (diags[0].code, diags[0].line, diags[0].column),
        ("file_too_large", 1, 1)
    );
}
