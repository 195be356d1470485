//! Publishing the artifact with git2 to a real bare remote.

use std::path::Path;

use rotor::gitops::{Author, GitRepo};

use crate::plan::git;

fn remote_with_main() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    git(root, &["init", "-q", "--bare", "-b", "main", "origin.git"]);
    git(root, &["init", "-q", "-b", "main", "seed"]);
    std::fs::write(root.join("seed/README.md"), "tenants\n").expect("write");
    git(&root.join("seed"), &["add", "-A"]);
    git(&root.join("seed"), &["commit", "-q", "-m", "init"]);
    git(
        &root.join("seed"),
        &["remote", "add", "origin", "../origin.git"],
    );
    git(&root.join("seed"), &["push", "-q", "origin", "main"]);
    let tip = git(&root.join("seed"), &["rev-parse", "HEAD"]);
    (dir, tip)
}

fn clone(root: &Path, name: &str) -> GitRepo {
    git(root, &["clone", "-q", "origin.git", name]);
    GitRepo::open(&root.join(name), None).expect("open")
}

fn author() -> Author {
    Author {
        name: "rotor".to_owned(),
        email: "rotor@users.noreply.github.com".to_owned(),
    }
}

#[test]
fn the_commit_changes_only_the_artifact_on_top_of_the_tip_as_the_configured_author() {
    let (dir, tip) = remote_with_main();
    let repo = clone(dir.path(), "checkout");
    let sha = repo
        .publish(
            "main",
            "docs/security/rotations/r-1.md",
            b"# Rotation r-1\n",
            "rotor: r-1 success",
            &author(),
            &|_| false,
            None,
        )
        .expect("publish");
    let origin = dir.path().join("origin.git");
    assert_eq!(git(&origin, &["rev-parse", "main"]), sha);
    assert_eq!(
        git(&origin, &["rev-parse", &format!("{sha}^")]),
        tip,
        "the previous tip is the parent"
    );
    assert_eq!(
        git(&origin, &["diff", "--name-only", &tip, &sha]),
        "docs/security/rotations/r-1.md"
    );
    assert_eq!(
        git(
            &origin,
            &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", &sha]
        ),
        "rotor <rotor@users.noreply.github.com>|rotor <rotor@users.noreply.github.com>|rotor: r-1 success"
    );
    assert!(
        !dir.path().join("checkout/docs").exists(),
        "the working tree is untouched"
    );
    // Publishing the same content again changes nothing.
    let again = repo
        .publish(
            "main",
            "docs/security/rotations/r-1.md",
            b"# Rotation r-1\n",
            "rotor: r-1 success",
            &author(),
            &|_| false,
            None,
        )
        .expect("publish");
    assert_eq!(again, sha);
}

#[test]
fn a_file_another_run_already_published_is_kept_not_overwritten() {
    let (dir, _) = remote_with_main();
    let repo = clone(dir.path(), "checkout");
    let first = repo
        .publish(
            "main",
            "docs/security/rotations/r-1.md",
            b"# Rotation r-1\n- Result: success\n",
            "rotor: r-1 success",
            &author(),
            &|_| false,
            None,
        )
        .expect("publish");
    // A second run renders its own text; the artifact already there is final, so it stays.
    let kept = repo
        .publish(
            "main",
            "docs/security/rotations/r-1.md",
            b"# Rotation r-1\n- Result: success\n(second run)\n",
            "rotor: r-1 success",
            &author(),
            &|existing| existing.starts_with(b"# Rotation r-1\n- Result:"),
            None,
        )
        .expect("publish");
    assert_eq!(kept, first, "no second commit");
    let origin = dir.path().join("origin.git");
    assert_eq!(git(&origin, &["rev-parse", "main"]), first);
}

/// A `git daemon` serving the bare remote with receive-pack: a real server, which updates refs
/// atomically against their old value, as GitHub does. (libgit2's local-path transport checks
/// fast-forward on the client and then force-writes, so it cannot arbitrate a race.)
struct Daemon {
    child: std::process::Child,
    pid_file: std::path::PathBuf,
    url: String,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // `git daemon` runs `git-daemon` as a child: stop the daemon itself, by its pid file.
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn daemon(root: &Path) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let pid_file = root.join("daemon.pid");
    let child = std::process::Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", pid_file.display()))
        .arg(format!("--base-path={}", root.display()))
        .arg(root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon starts");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Daemon {
                child,
                pid_file,
                url: format!("git://127.0.0.1:{port}/origin.git"),
            };
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("git daemon did not start");
}

#[test]
fn concurrent_publishers_both_land_on_a_linear_history() {
    let (dir, _) = remote_with_main();
    let server = daemon(dir.path());
    let open = |name: &str| {
        git(dir.path(), &["clone", "-q", "origin.git", name]);
        git(
            &dir.path().join(name),
            &["remote", "set-url", "origin", &server.url],
        );
        GitRepo::open(&dir.path().join(name), None).expect("open")
    };
    let (a, b) = (open("a"), open("b"));
    let publish = |repo: GitRepo, who: &'static str| {
        std::thread::spawn(move || {
            for i in 0..10 {
                let path = format!("docs/security/rotations/{who}-{i}.md");
                repo.publish(
                    "main",
                    &path,
                    format!("# {who} {i}\n").as_bytes(),
                    &format!("rotor: {who}-{i}"),
                    &author(),
                    &|_| false,
                    None,
                )
                .expect("publish");
            }
        })
    };
    let (ta, tb) = (publish(a, "a"), publish(b, "b"));
    ta.join().expect("a");
    tb.join().expect("b");
    let origin = dir.path().join("origin.git");
    let files = git(
        &origin,
        &[
            "ls-tree",
            "-r",
            "--name-only",
            "main",
            "docs/security/rotations",
        ],
    );
    assert_eq!(
        files.lines().count(),
        20,
        "no commit was lost to the race: {files}"
    );
    assert_eq!(
        git(&origin, &["rev-list", "--count", "--merges", "main"]),
        "0",
        "linear history"
    );
    assert_eq!(git(&origin, &["rev-list", "--count", "main"]), "21");
}

/// On GitHub, `origin` is HTTPS: the transport is built in (a closed port gives a connection
/// error, not "unsupported URL protocol" as a libgit2 without HTTPS would).
#[test]
fn https_remotes_are_supported() {
    let (dir, _) = remote_with_main();
    git(dir.path(), &["clone", "-q", "origin.git", "h"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    git(
        &dir.path().join("h"),
        &[
            "remote",
            "set-url",
            "origin",
            &format!("https://127.0.0.1:{port}/my-org/tenants.git"),
        ],
    );
    let repo = GitRepo::open(
        &dir.path().join("h"),
        Some(rotor::secret::SecretString::new("ghs_token")),
    )
    .expect("open");
    let err = repo
        .fetch_branch("main")
        .expect_err("nothing listens there")
        .to_string();
    assert!(!err.contains("unsupported URL protocol"), "{err}");
    assert!(
        !err.contains("ghs_token"),
        "the token never appears in an error: {err}"
    );
}
