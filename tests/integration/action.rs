//! action.yml's two scripts: the installer verifies the release asset's SHA-256 against
//! dist/checksums.txt and refuses a mismatch, and builds from source in a directory and an
//! environment of its own, never the checked-out workspace's; the runner passes inputs as
//! arguments, never as code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::root;

/// A release directory (`file://`), an action root with Cargo.toml and checksums, and an asset
/// holding a stand-in `rotor` that says who it is.
fn release(dir: &Path, listed_sha: Option<&str>) -> String {
    let build = dir.join("build");
    fs::create_dir_all(&build).expect("dir");
    fs::write(build.join("rotor"), "#!/bin/sh\necho released-rotor\n").expect("bin");
    let assets = dir.join("releases/v0.1.0");
    fs::create_dir_all(&assets).expect("dir");
    let asset = "rotor-v0.1.0-x86_64-unknown-linux-musl.tar.gz";
    let status = Command::new("tar")
        .args(["-czf"])
        .arg(assets.join(asset))
        .args(["-C"])
        .arg(&build)
        .arg("rotor")
        .status()
        .expect("tar");
    assert!(status.success());
    let sha = Command::new("sha256sum")
        .arg(assets.join(asset))
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout)
        .split_whitespace()
        .next()
        .expect("sha")
        .to_owned();
    let action = dir.join("action-root");
    fs::create_dir_all(action.join("dist")).expect("dir");
    fs::write(
        action.join("Cargo.toml"),
        "[package]\nname = \"rotor\"\nversion = \"0.1.0\"\n",
    )
    .expect("toml");
    fs::write(
        action.join("dist/checksums.txt"),
        format!(
            "# comment\n{}  {asset}\n",
            listed_sha.unwrap_or(sha.as_str())
        ),
    )
    .expect("checksums");
    sha
}

fn install(dir: &Path) -> (i32, String, String) {
    let output = dir.join("output.txt");
    fs::write(&output, "").expect("output");
    let out = Command::new("bash")
        .arg(root().join("action/install.sh"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GITHUB_ACTION_PATH", dir.join("action-root"))
        .env("GITHUB_OUTPUT", &output)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", dir.join("tmp"))
        .env(
            "ROTOR_RELEASE_BASE_URL",
            format!("file://{}", dir.join("releases").display()),
        )
        .output()
        .expect("bash");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        fs::read_to_string(&output).expect("output"),
    )
}

#[test]
fn the_installer_runs_a_release_asset_only_when_its_checksum_matches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sha = release(dir.path(), None);
    let (code, stdout, outputs) = install(dir.path());
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains(&format!("verified (sha256 {sha})")),
        "{stdout}"
    );
    let bin = outputs.trim().strip_prefix("bin=").expect("bin output");
    let ran = Command::new(bin)
        .output()
        .expect("the installed binary runs");
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        "released-rotor"
    );

    let tampered = tempfile::tempdir().expect("tempdir");
    release(tampered.path(), Some(&"0".repeat(64)));
    let (code, stdout, outputs) = install(tampered.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("::error title=rotor::checksum mismatch for rotor-v0.1.0-x86_64-unknown-linux-musl.tar.gz"),
        "{stdout}"
    );
    assert!(outputs.is_empty(), "no binary is offered: {outputs}");
    assert!(
        !tampered.path().join("tmp/rotor-0.1.0/rotor").exists(),
        "the tampered binary was not unpacked"
    );
}

