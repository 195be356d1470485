//! The GitHub REST client, on octocrab's transport.
//!
//! rotor keeps the protocol decisions: it reads every page (`Link: rel="next"`), honours
//! `retry-after` and `x-ratelimit-*` (primary and secondary limits), retries only what is safe
//! to repeat (GETs, and the idempotent PATCH of a comment), and never re-sends a POST whose
//! answer was lost without first checking whether it landed. Team membership goes through the
//! organisation token (`ROTOR_ORG_TOKEN`) when one is given.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use octocrab::Octocrab;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

use super::model::{ChangedFile, Comment, Membership, PullRequest, Review, TeamSlug};
use crate::retry::{self, Policy};
use crate::secret::SecretString;

/// The longest rotor waits for a rate limit to reset before giving up.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// A failed GitHub call, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// 401: the token is missing, malformed or expired.
    #[error(
        "GitHub rejected the token for {call} (401): check GITHUB_TOKEN / the github-token input"
    )]
    Unauthorized {
        /// The call.
        call: String,
    },
    /// 403 without a rate limit: the token lacks a permission.
    #[error("GitHub refused {call} (403): the token needs {permission}")]
    Forbidden {
        /// The call.
        call: String,
        /// The permission to grant.
        permission: String,
    },
    /// 404: the resource does not exist or the token cannot see it.
    #[error("GitHub has no {what} ({call}, 404), or the token cannot see it")]
    NotFound {
        /// The call.
        call: String,
        /// What was looked for.
        what: String,
    },
    /// The rate limit would take too long to reset.
    #[error("GitHub rate limit exhausted for {call}; it resets in {wait_secs}s")]
    RateLimited {
        /// The call.
        call: String,
        /// Seconds until the reset.
        wait_secs: u64,
    },
    /// GitHub stayed unreachable or kept failing.
    #[error("GitHub unavailable for {call} after retries: {detail}")]
    Unavailable {
        /// The call.
        call: String,
        /// The last failure.
        detail: String,
    },
    /// An answer rotor does not understand.
    #[error("unexpected answer from GitHub to {call}: {detail}")]
    Protocol {
        /// The call.
        call: String,
        /// What was unexpected.
        detail: String,
    },
}

/// The owner and name of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoName {
    /// Owner (user or organisation).
    pub owner: String,
    /// Name.
    pub name: String,
}

