//! MLflow SQL stores imported through `Workspace::import_mlflow`: small stores written here in
//! MLflow's schema (the real package's stores are tested in tests/mlflow), re-imports that add
//! only what is new, and bad sources that must leave nothing behind.

use std::path::{Path, PathBuf};

use cairn_core::mlflow_import::sqlite::SCHEMA;
use cairn_core::{Code, MlflowReport, Workspace};
use cairn_model::{ParentKind, RunId, RunStatus};
use rusqlite::{Connection, params};

const PARENT: &str = "0123456789abcdef0123456789abcdef";
const CHILD: &str = "fedcba9876543210fedcba9876543210";

/// A store with an experiment `vision` (MLflow id 1, a tag), a parent and a child run, a
/// series with NaN and ±inf (as MLflow writes them), params, tags and an artifact file.
fn store(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("mlflow.db");
    let db = Connection::open(&path).unwrap();
    db.execute_batch(SCHEMA).unwrap();
    let art = dir.join("art");
    std::fs::create_dir_all(art.join(CHILD).join("artifacts/model")).unwrap();
    std::fs::write(
        art.join(CHILD).join("artifacts/model/weights.bin"),
        b"weights",
    )
    .unwrap();
    db.execute_batch(&format!(
        "INSERT INTO experiments VALUES (1, 'vision', 'art', 'active', 1, 1, 'default');
         INSERT INTO experiment_tags VALUES ('team', 'cv', 1);
         INSERT INTO runs VALUES ('{PARENT}', 'sweep', 'LOCAL', '', '', 'bob', 'FINISHED',
             1000, 9000, '', 'active', 'art/{PARENT}/artifacts', 1, NULL);
         INSERT INTO runs VALUES ('{CHILD}', 'trial', 'LOCAL', '', '', 'bob', 'FAILED',
             2000, 3000, '', 'active', 'art/{CHILD}/artifacts', 1, NULL);
         INSERT INTO params VALUES ('lr', '0.1', '{CHILD}');
         INSERT INTO tags VALUES ('mlflow.parentRunId', '{PARENT}', '{CHILD}');
         INSERT INTO tags VALUES ('mlflow.runName', 'trial', '{CHILD}');
         INSERT INTO tags VALUES ('mlflow.source.git.commit', 'abc123', '{CHILD}');
         INSERT INTO tags VALUES ('stage', 'dev', '{CHILD}');
         INSERT INTO registered_models VALUES ('clf', 1, 1, 'a model', 'default');
         INSERT INTO model_versions VALUES ('clf', 1, 1, 1, NULL, 'bob', 'None',
             'runs:/{CHILD}/model', '{CHILD}', 'READY', NULL, NULL, NULL, 'default');
         INSERT INTO model_version_tags VALUES ('q', 'ok', 'clf', 1, 'default');
         INSERT INTO registered_model_aliases VALUES ('champion', 1, 'clf', 'default');"
    ))
    .unwrap();
    let points: [(i64, f64, bool); 5] = [
        (0, 1.5, false),
        (1, 0.0, true),
        (2, f64::MAX, false),
        (3, f64::MIN, false),
        (4, 0.25, false),
    ];
    for (step, value, nan) in points {
        add_point(&db, CHILD, "loss", step, value, nan);
    }
    path
}

fn add_point(db: &Connection, run: &str, key: &str, step: i64, value: f64, nan: bool) {
    db.execute(
        "INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key, value, 10_000 + step, run, step, nan],
    )
    .unwrap();
    db.execute(
        "INSERT OR REPLACE INTO latest_metrics VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key, value, 10_000 + step, step, nan, run],
    )
    .unwrap();
}

fn uri(path: &Path) -> String {
    format!("sqlite:///{}", path.display())
}

fn import(ws: &Workspace, path: &Path) -> MlflowReport {
    ws.import_mlflow(&uri(path), &[], &mut |_| {})
        .unwrap_or_else(|e| panic!("import {}: {e}", path.display()))
}

