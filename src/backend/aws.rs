//! AWS Secrets Manager through the official SDK, labels and tags only.
//!
//! The pointer is a staging label (`AWSCURRENT` by default). rotor reads with `DescribeSecret`
//! and `ListSecretVersionIds`, moves the label with `UpdateSecretVersionStage` and
//! `RemoveFromVersionId` (the service refuses the move if the label is no longer on that
//! version: compare-and-swap), and keeps its marker in tags. `rotor new --match` lists secrets
//! with `ListSecrets` (names, labels and tags). It never calls `GetSecretValue`.
//!
//! Credentials come from the standard chain (environment, profile, web identity: how GitHub
//! OIDC arrives through `aws-actions/configure-aws-credentials`); `AWS_ENDPOINT_URL` reaches
//! emulators.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};
use chrono::{DateTime, Utc};

use super::{
    BackendError, Environment, ErrorKind, Marker, MarkerKeys, RefState, Revision, Secret, Version,
    VersionState,
};
use crate::config::AwsBackend;
use crate::ids::VersionId;
use crate::retry::Policy;

const PENDING: &str = "AWSPENDING";
const PREVIOUS: &str = "AWSPREVIOUS";
/// The tags of rotor's marker.
pub(super) const MARKER_TAGS: MarkerKeys = MarkerKeys {
    id: "rotor:rotation-id",
    state: "rotor:state",
    from: "rotor:from",
    to: "rotor:to",
    rollback: "rotor:rollback",
    pull_request: "rotor:pull-request",
};
/// Secrets per `ListSecrets` page: AWS's maximum.
const LIST_PAGE: i32 = 100;

/// The clients for one region. The SDK retries nothing: rotor retries reads itself (so that it
/// can honour `Retry-After`), and re-reads before it sends a write again.
#[derive(Debug)]
pub struct Aws {
    client: Client,
    policy: Policy,
    pace: crate::ratelimit::RateLimit,
    /// The region the client writes to, as the chain resolved it.
    region: String,
}

/// How a failed call ended, for deciding what to do next.
enum Class {
    /// The request may have been processed (the connection broke, or a 5xx such as
    /// `ServiceUnavailableException`): a read may be sent again; a write is first checked by a
    /// read.
    Lost(String, Option<Duration>),
    /// Refused unprocessed because of a rate limit (a `400` whose code is one of the SDK's
    /// throttling codes): safe to send again, after the service's `Retry-After` if it sent one.
    Throttled(String, Option<Duration>),
    /// A definite answer from the service.
    Service { code: String, message: String },
    /// The request could not be built or signed (no credentials, no region).
    Setup(String),
}

/// The error codes the AWS SDKs treat as throttling.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

fn classify<E>(err: &SdkError<E>) -> Class
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(ctx) => {
            let retry_after =
                crate::retry::parse_retry_after(ctx.raw().headers().get("retry-after"));
            let status = ctx.raw().status().as_u16();
            let code = err.code().unwrap_or("Unknown").to_owned();
            let message = err.message().unwrap_or("").to_owned();
            if THROTTLING_CODES.contains(&code.as_str()) {
                Class::Throttled(format!("{code}: {message}"), retry_after)
            } else if status >= 500 {
                Class::Lost(format!("{status} {code}: {message}"), retry_after)
            } else {
                Class::Service { code, message }
            }
        }
        SdkError::ConstructionFailure(_) => Class::Setup(causes(err)),
        // The credential chain found nothing (or failed): the call never left. Invalid setup,
        // not an outage; retrying cannot help.
        SdkError::DispatchFailure(_) if from_credentials(err) => Class::Setup(causes(err)),
        _ => Class::Lost(causes(err), None),
    }
}

/// Whether a credential provider's error is among `err`'s causes.
fn from_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.is::<aws_credential_types::provider::error::CredentialsError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// `err` and its causes in words, each once: `dispatch failure: other: an error occurred while
/// loading credentials: …` (the SDK's own context printer ends with a debug dump of headers).
fn causes(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}

