//! A stand-in for the parts of GitHub's REST API rotor calls.
//!
//! Its state is a [`Scenario`] the caller sets with `PUT /_sandbox/github`. Each answer starts
//! from GitHub's official example, takes the scenario's values, and is validated against the
//! official schema before it is sent; an answer that would not validate becomes a 500 naming the
//! violation. Lists paginate with `Link` headers, every answer carries `x-ratelimit-*`, and every
//! request is logged (`GET /_sandbox/requests`) so tests can count API calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::schema;

/// The repository, its pull requests, teams and comments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Repository owner (an organisation).
    pub owner: String,
    /// Repository name.
    pub repo: String,
    /// The default branch.
    pub default_branch: String,
    /// Branch tips: name to commit SHA.
    pub branches: BTreeMap<String, String>,
    /// Pull requests by number.
    pub pulls: BTreeMap<u64, Pull>,
    /// Teams.
    pub teams: Vec<Team>,
    /// Issue comments, in creation order.
    pub comments: Vec<Comment>,
    /// When set, only this token can see teams (the workflow's own token cannot).
    pub team_token: Option<String>,
    /// The largest page size served (GitHub: 100).
    pub max_per_page: usize,
    /// The next id handed out.
    pub next_id: u64,
    /// How many comment POSTs to process and then answer 502, as when GitHub's answer is lost.
    pub posts_lost: u32,
    /// Who each token acts as (REST login; a bot's ends in `[bot]`); a token not listed is the
    /// workflow's own, `github-actions[bot]`.
    pub identities: BTreeMap<String, String>,
    /// GraphQL refuses `viewer` for every token, as it does for tokens that may not read it
    /// (`200` with `data: null` and a `FORBIDDEN` error).
    pub viewer_refused: bool,
    /// The bare repository `createCommitOnBranch` commits to (the tests' origin).
    pub git_dir: Option<String>,
    /// The armored OpenPGP secret key GitHub's commits are signed with; unset, the test key
    /// whose public half is `tests/fixtures/signing/current.asc`.
    pub signing_key: Option<String>,
    /// How many `createCommitOnBranch` calls find another writer's commit landed on the branch
    /// just before theirs (their expected head then stale).
    pub commit_races: u32,
    /// `createCommitOnBranch` is refused with this GraphQL error type (as classic branch
    /// protection answers `BRANCH_PROTECTION_RULE_VIOLATION`).
    pub commit_refused: Option<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            owner: "my-org".to_owned(),
            repo: "tenants".to_owned(),
            default_branch: "main".to_owned(),
            branches: BTreeMap::new(),
            pulls: BTreeMap::new(),
            teams: Vec::new(),
            comments: Vec::new(),
            team_token: None,
            max_per_page: 100,
            next_id: 1000,
            posts_lost: 0,
            identities: BTreeMap::new(),
            viewer_refused: false,
            git_dir: None,
            signing_key: None,
            commit_races: 0,
            commit_refused: None,
        }
    }
}

/// A pull request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pull {
    /// The author's login (GitHub shows `ghost` for a deleted account).
    pub author: String,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// `open` or `closed`.
    pub state: String,
    /// Whether it was merged.
    pub merged: bool,
    /// Whether it is a draft.
    pub draft: bool,
    /// The base branch.
    pub base: String,
    /// The head branch.
    pub head_ref: String,
    /// The head commit.
    pub head_sha: String,
    /// Whether the head lives in a fork.
    pub fork: bool,
    /// Changed files.
    pub files: Vec<File>,
    /// Reviews, oldest first.
    pub reviews: Vec<Review>,
    /// What the pull request becomes once its reviews have been read: a dismissal, a request
    /// for changes, a close or a draft that happens between rotor's gate and its first change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub then: Option<Box<Self>>,
}

impl Default for Pull {
    fn default() -> Self {
        Self {
            author: "alice".to_owned(),
            title: "Rotate a secret".to_owned(),
            body: String::new(),
            state: "open".to_owned(),
            merged: false,
            draft: false,
            base: "main".to_owned(),
            head_ref: "rotate".to_owned(),
            head_sha: "0".repeat(40),
            fork: false,
            files: Vec::new(),
            reviews: Vec::new(),
            then: None,
        }
    }
}

