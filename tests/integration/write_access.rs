//! One run against a contributor with write access (push branches, open pull requests,
//! comment, change any file of a pull request; dispatch only as an `internal_admin`): what is
//! on a branch never outweighs rotor's markers (a "final" artifact pushed during the run, an
//! artifact the marker contradicts, a rollback skipped or widened on the artifact's word), an
//! approval dismissed before the change is not recorded, a request renamed away is refused and
//! an id stays taken. `docs/threat-model.md` maps each to the rule that stops it.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apply::{Setup, apply, apply_command, artifact_on_branch, review_event, setup};
use crate::attacks::{app_upserts, main_moved, marker, pointer, push, review_of, untouched};
use crate::plan::{base_scenario, git, request, scenario, unmet};
use crate::services::block_on;

/// Changes one knob of the application stand-in, keeping the rest of its state.
fn app_knob(s: &Setup, key: &str, value: Value) {
    let state: Value = reqwest::blocking::get(format!("{}/_sandbox/app", s.url))
        .expect("app state")
        .json()
        .expect("json");
    let mut scenario = state["scenario"].clone();
    scenario[key] = value;
    let resp = reqwest::blocking::Client::new()
        .put(format!("{}/_sandbox/app", s.url))
        .json(&scenario)
        .send()
        .expect("app");
    assert_eq!(resp.status().as_u16(), 204);
}

/// The artifact's path for this setup's rotation.
fn artifact_path(s: &Setup) -> String {
    format!("docs/security/rotations/{}.md", s.id)
}

/// An artifact as a contributor would write it by hand: rotor's layout, any result, any block.
fn forged_artifact(s: &Setup, result: &str, refs: Value) -> String {
    let meta = json!({"version": 1, "rotation_id": s.id, "pull_request": 7, "result": result,
        "finished_at": "2026-11-26T02:10:06Z", "refs": refs});
    format!(
        "# Rotation {id}\n- Date: 2026-11-26\n- Operator: alice (internal_admin)\n- Secret Ref: {r}\n- Provider: supabase\n- Result: {result}\n- Verification: resolve returned 2; site-001 health ok\n- Audit Evidence: evt_424242\n## Approvals\n- carol approved {sha}\n\n<!-- rotor:artifact {meta} -->\n",
        id = s.id,
        r = s.name,
        sha = &s.w.head[..7],
    )
}

/// `push` from attacks.rs, by paths only, so that a thread can push while rotor runs.
fn push_from(work: &Path, branch: &str, files: &[(String, String)], message: &str) -> String {
    git(work, &["fetch", "-q", "origin"]);
    git(
        work,
        &["checkout", "-q", "-B", branch, &format!("origin/{branch}")],
    );
    for (path, text) in files {
        let file = work.join(path);
        fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        fs::write(&file, text).expect("write");
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "-m", message]);
    git(
        work,
        &["push", "-q", "origin", &format!("HEAD:refs/heads/{branch}")],
    );
    git(work, &["rev-parse", "HEAD"])
}

/// Runs apply for the approving review of PR `number` at `head` in that event's workspace,
/// whatever its exit code; returns the code, the report and everything printed.
fn apply_review_any(s: &Setup, number: u64, head: &str) -> (Option<i32>, Value, String) {
    let event = review_of(s, number, head);
    let ws = crate::checkout::workspace(
        s.w.dir.path(),
        &s.w.origin(),
        "pull_request_review",
        number,
        crate::checkout::Inputs::default(),
    );
    let (code, stdout, stderr) = apply_command(s, &event, "pull_request_review")
        .current_dir(&ws)
        .run_unchecked();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (code, report, format!("{stdout}{stderr}"))
}

/// The machine-readable block of an artifact's text, and the text before it.
fn split_block(text: &str) -> (String, Value) {
    let text = text.trim_end();
    let at = text.rfind('\n').expect("a last line");
    let json = text[at + 1..]
        .strip_prefix("<!-- rotor:artifact ")
        .and_then(|j| j.strip_suffix("-->"))
        .expect("rotor's block on the last line");
    (
        text[..at + 1].to_owned(),
        serde_json::from_str(json.trim()).expect("json"),
    )
}

