//! TensorBoard logdirs imported through `Workspace::import_tensorboard`: the GPU box's real event
//! files against the CSV the same job wrote, files of every kind the writer makes, re-imports,
//! and broken files that must leave nothing behind.

use std::path::{Path, PathBuf};

use cairn_core::audit::AuditLogRequest;
use cairn_core::{Code, RunView, RunsQuery, TensorboardReport, Workspace};
use cairn_model::{ParentKind, RunStatus};
use cairn_tensorboard::write::EventFile;
use cairn_tensorboard::{HParamValue, SessionStatus};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/gpu-box")
        .join(name)
}

fn import(ws: &Workspace, logdir: &Path) -> TensorboardReport {
    ws.import_tensorboard(logdir, None, &mut |_| {})
        .unwrap_or_else(|e| panic!("import {}: {e}", logdir.display()))
}

/// Every run of the workspace, by its `tensorboard.run` tag.
fn runs(ws: &Workspace) -> Vec<(String, RunView)> {
    let page = ws
        .runs_page(&RunsQuery {
            limit: Some(1000),
            ..Default::default()
        })
        .unwrap();
    let mut out: Vec<(String, RunView)> = page
        .runs
        .iter()
        .map(|r| {
            let v = ws.run(r.id).unwrap();
            (
                v.run
                    .tags
                    .get("tensorboard.run")
                    .cloned()
                    .unwrap_or_default(),
                v,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The GPU box's two files in one run directory of a fresh logdir.
fn gpu_box_logdir(root: &Path) -> PathBuf {
    let logdir = root.join("tb-logs");
    let run = logdir.join("gpu-box");
    std::fs::create_dir_all(&run).unwrap();
    for f in ["train.tfevents", "hparams.tfevents"] {
        std::fs::copy(fixture(f), run.join(f)).unwrap();
    }
    logdir
}

#[test]
fn the_gpu_box_run_arrives_exactly_as_its_csv_logged_it() {
    let (dir, ws) = super::workspace();
    let logdir = gpu_box_logdir(dir.path());
    let report = import(&ws, &logdir);
    assert_eq!(report.experiment, "tb-logs");
    assert_eq!((report.event_files, report.bytes), (2, 43_243 + 644));
    assert_eq!((report.runs_created, report.runs_updated), (1, 0));
    assert_eq!((report.points, report.points_present), (902, 0));
    assert_eq!((report.params, report.notes), (5, 0));
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let all = runs(&ws);
    assert_eq!(all.len(), 1);
    let (tag, view) = &all[0];
    let run = &view.run;
    assert_eq!(tag, "gpu-box");
    assert_eq!(view.experiment_name, "tb-logs");
    assert_eq!(run.name, "gpu-box");
    assert_eq!(run.owner.as_deref(), Some("alice"));
    assert_eq!(run.status, RunStatus::Finished);
    assert_eq!(run.tags["tensorboard.dir.0"], "gpu-box");
    assert_eq!(
        run.tags["tensorboard.logdir"],
        std::fs::canonicalize(&logdir)
            .unwrap()
            .display()
            .to_string()
    );
    let params: Vec<(&str, &str)> = run
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        params,
        [
            ("batch_size", "4096"),
            ("hidden", "2048"),
            ("lr", "0.0003"),
            ("optimizer", "adamw"),
            ("weight_decay", "0.01"),
        ]
    );

    // The scalars equal the CSV's loss, acc and lr at the same steps (loss and acc were
    // float32 `.item()`s, so exactly; lr a double the event file keeps as float32).
    let csv = std::fs::read_to_string(fixture("metrics.csv")).unwrap();
    let rows: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect();
    for (col, key) in [(2, "train/loss"), (3, "train/acc"), (4, "train/lr")] {
        let h = ws.metric_history(run.id, key).unwrap();
        assert_eq!(h.len(), 300, "{key}");
        for (p, row) in h.iter().zip(&rows) {
            assert_eq!(p.step, row[0] as i64, "{key}");
            let want = if key == "train/lr" {
                f64::from(row[col] as f32)
            } else {
                row[col]
            };
            assert_eq!(p.value, want, "{key} at step {}", p.step);
            // Wall time in ms, written just after the CSV row on the same clock.
            assert!(
                (0..1000).contains(&(p.ts_ms - row[1] as i64)),
                "{key} {p:?}"
            );
        }
    }
    // The metrics `add_hparams` logged are the final loss and accuracy (the CSV's last row).
    let last = rows.last().unwrap();
    let final_loss = ws.metric_history(run.id, "hparam/final_loss").unwrap();
    assert_eq!(final_loss.len(), 1);
    assert_eq!(
        (final_loss[0].step, final_loss[0].value),
        (0, f64::from(last[2] as f32))
    );
    assert_eq!(run.metrics["hparam/final_acc"].last, 1.0);
    assert_eq!(
        run.metrics["hparam/final_loss"].last,
        f64::from(last[2] as f32)
    );
    assert_eq!(run.metrics["train/loss"].count, 300);
    assert_eq!(run.metrics["train/loss"].step, 2990);

    // Start and end: the first and last wall times of the files.
    let first = ws.metric_history(run.id, "train/loss").unwrap()[0].ts_ms;
    assert!(
        run.start_ms <= first && first - run.start_ms < 10_000,
        "{}",
        run.start_ms
    );
    let end = ws.metric_history(run.id, "hparam/final_acc").unwrap()[0].ts_ms;
    assert_eq!(run.end_ms, Some(end));

    // Created like any run: a signed `run.created` event names it.
    let created: Vec<_> = ws
        .audit_log(&AuditLogRequest::default())
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "run.created")
        .collect();
    assert_eq!(created.len(), 1);
    assert!(
        created[0].subjects.contains(&format!("run:{}", run.id)),
        "{:?}",
        created[0].subjects
    );
}

#[test]
fn a_second_import_adds_nothing_and_a_grown_logdir_only_what_is_new() {
    let (dir, ws) = super::workspace();
    let logdir = gpu_box_logdir(dir.path());
    let first = import(&ws, &logdir);
    let again = import(&ws, &logdir);
    assert_eq!(
        (again.runs_created, again.runs_updated, again.runs_unchanged),
        (0, 0, 1)
    );
    assert_eq!((again.points, again.points_present), (0, first.points));
    assert_eq!((again.params, again.notes), (0, 0));
    let (_, before) = runs(&ws).remove(0);

    // The training writer goes on: more steps appended to its file, and a new file.
    let train = logdir.join("gpu-box/train.tfevents");
    let mut more = EventFile::default();
    more.scalar(1_795_752_400.0, 3000, "train/loss", 0.5);
    more.scalar(1_795_752_400.5, 3010, "train/loss", 0.25);
    more.text(1_795_752_401.0, 3010, "summary", "converged");
    let mut bytes = std::fs::read(&train).unwrap();
    bytes.extend_from_slice(more.bytes());
    std::fs::write(&train, bytes).unwrap();
    let mut later = EventFile::new(1_795_752_402.0);
    later.scalar(1_795_752_402.0, 3020, "train/acc", 0.75);
    std::fs::write(logdir.join("gpu-box/train2.tfevents"), later.bytes()).unwrap();

    let grown = import(&ws, &logdir);
    assert_eq!((grown.runs_created, grown.runs_updated), (0, 1));
    assert_eq!((grown.points, grown.points_present), (3, first.points));
    assert_eq!(grown.notes, 1);
    let all = runs(&ws);
    assert_eq!(all.len(), 1);
    let run = &all[0].1.run;
    assert_eq!(run.id, before.run.id);
    let loss = ws.metric_history(run.id, "train/loss").unwrap();
    assert_eq!(loss.len(), 302);
    assert_eq!(
        loss[300..]
            .iter()
            .map(|p| (p.step, p.value))
            .collect::<Vec<_>>(),
        [(3000, 0.5), (3010, 0.25)]
    );
    assert_eq!(ws.metric_history(run.id, "train/acc").unwrap().len(), 301);
    assert_eq!(run.notes, "summary (step 3010): converged");
    assert_eq!(run.end_ms, Some(1_795_752_402_000));
    assert_eq!(run.metrics["train/loss"].last, 0.25);

    let settled = import(&ws, &logdir);
    assert_eq!(
        (settled.runs_unchanged, settled.points, settled.notes),
        (1, 0, 0)
    );
    assert_eq!(runs(&ws)[0].1.run.notes, run.notes);
}

/// A logdir of the writer's making: a sweep directory with two trials below it (torch scalars,
/// TF2 tensor scalars with the plugin named once, text, hparams, a failed session) and images
/// that are not imported.
fn sweep_logdir(root: &Path) -> PathBuf {
    let logdir = root.join("sweep-logs");
    let put = |rel: &str, f: &EventFile| {
        let path = logdir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, f.bytes()).unwrap();
    };
    let mut top = EventFile::new(1000.0);
    top.text(1000.5, 0, "config", "a two-trial sweep");
    put("sweep/events.out.tfevents.1000.host.1", &top);
    for (i, status) in [SessionStatus::Success, SessionStatus::Failure]
        .into_iter()
        .enumerate()
    {
        let t0 = 2000.0 + 100.0 * i as f64;
        let mut f = EventFile::new(t0);
        f.hparams_start(
            t0,
            &[
                ("lr", HParamValue::Number(0.1 / (i + 1) as f64)),
                ("amp", HParamValue::Bool(i == 0)),
                ("../escape", HParamValue::Number(1.0)),
                ("layers", HParamValue::Other("list")),
            ],
        );
        for step in 0..10 {
            f.scalar(t0 + step as f64, step, "loss", 1.0 / (step + 1) as f32);
            f.tensor_scalar(
                t0 + step as f64,
                step,
                "val/acc",
                step as f32 / 10.0,
                step == 0,
            );
        }
        f.hparams_end(t0 + 50.0, status);
        put(
            &format!("sweep/trial-{i}/events.out.tfevents.{t0}.host.1"),
            &f,
        );
    }
    // An image summary (by its proto field), not imported.
    let mut img = EventFile::new(2040.0);
    img.push(&[
        0x09, 0, 0, 0, 0, 0, 0xe0, 0x9f, 0x40, 0x2a, 0x07, 0x0a, 0x05, 0x0a, 0x01, b'x', 0x22, 0x00,
    ]);
    put("sweep/trial-0/events.out.tfevents.2040.host.2", &img);
    logdir
}

#[test]
fn directories_become_nested_runs_with_params_status_notes_and_tags() {
    let (dir, ws) = super::workspace();
    let logdir = sweep_logdir(dir.path());
    let report = ws
        .import_tensorboard(&logdir, Some("sweeps"), &mut |_| {})
        .unwrap();
    assert_eq!(report.experiment, "sweeps");
    assert_eq!(report.runs_created, 3);
    assert_eq!(report.points, 2 * 20);
    assert_eq!(
        report
            .skipped
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [
            ("hparams of type list", 2),
            (
                "hparams that are no param (invalid param key '../escape': must be a relative name without '..')",
                2
            ),
            ("image summaries", 1)
        ]
    );
    let all = runs(&ws);
    let tags: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tags, ["sweep", "sweep/trial-0", "sweep/trial-1"]);
    let sweep = &all[0].1.run;
    assert_eq!(sweep.notes, "config (step 0): a two-trial sweep");
    assert_eq!(sweep.parent, None);
    for (i, (_, view)) in all[1..].iter().enumerate() {
        let run = &view.run;
        assert_eq!(view.experiment_name, "sweeps");
        assert_eq!(run.name, format!("sweep/trial-{i}"));
        assert_eq!(
            (run.parent, run.parent_kind),
            (Some(sweep.id), Some(ParentKind::Child))
        );
        assert_eq!(run.tags["tensorboard.dir.0"], "sweep");
        assert_eq!(run.tags["tensorboard.dir.1"], format!("trial-{i}"));
        assert_eq!(run.params["lr"], if i == 0 { "0.1" } else { "0.05" });
        assert_eq!(run.params["amp"], if i == 0 { "true" } else { "false" });
        let want = if i == 0 {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        assert_eq!(run.status, want);
        let t0 = 2_000_000 + 100_000 * i as i64;
        assert_eq!((run.start_ms, run.end_ms), (t0, Some(t0 + 50_000)));
        let acc = ws.metric_history(run.id, "val/acc").unwrap();
        assert_eq!(
            acc.len(),
            10,
            "TF2 scalars after the first, plugin named once"
        );
        assert_eq!(
            (acc[9].step, acc[9].value, acc[9].ts_ms),
            (9, f64::from(0.9f32), t0 + 9000)
        );
        assert_eq!(ws.metric_history(run.id, "loss").unwrap()[3].value, 0.25);
    }
}

/// Breaks one file of a good logdir in each way, and checks the import names the file and the
/// byte, and stores nothing: not the good runs, not the experiment.
#[test]
fn a_corrupt_truncated_or_foreign_file_stores_nothing_and_names_file_and_byte() {
    let (dir, ws) = super::workspace();
    let good = std::fs::read(fixture("train.tfevents")).unwrap();
    let starts: Vec<usize> = cairn_tensorboard::records(&good)
        .map(|r| r.unwrap().offset as usize)
        .collect();
    let (second, last) = (starts[1], starts[starts.len() - 1]);
    let mut flipped = good.clone();
    flipped[second + 20] ^= 0x01;
    let mut bad_len = good.clone();
    bad_len[second + 2] ^= 0x01;
    let cases: [(&str, Vec<u8>, usize, &str); 4] = [
        ("crc", flipped, second, "data CRC does not match"),
        ("length", bad_len, second, "length's CRC does not match"),
        (
            "cut",
            good[..good.len() - 3].to_vec(),
            last,
            "truncated record",
        ),
        (
            "garbage",
            b"PK\x03\x04 not an event file at all".to_vec(),
            0,
            "length's CRC",
        ),
    ];
    for (name, bytes, offset, what) in cases {
        let logdir = dir.path().join(format!("logs-{name}"));
        for d in ["a-good", "b-bad", "c-good"] {
            std::fs::create_dir_all(logdir.join(d)).unwrap();
            std::fs::copy(
                fixture("hparams.tfevents"),
                logdir.join(d).join("hparams.tfevents"),
            )
            .unwrap();
        }
        let bad = logdir.join("b-bad/events.out.tfevents.1.x");
        std::fs::write(&bad, &bytes).unwrap();
        let err = ws
            .import_tensorboard(&logdir, None, &mut |_| {})
            .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.code(), Code::InvalidArgument, "{name}: {msg}");
        let bad = std::fs::canonicalize(&bad).unwrap();
        assert!(
            msg.starts_with(&format!("{}: at byte {offset}: ", bad.display())),
            "{name}: {msg}"
        );
        assert!(msg.contains(what), "{name}: {msg}");
        assert!(runs(&ws).is_empty(), "{name}: runs were stored");
        assert!(ws.experiment(&format!("logs-{name}")).is_err(), "{name}");
    }
    // And a re-import whose new data is corrupt adds nothing to what the first stored.
    let logdir = gpu_box_logdir(dir.path());
    let first = import(&ws, &logdir);
    let mut bytes = std::fs::read(logdir.join("gpu-box/train.tfevents")).unwrap();
    let mut more = EventFile::default();
    more.scalar(1_795_752_400.0, 3000, "train/loss", 0.5);
    let at = bytes.len();
    bytes.extend_from_slice(&more.bytes()[..more.bytes().len() - 1]);
    std::fs::write(logdir.join("gpu-box/train.tfevents"), bytes).unwrap();
    let err = ws
        .import_tensorboard(&logdir, None, &mut |_| {})
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("at byte {at}: truncated")),
        "{err}"
    );
    let run = &runs(&ws)[0].1.run;
    assert_eq!(ws.metric_history(run.id, "train/loss").unwrap().len(), 300);
    assert_eq!(first.points, 902);
}

