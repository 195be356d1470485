//! The record's history, read from git for `rotor verify` and `rotor evidence`: every version
//! each artifact had on the default branch's first-parent history, which commit brought each
//! one in, and every commit rotor itself made to an artifact — on the default branch, or on a
//! pull request's branch as GitHub keeps it (`refs/pull/<n>/head`).
//!
//! A shallow checkout (actions/checkout's default) has none of that history, and deepening it
//! would change it for later steps, so the history is fetched whole into a bare repository of
//! its own, in a temporary directory removed afterwards; the pull requests' heads it needs are
//! fetched by id, so they add no ref. Without an `origin` (a local clone
//! whose remote was removed), the checkout's own history is read, which must then be complete.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use crate::config::{self, CommitVia, Config};
use crate::diagnostic::{Diagnostic, Pos};
use crate::error::Error;
use crate::gitops::{CommitInfo, GitError, GitRepo, Person};
use crate::record::signing::{SigProblem, SigningKeys};
use crate::secret::SecretString;

/// Who rotor commits as: the `commit.author` of every version of the config the default
/// branch ever had, so that changing it does not disown older artifacts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Identities(BTreeSet<(String, String)>);

/// The identity GitHub commits as (squash and rebase merges, commits made through its API):
/// never rotor's, whatever a config says, or every rebase-merged commit authored in rotor's name
/// would count as rotor's own.
const GITHUB_COMMITTER: (&str, &str) = ("GitHub", "noreply@github.com");

impl Identities {
    pub(crate) fn add(&mut self, name: &str, email: &str) {
        if (name, email) != GITHUB_COMMITTER {
            self.0.insert((name.to_owned(), email.to_owned()));
        }
    }

    fn is(&self, p: &Person) -> bool {
        self.0.contains(&(p.name.clone(), p.email.clone()))
    }

    /// Whether `c` is authored and committed by rotor, with one parent.
    pub(crate) fn made(&self, c: &CommitInfo) -> bool {
        c.parents.len() == 1 && self.is(&c.author) && self.is(&c.committer)
    }

    /// Whether `c` is GitHub's commit in rotor's name (`commit.via: api`): authored by rotor,
    /// committed by GitHub, with one parent.
    fn made_by_github(&self, c: &CommitInfo) -> bool {
        c.parents.len() == 1
            && self.is(&c.author)
            && (c.committer.name.as_str(), c.committer.email.as_str()) == GITHUB_COMMITTER
    }

