//! `rotor validate` end to end: valid inputs, the default file set, both report formats.

use std::fs;

use serde_json::Value;

use crate::common::{fixture, root, rotor};

#[test]
fn every_valid_request_fixture_passes() {
    let repo = fixture("repo");
    let dir = fixture("requests/valid");
    let (stdout, _) = rotor()
        .args([
            "--repo".as_ref(),
            repo.as_os_str(),
            "validate".as_ref(),
            dir.as_os_str(),
        ])
        .run();
    let count = fs::read_dir(&dir).expect("dir").count();
    assert_eq!(
        stdout.matches("\nok: ").count() + usize::from(stdout.starts_with("ok: ")),
        count + 1,
        "{stdout}"
    );
    assert!(
        stdout.contains("rotation batch-2000, environment staging, 2000 refs"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!(
            "checked the config and {count} request files: no problems\n"
        )),
        "{stdout}"
    );
}

#[test]
fn every_valid_config_fixture_passes() {
    for entry in fs::read_dir(fixture("configs/valid")).expect("dir") {
        let path = entry.expect("entry").path();
        let (stdout, _) = rotor()
            .args(["--config".as_ref(), path.as_os_str(), "validate".as_ref()])
            .current_dir(&fixture("repo"))
            .run();
        assert!(
            stdout.contains("no problems"),
            "{}: {stdout}",
            path.display()
        );
    }
}

