//! The Secret Manager stand-in answers as Google's README table says: etags, masks, aliases,
//! paging, permissions, faults, races, the log, and the application resolving through it.

use serde_json::{Value, json};

const PROJECT: &str = "rotor-test";
const NUMBER: &str = "779844219229";

struct Sandbox {
    running: rotor_sandbox::Running,
}

struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn error_status(&self) -> String {
        self.json()["error"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Sandbox {
    fn start() -> Self {
        Self {
            running: rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("start"),
        }
    }

    /// One HTTP/1.1 exchange over std; `status` 0 when the connection broke before an answer.
    fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Answer {
        use std::io::{Read as _, Write as _};
        let host = self.running.addr.to_string();
        let mut stream = std::net::TcpStream::connect(&host).expect("connect");
        let body = body.map(ToString::to_string).unwrap_or_default();
        let auth = token
            .map(|t| format!("authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {host}\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Answer {
            status,
            head: head.to_owned(),
            body: body.to_owned(),
        }
    }

    fn admin(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        self.send(method, path, Some("gcp-admin"), body)
    }

    fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let a = self.send(method, path, None, body);
        assert!(a.status < 300, "{method} {path}: {} {}", a.status, a.body);
        a
    }

    fn seed(&self, body: &Value) -> Value {
        self.control("POST", "/_sandbox/gcp/secrets", Some(body))
            .json()
    }
}

fn secret_path(secret: &str) -> String {
    format!("/v1/projects/{PROJECT}/secrets/{secret}")
}

#[test]
fn a_secret_is_created_versioned_and_read_by_number_with_the_project_number() {
    let sb = Sandbox::start();
    let created = sb.admin(
        "POST",
        &format!("/v1/projects/{PROJECT}/secrets?secretId=acme_stripe_key"),
        Some(&json!({"replication": {"automatic": {}}, "labels": {"team": "payments"}})),
    );
    assert_eq!(created.status, 200, "{}", created.body);
    let s = created.json();
    assert_eq!(
        s["name"],
        format!("projects/{NUMBER}/secrets/acme_stripe_key")
    );
    assert!(
        s.get("versionAliases").is_none(),
        "defaults are left out: {s}"
    );
    assert!(
        s["etag"]
            .as_str()
            .is_some_and(|e| e.starts_with('"') && e.ends_with('"'))
    );
    let again = sb.admin(
        "POST",
        &format!("/v1/projects/{NUMBER}/secrets?secretId=acme_stripe_key"),
        Some(&json!({"replication": {"automatic": {}}})),
    );
    assert_eq!(
        (again.status, again.error_status()),
        (409, "ALREADY_EXISTS".into())
    );
    let dotted = sb.admin(
        "POST",
        &format!("/v1/projects/{PROJECT}/secrets?secretId=tenant.acme"),
        Some(&json!({"replication": {"automatic": {}}})),
    );
    assert_eq!(dotted.status, 400);
    for text in ["one", "two"] {
        let data = base64_of(text);
        let v = sb.admin(
            "POST",
            &format!("{}:addVersion", secret_path("acme_stripe_key")),
            Some(&json!({"payload": {"data": data}})),
        );
        assert_eq!(v.status, 200, "{}", v.body);
        assert_eq!(v.json()["state"], "ENABLED");
    }
    let after = sb
        .admin("GET", &secret_path("acme_stripe_key"), None)
        .json();
    assert_eq!(
        after["etag"], s["etag"],
        "addVersion leaves the secret's etag"
    );
    let access = sb.admin(
        "GET",
        &format!("/v1/projects/{NUMBER}/secrets/acme_stripe_key/versions/latest:access"),
        None,
    );
    assert_eq!(access.status, 200, "{}", access.body);
    let access = access.json();
    assert_eq!(
        access["name"],
        format!("projects/{NUMBER}/secrets/acme_stripe_key/versions/2")
    );
    assert_eq!(access["payload"]["data"], base64_of("two"));
    assert!(access["payload"]["dataCrc32c"].is_string());
    let get = sb.admin(
        "GET",
        &format!("{}/versions/1", secret_path("acme_stripe_key")),
        None,
    );
    assert!(
        !get.body.contains("payload"),
        "only :access returns the payload"
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn a_stale_etag_fails_the_precondition_and_every_patch_makes_a_new_etag() {
    let sb = Sandbox::start();
    let raw = sb.seed(&json!({"secret": "s", "versions": 3, "aliases": {"current": 2}}));
    let etag = raw["etag"].as_str().expect("etag").to_owned();
    let path = format!("{}?updateMask=versionAliases", secret_path("s"));
    let moved = sb.admin(
        "PATCH",
        &path,
        Some(&json!({"etag": etag, "versionAliases": {"current": "3"}})),
    );
    assert_eq!(moved.status, 200, "{}", moved.body);
    let new_etag = moved.json()["etag"].as_str().expect("etag").to_owned();
    assert_ne!(new_etag, etag);
    let stale = sb.admin(
        "PATCH",
        &path,
        Some(&json!({"etag": etag, "versionAliases": {"current": "1"}})),
    );
    assert_eq!(stale.status, 400);
    assert_eq!(stale.error_status(), "FAILED_PRECONDITION");
    // A patch that changes nothing still makes a new etag.
    let same = sb.admin(
        "PATCH",
        &path,
        Some(&json!({"etag": new_etag, "versionAliases": {"current": "3"}})),
    );
    assert_eq!(same.status, 200, "{}", same.body);
    assert_ne!(same.json()["etag"], json!(new_etag));
    let no_mask = sb.admin("PATCH", &secret_path("s"), Some(&json!({"labels": {}})));
    assert_eq!(
        (no_mask.status, no_mask.error_status()),
        (400, "INVALID_ARGUMENT".into())
    );
    let immutable = sb.admin(
        "PATCH",
        &format!("{}?updateMask=replication", secret_path("s")),
        Some(&json!({})),
    );
    assert_eq!(immutable.status, 400);
    let unknown_field = sb.admin("PATCH", &path, Some(&json!({"versionCount": 3})));
    assert_eq!(unknown_field.error_status(), "INVALID_ARGUMENT");
}

#[test]
fn a_masked_map_is_replaced_whole_and_annotations_are_checked() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": 1,
        "annotations": {"rotor.dev-a": "1", "b": "2"}, "labels": {"env": "prod"}}));
    let path = format!("{}?updateMask=annotations", secret_path("s"));
    let patched = sb.admin("PATCH", &path, Some(&json!({"annotations": {"c": "3"}})));
    assert_eq!(patched.status, 200, "{}", patched.body);
    let s = patched.json();
    assert_eq!(s["annotations"], json!({"c": "3"}));
    assert_eq!(s["labels"], json!({"env": "prod"}), "unmasked fields stay");
    // proto field names are accepted too
    let snake = sb.admin(
        "PATCH",
        &format!("{}?update_mask=version_aliases", secret_path("s")),
        Some(&json!({"version_aliases": {"current": "1"}})),
    );
    assert_eq!(snake.status, 200, "{}", snake.body);
    let cleared = sb.admin("PATCH", &path, Some(&json!({})));
    assert!(
        cleared.json().get("annotations").is_none(),
        "{}",
        cleared.body
    );
    for bad in [
        json!({"-x": "1"}),
        json!({"x-": "1"}),
        json!({"a/b": "1"}),
        json!({"k": "v".repeat(16 * 1024)}),
    ] {
        let refused = sb.admin("PATCH", &path, Some(&json!({"annotations": bad})));
        assert_eq!(refused.error_status(), "INVALID_ARGUMENT", "{bad}");
    }
}