impl RepoName {
    /// Parses `owner/name` (`GITHUB_REPOSITORY`).
    pub fn parse(text: &str) -> Option<Self> {
        let (owner, name) = text.split_once('/')?;
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        (ok(owner) && ok(name) && !name.contains('/')).then(|| Self {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }

    /// `owner/name`.
    pub fn full(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// One client per token, built once.
#[derive(Debug)]
pub struct GitHub {
    repo_client: Octocrab,
    org_client: Octocrab,
    /// The repository rotor works on.
    pub repo: RepoName,
    pub(super) graphql_url: String,
    policy: Policy,
    calls: AtomicUsize,
    viewer: tokio::sync::OnceCell<Viewer>,
}

/// The identity the token acts as: a user for a personal token, the app's bot for an
/// installation token (`github-actions[bot]` for the workflow's own `GITHUB_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Viewer {
    /// The login as GraphQL gives it (a GitHub App's bot account's ends in `[bot]`).
    pub login: String,
    /// The account's id, the same in REST (`user.id`) and GraphQL (`databaseId`).
    pub id: u64,
}

enum Outcome {
    Done(StatusCode, HeaderMap, String),
    Lost(String),
    /// An answer larger than rotor reads: sending again would bring the same.
    TooLarge(String),
}

impl GitHub {
    /// Builds the clients. `api_url` is `GITHUB_API_URL`.
    pub fn new(
        api_url: &str,
        token: &SecretString,
        org_token: Option<&SecretString>,
        repo: RepoName,
    ) -> Result<Self, GitHubError> {
        let build = |t: &SecretString| {
            Octocrab::builder()
                .base_uri(api_url)
                .map_err(|e| GitHubError::Protocol {
                    call: "connect".to_owned(),
                    detail: format!("GITHUB_API_URL {api_url:?} is not a URL: {e}"),
                })?
                .personal_token(t.expose().to_owned())
                .add_header(
                    reqwest::header::HeaderName::from_static("x-github-api-version"),
                    "2022-11-28".to_owned(),
                )
                .add_header(
                    reqwest::header::USER_AGENT,
                    concat!("rotor/", env!("CARGO_PKG_VERSION")).to_owned(),
                )
                .set_connect_timeout(Some(Duration::from_secs(5)))
                .set_read_timeout(Some(Duration::from_secs(20)))
                .build()
                .map_err(|e| GitHubError::Protocol {
                    call: "connect".to_owned(),
                    detail: e.to_string(),
                })
        };
        let repo_client = build(token)?;
        let org_client = match org_token {
            Some(t) => build(t)?,
            None => repo_client.clone(),
        };
        Ok(Self {
            repo_client,
            org_client,
            repo,
            graphql_url: graphql_url(api_url),
            policy: Policy::default(),
            calls: AtomicUsize::new(0),
            viewer: tokio::sync::OnceCell::new(),
        })
    }

    /// Who the token is, asked once (GraphQL `viewer`, which answers for user and installation
    /// tokens alike; REST `GET /user` refuses installation tokens).
    pub async fn viewer(&self) -> Result<&Viewer, GitHubError> {
        self.viewer
            .get_or_try_init(|| async {
                let call = "POST graphql { viewer }".to_owned();
                let body = serde_json::json!({"query": "query { viewer { login databaseId } }"});
                let (status, _, text) = self
                    .request(false, "POST", &self.graphql_url, Some(&body), &call)
                    .await?;
                Self::check(status, &text, &call, "viewer", "a valid token")?;
                let v: Value = serde_json::from_str(&text).map_err(|e| GitHubError::Protocol {
                    call: call.clone(),
                    detail: e.to_string(),
                })?;
                let login = v.pointer("/data/viewer/login").and_then(Value::as_str);
                let id = v.pointer("/data/viewer/databaseId").and_then(Value::as_u64);
                match (login, id) {
                    (Some(login), Some(id)) => Ok(Viewer {
                        login: login.to_owned(),
                        id,
                    }),
                    _ => Err(GitHubError::Protocol {
                        call,
                        detail: format!("no viewer in the answer: {}", message(&text)),
                    }),
                }
            })
            .await
    }

    /// How many HTTP requests this client has sent.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn send(&self, org: bool, method: &str, uri: &str, body: Option<&Value>) -> Outcome {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let client = if org {
            &self.org_client
        } else {
            &self.repo_client
        };
        let started = std::time::Instant::now();
        let result = match method {
            "POST" => client._post(uri, body).await,
            "PATCH" => client._patch(uri, body).await,
            "DELETE" => client._delete(uri, body).await,
            _ => client._get(uri).await,
        };
        crate::output::http_call(
            "github",
            method,
            uri,
            result.as_ref().ok().map(|r| r.status().as_u16()),
            started.elapsed(),
        );
        match result {
            Err(e) => Outcome::Lost(e.to_string()),
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match crate::body::read_capped(resp.into_body(), crate::body::MAX_BODY).await {
                    Ok(bytes) => Outcome::Done(
                        status,
                        headers,
                        String::from_utf8_lossy(&bytes).into_owned(),
                    ),
                    Err(e @ crate::body::BodyError::TooLarge) => Outcome::TooLarge(e.to_string()),
                    Err(e) => Outcome::Lost(e.to_string()),
                }
            }
        }
    }

    fn wait_for(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &str,
        attempt: u32,
    ) -> Option<Result<Duration, u64>> {
        wait_for(
            &self.policy,
            status,
            headers,
            body,
            attempt,
            chrono::Utc::now().timestamp(),
        )
    }

