//! A training job killed with SIGKILL mid-stream loses nothing it was told was stored.

use std::io::{BufRead, BufReader};

use cairn_core::{RunsQuery, Workspace};

use crate::{workspace_with_runs, writer};

fn kill_after_acks(child: &mut std::process::Child, acks: u64) -> u64 {
    let stdout = child.stdout.take().unwrap();
    let mut last = None;
    for line in BufReader::new(stdout).lines() {
        let i: u64 = line.unwrap().trim().parse().unwrap();
        last = Some(i);
        if i + 1 >= acks {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    last.expect("the writer acknowledged nothing") + 1
}

#[test]
fn metrics_acknowledged_before_sigkill_survive() {
    let dir = tempfile::tempdir().unwrap();
    let runs = workspace_with_runs(dir.path(), 1);
    let mut child = writer(dir.path(), runs[0], "metrics", "loss", 1_000_000);
    let acked = kill_after_acks(&mut child, 3000);

    let ws = Workspace::open(dir.path(), "after").unwrap();
    let points = ws.metric_history(runs[0], "loss").unwrap();
    assert!(
        points.len() as u64 >= acked,
        "{} points stored, {acked} acknowledged",
        points.len()
    );
    for (i, p) in points.iter().enumerate() {
        assert_eq!((p.step, p.value), (i as i64, i as f64 / 2.0), "point {i}");
    }
    // The workspace opens cleanly and takes new writes after the crash.
    assert_eq!(ws.runs_page(&RunsQuery::default()).unwrap().total, 1);
}

#[test]
fn catalog_edits_acknowledged_before_sigkill_survive() {
    let dir = tempfile::tempdir().unwrap();
    let runs = workspace_with_runs(dir.path(), 1);
    let mut child = writer(dir.path(), runs[0], "tags", "epoch", 1_000_000);
    // Past 256 changes, so a compaction happened in the middle of the stream too.
    let acked = kill_after_acks(&mut child, 600);

    let ws = Workspace::open(dir.path(), "after").unwrap();
    let run = ws.run(runs[0]).unwrap().run;
    for i in 0..acked {
        assert_eq!(
            run.tags.get(&format!("epoch-{i}")),
            Some(&i.to_string()),
            "tag {i} of {acked}"
        );
    }
    // Projections agree with the docs after the crash.
    ws.rebuild_projections().unwrap();
    assert_eq!(ws.run(runs[0]).unwrap().run.tags, run.tags);
    ws.set_tags(runs[0], &[("after".into(), "crash".into())])
        .unwrap();
}
