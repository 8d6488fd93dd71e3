//! Peers that send garbage, oversized frames, unasked or corrupt blobs, or messages about docs
//! not being synced are disconnected and change nothing; a broken connection resumes without
//! starting over.

use std::pin::Pin;
use std::task::{Context, Poll};

use cairn_catalog::RunEdit;
use cairn_sync::wire::{Msg, VERSION, read_frame, write_frame};
use cairn_sync::{Error, Link, run_session};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use crate::common::{Peer, sync};

/// A peer with some of everything.
fn stocked(name: &str) -> Peer {
    let p = Peer::new(name);
    let exp = p.create_experiment("e");
    let run = p.create_run(exp, "r");
    p.edit(run, RunEdit::Param("lr".into(), "0.1".into()));
    p.log(run, "loss", 0, 50);
    p.add_artifact(run, "model.bin", b"weights");
    p
}

/// Runs `victim`'s side of a session against a scripted peer; returns the victim's result.
async fn against<F, Fut>(victim: &Peer, script: F) -> Result<cairn_sync::SessionReport, Error>
where
    F: FnOnce(tokio::io::DuplexStream) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let (x, y) = tokio::io::duplex(1 << 20);
    let (xr, xw) = tokio::io::split(x);
    let (result, ()) = tokio::join!(
        run_session(&victim.stores, "mallory", Link::new(xr, xw)),
        script(y)
    );
    result
}

fn assert_protocol_error(r: Result<cairn_sync::SessionReport, Error>, what: &str) {
    match r {
        Err(Error::Protocol(msg)) => assert!(msg.contains(what), "{msg}"),
        other => panic!("expected a protocol error about '{what}', got {other:?}"),
    }
}