#[test]
fn aliases_are_checked_against_the_versions_and_resolve_on_get_only() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": [
        {"payload": "a"}, {"payload": "b", "state": "DISABLED"}, {"payload": "c", "state": "DESTROYED"}, {"payload": "d"}
    ]}));
    let path = format!("{}?updateMask=versionAliases", secret_path("s"));
    let alias =
        |a: &str, v: &str| sb.admin("PATCH", &path, Some(&json!({"versionAliases": {a: v}})));
    let destroyed = alias("current", "3");
    assert_eq!(
        (destroyed.status, destroyed.error_status()),
        (400, "FAILED_PRECONDITION".into())
    );
    let missing = alias("current", "9");
    assert_eq!(
        (missing.status, missing.error_status()),
        (400, "INVALID_ARGUMENT".into())
    );
    for bad in ["latest", "NEW", "New", "1abc", "a.b"] {
        assert_eq!(alias(bad, "1").error_status(), "INVALID_ARGUMENT", "{bad}");
    }
    assert_eq!(
        alias("current", "2").status,
        200,
        "a disabled version may be named"
    );
    let get = sb.admin(
        "GET",
        &format!("{}/versions/current", secret_path("s")),
        None,
    );
    assert_eq!(
        get.json()["name"],
        format!("projects/{NUMBER}/secrets/s/versions/2")
    );
    let access = sb.admin(
        "GET",
        &format!("{}/versions/current:access", secret_path("s")),
        None,
    );
    assert_eq!(access.status, 400);
    assert_eq!(
        access.json()["error"]["message"],
        format!("Secret Version [projects/{NUMBER}/secrets/s/versions/2] is in DISABLED state.")
    );
    let by_alias = sb.admin(
        "POST",
        &format!("{}/versions/current:enable", secret_path("s")),
        None,
    );
    assert_eq!(by_alias.error_status(), "INVALID_ARGUMENT");
    let before = sb
        .control("GET", "/_sandbox/gcp/secrets/rotor-test/s", None)
        .json();
    let enabled = sb.admin(
        "POST",
        &format!("{}/versions/2:enable", secret_path("s")),
        Some(&json!({})),
    );
    assert_eq!(enabled.json()["state"], "ENABLED");
    let after = sb
        .control("GET", "/_sandbox/gcp/secrets/rotor-test/s", None)
        .json();
    assert_eq!(
        before["etag"], after["etag"],
        "a version operation leaves the secret's etag"
    );
    assert_ne!(before["versions"][1]["etag"], after["versions"][1]["etag"]);
    let stale = sb.admin(
        "POST",
        &format!("{}/versions/2:disable", secret_path("s")),
        Some(&json!({"etag": before["versions"][1]["etag"]})),
    );
    assert_eq!(stale.error_status(), "FAILED_PRECONDITION");
    let destroyed = sb.admin(
        "POST",
        &format!("{}/versions/4:destroy", secret_path("s")),
        None,
    );
    let destroyed = destroyed.json();
    assert_eq!(destroyed["state"], "DESTROYED");
    assert!(destroyed["destroyTime"].is_string());
    // The person with gcloud is held to the same rule.
    let refused = sb.send(
        "PUT",
        "/_sandbox/gcp/secrets/rotor-test/s/aliases/current",
        None,
        Some(&json!({"version": 4})),
    );
    assert_eq!(refused.status, 400);
}

