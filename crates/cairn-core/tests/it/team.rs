//! The team operations of the API, called as a transport calls them, between workspaces that
//! each host a sync node on loopback (as `cairn serve --sync` and the desktop app do): create,
//! invite (ticket, expiry, QR code), a join that runs in the background and brings the inviter's
//! notebook, tickets that are malformed, used or expired refused naming why, and removal.

use std::time::{Duration, Instant};

use cairn_core::api::call;
use cairn_core::team::NodeConfig;
use cairn_core::{Code, Workspace};
use serde_json::{Value, json};

use super::audit_sync::runtime;
use super::registry::peer;

/// A workspace hosting its sync node on `rt`, on loopback.
fn hosted(dir: &tempfile::TempDir, name: &str, rt: &tokio::runtime::Runtime) -> Workspace {
    let ws = peer(dir, name, name);
    ws.host_sync(rt.handle().clone(), NodeConfig::default())
        .unwrap();
    ws
}

fn ok(ws: &Workspace, op: &str, req: Value) -> Value {
    call(ws, op, req).unwrap_or_else(|e| panic!("{op} failed: {e}"))
}

fn err(ws: &Workspace, op: &str, req: Value) -> cairn_core::Error {
    match call(ws, op, req) {
        Ok(v) => panic!("{op} answered {v} where an error was expected"),
        Err(e) => e,
    }
}

