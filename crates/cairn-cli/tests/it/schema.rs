//! The mandatory metadata schema: `schema set` / `schema show`, refused runs, and runs kept but
//! marked incomplete.

use serde_json::json;

use crate::{Ws, assert_mentions};

const FIELDS: [&str; 3] = ["owner", "code.commit", "params.lr: float"];

fn refusing_schema() -> Ws {
    let ws = Ws::new();
    let mut args = vec!["schema", "set"];
    args.extend(FIELDS);
    args.push("--refuse");
    ws.ok(&args);
    ws
}

#[test]
fn a_refusing_schema_names_every_problem_at_once_and_creates_no_run() {
    let ws = refusing_schema();
    let before = ws.list();
    let err = ws.fail(&["run", "start", "-p", "lr=fast"]);
    assert_mentions(
        &err,
        &[
            "does not satisfy the schema",
            "code.commit is missing",
            "params.lr must be float (got 'fast')",
        ],
    );
    let err = ws.fail(&["run", "start", "--exp", "other", "-p", "lr=fast"]);
    assert_mentions(
        &err,
        &[
            "code.commit is missing",
            "params.lr must be float (got 'fast')",
        ],
    );
    assert_eq!(ws.list(), before);
    assert!(before.is_empty());
}

#[test]
fn a_run_that_satisfies_a_refusing_schema_is_created_complete() {
    let ws = refusing_schema();
    let id = ws.start_run(&["--code-commit", "abc", "-p", "lr=3e-4"]);
    let run = ws.show(&id);
    assert_eq!(run["compliance"], json!({"state": "compliant"}), "{run:#}");
    assert_eq!(ws.list()[0]["incomplete"], false);
}

#[test]
fn an_experiment_override_without_refuse_keeps_the_run_marked_incomplete() {
    let ws = refusing_schema();
    ws.ok(&["exp", "create", "X"]);
    let mut args = vec!["schema", "set", "--exp", "X"];
    args.extend(FIELDS);
    ws.ok(&args);

    let id = ws.start_run(&["--exp", "X", "-p", "lr=fast"]);
    let run = ws.show(&id);
    assert_eq!(
        run["compliance"],
        json!({
            "state": "incomplete",
            "missing": [
                "code.commit is missing",
                "params.lr must be float (got 'fast')"
            ]
        })
    );
    let rows = ws.list();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["incomplete"], true);

    // The project's schema still refuses outside X.
    ws.fail(&["run", "start", "-p", "lr=fast"]);
    assert_eq!(ws.list().len(), 1);
}

#[test]
fn schema_show_json_round_trips_through_schema_set() {
    let ws = Ws::new();
    ws.ok(&[
        "schema",
        "set",
        "owner",
        "code.commit",
        "params.lr: float",
        "dataset.digest: digest",
        "--refuse",
    ]);
    let shown = ws.json(&["schema", "show"]);
    assert_eq!(
        shown,
        json!({
            "required": [
                {"field": "owner", "ty": "any"},
                {"field": "code.commit", "ty": "any"},
                {"field": "params.lr", "ty": "float"},
                {"field": "dataset.digest", "ty": "digest"},
            ],
            "enforcement": "refuse",
        })
    );

    // Feeding the shown fields back to `schema set` gives the same schema.
    let fields: Vec<String> = shown["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| match r["ty"].as_str().unwrap() {
            "any" => r["field"].as_str().unwrap().to_owned(),
            ty => format!("{}: {ty}", r["field"].as_str().unwrap()),
        })
        .collect();
    let mut args: Vec<&str> = vec!["schema", "set", "--refuse"];
    args.extend(fields.iter().map(String::as_str));
    ws.ok(&args);
    assert_eq!(ws.json(&["schema", "show"]), shown);

    // So does the text form, one `field: type` per line after the heading.
    let text = ws.ok(&["schema", "show"]);
    let lines: Vec<&str> = text.lines().skip(1).map(str::trim).collect();
    assert_eq!(lines, fields);

    // An experiment without its own schema shows the project's; with one, its own.
    ws.ok(&["exp", "create", "X"]);
    assert_eq!(ws.json(&["schema", "show", "--exp", "X"]), shown);
    ws.ok(&["schema", "set", "--exp", "X", "owner"]);
    assert_eq!(
        ws.json(&["schema", "show", "--exp", "X"]),
        json!({"required": [{"field": "owner", "ty": "any"}], "enforcement": "mark_incomplete"})
    );
    assert_eq!(ws.json(&["schema", "show"]), shown);
}

#[test]
fn an_unknown_schema_field_is_refused_naming_it() {
    let ws = Ws::new();
    let before = ws.json(&["schema", "show"]);
    let err = ws.fail(&["schema", "set", "owner", "dataset.checksum"]);
    assert_mentions(&err, &["'dataset.checksum'"]);
    let err = ws.fail(&["schema", "set", "params.lr: decimal"]);
    assert_mentions(&err, &["'decimal'"]);
    assert_eq!(ws.json(&["schema", "show"]), before);
}
