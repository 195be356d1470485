//! `rotor new` through the binary, against real OpenBao and moto and the application stand-in:
//! every reason a ref is left out, both backends listed (templates read backwards, every page of
//! `ListSecrets`), the written request accepted by `rotor validate`, and no value read.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::rotor;
use crate::plan::git;
use crate::services::{
    Bao, RotorToken, aws_env, bao, block_on, canary, provision_aws, sm_client, unique,
};

/// rotor new's identity on OpenBao: it reads and lists metadata, and can change nothing.
const LIST_POLICY: &str = r#"
path "secret/metadata/*" {
  capabilities = ["read", "list"]
}
"#;

/// A checkout with a config (supabase refs on OpenBao at `{ref}`, kv refs under
/// `tenants/{slug}/{provider}/{key}`, twilio refs on AWS at `prod/{ref}`, the rest on AWS at
/// `{ref}`), committed, and the application stand-in knowing `app_refs`.
struct Repo {
    dir: tempfile::TempDir,
    bao: Bao,
    token: RotorToken,
    app: rotor_sandbox::Running,
}

impl Repo {
    fn with_app(app_refs: &[(&str, &[&str])]) -> Self {
        let bao = bao();
        let token = block_on(list_token(&bao));
        let app = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
        fs::write(
            dir.path().join(".github/rotor.yml"),
            format!(
                "version: 1\nadmins: {{users: [alice]}}\n\
                 environments: {{staging: {{}}, production: {{requires_maintenance: true}}}}\n\
                 backends:\n\
                 \x20 - {{match: \"tenant.*.supabase.*\", type: vault, address: \"{addr}\", mount: secret}}\n\
                 \x20 - {{match: \"tenant.*.kv.*\", type: vault, address: \"{addr}\", mount: secret, path: \"tenants/{{slug}}/{{provider}}/{{key}}\"}}\n\
                 \x20 - {{match: \"tenant.*.twilio.*\", type: aws-secrets-manager, region: us-east-1, name: \"prod/{{ref}}\"}}\n\
                 \x20 - {{match: \"tenant.*.*.*\", type: aws-secrets-manager, region: us-east-1}}\n\
                 app: {{base_url: \"{url}\"}}\n",
                addr = bao.addr,
                url = app.url()
            ),
        )
        .expect("config");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "config"]);
        let repo = Self {
            dir,
            bao,
            token,
            app,
        };
        repo.knows(app_refs);
        repo
    }

    /// The application knows these refs, each with its sites.
    fn knows(&self, refs: &[(&str, &[&str])]) {
        let refs: serde_json::Map<String, Value> = refs
            .iter()
            .map(|(name, sites)| {
                let provider = name.split('.').nth(2).unwrap_or_default();
                (
                    (*name).to_owned(),
                    json!({"tenant": "t", "provider": provider, "site_ids": sites}),
                )
            })
            .collect();
        let resp = reqwest::blocking::Client::new()
            .put(format!("{}/_sandbox/app", self.app.url()))
            .json(&json!({"token": "app-token", "refs": refs}))
            .send()
            .expect("sandbox");
        assert_eq!(resp.status().as_u16(), 204);
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `rotor new` with rotor's list-only token, the application's token and moto.
    fn rotor_new(&self, args: &[&str]) -> crate::common::Rotor {
        let mut cmd = rotor()
            .current_dir(self.path())
            .env("VAULT_TOKEN", &self.token.token)
            .env("ROTOR_APP_TOKEN", "app-token")
            .args(["new"])
            .args(args);
        for (k, v) in aws_env() {
            cmd = cmd.env(k, v);
        }
        cmd
    }

    fn request(&self, id: &str) -> PathBuf {
        self.path().join(format!("rotations/{id}.yaml"))
    }

    /// Every path rotor's token asked OpenBao for, with the operation.
    fn audit(&self) -> Vec<(String, String)> {
        std::thread::sleep(std::time::Duration::from_millis(200));
        block_on(self.bao.audit_entries_of(&self.token.accessor))
            .iter()
            .filter(|e| e["type"] == "request")
            .map(|e| {
                (
                    e["request"]["operation"].as_str().unwrap_or("").to_owned(),
                    e["request"]["path"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

async fn list_token(bao: &Bao) -> RotorToken {
    let (status, _) = bao
        .root(
            Method::PUT,
            "sys/policies/acl/rotor-new",
            Some(json!({"policy": LIST_POLICY})),
        )
        .await;
    assert!(status < 300, "policy write: {status}");
    let (status, body) = bao
        .root(
            Method::POST,
            "auth/token/create",
            Some(json!({"policies": ["rotor-new"], "no_default_policy": true, "ttl": "1h"})),
        )
        .await;
    assert_eq!(status, 200, "token create: {body}");
    RotorToken {
        token: body["auth"]["client_token"]
            .as_str()
            .expect("token")
            .to_owned(),
        accessor: body["auth"]["accessor"]
            .as_str()
            .expect("accessor")
            .to_owned(),
    }
}

/// An AWS secret with one version (AWSCURRENT) and no pending one.
async fn aws_current_only(name: &str) {
    sm_client()
        .await
        .create_secret()
        .name(name)
        .secret_string(canary())
        .send()
        .await
        .expect("create");
}

fn json_of(stdout: &str) -> Value {
    serde_json::from_str(stdout).expect("one JSON object")
}

fn pairs(report: &Value, key: &str, field: &str) -> Vec<(String, String)> {
    report[key]
        .as_array()
        .expect(key)
        .iter()
        .map(|e| {
            (
                e["ref"].as_str().expect("ref").to_owned(),
                e[field].as_str().expect(field).to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_reason_on_both_backends_and_a_request_validate_accepts() {
    let s = unique("nw");
    let r = |name: &str, provider: &str, key: &str| format!("tenant.{s}-{name}.{provider}.{key}");
    let ok = r("ok", "supabase", "service_role");
    let none = r("none", "supabase", "service_role");
    let rejected = r("rej", "supabase", "service_role");
    let several = r("several", "supabase", "service_role");
    let locked = r("locked", "supabase", "service_role");
    let unknown = r("unknown", "supabase", "service_role");
    let tree = r("tree", "kv", "api_key");
    let aws = r("aws", "stripe", "secret_key");
    let aws_none = r("awsnone", "stripe", "secret_key");
    let prefixed = r("pfx", "twilio", "auth_token");
    // Outside the globs: listed by the backend, never reported.
    let elsewhere = format!("tenant.{s}x.supabase.service_role");

    let repo = Repo::with_app(&[]);
    let b = &repo.bao;
    block_on(async {
        b.provision(&ok, 2, Some(1)).await;
        b.provision(&none, 1, Some(1)).await;
        b.provision(&rejected, 2, Some(1)).await;
        b.set_custom(
            &rejected,
            json!({"current_version": "1", "rotor_rotation_id": "old-rot", "rotor_state": "rolled_back",
                   "rotor_from": "1", "rotor_to": "2", "rotor_previous": "2"}),
        )
        .await;
        b.provision(&several, 3, Some(1)).await;
        b.provision(&locked, 2, Some(1)).await;
        b.set_custom(
            &locked,
            json!({"current_version": "1", "rotor_rotation_id": "other-rot", "rotor_state": "pending",
                   "rotor_from": "1", "rotor_to": "2"}),
        )
        .await;
        b.provision(&unknown, 2, Some(1)).await;
        b.provision(&elsewhere, 2, Some(1)).await;
        // The tree template read backwards; a name it cannot read back is passed over.
        b.provision(&format!("tenants/{s}-tree/kv/api_key"), 2, Some(1))
            .await;
        b.provision(&format!("tenants/{s}-tree/kv/Api-Key"), 2, Some(1))
            .await;
        aws_current_only(&aws_none).await;
        // Named without the rule's `prod/` prefix: not this ref's secret, so not listed.
        aws_current_only(&prefixed).await;
    });
    let (_, aws_pending, _) = block_on(provision_aws(&aws));
    let (_, prefixed_pending, _) = block_on(provision_aws(&format!("prod/{prefixed}")));
    repo.knows(&[
        (ok.as_str(), &["site-002", "site-001"]),
        (none.as_str(), &["site-001"]),
        (rejected.as_str(), &["site-001"]),
        (several.as_str(), &["site-001"]),
        (locked.as_str(), &["site-001"]),
        (tree.as_str(), &["site-003"]),
        (aws.as_str(), &["site-004"]),
        (aws_none.as_str(), &["site-004"]),
        (prefixed.as_str(), &["site-005", "site-006"]),
        (elsewhere.as_str(), &["site-001"]),
    ]);

    let id = format!("2026-11-25-{s}");
    let globs = [
        format!("tenant.{s}-*.supabase.*"),
        format!("tenant.{s}-*.{{kv,stripe,twilio}}.*"),
    ];
    let args = |extra: &[&str]| {
        let mut a: Vec<String> = vec![
            id.clone(),
            "--environment".into(),
            "staging".into(),
            "--reason".into(),
            "Quarterly rotation: \"all\" tenants".into(),
            "--match".into(),
            globs[0].clone(),
            "--match".into(),
            globs[1].clone(),
        ];
        a.extend(extra.iter().map(|e| (*e).to_owned()));
        a
    };

    // --dry-run: the request in the report, nothing written.
    let dry = args(&["--dry-run", "--format", "json"]);
    let (stdout, _) = repo
        .rotor_new(&dry.iter().map(String::as_str).collect::<Vec<_>>())
        .run();
    let report = json_of(&stdout);
    assert!(!repo.request(&id).exists(), "--dry-run writes nothing");
    assert_eq!(report["command"], "new");
    assert_eq!(report["path"], format!("rotations/{id}.yaml"));
    assert_eq!(
        pairs(&report, "refs", "to"),
        [
            (aws.clone(), aws_pending.clone()),
            (ok.clone(), "2".to_owned()),
            (prefixed.clone(), prefixed_pending.clone()),
            (tree.clone(), "2".to_owned()),
        ]
    );
    assert_eq!(report["refs"][1]["sites"], json!(["site-001", "site-002"]));
    assert_eq!(report["refs"][2]["sites"], json!(["site-005", "site-006"]));
    assert_eq!(
        pairs(&report, "skipped", "reason"),
        [
            (aws_none.clone(), "no_pending".to_owned()),
            (locked.clone(), "locked".to_owned()),
            (none.clone(), "no_pending".to_owned()),
            (rejected.clone(), "rejected".to_owned()),
            (several.clone(), "several_pending".to_owned()),
            (unknown.clone(), "unknown_to_app".to_owned()),
        ]
    );
    let content = report["content"].as_str().expect("content").to_owned();

    // For real, in text: the same request, written, and nothing else in the working tree.
    let written = args(&[]);
    let (text, _) = repo
        .rotor_new(&written.iter().map(String::as_str).collect::<Vec<_>>())
        .run();
    let file = fs::read_to_string(repo.request(&id)).expect("the request is written");
    assert_eq!(file, content);
    assert_eq!(
        git(
            repo.path(),
            &["status", "--porcelain", "--untracked-files=all"]
        ),
        format!("?? rotations/{id}.yaml")
    );
    let filters = vec![
        (s.as_str(), "[SLUG]"),
        (aws_pending.as_str(), "[AWS-VERSION]"),
        (prefixed_pending.as_str(), "[AWS-VERSION]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[AWS-VERSION]",
        ),
    ];
    insta::with_settings!({filters => filters.clone()}, {
        insta::assert_snapshot!(text, @r#"
        wrote rotations/2026-11-25-[SLUG].yaml: 4 refs, 6 skipped
          tenant.[SLUG]-aws.stripe.secret_key (aws-secrets-manager): [AWS-VERSION] -> [AWS-VERSION], sites: site-004
          tenant.[SLUG]-ok.supabase.service_role (vault): 1 -> 2, sites: site-001, site-002
          tenant.[SLUG]-pfx.twilio.auth_token (aws-secrets-manager): [AWS-VERSION] -> [AWS-VERSION], sites: site-005, site-006
          tenant.[SLUG]-tree.kv.api_key (vault): 1 -> 2, sites: site-003
          tenant.[SLUG]-awsnone.stripe.secret_key: skipped, no_pending (no pending version: provision the new value in the secret manager first (runbook precondition 3), or pass `--to`)
          tenant.[SLUG]-locked.supabase.service_role: skipped, locked (locked by rotation other-rot (marker pending))
          tenant.[SLUG]-none.supabase.service_role: skipped, no_pending (no pending version: provision the new value in the secret manager first (runbook precondition 3), or pass `--to`)
          tenant.[SLUG]-rej.supabase.service_role: skipped, rejected (no pending version: the only newer version, 2, was rejected by a rollback; provision a new value in the secret manager (runbook precondition 3), or pass `--to` to use 2 anyway)
          tenant.[SLUG]-several.supabase.service_role: skipped, several_pending (several pending versions (2, 3): name the target with `--to`)
          tenant.[SLUG]-unknown.supabase.service_role: skipped, unknown_to_app (the application does not know the ref tenant.[SLUG]-unknown.supabase.service_role (GET /api/v1/secret-refs/tenant.[SLUG]-unknown.supabase.service_role, 404))
        "#);
        insta::assert_snapshot!(file, @r#"
        # yaml-language-server: $schema=https://rotor.dev/schema/rotation-request.schema.json
        version: 1
        id: 2026-11-25-[SLUG]
        environment: staging
        reason: "Quarterly rotation: \"all\" tenants"
        refs:
          - ref: tenant.[SLUG]-aws.stripe.secret_key
            to: "[AWS-VERSION]"
            sites: ["site-004"]
          - ref: tenant.[SLUG]-ok.supabase.service_role
            to: "2"
            sites: ["site-001", "site-002"]
          - ref: tenant.[SLUG]-pfx.twilio.auth_token
            to: "[AWS-VERSION]"
            sites: ["site-005", "site-006"]
          - ref: tenant.[SLUG]-tree.kv.api_key
            to: "2"
            sites: ["site-003"]
        rollback: auto
        "#);
    });

    // rotor validate accepts it.
    let (out, _) = rotor()
        .current_dir(repo.path())
        .args([
            "validate",
            "--format",
            "json",
            &format!("rotations/{id}.yaml"),
        ])
        .run();
    assert_eq!(json_of(&out)["result"], "valid");

    // An existing file is refused, before any call.
    let (_, err) = repo
        .rotor_new(&written.iter().map(String::as_str).collect::<Vec<_>>())
        .expects_exit(2)
        .run();
    assert!(
        err.contains(&format!("rotations/{id}.yaml already exists")),
        "{err}"
    );
    assert_eq!(fs::read_to_string(repo.request(&id)).expect("file"), file);

    // Metadata only: rotor's token listed and read metadata, never a path under secret/data/.
    let audit = repo.audit();
    assert!(
        audit.iter().all(|(_, p)| !p.starts_with("secret/data/")),
        "{audit:?}"
    );
    // (and its own token's lifetime: `auth/token/lookup-self`, metadata of the token)
    assert!(
        audit
            .iter()
            .all(
                |(op, p)| (p.starts_with("secret/metadata/") && (op == "read" || op == "list"))
                    || (p == "auth/token/lookup-self" && op == "read")
            ),
        "{audit:?}"
    );
    for listed in ["secret/metadata/", "secret/metadata/tenants/"] {
        assert!(
            audit.iter().any(|(op, p)| op == "list" && p == listed),
            "{listed} listed: {audit:?}"
        );
    }
}

#[test]
fn to_refs_and_refs_files_name_the_refs() {
    let s = unique("nt");
    let several = format!("tenant.{s}.supabase.service_role");
    let rejected = format!("tenant.{s}-rej.supabase.service_role");
    let aws = format!("tenant.{s}.stripe.secret_key");
    let repo = Repo::with_app(&[
        (several.as_str(), &["site-001"]),
        (rejected.as_str(), &["site-001"]),
        (aws.as_str(), &[]),
    ]);
    block_on(async {
        repo.bao.provision(&several, 3, Some(1)).await;
        repo.bao.provision(&rejected, 3, Some(1)).await;
        repo.bao
            .set_custom(
                &rejected,
                json!({"current_version": "1", "rotor_rotation_id": "old-rot", "rotor_state": "rolled_back",
                       "rotor_from": "1", "rotor_to": "3"}),
            )
            .await;
    });
    let (_, aws_pending, _) = block_on(provision_aws(&aws));
    let base = |id: &str| {
        vec![
            id.to_owned(),
            "--environment".to_owned(),
            "production".to_owned(),
            "--reason".to_owned(),
            "Rotate".to_owned(),
            "--rollout-note".to_owned(),
            "https://status.example.com/notes/1".to_owned(),
            "--window".to_owned(),
            "2099-01-01T02:00:00+01:00/2099-01-01T04:00:00Z".to_owned(),
            "--format".to_owned(),
            "json".to_owned(),
        ]
    };
    let run = |args: Vec<String>, code: i32| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json_of(&repo.rotor_new(&args).expects_exit(code).run().0)
    };

    // Several pending: skipped, and nothing qualified (4); `--to` names one.
    let mut args = base("nt-several");
    args.extend(["--ref", &several].map(str::to_owned));
    let report = run(args.clone(), 4);
    assert_eq!(report["path"], Value::Null);
    assert_eq!(
        pairs(&report, "skipped", "reason"),
        [(several.clone(), "several_pending".to_owned())]
    );
    assert!(!repo.request("nt-several").exists());
    args.extend(["--to", "3", "--rollback", "manual"].map(str::to_owned));
    let report = run(args, 0);
    assert_eq!(
        pairs(&report, "refs", "to"),
        [(several.clone(), "3".to_owned())]
    );
    let file = fs::read_to_string(repo.request("nt-several")).expect("written");
    assert!(
        file.contains("    to: \"3\"\n")
            && file.contains("rollback: manual\n")
            && file.contains(
                "maintenance:\n  window: {start: 2099-01-01T01:00:00Z, end: 2099-01-01T04:00:00Z}\n  rollout_note: \"https://status.example.com/notes/1\"\n"
            ),
        "{file}"
    );

    // `--to` a version that does not exist, or one a rollback rejected.
    let mut args = base("nt-missing");
    args.extend(["--ref", &several, "--to", "9"].map(str::to_owned));
    let report = run(args, 4);
    assert_eq!(report["skipped"][0]["reason"], "no_pending");
    let mut args = base("nt-rejected");
    args.extend(["--ref", &rejected, "--to", "3"].map(str::to_owned));
    assert_eq!(run(args, 4)["skipped"][0]["reason"], "rejected");

    // A refs file: comments, blank lines and a repeat; an AWS ref the application gives no
    // sites, and `--ref` repeated gives the same.
    let list = repo.path().join("refs.txt");
    fs::write(
        &list,
        format!("# batch\n\n{several}   # the one with three versions\n{aws}\n{several}\n"),
    )
    .expect("refs file");
    let mut args = base("nt-file");
    args.extend(["--refs-file", "refs.txt", "--to", "3"].map(str::to_owned));
    // `--to 3` fits the Vault ref only: the AWS ref has no version 3.
    let report = run(args, 0);
    assert_eq!(
        pairs(&report, "refs", "to"),
        [(several.clone(), "3".to_owned())]
    );
    assert_eq!(
        pairs(&report, "skipped", "reason"),
        [(aws.clone(), "no_pending".to_owned())]
    );
    let mut args = base("nt-refs");
    args.extend(["--ref", &aws, "--ref", &several, "--ref", &aws].map(str::to_owned));
    let report = run(args, 0);
    assert_eq!(
        report["refs"],
        json!([{"ref": aws, "to": aws_pending, "sites": []}])
    );
    assert_eq!(
        pairs(&report, "skipped", "reason"),
        [(several.clone(), "several_pending".to_owned())]
    );
    let file = fs::read_to_string(repo.request("nt-refs")).expect("written");
    assert!(!file.contains("sites"), "no sites, no `sites`: {file}");
    // `--to` an AWS version id.
    let mut args = base("nt-aws");
    args.extend(["--ref", &aws, "--to", &aws_pending].map(str::to_owned));
    assert_eq!(
        pairs(&run(args, 0), "refs", "to"),
        [(aws.clone(), aws_pending.clone())]
    );

    // --dry-run in text: stdout is exactly the request, the summary goes to stderr.
    let dry: Vec<String> = base("nt-dry")
        .into_iter()
        .filter(|a| a != "--format" && a != "json")
        .chain(["--ref", &several, "--to", "2", "--dry-run"].map(str::to_owned))
        .collect();
    let (stdout, stderr) = repo
        .rotor_new(&dry.iter().map(String::as_str).collect::<Vec<_>>())
        .run();
    assert!(!repo.request("nt-dry").exists());
    assert!(
        stdout.starts_with("# yaml-language-server: $schema="),
        "{stdout}"
    );
    assert!(stdout.contains("id: nt-dry\n") && stdout.contains("    to: \"2\"\n"));
    assert!(
        stderr.contains("rotations/nt-dry.yaml (not written, --dry-run): 1 ref, 0 skipped"),
        "{stderr}"
    );

    // Every written request passes rotor validate.
    let (out, _) = rotor()
        .current_dir(repo.path())
        .args(["validate", "--format", "json"])
        .run();
    let validated = json_of(&out);
    assert_eq!(validated["result"], "valid", "{validated:#}");
    // The config and the four requests.
    assert_eq!(validated["files"].as_array().map(Vec::len), Some(5));
}

#[test]
fn aws_listing_reads_every_page() {
    let s = unique("np");
    let names: Vec<String> = (0..120)
        .map(|i| format!("tenant.{s}-{i:03}.twilio.auth_token"))
        .collect();
    block_on(async {
        for n in &names[1..] {
            aws_current_only(&format!("prod/{n}")).await;
        }
    });
    let (_, pending, _) = block_on(provision_aws(&format!("prod/{}", names[0])));
    let known: Vec<(&str, &[&str])> = names
        .iter()
        .map(|n| (n.as_str(), &["site-001"][..]))
        .collect();
    let repo = Repo::with_app(&known);
    let glob = format!("tenant.{s}-*");
    let (stdout, _) = repo
        .rotor_new(&[
            "np-aws",
            "--environment",
            "staging",
            "--reason",
            "r",
            "--match",
            &glob,
            "--format",
            "json",
        ])
        .run();
    let report = json_of(&stdout);
    assert_eq!(pairs(&report, "refs", "to"), [(names[0].clone(), pending)]);
    let skipped = pairs(&report, "skipped", "reason");
    assert_eq!(skipped.len(), 119, "more than one page of 100 was read");
    assert!(skipped.iter().all(|(_, reason)| reason == "no_pending"));
    assert_eq!(
        skipped.last().map(|(r, _)| r.as_str()),
        names.last().map(String::as_str)
    );
}

#[test]
fn past_2000_refs_the_rest_are_over_limit() {
    let s = unique("nl");
    let names: Vec<String> = (0..2001)
        .map(|i| format!("tenant.{s}-{i:04}.supabase.k"))
        .collect();
    block_on(async {
        let bao = Arc::new(bao());
        let mut tasks = tokio::task::JoinSet::new();
        for chunk in names.chunks(names.len().div_ceil(16)) {
            let (bao, chunk) = (bao.clone(), chunk.to_vec());
            tasks.spawn(async move {
                for n in chunk {
                    bao.provision(&n, 2, Some(1)).await;
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("provisioned");
        }
    });
    let known: Vec<(&str, &[&str])> = names
        .iter()
        .map(|n| (n.as_str(), &["site-001"][..]))
        .collect();
    let repo = Repo::with_app(&known);
    let glob = format!("tenant.{s}-*");
    let started = std::time::Instant::now();
    let (stdout, _) = repo
        .rotor_new(&[
            "nl-batch",
            "--environment",
            "staging",
            "--reason",
            "r",
            "--match",
            &glob,
            "--format",
            "json",
        ])
        .run();
    let took = started.elapsed();
    let report = json_of(&stdout);
    let refs = pairs(&report, "refs", "to");
    assert_eq!(refs.len(), 2000);
    assert_eq!(
        refs.first().map(|(r, _)| r.as_str()),
        Some(names[0].as_str())
    );
    assert_eq!(
        pairs(&report, "skipped", "reason"),
        [(names[2000].clone(), "over_limit".to_owned())]
    );
    // The debug build, beside the other tests: a loose bound; scripts/bench checks 10 s.
    assert!(took.as_secs() < 60, "listing 2001 refs took {took:?}");
    let (out, _) = rotor()
        .current_dir(repo.path())
        .args(["validate", "--format", "json"])
        .run();
    assert_eq!(json_of(&out)["files"][1]["refs"], 2000);
}

#[test]
fn bad_input_exits_2_before_any_call() {
    // Nothing answers at these addresses: a call would end in 5, not 2.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
    fs::create_dir_all(dir.path().join("rotations")).expect("mkdir");
    fs::create_dir_all(dir.path().join("docs/security/rotations")).expect("mkdir");
    fs::write(
        dir.path().join(".github/rotor.yml"),
        format!(
            "version: 1\nadmins: {{users: [alice]}}\n\
             environments: {{staging: {{}}, production: {{requires_maintenance: true}}}}\n\
             backends: [{{match: \"tenant.*.*.*\", type: vault, address: \"{nowhere}\", mount: secret, path: \"{{slug}}/{{key}}\"}}]\n\
             app: {{base_url: \"{nowhere}\"}}\n"
        ),
    )
    .expect("config");
    fs::write(dir.path().join("rotations/taken.yaml"), "x").expect("request");
    fs::write(dir.path().join("docs/security/rotations/used.md"), "x").expect("artifact");
    fs::write(
        dir.path().join("refs.txt"),
        "tenant.a.p.k\n  tenant.B.p.k\n",
    )
    .expect("refs");
    let run = |args: &[&str]| {
        let (stdout, stderr) = rotor()
            .current_dir(dir.path())
            .env("VAULT_TOKEN", "t")
            .env("ROTOR_APP_TOKEN", "t")
            .args(["new"])
            .args(args)
            .expects_exit(2)
            .run();
        format!("{stdout}{stderr}")
    };
    let base = ["--environment", "staging", "--reason", "r"];
    let with = |id: &str, extra: &[&str]| {
        let mut a = vec![id];
        a.extend(base);
        a.extend(extra);
        run(&a)
    };
    let cases: Vec<(String, &str)> = vec![
        (
            with("Bad_Id", &["--ref", "tenant.a.p.k"]),
            "invalid ID: \"Bad_Id\"",
        ),
        (
            with("ok-id", &["--ref", "tenant.a.P.k"]),
            "invalid ref \"tenant.a.P.k\": uppercase",
        ),
        (
            with("ok-id", &["--match", "tenant.[a"]),
            "invalid --match: invalid glob",
        ),
        (
            with(
                "ok-id",
                &["--ref", "tenant.a.p.k", "--window", "2099-01-01T02:00:00Z"],
            ),
            "invalid --window: write START/END",
        ),
        (
            with(
                "ok-id",
                &[
                    "--ref",
                    "tenant.a.p.k",
                    "--window",
                    "2020-01-01T02:00:00Z/2020-01-01T04:00:00Z",
                ],
            ),
            "the window closed at",
        ),
        (
            with("ok-id", &["--ref", "tenant.a.p.k", "--to", "4 "]),
            "invalid --to: \"4 \"",
        ),
        (
            run(&[
                "ok-id",
                "--environment",
                "prod",
                "--reason",
                "r",
                "--ref",
                "tenant.a.p.k",
            ]),
            "\"prod\" is not an environment of the config; use one of: production, staging",
        ),
        (
            run(&[
                "ok-id",
                "--environment",
                "production",
                "--reason",
                "r",
                "--ref",
                "tenant.a.p.k",
            ]),
            "requires a maintenance window or a rollout note",
        ),
        (
            run(&[
                "ok-id",
                "--environment",
                "staging",
                "--reason",
                " ",
                "--ref",
                "tenant.a.p.k",
            ]),
            "invalid --reason: the reason is empty",
        ),
        (
            with("taken", &["--ref", "tenant.a.p.k"]),
            "rotations/taken.yaml already exists",
        ),
        (
            with("used", &["--ref", "tenant.a.p.k"]),
            "rotation used already has an artifact",
        ),
        (
            with("ok-id", &["--refs-file", "refs.txt"]),
            "error[invalid_ref]: invalid ref \"tenant.B.p.k\": uppercase",
        ),
        (
            with("ok-id", &["--ref", "tenant.a.p.k", "--ref", "tenant.a.q.k"]),
            "tenant.a.p.k and tenant.a.q.k map to the same secret",
        ),
        (
            with("ok-id", &[]),
            "the following required arguments were not provided",
        ),
        (
            with("ok-id", &["--ref", "tenant.a.p.k", "--match", "tenant.*"]),
            "cannot be used with",
        ),
    ];
    for (output, expected) in &cases {
        assert!(
            output.contains(expected),
            "expected {expected:?} in:\n{output}"
        );
    }
    assert!(
        !dir.path().join("rotations/ok-id.yaml").exists(),
        "nothing written"
    );
}

/// A backend rule whose glob cannot match a `--match` glob is never asked: matching supabase
/// refs on OpenBao needs no AWS credentials although stripe refs live on AWS.
#[test]
fn a_rule_no_glob_can_reach_is_not_listed() {
    let s = unique("nr");
    let name = format!("tenant.{s}.supabase.service_role");
    let repo = Repo::with_app(&[(name.as_str(), &["site-001"])]);
    block_on(repo.bao.provision(&name, 2, Some(1)));
    fs::write(
        repo.path().join(".github/rotor.yml"),
        format!(
            "version: 1\nadmins: {{users: [alice]}}\nenvironments: {{staging: {{}}}}\n\
             backends:\n\
             \x20 - {{match: \"tenant.*.supabase.*\", type: vault, address: \"{}\", mount: secret}}\n\
             \x20 - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: us-east-1}}\n\
             app: {{base_url: \"{}\"}}\n",
            repo.bao.addr,
            repo.app.url()
        ),
    )
    .expect("config");
    let glob = format!("tenant.{s}.supabase.*");
    // No AWS credentials anywhere: asking AWS would fail.
    let (stdout, _) = rotor()
        .current_dir(repo.path())
        .env("HOME", repo.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("VAULT_TOKEN", &repo.token.token)
        .env("ROTOR_APP_TOKEN", "app-token")
        .args([
            "new",
            "nr-vault",
            "--environment",
            "staging",
            "--reason",
            "r",
            "--match",
            &glob,
            "--format",
            "json",
        ])
        .run();
    let report = json_of(&stdout);
    assert_eq!(pairs(&report, "refs", "to"), [(name, "2".to_owned())]);
}
