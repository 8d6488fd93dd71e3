//! Integration tests of the catalog: docs in SQLite, projections, several writers, conflicts.

mod cost;
mod evals;
mod history;
mod logged_models;
mod notebooks;
mod notes;

use cairn_catalog::{Catalog, Error, RunEdit, RunFilter, RunOrder, SHARD_CAPACITY};
use cairn_model::{
    CodeVersion, DatasetSnapshot, Experiment, ExperimentId, MetricSummary, Run, RunId, RunStatus,
};

fn experiment(name: &str) -> Experiment {
    Experiment {
        id: ExperimentId::new(),
        name: name.into(),
        created_ms: 1,
        description: None,
        tags: Default::default(),
        schema: None,
        deleted: false,
    }
}

fn run_in(exp: &Experiment, i: u64) -> Run {
    let mut run = Run::new(
        RunId::from_parts(1_700_000_000_000 + i, i as u128),
        exp.id,
        format!("trial-{i}"),
        1_700_000_000_000 + i as i64,
    );
    run.owner = Some(if i.is_multiple_of(2) { "alice" } else { "bob" }.into());
    run.params
        .insert("lr".into(), format!("{}", 0.001 * (i + 1) as f64));
    run.params.insert("optimizer".into(), "adam".into());
    run.tags.insert("team".into(), "vision".into());
    run.lineage.code = Some(CodeVersion {
        commit: Some(format!("{i:040x}")),
        branch: Some("main".into()),
        ..Default::default()
    });
    run.lineage.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            digest: Some(format!("blake3:{i:064x}")),
            rows: Some(50_000),
            ..Default::default()
        },
    );
    run
}

#[test]
fn runs_round_trip_through_docs_and_projections() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    let exp = experiment("resnet");
    cat.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 1);
    cat.create_runs(std::slice::from_ref(&run)).unwrap();

    assert_eq!(cat.run(run.id).unwrap().unwrap(), run);
    assert_eq!(cat.run_from_doc(run.id).unwrap(), run);

    let summary = MetricSummary {
        last: 0.25,
        step: 10,
        ts_ms: 5,
        min: Some(0.2),
        max: Some(2.0),
        count: 11,
    };
    let updated = cat
        .update_run(
            run.id,
            &[
                RunEdit::Param("epochs".into(), "10".into()),
                RunEdit::Tag("stage".into(), "baseline".into()),
                RunEdit::Metric("loss".into(), summary),
                RunEdit::Status {
                    status: RunStatus::Finished,
                    end_ms: Some(99),
                },
            ],
        )
        .unwrap();
    assert_eq!(updated.params["epochs"], "10");
    assert_eq!(updated.tags["stage"], "baseline");
    assert_eq!(updated.metrics["loss"], summary);
    assert_eq!(updated.status, RunStatus::Finished);
    assert_eq!(cat.run_from_doc(run.id).unwrap(), updated);

    let rows = cat.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].experiment_name, "resnet");
    assert_eq!(rows[0].metrics["loss"], 0.25);
}

#[test]
fn experiment_names_are_unique_and_unknown_runs_are_named() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    cat.create_experiment(&experiment("a")).unwrap();
    let err = cat.create_experiment(&experiment("a")).unwrap_err();
    assert!(
        matches!(err, Error::DuplicateExperiment(ref n) if n == "a"),
        "{err}"
    );
    let ghost = RunId::new();
    let err = cat
        .update_run(ghost, &[RunEdit::Name("x".into())])
        .unwrap_err();
    assert_eq!(err.to_string(), format!("no run {ghost}"));
}

#[test]
fn runs_split_into_shards_past_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let mut cat = Catalog::open(&path, "test").unwrap();
    let exp = experiment("sweep");
    cat.create_experiment(&exp).unwrap();
    let n = SHARD_CAPACITY as u64 * 2 + 10;
    let runs: Vec<Run> = (0..n).map(|i| run_in(&exp, i)).collect();
    cat.create_runs(&runs).unwrap();
    let shards: Vec<String> = cat
        .doc_names()
        .unwrap()
        .into_iter()
        .filter(|d| d != "team")
        .collect();
    assert_eq!(shards.len(), 3);
    assert_eq!(
        cat.count_runs(&RunFilter {
            experiment: Some(exp.id),
            ..Default::default()
        })
        .unwrap(),
        n
    );
    // Every run is readable from its doc after a reopen.
    drop(cat);
    let mut cat = Catalog::open(&path, "test").unwrap();
    for run in runs.iter().step_by(397) {
        assert_eq!(&cat.run_from_doc(run.id).unwrap(), run);
    }
}