/// A changed file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// Path in the repository.
    pub filename: String,
    /// `added`, `modified`, `removed`, `renamed`…
    #[serde(default = "modified")]
    pub status: String,
    /// For a rename, the old path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_filename: Option<String>,
}

/// GitHub lists at most this many files of a pull request ("Responses include a maximum of
/// 3000 files"), while `changed_files` counts them all.
const MAX_LISTED_FILES: usize = 3000;

fn modified() -> String {
    "modified".to_owned()
}

/// A review.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// The reviewer; `None` for a deleted account (GitHub sends `null`).
    pub user: Option<String>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    pub state: String,
    /// The commit reviewed.
    pub commit_id: String,
    /// Review text.
    #[serde(default)]
    pub body: String,
}

/// A team and its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    /// Organisation.
    pub org: String,
    /// Team slug.
    pub slug: String,
    /// Members: login to `active` or `pending`.
    #[serde(default)]
    pub members: BTreeMap<String, String>,
}

/// An issue (PR) comment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comment {
    /// Id.
    pub id: u64,
    /// The PR number.
    pub issue: u64,
    /// Author login.
    pub user: String,
    /// `User` or `Bot`.
    #[serde(default = "bot")]
    pub user_type: String,
    /// Text.
    pub body: String,
    /// How many times it was edited.
    #[serde(default)]
    pub edits: u32,
}

fn bot() -> String {
    "Bot".to_owned()
}

/// One request the stand-in received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logged {
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// The token used (`Bearer` or `token` scheme), if any.
    pub token: Option<String>,
}

/// Shared state of the GitHub stand-in.
#[derive(Debug, Default)]
pub struct GitHub {
    scenario: Mutex<Scenario>,
    log: Mutex<Vec<Logged>>,
}

pub(crate) type Shared = Arc<GitHub>;

impl GitHub {
    pub(crate) fn scenario(&self) -> MutexGuard<'_, Scenario> {
        self.scenario
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn record(&self, method: &str, path: String, headers: &HeaderMap) -> Option<String> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("token "))
            })
            .map(str::to_owned);
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Logged {
                method: method.to_owned(),
                path,
                token: token.clone(),
            });
        token
    }
}

/// The routes, GitHub's and the control ones.
pub fn router() -> axum::Router {
    router_with(axum::Router::new())
}

/// The routes, with `more` that share the same state (GitHub's GraphQL endpoint).
pub(crate) fn router_with(more: axum::Router<Shared>) -> axum::Router {
    use axum::routing::{get, patch};
    more.route("/_sandbox/github", get(get_scenario).put(put_scenario))
        .route("/_sandbox/requests", get(get_log).delete(clear_log))
        .route("/repos/{owner}/{repo}", get(get_repo))
        .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/reviews",
            get(list_reviews),
        )
        .route(
            "/repos/{owner}/{repo}/pulls/{number}/files",
            get(list_files),
        )
        .route(
            "/repos/{owner}/{repo}/issues/{number}/comments",
            get(list_comments).post(create_comment),
        )
        .route(
            "/repos/{owner}/{repo}/issues/comments/{id}",
            patch(update_comment).delete(delete_comment),
        )
        .route("/repos/{owner}/{repo}/git/ref/{*reference}", get(get_ref))
        .route("/orgs/{org}/teams/{slug}", get(get_team))
        .route(
            "/orgs/{org}/teams/{slug}/memberships/{user}",
            get(get_membership),
        )
        .with_state(Arc::new(GitHub::default()))
}

async fn get_scenario(State(gh): State<Shared>) -> Json<Scenario> {
    Json(gh.scenario().clone())
}

