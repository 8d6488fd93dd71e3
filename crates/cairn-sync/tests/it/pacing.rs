//! What a sync session costs the process it runs in: bulk frames are paced to the connection
//! (memory does not grow with what the peer lacks), and store I/O runs on the blocking pool (the
//! async workers, shared with the desktop's HTTP server, stay free).

use std::time::{Duration, Instant};

use cairn_sync::wire::{Msg, VERSION, write_frame};
use cairn_sync::{Link, run_session};

use crate::common::{Peer, sync};

#[test]
fn a_session_waiting_on_the_stores_leaves_the_async_worker_free() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (a, b) = (Peer::new("a"), Peer::new("b"));
    let exp = a.create_experiment("e");
    let run = a.create_run(exp, "r");
    a.add_artifact(run, "model.bin", b"weights");
    // Another process's long write holds the stores for a while.
    let held = a.stores.clone();
    let (locked, wait_locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let guard = held.lock().unwrap();
        locked.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(3));
        drop(guard);
    });
    wait_locked.recv().unwrap();
    rt.block_on(async move {
        let session = tokio::spawn(async move {
            sync(&a, &b).await;
            (a, b)
        });
        // The runtime has one worker: if the session waits for the lock on it, nothing else
        // (here a 50 ms timer; in the desktop, its HTTP server) runs until the lock is free.
        let t = Instant::now();
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waited = t.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "the only async worker was blocked for {waited:?} while a session waited on the stores"
        );
        let (a, b) = session.await.unwrap();
        assert_eq!(b.run(run).name, "r");
        assert_eq!(a.snapshot(), b.snapshot());
    });
    holder.join().unwrap();
}

/// The process's resident memory, in MiB.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

const CHILD: &str = "CAIRN_SYNC_PACING_CHILD";
const BLOBS: usize = 96;

/// Runs in a process of its own (the test binary again, with only this test), so that what is
/// measured is this session's memory and nothing another test allocates meanwhile.
#[test]
fn a_sender_holds_a_bounded_amount_of_a_phase_whatever_the_peer_lacks() {
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "pacing::a_sender_holds_a_bounded_amount_of_a_phase_whatever_the_peer_lacks",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("1 passed"),
            "the measuring child ran no test: {stdout}"
        );
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // An inviter holding 96 MiB of eager blobs, and a fresh joiner that asks for all of them and
    // then reads nothing for a while (a slow link, or a peer busy storing).
    let victim = Peer::new("inviter");
    let exp = victim.create_experiment("e");
    let run = victim.create_run(exp, "checkpoints");
    let mut hashes = Vec::new();
    for i in 0..BLOBS {
        let mut bytes = vec![0u8; 1 << 20];
        bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
        victim.add_artifact(run, &format!("ckpt/{i}.bin"), &bytes);
        hashes.push(*blake3::hash(&bytes).as_bytes());
    }
    let (catalog, metrics) = victim.with(|s| {
        (
            s.catalog_manifest().unwrap().1,
            s.metrics_manifest().unwrap().1,
        )
    });
    let traces = victim.with(|s| s.traces_manifest().unwrap().1);
    let audit = victim.with(|s| s.audit_manifest().unwrap().1);
    let before = rss_mib();
    let grown = rt.block_on(async move {
        let (x, y) = tokio::io::duplex(64 * 1024);
        let (xr, xw) = tokio::io::split(x);
        let session =
            tokio::spawn(
                async move { run_session(&victim.stores, "joiner", Link::new(xr, xw)).await },
            );
        // The joiner's reading half stays open (and unread) until the end.
        let (_unread, mut yw) = tokio::io::split(y);
        for m in [
            Msg::Hello {
                version: VERSION,
                catalog,
                metrics,
                traces,
                audit,
                blobs: [9; 32],
            },
            Msg::BlobList(Vec::new()),
            Msg::BlobWant(hashes),
        ] {
            write_frame(&mut yw, &m.encode()).await.unwrap();
        }
        // Reads nothing for three seconds: whatever the inviter queues meanwhile stays queued.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let grown = rss_mib() - before;
        session.abort();
        grown
    });
    assert!(
        grown < 64.0,
        "the inviter's memory grew by {grown:.0} MiB while a joiner that lacks {BLOBS} MiB of blobs read nothing"
    );
}
