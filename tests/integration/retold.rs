//! A record re-told: an automatic rollback re-written, by someone with push access, as
//! "verified success, later rolled back by an admin's dispatch", citing the rotation's own real
//! `rotate` and `rollback` events, in a commit in rotor's name merged through a docs pull
//! request; and the same with the pointer set to the rejected version by someone who can write
//! the backend's metadata. `rotor verify` names the forged artifact and the commit that forged
//! it, with its author.

use serde_json::{Value, json};

use crate::falsify::{join, split};
use crate::verify::{Record, kinds};

/// rotor's commit identity in the test config (`commit.author`).
const ROTOR: (&str, &str) = ("rotor", "rotor@users.noreply.github.com");

/// A one-ref rotation whose new version fails its health check, rolled back automatically;
/// rotor's artifact sits on the pull request's branch, which is closed unmerged (a rotation
/// that did not happen has nothing to merge). Returns the record and rotor's artifact text.
fn rolled_back_and_closed() -> (Record, String) {
    let mut r = Record::new(1);
    r.app_knob("bad_versions", json!(["2"]));
    let report = r.apply(7, 1);
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    let text = format!("{}\n", r.show("rotate", &r.artifact(7)));
    r.close(7);
    (r, text)
}

/// The rotation's events in the application's log: (rotate id, rollback id).
fn events(r: &Record) -> (String, String) {
    let all = r.app_events();
    let id = r.id(7);
    let of = |op: &str| {
        all.iter()
            .find(|e| {
                e["metadata"]["rotationId"] == id.as_str() && e["metadata"]["operation"] == op
            })
            .and_then(|e| e["id"].as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("a {op} event of {id}: {all:#?}"))
    };
    (of("rotate"), of("rollback"))
}

/// rotor's rolled-back artifact re-told as a verified success that erin rolled back later by
/// dispatch, citing the real `rotate` event for the rotation and the real `rollback` event for
/// the dispatch; `pull_request` as given.
fn retold(r: &Record, text: &str, pull_request: u64, pointer: &str) -> String {
    let (rotate, rollback) = events(r);
    let (above, mut meta) = split(text);
    let name = &r.s.names[0];
    let above = above.replace("- Result: rolled_back", "- Result: success");
    let finished = meta["finished_at"].as_str().expect("finished").to_owned();
    meta["pull_request"] = json!(pull_request);
    meta["result"] = json!("success");
    meta["refs"][0]["result"] = json!("success");
    meta["refs"][0]["audit_events"] = json!([{"id": rotate, "operation": "rotate"}]);
    let mut text = above.trim_end().to_owned();
    if pointer == "1" {
        meta["refs"][0]["pointer"] = json!("1");
        meta["refs"][0]["rollback"] = json!("rolled_back");
        meta["rolled_back"] = json!(true);
        meta["rolled_back_at"] = json!(finished);
        meta["rollbacks"] = json!([{
            "operator": "erin", "reason": "errors after the rotation", "finished_at": finished,
            "result": "rolled_back", "forced": false,
            "refs": [{"ref": name, "result": "rolled_back",
                      "audit_events": [{"id": rollback, "operation": "rollback"}]}]
        }]);
        text.push_str(&format!(
            "\n\n## Rollback\n- Date: {}\n- Operator: erin (internal_admin)\n- Secret Ref: {name}\n- Provider: supabase\n- Result: rolled_back\n- Verification: rollback resolve returned 1\n- Audit Evidence: {rollback}; {}/api/v1/audit/events?action=secret_ref_upserted&limit=100\n- Reason: errors after the rotation\n",
            &finished[..10],
            r.s.url
        ));
    } else {
        meta["refs"][0]["pointer"] = json!(pointer);
        text.push('\n');
    }
    join(&format!("{text}\n"), &meta)
}

