//! Records that lie (beside the erasures of `falsify.rs`, the forgeries of `forged_records.rs`
//! and the re-told rollback of `retold.rs`): written by a contributor with push access (in rotor's name,
//! on a pull request's branch that carries the request, or on the default branch), with the
//! help of someone who can write the secret manager's metadata or of a compromised
//! application, and `--since` periods that lose what happened in them. Each test asserts what
//! verify should report: a test that fails is an attack that works.

use std::path::Path;

use serde_json::{Value, json};

use crate::falsify::{join, one_rotation, split};
use crate::forged_records::{at, forge_text as forge, git_who, rfc, some_finding};
use crate::plan::git;
use crate::verify::{Record, Style, kinds};

/// rotor's commit identity in the test config (`commit.author`).
const ROTOR: (&str, &str) = ("rotor", "rotor@users.noreply.github.com");

/// The file at `path` on `branch` of origin, with its last newline (`show` trims it).
fn text(r: &Record, branch: &str, path: &str) -> String {
    format!("{}\n", r.show(branch, path))
}

/// git in `dir` committed as (name, email), the author left as the command takes it.
fn git_committer(dir: &Path, who: (&str, &str), args: &[&str]) -> String {
    crate::verify::git_id(dir, args, None, (who.0.to_owned(), who.1.to_owned()))
}

/// Whether the report holds a finding of `kind` on `artifact`.
fn has(report: &Value, kind: &str, artifact: &str) -> bool {
    kinds(report)
        .iter()
        .any(|(k, a, _)| k == kind && a == artifact)
}

/// The rotation's events in the application's log: (rotate id, rollback id, if any).
fn events_of(r: &Record, id: &str) -> (String, Option<String>) {
    let all = r.app_events();
    let of = |op: &str| {
        all.iter()
            .find(|e| e["metadata"]["rotationId"] == id && e["metadata"]["operation"] == op)
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned)
    };
    (of("rotate").expect("a rotate event"), of("rollback"))
}

/// `above` with bob's approval re-told as carol's, and the block to match: the approvals a
/// record shows are in no audit event, only in the record.
fn carol_approved(above: &str, meta: &mut Value) -> String {
    assert_eq!(meta["approvals"][0]["reviewer"], "bob", "{meta:#}");
    meta["approvals"][0]["reviewer"] = json!("carol");
    meta["run_url"] = json!("https://github.com/my-org/tenants/actions/runs/1");
    let shown = above.replace("- bob approved", "- carol approved");
    assert_ne!(shown, above, "the artifact shows bob's approval: {above}");
    shown
}

// ---------------------------------------------------------------------------------------------
// 1. A contributor re-writes rotor's record on the rotation's own pull request branch, in
//    rotor's name, after apply and before the merge: the branch carries the request, so the
//    commit counts as rotor's, and nothing the audit log holds contradicts the new text.
// ---------------------------------------------------------------------------------------------

/// Bob approved and rotor recorded it; a commit in rotor's name on top of rotor's own, on the
/// same branch, says carol approved (and names another workflow run); squash-merged.
#[test]
fn approvals_re_told_in_rotors_name_on_the_rotation_branch_then_squash_merged() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let genuine = text(&r, "rotate", &path);
    let (above, mut meta) = split(&genuine);
    let above = carol_approved(&above, &mut meta);
    let forged = r.push_as(
        "rotate",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: record the rotation",
    );
    let squashed = r.merge(7, Style::Squash);
    assert!(r.show("main", &path).contains("- carol approved"));
    // The commit in rotor's name sits on rotor's own, not on the approved head: not rotor's.
    assert_ne!(forged, squashed);
    for args in [&[][..], &["--offline"][..]] {
        let report = some_finding(&r, args);
        assert!(has(&report, "tampered", &path), "{args:?}: {report:#}");
        assert!(
            report.to_string().contains(&squashed),
            "{args:?}: the finding names the commit that brought it onto main (GitHub's squash): {report:#}"
        );
    }
}

