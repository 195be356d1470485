//! `rotor evidence` end to end, over a record rotor wrote itself: the markdown (snapshot), the
//! JSON document, the single-file HTML (parsed as a browser would, with no external resource),
//! `--out`, exit 1 with the document still written when verification finds something, and bad
//! input.

use std::fs;

use markup5ever_rcdom::{Handle, NodeData, RcDom};
use serde_json::{Value, json};

use crate::verify::{Record, Style, redact};

/// #7 (both refs, merge commit) rolled back by dispatch, then #8 (ref 0, squash).
fn record() -> Record {
    let mut r = Record::new(2);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, Style::Merge);
    assert_eq!(r.rollback(7, 0)["result"], "rolled_back");
    r.provision(0);
    r.open(8, &[0], None);
    assert_eq!(r.apply(8, 0)["result"], "success");
    r.merge(8, Style::Squash);
    r
}

/// `rotor evidence ARGS` in a scheduled workspace, without the application's token unless
/// `online`: exit code, stdout, stderr.
fn evidence(r: &Record, args: &[&str], online: bool) -> (Option<i32>, String, String) {
    let ws = r.workspace("schedule");
    let mut cmd = crate::common::rotor()
        .current_dir(&ws)
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .args(["evidence"])
        .args(args);
    if online {
        cmd = cmd
            .env("VAULT_TOKEN", &r.s.token.token)
            .env("ROTOR_APP_TOKEN", "app-token");
    }
    let out = cmd.run_unchecked();
    crate::checkout::assert_usable(&ws, true);
    out
}

/// Times vary; the snapshot keeps their shape.
fn redact_times(text: &str) -> String {
    let text = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
        .expect("regex")
        .replace_all(text, "[TIME]");
    regex::Regex::new(r"pullrequestreview-\d+")
        .expect("regex")
        .replace_all(&text, "pullrequestreview-[N]")
        .into_owned()
}

