//! Records forged or tampered in ways that aim at `rotor verify` / `rotor evidence` (beside
//! the erasures of `falsify.rs`): forged records dated out of a period, tampering committed during a
//! period on an older record, records in rotor's name that move the chain without an audit
//! event (a `failed` or unknown result, a rollback listing no ref, an event cited twice or for
//! another version), and the legitimate histories that must stay clean (a README in the
//! artifacts directory, a directory named before any artifact, a revert of a removal).

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use crate::falsify::{MARKER, clean, evidence, join, one_rotation, split};
use crate::plan::git;
use crate::verify::{Record, Style, kinds};

/// rotor's commit identity in the test config (`commit.author`).
const ROTOR: (&str, &str) = ("rotor", "rotor@users.noreply.github.com");

/// The artifact at `path` on main, with its last newline (`show` trims it).
fn text(r: &Record, path: &str) -> String {
    format!("{}\n", r.show("main", path))
}

fn work(r: &Record) -> std::path::PathBuf {
    r.s.w.dir.path().join("work")
}

/// git in `dir` as (name, email), author and committer.
pub(crate) fn git_who(dir: &Path, who: (&str, &str), args: &[&str]) -> String {
    let id = (who.0.to_owned(), who.1.to_owned());
    crate::verify::git_id(dir, args, Some(id.clone()), id)
}

const MALLORY: (&str, &str) = ("mallory", "mallory@example.com");

