//! `rotor status` through the binary, against real OpenBao and moto.

use std::fs;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::rotor;
use crate::services::{aws_env, bao, provision_aws, unique};

/// A repository with a config routing supabase refs to OpenBao and stripe refs to moto.
fn repo(bao_addr: &str, vault_auth: &str, requests: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join(".github")).expect("mkdir");
    fs::create_dir_all(dir.path().join("rotations")).expect("mkdir");
    fs::write(
        dir.path().join(".github/rotor.yml"),
        format!(
            "version: 1\nadmins: {{users: [alice]}}\nenvironments: {{staging: {{}}}}\nbackends:\n\
             \x20 - {{match: \"tenant.*.supabase.*\", type: vault, address: \"{bao_addr}\", mount: secret, auth: {vault_auth}}}\n\
             \x20 - {{match: \"tenant.*.stripe.*\", type: aws-secrets-manager, region: us-east-1}}\n\
             app: {{base_url: \"http://127.0.0.1:9\"}}\n"
        ),
    )
    .expect("config");
    for (id, body) in requests {
        fs::write(dir.path().join(format!("rotations/{id}.yaml")), body).expect("request");
    }
    dir
}

fn request(id: &str, refs: &[&str]) -> String {
    let mut text = format!("version: 1\nid: {id}\nenvironment: staging\nreason: test\nrefs:\n");
    for r in refs {
        text.push_str(&format!("  - ref: {r}\n"));
    }
    text
}