#[test]
fn pages_of_a_filtered_list_cover_250_secrets_newest_first() {
    let sb = Sandbox::start();
    for i in 0..250 {
        sb.seed(&json!({"secret": format!("acme_stripe_{i:03}")}));
        if i % 10 == 0 {
            sb.seed(&json!({"secret": format!("globex_github_{i:03}")}));
        }
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let mut path =
            format!("/v1/projects/{PROJECT}/secrets?filter=name%3Aacme_%20OR%20name%3Anothing");
        if !token.is_empty() {
            path.push_str(&format!("&pageToken={token}"));
        }
        let page = sb.send("GET", &path, Some("gcp-rotor"), None);
        assert_eq!(page.status, 200, "{}", page.body);
        let page = page.json();
        assert!(page.get("totalSize").is_none(), "0 when filtered, left out");
        for s in page["secrets"].as_array().expect("secrets") {
            seen.push(s["name"].as_str().expect("name").to_owned());
        }
        pages += 1;
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(pages, 3, "100 a page by default");
    assert_eq!(seen.len(), 250);
    assert_eq!(
        seen[0],
        format!("projects/{NUMBER}/secrets/acme_stripe_249")
    );
    assert_eq!(
        seen[249],
        format!("projects/{NUMBER}/secrets/acme_stripe_000")
    );
    let all = sb
        .admin(
            "GET",
            &format!("/v1/projects/{PROJECT}/secrets?pageSize=30000"),
            None,
        )
        .json();
    assert_eq!(all["totalSize"], 275);
    assert_eq!(all["secrets"].as_array().map(Vec::len), Some(275));
    let other_filter = sb.admin(
        "GET",
        &format!("/v1/projects/{PROJECT}/secrets?filter=name%3Aglobex&pageToken={token}"),
        None,
    );
    assert_eq!(other_filter.status, 400);
    let versions = sb.seed(&json!({"secret": "v", "versions": [{}, {"state": "DISABLED"}, {}]}));
    assert_eq!(versions["nextVersion"], 4);
    let listed = sb
        .admin(
            "GET",
            &format!(
                "{}/versions?filter=state%3DENABLED&pageSize=1",
                secret_path("v")
            ),
            None,
        )
        .json();
    assert_eq!(
        listed["versions"][0]["name"],
        format!("projects/{NUMBER}/secrets/v/versions/3")
    );
    let next = listed["nextPageToken"].as_str().expect("more");
    let listed = sb
        .admin(
            "GET",
            &format!(
                "{}/versions?filter=state%3DENABLED&pageSize=1&pageToken={next}",
                secret_path("v")
            ),
            None,
        )
        .json();
    assert_eq!(
        listed["versions"][0]["name"],
        format!("projects/{NUMBER}/secrets/v/versions/1")
    );
    assert!(listed.get("nextPageToken").is_none());
    let empty = sb.admin(
        "GET",
        &format!("/v1/projects/{PROJECT}/secrets?filter=name%3Anone"),
        None,
    );
    assert_eq!(empty.body, "{}");
}

#[test]
fn permissions_are_checked_before_existence_and_tokens_before_both() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": 1}));
    let missing = format!("{}/versions/1:access", secret_path("nope"));
    let denied = sb.send("GET", &missing, Some("gcp-rotor"), None);
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.json()["error"]["message"],
        format!(
            "Permission 'secretmanager.versions.access' denied for resource 'projects/{PROJECT}/secrets/nope/versions/1' (or it may not exist)."
        )
    );
    assert_eq!(sb.admin("GET", &missing, None).status, 404);
    let anonymous = sb.send("GET", &secret_path("s"), None, None);
    assert_eq!(anonymous.status, 401);
    assert!(
        anonymous.json()["error"]["message"].as_str().is_some_and(
            |m| m.starts_with("Request is missing required authentication credential.")
        )
    );
    let unknown = sb.send("GET", &secret_path("s"), Some("who"), None);
    assert_eq!(
        (unknown.status, unknown.error_status()),
        (401, "UNAUTHENTICATED".into())
    );
    assert_eq!(
        sb.send("GET", &secret_path("s"), Some("gcp-rotor"), None)
            .status,
        200
    );
    sb.control(
        "PUT",
        "/_sandbox/gcp/tokens/reader",
        Some(&json!({"name": "auditor", "permissions": ["secretmanager.secrets.list"]})),
    );
    assert_eq!(
        sb.send("GET", &secret_path("s"), Some("reader"), None)
            .status,
        403
    );
    assert_eq!(
        sb.send(
            "GET",
            &format!("/v1/projects/{PROJECT}/secrets"),
            Some("reader"),
            None
        )
        .status,
        200
    );
    let typo = sb.send(
        "PUT",
        "/_sandbox/gcp/tokens/x",
        None,
        Some(&json!({"permissions": ["secretmanager.secret.get"]})),
    );
    assert_eq!(typo.status, 400);
    assert_eq!(
        sb.send("GET", &secret_path("s"), Some("gcp-admin"), None)
            .status,
        200
    );
    let other = sb.send(
        "GET",
        "/v1/projects/unknown-project/secrets/s",
        Some("gcp-admin"),
        None,
    );
    assert_eq!(
        other.status, 403,
        "a project that does not exist grants nothing"
    );
    sb.control(
        "PUT",
        "/_sandbox/gcp/projects/second",
        Some(&json!({"number": 123456789012_u64})),
    );
    sb.seed(&json!({"project": "second", "secret": "t"}));
    let t = sb.admin("GET", "/v1/projects/123456789012/secrets/t", None);
    assert_eq!(t.json()["name"], "projects/123456789012/secrets/t");
}