#[test]
fn projections_rebuild_from_the_docs() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let runs: Vec<Run> = (0..20).map(|i| run_in(&exp, i)).collect();
    cat.create_runs(&runs).unwrap();
    cat.update_run(runs[3].id, &[RunEdit::Owner(Some("carol".into()))])
        .unwrap();
    let before = cat.list_runs(&RunFilter::default()).unwrap();
    assert_eq!(cat.rebuild_projections().unwrap(), 20);
    assert_eq!(cat.list_runs(&RunFilter::default()).unwrap(), before);
    let carol = cat
        .list_runs(&RunFilter {
            owner: Some("carol".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(carol.len(), 1);
}

#[test]
fn two_handles_on_one_file_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let mut a = Catalog::open(&path, "app").unwrap();
    let mut b = Catalog::open(&path, "job").unwrap();
    let exp = experiment("shared");
    a.create_experiment(&exp).unwrap();
    let r1 = run_in(&exp, 1);
    b.create_runs(std::slice::from_ref(&r1)).unwrap();
    let r2 = run_in(&exp, 2);
    a.create_runs(std::slice::from_ref(&r2)).unwrap();
    // Interleaved edits of different fields of the same run through both handles.
    for i in 0..300 {
        let (h, key) = if i % 2 == 0 {
            (&mut a, "from_a")
        } else {
            (&mut b, "from_b")
        };
        h.update_run(r1.id, &[RunEdit::Tag(format!("{key}_{i}"), i.to_string())])
            .unwrap();
    }
    let seen_by_a = a.run_from_doc(r1.id).unwrap();
    let seen_by_b = b.run_from_doc(r1.id).unwrap();
    assert_eq!(seen_by_a.tags.len(), 301);
    assert_eq!(seen_by_a, seen_by_b);
    assert_eq!(a.count_runs(&RunFilter::default()).unwrap(), 2);
    // Both handles compacted along the way (256 changes) and a fresh handle reads it all.
    let mut c = Catalog::open(&path, "reader").unwrap();
    assert_eq!(c.run_from_doc(r1.id).unwrap().tags.len(), 301);
    assert!(c.compact_all().unwrap() >= 1);
    assert_eq!(a.run_from_doc(r1.id).unwrap().tags.len(), 301);
}

#[test]
fn concurrent_edits_of_one_field_are_kept_as_a_conflict() {
    let mut laptop = Catalog::open_in_memory("alice").unwrap();
    let exp = experiment("e");
    laptop.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 7);
    laptop.create_runs(std::slice::from_ref(&run)).unwrap();
    let shard = laptop
        .doc_names()
        .unwrap()
        .into_iter()
        .find(|d| d != "team")
        .unwrap();

    // A second device gets a copy, then both edit the same fields offline.
    let mut gpu_box = Catalog::open_in_memory("bob").unwrap();
    gpu_box
        .import_changes("team", &laptop.export_doc("team").unwrap())
        .unwrap();
    gpu_box
        .import_changes(&shard, &laptop.export_doc(&shard).unwrap())
        .unwrap();
    assert_eq!(gpu_box.run(run.id).unwrap().unwrap(), run);

    laptop
        .update_run(
            run.id,
            &[
                RunEdit::Name("lr-warmup".into()),
                RunEdit::Param("seed".into(), "1".into()),
            ],
        )
        .unwrap();
    gpu_box
        .update_run(
            run.id,
            &[
                RunEdit::Name("cosine".into()),
                RunEdit::Param("seed".into(), "2".into()),
            ],
        )
        .unwrap();

    // They meet: each merges the other's doc.
    let from_box = gpu_box.export_doc(&shard).unwrap();
    let from_laptop = laptop.export_doc(&shard).unwrap();
    laptop.import_changes(&shard, &from_box).unwrap();
    gpu_box.import_changes(&shard, &from_laptop).unwrap();

    let a = laptop.run(run.id).unwrap().unwrap();
    let b = gpu_box.run(run.id).unwrap().unwrap();
    assert_eq!(a, b, "both sides converge");
    let fields: Vec<&str> = a.conflicts.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["name", "params.seed"]);
    let names: Vec<String> = a.conflicts[0]
        .values
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"lr-warmup".to_owned()) && names.contains(&"cosine".to_owned()));
    assert_eq!(names[0], a.name, "the shown value comes first");
}

