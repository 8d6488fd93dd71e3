//! Audit chains between teammates over real iroh endpoints on loopback: three devices whose
//! sessions never join the first and the last directly all end up with every chain, each event
//! once, verified; an event edited in place on one device, and a governed record changed there
//! by a raw automerge edit, are reported by the others.

use std::time::Duration;

use cairn_audit::{AuditStore, Event, Mark};
use cairn_core::Workspace;
use cairn_core::team::{Node, NodeConfig, parse_ticket};

use super::registry::{peer, register, trained};
use crate::start;

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn audit_db(ws: &Workspace) -> AuditStore {
    AuditStore::open(&ws.dir().join("catalog.db")).unwrap()
}

fn marks(ws: &Workspace) -> Vec<Mark> {
    audit_db(ws).marks().unwrap()
}

fn chain_of(ws: &Workspace, device: &str) -> Vec<Event> {
    audit_db(ws).chain(device, 0, 100_000).unwrap()
}

/// `joiner` joins the team through a ticket `host` issues (a session between the two).
pub(crate) async fn join(host: &Workspace, host_node: &Node, joiner_node: &Node, name: &str) {
    let ticket = host
        .team_invite(&host_node.bound(), Duration::from_secs(60))
        .unwrap();
    joiner_node
        .join(&parse_ticket(&ticket).unwrap(), name, "")
        .await
        .unwrap();
}

/// `from` dials `to` for one session.
pub(crate) async fn sync(
    from: &Node,
    to: &Workspace,
    to_node: &Node,
) -> cairn_core::team::SessionReport {
    from.sync_with(&to.device_id().unwrap(), &to_node.bound())
        .await
        .unwrap()
}

#[test]
fn audit_chains_reach_all_three_peers_through_partitions_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let ada = peer(&dir, "ada", "ada");
    let bo = peer(&dir, "bo", "bo");
    let cy = peer(&dir, "cy", "cy");
    let rt = runtime();
    rt.block_on(async {
        ada.team_create("lab", "ada@example.org").unwrap();
        let ada_node = ada.start_sync_node(NodeConfig::default()).await.unwrap();
        let bo_node = bo.start_sync_node(NodeConfig::default()).await.unwrap();
        let cy_node = cy.start_sync_node(NodeConfig::default()).await.unwrap();
        // Bo joins through ada, cy through bo: ada and cy never hold a session.
        join(&ada, &ada_node, &bo_node, "bo").await;
        join(&bo, &bo_node, &cy_node, "cy").await;

        // Each writes governed changes meanwhile.
        let run = trained(&ada, b"ada's weights");
        register(&ada, "churn", run);
        ada.promote("churn", 1, "champion", Some("best on val"))
            .unwrap();
        start(&bo, "bo-exp", &[("lr", "0.1")]);
        start(&bo, "bo-exp", &[("lr", "0.2")]);
        let cy_run = trained(&cy, b"cy's weights");
        register(&cy, "fraud", cy_run);

        sync(&bo_node, &ada, &ada_node).await;
        let r = sync(&bo_node, &cy, &cy_node).await;
        assert!(r.audit_events_received > 0, "{r:?}");
        let r = sync(&bo_node, &ada, &ada_node).await;
        assert!(r.audit_refused == 0, "{r:?}");

        let want = marks(&bo);
        assert_eq!(want.len(), 3, "one chain per device: {want:?}");
        for (name, ws) in [("ada", &ada), ("bo", &bo), ("cy", &cy)] {
            assert_eq!(marks(ws), want, "{name} holds every chain as far");
            for m in &want {
                let events = chain_of(ws, &m.device);
                assert_eq!(events.len() as u64, m.count, "{name}");
                let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
                assert_eq!(seqs, (0..m.count).collect::<Vec<_>>(), "{name}: once each");
            }
            let v = ws.audit_verify().unwrap();
            assert!(v.ok, "{name}: {v:?}");
            assert_eq!(v.chains, 3, "{name}");
            assert_eq!(
                v.events,
                want.iter().map(|m| m.count).sum::<u64>(),
                "{name}"
            );
        }
        // The chains are the writers' own, event for event.
        let ada_id = ada.device_id().unwrap();
        assert_eq!(chain_of(&cy, &ada_id), chain_of(&ada, &ada_id));
        let cy_id = cy.device_id().unwrap();
        assert_eq!(chain_of(&ada, &cy_id), chain_of(&cy, &cy_id));
        for n in [ada_node, bo_node, cy_node] {
            n.shutdown().await;
        }
    });
}

