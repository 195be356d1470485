//! The example workflows (`examples/workflows/*.yml`) run in the shape they have: for each
//! event a workflow listens to, every job whose `if:` holds for GitHub's payload runs, in a
//! workspace made with the job's own actions/checkout inputs, and its rotor step runs through
//! `action/run.sh` with the step's `with:` inputs. An example that cannot work fails here.
//!
//! What is simulated, and how: expressions by `expr.rs`; `secrets.*` by test tokens; cloud
//! credential steps (configure-aws-credentials) by the OpenBao token the world uses; a GitHub
//! App token step (`actions/create-github-app-token`) by a token output. Nothing else of the
//! runner is.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::apply::{Setup, review_event};
use crate::checkout::{Inputs, runner_ref};
use crate::common::{fixture, root};
use crate::expr::{eval, interpolate, truthy};
use crate::plan::{git, pr_event};

/// The example workflows, parsed.
fn workflows() -> Vec<(String, Value)> {
    let dir = root().join("examples/workflows");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("examples/workflows")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = fs::read_to_string(&p).expect("read");
            let v: Value = serde_norway::from_str(&text).expect("YAML");
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                v,
            )
        })
        .collect()
}

/// Whether workflow `wf` runs on `event` with this payload's action.
fn listens(wf: &Value, event: &str, payload: &Value) -> bool {
    let on = &wf["on"];
    let spec = match on {
        Value::String(s) => return s == event,
        Value::Array(list) => return list.iter().any(|e| e == event),
        Value::Object(map) => match map.get(event) {
            Some(spec) => spec,
            None => return false,
        },
        _ => return false,
    };
    match (
        spec.get("types"),
        payload.get("action").and_then(Value::as_str),
    ) {
        (Some(Value::Array(types)), Some(action)) => types.iter().any(|t| t == action),
        _ => true,
    }
}

/// What one job did.
#[derive(Debug, Clone)]
struct Ran {
    workflow: String,
    job: String,
    command: String,
    code: Option<i32>,
    result: String,
    env: BTreeMap<String, String>,
}

/// Every job of every example that runs for `event` with `payload`, run; a `workflow_dispatch`
/// names its workflow (`only`), as dispatching does.
fn dispatch(s: &Setup, event: &str, payload: &Value) -> Vec<Ran> {
    dispatch_to(s, event, payload, None)
}

fn dispatch_to(s: &Setup, event: &str, payload: &Value, only: Option<&str>) -> Vec<Ran> {
    let origin = s.w.origin();
    let pull = payload
        .pointer("/pull_request/number")
        .or_else(|| payload.pointer("/issue/number"))
        .and_then(Value::as_u64)
        .unwrap_or(7);
    let (github_ref, sha) = runner_ref(&origin, event, pull, "main");
    let path =
        s.w.dir
            .path()
            .join(format!("event-{}.json", crate::services::unique("e")));
    fs::write(&path, payload.to_string()).expect("event");
    let mut ran = Vec::new();
    for (file, wf) in workflows() {
        if !listens(&wf, event, payload) || only.is_some_and(|o| o != file) {
            continue;
        }
        let jobs = wf["jobs"].as_object().expect("jobs");
        for (name, job) in jobs {
            let mut cx = json!({
                "github": {"event_name": event, "event": payload, "ref": github_ref,
                           "sha": sha, "token": "ghs_repo_token", "repository": "my-org/tenants"},
                "inputs": payload.get("inputs").cloned().unwrap_or(json!({})),
                "secrets": {"ROTOR_APP_TOKEN": "app-token", "GITHUB_TOKEN": "ghs_repo_token",
                            "ROTOR_APP_READ_TOKEN": "app-token",
                            "ROTOR_MEMBERS_APP_CLIENT_ID": "Iv1.members",
                            "ROTOR_MEMBERS_APP_KEY": "-----BEGIN RSA PRIVATE KEY-----"},
                "vars": {},
                "steps": {},
            });
            if let Some(cond) = job.get("if").and_then(Value::as_str)
                && !truthy(&eval(cond, &cx))
            {
                continue;
            }
            // The job's `env:`, evaluated as the runner does before its steps.
            let mut env = serde_json::Map::new();
            for (k, v) in job
                .get("env")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                env.insert(k.clone(), json!(interpolate(&text, &cx)));
            }
            cx["env"] = Value::Object(env);
            ran.extend(run_job(
                s,
                &file,
                name,
                job,
                &mut cx,
                event,
                &github_ref,
                &sha,
                &path,
            ));
        }
    }
    ran
}

