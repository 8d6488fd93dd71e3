//! The team operations over HTTP: every change is a JSON POST that a page of another origin
//! cannot make (text/plain, a form, a foreign Origin are refused and create no team; a GET of a
//! team route changes nothing); a bad ticket is a 400 naming what is wrong; joining on a server
//! without a sync node (`cairn serve` without `--sync`) is a 503 saying how to start one.

use serde_json::json;

use crate::http::{Request, assert_api_error, assert_mlflow_error};
use crate::server::TestServer;

#[test]
fn team_changes_are_json_posts_of_the_page_origin_and_bad_tickets_are_named() {
    let server = TestServer::start();
    let body = json!({ "name": "lab", "email": "a@example.org" }).to_string();
    for req in [
        Request::new("POST", "/api/v1/team")
            .header("Content-Type", "text/plain")
            .body(&body),
        Request::new("POST", "/api/v1/team")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=lab"),
        Request::new("POST", "/api/v1/team").body(&body),
        Request::new("POST", "/api/v1/team/invitations")
            .header("Content-Type", "text/plain")
            .body("{}"),
        Request::new("POST", "/api/v1/team/join")
            .header("Content-Type", "text/plain")
            .body(json!({ "ticket": "cairn1" }).to_string()),
        Request::new("POST", "/api/v1/team/members/remove")
            .header("Content-Type", "text/plain")
            .body(json!({ "member": "x" }).to_string()),
    ] {
        let resp = server.send(&req);
        assert_eq!(resp.status, 415, "{}", resp.text());
    }
    let resp = server.send(
        &Request::post("/api/v1/team", &json!({ "name": "lab" }))
            .header("Origin", "http://evil.example"),
    );
    let msg = assert_mlflow_error(&resp, 403, "PERMISSION_DENIED");
    assert!(msg.contains("other origins"), "{msg}");
    // GETs with the fields in the query string read, never create or join.
    assert_eq!(server.get("/api/v1/team?name=lab").status, 400);
    let resp = server.get("/api/v1/team/join?ticket=cairn1");
    assert!(resp.status == 404 || resp.status == 405, "{}", resp.text());
    let view = server.get("/api/v1/team").ok();
    assert_eq!(view["team"], serde_json::Value::Null);
    assert_eq!(view["node"]["hosted"], false);

    // From the page itself: created.
    let created = server.post("/api/v1/team", &json!({ "name": "lab" })).ok();
    assert_eq!(created["team"]["name"], "lab");

    let resp = server.post("/api/v1/team/join", &json!({ "ticket": "cairn1zz" }));
    let msg = assert_api_error(&resp, 400, "INVALID_ARGUMENT");
    assert!(msg.contains("invitation ticket: it is not hex"), "{msg}");

    // A well-formed ticket of another workspace: this server hosts no sync node.
    let other = tempfile::tempdir().unwrap();
    let peer = cairn_core::Workspace::create(&other.path().join("ws"), "bo").unwrap();
    peer.team_create("lab2", "").unwrap();
    let ticket = peer
        .team_invite(
            &["127.0.0.1:9".parse().unwrap()],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let resp = server.post("/api/v1/team/join", &json!({ "ticket": ticket }));
    // This workspace has a team already: refused before anything else.
    let msg = assert_api_error(&resp, 409, "CONFLICT");
    assert!(msg.contains("already belongs to team 'lab'"), "{msg}");
    server.assert_alive("the team requests");
}

#[test]
fn joining_on_a_server_without_a_sync_node_says_how_to_start_one() {
    let server = TestServer::start();
    let other = tempfile::tempdir().unwrap();
    let peer = cairn_core::Workspace::create(&other.path().join("ws"), "bo").unwrap();
    peer.team_create("lab", "").unwrap();
    let ticket = peer
        .team_invite(
            &["127.0.0.1:9".parse().unwrap()],
            std::time::Duration::from_secs(60),
        )
        .unwrap();
    let resp = server.post("/api/v1/team/join", &json!({ "ticket": ticket }));
    let msg = assert_api_error(&resp, 503, "UNAVAILABLE");
    assert!(msg.contains("cairn serve --sync"), "{msg}");
}
