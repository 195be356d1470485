//! Failures reported as what they are: an odd id on an unrelated AWS version blocks nothing; a
//! backend's definite refusal before the move is a precondition (4) in the backend's own words,
//! which `plan` warns about beforehand; a git remote that stays unreachable is 5; version states
//! have one spelling.

use serde_json::{Value, json};

use crate::apply::{apply_printed, setup, setup_with};
use crate::attacks::{marker, pointer};
use crate::faults::{aws_apply, aws_world_with};
use crate::plan::git;
use crate::services::{block_on, canary, sm_client};

/// A secret whose history holds a version with a `ClientRequestToken` like an operator's (an
/// underscore, not a UUID), once labelled `OPS` and unlabelled since; then the new value as
/// `AWSPENDING`.
fn with_an_odd_version(name: &str) -> (String, String) {
    block_on(async {
        let c = sm_client().await;
        let created = c
            .create_secret()
            .name(name)
            .secret_string(canary())
            .send()
            .await
            .expect("create");
        let odd = "ops_manual_fix_2026_11_01_000000000001";
        c.put_secret_value()
            .secret_id(name)
            .secret_string(canary())
            .client_request_token(odd)
            .version_stages("OPS")
            .send()
            .await
            .expect("odd version");
        c.update_secret_version_stage()
            .secret_id(name)
            .version_stage("OPS")
            .remove_from_version_id(odd)
            .send()
            .await
            .expect("remove OPS");
        let pending = c
            .put_secret_value()
            .secret_id(name)
            .secret_string(canary())
            .version_stages("AWSPENDING")
            .send()
            .await
            .expect("pending");
        (
            created.version_id().expect("id").to_owned(),
            pending.version_id().expect("id").to_owned(),
        )
    })
}

#[test]
fn an_odd_id_on_a_version_the_rotation_does_not_use_blocks_nothing() {
    let a = aws_world_with(1, 0, 0.0, false, with_an_odd_version);
    let (code, stdout, stderr) = aws_apply(&a).run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["result"], "success", "{report:#}");
    assert_eq!(report["refs"][0]["to"], a.versions[0].1.as_str());
}

#[test]
fn openbaos_limit_of_64_metadata_keys_is_warned_by_plan_and_refused_by_apply_in_its_words() {
    let s = setup(&[]);
    let mut custom = block_on(s.bao.custom(&s.name));
    for i in 0..62 {
        custom.insert(format!("team_note_{i:02}"), "x".to_owned());
    }
    block_on(s.bao.set_custom(&s.name, json!(custom)));
    let event = crate::plan::pr_event(s.w.dir.path(), &s.w.head);
    let (plan, _) = crate::plan::run_plan(&s.w, &s.url, &s.token.token, &event, &[], 0);
    assert_eq!(plan["warnings"][0]["code"], "metadata_full", "{plan:#}");
    let (report, printed) = apply_printed(&s, 4);
    assert_eq!(
        report["refs"][0]["error"]["code"], "backend_refused",
        "{report:#}"
    );
    assert!(
        printed.contains("64 keys"),
        "the backend's own words reach the log: {printed}"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"), "nothing moved");
    assert_eq!(marker(&s, &s.name), None, "no lock");
}

#[test]
fn a_git_remote_that_stays_unreachable_is_exit_5_not_a_precondition() {
    let s = setup(&[]);
    let ws = s.w.workspace("pull_request_review");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    git(
        &ws,
        &[
            "remote",
            "set-url",
            "origin",
            &format!("http://127.0.0.1:{port}/origin.git"),
        ],
    );
    let event = crate::apply::review_event(s.w.dir.path(), &s.w.head);
    let (stdout, stderr) = crate::apply::apply_command(&s, &event, "pull_request_review")
        .current_dir(&ws)
        .expects_exit(5)
        .run();
    assert!(
        format!("{stdout}{stderr}").contains("stayed unreachable"),
        "{stdout}{stderr}"
    );
    assert_eq!(pointer(&s, &s.name).as_deref(), Some("1"));
}

#[test]
fn version_states_have_one_spelling() {
    // The request names the destroyed version, so the target check meets it.
    let s = setup_with(&[], |text| {
        text.replace(".service_role\n", ".service_role\n    to: \"2\"\n")
    });
    block_on(s.bao.root(
        reqwest::Method::POST,
        &format!("secret/destroy/{}", s.name),
        Some(json!({"versions": [2]})),
    ));
    let (report, printed) = apply_printed(&s, 4);
    let message = report["refs"][0]["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("is destroyed, not enabled"), "{report:#}");
    assert!(!printed.contains("Destroyed"), "{printed}");
}

#[test]
fn a_secret_with_no_room_for_rotors_tags_is_warned_by_plan_on_aws_too() {
    // AWS allows 50 tags per secret; rotor's marker needs 6.
    let a = aws_world_with(1, 0, 0.0, false, |name| {
        let (current, pending, _) = block_on(crate::services::provision_aws(name));
        block_on(async {
            let c = sm_client().await;
            let mut req = c.tag_resource().secret_id(name);
            for i in 0..46 {
                req = req.tags(
                    aws_sdk_secretsmanager::types::Tag::builder()
                        .key(format!("team:note-{i:02}"))
                        .value("x")
                        .build(),
                );
            }
            req.send().await.expect("tags");
        });
        (current, pending)
    });
    let event = crate::plan::pr_event(a.w.dir.path(), &a.w.head);
    let aws: Vec<(&str, String)> = crate::services::aws_env();
    let mut extra: Vec<(&str, &str)> = aws
        .iter()
        .filter(|(k, _)| *k != "AWS_ENDPOINT_URL")
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    let endpoint = a.proxy.url();
    extra.push(("AWS_ENDPOINT_URL", endpoint.as_str()));
    let (plan, _) = crate::plan::run_plan(&a.w, &a.url, "unused", &event, &extra, 0);
    assert_eq!(plan["warnings"][0]["code"], "metadata_full", "{plan:#}");
    let message = plan["warnings"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("46 tags") && message.contains("allows 50"),
        "{message}"
    );
}
