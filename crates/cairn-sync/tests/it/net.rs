//! Real iroh endpoints on loopback: joining with a ticket, access control, removal.

use std::time::Duration;

use cairn_sync::{Error, NodeConfig, SecretKey, Ticket, invite, node::Node, roster};

use crate::common::Peer;

async fn node(p: &Peer, key: &SecretKey) -> Node {
    Node::spawn(p.stores.clone(), key.clone(), NodeConfig::default())
        .await
        .unwrap()
}

/// ada creates a team and serves; returns her node and a ticket to it.
async fn team_of_ada(ada: &Peer, ada_key: &SecretKey) -> (Node, Ticket) {
    let me = ada_key.public().to_string();
    ada.with(|s| roster::create(&mut s.catalog, "lab", &me, "Ada", "ada@example.org"))
        .unwrap();
    let n = node(ada, ada_key).await;
    let ticket = ada
        .with(|s| invite(s, ada_key, &n.bound(), Duration::from_secs(60)))
        .unwrap();
    (n, ticket)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticket_lets_a_device_join_and_sync_once() {
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let (ada_key, bo_key) = (SecretKey::generate(), SecretKey::generate());
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "from-ada");
    let (ada_node, ticket) = team_of_ada(&ada, &ada_key).await;
    let bo_node = node(&bo, &bo_key).await;
    let (team, report) = bo_node.join(&ticket, "Bo", "bo@example.org").await.unwrap();
    assert_eq!(team, "lab");
    assert!(report.docs_changed >= 2);
    assert_eq!(bo.run(run).name, "from-ada");
    // Both rosters now hold both devices.
    for p in [&ada, &bo] {
        let members = p.with(|s| roster::members(&mut s.catalog)).unwrap();
        let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"Ada") && names.contains(&"Bo"));
    }
    // The ticket was single-use.
    let cy = Peer::new("cy");
    let cy_node = node(&cy, &SecretKey::generate()).await;
    match cy_node.join(&ticket, "Cy", "").await {
        Err(Error::Refused(why)) => assert!(why.contains("invitation"), "{why}"),
        other => panic!("a reused ticket was accepted: {other:?}"),
    }
    assert!(
        cy.with(|s| s.catalog.changes_since(0))
            .unwrap()
            .1
            .is_empty()
    );
    // Status: in sync with ada after the join; a local change is pending until the next sync.
    let bo_id = bo_key.public().to_string();
    let ada_id = ada_key.public().to_string();
    let status_of_ada = || {
        let st = bo.with(|s| cairn_sync::status(s, &bo_id)).unwrap();
        assert_eq!(st.team.as_deref(), Some("lab"));
        st.peers.into_iter().find(|p| p.id == ada_id).unwrap()
    };
    let before = status_of_ada();
    assert_eq!(before.name, "Ada");
    assert!(
        before.last_sync_ms.is_some() && !before.pending,
        "{before:?}"
    );
    // A new run on bo reaches ada through a sync bo dials.
    let run2 = bo.create_run(exp, "from-bo");
    assert!(status_of_ada().pending);
    let ada_addrs = ada_node.bound();
    bo_node.sync_with(&ada_id, &ada_addrs).await.unwrap();
    assert_eq!(ada.run(run2).name, "from-bo");
    assert!(!status_of_ada().pending);
    // Points alone (no catalog change) are pending too, and stop being so once sent.
    bo.log(run2, "loss", 0, 10);
    assert!(status_of_ada().pending);
    bo_node.sync_with(&ada_id, &ada_addrs).await.unwrap();
    assert!(!status_of_ada().pending);
    for n in [ada_node, bo_node, cy_node] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_device_is_refused_and_learns_nothing() {
    let ada = Peer::new("ada");
    let ada_key = SecretKey::generate();
    let exp = ada.create_experiment("secret-project");
    ada.create_run(exp, "secret-run");
    let (ada_node, _ticket) = team_of_ada(&ada, &ada_key).await;
    let before = ada.snapshot();
    let eve = Peer::new("eve");
    let eve_key = SecretKey::generate();
    let eve_node = node(&eve, &eve_key).await;
    // Eve adds ada to her own roster so that her node is willing to dial.
    let eve_id = eve_key.public().to_string();
    eve.with(|s| {
        roster::create(&mut s.catalog, "eve's", &eve_id, "Eve", "")?;
        roster::add(
            &mut s.catalog,
            &ada_key.public().to_string(),
            "Ada",
            "",
            &eve_id,
        )
    })
    .unwrap();
    let eve_before = eve.snapshot();
    let r = eve_node
        .sync_with(&ada_key.public().to_string(), &ada_node.bound())
        .await;
    assert!(r.is_err(), "a stranger synced: {r:?}");
    assert_eq!(eve.snapshot(), eve_before, "the stranger learned something");
    assert_eq!(ada.snapshot(), before, "the stranger changed something");
    eve_node.shutdown().await;
    ada_node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_gets_nothing_new() {
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let (ada_key, bo_key) = (SecretKey::generate(), SecretKey::generate());
    let exp = ada.create_experiment("e");
    let (ada_node, ticket) = team_of_ada(&ada, &ada_key).await;
    let bo_node = node(&bo, &bo_key).await;
    bo_node.join(&ticket, "Bo", "").await.unwrap();
    let ada_id = ada_key.public().to_string();
    ada.with(|s| roster::remove(&mut s.catalog, "Bo", &ada_id))
        .unwrap();
    let after_removal = ada.create_run(exp, "after-removal");
    // Bo still has ada on his roster and dials her: refused.
    let r = bo_node.sync_with(&ada_id, &ada_node.bound()).await;
    assert!(r.is_err(), "a removed member synced: {r:?}");
    assert!(bo.with(|s| s.catalog.run(after_removal)).unwrap().is_none());
    // And ada does not dial him either.
    let r = ada_node
        .sync_with(&bo_key.public().to_string(), &bo_node.bound())
        .await;
    assert!(matches!(r, Err(Error::NotAMember(_))), "{r:?}");
    assert!(bo.with(|s| s.catalog.run(after_removal)).unwrap().is_none());
    ada_node.shutdown().await;
    bo_node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_artifacts_are_fetched_on_demand_not_eagerly() {
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let (ada_key, bo_key) = (SecretKey::generate(), SecretKey::generate());
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "big");
    // Past the 8 MiB eager limit, and more than one 1 MiB part.
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    ada.add_artifact(run, "checkpoint.pt", &big);
    ada.add_artifact(run, "small.txt", b"small");
    let hash = bo_hash(&big);
    let (ada_node, ticket) = team_of_ada(&ada, &ada_key).await;
    let bo_node = node(&bo, &bo_key).await;
    bo_node.join(&ticket, "Bo", "").await.unwrap();
    assert!(bo.with(|s| s.artifacts.contains(&bo_hash(b"small"))));
    assert!(
        !bo.with(|s| s.artifacts.contains(&hash)),
        "a large blob was sent eagerly"
    );
    let report = bo_node
        .fetch_blobs(&[hash, bo_hash(b"nowhere")])
        .await
        .unwrap();
    assert_eq!(report.fetched, vec![hash.to_hex()]);
    assert_eq!(report.missing, vec![bo_hash(b"nowhere").to_hex()]);
    assert_eq!(bo.with(|s| s.artifacts.read(&hash)).unwrap(), big);
    ada_node.shutdown().await;
    bo_node.shutdown().await;
}

fn bo_hash(bytes: &[u8]) -> cairn_model::BlobHash {
    cairn_model::BlobHash(*blake3::hash(bytes).as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_secret_never_reaches_a_later_joiner_and_a_purged_one_leaves_a_teammate() {
    use cairn_catalog::RunEdit;
    use cairn_sync::purge::{self, Tombstone};
    const DELETED: &[u8] = b"OPENAI_API_KEY=sk-deleted-but-still-stored\n";
    const PURGED: &[u8] = b"AWS_SECRET_ACCESS_KEY=purged-after-it-travelled\n";
    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let (ada_key, bo_key) = (SecretKey::generate(), SecretKey::generate());
    let exp = ada.create_experiment("e");
    let run = ada.create_run(exp, "train");
    ada.add_artifact(run, ".env", DELETED);
    ada.edit(run, RunEdit::DeleteArtifact(".env".into()));
    ada.add_artifact(run, "model.bin", b"weights");
    let (ada_node, ticket) = team_of_ada(&ada, &ada_key).await;

    // Bo joins after the deletion: the run and its live artifact arrive, the deleted one not,
    // neither in the session nor on demand.
    let bo_node = node(&bo, &bo_key).await;
    bo_node.join(&ticket, "Bo", "").await.unwrap();
    assert_eq!(bo.run(run).name, "train");
    assert!(bo.holds(b"weights"));
    assert!(
        !bo.holds(DELETED),
        "a deleted secret reached a later joiner"
    );
    let r = bo_node.fetch_blobs(&[bo_hash(DELETED)]).await.unwrap();
    assert_eq!(r.missing, vec![bo_hash(DELETED).to_hex()]);
    assert!(!bo.holds(DELETED));

    // A secret that did travel, then purged on ada's device.
    ada.add_artifact(run, "creds.env", PURGED);
    let ada_id = ada_key.public().to_string();
    bo_node.sync_with(&ada_id, &ada_node.bound()).await.unwrap();
    assert!(bo.holds(PURGED));
    ada.with(|s| {
        purge::purge(
            &mut s.catalog,
            &s.artifacts,
            &ada_key,
            Tombstone::new(
                bo_hash(PURGED),
                "ada",
                1_700_000_000_000,
                &run.to_string(),
                "creds.env",
                "leaked AWS key",
            ),
        )
    })
    .unwrap();
    assert!(!ada.holds(PURGED));
    // Bo's next sync (either side may dial; here ada's node rings bo's) erases it there.
    ada_node
        .sync_with(&bo_key.public().to_string(), &bo_node.bound())
        .await
        .unwrap();
    assert!(
        !bo.holds(PURGED),
        "a purged secret is still on a teammate's device"
    );
    assert!(!bo.run(run).artifacts.contains_key("creds.env"));
    assert!(bo.holds(b"weights"));
    ada_node.shutdown().await;
    bo_node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notebook_edited_on_two_devices_offline_merges_over_real_sync() {
    use cairn_catalog::NotebookEdit;
    use cairn_model::NotebookId;
    use cairn_model::notebook::{Notebook, NotebookMeta};

    let (ada, bo) = (Peer::new("ada"), Peer::new("bo"));
    let (ada_key, bo_key) = (SecretKey::generate(), SecretKey::generate());
    let start = "# Warmup\n\nwarmup helps.\n";
    let id = NotebookId::new();
    let nb = Notebook {
        meta: NotebookMeta {
            id,
            title: "Warmup".into(),
            owners: vec!["ada".into()],
            tags: vec![],
            experiment: None,
            created_ms: 1,
            created_by: "ada".into(),
            updated_ms: 1,
            updated_by: "ada".into(),
            bytes: start.len() as u64,
        },
        text: start.into(),
        heads: Vec::new(),
    };
    ada.with(|s| s.catalog.create_notebook(&nb)).unwrap();
    let (ada_node, ticket) = team_of_ada(&ada, &ada_key).await;
    let bo_node = node(&bo, &bo_key).await;
    bo_node.join(&ticket, "Bo", "").await.unwrap();
    let text = |p: &Peer| p.with(|s| s.catalog.notebook(id)).unwrap().unwrap().text;
    assert_eq!(text(&bo), start, "the notebook came with the join");
    assert_eq!(
        bo.with(|s| s.catalog.notebooks()).unwrap()[0].title,
        "Warmup"
    );

    // Offline, both type: ada at the top, bo at the end.
    let type_in = |p: &Peer, who: &str, f: &dyn Fn(&str) -> String| {
        let new = f(&text(p));
        p.with(|s| {
            s.catalog
                .edit_notebook(id, &[NotebookEdit::Text(new)], who, 2)
        })
        .unwrap();
    };
    type_in(&ada, "ada", &|t| t.replace("# Warmup\n", "# Warmup (5%)\n"));
    type_in(&bo, "bo", &|t| format!("{t}bo: seed 2 agrees.\n"));
    bo_node
        .sync_with(&ada_key.public().to_string(), &ada_node.bound())
        .await
        .unwrap();
    let merged = text(&ada);
    assert_eq!(merged, text(&bo));
    assert_eq!(
        merged,
        "# Warmup (5%)\n\nwarmup helps.\nbo: seed 2 agrees.\n"
    );
    for n in [ada_node, bo_node] {
        n.shutdown().await;
    }
}