#[test]
fn listing_orders_by_metric_and_pages() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let runs: Vec<Run> = (0..10).map(|i| run_in(&exp, i)).collect();
    cat.create_runs(&runs).unwrap();
    for (i, r) in runs.iter().enumerate() {
        if i == 4 {
            continue;
        }
        let s = MetricSummary {
            last: i as f64 / 10.0,
            step: 1,
            ts_ms: 1,
            min: None,
            max: None,
            count: 1,
        };
        cat.update_run(r.id, &[RunEdit::Metric("acc".into(), s)])
            .unwrap();
    }
    let filter = RunFilter {
        order: RunOrder::Metric {
            key: "acc".into(),
            descending: true,
        },
        limit: Some(3),
        ..Default::default()
    };
    let page: Vec<String> = cat
        .list_runs(&filter)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(page, ["trial-9", "trial-8", "trial-7"]);
    let last = cat
        .list_runs(&RunFilter {
            offset: 9,
            ..filter
        })
        .unwrap();
    assert_eq!(last[0].name, "trial-4", "runs without the metric come last");
}

#[test]
fn run_prefixes_resolve_or_say_why_not() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let runs: Vec<Run> = (0..3).map(|i| run_in(&exp, i)).collect();
    cat.create_runs(&runs).unwrap();
    let id = runs[1].id.to_string();
    assert_eq!(cat.resolve_run(&id).unwrap(), runs[1].id);
    assert_eq!(cat.resolve_run(&id[..28]).unwrap(), runs[1].id);
    assert!(matches!(
        cat.resolve_run(&id[..4]),
        Err(Error::AmbiguousRun { .. })
    ));
    assert!(matches!(cat.resolve_run("zz"), Err(Error::NoRunMatches(_))));
}

#[test]
fn a_file_that_is_not_a_catalog_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    std::fs::write(
        &path,
        b"this is not sqlite, just some bytes that are long enough to matter......",
    )
    .unwrap();
    let err = Catalog::open(&path, "t").unwrap_err();
    assert!(err.to_string().contains("catalog database"), "{err}");
}

#[test]
fn an_older_catalog_gets_the_new_indexes_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let mut cat = Catalog::open(&path, "t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    cat.create_runs(&[run_in(&exp, 1)]).unwrap();
    drop(cat);
    // As a catalog of the first schema revision left it: without the lifecycle index.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX runs_deleted; UPDATE meta SET value = '1' WHERE key = 'schema';",
    )
    .unwrap();
    drop(conn);
    let cat = Catalog::open(&path, "t").unwrap();
    assert_eq!(cat.count_runs(&RunFilter::default()).unwrap(), 1);
    drop(cat);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'runs_deleted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 1, "the index is back");
}

#[test]
fn run_counts_per_experiment_leave_out_deleted_runs() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    let (a, b, empty) = (experiment("a"), experiment("b"), experiment("empty"));
    for e in [&a, &b, &empty] {
        cat.create_experiment(e).unwrap();
    }
    let runs: Vec<Run> = (0..5)
        .map(|i| run_in(&a, i))
        .chain((5..8).map(|i| run_in(&b, i)))
        .collect();
    cat.create_runs(&runs).unwrap();
    cat.update_run(runs[0].id, &[RunEdit::Deleted(true)])
        .unwrap();
    let counts = cat.run_counts().unwrap();
    assert_eq!(counts.get(&a.id), Some(&4));
    assert_eq!(counts.get(&b.id), Some(&3));
    assert_eq!(counts.get(&empty.id), None);
    for e in [&a, &b] {
        let filter = RunFilter {
            experiment: Some(e.id),
            ..Default::default()
        };
        assert_eq!(Some(&cat.count_runs(&filter).unwrap()), counts.get(&e.id));
    }
}

#[test]
fn a_catalog_from_an_older_revision_gets_the_new_indexes_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let exp = experiment("e");
    {
        let mut cat = Catalog::open(&path, "t").unwrap();
        cat.create_experiment(&exp).unwrap();
        cat.create_runs(&[run_in(&exp, 1), run_in(&exp, 2)])
            .unwrap();
    }
    // What a catalog written before runs_experiment_live looked like.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX runs_experiment_live; UPDATE meta SET value = '5' WHERE key = 'schema';",
        )
        .unwrap();
    }
    let cat = Catalog::open(&path, "t").unwrap();
    assert_eq!(cat.run_counts().unwrap().get(&exp.id), Some(&2));
}

