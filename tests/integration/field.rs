//! rotor in the setups users run, each case a report from the field: a token GraphQL will not
//! tell its identity to, and more (see docs/field-cases.md).

use serde_json::{Value, json};

use crate::apply::{apply_command, review_event, setup};
use crate::plan::{base_scenario, sandbox_state, scenario};

/// GraphQL refuses `viewer` for the token (`data: null`, a `FORBIDDEN` error): the rotation
/// still runs, rotor finds its own comment by the bot that wrote its marker, says so with
/// `-v`, and the pull request keeps one sticky comment across runs.
#[test]
fn a_token_graphql_will_not_name_still_rotates_and_keeps_one_comment() {
    let s = setup(&[]);
    let mut github = base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["viewer_refused"] = json!(true);
    scenario(&s.url, &github);
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .args(["-v"])
        .run();
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "success", "{report:#}\n{stderr}");
    assert!(
        stderr.contains("the token's identity could not be read"),
        "-v says how rotor found itself: {stderr}"
    );
    // Again: a noop that edits the same comment, never a second one.
    let (stdout, _) = apply_command(&s, &event, "pull_request_review").run();
    let again: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(again["result"], "noop", "{again:#}");
    let state = sandbox_state(&s.url);
    let rotors: Vec<&Value> = state["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .filter(|c| c["user_type"] == "Bot")
        .collect();
    assert_eq!(rotors.len(), 1, "one sticky comment: {state:#}");
    assert!(
        rotors[0]["edits"].as_u64().is_some_and(|n| n >= 1),
        "{state:#}"
    );
}

/// actions/checkout with `path: repo` puts the repository a level down, and a step cannot
/// change `GITHUB_WORKSPACE`: rotor says where the checkout is and what to give it, and works
/// with `--repo` (the action's `path` input).
#[test]
fn a_checkout_in_a_sub_path_is_named_and_works_with_its_path() {
    let mut r = crate::verify::Record::new(1);
    assert_eq!(r.apply(7, 0)["result"], "success");
    r.merge(7, crate::verify::Style::Merge);
    let origin = r.origin();
    let ws = r.s.w.dir.path().join("ws-sub-path");
    std::fs::create_dir_all(&ws).expect("workspace");
    let (github_ref, sha) = crate::checkout::runner_ref(&origin, "schedule", 0, "main");
    crate::checkout::checkout(
        &origin,
        &github_ref,
        &sha,
        crate::checkout::Inputs::default(),
        &ws.join("repo"),
    );
    let (code, stdout, stderr) = r
        .rotor_in(&ws)
        .env("GITHUB_WORKSPACE", &ws)
        .args(["drift"])
        .run_unchecked();
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("path: repo") && said.contains("--repo repo"),
        "the error names the checkout and actions/checkout's input: {said}"
    );
    let (code, stdout, stderr) = r
        .rotor_in(&ws)
        .env("GITHUB_WORKSPACE", &ws)
        .args(["--repo", "repo", "drift"])
        .run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
}

/// Holds an apply after its rotation, before its record is committed; returns the thread that
/// finishes it (exit code, stdout, stderr) once `release` is called.
/// A run of rotor going on in a thread: its exit code, stdout and stderr when joined.
type Running = std::thread::JoinHandle<(Option<i32>, String, String)>;

fn held_after_rotation(s: &crate::apply::Setup) -> (Running, impl FnOnce()) {
    let event = review_event(s.w.dir.path(), &s.w.head);
    let until = s.w.dir.path().join("commit-now");
    let thread = apply_command(s, &event, "pull_request_review").held_at("rotated", &until);
    (thread, move || std::fs::write(&until, "").expect("release"))
}

fn branch_tip(s: &crate::apply::Setup) -> String {
    crate::plan::git(&s.w.origin(), &["rev-parse", "rotate"])
}

