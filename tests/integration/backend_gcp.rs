//! Google Cloud Secret Manager, end to end against the sandbox's stand-in of Secret Manager v1
//! (built from Google's discovery document; every answer validated against it): the whole
//! procedure, rollback by verification and by dispatch, drift, verify, `status`, `new --match`
//! over several pages, a conflict staged between rotor's read and its write, faults, the states
//! rotor must refuse, and the canary audit (no `versions.access` in the stand-in's log, no value
//! anywhere rotor writes).

use std::fs;
use std::path::PathBuf;

use serde_json::{Value, json};

use crate::apply::review_event;
use crate::common::{Rotor, rotor};
use crate::plan::{World, base_scenario, git, scenario};
use crate::services::unique;

/// The project the stand-in knows, and its number (answers name it by number).
const PROJECT: &str = "rotor-test";
/// A value no output may ever contain.
pub(crate) const CANARY: &str = "gcp-canary-value-5e1f";

pub(crate) struct GcpWorld {
    pub(crate) w: World,
    pub(crate) url: String,
    pub(crate) names: Vec<String>,
    pub(crate) id: String,
    /// The fault proxy between rotor and Secret Manager, when the world has one: the rule's
    /// `endpoint` is the proxy; GitHub and the application are the stand-in itself.
    pub(crate) proxy: Option<rotor_sandbox::Running>,
    _sandbox: rotor_sandbox::Running,
}

/// The secret id of `name` under the default template `{slug}_{provider}_{key}`.
pub(crate) fn secret_id(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    format!("{}_{}_{}", parts[1], parts[2], parts[3])
}

/// A client of the stand-in's control endpoints.
fn control() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

/// Seeds `name`'s secret: versions 1 and 2 (each holding the canary), the alias `current` on
/// 1, an unrelated alias, annotation and label that rotor must keep.
fn seed(url: &str, name: &str, extra: Value) -> Value {
    let mut body = json!({
        "project": PROJECT, "secret": secret_id(name),
        "versions": [{"payload": CANARY}, {"payload": CANARY}],
        "aliases": {"current": 1, "canary": 1},
        "annotations": {"owner": "team-payments"},
        "labels": {"tier": "gold"},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let resp = control()
        .post(format!("{url}/_sandbox/gcp/secrets"))
        .json(&body)
        .send()
        .expect("seed");
    assert!(resp.status().is_success(), "seed: {}", resp.status());
    resp.json().expect("json")
}

/// The raw state of `name`'s secret in the stand-in.
pub(crate) fn raw(g: &GcpWorld, name: &str) -> Value {
    control()
        .get(format!(
            "{}/_sandbox/gcp/secrets/{PROJECT}/{}",
            g.url,
            secret_id(name)
        ))
        .send()
        .expect("raw")
        .json()
        .expect("json")
}

pub(crate) fn alias(g: &GcpWorld, name: &str) -> String {
    let v = &raw(g, name)["versionAliases"]["current"];
    v.as_u64().map_or_else(
        || v.as_str().unwrap_or_default().to_owned(),
        |n| n.to_string(),
    )
}

pub(crate) fn annotations(g: &GcpWorld, name: &str) -> Value {
    raw(g, name)["annotations"].clone()
}

/// Every call the stand-in saw.
pub(crate) fn log(g: &GcpWorld) -> Value {
    control()
        .get(format!("{}/_sandbox/gcp/log", g.url))
        .send()
        .expect("log")
        .json()
        .expect("json")
}

pub(crate) fn no_access(g: &GcpWorld) {
    let calls = log(g);
    let accessed: Vec<&Value> = calls["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .filter(|c| {
            c["api"] == "secrets.versions.access"
                || c["path"].as_str().unwrap_or_default().contains(":access")
        })
        .collect();
    assert!(accessed.is_empty(), "a value was read: {accessed:#?}");
}

/// The config: Secret Manager at `endpoint`, GitHub and the application at `url`, and the
/// `staging` environment's settings (`{}` for none).
fn config(url: &str, endpoint: &str, staging: &str) -> String {
    format!(
        "version: 1\nadmins: {{users: [alice, bob]}}\nenvironments: {{staging: {staging}}}\n\
         backends:\n  - {{match: \"tenant.*.stripe.*\", type: gcp-secret-manager, project: {PROJECT}, endpoint: \"{endpoint}\"}}\n\
         app: {{base_url: \"{url}\", audit_timeout: 3s}}\nchecks: {{settle_timeout: 3s}}\n"
    )
}

/// Tells the application stand-in about `names` (resolving through Secret Manager's alias with
/// its own token, which may get versions but not access them); `bad` versions fail its checks.
fn app_knows(url: &str, names: &[String], bad: &[&str]) {
    let refs: serde_json::Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let slug = n.split('.').nth(1).unwrap_or_default();
            (
                n.clone(),
                json!({"tenant": slug, "provider": "stripe", "site_ids": [format!("site-{i}")]}),
            )
        })
        .collect();
    let resp = control()
        .put(format!("{url}/_sandbox/app"))
        .json(&json!({
            "token": "app-token", "refs": refs, "bad_versions": bad,
            "backend": {"type": "gcp", "endpoint": url, "token": "gcp-app", "project": PROJECT},
        }))
        .send()
        .expect("sandbox");
    assert_eq!(resp.status().as_u16(), 204);
}

