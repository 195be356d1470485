//! The artifacts in the checkout, read back as a ledger: for each ref, what its latest rotation
//! left the pointer on (`drift`) and when it last rotated successfully (`report`).
//!
//! Both commands run on a schedule from the default branch's checkout, so the working tree is
//! the default branch; they read nothing from a pull request.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::artifact::{self, ArtifactMeta, MetaRef};
use crate::backend::Rejections;
use crate::config::Config;
use crate::context::Context;
use crate::error::Error;

/// One ref as one artifact records it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// The artifact's path, relative to the repository.
    pub(crate) path: String,
    /// The rotation id.
    pub(crate) rotation_id: String,
    /// When the rotation finished.
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// When rotor last wrote the artifact (the rollback, if any, else the rotation).
    pub(crate) updated_at: Option<DateTime<Utc>>,
    /// The ref's record.
    pub(crate) record: MetaRef,
}

impl Entry {
    /// What the pointer should designate according to this artifact.
    pub(crate) fn expected(&self) -> &str {
        match &self.record.pointer {
            Some(p) => p,
            None if matches!(self.record.result.as_str(), "success" | "failed") => &self.record.to,
            None => &self.record.from,
        }
    }

    /// Whether this artifact records a successful rotation of the ref that still stands.
    pub(crate) fn succeeded(&self) -> bool {
        self.record.result == "success" && self.record.rollback.as_deref() != Some("rolled_back")
    }
}

/// Every ref's entries from every artifact under `artifacts_dir`, the one rotor wrote last
/// at the end.
pub(crate) fn load(cx: &Context, config: &Config) -> Result<BTreeMap<String, Vec<Entry>>, Error> {
    let mut ledger: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for (rel, text) in artifact_files(cx, config)? {
        let meta = match artifact::read_meta(&text) {
            Ok(Some(meta)) => meta,
            Ok(None) => {
                cx.output
                    .warn(&format!("{rel}: no machine-readable part; skipped"));
                continue;
            }
            Err(e) => {
                cx.output.annotate_warning(&format!(
                    "{rel}: not trusted, {e}; skipped (rotor verify reports it)"
                ));
                continue;
            }
        };
        add(&mut ledger, &rel, meta);
    }
    for entries in ledger.values_mut() {
        entries.sort_by(|a, b| (a.updated_at, &a.rotation_id).cmp(&(b.updated_at, &b.rotation_id)));
    }
    Ok(ledger)
}

fn add(ledger: &mut BTreeMap<String, Vec<Entry>>, path: &str, meta: ArtifactMeta) {
    let time = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let finished_at = time(&meta.finished_at);
    let updated_at = time(&meta.rolled_back_at).or(finished_at);
    // A ref a halted rollout skipped was never touched: the record says nothing of its pointer
    // that an earlier record does not.
    for record in meta.refs.into_iter().filter(|r| r.result != "skipped") {
        ledger
            .entry(record.secret_ref.clone())
            .or_default()
            .push(Entry {
                path: path.to_owned(),
                rotation_id: meta.rotation_id.clone(),
                finished_at,
                updated_at,
                record,
            });
    }
}

/// Each `.md` file directly in the working tree's `artifacts_dir`, in name order: its path
/// relative to the repository and its text. No directory, no file.
pub(crate) fn artifact_files(
    cx: &Context,
    config: &Config,
) -> Result<Vec<(String, String)>, Error> {
    let dir = cx.repo.join(config.artifacts_dir.as_str());
    let mut files: Vec<_> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "md"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::Output(e)),
    };
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let rel = format!(
                "{}/{}",
                config.artifacts_dir.as_str(),
                file.file_name().unwrap_or_default().to_string_lossy()
            );
            Ok((rel, std::fs::read_to_string(&file).map_err(Error::Output)?))
        })
        .collect()
}

/// Adds to `out` the versions `meta` records as rejected: each ref's `to` where the rotation
/// rolled back in its run, or a dispatched rollback moved it back. With the marker's, these
/// are a ref's rejected versions: erasing a marker in the backend forgets none of them.
pub(crate) fn note_rejections(meta: &ArtifactMeta, out: &mut Rejections) {
    for r in &meta.refs {
        let dispatched = meta.rollbacks.iter().any(|rb| {
            rb.refs
                .iter()
                .any(|x| x.secret_ref == r.secret_ref && x.result == "rolled_back")
        });
        let rejected =
            r.result == "rolled_back" || r.rollback.as_deref() == Some("rolled_back") || dispatched;
        let Ok(to) = crate::ids::VersionId::parse(&r.to) else {
            continue;
        };
        if rejected {
            let versions = out.entry(r.secret_ref.clone()).or_default();
            if !versions.iter().any(|(v, _)| v == &to) {
                versions.push((to, meta.rotation_id.clone()));
            }
        }
    }
}

/// The rejected versions the working tree's record holds (`rotor new`, on the default
/// branch's checkout).
pub(crate) fn rejections(cx: &Context, config: &Config) -> Result<Rejections, Error> {
    let mut out = Rejections::new();
    for (_, text) in artifact_files(cx, config)? {
        if let Ok(Some(meta)) = artifact::read_meta(&text) {
            note_rejections(&meta, &mut out);
        }
    }
    Ok(out)
}

/// The rejected versions the record holds at commit `sha` (the default branch's tip that
/// `plan` and `apply` trust), read from git's objects.
pub(crate) fn rejections_at(
    git: &crate::gitops::GitRepo,
    sha: &str,
    dir: &str,
) -> Result<Rejections, Error> {
    let mut out = Rejections::new();
    for name in git.list_dir(sha, dir)? {
        if !name.ends_with(".md") {
            continue;
        }
        if let Some(bytes) = git.read_file(sha, &format!("{dir}/{name}"))?
            && let Ok(Some(meta)) = artifact::read_meta(&String::from_utf8_lossy(&bytes))
        {
            note_rejections(&meta, &mut out);
        }
    }
    Ok(out)
}