/// Replaces the scenario. Comments are GitHub's history, not the test's setup: a scenario that
/// does not mention `comments` (a pull request merged, a branch moved) keeps the comments
/// already there, as GitHub would, and so do the ids handed out.
async fn put_scenario(State(gh): State<Shared>, Json(v): Json<Value>) -> Response {
    let mentions = |key: &str| v.get(key).is_some();
    let (keep_comments, keep_ids) = (!mentions("comments"), !mentions("next_id"));
    let mut s: Scenario = match serde_json::from_value(v) {
        Ok(s) => s,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    let mut current = gh.scenario();
    if keep_comments {
        s.comments = std::mem::take(&mut current.comments);
    }
    if keep_ids {
        s.next_id = s.next_id.max(current.next_id);
    }
    *current = s;
    StatusCode::NO_CONTENT.into_response()
}

async fn get_log(State(gh): State<Shared>) -> Json<Vec<Logged>> {
    Json(
        gh.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
    )
}

async fn clear_log(State(gh): State<Shared>) -> StatusCode {
    gh.log
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    StatusCode::NO_CONTENT
}

fn not_found() -> Response {
    github_error(StatusCode::NOT_FOUND, "Not Found")
}

fn github_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_str()});
    with_rate_limit((status, Json(body)).into_response())
}

pub(crate) fn with_rate_limit(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("4999"));
    h.insert("x-ratelimit-reset", HeaderValue::from_static("4102444800"));
    h.insert("x-ratelimit-used", HeaderValue::from_static("1"));
    h.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
    h.insert(
        "x-github-api-version-selected",
        HeaderValue::from_static("2022-11-28"),
    );
    resp
}

/// Validates and sends an answer; a schema violation is the stand-in's own bug: a 500.
fn answer(op: &str, status: StatusCode, body: Value) -> Response {
    match schema::validate(op, &body) {
        Ok(()) => with_rate_limit((status, Json(body)).into_response()),
        Err(errors) => {
            let text = format!(
                "rotor-sandbox: the {op} answer does not match GitHub's schema: {}",
                errors.join("; ")
            );
            (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
        }
    }
}

fn this_repo(s: &Scenario, owner: &str, repo: &str) -> bool {
    s.owner == owner && s.repo == repo
}

fn pull_of<'s>(s: &'s Scenario, owner: &str, repo: &str, number: u64) -> Option<&'s Pull> {
    s.pulls.get(&number).filter(|_| this_repo(s, owner, repo))
}

fn user(login: &str, kind: &str, base: &Value) -> Value {
    let mut u = base.clone();
    u["login"] = json!(login);
    u["id"] = json!(user_id(login));
    u["type"] = json!(kind);
    u["html_url"] = json!(format!("https://github.com/{login}"));
    u["url"] = json!(format!("https://api.github.com/users/{login}"));
    u
}

#[derive(Debug, Deserialize)]
struct Page {
    per_page: Option<usize>,
    page: Option<usize>,
}

/// Cuts a page out of `items` and adds GitHub's `Link` header.
fn paginate(
    op: &str,
    items: Vec<Value>,
    page: &Page,
    s: &Scenario,
    headers: &HeaderMap,
    path: &str,
) -> Response {
    let per_page = page.per_page.unwrap_or(30).clamp(1, s.max_per_page.max(1));
    let number = page.page.unwrap_or(1).max(1);
    let last = items.len().div_ceil(per_page).max(1);
    let slice: Vec<Value> = items
        .into_iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .collect();
    let mut resp = answer(op, StatusCode::OK, Value::Array(slice));
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let link = |p: usize, rel: &str| {
        format!("<http://{host}{path}?per_page={per_page}&page={p}>; rel=\"{rel}\"")
    };
    let mut links = Vec::new();
    if number < last {
        links.push(link(number + 1, "next"));
        links.push(link(last, "last"));
    }
    if number > 1 {
        links.push(link(1, "first"));
        links.push(link(number - 1, "prev"));
    }
    if !links.is_empty()
        && let Ok(v) = HeaderValue::from_str(&links.join(", "))
    {
        resp.headers_mut().insert("link", v);
    }
    resp
}