#[test]
fn the_bundled_example_validates_with_no_arguments() {
    let (stdout, _) = rotor()
        .current_dir(&root().join("examples/demo"))
        .args(["validate"])
        .run();
    insta::assert_snapshot!(stdout, @r"
    ok: .github/rotor.yml (config)
    ok: rotations/2026-11-25-acme-supabase.yaml (rotation 2026-11-25-acme-supabase, environment production, 1 ref)
    checked the config and 1 request file: no problems
    ");
}

#[test]
fn github_workspace_is_the_default_repo() {
    let (stdout, _) = rotor()
        .env("GITHUB_WORKSPACE", root().join("examples/demo"))
        .args(["validate"])
        .run();
    assert!(stdout.contains("1 request file: no problems"), "{stdout}");
}

#[test]
fn json_report_is_one_object_with_errors() {
    let repo = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(repo.path().join(".github")).expect("mkdir");
    fs::create_dir_all(repo.path().join("rotations")).expect("mkdir");
    fs::copy(
        fixture("repo/.github/rotor.yml"),
        repo.path().join(".github/rotor.yml"),
    )
    .expect("copy");
    fs::write(
        repo.path().join("rotations/abc.yaml"),
        "version: 1\nid: abc\nenvironment: staging\nreason: r\nrefs:\n  - ref: tenant.Acme.supabase.k\n",
    )
    .expect("write");
    fs::write(repo.path().join("rotations/notes.md"), "ignored").expect("write");
    let (stdout, stderr) = rotor()
        .current_dir(repo.path())
        .args(["validate", "--format", "json"])
        .expects_exit(2)
        .run();
    let report: Value = serde_json::from_str(&stdout).expect("stdout is exactly one JSON object");
    insta::assert_json_snapshot!(report, @r#"
    {
      "command": "validate",
      "result": "invalid",
      "files": [
        {
          "path": ".github/rotor.yml",
          "kind": "config",
          "valid": true
        },
        {
          "path": "rotations/abc.yaml",
          "kind": "request",
          "valid": false
        }
      ],
      "errors": [
        {
          "code": "invalid_ref",
          "message": "invalid ref \"tenant.Acme.supabase.k\": uppercase letters; refs are lowercase and are never lowered for you",
          "file": "rotations/abc.yaml",
          "line": 6,
          "column": 10,
          "help": "write refs as tenant.<slug>.<provider>.<key> in lowercase ASCII, e.g. tenant.acme.supabase.service_role"
        }
      ]
    }
    "#);
    assert_eq!(
        stderr, "",
        "the report carries every problem and its count; nothing is split onto stderr"
    );
}

#[test]
fn an_invalid_config_is_reported_without_burying_it_under_request_errors() {
    let repo = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(repo.path().join(".github")).expect("mkdir");
    fs::create_dir_all(repo.path().join("rotations")).expect("mkdir");
    fs::write(
        repo.path().join(".github/rotor.yml"),
        "version: 1\nadmins: {}\n",
    )
    .expect("write");
    fs::write(
        repo.path().join("rotations/abc.yaml"),
        "version: 1\nid: abc\nenvironment: anything\nreason: r\nrefs: [{ref: tenant.a.b.c}]\n",
    )
    .expect("write");
    let (stdout, _) = rotor()
        .current_dir(repo.path())
        .args(["validate"])
        .expects_exit(2)
        .run();
    assert!(!stdout.contains("unknown_environment"), "{stdout}");
    assert!(stdout.contains("ok: rotations/abc.yaml"), "{stdout}");
    insta::assert_snapshot!(stdout, @r#"
    error[missing_key]: missing required key `environments` in the top level
      --> .github/rotor.yml:1:1
      help: add `environments: {production: {requires_maintenance: true}}`
    error[missing_key]: missing required key `backends` in the top level
      --> .github/rotor.yml:1:1
      help: add `backends: [{match: "tenant.*.*.*", type: vault, mount: secret}]`
    error[missing_key]: missing required key `app` in the top level
      --> .github/rotor.yml:1:1
      help: add `app: {base_url: https://app.example.com}`
    error[no_admin_source]: `admins` names neither a team nor users
      --> .github/rotor.yml:2:9
      help: add `team: <org>/<team-slug>` or `users: [<login>, …]`
    ok: rotations/abc.yaml (rotation abc, environment anything, 1 ref)
    checked the config and 1 request file: 4 problems
    "#);
}

#[test]
fn a_missing_config_is_an_input_error() {
    let repo = tempfile::tempdir().expect("tempdir");
    let (stdout, _) = rotor()
        .current_dir(repo.path())
        .args(["validate"])
        .expects_exit(2)
        .run();
    assert!(
        stdout.contains("error[unreadable_file]") && stdout.contains(".github/rotor.yml:1:1"),
        "{stdout}"
    );
}

#[test]
fn validate_changes_nothing() {
    let repo = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(repo.path().join(".github")).expect("mkdir");
    fs::copy(
        fixture("repo/.github/rotor.yml"),
        repo.path().join(".github/rotor.yml"),
    )
    .expect("copy");
    fs::create_dir_all(repo.path().join("rotations")).expect("mkdir");
    let bad = fixture("requests/invalid/ref-uppercase.yaml");
    fs::copy(&bad, repo.path().join("rotations/ref-uppercase.yaml")).expect("copy");
    let before = snapshot_tree(repo.path());
    rotor()
        .current_dir(repo.path())
        .args(["validate"])
        .expects_exit(2)
        .run();
    assert_eq!(before, snapshot_tree(repo.path()));
}

fn snapshot_tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    rotor()
        .args(["validate", "--format", "yaml"])
        .expects_exit(2)
        .run();
    rotor().args(["frobnicate"]).expects_exit(2).run();
    let (stdout, _) = rotor().args(["--help"]).run();
    assert!(
        stdout.contains("validate") && stdout.contains("schema"),
        "{stdout}"
    );
}

#[test]
fn every_commands_help_names_its_exit_codes_and_schema_lists_no_option_it_ignores() {
    for command in [
        "validate", "schema", "status", "new", "plan", "apply", "rollback", "drift", "report",
        "verify", "evidence",
    ] {
        let (stdout, _) = rotor().args([command, "--help"]).run();
        assert!(
            stdout.contains("\nExit codes: 0"),
            "{command} --help names its exit codes: {stdout}"
        );
    }
    let (schema, _) = rotor().args(["schema", "--help"]).run();
    for ignored in ["--config", "--repo", "--format", "--verbose", "--quiet"] {
        assert!(!schema.contains(ignored), "{ignored}: {schema}");
    }
    insta::assert_snapshot!("schema_help", schema);
    let (validate, _) = rotor().args(["validate", "--help"]).run();
    insta::assert_snapshot!("validate_help", validate);
    // The globals still parse after the subcommand, as everywhere.
    rotor()
        .args(["schema", "--format", "json"])
        .expects_exit(0)
        .run();
}

/// A valid request whose maintenance window has closed is still valid (exit 0), with a warning
/// that plan and apply will refuse it; none once the rotation has its artifact (a past
/// rotation's request stays in the directory).
#[test]
fn a_closed_window_is_valid_with_a_warning_until_the_rotation_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = root().join("examples/demo");
    fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
    fs::create_dir_all(dir.path().join("rotations")).expect("mkdir");
    fs::copy(
        demo.join(".github/rotor.yml"),
        dir.path().join(".github/rotor.yml"),
    )
    .expect("config");
    fs::write(
        dir.path().join("rotations/2020-01-01-acme.yaml"),
        "version: 1\nid: 2020-01-01-acme\nenvironment: production\nreason: r\nrefs:\n  - ref: tenant.acme.supabase.service_role\n\
         maintenance:\n  window: {start: \"2020-01-01T02:00:00Z\", end: \"2020-01-01T04:00:00Z\"}\n",
    )
    .expect("request");
    let (_, err) = rotor().current_dir(dir.path()).args(["validate"]).run();
    assert!(
        err.contains(
            "rotations/2020-01-01-acme.yaml: its maintenance window closed at 2020-01-01T04:00:00Z"
        ),
        "{err}"
    );
    fs::create_dir_all(dir.path().join("docs/security/rotations")).expect("mkdir");
    fs::write(
        dir.path()
            .join("docs/security/rotations/2020-01-01-acme.md"),
        "# Rotation 2020-01-01-acme\n",
    )
    .expect("artifact");
    let (_, err) = rotor().current_dir(dir.path()).args(["validate"]).run();
    assert!(!err.contains("window closed"), "{err}");
}