fn blob(n: u8) -> cairn_model::ArtifactRef {
    cairn_model::ArtifactRef {
        hash: cairn_model::BlobHash([n; 32]),
        size: u64::from(n),
        kind: if n.is_multiple_of(2) {
            cairn_model::ArtifactKind::Dir
        } else {
            cairn_model::ArtifactKind::File
        },
    }
}

#[test]
fn blob_bindings_follow_the_runs_artifacts_and_their_deletion() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let (a, b) = (run_in(&exp, 1), run_in(&exp, 2));
    cat.create_runs(&[a.clone(), b.clone()]).unwrap();
    cat.update_run(
        a.id,
        &[
            RunEdit::Artifact("model".into(), blob(2)),
            RunEdit::Artifact(".env".into(), blob(3)),
        ],
    )
    .unwrap();
    cat.update_run(b.id, &[RunEdit::Artifact("copy".into(), blob(3))])
        .unwrap();
    let of = |cat: &Catalog, n: u8| -> Vec<(RunId, String, bool)> {
        cat.bindings_of_blob(&cairn_model::BlobHash([n; 32]))
            .unwrap()
            .into_iter()
            .map(|b| (b.run, b.path, b.run_deleted))
            .collect()
    };
    let mut both = vec![
        (a.id, ".env".to_owned(), false),
        (b.id, "copy".to_owned(), false),
    ];
    both.sort();
    assert_eq!(of(&cat, 3), both);
    assert_eq!(cat.blob_bindings().unwrap().len(), 3);
    // Unbinding removes the row; deleting the run flags it; restoring unflags it.
    cat.update_run(a.id, &[RunEdit::DeleteArtifact(".env".into())])
        .unwrap();
    assert_eq!(of(&cat, 3), vec![(b.id, "copy".to_owned(), false)]);
    cat.update_run(b.id, &[RunEdit::Deleted(true)]).unwrap();
    assert_eq!(of(&cat, 3), vec![(b.id, "copy".to_owned(), true)]);
    cat.update_run(b.id, &[RunEdit::Deleted(false)]).unwrap();
    assert_eq!(of(&cat, 3), vec![(b.id, "copy".to_owned(), false)]);
    let kinds: Vec<_> = cat
        .blob_bindings()
        .unwrap()
        .into_iter()
        .map(|b| b.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            cairn_model::ArtifactKind::Dir,
            cairn_model::ArtifactKind::File
        ]
    );
    // A rebuild derives the same rows from the docs.
    let before = cat.blob_bindings().unwrap();
    cat.rebuild_projections().unwrap();
    assert_eq!(cat.blob_bindings().unwrap(), before);
}

#[test]
fn a_catalog_from_before_blob_bindings_gets_them_filled_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let exp = experiment("e");
    let run = run_in(&exp, 1);
    let before = {
        let mut cat = Catalog::open(&path, "t").unwrap();
        cat.create_experiment(&exp).unwrap();
        cat.create_runs(std::slice::from_ref(&run)).unwrap();
        cat.update_run(
            run.id,
            &[
                RunEdit::Artifact("model".into(), blob(2)),
                RunEdit::Artifact("data/x.csv".into(), blob(5)),
            ],
        )
        .unwrap();
        cat.blob_bindings().unwrap()
    };
    assert_eq!(before.len(), 2);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE artifact_refs; UPDATE meta SET value = '6' WHERE key = 'schema';",
        )
        .unwrap();
    }
    let cat = Catalog::open(&path, "t").unwrap();
    assert_eq!(cat.blob_bindings().unwrap(), before);
}