/// A push to the pull request's branch between the gate and the commit: the record is not
/// committed on a commit nobody approved. The run ends failed (exit 1) naming the new head,
/// the pointer where the verified rotation left it and the marker final; once the branch is
/// back on the approved head, a re-run commits the record without rotating again.
#[test]
fn a_branch_pushed_after_the_approval_gets_no_record_until_it_is_back_on_the_approved_head() {
    let s = setup(&[]);
    let approved = s.w.head.clone();
    let (thread, release) = held_after_rotation(&s);
    let pushed = crate::attacks::push(
        &s,
        "rotate",
        &[("rotations/notes.txt", Some("unreviewed\n"))],
        "a push after the approval",
    );
    release();
    let (code, stdout, stderr) = thread.join().expect("thread");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "failed", "{report:#}");
    let said = report["errors"].to_string();
    assert!(
        said.contains("head_moved") && said.contains(&pushed),
        "{report:#}"
    );
    assert_eq!(
        branch_tip(&s),
        pushed,
        "nothing committed on the pushed head"
    );
    let custom = crate::services::block_on(s.bao.custom(&s.name));
    assert_eq!(
        (
            custom.get("current_version").map(String::as_str),
            custom.get("rotor_state").map(String::as_str)
        ),
        (Some("2"), Some("done")),
        "the rotation stands, its marker final"
    );

    // The branch is put back on the approved head (a force-push): a re-run commits the record
    // on it, without rotating again.
    crate::plan::git(
        &s.w.origin(),
        &["update-ref", "refs/heads/rotate", &approved],
    );
    crate::checkout::refresh(&s.w.origin());
    let upserts_before = app_upserts(&s);
    let report = crate::apply::apply(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
    let tip = branch_tip(&s);
    assert_eq!(
        crate::plan::git(&s.w.origin(), &["rev-parse", &format!("{tip}^")]),
        approved,
        "the record's parent is the approved head"
    );
    assert_eq!(app_upserts(&s), upserts_before, "not rotated again");
}

/// A force-push that replaces the approved head: the same refusal, naming the new head.
#[test]
fn a_force_push_after_the_approval_gets_no_record_on_the_new_head() {
    let s = setup(&[]);
    let (thread, release) = held_after_rotation(&s);
    // The branch rewritten: the approved commit is gone from it.
    let rewritten = crate::attacks::push(
        &s,
        "rewritten",
        &[("rotations/other.txt", Some("rewritten\n"))],
        "rewritten history",
    );
    crate::plan::git(
        &s.w.origin(),
        &["update-ref", "refs/heads/rotate", &rewritten],
    );
    crate::checkout::refresh(&s.w.origin());
    release();
    let (code, stdout, stderr) = thread.join().expect("thread");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains(&rewritten), "{stdout}");
    assert_eq!(branch_tip(&s), rewritten);
}

/// How many upserts the application has received.
fn app_upserts(s: &crate::apply::Setup) -> usize {
    reqwest::blocking::get(format!("{}/_sandbox/app/requests", s.url))
        .expect("app log")
        .json::<Vec<String>>()
        .expect("json")
        .iter()
        .filter(|l| l.starts_with("PUT /api/v1/secret-refs/"))
        .count()
}

