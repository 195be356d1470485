//! Proving the record (`rotor verify`): each artifact against git's history (`tampered`),
//! each ref's chain of versions (`gap`), the live pointers (`drift`), the application's audit
//! log (`audit_missing`, `audit_mismatch`), the artifact against itself (`inconsistent`), and
//! the approvals break-glass rotations still owe (`approval_owed`).
//!
//! The checks are pure functions over what [`history`](super::history) read and what the
//! backends and the application answered, so each is tested here without git or a server;
//! [`check`] gathers the inputs and runs them. Nothing here writes anywhere.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

mod audit;
mod consistency;
mod continuity;
mod live;
mod owed;
mod provenance;

use audit::audit_log;
pub(crate) use audit::{audit, citations, cited_twice, ledger, uncited};
pub(crate) use consistency::consistency;
pub(crate) use continuity::continuity;
pub(crate) use live::drift;
use live::live_pointers;
pub(crate) use provenance::{provenance, removals};

use super::history::{Change, History};
use crate::artifact::{self, ArtifactMeta, MetaError};
use crate::error::Error;
use crate::outcome::RefFailure;
use crate::secret::SecretString;

/// The kind of a finding; the names are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An artifact differs from what rotor committed, or a record rotor committed was removed.
    Tampered,
    /// A ref's chain of versions is broken between two records.
    Gap,
    /// A ref's live pointer is not where its last record left it.
    Drift,
    /// A cited audit event is not in the application's log, or a rotated or rolled-back ref
    /// cites none.
    AuditMissing,
    /// A cited audit event records another ref, rotation, operation or version, another actor
    /// or another time than the record; or the log shows a rollback the record does not.
    AuditMismatch,
    /// An event in the application's log names a rotation the record holds, but no record
    /// cites it.
    AuditUnrecorded,
    /// The artifact's visible fields disagree with its machine-readable block.
    Inconsistent,
    /// A break-glass rotation no second `internal_admin` has countersigned yet.
    ApprovalOwed,
}

impl Kind {
    /// The stable name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Tampered => "tampered",
            Self::Gap => "gap",
            Self::Drift => "drift",
            Self::AuditMissing => "audit_missing",
            Self::AuditMismatch => "audit_mismatch",
            Self::AuditUnrecorded => "audit_unrecorded",
            Self::Inconsistent => "inconsistent",
            Self::ApprovalOwed => "approval_owed",
        }
    }
}

/// One finding, in the JSON shape of `rotor verify --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: Kind,
    /// The artifact concerned (for `gap`, the later one).
    pub artifact: String,
    /// For `gap`, the earlier artifact.
    pub previous_artifact: Option<String>,
    /// The ref concerned, when one is.
    #[serde(rename = "ref")]
    pub secret_ref: Option<String>,
    /// The commit that brought the difference in, when one did.
    pub commit: Option<String>,
    /// That commit's author, `Name <email>`.
    pub author: Option<String>,
    /// What is wrong, in words.
    pub message: String,
    /// Why a commit in rotor's name is not rotor's (`tampered`): `unsigned` or
    /// `bad_signature`, where `commit.via: api` was in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// For `approval_owed`: whether `break_glass.countersign_within` has passed (always
    /// present for that kind, absent for the others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
    /// When the commit it names was made: a change made in a period is reported for that
    /// period, whatever the age of the record it changed.
    #[serde(skip)]
    pub(crate) at: Option<DateTime<Utc>>,
}

impl Finding {
    fn new(kind: Kind, artifact: &str, message: String) -> Self {
        Self {
            kind,
            artifact: artifact.to_owned(),
            previous_artifact: None,
            secret_ref: None,
            commit: None,
            author: None,
            message,
            reason: None,
            overdue: None,
            at: None,
        }
    }

    /// Says why a commit in rotor's name is not rotor's.
    fn because(mut self, problem: &crate::record::signing::SigProblem) -> Self {
        self.reason = Some(problem.reason());
        self
    }

    /// Names the commit that wrote the change (for a merge, the merged commit that made it).
    fn by(self, change: &Change) -> Self {
        self.naming(&change.by)
    }

    /// Names `commit` and its author, in the fields and in the message a reader sees (a log
    /// line, an annotation).
    fn naming(mut self, commit: &crate::gitops::CommitInfo) -> Self {
        let author = format!("{} <{}>", commit.author.name, commit.author.email);
        self.message = format!(
            "{} (commit {}, authored by {author})",
            self.message,
            short(&commit.sha)
        );
        self.commit = Some(commit.sha.clone());
        self.author = Some(author);
        self.at = DateTime::from_timestamp(commit.time, 0);
        self
    }