    /// A safe-to-repeat request (GET, an idempotent PATCH, a mutation guarded by a
    /// compare-and-swap), with retries.
    pub(super) async fn request(
        &self,
        org: bool,
        method: &str,
        uri: &str,
        body: Option<&Value>,
        call: &str,
    ) -> Result<(StatusCode, HeaderMap, String), GitHubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.policy.attempts;
            match self.send(org, method, uri, body).await {
                Outcome::Lost(detail) if last => {
                    return Err(GitHubError::Unavailable {
                        call: call.to_owned(),
                        detail,
                    });
                }
                Outcome::Lost(_) => tokio::time::sleep(self.policy.delay(attempt, None)).await,
                Outcome::TooLarge(detail) => {
                    return Err(GitHubError::Protocol {
                        call: call.to_owned(),
                        detail,
                    });
                }
                Outcome::Done(status, headers, text) => {
                    match self.wait_for(status, &headers, &text, attempt) {
                        Some(Err(wait_secs)) => {
                            return Err(GitHubError::RateLimited {
                                call: call.to_owned(),
                                wait_secs,
                            });
                        }
                        Some(Ok(wait)) if !last => tokio::time::sleep(wait).await,
                        Some(Ok(_)) if status.is_server_error() => {
                            return Err(GitHubError::Unavailable {
                                call: call.to_owned(),
                                detail: format!("{status}"),
                            });
                        }
                        Some(Ok(_)) => {
                            return Err(GitHubError::RateLimited {
                                call: call.to_owned(),
                                wait_secs: 0,
                            });
                        }
                        None => return Ok((status, headers, text)),
                    }
                }
            }
        }
    }

    fn check(
        status: StatusCode,
        body: &str,
        call: &str,
        what: &str,
        permission: &str,
    ) -> Result<(), GitHubError> {
        match status {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(GitHubError::Unauthorized {
                call: call.to_owned(),
            }),
            StatusCode::FORBIDDEN => Err(GitHubError::Forbidden {
                call: call.to_owned(),
                permission: permission.to_owned(),
            }),
            StatusCode::NOT_FOUND => Err(GitHubError::NotFound {
                call: call.to_owned(),
                what: what.to_owned(),
            }),
            other => Err(GitHubError::Protocol {
                call: call.to_owned(),
                detail: format!("{other}: {}", message(body)),
            }),
        }
    }

    async fn get_json(
        &self,
        org: bool,
        path: &str,
        what: &str,
        permission: &str,
    ) -> Result<Value, GitHubError> {
        let call = format!("GET {path}");
        let (status, _, text) = self.request(org, "GET", path, None, &call).await?;
        Self::check(status, &text, &call, what, permission)?;
        serde_json::from_str(&text).map_err(|e| GitHubError::Protocol {
            call,
            detail: e.to_string(),
        })
    }

    /// Every item of a paginated list.
    async fn get_all(
        &self,
        path: &str,
        what: &str,
        permission: &str,
    ) -> Result<Vec<Value>, GitHubError> {
        let call = format!("GET {path}");
        let mut uri = format!("{path}?per_page=100");
        let mut items = Vec::new();
        // A bound on pages guards against a server that links to itself forever.
        for _ in 0..1000 {
            let (status, headers, text) = self.request(false, "GET", &uri, None, &call).await?;
            Self::check(status, &text, &call, what, permission)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(page)) => items.extend(page),
                _ => {
                    return Err(GitHubError::Protocol {
                        call,
                        detail: "expected a list".to_owned(),
                    });
                }
            }
            match next_link(&headers) {
                Some(next) => uri = next,
                None => return Ok(items),
            }
        }
        Err(GitHubError::Protocol {
            call,
            detail: "more than 1000 pages".to_owned(),
        })
    }

    fn repo_path(&self, rest: &str) -> String {
        format!("/repos/{}/{}{rest}", self.repo.owner, self.repo.name)
    }

    /// The pull request.
    pub async fn pull(&self, number: u64) -> Result<PullRequest, GitHubError> {
        let v = self
            .get_json(
                false,
                &self.repo_path(&format!("/pulls/{number}")),
                &format!("pull request #{number}"),
                "`pull-requests: read`",
            )
            .await?;
        PullRequest::from_json(&v).ok_or_else(|| GitHubError::Protocol {
            call: format!("GET pull #{number}"),
            detail: "missing fields".to_owned(),
        })
    }

    /// Every review of the pull request, oldest first.
    pub async fn reviews(&self, number: u64) -> Result<Vec<Review>, GitHubError> {
        let items = self
            .get_all(
                &self.repo_path(&format!("/pulls/{number}/reviews")),
                "reviews",
                "`pull-requests: read`",
            )
            .await?;
        Ok(items.iter().filter_map(Review::from_json).collect())
    }

    /// Every file the pull request changes.
    pub async fn files(&self, number: u64) -> Result<Vec<ChangedFile>, GitHubError> {
        let items = self
            .get_all(
                &self.repo_path(&format!("/pulls/{number}/files")),
                "changed files",
                "`pull-requests: read`",
            )
            .await?;
        Ok(items.iter().filter_map(ChangedFile::from_json).collect())
    }

    /// The repository's default branch, from the API (never from an event payload, which
    /// anyone who can trigger a workflow shapes).
    pub async fn default_branch(&self) -> Result<String, GitHubError> {
        let v = self
            .get_json(
                false,
                &self.repo_path(""),
                &format!("repository {}", self.repo.full()),
                "`contents: read`",
            )
            .await?;
        v.get("default_branch")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GitHubError::Protocol {
                call: "GET repository".to_owned(),
                detail: "no default_branch".to_owned(),
            })
    }

    /// The commit a branch points to.
    pub async fn branch_sha(&self, branch: &str) -> Result<String, GitHubError> {
        let v = self
            .get_json(
                false,
                &self.repo_path(&format!("/git/ref/heads/{branch}")),
                &format!("branch {branch}"),
                "`contents: read`",
            )
            .await?;
        v.pointer("/object/sha")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GitHubError::Protocol {
                call: "GET git ref".to_owned(),
                detail: "no object.sha".to_owned(),
            })
    }

    /// Whether the organisation token can see the team at all (the policy's probe).
    pub async fn team_visible(&self, team: &TeamSlug) -> Result<bool, GitHubError> {
        let path = format!("/orgs/{}/teams/{}", team.org, team.slug);
        let call = format!("GET {path}");
        let (status, _, text) = self.request(true, "GET", &path, None, &call).await?;
        match status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => Ok(false),
            _ => Self::check(status, &text, &call, "team", "Organization `Members: read`")
                .map(|()| false),
        }
    }

    /// A user's membership of a team: `active` members only count.
    pub async fn membership(
        &self,
        team: &TeamSlug,
        login: &str,
    ) -> Result<Membership, GitHubError> {
        let path = format!("/orgs/{}/teams/{}/memberships/{login}", team.org, team.slug);
        let call = format!("GET {path}");
        let (status, _, text) = self.request(true, "GET", &path, None, &call).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Membership::None);
        }
        Self::check(
            status,
            &text,
            &call,
            "team membership",
            "Organization `Members: read`",
        )?;
        let v: Value = serde_json::from_str(&text).map_err(|e| GitHubError::Protocol {
            call: call.clone(),
            detail: e.to_string(),
        })?;
        Ok(match v.get("state").and_then(Value::as_str) {
            Some("active") => Membership::Active,
            Some("pending") => Membership::Pending,
            _ => Membership::None,
        })
    }

    /// Every comment on the pull request.
    pub async fn comments(&self, number: u64) -> Result<Vec<Comment>, GitHubError> {
        let items = self
            .get_all(
                &self.repo_path(&format!("/issues/{number}/comments")),
                "comments",
                "`pull-requests: read`",
            )
            .await?;
        Ok(items.iter().filter_map(Comment::from_json).collect())
    }

    /// Posts a comment. A POST that may have landed is never sent again blindly: rotor looks for
    /// it (by `marker`) among the comments first.
    pub async fn create_comment(
        &self,
        number: u64,
        body: &str,
        marker: &str,
    ) -> Result<Comment, GitHubError> {
        let path = self.repo_path(&format!("/issues/{number}/comments"));
        let call = format!("POST {path}");
        let payload = serde_json::json!({ "body": body });
        for attempt in 1..=self.policy.attempts {
            match self.send(false, "POST", &path, Some(&payload)).await {
                Outcome::Done(status, headers, text) => {
                    if let Some(wait) = self.wait_for(status, &headers, &text, attempt) {
                        // Rate-limited or 5xx: GitHub may still have created it; check first.
                        if let Some(found) = self.find_marked(number, marker).await? {
                            return Ok(found);
                        }
                        match wait {
                            Ok(d) if attempt < self.policy.attempts => {
                                tokio::time::sleep(d).await;
                                continue;
                            }
                            Ok(_) => {
                                return Err(GitHubError::Unavailable {
                                    call,
                                    detail: status.to_string(),
                                });
                            }
                            Err(wait_secs) => {
                                return Err(GitHubError::RateLimited { call, wait_secs });
                            }
                        }
                    }
                    Self::check(
                        status,
                        &text,
                        &call,
                        "pull request",
                        "`pull-requests: write`",
                    )?;
                    let v: Value =
                        serde_json::from_str(&text).map_err(|e| GitHubError::Protocol {
                            call: call.clone(),
                            detail: e.to_string(),
                        })?;
                    return Comment::from_json(&v).ok_or(GitHubError::Protocol {
                        call,
                        detail: "no comment id".to_owned(),
                    });
                }
                // An answer too large to read still says the comment may have landed.
                Outcome::Lost(detail) | Outcome::TooLarge(detail) => {
                    if let Some(found) = self.find_marked(number, marker).await? {
                        return Ok(found);
                    }
                    if attempt == self.policy.attempts {
                        return Err(GitHubError::Unavailable { call, detail });
                    }
                    tokio::time::sleep(self.policy.delay(attempt, None)).await;
                }
            }
        }
        Err(GitHubError::Unavailable {
            call,
            detail: "no answer".to_owned(),
        })
    }

    /// rotor's own comment on `number` that carries `marker`, if there is one.
    pub async fn find_marked(
        &self,
        number: u64,
        marker: &str,
    ) -> Result<Option<Comment>, GitHubError> {
        let comments = self.comments(number).await?;
        let me = self.own_id(&comments, marker).await;
        Ok(comments
            .into_iter()
            .find(|c| me.is_some_and(|me| c.is_rotors(marker, me))))
    }

    /// rotor's own account id, to tell its comments from others': GraphQL `viewer`; where
    /// that fails for this token (some tokens may not read it), the author of the oldest
    /// comment among `comments` of type `Bot` that carries `marker` — `None` when there is none
    /// yet. The fallback is said with `-v`; it never decides anything but which comment to
    /// edit.
    pub async fn own_id(&self, comments: &[Comment], marker: &str) -> Option<u64> {
        match self.viewer().await {
            Ok(v) => Some(v.id),
            Err(e) => {
                let found = comments
                    .iter()
                    .filter(|c| c.user_type == "Bot" && c.body.contains(marker))
                    .min_by_key(|c| c.id)
                    .and_then(|c| c.user_id);
                crate::output::verbose(&format!(
                    "github: the token's identity could not be read ({e}); {}",
                    match found {
                        Some(id) => format!(
                            "taking the bot that wrote rotor's marked comment (account {id}) as rotor"
                        ),
                        None => "no bot's comment carries rotor's marker yet".to_owned(),
                    }
                ));
                found
            }
        }
    }

    /// `DELETE /repos/{owner}/{repo}/issues/comments/{id}`; a comment already gone is fine
    /// (idempotent, so retried like a GET).
    pub async fn delete_comment(&self, id: u64) -> Result<(), GitHubError> {
        let path = self.repo_path(&format!("/issues/comments/{id}"));
        let call = format!("DELETE {path}");
        let (status, _, text) = self.request(false, "DELETE", &path, None, &call).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        Self::check(status, &text, &call, "comment", "`pull-requests: write`")
    }

    /// Replaces a comment's body (idempotent, so retried like a GET).
    pub async fn update_comment(&self, id: u64, body: &str) -> Result<(), GitHubError> {
        let path = self.repo_path(&format!("/issues/comments/{id}"));
        let call = format!("PATCH {path}");
        let payload = serde_json::json!({ "body": body });
        let (status, _, text) = self
            .request(false, "PATCH", &path, Some(&payload), &call)
            .await?;
        Self::check(status, &text, &call, "comment", "`pull-requests: write`")
    }
}

