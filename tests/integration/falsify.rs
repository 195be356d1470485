//! Falsifying the record as a contributor with push access to the default branch could, each
//! way an adversarial review found first to pass `rotor verify` or `rotor evidence`: a rollback
//! erased by deleting and re-adding rotor's earlier version, a back-dated block, a tampered
//! rollback in an evidence period, removed records, records forged without audit events, and a
//! moved `artifacts_dir`. Each is now a finding, naming the commit where there is one.

use std::fs;

use serde_json::{Value, json};

use crate::plan::git;
use crate::verify::{Record, Style, kinds};

/// rotor's commit identity in the test config (`commit.author`).
const ROTOR: (&str, &str) = ("rotor", "rotor@users.noreply.github.com");

pub(crate) fn one_rotation(n: usize) -> Record {
    let mut r = Record::new(n);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    r
}

pub(crate) const MARKER: &str = "<!-- rotor:artifact ";

/// The text above the machine-readable block, and the block as JSON.
pub(crate) fn split(text: &str) -> (String, Value) {
    let at = text.find(MARKER).expect("block");
    let line = text[at..].trim_end();
    let json = line
        .strip_prefix(MARKER)
        .and_then(|l| l.strip_suffix("-->"))
        .expect("block line")
        .trim();
    (
        text[..at].to_owned(),
        serde_json::from_str(json).expect("json"),
    )
}

/// `above` followed by `meta` as rotor writes its block.
pub(crate) fn join(above: &str, meta: &Value) -> String {
    let json = serde_json::to_string(meta)
        .expect("json")
        .replace('>', "\\u003e")
        .replace('<', "\\u003c");
    format!("{above}{MARKER}{json} -->\n")
}

/// `rotor evidence --format json ARGS` in a scheduled workspace (online): code, document, stderr.
pub(crate) fn evidence(r: &Record, args: &[&str]) -> (Option<i32>, Value, String) {
    let ws = r.workspace("schedule");
    let (code, stdout, stderr) = r
        .rotor_in(&ws)
        .args(["evidence", "--format", "json"])
        .args(args)
        .run_unchecked();
    let doc = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (code, doc, stderr)
}

pub(crate) fn clean(r: &Record, args: &[&str]) {
    let (code, report, stderr) = r.verify(args);
    assert_eq!(
        (code, kinds(&report)),
        (Some(0), Vec::new()),
        "{report:#}\n{stderr}"
    );
}

/// A rollback erased: the artifact deleted in one commit, the version rotor committed before
/// the rollback re-added in another, both in mallory's own name. Offline too.
#[test]
fn a_rollback_erased_by_deleting_and_re_adding_rotors_first_version_is_tampered() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    // `show` trims the last newline; the block line ends with one.
    let before_rollback = format!("{}\n", r.show("main", &path));
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    clean(&r, &[]);

    r.push("main", &[(&path, None)], "mallory", "Move the record");
    let readd = r.push(
        "main",
        &[(&path, Some(&before_rollback))],
        "mallory",
        "Restore the record",
    );
    let (code, report, _) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        kinds(&report),
        [("tampered".to_owned(), path.clone(), None)],
        "{report:#}"
    );
    assert_eq!(report["findings"][0]["commit"], readd.as_str());
    assert!(
        report["findings"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("brought back") && m.contains("other than it was")),
        "{report:#}"
    );
}