// ------------------------------------------------------------------------------------------
// The record: the artifact on the commit target.
// ------------------------------------------------------------------------------------------

/// The procedure's artifact step: rotor commits the artifact of what happened. `publish` keeps any
/// file already on the branch whose block names this rotation, this pull request and *a*
/// result, taking it for a concurrent run's. Anyone who can push to the pull request's branch
/// (its author, to begin with) pushes a hand-written "success" artifact while the run is under
/// way; rotor then writes nothing, reports the forger's commit as its `commit-sha`, and the
/// record of a rolled-back rotation says it succeeded.
#[test]
fn a_final_artifact_pushed_to_the_branch_during_the_run_is_not_kept_as_rotors_record() {
    let s = setup(&["2"]); // version 2 fails its health check: the run rolls back
    // The rollback's audit event takes a while to show: the window in which the forger pushes.
    app_knob(&s, "audit_delay_ms", json!(1200));
    let forged = forged_artifact(
        &s,
        "success",
        json!([{"ref": s.name, "backend": "vault", "from": "1", "to": "2", "result": "success", "pointer": "2"}]),
    );
    let (work, url, path) = (
        s.w.dir.path().join("work"),
        s.url.clone(),
        artifact_path(&s),
    );
    let message = format!("rotor: rotation {} success", s.id);
    let forger = std::thread::spawn(move || {
        // Once the application saw the first upsert, rotor is past its gates.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log: Vec<String> = reqwest::blocking::get(format!("{url}/_sandbox/app/requests"))
                .expect("log")
                .json()
                .expect("json");
            if log.iter().any(|l| l.starts_with("PUT ")) {
                break;
            }
            assert!(Instant::now() < deadline, "rotor never moved the pointer");
            std::thread::sleep(Duration::from_millis(20));
        }
        push_from(&work, "rotate", &[(path, forged)], &message)
    });
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (code, stdout, stderr) = apply_command(&s, &event, "pull_request_review").run_unchecked();
    let forged_head = forger.join().expect("the forger pushed");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    // The branch moved after the approval: rotor commits nothing on the forger's head (its
    // record's parent is the approved head, always), says so naming that head, and the ref
    // is recorded in the report as what happened, rolled back.
    assert_eq!(report["result"], "failed", "{report:#}\n{stderr}");
    assert_eq!(code, Some(1));
    assert_eq!(report["refs"][0]["result"], "rolled_back", "{report:#}");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"), "rolled back");
    let said = report["errors"].to_string();
    assert!(
        said.contains("head_moved") && said.contains(&forged_head),
        "{report:#}"
    );
    let commit = report["commit_sha"].as_str().unwrap_or_default().to_owned();
    assert_ne!(
        commit, forged_head,
        "rotor reports the forger's commit as the commit of its artifact"
    );
}

/// "Already applied comes first": a re-run is a `noop` only when every ref's marker
/// agrees with the artifact; otherwise exit 4 and nothing changes. rotor compares the pointer
/// only: a run stopped after its final marker (a killed runner), then a hand-written artifact
/// saying `success` where the marker says `rolled_back`, and the re-run takes it for rotor's
/// record (`noop`, exit 0), cites it in the comment and the outputs, and never commits the truth.
#[test]
fn a_rerun_does_not_take_an_artifact_the_marker_contradicts_for_already_applied() {
    let s = setup(&["2"]);
    let event = review_event(s.w.dir.path(), &s.w.head);
    apply_command(&s, &event, "pull_request_review")
        .env("ROTOR_FAULT_AT", "marked")
        .expects_exit(86)
        .run();
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));
    assert_eq!(marker(&s, &s.name).as_deref(), Some("rolled_back"));
    // The contributor writes the record before the re-run: "success", with the pointer as it is.
    let forged = forged_artifact(
        &s,
        "success",
        json!([{"ref": s.name, "backend": "vault", "from": "1", "to": "2", "result": "success", "pointer": "1"}]),
    );
    let path = artifact_path(&s);
    let head = push(
        &s,
        "rotate",
        &[(path.as_str(), Some(forged.as_str()))],
        "rotor: rotation success",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["head_sha"] = json!(head);
    scenario(&s.url, &github);
    let (code, stdout, stderr) = apply_command(&s, &event, "pull_request_review").run_unchecked();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    assert_ne!(
        report["result"], "noop",
        "an artifact saying success is taken for rotor's record of a rolled-back rotation: {report:#}"
    );
    assert_eq!(code, Some(4), "{report:#}\n{stderr}");
}

