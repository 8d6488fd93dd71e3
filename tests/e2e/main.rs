//! Workspace-level end-to-end tests: what a training job acknowledged survives `kill -9`, and
//! several processes write one workspace at once without locking errors or lost writes.

mod concurrent;
mod crash;
mod tidy;

use std::path::Path;
use std::process::{Child, Command, Stdio};

use cairn_core::{NewRun, Workspace};
use cairn_model::RunId;

pub fn writer(ws: &Path, run: RunId, mode: &str, name: &str, n: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cairn-e2e-writer"))
        .args([
            ws.to_str().unwrap(),
            &run.to_string(),
            mode,
            name,
            &n.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the writer")
}

/// A workspace with one experiment and `runs` running runs.
pub fn workspace_with_runs(dir: &Path, runs: usize) -> Vec<RunId> {
    let ws = Workspace::create(dir, "test").unwrap();
    let (exp, _) = ws.ensure_experiment("e2e").unwrap();
    (0..runs)
        .map(|i| {
            ws.start_run(NewRun {
                experiment: Some(exp.id),
                name: Some(format!("job-{i}")),
                ..Default::default()
            })
            .unwrap()
            .id
        })
        .collect()
}