async fn get_repo(
    State(gh): State<Shared>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    gh.record("GET", format!("/repos/{owner}/{repo}"), &headers);
    let s = gh.scenario().clone();
    if !this_repo(&s, &owner, &repo) {
        return not_found();
    }
    let mut r = schema::example("repos/get");
    if let Value::Object(map) = &mut r {
        // The official example lacks the required `language`; `source` and `parent` are optional.
        map.remove("source");
        map.remove("parent");
        map.remove("template_repository");
    }
    r["language"] = Value::Null;
    r["name"] = json!(repo);
    r["full_name"] = json!(format!("{owner}/{repo}"));
    r["owner"] = user(&owner, "Organization", &r["owner"]);
    r["default_branch"] = json!(s.default_branch);
    answer("repos/get", StatusCode::OK, r)
}

fn repo_object(base: &Value, owner: &str, repo: &str, fork: bool) -> Value {
    let mut r = base.clone();
    r["name"] = json!(repo);
    r["full_name"] = json!(format!("{owner}/{repo}"));
    r["owner"] = user(
        owner,
        if fork { "User" } else { "Organization" },
        &r["owner"],
    );
    r["fork"] = json!(fork);
    r
}

async fn get_pull(
    State(gh): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    gh.record(
        "GET",
        format!("/repos/{owner}/{repo}/pulls/{number}"),
        &headers,
    );
    let s = gh.scenario().clone();
    let Some(pull) = pull_of(&s, &owner, &repo, number) else {
        return not_found();
    };
    let mut p = schema::example("pulls/get");
    p["number"] = json!(number);
    p["state"] = json!(pull.state);
    p["draft"] = json!(pull.draft);
    p["merged"] = json!(pull.merged);
    p["merged_at"] = if pull.merged {
        json!("2026-11-25T12:00:00Z")
    } else {
        Value::Null
    };
    p["title"] = json!(pull.title);
    p["body"] = json!(pull.body);
    p["user"] = user(&pull.author, "User", &p["user"]);
    p["html_url"] = json!(format!("https://github.com/{owner}/{repo}/pull/{number}"));
    // The official example's requested team lacks the required `type`.
    p["requested_teams"] = json!([]);
    let head_owner = if pull.fork {
        "a-forker"
    } else {
        owner.as_str()
    };
    p["head"]["ref"] = json!(pull.head_ref);
    p["head"]["sha"] = json!(pull.head_sha);
    p["head"]["label"] = json!(format!("{head_owner}:{}", pull.head_ref));
    p["head"]["repo"] = repo_object(&p["head"]["repo"], head_owner, &repo, pull.fork);
    p["head"]["user"] = user(head_owner, "User", &p["head"]["user"]);
    let base_sha = s
        .branches
        .get(&pull.base)
        .cloned()
        .unwrap_or_else(|| "1".repeat(40));
    p["base"]["ref"] = json!(pull.base);
    p["base"]["sha"] = json!(base_sha);
    p["base"]["label"] = json!(format!("{owner}:{}", pull.base));
    p["base"]["repo"] = repo_object(&p["base"]["repo"], &owner, &repo, false);
    p["changed_files"] = json!(pull.files.len());
    answer("pulls/get", StatusCode::OK, p)
}

async fn list_reviews(
    State(gh): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/reviews");
    gh.record("GET", path.clone(), &headers);
    let s = gh.scenario().clone();
    let Some(pull) = pull_of(&s, &owner, &repo, number) else {
        return not_found();
    };
    let base = schema::example("pulls/list-reviews")[0].clone();
    let items = pull
        .reviews
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = base.clone();
            let id = 80 + i as u64;
            v["id"] = json!(id);
            v["user"] = r
                .user
                .as_ref()
                .map_or(Value::Null, |u| user(u, "User", &base["user"]));
            v["state"] = json!(r.state);
            v["commit_id"] = json!(r.commit_id);
            v["body"] = json!(r.body);
            v["submitted_at"] = json!(format!("2026-11-25T10:{:02}:00Z", i % 60));
            v["html_url"] = json!(format!(
                "https://github.com/{owner}/{repo}/pull/{number}#pullrequestreview-{id}"
            ));
            v
        })
        .collect::<Vec<Value>>();
    let per_page = page.per_page.unwrap_or(30).clamp(1, s.max_per_page.max(1));
    let last_page = page.page.unwrap_or(1).max(1) >= items.len().div_ceil(per_page).max(1);
    let answer = paginate("pulls/list-reviews", items, &page, &s, &headers, &path);
    if last_page && let Some(next) = pull.then.clone() {
        // The reviews were read in full: now the pull request changes, as it may between a
        // gate and the first change.
        gh.scenario().pulls.insert(number, *next);
    }
    answer
}