#[test]
fn a_store_comes_with_ids_values_lineage_and_registry() {
    let (dir, ws) = super::workspace();
    let path = store(dir.path());
    let r = import(&ws, &path);
    assert_eq!((r.runs_created, r.in_source.runs), (2, 2));
    assert_eq!((r.added.points, r.added.params), (5, 1));
    assert_eq!((r.added.versions, r.added.aliases), (1, 1));
    assert_eq!(r.added.artifacts, 1);
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);

    let child: RunId = CHILD.parse().unwrap();
    let v = ws.run(child).unwrap().run;
    assert_eq!(v.name, "trial");
    assert_eq!(v.status, RunStatus::Failed);
    assert_eq!((v.start_ms, v.end_ms), (2000, Some(3000)));
    assert_eq!(v.owner.as_deref(), Some("bob"));
    assert_eq!(v.parent, Some(PARENT.parse().unwrap()));
    assert_eq!(v.parent_kind, Some(ParentKind::Child));
    assert_eq!(v.lineage.code.unwrap().commit.as_deref(), Some("abc123"));
    assert_eq!(v.tags.get("stage").map(String::as_str), Some("dev"));
    assert_eq!(v.params.get("lr").map(String::as_str), Some("0.1"));

    let pts = ws.metric_history(child, "loss").unwrap();
    let values: Vec<f64> = pts.iter().map(|p| p.value).collect();
    assert_eq!(values[0], 1.5);
    assert!(values[1].is_nan());
    assert_eq!(values[2], f64::INFINITY);
    assert_eq!(values[3], f64::NEG_INFINITY);
    assert_eq!(
        pts.iter().map(|p| p.step).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(pts[4].ts_ms, 10_004);

    // The MLflow id is an alias of the experiment.
    let exp = ws.experiment_by_mlflow_id("1").unwrap();
    assert_eq!(exp.name, "vision");
    assert_eq!(exp.tags.get("team").map(String::as_str), Some("cv"));

    let m = ws.registered_model("clf").unwrap();
    assert_eq!(m.versions.len(), 1);
    assert_eq!(m.versions[0].run, Some(child));
    assert_eq!(m.versions[0].tags.get("q").map(String::as_str), Some("ok"));
    assert_eq!(m.versions[0].aliases, ["champion"]);
}

#[test]
fn a_second_import_adds_only_what_is_new() {
    let (dir, ws) = super::workspace();
    let path = store(dir.path());
    import(&ws, &path);
    let again = import(&ws, &path);
    assert_eq!(again.runs_created + again.runs_updated, 0);
    assert_eq!(again.added, Default::default(), "{again:?}");
    assert_eq!(again.present.points, 5);

    // The store grows: two points, a param, a new run.
    let db = Connection::open(&path).unwrap();
    add_point(&db, CHILD, "loss", 5, 0.125, false);
    add_point(&db, CHILD, "acc", 0, 0.5, false);
    db.execute_batch(&format!(
        "INSERT INTO params VALUES ('depth', '18', '{CHILD}');
         INSERT INTO runs VALUES ('{}', 'late', 'LOCAL', '', '', 'bob', 'RUNNING',
             5000, NULL, '', 'active', NULL, 1, NULL);",
        "a".repeat(32)
    ))
    .unwrap();
    let third = import(&ws, &path);
    assert_eq!((third.runs_created, third.runs_updated), (1, 1));
    assert_eq!((third.added.points, third.present.points), (2, 5));
    assert_eq!(third.added.params, 1);
    let child: RunId = CHILD.parse().unwrap();
    assert_eq!(ws.metric_history(child, "loss").unwrap().len(), 6);
    assert_eq!(ws.metric_history(child, "acc").unwrap().len(), 1);
}

/// How many experiments and runs the workspace holds.
fn counts(ws: &Workspace) -> (usize, u64) {
    let runs = ws
        .runs_page(&cairn_core::RunsQuery::default())
        .unwrap()
        .total;
    (ws.experiments_all().unwrap().len(), runs)
}

#[test]
fn bad_sources_are_named_and_store_nothing() {
    let (dir, ws) = super::workspace();
    let before = counts(&ws);
    let err = |source: &str| ws.import_mlflow(source, &[], &mut |_| {}).unwrap_err();

    let missing = dir.path().join("missing.db");
    let e = err(&uri(&missing));
    assert!(e.to_string().contains("missing.db"), "{e}");

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    let e = err(&uri(&other));
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.to_string().contains("other.db") && e.to_string().contains("`experiments`"));

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let e = err(&uri(&garbage));
    assert!(e.to_string().contains("garbage.db"), "{e}");

    // A series whose key Cairn cannot hold: refused before anything is written.
    let sub = dir.path().join("bad");
    std::fs::create_dir_all(&sub).unwrap();
    let path = store(&sub);
    let db = Connection::open(&path).unwrap();
    add_point(&db, PARENT, "../escape", 0, 1.0, false);
    let e = err(&uri(&path));
    assert!(e.to_string().contains("../escape"), "{e}");

    let e = ws
        .import_mlflow(
            &uri(&store(&dir.path().join("x"))),
            &["nope".into()],
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("'nope'") && e.to_string().contains("'vision'"));
    assert_eq!(counts(&ws), before);
}

