//! Workspaces made the way `actions/checkout` v4 makes them, and a remote that keeps its pull
//! request refs the way GitHub does.
//!
//! The command sequence is actions/checkout v4.2.2's (`src/git-source-provider.ts`,
//! `src/git-command-manager.ts`, `src/ref-helper.ts`), with the inputs' defaults: `git init`,
//! `remote add`, `gc.auto 0`, one fetch of the event's commit at `--depth=1` into the ref the
//! runner names (`+<sha>:refs/remotes/pull/N/merge` for pull-request events,
//! `+<sha>:refs/remotes/origin/<branch>` otherwise), `sparse-checkout disable`, and a forced
//! checkout: detached on the merge commit, or `-B <branch>` on a branch. With `fetch-depth: 0`
//! it fetches every branch and tag instead. Two steps are left out because they change global
//! state the tests must not touch: `git config --global --add safe.directory` (the container
//! test sets it where it needs it) and the token's `extraheader` for `https://github.com/`,
//! which local remotes never use (`persist-credentials: true` still writes one, so rotor must
//! cope with a header already configured).
//!
//! What the runner sets per event (GitHub's "Events that trigger workflows"):
//! `pull_request` and `pull_request_review`: `GITHUB_REF=refs/pull/N/merge`, `GITHUB_SHA` the
//! merge commit; `issue_comment` and `schedule`: the default branch and its tip;
//! `workflow_dispatch`: the branch dispatched from and its tip.

use std::fs;
use std::path::{Path, PathBuf};

use crate::plan::git;

/// actions/checkout's inputs that matter to rotor, with its defaults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Inputs {
    /// `fetch-depth` (default 1; 0 fetches everything).
    pub(crate) fetch_depth: u32,
    /// `persist-credentials` (default true).
    pub(crate) persist_credentials: bool,
}

impl Default for Inputs {
    fn default() -> Self {
        Self {
            fetch_depth: 1,
            persist_credentials: true,
        }
    }
}

/// `GITHUB_REF` and `GITHUB_SHA` of an event in a repository whose origin is `origin`.
pub(crate) fn runner_ref(
    origin: &Path,
    event_name: &str,
    pull: u64,
    branch: &str,
) -> (String, String) {
    match event_name {
        "pull_request" | "pull_request_review" | "pull_request_target" => {
            let r = format!("refs/pull/{pull}/merge");
            let sha = git(origin, &["rev-parse", &r]);
            (r, sha)
        }
        _ => {
            let r = format!("refs/heads/{branch}");
            let sha = git(origin, &["rev-parse", &r]);
            (r, sha)
        }
    }
}

/// Makes `dest` as actions/checkout would for `github_ref` at `github_sha` from `origin`.
pub(crate) fn checkout(
    origin: &Path,
    github_ref: &str,
    github_sha: &str,
    inputs: Inputs,
    dest: &Path,
) {
    let parent = dest.parent().expect("parent");
    fs::create_dir_all(parent).expect("mkdir");
    let url = origin.to_str().expect("utf-8 path");
    git(parent, &["init", "-q", dest.to_str().expect("utf-8 path")]);
    git(dest, &["remote", "add", "origin", url]);
    git(dest, &["config", "--local", "gc.auto", "0"]);
    // actions/checkout configures its header for the server before fetching; with
    // `persist-credentials: false` it removes it again afterwards.
    let header_key = "http.https://github.com/.extraheader";
    git(
        dest,
        &["config", "--local", header_key, "AUTHORIZATION: basic ***"],
    );
    let pull = github_ref
        .strip_prefix("refs/pull/")
        .map(|rest| format!("refs/remotes/pull/{rest}"));
    let branch = github_ref.strip_prefix("refs/heads/");
    let target = match (&pull, branch) {
        (Some(p), _) => p.clone(),
        (None, Some(b)) => format!("refs/remotes/origin/{b}"),
        (None, None) => panic!("unsupported ref {github_ref}"),
    };
    if inputs.fetch_depth == 0 {
        let mut args = vec![
            "-c",
            "protocol.version=2",
            "fetch",
            "-q",
            "--prune",
            "--no-recurse-submodules",
            "origin",
            "+refs/heads/*:refs/remotes/origin/*",
            "+refs/tags/*:refs/tags/*",
        ];
        let spec = format!("+{github_sha}:{target}");
        if pull.is_some() {
            args.push(&spec);
        }
        git(dest, &args);
    } else {
        let depth = format!("--depth={}", inputs.fetch_depth);
        git(
            dest,
            &[
                "-c",
                "protocol.version=2",
                "fetch",
                "-q",
                "--no-tags",
                "--prune",
                "--no-recurse-submodules",
                &depth,
                "origin",
                &format!("+{github_sha}:{target}"),
            ],
        );
    }
    git(dest, &["sparse-checkout", "disable"]);
    match branch {
        Some(b) if pull.is_none() => {
            git(
                dest,
                &["checkout", "-q", "--progress", "--force", "-B", b, &target],
            );
        }
        _ => {
            git(dest, &["checkout", "-q", "--progress", "--force", &target]);
        }
    }
    assert_eq!(git(dest, &["log", "-1", "--format=%H"]), github_sha);
    if !inputs.persist_credentials {
        git(dest, &["config", "--local", "--unset-all", header_key]);
    }
}

