//! A run's notes through MLflow's `mlflow.note.content` tag: what a client sets reads back, an
//! edit made elsewhere (the CLI, the window, a peer's merged text) is what the tag then says,
//! and deleting the tag clears the notes.

use serde_json::{Value, json};

use crate::server::TestServer;

const NOTE: &str = "mlflow.note.content";

fn tag(run: &Value, key: &str) -> Option<String> {
    run["data"]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| t["value"].as_str().expect("a string").to_owned())
}

#[test]
fn mlflow_note_tag_round_trips_through_the_runs_notes() {
    let server = TestServer::start();
    let id = server.create_run();
    assert_eq!(tag(&server.run(&id), NOTE), None);

    let note = "## Baseline\nlr 0.01 diverges; try 0.003.";
    server
        .mlflow(
            "runs/set-tag",
            &json!({ "run_id": id, "key": NOTE, "value": note }),
        )
        .ok();
    assert_eq!(tag(&server.run(&id), NOTE).as_deref(), Some(note));
    let ws = server.workspace();
    let run = ws.run(id.parse().unwrap()).unwrap().run;
    assert_eq!(run.notes, note);
    assert!(!run.tags.contains_key(NOTE), "held once, as the notes");

    // Edited in Cairn: MLflow reads the notes as they now are.
    let edited = format!("{note}\n0.003 converges.");
    ws.set_notes(run.id, &edited).unwrap();
    assert_eq!(
        tag(&server.run(&id), NOTE).as_deref(),
        Some(edited.as_str())
    );
    // And a client's later edit is applied to them as a difference.
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": id, "tags": [{ "key": NOTE, "value": "Summary.\n" .to_owned() + &edited }] }),
        )
        .ok();
    let now = ws.run(run.id).unwrap().run.notes;
    assert_eq!(now, format!("Summary.\n{edited}"));
    assert_eq!(tag(&server.run(&id), NOTE), Some(now));

    server
        .mlflow("runs/delete-tag", &json!({ "run_id": id, "key": NOTE }))
        .ok();
    assert_eq!(tag(&server.run(&id), NOTE), None);
    assert_eq!(ws.run(run.id).unwrap().run.notes, "");
}