/// A block back-dated out of the range: the range is rotor's own date, so `--since` and the
/// evidence period still hold the rotation and its finding.
#[test]
fn a_back_dated_block_stays_in_its_real_period() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let (above, mut meta) = split(&r.show("main", &path));
    meta["finished_at"] = json!("2020-01-01T00:00:00Z");
    meta["result"] = json!("failed");
    meta["refs"][0]["result"] = json!("failed");
    let above = above.replace("- Result: success", "- Result: failed");
    let sha = r.push(
        "main",
        &[(&path, Some(&join(&above, &meta)))],
        "mallory",
        "Fix",
    );
    let (code, report, stderr) = r.verify(&["--offline", "--since", "2021-01-01"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["artifacts"], 1);
    assert_eq!(kinds(&report)[0].0, "tampered", "{report:#}");
    assert_eq!(report["findings"][0]["commit"], sha.as_str());
    let (code, doc, stderr) = evidence(&r, &["--since", "2021-01-01"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        doc["rotations"].as_array().map(Vec::len),
        Some(1),
        "{doc:#}"
    );
    assert!(
        doc["verify"]["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["kind"] == "tampered")),
        "{doc:#}"
    );
}

/// Evidence lists a rotation because its rollback finished in the period; the rollback's
/// edited reason comes with its finding, although the rotation finished before the period.
#[test]
fn evidence_of_a_period_holding_a_rollback_carries_its_tamper() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    let (above, mut meta) = split(&r.show("main", &path));
    let rotated = meta["finished_at"].as_str().expect("finished").to_owned();
    let rolled = meta["rollbacks"][0]["finished_at"]
        .as_str()
        .expect("rb")
        .to_owned();
    assert!(rolled > rotated, "{rotated} {rolled}");
    let reason = meta["rollbacks"][0]["reason"]
        .as_str()
        .expect("reason")
        .to_owned();
    meta["rollbacks"][0]["reason"] = json!("scheduled drill, no incident");
    let above = above.replace(&reason, "scheduled drill, no incident");
    r.push(
        "main",
        &[(&path, Some(&join(&above, &meta)))],
        "mallory",
        "Clarify",
    );
    let (code, doc, stderr) = evidence(&r, &["--since", rolled.as_str()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        doc["rotations"].as_array().map(Vec::len),
        Some(1),
        "{doc:#}"
    );
    assert!(
        doc["verify"]["findings"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["kind"] == "tampered")),
        "{doc:#}"
    );
}

/// The latest record of a ref removed (an automatic rollback, an incident): a record is never
/// removed, online or offline, and the evidence says so.
#[test]
fn removing_the_latest_record_of_a_ref_is_tampered() {
    let mut r = Record::new(1);
    r.app_knob("bad_versions", json!(["2"]));
    assert_eq!(r.apply(7, 1)["result"], "rolled_back");
    r.merge(7, Style::Merge);
    r.app_knob("bad_versions", json!([]));
    clean(&r, &[]);
    let path = r.artifact(7);
    let sha = r.push("main", &[(&path, None)], "mallory", "Remove a noisy record");
    for args in [&[][..], &["--offline"][..]] {
        let (code, report, stderr) = r.verify(args);
        assert_eq!(
            (code, kinds(&report)),
            (Some(1), vec![("tampered".to_owned(), path.clone(), None)]),
            "{args:?}: {report:#}\n{stderr}"
        );
        assert_eq!(report["findings"][0]["commit"], sha.as_str());
    }
    let (code, doc, _) = evidence(&r, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["verify"]["findings"][0]["kind"], "tampered", "{doc:#}");
}

/// Every record removed at once: each removal is its own finding.
#[test]
fn removing_every_record_at_once_is_tampered_for_each() {
    let mut r = one_rotation(1);
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Merge);
    clean(&r, &[]);
    let (a, b) = (r.artifact(7), r.artifact(8));
    r.push(
        "main",
        &[(&a, None), (&b, None)],
        "mallory",
        "Archive the records",
    );
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let found: Vec<(String, String)> = kinds(&report).into_iter().map(|(k, p, _)| (k, p)).collect();
    assert!(found.contains(&("tampered".to_owned(), a)), "{report:#}");
    assert!(found.contains(&("tampered".to_owned(), b)), "{report:#}");
}

