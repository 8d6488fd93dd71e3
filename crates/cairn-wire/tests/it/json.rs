//! Real JSON against the generated types: a demo workspace plus a run with every optional field
//! set, non-finite metrics, a conflict and artifacts, serialised by the same serde code the
//! server and the desktop commands use, written out as typed TypeScript constants and checked
//! with the UI's `tsc` (strict, so a field the type lacks, a missing field, a wrong type or a
//! `null` where the type says absent all fail).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use cairn_charts::{
    BarChart, Chart, Frame, LineChart, ParallelChart, Point as ChartPoint, Samples, ScatterChart,
    Series, SystemPanel, render_svg,
};
use cairn_core::{
    ChartKind, ChartRequest, DemoOptions, MetricPoint as Point, NewRun, SavedView, SearchRequest,
    Workspace,
};
use cairn_model::{
    CodeVersion, Conflict, DatasetSnapshot, Enforcement, Evaluation, FeatureSetVersion, GpuGroup,
    InfraProfile, Lineage, Num, ParentKind, RunId, RunSchema, RunStatus,
};
use serde::Serialize;

/// `export const NAME: TYPE = JSON;` lines, type-checked together.
#[derive(Default)]
struct TsFile(String);

impl TsFile {
    fn add(&mut self, name: &str, ty: &str, value: &impl Serialize) {
        let json = serde_json::to_string_pretty(value).expect("DTOs serialise");
        writeln!(self.0, "export const {name}: {ty} = {json};\n").expect("writing to a String");
    }

    /// A line that must not type-check (`@ts-expect-error` fails the check when it does): proof
    /// that the check would catch each kind of drift.
    fn reject(&mut self, why: &str, line: &str) {
        writeln!(self.0, "// @ts-expect-error: {why}\n{line}\n").expect("writing to a String");
    }
}