#[allow(clippy::too_many_arguments)]
fn run_job(
    s: &Setup,
    file: &str,
    name: &str,
    job: &Value,
    cx: &mut Value,
    event: &str,
    github_ref: &str,
    sha: &str,
    event_path: &Path,
) -> Vec<Ran> {
    let mut ws: Option<PathBuf> = None;
    let mut ran = Vec::new();
    for step in job["steps"].as_array().expect("steps") {
        if let Some(cond) = step.get("if").and_then(Value::as_str)
            && !truthy(&eval(cond, cx))
        {
            continue;
        }
        let with: BTreeMap<String, String> = step
            .get("with")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        let text = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        (k.clone(), interpolate(&text, cx))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let uses = step.get("uses").and_then(Value::as_str).unwrap_or("");
        if uses.starts_with("actions/checkout@") {
            let inputs = Inputs {
                fetch_depth: with
                    .get("fetch-depth")
                    .map_or(1, |d| d.parse().expect("fetch-depth")),
                persist_credentials: with.get("persist-credentials").is_none_or(|p| p == "true"),
            };
            assert!(
                !with.contains_key("ref"),
                "{file} {name}: rotor fetches what it needs; check out what the event gives"
            );
            let dest =
                s.w.dir
                    .path()
                    .join(format!("ws-{}", crate::services::unique(name)));
            crate::checkout::checkout(&s.w.origin(), github_ref, sha, inputs, &dest);
            ws = Some(dest);
        } else if uses.starts_with("actions/create-github-app-token@") {
            if let Some(id) = step.get("id").and_then(Value::as_str) {
                cx["steps"][id] = json!({"outputs": {"token": "ghs_app_installation_token"}});
            }
        } else if uses.starts_with("actions/upload-artifact@") {
            // What a job keeps must be where the job wrote it.
            let dir = ws.clone().expect("a checkout before the upload");
            let path = with.get("path").expect("upload-artifact path");
            assert!(
                dir.join(path).is_file(),
                "{file} {name}: uploads {path}, which the job did not write"
            );
        } else if uses.starts_with("OWNER/rotor@") || uses == "./" {
            let dir = ws.clone().unwrap_or_else(|| {
                panic!("{file} {name}: the rotor step runs before any checkout")
            });
            let (command, code, result, env) =
                run_rotor(s, &with, &dir, event, github_ref, sha, event_path);
            ran.push(Ran {
                workflow: file.to_owned(),
                job: name.to_owned(),
                command,
                code,
                result,
                env,
            });
        }
    }
    assert!(!ran.is_empty(), "{file} {name}: no rotor step");
    ran
}