fn push_main(r: &Record) -> String {
    let w = work(r);
    git(&w, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    crate::checkout::refresh(&r.origin());
    git(&w, &["rev-parse", "HEAD"])
}

pub(crate) fn some_finding(r: &Record, args: &[&str]) -> Value {
    let (code, report, stderr) = r.verify(args);
    assert_eq!(code, Some(1), "{args:?}: no finding: {report:#}\n{stderr}");
    report
}

pub(crate) fn rfc(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub(crate) fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

/// A forged copy of `path`'s artifact under rotation id `<id>-<n>`, one ref moved `from` → `to`
/// with `result`, citing no audit event, finished at `finished`.
fn forge(
    r: &Record,
    path: &str,
    n: u64,
    from: &str,
    to: &str,
    result: &str,
    finished: &str,
) -> (String, String) {
    let old_id = path
        .rsplit('/')
        .next()
        .and_then(|f| f.strip_suffix(".md"))
        .expect("id")
        .to_owned();
    let new_id = format!("{old_id}-{n}");
    let forged = forge_text(&text(r, path), &new_id, n, from, to, result, finished);
    let dir = path.rsplit_once('/').expect("dir").0;
    (format!("{dir}/{new_id}.md"), forged)
}

/// A record that rotor never wrote, made from `source` (rotor's artifact of one ref): rotation
/// `new_id`, pull request `n`, the ref moved `from` → `to` with `result`, finished at
/// `finished`, citing no audit event; the visible fields follow the block.
pub(crate) fn forge_text(
    source: &str,
    new_id: &str,
    n: u64,
    from: &str,
    to: &str,
    result: &str,
    finished: &str,
) -> String {
    let (above, mut meta) = split(source);
    let old_id = meta["rotation_id"].as_str().expect("id").to_owned();
    let old_from = meta["refs"][0]["from"].as_str().expect("from").to_owned();
    let old_to = meta["refs"][0]["to"].as_str().expect("to").to_owned();
    let old_result = meta["refs"][0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    let above = above
        .replace(&old_id, new_id)
        .replace(&format!("{old_from} → {old_to}"), &format!("{from} → {to}"))
        .replace(
            &format!("- Result: {old_result}"),
            &format!("- Result: {result}"),
        );
    meta["rotation_id"] = json!(new_id);
    meta["pull_request"] = json!(n);
    meta["started_at"] = json!(finished);
    meta["finished_at"] = json!(finished);
    meta["result"] = json!(result);
    meta["refs"][0]["from"] = json!(from);
    meta["refs"][0]["to"] = json!(to);
    meta["refs"][0]["pointer"] = json!(to);
    meta["refs"][0]["result"] = json!(result);
    meta["refs"][0]["audit_events"] = json!([]);
    join(&above, &meta)
}

// ---------------------------------------------------------------------------------------------
// Ways around the record.
// ---------------------------------------------------------------------------------------------

/// A record forged in mallory's own name (not rotor's), dated between two real records but
/// before `--since`: it closes the gap the later (in-range) record shows, and its own
/// `tampered` finding is dropped because the forger's own date puts it out of the range.
#[test]
fn a_forged_record_dated_out_of_the_range_hides_a_gap_in_the_range() {
    let mut r = one_rotation(1);
    let first = r.artifact(7);
    let (_, m7) = split(&text(&r, &first));
    let t7 = at(m7["finished_at"].as_str().expect("t"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    r.provision(0);
    r.provision(0);
    r.move_by_hand(0, "3");
    r.open(8, &[0], Some("4"));
    assert_eq!(r.apply(8, 0)["refs"][0]["from"], "3");
    r.merge(8, Style::Merge);
    let since = rfc(t7 + chrono::Duration::seconds(2));
    let report = some_finding(&r, &["--offline", "--since", &since]);
    assert_eq!(kinds(&report)[0].0, "gap", "{report:#}");

    let (path, forged) = forge(
        &r,
        &first,
        99,
        "2",
        "3",
        "success",
        &rfc(t7 + chrono::Duration::seconds(1)),
    );
    r.push(
        "main",
        &[(&path, Some(&forged))],
        "mallory",
        "Backfill a missing record",
    );
    // Unbounded, the forgery is tampered.
    let report = some_finding(&r, &["--offline"]);
    assert!(
        kinds(&report)
            .iter()
            .any(|k| k.0 == "tampered" && k.1 == path),
        "{report:#}"
    );
    // Bounded: the period holds rotation #8, whose chain now looks whole.
    let report = some_finding(&r, &["--offline", "--since", &since]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// A record rotor committed before the period, removed during the period: the removal is a
/// tamper that happened in the period, yet the period's verify and evidence say nothing
/// (the finding is dated by the rotation it removed).
#[test]
fn a_record_removed_during_the_period_is_reported_for_the_period() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let since = rfc(chrono::Utc::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let sha = r.push("main", &[(&path, None)], "mallory", "Archive last quarter");
    let report = some_finding(&r, &["--offline"]);
    assert_eq!(report["findings"][0]["commit"], sha.as_str());
    let (code, report, _) = r.verify(&["--offline", "--since", &since]);
    let (ecode, doc, _) = evidence(&r, &["--since", &since]);
    assert_eq!(
        (code, ecode),
        (Some(1), Some(1)),
        "a removal committed in the period: verify {report:#}\nevidence {:#}",
        doc["verify"]
    );
}

/// rotor records a ref `failed` when the pointer moved but the audit event was not confirmed,
/// so a `failed` ref needs no event: a record forged in rotor's name (or in the name of anyone
/// a config version ever named) that explains a pointer moved by hand as a `failed` rotation
/// removes the drift, and online verify has nothing to ask the application.
#[test]
fn a_forged_failed_record_in_rotors_name_hides_a_drift_online() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let report = some_finding(&r, &[]);
    assert_eq!(kinds(&report)[0].0, "drift", "{report:#}");
    let first = r.artifact(7);
    let now = rfc(chrono::Utc::now());
    let (path, forged) = forge(&r, &first, 99, "2", "3", "failed", &now);
    r.push_as(
        "main",
        &[(&path, Some(&forged))],
        ROTOR,
        &format!("rotor: rotation {path} failed"),
    );
    let report = some_finding(&r, &[]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// The same with a result rotor never writes: any result other than `success` /
/// `rolled_back` needs no event, and `pointer` decides where the chain goes.
#[test]
fn a_forged_record_with_an_unknown_result_hides_a_drift_online() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let first = r.artifact(7);
    let now = rfc(chrono::Utc::now());
    let (path, forged) = forge(&r, &first, 98, "2", "3", "done", &now);
    r.push_as(
        "main",
        &[(&path, Some(&forged))],
        ROTOR,
        "rotor: rotation done",
    );
    let report = some_finding(&r, &[]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// A rollback appended in rotor's name with no per-ref entries (`refs: []`): rule (4) looks
/// for `rollback` events only in `rollbacks[].refs`, and `rollback_appended` does not compare
/// `refs[].pointer` / `refs[].rollback`, so the pointer the record leaves can be set anywhere.
#[test]
fn a_rollback_in_rotors_name_without_refs_moves_the_recorded_pointer_without_an_event() {
    let r = one_rotation(1);
    r.move_by_hand(0, "1");
    let report = some_finding(&r, &[]);
    assert_eq!(kinds(&report)[0].0, "drift", "{report:#}");
    let path = r.artifact(7);
    let (above, mut meta) = split(&text(&r, &path));
    let now = rfc(chrono::Utc::now());
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(now);
    meta["refs"][0]["pointer"] = json!("1");
    meta["refs"][0]["rollback"] = json!("rolled_back");
    meta["rollbacks"] = json!([{
        "operator": "bob", "reason": "errors after the rotation", "finished_at": now,
        "result": "rolled_back", "forced": false, "run_url": null, "refs": []
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Date: {}\n- Operator: bob (internal_admin)\n- Result: rolled_back\n- Reason: errors after the rotation\n",
        above.trim_end(),
        &now[..10]
    );
    let forged = join(&above, &meta);
    r.push_as("main", &[(&path, Some(&forged))], ROTOR, "rotor: rollback");
    let report = some_finding(&r, &[]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// A second rollback appended in rotor's name, citing the first (real) rollback's event:
/// each citation is checked alone, so one real event vouches for any number of rollbacks,
/// each dated where the forger likes (into another evidence period).
#[test]
fn a_second_rollback_citing_the_first_ones_event_is_caught() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    clean(&r, &[]);
    let (above, mut meta) = split(&text(&r, &path));
    let mut second = meta["rollbacks"][0].clone();
    second["finished_at"] = json!("2027-03-01T00:00:00Z");
    second["operator"] = json!("carol");
    second["reason"] = json!("quarterly drill");
    meta["rollbacks"].as_array_mut().expect("rbs").push(second);
    meta["rolled_back_at"] = json!("2027-03-01T00:00:00Z");
    let section = above
        .find("## Rollback")
        .map(|i| above[i..].to_owned())
        .expect("section")
        .replace("bob (internal_admin)", "carol (internal_admin)");
    let above = format!("{}\n\n{}", above.trim_end(), section.trim_end());
    let forged = join(&format!("{above}\n"), &meta);
    r.push_as("main", &[(&path, Some(&forged))], ROTOR, "rotor: rollback");
    let (code, report, _) = r.verify(&[]);
    let (ecode, doc, _) = evidence(&r, &["--since", "2027-01-01", "--until", "2027-06-30"]);
    assert_eq!(
        (code, ecode),
        (Some(1), Some(1)),
        "verify {report:#}\nevidence of 2027H1: rotations {:#}\nfindings {:#}",
        doc["rotations"],
        doc["verify"]
    );
}

/// Caught (expected): a forged record in rotor's name citing a real `rotate` event of another
/// rotation of the same ref is `audit_mismatch`.
#[test]
fn citing_a_real_event_of_another_rotation_is_audit_mismatch() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let first = r.artifact(7);
    let (_, m7) = split(&text(&r, &first));
    let events = m7["refs"][0]["audit_events"].clone();
    let now = rfc(chrono::Utc::now());
    let (path, forged) = forge(&r, &first, 97, "2", "3", "success", &now);
    let (above, mut meta) = split(&forged);
    meta["refs"][0]["audit_events"] = events;
    let forged = join(&above, &meta);
    r.push_as("main", &[(&path, Some(&forged))], ROTOR, "rotor: rotation");
    let report = some_finding(&r, &[]);
    assert!(
        kinds(&report)
            .iter()
            .any(|k| k.0 == "audit_mismatch" && k.1 == path),
        "{report:#}"
    );
}

/// Caught (expected): a rolled-back ref citing its rotation's real `rotate` event relabelled
/// `rollback` is `audit_mismatch`.
#[test]
fn citing_the_rotate_event_as_the_rollback_is_audit_mismatch() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    r.move_by_hand(0, "1");
    let (above, mut meta) = split(&text(&r, &path));
    let now = rfc(chrono::Utc::now());
    let rotate = meta["refs"][0]["audit_events"][0]["id"].clone();
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(now);
    meta["refs"][0]["pointer"] = json!("1");
    meta["refs"][0]["rollback"] = json!("rolled_back");
    meta["rollbacks"] = json!([{
        "operator": "bob", "reason": "errors", "finished_at": now, "result": "rolled_back",
        "forced": false, "run_url": null,
        "refs": [{"ref": r.s.names[0], "result": "rolled_back",
                  "audit_events": [{"id": rotate, "operation": "rollback"}]}]
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Operator: bob (internal_admin)\n- Result: rolled_back\n",
        above.trim_end()
    );
    r.push_as(
        "main",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: rollback",
    );
    let report = some_finding(&r, &[]);
    assert!(
        kinds(&report).iter().any(|k| k.0 == "audit_mismatch"),
        "{report:#}"
    );
}

/// Erasing a rollback by merging rotor's own pull-request head (squash-merged, so its commit
/// is not on main) over a removal: caught, but the finding names rotor's genuine commit and
/// rotor as its author instead of mallory's merge.
#[test]
fn a_rollback_erased_by_merging_rotors_pr_head_names_the_merge_not_rotor() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Squash);
    let path = r.artifact(7);
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    clean(&r, &[]);
    r.push("main", &[(&path, None)], "mallory", "Tidy");
    let w = work(&r);
    git(&w, &["fetch", "-q", "origin"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    git_who(
        &w,
        MALLORY,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge rotate",
            "origin/rotate",
        ],
    );
    let merge = push_main(&r);
    assert!(r.show("main", &path).contains("- Result: success"));
    let report = some_finding(&r, &["--offline"]);
    let f = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| {
            f["message"]
                .as_str()
                .is_some_and(|m| m.contains("brought back"))
        })
        .cloned()
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(
        (f["commit"].as_str(), f["author"].as_str()),
        (Some(merge.as_str()), Some("mallory <mallory@example.com>")),
        "{report:#}"
    );
}

/// A file named like an artifact that is briefly a directory: git's order puts the file
/// before the directory, so the commit that turns the directory back into rotor's exact
/// file reads as "added, then removed": an artifact on main is taken for removed.
#[test]
fn an_artifact_replaced_by_a_directory_and_restored_exactly_is_present() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let original = text(&r, &path);
    let w = work(&r);
    git(&w, &["fetch", "-q", "origin"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    fs::remove_file(w.join(&path)).expect("rm");
    fs::create_dir_all(w.join(&path)).expect("mkdir");
    fs::write(w.join(&path).join("a.txt"), "x\n").expect("write");
    git_who(&w, MALLORY, &["add", "-A"]);
    git_who(&w, MALLORY, &["commit", "-q", "-m", "dir"]);
    fs::remove_dir_all(w.join(&path)).expect("rmdir");
    fs::write(w.join(&path), &original).expect("write");
    git_who(&w, MALLORY, &["add", "-A"]);
    git_who(&w, MALLORY, &["commit", "-q", "-m", "file again"]);
    push_main(&r);
    assert_eq!(text(&r, &path), original);
    let (code, report, stderr) = r.verify(&["--offline"]);
    // The record is on main as rotor wrote it: it is counted, and not reported removed.
    assert_eq!(report["artifacts"], 1, "{report:#}\n{stderr}");
    assert_eq!((code, kinds(&report)), (Some(0), Vec::new()), "{report:#}");
}

/// An artifact replaced by a symlink to an edited copy: GitHub shows the target's text.
#[test]
fn an_artifact_replaced_by_a_symlink_is_tampered() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let edited = text(&r, &path).replace("- Result: success", "- Result: failed");
    let w = work(&r);
    git(&w, &["fetch", "-q", "origin"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    fs::write(w.join("docs/copy.txt"), &edited).expect("write");
    fs::remove_file(w.join(&path)).expect("rm");
    std::os::unix::fs::symlink("../../copy.txt", w.join(&path)).expect("symlink");
    git_who(&w, MALLORY, &["add", "-A"]);
    git_who(&w, MALLORY, &["commit", "-q", "-m", "link"]);
    push_main(&r);
    let report = some_finding(&r, &["--offline"]);
    assert!(
        kinds(&report)
            .iter()
            .any(|k| k.0 == "tampered" && k.1 == path),
        "{report:#}"
    );
}

/// Caught (expected): the config names `docs` (a parent of the real directory) for one commit
/// in which the record moves to `docs/`; the removal and the copy are both tampered.
#[test]
fn moving_a_record_to_a_parent_artifacts_dir_in_the_same_commit_is_tampered() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let original = text(&r, &path);
    let config = text(&r, ".github/rotor.yml");
    let name = path.rsplit('/').next().expect("name");
    let moved = format!("docs/{name}");
    r.push(
        "main",
        &[
            (
                ".github/rotor.yml",
                Some(&format!("{config}artifacts_dir: docs\n")),
            ),
            (&path, None),
            (&moved, Some(&original)),
        ],
        "mallory",
        "Flatten docs",
    );
    let report = some_finding(&r, &["--offline"]);
    let k = kinds(&report);
    assert!(
        k.iter().any(|k| k.0 == "tampered" && k.1 == path),
        "{report:#}"
    );
    assert!(
        k.iter().any(|k| k.0 == "tampered" && k.1 == moved),
        "{report:#}"
    );
}

/// Caught (expected): removed on a side branch, brought back edited in a second merge.
#[test]
fn removal_and_edited_re_add_through_merges_is_tampered() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let original = text(&r, &path);
    let w = work(&r);
    git(&w, &["fetch", "-q", "origin"]);
    git(&w, &["checkout", "-q", "-B", "side", "origin/main"]);
    fs::remove_file(w.join(&path)).expect("rm");
    git_who(&w, MALLORY, &["add", "-A"]);
    git_who(&w, MALLORY, &["commit", "-q", "-m", "rm"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    git_who(
        &w,
        MALLORY,
        &["merge", "-q", "--no-ff", "-m", "Merge side", "side"],
    );
    push_main(&r);
    git(&w, &["checkout", "-q", "-B", "side2", "origin/main"]);
    fs::create_dir_all(w.join(&path).parent().expect("dir")).expect("mkdir");
    fs::write(
        w.join(&path),
        original.replace("- Result: success", "- Result: failed"),
    )
    .expect("w");
    git_who(&w, MALLORY, &["add", "-A"]);
    git_who(&w, MALLORY, &["commit", "-q", "-m", "back"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    git_who(
        &w,
        MALLORY,
        &["merge", "-q", "--no-ff", "-m", "Merge side2", "side2"],
    );
    push_main(&r);
    let report = some_finding(&r, &["--offline"]);
    assert!(
        kinds(&report)
            .iter()
            .any(|k| k.0 == "tampered" && k.1 == path),
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// Legitimate histories: no finding.
// ---------------------------------------------------------------------------------------------

/// A removal undone by `git revert` restores the record byte for byte: nothing to say.
#[test]
fn a_removal_undone_by_git_revert_is_clean() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let rm = r.push("main", &[(&path, None)], "mallory", "oops");
    let w = work(&r);
    git(&w, &["fetch", "-q", "origin"]);
    git(&w, &["checkout", "-q", "-B", "main", "origin/main"]);
    git_who(
        &w,
        ("alice", "alice@example.com"),
        &["revert", "--no-edit", &rm],
    );
    push_main(&r);
    clean(&r, &["--offline"]);
    clean(&r, &[]);
}

/// A README in the artifacts directory (its own heading starting "# Rotation ") is not a
/// record.
#[test]
fn a_readme_in_the_artifacts_dir_is_not_a_record() {
    let r = one_rotation(1);
    r.push(
        "main",
        &[(
            "docs/security/rotations/README.md",
            Some("# Rotation records\n\nOne file per rotation, written by rotor.\n"),
        )],
        "alice",
        "Explain the folder",
    );
    clean(&r, &["--offline"]);
}

/// `artifacts_dir` named `docs` before any artifact existed, then the real directory; `docs`
/// holds the team's notes about rotor, which quote the block's marker.
#[test]
fn an_artifacts_dir_changed_before_any_artifact_is_clean() {
    let mut r = Record::new(1);
    let config = text(&r, ".github/rotor.yml");
    r.push(
        "main",
        &[
            (".github/rotor.yml", Some(&format!("{config}artifacts_dir: docs\n"))),
            (
                "docs/rotor.md",
                Some("# Using rotor\n\nEach record ends with a `<!-- rotor:artifact {...} -->` line.\n"),
            ),
        ],
        "alice",
        "Set up rotor",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "alice",
        "Records go under docs/security/rotations",
    );
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    clean(&r, &["--offline"]);
    clean(&r, &[]);
}

/// The same without notes: only the unused directory.
#[test]
fn an_unused_artifacts_dir_is_clean() {
    let mut r = Record::new(1);
    let config = text(&r, ".github/rotor.yml");
    r.push(
        "main",
        &[(
            ".github/rotor.yml",
            Some(&format!("{config}artifacts_dir: docs/records\n")),
        )],
        "alice",
        "Set up rotor",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "alice",
        "Records go under docs/security/rotations",
    );
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Squash);
    clean(&r, &[]);
}

/// A rollback, then a new rotation of the same ref, rebase-merged; then apply re-run on the
/// merged pull request's head.
#[test]
fn a_rollback_then_a_new_rotation_is_clean() {
    let mut r = one_rotation(1);
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Rebase);
    clean(&r, &[]);
    // The period holding only the rollback lists rotation #7 and finds nothing.
    let (code, doc, stderr) = evidence(&r, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(0), "{doc:#}\n{stderr}");
}

/// A copy of a real record in rotor's name, in a second directory a config version named for
/// one commit, under the same rotation id (so the file name is its id) and citing the same
/// real `rotate` event: only the event's ref, rotation and operation are compared, never its
/// `versionId`, so the copy can say the rotation went to any version and explain a pointer
/// moved by hand.
#[test]
fn a_copy_in_another_dir_citing_the_real_event_with_another_version_is_caught() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let path = r.artifact(7);
    let config = text(&r, ".github/rotor.yml");
    r.push(
        "main",
        &[(
            ".github/rotor.yml",
            Some(&format!("{config}artifacts_dir: docs/records\n")),
        )],
        "mallory",
        "Try another folder",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "mallory",
        "Revert folder",
    );
    let (above, mut meta) = split(&text(&r, &path));
    meta["finished_at"] = json!(rfc(chrono::Utc::now()));
    meta["refs"][0]["to"] = json!("3");
    meta["refs"][0]["pointer"] = json!("3");
    meta["refs"][0]["from"] = json!("2");
    let above = above.replace("1 → 2", "2 → 3");
    let copy = format!("docs/records/{}", path.rsplit('/').next().expect("name"));
    r.push_as(
        "main",
        &[(&copy, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: rotation",
    );
    let report = some_finding(&r, &[]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// verify and evidence never panic and always answer one JSON object, whatever the files in
/// the artifacts directory say.
#[test]
fn odd_artifacts_never_crash_verify_or_evidence() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let (above, meta) = split(&text(&r, &path));
    let dir = "docs/security/rotations";
    let mut files: Vec<(String, String)> = Vec::new();
    let mut add = |name: &str, t: String| files.push((format!("{dir}/{name}.md"), t));
    add("a", "# Rotation ".to_owned());
    add("b", MARKER.to_owned());
    add("c", format!("{MARKER}{{}} -->"));
    add("d", format!("# Rotation d\n{MARKER}null -->\n"));
    let mut m = meta.clone();
    m["rotation_id"] = json!("e");
    m["finished_at"] = json!("0000-01-01T00:00:00Z");
    m["rolled_back_at"] = json!("9999-12-31T23:59:59Z");
    m["rollbacks"] = json!([{"operator": "", "reason": "", "finished_at": "9999-12-31T23:59:59+14:00", "result": "rolled_back", "refs": [{"ref": "x", "result": "rolled_back", "audit_events": [{"id": "", "operation": ""}]}]}]);
    add("e", join(&above.replace(&r.id(7), "e"), &m));
    let mut m = meta.clone();
    m["rotation_id"] = json!("f");
    m["refs"] = json!([{"ref": "not a ref", "backend": "", "from": "", "to": "", "result": "success", "pointer": "", "audit_events": [{"id": "evt_1", "operation": "rotate"}]}, {"ref": "", "backend": "", "from": "\u{0}", "to": "", "result": "rolled_back"}]);
    m["version"] = json!(4_294_967_295u64);
    add(
        "f",
        join("# Rotation f\n| |\n|\n## Rollback\n## Rollback\n", &m),
    );
    add(
        "g",
        format!("# Rotation g\n{}", "\u{fffd}\u{202e}".repeat(1000)),
    );
    let refs: Vec<(&str, Option<&str>)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), Some(t.as_str())))
        .collect();
    r.push("main", &refs, "mallory", "odd");
    for args in [
        &[][..],
        &["--offline"][..],
        &["--since", "0001-01-01"][..],
        &["--since", "9999-12-31"][..],
    ] {
        let (code, report, stderr) = r.verify(args);
        // 2 online: refs of the odd records cannot be read (bad_record); findings still listed.
        assert!(
            matches!(code, Some(1 | 2)),
            "{args:?}: {code:?} {report:#}\n{stderr}"
        );
        assert!(!kinds(&report).is_empty());
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    for args in [
        &["--since", "0001-01-01"][..],
        &["--since", "2000-01-01", "--until", "9999-12-31"][..],
    ] {
        let (code, _, stderr) = evidence(&r, args);
        assert!(matches!(code, Some(1 | 2)), "{args:?}: {code:?} {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Evidence's period ends now by default: a record forged in mallory's own name and dated in
/// the future is out of the period, so its `tampered` finding is dropped, and as the ref's
/// last record it also takes the `drift` the period would have shown with it.
#[test]
fn a_forged_record_dated_in_the_future_hides_a_drift_and_itself_from_evidence() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let (code, doc, _) = evidence(&r, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(1), "{doc:#}");
    let first = r.artifact(7);
    let (path, forged) = forge(&r, &first, 96, "2", "3", "success", "2999-01-01T00:00:00Z");
    r.push(
        "main",
        &[(&path, Some(&forged))],
        "mallory",
        "Pre-record the next rotation",
    );
    let (code, doc, stderr) = evidence(&r, &["--since", "2000-01-01"]);
    assert_eq!(code, Some(1), "{:#}\n{stderr}", doc["verify"]);
}
