//! Reading history, whole, for `rotor verify` and `rotor evidence`: commits, trees and the
//! paths each commit changes, compared in place in git's order.

use std::path::Path;

use git2::{ObjectType, Oid, Repository};

use super::{CommitInfo, DirEntry, EntryChange, GitError, GitRepo, Person, Side};

/// Reading history: whole, not shallow, for `rotor verify` and `rotor evidence`.
///
/// NOTE: a shallow checkout cannot be deepened without changing it (`git fetch --unshallow`
/// rewrites `.git/shallow`, which later steps may rely on), so the history is fetched into a
/// separate bare repository (see [`GitRepo::history_clone`]) and read there; the checkout is
/// left exactly as it was.
impl GitRepo {
    /// Whether the checkout has a remote named `origin`.
    pub fn has_origin(&self) -> bool {
        self.repo.find_remote("origin").is_ok()
    }

    /// The branch `HEAD` is on, if it is on one.
    pub fn current_branch(&self) -> Option<String> {
        let head = self.repo.find_reference("HEAD").ok()?;
        head.symbolic_target()
            .ok()
            .flatten()
            .and_then(|t| t.strip_prefix("refs/heads/"))
            .map(str::to_owned)
    }

    /// The default branch as origin itself names it (`git ls-remote --symref origin HEAD`).
    pub fn origin_default_branch(&self) -> Result<Option<String>, GitError> {
        let out = self.network("ls-remote", &["ls-remote", "--symref", "origin", "HEAD"])?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().find_map(|l| {
            l.strip_prefix("ref: refs/heads/")
                .and_then(|rest| rest.split('\t').next())
                .map(str::to_owned)
        }))
    }

    /// origin's URL, a relative local path made absolute against the checkout.
    fn origin_url(&self) -> Result<String, GitError> {
        let remote = self.repo.find_remote("origin")?;
        let url = remote
            .url()
            .map_err(|_| GitError::Git("origin's URL is not UTF-8".to_owned()))?;
        let path = Path::new(url);
        // A URL (`https://…`, `file://…`) or scp-like address (`git@host:x`) is kept as is.
        if url.contains(':') || path.is_absolute() {
            return Ok(url.to_owned());
        }
        let base = self.repo.workdir().unwrap_or(&self.git_dir);
        Ok(base.join(path).to_string_lossy().into_owned())
    }

    /// A new, empty bare repository in `dir` whose origin is this checkout's origin, opened
    /// with the same token, into which history can be fetched whole.
    pub fn history_clone(&self, dir: &Path) -> Result<Self, GitError> {
        let url = self.origin_url()?;
        let repo = Repository::init_bare(dir)?;
        repo.remote("origin", &url)?;
        drop(repo);
        Self::open(dir, self.token.clone())
    }

    /// Fetches `refspecs` from origin whole, for a repository that is not shallow (a history
    /// clone). Sources that do not exist are an error, so callers use patterns or known refs.
    pub fn fetch_refs(&self, refspecs: &[String]) -> Result<(), GitError> {
        if refspecs.is_empty() {
            return Ok(());
        }
        self.fetch(refspecs)
    }

    /// The refs of origin matching `pattern` (e.g. `refs/pull/*/head`), with their commits
    /// (`git ls-remote`).
    pub fn remote_refs(&self, pattern: &str) -> Result<Vec<(String, String)>, GitError> {
        let out = self.network("ls-remote", &["ls-remote", "origin", pattern])?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (sha, name) = l.split_once('\t')?;
                Some((name.to_owned(), sha.to_owned()))
            })
            .collect())
    }

    /// Fetches the commits `shas` (and their history) from origin by id, creating no ref: a
    /// few hundred pull request heads would otherwise be as many files.
    pub fn fetch_commits(&self, shas: &[String]) -> Result<(), GitError> {
        for chunk in shas.chunks(500) {
            let mut args = vec![
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-recurse-submodules",
                "--no-write-fetch-head",
                "origin",
            ];
            args.extend(chunk.iter().map(String::as_str));
            self.network("fetch", &args)?;
        }
        Ok(())
    }

    /// The commit `name` (a full ref name) points at, if it exists.
    pub fn ref_target(&self, name: &str) -> Option<String> {
        self.repo
            .refname_to_id(name)
            .ok()
            .and_then(|id| self.repo.find_commit(id).ok())
            .map(|c| c.id().to_string())
    }

    /// Every ref matching `glob` (e.g. `refs/pull/*/head`) with its commit.
    pub fn refs_matching(&self, glob: &str) -> Result<Vec<(String, String)>, GitError> {
        let mut out = Vec::new();
        for r in self.repo.references_glob(glob)? {
            let r = r?;
            if let (Ok(name), Ok(commit)) = (r.name(), r.peel_to_commit()) {
                out.push((name.to_owned(), commit.id().to_string()));
            }
        }
        Ok(out)
    }

    fn info(commit: &git2::Commit<'_>) -> CommitInfo {
        let person = |s: git2::Signature<'_>| Person {
            name: String::from_utf8_lossy(s.name_bytes()).into_owned(),
            email: String::from_utf8_lossy(s.email_bytes()).into_owned(),
        };
        CommitInfo {
            sha: commit.id().to_string(),
            author: person(commit.author()),
            committer: person(commit.committer()),
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
            time: commit.time().seconds(),
        }
    }

    /// One commit.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo, GitError> {
        Ok(Self::info(&self.repo.find_commit(Oid::from_str(sha)?)?))
    }

    /// The first-parent history of `tip`, oldest first: the default branch as its own
    /// commits and merges made it.
    pub fn first_parent_history(&self, tip: &str) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk()?;
        walk.push(Oid::from_str(tip)?)?;
        walk.simplify_first_parent()?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
        let mut out = Vec::new();
        for oid in walk {
            out.push(Self::info(&self.repo.find_commit(oid?)?));
        }
        Ok(out)
    }

    /// Every commit reachable from `tips` and not from `hide`, newest first.
    pub fn commits_between(
        &self,
        tips: &[String],
        hide: &[String],
    ) -> Result<Vec<CommitInfo>, GitError> {
        let mut walk = self.repo.revwalk()?;
        for t in tips {
            walk.push(Oid::from_str(t)?)?;
        }
        for h in hide {
            walk.hide(Oid::from_str(h)?)?;
        }
        walk.set_sorting(git2::Sort::TOPOLOGICAL)?;
        let mut out = Vec::new();
        for oid in walk {
            out.push(Self::info(&self.repo.find_commit(oid?)?));
        }
        Ok(out)
    }

    /// The id of the tree at `path` (a directory) in commit `sha`, if there is one.
    pub fn tree_at(&self, sha: &str, path: &str) -> Result<Option<String>, GitError> {
        let tree = self.repo.find_commit(Oid::from_str(sha)?)?.tree()?;
        match tree.get_path(Path::new(path)) {
            Ok(e) if e.kind() == Some(ObjectType::Tree) => Ok(Some(e.id().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The entries of tree `id`.
    pub fn tree_entries(&self, id: &str) -> Result<Vec<DirEntry>, GitError> {
        let tree = self.repo.find_tree(Oid::from_str(id)?)?;
        Ok(tree
            .iter()
            .filter_map(|e| {
                Some(DirEntry {
                    name: e.name().ok()?.to_owned(),
                    id: e.id().to_string(),
                    is_file: e.kind() == Some(ObjectType::Blob)
                        && matches!(e.filemode(), 0o100_644 | 0o100_755),
                })
            })
            .collect())
    }

    /// The entries that differ between trees `old` and `new` (either may be absent): each
    /// name directly in them, with its new id and whether it is a regular file, or `None` when
    /// it is gone. Entries are compared in place, in git's order, without building paths: a
    /// commit that changes one file of a directory of thousands costs one pass over it.
    pub fn tree_changes(
        &self,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<Vec<EntryChange>, GitError> {
        let tree = |id: Option<&str>| -> Result<Option<git2::Tree<'_>>, GitError> {
            Ok(match id {
                Some(id) => Some(self.repo.find_tree(Oid::from_str(id)?)?),
                None => None,
            })
        };
        let (a, b) = (tree(old)?, tree(new)?);
        let mut out = Vec::new();
        merge_entries(a.as_ref(), b.as_ref(), |before, after| {
            let entry = after.or(before);
            if let Some(name) = entry.and_then(|e| e.name().ok()) {
                out.push((
                    name.to_owned(),
                    after.map(|e| {
                        (
                            e.id().to_string(),
                            e.kind() == Some(ObjectType::Blob)
                                && matches!(e.filemode(), 0o100_644 | 0o100_755),
                        )
                    }),
                ));
            }
        });
        Ok(out)
    }

    /// The id of the blob at `path` in commit `sha`, if a regular file is there.
    pub fn blob_at(&self, sha: &str, path: &str) -> Result<Option<String>, GitError> {
        let tree = self.repo.find_commit(Oid::from_str(sha)?)?.tree()?;
        match tree.get_path(Path::new(path)) {
            Ok(e) if e.kind() == Some(ObjectType::Blob) => Ok(Some(e.id().to_string())),
            Ok(_) => Ok(None),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of blob `id`.
    pub fn blob(&self, id: &str) -> Result<Vec<u8>, GitError> {
        Ok(self.repo.find_blob(Oid::from_str(id)?)?.content().to_vec())
    }

    /// The commit's signature (`gpgsig`, armored) and the bytes it signs, or `None` when the
    /// commit is not signed.
    pub fn signature(&self, sha: &str) -> Result<Option<(String, Vec<u8>)>, GitError> {
        match self.repo.extract_signature(&Oid::from_str(sha)?, None) {
            Ok((sig, data)) => Ok(Some((
                String::from_utf8_lossy(&sig).into_owned(),
                data.to_vec(),
            ))),
            Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The first parent commit `sha` records in its own object: what a shallow checkout, whose
    /// boundary commits show no parent, still knows.
    pub fn recorded_parent(&self, sha: &str) -> Result<Option<String>, GitError> {
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        Ok(commit
            .raw_header()
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("parent "))
            .map(|p| p.trim().to_owned()))
    }

    /// The paths that differ between commits `old` and `new`.
    pub fn paths_between(&self, old: &str, new: &str) -> Result<Vec<String>, GitError> {
        let tree = |sha: &str| -> Result<git2::Tree<'_>, GitError> {
            Ok(self.repo.find_commit(Oid::from_str(sha)?)?.tree()?)
        };
        let (a, b) = (tree(old)?, tree(new)?);
        let mut out = Vec::new();
        self.changed_under(Some(&a), Some(&b), "", &mut out)?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The paths commit `sha` changes against its first parent (against nothing for a root
    /// commit), renames seen as a deletion and an addition. Only subtrees whose ids differ are
    /// entered, and entries are compared in place.
    pub fn changed_paths(&self, sha: &str) -> Result<Vec<String>, GitError> {
        let commit = self.repo.find_commit(Oid::from_str(sha)?)?;
        let tree = commit.tree()?;
        let parent = match commit.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let mut out = Vec::new();
        self.changed_under(parent.as_ref(), Some(&tree), "", &mut out)?;
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn changed_under(
        &self,
        old: Option<&git2::Tree<'_>>,
        new: Option<&git2::Tree<'_>>,
        prefix: &str,
        out: &mut Vec<String>,
    ) -> Result<(), GitError> {
        let mut pairs: Vec<(Side, Side, String)> = Vec::new();
        merge_entries(old, new, |before, after| {
            let is_tree = |e: &git2::TreeEntry<'_>| e.kind() == Some(ObjectType::Tree);
            if let Some(name) = after.or(before).and_then(|e| e.name().ok()) {
                pairs.push((
                    before.map(|e| (e.id(), is_tree(e))),
                    after.map(|e| (e.id(), is_tree(e))),
                    format!("{prefix}{name}"),
                ));
            }
        });
        for (before, after, path) in pairs {
            let sub = |side: Side| -> Result<Option<git2::Tree<'_>>, GitError> {
                Ok(match side {
                    Some((id, true)) => Some(self.repo.find_tree(id)?),
                    _ => None,
                })
            };
            let (a, b) = (sub(before)?, sub(after)?);
            if a.is_some() || b.is_some() {
                self.changed_under(a.as_ref(), b.as_ref(), &format!("{path}/"), out)?;
            }
            // A file on either side (or a tree turned into a file) is a change of this path.
            if before.is_some_and(|(_, t)| !t) || after.is_some_and(|(_, t)| !t) {
                out.push(path);
            }
        }
        Ok(())
    }
}

/// Walks two trees' entries together in git's order (a tree's name sorts as if it ended in
/// `/`) and calls `changed` with each pair that differs: `(None, Some)` added, `(Some, None)`
/// removed, `(Some, Some)` changed in id or mode.
fn merge_entries<'t>(
    old: Option<&'t git2::Tree<'_>>,
    new: Option<&'t git2::Tree<'_>>,
    mut changed: impl FnMut(Option<&git2::TreeEntry<'t>>, Option<&git2::TreeEntry<'t>>),
) {
    fn key<'e>(e: &'e git2::TreeEntry<'_>) -> (&'e [u8], u8) {
        let dir = e.kind() == Some(ObjectType::Tree);
        (e.name_bytes(), if dir { b'/' } else { 0 })
    }
    /// git's order: byte-wise by name, a tree's name continuing with `/`.
    fn order(a: &git2::TreeEntry<'_>, b: &git2::TreeEntry<'_>) -> std::cmp::Ordering {
        let ((na, ta), (nb, tb)) = (key(a), key(b));
        let common = na.len().min(nb.len());
        na[..common].cmp(&nb[..common]).then_with(|| {
            let next = |n: &[u8], t: u8| n.get(common).copied().unwrap_or(t);
            next(na, ta).cmp(&next(nb, tb))
        })
    }
    let (a_len, b_len) = (
        old.map_or(0, git2::Tree::len),
        new.map_or(0, git2::Tree::len),
    );
    let (mut i, mut j) = (0, 0);
    while i < a_len || j < b_len {
        let a = old.and_then(|t| t.get(i));
        let b = new.and_then(|t| t.get(j));
        match (&a, &b) {
            (Some(x), Some(y)) => match order(x, y) {
                std::cmp::Ordering::Equal => {
                    if x.id() != y.id() || x.filemode() != y.filemode() {
                        changed(a.as_ref(), b.as_ref());
                    }
                    i += 1;
                    j += 1;
                }
                std::cmp::Ordering::Less => {
                    changed(a.as_ref(), None);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    changed(None, b.as_ref());
                    j += 1;
                }
            },
            (Some(_), None) => {
                changed(a.as_ref(), None);
                i += 1;
            }
            (None, Some(_)) => {
                changed(None, b.as_ref());
                j += 1;
            }
            (None, None) => break,
        }
    }
}