/// Runs `action/run.sh` as the action's second step would, with the step's inputs.
fn run_rotor(
    s: &Setup,
    with: &BTreeMap<String, String>,
    ws: &Path,
    event: &str,
    github_ref: &str,
    sha: &str,
    event_path: &Path,
) -> (String, Option<i32>, String, BTreeMap<String, String>) {
    let input = |k: &str, default: &str| with.get(k).cloned().unwrap_or_else(|| default.to_owned());
    let outputs =
        s.w.dir
            .path()
            .join(format!("outputs-{}", crate::services::unique("o")));
    let env: BTreeMap<String, String> = [
        ("INPUT_COMMAND", input("command", "")),
        ("INPUT_CONFIG", input("config", ".github/rotor.yml")),
        ("INPUT_ROTATION_ID", input("rotation-id", "")),
        ("INPUT_REASON", input("reason", "")),
        ("INPUT_DRY_RUN", input("dry-run", "false")),
        ("INPUT_FORMAT", input("format", "text")),
        ("INPUT_SINCE", input("since", "")),
        ("INPUT_UNTIL", input("until", "")),
        ("INPUT_OUT", input("out", "")),
        ("INPUT_OFFLINE", input("offline", "false")),
        ("INPUT_FORCE", input("force", "false")),
        ("INPUT_REFS", input("refs", "")),
        ("GITHUB_TOKEN", input("github-token", "ghs_repo_token")),
        ("ROTOR_ORG_TOKEN", input("org-token", "")),
        ("ROTOR_APP_TOKEN", input("app-token", "")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // The runner's actor is whoever triggered the run: the event's sender.
    let actor = read(event_path)["sender"]["login"]
        .as_str()
        .unwrap_or("bob")
        .to_owned();
    let mut cmd = std::process::Command::new("bash");
    cmd.arg(root().join("action/run.sh"))
        .current_dir(ws)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", s.w.dir.path())
        .env("ROTOR_BIN", assert_cmd::cargo::cargo_bin("rotor"))
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_WORKSPACE", ws)
        .env("GITHUB_REPOSITORY", "my-org/tenants")
        .env("GITHUB_API_URL", &s.url)
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_EVENT_NAME", event)
        .env("GITHUB_EVENT_PATH", event_path)
        .env("GITHUB_REF", github_ref)
        .env("GITHUB_SHA", sha)
        .env("GITHUB_ACTOR", &actor)
        .env("GITHUB_TRIGGERING_ACTOR", &actor)
        .env("GITHUB_RUN_ID", "5151")
        .env("GITHUB_OUTPUT", &outputs)
        .env("GITHUB_STEP_SUMMARY", s.w.dir.path().join("summary.md"))
        // The cloud-credentials step's stand-in: the world's backend is OpenBao.
        .env("VAULT_TOKEN", &s.token.token);
    for (k, v) in &env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains(crate::common::CANARY_PREFIX)
            && !stderr.contains(crate::common::CANARY_PREFIX),
        "a secret value was printed"
    );
    let written = fs::read_to_string(&outputs).unwrap_or_default();
    let result = written
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("result="))
        .unwrap_or("")
        .to_owned();
    assert!(
        out.status.code() == Some(0),
        "{} exited {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        env["INPUT_COMMAND"],
        out.status.code()
    );
    (env["INPUT_COMMAND"].clone(), out.status.code(), result, env)
}

fn one(ran: &[Ran], what: &str) -> Ran {
    assert_eq!(ran.len(), 1, "{what}: exactly one job runs: {ran:#?}");
    ran[0].clone()
}

fn comment(s: &Setup, body: &str) -> Value {
    let mut v: Value = serde_json::from_str(
        &fs::read_to_string(fixture(
            "github/webhooks/issue_comment.created.with-organization.json",
        ))
        .expect("fixture"),
    )
    .expect("json");
    v["issue"]["number"] = json!(7);
    v["issue"]["pull_request"] =
        json!({"url": "https://api.github.com/repos/my-org/tenants/pulls/7"});
    v["comment"]["body"] = json!(body);
    v["comment"]["created_at"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    v["comment"]["user"]["login"] = json!("bob");
    v["sender"]["login"] = json!("bob");
    v["repository"]["full_name"] = json!("my-org/tenants");
    let _ = s;
    v
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("event")).expect("json")
}

/// The App the example workflows mint `github-token` from (the simulated token's identity).
const EXAMPLE_APP: &str = "my-rotor[bot]";

/// The config the examples assume: GitHub makes and signs rotor's commits as its App, signed
/// here with the stand-in's test key.
fn signed_by_the_app(config: String) -> String {
    let id = rotor_sandbox::github::user_id(EXAMPLE_APP);
    format!(
        "{config}commit: {{via: api, author: \"{EXAMPLE_APP} <{id}+{EXAMPLE_APP}@users.noreply.github.com>\"}}\nrecord: {{signing_keys: [.github/rotor-signing.asc]}}\n"
    )
}

/// The GitHub stand-in as the examples need it: committing to origin, the App's token known.
fn app_scenario(s: &Setup, mut github: Value) -> Value {
    github["git_dir"] = json!(s.w.origin());
    github["identities"] = json!({"ghs_app_installation_token": EXAMPLE_APP});
    crate::plan::scenario(&s.url, &github);
    github
}

