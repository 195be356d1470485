//! Bounded answers: a peer that answers too much (a health check of 768 MiB) or pages forever
//! (an audit log with a fresh cursor and events dated "now" on every page) is read no further
//! than rotor's bounds, and reported: rotor's memory stays small and every run ends.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apply::{Setup, apply_command, review_event, setup};
use crate::services::block_on;

/// Sets one knob of the application stand-in at `url`, keeping the rest of its scenario.
pub(crate) fn app_knob(url: &str, key: &str, value: Value) {
    let url = format!("{url}/_sandbox/app");
    let state: Value = reqwest::blocking::get(&url)
        .expect("sandbox")
        .json()
        .expect("json");
    let mut sc = state["scenario"].clone();
    sc[key] = value;
    let resp = reqwest::blocking::Client::new()
        .put(&url)
        .json(&sc)
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
}

/// The application stand-in's scenario, as it stands.
fn app_state(s: &Setup) -> Value {
    reqwest::blocking::get(format!("{}/_sandbox/app", s.url))
        .expect("sandbox")
        .json::<Value>()
        .expect("json")["scenario"]
        .clone()
}

/// The health check of the new version answers `200 {"status":"ok","detail":"xxx…"}` of
/// 768 MiB after the pointer moved: rotor reads 1 MiB of it, takes it as a failed check, rolls
/// back, and its peak memory stays under 64 MiB (it would need twice the answer to parse it).
#[test]
fn a_768_mib_health_answer_is_read_no_further_and_rolls_back_in_little_memory() {
    let s = setup(&[]);
    app_knob(&s.url, "huge_versions", json!(["2"]));
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (code, stdout, stderr, peak_kib) = apply_command(&s, &event, "pull_request_review")
        .args(["-v"])
        .run_measured();
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    let checks = report["refs"][0]["checks"].to_string();
    assert!(
        checks.contains("larger than 1024 KiB"),
        "the failed check says why: {checks}"
    );
    assert!(
        peak_kib < 64 * 1024,
        "rotor's peak memory was {peak_kib} KiB while a 768 MiB answer came in"
    );
    let sent = app_state(&s)["huge_sent"].as_u64().expect("counted");
    assert!(
        sent < 64 << 20,
        "rotor stopped reading: the application sent {sent} bytes of 768 MiB"
    );
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("1"),
        "the pointer is back on the verified version"
    );
}

/// Before the pointer moves, the same answer is an unusable application: nothing changes and
/// the exit is 5 (the outage code), the first version being the one whose health is asked.
#[test]
fn a_huge_answer_before_the_move_changes_nothing_and_exits_5() {
    let s = setup(&[]);
    // The application's ref lookup answers hugely for every ref: no rotation can start.
    app_knob(&s.url, "huge_versions", json!(["1", "2"]));
    app_knob(&s.url, "huge_lookup", json!(true));
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (code, stdout, stderr, peak_kib) =
        apply_command(&s, &event, "pull_request_review").run_measured();
    assert_eq!(code, Some(5), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("larger than 1024 KiB"),
        "{stdout}\n{stderr}"
    );
    assert!(peak_kib < 64 * 1024, "peak {peak_kib} KiB");
    assert_eq!(
        block_on(s.bao.custom(&s.name))
            .get("current_version")
            .map(String::as_str),
        Some("1")
    );
}

/// An audit log that pages forever (a fresh cursor and events dated now on every page):
/// `rotor verify` stops within its bound and says why, as an outage (exit 5), in seconds.
#[test]
fn an_endless_audit_log_ends_verify_in_bounded_time_with_a_clear_report() {
    let mut r = crate::verify::Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, crate::verify::Style::Merge);
    r.app_knob("audit_endless", json!(true));
    let started = Instant::now();
    let (code, report, stderr) = r.verify(&[]);
    let took = started.elapsed();
    assert_eq!(code, Some(5), "{report:#}\n{stderr}");
    let said = format!("{report}{stderr}");
    assert!(
        said.contains("1000 pages") || said.contains("newer"),
        "the report says the log would not end: {said}"
    );
    assert!(
        took < Duration::from_secs(120),
        "verify ended, but only after {took:?}"
    );
}