async fn list_files(
    State(gh): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/pulls/{number}/files");
    gh.record("GET", path.clone(), &headers);
    let s = gh.scenario().clone();
    let Some(pull) = pull_of(&s, &owner, &repo, number) else {
        return not_found();
    };
    let base = schema::example("pulls/list-files")[0].clone();
    let items = pull
        .files
        .iter()
        .take(MAX_LISTED_FILES)
        .map(|f| {
            let mut v = base.clone();
            v["filename"] = json!(f.filename);
            v["status"] = json!(f.status);
            if let Some(old) = &f.previous_filename {
                v["previous_filename"] = json!(old);
            }
            v
        })
        .collect();
    paginate("pulls/list-files", items, &page, &s, &headers, &path)
}

fn comment_json(c: &Comment, owner: &str, repo: &str, base: &Value) -> Value {
    let mut v = base.clone();
    v["id"] = json!(c.id);
    v["body"] = json!(c.body);
    v["user"] = user(&c.user, &c.user_type, &base["user"]);
    v["html_url"] = json!(format!(
        "https://github.com/{owner}/{repo}/pull/{}#issuecomment-{}",
        c.issue, c.id
    ));
    v["issue_url"] = json!(format!(
        "https://api.github.com/repos/{owner}/{repo}/issues/{}",
        c.issue
    ));
    v["url"] = json!(format!(
        "https://api.github.com/repos/{owner}/{repo}/issues/comments/{}",
        c.id
    ));
    v
}

async fn list_comments(
    State(gh): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    Query(page): Query<Page>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/repos/{owner}/{repo}/issues/{number}/comments");
    gh.record("GET", path.clone(), &headers);
    let s = gh.scenario().clone();
    if !this_repo(&s, &owner, &repo) || !s.pulls.contains_key(&number) {
        return not_found();
    }
    let base = schema::example("issues/list-comments")[0].clone();
    let items = s
        .comments
        .iter()
        .filter(|c| c.issue == number)
        .map(|c| comment_json(c, &owner, &repo, &base))
        .collect();
    paginate("issues/list-comments", items, &page, &s, &headers, &path)
}

#[derive(Debug, Deserialize)]
struct CommentBody {
    body: String,
}

/// The identity of the workflow's own token (`GITHUB_TOKEN`).
const BOT: &str = "github-actions[bot]";

/// The login a token acts as.
pub(crate) fn identity(s: &Scenario, token: Option<&str>) -> String {
    token
        .and_then(|t| s.identities.get(t))
        .cloned()
        .unwrap_or_else(|| BOT.to_owned())
}

/// A stable account id per login (GitHub's for `github-actions[bot]`).
pub fn user_id(login: &str) -> u64 {
    if login == BOT {
        return 41_898_282;
    }
    // FNV-1a: any fixed, spread-out number will do.
    login.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) % 90_000_000
        + 1_000_000
}

async fn create_comment(
    State(gh): State<Shared>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<CommentBody>,
) -> Response {
    let token = gh.record(
        "POST",
        format!("/repos/{owner}/{repo}/issues/{number}/comments"),
        &headers,
    );
    let mut s = gh.scenario();
    if !this_repo(&s, &owner, &repo) || !s.pulls.contains_key(&number) {
        return not_found();
    }
    s.next_id += 1;
    let login = identity(&s, token.as_deref());
    let c = Comment {
        id: s.next_id,
        issue: number,
        user_type: if login.ends_with("[bot]") {
            "Bot"
        } else {
            "User"
        }
        .to_owned(),
        user: login,
        body: body.body,
        edits: 0,
    };
    s.comments.push(c.clone());
    if s.posts_lost > 0 {
        s.posts_lost -= 1;
        return github_error(StatusCode::BAD_GATEWAY, "Server Error");
    }
    let base = schema::example("issues/create-comment");
    answer(
        "issues/create-comment",
        StatusCode::CREATED,
        comment_json(&c, &owner, &repo, &base),
    )
}