/// A rotation pull request of `n` GCP refs, approved; `bad` versions fail the application's
/// checks; `extra` is merged into every seeded secret.
pub(crate) fn gcp_world(n: usize, bad: &[&str], extra: Value) -> GcpWorld {
    gcp_world_to(n, bad, extra, None)
}

/// As [`gcp_world`], with every ref's `to` named in the request.
fn gcp_world_to(n: usize, bad: &[&str], extra: Value, to: Option<&str>) -> GcpWorld {
    gcp_world_with(n, bad, extra, to, "{}", None)
}

/// As [`gcp_world_to`], with the `staging` environment's settings (e.g. a rollout), and, with
/// `faults`, a seeded fault proxy in Google's shapes between rotor and Secret Manager.
pub(crate) fn gcp_world_with(
    n: usize,
    bad: &[&str],
    extra: Value,
    to: Option<&str>,
    staging: &str,
    faults: Option<rotor_sandbox::fault::Faults>,
) -> GcpWorld {
    let slug = unique("gc");
    let names: Vec<String> = (0..n)
        .map(|i| format!("tenant.{slug}-{i}.stripe.secret_key"))
        .collect();
    let sandbox = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
    let url = sandbox.url();
    let proxy = faults.map(|f| {
        rotor_sandbox::start_fault_proxy("127.0.0.1:0".parse().expect("addr"), &url, f)
            .expect("proxy")
    });
    let endpoint = proxy
        .as_ref()
        .map_or_else(|| url.clone(), rotor_sandbox::Running::url);
    for name in &names {
        seed(&url, name, extra.clone());
    }
    let id = format!("2026-11-25-{slug}");
    let file = format!("{id}.yaml");
    let mut text = crate::plan::request(&id, &names);
    if let Some(to) = to {
        for n in &names {
            text = text.replace(
                &format!("  - ref: {n}\n"),
                &format!("  - ref: {n}\n    to: \"{to}\"\n"),
            );
        }
    }
    let w = crate::plan::world(
        &config(&url, &endpoint, staging),
        &[(file.as_str(), text)],
        &[],
    );
    scenario(&url, &base_scenario(&w, &file));
    app_knows(&url, &names, bad);
    GcpWorld {
        w,
        url,
        names,
        id,
        proxy,
        _sandbox: sandbox,
    }
}

/// A command of rotor with the GitHub and Google environment of this world.
fn with_env(g: &GcpWorld, cmd: Rotor) -> Rotor {
    cmd.env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_TOKEN", "ghs_repo_token")
        .env("GITHUB_API_URL", &g.url)
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_STEP_SUMMARY", g.w.dir.path().join("summary.md"))
        .env("GOOGLE_OAUTH_ACCESS_TOKEN", "gcp-rotor")
        .env("ROTOR_APP_TOKEN", "app-token")
}