/// A server that answers every request `200` with a JSON body that never ends (chunked, no
/// declared length), up to 768 MiB, counting what it managed to send; a closed connection
/// stops it. Returns its URL and the count.
fn endless_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if line == "\r\n" {
                        break;
                    }
                    line.clear();
                }
                let mut out = stream;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if out.write_all(head.as_bytes()).is_err() {
                    return;
                }
                let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "x".repeat(64 * 1024));
                let open = "{\"data\":\"";
                let _ = out.write_all(format!("{:x}\r\n{open}\r\n", open.len()).as_bytes());
                for _ in 0..(768 * 16) {
                    if out.write_all(chunk.as_bytes()).is_err() {
                        return;
                    }
                    counted.fetch_add(64 * 1024, Ordering::Relaxed);
                }
            });
        }
    });
    (url, sent)
}

/// A repository whose config sends supabase refs to `vault` and stripe refs to AWS.
fn repo_with(vault: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
    std::fs::write(
        dir.path().join(".github/rotor.yml"),
        format!(
            "version: 1\nadmins: {{users: [alice]}}\nenvironments: {{staging: {{}}}}\nbackends:\n\
             \x20 - {{match: \"tenant.*.supabase.*\", type: vault, address: \"{vault}\", mount: secret}}\n\
             \x20 - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: us-east-1}}\n\
             app: {{base_url: \"http://127.0.0.1:9\"}}\n"
        ),
    )
    .expect("config");
    dir
}

/// OpenBao/Vault and AWS answering without end: `rotor status` reads 1 MiB of each answer and
/// no more, says so, and exits 5 (an unusable service), in little memory.
#[test]
fn endless_backend_answers_are_read_no_further() {
    let (url, sent) = endless_server();
    let dir = repo_with(&url);
    for (secret_ref, env) in [
        ("tenant.acme.supabase.service_role", ("VAULT_TOKEN", "x")),
        (
            "tenant.acme.stripe.secret_key",
            ("AWS_ENDPOINT_URL", url.as_str()),
        ),
    ] {
        let (code, stdout, stderr, peak_kib) = crate::common::rotor()
            .current_dir(dir.path())
            .env(env.0, env.1)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .args(["status", secret_ref])
            .run_measured();
        assert_eq!(code, Some(5), "{secret_ref}: {stdout}\n{stderr}");
        assert!(peak_kib < 64 * 1024, "{secret_ref}: peak {peak_kib} KiB");
        let said = format!("{stdout}{stderr}");
        assert!(
            said.contains("larger than 1024 KiB") || said.contains("length limit exceeded"),
            "{secret_ref}: the answer was cut at the cap: {said}"
        );
    }
    let sent = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(sent < 256 << 20, "rotor stopped reading: {sent} bytes sent");
}

/// GitHub answering without end: `plan` stops at 1 MiB and exits 5, nothing written.
#[test]
fn an_endless_github_answer_is_read_no_further() {
    let s = crate::apply::setup(&[]);
    let (url, _) = endless_server();
    let event = crate::plan::pr_event(s.w.dir.path(), &s.w.head);
    let (code, stdout, stderr, peak_kib) = crate::common::rotor()
        .current_dir(&s.w.checkout)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &url)
        .env("GITHUB_EVENT_NAME", "pull_request")
        .env("GITHUB_EVENT_PATH", &event)
        .env("VAULT_TOKEN", &s.token.token)
        .args(["plan", "--format", "json"])
        .run_measured();
    assert_eq!(code, Some(5), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("larger than 1024 KiB"),
        "{stdout}\n{stderr}"
    );
    assert!(peak_kib < 64 * 1024, "peak {peak_kib} KiB");
}