/// The same with a rebase merge: the branch is force-pushed so that the commit in rotor's name
/// that writes the record is the only one (rotor's own is gone from the head), and it says the
/// pointer was left on a version a metadata writer moved it to by hand afterwards.
#[test]
fn a_record_force_pushed_in_rotors_name_leaves_the_pointer_where_a_hand_moved_it() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let genuine = text(&r, "rotate", &path);
    // The metadata writer moves the live pointer from 2 to a version nobody rotated to.
    r.provision(0);
    r.move_by_hand(0, "3");
    let (above, mut meta) = split(&genuine);
    assert_eq!(meta["refs"][0]["pointer"], "2", "{meta:#}");
    meta["refs"][0]["pointer"] = json!("3");
    let work = r.s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "rotate", "origin/rotate"]);
    let last = git_who(&work, ROTOR, &["log", "-1", "--format=%an %s"]);
    assert!(
        last.starts_with("rotor "),
        "rotor's commit is the head: {last}"
    );
    git(&work, &["reset", "-q", "--hard", "HEAD~1"]);
    std::fs::create_dir_all(work.join(&path).parent().expect("dir")).expect("mkdir");
    std::fs::write(work.join(&path), join(&above, &meta)).expect("write");
    git_who(&work, ROTOR, &["add", "-A"]);
    git_who(
        &work,
        ROTOR,
        &["commit", "-q", "-m", "rotor: record the rotation"],
    );
    git(
        &work,
        &["push", "-q", "-f", "origin", "HEAD:refs/heads/rotate"],
    );
    crate::checkout::refresh(&r.origin());
    r.merge(7, Style::Rebase);
    // The record's own pointer contradicts its result: rotor writes `success` on `to`.
    let report = some_finding(&r, &[]);
    assert!(
        has(&report, "tampered", &path)
            || has(&report, "drift", &path)
            || has(&report, "inconsistent", &path),
        "{report:#}"
    );
}

/// A second pull request (#12, a docs change) carries a copy of #7's request and a record of
/// #7's rotation in rotor's name that names #12, carol's approval and another run; #12 is
/// merged with a merge commit and #7 closed. The request is carried by a branch nobody
/// approved.
#[test]
fn a_record_on_another_pull_request_that_carries_the_request_is_not_rotors() {
    let mut r = Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let request = format!("rotations/{}.yaml", r.id(7));
    let request_text = text(&r, "rotate", &request);
    let (above, mut meta) = split(&text(&r, "rotate", &path));
    let above = carol_approved(&above, &mut meta).replace("/pull/7", "/pull/12");
    meta["pull_request"] = json!(12);
    meta["approvals"][0]["url"] = json!(
        meta["approvals"][0]["url"]
            .as_str()
            .expect("url")
            .replace("/pull/7", "/pull/12")
    );
    r.open_branch(12, "docs");
    r.push(
        "docs",
        &[(&request, Some(&request_text))],
        "mallory",
        "Docs",
    );
    r.push_as(
        "docs",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: record the rotation",
    );
    r.merge_branch(12, "docs");
    r.close(7);
    let report = some_finding(&r, &[]);
    assert!(has(&report, "tampered", &path), "{report:#}");
}

// ---------------------------------------------------------------------------------------------
// 2. Records in rotor's name on the default branch that move the chain without an event.
// ---------------------------------------------------------------------------------------------

/// A new record in rotor's name: a rotation 2 → 3 that `failed` and whose ref carries a
/// `rollback` result (rotor writes that field only with a dispatched rollback), leaving the
/// pointer on 3 where a metadata writer moved it by hand. `failed` needs a `rotate` event
/// only when `rollback` is unset, so the record cites none.
#[test]
fn a_forged_failed_record_with_a_rollback_field_hides_a_hand_move_online() {
    let r = one_rotation(1);
    r.provision(0);
    r.move_by_hand(0, "3");
    let report = some_finding(&r, &[]);
    assert_eq!(kinds(&report)[0].0, "drift", "{report:#}");
    let first = r.artifact(7);
    let id = format!("{}-99", r.id(7));
    let path = first.replace(&r.id(7), &id);
    let forged = forge(
        &text(&r, "main", &first),
        &id,
        99,
        "2",
        "3",
        "failed",
        &rfc(chrono::Utc::now()),
    );
    let (above, mut meta) = split(&forged);
    meta["refs"][0]["rollback"] = json!("failed");
    r.push_as(
        "main",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: rotation failed",
    );
    let report = some_finding(&r, &[]);
    assert!(
        has(&report, "audit_missing", &path)
            || has(&report, "inconsistent", &path)
            || has(&report, "drift", &path),
        "{report:#}"
    );
}

