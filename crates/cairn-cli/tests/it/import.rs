//! `cairn import tensorboard`: the GPU box's real event files through the binary — the summary,
//! `--json`, a second import that adds nothing, and a corrupt file named with its byte.

use super::{Ws, array, str_of};

const GPU_BOX: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/gpu-box"
);

#[test]
fn tensorboard_logdir_imports_once_and_reports() {
    let ws = Ws::new();
    for f in ["train.tfevents", "hparams.tfevents"] {
        let bytes = std::fs::read(format!("{GPU_BOX}/{f}")).expect("fixture");
        ws.file(&format!("tb/gpu-box/{f}"), bytes);
    }
    let out = ws.ok(&["import", "tensorboard", "tb", "--exp", "imported"]);
    assert!(out.contains("into experiment 'imported'"), "{out}");
    assert!(
        out.contains("1 runs new, 0 updated, 0 unchanged; 902 points (0 already there), 5 params"),
        "{out}"
    );

    let report = ws.json(&["import", "tensorboard", "tb", "--exp", "imported"]);
    assert_eq!(report["runs_created"], 0);
    assert_eq!(report["runs_unchanged"], 1);
    assert_eq!(report["points"], 0);
    assert_eq!(report["points_present"], 902);
    let run = &array(report["runs"].clone())[0];
    assert_eq!(run["dir"], "gpu-box");
    let id = str_of(run, "/run").to_owned();

    let shown = ws.show(&id);
    assert_eq!(shown["name"], "gpu-box");
    assert_eq!(shown["experiment_name"], "imported");
    assert_eq!(shown["params"]["lr"], "0.0003");
    assert_eq!(shown["params"]["optimizer"], "adamw");
    assert_eq!(shown["tags"]["tensorboard.run"], "gpu-box");
    assert_eq!(ws.list().len(), 1);
    let loss = array(ws.json(&["runs", "metric", &id, "train/loss"]));
    assert_eq!(loss.len(), 300);
    assert_eq!(loss[0]["value"], 2.30515718460083);

    // A file that is not an event file: its path and byte 0, and nothing more stored.
    ws.file(
        "tb/other/events.out.tfevents.1",
        b"not a TFRecord at all, just text",
    );
    let err = ws.fail(&["import", "tensorboard", "tb", "--exp", "imported"]);
    assert!(
        err.contains("events.out.tfevents.1: at byte 0: the record length's CRC does not match"),
        "{err}"
    );
    assert_eq!(ws.list().len(), 1);
}