/// The gate's rule 2: the gate is evaluated again immediately before the first change,
/// and the artifact records the approvals (reviewer, review, SHA). rotor records the first
/// evaluation's approvers: an approver who dismissed their approval before the change (another
/// admin's approval still carrying the run) is recorded as having approved it.
#[test]
fn an_approval_dismissed_before_the_change_is_not_recorded_as_an_approval() {
    let s = crate::apply::setup_configured(
        1,
        &[],
        |t| t,
        |c| c.replace("{users: [alice, bob]}", "{users: [alice, bob, carol]}"),
        None,
    );
    let head = s.w.head.clone();
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["reviews"] = json!([
        {"user": "bob", "state": "APPROVED", "commit_id": head},
        {"user": "carol", "state": "APPROVED", "commit_id": head}
    ]);
    // Bob dismisses his approval while the first gate is behind rotor.
    let mut then = github["pulls"]["7"].clone();
    then["reviews"] = json!([
        {"user": "bob", "state": "DISMISSED", "commit_id": head},
        {"user": "carol", "state": "APPROVED", "commit_id": head}
    ]);
    github["pulls"]["7"]["then"] = then;
    scenario(&s.url, &github);
    let (code, report, printed) = apply_review_any(&s, 7, &head);
    assert_eq!(code, Some(0), "carol's approval carries it: {printed}");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("2"));
    let artifact = artifact_on_branch(&s);
    assert!(
        !artifact.contains("- bob approved"),
        "the artifact records bob, whose approval was dismissed before the change:\n{artifact}"
    );
    assert_eq!(
        report["approval"]["approvers"],
        json!(["carol"]),
        "{report:#}"
    );
}

// ------------------------------------------------------------------------------------------
// Rollback: from/to from the artifact on the default branch, a file a merged PR can change.
// ------------------------------------------------------------------------------------------

/// Keeps only the request's first ref.
fn only_first_ref(text: String) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines
        .iter()
        .rposition(|l| l.contains("- ref:"))
        .expect("a ref");
    lines.remove(last);
    lines.join("\n") + "\n"
}

/// The threat model: the artifact is a file anyone with push access could have
/// written, so rollback checks it against rotor's marker, which only rotor writes. The check is
/// made only for a ref whose marker carries this rotation's id. A merged edit of the artifact
/// that adds a ref the rotation never touched (no marker, or another rotation's) makes the
/// admin's rollback of this rotation move that ref too, onto a version nobody approved, and
/// stamp it with this rotation's marker.
#[test]
fn a_rollback_never_moves_a_ref_the_rotation_did_not_move() {
    let s = crate::apply::setup_refs(2, &[], only_first_ref);
    let other = s.names[1].clone();
    assert_eq!(pointer(&s, &other).as_deref(), Some("1"));
    assert_eq!(
        apply(&s, 0)["result"],
        "success",
        "rotation of the first ref"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("2"));
    assert_eq!(pointer(&s, &other).as_deref(), Some("1"), "never requested");
    crate::rollback::merge(&s);

    // A later pull request edits the record on main: the rotation "also" moved `other` 2 -> 1.
    let path = artifact_path(&s);
    let text = git(&s.w.origin(), &["show", &format!("main:{path}")]);
    let (body, mut meta) = split_block(&text);
    meta["refs"].as_array_mut().expect("refs").push(json!(
        {"ref": other, "backend": "vault", "from": "2", "to": "1", "result": "success", "pointer": "1"}
    ));
    let forged = format!("{body}<!-- rotor:artifact {meta} -->\n");
    push(
        &s,
        "main",
        &[(path.as_str(), Some(forged.as_str()))],
        "docs: tidy the rotation record",
    );
    let upserts_before = app_upserts(&s).len();

    let ws = crate::rollback::dispatch_workspace(
        &s,
        "refs/heads/main",
        crate::checkout::Inputs::default(),
    );
    let (code, stdout, stderr) =
        crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main").run_unchecked();
    assert_eq!(
        pointer(&s, &other).as_deref(),
        Some("1"),
        "rollback moved a ref the rotation never touched, onto version 2:\n{stdout}\n{stderr}"
    );
    assert_eq!(marker(&s, &other), None, "no marker on the untouched ref");
    assert!(
        !app_upserts(&s)[upserts_before..]
            .iter()
            .any(|l| l.contains(&other)),
        "nothing recorded for it in the application"
    );
    assert_eq!(code, Some(4), "{stdout}\n{stderr}");
}