#[test]
fn the_log_records_every_call_and_proves_access_never_happened() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": 2, "aliases": {"current": 1}}));
    sb.send("GET", &secret_path("s"), Some("gcp-rotor"), None);
    sb.send(
        "GET",
        &format!("{}/versions?pageSize=10", secret_path("s")),
        Some("gcp-rotor"),
        None,
    );
    sb.send("GET", &secret_path("s"), None, None);
    sb.send(
        "GET",
        "/v1/projects/rotor-test/nothing-here",
        Some("gcp-rotor"),
        None,
    );
    let log = sb.control("GET", "/_sandbox/gcp/log", None).json();
    let calls = log["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 4);
    assert_eq!(
        calls[0],
        json!({"method": "GET", "path": "/v1/projects/rotor-test/secrets/s", "token": "gcp-rotor", "status": 200, "api": "secrets.get"})
    );
    assert_eq!(
        calls[1]["path"],
        "/v1/projects/rotor-test/secrets/s/versions?pageSize=10"
    );
    assert_eq!(
        (calls[2]["token"].clone(), calls[2]["status"].clone()),
        (json!("none"), json!(401))
    );
    assert_eq!(calls[3]["status"], 404);
    assert!(calls[3].get("api").is_none());
    assert_eq!(
        log["counts"],
        json!({"secrets.get": 2, "secrets.versions.list": 1})
    );
    assert!(
        calls
            .iter()
            .all(|c| !c["path"].as_str().unwrap_or_default().contains(":access"))
    );
    sb.control("DELETE", "/_sandbox/gcp/log", None);
    assert_eq!(
        sb.control("GET", "/_sandbox/gcp/log", None).json(),
        json!({"calls": [], "counts": {}})
    );
}

