//! `cairn notebook new|list|show|edit|export`: `edit` runs `$EDITOR` (here a script) on a
//! temporary file and writes what it saved as a difference; a failing editor writes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::Ws;

fn script(ws: &Ws, name: &str, body: &str) -> PathBuf {
    let path = ws.tmp().join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn a_notebook_is_written_edited_in_the_editor_and_exported() {
    let ws = Ws::new();
    let run = ws.start_run(&["-n", "baseline", "-p", "lr=0.01"]);
    std::fs::write(
        ws.tmp().join("notes.md"),
        format!("# Sweep\n\nBest: [[run:{}]]\n", &run[..10]),
    )
    .unwrap();
    let nb = ws.json(&[
        "notebook", "new", "LR sweep", "--file", "notes.md", "--tag", "lr",
    ]);
    let id = nb["id"].as_str().unwrap().to_owned();
    assert_eq!(nb["owners"][0], "tester");
    let list = ws.json(&["notebook", "list"]);
    assert_eq!(list[0]["title"], "LR sweep");
    assert!(ws.ok(&["notebook", "list"]).contains("LR sweep"));

    // The editor appends a line; only that is written.
    let editor = script(
        &ws,
        "editor.sh",
        "printf 'Added in the editor.\\n' >> \"$1\"",
    );
    let out = ws
        .cmd(&["notebook", "edit", &id[..8]])
        .env("EDITOR", &editor)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = ws.json(&["notebook", "show", &id[..8]]);
    let text = shown["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "# Sweep\n\nBest: [[run:{}]]\nAdded in the editor.\n",
            &run[..10]
        )
    );
    assert!(
        ws.ok(&["notebook", "show", &id])
            .contains("Added in the editor.")
    );

    // An editor that fails saves nothing, and says so.
    let broken = script(&ws, "broken.sh", "printf 'lost' > \"$1\"; exit 3");
    let out = ws
        .cmd(&["notebook", "edit", &id])
        .env("EDITOR", &broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was saved"), "{err}");
    assert_eq!(ws.json(&["notebook", "show", &id])["text"], text);

    ws.ok(&["notebook", "export", &id, "--md", "-o", "out.md"]);
    assert_eq!(
        std::fs::read_to_string(ws.tmp().join("out.md")).unwrap(),
        text
    );
    ws.ok(&["notebook", "export", &id, "--html", "-o", "out.html"]);
    let html = std::fs::read_to_string(ws.tmp().join("out.html")).unwrap();
    assert!(html.contains(&format!("data-run=\"{run}\"")), "{html}");
    assert!(
        html.contains(">baseline</a>") && html.contains("lr=0.01"),
        "{html}"
    );

    let err = ws.fail(&["notebook", "show", "ffffffff"]);
    assert!(err.contains("no notebook 'ffffffff'"), "{err}");
}
