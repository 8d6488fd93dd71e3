//! Real files: reopening, `kill -9` of a writer, two writers at once, corrupt and truncated
//! chunks, and a database from a newer schema.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;

use cairn_metrics::{DecodeError, Error, MetricStore, Point};
use rusqlite::Connection;

use crate::{RUN, Rng, loss_curve, same_points};

#[test]
fn reopening_keeps_tail_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    let points = loss_curve(0, 30_123, &mut Rng(7));
    {
        let mut store = MetricStore::open(&path).unwrap();
        store.append(RUN, "loss", &points[..30_000]).unwrap();
        store.append(RUN, "loss", &points[30_000..]).unwrap();
        store.append(RUN, "acc", &points[..10]).unwrap();
    }
    let store = MetricStore::open(&path).unwrap();
    assert!(same_points(&store.history(RUN, "loss").unwrap(), &points));
    assert!(same_points(
        &store.history(RUN, "acc").unwrap(),
        &points[..10]
    ));
    let info = store.series_info(RUN, "loss").unwrap().unwrap();
    assert_eq!(info.count, 30_123);
    assert_eq!(info.last, points.last().copied());
    let stats = store.storage_stats().unwrap();
    assert!(stats.points > 0 && stats.tail_points > 0);
}

/// In child mode (env var set) this test appends forever and reports each returned append on
/// stdout; in parent mode it runs itself as that child, kills it with SIGKILL mid-stream, and
/// checks that every reported append survived and that no append was half-applied.
#[test]
fn appends_survive_kill_9() {
    const BATCH: usize = 2_500;
    if let Some(db) = std::env::var_os("CAIRN_METRICS_KILL9_DB") {
        let mut store = MetricStore::open(Path::new(&db)).unwrap();
        let points = loss_curve(0, 1_000_000, &mut Rng(9));
        let mut out = std::io::stdout().lock();
        for (i, batch) in points.chunks(BATCH).enumerate() {
            store.append(RUN, "loss", batch).unwrap();
            writeln!(out, "appended {}", i + 1).unwrap();
            out.flush().unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metrics.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::appends_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAIRN_METRICS_KILL9_DB", &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reported = 0;
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            reported = n.parse::<usize>().unwrap();
            if reported >= 40 {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(reported >= 40, "child reported only {reported} appends");

    let store = MetricStore::open(&db).unwrap();
    let history = store.history(RUN, "loss").unwrap();
    assert!(
        history.len() >= reported * BATCH,
        "{} points after {reported} appends",
        history.len()
    );
    assert_eq!(history.len() % BATCH, 0, "an append was half-applied");
    let expected = loss_curve(0, history.len(), &mut Rng(9));
    assert!(same_points(&history, &expected));
}

#[test]
fn two_writers_on_one_database_do_not_corrupt_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    MetricStore::open(&path).unwrap();
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let path = path.clone();
            thread::spawn(move || {
                let mut store = MetricStore::open(&path).unwrap();
                for i in 0..150i64 {
                    // Both append to the shared series, with tail rows and, now and then, chunks.
                    let n = if i % 50 == 49 { 9_000 } else { 37 };
                    let batch: Vec<Point> = (0..n)
                        .map(|j| Point {
                            step: i,
                            ts_ms: w,
                            value: (w * 1_000_000 + i * 10_000 + j) as f64,
                        })
                        .collect();
                    store.append(RUN, "shared", &batch).unwrap();
                    store.append(RUN, &format!("own-{w}"), &batch[..1]).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let store = MetricStore::open(&path).unwrap();
    let history = store.history(RUN, "shared").unwrap();
    let per_writer = 147 * 37 + 3 * 9_000;
    assert_eq!(history.len(), 2 * per_writer);
    // Each writer's points appear complete and in its own order.
    for w in 0..2 {
        let mine: Vec<f64> = history
            .iter()
            .filter(|p| p.ts_ms == w)
            .map(|p| p.value)
            .collect();
        assert_eq!(mine.len(), per_writer);
        assert!(mine.windows(2).all(|v| v[0] < v[1]));
    }
    assert_eq!(store.series(RUN).unwrap().len(), 3);
}

fn corrupt_setup(dir: &Path) -> (std::path::PathBuf, Vec<Point>) {
    let path = dir.join("metrics.db");
    let points = loss_curve(0, 100_000, &mut Rng(11));
    let mut store = MetricStore::open(&path).unwrap();
    store.append(RUN, "train/loss", &points).unwrap();
    store.seal_run(RUN).unwrap();
    (path, points)
}

/// Runs `sql` against the chunk at seq 40960 with `data` bound as ?1 (the old data, modified by
/// `f`) and `hash` as ?2 (BLAKE3 of the modified data).
fn tamper(path: &Path, sql: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let conn = Connection::open(path).unwrap();
    let mut data: Vec<u8> = conn
        .query_row("SELECT data FROM chunks WHERE first_seq = 40960", [], |r| {
            r.get(0)
        })
        .unwrap();
    f(&mut data);
    let hash = blake3::hash(&data);
    let changed = conn
        .execute(sql, rusqlite::params![data, hash.as_bytes().as_slice()])
        .unwrap();
    assert_eq!(changed, 1);
}

#[test]
fn a_flipped_byte_is_an_error_naming_the_series_and_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let (path, points) = corrupt_setup(dir.path());
    tamper(
        &path,
        "UPDATE chunks SET data = ?1 WHERE first_seq = 40960 AND ?2 IS NOT NULL",
        |d| {
            let mid = d.len() / 2;
            d[mid] ^= 0x10;
        },
    );
    let store = MetricStore::open(&path).unwrap();
    let err = store.history(RUN, "train/loss").unwrap_err();
    match &err {
        Error::CorruptChunk {
            series,
            first_seq,
            source,
        } => {
            assert_eq!(series, &format!("{RUN}/train/loss"));
            assert_eq!(*first_seq, 40960);
            assert!(matches!(source, DecodeError::HashMismatch { .. }));
        }
        other => panic!("unexpected error {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("{RUN}/train/loss")) && message.contains("40960"),
        "{message}"
    );
    // Pages that avoid the chunk still read; a page that touches it fails.
    assert_eq!(
        store.history_page(RUN, "train/loss", 0, 100).unwrap().len(),
        100
    );
    assert!(
        store
            .history_page(RUN, "train/loss", 40_000, 2_000)
            .is_err()
    );
    // Zoomed in on the chunk, downsampling decodes it and fails; at 100 buckets it reads only
    // summaries and still works (which also shows it decodes nothing).
    assert!(
        store
            .downsample(RUN, "train/loss", Some((41_000, 41_100)), 50)
            .is_err()
    );
    let buckets = store.downsample(RUN, "train/loss", None, 100).unwrap();
    assert_eq!(
        buckets.iter().map(|b| b.count).sum::<u64>(),
        points.len() as u64
    );
}

#[test]
fn truncated_or_garbled_data_with_a_matching_hash_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = corrupt_setup(dir.path());
    let update = "UPDATE chunks SET data = ?1, hash = ?2 WHERE first_seq = 40960";
    for cut in [1, 7, 100] {
        tamper(&path, update, |d| d.truncate(d.len() - cut));
        let err = MetricStore::open(&path)
            .unwrap()
            .history(RUN, "train/loss")
            .unwrap_err();
        assert!(
            matches!(
                &err,
                Error::CorruptChunk {
                    source: DecodeError::Truncated(_),
                    ..
                }
            ),
            "{err}"
        );
    }
    // Every single-byte change of the header and of some body bytes: an error or, where the
    // change happens to be self-consistent, points; never a panic.
    for at in [0, 1, 2, 3, 4, 5, 6, 20, 500] {
        for mask in [0x01, 0x80, 0xff] {
            tamper(&path, update, |d| d[at] ^= mask);
            let _readable = MetricStore::open(&path)
                .unwrap()
                .history(RUN, "train/loss")
                .is_ok();
        }
    }
    tamper(&path, update, |d| d.clear());
    assert!(
        MetricStore::open(&path)
            .unwrap()
            .history(RUN, "train/loss")
            .is_err()
    );
}

#[test]
fn damaged_block_summaries_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = corrupt_setup(dir.path());
    let conn = Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE chunks SET blocks = substr(blocks, 1, 100) WHERE first_seq = 40960",
        [],
    )
    .unwrap();
    let store = MetricStore::open(&path).unwrap();
    let err = store.downsample(RUN, "train/loss", None, 100).unwrap_err();
    assert!(err.to_string().contains("40960"), "{err}");
    // The points themselves are intact.
    assert_eq!(store.history(RUN, "train/loss").unwrap().len(), 100_000);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    MetricStore::open(&path).unwrap();
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    let err = MetricStore::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}