#[test]
fn unknown_urls_are_html_and_unserved_methods_unimplemented() {
    let sb = Sandbox::start();
    let page = sb.admin("GET", "/v1/projects/rotor-test/secretz", None);
    assert_eq!(page.status, 404);
    assert!(
        page.head
            .to_ascii_lowercase()
            .contains("content-type: text/html")
    );
    assert!(
        page.body
            .contains("<title>Error 404 (Not Found)!!1</title>")
    );
    let iam = sb.admin("GET", &format!("{}:getIamPolicy", secret_path("s")), None);
    assert_eq!(
        (iam.status, iam.error_status()),
        (501, "UNIMPLEMENTED".into())
    );
    let delete = sb.admin("DELETE", &secret_path("s"), None);
    assert_eq!(delete.status, 501);
    let overview = sb.control("GET", "/_sandbox/gcp", None).json();
    assert!(
        overview["unimplemented"]
            .as_array()
            .is_some_and(|u| u.contains(&json!("secrets.delete")))
    );
}

#[test]
fn faults_meet_the_next_matching_calls_and_a_lost_answer_still_lands() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": 2, "aliases": {"current": 1}}));
    sb.control(
        "POST",
        "/_sandbox/gcp/faults",
        Some(&json!({"method": "GET", "path": "/secrets/s", "kind": "quota", "times": 2})),
    );
    for _ in 0..2 {
        let throttled = sb.admin("GET", &secret_path("s"), None);
        assert_eq!(throttled.status, 429);
        assert_eq!(
            throttled.json()["error"]["message"],
            format!(
                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per project' of service 'secretmanager.googleapis.com' for consumer 'project_number:{NUMBER}'."
            )
        );
    }
    assert_eq!(sb.admin("GET", &secret_path("s"), None).status, 200);
    sb.control(
        "POST",
        "/_sandbox/gcp/faults",
        Some(&json!({"path": "versions", "kind": "unavailable"})),
    );
    let down = sb.admin("GET", &format!("{}/versions", secret_path("s")), None);
    assert_eq!(
        (down.status, down.error_status()),
        (503, "UNAVAILABLE".into())
    );
    sb.control(
        "POST",
        "/_sandbox/gcp/faults",
        Some(&json!({"method": "PATCH", "kind": "lost"})),
    );
    let lost = sb.admin(
        "PATCH",
        &format!("{}?updateMask=versionAliases", secret_path("s")),
        Some(&json!({"versionAliases": {"current": "2"}})),
    );
    assert_ne!(lost.status, 200, "the answer never arrives: {}", lost.head);
    let raw = sb
        .control("GET", "/_sandbox/gcp/secrets/rotor-test/s", None)
        .json();
    assert_eq!(
        raw["versionAliases"],
        json!({"current": 2}),
        "but the patch landed"
    );
    let log = sb.control("GET", "/_sandbox/gcp/log", None).json();
    let last = log["calls"]
        .as_array()
        .and_then(|c| c.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (last["fault"].clone(), last["status"].clone()),
        (json!("lost"), json!(200))
    );
    assert_eq!(
        sb.control("GET", "/_sandbox/gcp/faults", None).json(),
        json!([])
    );
}