#[test]
fn the_example_workflows_plan_apply_roll_back_and_check_drift_as_written() {
    let s = crate::apply::setup_configured(1, &[], |t| t, signed_by_the_app, None);
    app_scenario(
        &s,
        crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id)),
    );
    // A push to the rotation pull request: plan, with no application token in a job that runs
    // pull-request code.
    let plan = one(
        &dispatch(
            &s,
            "pull_request",
            &read(&pr_event(s.w.dir.path(), &s.w.head)),
        ),
        "pull_request opened",
    );
    assert_eq!(
        (plan.command.as_str(), plan.result.as_str()),
        ("plan", "planned")
    );
    assert_eq!(
        plan.env["ROTOR_APP_TOKEN"], "",
        "{} job {}: the application's token never reaches a job on pull-request code",
        plan.workflow, plan.job
    );
    // `/rotor plan`.
    let replan = one(
        &dispatch(&s, "issue_comment", &comment(&s, "/rotor plan")),
        "/rotor plan",
    );
    assert_eq!(
        (replan.command.as_str(), replan.result.as_str()),
        ("plan", "planned")
    );
    // A comment that is not a command starts no job at all, so it can never queue behind (and
    // cancel) a pending rotation.
    assert!(
        dispatch(&s, "issue_comment", &comment(&s, "thanks!")).is_empty(),
        "an ordinary comment runs nothing"
    );
    // An approval of some other pull request of the repository (not from a `rotate/` branch)
    // starts nothing: no red job, no comment on it.
    let mut approval = read(&review_event(s.w.dir.path(), &s.w.head));
    approval["pull_request"]["head"]["ref"] = json!("docs-typo");
    assert!(
        dispatch(&s, "pull_request_review", &approval).is_empty(),
        "an approval outside rotations runs nothing"
    );
    // The approval of the rotation pull request: apply.
    approval["pull_request"]["head"]["ref"] = json!(format!("rotate/{}", s.id));
    let apply = one(
        &dispatch(&s, "pull_request_review", &approval),
        "approving review",
    );
    assert_eq!(
        (apply.command.as_str(), apply.result.as_str()),
        ("apply", "success")
    );
    // The members App is set up (its key is a secret), so the job minted its one-hour token;
    // and rotor's own App's token is the one GitHub commits and signs the record as.
    assert_eq!(apply.env["ROTOR_ORG_TOKEN"], "ghs_app_installation_token");
    assert_eq!(apply.env["GITHUB_TOKEN"], "ghs_app_installation_token");
    let commit = git(&s.w.origin(), &["cat-file", "commit", "rotate"]);
    assert!(
        commit.contains("committer GitHub <noreply@github.com>") && commit.contains("\ngpgsig "),
        "the example's record is GitHub's signed commit: {commit}"
    );
    assert_eq!(
        block_on_pointer(&s),
        Some("2".to_owned()),
        "the example's apply job rotated"
    );
    // `/rotor apply` afterwards: already applied.
    let again = one(
        &dispatch(&s, "issue_comment", &comment(&s, "/rotor apply")),
        "/rotor apply",
    );
    assert_eq!(
        (again.command.as_str(), again.result.as_str()),
        ("apply", "noop")
    );
    // Merged; the rollback workflow, dispatched from main.
    let origin = s.w.origin();
    git(
        &origin,
        &["update-ref", "refs/heads/main", "refs/heads/rotate"],
    );
    crate::checkout::close_pull(&origin, 7);
    let mut github = crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(git(&origin, &["rev-parse", "main"]));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    app_scenario(&s, github);
    // The signing key's public half goes on main, where verify reads `record.signing_keys`.
    let work = s.w.dir.path().join("work");
    git(&work, &["fetch", "-q", "origin"]);
    git(&work, &["checkout", "-q", "-B", "main", "origin/main"]);
    fs::write(
        work.join(".github/rotor-signing.asc"),
        fs::read_to_string(fixture("signing/current.asc")).expect("key"),
    )
    .expect("key");
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "rotor's signing key"]);
    git(&work, &["push", "-q", "origin", "HEAD:refs/heads/main"]);
    let mut github = crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(git(&origin, &["rev-parse", "main"]));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    app_scenario(&s, github);
    let mut dispatch_payload: Value = serde_json::from_str(
        &fs::read_to_string(fixture("github/webhooks/workflow_dispatch.json")).expect("fixture"),
    )
    .expect("json");
    dispatch_payload["ref"] = json!("refs/heads/main");
    dispatch_payload["inputs"] =
        json!({"rotation_id": s.id, "reason": "errors after the rotation"});
    dispatch_payload["repository"]["full_name"] = json!("my-org/tenants");
    // bob clicks "Run workflow": he is the event's sender, and so the run's actor.
    dispatch_payload["sender"]["login"] = json!("bob");
    let rollback = one(
        &dispatch_to(
            &s,
            "workflow_dispatch",
            &dispatch_payload,
            Some("rollback.yml"),
        ),
        "dispatch",
    );
    assert_eq!(
        (rollback.command.as_str(), rollback.result.as_str()),
        ("rollback", "rolled_back")
    );
    assert_eq!(block_on_pointer(&s), Some("1".to_owned()));
    // The schedule: drift (clean: the rollback is the latest word), the report and verify.
    let scheduled = dispatch(&s, "schedule", &json!({"schedule": "17 6 * * *"}));
    let commands: Vec<(&str, &str)> = scheduled
        .iter()
        .map(|r| (r.command.as_str(), r.result.as_str()))
        .collect();
    assert!(commands.contains(&("drift", "clean")), "{scheduled:#?}");
    // verify, online with its read-only tokens: the record rotor wrote proves itself.
    assert!(commands.contains(&("verify", "clean")), "{scheduled:#?}");
    let verify = scheduled
        .iter()
        .find(|r| r.command == "verify")
        .expect("verify ran");
    assert_eq!(verify.env["ROTOR_APP_TOKEN"], "app-token", "{verify:#?}");
    assert!(
        scheduled.iter().all(|r| r.code == Some(0)),
        "{scheduled:#?}"
    );
    // An auditor's request: the evidence workflow, dispatched with a period, writes the page
    // it keeps.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    dispatch_payload["inputs"] = json!({"since": "2020-01-01", "until": today});
    let evidence = one(
        &dispatch_to(
            &s,
            "workflow_dispatch",
            &dispatch_payload,
            Some("evidence.yml"),
        ),
        "evidence dispatch",
    );
    assert_eq!(
        (evidence.command.as_str(), evidence.code),
        ("evidence", Some(0)),
        "{evidence:#?}"
    );
    assert_eq!(evidence.env["INPUT_FORMAT"], "html");
    assert_eq!(evidence.env["ROTOR_APP_TOKEN"], "app-token", "online");
}

