//! Two stores exchanging their logs the way sync does: high-water marks, sealed chunks as
//! stored, the rest as entries.

use cairn_traces::{Error, Record, SealedChunk, Search, TraceStore};

use crate::{at, trace_entries, trace_id};

/// Sends `from` everything `to` lacks; returns how many entries moved.
fn push(from: &TraceStore, to: &mut TraceStore) -> u64 {
    let theirs = to.marks().unwrap();
    let mut moved = 0;
    for mark in from.marks().unwrap() {
        if mark.source == to.local_source() {
            continue;
        }
        let have = theirs
            .iter()
            .find(|m| m.source == mark.source)
            .map_or(0, |m| m.count);
        let mut at_seq = have;
        for chunk in from.sealed_chunks(&mark.source, have).unwrap() {
            if chunk.first_seq > at_seq {
                let gap = from
                    .entries(&mark.source, at_seq, (chunk.first_seq - at_seq) as usize)
                    .unwrap();
                assert!(to.append_at(&mark.source, at_seq, &gap).unwrap());
            }
            assert!(to.append_chunk_at(&mark.source, &chunk).unwrap());
            at_seq = chunk.first_seq + chunk.count;
        }
        let rest = from
            .entries(&mark.source, at_seq, (mark.count - at_seq) as usize)
            .unwrap();
        if !rest.is_empty() {
            assert!(to.append_at(&mark.source, at_seq, &rest).unwrap());
        }
        moved += mark.count - have;
    }
    moved
}

fn everything(s: &TraceStore) -> Vec<String> {
    let (infos, _) = s
        .search(&Search {
            limit: 1000,
            ..Search::default()
        })
        .unwrap();
    infos
        .iter()
        .map(|i| {
            let spans = s.spans(&i.trace_id).unwrap();
            format!("{i:?} {}", spans.len())
        })
        .collect()
}

#[test]
fn two_stores_end_with_the_same_traces() {
    let mut a = TraceStore::open_in_memory().unwrap();
    let mut b = TraceStore::open_in_memory().unwrap();
    for t in 1..=20u8 {
        a.append(&trace_entries(t, 100, u64::from(t) * 1000))
            .unwrap();
    }
    for t in 21..=25u8 {
        b.append(&trace_entries(t, 3, u64::from(t) * 1000)).unwrap();
    }
    assert_eq!(push(&a, &mut b), 2000);
    assert_eq!(push(&b, &mut a), 15);
    assert_eq!(everything(&a), everything(&b));
    assert_eq!(everything(&a).len(), 25);
    // The peer's chunks are kept byte for byte.
    let src = a.local_source().to_owned();
    assert_eq!(
        a.sealed_chunks(&src, 0).unwrap(),
        b.sealed_chunks(&src, 0).unwrap()
    );
    // In sync: nothing moves.
    assert_eq!(push(&a, &mut b) + push(&b, &mut a), 0);
}

#[test]
fn concurrent_edits_resolve_alike_on_both_sides() {
    let mut a = TraceStore::open_in_memory().unwrap();
    let mut b = TraceStore::open_in_memory().unwrap();
    a.append(&trace_entries(1, 2, 100)).unwrap();
    push(&a, &mut b);
    let tag = |ms, v: Option<&str>| {
        at(
            ms,
            Record::Tag {
                trace: trace_id(1),
                key: "k".into(),
                value: v.map(str::to_owned),
            },
        )
    };
    // Both set the tag offline; B's write is later. A deletes another key B sets earlier.
    a.append(&[tag(10, Some("from-a"))]).unwrap();
    b.append(&[tag(20, Some("from-b"))]).unwrap();
    a.append(&[at(
        30,
        Record::Tag {
            trace: trace_id(1),
            key: "gone".into(),
            value: None,
        },
    )])
    .unwrap();
    b.append(&[at(
        25,
        Record::Tag {
            trace: trace_id(1),
            key: "gone".into(),
            value: Some("x".into()),
        },
    )])
    .unwrap();
    push(&a, &mut b);
    push(&b, &mut a);
    let ia = a.info(&trace_id(1)).unwrap().unwrap();
    let ib = b.info(&trace_id(1)).unwrap().unwrap();
    assert_eq!(ia, ib);
    assert_eq!(ia.tags.get("k").map(String::as_str), Some("from-b"));
    assert!(!ia.tags.contains_key("gone"));
}