/// A token for rotor with the metadata policy and the token's own look-up and renewal (what
/// the README's policy grants), with this lifetime.
fn token_with(s: &crate::apply::Setup, ttl: &str, renewable: bool, max: &str) -> String {
    use crate::services::block_on;
    let (status, _) = block_on(s.bao.root(
        reqwest::Method::PUT,
        "sys/policies/acl/rotor-self",
        Some(json!({"policy": "path \"auth/token/lookup-self\" { capabilities = [\"read\"] }\npath \"auth/token/renew-self\" { capabilities = [\"update\"] }\n"})),
    ));
    assert!(status < 300, "policy: {status}");
    let (status, body) = block_on(s.bao.root(
        reqwest::Method::POST,
        "auth/token/create",
        Some(
            json!({"policies": ["rotor-metadata", "rotor-self"], "no_default_policy": true,
                    "ttl": ttl, "renewable": renewable, "explicit_max_ttl": max}),
        ),
    ));
    assert_eq!(status, 200, "token: {body}");
    body["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

fn pointer_and_marker(s: &crate::apply::Setup) -> (Option<String>, Option<String>) {
    let custom = crate::services::block_on(s.bao.custom(&s.name));
    (
        custom.get("current_version").cloned(),
        custom.get("rotor_state").cloned(),
    )
}

/// A renewable token whose TTL (6 s) is shorter than the application's lag (8 s): rotor renews
/// it while it waits, and the final marker lands; the ref is not left locked half-way.
#[test]
fn a_renewable_token_shorter_than_the_wait_is_renewed_and_the_rotation_finishes() {
    let s = crate::apply::setup_configured(
        1,
        &[],
        |t| t,
        |c| c.replace("settle_timeout: 3s", "settle_timeout: 15s"),
        None,
    );
    crate::bounded::app_knob(&s.url, "cache_ms", json!(8000));
    let token = token_with(&s, "6s", true, "10m");
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .env("VAULT_TOKEN", &token)
        .run();
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["result"], "success", "{report:#}\n{stderr}");
    assert_eq!(
        pointer_and_marker(&s),
        (Some("2".to_owned()), Some("done".to_owned()))
    );
}

/// A token that cannot outlive a run (30 s, not renewable, where a run may need
/// settle_timeout + audit_timeout + 60 s) stops the run before any change, saying when it
/// expires; exit 4.
#[test]
fn a_token_that_cannot_outlive_the_run_stops_it_before_any_change() {
    let s = setup(&[]);
    let token = token_with(&s, "30s", false, "0");
    let event = review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = apply_command(&s, &event, "pull_request_review")
        .env("VAULT_TOKEN", &token)
        .expects_exit(4)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("the token expires in"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(pointer_and_marker(&s), (Some("1".to_owned()), None));
}

/// A token revoked (or expired) between the preconditions and the first write: the refusal is
/// reported as an expired token, not as a missing permission. Nothing changed; since the token
/// can no longer read the ref either, the run cannot confirm that and says to run again (exit
/// 1), which with a good token converges.
#[test]
fn a_write_refused_for_an_expired_token_says_so() {
    let s = setup(&[]);
    let token = token_with(&s, "1h", false, "0");
    let event = review_event(s.w.dir.path(), &s.w.head);
    let until = s.w.dir.path().join("go-on");
    let thread = apply_command(&s, &event, "pull_request_review")
        .env("VAULT_TOKEN", &token)
        .held_at("preflighted", &until);
    let (status, _) = crate::services::block_on(s.bao.root(
        reqwest::Method::POST,
        "auth/token/revoke",
        Some(json!({"token": token})),
    ));
    assert!(status < 300, "revoke: {status}");
    std::fs::write(&until, "").expect("release");
    let (code, stdout, stderr) = thread.join().expect("thread");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("has expired (or was revoked)") && !stdout.contains("permission denied"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(pointer_and_marker(&s), (Some("1".to_owned()), None));
    // With a good token, the same event converges: the rotation runs.
    let report = crate::apply::apply(&s, 0);
    assert_eq!(report["result"], "success", "{report:#}");
}

/// A rotation function on moto, as AWS has one: moto runs no code for it (its Lambda is told not
/// to use Docker), but keeps the function, and `RotateSecret` leaves its version `AWSPENDING`
/// when asked not to rotate immediately, as an unfinished rotation does. Returns its ARN.
fn rotation_function() -> String {
    let moto = crate::services::moto_url();
    let http = reqwest::blocking::Client::new();
    let auth = |service: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00"
        )
    };
    let config = http
        .post(format!("{moto}/moto-api/config"))
        .json(&json!({"lambda": {"use_docker": false}}))
        .send()
        .expect("moto config");
    assert!(config.status().is_success());
    let name = crate::services::unique("rotator");
    let role = http
        .post(format!("{moto}/"))
        .header("Authorization", auth("iam"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument=%7B%7D"
        ))
        .send()
        .expect("role");
    assert!(role.status().is_success(), "{:?}", role.text());
    const CODE: &str = "UEsDBBQAAAAAAAAAIVwIvdFXJgAAACYAAAAJAAAAcm90YXRlLnB5ZGVmIGhhbmRsZXIoZXZlbnQsIGNvbnRleHQpOgogICAgcGFzcwpQSwECFAMUAAAAAAAAACFcCL3RVyYAAAAmAAAACQAAAAAAAAAAAAAAgAEAAAAAcm90YXRlLnB5UEsFBgAAAAABAAEANwAAAE0AAAAAAA==";
    let function: Value = http
        .post(format!("{moto}/2015-03-31/functions"))
        .header("Authorization", auth("lambda"))
        .json(&json!({"FunctionName": name, "Runtime": "python3.12", "Handler": "rotate.handler",
                      "Role": format!("arn:aws:iam::123456789012:role/{name}"), "Code": {"ZipFile": CODE}}))
        .send()
        .expect("function")
        .json()
        .expect("json");
    function["FunctionArn"]
        .as_str()
        .unwrap_or_else(|| panic!("{function:#}"))
        .to_owned()
}

fn aws_settled_on_v1(a: &crate::faults::AwsWorld) {
    let described = crate::services::block_on(async {
        crate::services::sm_client()
            .await
            .describe_secret()
            .secret_id(&a.names[0])
            .send()
            .await
            .expect("describe")
    });
    let stages = described
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default();
    assert!(
        stages
            .get(&a.versions[0].0)
            .is_some_and(|s| s.iter().any(|l| l == "AWSCURRENT")),
        "AWSCURRENT stays on the first version: {stages:?}"
    );
    assert!(
        described
            .tags()
            .iter()
            .all(|t| !t.key().unwrap_or("").starts_with("rotor:")),
        "no marker was written"
    );
}

/// An AWS secret scheduled for deletion (`delete-secret --recovery-window-in-days 7`): exit 4
/// before any change, naming the date and `restore-secret`, in `plan` and in `apply`.
#[test]
fn an_aws_secret_scheduled_for_deletion_is_refused_before_any_change() {
    let a = crate::faults::aws_world_with(1, 0, 0.0, false, |n| {
        let (current, pending, _) = crate::services::block_on(crate::services::provision_aws(n));
        crate::services::block_on(async {
            crate::services::sm_client()
                .await
                .delete_secret()
                .secret_id(n)
                .recovery_window_in_days(7)
                .send()
                .await
                .expect("delete")
        });
        (current, pending)
    });
    let (stdout, stderr) = crate::faults::aws_apply(&a).expects_exit(4).run();
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("scheduled for deletion on") && said.contains("restore-secret"),
        "{said}"
    );
    aws_settled_on_v1(&a);
}