/// A whole record forged in rotor's name to explain a pointer moved by hand, citing no audit
/// event; then the same in mallory's own name after naming herself `commit.author` for one
/// commit. rotor never records a rotation without the application's event, so online each is
/// `audit_missing`. (Offline, git alone cannot tell an unsigned commit in rotor's name from
/// rotor's: the docs say so.)
#[test]
fn a_record_forged_without_audit_events_is_audit_missing_online() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let forge = |n: u64, from: &str, to: &str| -> (String, String) {
        let text = r.show("main", &r.artifact(7));
        let old_id = r.id(7);
        let new_id = format!("{old_id}-{n}");
        let (above, mut meta) = split(&text);
        let above = above
            .replace(&old_id, &new_id)
            .replace("1 → 2", &format!("{from} → {to}"));
        meta["rotation_id"] = json!(new_id);
        meta["pull_request"] = json!(n);
        meta["finished_at"] =
            json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        meta["refs"][0]["from"] = json!(from);
        meta["refs"][0]["to"] = json!(to);
        meta["refs"][0]["pointer"] = json!(to);
        meta["refs"][0]["audit_events"] = json!([]);
        (
            format!("docs/security/rotations/{new_id}.md"),
            join(&above, &meta),
        )
    };
    let (forged_path, forged) = forge(99, "2", "3");
    r.push_as(
        "main",
        &[(&forged_path, Some(&forged))],
        ROTOR,
        &format!("Record rotation {forged_path}"),
    );
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert!(
        kinds(&report).contains(&(
            "audit_missing".to_owned(),
            forged_path.clone(),
            Some(r.s.names[0].clone())
        )),
        "{report:#}"
    );

    std::thread::sleep(std::time::Duration::from_secs(1));
    let config = format!("{}\n", r.show("main", ".github/rotor.yml"));
    let hers = format!("{config}commit: {{author: \"mallory <mallory@example.com>\"}}\n");
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&hers))],
        "mallory",
        "Bot identity",
    );
    let (path, forged) = forge(98, "3", "3");
    r.push(
        "main",
        &[(&path, Some(&forged))],
        "mallory",
        "Backfill a record",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "mallory",
        "Revert bot identity",
    );
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert!(
        kinds(&report)
            .iter()
            .any(|(k, p, _)| k == "audit_missing" && *p == path),
        "{report:#}"
    );
}

/// `artifacts_dir` moved in the config: every directory any version of the config named is
/// still verified, so the tampered record stays in view.
#[test]
fn moving_artifacts_dir_hides_nothing() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let edited = r
        .show("main", &path)
        .replace("- Result: success", "- Result: failed");
    let sha = r.push(
        "main",
        &[(&path, Some(&edited))],
        "mallory",
        "Fix the record",
    );
    let config = format!("{}\n", r.show("main", ".github/rotor.yml"));
    let moved = format!("{config}artifacts_dir: docs/security/rotation-records\n");
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&moved))],
        "mallory",
        "Rename the records folder",
    );
    let (code, report, stderr) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    assert_eq!(report["artifacts"], 1);
    assert!(
        report["findings"].as_array().is_some_and(|f| f
            .iter()
            .any(|f| f["kind"] == "tampered" && f["commit"] == sha.as_str())),
        "{report:#}"
    );
}

/// Caught: an evil merge (the artifact changed in the merge commit itself), a rename, and a
/// copy under another id.
#[test]
fn caught_evil_merge_rename_and_copy() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let work = r.s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "side", "origin/main"]);
    fs::write(work.join("NOTES.md"), "notes\n").expect("write");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "notes"]);
    git(&work, &["checkout", "-q", "-B", "main", "origin/main"]);
    git(&work, &["merge", "-q", "--no-ff", "--no-commit", "side"]);
    let edited = r
        .show("main", &path)
        .replace("- Result: success", "- Result: failed");
    fs::write(work.join(&path), &edited).expect("write");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "Merge side"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    crate::checkout::refresh(&r.origin());
    let (code, report, _) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1));
    assert!(
        kinds(&report).iter().any(|k| k.0 == "tampered"),
        "{report:#}"
    );

    let r = one_rotation(1);
    let path = r.artifact(7);
    let text = r.show("main", &path);
    let renamed = path.replace(".md", "-x.md");
    r.push(
        "main",
        &[(&path, None), (&renamed, Some(&text))],
        "mallory",
        "Rename",
    );
    let (code, report, _) = r.verify(&["--offline"]);
    assert_eq!(code, Some(1));
    let k = kinds(&report);
    assert!(
        k.iter().any(|k| k.0 == "tampered" && k.1 == renamed),
        "{report:#}"
    );
}