    /// `Name <email>` of each identity, for messages.
    pub(crate) fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(n, e)| format!("{n} <{e}>"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether a commit in rotor's name is rotor's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// rotor's own commit: authored and committed as rotor (`commit.via: git`), or GitHub's
    /// commit in rotor's name carrying a valid signature by a signing key (`signed`).
    Rotors {
        /// Whether GitHub made and signed it.
        signed: bool,
    },
    /// Not rotor's: not in its name, or (with `commit.via: api` in force) in the name of an
    /// identity other than the `commit.author` then in force.
    NotRotors,
    /// In rotor's name where a signature is required, without a valid one.
    Refused(SigProblem),
}

/// Who judges commits in rotor's name: its identities, and the keys that sign its commits
/// where `commit.via: api` is in force.
#[derive(Debug)]
pub(crate) struct Judge {
    /// rotor's commit identities.
    pub(crate) identities: Identities,
    /// The keys that may sign rotor's commits (`record.signing_keys` at the tip, or GitHub's).
    pub(crate) keys: SigningKeys,
}

impl Judge {
    /// Whether `c` is rotor's own commit. `api` is the `commit.author` in force when
    /// `commit.via: api` governs `c`: a signature is then required, and the author must be
    /// that identity. Without it, a commit git made in rotor's name counts, and so does
    /// GitHub's commit in rotor's name that carries a valid signature (a pull request opened
    /// before a switch to `api` and applied after it).
    pub(crate) fn verdict(
        &self,
        git: &GitRepo,
        c: &CommitInfo,
        api: Option<&Person>,
    ) -> Result<Verdict, GitError> {
        let by_rotor = self.identities.made(c);
        let by_github = self.identities.made_by_github(c);
        if !by_rotor && !by_github {
            return Ok(Verdict::NotRotors);
        }
        if api.is_none() && by_rotor {
            return Ok(Verdict::Rotors { signed: false });
        }
        let signature = git.signature(&c.sha)?;
        let checked = self
            .keys
            .check(signature.as_ref().map(|(s, d)| (s.as_str(), d.as_slice())));
        Ok(match checked {
            Ok(()) if by_github => match api {
                Some(author) if *author != c.author => Verdict::NotRotors,
                _ => Verdict::Rotors { signed: true },
            },
            // A valid signature on a commit git made in rotor's name: not GitHub's commit.
            Ok(()) => Verdict::Refused(SigProblem::BadSignature(format!(
                "is valid, but the commit is committed as {} <{}>, not by GitHub",
                c.committer.name, c.committer.email
            ))),
            Err(problem) if api.is_some() || by_github => Verdict::Refused(problem),
            Err(_) => Verdict::NotRotors,
        })
    }
}

/// One version of an artifact on the default branch.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// The first-parent commit of the default branch at which it appeared.
    pub(crate) commit: CommitInfo,
    /// That commit's position in the first-parent history (0: the root).
    pub(crate) seq: usize,
    /// The commit that wrote it: `commit`, or for a merge the commit on the merged side that
    /// last wrote this content.
    pub(crate) by: CommitInfo,
    /// Whether `by` is rotor's own commit changing only this artifact.
    pub(crate) by_rotor: bool,
    /// The `commit.author` in force at `commit` when `commit.via: api` governs it (from the
    /// first config on the default branch that said `api` on): what came in here must be
    /// GitHub's signed commit in that name.
    pub(crate) api: Option<Person>,
    /// Why `by`, a commit in rotor's name changing only this artifact, is not rotor's own
    /// (`commit.via: api` was in force and its signature is missing or wrong).
    pub(crate) refused: Option<SigProblem>,
    /// The content, or `None` when the artifact was removed (or is not a regular file).
    pub(crate) text: Option<String>,
    /// The blob id of the content.
    pub(crate) blob: Option<String>,
}

/// Everything git says about one artifact path.
#[derive(Debug, Clone, Default)]
pub(crate) struct ArtifactHistory {
    /// The path, relative to the repository.
    pub(crate) path: String,
    /// Each version on the default branch, oldest first.
    pub(crate) changes: Vec<Change>,
    /// The blobs rotor's own commits wrote at this path, each with the commit that wrote it.
    pub(crate) rotor_blobs: HashMap<String, String>,
    /// The blobs GitHub's signed commits in rotor's name wrote at this path, each with that
    /// commit's author.
    pub(crate) signed_blobs: HashMap<String, Person>,
    /// The blobs commits in rotor's name wrote at this path without a valid signature, each
    /// with that commit and what is wrong with it (a commit git made counts as `unsigned`).
    pub(crate) refused: HashMap<String, (CommitInfo, SigProblem)>,
}

impl ArtifactHistory {
    /// The content at the default branch's tip, if the artifact is there.
    pub(crate) fn current(&self) -> Option<&str> {
        self.changes.last().and_then(|c| c.text.as_deref())
    }

    /// Whether this path holds a rotation artifact at all: some version carries rotor's
    /// machine-readable block at the start of a line, or the heading `# Rotation <its id>`.
    /// Anything else in the directory (a README) is not part of the record.
    pub(crate) fn is_artifact(&self) -> bool {
        let stem = self
            .path
            .rsplit('/')
            .next()
            .and_then(|n| n.strip_suffix(".md"))
            .unwrap_or("");
        let heading = format!("# Rotation {stem}");
        let marker = crate::artifact::DATA_MARKER.trim_end();
        // The block starts a line (a document quoting it does not), or the heading names the
        // file's own rotation (a "# Rotation records" README does not).
        self.changes
            .iter()
            .filter_map(|c| c.text.as_deref())
            .any(|t| {
                t.lines().any(|l| l.starts_with(marker))
                    || t.lines().next().is_some_and(|l| {
                        let l = l.trim_end();
                        l == heading || l.strip_suffix(" (break-glass)") == Some(heading.as_str())
                    })
            })
    }
}