/// The examples' config, with break-glass allowed in the staging environment.
fn signed_with_break_glass(config: String) -> String {
    signed_by_the_app(config).replace(
        "staging: {}",
        "staging: {break_glass: {allowed: true, notify: my-org/security}}",
    )
}

#[test]
fn the_example_workflows_break_the_glass_and_countersign_as_written() {
    let s = crate::apply::setup_configured(1, &[], |t| t, signed_with_break_glass, None);
    let mut github = crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["pulls"]["7"]["reviews"] = json!([]);
    app_scenario(&s, github);
    // The requester's `/rotor break-glass`, with its reason: rotate.yml's apply job.
    let mut glass = comment(&s, "/rotor break-glass\nkey leaked in INC-4211");
    glass["comment"]["user"]["login"] = json!("alice");
    glass["sender"]["login"] = json!("alice");
    let apply = one(&dispatch(&s, "issue_comment", &glass), "/rotor break-glass");
    assert_eq!(
        (apply.command.as_str(), apply.result.as_str()),
        ("apply", "success"),
        "{apply:#?}"
    );
    assert_eq!(block_on_pointer(&s), Some("2".to_owned()));
    // Merged; countersign.yml, dispatched from main by bob.
    let origin = s.w.origin();
    git(
        &origin,
        &["update-ref", "refs/heads/main", "refs/heads/rotate"],
    );
    crate::checkout::close_pull(&origin, 7);
    let mut github = crate::plan::base_scenario(&s.w, &format!("{}.yaml", s.id));
    github["branches"]["main"] = json!(git(&origin, &["rev-parse", "main"]));
    github["pulls"]["7"]["state"] = json!("closed");
    github["pulls"]["7"]["merged"] = json!(true);
    app_scenario(&s, github);
    let mut payload: Value = serde_json::from_str(
        &fs::read_to_string(fixture("github/webhooks/workflow_dispatch.json")).expect("fixture"),
    )
    .expect("json");
    payload["ref"] = json!("refs/heads/main");
    payload["inputs"] = json!({"rotation_id": s.id, "reason": "checked with the incident lead"});
    payload["repository"]["full_name"] = json!("my-org/tenants");
    payload["sender"]["login"] = json!("bob");
    let countersign = one(
        &dispatch_to(&s, "workflow_dispatch", &payload, Some("countersign.yml")),
        "countersign dispatch",
    );
    assert_eq!(
        (countersign.command.as_str(), countersign.result.as_str()),
        ("countersign", "countersigned"),
        "{countersign:#?}"
    );
    assert_eq!(
        countersign.env["GITHUB_TOKEN"], "ghs_app_installation_token",
        "rotor's App commits the countersignature"
    );
    let artifact = git(
        &origin,
        &["show", &format!("main:docs/security/rotations/{}.md", s.id)],
    );
    assert!(
        artifact.contains("- By: bob (internal_admin)"),
        "{artifact}"
    );
    let commit = git(&origin, &["cat-file", "commit", "main"]);
    assert!(
        commit.contains("committer GitHub <noreply@github.com>") && commit.contains("\ngpgsig "),
        "the countersignature is GitHub's signed commit: {commit}"
    );
}