/// Repro 1: the re-told record lands on main through a docs pull request, in a commit in
/// rotor's name, merged normally.
#[test]
fn an_automatic_rollback_retold_as_a_success_rolled_back_by_dispatch_is_tampered() {
    let (r, text) = rolled_back_and_closed();
    let path = r.artifact(7);
    r.open_branch(12, "docs");
    let forged = r.push_as(
        "docs",
        &[(&path, Some(&retold(&r, &text, 7, "1")))],
        ROTOR,
        "Record the rotation",
    );
    r.merge_branch(12, "docs");
    for args in [&[][..], &["--offline"][..]] {
        let (code, report, stderr) = r.verify(args);
        assert_eq!(code, Some(1), "{args:?}: {report:#}\n{stderr}");
        let tampered: Vec<&Value> = report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .filter(|f| f["kind"] == "tampered" && f["artifact"] == path.as_str())
            .collect();
        assert!(
            tampered.iter().any(|f| f["commit"] == forged.as_str()
                && f["author"] == "rotor <rotor@users.noreply.github.com>"),
            "the finding names the forged commit and its author: {report:#}"
        );
        assert!(
            stderr.contains(&format!("::error file={path}")) && stderr.contains(&forged[..7]),
            "the annotation a reader sees names the commit: {stderr}"
        );
    }
}

/// The docs pull request also carries the request (so the commit in rotor's name sits on a
/// head that holds it, as rotor's own would): offline it passes for rotor's, and online the
/// application's log tells the truth — the rollback was alice's, during the rotation, not
/// erin's dispatch.
#[test]
fn a_retold_record_on_a_branch_that_carries_the_request_is_caught_by_the_audit_log() {
    let (r, text) = rolled_back_and_closed();
    let path = r.artifact(7);
    let request = format!("rotations/{}.yaml", r.id(7));
    let request_text = r.show("rotate", &request);
    r.open_branch(12, "docs");
    r.push(
        "docs",
        &[(&request, Some(&request_text))],
        "mallory",
        "Request",
    );
    r.push_as(
        "docs",
        &[(&path, Some(&retold(&r, &text, 12, "1")))],
        ROTOR,
        "Record the rotation",
    );
    r.merge_branch(12, "docs");
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let found = kinds(&report);
    assert!(
        found
            .iter()
            .any(|(k, a, _)| k == "audit_mismatch" && *a == path),
        "{report:#}"
    );
    let said = report.to_string();
    assert!(
        said.contains("\\\"erin\\\"") || said.contains("erin"),
        "{report:#}"
    );
}

/// Repro 2: as the first, re-told as a plain success, and the backend's metadata set to the
/// rejected version with a `done` marker: verify does not call it a verified rotation.
#[test]
fn a_retold_success_with_the_pointer_on_the_rejected_version_is_not_a_verified_rotation() {
    let (r, text) = rolled_back_and_closed();
    let path = r.artifact(7);
    r.open_branch(12, "docs");
    let forged = r.push_as(
        "docs",
        &[(&path, Some(&retold(&r, &text, 7, "2")))],
        ROTOR,
        "Record the rotation",
    );
    r.merge_branch(12, "docs");
    // A metadata writer puts the rejected version live, with a marker that says done.
    let name = &r.s.names[0];
    let mut custom = crate::services::block_on(r.s.bao.custom(name));
    custom.insert("current_version".to_owned(), "2".to_owned());
    custom.insert("rotor_state".to_owned(), "done".to_owned());
    crate::services::block_on(r.s.bao.set_custom(name, json!(custom)));
    let (code, report, stderr) = r.verify(&[]);
    assert_eq!(code, Some(1), "{report:#}\n{stderr}");
    let found = kinds(&report);
    assert!(
        found.iter().any(|(k, a, _)| k == "tampered" && *a == path),
        "{report:#}"
    );
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["commit"] == forged.as_str()),
        "{report:#}"
    );
    // The log still says the ref was rotated and rolled back: a rollback, whatever the file.
    assert!(
        found
            .iter()
            .any(|(k, a, _)| k == "audit_mismatch" && *a == path),
        "{report:#}"
    );
}