#[test]
fn a_changed_hparam_is_refused_before_anything_is_written() {
    let (dir, ws) = super::workspace();
    let logdir = dir.path().join("logs");
    let write = |lr: f64, steps: i64| {
        let mut f = EventFile::new(10.0);
        f.hparams_start(10.0, &[("lr", HParamValue::Number(lr))]);
        for s in 0..steps {
            f.scalar(11.0 + s as f64, s, "loss", 1.0);
        }
        std::fs::create_dir_all(logdir.join("r")).unwrap();
        std::fs::write(logdir.join("r/x.tfevents"), f.bytes()).unwrap();
    };
    write(0.1, 2);
    import(&ws, &logdir);
    write(0.2, 5);
    let err = ws
        .import_tensorboard(&logdir, None, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict, "{err}");
    assert!(err.to_string().contains("param 'lr'"), "{err}");
    let run = &runs(&ws)[0].1.run;
    assert_eq!(ws.metric_history(run.id, "loss").unwrap().len(), 2);
}

#[test]
fn a_path_that_is_no_logdir_is_a_clear_error() {
    let (dir, ws) = super::workspace();
    let err = ws
        .import_tensorboard(&dir.path().join("nowhere"), None, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.code(), Code::Io, "{err}");
    assert!(err.to_string().contains("nowhere"), "{err}");
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let err = ws.import_tensorboard(&file, None, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
    // A logdir without event files imports nothing, and creates no experiment.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    let report = import(&ws, &empty);
    assert_eq!((report.runs_created, report.event_files), (0, 0));
    assert!(ws.experiment("empty").is_err());
}

/// PyTorch's own layout: `SummaryWriter("runs/gpu-box")` writes the curves there and
/// `add_hparams` a timestamped subdirectory; event files right in the logdir make a run too.
#[test]
fn add_hparams_subdirectory_is_a_child_run_and_the_logdir_itself_a_run() {
    let (dir, ws) = super::workspace();
    let logdir = dir.path().join("runs");
    std::fs::create_dir_all(logdir.join("gpu-box/1795752396.4")).unwrap();
    std::fs::copy(
        fixture("train.tfevents"),
        logdir.join("gpu-box/train.tfevents"),
    )
    .unwrap();
    std::fs::copy(
        fixture("hparams.tfevents"),
        logdir.join("gpu-box/1795752396.4/hparams.tfevents"),
    )
    .unwrap();
    let mut top = EventFile::new(1_795_752_380.0);
    top.scalar(1_795_752_380.0, 0, "setup/seconds", 4.5);
    std::fs::write(logdir.join("events.out.tfevents.top"), top.bytes()).unwrap();

    let report = import(&ws, &logdir);
    assert_eq!(report.runs_created, 3);
    let all = runs(&ws);
    let dirs: Vec<&str> = all.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(dirs, [".", "gpu-box", "gpu-box/1795752396.4"]);
    let (root, train, hp) = (&all[0].1.run, &all[1].1.run, &all[2].1.run);
    assert_eq!(root.name, "runs");
    assert!(!root.tags.contains_key("tensorboard.dir.0"));
    assert_eq!(train.parent, Some(root.id));
    assert_eq!(hp.parent, Some(train.id));
    assert_eq!(hp.tags["tensorboard.dir.1"], "1795752396.4");
    assert!(train.params.is_empty());
    assert_eq!(train.metrics["train/loss"].count, 300);
    assert_eq!(hp.params["lr"], "0.0003");
    assert_eq!(hp.params["batch_size"], "4096");
    assert_eq!(hp.metrics["hparam/final_acc"].last, 1.0);
    assert_eq!(hp.status, RunStatus::Finished);
}

/// A schema that refuses runs without a commit refuses the imported runs (TensorBoard knows no
/// commit): the import fails naming the schema, and stores no run and no experiment.
#[test]
fn a_refusing_schema_refuses_the_import_whole() {
    let (dir, ws) = super::workspace();
    let schema = cairn_model::RunSchema {
        required: vec!["code.commit".parse().unwrap()],
        enforcement: cairn_model::Enforcement::Refuse,
    };
    ws.set_schema(None, schema).unwrap();
    let logdir = gpu_box_logdir(dir.path());
    let err = ws
        .import_tensorboard(&logdir, None, &mut |_| {})
        .unwrap_err();
    assert_eq!(err.code(), Code::SchemaViolation, "{err}");
    assert!(err.to_string().contains("code.commit"), "{err}");
    assert!(runs(&ws).is_empty());
    assert!(ws.experiment("tb-logs").is_err());
}