/// The record's history.
#[derive(Debug)]
pub(crate) struct History {
    /// The default branch.
    pub(crate) branch: String,
    /// Its tip.
    pub(crate) tip: String,
    /// The config at the tip.
    pub(crate) config: Config,
    /// Who judges commits in rotor's name.
    pub(crate) judge: Judge,
    /// Every artifact path the default branch ever had, by path.
    pub(crate) artifacts: BTreeMap<String, ArtifactHistory>,
    /// Each change of what the signature check trusts (`commit.author`, `record.signing_keys`,
    /// the key files) while `commit.via: api` was in force, in words.
    pub(crate) trust_changes: Vec<String>,
}

/// The repository the history is read from, and the temporary directory holding it (removed
/// when this is dropped).
struct Source {
    git: GitRepo,
    dir: Option<tempfile::TempDir>,
}

/// Opens the history to read: a whole copy of origin's default branch in a temporary bare
/// repository, or the checkout itself when it has no `origin`.
fn open(repo: &Path, token: Option<SecretString>) -> Result<(Source, String), Error> {
    let checkout = GitRepo::open(repo, token)?;
    if checkout.has_origin() {
        let branch = match checkout.origin_default_branch()? {
            Some(b) => b,
            None => checkout.current_branch().ok_or_else(|| {
                GitError::Git(
                    "origin does not name its default branch and HEAD is on no branch".to_owned(),
                )
            })?,
        };
        let dir = tempfile::Builder::new()
            .prefix("rotor-history.")
            .tempdir()
            .map_err(Error::Output)?;
        let git = checkout.history_clone(dir.path())?;
        git.fetch_refs(&[format!("+refs/heads/{branch}:refs/heads/{branch}")])?;
        return Ok((
            Source {
                git,
                dir: Some(dir),
            },
            branch,
        ));
    }
    if checkout.is_shallow() {
        return Err(GitError::Git(
            "the checkout is shallow and has no origin to fetch the history from: clone it whole (fetch-depth: 0) or add its origin".to_owned(),
        )
        .into());
    }
    let branch = checkout.current_branch().ok_or_else(|| {
        GitError::Git(
            "HEAD is on no branch, and there is no origin to ask which is the default".to_owned(),
        )
    })?;
    Ok((
        Source {
            git: checkout,
            dir: None,
        },
        branch,
    ))
}