/// The same trust the other way: a merged edit of the record that says the rotation already
/// left a ref on its old version makes the admin's rollback a `noop` (exit 0), while the
/// marker, which only rotor writes, says the rotation stands and the pointer is on its `to`.
#[test]
fn a_rollback_is_not_skipped_on_the_artifacts_word_against_the_marker() {
    let s = setup(&[]);
    assert_eq!(apply(&s, 0)["result"], "success");
    crate::rollback::merge(&s);
    assert_eq!(marker(&s, &s.name).as_deref(), Some("done"));
    let path = artifact_path(&s);
    let text = git(&s.w.origin(), &["show", &format!("main:{path}")]);
    let (body, mut meta) = split_block(&text);
    meta["refs"][0]["result"] = json!("rolled_back");
    meta["refs"][0]["pointer"] = json!("1");
    let forged = format!("{body}<!-- rotor:artifact {meta} -->\n");
    push(
        &s,
        "main",
        &[(path.as_str(), Some(forged.as_str()))],
        "docs: tidy the rotation record",
    );
    let ws = crate::rollback::dispatch_workspace(
        &s,
        "refs/heads/main",
        crate::checkout::Inputs::default(),
    );
    let (code, stdout, stderr) =
        crate::rollback::rollback_in(&s, &ws, "bob", "refs/heads/main").run_unchecked();
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    assert!(
        !(code == Some(0) && report["result"] == "noop"),
        "the rollback did nothing and succeeded, the pointer still on {:?}: {report:#}\n{stderr}",
        pointer(&s, &s.name)
    );
}

// ------------------------------------------------------------------------------------------
// The gate's file rules and ids.
// ------------------------------------------------------------------------------------------