pub(crate) fn gcp_apply(g: &GcpWorld) -> Rotor {
    let event = review_event(g.w.dir.path(), &g.w.head);
    with_env(g, rotor())
        .current_dir(&g.w.checkout)
        .env("GITHUB_EVENT_NAME", "pull_request_review")
        .env("GITHUB_EVENT_PATH", &event)
        .args(["apply", "--format", "json"])
}

pub(crate) fn json_of(cmd: Rotor, code: i32) -> (Value, String) {
    let (stdout, stderr) = cmd.expects_exit(code).run();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("one JSON object ({e}): {stdout}\n{stderr}"));
    (report, format!("{stdout}{stderr}"))
}

pub(crate) fn artifact_on_branch(g: &GcpWorld) -> String {
    git(
        &g.w.origin(),
        &[
            "show",
            &format!("rotate:docs/security/rotations/{}.md", g.id),
        ],
    )
}

/// Merges the pull request's branch into `main` on the remote, as GitHub's merge button would.
fn merge(g: &GcpWorld) -> String {
    let origin = g.w.origin();
    git(
        &origin,
        &["update-ref", "refs/heads/main", "refs/heads/rotate"],
    );
    crate::checkout::close_pull(&origin, 7);
    crate::checkout::refresh(&origin);
    let sha = git(&origin, &["rev-parse", "main"]);
    let mut github = base_scenario(&g.w, &format!("{}.yaml", g.id));
    github["branches"]["main"] = json!(sha);
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    scenario(&g.url, &github);
    sha
}

/// A checkout of `main` as a scheduled job makes it.
fn main_checkout(g: &GcpWorld) -> PathBuf {
    let origin = g.w.origin();
    let sha = git(&origin, &["rev-parse", "main"]);
    let ws = g.w.dir.path().join(unique("ws-main"));
    crate::checkout::checkout(
        &origin,
        "refs/heads/main",
        &sha,
        crate::checkout::Inputs::default(),
        &ws,
    );
    ws
}

#[test]
fn gcp_a_rotation_moves_the_alias_in_one_patch_keeps_everything_else_and_reads_no_value() {
    let g = gcp_world(2, &[], json!({}));
    let (report, printed) = json_of(gcp_apply(&g), 0);
    assert_eq!(report["result"], "success", "{report:#}");
    for (i, name) in g.names.iter().enumerate() {
        assert_eq!(
            report["refs"][i]["backend"], "gcp-secret-manager",
            "{report:#}"
        );
        assert_eq!(alias(&g, name), "2", "{name}");
        let state = raw(&g, name);
        assert_eq!(
            state["versionAliases"]["canary"],
            json!(1),
            "another alias kept: {state:#}"
        );
        let a = &state["annotations"];
        assert_eq!(
            a["owner"], "team-payments",
            "other annotations kept: {state:#}"
        );
        assert_eq!(a["rotor-state"], "done", "{state:#}");
        assert_eq!(a["rotor-rotation-id"], g.id.as_str());
        assert_eq!(
            (a["rotor-from"].as_str(), a["rotor-to"].as_str()),
            (Some("1"), Some("2"))
        );
        assert_eq!(a["rotor-previous"], "1");
        assert_eq!(a["rotor-pull-request"], "7");
        assert_eq!(state["labels"]["tier"], "gold", "labels kept: {state:#}");
    }
    // The lock and the move are one patch per ref, and the final marker another: two patches.
    let counts = &log(&g)["counts"];
    assert_eq!(counts["secrets.patch"], json!(4), "{counts:#}");
    no_access(&g);
    let artifact = artifact_on_branch(&g);
    assert!(!artifact.contains(CANARY) && !printed.contains(CANARY));
    // Converges: a re-run is a noop that changes nothing.
    let before = raw(&g, &g.names[0])["etag"].clone();
    let (again, _) = json_of(gcp_apply(&g), 0);
    assert_eq!(again["result"], "noop", "{again:#}");
    assert_eq!(raw(&g, &g.names[0])["etag"], before, "nothing written");
}