/// Rotation enabled, its function's unfinished rotation leaving `AWSPENDING` on a version the
/// service may never have received: rotor does not promote it, with or without `to`; exit 4
/// naming the function.
#[test]
fn an_aws_secret_whose_rotation_function_owns_the_pending_version_is_refused() {
    let a = crate::faults::aws_world_with(1, 0, 0.0, false, |n| {
        let (current, _, _) = crate::services::block_on(crate::services::provision_aws(n));
        let arn = rotation_function();
        let pending = crate::services::block_on(async {
            let c = crate::services::sm_client().await;
            c.rotate_secret()
                .secret_id(n)
                .rotation_lambda_arn(&arn)
                .rotation_rules(
                    aws_sdk_secretsmanager::types::RotationRulesType::builder()
                        .automatically_after_days(30)
                        .build(),
                )
                .rotate_immediately(false)
                .send()
                .await
                .expect("rotate")
                .version_id()
                .expect("the function's version")
                .to_owned()
        });
        (current, pending)
    });
    let (stdout, stderr) = crate::faults::aws_apply(&a).expects_exit(4).run();
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("rotation function arn:aws:lambda:") && said.contains("AWSPENDING"),
        "{said}"
    );
    aws_settled_on_v1(&a);
}

/// The backend rule names a region that holds a replica: rotor writes only to the primary, and
/// says where it is; exit 4 before any change.
#[test]
fn an_aws_replica_region_is_refused_naming_the_primary() {
    let a = crate::faults::aws_world_in("eu-west-1", 1, 0, 0.0, false, |n| {
        crate::services::block_on(async {
            let c = crate::services::sm_client().await;
            let created = c
                .create_secret()
                .name(n)
                .secret_string(crate::services::canary())
                .add_replica_regions(
                    aws_sdk_secretsmanager::types::ReplicaRegionType::builder()
                        .region("eu-west-1")
                        .build(),
                )
                .send()
                .await
                .expect("create");
            let put = c
                .put_secret_value()
                .secret_id(n)
                .secret_string(crate::services::canary())
                .version_stages("AWSPENDING")
                .send()
                .await
                .expect("put");
            (
                created.version_id().expect("id").to_owned(),
                put.version_id().expect("id").to_owned(),
            )
        })
    });
    let (stdout, stderr) = crate::faults::aws_apply(&a).expects_exit(4).run();
    let said = format!("{stdout}{stderr}");
    assert!(
        said.contains("replica") && said.contains("us-east-1"),
        "{said}"
    );
}
