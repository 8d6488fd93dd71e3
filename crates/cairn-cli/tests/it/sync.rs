//! Teams and peer sync across processes on loopback: `cairn team create|invite|join`,
//! `cairn serve --sync` as always-on peers, `cairn sync now|status`, and the model registry
//! across devices that registered and promoted apart.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::models::trained;
use super::{Ws, array, str_of};

/// A `cairn serve --sync` child, killed when dropped.
struct Served {
    child: Child,
    device: String,
    /// The HTTP server's port.
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        // An error means it already exited; either way it is reaped.
        if self.child.kill().is_ok() {
            self.child.wait().ok();
        }
    }
}

fn serve_sync(ws: &Ws) -> Served {
    let mut child = ws
        .cmd(&["serve", "--port", "0", "--sync"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn cairn serve --sync");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut device = None;
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.expect("read serve output");
        if let Some(rest) = line.strip_prefix("Cairn sync: device ") {
            device = rest.split_whitespace().next().map(str::to_owned);
        }
        if line.contains("MLFLOW_TRACKING_URI") {
            port = line.rsplit(':').next().and_then(|p| p.trim().parse().ok());
            break;
        }
    }
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served {
        child,
        device: device.expect("serve --sync printed its device id"),
        port: port.expect("serve printed its address"),
    }
}

fn names(ws: &Ws) -> Vec<String> {
    let mut v: Vec<String> = ws
        .list()
        .iter()
        .map(|r| str_of(r, "/name").to_owned())
        .collect();
    v.sort();
    v
}

/// Waits (up to a minute: this is not a timing test) until `ws` lists a run named `name`.
fn wait_for_run(ws: &Ws, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if names(ws).iter().any(|n| n == name) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("run {name} never reached {}", ws.user);
}

fn peer(ws: &Ws) -> Ws {
    let mut p = Ws::new();
    p.user = ws.user.clone();
    p
}

#[test]
fn three_devices_in_separate_processes_converge() {
    let mut ada = Ws::new();
    ada.user = "ada".into();
    let mut bo = Ws::new();
    bo.user = "bo".into();
    let mut cy = peer(&ada);
    cy.user = "cy".into();

    let team = ada.json(&["team", "create", "lab", "--email", "ada@example.org"]);
    assert_eq!(str_of(&team, "/name"), "lab");
    let ada_run = ada.start_run(&["--name", "ada-offline"]);
    let bo_run = bo.start_run(&["--name", "bo-offline"]);
    ada.ok(&[
        "run", "log", &ada_run, "-m", "loss=0.5", "--step", "1", "-p", "lr=0.1",
    ]);
    let model = ada.file("model.bin", b"weights of ada's model");
    ada.ok(&["artifact", "add", &ada_run, model.to_str().unwrap()]);

    // Past the 8 MiB eager limit: fetched on demand only.
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let checkpoint = ada.file("checkpoint.pt", &big);
    ada.ok(&["artifact", "add", &ada_run, checkpoint.to_str().unwrap()]);

    let ada_node = serve_sync(&ada);
    let ticket = ada.ok(&["team", "invite"]).trim().to_owned();
    assert!(ticket.starts_with("cairn1"), "{ticket}");
    let joined = bo.json(&["team", "join", &ticket]);
    assert_eq!(str_of(&joined, "/team"), "lab");
    // The ticket is spent.
    let err = cy.fail(&["team", "join", &ticket]);
    assert!(err.contains("invitation"), "{err}");

    // Bo's offline run went to ada in the join; ada's came to bo.
    assert!(names(&ada).contains(&"bo-offline".to_owned()));
    assert!(names(&bo).contains(&"ada-offline".to_owned()));
    assert_eq!(str_of(&ada.show(&bo_run), "/owner"), "bo");
    let shown = bo.show(&ada_run);
    assert_eq!(str_of(&shown, "/params/lr"), "0.1");
    bo.ok(&["runs", "metric", &ada_run, "loss"]);
    let got = bo.file("got.bin", b"");
    bo.ok(&[
        "artifact",
        "get",
        &ada_run,
        "model.bin",
        "-o",
        got.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&got).unwrap(), b"weights of ada's model");
    let got_big = bo.tmp().join("checkpoint.got");
    bo.fail(&[
        "artifact",
        "get",
        &ada_run,
        "checkpoint.pt",
        "-o",
        got_big.to_str().unwrap(),
    ]);
    let fetched = bo.json(&["sync", "fetch", &ada_run]);
    assert_eq!(array(fetched["fetched"].clone()).len(), 1, "{fetched}");
    bo.ok(&[
        "artifact",
        "get",
        &ada_run,
        "checkpoint.pt",
        "-o",
        got_big.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&got_big).unwrap() == big);

    // Bo runs an always-on peer too; a run started on ada reaches it by the doorbell.
    let bo_node = serve_sync(&bo);
    assert_ne!(bo_node.device, ada_node.device);
    ada.start_run(&["--name", "rung"]);
    wait_for_run(&bo, "rung");
    // And bo's search sees it.
    let found = bo.ok(&["search", "rung"]);
    assert!(found.contains("rung"), "{found}");

    // Cy joins with a fresh ticket and syncs once with everyone it now knows.
    let ticket = ada.ok(&["team", "invite"]).trim().to_owned();
    cy.ok(&["team", "join", &ticket]);
    cy.start_run(&["--name", "cy-run"]);
    let results = array(cy.json(&["sync", "now"]));
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results.iter().all(|r| r["ok"] == Value::Bool(true)),
        "{results:?}"
    );
    wait_for_run(&ada, "cy-run");
    wait_for_run(&bo, "cy-run");
    let expected = names(&ada);
    assert_eq!(names(&bo), expected);
    assert_eq!(names(&cy), expected);
    for want in ["ada-offline", "bo-offline", "rung", "cy-run"] {
        assert!(
            expected.iter().any(|n| n == want),
            "{want} missing from {expected:?}"
        );
    }

    let status = cy.json(&["sync", "status"]);
    assert_eq!(str_of(&status, "/team"), "lab");
    let peers = array(status["peers"].clone());
    assert_eq!(peers.len(), 2, "{peers:?}");
    assert!(
        peers.iter().all(|p| p["last_sync_ms"].is_i64()),
        "{peers:?}"
    );
    let members = array(ada.json(&["team", "members"]));
    assert_eq!(members.len(), 3);

    // Cy is removed: ada and bo refuse it, and its next sync learns nothing new.
    ada.ok(&["team", "remove", "cy"]);
    ada.start_run(&["--name", "after-cy"]);
    wait_for_run(&bo, "after-cy");
    let err = cy.fail(&["sync", "now"]);
    assert!(err.contains("could not sync"), "{err}");
    assert!(!names(&cy).contains(&"after-cy".to_owned()));

    // Bo goes offline; both tag the same run differently; they meet again: both values are
    // kept and shown as a conflict on both sides, the same winner first.
    drop(bo_node);
    ada.ok(&["run", "log", &ada_run, "-t", "verdict=ship"]);
    bo.ok(&["run", "log", &ada_run, "-t", "verdict=hold"]);
    bo.ok(&["sync", "now"]);
    let (a, b) = (ada.show(&ada_run), bo.show(&ada_run));
    for shown in [&a, &b] {
        let conflicts = shown["conflicts"].to_string();
        assert!(
            conflicts.contains("verdict")
                && conflicts.contains("ship")
                && conflicts.contains("hold"),
            "{conflicts}"
        );
    }
    assert_eq!(a["tags"], b["tags"]);
    assert_eq!(a["conflicts"], b["conflicts"]);
    let text = bo.ok(&["runs", "show", &ada_run]);
    assert!(text.contains("conflicts"), "{text}");
    drop(ada_node);
}