#[test]
fn gcp_plan_shows_the_move_and_changes_nothing() {
    let g = gcp_world(1, &[], json!({}));
    let before = raw(&g, &g.names[0])["etag"].clone();
    let event = crate::plan::pr_event(g.w.dir.path(), &g.w.head);
    let (report, _) = json_of(
        with_env(&g, rotor())
            .current_dir(&g.w.checkout)
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .args(["plan", "--format", "json"]),
        0,
    );
    assert_eq!(report["result"], "planned", "{report:#}");
    let r = &report["refs"][0];
    assert_eq!(
        (r["from"].as_str(), r["to"].as_str()),
        (Some("1"), Some("2")),
        "{report:#}"
    );
    assert_eq!(r["backend"], "gcp-secret-manager", "{report:#}");
    assert_eq!(raw(&g, &g.names[0])["etag"], before, "plan writes nothing");
    no_access(&g);
}

#[test]
fn gcp_the_read_only_role_plans_and_apply_with_it_names_the_missing_permission() {
    // The read-only twin of rotor's role: get and list secrets, list versions; no update.
    let g = gcp_world(1, &[], json!({}));
    let resp = control()
        .put(format!("{}/_sandbox/gcp/tokens/gcp-read", g.url))
        .json(&json!({"name": "read", "permissions": [
            "secretmanager.secrets.get", "secretmanager.secrets.list", "secretmanager.versions.list"]}))
        .send()
        .expect("token");
    assert!(resp.status().is_success(), "{}", resp.status());
    let event = crate::plan::pr_event(g.w.dir.path(), &g.w.head);
    let (report, _) = json_of(
        with_env(&g, rotor())
            .current_dir(&g.w.checkout)
            .env("GOOGLE_OAUTH_ACCESS_TOKEN", "gcp-read")
            .env("GITHUB_EVENT_NAME", "pull_request")
            .env("GITHUB_EVENT_PATH", &event)
            .args(["plan", "--format", "json"]),
        0,
    );
    assert_eq!(report["result"], "planned", "{report:#}");
    let (_, printed) = json_of(
        gcp_apply(&g).env("GOOGLE_OAUTH_ACCESS_TOKEN", "gcp-read"),
        4,
    );
    assert!(
        printed.contains("secretmanager.secrets.update"),
        "the refusal names the permission: {printed}"
    );
    assert_eq!(alias(&g, &g.names[0]), "1", "nothing changed");
    assert!(annotations(&g, &g.names[0]).get("rotor-state").is_none());
    no_access(&g);
}

