//! Audit chains between peers over in-memory streams: every chain reaches every peer through
//! partitions, exactly once; a long chain goes in bounded frames; an event edited in place and
//! a forked chain are refused, kept as evidence, and leave what was held as it was.

use cairn_audit::{DeviceKey, Draft, Event, Mark, Problem, Report};
use cairn_sync::SecretKey;

use crate::common::{Peer, sync};

fn device_key() -> DeviceKey {
    DeviceKey::from_secret(&SecretKey::generate().to_bytes())
}

/// Appends `n` events to `key`'s chain on `p`, each about a run named `tag-i`.
fn write(p: &Peer, key: &DeviceKey, n: usize, tag: &str) {
    let drafts = (0..n)
        .map(|i| {
            Draft::new(&p.name, "run.created", 1_700_000_000_000 + i as i64)
                .subject(format!("run:{tag}-{i}"))
                .field("i", i.to_string())
        })
        .collect();
    p.with(|s| s.audit.append_all(key, drafts)).unwrap();
}

fn marks(p: &Peer) -> Vec<Mark> {
    p.with(|s| s.audit.marks()).unwrap()
}

fn chain(p: &Peer, key: &DeviceKey) -> Vec<Event> {
    p.with(|s| s.audit.chain(key.id(), 0, 1_000_000)).unwrap()
}

/// Every chain and refused offer on `p`, checked (signatures and links; no roster).
fn verified(p: &Peer) -> Report {
    p.with(|s| cairn_audit::verify_store(&s.audit, None))
        .unwrap()
        .finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_reach_every_peer_through_partitions_once_each() {
    let (a, b, c) = (Peer::new("a"), Peer::new("b"), Peer::new("c"));
    let (ka, kb, kc) = (device_key(), device_key(), device_key());
    write(&a, &ka, 3, "a");
    write(&b, &kb, 2, "b");
    // More than one frame's worth (4,096 events a frame).
    write(&c, &kc, 5_000, "c");

    // A and C never talk: B carries each one's chain to the other.
    let (ra, rb) = sync(&a, &b).await;
    assert_eq!((ra.audit_events_received, rb.audit_events_received), (2, 3));
    let (rb, rc) = sync(&b, &c).await;
    assert_eq!(
        (rb.audit_events_received, rc.audit_events_received),
        (5_000, 5)
    );
    // Meanwhile A and C write more; the next rounds send only what is new.
    write(&a, &ka, 4, "a2");
    write(&c, &kc, 1, "c2");
    let (ra, rb) = sync(&a, &b).await;
    assert_eq!(
        (ra.audit_events_received, rb.audit_events_received),
        (5_000, 4)
    );
    let (rb, rc) = sync(&b, &c).await;
    assert_eq!((rb.audit_events_received, rc.audit_events_received), (1, 4));
    let (ra, _) = sync(&a, &b).await;
    assert_eq!(ra.audit_events_received, 1);

    let want = marks(&b);
    assert_eq!(want.len(), 3);
    let counts: Vec<u64> = want.iter().map(|m| m.count).collect();
    let mut sorted = counts.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, vec![2, 7, 5_001]);
    for p in [&a, &b, &c] {
        assert_eq!(marks(p), want, "peer {}", p.name);
        assert_eq!(p.with(|s| s.audit.count()).unwrap(), 5_010, "{}", p.name);
        for k in [&ka, &kb, &kc] {
            let events = chain(p, k);
            let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
        }
        assert_eq!(chain(p, &kc), chain(&c, &kc), "{}", p.name);
        let report = verified(p);
        assert!(report.ok(), "{}: {:?}", p.name, report.findings);
        assert_eq!(report.events, 5_010);
    }
    // In sync: the audit phase is skipped and nothing changes.
    let (ra, rb) = sync(&a, &b).await;
    assert!(!ra.changed() && !rb.changed(), "{ra:?} {rb:?}");
    assert_eq!(ra.audit_refused + rb.audit_refused, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_edited_in_place_is_refused_by_every_peer_and_the_original_kept() {
    let (a, b, c) = (Peer::new("a"), Peer::new("b"), Peer::new("c"));
    let ka = device_key();
    write(&a, &ka, 5, "a");
    sync(&a, &b).await;
    let original = chain(&b, &ka);
    assert_eq!(original.len(), 5);

    // Someone rewrites A's last event where the chains are kept (its signature no longer covers it).
    rusqlite::Connection::open(&a.paths.audit)
        .unwrap()
        .execute(
            "UPDATE events SET member = 'mallory' WHERE device = ?1 AND seq = 4",
            [ka.id()],
        )
        .unwrap();

    // B held the original: the edited event is offered as evidence and refused.
    let (_, rb) = sync(&a, &b).await;
    assert_eq!(rb.audit_refused, 1, "{rb:?}");
    assert_eq!(rb.audit_events_received, 0);
    assert!(!rb.changed());
    assert_eq!(chain(&b, &ka), original, "B still holds the original");
    let report = verified(&b);
    assert!(!report.ok());
    assert_eq!(report.count(Problem::BadSignature), 1, "{report:?}");
    let conflicts = b.with(|s| s.audit.conflicts()).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!((conflicts[0].seq, conflicts[0].source.as_str()), (4, "a"));

    // C never had the chain: it takes what verifies and refuses the edited event.
    let (_, rc) = sync(&a, &c).await;
    assert_eq!((rc.audit_events_received, rc.audit_refused), (4, 1));
    assert_eq!(chain(&c, &ka), original[..4]);
    let report = verified(&c);
    assert_eq!(report.count(Problem::BadSignature), 1, "{report:?}");

    // Syncing again offers the same evidence, stores nothing twice and is not news.
    let (_, rb) = sync(&a, &b).await;
    assert_eq!((rb.audit_refused, rb.changed()), (1, false));
    assert_eq!(b.with(|s| s.audit.conflicts()).unwrap().len(), 1);
    // B passes the original on: C completes the chain from B.
    let (_, rc) = sync(&b, &c).await;
    assert_eq!(rc.audit_events_received, 1);
    assert_eq!(chain(&c, &ka), original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forked_chain_is_refused_both_ways_and_kept_as_evidence() {
    // One device key writing on two copies of a workspace: two chains that share a device.
    let (x, y) = (Peer::new("x"), Peer::new("y"));
    let k = device_key();
    write(&x, &k, 3, "x");
    write(&y, &k, 3, "y");
    let (before_x, before_y) = (chain(&x, &k), chain(&y, &k));
    let (rx, ry) = sync(&x, &y).await;
    assert_eq!((rx.audit_refused, ry.audit_refused), (1, 1));
    assert_eq!((rx.audit_events_received, ry.audit_events_received), (0, 0));
    assert_eq!(chain(&x, &k), before_x);
    assert_eq!(chain(&y, &k), before_y);
    for p in [&x, &y] {
        let report = verified(p);
        assert_eq!(report.count(Problem::Fork), 1, "{}: {report:?}", p.name);
    }
    // Y goes on writing: X is offered only the divergent event, never Y's continuation.
    write(&y, &k, 2, "y2");
    let (rx, _) = sync(&x, &y).await;
    assert_eq!((rx.audit_events_received, rx.audit_refused), (0, 1));
    assert_eq!(chain(&x, &k), before_x);
    assert_eq!(x.with(|s| s.audit.conflicts()).unwrap().len(), 1);
}
