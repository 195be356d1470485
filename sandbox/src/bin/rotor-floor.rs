//! `rotor-floor`: the benchmark's floor (scripts/bench). The minimal requests of a rotation,
//! issued by a bare async client at a given concurrency, with no checks, no reports, no git:
//! what rotor could not go below against the same OpenBao and application.
//!
//! Per ref: the application's view (`GET` ref) and the metadata read, together (they do not
//! depend on each other); the lock and the move in one check-and-set write; the upsert, one
//! resolve, each site's health; the final marker. Once per batch: the audit log, read until
//! every ref's event is there.
//!
//! With `--aws-endpoint`, the secret manager is AWS Secrets Manager (moto): the description and
//! the versions with the application's view; the lock (tags); the move of the staging label;
//! the pending label removed beside the upsert; the checks; the final marker (tags).
//!
//! With `--gcp-endpoint`, the secret manager is Google Cloud Secret Manager (the sandbox's
//! stand-in): the secret read (`secrets.get`) and its versions (`versions.list`), with the
//! application's view, together; the lock and the move in one etag-checked patch, and the
//! final marker in another.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// The floor's inputs.
#[derive(Debug, Parser)]
struct Args {
    /// OpenBao's address.
    #[arg(long, default_value = "")]
    bao: String,
    /// Secret Manager's REST base URL (without `/v1`): use it instead of OpenBao.
    #[arg(long)]
    gcp_endpoint: Option<String>,
    /// AWS Secrets Manager's endpoint (moto's): use it instead of OpenBao; each ref's secret
    /// is named as the ref.
    #[arg(long)]
    aws_endpoint: Option<String>,
    /// The Secret Manager project.
    #[arg(long, default_value = "rotor-test")]
    gcp_project: String,
    /// An access token that may get, list and update secrets (env `FLOOR_GCP_TOKEN`).
    #[arg(skip = std::env::var("FLOOR_GCP_TOKEN").unwrap_or_default())]
    gcp_token: String,
    /// A token that may read and write `secret/metadata/` (env `FLOOR_BAO_TOKEN`).
    #[arg(skip = std::env::var("FLOOR_BAO_TOKEN").unwrap_or_default())]
    bao_token: String,
    /// The application's base URL.
    #[arg(long)]
    app: String,
    /// The application's bearer token (env `FLOOR_APP_TOKEN`).
    #[arg(skip = std::env::var("FLOOR_APP_TOKEN").unwrap_or_default())]
    app_token: String,
    /// A file with one ref per line.
    #[arg(long)]
    refs: std::path::PathBuf,
    /// Refs in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The rotation id recorded in the application.
    #[arg(long, default_value = "floor")]
    rotation_id: String,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Sends `request` and reads its JSON answer, which must be a success.
async fn json_of(request: reqwest::RequestBuilder) -> Result<Value, Failure> {
    Ok(request.send().await?.error_for_status()?.json().await?)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(_) => return ExitCode::from(1),
    };
    match runtime.block_on(run(args)) {
        Ok((refs, seconds)) => {
            let _ = writeln!(
                std::io::stdout(),
                "{}",
                json!({"refs": refs, "seconds": seconds})
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "rotor-floor: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(args: Args) -> Result<(usize, f64), Failure> {
    let refs: Vec<String> = std::fs::read_to_string(&args.refs)?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let http = reqwest::Client::builder().build()?;
    let args = Arc::new(args);
    let permits = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for r in refs.clone() {
        let (http, args, permits) = (http.clone(), args.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            rotate(&http, &args, &r).await
        });
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    confirm_audit(&http, &args, &refs).await?;
    Ok((refs.len(), started.elapsed().as_secs_f64()))
}

async fn rotate(http: &reqwest::Client, a: &Args, r: &str) -> Result<(), Failure> {
    let app = |path: &str| format!("{}/api/v1/{path}", a.app.trim_end_matches('/'));
    // The application's view and the secret manager's state are independent reads: together.
    let known = json_of(
        http.get(app(&format!("secret-refs/{r}")))
            .bearer_auth(&a.app_token),
    );
    if let Some(endpoint) = &a.gcp_endpoint {
        return rotate_gcp(http, a, r, endpoint, known).await;
    }
    if let Some(endpoint) = &a.aws_endpoint {
        return rotate_aws(http, a, r, endpoint, known).await;
    }
    let meta_url = format!("{}/v1/secret/metadata/{r}", a.bao.trim_end_matches('/'));
    let meta = json_of(http.get(&meta_url).header("X-Vault-Token", &a.bao_token));
    let (known, meta) = tokio::try_join!(known, meta)?;
    let mut version = meta["data"]["current_metadata_version"]
        .as_u64()
        .ok_or("no metadata version")?;
    let mut custom = meta["data"]["custom_metadata"].clone();
    let from = custom["current_version"]
        .as_str()
        .ok_or("no pointer")?
        .to_owned();
    let to = meta["data"]["current_version"]
        .as_u64()
        .ok_or("no version")?
        .to_string();
    let mut write = |changes: &[(&str, &str)]| {
        for (k, v) in changes {
            custom[*k] = json!(v);
        }
        let body = json!({"custom_metadata": custom.clone(), "metadata_cas": version});
        version += 1;
        http.post(&meta_url)
            .header("X-Vault-Token", &a.bao_token)
            .json(&body)
            .send()
    };
    // The lock and the move in one check-and-set write, as the marker and the pointer live in
    // one metadata object.
    write(&[
        ("rotor_rotation_id", &a.rotation_id),
        ("rotor_state", "pending"),
        ("rotor_from", &from),
        ("rotor_to", &to),
        ("current_version", &to),
        ("rotor_previous", &from),
    ])
    .await?
    .error_for_status()?;
    verify_in_app(http, a, r, &to, &known).await?;
    write(&[("rotor_state", "done")])
        .await?
        .error_for_status()?;
    Ok(())
}

/// The application's part of a rotation: the upsert, one resolve, each site's health.
async fn verify_in_app(
    http: &reqwest::Client,
    a: &Args,
    r: &str,
    to: &str,
    known: &Value,
) -> Result<(), Failure> {
    record_in_app(http, a, r, to).await?;
    check_in_app(http, a, r, known).await
}

/// The upsert: the application records the ref's new version.
async fn record_in_app(http: &reqwest::Client, a: &Args, r: &str, to: &str) -> Result<(), Failure> {
    let app = |path: &str| format!("{}/api/v1/{path}", a.app.trim_end_matches('/'));
    http.put(app(&format!("secret-refs/{r}")))
        .bearer_auth(&a.app_token)
        .json(&json!({"versionId": to, "rotationId": a.rotation_id, "operation": "rotate", "operator": "floor"}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// The application's checks: one resolve, each site's health.
async fn check_in_app(
    http: &reqwest::Client,
    a: &Args,
    r: &str,
    known: &Value,
) -> Result<(), Failure> {
    let app = |path: &str| format!("{}/api/v1/{path}", a.app.trim_end_matches('/'));
    http.post(app(&format!("secret-refs/{r}/resolve")))
        .bearer_auth(&a.app_token)
        .send()
        .await?
        .error_for_status()?;
    let provider = r.split('.').nth(2).unwrap_or_default();
    for site in known["siteIds"].as_array().into_iter().flatten() {
        let site = site.as_str().unwrap_or_default();
        http.get(app(&format!("sites/{site}/integrations/{provider}/health")))
            .bearer_auth(&a.app_token)
            .send()
            .await?;
    }
    Ok(())
}

/// One ref on Secret Manager: the secret and its versions read, the alias moved with the
/// pending marker in one etag-checked patch, the application's part, the final marker.
async fn rotate_gcp(
    http: &reqwest::Client,
    a: &Args,
    r: &str,
    endpoint: &str,
    known: impl std::future::Future<Output = Result<Value, Failure>>,
) -> Result<(), Failure> {
    let parts: Vec<&str> = r.split('.').collect();
    let id = format!("{}_{}_{}", parts[1], parts[2], parts[3]);
    let secret_url = format!(
        "{}/v1/projects/{}/secrets/{id}",
        endpoint.trim_end_matches('/'),
        a.gcp_project
    );
    let get = |url: String| json_of(http.get(url).bearer_auth(&a.gcp_token));
    let (known, secret, versions) = tokio::try_join!(
        known,
        get(secret_url.clone()),
        get(format!("{secret_url}/versions"))
    )?;
    let known = &known;
    let from = secret["versionAliases"]["current"]
        .as_str()
        .ok_or("no alias")?
        .to_owned();
    let to = versions["versions"][0]["name"]
        .as_str()
        .and_then(|n| n.rsplit('/').next())
        .ok_or("no version")?
        .to_owned();
    let mut aliases = secret["versionAliases"].clone();
    aliases["current"] = json!(to);
    let mut annotations = secret
        .get("annotations")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for (k, v) in [
        ("rotor-rotation-id", a.rotation_id.as_str()),
        ("rotor-state", "pending"),
        ("rotor-from", from.as_str()),
        ("rotor-to", to.as_str()),
        ("rotor-previous", from.as_str()),
    ] {
        annotations[k] = json!(v);
    }
    let patch = |etag: &Value, annotations: &Value| {
        http.patch(format!(
            "{secret_url}?updateMask=versionAliases,annotations"
        ))
        .bearer_auth(&a.gcp_token)
        .json(&json!({"etag": etag, "versionAliases": aliases, "annotations": annotations}))
        .send()
    };
    let moved: Value = patch(&secret["etag"], &annotations)
        .await?
        .error_for_status()?
        .json()
        .await?;
    verify_in_app(http, a, r, &to, known).await?;
    annotations["rotor-state"] = json!("done");
    patch(&moved["etag"], &annotations)
        .await?
        .error_for_status()?;
    Ok(())
}

/// One AWS Secrets Manager JSON-protocol call (moto checks no signature; the credential scope
/// names the region).
async fn aws(
    http: &reqwest::Client,
    endpoint: &str,
    target: &str,
    body: Value,
) -> Result<Value, Failure> {
    let answer = http
        .post(endpoint)
        .header("X-Amz-Target", format!("secretsmanager.{target}"))
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20261125/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x",
        )
        .body(body.to_string())
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await?;
    Ok(serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

/// One ref on AWS Secrets Manager, as the procedure requires there: the description and the
/// versions read with the application's view; the lock (tags); the move of the staging label
/// (the service's compare-and-swap); the pending label removed beside the upsert; resolve and
/// health; the final marker (tags).
async fn rotate_aws(
    http: &reqwest::Client,
    a: &Args,
    r: &str,
    endpoint: &str,
    known: impl std::future::Future<Output = Result<Value, Failure>>,
) -> Result<(), Failure> {
    let id = json!({ "SecretId": r });
    let (known, described, _versions) = tokio::try_join!(
        known,
        aws(http, endpoint, "DescribeSecret", id.clone()),
        aws(
            http,
            endpoint,
            "ListSecretVersionIds",
            json!({"SecretId": r, "IncludeDeprecated": true})
        )
    )?;
    let labelled = |stage: &str| {
        described["VersionIdsToStages"]
            .as_object()
            .into_iter()
            .flatten()
            .find(|(_, stages)| {
                stages
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == stage))
            })
            .map(|(v, _)| v.clone())
            .ok_or("no version so labelled")
    };
    let (from, to) = (labelled("AWSCURRENT")?, labelled("AWSPENDING")?);
    let tags = |state: &str| {
        json!({"SecretId": r, "Tags": [
            {"Key": "rotor:rotation-id", "Value": a.rotation_id},
            {"Key": "rotor:state", "Value": state},
            {"Key": "rotor:from", "Value": from},
            {"Key": "rotor:to", "Value": to},
        ]})
    };
    aws(http, endpoint, "TagResource", tags("pending")).await?;
    aws(
        http,
        endpoint,
        "UpdateSecretVersionStage",
        json!({"SecretId": r, "VersionStage": "AWSCURRENT", "MoveToVersionId": to, "RemoveFromVersionId": from}),
    )
    .await?;
    let clear = aws(
        http,
        endpoint,
        "UpdateSecretVersionStage",
        json!({"SecretId": r, "VersionStage": "AWSPENDING", "RemoveFromVersionId": to}),
    );
    tokio::try_join!(clear, record_in_app(http, a, r, &to))?;
    check_in_app(http, a, r, &known).await?;
    aws(http, endpoint, "TagResource", tags("done")).await?;
    Ok(())
}

async fn confirm_audit(http: &reqwest::Client, a: &Args, refs: &[String]) -> Result<(), Failure> {
    let mut missing: HashSet<&str> = refs.iter().map(String::as_str).collect();
    let base = format!("{}/api/v1/audit/events", a.app.trim_end_matches('/'));
    let mut cursor: Option<String> = None;
    while !missing.is_empty() {
        let mut params = vec![("action", "secret_ref_upserted"), ("limit", "100")];
        if let Some(c) = &cursor {
            params.push(("cursor", c));
        }
        let url = reqwest::Url::parse_with_params(&base, &params)?;
        let page = json_of(http.get(url).bearer_auth(&a.app_token)).await?;
        for e in page["events"].as_array().into_iter().flatten() {
            if e["metadata"]["rotationId"] == a.rotation_id.as_str()
                && let Some(r) = e["metadata"]["ref"].as_str()
            {
                missing.remove(r);
            }
        }
        match page["nextCursor"].as_str() {
            Some(next) if !next.is_empty() => cursor = Some(next.to_owned()),
            _ if missing.is_empty() => break,
            _ => return Err(format!("{} audit events missing", missing.len()).into()),
        }
    }
    Ok(())
}
