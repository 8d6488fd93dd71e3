//! cairn-core's rules, tested where they live: through the [`cairn_core::Workspace`] handle every
//! front end calls, on real workspaces in temporary directories.

mod api;
mod audit;
mod audit_events;
mod audit_sync;
mod backup;
mod concurrency;
mod cost;
mod evals;
mod gate;
mod history;
mod logged_models;
mod mlflow_import;
mod mlflow_rest;
mod notebooks;
mod registry;
mod reviews;
mod runs;
mod search;
mod team;
mod tensorboard;
mod traces;

use cairn_core::{NewRun, Workspace};
use cairn_model::RunId;

/// A fresh workspace (and the directory keeping it alive).
fn workspace() -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ws = Workspace::create(&dir.path().join("ws"), "alice").expect("create a workspace");
    (dir, ws)
}

/// Starts a run with `params` in the experiment `exp`.
fn start(ws: &Workspace, exp: &str, params: &[(&str, &str)]) -> RunId {
    ws.start_run(NewRun {
        experiment_name: Some(exp.into()),
        params: params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    })
    .expect("start a run")
    .id
}