#[test]
fn the_evidence_of_a_period_in_markdown_json_and_html() {
    let r = record();
    let names = &r.s.names;

    // Markdown, offline (no application token), to stdout.
    let (code, md, stderr) = evidence(&r, &["--since", "2000-01-01"], false);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(md.contains("**Verification:** offline (git only"), "{md}");
    insta::assert_snapshot!("evidence_md", redact_times(&redact(&md, &r)));

    // JSON, online: the contract's document.
    let (code, out, stderr) = evidence(&r, &["--since", "2000-01-01", "--format", "json"], true);
    assert_eq!(code, Some(0), "{stderr}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(doc["command"], "evidence");
    assert_eq!(doc["since"], "2000-01-01T00:00:00Z");
    assert_eq!(doc["verify"], json!({"mode": "online", "findings": []}));
    assert_eq!(
        doc["totals"],
        json!({"rotations": 2, "refs_rotated": 3, "rolled_back": 1, "failed": 0,
               "break_glass": 0, "approvals_owed": 0, "countersigned_late": 0})
    );
    assert_eq!(
        doc["break_glass"],
        json!([]),
        "no break-glass rotation in the record"
    );
    let ids: Vec<&str> = doc["rotations"]
        .as_array()
        .expect("rotations")
        .iter()
        .map(|x| x["rotation_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [r.id(7), r.id(8)]);
    let first = &doc["rotations"][0];
    assert_eq!(first["requester"], "alice");
    assert_eq!(first["approvers"][0]["login"], "bob");
    assert_eq!(
        first["approvers"][0]["sha"].as_str().map(str::len),
        Some(40)
    );
    assert_eq!(
        first["run_url"],
        "https://github.com/my-org/tenants/actions/runs/4242"
    );
    assert_eq!(first["refs"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["audit_event_ids"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["rollbacks"][0]["operator"], "bob");
    assert_eq!(first["rollbacks"][0]["reason"], "errors after the rotation");
    assert_eq!(first["rollbacks"][0]["result"], "rolled_back");
    assert_eq!(
        first["rollbacks"][0]["audit_event_ids"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // rotor's own commit of each artifact: on #7's branch (merged) and on #8's (squashed).
    for rotation in doc["rotations"].as_array().expect("rotations") {
        let sha = rotation["artifact_commit"].as_str().expect("commit");
        let author = crate::plan::git(&r.origin(), &["log", "-1", "--format=%an", sha]);
        assert_eq!(author, "rotor", "{rotation:#}");
    }
    // Ref 1 was rolled back and never rotated again; ref 0 was rotated just now.
    assert_eq!(
        doc["overdue_refs"],
        json!([{"ref": names[1], "last_rotated": null, "age_days": null}])
    );

    // HTML, to a file: one self-contained document a browser parses without error.
    let out = r.s.w.dir.path().join("evidence.html");
    let (code, stdout, stderr) = evidence(
        &r,
        &[
            "--since",
            "2000-01-01",
            "--format",
            "html",
            "--out",
            out.to_str().expect("path"),
        ],
        false,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "", "the document went to --out");
    let html = fs::read_to_string(&out).expect("written");
    assert_self_contained(&html);
    assert!(html.contains(&r.id(8)));
}

/// Parses `html` as a browser would and checks that it loads nothing from anywhere: no
/// element with `src`, no stylesheet or script link, no `url(` or `@import` in its style; an
/// `href` only on links to pages (anchors), and only to https or http pages.
fn assert_self_contained(html: &str) {
    use html5ever::tendril::TendrilSink as _;
    let dom: RcDom = html5ever::parse_document(RcDom::default(), Default::default())
        .from_utf8()
        .read_from(&mut html.as_bytes())
        .expect("parse");
    assert_eq!(
        dom.errors.borrow().len(),
        0,
        "parse errors: {:?}",
        dom.errors.borrow()
    );
    let mut seen = Vec::new();
    walk(&dom.document, &mut seen);
    let names: Vec<&str> = seen.iter().map(|(n, _)| n.as_str()).collect();
    for tag in ["svg", "rect", "table", "style"] {
        assert!(names.contains(&tag), "a <{tag}>: {names:?}");
    }
    assert_eq!(
        names.iter().filter(|n| **n == "svg").count(),
        2,
        "two pictures"
    );
    for (name, attrs) in &seen {
        assert!(
            !matches!(
                name.as_str(),
                "script" | "link" | "img" | "iframe" | "object" | "embed" | "image" | "use"
            ),
            "<{name}> loads or runs something"
        );
        for (key, value) in attrs {
            assert!(
                !matches!(
                    key.as_str(),
                    "src" | "srcset" | "xlink:href" | "action" | "data"
                ) && !key.starts_with("on"),
                "<{name} {key}={value:?}>"
            );
            if key == "href" {
                assert_eq!(name, "a", "href on <{name}>");
                assert!(
                    value.starts_with("https://") || value.starts_with("http://"),
                    "{value}"
                );
            }
            if key == "style" {
                assert!(!value.contains("url("), "{value}");
            }
        }
    }
    let style = html
        .split("<style>")
        .nth(1)
        .and_then(|s| s.split("</style>").next())
        .expect("style");
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "{style}"
    );
}

fn walk(node: &Handle, seen: &mut Vec<(String, Vec<(String, String)>)>) {
    if let NodeData::Element { name, attrs, .. } = &node.data {
        seen.push((
            name.local.to_string(),
            attrs
                .borrow()
                .iter()
                .map(|a| (a.name.local.to_string(), a.value.to_string()))
                .collect(),
        ));
    }
    for child in node.children.borrow().iter() {
        walk(child, seen);
    }
}

#[test]
fn evidence_with_findings_is_still_written_and_exits_1() {
    let r = record();
    let path = r.artifact(8);
    let edited = r
        .show("main", &path)
        .replace("- Verification: ", "- Verification: all green; ");
    r.push("main", &[(&path, Some(&edited))], "mallory", "Polish");
    let out = r.s.w.dir.path().join("evidence.json");
    let (code, stdout, stderr) = evidence(
        &r,
        &[
            "--since",
            "2000-01-01",
            "--format",
            "json",
            "--out",
            out.to_str().expect("path"),
        ],
        false,
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(stdout, "");
    let doc: Value =
        serde_json::from_str(&fs::read_to_string(&out).expect("written")).expect("json");
    assert_eq!(doc["verify"]["mode"], "offline");
    assert_eq!(doc["verify"]["findings"][0]["kind"], "tampered");
    assert_eq!(doc["verify"]["findings"][0]["artifact"], path.as_str());
    assert_eq!(
        doc["verify"]["findings"][0]["author"],
        "mallory <mallory@example.com>"
    );
    // Under Actions the step outputs say what verification found, as verify's do.
    let outputs = r.s.w.dir.path().join("outputs");
    let ws = r.workspace("schedule");
    let (code, _, stderr) = crate::common::rotor()
        .current_dir(&ws)
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &outputs)
        .args([
            "evidence",
            "--since",
            "2000-01-01",
            "--format",
            "html",
            "--out",
            r.s.w
                .dir
                .path()
                .join("evidence.html")
                .to_str()
                .expect("path"),
        ])
        .run_unchecked();
    assert_eq!(code, Some(1), "{stderr}");
    let written = fs::read_to_string(&outputs).expect("outputs");
    assert!(
        written.contains("result=findings\n") && written.contains("findings=1\n"),
        "{written}"
    );
    // A period that ends before the rotations: nothing in it, nothing found in it.
    let (code, md, stderr) = evidence(
        &r,
        &["--since", "2000-01-01", "--until", "2000-12-31"],
        false,
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        md.contains("No rotation or rollback finished in the period."),
        "{md}"
    );
}

#[test]
fn bad_input_exits_2() {
    let r = Record::new(1);
    for (args, says) in [
        (
            vec!["--since", "2026-12-01", "--until", "2026-11-01"],
            "is before --since",
        ),
        (vec!["--until", "2026-11-01"], "--since"),
        (vec!["--since", "last week"], "YYYY-MM-DD"),
        (
            vec!["--since", "2026-11-01", "--out", "/nonexistent/dir/x.md"],
            "there is no directory",
        ),
    ] {
        let (code, stdout, stderr) = evidence(&r, &args, false);
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert!(
            format!("{stdout}{stderr}").contains(says),
            "{args:?}: {stdout}{stderr}"
        );
    }
}
