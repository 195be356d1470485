//! The AWS Secrets Manager backend against moto's real emulator server.

use std::collections::HashMap;

use rotor::backend::{Backends, Environment, ErrorKind, MarkerState, Secret, TargetProblem};
use rotor::config::{self, Config};
use rotor::ids::{SecretRef, VersionId};

use crate::services::{aws_env, provision_aws, sm_client, unique};

fn config() -> Config {
    let text = "version: 1\nadmins: {users: [alice]}\nenvironments: {staging: {}}\n\
         backends:\n  - {match: \"tenant.*.*.*\", type: aws-secrets-manager, region: us-east-1}\n\
         app: {base_url: \"http://127.0.0.1:9\"}\n";
    config::parse("rotor.yml", text.as_bytes()).expect("test config")
}

fn v(id: &str) -> VersionId {
    VersionId::parse(id).expect("version")
}

struct Fixture {
    name: String,
    current: VersionId,
    pending: VersionId,
    secret: Secret,
}

async fn secret_for(name: &str) -> Secret {
    let env = Environment::with_vars(
        aws_env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<HashMap<_, _>>(),
    );
    Backends::default()
        .resolve(&config(), &SecretRef::parse(name).expect("ref"), &env)
        .await
        .expect("resolve")
}

async fn fixture() -> Fixture {
    let name = format!("tenant.{}.stripe.secret_key", unique("a"));
    let (current, pending, _) = provision_aws(&name).await;
    Fixture {
        secret: secret_for(&name).await,
        name,
        current: v(&current),
        pending: v(&pending),
    }
}