#[test]
fn real_json_type_checks_against_the_bindings() {
    let tmp = tempfile::tempdir().expect("a temp dir");
    let ws = Workspace::create(&tmp.path().join("ws"), "ada").expect("create a workspace");
    ws.generate_demo(
        &DemoOptions {
            runs: 12,
            steps: Some(40),
            seed: 7,
        },
        &mut |_, _| {},
    )
    .expect("demo data");
    let mut s = TsFile::default();

    s.add("info", "W.Info", &ws.info());
    let page = ws
        .search(&SearchRequest {
            limit: Some(100),
            ..SearchRequest::default()
        })
        .expect("search");
    assert!(page.runs.len() >= 12, "{} demo runs", page.runs.len());
    s.add("searchPage", "W.SearchPage", &page);
    let mut views = Vec::new();
    for r in &page.runs {
        views.push(ws.run(r.id).expect("a demo run"));
    }
    s.add("demoRuns", "W.RunView[]", &views);

    // One run with every optional field set, and one that lacks what the schema requires.
    let parent = page.runs[0].id;
    let full = ws
        .start_run(NewRun {
            experiment_name: Some("wire".into()),
            name: Some("everything".into()),
            owner: Some("ada".into()),
            params: BTreeMap::from([("lr".into(), "0.1".into())]),
            tags: BTreeMap::from([("team".into(), "vision".into())]),
            lineage: full_lineage(),
            parent: Some((parent, ParentKind::Fork)),
            notes: "every field".into(),
            ..NewRun::default()
        })
        .expect("start a run");
    let points: Vec<Point> = [1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5]
        .into_iter()
        .enumerate()
        .map(|(i, value)| Point {
            step: i as i64,
            ts_ms: 1_700_000_000_000 + i as i64,
            value,
        })
        .collect();
    ws.log_metrics(full.id, &[("loss", &points)]).expect("log");
    ws.add_artifact_reader(full.id, "model/weights.bin", &mut &b"weights"[..])
        .expect("artifact");
    ws.set_status(full.id, RunStatus::Finished, None)
        .expect("end the run");
    let mut view = ws.run(full.id).expect("the run");
    view.run.conflicts.push(Conflict {
        field: "params.lr".into(),
        values: vec![serde_json::json!("0.1"), serde_json::json!("0.2")],
    });
    assert!(view.run.parent_kind.is_some() && view.run.metrics["loss"].last == 0.5);
    s.add("fullRun", "W.RunView", &view);
    let bare = ws
        .start_run(NewRun {
            name: Some("bare".into()),
            ..NewRun::default()
        })
        .expect("start a run");
    let bare = ws.run(bare.id).expect("the run");
    assert!(
        !bare.run.compliance.is_compliant(),
        "the default schema marks it"
    );
    s.add("incompleteRun", "W.RunView", &bare);
    let evals = ws.evaluations(full.id).expect("the full run's evaluations");
    assert!(
        evals.iter().any(|e| !e.fairness.is_empty()),
        "fairness figures from the slices"
    );
    s.add("evaluations", "W.EvaluationView[]", &evals);
    let buckets = ws
        .metric_buckets(&full.id.to_string(), "loss", None, 10)
        .expect("buckets");
    assert!(
        buckets
            .iter()
            .any(|b| !b.min.0.is_finite() || !b.last.0.is_finite())
    );
    s.add("buckets", "W.BucketView[]", &buckets);
    s.add(
        "artifacts",
        "W.ArtifactEntry[]",
        &[
            ws.list_artifacts(full.id, "").expect("list"),
            ws.list_artifacts(full.id, "model").expect("list"),
        ]
        .concat(),
    );

    // Experiments, one with its own schema.
    let exp = view.run.experiment;
    ws.set_schema(
        Some(exp),
        RunSchema {
            enforcement: Enforcement::Refuse,
            ..RunSchema::default()
        },
    )
    .expect("schema");
    s.add(
        "experiments",
        "W.ExperimentSummary[]",
        &ws.experiments().expect("list"),
    );
    s.add(
        "experiment",
        "W.Experiment",
        &ws.experiment_by_id(exp).expect("get"),
    );

    // Errors as every transport sends them: a plain one, and a query error with its column.
    let err = ws.run(RunId::new()).expect_err("no such run");
    s.add("error", "W.ErrorBody", &cairn_core::ErrorBody::from(&err));
    let err = ws
        .search(&SearchRequest {
            q: Some("metrics.acc >".into()),
            ..SearchRequest::default()
        })
        .expect_err("a bad query");
    let body = cairn_core::ErrorBody::from(&err);
    assert!(body.column.is_some());
    s.add("queryError", "W.ErrorBody", &body);
    s.add(
        "runsPage",
        "W.RunsPage",
        &ws.runs_page(&cairn_core::RunsQuery {
            order: Some("metrics.loss ASC".into()),
            ..Default::default()
        })
        .expect("a page"),
    );
    s.add(
        "syncStatus",
        "W.SyncStatus",
        &ws.sync_status().expect("status"),
    );

    // Every kind of chart map.
    let runs: Vec<_> = views.iter().map(|v| v.run.clone()).collect();
    let metric = runs
        .iter()
        .flat_map(|r| r.metrics.keys())
        .find(|k| !k.starts_with("system/"))
        .expect("demo runs have metrics")
        .clone();
    let param = cairn_charts::report::differing_params(&runs)
        .into_iter()
        .next()
        .expect("demo runs differ in a param");
    let mut line = LineChart::new(metric.clone());
    line.smoothing = 0.6;
    line.group_by = Some(param.clone());
    for r in &runs {
        let Ok(history) = ws.metric_history(r.id, &metric) else {
            continue;
        };
        let mut pts: Vec<ChartPoint> = history
            .iter()
            .map(|p| ChartPoint {
                x: p.step as f64,
                y: p.value,
            })
            .collect();
        pts.push(ChartPoint {
            x: pts.len() as f64,
            y: f64::NAN,
        });
        let group = cairn_charts::group_key(r, &param);
        line.series
            .push(Series::new(r.id.to_string(), &r.name, Samples::Points(pts)).in_group(group));
    }
    let metric_field = format!("metrics.{metric}");
    let frame = Frame::new(640, 280);
    let charts = [
        Chart::Line(line.clone()),
        Chart::Parallel(ParallelChart::from_runs(
            &runs,
            &[param.as_str(), metric_field.as_str()],
        )),
        Chart::Scatter(ScatterChart::from_runs(&runs, &param, &metric_field, None)),
        Chart::Bars(BarChart::from_runs(&runs, &[metric_field.as_str()])),
        Chart::System(SystemPanel {
            title: None,
            charts: vec![line],
        }),
    ];
    let maps: Vec<_> = charts
        .iter()
        .map(|c| render_svg(c, &frame).expect("render").map)
        .collect();
    s.add("chartMaps", "W.ChartMap[]", &maps);
    let with_metric: Vec<String> = runs
        .iter()
        .filter(|r| r.metrics.contains_key(&metric))
        .map(|r| r.id.to_string())
        .collect();
    let line_view = ws
        .chart(&ChartRequest {
            runs: with_metric,
            metric: Some(metric.clone()),
            smooth: 0.6,
            group_by: Some(param.clone()),
            ..ChartRequest::default()
        })
        .expect("a line chart");
    let parallel_view = ws
        .chart(&ChartRequest {
            kind: ChartKind::Parallel,
            runs: runs.iter().map(|r| r.id.to_string()).collect(),
            ..ChartRequest::default()
        })
        .expect("a parallel chart");
    s.add("chartViews", "W.ChartView[]", &[line_view, parallel_view]);

    ws.save_view(&SavedView {
        name: "mine".into(),
        query: "owner:ada".into(),
        order: Some("metrics.loss ASC".into()),
        columns: vec!["params.lr".into()],
    })
    .expect("save a view");
    ws.save_view(&SavedView {
        name: "all".into(),
        query: String::new(),
        order: None,
        columns: Vec::new(),
    })
    .expect("save a view");
    s.add("savedViews", "W.SavedView[]", &ws.views().expect("views"));

    // Requests go the other way: what the types allow, serde must accept.
    for (i, json) in [
        r#"{ "runs": ["0190"] }"#,
        r#"{ "runs": ["0190"], "metric": null, "x": null, "lo": null, "hi": null, "group_by": null }"#,
        r#"{ "kind": "parallel", "runs": ["0190", "0191"], "metric": "loss", "x": "step", "smooth": 0.5, "log": true, "group_by": "params.lr", "lo": 0, "hi": 10, "fields": ["params.lr"], "width": 640, "height": 280, "dark": true }"#,
    ]
    .into_iter()
    .enumerate()
    {
        serde_json::from_str::<ChartRequest>(json)
            .unwrap_or_else(|e| panic!("serde refuses a ChartRequest the types allow: {e}\n{json}"));
        s.0.push_str(&format!("export const chartRequest{i}: W.ChartRequest = {json};\n\n"));
    }
    for (i, json) in [
        r#"{}"#,
        r#"{ "q": "loss < 0.5", "order": "metrics.loss ASC", "experiment": "vision", "limit": 50, "offset": 100 }"#,
        r#"{ "q": null, "order": null, "experiment": null, "limit": null, "offset": null }"#,
    ]
    .into_iter()
    .enumerate()
    {
        serde_json::from_str::<SearchRequest>(json)
            .unwrap_or_else(|e| panic!("serde refuses a SearchRequest the types allow: {e}\n{json}"));
        s.0.push_str(&format!("export const searchRequest{i}: W.SearchRequest = {json};\n\n"));
    }

    // Drift the check must catch: a field the type lacks, null for an absent optional field,
    // a number where a string is due, a status the Rust enum does not have.
    s.reject(
        "Info has no `extra`",
        r#"export const extra: W.Info = { version: "0", workspace: "w", user: "u", demo: false, extra: 1 };"#,
    );
    s.reject(
        "an absent optional field is left out, never null",
        r#"export const nullOwner: W.MetricSummary = { last: 1, step: 0, ts_ms: 0, count: 1, min: null };"#,
    );
    s.reject(
        "ids are strings",
        r#"export const numericId: W.ArtifactRef = { hash: 7, size: 1, kind: "file" };"#,
    );
    s.reject(
        "no such status",
        r#"export const status: W.RunStatus = "paused";"#,
    );

    typecheck(&s.0);
}

