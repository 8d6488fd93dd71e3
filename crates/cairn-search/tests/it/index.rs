//! The index on disk: built, reopened, and rebuilt when missing, outdated or corrupt.

use std::path::Path;

use cairn_model::{ExperimentId, Run};
use cairn_search::{Health, IndexedRun, SearchError, SearchIndex};

use crate::{page, run_in};

fn items(runs: &[Run]) -> Vec<IndexedRun<'_>> {
    runs.iter()
        .map(|run| IndexedRun {
            run,
            experiment_name: "e",
            cost: None,
            review: None,
        })
        .collect()
}

fn fixture() -> Vec<Run> {
    let exp = ExperimentId::new();
    (0..50).map(|i| run_in(exp, i)).collect()
}

/// Opens `dir`, rebuilding from `runs` if needed; returns what open found.
fn open(dir: &Path, runs: &[Run]) -> (SearchIndex, Health) {
    let mut called = false;
    let (idx, health) = SearchIndex::open_or_rebuild(dir, || {
        called = true;
        items(runs)
    })
    .unwrap();
    assert_eq!(called, health != Health::Ready, "{health:?}");
    (idx, health)
}

fn needs_rebuild(health: &Health, reason: &str) {
    match health {
        Health::NeedsRebuild(r) => assert!(r.contains(reason), "{r}"),
        other => panic!("expected a rebuild for {reason}, got {other:?}"),
    }
}

#[test]
fn an_index_is_built_once_and_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    let (idx, health) = open(dir.path(), &runs);
    needs_rebuild(&health, "no index yet");
    assert_eq!(idx.len(), 50);
    drop(idx);
    let (idx, health) = open(dir.path(), &runs);
    assert_eq!(health, Health::Ready);
    assert_eq!(page(&idx, "owner:alice", "", 100, 0).total, 25);
}

#[test]
fn a_corrupt_meta_file_is_rebuilt_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    drop(open(dir.path(), &runs));
    std::fs::write(dir.path().join("meta.json"), b"{ not json").unwrap();
    let (idx, health) = open(dir.path(), &runs);
    needs_rebuild(&health, "unreadable");
    assert_eq!(page(&idx, "owner:bob", "", 100, 0).total, 25);
    drop(idx);
    assert_eq!(open(dir.path(), &runs).1, Health::Ready);
}

/// Every segment file of the index in `dir`.
fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.len() > 32 && n.as_bytes()[32] == b'.')
        })
        .collect();
    files.sort();
    files
}

#[test]
fn damaged_or_missing_segment_files_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    drop(open(dir.path(), &runs));
    let mut reasons = Vec::new();
    // Each file of the segment in turn: flip bytes in its middle (checksums or decoding catch
    // it), then open.
    for i in 0.. {
        let files = segment_files(dir.path());
        let Some(f) = files.get(i) else { break };
        let mut bytes = std::fs::read(f).unwrap();
        let (mid, len) = (bytes.len() / 2, bytes.len());
        for b in &mut bytes[mid.saturating_sub(4)..(mid + 4).min(len)] {
            *b ^= 0xa5;
        }
        std::fs::write(f, bytes).unwrap();
        let (idx, health) = open(dir.path(), &runs);
        let Health::NeedsRebuild(reason) = health else {
            panic!("{} damaged, yet the index opened", f.display());
        };
        reasons.push(reason);
        assert_eq!(page(&idx, "owner:alice", "", 100, 0).total, 25);
    }
    assert!(reasons.len() >= 5, "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("corrupt file")),
        "{reasons:?}"
    );

    let files = segment_files(dir.path());
    std::fs::remove_file(&files[0]).unwrap();
    let (idx, health) = open(dir.path(), &runs);
    needs_rebuild(&health, "unreadable");
    assert_eq!(page(&idx, "", "", 100, 0).total, 50);
}

#[test]
fn an_index_of_another_schema_version_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    drop(open(dir.path(), &runs));
    let meta = dir.path().join("meta.json");
    let text = std::fs::read_to_string(&meta).unwrap();
    assert!(text.contains("schema_version\\\":5"), "{text}");
    std::fs::write(
        &meta,
        text.replace("schema_version\\\":5", "schema_version\\\":0"),
    )
    .unwrap();
    let (_, health) = open(dir.path(), &runs);
    needs_rebuild(&health, "schema version 0");
}

#[test]
fn an_interrupted_rebuild_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    let (mut idx, health) = SearchIndex::open(dir.path()).unwrap();
    needs_rebuild(&health, "no index yet");
    // Some runs arrive and are committed, but the rebuild never happens (the process dies).
    idx.upsert(&items(&runs[..3])).unwrap();
    idx.commit().unwrap();
    drop(idx);
    let (idx, health) = open(dir.path(), &runs);
    needs_rebuild(&health, "no schema version");
    assert_eq!(idx.len(), 50);
}

#[test]
fn files_that_are_not_an_index_are_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("thesis.tex");
    std::fs::write(&mine, b"precious").unwrap();
    let err = SearchIndex::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, SearchError::NotAnIndex { ref file, .. } if file == "thesis.tex"),
        "{err}"
    );
    assert_eq!(std::fs::read(&mine).unwrap(), b"precious");
}

#[test]
fn two_handles_on_one_directory_take_turns_writing() {
    let dir = tempfile::tempdir().unwrap();
    let runs = fixture();
    let (mut a, _) = open(dir.path(), &runs[..10]);
    let (mut b, health) = open(dir.path(), &runs[..10]);
    assert_eq!(health, Health::Ready);
    a.upsert(&items(&runs[10..20])).unwrap();
    a.commit().unwrap();
    b.upsert(&items(&runs[20..30])).unwrap();
    b.commit().unwrap();
    assert_eq!(b.len(), 30);
    assert_eq!(page(&b, "owner:alice", "", 100, 0).total, 15);
}

#[test]
fn processes_opening_a_missing_index_at_once_do_not_wipe_each_other() {
    // Four `cairn search`es on a workspace without an index used to fail with "No such file or
    // directory": each found the others' half-built index unfinished and wiped it.
    let exp = ExperimentId::new();
    let runs: Vec<Run> = (0..2_000).map(|i| run_in(exp, i)).collect();
    let dir = tempfile::tempdir().unwrap();
    let index_dir = dir.path().join("index");
    for round in 0..3 {
        if index_dir.exists() {
            std::fs::remove_dir_all(&index_dir).unwrap();
        }
        let rebuilt = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        let (idx, health) =
                            SearchIndex::open_or_rebuild(&index_dir, || items(&runs))?;
                        Ok::<_, SearchError>((idx.len(), health != Health::Ready))
                    })
                })
                .collect();
            let mut rebuilt = 0;
            for h in handles {
                let (len, did_rebuild) = h.join().unwrap().unwrap_or_else(|e| {
                    panic!("round {round}: an open failed: {e}");
                });
                assert_eq!(len, 2_000, "round {round}");
                rebuilt += usize::from(did_rebuild);
            }
            rebuilt
        });
        assert_eq!(
            rebuilt, 1,
            "round {round}: one opener rebuilds, the others wait for it"
        );
    }
}