#[test]
fn what_a_peer_sends_is_checked_before_it_is_stored() {
    let mut a = TraceStore::open_in_memory().unwrap();
    let mut b = TraceStore::open_in_memory().unwrap();
    a.append(&trace_entries(1, 250, 100)).unwrap();
    a.seal().unwrap();
    let src = a.local_source().to_owned();
    let mut chunk = a.sealed_chunks(&src, 0).unwrap().remove(0);
    chunk.data[10] ^= 1;
    let err = b.append_chunk_at(&src, &chunk).unwrap_err();
    assert!(
        matches!(err, Error::Peer { .. }) && err.to_string().contains("hash mismatch"),
        "{err}"
    );
    assert!(b.marks().unwrap().is_empty());
    // Not where the log ends: nothing stored.
    let entries = a.entries(&src, 5, 10).unwrap();
    assert!(!b.append_at(&src, 5, &entries).unwrap());
    assert!(b.marks().unwrap().is_empty());
    // A garbled entry is refused as a whole batch.
    let mut entries = a.entries(&src, 0, 3).unwrap();
    entries[1].truncate(3);
    let err = b.append_at(&src, 0, &entries).unwrap_err();
    assert!(err.to_string().contains("entry 1 of the batch"), "{err}");
    assert!(b.marks().unwrap().is_empty());
    // Nobody writes into this store's own log but this store.
    let mine = b.local_source().to_owned();
    let err = b
        .append_at(&mine, 0, &a.entries(&src, 0, 1).unwrap())
        .unwrap_err();
    assert!(err.to_string().contains("own log"), "{err}");
    let err = b
        .append_chunk_at(
            "not-a-source",
            &SealedChunk {
                first_seq: 0,
                count: 0,
                hash: vec![],
                data: vec![],
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("32 hex digits"), "{err}");
}

#[test]
fn what_two_sessions_both_bring_is_stored_once_and_a_gap_is_refused() {
    let mut a = TraceStore::open_in_memory().unwrap();
    let mut b = TraceStore::open_in_memory().unwrap();
    for t in 1..=8u8 {
        a.append(&trace_entries(t, 200, u64::from(t) * 1000))
            .unwrap();
    }
    let src = a.local_source().to_owned();
    let chunk = a.sealed_chunks(&src, 0).unwrap().remove(0);
    let n = chunk.count;
    assert!(chunk.first_seq == 0 && n > 200 && n < 1600, "{n}");
    let after = a.entries(&src, n, 2000).unwrap();
    assert_eq!(after.len() as u64, 1600 - n);
    // A gap: what follows the chunk, before the chunk.
    let err = b.receive_entries(&src, n, &after).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("entries from {n}, but this store holds 0")),
        "{err}"
    );
    assert_eq!(b.source_count(&src).unwrap(), 0);
    // Part of the chunk arrived as entries first (another session): the chunk adds the rest.
    let first = a.entries(&src, 0, 100).unwrap();
    assert_eq!(b.receive_entries(&src, 0, &first).unwrap(), 100);
    assert_eq!(b.receive_chunk(&src, &chunk).unwrap(), n - 100);
    // The same chunk and the same entries again: nothing more.
    assert_eq!(b.receive_chunk(&src, &chunk).unwrap(), 0);
    assert_eq!(b.receive_entries(&src, 0, &first).unwrap(), 0);
    // Entries overlapping the end: only the new ones.
    assert_eq!(b.receive_entries(&src, n, &after[..10]).unwrap(), 10);
    assert_eq!(
        b.receive_entries(&src, n, &after).unwrap(),
        after.len() as u64 - 10
    );
    assert_eq!(b.source_count(&src).unwrap(), 1600);
    assert_eq!(everything(&a), everything(&b));
    // Its own log is never written by a peer.
    let own = b.local_source().to_owned();
    assert!(b.receive_entries(&own, 0, &first).is_err());
}