    fn for_ref(mut self, r: &str) -> Self {
        self.secret_ref = Some(r.to_owned());
        self
    }
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// An artifact as the checks see it: where it is, what it says, and what provenance found.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Its path.
    pub(crate) path: String,
    /// Its text at the default branch's tip; `None` once removed.
    pub(crate) text: Option<String>,
    /// Its machine-readable block (of the last version, when removed).
    pub(crate) meta: Result<Option<ArtifactMeta>, MetaError>,
    /// When its rotation finished, as rotor recorded it.
    pub(crate) finished_at: Option<DateTime<Utc>>,
    /// When its rotation and each of its rollbacks finished, as rotor recorded them: what
    /// places it in a period.
    pub(crate) moments: Vec<DateTime<Utc>>,
    /// rotor's own commit of it.
    pub(crate) origin: Option<String>,
    /// The change that removed it.
    pub(crate) removed: Option<Change>,
    /// The machine-readable block of its last version that is rotor's own: what a later hand
    /// cannot add to (a countersignature written by hand is not one).
    pub(crate) trusted: Option<ArtifactMeta>,
    /// Where it first came onto the default branch, in first-parent order: the order of
    /// records whose times are equal (times are kept to the second).
    pub(crate) introduced: usize,
}

impl Entry {
    pub(crate) fn meta(&self) -> Option<&ArtifactMeta> {
        self.meta.as_ref().ok().and_then(Option::as_ref)
    }

    /// Its block as rotor's own version has it, with the countersignature only rotor's commit
    /// gave: with no version of rotor's (the artifact is `tampered`), the block it shows, and no
    /// countersignature (one written by hand is not one).
    pub(crate) fn rotors_record(
        &self,
    ) -> Option<(&ArtifactMeta, Option<&crate::artifact::MetaCountersigned>)> {
        match (&self.trusted, self.meta()) {
            (Some(t), _) => Some((t, t.countersigned.as_ref())),
            (None, Some(m)) => Some((m, None)),
            (None, None) => None,
        }
    }

    /// Whether it is on the default branch now.
    pub(crate) fn present(&self) -> bool {
        self.text.is_some()
    }
}

pub(crate) fn time(t: Option<&str>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// Whether the checks reached the backends and the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Live state and audit checked too.
    Online,
    /// git only.
    Offline,
}

/// What to check.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The config's path relative to the repository.
    pub(crate) config_rel: String,
    /// Report findings only for artifacts finished on or after this.
    pub(crate) since: Option<DateTime<Utc>>,
    /// ...and on or before this.
    pub(crate) until: Option<DateTime<Utc>>,
    /// Whether to read the backends and the application.
    pub(crate) mode: Mode,
    /// The token git fetches with.
    pub(crate) token: Option<SecretString>,
}

/// The result of the checks.
#[derive(Debug)]
pub(crate) struct Verified {
    /// The history read.
    pub(crate) history: History,
    /// Every artifact the default branch has or had, by path.
    pub(crate) entries: Vec<Entry>,
    /// The findings for artifacts in the range, in a stable order.
    pub(crate) findings: Vec<Finding>,
    /// Artifacts on the default branch in the range.
    pub(crate) artifacts: usize,
    /// Distinct refs they record.
    pub(crate) refs: usize,
    /// Whether the live checks ran.
    pub(crate) mode: Mode,
    /// Refs whose live state could not be read, with why: the run cannot vouch for them.
    pub(crate) failures: Vec<(String, RefFailure)>,
}

/// When a record's rotation and each of its rollbacks finished.
pub(crate) fn moments(meta: &ArtifactMeta) -> Vec<DateTime<Utc>> {
    std::iter::once(meta.finished_at.as_deref())
        .chain(
            meta.rollbacks
                .iter()
                .map(|rb| Some(rb.finished_at.as_str())),
        )
        .chain(std::iter::once(meta.rolled_back_at.as_deref()))
        .filter_map(time)
        .collect()
}