async fn labels(name: &str) -> HashMap<String, Vec<String>> {
    sm_client()
        .await
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .expect("describe")
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn reads_current_pending_versions_and_no_marker() {
    let f = fixture().await;
    let s = f.secret.read().await.expect("read");
    assert_eq!(s.current.as_ref(), Some(&f.current));
    assert_eq!(s.pending, std::slice::from_ref(&f.pending));
    assert_eq!(s.previous, None);
    assert_eq!(s.marker, None);
    assert_eq!(s.versions.len(), 2);
    assert!(s.versions.iter().all(|x| x.created.is_some()));
    assert_eq!(s.target(None), Ok(f.pending.clone()));
}

#[tokio::test]
async fn rotates_records_previous_and_clears_the_pending_label() {
    let f = fixture().await;
    let seen = f.secret.read().await.expect("read");
    let locked = f
        .secret
        .lock(&seen, "rot-aws", Some(7), &f.current, &f.pending)
        .await
        .expect("lock");
    let moved = f
        .secret
        .repoint(&locked, &f.current, &f.pending)
        .await
        .expect("repoint");
    assert_eq!(moved.current.as_ref(), Some(&f.pending));
    assert_eq!(
        moved.previous.as_ref(),
        Some(&f.current),
        "AWS moves AWSPREVIOUS to the old version"
    );
    f.secret
        .clear_pending(&moved, &f.pending)
        .await
        .expect("clear pending");
    let done = f
        .secret
        .finish(&moved, "rot-aws", MarkerState::Done)
        .await
        .expect("finish");
    // `finish` answers the state its writes made (no read after them): read it to see the
    // pending label gone.
    let now = f.secret.read().await.expect("read");
    assert_eq!(now.pending, Vec::<VersionId>::new());
    assert_eq!(now.marker, done.marker);
    let marker = done.marker.expect("marker");
    assert_eq!(marker.state, MarkerState::Done);
    assert_eq!(
        marker.from.as_ref().map(|v| v.as_str()),
        Some(f.current.as_str())
    );
    let labels = labels(&f.name).await;
    assert_eq!(labels[f.pending.as_str()], ["AWSCURRENT"]);
    assert_eq!(labels[f.current.as_str()], ["AWSPREVIOUS"]);
}

#[tokio::test]
async fn a_label_moved_after_the_read_is_a_conflict_and_stays_where_the_other_writer_put_it() {
    let f = fixture().await;
    let seen = f.secret.read().await.expect("read");
    // Someone else moves AWSCURRENT to the pending version between rotor's read and write.
    sm_client()
        .await
        .update_secret_version_stage()
        .secret_id(&f.name)
        .version_stage("AWSCURRENT")
        .move_to_version_id(f.pending.as_str())
        .remove_from_version_id(f.current.as_str())
        .send()
        .await
        .expect("operator move");
    let err = f
        .secret
        .repoint(&seen, &f.current, &f.pending)
        .await
        .expect_err("stale");
    assert!(matches!(err.kind, ErrorKind::Conflict { .. }), "{err}");
    assert!(
        err.to_string().contains("UpdateSecretVersionStage"),
        "{err}"
    );
    let now = f.secret.read().await.expect("read");
    assert_eq!(now.current.as_ref(), Some(&f.pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_repoints_exactly_one_wins() {
    for _ in 0..5 {
        let f = fixture().await;
        // A third version, so the two racers move to different targets.
        let third = sm_client()
            .await
            .put_secret_value()
            .secret_id(&f.name)
            .secret_string(crate::services::canary())
            .send()
            .await
            .expect("third")
            .version_id()
            .map(v)
            .expect("id");
        // put_secret_value without stages makes the new version current; restore the start.
        let seen = f.secret.read().await.expect("read");
        let start = seen.current.clone().expect("current");
        let race = |to: VersionId| {
            let (secret, seen, start) = (f.secret.clone(), seen.clone(), start.clone());
            tokio::spawn(async move { secret.repoint(&seen, &start, &to).await })
        };
        let targets: Vec<VersionId> = [f.pending.clone(), third, f.current.clone()]
            .into_iter()
            .filter(|t| t != &start)
            .take(2)
            .collect();
        let (a, b) = (race(targets[0].clone()), race(targets[1].clone()));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        assert_eq!(
            [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count(),
            1,
            "{a:?} {b:?}"
        );
        let winner = if a.is_ok() { &targets[0] } else { &targets[1] };
        let loser = if a.is_ok() { b } else { a };
        assert!(matches!(
            loser.expect_err("loser").kind,
            ErrorKind::Conflict { .. }
        ));
        assert_eq!(
            f.secret.read().await.expect("read").current.as_ref(),
            Some(winner)
        );
    }
}

#[tokio::test]
async fn a_lock_held_by_another_rotation_is_reported_and_only_its_holder_unlocks() {
    let f = fixture().await;
    let seen = f.secret.read().await.expect("read");
    let locked = f
        .secret
        .lock(&seen, "rotation-a", Some(7), &f.current, &f.pending)
        .await
        .expect("lock");
    assert_eq!(
        locked
            .locked_by_other("rotation-b")
            .map(|m| m.rotation_id.as_str()),
        Some("rotation-a")
    );
    let kept = f
        .secret
        .unlock(&locked, "rotation-b")
        .await
        .expect("not the holder");
    assert!(kept.marker.is_some());
    let released = f
        .secret
        .unlock(&locked, "rotation-a")
        .await
        .expect("holder");
    assert_eq!(released.marker, None);
}

#[tokio::test]
async fn a_missing_target_is_refused_before_any_write() {
    let f = fixture().await;
    let s = f.secret.read().await.expect("read");
    let ghost = v("00000000-0000-4000-8000-000000000000");
    assert_eq!(
        s.target(Some(&ghost)),
        Err(TargetProblem::Missing(ghost.to_string()))
    );
    assert_eq!(
        s.target(Some(&f.current)),
        Err(TargetProblem::AlreadyCurrent(f.current.to_string()))
    );
}

#[tokio::test]
async fn a_missing_secret_is_not_found() {
    let secret = secret_for(&format!("tenant.{}.stripe.k", unique("n"))).await;
    let err = secret.read().await.expect_err("missing");
    assert!(matches!(err.kind, ErrorKind::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("aws-secrets-manager DescribeSecret"),
        "{err}"
    );
}