fn run_action(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let fake = dir.path().join("rotor");
    fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n\
         printf 'org=%s app=%s\\n' \"${ROTOR_ORG_TOKEN-unset}\" \"${ROTOR_APP_TOKEN-unset}\"\n",
    )
    .expect("fake");
    Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("chmod");
    // A file a glob among the inputs would expand to, were any word glob-expanded.
    fs::write(dir.path().join("tenant.x.stripe.secret_key"), "").expect("bait");
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("action/run.sh"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROTOR_BIN", &fake);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn the_path_input_is_the_repository_under_the_workspace_as_actions_checkout_has_it() {
    let (code, out) = run_action(&[
        ("INPUT_COMMAND", "drift"),
        ("INPUT_PATH", "repo"),
        ("GITHUB_WORKSPACE", "/home/runner/work/tenants/tenants"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("[--repo]\n[/home/runner/work/tenants/tenants/repo]\n"),
        "{out}"
    );
    for outside in ["/etc", "../other", "repo/../../x"] {
        let (code, out) = run_action(&[
            ("INPUT_COMMAND", "drift"),
            ("INPUT_PATH", outside),
            ("GITHUB_WORKSPACE", "/home/runner/work/tenants/tenants"),
        ]);
        assert_eq!(code, 2, "{outside}: {out}");
        assert!(out.contains("input path must be relative"), "{out}");
    }
}

#[test]
fn verify_and_evidence_inputs_become_their_flags() {
    let (code, out) = run_action(&[
        ("INPUT_COMMAND", "evidence"),
        ("INPUT_FORMAT", "html"),
        ("INPUT_SINCE", "2026-11-01"),
        ("INPUT_UNTIL", "2026-11-30"),
        ("INPUT_OUT", "evidence.html"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "[evidence]\n[--format]\n[html]\n[--since]\n[2026-11-01]\n[--until]\n[2026-11-30]\n[--out]\n[evidence.html]\norg=unset app=unset\n"
    );
    let (code, out) = run_action(&[
        ("INPUT_COMMAND", "verify"),
        ("INPUT_SINCE", "2026-11-01"),
        ("INPUT_OFFLINE", "true"),
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out,
        "[verify]\n[--format]\n[text]\n[--since]\n[2026-11-01]\n[--offline]\norg=unset app=unset\n"
    );
}

#[test]
fn the_runner_passes_inputs_as_arguments_and_refuses_bad_ones() {
    let hostile = "x\"; touch /tmp/pwned; echo \"$(id)";
    let (code, out) = run_action(&[
        ("INPUT_COMMAND", "rollback"),
        ("INPUT_CONFIG", ".github/rotor.yml"),
        ("INPUT_ROTATION_ID", "2026-11-25-acme"),
        ("INPUT_REASON", hostile),
        ("INPUT_DRY_RUN", "true"),
        ("INPUT_FORCE", "true"),
        (
            "INPUT_REFS",
            "tenant.acme.supabase.service_role,\ntenant.*.stripe.secret_key ",
        ),
        ("INPUT_FORMAT", "json"),
        ("ROTOR_ORG_TOKEN", ""),
        ("ROTOR_APP_TOKEN", "app"),
    ]);
    assert_eq!(code, 0, "{out}");
    let expected = format!(
        "[rollback]\n[--config]\n[.github/rotor.yml]\n[--format]\n[json]\n[--rotation-id]\n[2026-11-25-acme]\n[--reason]\n[{hostile}]\n[--ref]\n[tenant.acme.supabase.service_role]\n[--ref]\n[tenant.*.stripe.secret_key]\n[--force]\n[--dry-run]\norg=unset app=app\n"
    );
    assert_eq!(
        out, expected,
        "the reason arrives as one argument, verbatim; each ref as one, never glob-expanded"
    );

    for (env, says) in [
        (vec![("INPUT_COMMAND", "rm -rf /")], "input command must be"),
        (
            vec![("INPUT_COMMAND", "plan"), ("INPUT_FORMAT", "yaml")],
            "input format must be",
        ),
        (
            vec![("INPUT_COMMAND", "plan"), ("INPUT_DRY_RUN", "true")],
            "dry-run applies to apply and rollback only",
        ),
        (
            vec![("INPUT_COMMAND", "apply"), ("INPUT_DRY_RUN", "yes")],
            "input dry-run must be true or false",
        ),
        (
            vec![("INPUT_COMMAND", "verify"), ("INPUT_FORMAT", "html")],
            "input format md or html is for evidence only",
        ),
        (
            vec![("INPUT_COMMAND", "plan"), ("INPUT_SINCE", "2026-11-01")],
            "since applies to verify and evidence only",
        ),
        (
            vec![("INPUT_COMMAND", "verify"), ("INPUT_OUT", "x.html")],
            "until and out apply to evidence only",
        ),
        (
            vec![("INPUT_COMMAND", "evidence"), ("INPUT_OFFLINE", "true")],
            "offline applies to verify only",
        ),
        (
            vec![("INPUT_COMMAND", "apply"), ("INPUT_FORCE", "true")],
            "force applies to rollback only",
        ),
        (
            vec![
                ("INPUT_COMMAND", "apply"),
                ("INPUT_REFS", "tenant.acme.supabase.service_role"),
            ],
            "refs applies to rollback only",
        ),
    ] {
        let (code, out) = run_action(&env);
        assert_eq!(code, 2, "{env:?}: {out}");
        assert!(out.contains(says), "{env:?}: {out}");
    }
}

#[test]
fn the_install_action_exports_rotor_for_the_job_and_the_main_action_then_installs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    release(dir.path(), None);
    let (output, env_file) = (dir.path().join("output.txt"), dir.path().join("env.txt"));
    fs::write(&output, "").expect("output");
    fs::write(&env_file, "").expect("env");
    // As install/action.yml runs it: the action's root one level up, and --export.
    let out = Command::new("bash")
        .arg(root().join("action/install.sh"))
        .arg("--export")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROTOR_ROOT", dir.path().join("action-root"))
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_ENV", &env_file)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", dir.path().join("tmp"))
        .env(
            "ROTOR_RELEASE_BASE_URL",
            format!("file://{}", dir.path().join("releases").display()),
        )
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    let bin = fs::read_to_string(&output).expect("output");
    let bin = bin.trim().strip_prefix("bin=").expect("bin");
    assert_eq!(
        fs::read_to_string(&env_file).expect("env").trim(),
        format!("ROTOR_BIN={bin}"),
        "later steps of the job find rotor"
    );
    // The two actions as written: the installer runs install.sh with --export from the
    // repository's root; the main action's install step is skipped when ROTOR_BIN is set, and
    // its run step takes either.
    let install: serde_json::Value = serde_norway::from_str(
        &fs::read_to_string(root().join("install/action.yml")).expect("install/action.yml"),
    )
    .expect("yaml");
    let step = &install["runs"]["steps"][0];
    assert!(
        step["run"]
            .as_str()
            .is_some_and(|r| r.contains("action/install.sh\" --export")),
        "{step}"
    );
    assert_eq!(step["env"]["ROTOR_ROOT"], "${{ github.action_path }}/..");
    let main: serde_json::Value =
        serde_norway::from_str(&fs::read_to_string(root().join("action.yml")).expect("action.yml"))
            .expect("yaml");
    let steps = &main["runs"]["steps"];
    assert_eq!(steps[0]["if"], "env.ROTOR_BIN == ''");
    assert_eq!(
        steps[1]["env"]["ROTOR_BIN"],
        "${{ steps.install.outputs.bin || env.ROTOR_BIN }}"
    );
}

/// An action root whose build from source takes a second and no network: a crate named rotor
/// with no dependency, its Cargo.lock (for `--locked`), and a dist/checksums.txt listing no
/// asset.
fn source_only(action: &Path) {
    fs::create_dir_all(action.join("src")).expect("dir");
    fs::create_dir_all(action.join("dist")).expect("dir");
    fs::write(
        action.join("Cargo.toml"),
        "[package]\nname = \"rotor\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .expect("toml");
    fs::write(
        action.join("Cargo.lock"),
        "version = 4\n\n[[package]]\nname = \"rotor\"\nversion = \"0.1.0\"\n",
    )
    .expect("lock");
    fs::write(
        action.join("src/main.rs"),
        "fn main() {\n    println!(\"built-rotor\");\n}\n",
    )
    .expect("main");
    fs::write(
        action.join("dist/checksums.txt"),
        "# no release asset listed\n",
    )
    .expect("checksums");
}

/// install.sh --export as install/action.yml runs it in a job: from the checked-out
/// workspace, with `extra` in the environment. Returns the exit code, stdout and stderr, and
/// the step's outputs.
fn install_from(
    ws: &Path,
    action: &Path,
    temp: &Path,
    extra: &[(&str, &std::ffi::OsStr)],
) -> (i32, String, String) {
    let output = temp.with_extension("output");
    let env_file = temp.with_extension("env");
    fs::write(&output, "").expect("output");
    fs::write(&env_file, "").expect("env");
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("action/install.sh"))
        .arg("--export")
        .current_dir(ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ROTOR_ROOT", action)
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_OUTPUT", &output)
        .env("GITHUB_ENV", &env_file)
        .env("RUNNER_OS", "Linux")
        .env("RUNNER_ARCH", "X64")
        .env("RUNNER_TEMP", temp);
    // Where this machine keeps its toolchains, and the one running these tests (rustup names it
    // in RUSTUP_TOOLCHAIN), so that the build needs nothing installed.
    for var in ["HOME", "RUSTUP_HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN")
        && !toolchain.contains('/')
    {
        cmd.env("ROTOR_RUST_TOOLCHAIN", toolchain);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    let outputs = fs::read_to_string(&output).expect("output");
    let exported = fs::read_to_string(&env_file).expect("env");
    if let Some(bin) = outputs.trim().strip_prefix("bin=") {
        assert_eq!(exported.trim(), format!("ROTOR_BIN={bin}"));
    }
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        outputs,
    )
}

/// A workspace as a pull request can leave it: a `.cargo/config.toml` whose rustc-wrapper
/// leaves a mark and then compiles as asked (so the build would succeed and nobody would
/// notice), and a rust-toolchain.toml naming a toolchain that does not exist.
fn hostile_workspace(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let ws = dir.join("workspace");
    fs::create_dir_all(ws.join(".cargo")).expect("dir");
    let marker = dir.join("the-pull-request-ran-code");
    let wrapper = dir.join("wrapper.sh");
    fs::write(
        &wrapper,
        format!("#!/bin/sh\ntouch '{}'\nexec \"$@\"\n", marker.display()),
    )
    .expect("wrapper");
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    fs::write(
        ws.join(".cargo/config.toml"),
        format!("[build]\nrustc-wrapper = \"{}\"\n", wrapper.display()),
    )
    .expect("config");
    fs::write(
        ws.join("rust-toolchain.toml"),
        "[toolchain]\nchannel = \"hostile-0.0.0\"\n",
    )
    .expect("toolchain");
    (ws, wrapper, marker)
}

#[test]
fn a_build_from_source_runs_nothing_of_the_checked_out_workspace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let action = dir.path().join("action-root");
    source_only(&action);
    let (ws, wrapper, marker) = hostile_workspace(dir.path());
    let temp = dir.path().join("runner-temp");
    fs::create_dir_all(&temp).expect("dir");
    // What an earlier step could have written to $GITHUB_ENV, too.
    let target = ws.join("target");
    let (code, out, outputs) = install_from(
        &ws,
        &action,
        &temp,
        &[
            ("RUSTC_WRAPPER", wrapper.as_os_str()),
            ("CARGO_BUILD_RUSTC_WRAPPER", wrapper.as_os_str()),
            ("RUSTUP_TOOLCHAIN", std::ffi::OsStr::new("hostile-0.0.0")),
            ("CARGO_TARGET_DIR", target.as_os_str()),
        ],
    );
    assert_eq!(
        code, 0,
        "the workspace's toolchain file chose nothing: {out}"
    );
    assert!(
        out.contains("building from source"),
        "no asset is listed: {out}"
    );
    assert!(
        !marker.exists(),
        "the workspace's rustc-wrapper (or an exported one) ran: {out}"
    );
    let bin = outputs.trim().strip_prefix("bin=").expect("bin output");
    assert!(
        Path::new(bin).starts_with(&temp),
        "the binary is under RUNNER_TEMP: {bin}"
    );
    let ran = Command::new(bin)
        .output()
        .expect("the installed binary runs");
    assert_eq!(String::from_utf8_lossy(&ran.stdout).trim(), "built-rotor");
    // Nothing was built in, or left below, the workspace or the action; the build directory
    // (its target and its CARGO_HOME) is gone.
    assert!(!target.exists() && !action.join("target").exists());
    let left: Vec<String> = fs::read_dir(&temp)
        .expect("temp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["rotor-0.1.0"], "{left:?}");
}

#[test]
fn a_build_from_source_refuses_a_directory_inside_the_workspace_and_a_toolchain_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let action = dir.path().join("action-root");
    source_only(&action);
    let (ws, _, marker) = hostile_workspace(dir.path());
    // A runner whose temporary directory lies inside the workspace: cargo would read the
    // workspace's configuration from above the build directory.
    let inside = ws.join("tmp");
    fs::create_dir_all(&inside).expect("dir");
    let (code, out, outputs) = install_from(&ws, &action, &inside, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("::error title=rotor::the build directory")
            && out.contains("lies inside the workspace"),
        "{out}"
    );
    assert!(outputs.is_empty(), "no binary is offered: {outputs}");
    // RUSTUP_TOOLCHAIN also takes a directory, whose `cargo` would then run.
    let temp = dir.path().join("runner-temp");
    fs::create_dir_all(&temp).expect("dir");
    let (code, out, outputs) = install_from(
        &ws,
        &action,
        &temp,
        &[("ROTOR_RUST_TOOLCHAIN", ws.as_os_str())],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("::error title=rotor::ROTOR_RUST_TOOLCHAIN must name a toolchain"),
        "{out}"
    );
    assert!(outputs.is_empty(), "no binary is offered: {outputs}");
    assert!(!marker.exists());
}