fn block_on_pointer(s: &Setup) -> Option<String> {
    crate::services::block_on(s.bao.custom(&s.name))
        .get("current_version")
        .cloned()
}

/// The steps that put credentials into a job's environment.
fn credential_step(uses: &str) -> bool {
    uses.starts_with("aws-actions/configure-aws-credentials@")
        || uses.starts_with("actions/create-github-app-token@")
        || uses.starts_with("google-github-actions/auth@")
        || uses.starts_with("azure/login@")
}

#[test]
fn the_examples_install_before_checkout_and_credentials_and_scope_concurrency_per_job() {
    for (file, wf) in workflows() {
        // A workflow that every comment starts must not queue whole runs in one group: a newer
        // pending run cancels an older pending one, and an ordinary comment would cancel an
        // apply. Its jobs carry their own groups, entered only when their `if:` holds.
        let on_comments = wf["on"].get("issue_comment").is_some();
        if on_comments {
            assert!(
                wf.get("concurrency").is_none(),
                "{file}: no workflow-level concurrency on a workflow every comment starts"
            );
        }
        for (name, job) in wf["jobs"].as_object().expect("jobs") {
            if on_comments {
                assert!(
                    job.get("concurrency").is_some(),
                    "{file} {name}: a concurrency group of its own"
                );
            }
            // The installer comes before the checkout (a build from source must find no
            // pull request's .cargo/config.toml or rust-toolchain.toml), before every credential
            // step and rotor step, and after no `run:` step (which could write $GITHUB_ENV or
            // $GITHUB_PATH for it).
            let steps = job["steps"].as_array().expect("steps");
            let uses: Vec<&str> = steps
                .iter()
                .map(|s| s.get("uses").and_then(Value::as_str).unwrap_or(""))
                .collect();
            let install = uses
                .iter()
                .position(|u| u.starts_with("OWNER/rotor/install@"))
                .unwrap_or_else(|| panic!("{file} {name}: installs rotor in a step of its own"));
            for (i, (step, u)) in steps.iter().zip(&uses).enumerate() {
                if u.starts_with("actions/checkout@")
                    || credential_step(u)
                    || u.starts_with("OWNER/rotor@")
                    || step.get("run").is_some()
                {
                    assert!(
                        install < i,
                        "{file} {name}: rotor is installed before step {i} ({step}), so no build \
                         reads the workspace or runs with credentials"
                    );
                }
            }
            // An org token is minted per job (a GitHub App installation token lasts an hour
            // and cannot be a stored secret).
            let text = serde_json::to_string(job).expect("json");
            assert!(
                !text.contains("secrets.ROTOR_ORG_TOKEN"),
                "{file} {name}: org-token from actions/create-github-app-token"
            );
        }
    }
}