#[test]
fn a_race_moves_the_alias_between_the_read_and_the_write() {
    let sb = Sandbox::start();
    sb.seed(&json!({"secret": "s", "versions": 3, "aliases": {"current": 2}}));
    let read = sb
        .send("GET", &secret_path("s"), Some("gcp-rotor"), None)
        .json();
    sb.control("POST", "/_sandbox/gcp/races", Some(&json!({"secret": "s", "updateMask": "versionAliases", "patch": {"versionAliases": {"current": "1"}}})));
    let write = sb.send(
        "PATCH",
        &format!("{}?updateMask=versionAliases", secret_path("s")),
        Some("gcp-rotor"),
        Some(&json!({"etag": read["etag"], "versionAliases": {"current": "3"}})),
    );
    assert_eq!(
        (write.status, write.error_status()),
        (400, "FAILED_PRECONDITION".into())
    );
    let now = sb
        .send("GET", &secret_path("s"), Some("gcp-rotor"), None)
        .json();
    assert_eq!(
        now["versionAliases"],
        json!({"current": "1"}),
        "the other writer's change"
    );
    // The race fires once: a write with the fresh etag lands.
    let retry = sb.send(
        "PATCH",
        &format!("{}?updateMask=versionAliases", secret_path("s")),
        Some("gcp-rotor"),
        Some(&json!({"etag": now["etag"], "versionAliases": {"current": "3"}})),
    );
    assert_eq!(retry.status, 200, "{}", retry.body);
}

#[test]
fn the_application_resolves_through_the_alias_without_access() {
    let sb = Sandbox::start();
    let url = sb.running.url();
    sb.seed(&json!({"secret": "acme_stripe_secret_key", "versions": 3, "aliases": {"current": 2}}));
    sb.control("PUT", "/_sandbox/app", Some(&json!({
        "refs": {"tenant.acme.stripe.secret_key": {"tenant": "acme", "provider": "stripe", "site_ids": ["site-1"]}},
        "backend": {"type": "gcp", "endpoint": url, "token": "gcp-app", "project": PROJECT}
    })));
    let resolve = |sb: &Sandbox| {
        sb.send(
            "POST",
            "/api/v1/secret-refs/tenant.acme.stripe.secret_key/resolve",
            Some("app-token"),
            None,
        )
        .json()
    };
    assert_eq!(resolve(&sb)["versionId"], "2");
    sb.control(
        "PUT",
        "/_sandbox/gcp/secrets/rotor-test/acme_stripe_secret_key/aliases/current",
        Some(&json!({"version": 3})),
    );
    assert_eq!(resolve(&sb)["versionId"], "3");
    let log = sb.control("GET", "/_sandbox/gcp/log", None).json();
    assert_eq!(log["counts"], json!({"secrets.versions.get": 2}));
    assert!(
        log["calls"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["token"] == "gcp-app"))
    );
    let health = sb.send(
        "GET",
        "/api/v1/sites/site-1/integrations/stripe/health",
        Some("app-token"),
        None,
    );
    assert_eq!(health.json()["versionId"], "3");
}