/// Polls `team` until the join is no longer under way; its final state.
fn join_outcome(ws: &Workspace) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let join = ok(ws, "team", json!({}))["join"].clone();
        if join["state"] != "joining" {
            return join;
        }
        assert!(Instant::now() < end, "the join did not end within 60 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_teammate_joins_through_the_api_and_receives_the_notebook() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ada = hosted(&dir, "ada", &rt);
    let bo = hosted(&dir, "bo", &rt);

    // Before a team: the view says so, the node waits for one, inviting is refused.
    let before = ok(&ada, "team", json!({}));
    assert_eq!(before["team"], Value::Null);
    assert_eq!(before["user"], "ada");
    assert_eq!(before["node"]["hosted"], true);
    assert_eq!(before["node"]["running"], false);
    assert_eq!(before["join"]["state"], "idle");
    let e = err(&ada, "team_invite", json!({}));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.to_string().contains("belongs to no team"), "{e}");

    // Creating it starts the node, which says where it listens.
    let created = ok(
        &ada,
        "team_create",
        json!({"name": "lab", "email": "ada@example.org"}),
    );
    assert_eq!(created["team"]["name"], "lab");
    assert_eq!(created["team"]["created_by"], created["device"]);
    assert_eq!(created["node"]["running"], true);
    let listening = created["node"]["addrs"].as_array().unwrap().clone();
    assert!(!listening.is_empty());
    let e = err(&ada, "team_create", json!({"name": "again"}));
    assert!(
        e.to_string().contains("already belongs to team 'lab'"),
        "{e}"
    );
    // The signed event of the creation is in the trail.
    let events = ada
        .audit_log(&cairn_core::audit::AuditLogRequest::default())
        .unwrap();
    assert!(events.iter().any(|e| e.kind == "team.created"));

    let nb = ada
        .notebook_create(&cairn_core::notebooks::NewNotebook {
            title: "Weekly findings".into(),
            text: Some("lr 0.1 wins".into()),
            ..Default::default()
        })
        .unwrap();

    // The invitation: the ticket, its expiry, the node's addresses, and a QR code of it.
    let before_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let inv = ok(&ada, "team_invite", json!({"ttl_s": 600}));
    let ticket = inv["ticket"].as_str().unwrap().to_owned();
    assert!(ticket.starts_with("cairn1"));
    let expires = inv["expires_ms"].as_i64().unwrap();
    assert!(
        (before_ms + 599_000..=before_ms + 610_000).contains(&expires),
        "expires {expires}, asked at {before_ms} for 600 s"
    );
    assert_eq!(inv["addrs"].as_array().unwrap(), &listening);
    let parsed = cairn_core::team::parse_ticket(&ticket).unwrap();
    assert_eq!(
        parsed
            .addrs
            .iter()
            .map(|a| Value::String(a.to_string()))
            .collect::<Vec<_>>(),
        listening
    );
    let svg = inv["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    assert!(svg.contains("#000000"), "dark modules drawn");

    // The teammate joins: answered at once, finished in the background.
    let state = ok(
        &bo,
        "team_join",
        json!({"ticket": format!("  {ticket}\n"), "email": "bo@example.org"}),
    );
    assert_eq!(state["state"], "joining");
    assert_eq!(state["inviter"], created["device"]);
    let done = join_outcome(&bo);
    assert_eq!(done["state"], "joined", "{done}");
    assert_eq!(done["team"], "lab");

    // Bo's workspace now holds the team and ada's notebook, and its node runs.
    let view = ok(&bo, "team", json!({}));
    assert_eq!(view["team"]["name"], "lab");
    assert_eq!(view["node"]["running"], true);
    let notebooks = ok(&bo, "notebooks", json!({}));
    assert!(
        notebooks
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == nb.meta.id.to_string() && n["title"] == "Weekly findings"),
        "{notebooks}"
    );

    // Both see both members; bo's own device is flagged on bo's side.
    let members = ok(&bo, "team_members", json!({}));
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ada", "bo"]);
    let bo_entry = &members[1];
    assert_eq!(bo_entry["email"], "bo@example.org");
    assert_eq!(bo_entry["devices"][0]["this_device"], true);
    assert_eq!(bo_entry["devices"][0]["added_by"], "ada");
    assert_eq!(members[0]["devices"][0]["this_device"], false);
    // Once on the roster, bo's node announced where it listens, and the ring carried that to
    // ada.
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let on_ada = ok(&ada, "team_members", json!({}));
        let bo_there = on_ada
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "bo")
            .cloned();
        if let Some(m) = bo_there
            && !m["devices"][0]["addrs"].as_array().unwrap().is_empty()
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "bo's addresses never reached ada: {on_ada}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A ticket is used once: a third device presenting it again is refused by the inviter.
    let cy = hosted(&dir, "cy", &rt);
    ok(&cy, "team_join", json!({"ticket": ticket}));
    let failed = join_outcome(&cy);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["code"], "INVALID_ARGUMENT");
    let why = failed["message"].as_str().unwrap();
    assert!(why.contains("already used"), "{why}");
    assert_eq!(ok(&cy, "team", json!({}))["team"], Value::Null);

    // An expired one: the inviter says it expired.
    let short = ada.team_invite(&[], Duration::from_millis(1)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    ok(&cy, "team_join", json!({"ticket": short}));
    let failed = join_outcome(&cy);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["message"].as_str().unwrap().contains("expired"),
        "{failed}"
    );

    // Bo's workspace belongs to a team: a second join is refused before anything is dialled.
    let inv = ok(&ada, "team_invite", json!({}));
    let e = err(&bo, "team_join", json!({"ticket": inv["ticket"]}));
    assert_eq!(e.code(), Code::Conflict);
    assert!(
        e.to_string().contains("already belongs to team 'lab'"),
        "{e}"
    );
    // And ada cannot use her own ticket.
    let e = err(&ada, "team_join", json!({"ticket": inv["ticket"]}));
    assert!(e.to_string().contains("own invitation"), "{e}");

    // Removal: bo's device is flagged, the signed event says who and which device, and a
    // second removal (which would move the time its signatures count until) is refused.
    let bo_id = view["device"].as_str().unwrap().to_owned();
    let after = ok(&ada, "team_remove", json!({"member": bo_id}));
    let bo_after = after
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "bo")
        .unwrap();
    assert_eq!(bo_after["removed"], true);
    assert_eq!(bo_after["devices"][0]["removed"], true);
    assert!(bo_after["devices"][0]["removed_ms"].as_i64().is_some());
    let events = ada
        .audit_log(&cairn_core::audit::AuditLogRequest::default())
        .unwrap();
    let removed = events
        .iter()
        .find(|e| e.kind == "member.removed")
        .expect("a member.removed event");
    assert_eq!(removed.fields["device"], bo_id);
    assert_eq!(removed.member, "ada");
    let e = err(&ada, "team_remove", json!({"member": bo_id}));
    assert_eq!(e.code(), Code::Conflict);
    assert!(e.to_string().contains("already removed"), "{e}");
    let me = created["device"].as_str().unwrap();
    let e = err(&ada, "team_remove", json!({"member": me}));
    assert!(e.to_string().contains("cannot remove itself"), "{e}");
    let e = err(&ada, "team_remove", json!({"member": "nobody"}));
    assert!(e.to_string().contains("no member matches 'nobody'"), "{e}");

    rt.block_on(async {
        ada.stop_hosted_sync().await;
        bo.stop_hosted_sync().await;
        cy.stop_hosted_sync().await;
    });
}