/// The GraphQL endpoint: `$GITHUB_GRAPHQL_URL` as the runner sets it, else derived from the REST
/// URL (`https://api.github.com/graphql`; GitHub Enterprise Server's `/api/v3` becomes
/// `/api/graphql`).
fn graphql_url(api_url: &str) -> String {
    if let Some(url) = std::env::var("GITHUB_GRAPHQL_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    {
        return url;
    }
    let base = api_url.trim_end_matches('/');
    match base.strip_suffix("/api/v3") {
        Some(host) => format!("{host}/api/graphql"),
        None => format!("{base}/graphql"),
    }
}

/// How long to wait before retrying a rate-limited or failing answer (`Err`: longer than rotor
/// waits, in seconds); `None`: do not retry. `now` is the current Unix time.
fn wait_for(
    policy: &Policy,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    attempt: u32,
    now: i64,
) -> Option<Result<Duration, u64>> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let retry_after = retry::retry_after(headers);
    let exhausted = header("x-ratelimit-remaining") == Some("0");
    let secondary = body.contains("secondary rate limit");
    if status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN && (exhausted || secondary || retry_after.is_some()))
    {
        if let Some(after) = retry_after {
            return Some(if after > MAX_RATE_LIMIT_WAIT {
                Err(after.as_secs())
            } else {
                Ok(after)
            });
        }
        if exhausted {
            let reset = header("x-ratelimit-reset")
                .and_then(|r| r.parse::<i64>().ok())
                .unwrap_or(0);
            let wait = u64::try_from(reset - now).unwrap_or(0).max(1);
            return Some(if Duration::from_secs(wait) > MAX_RATE_LIMIT_WAIT {
                Err(wait)
            } else {
                Ok(Duration::from_secs(wait))
            });
        }
        // Secondary limits without a hint: back off at least a minute's fraction.
        return Some(Ok(policy.delay(attempt, None).max(Duration::from_secs(1))));
    }
    status
        .is_server_error()
        .then(|| Ok(policy.delay(attempt, None)))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