/// Reads the record's history from the repository at `repo`; `config_rel` is the config's
/// path relative to the repository. Logs through `log`.
pub(crate) fn load(
    repo: &Path,
    config_rel: &str,
    token: Option<SecretString>,
    log: &dyn Fn(&str),
) -> Result<History, Error> {
    let (source, branch) = open(repo, token)?;
    let git = &source.git;
    let tip = git
        .ref_target(&format!("refs/heads/{branch}"))
        .ok_or_else(|| GitError::Git(format!("the default branch {branch} has no commit")))?;
    let config = read_config(git, &tip, config_rel, &branch)?;
    let first_parent = git.first_parent_history(&tip)?;

    // rotor's identities and the artifacts' directories, from every version of the config
    // along the branch: changing either does not disown older artifacts, nor hide them.
    let mut identities = Identities::default();
    identities.add(&config.commit.author_name, &config.commit.author_email);
    let mut dirs = BTreeSet::from([config.artifacts_dir.as_str().to_owned()]);
    let mut request_dirs = BTreeSet::from([config.requests_dir.as_str().to_owned()]);
    let mut last_config = None;
    // From the first config that says `commit.via: api` on, every first-parent commit is
    // governed by it (a later config saying `git` does not lift it: a contributor who can push
    // the config could otherwise switch it off around a forgery), with the `commit.author`
    // then in force.
    let mut api_line: HashMap<String, Person> = HashMap::new();
    let mut api = false;
    let mut author = Person {
        name: config.commit.author_name.clone(),
        email: config.commit.author_email.clone(),
    };
    // What the signature check trusts, as the default branch had it: who signs (`commit.author`)
    // and with which keys (`record.signing_keys` and the files' contents). Once `via: api` is
    // in force, each change of it is said (not a finding: an honest change, such as moving
    // from the workflow's token to an App, would be one for ever).
    let mut keys: Vec<String> = Vec::new();
    let mut key_blobs: Vec<Option<String>> = Vec::new();
    let mut trust_changes = Vec::new();
    for c in &first_parent {
        let blob = git.blob_at(&c.sha, config_rel)?;
        let mut changed = Vec::new();
        if blob.is_some() && blob != last_config {
            if let Some(id) = &blob
                && let Ok(old) = config::parse(config_rel, &git.blob(id)?)
            {
                identities.add(&old.commit.author_name, &old.commit.author_email);
                dirs.insert(old.artifacts_dir.as_str().to_owned());
                request_dirs.insert(old.requests_dir.as_str().to_owned());
                api |= old.commit.via == CommitVia::Api;
                let next = Person {
                    name: old.commit.author_name.clone(),
                    email: old.commit.author_email.clone(),
                };
                if next != author {
                    changed.push(format!(
                        "commit.author from {} <{}> to {} <{}>",
                        author.name, author.email, next.name, next.email
                    ));
                }
                if old.signing_keys != keys {
                    changed.push(format!(
                        "record.signing_keys to [{}]",
                        old.signing_keys.join(", ")
                    ));
                }
                author = next;
                keys = old.signing_keys;
            }
            last_config = blob;
        }
        let mut blobs = Vec::with_capacity(keys.len());
        for path in &keys {
            blobs.push(git.blob_at(&c.sha, path)?);
        }
        if blobs != key_blobs && blobs.len() == key_blobs.len() && changed.is_empty() {
            changed.push(format!("the key file(s) {}", keys.join(", ")));
        }
        key_blobs = blobs;
        if api {
            if !changed.is_empty() && !api_line.is_empty() {
                trust_changes.push(format!(
                    "{} (authored by {} <{}>) changed {} while commit.via: api was in force: records signed accordingly count from there; make sure that change was reviewed",
                    &c.sha[..c.sha.len().min(7)],
                    c.author.name,
                    c.author.email,
                    changed.join(" and ")
                ));
            }
            api_line.insert(c.sha.clone(), author.clone());
        }
    }
    let judge = Judge {
        identities,
        keys: signing_keys(git, &tip, &config, &branch)?,
    };
    log(&format!(
        "history: {} on {branch}, artifacts under {}",
        crate::output::count(first_parent.len(), "commit"),
        dirs.iter()
            .map(|d| format!("{d}/"))
            .collect::<Vec<_>>()
            .join(", ")
    ));

    // Every version of every artifact, along the first-parent history.
    let mut paths = Paths::default();
    let mut artifacts: BTreeMap<String, ArtifactHistory> = BTreeMap::new();
    for dir in &dirs {
        let mut prev_tree: Option<String> = None;
        for (seq, c) in first_parent.iter().enumerate() {
            let tree = git.tree_at(&c.sha, dir)?;
            if tree == prev_tree {
                continue;
            }
            // One change per name: a file and a directory of one name (replaced one by the
            // other) come out as two entries; the regular file, if either, is the artifact.
            let mut changes: BTreeMap<String, Option<(String, bool)>> = BTreeMap::new();
            for (name, now) in git.tree_changes(prev_tree.as_deref(), tree.as_deref())? {
                let slot = changes.entry(name).or_insert(None);
                if slot.as_ref().is_none_or(|(_, file)| !file) {
                    *slot = now;
                }
            }
            for (name, now) in changes {
                // Only the artifacts directly in the directory.
                if name.contains('/') || !name.ends_with(".md") {
                    continue;
                }
                let path = format!("{dir}/{name}");
                let blob = now.filter(|(_, file)| *file).map(|(id, _)| id);
                let text = match &blob {
                    Some(id) => Some(String::from_utf8_lossy(&git.blob(id)?).into_owned()),
                    None => None,
                };
                let by = writer(git, c, &path, blob.as_deref())?;
                // rotor commits a change to a record (a rollback, a countersignature) on the
                // default branch itself: a commit in its name that a merge brought in from
                // another branch is not rotor's, whatever its author says.
                let alone = by.sha == c.sha && paths.of(git, &by.sha)?.as_slice() == [path.clone()];
                let verdict = if alone {
                    judge.verdict(git, &by, api_line.get(&by.sha))?
                } else {
                    Verdict::NotRotors
                };
                let by_rotor = matches!(verdict, Verdict::Rotors { .. });
                let refused = match verdict {
                    Verdict::Refused(problem) => Some(problem),
                    _ => None,
                };
                artifacts
                    .entry(path.clone())
                    .or_insert_with(|| ArtifactHistory {
                        path,
                        ..ArtifactHistory::default()
                    })
                    .changes
                    .push(Change {
                        commit: c.clone(),
                        seq,
                        by,
                        by_rotor,
                        api: api_line.get(&c.sha).cloned(),
                        refused,
                        text,
                        blob,
                    });
            }
            prev_tree = tree;
        }
    }

    // Every commit rotor made to an artifact: on the default branch's own line first (a
    // commit in rotor's name on a branch merged in is not rotor's: it proves nothing).
    let mut seen = rotor_commits(
        git,
        &judge,
        &dirs,
        None,
        first_parent
            .iter()
            .map(|c| (c.clone(), api_line.get(&c.sha).cloned())),
        &mut paths,
        &mut artifacts,
    )?;
    // An artifact that came in by a pull request (merged, squashed or rebased) was written by
    // rotor on that pull request's branch: look at those pull requests' heads as GitHub keeps
    // them, and only at the commits of each head that the default branch's line does not hold.
    let pulls: BTreeSet<u64> = artifacts
        .values()
        .flat_map(|a| {
            a.changes.iter().enumerate().filter_map(|(i, c)| {
                let introduced = i == 0 || a.changes[i - 1].blob.is_none();
                let unmatched = c
                    .blob
                    .as_ref()
                    .is_some_and(|b| !a.rotor_blobs.contains_key(b));
                (introduced && unmatched)
                    .then_some(c.text.as_deref())
                    .flatten()
                    .and_then(|t| crate::artifact::read_meta(t).ok().flatten())
                    .and_then(|m| m.pull_request)
            })
        })
        .collect();
    if !pulls.is_empty() {
        let wanted = |name: &str| {
            name.strip_prefix("refs/pull/")
                .and_then(|rest| rest.strip_suffix("/head"))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| pulls.contains(&n))
        };
        let heads: Vec<String> = if source.dir.is_some() {
            let heads: Vec<String> = git
                .remote_refs("refs/pull/*/head")?
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(_, sha)| sha)
                .collect();
            git.fetch_commits(&heads)?;
            heads
        } else {
            git.refs_matching("refs/pull/*/head")?
                .into_iter()
                .filter(|(name, _)| wanted(name))
                .map(|(_, sha)| sha)
                .collect()
        };
        log(&format!(
            "history: {} came in by a pull request; reading {} of their heads",
            crate::output::count(pulls.len(), "artifact"),
            heads.len()
        ));
        let on_line: BTreeSet<&str> = first_parent.iter().map(|c| c.sha.as_str()).collect();
        // Whether a signature is required of a pull request's commit is decided where its
        // record came in on the default branch (`Change::api`), not by the branch's own config
        // or where it left the default branch, both of which its author chooses.
        let mut branch_commits = Vec::new();
        for head in &heads {
            let mut at = Some(head.clone());
            let mut walked = Vec::new();
            let mut left_main = false;
            // A pull request's own commits: its head's first-parent line down to where it
            // left the default branch (bounded, as any walk of a history rotor did not write).
            for _ in 0..MAX_BRANCH_WALK {
                let Some(sha) = at.take() else { break };
                if on_line.contains(sha.as_str()) {
                    left_main = true;
                    break;
                }
                let c = git.commit_info(&sha)?;
                at = c.parents.first().cloned();
                walked.push((c, None));
            }
            // A head whose own line never reaches the default branch's (another repository's
            // history pushed in, a line longer than the bound) holds nothing of rotor's here.
            if left_main {
                branch_commits.extend(walked);
            }
        }
        seen += rotor_commits(
            git,
            &judge,
            &dirs,
            Some(&request_dirs),
            branch_commits.into_iter(),
            &mut paths,
            &mut artifacts,
        )?;
    }
    log(&format!(
        "history: {}, {} by rotor",
        crate::output::count(artifacts.len(), "artifact path"),
        crate::output::count(seen, "commit")
    ));
    Ok(History {
        branch,
        tip,
        config,
        judge,
        artifacts,
        trust_changes,
    })
}

