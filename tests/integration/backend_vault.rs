//! The Vault/OpenBao backend against a real OpenBao dev server, with a token that can touch
//! metadata only; the audit device proves no request of rotor's reached `secret/data/`.

use std::collections::HashMap;

use reqwest::Method;
use rotor::backend::{
    Backends, Environment, ErrorKind, MarkerState, Secret, TargetProblem, VersionState,
};
use rotor::config::{self, Config};
use rotor::ids::{SecretRef, VersionId};
use serde_json::json;

use crate::services::{Bao, RotorToken, bao, unique};

fn config(addr: &str) -> Config {
    let text = format!(
        "version: 1\nadmins: {{users: [alice]}}\nenvironments: {{staging: {{}}}}\n\
         backends:\n  - {{match: \"tenant.*.*.*\", type: vault, address: \"{addr}\", mount: secret}}\n\
         app: {{base_url: \"http://127.0.0.1:9\"}}\n"
    );
    config::parse("rotor.yml", text.as_bytes()).expect("test config")
}

fn v(id: &str) -> VersionId {
    VersionId::parse(id).expect("version")
}

/// A provisioned secret and rotor's handle on it.
struct Fixture {
    bao: Bao,
    token: RotorToken,
    path: String,
    secret: Secret,
}

async fn fixture(versions: u32, pointer: Option<u32>) -> Fixture {
    let bao = bao();
    let token = bao.rotor_token().await;
    let path = format!("tenant.{}.supabase.service_role", unique("v"));
    bao.provision(&path, versions, pointer).await;
    let env = Environment::with_vars(HashMap::from([(
        "VAULT_TOKEN".to_owned(),
        token.token.clone(),
    )]));
    let secret = Backends::default()
        .resolve(
            &config(&bao.addr),
            &SecretRef::parse(&path).expect("ref"),
            &env,
        )
        .await
        .expect("resolve");
    Fixture {
        bao,
        token,
        path,
        secret,
    }
}

#[tokio::test]
async fn reads_pointer_pending_versions_and_no_marker() {
    let f = fixture(3, Some(2)).await;
    let s = f.secret.read().await.expect("read");
    assert_eq!(s.current, Some(v("2")));
    assert_eq!(s.pending, [v("3")]);
    assert_eq!(s.previous, None);
    assert_eq!(s.marker, None);
    assert_eq!(
        s.versions.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["3", "2", "1"]
    );
    assert!(
        s.versions
            .iter()
            .all(|x| x.state == VersionState::Enabled && x.created.is_some())
    );
    assert_eq!(s.target(None), Ok(v("3")));
}

#[tokio::test]
async fn rotates_with_lock_repoint_and_final_marker_recording_previous() {
    let f = fixture(3, Some(2)).await;
    let seen = f.secret.read().await.expect("read");
    let locked = f
        .secret
        .lock(&seen, "rot-1", Some(7), &v("2"), &v("3"))
        .await
        .expect("lock");
    assert_eq!(
        locked.marker.as_ref().map(|m| m.state),
        Some(MarkerState::Pending)
    );
    let moved = f
        .secret
        .repoint(&locked, &v("2"), &v("3"))
        .await
        .expect("repoint");
    assert_eq!(
        (moved.current.clone(), moved.previous.clone()),
        (Some(v("3")), Some(v("2")))
    );
    let done = f
        .secret
        .finish(&moved, "rot-1", MarkerState::Done)
        .await
        .expect("finish");
    let marker = done.marker.expect("marker");
    assert_eq!(
        (
            marker.state,
            marker.from.as_ref().map(|v| v.as_str()),
            marker.to.as_ref().map(|v| v.as_str())
        ),
        (MarkerState::Done, Some("2"), Some("3"))
    );
    // The operator's view agrees, and keys rotor does not own are kept.
    let custom = f.bao.custom(&f.path).await;
    assert_eq!(custom.get("current_version").map(String::as_str), Some("3"));
    assert_eq!(custom.get("rotor_previous").map(String::as_str), Some("2"));
}

#[tokio::test]
async fn other_custom_metadata_keys_survive_rotor_writes() {
    let f = fixture(2, None).await;
    f.bao
        .set_custom(
            &f.path,
            json!({"current_version": "1", "owner": "team-payments"}),
        )
        .await;
    let seen = f.secret.read().await.expect("read");
    let moved = f
        .secret
        .repoint(&seen, &v("1"), &v("2"))
        .await
        .expect("repoint");
    assert_eq!(moved.current, Some(v("2")));
    assert_eq!(
        f.bao.custom(&f.path).await.get("owner").map(String::as_str),
        Some("team-payments")
    );
}