#[test]
fn gcp_status_shows_the_alias_the_pending_version_and_the_marker() {
    let g = gcp_world(1, &[], json!({}));
    let (stdout, stderr) = with_env(&g, rotor())
        .current_dir(&g.w.checkout)
        .args(["status", "--format", "json", &g.names[0]])
        .expects_exit(0)
        .run();
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let r = &report["refs"][0];
    assert_eq!(r["backend"], "gcp-secret-manager", "{report:#}");
    assert_eq!(r["current"], "1", "{report:#}");
    assert_eq!(r["pending"], "2", "{report:#}");
    assert_eq!(
        r["versions"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    no_access(&g);
}

#[test]
fn gcp_a_version_the_application_rejects_is_rolled_back_to_the_alias_it_had() {
    let g = gcp_world(1, &["2"], json!({}));
    let (report, _) = json_of(gcp_apply(&g), 1);
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    assert_eq!(alias(&g, &g.names[0]), "1");
    assert_eq!(annotations(&g, &g.names[0])["rotor-state"], "rolled_back");
    no_access(&g);
}

#[test]
fn gcp_a_move_of_the_alias_between_rotors_read_and_its_patch_is_a_conflict_and_changes_nothing() {
    let g = gcp_world(1, &[], json!({}));
    let name = &g.names[0];
    // Someone moves a label (another alias) just before rotor's patch: the etag is stale.
    let resp = control()
        .post(format!("{}/_sandbox/gcp/races", g.url))
        .json(
            &json!({"project": PROJECT, "secret": secret_id(name), "updateMask": "versionAliases",
                      "patch": {"versionAliases": {"current": "1", "canary": "2"}}}),
        )
        .send()
        .expect("race");
    assert!(resp.status().is_success(), "{}", resp.status());
    let (report, printed) = json_of(gcp_apply(&g), 4);
    assert!(
        printed.contains("etag") || printed.contains("conflict"),
        "{printed}"
    );
    assert_eq!(report["refs"][0]["result"], "not_started", "{report:#}");
    let state = raw(&g, name);
    assert_eq!(state["versionAliases"]["current"], json!(1), "{state:#}");
    assert_eq!(
        state["versionAliases"]["canary"],
        json!(2),
        "the other writer's change kept"
    );
    assert!(
        state["annotations"].get("rotor-state").is_none(),
        "no marker: {state:#}"
    );
}

#[test]
fn gcp_a_change_of_someone_elses_after_the_move_is_kept_and_rotor_finishes() {
    // Between rotor's move (the first patch) and its final marker (the second), someone
    // moves another alias and changes a label: the final marker's etag is stale, but the alias
    // and rotor's marker are as rotor left them, so it sends the marker again over the maps as
    // they are now, keeping the other writer's change.
    let g = gcp_world(1, &[], json!({}));
    let name = &g.names[0];
    let resp = control()
        .post(format!("{}/_sandbox/gcp/races", g.url))
        .json(&json!({"project": PROJECT, "secret": secret_id(name), "after": 1,
                      "updateMask": "versionAliases,labels",
                      "patch": {"versionAliases": {"current": "2", "canary": "2"}, "labels": {"tier": "platinum"}}}))
        .send()
        .expect("race");
    assert!(resp.status().is_success(), "{}", resp.status());
    let (report, printed) = json_of(gcp_apply(&g), 0);
    assert_eq!(report["result"], "success", "{report:#}\n{printed}");
    let state = raw(&g, name);
    assert_eq!(state["versionAliases"]["current"], json!(2), "{state:#}");
    let a = &state["annotations"];
    assert_eq!(a["rotor-state"], "done", "{state:#}");
    assert_eq!(a["owner"], "team-payments", "{state:#}");
    assert_eq!(
        state["versionAliases"]["canary"],
        json!(2),
        "the other writer's alias kept: {state:#}"
    );
    assert_eq!(state["labels"]["tier"], "platinum", "{state:#}");
}

#[test]
fn gcp_the_alias_moved_by_someone_else_while_rotor_holds_the_lock_fails_the_ref_naming_it() {
    let g = gcp_world(1, &[], json!({}));
    let name = &g.names[0];
    let resp = control()
        .post(format!("{}/_sandbox/gcp/races", g.url))
        .json(
            &json!({"project": PROJECT, "secret": secret_id(name), "after": 1,
                      "updateMask": "versionAliases",
                      "patch": {"versionAliases": {"current": "1", "canary": "1"}}}),
        )
        .send()
        .expect("race");
    assert!(resp.status().is_success(), "{}", resp.status());
    let (code, stdout, stderr) = gcp_apply(&g).run_unchecked();
    assert_ne!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("another writer changed the alias or rotor's marker"),
        "{stdout}\n{stderr}"
    );
    no_access(&g);
}

#[test]
fn gcp_states_rotor_must_refuse_are_preconditions_with_the_gcloud_remedy() {
    // No alias yet.
    let g = gcp_world(1, &[], json!({"aliases": {}}));
    let (_, printed) = json_of(gcp_apply(&g), 4);
    assert!(
        printed.contains("gcloud secrets update")
            && printed.contains("--update-version-aliases=current=<N>"),
        "{printed}"
    );
    // A disabled version is never pending; named as the target, it is refused with the remedy.
    let disabled =
        json!({"versions": [{"payload": CANARY}, {"payload": CANARY, "state": "DISABLED"}]});
    let g = gcp_world(1, &[], disabled.clone());
    let (_, printed) = json_of(gcp_apply(&g), 4);
    assert!(printed.contains("no pending version"), "{printed}");
    let g = gcp_world_to(1, &[], disabled, Some("2"));
    let (_, printed) = json_of(gcp_apply(&g), 4);
    assert!(
        printed.contains("target version 2 is disabled")
            && printed.contains("gcloud secrets versions enable 2"),
        "{printed}"
    );
    assert_eq!(alias(&g, &g.names[0]), "1");
    // A secret that expires before the run could end.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let g = gcp_world(1, &[], json!({"expireTime": soon}));
    let (_, printed) = json_of(gcp_apply(&g), 4);
    assert!(printed.contains("--remove-expiration"), "{printed}");
    assert_eq!(alias(&g, &g.names[0]), "1");
    no_access(&g);
}

#[test]
fn gcp_throttling_outages_and_lost_patches_converge_with_nothing_sent_twice() {
    let g = gcp_world(1, &[], json!({}));
    let arm = |method: &str, path: &str, kind: &str, times: u32| {
        let resp = control()
            .post(format!("{}/_sandbox/gcp/faults", g.url))
            .json(&json!({"method": method, "path": path, "kind": kind, "times": times}))
            .send()
            .expect("fault");
        assert!(resp.status().is_success(), "{}", resp.status());
    };
    arm("GET", "/versions", "quota", 2);
    arm("GET", "/secrets/", "unavailable", 1);
    arm("PATCH", "updateMask", "lost", 1);
    arm("PATCH", "updateMask", "quota", 1);
    let (report, printed) = json_of(gcp_apply(&g), 0);
    assert_eq!(report["result"], "success", "{report:#}\n{printed}");
    assert_eq!(alias(&g, &g.names[0]), "2");
    assert_eq!(annotations(&g, &g.names[0])["rotor-state"], "done");
    no_access(&g);
}

#[test]
fn gcp_rollback_by_dispatch_drift_and_verify_read_the_alias() {
    let g = gcp_world(1, &[], json!({}));
    let (report, _) = json_of(gcp_apply(&g), 0);
    assert_eq!(report["result"], "success", "{report:#}");
    merge(&g);
    // verify online: clean.
    let ws = main_checkout(&g);
    let (code, stdout, stderr) = with_env(&g, rotor())
        .current_dir(&ws)
        .args(["verify", "--format", "json"])
        .run_unchecked();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    // drift: clean, then the alias moved by hand is drift.
    let drift = |code: i32| {
        let (stdout, stderr) = with_env(&g, rotor())
            .current_dir(&ws)
            .args(["drift", "--format", "json"])
            .expects_exit(code)
            .run();
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"))
    };
    drift(0);
    let name = &g.names[0];
    let moved = control()
        .put(format!(
            "{}/_sandbox/gcp/secrets/{PROJECT}/{}/aliases/current",
            g.url,
            secret_id(name)
        ))
        .json(&json!({"version": 1}))
        .send()
        .expect("move");
    assert!(moved.status().is_success());
    drift(1);
    // Put it back, and roll back by dispatch from main.
    let back = control()
        .put(format!(
            "{}/_sandbox/gcp/secrets/{PROJECT}/{}/aliases/current",
            g.url,
            secret_id(name)
        ))
        .json(&json!({"version": 2}))
        .send()
        .expect("move");
    assert!(back.status().is_success());
    let mut event: Value = serde_json::from_str(
        &fs::read_to_string(crate::common::fixture(
            "github/webhooks/workflow_dispatch.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    event["inputs"] = json!({"rotation_id": g.id, "reason": "errors after the rotation"});
    event["ref"] = json!("refs/heads/main");
    event["repository"]["full_name"] = json!("my-org/tenants");
    let path = g.w.dir.path().join("dispatch.json");
    fs::write(&path, event.to_string()).expect("event");
    let (report, _) = json_of(
        with_env(&g, rotor())
            .current_dir(&ws)
            .env("GITHUB_EVENT_NAME", "workflow_dispatch")
            .env("GITHUB_EVENT_PATH", &path)
            .env("GITHUB_REF", "refs/heads/main")
            .env("GITHUB_ACTOR", "bob")
            .env("GITHUB_TRIGGERING_ACTOR", "bob")
            .args(["rollback", "--format", "json"]),
        0,
    );
    assert_eq!(report["result"], "rolled_back", "{report:#}");
    assert_eq!(alias(&g, name), "1");
    assert_eq!(annotations(&g, name)["rotor-previous"], "2");
    no_access(&g);
}

#[test]
fn gcp_new_match_reads_every_page_of_secrets_list_filtered_on_the_prefix() {
    let g = gcp_world(1, &[], json!({}));
    // 620 more secrets of the same shape (over one page of 500), and some that are not rotor's.
    let slug = unique("nm");
    let names: Vec<String> = (0..620)
        .map(|i| format!("tenant.{slug}-{i}.stripe.secret_key"))
        .collect();
    for name in &names {
        seed(
            &g.url,
            name,
            json!({"versions": [{"payload": CANARY}, {"payload": CANARY}]}),
        );
    }
    app_knows(&g.url, &names, &[]);
    for other in ["billing-db-password", "ci_token"] {
        let resp = control()
            .post(format!("{}/_sandbox/gcp/secrets", g.url))
            .json(&json!({"project": PROJECT, "secret": other, "versions": 1}))
            .send()
            .expect("seed");
        assert!(resp.status().is_success());
    }
    let (code, stdout, stderr) = with_env(&g, rotor())
        .current_dir(&g.w.checkout)
        .args([
            "new",
            "2026-12-05-gcp-all",
            "--environment",
            "staging",
            "--reason",
            "rotate every stripe key",
            "--match",
            &format!("tenant.{slug}-*.stripe.*"),
            "--dry-run",
            "--format",
            "json",
        ])
        .run_unchecked();
    let short = |t: &str| t.chars().take(1500).collect::<String>();
    assert_eq!(code, Some(0), "{}\n{}", short(&stdout), short(&stderr));
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    let refs = report["refs"].as_array().map_or(0, Vec::len);
    assert_eq!(refs, 620, "{}", short(&stdout));
    let listed = log(&g)["counts"]["secrets.list"].as_u64().unwrap_or(0);
    assert!(listed >= 2, "every page read: {listed} list calls");
    no_access(&g);
}

#[test]
fn gcp_application_default_credentials_are_read_as_googles_library_reads_them() {
    // No GOOGLE_OAUTH_ACCESS_TOKEN: an `authorized_user` file (what `gcloud auth
    // application-default login` writes) named by GOOGLE_APPLICATION_CREDENTIALS, whose token
    // endpoint is the stand-in's; the refresh token is exchanged for rotor's access token.
    let g = gcp_world(1, &[], json!({}));
    let adc = g.w.dir.path().join("adc.json");
    fs::write(
        &adc,
        json!({
            "type": "authorized_user", "client_id": "rotor-test.apps.googleusercontent.com",
            "client_secret": "not-a-secret", "refresh_token": "gcp-rotor",
            "token_uri": format!("{}/_sandbox/gcp/oauth2/token", g.url),
        })
        .to_string(),
    )
    .expect("adc");
    let cmd = gcp_apply(&g)
        .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &adc)
        .env("GITHUB_ACTIONS", "true");
    let (report, printed) = json_of(cmd, 0);
    assert_eq!(report["result"], "success", "{report:#}\n{printed}");
    assert_eq!(alias(&g, &g.names[0]), "2");
    let calls = log(&g);
    assert!(
        calls["counts"]["oauth2.token"].as_u64().unwrap_or(0) >= 1,
        "the token came from the credentials file: {:#}",
        calls["counts"]
    );
    // The derived access token is masked in the job's log.
    assert!(printed.contains("::add-mask::gcp-rotor"), "{printed}");
    // A file whose refresh token Google refuses is the credentials' failure, before any change.
    fs::write(
        &adc,
        json!({
            "type": "authorized_user", "client_id": "x", "client_secret": "y",
            "refresh_token": "revoked", "token_uri": format!("{}/_sandbox/gcp/oauth2/token", g.url),
        })
        .to_string(),
    )
    .expect("adc");
    let g2 = gcp_world(1, &[], json!({}));
    let cmd = gcp_apply(&g2)
        .env_remove("GOOGLE_OAUTH_ACCESS_TOKEN")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &adc);
    let (code, stdout, stderr) = cmd.run_unchecked();
    assert_ne!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("application default credentials"),
        "{stdout}\n{stderr}"
    );
    assert_eq!(alias(&g2, &g2.names[0]), "1", "nothing changed");
}