/// A dispatched rollback appended in rotor's name that `failed` for the ref, yet sets the ref's
/// recorded pointer back to its `from`: a failed rollback cites no event, and the pointer a
/// metadata writer moved back by hand now agrees with the record.
#[test]
fn a_failed_rollback_appended_in_rotors_name_moves_the_recorded_pointer_back() {
    let r = one_rotation(1);
    r.move_by_hand(0, "1");
    let report = some_finding(&r, &[]);
    assert_eq!(kinds(&report)[0].0, "drift", "{report:#}");
    let path = r.artifact(7);
    let (above, mut meta) = split(&text(&r, "main", &path));
    let now = rfc(chrono::Utc::now());
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(now);
    meta["refs"][0]["pointer"] = json!("1");
    meta["refs"][0]["rollback"] = json!("failed");
    meta["rollbacks"] = json!([{
        "operator": "bob", "reason": "errors after the rotation", "finished_at": now,
        "result": "failed", "forced": false, "run_url": null,
        "refs": [{"ref": r.s.names[0], "result": "failed", "audit_events": []}]
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Date: {}\n- Operator: bob (internal_admin)\n- Secret Ref: {}\n- Provider: supabase\n- Result: failed\n- Reason: errors after the rotation\n",
        above.trim_end(),
        &now[..10],
        r.s.names[0]
    );
    r.push_as(
        "main",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: rollback failed",
    );
    let report = some_finding(&r, &[]);
    assert!(
        has(&report, "tampered", &path)
            || has(&report, "audit_missing", &path)
            || has(&report, "drift", &path),
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A record re-told with the events of its own (unmerged) rotation.
// ---------------------------------------------------------------------------------------------

/// An automatic rollback (the new version failed its health check; #7 closed unmerged) re-told
/// as "verified success, then rolled back by dispatch" — by alice, the requester, who is the
/// actor of the real rollback event, with the dispatch's span set around that event — on a docs
/// pull request that carries the request, in rotor's name. `retold.rs` catches it with erin as
/// the dispatcher; here actor and time agree with the log.
#[test]
fn an_automatic_rollback_re_told_as_the_requesters_dispatch_agrees_with_the_log() {
    let mut r = Record::new(1);
    r.app_knob("bad_versions", json!(["2"]));
    assert_eq!(r.apply(7, 1)["result"], "rolled_back");
    let path = r.artifact(7);
    let text7 = text(&r, "rotate", &path);
    let request = format!("rotations/{}.yaml", r.id(7));
    let request_text = text(&r, "rotate", &request);
    r.close(7);
    let (rotate, rollback) = events_of(&r, &r.id(7));
    let rollback = rollback.expect("a rollback event");
    let (above, mut meta) = split(&text7);
    assert_eq!(meta["operator"], "alice", "{meta:#}");
    let name = r.s.names[0].clone();
    let finished = meta["finished_at"].as_str().expect("finished").to_owned();
    let started = meta["started_at"].clone();
    let offset = meta["app_clock_offset_s"].clone();
    meta["pull_request"] = json!(12);
    meta["result"] = json!("success");
    meta["refs"][0]["result"] = json!("success");
    meta["refs"][0]["audit_events"] = json!([{"id": rotate, "operation": "rotate"}]);
    meta["refs"][0]["pointer"] = json!("1");
    meta["refs"][0]["rollback"] = json!("rolled_back");
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(finished);
    meta["rollbacks"] = json!([{
        "operator": "alice", "reason": "scheduled drill", "finished_at": finished,
        "started_at": started, "app_clock_offset_s": offset,
        "result": "rolled_back", "forced": false, "run_url": null,
        "refs": [{"ref": name, "result": "rolled_back",
                  "audit_events": [{"id": rollback, "operation": "rollback"}]}]
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Date: {}\n- Operator: alice (internal_admin)\n- Secret Ref: {name}\n- Provider: supabase\n- Result: rolled_back\n- Verification: rollback resolve returned 1\n- Audit Evidence: {rollback}\n- Reason: scheduled drill\n",
        above
            .replace("- Result: rolled_back", "- Result: success")
            .trim_end(),
        &finished[..10],
    );
    r.open_branch(12, "docs");
    r.push(
        "docs",
        &[(&request, Some(&request_text))],
        "mallory",
        "Docs",
    );
    r.push_as(
        "docs",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: record the rotation",
    );
    r.merge_branch(12, "docs");
    let report = some_finding(&r, &[]);
    assert!(
        has(&report, "tampered", &path) || has(&report, "audit_mismatch", &path),
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 4. `--since`: what happened in the period, about a record from before it.
// ---------------------------------------------------------------------------------------------

/// A metadata writer alone moves the pointer of a ref whose last record is from before the
/// period: the drift is now, yet `--since` drops it with the record's date.
#[test]
fn a_pointer_moved_during_the_period_is_drift_whatever_the_last_records_age() {
    let r = one_rotation(1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let since = rfc(chrono::Utc::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    r.move_by_hand(0, "1");
    let report = some_finding(&r, &[]);
    assert!(has(&report, "drift", &r.artifact(7)), "{report:#}");
    let report = some_finding(&r, &["--since", &since]);
    assert!(has(&report, "drift", &r.artifact(7)), "{report:#}");
}

/// A record in rotor's name pushed to main, dated before the period, closes the gap that a
/// rotation in the period shows (the pointer was moved by hand between the two rotations). The
/// forged record is rotor's as far as git can tell, so its own date places it out of the
/// period, and its missing audit event is never looked for.
#[test]
fn a_record_in_rotors_name_dated_before_the_period_hides_a_gap_in_the_period() {
    let mut r = one_rotation(1);
    let first = r.artifact(7);
    let (_, m7) = split(&text(&r, "main", &first));
    let t7 = at(m7["finished_at"].as_str().expect("t"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    r.provision(0);
    r.provision(0);
    r.move_by_hand(0, "3");
    r.open(8, &[0], Some("4"));
    assert_eq!(r.apply(8, 0)["refs"][0]["from"], "3");
    r.merge(8, Style::Merge);
    let since = rfc(t7 + chrono::Duration::seconds(2));
    let report = some_finding(&r, &["--since", &since]);
    assert_eq!(kinds(&report)[0].0, "gap", "{report:#}");

    let id = format!("{}-99", r.id(7));
    let path = first.replace(&r.id(7), &id);
    let forged = forge(
        &text(&r, "main", &first),
        &id,
        99,
        "2",
        "3",
        "success",
        &rfc(t7 + chrono::Duration::seconds(1)),
    );
    r.push_as(
        "main",
        &[(&path, Some(&forged))],
        ROTOR,
        "rotor: record the rotation",
    );
    // Unbounded, the record's missing event gives it away.
    let report = some_finding(&r, &[]);
    assert!(has(&report, "audit_missing", &path), "{report:#}");
    // The period holds rotation #8, whose chain now looks whole.
    let report = some_finding(&r, &["--since", &since]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

/// The application alone records, during the period, a rollback of a rotation the record
/// holds from before it (an upsert outside rotor naming its rotation id): unbounded, verify
/// says the log shows a rollback the record does not; for the period, it says nothing.
#[test]
fn an_event_of_an_older_rotation_made_during_the_period_is_checked_for_the_period() {
    let r = one_rotation(1);
    std::thread::sleep(std::time::Duration::from_secs(2));
    let since = rfc(chrono::Utc::now());
    std::thread::sleep(std::time::Duration::from_secs(1));
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/api/v1/secret-refs/{}", r.s.url, r.s.names[0]))
        .bearer_auth("app-token")
        .json(&json!({"versionId": "1", "rotationId": r.id(7), "operation": "rollback", "operator": "bob"}))
        .send()
        .expect("app");
    assert!(resp.status().is_success(), "{:?}", resp.text());
    let path = r.artifact(7);
    let report = some_finding(&r, &[]);
    assert!(has(&report, "audit_unrecorded", &path), "{report:#}");
    let report = some_finding(&r, &["--since", &since]);
    assert!(
        has(&report, "audit_unrecorded", &path) || has(&report, "audit_mismatch", &path),
        "{report:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. rotor's identity widened through one version of the config.
// ---------------------------------------------------------------------------------------------

/// The config names GitHub's own committer as `commit.author` for one commit (reverted at
/// once): every later commit of a rebase merge authored in rotor's name now counts as rotor's
/// own commit on the default branch, so a rollback can be appended through an ordinary pull
/// request — no push to the default branch needed. Here the appended rollback `failed`, with the
/// pointer set back, as in
/// `a_failed_rollback_appended_in_rotors_name_moves_the_recorded_pointer_back`, which needs a
/// direct push.
#[test]
fn a_config_version_naming_githubs_committer_lets_a_rebase_merge_write_in_rotors_name() {
    let r = one_rotation(1);
    let config = text(&r, "main", ".github/rotor.yml");
    assert!(!config.contains("commit:"), "{config}");
    let named = format!("{config}commit: {{author: \"GitHub <github@example.com>\"}}\n");
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&named))],
        "mallory",
        "Bot identity",
    );
    r.push(
        "main",
        &[(".github/rotor.yml", Some(&config))],
        "mallory",
        "Revert bot identity",
    );
    // A pull request that appends a rollback in rotor's name; GitHub rebases it onto main.
    r.move_by_hand(0, "1");
    let path = r.artifact(7);
    let (above, mut meta) = split(&text(&r, "main", &path));
    let now = rfc(chrono::Utc::now());
    meta["rolled_back"] = json!(true);
    meta["rolled_back_at"] = json!(now);
    meta["refs"][0]["pointer"] = json!("1");
    meta["refs"][0]["rollback"] = json!("failed");
    meta["rollbacks"] = json!([{
        "operator": "bob", "reason": "errors after the rotation", "finished_at": now,
        "result": "failed", "forced": false, "run_url": null,
        "refs": [{"ref": r.s.names[0], "result": "failed", "audit_events": []}]
    }]);
    let above = format!(
        "{}\n\n## Rollback\n- Date: {}\n- Operator: bob (internal_admin)\n- Secret Ref: {}\n- Provider: supabase\n- Result: failed\n- Reason: errors after the rotation\n",
        above.trim_end(),
        &now[..10],
        r.s.names[0]
    );
    r.open_branch(13, "note");
    r.push_as(
        "note",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: rollback failed",
    );
    // GitHub rebases the pull request: the author kept, GitHub the committer.
    let work = r.s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "main", "origin/main"]);
    git_committer(
        &work,
        ("GitHub", "github@example.com"),
        &["cherry-pick", "HEAD..origin/note"],
    );
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    crate::checkout::refresh(&r.origin());
    crate::checkout::close_pull(&r.origin(), 13);
    assert!(r.show("main", &path).contains("- Result: failed"));
    let report = some_finding(&r, &[]);
    assert!(!kinds(&report).is_empty(), "{report:#}");
}

// ---------------------------------------------------------------------------------------------
// 6. Defences that hold (regression tests).
// ---------------------------------------------------------------------------------------------

/// A record deleted and brought back under a new id, in rotor's name on the default branch
/// (one commit per file, as rotor commits): the removal is tampered, and the copy cites events
/// of another rotation.
#[test]
fn a_record_re_added_under_a_new_id_is_tampered_and_mismatched() {
    let r = one_rotation(1);
    let path = r.artifact(7);
    let id = format!("{}-2", r.id(7));
    let copy = path.replace(&r.id(7), &id);
    let (above, mut meta) = split(&text(&r, "main", &path));
    meta["rotation_id"] = json!(id);
    let above = above.replace(
        &format!("# Rotation {}", r.id(7)),
        &format!("# Rotation {id}"),
    );
    r.push_as(
        "main",
        &[(&copy, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: record the rotation",
    );
    r.push_as("main", &[(&path, None)], ROTOR, "rotor: tidy");
    let report = some_finding(&r, &[]);
    assert!(has(&report, "tampered", &path), "{report:#}");
    assert!(has(&report, "audit_mismatch", &copy), "{report:#}");
}

/// A batch of two refs whose cited events are swapped between the refs, in rotor's name on the
/// rotation's branch before a squash merge: each event names the other ref.
#[test]
fn events_swapped_between_the_refs_of_a_batch_are_mismatched() {
    let mut r = Record::new(2);
    assert_eq!(r.apply(7, 0)["result"], "success");
    let path = r.artifact(7);
    let (above, mut meta) = split(&text(&r, "rotate", &path));
    let a = meta["refs"][0]["audit_events"].clone();
    let b = meta["refs"][1]["audit_events"].clone();
    assert_ne!(a, b);
    meta["refs"][0]["audit_events"] = b;
    meta["refs"][1]["audit_events"] = a;
    r.push_as(
        "rotate",
        &[(&path, Some(&join(&above, &meta)))],
        ROTOR,
        "rotor: record the rotation",
    );
    r.merge(7, Style::Squash);
    let report = some_finding(&r, &[]);
    let mismatched: Vec<_> = kinds(&report)
        .into_iter()
        .filter(|(k, a, _)| k == "audit_mismatch" && *a == path)
        .collect();
    assert_eq!(mismatched.len(), 2, "{report:#}");
}
