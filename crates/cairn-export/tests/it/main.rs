//! `cairn_export::export` on real workspaces: the tables' schemas and types, every value read
//! back with the `parquet` crate's Arrow reader (NaN, ±inf and −0.0 bit for bit), the CSV
//! spelling of the same, an empty result, and the refusals (bad query, a directory in use).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use cairn_core::{MetricPoint, NewRun, Workspace};
use cairn_export::{ExportError, ExportRequest, Format, ParamType, export};
use cairn_model::{CodeVersion, Lineage, RunId, RunStatus};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn workspace(dir: &Path) -> Workspace {
    Workspace::create(&dir.join("ws"), "alice").unwrap()
}

fn point(step: i64, value: f64) -> MetricPoint {
    MetricPoint {
        step,
        ts_ms: 1_790_000_000_000 + step * 250,
        value,
    }
}

/// Two runs: `a` with an int, a float and a text param, a code version, a loss curve holding
/// NaN, ±inf and −0.0; `b` with params that turn `lr` into a float column and `opt` into text.
fn two_runs(ws: &Workspace) -> (RunId, RunId) {
    let params = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let a = ws
        .start_run(NewRun {
            experiment_name: Some("vision".into()),
            name: Some("a, \"quoted\"".into()),
            params: params(&[("batch", "32"), ("lr", "1"), ("opt", "true")]),
            tags: params(&[("team", "cv")]),
            lineage: Lineage {
                code: Some(CodeVersion {
                    commit: Some("abc123".into()),
                    dirty: true,
                    ..Default::default()
                }),
                ..Default::default()
            },
            start_ms: Some(1_790_000_000_000),
            ..Default::default()
        })
        .unwrap();
    let b = ws
        .start_run(NewRun {
            experiment_name: Some("vision".into()),
            name: Some("b".into()),
            params: params(&[("batch", "64"), ("lr", "0.5"), ("opt", "adam")]),
            start_ms: Some(1_790_000_100_000),
            ..Default::default()
        })
        .unwrap();
    let loss: Vec<MetricPoint> = [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 0.25]
        .iter()
        .enumerate()
        .map(|(i, v)| point(i as i64, *v))
        .collect();
    ws.log_metric(a.id, "loss", &loss).unwrap();
    ws.log_metric(b.id, "acc", &[point(0, 0.5), point(1, 0.75)])
        .unwrap();
    ws.set_status(a.id, RunStatus::Finished, Some(1_790_000_060_000))
        .unwrap();
    (a.id, b.id)
}

fn read(path: &Path) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn req(dir: &Path, format: Format, query: &str) -> ExportRequest {
    ExportRequest {
        query: query.into(),
        dir: dir.to_owned(),
        format,
        force: false,
    }
}

fn run_export(
    ws: &Workspace,
    r: &ExportRequest,
) -> Result<cairn_export::ExportReport, ExportError> {
    export(ws, r, &mut |_| {})
}

/// The string in a dictionary or plain string column at `row`.
fn text(col: &dyn Array, row: usize) -> String {
    match col.data_type() {
        DataType::Dictionary(..) => {
            let d = col.as_dictionary::<Int32Type>();
            d.values()
                .as_string::<i32>()
                .value(d.keys().value(row) as usize)
                .to_owned()
        }
        _ => col.as_string::<i32>().value(row).to_owned(),
    }
}