#[test]
fn only_the_named_experiments_come() {
    let (dir, ws) = super::workspace();
    let path = store(dir.path());
    Connection::open(&path)
        .unwrap()
        .execute_batch(&format!(
            "INSERT INTO experiments VALUES (2, 'tabular', NULL, 'active', 1, 1, 'default');
             INSERT INTO runs VALUES ('{}', 'other', 'LOCAL', '', '', 'bob', 'FINISHED',
                 1, 2, '', 'active', NULL, 2, NULL);",
            "b".repeat(32)
        ))
        .unwrap();
    let r = ws
        .import_mlflow(&uri(&path), &["tabular".into()], &mut |_| {})
        .unwrap();
    assert_eq!((r.in_source.experiments, r.runs_created), (1, 1));
    assert!(ws.experiment("vision").is_err());
}

/// A file store as MLflow writes one: the default experiment, `vision` with a tag, one run.
fn mlruns(dir: &Path) -> PathBuf {
    let root = dir.join("mlruns");
    let write = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    write(
        "0/meta.yaml",
        "artifact_location: mlruns/0\nexperiment_id: '0'\nlifecycle_stage: active\nname: Default\n",
    );
    write(
        "7/meta.yaml",
        "artifact_location: mlruns/7\ncreation_time: 1\nexperiment_id: '7'\n\
         lifecycle_stage: active\nname: vision\n",
    );
    write("7/tags/team", "cv");
    write(
        &format!("7/{CHILD}/meta.yaml"),
        &format!(
            "artifact_uri: mlruns/7/{CHILD}/artifacts\nend_time: 3000\nentry_point_name: ''\n\
             experiment_id: '7'\nlifecycle_stage: active\nrun_id: {CHILD}\nrun_name: trial\n\
             source_type: 4\nstart_time: 2000\nstatus: 4\ntags: []\nuser_id: bob\n"
        ),
    );
    write(&format!("7/{CHILD}/params/lr"), "0.1");
    write(&format!("7/{CHILD}/params/opt/name"), "adamw");
    write(&format!("7/{CHILD}/tags/mlflow.runName"), "trial");
    write(
        &format!("7/{CHILD}/metrics/loss"),
        "10001 nan 1\n10000 1.5 0\n10002 inf 2\n10003 -inf 3\n",
    );
    write(&format!("7/{CHILD}/artifacts/model/w.bin"), "weights");
    root
}

#[test]
fn a_file_store_comes_as_a_sql_store_does() {
    let (dir, ws) = super::workspace();
    let root = mlruns(dir.path());
    let r = ws
        .import_mlflow(root.to_str().unwrap(), &[], &mut |_| {})
        .unwrap();
    assert_eq!((r.runs_created, r.added.points, r.added.params), (1, 4, 2));
    assert_eq!(r.added.artifacts, 1);
    let child: RunId = CHILD.parse().unwrap();
    let v = ws.run(child).unwrap().run;
    assert_eq!((v.name.as_str(), v.status), ("trial", RunStatus::Failed));
    assert_eq!(v.params.get("opt/name").map(String::as_str), Some("adamw"));
    let pts = ws.metric_history(child, "loss").unwrap();
    assert_eq!(pts.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(pts[1].value.is_nan());
    assert_eq!(pts[2].value, f64::INFINITY);
    assert_eq!(ws.experiment_by_mlflow_id("7").unwrap().name, "vision");
    let again = ws
        .import_mlflow(root.to_str().unwrap(), &[], &mut |_| {})
        .unwrap();
    assert_eq!(again.added, Default::default());
}

#[test]
fn a_broken_file_store_is_named_by_file_and_line_and_stores_nothing() {
    let (dir, ws) = super::workspace();
    let root = mlruns(dir.path());
    let other = "1".repeat(32);
    std::fs::create_dir_all(root.join(format!("7/{other}"))).unwrap();
    std::fs::write(
        root.join(format!("7/{other}/meta.yaml")),
        "run_id: 111\nstatus: 'open\n",
    )
    .unwrap();
    let before = counts(&ws);
    let e = ws
        .import_mlflow(root.to_str().unwrap(), &[], &mut |_| {})
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("{other}/meta.yaml")) && text.contains("line 2"),
        "{e}"
    );
    assert_eq!(counts(&ws), before);

    // A metric line that is not `timestamp value step`: its file and line.
    std::fs::remove_dir_all(root.join(format!("7/{other}"))).unwrap();
    std::fs::write(
        root.join(format!("7/{CHILD}/metrics/loss")),
        "10000 1.5 0\n10001 oops 1\n",
    )
    .unwrap();
    let e = ws
        .import_mlflow(root.to_str().unwrap(), &[], &mut |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("metrics/loss: line 2"), "{e}");
    assert_eq!(counts(&ws), before);

    let e = ws
        .import_mlflow(dir.path().to_str().unwrap(), &[], &mut |_| {})
        .unwrap_err();
    assert!(e.to_string().contains("not an MLflow file store"), "{e}");
}
