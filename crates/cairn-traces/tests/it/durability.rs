//! Real files: reopening, `kill -9` of a writer, corrupt chunks, a newer schema.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use cairn_traces::{Error, TraceId, TraceStore};
use rusqlite::Connection;

use crate::{span, span_entry, trace_entries, trace_id};

#[test]
fn reopening_keeps_the_log_the_index_and_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    let source = {
        let mut store = TraceStore::open(&path).unwrap();
        for t in 1..=30u8 {
            store
                .append(&trace_entries(t, 50, u64::from(t) * 10))
                .unwrap();
        }
        store.local_source().to_owned()
    };
    let store = TraceStore::open(&path).unwrap();
    assert_eq!(store.local_source(), source);
    assert_eq!(store.marks().unwrap()[0].count, 1500);
    for t in 1..=30u8 {
        assert_eq!(store.spans(&trace_id(t)).unwrap().len(), 50, "trace {t}");
    }
}

#[test]
fn a_corrupt_chunk_is_an_error_naming_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    {
        let mut store = TraceStore::open(&path).unwrap();
        store.append(&trace_entries(1, 200, 10)).unwrap();
        store.seal().unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let data: Vec<u8> = conn
        .query_row("SELECT data FROM chunks LIMIT 1", [], |r| r.get(0))
        .unwrap();
    let mut bad = data.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    conn.execute("UPDATE chunks SET data = ?1", [&bad]).unwrap();
    let store = TraceStore::open(&path).unwrap();
    let err = store.spans(&trace_id(1)).unwrap_err();
    assert!(matches!(err, Error::CorruptChunk { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains(trace_id(1).as_str()) && text.contains("hash mismatch"),
        "{text}"
    );
    // The index still answers what it holds.
    assert_eq!(store.info(&trace_id(1)).unwrap().unwrap().span_count, 200);
}

#[test]
fn a_database_from_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    drop(TraceStore::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE meta SET value = 99 WHERE name = 'schema_version'",
            [],
        )
        .unwrap();
    let err = TraceStore::open(&path).unwrap_err();
    assert!(
        matches!(err, Error::SchemaTooNew { found: 99, .. }),
        "{err}"
    );
}

#[test]
fn a_version_1_database_gains_the_trace_text_index_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    let mut store = TraceStore::open(&path).unwrap();
    store.append(&trace_entries(1, 3, 1000)).unwrap();
    store.append(&trace_entries(2, 3, 2000)).unwrap();
    drop(store);
    // What version 1 held: span text a span a row, no trace-level text index.
    let conn = Connection::open(&path).unwrap();
    to_version_2_span_text(&conn);
    conn.execute_batch(
        "DROP TABLE trace_text; UPDATE meta SET value = 1 WHERE name = 'schema_version';",
    )
    .unwrap();
    drop(conn);
    let store = TraceStore::open(&path).unwrap();
    let (found, _) = store
        .search(&cairn_traces::Search {
            text: Some(trace_id(2).as_str()[5..17].to_owned()),
            limit: 10,
            ..cairn_traces::Search::default()
        })
        .unwrap();
    assert_eq!(
        found.iter().map(|t| t.trace_id.clone()).collect::<Vec<_>>(),
        vec![trace_id(2)]
    );
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 3);
}

/// Turns `span_text` back into version 2's layout (one row per span, its row id `spans.id`),
/// each span's text its name and a line naming the span (`legacy text of span <trace row>/<first
/// byte of its id>`).
fn to_version_2_span_text(conn: &Connection) {
    conn.execute_batch(
        "CREATE VIRTUAL TABLE span_text_v2 USING fts5(text, tokenize = 'trigram', detail = 'none');
         INSERT INTO span_text_v2 (rowid, text)
             SELECT id, name || char(10) || 'legacy text of span ' || trace || '/' || hex(substr(span_id, 1, 1))
             FROM spans;
         DROP TABLE span_text;
         ALTER TABLE span_text_v2 RENAME TO span_text;
         UPDATE meta SET value = 2 WHERE name = 'schema_version';",
    )
    .unwrap();
}

#[test]
fn a_version_2_database_gets_its_span_text_regrouped_by_trace_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.db");
    let mut store = TraceStore::open(&path).unwrap();
    for t in 1..=3u8 {
        store
            .append(&trace_entries(t, 3, u64::from(t) * 1000))
            .unwrap();
    }
    drop(store);
    to_version_2_span_text(&Connection::open(&path).unwrap());

    let mut store = TraceStore::open(&path).unwrap();
    let found = |store: &TraceStore, filter: &str| -> Vec<TraceId> {
        let (page, _) = store
            .search(&cairn_traces::Search {
                filter: Some(filter.into()),
                limit: 10,
                ..cairn_traces::Search::default()
            })
            .unwrap();
        page.into_iter().map(|t| t.trace_id).collect()
    };
    assert_eq!(
        found(&store, "trace.text LIKE '%LEGACY TEXT OF SPAN 3/03%'"),
        vec![trace_id(3)]
    );
    assert_eq!(
        found(&store, "span.content LIKE 'child-2%legacy%'").len(),
        3
    );
    assert!(
        found(&store, "trace.text LIKE 'root-2%child-1%'").is_empty(),
        "two spans"
    );
    // Spans appended after the upgrade are found beside the upgraded ones.
    let mut later = span(2, 9, Some(1), "late-step", 2050, 2060);
    later.attributes.clear();
    store.append(&[span_entry(2050, later)]).unwrap();
    assert_eq!(
        found(&store, "span.content LIKE 'late-step'"),
        vec![trace_id(2)]
    );
    assert_eq!(
        found(&store, "trace.text LIKE '%span 2/02'"),
        vec![trace_id(2)]
    );
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM span_text", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4, "a row per trace, and one for the later append");
    for table in ["span_text_config", "trace_text_config"] {
        let merge: i64 = conn
            .query_row(
                &format!("SELECT v FROM {table} WHERE k = 'automerge'"),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(merge, 16, "{table}");
    }
    let version: i64 = conn
        .query_row(
            "SELECT value FROM meta WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 3);
}

/// In child mode (env var set) this test appends traces forever and reports each returned
/// append on stdout; in parent mode it runs itself as that child, kills it with SIGKILL
/// mid-stream, and checks that every reported trace survived whole.
#[test]
fn acknowledged_spans_survive_kill_9() {
    if let Some(db) = std::env::var_os("CAIRN_TRACES_KILL9_DB") {
        let mut store = TraceStore::open(Path::new(&db)).unwrap();
        let mut out = std::io::stdout().lock();
        for t in 1..=250u8 {
            store.append(&trace_entries(t, 40, u64::from(t))).unwrap();
            writeln!(out, "appended {t}").unwrap();
            out.flush().unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("traces.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "durability::acknowledged_spans_survive_kill_9",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CAIRN_TRACES_KILL9_DB", &db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reported = 0u8;
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if let Some(n) = line.unwrap().strip_prefix("appended ") {
            reported = n.parse().unwrap();
            if reported >= 60 {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(reported >= 60, "child reported only {reported} appends");
    let store = TraceStore::open(&db).unwrap();
    for t in 1..=reported {
        let spans = store.spans(&trace_id(t)).unwrap();
        assert_eq!(spans.len(), 40, "trace {t} was acknowledged");
        let info = store.info(&trace_id(t)).unwrap().unwrap();
        assert_eq!(info.span_count, 40);
    }
    // Whatever came after is whole or absent, never half there.
    let count = store.marks().unwrap()[0].count;
    assert_eq!(count % 40, 0, "a half-applied append: {count} entries");
}