fn status(dir: &Path, vault_token: &str, args: &[&str]) -> crate::common::Rotor {
    let mut cmd = rotor()
        .current_dir(dir)
        .env("VAULT_TOKEN", vault_token)
        .args(["status"])
        .args(args);
    for (k, v) in aws_env() {
        cmd = cmd.env(k, v);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shows_pointer_previous_pending_and_marker_on_both_backends_and_never_a_value() {
    let bao = bao();
    let token = bao.rotor_token().await;
    let slug = unique("s");
    let vault_ref = format!("tenant.{slug}.supabase.service_role");
    let aws_ref = format!("tenant.{slug}.stripe.secret_key");
    let mut canaries = bao.provision(&vault_ref, 3, Some(2)).await;
    bao.set_custom(
        &vault_ref,
        json!({"current_version": "2", "rotor_previous": "1", "rotor_rotation_id": "2026-11-20-acme",
               "rotor_state": "done", "rotor_from": "1", "rotor_to": "2"}),
    )
    .await;
    let (aws_current, aws_pending, aws_canaries) = provision_aws(&aws_ref).await;
    canaries.extend(aws_canaries);

    let dir = repo(
        &bao.addr,
        "{method: token}",
        &[("rot-a", &request("rot-a", &[&vault_ref, &aws_ref]))],
    );
    let (stdout, stderr) = tokio::task::spawn_blocking({
        let (path, token) = (dir.path().to_owned(), token.token.clone());
        move || status(&path, &token, &["--format", "json", "-v"]).run()
    })
    .await
    .expect("rotor");
    for c in &canaries {
        assert!(
            !stdout.contains(c.as_str()) && !stderr.contains(c.as_str()),
            "a secret value leaked"
        );
    }
    assert!(
        !stdout.contains(&token.token) && !stderr.contains(&token.token),
        "the token leaked"
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["command"], "status");
    let refs = report["refs"].as_array().expect("refs");
    assert_eq!(refs.len(), 2, "every ref of the requests, by default");
    let vault = &refs[0];
    assert_eq!(vault["ref"], vault_ref.as_str());
    assert_eq!(vault["backend"], "vault");
    assert_eq!(
        (
            vault["current"].as_str(),
            vault["previous"].as_str(),
            vault["pending"].as_str()
        ),
        (Some("2"), Some("1"), Some("3"))
    );
    assert_eq!(
        vault["marker"],
        json!({"rotation_id": "2026-11-20-acme", "state": "done", "from": "1", "to": "2"})
    );
    let versions = vault["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["id"], "3");
    assert_eq!(versions[0]["state"], "enabled");
    assert!(
        versions[0]["created"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{versions:?}"
    );
    let aws = &refs[1];
    assert_eq!(aws["backend"], "aws-secrets-manager");
    assert_eq!(aws["current"].as_str(), Some(aws_current.as_str()));
    assert_eq!(aws["pending"].as_str(), Some(aws_pending.as_str()));
    assert_eq!(
        (aws["previous"].clone(), aws["marker"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(report["errors"], json!([]));

    // The same in text, for a person.
    let (text, _) = tokio::task::spawn_blocking({
        let (path, token, r) = (
            dir.path().to_owned(),
            token.token.clone(),
            vault_ref.clone(),
        );
        move || status(&path, &token, &[&r]).run()
    })
    .await
    .expect("rotor");
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        (slug.as_str(), "[SLUG]"),
    ]}, {
        insta::assert_snapshot!(text, @r"
        tenant.[SLUG].supabase.service_role (vault secret/tenant.[SLUG].supabase.service_role)
          current:  2
          previous: 1
          pending:  3
          marker:   2026-11-20-acme done (1 -> 2)
          versions: 3 enabled [TIME]; 2 enabled [TIME]; 1 enabled [TIME]
        ");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_pointer_is_shown_with_the_command_that_sets_it() {
    let bao = bao();
    let token = bao.rotor_token().await;
    let r = format!("tenant.{}.supabase.anon_key", unique("p"));
    bao.provision(&r, 2, None).await;
    let dir = repo(&bao.addr, "{method: token}", &[]);
    let (text, _) = tokio::task::spawn_blocking({
        let (path, token, r) = (dir.path().to_owned(), token.token.clone(), r.clone());
        move || status(&path, &token, &[&r]).run()
    })
    .await
    .expect("rotor");
    assert!(
        text.contains(&format!("current:  none (set it: bao kv metadata patch -mount=secret -custom-metadata=current_version=<N> {r})")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_follow_the_contract() {
    let bao = bao();
    let token = bao.rotor_token().await;
    let dir = repo(&bao.addr, "{method: token}", &[]);
    let run = |args: Vec<String>, code: i32| {
        let (path, token) = (dir.path().to_owned(), token.token.clone());
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            status(&path, &token, &args).expects_exit(code).run()
        })
    };
    // A ref the secret manager does not have: a precondition (4), naming where rotor looked.
    let missing = format!("tenant.{}.supabase.k", unique("x"));
    let (out, _) = run(vec![missing.clone()], 4).await.expect("rotor");
    assert!(
        out.contains("error[secret_not_found]")
            && out.contains(&format!("secret/metadata/{missing}")),
        "{out}"
    );
    // Invalid input (2): a malformed ref, no refs at all, a ref no backend rule matches.
    let (_, err) = run(vec!["Tenant.acme.supabase.k".into()], 2)
        .await
        .expect("rotor");
    assert!(
        err.contains("invalid ref \"Tenant.acme.supabase.k\": uppercase"),
        "{err}"
    );
    let (_, err) = run(vec![], 2).await.expect("rotor");
    assert!(err.contains("no refs to show"), "{err}");
    let (_, err) = run(vec!["tenant.acme.github.token".into()], 2)
        .await
        .expect("rotor");
    assert!(
        err.contains("no `backends` rule in the config matches"),
        "{err}"
    );
    // JSON mode: an early failure is still exactly one JSON object on stdout.
    let (out, _) = run(
        vec![
            "--format".into(),
            "json".into(),
            "tenant.acme.github.token".into(),
        ],
        2,
    )
    .await
    .expect("rotor");
    let report: Value = serde_json::from_str(&out).expect("one JSON object");
    assert_eq!(report["errors"][0]["code"], "no_backend_rule");
    // An unreachable secret manager (5).
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_addr = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let dead = repo(&closed_addr, "{method: token}", &[]);
    let (out, _) = tokio::task::spawn_blocking({
        let path = dead.path().to_owned();
        move || {
            status(&path, "t", &["tenant.acme.supabase.k"])
                .expects_exit(5)
                .run()
        }
    })
    .await
    .expect("rotor");
    assert!(out.contains("error[backend_unavailable]"), "{out}");
}

/// A stand-in for GitHub's OIDC token endpoint: checks the request token and audience, then
/// answers with `jwt`, as `ACTIONS_ID_TOKEN_REQUEST_URL` does.
fn oidc_stand_in(jwt: String, request_token: &'static str, audience: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/token?api-version=2.0",
        listener.local_addr().expect("addr")
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut head = Vec::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push(line);
            }
            let ok = head.first().is_some_and(|l| {
                l.contains(&format!(
                    "audience={}",
                    audience.replace(':', "%3A").replace('/', "%2F")
                ))
            }) && head.iter().any(|l| {
                l.eq_ignore_ascii_case(&format!("authorization: Bearer {request_token}\r\n"))
            });
            let (status, body) = if ok {
                ("200 OK", json!({"count": 1, "value": jwt}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_with_the_github_oidc_token() {
    let bao = bao();
    bao.rotor_token().await; // installs the metadata-only policy
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("key.pem");
    let public = keys.path().join("pub.pem");
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .status()
        .expect("openssl");
    assert!(ok.success());
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&public)
        .status()
        .expect("openssl");
    assert!(ok.success());

    let mount = unique("jwt");
    let (status, body) = bao
        .root(
            Method::POST,
            &format!("sys/auth/{mount}"),
            Some(json!({"type": "jwt"})),
        )
        .await;
    assert!(status < 300, "{body}");
    let issuer = "https://token.actions.githubusercontent.com";
    let (status, body) = bao
        .root(
            Method::POST,
            &format!("auth/{mount}/config"),
            Some(json!({"jwt_validation_pubkeys": [fs::read_to_string(&public).expect("pem")], "bound_issuer": issuer})),
        )
        .await;
    assert!(status < 300, "{body}");
    let (status, body) = bao
        .root(
            Method::POST,
            &format!("auth/{mount}/role/rotor"),
            Some(json!({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["https://vault.example.com"],
                        "bound_claims": {"repository": "my-org/tenants"}, "token_policies": ["rotor-metadata"], "token_ttl": "10m"})),
        )
        .await;
    assert!(status < 300, "{body}");

    let now = chrono::Utc::now().timestamp();
    let sign = |repository: &str| {
        let claims = json!({"iss": issuer, "aud": "https://vault.example.com", "sub": format!("repo:{repository}:ref:refs/heads/main"),
                            "repository": repository, "iat": now, "nbf": now - 5, "exp": now + 300});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(&fs::read(&key).expect("key"))
                .expect("rsa key"),
        )
        .expect("jwt")
    };

    let r = format!("tenant.{}.supabase.service_role", unique("j"));
    bao.provision(&r, 2, Some(1)).await;
    let auth = format!(
        "{{method: jwt, role: rotor, path: {mount}, audience: \"https://vault.example.com\"}}"
    );
    let dir = repo(&bao.addr, &auth, &[]);
    let run_as = |jwt: String, code: i32, role: Option<&'static str>| {
        let (path, r) = (dir.path().to_owned(), r.clone());
        let url = oidc_stand_in(jwt, "runtime-request-token", "https://vault.example.com");
        tokio::task::spawn_blocking(move || {
            let mut cmd = rotor()
                .current_dir(&path)
                .env("ACTIONS_ID_TOKEN_REQUEST_URL", url)
                .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "runtime-request-token")
                .env("GITHUB_ACTIONS", "true")
                .args(["status", &r])
                .expects_exit(code);
            for (k, v) in aws_env() {
                cmd = cmd.env(k, v);
            }
            if let Some(role) = role {
                cmd = cmd.env("ROTOR_VAULT_ROLE", role);
            }
            cmd.run()
        })
    };
    let run = |jwt: String, code: i32| run_as(jwt, code, None);
    let jwt = sign("my-org/tenants");
    let (out, err) = run(jwt.clone(), 0).await.expect("rotor");
    assert!(
        out.contains("current:  1") && out.contains("pending:  2"),
        "{out}"
    );
    // The derived credentials are masked for the runner, and never printed otherwise.
    assert!(err.contains("::add-mask::"), "{err}");
    assert!(!out.contains(&jwt));
    // A token for another repository is refused by the role's bound claims: exit 4, explained.
    // The login happens when the client is built, before any ref is read: the run's error.
    let (_, err) = run(sign("someone-else/repo"), 4).await.expect("rotor");
    assert!(
        err.contains("the JWT login as role `rotor` was refused")
            && err.contains("bound_audiences and bound_claims"),
        "{err}"
    );
    // A read-only job names its own role under the same config: ROTOR_VAULT_ROLE replaces
    // `auth.role` (here a role the server does not have, so its refusal names it).
    let (_, err) = run_as(jwt, 4, Some("rotor-read")).await.expect("rotor");
    assert!(
        err.contains("the JWT login as role `rotor-read` was refused"),
        "{err}"
    );
}

/// No AWS credentials anywhere in the chain (no variables, no profile, no instance metadata):
/// invalid setup, exit 2, said in words (no SDK debug dump); not an outage (exit 5).
#[test]
fn no_aws_credentials_is_invalid_setup_said_in_words() {
    let dir = repo("http://127.0.0.1:9", "{method: token}", &[]);
    let (_, err) = rotor()
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("AWS_ENDPOINT_URL", crate::services::moto_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["status", "tenant.acme.stripe.secret_key"])
        .expects_exit(2)
        .run();
    assert!(
        err.contains("no providers in chain provided credentials")
            && err.contains("check the credential chain"),
        "{err}"
    );
    assert!(
        !err.contains("Headers") && !err.contains("DispatchFailure("),
        "{err}"
    );
    // The ref is named once per line.
    assert!(
        err.lines()
            .all(|l| l.matches("tenant.acme.stripe.secret_key").count() <= 1),
        "{err}"
    );
}