/// `record.signing_keys` as the default branch's tip holds them, or GitHub's keys when none is
/// named; a named key file that is missing or holds no key is invalid input.
fn signing_keys(
    git: &GitRepo,
    tip: &str,
    config: &Config,
    branch: &str,
) -> Result<SigningKeys, Error> {
    if config.signing_keys.is_empty() {
        return Ok(SigningKeys::github());
    }
    let mut files = Vec::new();
    for path in &config.signing_keys {
        let bytes = git.read_file(tip, path)?.ok_or_else(|| Error::Invalid {
            diagnostics: vec![
                Diagnostic::new(
                    "unreadable_file",
                    path,
                    Pos::START,
                    format!("record.signing_keys names {path}, which is not on {branch}"),
                )
                .help("commit the public key file, or remove it from record.signing_keys"),
            ],
        })?;
        files.push((path.clone(), bytes));
    }
    SigningKeys::from_files(&files).map_err(|(path, why)| Error::Invalid {
        diagnostics: vec![
            Diagnostic::new(
                "invalid_signing_key",
                &path,
                Pos::START,
                format!("{path} {why}"),
            )
            .help("export the key with `gpg --armor --export <fingerprint>`"),
        ],
    })
}

/// The config at the default branch's tip; a missing or invalid one is invalid input.
fn read_config(git: &GitRepo, tip: &str, rel: &str, branch: &str) -> Result<Config, Error> {
    let bytes = git.read_file(tip, rel)?.ok_or_else(|| Error::Invalid {
        diagnostics: vec![
            Diagnostic::new(
                "unreadable_file",
                rel,
                Pos::START,
                format!("there is no {rel} on {branch}"),
            )
            .help("the record is verified against the config on the default branch"),
        ],
    })?;
    config::parse(rel, &bytes).map_err(|diagnostics| Error::Invalid { diagnostics })
}