async fn update_comment(
    State(gh): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<CommentBody>,
) -> Response {
    gh.record(
        "PATCH",
        format!("/repos/{owner}/{repo}/issues/comments/{id}"),
        &headers,
    );
    let mut s = gh.scenario();
    if !this_repo(&s, &owner, &repo) {
        return not_found();
    }
    let Some(c) = s.comments.iter_mut().find(|c| c.id == id) else {
        return not_found();
    };
    // Write access to issues edits anyone's comment: rotor must pick its own.
    c.body = body.body;
    c.edits += 1;
    let c = c.clone();
    let base = schema::example("issues/update-comment");
    answer(
        "issues/update-comment",
        StatusCode::OK,
        comment_json(&c, &owner, &repo, &base),
    )
}

/// `DELETE /repos/{owner}/{repo}/issues/comments/{id}`: 204, no body (GitHub's answer).
async fn delete_comment(
    State(gh): State<Shared>,
    Path((owner, repo, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    gh.record(
        "DELETE",
        format!("/repos/{owner}/{repo}/issues/comments/{id}"),
        &headers,
    );
    let mut s = gh.scenario();
    if !this_repo(&s, &owner, &repo) {
        return not_found();
    }
    let Some(at) = s.comments.iter().position(|c| c.id == id) else {
        return not_found();
    };
    s.comments.remove(at);
    with_rate_limit(StatusCode::NO_CONTENT.into_response())
}

async fn get_ref(
    State(gh): State<Shared>,
    Path((owner, repo, reference)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    gh.record(
        "GET",
        format!("/repos/{owner}/{repo}/git/ref/{reference}"),
        &headers,
    );
    let s = gh.scenario().clone();
    let Some(sha) = reference
        .strip_prefix("heads/")
        .and_then(|b| s.branches.get(b))
        .filter(|_| this_repo(&s, &owner, &repo))
    else {
        return not_found();
    };
    let mut r = schema::example("git/get-ref");
    r["ref"] = json!(format!("refs/{reference}"));
    r["object"]["sha"] = json!(sha);
    r["object"]["type"] = json!("commit");
    answer("git/get-ref", StatusCode::OK, r)
}

fn team_visible(s: &Scenario, token: Option<&str>) -> bool {
    s.team_token.as_deref().is_none_or(|t| token == Some(t))
}

async fn get_team(
    State(gh): State<Shared>,
    Path((org, slug)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = gh.record("GET", format!("/orgs/{org}/teams/{slug}"), &headers);
    let s = gh.scenario().clone();
    let found = s.teams.iter().any(|t| t.org == org && t.slug == slug);
    if !found || !team_visible(&s, token.as_deref()) {
        return not_found();
    }
    let mut t = schema::example("teams/get-by-name");
    t["slug"] = json!(slug);
    t["name"] = json!(slug);
    // The official example lacks the required `type` and `organization.archived_at`.
    t["type"] = json!("organization");
    t["organization"]["login"] = json!(org);
    t["organization"]["archived_at"] = Value::Null;
    answer("teams/get-by-name", StatusCode::OK, t)
}

async fn get_membership(
    State(gh): State<Shared>,
    Path((org, slug, login)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let token = gh.record(
        "GET",
        format!("/orgs/{org}/teams/{slug}/memberships/{login}"),
        &headers,
    );
    let s = gh.scenario().clone();
    if !team_visible(&s, token.as_deref()) {
        return not_found();
    }
    let state = s
        .teams
        .iter()
        .find(|t| t.org == org && t.slug == slug)
        .and_then(|t| t.members.get(&login));
    let Some(state) = state else {
        return not_found();
    };
    let mut m = schema::example("teams/get-membership-for-user-in-org");
    m["state"] = json!(state);
    m["role"] = json!("member");
    m["url"] = json!(format!(
        "https://api.github.com/teams/1/memberships/{login}"
    ));
    answer("teams/get-membership-for-user-in-org", StatusCode::OK, m)
}