#[test]
fn parquet_tables_hold_every_run_and_point_with_typed_params() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let (a, b) = two_runs(&ws);
    let out = tmp.path().join("out");
    let report = run_export(&ws, &req(&out, Format::Parquet, "")).unwrap();
    assert_eq!((report.runs, report.series, report.points), (2, 2, 8));
    assert_eq!(report.params["batch"], ParamType::Int);
    assert_eq!(report.params["lr"], ParamType::Float);
    assert_eq!(report.params["opt"], ParamType::String);
    assert_eq!(report.metrics, ["acc", "loss"]);

    // Runs: oldest first, a typed column per param, final/min/max per metric.
    let runs = read(&out.join("runs.parquet"));
    assert_eq!(runs.len(), 1);
    let t = &runs[0];
    assert_eq!(t.num_rows(), 2);
    let schema = t.schema();
    let col = |name: &str| {
        t.column(
            schema
                .index_of(name)
                .unwrap_or_else(|_| panic!("no column {name}")),
        )
        .clone()
    };
    assert_eq!(
        *col("start_time").data_type(),
        DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
    );
    assert_eq!(*col("params.batch").data_type(), DataType::Int64);
    assert_eq!(*col("params.lr").data_type(), DataType::Float64);
    assert_eq!(*col("params.opt").data_type(), DataType::Utf8);
    assert_eq!(*col("code_dirty").data_type(), DataType::Boolean);
    assert_eq!(text(&*col("run_id"), 0), a.to_string());
    assert_eq!(text(&*col("run_id"), 1), b.to_string());
    assert_eq!(text(&*col("name"), 0), "a, \"quoted\"");
    assert_eq!(text(&*col("experiment"), 0), "vision");
    assert_eq!(text(&*col("owner"), 0), "alice");
    assert_eq!(text(&*col("status"), 0), "finished");
    assert_eq!(text(&*col("status"), 1), "running");
    let start = col("start_time");
    let start = start.as_primitive::<TimestampMillisecondType>();
    assert_eq!(start.value(0), 1_790_000_000_000);
    let end = col("end_time");
    let end = end.as_primitive::<TimestampMillisecondType>();
    assert_eq!(end.value(0), 1_790_000_060_000);
    assert!(end.is_null(1));
    assert_eq!(col("params.batch").as_primitive::<Int64Type>().value(1), 64);
    let lr = col("params.lr");
    assert_eq!(lr.as_primitive::<Float64Type>().values(), &[1.0, 0.5]);
    assert_eq!(text(&*col("params.opt"), 0), "true");
    assert_eq!(text(&*col("params.opt"), 1), "adam");
    assert_eq!(text(&*col("code_commit"), 0), "abc123");
    assert!(col("code_dirty").as_boolean().value(0));
    assert!(col("code_commit").is_null(1));
    assert_eq!(text(&*col("tags"), 0), r#"{"team":"cv"}"#);
    // The last loss logged is 0.25; its range is the metric store's summary (finite values).
    let last = col("metrics.loss");
    let last = last.as_primitive::<Float64Type>();
    assert_eq!(last.value(0), 0.25);
    assert!(last.is_null(1), "run b logged no loss");
    let summary = ws.run(a).unwrap().live_metrics["loss"];
    let min = col("metrics_min.loss");
    assert_eq!(
        min.as_primitive::<Float64Type>().value(0).to_bits(),
        summary.min.unwrap().to_bits()
    );
    let max = col("metrics_max.loss");
    assert_eq!(
        max.as_primitive::<Float64Type>().value(0),
        summary.max.unwrap()
    );
    assert_eq!(summary.max, Some(1.5));
    assert_eq!(
        col("metrics.acc").as_primitive::<Float64Type>().value(1),
        0.75
    );

    // Metrics: series by series in the order logged, values bit for bit.
    let points = read(&out.join("metrics.parquet"));
    let rows: Vec<(String, String, i64, i64, u64)> = points
        .iter()
        .flat_map(|batch| {
            let steps = batch.column(2).as_primitive::<Int64Type>().clone();
            let times = batch
                .column(3)
                .as_primitive::<TimestampMillisecondType>()
                .clone();
            let values = batch.column(4).as_primitive::<Float64Type>().clone();
            (0..batch.num_rows())
                .map(|i| {
                    (
                        text(batch.column(0), i),
                        text(batch.column(1), i),
                        steps.value(i),
                        times.value(i),
                        values.value(i).to_bits(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let mut want: Vec<(String, String, i64, i64, u64)> = Vec::new();
    for (run, key) in [(a, "loss"), (b, "acc")] {
        for p in ws.metric_history(run, key).unwrap() {
            want.push((
                run.to_string(),
                key.into(),
                p.step,
                p.ts_ms,
                p.value.to_bits(),
            ));
        }
    }
    assert_eq!(rows, want);
    assert!(f64::from_bits(rows[1].4).is_nan());
    assert_eq!(rows[4].4, (-0.0f64).to_bits());
    assert_eq!(
        points[0].schema().field(0).data_type(),
        &DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
    );
    // Nothing but the two tables is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["metrics.parquet", "runs.parquet"]);
}

#[test]
fn csv_tables_spell_non_finite_values_and_quote_text() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let (a, _) = two_runs(&ws);
    let out = tmp.path().join("csv");
    run_export(&ws, &req(&out, Format::Csv, "")).unwrap();
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let lines: Vec<&str> = metrics.lines().collect();
    assert_eq!(lines[0], "run_id,key,step,timestamp,value");
    let values: Vec<&str> = lines[1..7]
        .iter()
        .map(|l| l.rsplit(',').next().unwrap())
        .collect();
    assert_eq!(values, ["1.5", "NaN", "inf", "-inf", "-0.0", "0.25"]);
    assert_eq!(lines[1], format!("{a},loss,0,2026-09-21T14:13:20.000Z,1.5"));
    let runs = std::fs::read_to_string(out.join("runs.csv")).unwrap();
    let row = runs.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("{a},\"a, \"\"quoted\"\"\",")),
        "{row}"
    );
    // A missing value is an empty field: run a has no parent.
    assert!(
        row.contains(",finished,2026-09-21T14:13:20.000Z,2026-09-21T14:14:20.000Z,,,"),
        "{row}"
    );
}

#[test]
fn a_query_matching_nothing_writes_empty_tables_with_their_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    two_runs(&ws);
    let out = tmp.path().join("none");
    let report = run_export(&ws, &req(&out, Format::Parquet, "params.batch > 1000")).unwrap();
    assert_eq!((report.runs, report.points), (0, 0));
    let file = File::open(out.join("metrics.parquet")).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    let names: Vec<&str> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    assert_eq!(names, ["run_id", "key", "step", "timestamp", "value"]);
    let file = File::open(out.join("runs.parquet")).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(builder.metadata().file_metadata().num_rows(), 0);
    assert_eq!(builder.schema().field(0).name(), "run_id");
    assert!(builder.schema().index_of("params.batch").is_err());
}

#[test]
fn the_query_selects_the_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let (_, b) = two_runs(&ws);
    let out = tmp.path().join("q");
    let report = run_export(&ws, &req(&out, Format::Parquet, "params.opt = 'adam'")).unwrap();
    assert_eq!((report.runs, report.points), (1, 2));
    let runs = read(&out.join("runs.parquet"));
    assert_eq!(text(runs[0].column(0), 0), b.to_string());
    // Only b's params chose the columns: lr is 0.5 alone, a float.
    assert_eq!(report.params["lr"], ParamType::Float);
    assert_eq!(report.params["opt"], ParamType::String);
}

#[test]
fn bad_input_is_refused_by_name_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    two_runs(&ws);

    // An unknown field: the search language's error, and no directory made.
    let out = tmp.path().join("bad-query");
    let e = run_export(&ws, &req(&out, Format::Parquet, "colour = 'red'")).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
    assert!(!out.exists());

    // A directory holding files is refused, naming one; --force writes beside them.
    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "keep me").unwrap();
    let e = run_export(&ws, &req(&busy, Format::Csv, "")).unwrap_err();
    assert!(matches!(e, ExportError::NotEmpty { .. }), "{e}");
    assert!(e.to_string().contains("notes.txt"), "{e}");
    assert!(!busy.join("runs.csv").exists());
    let mut forced = req(&busy, Format::Csv, "");
    forced.force = true;
    run_export(&ws, &forced).unwrap();
    assert!(busy.join("runs.csv").exists());
    assert_eq!(
        std::fs::read_to_string(busy.join("notes.txt")).unwrap(),
        "keep me"
    );

    // A file where the directory should be.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let e = run_export(&ws, &req(&file, Format::Parquet, "")).unwrap_err();
    assert!(matches!(e, ExportError::NotADirectory(_)), "{e}");
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_is_an_error_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    two_runs(&ws);
    let locked = tmp.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
    // Root writes anywhere: there the check is moot.
    if File::create(locked.join("probe")).is_ok() {
        return;
    }
    let e = run_export(&ws, &req(&locked, Format::Parquet, "")).unwrap_err();
    assert!(matches!(e, ExportError::Io { .. }), "{e}");
    assert!(e.to_string().contains("locked"), "{e}");
}

#[test]
fn a_long_series_spans_several_batches_and_row_groups_stay_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = workspace(tmp.path());
    let run = ws.start_run(NewRun::default()).unwrap();
    let n = 200_000i64;
    let pts: Vec<MetricPoint> = (0..n).map(|i| point(i, (i as f32 * 0.5) as f64)).collect();
    ws.log_metric(run.id, "x", &pts).unwrap();
    let out = tmp.path().join("long");
    let report = run_export(&ws, &req(&out, Format::Parquet, "")).unwrap();
    assert_eq!(report.points, n as u64);
    let batches = read(&out.join("metrics.parquet"));
    let mut step = 0;
    for b in &batches {
        for s in b.column(2).as_primitive::<Int64Type>().values() {
            assert_eq!(*s, step);
            step += 1;
        }
    }
    assert_eq!(step, n);
}