impl Aws {
    /// Builds the clients for a region (or the chain's region).
    pub(crate) async fn connect(
        cfg: &AwsBackend,
        env: &Environment,
        writes_per_second: u32,
    ) -> Self {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            .operation_attempt_timeout(Duration::from_secs(15))
            .operation_timeout(Duration::from_secs(60))
            .build();
        // NOTE: the SDK retries nothing. A write whose answer was lost must be followed by a
        // read, not sent again blindly; reads are retried by rotor, honouring `Retry-After`.
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(region) = cfg
            .region
            .clone()
            .or_else(|| env.vars.as_ref().and_then(|_| env.var("AWS_REGION")))
        {
            loader = loader.region(aws_config::Region::new(region));
        }
        // An explicit environment (tests, embedding) is used instead of the process's.
        if env.vars.is_some() {
            if let Some(url) = env.var("AWS_ENDPOINT_URL") {
                loader = loader.endpoint_url(url);
            }
            if let (Some(id), Some(key)) = (
                env.var("AWS_ACCESS_KEY_ID"),
                env.var("AWS_SECRET_ACCESS_KEY"),
            ) {
                loader =
                    loader.credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                        id,
                        key,
                        env.var("AWS_SESSION_TOKEN"),
                        None,
                        "rotor-environment",
                    ));
            }
        }
        let shared = loader.load().await;
        let region = shared.region().map(ToString::to_string).unwrap_or_default();
        let config = aws_sdk_secretsmanager::config::Builder::from(&shared)
            .interceptor(LogCalls)
            .interceptor(CapAnswers)
            .build();
        Self {
            client: Client::from_conf(config),
            policy: Policy::default(),
            pace: crate::ratelimit::RateLimit::per_second(writes_per_second),
            region,
        }
    }

    /// A read, sent again while it was throttled, lost or answered with a 5xx.
    async fn fetch<T, E, F, Fut>(
        &self,
        secret: &Secret,
        call: &str,
        send: F,
    ) -> Result<T, BackendError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send().await {
                Ok(v) => return Ok(v),
                Err(e) => match classify(&e) {
                    Class::Throttled(_, after) | Class::Lost(_, after)
                        if attempt < self.policy.attempts =>
                    {
                        tokio::time::sleep(self.policy.delay(attempt, after)).await;
                    }
                    class => {
                        return Err(Self::error(
                            secret,
                            call,
                            Self::kind_of(secret, call, class),
                        ));
                    }
                },
            }
        }
    }

    fn error(secret: &Secret, call: &str, kind: ErrorKind) -> BackendError {
        BackendError {
            secret_ref: secret.secret_ref.to_string(),
            backend: "aws-secrets-manager",
            call: call.to_owned(),
            kind,
        }
    }

    fn kind_of(secret: &Secret, call: &str, class: Class) -> ErrorKind {
        Self::kind_at(&secret.location, call, class)
    }

    /// What a failed call on the secret at `location` means for the user.
    fn kind_at(location: &str, call: &str, class: Class) -> ErrorKind {
        match class {
            Class::Lost(detail, _) | Class::Throttled(detail, _) => {
                ErrorKind::Unavailable { detail }
            }
            Class::Setup(detail) => ErrorKind::Setup {
                detail: format!(
                    "cannot call AWS ({detail}); check the credential chain (AWS_* variables, profile, web identity) and the region"
                ),
            },
            Class::Service { code, message } => match code.as_str() {
                "AccessDeniedException" => ErrorKind::Forbidden {
                    permission: format!(
                        "`secretsmanager:{call}` on the secret {location:?} ({message})"
                    ),
                },
                "ResourceNotFoundException" => ErrorKind::NotFound {
                    location: format!("secret {location:?}"),
                },
                "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "ExpiredTokenException"
                | "InvalidSignatureException"
                | "MissingAuthenticationToken"
                | "IncompleteSignature" => ErrorKind::Unauthorized {
                    hint: format!(
                        "{code}: check the credential chain (AWS_* variables, profile, web identity)"
                    ),
                },
                _ => ErrorKind::Protocol {
                    detail: format!("{code}: {message}"),
                },
            },
        }
    }

    /// Reads labels, versions and tags.
    pub(crate) async fn read(
        &self,
        secret: &Secret,
        stage: &str,
    ) -> Result<RefState, BackendError> {
        // The description and the first page of versions are independent reads: together.
        let page = |next: Option<String>| {
            self.fetch(secret, "ListSecretVersionIds", move || {
                self.client
                    .list_secret_version_ids()
                    .secret_id(&secret.location)
                    .include_deprecated(true)
                    .set_next_token(next.clone())
                    .send()
            })
        };
        let describe = self.fetch(secret, "DescribeSecret", || {
            self.client
                .describe_secret()
                .secret_id(&secret.location)
                .send()
        });
        let (described, first) = tokio::join!(describe, page(None));
        let described = described?;
        let stages: HashMap<String, Vec<String>> = described
            .version_ids_to_stages()
            .cloned()
            .unwrap_or_default();
        let mut listed = Vec::new();
        // A secret scheduled for deletion answers only what DescribeSecret says of it (its
        // versions' list may be refused); rotor refuses it anyway (its labels tell the pointer).
        if described.deleted_date().is_none() {
            let mut next = first?;
            let mut again = true;
            loop {
                listed.extend(next.versions().iter().cloned());
                match next.next_token() {
                    Some(t) if !t.is_empty() => next = page(Some(t.to_owned())).await?,
                    _ => {
                        // The list may have been answered before the description: a version
                        // created and labelled in between is labelled but not listed. Listed
                        // once more, after the description, it is.
                        let missing = stages
                            .keys()
                            .any(|id| !listed.iter().any(|v| v.version_id() == Some(id.as_str())));
                        if !(missing && again) {
                            break;
                        }
                        again = false;
                        listed.clear();
                        next = page(None).await?;
                    }
                }
            }
        }
        let mut versions = Vec::with_capacity(listed.len());
        for entry in &listed {
            // An odd id on a version that plays no part in the rotation never blocks it: such a
            // version is left out of the list, and only a label on it is an error.
            let Some(id) = entry
                .version_id()
                .and_then(|id| VersionId::from_backend(id).ok())
            else {
                continue;
            };
            versions.push(Version {
                id,
                created: entry
                    .created_date()
                    .and_then(|d| DateTime::<Utc>::from_timestamp(d.secs(), d.subsec_nanos())),
                state: VersionState::Enabled,
            });
        }
        let tags: HashMap<&str, &str> = described
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        let mut state = state_from(stages, &tags, versions, stage)
            .map_err(|kind| Self::error(secret, "DescribeSecret", kind))?;
        state.conditions = super::Conditions {
            deletion: described.deleted_date().map(|d| {
                DateTime::<Utc>::from_timestamp(d.secs(), 0)
                    .map_or_else(|| d.to_string(), |t| t.format("%Y-%m-%d").to_string())
            }),
            replica_of: described
                .primary_region()
                .filter(|primary| !self.region.is_empty() && *primary != self.region)
                .map(str::to_owned),
            expires: None,
            rotation_function: described.rotation_enabled().unwrap_or(false).then(|| {
                described
                    .rotation_lambda_arn()
                    .unwrap_or("(its rotation function)")
                    .to_owned()
            }),
        };
        Ok(state)
    }

    /// Sends a write, again while it is throttled (refused unprocessed); a lost answer or a
    /// 5xx is returned as `Lost`, for the caller to learn from a read whether it landed.
    async fn write<T, E, F, Fut>(&self, secret: &Secret, call: &str, send: F) -> Result<T, Class>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SdkError<E>>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.pace.acquire().await;
            match send().await {
                Ok(v) => return Ok(v),
                Err(e) => match classify(&e) {
                    Class::Throttled(_, after) if attempt < self.policy.attempts => {
                        tokio::time::sleep(self.policy.delay(attempt, after)).await;
                    }
                    Class::Throttled(detail, after) => {
                        return Err(Class::Throttled(
                            format!("{call} for {}: {detail}", secret.location),
                            after,
                        ));
                    }
                    other => return Err(other),
                },
            }
        }
    }

    /// How many times a write whose answer was lost is checked and sent again: a lock, a move
    /// or a final marker must land whenever the service recovers within this budget.
    fn rounds(&self) -> u32 {
        self.policy.attempts * 2
    }

    /// Moves `stage` from `from` to `to`; the service refuses if `from` no longer holds it.
    pub(crate) async fn repoint(
        &self,
        secret: &Secret,
        stage: &str,
        seen: &RefState,
        from: &VersionId,
        to: &VersionId,
    ) -> Result<RefState, BackendError> {
        const CALL: &str = "UpdateSecretVersionStage";
        let conflict = |now: &RefState| {
            Self::error(
                secret,
                CALL,
                ErrorKind::Conflict {
                    detail: format!(
                        "{stage} is on {} rather than {from}",
                        now.current.as_ref().map_or("no version", VersionId::as_str)
                    ),
                },
            )
        };
        if seen.current.as_ref() != Some(from) {
            return Err(conflict(seen));
        }
        let mut last = String::new();
        // Whether an earlier attempt may have landed unseen: only then is finding the label on
        // `to` after a refusal our own move rather than another writer's.
        let mut maybe_landed = false;
        for round in 1..=self.rounds() {
            let result = self
                .write(secret, CALL, || {
                    self.client
                        .update_secret_version_stage()
                        .secret_id(&secret.location)
                        .version_stage(stage)
                        .move_to_version_id(to.as_str())
                        .remove_from_version_id(from.as_str())
                        .send()
                })
                .await;
            match result {
                // The move landed: its state is known even if the read after it fails.
                Ok(_) => {
                    return Ok(self
                        .read(secret, stage)
                        .await
                        .unwrap_or_else(|_| moved(seen, from, to)));
                }
                Err(Class::Lost(detail, after)) => {
                    // Never re-send blindly: learn whether the move landed.
                    let now = self.read(secret, stage).await?;
                    if now.current.as_ref() == Some(to) {
                        return Ok(now);
                    }
                    if now.current.as_ref() != Some(from) {
                        return Err(conflict(&now));
                    }
                    maybe_landed = true;
                    last = detail;
                    tokio::time::sleep(self.policy.delay(round, after)).await;
                }
                Err(Class::Service { code, message })
                    if code == "InvalidParameterException" || code == "InvalidRequestException" =>
                {
                    // The service's compare-and-swap: find out whether the label moved away.
                    let now = self.read(secret, stage).await?;
                    if maybe_landed && now.current.as_ref() == Some(to) {
                        // An earlier attempt whose answer was lost had landed.
                        return Ok(now);
                    }
                    if now.current.as_ref() != Some(from) {
                        return Err(conflict(&now));
                    }
                    return Err(Self::error(
                        secret,
                        CALL,
                        ErrorKind::Refused {
                            detail: format!("{code}: {message}"),
                        },
                    ));
                }
                Err(other) => {
                    return Err(Self::error(
                        secret,
                        CALL,
                        Self::kind_of(secret, CALL, other),
                    ));
                }
            }
        }
        Err(Self::error(
            secret,
            CALL,
            ErrorKind::Unavailable {
                detail: format!(
                    "the move did not land after {} attempts ({last})",
                    self.rounds()
                ),
            },
        ))
    }

    /// Removes `AWSPENDING` from `version`, if it still has it.
    pub(crate) async fn clear_pending(
        &self,
        secret: &Secret,
        stage: &str,
        seen: &RefState,
        version: &VersionId,
    ) -> Result<(), BackendError> {
        const CALL: &str = "UpdateSecretVersionStage";
        let Revision::Aws { stages, .. } = &seen.revision else {
            return Ok(());
        };
        let mut labelled = stages
            .get(version.as_str())
            .is_some_and(|labels| labels.iter().any(|l| l == PENDING));
        let mut round = 0;
        while labelled {
            round += 1;
            match self
                .write(secret, CALL, || {
                    self.client
                        .update_secret_version_stage()
                        .secret_id(&secret.location)
                        .version_stage(PENDING)
                        .remove_from_version_id(version.as_str())
                        .send()
                })
                .await
            {
                Ok(_) => return Ok(()),
                // Judge by the state: the answer was lost, or the label had already gone.
                Err(Class::Lost(..) | Class::Service { .. }) if round < self.rounds() => {
                    labelled = self.read(secret, stage).await?.pending.contains(version);
                    if labelled {
                        tokio::time::sleep(self.policy.delay(round, None)).await;
                    }
                }
                Err(other) => {
                    return Err(Self::error(
                        secret,
                        CALL,
                        Self::kind_of(secret, CALL, other),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Writes (or with `None` removes) rotor's marker tags. Tagging sets values, so sending the
    /// same tags twice does no harm; still, a lost answer is first checked by a read, and the
    /// tags are sent again only when the read shows they did not land.
    pub(crate) async fn write_marker(
        &self,
        secret: &Secret,
        stage: &str,
        marker: Option<&Marker>,
    ) -> Result<Option<RefState>, BackendError> {
        // Every marker tag it does not set is removed, whether or not the last read showed it:
        // a read may be stale (a lost answer, failing reads), and a rollback flag left on a
        // final marker would make a later lock's run resume a rollback that never began.
        let (tags, remove) = marker_tags(marker);
        let mut last = String::new();
        for round in 1..=self.rounds() {
            let mut lost = None;
            if !tags.is_empty() {
                let tag_list: Vec<Tag> = tags
                    .iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(v).build())
                    .collect();
                match self
                    .write(secret, "TagResource", || {
                        self.client
                            .tag_resource()
                            .secret_id(&secret.location)
                            .set_tags(Some(tag_list.clone()))
                            .send()
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(Class::Lost(detail, after)) => lost = Some((detail, after)),
                    Err(other) => return Err(self.tag_error(secret, "TagResource", other)),
                }
            }
            if !remove.is_empty() && lost.is_none() {
                match self
                    .write(secret, "UntagResource", || {
                        self.client
                            .untag_resource()
                            .secret_id(&secret.location)
                            .set_tag_keys(Some(remove.iter().map(|k| (*k).to_owned()).collect()))
                            .send()
                    })
                    .await
                {
                    Ok(_) => {}
                    Err(Class::Lost(detail, after)) => lost = Some((detail, after)),
                    Err(other) => return Err(self.tag_error(secret, "UntagResource", other)),
                }
            }
            let Some((detail, after)) = lost else {
                return Ok(None);
            };
            let now = self.read(secret, stage).await?;
            if now.marker.as_ref() == marker {
                return Ok(Some(now));
            }
            last = detail;
            tokio::time::sleep(self.policy.delay(round, after)).await;
        }
        Err(Self::error(
            secret,
            "TagResource",
            ErrorKind::Unavailable {
                detail: format!(
                    "the marker did not land after {} attempts ({last})",
                    self.rounds()
                ),
            },
        ))
    }

    fn tag_error(&self, secret: &Secret, call: &str, class: Class) -> BackendError {
        let kind = match class {
            // A definite refusal of the tags (too many, invalid) before the pointer moved.
            Class::Service { code, message }
                if code != "AccessDeniedException" && code != "ResourceNotFoundException" =>
            {
                ErrorKind::Refused {
                    detail: format!("{code}: {message}"),
                }
            }
            other => Self::kind_of(secret, call, other),
        };
        Self::error(secret, call, kind)
    }
}

/// The tags rotor's marker sets, and the ones it removes.
fn marker_tags(marker: Option<&Marker>) -> (Vec<(&'static str, String)>, Vec<&'static str>) {
    let mut tags = Vec::new();
    let mut remove = Vec::new();
    match marker {
        Some(m) => {
            for (tag, value) in MARKER_TAGS.fields(m) {
                match value {
                    Some(v) => tags.push((tag, v)),
                    None => remove.push(tag),
                }
            }
        }
        None => remove.extend(MARKER_TAGS.all()),
    }
    (tags, remove)
}

/// The state after `marker` was written over `seen` (its tags set, the others removed), when
/// the writes' success says what it is.
pub(crate) fn marked(seen: &RefState, marker: &Marker) -> RefState {
    let (tags, remove) = marker_tags(Some(marker));
    let mut state = RefState {
        marker: Some(marker.clone()),
        ..seen.clone()
    };
    if let Revision::Aws { tags: held, .. } = &mut state.revision {
        held.extend(tags.iter().map(|(k, _)| (*k).to_owned()));
        for k in remove {
            held.remove(k);
        }
    }
    state
}

/// The state after a move that landed, from the state before it, when it cannot be read.
fn moved(seen: &RefState, from: &VersionId, to: &VersionId) -> RefState {
    RefState {
        current: Some(to.clone()),
        previous: Some(from.clone()),
        pending: seen.pending.iter().filter(|v| *v != to).cloned().collect(),
        ..seen.clone()
    }
}

impl Aws {
    /// `ListSecrets`, every page: each secret's name, labels and tags, never a value. With a
    /// `prefix`, only the secrets whose name starts with it (AWS's `name` filter, a
    /// case-sensitive prefix match). `subject` says what is listed, in errors.
    pub(crate) async fn list(
        &self,
        prefix: Option<&str>,
        subject: &str,
    ) -> Result<Vec<ListedSecret>, BackendError> {
        const CALL: &str = "ListSecrets";
        let filters = prefix.map(|p| {
            vec![
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(p)
                    .build(),
            ]
        });
        let mut secrets = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let next = token.take();
            let mut attempt = 0;
            let page = loop {
                attempt += 1;
                let sent = self
                    .client
                    .list_secrets()
                    .max_results(LIST_PAGE)
                    .set_filters(filters.clone())
                    .set_next_token(next.clone())
                    .send()
                    .await;
                let e = match sent {
                    Ok(page) => break page,
                    Err(e) => e,
                };
                match classify(&e) {
                    // A read: sent again while throttled or lost, like every other read.
                    Class::Throttled(_, after) | Class::Lost(_, after)
                        if attempt < self.policy.attempts =>
                    {
                        tokio::time::sleep(self.policy.delay(attempt, after)).await;
                    }
                    class => {
                        return Err(BackendError {
                            secret_ref: subject.to_owned(),
                            backend: "aws-secrets-manager",
                            call: CALL.to_owned(),
                            kind: match class {
                                Class::Service { code, message }
                                    if code == "AccessDeniedException" =>
                                {
                                    ErrorKind::Forbidden {
                                        permission: format!(
                                            "`secretsmanager:{CALL}` (resource \"*\"), which lists names, labels and tags ({message})"
                                        ),
                                    }
                                }
                                other => Self::kind_at("*", CALL, other),
                            },
                        });
                    }
                }
            };
            for entry in page.secret_list() {
                let Some(name) = entry.name() else {
                    continue;
                };
                secrets.push(ListedSecret {
                    name: name.to_owned(),
                    stages: entry
                        .secret_versions_to_stages()
                        .cloned()
                        .unwrap_or_default(),
                    tags: entry
                        .tags()
                        .iter()
                        .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                        .collect(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(secrets)
    }
}

/// Logs each AWS call with `-v` (the operation, the status and the duration), like every
/// other client's calls.
#[derive(Debug)]
struct LogCalls;

/// When the attempt was sent.
#[derive(Debug, Clone)]
struct AttemptStarted(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for AttemptStarted {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_sdk_secretsmanager::config::Intercept for LogCalls {
    fn name(&self) -> &'static str {
        "rotor-log-calls"
    }

    fn read_before_attempt(
        &self,
        _context: &aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(AttemptStarted(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let took = cfg
            .load::<AttemptStarted>()
            .map(|s| s.0.elapsed())
            .unwrap_or_default();
        let operation = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map_or("", |m| m.name());
        let method = context.request().map_or("POST", |r| r.method());
        crate::output::http_call(
            "aws",
            method,
            &format!("/ {operation}"),
            context.response().map(|r| r.status().as_u16()),
            took,
        );
        Ok(())
    }
}

/// Reads no AWS answer past [`crate::body::MAX_BODY`]: the SDK buffers a body whole before
/// it parses it, so the body is wrapped in a limit before it does (a larger answer ends the
/// call with an error, never in memory).
#[derive(Debug)]
struct CapAnswers;

impl aws_sdk_secretsmanager::config::Intercept for CapAnswers {
    fn name(&self) -> &'static str {
        "rotor-cap-answers"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_secretsmanager::config::interceptors::BeforeDeserializationInterceptorContextMut<'_>,
        _components: &aws_sdk_secretsmanager::config::RuntimeComponents,
        _cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let body = context.response_mut().take_body();
        *context.response_mut().body_mut() = aws_smithy_types::body::SdkBody::from_body_1_x(
            http_body_util::Limited::new(body, crate::body::MAX_BODY),
        );
        Ok(())
    }
}

/// The state that a secret's labels, tags and versions describe: the pointer (`stage`), the
/// previous and pending versions, and rotor's marker.
fn state_from(
    stages: HashMap<String, Vec<String>>,
    tags: &HashMap<&str, &str>,
    mut versions: Vec<Version>,
    stage: &str,
) -> Result<RefState, ErrorKind> {
    let protocol = |detail: String| ErrorKind::Protocol { detail };
    let parse = |id: &str| {
        VersionId::from_backend(id)
            .map_err(|e| protocol(format!("version id {id:?}: {}", e.reason)))
    };
    let labelled = |label: &str| -> Result<Vec<VersionId>, ErrorKind> {
        let mut ids: Vec<VersionId> = stages
            .iter()
            .filter(|(_, labels)| labels.iter().any(|l| l == label))
            .map(|(id, _)| parse(id))
            .collect::<Result<_, _>>()?;
        ids.sort();
        Ok(ids)
    };
    let current = labelled(stage)?.into_iter().next();
    let previous = labelled(PREVIOUS)?.into_iter().next();
    let pending = labelled(PENDING)?;
    versions.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    let marker = MARKER_TAGS
        .read(|k| tags.get(k).copied())
        .map_err(|tag| protocol(format!("tag {tag} is missing or unknown")))?;
    Ok(RefState {
        record_rejected: Vec::new(),
        conditions: Default::default(),
        current,
        previous,
        pending,
        versions,
        marker,
        revision: Revision::Aws {
            stages,
            tags: tags.keys().map(|k| (*k).to_owned()).collect(),
        },
    })
}

/// One secret as `ListSecrets` shows it: its name, labels and tags.
#[derive(Debug, Clone)]
pub(crate) struct ListedSecret {
    /// The secret's name.
    pub(crate) name: String,
    /// Version id to staging labels (only versions that carry a label).
    pub(crate) stages: HashMap<String, Vec<String>>,
    /// Its tags.
    pub(crate) tags: HashMap<String, String>,
}

impl ListedSecret {
    /// The state its labels and tags describe, the pointer being `stage`. Its version list
    /// holds the labelled versions only: `ListSecrets` does not list the others.
    pub(crate) fn state(&self, stage: &str) -> Result<RefState, ErrorKind> {
        let versions = self
            .stages
            .keys()
            .filter_map(|id| VersionId::from_backend(id).ok())
            .map(|id| Version {
                id,
                created: None,
                state: VersionState::Enabled,
            })
            .collect();
        let tags = self
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        state_from(self.stages.clone(), &tags, versions, stage)
    }
}