/// The hook that keeps a bare remote's pull request refs as GitHub keeps them: after every
/// push, `refs/pull/N/head` follows the PR's branch and `refs/pull/N/merge` is the merge of that
/// head into the base branch (none while they conflict). The open PRs are listed in the
/// repository's `pulls` file, one `<number> <head branch> <base branch>` a line.
const POST_RECEIVE: &str = r#"#!/bin/sh
# What GitHub does after a push to a repository with open pull requests.
export GIT_AUTHOR_NAME=GitHub GIT_AUTHOR_EMAIL=noreply@github.com
export GIT_COMMITTER_NAME=GitHub GIT_COMMITTER_EMAIL=noreply@github.com
[ -f pulls ] || exit 0
while read -r number branch base; do
  [ -n "$number" ] || continue
  head=$(git rev-parse -q --verify "refs/heads/$branch^{commit}") || continue
  git update-ref "refs/pull/$number/head" "$head"
  tip=$(git rev-parse -q --verify "refs/heads/$base^{commit}") || continue
  if tree=$(git merge-tree --write-tree "$tip" "$head" 2>/dev/null); then
    merge=$(git commit-tree "$tree" -p "$tip" -p "$head" -m "Merge $head into $tip")
    git update-ref "refs/pull/$number/merge" "$merge"
  else
    git update-ref -d "refs/pull/$number/merge" 2>/dev/null || true
  fi
done < pulls
"#;

/// Installs the pull-request hook in the bare repository `origin`.
pub(crate) fn install_github_hook(origin: &Path) {
    let hook = origin.join("hooks/post-receive");
    fs::write(&hook, POST_RECEIVE).expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
}

/// Declares an open pull request `number` from `branch` into `base` and brings its refs up to
/// date, as GitHub does when it is opened.
pub(crate) fn open_pull(origin: &Path, number: u64, branch: &str, base: &str) {
    let list = origin.join("pulls");
    let mut text = fs::read_to_string(&list).unwrap_or_default();
    text.push_str(&format!("{number} {branch} {base}\n"));
    fs::write(&list, text).expect("pulls");
    refresh(origin);
}

/// Closes pull request `number` (merged or not): GitHub keeps its refs but stops updating them.
pub(crate) fn close_pull(origin: &Path, number: u64) {
    let list = origin.join("pulls");
    let text = fs::read_to_string(&list).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|l| l.split_whitespace().next() != Some(&number.to_string()))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&list, kept).expect("pulls");
}

/// Runs the hook by hand, for ref changes made without a push (`update-ref` in a test).
pub(crate) fn refresh(origin: &Path) {
    let out = std::process::Command::new("sh")
        .arg("hooks/post-receive")
        .current_dir(origin)
        .env("GIT_DIR", ".")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("hook runs");
    assert!(
        out.status.success(),
        "hook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new workspace under `root` for `event_name`, made by actions/checkout with `inputs`.
pub(crate) fn workspace(
    root: &Path,
    origin: &Path,
    event_name: &str,
    pull: u64,
    inputs: Inputs,
) -> PathBuf {
    let (github_ref, sha) = runner_ref(origin, event_name, pull, "main");
    let dest = root.join(format!("ws-{}", crate::services::unique(event_name)));
    checkout(origin, &github_ref, &sha, inputs, &dest);
    dest
}

/// Whether `ws` is still a usable repository: shallow stays shallow, `git log` walks the
/// history it has, and `git status` shows nothing changed.
pub(crate) fn assert_usable(ws: &Path, shallow: bool) {
    assert_eq!(
        ws.join(".git/shallow").exists(),
        shallow,
        "the checkout is {} shallow as it was",
        if shallow { "still" } else { "not" }
    );
    git(ws, &["log", "--oneline", "-n", "5"]);
    assert_eq!(
        git(ws, &["status", "--porcelain"]),
        "",
        "the work tree and the index are untouched"
    );
    git(ws, &["fsck", "--connectivity-only", "--no-progress"]);
}