/// Sends `DELETE path` to the server on `port`; returns the status code.
fn http_delete(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "DELETE {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("read reply");
    reply
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {reply}"))
}

/// Where a workspace stores the blob of `content` (the artifact store's documented layout).
fn blob_file(ws: &Ws, content: &[u8]) -> std::path::PathBuf {
    let hex = blake3::hash(content).to_hex().to_string();
    ws.dir
        .join("artifacts")
        .join("blobs")
        .join(&hex[..2])
        .join(&hex)
}

#[test]
fn a_deleted_secret_never_reaches_a_later_joiner_and_a_purged_one_leaves_a_teammate() {
    const DELETED: &[u8] = b"OPENAI_API_KEY=sk-uploaded-then-deleted\n";
    const PURGED: &[u8] = b"AWS_SECRET_ACCESS_KEY=uploaded-then-purged\n";
    let mut ada = Ws::new();
    ada.user = "ada".into();
    let mut bo = Ws::new();
    bo.user = "bo".into();
    ada.ok(&["team", "create", "lab"]);
    let run = ada.start_run(&["--name", "train"]);
    let env = ada.file(".env", DELETED);
    ada.ok(&["artifact", "add", &run, env.to_str().unwrap()]);
    let model = ada.file("model.bin", b"weights");
    ada.ok(&["artifact", "add", &run, model.to_str().unwrap()]);
    let ada_node = serve_sync(&ada);
    // Deleted through the MLflow artifact API, as the MLflow client deletes it.
    let code = http_delete(
        ada_node.port,
        &format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/.env"),
    );
    assert_eq!(code, 200);
    assert!(blob_file(&ada, DELETED).exists(), "deleting only unbinds");

    // Bo joins afterwards: the run and its model arrive, the deleted .env does not.
    let ticket = ada.ok(&["team", "invite"]).trim().to_owned();
    bo.ok(&["team", "join", &ticket]);
    assert_eq!(str_of(&bo.show(&run), "/name"), "train");
    let got = bo.tmp().join("model.got");
    bo.ok(&[
        "artifact",
        "get",
        &run,
        "model.bin",
        "-o",
        got.to_str().unwrap(),
    ]);
    assert!(
        !blob_file(&bo, DELETED).exists(),
        "a deleted secret reached a later joiner"
    );
    let fetched = bo.json(&["sync", "fetch", &run]);
    assert!(array(fetched["fetched"].clone()).is_empty(), "{fetched}");
    assert!(!blob_file(&bo, DELETED).exists());

    // A secret that did reach bo, then purged on ada's device.
    let creds = ada.file("creds.env", PURGED);
    ada.ok(&["artifact", "add", &run, creds.to_str().unwrap()]);
    bo.ok(&["sync", "now"]);
    assert!(blob_file(&bo, PURGED).exists());
    let purged = ada.json(&[
        "artifact",
        "purge",
        &run,
        "creds.env",
        "--reason",
        "leaked AWS key",
    ]);
    assert_eq!(array(purged["blobs"].clone()).len(), 1, "{purged}");
    assert!(!blob_file(&ada, PURGED).exists());
    // Bo's next sync erases it there, binding and all.
    bo.ok(&["sync", "now"]);
    assert!(
        !blob_file(&bo, PURGED).exists(),
        "a purged secret is still on a teammate's device after its next sync"
    );
    let shown = bo.show(&run);
    assert!(shown.pointer("/artifacts/creds.env").is_none(), "{shown}");
    assert!(shown.pointer("/artifacts/model.bin").is_some(), "{shown}");
    let err = bo.fail(&["artifact", "get", &run, "creds.env", "-o", "x"]);
    assert!(err.contains("creds.env"), "{err}");
    drop(ada_node);

    // What ada still stores of the deleted .env goes with gc, once past the grace period.
    let dry = ada.json(&["gc", "--dry-run"]);
    assert_eq!(
        (dry["removed"].as_u64(), dry["recent"].as_u64()),
        (Some(0), Some(1)),
        "{dry}"
    );
    let done = ada.json(&["gc", "--grace", "0s"]);
    assert_eq!(done["removed"].as_u64(), Some(1), "{done}");
    assert_eq!(done["removed_bytes"].as_u64(), Some(DELETED.len() as u64));
    assert!(!blob_file(&ada, DELETED).exists());
    ada.ok(&[
        "artifact",
        "get",
        &run,
        "model.bin",
        "-o",
        got.to_str().unwrap(),
    ]);
}