#[test]
fn malformed_tickets_and_requests_are_refused_naming_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let ws = hosted(&dir, "ada", &rt);
    for (ticket, why) in [
        ("", "paste an invitation ticket"),
        ("hello", "does not start with 'cairn1'"),
        ("cairn1zz", "not hex"),
        ("cairn1abcd", "too short"),
        (&format!("cairn1{}", "ab".repeat(64)), "no address"),
        (&format!("cairn1{}05{}", "ab".repeat(64), "31"), "cut short"),
        (&"cairn1".repeat(1000), "at most 4096"),
    ] {
        let e = err(&ws, "team_join", json!({ "ticket": ticket }));
        assert_eq!(e.code(), Code::InvalidArgument, "{ticket}: {e}");
        assert!(e.to_string().contains(why), "{ticket}: {e}");
    }
    let e = err(&ws, "team_join", json!({"tikcet": "x"}));
    assert!(e.to_string().contains("unknown field"), "{e}");
    // Nothing was stored, nothing is under way.
    let view = ok(&ws, "team", json!({}));
    assert_eq!(view["team"], Value::Null);
    assert_eq!(view["join"]["state"], "idle");

    for (req, why) in [
        (json!({"name": "  "}), "needs a name"),
        (json!({"name": "x".repeat(2000)}), "at most 1024"),
        (json!({"name": "a\u{7}b"}), "control character"),
        (
            json!({"name": "lab", "email": "e".repeat(2000)}),
            "email is 2000 bytes",
        ),
    ] {
        let e = err(&ws, "team_create", req.clone());
        assert_eq!(e.code(), Code::InvalidArgument, "{req}: {e}");
        assert!(e.to_string().contains(why), "{req}: {e}");
    }
    ok(&ws, "team_create", json!({"name": "lab"}));
    for ttl in [0, 59, 31 * 24 * 3600] {
        let e = err(&ws, "team_invite", json!({ "ttl_s": ttl }));
        assert!(e.to_string().contains("from 60 to 2592000 seconds"), "{e}");
    }
    let e = err(&ws, "team_remove", json!({"member": ""}));
    assert!(e.to_string().contains("name the member"), "{e}");
    rt.block_on(ws.stop_hosted_sync());
}

#[test]
fn without_a_hosted_node_joining_is_refused_and_inviting_uses_the_last_address() {
    let dir = tempfile::tempdir().unwrap();
    let ws = peer(&dir, "ada", "ada");
    let other = peer(&dir, "bo", "bo");
    other.team_create("lab", "").unwrap();
    let ticket = other
        .team_invite(&["127.0.0.1:9".parse().unwrap()], Duration::from_secs(60))
        .unwrap();
    let e = err(&ws, "team_join", json!({ "ticket": ticket }));
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.to_string().contains("cairn serve --sync"), "{e}");
    let view = ok(&ws, "team", json!({}));
    assert_eq!(view["node"]["hosted"], false);
    // A server without a node invites with where `cairn serve --sync` last listened: here it
    // never did, and the refusal says how to fix it.
    ok(&ws, "team_create", json!({"name": "lab"}));
    let e = err(&ws, "team_invite", json!({}));
    assert!(e.to_string().contains("cairn serve --sync"), "{e}");
}

#[test]
fn a_node_on_every_interface_invites_with_this_machines_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // The desktop app's default: every interface, nothing to announce configured.
    let ada = peer(&dir, "ada", "ada");
    ada.host_sync(
        rt.handle().clone(),
        NodeConfig {
            bind: "0.0.0.0:0".parse().unwrap(),
            ..NodeConfig::default()
        },
    )
    .unwrap();
    let bo = hosted(&dir, "bo", &rt);
    ok(&ada, "team_create", json!({"name": "lab"}));
    let inv = ok(&ada, "team_invite", json!({}));
    let addrs: Vec<std::net::SocketAddr> = inv["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().parse().unwrap())
        .collect();
    assert!(!addrs.is_empty() && addrs.len() <= cairn_core::team::MAX_ANNOUNCED);
    let port = addrs[0].port();
    assert!(port != 0);
    for a in &addrs {
        assert!(!a.ip().is_unspecified(), "{a}");
        assert_eq!(a.port(), port, "{a}: every address is the one socket's");
    }
    // The ticket reaches it: a teammate on this machine joins through those addresses.
    ok(&bo, "team_join", json!({"ticket": inv["ticket"]}));
    let done = join_outcome(&bo);
    assert_eq!(done["state"], "joined", "{done}");
    rt.block_on(async {
        ada.stop_hosted_sync().await;
        bo.stop_hosted_sync().await;
    });
}