/// The policy's rule 5 (`request_removed`, the threat model's "delete another rotation's
/// request"): a rotation PR only adds or modifies requests. Renaming another rotation's request
/// within `requests_dir` to a name that is no request (`.yaml.retired`) removes it just the
/// same, and passes.
#[test]
fn a_pull_request_that_renames_another_request_out_of_existence_is_refused() {
    let s = setup(&[]);
    let older = request("2026-10-01-older", std::slice::from_ref(&s.name));
    push(
        &s,
        "main",
        &[("rotations/2026-10-01-older.yaml", Some(older.as_str()))],
        "an older request",
    );
    let work = s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "rotate", "origin/rotate"]);
    git(&work, &["merge", "-q", "--no-edit", "origin/main"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/rotate"]);
    let head = push(
        &s,
        "rotate",
        &[
            ("rotations/2026-10-01-older.yaml", None),
            (
                "rotations/2026-10-01-older.yaml.retired",
                Some(older.as_str()),
            ),
        ],
        "retire the other request",
    );
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    main_moved(&s, &mut github);
    github["pulls"]["7"]["head_sha"] = json!(head);
    github["pulls"]["7"]["files"]
        .as_array_mut()
        .expect("files")
        .push(
            json!({"filename": "rotations/2026-10-01-older.yaml.retired", "status": "renamed",
            "previous_filename": "rotations/2026-10-01-older.yaml"}),
        );
    github["pulls"]["7"]["reviews"] =
        json!([{"user": "bob", "state": "APPROVED", "commit_id": head}]);
    scenario(&s.url, &github);
    let (code, report, printed) = apply_review_any(&s, 7, &head);
    assert_eq!(
        code,
        Some(3),
        "a PR that retires another request was applied: {printed}"
    );
    assert_eq!(unmet(&report), ["request_removed"], "{report:#}");
    untouched(&s, &head);
}

/// "Ids are never reused": a request whose id appears in a marker or an
/// artifact from another pull request, merged or not, is invalid (exit 2). rotor looks only at
/// the default branch's artifact and at each ref's *current* marker: once another rotation has
/// marked the ref, the id of an unmerged, applied pull request is free again. Its audit events
/// are still in the application's log under that id, and the reused rotation's audit "check"
/// is satisfied by the old rotation's event (here the application records none at all).
#[test]
fn an_id_stays_taken_after_another_rotation_marked_the_ref() {
    let s = setup(&[]);
    let first = apply(&s, 0);
    assert_eq!(first["result"], "success", "PR #7, id A: 1 -> 2");
    let old_event = first["refs"][0]["audit_event_ids"][0]
        .as_str()
        .expect("event")
        .to_owned();
    crate::checkout::close_pull(&s.w.origin(), 7); // closed unmerged: its artifact stays on its branch

    // PR #8, another id, rotates the same ref 2 -> 3: the marker is now #8's.
    block_on(s.bao.provision(&s.name, 1, None));
    let id_b = format!("{}-b", s.id);
    let file_b = format!("rotations/{id_b}.yaml");
    let text_b = request(&id_b, std::slice::from_ref(&s.name)) + "    to: \"3\"\n";
    let head_b = push(
        &s,
        "rotate-b",
        &[(file_b.as_str(), Some(text_b.as_str()))],
        "rotation b",
    );
    crate::checkout::open_pull(&s.w.origin(), 8, "rotate-b", "main");
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["8"] = json!({
        "author": "alice", "head_sha": head_b, "base": "main", "head_ref": "rotate-b",
        "files": [{"filename": file_b, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head_b}]
    });
    scenario(&s.url, &github);
    let (code, second, printed) = apply_review_any(&s, 8, &head_b);
    assert_eq!(code, Some(0), "{printed}");
    assert_eq!(second["result"], "success");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("3"));
    crate::checkout::close_pull(&s.w.origin(), 8);

    // PR #9 reuses id A, back to version 2; the application records no audit event now.
    app_knob(&s, "audit_missing", json!(true));
    let file_a = format!("rotations/{}.yaml", s.id);
    let text_a = request(&s.id, std::slice::from_ref(&s.name)) + "    to: \"2\"\n";
    let head_c = push(
        &s,
        "rotate-c",
        &[(file_a.as_str(), Some(text_a.as_str()))],
        "reuse id A",
    );
    crate::checkout::open_pull(&s.w.origin(), 9, "rotate-c", "main");
    github["pulls"]["8"]["state"] = json!("closed");
    github["pulls"]["9"] = json!({
        "author": "alice", "head_sha": head_c, "base": "main", "head_ref": "rotate-c",
        "files": [{"filename": file_a, "status": "added"}],
        "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": head_c}]
    });
    scenario(&s.url, &github);
    let upserts_before = app_upserts(&s).len();
    let (code, third, printed) = apply_review_any(&s, 9, &head_c);
    assert!(
        !third.to_string().contains(&old_event),
        "PR #9's record cites PR #7's audit event {old_event} as its own evidence: {third:#}"
    );
    assert_eq!(code, Some(2), "id A of PR #7 was reused: {printed}");
    assert!(printed.contains("id_reused"), "{printed}");
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("3"), "not moved");
    assert_eq!(app_upserts(&s).len(), upserts_before, "no upsert");
}