#[test]
fn bound_blobs_lists_each_blob_once_with_whether_a_live_run_binds_it() {
    let mut cat = Catalog::open_in_memory("test").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let (a, b) = (run_in(&exp, 1), run_in(&exp, 2));
    cat.create_runs(&[a.clone(), b.clone()]).unwrap();
    cat.update_run(
        a.id,
        &[
            RunEdit::Artifact("x".into(), blob(3)),
            RunEdit::Artifact("d".into(), blob(4)),
        ],
    )
    .unwrap();
    cat.update_run(
        b.id,
        &[
            RunEdit::Artifact("y".into(), blob(3)),
            RunEdit::Artifact("z".into(), blob(5)),
        ],
    )
    .unwrap();
    cat.update_run(b.id, &[RunEdit::Deleted(true)]).unwrap();
    let got: Vec<(u8, bool, bool)> = cat
        .bound_blobs()
        .unwrap()
        .into_iter()
        .map(|b| (b.hash.0[0], b.dir, b.live))
        .collect();
    assert_eq!(
        got,
        vec![(3, false, true), (4, true, true), (5, false, false)]
    );
}

#[test]
fn metric_summaries_alone_move_only_the_row_counter() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 1);
    cat.create_runs(std::slice::from_ref(&run)).unwrap();
    let summary = MetricSummary {
        last: 0.5,
        step: 1,
        ts_ms: 1,
        min: None,
        max: None,
        count: 1,
    };
    let (rows, docs) = cat.change_counters().unwrap();
    cat.update_run(run.id, &[RunEdit::Metric("loss".into(), summary)])
        .unwrap();
    let (rows_after, docs_after) = cat.change_counters().unwrap();
    assert!(rows_after > rows, "the row changed");
    assert_eq!(docs_after, docs, "only summaries changed");
    // A summary with any other edit is a doc change.
    cat.update_run(
        run.id,
        &[
            RunEdit::Metric("loss".into(), summary),
            RunEdit::Tag("stage".into(), "a".into()),
        ],
    )
    .unwrap();
    assert!(cat.change_counters().unwrap().1 > docs_after);
    // The same holds per run in a batch of edits to several runs.
    let (_, docs) = cat.change_counters().unwrap();
    cat.update_runs(&[(run.id, vec![RunEdit::Metric("acc".into(), summary)])])
        .unwrap();
    assert_eq!(cat.change_counters().unwrap().1, docs);
    cat.update_runs(&[(run.id, vec![RunEdit::Name("renamed".into())])])
        .unwrap();
    assert!(cat.change_counters().unwrap().1 > docs);
}

#[test]
fn a_revision_12_catalog_is_converted_to_the_compact_projections_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let exp = experiment("e");
    let mut runs: Vec<Run> = (0..5).map(|i| run_in(&exp, i)).collect();
    runs[1].metrics.insert(
        "loss".into(),
        MetricSummary {
            last: 0.5,
            step: 3,
            ts_ms: 9,
            min: Some(0.25),
            max: Some(2.0),
            count: 4,
        },
    );
    {
        let mut cat = Catalog::open(&path, "t").unwrap();
        cat.create_experiment(&exp).unwrap();
        cat.create_runs(&runs).unwrap();
    }
    let stored: Vec<Run> = {
        let cat = Catalog::open(&path, "t").unwrap();
        runs.iter()
            .map(|r| cat.run(r.id).unwrap().unwrap())
            .collect()
    };
    // The projection tables as revision 12 laid them out and filled them: the whole run as
    // JSON in `runs`, params, tags and summaries keyed by run id and key name.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "
DROP VIEW params; DROP VIEW tags; DROP VIEW run_metrics;
CREATE TABLE old_runs AS SELECT * FROM runs;
DROP TABLE runs; DROP TABLE run_params; DROP TABLE run_tags; DROP TABLE run_summaries;
DROP TABLE key_names;
CREATE TABLE runs (
    id TEXT PRIMARY KEY, experiment TEXT NOT NULL, shard TEXT NOT NULL, name TEXT NOT NULL,
    owner TEXT, status TEXT NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER, parent TEXT,
    deleted INTEGER NOT NULL, incomplete INTEGER NOT NULL, json TEXT NOT NULL,
    changed_seq INTEGER NOT NULL DEFAULT 0, compliance TEXT NOT NULL DEFAULT 'compliant'
);
CREATE INDEX runs_experiment ON runs(experiment, start_ms);
CREATE TABLE params (
    run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, num REAL, PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE INDEX params_key ON params(key, num);
CREATE TABLE tags (
    run TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE TABLE run_metrics (
    run TEXT NOT NULL, key TEXT NOT NULL, last REAL, step INTEGER NOT NULL,
    ts_ms INTEGER NOT NULL, min REAL, max REAL, count INTEGER NOT NULL, PRIMARY KEY (run, key)
) WITHOUT ROWID;
CREATE INDEX run_metrics_key ON run_metrics(key, last);
UPDATE meta SET value = '12' WHERE key = 'schema';
",
        )
        .unwrap();
        for run in &stored {
            conn.execute(
                "INSERT INTO runs(id, experiment, shard, name, owner, status, start_ms, end_ms,
                     parent, deleted, incomplete, json, changed_seq, compliance)
                 SELECT id, experiment, shard, name, owner, status, start_ms, end_ms, parent,
                     deleted, incomplete, ?2, changed_seq, compliance FROM old_runs WHERE id = ?1",
                rusqlite::params![run.id.to_string(), serde_json::to_string(run).unwrap()],
            )
            .unwrap();
            for (k, v) in &run.params {
                conn.execute(
                    "INSERT INTO params(run, key, value) VALUES (?1, ?2, ?3)",
                    rusqlite::params![run.id.to_string(), k, v],
                )
                .unwrap();
            }
            for (k, v) in &run.tags {
                conn.execute(
                    "INSERT INTO tags(run, key, value) VALUES (?1, ?2, ?3)",
                    rusqlite::params![run.id.to_string(), k, v],
                )
                .unwrap();
            }
        }
        conn.execute_batch("DROP TABLE old_runs").unwrap();
    }
    let pages = |path: &std::path::Path| -> (i64, i64) {
        let conn = rusqlite::Connection::open(path).unwrap();
        let count = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        let free = conn
            .query_row("PRAGMA freelist_count", [], |r| r.get(0))
            .unwrap();
        (count, free)
    };
    let (before, _) = pages(&path);
    let cat = Catalog::open(&path, "t").unwrap();
    let (after, free) = pages(&path);
    assert_eq!(free, 0, "the upgraded file was vacuumed");
    assert!(after < before, "{after} pages, {before} before");
    for run in &stored {
        assert_eq!(&cat.run(run.id).unwrap().unwrap(), run);
    }
    assert_eq!(cat.count_runs(&RunFilter::default()).unwrap(), 5);
    let by_loss = cat
        .list_runs(&RunFilter {
            order: RunOrder::Metric {
                key: "loss".into(),
                descending: true,
            },
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_loss[0].id, runs[1].id);
    assert_eq!(by_loss[0].metrics.get("loss"), Some(&0.5));
    drop(cat);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (json, rows): (String, i64) = conn
        .query_row(
            "SELECT json, (SELECT count(*) FROM run_params WHERE run = runs.rid) FROM runs WHERE id = ?1",
            [runs[1].id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(rows, 2, "the params are rows keyed by rid");
    for left_out in ["\"params\"", "\"tags\"", "\"metrics\"", "\"name\""] {
        assert!(!json.contains(left_out), "{left_out} in {json}");
    }
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('params', 'tags', 'run_metrics')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        old, 0,
        "the old tables are gone (views of the same names read the new ones)"
    );
}

#[test]
fn a_full_shard_is_compacted_when_the_next_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let mut cat = Catalog::open(&path, "test").unwrap();
    let exp = experiment("sweep");
    cat.create_experiment(&exp).unwrap();
    let runs: Vec<Run> = (0..SHARD_CAPACITY as u64)
        .map(|i| run_in(&exp, i))
        .collect();
    cat.create_runs(&runs).unwrap();
    for run in runs.iter().take(5) {
        cat.update_run(run.id, &[RunEdit::Tag("stage".into(), "done".into())])
            .unwrap();
    }
    let pending = |path: &std::path::Path| -> i64 {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.query_row(
            "SELECT count(*) FROM changes WHERE doc <> 'team'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert!(pending(&path) > 0, "the edits wait as changes");
    // The shard is full: the next run starts a new one, and the full one is compacted.
    let next = run_in(&exp, SHARD_CAPACITY as u64);
    cat.create_runs(std::slice::from_ref(&next)).unwrap();
    assert_eq!(pending(&path), 1, "only the new shard's change is left");
    drop(cat);
    let mut cat = Catalog::open(&path, "test").unwrap();
    let edited = cat.run_from_doc(runs[2].id).unwrap();
    assert_eq!(edited.tags["stage"], "done");
    assert_eq!(cat.run(runs[2].id).unwrap().unwrap(), edited);
    assert_eq!(&cat.run_from_doc(next.id).unwrap(), &next);
}