/// Which commit wrote `blob` at `path` when first-parent commit `c` brought it in: `c`
/// itself, or for a merge the newest commit of the merged side that made that change.
fn writer(
    git: &GitRepo,
    c: &CommitInfo,
    path: &str,
    blob: Option<&str>,
) -> Result<CommitInfo, GitError> {
    let [first, merged @ ..] = c.parents.as_slice() else {
        return Ok(c.clone());
    };
    if merged.is_empty() {
        return Ok(c.clone());
    }
    for side in git.commits_between(merged, std::slice::from_ref(first))? {
        let here = git.blob_at(&side.sha, path)?;
        let before = match side.parents.first() {
            Some(p) => git.blob_at(p, path)?,
            None => None,
        };
        if here.as_deref() == blob && before != here {
            return Ok(side);
        }
    }
    Ok(c.clone())
}

/// The paths each commit changes, computed once per commit.
#[derive(Default)]
struct Paths(HashMap<String, Vec<String>>);

impl Paths {
    fn of(&mut self, git: &GitRepo, sha: &str) -> Result<&Vec<String>, GitError> {
        if !self.0.contains_key(sha) {
            let paths = git.changed_paths(sha)?;
            self.0.insert(sha.to_owned(), paths);
        }
        Ok(self.0.get(sha).map_or(&EMPTY, |p| p))
    }
}

static EMPTY: Vec<String> = Vec::new();

/// How many commits of one pull request's branch are read, from its head.
const MAX_BRANCH_WALK: usize = 1000;

