//! Several processes writing one workspace at once (the desktop app and training jobs do): no
//! "database is locked", no lost write, each sees the others' writes.

use std::io::Read;

use cairn_core::Workspace;

use crate::{workspace_with_runs, writer};

#[test]
fn four_processes_write_one_workspace_without_losing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let runs = workspace_with_runs(dir.path(), 2);
    const N: u64 = 400;
    let mut children = vec![
        writer(dir.path(), runs[0], "metrics", "loss", N),
        writer(dir.path(), runs[1], "metrics", "loss", N),
        // Two processes editing the same run's catalog entry at once.
        writer(dir.path(), runs[0], "tags", "a", N),
        writer(dir.path(), runs[0], "tags", "b", N),
    ];
    for c in &mut children {
        let status = c.wait().unwrap();
        let mut err = String::new();
        c.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        assert!(status.success(), "a writer failed: {err}");
        assert!(!err.contains("locked"), "{err}");
    }
    let ws = Workspace::open(dir.path(), "check").unwrap();
    for run in &runs {
        assert_eq!(ws.metric_history(*run, "loss").unwrap().len() as u64, N);
    }
    let tags = ws.run(runs[0]).unwrap().run.tags;
    for i in 0..N {
        assert_eq!(tags.get(&format!("a-{i}")), Some(&i.to_string()));
        assert_eq!(tags.get(&format!("b-{i}")), Some(&i.to_string()));
    }
}

#[test]
fn a_long_lived_handle_sees_writes_made_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let runs = workspace_with_runs(dir.path(), 1);
    // The "desktop app": opened before the job starts, kept open throughout.
    let app = Workspace::open(dir.path(), "app").unwrap();
    app.set_tags(runs[0], &[("opened".into(), "by-app".into())])
        .unwrap();
    let mut job = writer(dir.path(), runs[0], "tags", "job", 50);
    assert!(job.wait().unwrap().success());
    // The app reads the job's tags, and its own next edit does not undo them.
    app.set_tags(runs[0], &[("after".into(), "job".into())])
        .unwrap();
    let tags = app.run(runs[0]).unwrap().run.tags;
    assert_eq!(tags.len(), 52, "{tags:?}");
    assert_eq!(tags["job-49"], "49");
}