pub(super) fn message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let mut h = HeaderMap::new();
        h.insert(
            "link",
            reqwest::header::HeaderValue::from_static(
                "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
        h.insert(
            "link",
            reqwest::header::HeaderValue::from_static(
                "<https://api.github.com/x?page=1>; rel=\"first\"",
            ),
        );
        assert_eq!(next_link(&h), None);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, reqwest::header::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn rate_limits_and_failures() {
        let p = Policy::default();
        let now = 1_000_000;
        let wait = |status: u16, h: &[(&'static str, &'static str)], body: &str| {
            wait_for(
                &p,
                StatusCode::from_u16(status).expect("status"),
                &headers(h),
                body,
                1,
                now,
            )
        };
        assert_eq!(
            wait(429, &[("retry-after", "3")], ""),
            Some(Ok(Duration::from_secs(3)))
        );
        assert_eq!(
            wait(403, &[("retry-after", "2")], ""),
            Some(Ok(Duration::from_secs(2))),
            "secondary limit"
        );
        assert_eq!(
            wait(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1000010")
                ],
                ""
            ),
            Some(Ok(Duration::from_secs(10)))
        );
        assert_eq!(
            wait(
                403,
                &[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1003600")
                ],
                ""
            ),
            Some(Err(3600)),
            "too long: give up with the time"
        );
        assert_eq!(wait(429, &[("retry-after", "600")], ""), Some(Err(600)));
        assert!(
            matches!(wait(403, &[], "You have exceeded a secondary rate limit"), Some(Ok(d)) if d >= Duration::from_secs(1))
        );
        assert!(matches!(wait(502, &[], ""), Some(Ok(_))));
        assert_eq!(
            wait(
                403,
                &[("x-ratelimit-remaining", "4000")],
                "Resource not accessible by integration"
            ),
            None,
            "a real 403"
        );
        assert_eq!(wait(404, &[], ""), None);
        assert_eq!(wait(200, &[], ""), None);
    }

    #[test]
    fn graphql_follows_the_rest_url() {
        assert_eq!(
            graphql_url("https://api.github.com"),
            "https://api.github.com/graphql"
        );
        assert_eq!(
            graphql_url("https://ghe.example.com/api/v3/"),
            "https://ghe.example.com/api/graphql"
        );
    }

    #[test]
    fn repo_names() {
        assert_eq!(
            RepoName::parse("my-org/tenants")
                .map(|r| r.full())
                .as_deref(),
            Some("my-org/tenants")
        );
        assert!(RepoName::parse("my-org").is_none());
        assert!(RepoName::parse("a/b/c").is_none());
    }
}