impl Entry {
    /// Whether its rotation or one of its rollbacks finished in the range, by rotor's own
    /// record of when (a later hand cannot move it out).
    pub(crate) fn in_range(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> bool {
        // An artifact rotor never wrote, or whose time cannot be read, is always in range: its
        // problem is reported whatever the period.
        self.moments.is_empty()
            || self
                .moments
                .iter()
                .any(|t| since.is_none_or(|s| *t >= s) && until.is_none_or(|u| *t <= u))
    }
}

/// Every check, reading the history from the checkout at `repo` (and, online, each ref's
/// state and the application's audit log). Logs through `log`.
pub(crate) async fn check(
    repo: &std::path::Path,
    opts: &Options,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Verified, Error> {
    let history = super::history::load(repo, &opts.config_rel, opts.token.clone(), log)?;
    let mut entries = Vec::new();
    let mut findings = Vec::new();
    for a in history.artifacts.values() {
        if a.changes.is_empty() || !a.is_artifact() {
            continue;
        }
        let p = provenance(a, &history.judge);
        findings.extend(p.findings);
        let text = a.current().map(str::to_owned);
        let last = a
            .changes
            .iter()
            .rev()
            .find_map(|c| c.text.as_deref())
            .unwrap_or("");
        let meta = artifact::read_meta(last);
        // Dated by rotor's own version: a hand that back-dates a block moves nothing.
        let trusted = p
            .trusted_text
            .as_deref()
            .and_then(|t| artifact::read_meta(t).ok().flatten());
        let dated = trusted
            .as_ref()
            .or_else(|| meta.as_ref().ok().and_then(Option::as_ref));
        let finished_at = dated.and_then(|m| time(m.finished_at.as_deref()));
        // Only rotor's own version places an artifact in a period: one rotor never wrote is in
        // every period, whatever date it claims.
        let moments = trusted.as_ref().map(moments).unwrap_or_default();
        entries.push(Entry {
            path: a.path.clone(),
            text,
            meta,
            finished_at,
            moments,
            origin: p.origin,
            removed: p.removed.filter(|_| a.current().is_none()),
            trusted,
            introduced: a.changes.first().map_or(0, |c| c.seq),
        });
    }
    findings.extend(removals(&entries));
    for e in entries.iter().filter(|e| e.present()) {
        match &e.meta {
            Ok(Some(meta)) => {
                findings.extend(consistency(&e.path, e.text.as_deref().unwrap_or(""), meta))
            }
            Ok(None) => findings.push(Finding::new(
                Kind::Inconsistent,
                &e.path,
                format!(
                    "{}: it has no machine-readable block, so nothing it shows can be checked",
                    e.path
                ),
            )),
            Err(err) => findings.push(Finding::new(
                Kind::Inconsistent,
                &e.path,
                format!("{}: {err}", e.path),
            )),
        }
    }
    findings.extend(continuity(&entries));
    let now = opts.until.unwrap_or_else(Utc::now);
    findings.extend(owed::approvals_owed(&entries, &history.config, now));
    let mut failures = Vec::new();
    // Artifacts whose findings the period reports besides its own (online: the records its
    // chains lean on).
    let mut reported: BTreeSet<String> = BTreeSet::new();
    if opts.mode == Mode::Online {
        let (live, failed) = live_pointers(&history.config, &entries).await;
        failures = failed;
        findings.extend(drift(&entries, &live));
        let mut in_range: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.in_range(opts.since, opts.until))
            .map(|e| e.path.as_str())
            .collect();
        // A record out of the period that an in-range record's chain leans on (or a ref's last
        // record) is checked, and reported, with the period: one dated just before it could
        // otherwise bridge a gap inside it unchecked.
        let own = in_range.clone();
        let leaned = continuity::leaned_on(&entries, &in_range);
        in_range.extend(leaned);
        let listed = || {
            entries
                .iter()
                .filter(|e| e.present() && in_range.contains(e.path.as_str()))
        };
        findings.extend(uncited(listed()));
        // Citations are unique across the whole record; the range filter below keeps the
        // findings of the period.
        let mut by_arrival: Vec<&Entry> = entries.iter().filter(|e| e.present()).collect();
        by_arrival.sort_by(|a, b| (a.introduced, &a.path).cmp(&(b.introduced, &b.path)));
        findings.extend(cited_twice(&citations(by_arrival.into_iter())));
        // The events the period's own records cite are looked up; the records its chains lean
        // on are held to citing theirs (above), without reading the log back to them.
        let cited = citations(
            entries
                .iter()
                .filter(|e| e.present() && own.contains(e.path.as_str())),
        );
        // Every rotation the record holds: an event made in the period may name an older one.
        let rotations: BTreeSet<&str> = entries
            .iter()
            .filter(|e| e.present())
            .filter_map(Entry::meta)
            .map(|m| m.rotation_id.as_str())
            .collect();
        if !cited.is_empty() || !rotations.is_empty() {
            let oldest = entries
                .iter()
                .filter(|e| own.contains(e.path.as_str()))
                .filter_map(|e| e.finished_at)
                .chain(opts.since)
                .min();
            let read = audit_log(&history.config, &cited, &rotations, oldest, log).await?;
            findings.extend(audit(&cited, &read.found));
            let present = entries.iter().filter(|e| e.present());
            findings.extend(ledger(present, &read.recorded));
        }
        reported.extend(in_range.iter().map(|p| (*p).to_owned()));
    }
    let by_path: HashMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let in_period =
        |t: DateTime<Utc>| opts.since.is_none_or(|s| t >= s) && opts.until.is_none_or(|u| t <= u);
    // Drift and an approval still owed are the present, in every period; a finding that names
    // a commit or an event made in the period belongs to it.
    findings.retain(|f| {
        matches!(f.kind, Kind::Drift | Kind::ApprovalOwed)
            || reported.contains(&f.artifact)
            || by_path
                .get(f.artifact.as_str())
                .is_none_or(|e| e.in_range(opts.since, opts.until))
            || f.at.is_some_and(in_period)
    });
    findings.sort_by(|a, b| {
        (&a.artifact, a.kind, &a.secret_ref, &a.message).cmp(&(
            &b.artifact,
            b.kind,
            &b.secret_ref,
            &b.message,
        ))
    });
    findings.dedup();
    let counted: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.present() && e.in_range(opts.since, opts.until))
        .collect();
    let refs: BTreeSet<&str> = counted
        .iter()
        .filter_map(|e| e.meta())
        .flat_map(|m| m.refs.iter().map(|r| r.secret_ref.as_str()))
        .collect();
    Ok(Verified {
        artifacts: counted.len(),
        refs: refs.len(),
        history,
        entries,
        findings,
        mode: opts.mode,
        failures,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::continuity::{continuity, last_records};
    use super::provenance::{body, provenance, removals, section_appended};
    use super::*;
    use crate::app::AuditEvent;
    use crate::artifact::{MetaEvent, MetaRef, MetaRollback, MetaRollbackRef};
    use crate::gitops::{CommitInfo, Person};
    use crate::record::history::{ArtifactHistory, Identities};

    fn commit(sha: &str, who: &str) -> CommitInfo {
        let p = Person {
            name: who.to_owned(),
            email: format!("{who}@example.com"),
        };
        CommitInfo {
            sha: sha.repeat(40 / sha.len()),
            author: p.clone(),
            committer: p,
            parents: vec!["0".repeat(40)],
            time: 0,
        }
    }

    pub(super) fn meta(id: &str, refs: &[(&str, &str, &str, &str)]) -> ArtifactMeta {
        ArtifactMeta {
            break_glass: None,
            countersigned: None,
            app_clock_offset_s: None,
            started_at: None,
            version: 1,
            rotation_id: id.to_owned(),
            pull_request: Some(7),
            result: Some("success".to_owned()),
            finished_at: Some("2026-11-26T02:10:06Z".to_owned()),
            refs: refs
                .iter()
                .map(|(r, from, to, result)| MetaRef {
                    secret_ref: (*r).to_owned(),
                    backend: "vault".to_owned(),
                    from: (*from).to_owned(),
                    to: (*to).to_owned(),
                    result: (*result).to_owned(),
                    pointer: Some(if *result == "success" { *to } else { *from }.to_owned()),
                    rollback: None,
                    audit_events: vec![MetaEvent {
                        id: format!("evt-{r}"),
                        operation: "rotate".to_owned(),
                    }],
                    reason: None,
                })
                .collect(),
            rolled_back: false,
            rolled_back_at: None,
            operator: Some("alice".to_owned()),
            approvals: Vec::new(),
            run_url: None,
            rollbacks: Vec::new(),
            rollout: None,
        }
    }

    /// The artifact as rotor renders it, for these records.
    fn render(m: &ArtifactMeta) -> String {
        let refs: Vec<crate::artifact::RefRecord> = m
            .refs
            .iter()
            .map(|r| crate::artifact::RefRecord {
                secret_ref: r.secret_ref.clone(),
                provider: r.secret_ref.split('.').nth(2).unwrap_or("").to_owned(),
                backend: r.backend.clone(),
                from: r.from.clone(),
                to: r.to.clone(),
                result: r.result.clone(),
                checks: "ok".to_owned(),
                audit_event_ids: r.audit_events.iter().map(|e| e.id.clone()).collect(),
                rollback_event_ids: Vec::new(),
                pointer: r.pointer.clone(),
                reason: None,
            })
            .collect();
        let a = crate::artifact::Artifact {
            break_glass: m.break_glass.clone(),
            app_clock_offset_s: None,
            started_at: None,
            rotation_id: m.rotation_id.clone(),
            date: "2026-11-26".to_owned(),
            operator: "alice".to_owned(),
            result: m.result.clone().unwrap_or_default(),
            refs,
            approvals: Vec::new(),
            pull_request: m.pull_request,
            pull_request_url: None,
            run_url: None,
            timeline: Vec::new(),
            audit_query: "https://app.example.com/q".to_owned(),
            rollback: None,
            finished_at: m.finished_at.clone().unwrap_or_default(),
            halted: None,
        };
        a.render(&crate::render::Renderer::new(Vec::new()).expect("renderer"))
            .expect("render")
    }

    fn change(c: CommitInfo, text: Option<&str>, by_rotor: bool) -> Change {
        Change {
            seq: 0,
            by: c.clone(),
            commit: c,
            by_rotor,
            api: None,
            refused: None,
            blob: text.map(|t| format!("blob-{}", t.len())),
            text: text.map(str::to_owned),
        }
    }

    fn rotor_ids() -> crate::record::history::Judge {
        let mut ids = Identities::default();
        ids.add("rotor", "rotor@example.com");
        crate::record::history::Judge {
            identities: ids,
            keys: crate::record::signing::SigningKeys::github(),
        }
    }

    pub(super) const R: &str = "tenant.acme.supabase.service_role";

    /// A rollback bob dispatched, finished `at`, with each ref at its result (citing no event).
    pub(super) fn dispatched(at: &str, refs: &[(&str, &str)]) -> MetaRollback {
        MetaRollback {
            app_clock_offset_s: None,
            started_at: None,
            operator: "bob".to_owned(),
            reason: "errors".to_owned(),
            finished_at: at.to_owned(),
            result: "rolled_back".to_owned(),
            forced: false,
            run_url: None,
            refs: refs
                .iter()
                .map(|(r, result)| MetaRollbackRef {
                    secret_ref: (*r).to_owned(),
                    result: (*result).to_owned(),
                    audit_events: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_version_rotor_committed_then_a_rollback_by_rotor_is_clean() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let mut m2 = m.clone();
        m2.rolled_back = true;
        m2.refs[0].pointer = Some("1".to_owned());
        m2.refs[0].rollback = Some("rolled_back".to_owned());
        m2.rollbacks
            .push(dispatched("2026-11-27T00:00:00Z", &[(R, "rolled_back")]));
        let section = "## Rollback\n- Date: 2026-11-27\n- Operator: bob (internal_admin)\n- Result: rolled_back\n";
        let v1 = format!("{}\n\n{section}{}", body(&v0), m2.data_block());
        assert_eq!(section_appended(&v0, &v1), Ok(()));
        let a = ArtifactHistory {
            path: "docs/security/rotations/r-1.md".to_owned(),
            changes: vec![
                change(commit("a", "alice"), Some(&v0), false),
                change(commit("b", "rotor"), Some(&v1), true),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "c".repeat(40))].into(),
            ..ArtifactHistory::default()
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings, Vec::new());
        assert_eq!(p.origin, Some("c".repeat(40)));
        // The rollback's Result and Operator lines agree with the block.
        assert_eq!(consistency(&a.path, &v1, &m2), Vec::new());
    }

    #[test]
    fn an_edit_by_anyone_else_is_tampered_and_names_the_commit_and_its_author() {
        let v0 = render(&meta("r-1", &[(R, "1", "2", "success")]));
        let v1 = v0.replace("- Result: success", "- Result: failed");
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "mallory"), Some(&v1), false),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "a".repeat(40))].into(),
            ..ArtifactHistory::default()
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings.len(), 1, "{:?}", p.findings);
        let f = &p.findings[0];
        assert_eq!(f.kind, Kind::Tampered);
        assert_eq!(f.commit.as_deref(), Some("b".repeat(40).as_str()));
        assert_eq!(f.author.as_deref(), Some("mallory <mallory@example.com>"));
        assert!(
            f.message
                .contains("\"- Result: success\" became \"- Result: failed\""),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_first_version_rotor_never_wrote_is_tampered() {
        let v0 = render(&meta("r-1", &[(R, "1", "2", "success")]));
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![change(commit("s", "alice"), Some(&v0), false)],
            rotor_blobs: [("other".to_owned(), "a".repeat(40))].into(),
            ..ArtifactHistory::default()
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.findings.len(), 1);
        assert!(
            p.findings[0]
                .message
                .contains("differs from every version rotor committed")
        );
        assert_eq!(p.origin, None);
    }