#[tokio::test]
async fn garbage_is_a_protocol_error_and_changes_nothing() {
    let victim = stocked("victim");
    let before = victim.snapshot();
    let r = against(&victim, |mut s| async move {
        write_frame(&mut s, &[0xff, 1, 2, 3]).await.unwrap();
        s.shutdown().await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, "unknown message type 255");
    assert_eq!(victim.snapshot(), before);
}

#[tokio::test]
async fn an_oversized_frame_is_refused_before_it_is_read() {
    let victim = stocked("victim");
    let before = victim.snapshot();
    let r = against(&victim, |mut s| async move {
        s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, "4294967295-byte frame");
    assert_eq!(victim.snapshot(), before);
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_hash_is_refused_and_not_stored() {
    let victim = stocked("victim");
    let before = victim.snapshot();
    let (catalog, metrics) = victim.with(|s| {
        (
            s.catalog_manifest().unwrap().1,
            s.metrics_manifest().unwrap().1,
        )
    });
    let traces = victim.with(|s| s.traces_manifest().unwrap().1);
    let audit = victim.with(|s| s.audit_manifest().unwrap().1);
    let fake = *blake3::hash(b"the real content").as_bytes();
    let r = against(&victim, move |mut s| async move {
        let send = |m: Msg| m.encode();
        write_frame(
            &mut s,
            &send(Msg::Hello {
                version: VERSION,
                catalog,
                metrics,
                traces,
                audit,
                blobs: [9; 32],
            }),
        )
        .await
        .unwrap();
        write_frame(&mut s, &send(Msg::BlobList(vec![(fake, 16)])))
            .await
            .unwrap();
        write_frame(&mut s, &send(Msg::BlobWant(vec![])))
            .await
            .unwrap();
        write_frame(
            &mut s,
            &send(Msg::Blob {
                hash: fake,
                bytes: b"something else!!".to_vec(),
            }),
        )
        .await
        .unwrap();
        write_frame(&mut s, &send(Msg::RoundEnd)).await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, "corrupt");
    assert_eq!(victim.snapshot(), before);
}

#[tokio::test]
async fn a_bad_automerge_message_or_an_unsynced_doc_is_refused() {
    for (doc, payload, what) in [
        ("team", vec![0x42, 0, 1, 2], "sync message"),
        (
            "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b",
            vec![0x42],
            "not being synced",
        ),
    ] {
        let victim = stocked("victim");
        let before = victim.snapshot();
        let (metrics, blobs) = victim.with(|s| {
            (
                s.metrics_manifest().unwrap().1,
                s.blobs_manifest().unwrap().1,
            )
        });
        let traces = victim.with(|s| s.traces_manifest().unwrap().1);
        let audit = victim.with(|s| s.audit_manifest().unwrap().1);
        let r = against(&victim, move |mut s| async move {
            let hello = Msg::Hello {
                version: VERSION,
                catalog: [1; 32],
                metrics,
                traces,
                audit,
                blobs,
            };
            write_frame(&mut s, &hello.encode()).await.unwrap();
            write_frame(&mut s, &Msg::Heads(vec![("team".into(), [0; 8])]).encode())
                .await
                .unwrap();
            let doc = Msg::Doc {
                name: doc.to_owned(),
                msg: Some(payload),
            };
            write_frame(&mut s, &doc.encode()).await.unwrap();
            write_frame(&mut s, &Msg::RoundEnd.encode()).await.unwrap();
            drain(s).await;
        })
        .await;
        assert_protocol_error(r, what);
        assert_eq!(victim.snapshot(), before, "{doc}");
    }
}

#[tokio::test]
async fn a_peer_speaking_another_version_is_refused() {
    let victim = stocked("victim");
    let r = against(&victim, |mut s| async move {
        let hello = Msg::Hello {
            version: VERSION + 1,
            catalog: [0; 32],
            metrics: [0; 32],
            traces: [0; 32],
            audit: [0; 32],
            blobs: [0; 32],
        };
        write_frame(&mut s, &hello.encode()).await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, &format!("version {}, this build {VERSION}", VERSION + 1));
    // A peer of the release before audit chains sends a Hello of version 2 (four digests):
    // refused with both versions named, not as a malformed message.
    let r = against(&victim, |mut s| async move {
        let mut hello = vec![1, 0, 2];
        hello.extend_from_slice(&[0; 4 * 32]);
        write_frame(&mut s, &hello).await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, &format!("sync version 2, this build {VERSION}"));
}

/// Reads (and drops) what the victim sends until it hangs up.
async fn drain(mut s: tokio::io::DuplexStream) {
    while let Ok(Some(_)) = read_frame(&mut s).await {}
}

/// A reader that reports the end of the stream after `left` bytes: a connection cut mid-sync.
struct Cut<R> {
    inner: R,
    left: usize,
}

impl<R: AsyncRead + Unpin> AsyncRead for Cut<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.left == 0 {
            return Poll::Ready(Ok(()));
        }
        let max = self.left.min(buf.remaining());
        let mut tmp = vec![0u8; max];
        let mut part = ReadBuf::new(&mut tmp);
        match Pin::new(&mut self.inner).poll_read(cx, &mut part) {
            Poll::Ready(Ok(())) => {
                let n = part.filled().len();
                buf.put_slice(&tmp[..n]);
                self.left -= n;
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_connection_resumes_without_starting_over() {
    let a = Peer::new("ada");
    for e in 0..4 {
        let exp = a.create_experiment(&format!("e{e}"));
        for r in 0..150 {
            let run = a.create_run(exp, &format!("run-{e}-{r}"));
            a.edit(run, RunEdit::Param("lr".into(), format!("0.{r}")));
        }
    }
    // What a whole sync costs a fresh peer.
    let full = {
        let fresh = Peer::new("bo");
        sync(&a, &fresh).await.1.received
    };
    let b = Peer::new("bo");
    // Cut bo's side after 40% of that.
    {
        let (x, y) = tokio::io::duplex(64 * 1024);
        let (xr, xw) = tokio::io::split(x);
        let (yr, yw) = tokio::io::split(y);
        let cut = Cut {
            inner: yr,
            left: (full as usize) * 4 / 10,
        };
        let (ra, rb) = tokio::join!(
            run_session(&a.stores, "bo", Link::new(xr, xw)),
            run_session(&b.stores, "ada", Link::new(cut, yw)),
        );
        assert!(ra.is_err() && rb.is_err(), "{ra:?} {rb:?}");
    }
    let partial = b.with(|s| s.catalog.changes_since(0)).unwrap().1.len();
    assert!(partial > 0, "nothing was kept from the broken session");
    assert!(
        partial < 600,
        "the cut came too late to test anything ({full} bytes)"
    );
    let mut b = b;
    b.restart();
    let (_, resumed) = sync(&a, &b).await;
    assert!(
        resumed.received < full,
        "resuming received {} bytes, a fresh sync {full}",
        resumed.received
    );
    assert_eq!(a.snapshot(), b.snapshot());
}

#[tokio::test]
async fn a_fetched_blob_that_does_not_match_or_skips_ahead_is_not_stored() {
    use cairn_model::BlobHash;
    for lie in ["wrong content", "skips ahead"] {
        let victim = stocked("victim");
        let before = victim.snapshot();
        let want = BlobHash(*blake3::hash(b"what was asked for").as_bytes());
        let (x, y) = tokio::io::duplex(1 << 20);
        let (xr, xw) = tokio::io::split(x);
        let (mut yr, mut yw) = tokio::io::split(y);
        let liar = async move {
            read_frame(&mut yr).await.unwrap();
            let part = |offset, last, bytes: &[u8]| {
                Msg::BlobPart {
                    hash: want.0,
                    offset,
                    last,
                    bytes: bytes.to_vec(),
                }
                .encode()
            };
            if lie == "wrong content" {
                write_frame(&mut yw, &part(0, true, b"something else"))
                    .await
                    .unwrap();
            } else {
                write_frame(&mut yw, &part(0, false, b"what was"))
                    .await
                    .unwrap();
                write_frame(&mut yw, &part(100, true, b" for"))
                    .await
                    .unwrap();
            }
            write_frame(&mut yw, &Msg::Done.encode()).await.unwrap();
        };
        let wanted = [want];
        let (r, ()) = tokio::join!(
            cairn_sync::fetch::fetch_blobs(
                &victim.stores,
                "mallory",
                xr,
                xw,
                &wanted,
                cairn_sync::fetch::FETCH_IDLE
            ),
            liar
        );
        assert!(matches!(r, Err(Error::Protocol(_))), "{lie}: {r:?}");
        assert_eq!(victim.snapshot(), before, "{lie}");
        let tmp = victim.with(|s| s.artifacts.tmp_dir());
        let left = std::fs::read_dir(&tmp).map_or(0, |d| d.count());
        assert_eq!(
            left,
            0,
            "{lie}: a partial file was left in {}",
            tmp.display()
        );
    }
}

#[tokio::test]
async fn a_metric_chunk_that_does_not_match_its_hash_is_refused() {
    let victim = stocked("victim");
    let before = victim.snapshot();
    let (catalog, blobs) = victim.with(|s| {
        (
            s.catalog_manifest().unwrap().1,
            s.blobs_manifest().unwrap().1,
        )
    });
    let traces = victim.with(|s| s.traces_manifest().unwrap().1);
    let audit = victim.with(|s| s.audit_manifest().unwrap().1);
    let run = victim.with(|s| s.metrics.series_marks().unwrap())[0]
        .run
        .clone();
    let r = against(&victim, move |mut s| async move {
        let hello = Msg::Hello {
            version: VERSION,
            catalog,
            metrics: [7; 32],
            traces,
            audit,
            blobs,
        };
        write_frame(&mut s, &hello.encode()).await.unwrap();
        write_frame(&mut s, &Msg::Marks(vec![]).encode())
            .await
            .unwrap();
        let chunk = Msg::Chunk {
            run,
            key: "loss".into(),
            from: 50,
            count: 3,
            hash: *blake3::hash(b"not these bytes").as_bytes(),
            data: vec![1, 2, 3, 4],
        };
        write_frame(&mut s, &chunk.encode()).await.unwrap();
        write_frame(&mut s, &Msg::RoundEnd.encode()).await.unwrap();
        drain(s).await;
    })
    .await;
    assert_protocol_error(r, "hash mismatch");
    assert_eq!(victim.snapshot(), before);
}

#[tokio::test]
async fn a_peer_that_stops_sending_mid_blob_ends_the_fetch_with_an_error_naming_it() {
    use cairn_model::BlobHash;
    use std::time::Duration;
    let victim = stocked("victim");
    let before = victim.snapshot();
    let want = BlobHash(*blake3::hash(b"what was asked for").as_bytes());
    let (x, y) = tokio::io::duplex(1 << 20);
    let (xr, xw) = tokio::io::split(x);
    let (mut yr, mut yw) = tokio::io::split(y);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let staller = async move {
        read_frame(&mut yr).await.unwrap();
        let first = Msg::BlobPart {
            hash: want.0,
            offset: 0,
            last: false,
            bytes: b"what was".to_vec(),
        };
        write_frame(&mut yw, &first.encode()).await.unwrap();
        // Then nothing, with the connection held open until the fetch has given up.
        stopped.await.ok();
        drop((yr, yw));
    };
    let wanted = [want];
    let fetch = async move {
        let r = cairn_sync::fetch::fetch_blobs(
            &victim.stores,
            "mallory",
            xr,
            xw,
            &wanted,
            Duration::from_millis(300),
        )
        .await;
        stop.send(()).ok();
        (r, victim)
    };
    // Generous: a hang is what this guards against, not a speed.
    let ((r, victim), ()) = tokio::time::timeout(Duration::from_secs(30), async {
        tokio::join!(fetch, staller)
    })
    .await
    .expect("the fetch hung on a silent peer");
    match r {
        Err(Error::Net(msg)) => {
            assert!(msg.contains("mallory"), "{msg}");
            assert!(msg.contains(&want.to_hex()), "{msg}");
        }
        other => panic!("expected a network error naming the peer, got {other:?}"),
    }
    assert_eq!(victim.snapshot(), before);
}

/// A peer's trace log sent in the trace phase (catalog, metrics and blobs already in sync).
async fn send_traces(victim: &Peer, msgs: Vec<Msg>) -> Result<cairn_sync::SessionReport, Error> {
    let (catalog, metrics, audit, blobs) = victim.with(|s| {
        (
            s.catalog_manifest().unwrap().1,
            s.metrics_manifest().unwrap().1,
            s.audit_manifest().unwrap().1,
            s.blobs_manifest().unwrap().1,
        )
    });
    against(victim, move |mut s| async move {
        let hello = Msg::Hello {
            version: VERSION,
            catalog,
            metrics,
            traces: [7; 32],
            audit,
            blobs,
        };
        write_frame(&mut s, &hello.encode()).await.unwrap();
        write_frame(&mut s, &Msg::TraceMarks(vec![]).encode())
            .await
            .unwrap();
        for m in msgs {
            write_frame(&mut s, &m.encode()).await.unwrap();
        }
        write_frame(&mut s, &Msg::RoundEnd.encode()).await.unwrap();
        drain(s).await;
    })
    .await
}

fn trace_marks(p: &Peer) -> Vec<(String, u64)> {
    p.with(|s| s.traces_manifest().unwrap().0)
}

#[tokio::test]
async fn a_trace_chunk_that_does_not_match_its_hash_is_refused() {
    let victim = stocked("victim");
    let source = "0123456789abcdef0123456789abcdef".to_owned();
    let r = send_traces(
        &victim,
        vec![Msg::TraceChunk {
            source,
            from: 0,
            count: 3,
            hash: *blake3::hash(b"not these bytes").as_bytes(),
            data: vec![1, 2, 3, 4],
        }],
    )
    .await;
    assert_protocol_error(r, "hash mismatch");
    assert_eq!(trace_marks(&victim), vec![]);
}

#[tokio::test]
async fn trace_entries_that_do_not_decode_or_leave_a_gap_or_claim_this_log_are_refused() {
    let victim = stocked("victim");
    let peer = "0123456789abcdef0123456789abcdef".to_owned();
    let r = send_traces(
        &victim,
        vec![Msg::TraceEntries {
            source: peer.clone(),
            from: 0,
            entries: vec![vec![0xff; 12]],
        }],
    )
    .await;
    assert_protocol_error(r, &peer);
    // A real entry, but not where this side's copy of the log ends.
    let entry = cairn_traces::entry_bytes(&cairn_traces::Entry {
        at_ms: 1,
        record: cairn_traces::Record::Link {
            trace: cairn_traces::TraceId::parse("tr-0123").unwrap(),
            run: "r".into(),
        },
    });
    let r = send_traces(
        &victim,
        vec![Msg::TraceEntries {
            source: peer.clone(),
            from: 5,
            entries: vec![entry.clone()],
        }],
    )
    .await;
    assert_protocol_error(r, "entries from 5, but this store holds 0");
    let own = victim.with(|s| s.traces.local_source().to_owned());
    let r = send_traces(
        &victim,
        vec![Msg::TraceEntries {
            source: own,
            from: 0,
            entries: vec![entry],
        }],
    )
    .await;
    assert_protocol_error(r, "this store's own log");
    let r = send_traces(
        &victim,
        vec![Msg::TraceEntries {
            source: "../../etc".into(),
            from: 0,
            entries: vec![],
        }],
    )
    .await;
    assert_protocol_error(r, "32 hex digits");
    assert_eq!(trace_marks(&victim), vec![]);
}
