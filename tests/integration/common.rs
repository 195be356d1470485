//! A builder around the `rotor` binary with a scrubbed environment.
//!
//! Tests run inside GitHub Actions too, so nothing of the runner's environment may leak in:
//! the child gets only `PATH`, `HOME` and what the test sets.

use std::path::{Path, PathBuf};

use std::process::{Command, Output};

/// The crate root.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Property-test cases: `default`, or `$ROTOR_PROPTEST_CASES` for a longer search.
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("ROTOR_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fixture path under `tests/fixtures`.
pub(crate) fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

/// One invocation of `rotor`.
pub(crate) struct Rotor {
    cmd: Command,
    expected: i32,
}

/// Starts building a `rotor` invocation.
pub(crate) fn rotor() -> Rotor {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("rotor"));
    cmd.env_clear();
    for var in ["PATH", "HOME"] {
        if let Some(v) = std::env::var_os(var) {
            cmd.env(var, v);
        }
    }
    cmd.env("NO_COLOR", "1");
    Rotor { cmd, expected: 0 }
}

impl Rotor {
    /// Adds arguments.
    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub(crate) fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// Removes an environment variable set before, for the child.
    pub(crate) fn env_remove(mut self, key: &str) -> Self {
        self.cmd.env_remove(key);
        self
    }

    /// Runs in `dir`.
    pub(crate) fn current_dir(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Expects this exit code instead of 0.
    pub(crate) fn expects_exit(mut self, code: i32) -> Self {
        self.expected = code;
        self
    }

    /// Starts it without waiting, stdout and stderr discarded (for the crash tests).
    pub(crate) fn spawn(mut self) -> std::process::Child {
        self.cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("rotor starts")
    }

    /// Runs without checking the exit code; returns it with stdout and stderr.
    pub(crate) fn run_unchecked(mut self) -> (Option<i32>, String, String) {
        let out: Output = self.cmd.output().expect("rotor runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        no_canary(&stdout, &stderr);
        (out.status.code(), stdout, stderr)
    }

    /// Runs without checking the exit code, watching the child's peak memory: returns the
    /// code, stdout, stderr and the largest resident set the kernel recorded for it
    /// (`VmHWM`, KiB), read from `/proc` until it exits.
    pub(crate) fn run_measured(mut self) -> (Option<i32>, String, String, u64) {
        use std::io::Read;
        let mut child = self
            .cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("rotor starts");
        let status = format!("/proc/{}/status", child.id());
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                let _ = r.read_to_end(&mut out);
                String::from_utf8_lossy(&out).into_owned()
            })
        };
        let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
        let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
        let mut peak = 0;
        let code = loop {
            // The high-water mark only grows; the last reading before the exit is the peak.
            if let Ok(text) = std::fs::read_to_string(&status) {
                let hwm = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                peak = peak.max(hwm.unwrap_or(0));
            }
            if let Some(status) = child.try_wait().expect("wait") {
                break status.code();
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        let (stdout, stderr) = (
            stdout.join().expect("stdout"),
            stderr.join().expect("stderr"),
        );
        no_canary(&stdout, &stderr);
        (code, stdout, stderr, peak)
    }

    /// Runs in a thread, held at the pause `point` until the file `until` exists (a debug
    /// build's `ROTOR_PAUSE_AT`); returns once the run is held there, with the thread that
    /// finishes it (exit code, stdout, stderr).
    pub(crate) fn held_at(
        self,
        point: &str,
        until: &Path,
    ) -> std::thread::JoinHandle<(Option<i32>, String, String)> {
        let held = self
            .env("ROTOR_PAUSE_AT", point)
            .env("ROTOR_PAUSE_UNTIL", until);
        let thread = std::thread::spawn(move || held.run_unchecked());
        let mut signal = until.as_os_str().to_owned();
        signal.push(".held");
        let signal = PathBuf::from(signal);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !signal.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the run was never held at {point}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        thread
    }

    /// Runs and checks the exit code; returns stdout and stderr.
    pub(crate) fn run(mut self) -> (String, String) {
        let out: Output = self.cmd.output().expect("rotor runs");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        no_canary(&stdout, &stderr);
        assert_eq!(
            out.status.code(),
            Some(self.expected),
            "unexpected exit code\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
        );
        (stdout, stderr)
    }
}

/// The canary audit of the whole suite: every secret value any test provisions is a canary
/// (`services::canary`), and no run of rotor, in any test, may print one.
fn no_canary(stdout: &str, stderr: &str) {
    assert!(
        !stdout.contains(CANARY_PREFIX) && !stderr.contains(CANARY_PREFIX),
        "rotor printed a secret value\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}

/// What every secret value provisioned by the tests starts with.
pub(crate) const CANARY_PREFIX: &str = "CANARY-";