/// `model show NAME --json`: each version's id → number, and each alias's target numbers.
fn registry_of(ws: &Ws) -> (BTreeMap<String, u64>, BTreeMap<String, Vec<u64>>) {
    let shown = ws.json(&["model", "show", "churn"]);
    let versions = array(shown["versions"].clone())
        .iter()
        .map(|v| (str_of(v, "/id").to_owned(), v["version"].as_u64().unwrap()))
        .collect();
    let aliases = array(shown["aliases"].clone())
        .iter()
        .map(|a| {
            let targets = array(a["targets"].clone())
                .iter()
                .map(|t| t["number"].as_u64().unwrap())
                .collect();
            (str_of(a, "/name").to_owned(), targets)
        })
        .collect();
    (versions, aliases)
}

/// Two devices register and promote the same model while apart, then meet over iroh on
/// loopback: no version is lost, both number them alike (the earlier claim of a number keeps
/// it), the concurrent alias moves show as a conflict on both until a later promotion settles
/// it, and an approval signed on one device counts on the other through the gate.
#[test]
fn peers_register_and_promote_offline_then_sync_over_iroh() {
    let mut ada = Ws::new();
    ada.user = "ada".into();
    let mut bo = Ws::new();
    bo.user = "bo".into();
    ada.json(&["team", "create", "lab", "--email", "ada@example.org"]);
    let base = trained(&ada, "base weights");
    ada.ok(&["model", "register", "churn", &base]);
    // @champion needs a signed approval by someone other than the author; @candidate is free.
    ada.ok(&[
        "model",
        "gate",
        "set",
        "churn",
        "--alias",
        "champion",
        "--approvals",
        "1",
    ]);
    let ada_node = serve_sync(&ada);
    let ticket = ada.ok(&["team", "invite"]).trim().to_owned();
    bo.ok(&["team", "join", &ticket]);
    let (joined, _) = registry_of(&bo);
    assert_eq!(joined.values().copied().collect::<Vec<_>>(), [1]);

    // Apart (bo runs no peer and does not sync): ada registers version 2, bo registers his own
    // "version 2" and a 3rd; each moves @candidate to its newest.
    let ra = trained(&ada, "ada's weights");
    let a2 = ada.json(&["model", "register", "churn", &ra]);
    std::thread::sleep(Duration::from_millis(5));
    let rb = trained(&bo, "bo's weights");
    let b2 = bo.json(&["model", "register", "churn", &rb]);
    let b3 = bo.json(&["model", "register", "churn", &rb]);
    assert_eq!(
        (&a2["version"], &b2["version"], &b3["version"]),
        (&2.into(), &2.into(), &3.into())
    );
    ada.ok(&[
        "model",
        "promote",
        "churn",
        "2",
        "--to",
        "candidate",
        "--rationale",
        "ada's",
    ]);
    bo.ok(&[
        "model",
        "promote",
        "churn",
        "3",
        "--to",
        "candidate",
        "--rationale",
        "bo's",
    ]);
    // The gate holds offline too: no approval yet.
    let err = ada.fail(&["model", "promote", "churn", "2", "--to", "champion"]);
    assert!(err.contains("0 valid signed approvals"), "{err}");

    let results = array(bo.json(&["sync", "now"]));
    assert!(results.iter().all(|r| r["ok"] == true), "{results:?}");
    let (on_ada, aliases_ada) = registry_of(&ada);
    let (on_bo, aliases_bo) = registry_of(&bo);
    assert_eq!(on_ada, on_bo, "both devices number every version alike");
    assert_eq!(on_ada.len(), 4, "no version lost: {on_ada:?}");
    // Ada claimed 2 first and keeps it; bo's 3 was unique; bo's 2 takes the next free number.
    assert_eq!(on_ada[str_of(&a2, "/id")], 2);
    assert_eq!(on_ada[str_of(&b3, "/id")], 3);
    assert_eq!(on_ada[str_of(&b2, "/id")], 4);
    assert_eq!(aliases_ada, aliases_bo);
    let mut candidate = aliases_ada["candidate"].clone();
    candidate.sort_unstable();
    assert_eq!(candidate, [2, 3], "the concurrent moves are both shown");
    let text = ada.ok(&["model", "show", "churn"]);
    assert!(text.contains("CONFLICT"), "{text}");
    // Bo's content came across under its new number.
    let out = ada.tmp().join("bo-v4");
    ada.ok(&[
        "model",
        "download",
        "churn",
        "4",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("weights.bin")).unwrap(),
        "bo's weights"
    );

    // Bo approves ada's version 2 (signed with his device key); on ada it counts.
    let approved = bo.json(&["model", "approve", "churn", "2", "--comment", "lgtm"]);
    assert_eq!(approved["counts"], true, "{approved}");
    bo.ok(&["sync", "now"]);
    let seen = ada.json(&["model", "approvals", "churn", "2"]);
    let seen = array(seen["approvals"].clone());
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["counts"], true, "{seen:?}");
    assert_eq!(seen[0]["member"], "bo");
    ada.ok(&[
        "model",
        "promote",
        "churn",
        "2",
        "--to",
        "champion",
        "--rationale",
        "approved",
    ]);
    // A later promotion settles @candidate; bo learns both moves.
    ada.ok(&[
        "model",
        "promote",
        "churn",
        "3",
        "--to",
        "candidate",
        "--rationale",
        "settled",
    ]);
    bo.ok(&["sync", "now"]);
    for ws in [&ada, &bo] {
        let (numbers, aliases) = registry_of(ws);
        assert_eq!(numbers, on_ada, "the numbers never moved again");
        assert_eq!(aliases["candidate"], [3]);
        assert_eq!(aliases["champion"], [2]);
    }
    drop(ada_node);
}