    #[test]
    fn a_fake_rollback_section_in_rotors_name_is_caught_by_its_block() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        // The section is appended but the block still records no rollback.
        let v1 = format!(
            "{}\n\n## Rollback\n- Result: rolled_back\n{}",
            body(&v0),
            m.data_block()
        );
        assert!(section_appended(&v0, &v1).is_err());
        // And text above a rollback may not change.
        let v2 = v1.replace("- Result: success", "- Result: rolled_back");
        assert!(
            section_appended(&v0, &v2)
                .expect_err("changed")
                .contains("the text above changed")
        );
    }

    pub(super) fn entry(path: &str, m: ArtifactMeta, present: bool) -> Entry {
        Entry {
            path: path.to_owned(),
            text: present.then(|| render(&m)),
            finished_at: time(m.finished_at.as_deref()),
            moments: moments(&m),
            trusted: Some(m.clone()),
            meta: Ok(Some(m)),
            origin: Some("c".repeat(40)),
            removed: None,
            introduced: 0,
        }
    }

    #[test]
    fn a_chain_with_a_hole_is_a_gap_naming_both_artifacts() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let mut b = meta("r-2", &[(R, "3", "4", "success")]);
        b.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        let mut c = meta("r-3", &[(R, "4", "5", "success")]);
        c.finished_at = Some("2026-12-02T00:00:00Z".to_owned());
        let entries = vec![
            entry("r-1.md", a, true),
            entry("r-2.md", b, true),
            entry("r-3.md", c, true),
        ];
        let gaps = continuity(&entries);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].artifact, "r-2.md");
        assert_eq!(gaps[0].previous_artifact.as_deref(), Some("r-1.md"));
        assert_eq!(gaps[0].secret_ref.as_deref(), Some(R));
        // A rotation rolled back leaves the pointer on its `from`: the next one starts there.
        let mut rb = meta("r-1", &[(R, "1", "2", "rolled_back")]);
        rb.refs[0].pointer = Some("1".to_owned());
        let mut next = meta("r-2", &[(R, "1", "3", "success")]);
        next.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        assert_eq!(
            continuity(&[entry("r-1.md", rb, true), entry("r-2.md", next, true)]),
            Vec::new()
        );
    }

    #[test]
    fn records_of_the_same_second_follow_their_chain() {
        let mut a = meta("r-b", &[(R, "2", "3", "success")]);
        let mut b = meta("r-a", &[(R, "1", "2", "success")]);
        let mut c = meta("r-c", &[(R, "3", "4", "success")]);
        for m in [&mut a, &mut b, &mut c] {
            m.finished_at = Some("2026-11-26T02:10:06Z".to_owned());
        }
        let entries = [
            entry("b.md", a, true),
            entry("a.md", b, true),
            entry("c.md", c, true),
        ];
        assert_eq!(continuity(&entries), Vec::new());
        assert_eq!(last_records(&entries)[0].1, "c.md");
        // With a real gap in the same second, the order they came onto the branch decides.
        let first = meta("r-z", &[(R, "1", "2", "success")]);
        let later = meta("r-a", &[(R, "3", "4", "success")]);
        let mut entries = [entry("z.md", first, true), entry("a.md", later, true)];
        entries[1].introduced = 5;
        let gaps = continuity(&entries);
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        assert_eq!(gaps[0].artifact, "a.md");
    }

    #[test]
    fn removing_an_artifact_with_a_later_record_is_tampered() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let mut b = meta("r-2", &[(R, "2", "3", "success")]);
        b.finished_at = Some("2026-12-01T00:00:00Z".to_owned());
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        let found = removals(&[gone, entry("r-2.md", b, true)]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, Kind::Tampered);
        assert_eq!(found[0].commit.as_deref(), Some("d".repeat(40).as_str()));
        // A later record of the same second counts when it came onto the branch later.
        let mut same = meta("r-2", &[(R, "2", "3", "success")]);
        same.finished_at = a.finished_at.clone();
        let mut later = entry("r-2.md", same, true);
        later.introduced = 3;
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        assert_eq!(removals(&[gone, later]).len(), 1);
        // The latest record removed: nothing later exists, and a record is still never removed.
        let mut gone = entry("r-1.md", a.clone(), false);
        gone.removed = Some(change(commit("d", "mallory"), None, false));
        let found = removals(&[gone]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.contains("a record is never removed"),
            "{found:?}"
        );
        assert_eq!(
            found[0].author.as_deref(),
            Some("mallory <mallory@example.com>")
        );
        // A file rotor never wrote, removed: not a record, nothing to say.
        let mut stray = entry("r-1.md", a, false);
        stray.origin = None;
        stray.removed = Some(change(commit("d", "mallory"), None, false));
        assert_eq!(removals(&[stray]), Vec::new());
    }

    #[test]
    fn drift_compares_the_pointer_with_the_last_record() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let entries = [entry("r-1.md", a, true)];
        let live = HashMap::from([(R.to_owned(), Some("2".to_owned()))]);
        assert_eq!(drift(&entries, &live), Vec::new());
        let live = HashMap::from([(R.to_owned(), Some("1".to_owned()))]);
        let d = drift(&entries, &live);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].kind, Kind::Drift);
        assert!(d[0].message.contains("designates 1"), "{}", d[0].message);
    }

    #[test]
    fn audit_events_must_exist_and_match() {
        let a = meta("r-1", &[(R, "1", "2", "success")]);
        let entries = [entry("r-1.md", a, true)];
        let cited = citations(entries.iter());
        assert_eq!(cited.len(), 1);
        let event = |r: &str, op: &str| AuditEvent {
            id: format!("evt-{R}"),
            action: "secret_ref_upserted".to_owned(),
            actor_role: "internal_admin".to_owned(),
            actor: None,
            site_id: None,
            tenant: None,
            created_at: "2026-11-26T02:10:00Z".to_owned(),
            metadata: serde_json::json!({"ref": r, "rotationId": "r-1", "operation": op}),
        };
        let log = HashMap::from([(format!("evt-{R}"), event(R, "rotate"))]);
        assert_eq!(audit(&cited, &log), Vec::new());
        let log = HashMap::from([(format!("evt-{R}"), event("tenant.x.y.z", "rollback"))]);
        let m = audit(&cited, &log);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].kind, Kind::AuditMismatch);
        assert!(
            m[0].message.contains("metadata.ref") && m[0].message.contains("metadata.operation")
        );
        let missing = audit(&cited, &HashMap::new());
        assert_eq!(missing[0].kind, Kind::AuditMissing);
    }

    #[test]
    fn a_record_brought_back_must_come_back_as_it_was_removed() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let mut rolled = m.clone();
        rolled.refs[0].rollback = Some("rolled_back".to_owned());
        rolled.refs[0].pointer = Some("1".to_owned());
        rolled.rolled_back = true;
        rolled
            .rollbacks
            .push(dispatched("2026-11-27T00:00:00Z", &[(R, "rolled_back")]));
        let v1 = format!(
            "{}\n\n## Rollback\n- Result: rolled_back\n{}",
            body(&v0),
            rolled.data_block()
        );
        let blobs: HashMap<String, String> = [
            (format!("blob-{}", v0.len()), "a".repeat(40)),
            (format!("blob-{}", v1.len()), "b".repeat(40)),
        ]
        .into();
        let history = |back: &str| ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "rotor"), Some(&v1), true),
                change(commit("d", "mallory"), None, false),
                change(commit("e", "mallory"), Some(back), false),
            ],
            rotor_blobs: blobs.clone(),
            ..ArtifactHistory::default()
        };
        // Restored exactly: the removal is undone, nothing to say.
        let p = provenance(&history(&v1), &rotor_ids());
        assert_eq!(
            (p.findings.len(), p.removed.is_none()),
            (0, true),
            "{:?}",
            p.findings
        );
        // rotor's own earlier version, which drops the rollback: tampered, naming both commits.
        let p = provenance(&history(&v0), &rotor_ids());
        assert_eq!(p.findings.len(), 1, "{:?}", p.findings);
        let f = &p.findings[0];
        assert_eq!(f.kind, Kind::Tampered);
        assert!(
            f.message
                .contains("removed by ddddddd and brought back by eeeeeee"),
            "{}",
            f.message
        );
        assert_eq!(f.author.as_deref(), Some("mallory <mallory@example.com>"));
    }

    #[test]
    fn a_rollback_section_may_move_only_the_refs_it_rolls_back_and_only_back() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let appended = |b: &ArtifactMeta| {
            format!(
                "{}\n\n## Rollback\n- Result: rolled_back\n{}",
                body(&v0),
                b.data_block()
            )
        };
        let at = "2026-11-27T00:00:00Z";
        let mut good = m.clone();
        good.rolled_back = true;
        good.refs[0].pointer = Some("1".to_owned());
        good.refs[0].rollback = Some("rolled_back".to_owned());
        good.rollbacks.push(dispatched(at, &[(R, "rolled_back")]));
        assert_eq!(section_appended(&v0, &appended(&good)), Ok(()));
        // A rollback that lists no ref cannot move one.
        let mut empty = good.clone();
        empty.rollbacks = vec![dispatched(at, &[])];
        assert!(section_appended(&v0, &appended(&empty)).is_err());
        // Nor move it anywhere but back to `from`.
        let mut elsewhere = good.clone();
        elsewhere.refs[0].pointer = Some("3".to_owned());
        assert!(section_appended(&v0, &appended(&elsewhere)).is_err());
        // A failed rollback of the ref records its result, the pointer left where it was.
        let mut failed = m.clone();
        failed.rolled_back = true;
        failed.refs[0].rollback = Some("failed".to_owned());
        failed.rollbacks.push(dispatched(at, &[(R, "failed")]));
        assert_eq!(section_appended(&v0, &appended(&failed)), Ok(()));
    }

    #[test]
    fn an_artifact_is_dated_by_rotors_own_version_not_a_later_hand() {
        let m = meta("r-1", &[(R, "1", "2", "success")]);
        let v0 = render(&m);
        let v1 = v0.replace("2026-11-26T02:10:06Z", "2020-01-01T00:00:00Z");
        assert_ne!(v0, v1);
        let a = ArtifactHistory {
            path: "p.md".to_owned(),
            changes: vec![
                change(commit("a", "rotor"), Some(&v0), true),
                change(commit("b", "mallory"), Some(&v1), false),
            ],
            rotor_blobs: [(format!("blob-{}", v0.len()), "a".repeat(40))].into(),
            ..ArtifactHistory::default()
        };
        let p = provenance(&a, &rotor_ids());
        assert_eq!(p.trusted_text.as_deref(), Some(v0.as_str()));
        // A rotation whose dispatched rollback finished in the range is in the range.
        let mut rolled = m;
        rolled
            .rollbacks
            .push(dispatched("2026-12-05T00:00:00Z", &[]));
        let e = entry("r-1.md", rolled, true);
        let day = |d: &str| time(Some(d));
        assert!(e.in_range(day("2026-12-01T00:00:00Z"), None));
        assert!(!e.in_range(day("2026-12-06T00:00:00Z"), None));
        assert!(e.in_range(None, day("2026-11-27T00:00:00Z")));
    }

    #[test]
    fn a_rotated_or_rolled_back_ref_must_cite_its_event() {
        let mut m = meta(
            "r-1",
            &[
                (R, "1", "2", "success"),
                ("tenant.b.c.d", "1", "2", "rolled_back"),
            ],
        );
        m.refs[1].audit_events[0].operation = "rollback".to_owned();
        m.started_at = Some("2026-11-26T02:09:00Z".to_owned());
        // Rolled back in the run that rotated it: the rotate event is owed too.
        let owed = uncited([entry("r-1.md", m.clone(), true)].iter());
        assert_eq!(owed.len(), 1, "{owed:#?}");
        assert!(
            owed[0].message.contains("no `rotate` audit event"),
            "{owed:#?}"
        );
        m.refs[1].audit_events.insert(
            0,
            MetaEvent {
                id: "evt-rotate-b".to_owned(),
                operation: "rotate".to_owned(),
            },
        );
        assert_eq!(
            uncited([entry("r-1.md", m.clone(), true)].iter()),
            Vec::new()
        );
        let mut forged = m.clone();
        forged.refs[0].audit_events.clear();
        forged.refs[1].audit_events[1].operation = "rotate".to_owned();
        forged
            .rollbacks
            .push(dispatched("2026-12-05T00:00:00Z", &[(R, "rolled_back")]));
        let found = uncited([entry("r-1.md", forged, true)].iter());
        let said: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(found.len(), 3, "{said:#?}");
        assert!(found.iter().all(|f| f.kind == Kind::AuditMissing));
        assert!(said[2].contains("rolled back by dispatch"), "{said:#?}");
    }

    #[test]
    fn visible_fields_must_agree_with_the_block() {
        let m = meta(
            "r-1",
            &[
                (R, "1", "2", "success"),
                ("tenant.globex.stripe.secret_key", "7", "8", "success"),
            ],
        );
        let text = render(&m);
        assert_eq!(consistency("x/r-1.md", &text, &m), Vec::new());
        let edited = text.replace("| 7 → 8 | success |", "| 7 → 9 | success |");
        let found = consistency("x/r-1.md", &edited, &m);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.iter().all(|f| f.kind == Kind::Inconsistent));
        let edited = text.replace("- Result: success", "- Result: failed");
        assert!(
            consistency("x/r-1.md", &edited, &m)[0]
                .message
                .contains("Result shows \"failed\"")
        );
        assert!(
            !consistency("x/other.md", &text, &m).is_empty(),
            "the file name is the id"
        );
    }
}