/// Records in `artifacts` each of `commits` that is rotor's own commit to one artifact;
/// returns how many there were. With `requests` (a pull request's branch), a commit counts only
/// where the branch carries the request of the artifact's id (`<requests_dir>/<id>.yaml`, in
/// any requests directory the config ever named): rotor commits the record onto the approved
/// head, and a lone commit in its name on a branch that never held the request is not rotor's.
fn rotor_commits(
    git: &GitRepo,
    judge: &Judge,
    dirs: &BTreeSet<String>,
    requests: Option<&BTreeSet<String>>,
    commits: impl Iterator<Item = (CommitInfo, Option<Person>)>,
    paths: &mut Paths,
    artifacts: &mut BTreeMap<String, ArtifactHistory>,
) -> Result<usize, GitError> {
    let mut count = 0;
    // rotor's commits on this line, and the countersignatures waiting to be judged on them.
    let mut accepted: BTreeSet<String> = BTreeSet::new();
    let mut deferred = Vec::new();
    for (c, api) in commits {
        if !judge.identities.made(&c) && !judge.identities.made_by_github(&c) {
            continue;
        }
        let changed = paths.of(git, &c.sha)?;
        let [path] = changed.as_slice() else {
            continue;
        };
        let path = path.clone();
        let in_dir = dirs.iter().any(|dir| {
            path.strip_prefix(dir.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|name| !name.contains('/') && name.ends_with(".md"))
        });
        if !in_dir {
            continue;
        }
        let blob = git.blob_at(&c.sha, &path)?;
        if let Some(requests) = requests {
            // On a pull request's branch rotor commits the record onto the head that was
            // approved: the commit's parent is a head its own record says was approved. A
            // countersignature by review sits on rotor's own record commit, so it counts only
            // once that commit does.
            let meta = match &blob {
                Some(id) => crate::artifact::read_meta(&String::from_utf8_lossy(&git.blob(id)?))
                    .ok()
                    .flatten(),
                None => None,
            };
            let parent = c.parents.first().map(String::as_str);
            let approved = meta.as_ref().is_some_and(|m| {
                m.approvals.iter().any(|a| Some(a.sha.as_str()) == parent)
                    || m.break_glass.as_ref().and_then(|g| g.sha.as_deref()) == parent
            });
            let countersigned = meta
                .as_ref()
                .is_some_and(|m| m.countersigned.as_ref().and_then(|x| x.sha.as_deref()) == parent);
            if !approved && !countersigned {
                continue;
            }
            let stem = path
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".md"))
                .unwrap_or_default();
            let mut carried = false;
            for dir in requests {
                carried |= git
                    .blob_at(&c.sha, &format!("{dir}/{stem}.yaml"))?
                    .is_some();
            }
            if !carried {
                continue;
            }
            if !approved {
                deferred.push((c, api, path, blob));
                continue;
            }
        }
        count += record_commit(git, judge, c, api, path, blob, artifacts, &mut accepted)?;
    }
    // Oldest first, so that a countersignature on a countersignature's parent is judged after
    // it (there is one per record, but the order costs nothing).
    deferred.sort_by_key(|(c, ..)| c.time);
    for (c, api, path, blob) in deferred {
        if c.parents.first().is_some_and(|p| accepted.contains(p)) {
            count += record_commit(git, judge, c, api, path, blob, artifacts, &mut accepted)?;
        }
    }
    Ok(count)
}

/// Judges `c`, a commit in rotor's name writing `path` (as `blob`), and records the verdict;
/// 1 when it is rotor's own.
#[allow(clippy::too_many_arguments)]
fn record_commit(
    git: &GitRepo,
    judge: &Judge,
    c: CommitInfo,
    api: Option<Person>,
    path: String,
    blob: Option<String>,
    artifacts: &mut BTreeMap<String, ArtifactHistory>,
    accepted: &mut BTreeSet<String>,
) -> Result<usize, GitError> {
    let Some(blob) = blob else { return Ok(0) };
    let entry = artifacts
        .entry(path.clone())
        .or_insert_with(|| ArtifactHistory {
            path,
            ..ArtifactHistory::default()
        });
    match judge.verdict(git, &c, api.as_ref())? {
        Verdict::Rotors { signed } => {
            if signed {
                entry
                    .signed_blobs
                    .entry(blob.clone())
                    .or_insert_with(|| c.author.clone());
            } else {
                // Where a signature is required, a commit git made does not do.
                entry
                    .refused
                    .entry(blob.clone())
                    .or_insert_with(|| (c.clone(), SigProblem::Unsigned));
            }
            accepted.insert(c.sha.clone());
            entry.rotor_blobs.entry(blob).or_insert(c.sha);
            Ok(1)
        }
        Verdict::Refused(problem) => {
            entry.refused.entry(blob).or_insert((c, problem));
            Ok(0)
        }
        Verdict::NotRotors => Ok(0),
    }
}