fn full_lineage() -> Lineage {
    Lineage {
        datasets: BTreeMap::from([(
            "train".into(),
            DatasetSnapshot {
                name: Some("imagenet-1k".into()),
                context: Some("training".into()),
                uri: Some("s3://data/imagenet".into()),
                digest: Some(format!("blake3:{}", "ab".repeat(32))),
                size_bytes: Some(1 << 30),
                rows: Some(1_281_167),
                source_type: Some("s3".into()),
                schema: Some("{}".into()),
                source: Some(r#"{"uri": "s3://data/imagenet"}"#.into()),
                profile: Some(r#"{"num_rows": 1281167}"#.into()),
                tags: BTreeMap::from([("split".into(), "train".into())]),
            },
        )]),
        feature_set: Some(FeatureSetVersion {
            name: "features".into(),
            version: "3".into(),
        }),
        code: Some(CodeVersion {
            repo: Some("git@example.org:team/model.git".into()),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            branch: Some("main".into()),
            dirty: true,
            diff_digest: Some("cd".repeat(32)),
        }),
        infra: Some(InfraProfile {
            host: Some("gpu-box".into()),
            os: Some("Linux".into()),
            cpu_model: Some("EPYC".into()),
            cpu_cores: Some(64),
            memory_bytes: Some(1 << 38),
            gpus: vec![GpuGroup {
                model: "H100".into(),
                count: 8,
                driver: Some("550.54".into()),
                memory_bytes: Some(80 << 30),
            }],
            container_image: Some("train:1".into()),
            instance_type: Some("p5.48xlarge".into()),
            hourly_price_usd: Some(98.3),
        }),
        evaluations: BTreeMap::from([(
            "val".into(),
            Evaluation {
                dataset: Some("blake3:0123456789abcdef".into()),
                metrics: BTreeMap::from([("acc".into(), Num(0.91))]),
                slices: BTreeMap::from([
                    (
                        "sex=female".into(),
                        BTreeMap::from([("acc".into(), Num(0.89)), ("tpr".into(), Num(f64::NAN))]),
                    ),
                    (
                        "sex=male".into(),
                        BTreeMap::from([("acc".into(), Num(0.93))]),
                    ),
                ]),
                reports: vec!["eval/report.html".into()],
                logged_ms: Some(1_700_000_000_000),
                logged_by: Some("alice".into()),
            },
        )]),
    }
}

/// Type-checks `samples` against freshly generated bindings with the UI's TypeScript, in a
/// directory under the target dir that stays for a look when the check fails.
fn typecheck(samples: &str) {
    let tsc = cairn_wire::repo_root().join("ui/node_modules/typescript/bin/tsc");
    assert!(
        tsc.exists(),
        "{} is missing: this test type-checks real JSON with the UI's TypeScript; install the \
         UI's packages first with `npm --prefix ui ci` (scripts/test does)",
        tsc.display()
    );
    let check = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wire-json");
    std::fs::create_dir_all(&check).expect("mkdir");
    std::fs::write(check.join("wire.gen.ts"), cairn_wire::bindings()).expect("write");
    std::fs::write(
        check.join("samples.ts"),
        format!("import type * as W from \"./wire.gen\";\n\n{samples}"),
    )
    .expect("write");
    // The UI's compiler options, minus the DOM and vitest: nothing but the two files.
    std::fs::write(
        check.join("tsconfig.json"),
        r#"{ "compilerOptions": { "target": "ES2022", "module": "ESNext", "moduleResolution": "bundler", "lib": ["ES2022"], "strict": true, "noEmit": true, "exactOptionalPropertyTypes": true, "types": [] }, "files": ["samples.ts"] }"#,
    )
    .expect("write");
    let out = Command::new("node")
        .arg(&tsc)
        .arg("-p")
        .arg(&check)
        .output()
        .expect("run node (the UI's toolchain)");
    assert!(
        out.status.success(),
        "real JSON does not match ui/src/wire.gen.ts:\n{}{}\n(the samples are in {})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        check.join("samples.ts").display(),
    );
}
