//! Creating and opening workspaces: `init`, and what every command does on a directory that
//! holds none.

use crate::{Ws, arg, array, assert_mentions, parse_json};

#[test]
fn init_creates_an_empty_workspace() {
    let ws = Ws::uninit();
    let out = ws.ok(&["init"]);
    assert_mentions(&out, &[arg(&ws.dir)]);
    let marker = parse_json(&std::fs::read_to_string(ws.dir.join("workspace.json")).unwrap());
    assert_eq!(marker["format"], 1);
    assert_eq!(marker["demo"], false);
    assert!(array(ws.json(&["exp", "list"])).is_empty());
    assert!(ws.list().is_empty());
}

#[test]
fn init_again_fails_naming_the_directory_and_keeps_the_workspace() {
    let ws = Ws::new();
    ws.ok(&["exp", "create", "kept"]);
    let marker_before = std::fs::read(ws.dir.join("workspace.json")).unwrap();

    let err = ws.fail(&["init"]);
    assert_mentions(&err, &[arg(&ws.dir), "already a Cairn workspace"]);

    assert_eq!(
        std::fs::read(ws.dir.join("workspace.json")).unwrap(),
        marker_before
    );
    let exps = array(ws.json(&["exp", "list"]));
    assert_eq!(exps.len(), 1);
    assert_eq!(exps[0]["name"], "kept");
}

#[test]
fn init_with_a_directory_argument_creates_the_workspace_there() {
    let ws = Ws::uninit();
    let other = ws.tmp().join("elsewhere");
    ws.ok(&["init", arg(&other)]);
    assert!(other.join("workspace.json").is_file());
    assert!(!ws.dir.exists(), "--workspace must not be created too");
}

#[test]
fn every_command_on_a_missing_directory_says_it_is_not_a_workspace() {
    let ws = Ws::uninit();
    let run_id = "0".repeat(32);
    let commands: &[&[&str]] = &[
        &["exp", "list"],
        &["exp", "create", "x"],
        &["run", "start"],
        &["run", "log", &run_id, "-m", "loss=1"],
        &["run", "end", &run_id],
        &["runs", "list"],
        &["runs", "show", &run_id],
        &["runs", "metric", &run_id, "loss"],
        &["artifact", "get", &run_id, "model"],
        &["schema", "show"],
        &["schema", "set", "owner"],
        &["catalog", "rebuild"],
        &["catalog", "compact"],
    ];
    for args in commands {
        let err = ws.fail(args);
        assert_mentions(&err, &[arg(&ws.dir), "is not a Cairn workspace"]);
    }
    assert!(
        !ws.dir.exists(),
        "a failed command must not create the directory"
    );
}

#[test]
fn a_directory_without_a_workspace_is_refused_and_left_untouched() {
    let ws = Ws::uninit();
    std::fs::create_dir(&ws.dir).unwrap();
    std::fs::write(ws.dir.join("notes.txt"), "mine").unwrap();

    let err = ws.fail(&["runs", "list"]);
    assert_mentions(
        &err,
        &[arg(&ws.dir), "is not a Cairn workspace", "cairn init"],
    );

    let names: Vec<String> = std::fs::read_dir(&ws.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

#[test]
fn cairn_workspace_and_cairn_user_select_the_workspace_and_owner() {
    let ws = Ws::new();
    let out = ws
        .bare()
        .env("CAIRN_WORKSPACE", &ws.dir)
        .env("CAIRN_USER", "from-env")
        .args(["run", "start", "--exp", "env"])
        .output()
        .unwrap();
    let id = crate::checked_ok(&out, &["run", "start"]).trim().to_owned();
    let run = ws.show(&id);
    assert_eq!(run["owner"], "from-env");
    assert_eq!(run["experiment_name"], "env");
}
