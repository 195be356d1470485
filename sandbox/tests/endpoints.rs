//! Every GitHub endpoint of the stand-in answers 200 (a schema violation would be a 500).

use serde_json::json;

#[test]
fn every_endpoint_answers_in_githubs_shape() {
    let running = rotor_sandbox::start("127.0.0.1:0".parse().expect("addr")).expect("start");
    let url = running.url();
    let client = reqwest_like::Client::new();
    let sha = "a".repeat(40);
    let scenario = json!({
        "branches": {"main": sha},
        "pulls": {"7": {"author": "alice", "head_sha": sha,
            "files": [{"filename": "rotations/x.yaml", "status": "added"}],
            "reviews": [{"user": "bob", "state": "APPROVED", "commit_id": sha}, {"user": null, "state": "COMMENTED", "commit_id": sha}]}},
        "teams": [{"org": "my-org", "slug": "admins", "members": {"bob": "active", "dave": "pending"}}],
        "comments": [{"id": 5, "issue": 7, "user": "github-actions[bot]", "body": "hello"}]
    });
    assert_eq!(
        client
            .send("PUT", &format!("{url}/_sandbox/github"), Some(&scenario))
            .0,
        204
    );
    for path in [
        "/repos/my-org/tenants",
        "/repos/my-org/tenants/pulls/7",
        "/repos/my-org/tenants/pulls/7/reviews",
        "/repos/my-org/tenants/pulls/7/files",
        "/repos/my-org/tenants/issues/7/comments",
        "/repos/my-org/tenants/git/ref/heads/main",
        "/orgs/my-org/teams/admins",
        "/orgs/my-org/teams/admins/memberships/bob",
        "/orgs/my-org/teams/admins/memberships/dave",
    ] {
        let (status, body) = client.send("GET", &format!("{url}{path}"), None);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = client.send(
        "GET",
        &format!("{url}/orgs/my-org/teams/admins/memberships/zed"),
        None,
    );
    assert_eq!(status, 404);
    let (status, body) = client.send(
        "POST",
        &format!("{url}/repos/my-org/tenants/issues/7/comments"),
        Some(&json!({"body": "hi"})),
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = client.send(
        "PATCH",
        &format!("{url}/repos/my-org/tenants/issues/comments/5"),
        Some(&json!({"body": "edited"})),
    );
    assert_eq!(status, 200, "{body}");
}

/// A minimal HTTP/1.1 client over std, so the stand-in's tests need no client crate.
mod reqwest_like {
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;

    pub(crate) struct Client;

    impl Client {
        pub(crate) fn new() -> Self {
            Self
        }

        pub(crate) fn send(
            &self,
            method: &str,
            url: &str,
            body: Option<&serde_json::Value>,
        ) -> (u16, String) {
            let rest = url.strip_prefix("http://").expect("http");
            let (host, path) = rest
                .split_once('/')
                .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
            let mut stream = TcpStream::connect(host).expect("connect");
            let body = body.map(ToString::to_string).unwrap_or_default();
            write!(
                stream,
                "{method} {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer t\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .expect("write");
            let mut answer = String::new();
            stream.read_to_string(&mut answer).expect("read");
            let status = answer
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .expect("status");
            (status, answer)
        }
    }
}