#[test]
fn tampering_on_one_peer_is_reported_by_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let ada = peer(&dir, "ada", "ada");
    let bo = peer(&dir, "bo", "bo");
    let cy = peer(&dir, "cy", "cy");
    let rt = runtime();
    rt.block_on(async {
        ada.team_create("lab", "ada@example.org").unwrap();
        let run = trained(&ada, b"weights");
        register(&ada, "churn", run);
        ada.promote("churn", 1, "champion", Some("best on val"))
            .unwrap();
        let ada_node = ada.start_sync_node(NodeConfig::default()).await.unwrap();
        let bo_node = bo.start_sync_node(NodeConfig::default()).await.unwrap();
        join(&ada, &ada_node, &bo_node, "bo").await;
        assert!(bo.audit_verify().unwrap().ok);
        let ada_id = ada.device_id().unwrap();
        let original = chain_of(&bo, &ada_id);
        assert_eq!(original, chain_of(&ada, &ada_id));
        let last = original.last().unwrap().seq;

        // Someone edits ada's latest event in her catalog.db (where the chains are kept) (the alias move's rationale).
        let edited = rusqlite::Connection::open(ada.dir().join("catalog.db"))
            .unwrap()
            .execute(
                "UPDATE events SET member = 'mallory' WHERE device = ?1 AND seq = ?2",
                rusqlite::params![ada_id, last as i64],
            )
            .unwrap();
        assert_eq!(edited, 1);
        let r = sync(&bo_node, &ada, &ada_node).await;
        assert_eq!(r.audit_refused, 1, "{r:?}");
        assert_eq!(chain_of(&bo, &ada_id), original, "bo keeps the original");
        let v = bo.audit_verify().unwrap();
        assert!(!v.ok);
        assert_eq!(v.counts.get("bad signature"), Some(&1), "{v:?}");
        let finding = v
            .findings
            .iter()
            .find(|f| f.problem == "bad signature")
            .unwrap();
        assert_eq!(finding.seq, Some(last));
        assert!(finding.detail.contains("offered by"), "{finding:?}");

        // Cy never had ada's chain: joining through ada, it refuses the edited event.
        let cy_node = cy.start_sync_node(NodeConfig::default()).await.unwrap();
        join(&ada, &ada_node, &cy_node, "cy").await;
        assert_eq!(chain_of(&cy, &ada_id), original[..original.len() - 1]);
        let v = cy.audit_verify().unwrap();
        assert_eq!(v.counts.get("bad signature"), Some(&1), "{v:?}");

        // A governed record changed on ada by a raw automerge edit, with no event.
        let key = "alias/churn/champion";
        {
            let mut cat =
                cairn_catalog::Catalog::open(&ada.dir().join("catalog.db"), "mallory").unwrap();
            let text = cat.team_entry(key).unwrap().unwrap();
            let changed = text.replace("best on val", "approved by the board");
            assert_ne!(changed, text);
            cat.put_team_entry(key, Some(&changed)).unwrap();
        }
        let r = sync(&bo_node, &ada, &ada_node).await;
        assert!(r.docs_changed > 0, "{r:?}");
        let v = bo.audit_verify().unwrap();
        assert_eq!(v.counts.get("unattested change"), Some(&1), "{v:?}");
        let finding = v
            .findings
            .iter()
            .find(|f| f.problem == "unattested change")
            .unwrap();
        assert!(finding.detail.contains(key), "{finding:?}");
        for n in [ada_node, bo_node, cy_node] {
            n.shutdown().await;
        }
    });
}

#[test]
fn a_member_admitted_through_an_invitation_is_signed_by_the_inviter() {
    let dir = tempfile::tempdir().unwrap();
    let ada = peer(&dir, "ada", "ada");
    let bo = peer(&dir, "bo", "bo");
    let rt = runtime();
    rt.block_on(async {
        ada.team_create("lab", "ada@example.org").unwrap();
        let ada_node = ada.start_sync_node(NodeConfig::default()).await.unwrap();
        let bo_node = bo.start_sync_node(NodeConfig::default()).await.unwrap();
        let ticket = ada
            .team_invite(&ada_node.bound(), Duration::from_secs(60))
            .unwrap();
        let ticket = parse_ticket(&ticket).unwrap();
        // A name no event could hold is refused, naming why, and the invitation stays usable.
        let e = bo_node
            .join(&ticket, &"b".repeat(2000), "")
            .await
            .unwrap_err();
        assert!(e.to_string().contains("at most 1024 bytes"), "{e}");
        bo_node.join(&ticket, "bo", "bo@example.org").await.unwrap();

        let (ada_id, bo_id) = (ada.device_id().unwrap(), bo.device_id().unwrap());
        let added: Vec<Event> = chain_of(&ada, &ada_id)
            .into_iter()
            .filter(|e| e.kind == "member.added")
            .collect();
        assert_eq!(added.len(), 1, "{added:?}");
        let e = &added[0];
        assert_eq!(
            (e.member.as_str(), e.device.as_str()),
            ("ada", ada_id.as_str())
        );
        assert_eq!(e.subjects, [format!("member:{bo_id}")]);
        assert_eq!(e.field("member"), Some("bo"));
        assert_eq!(e.field("device"), Some(bo_id.as_str()));
        assert_eq!(e.field("email"), Some("bo@example.org"));
        assert_eq!(e.field("team"), Some("lab"));
        assert_eq!(e.field("added_by"), Some(ada_id.as_str()));
        // The event precedes the roster entry it attests, and came to bo with the join.
        let member = ada
            .team_members()
            .unwrap()
            .into_iter()
            .find(|m| m.id == bo_id)
            .unwrap();
        assert!(e.at_ms <= member.added_ms);
        assert_eq!(chain_of(&bo, &ada_id), chain_of(&ada, &ada_id));
        for ws in [&ada, &bo] {
            let v = ws.audit_verify().unwrap();
            assert!(v.ok, "{v:?}");
        }
        for n in [ada_node, bo_node] {
            n.shutdown().await;
        }
    });
}