#[tokio::test]
async fn a_pointer_moved_after_the_read_is_a_conflict_and_stays_where_the_other_writer_put_it() {
    let f = fixture(3, Some(1)).await;
    let seen = f.secret.read().await.expect("read");
    // Someone else moves the pointer between rotor's read and its write.
    f.bao
        .set_custom(&f.path, json!({"current_version": "2"}))
        .await;
    let err = f
        .secret
        .repoint(&seen, &v("1"), &v("3"))
        .await
        .expect_err("stale");
    assert!(matches!(err.kind, ErrorKind::Conflict { .. }), "{err}");
    assert!(err.to_string().contains("metadata_cas"), "{err}");
    assert_eq!(
        f.bao
            .custom(&f.path)
            .await
            .get("current_version")
            .map(String::as_str),
        Some("2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_repoints_exactly_one_wins() {
    for _ in 0..5 {
        let f = fixture(3, Some(1)).await;
        let seen = f.secret.read().await.expect("read");
        let race = |to: &'static str| {
            let (secret, seen) = (f.secret.clone(), seen.clone());
            tokio::spawn(async move { secret.repoint(&seen, &v("1"), &v(to)).await })
        };
        let (a, b) = (race("2"), race("3"));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        let wins = [a.is_ok(), b.is_ok()];
        assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{a:?} {b:?}");
        let loser = if wins[0] { b } else { a };
        assert!(matches!(
            loser.expect_err("loser").kind,
            ErrorKind::Conflict { .. }
        ));
        let now = f.secret.read().await.expect("read");
        assert_eq!(now.current, Some(if wins[0] { v("2") } else { v("3") }));
    }
}

#[tokio::test]
async fn a_lock_held_by_another_rotation_is_reported() {
    let f = fixture(2, Some(1)).await;
    let seen = f.secret.read().await.expect("read");
    f.secret
        .lock(&seen, "rotation-a", Some(7), &v("1"), &v("2"))
        .await
        .expect("lock");
    let now = f.secret.read().await.expect("read");
    let holder = now.locked_by_other("rotation-b").expect("locked");
    assert_eq!(holder.rotation_id, "rotation-a");
    assert!(
        now.locked_by_other("rotation-a").is_none(),
        "its own lock does not block a re-run"
    );
    // Releasing: only the holder's lock is removed.
    let released = f.secret.unlock(&now, "rotation-a").await.expect("unlock");
    assert_eq!(released.marker, None);
}

#[tokio::test]
async fn destroyed_deleted_and_missing_targets_are_refused() {
    let f = fixture(4, Some(1)).await;
    let (status, _) = f
        .bao
        .root(
            Method::PUT,
            &format!("secret/destroy/{}", f.path),
            Some(json!({"versions": [3]})),
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = f
        .bao
        .root(
            Method::POST,
            &format!("secret/delete/{}", f.path),
            Some(json!({"versions": [4]})),
        )
        .await;
    assert_eq!(status, 204);
    let s = f.secret.read().await.expect("read");
    assert_eq!(
        s.target(Some(&v("3"))),
        Err(TargetProblem::NotEnabled(
            "3".into(),
            VersionState::Destroyed
        ))
    );
    assert_eq!(
        s.target(Some(&v("4"))),
        Err(TargetProblem::NotEnabled("4".into(), VersionState::Deleted))
    );
    assert_eq!(
        s.target(Some(&v("9"))),
        Err(TargetProblem::Missing("9".into()))
    );
    assert_eq!(
        s.pending,
        [v("2")],
        "destroyed and deleted versions are not pending"
    );
}

#[tokio::test]
async fn a_missing_pointer_names_the_command_that_sets_it() {
    let f = fixture(2, None).await;
    let s = f.secret.read().await.expect("read");
    assert_eq!(
        (s.current.clone(), s.target(None)),
        (None, Err(TargetProblem::NoPointer))
    );
    assert_eq!(
        f.secret.pointer_hint().as_deref(),
        Some(
            format!(
                "bao kv metadata patch -mount=secret -custom-metadata=current_version=<N> {}",
                f.path
            )
            .as_str()
        )
    );
}

#[tokio::test]
async fn errors_name_ref_backend_call_and_what_to_fix() {
    let f = fixture(1, Some(1)).await;
    // A token without the metadata policy: 403 names the capability.
    let (_, body) = f
        .bao
        .root(
            Method::POST,
            "auth/token/create",
            Some(json!({"policies": ["default"], "ttl": "1h"})),
        )
        .await;
    let weak = body["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let env = Environment::with_vars(HashMap::from([("VAULT_TOKEN".to_owned(), weak)]));
    let r = SecretRef::parse(&f.path).expect("ref");
    let secret = Backends::default()
        .resolve(&config(&f.bao.addr), &r, &env)
        .await
        .expect("resolve");
    let err = secret.read().await.expect_err("forbidden");
    assert!(matches!(err.kind, ErrorKind::Forbidden { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: vault GET secret/metadata/{}", f.path, f.path)),
        "{text}"
    );
    assert!(
        text.contains("`read` capability on `secret/metadata/"),
        "{text}"
    );
    // A secret that does not exist: 404 says where rotor looked.
    let missing = SecretRef::parse(&format!("tenant.{}.supabase.k", unique("m"))).expect("ref");
    let env = Environment::with_vars(HashMap::from([(
        "VAULT_TOKEN".to_owned(),
        f.token.token.clone(),
    )]));
    let secret = Backends::default()
        .resolve(&config(&f.bao.addr), &missing, &env)
        .await
        .expect("resolve");
    let err = secret.read().await.expect_err("missing");
    assert!(matches!(err.kind, ErrorKind::NotFound { .. }), "{err}");
    // No token at all: setup error before any request.
    let none = Environment::with_vars(HashMap::new());
    let err = Backends::default()
        .resolve(&config(&f.bao.addr), &r, &none)
        .await
        .expect_err("no token");
    assert!(
        err.to_string().contains("$VAULT_TOKEN or $BAO_TOKEN"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_after_bounded_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let env = Environment::with_vars(HashMap::from([("VAULT_TOKEN".to_owned(), "t".to_owned())]));
    let r = SecretRef::parse("tenant.acme.supabase.k").expect("ref");
    let secret = Backends::default()
        .resolve(&config(&addr), &r, &env)
        .await
        .expect("resolve");
    let started = std::time::Instant::now();
    let err = secret.read().await.expect_err("unreachable");
    assert!(matches!(err.kind, ErrorKind::Unavailable { .. }), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn rotors_policy_forbids_values_and_the_audit_log_shows_rotor_never_asked() {
    let f = fixture(3, Some(1)).await;
    // The policy really forbids values: a read with another token of the same policy is refused.
    let probe = f.bao.rotor_token().await;
    let (status, _) = f
        .bao
        .with_token(
            &probe.token,
            Method::GET,
            &format!("secret/data/{}", f.path),
            None,
        )
        .await;
    assert_eq!(status, 403);
    // Every operation rotor has, with rotor's own token.
    let seen = f.secret.read().await.expect("read");
    let locked = f
        .secret
        .lock(&seen, "audit-1", Some(7), &v("1"), &v("2"))
        .await
        .expect("lock");
    let moved = f
        .secret
        .repoint(&locked, &v("1"), &v("2"))
        .await
        .expect("repoint");
    let done = f
        .secret
        .finish(&moved, "audit-1", MarkerState::Done)
        .await
        .expect("finish");
    f.secret.unlock(&done, "audit-1").await.expect("unlock");

    let paths = |entries: Vec<serde_json::Value>| -> Vec<String> {
        entries
            .iter()
            .filter_map(|e| e["request"]["path"].as_str().map(str::to_owned))
            .collect()
    };
    // The audit device sees data-path requests when they happen (the probe's)...
    let probe_paths = paths(f.bao.audit_entries_of(&probe.accessor).await);
    assert!(
        probe_paths.iter().any(|p| p.starts_with("secret/data/")),
        "{probe_paths:?}"
    );
    // ...and rotor's token made many requests, none of them to `secret/data/`.
    let rotor_paths = paths(f.bao.audit_entries_of(&f.token.accessor).await);
    assert!(
        rotor_paths
            .iter()
            .filter(|p| p.starts_with("secret/metadata/"))
            .count()
            >= 5,
        "{rotor_paths:?}"
    );
    assert!(
        rotor_paths.iter().all(|p| !p.starts_with("secret/data/")),
        "{rotor_paths:?}"
    );
}
