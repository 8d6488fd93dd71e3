//! Golden SVG snapshots, one per chart kind and option that changes the picture. A missing
//! snapshot is written (review it by eye before committing); `UPDATE_GOLDEN=1` rewrites them all.
//! Otherwise the SVG must match byte for byte; on a mismatch the new rendering is written next
//! to the golden file as `NAME.new.svg` for comparison. `GOLDEN_PNG=1` also writes each chart as
//! `NAME.png` (through the PNG backend) for looking at.

use std::path::PathBuf;

use cairn_charts::{
    Band, BarChart, Chart, Frame, LineChart, ParallelChart, Point, Samples, Scale, ScatterChart,
    Series, SystemPanel, Theme, XAxis, pair_by_step, render_svg,
};

use crate::fixtures::{Noise, loss_curve, series, sweep};

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

pub fn check(name: &str, chart: &Chart, frame: &Frame) {
    let svg = render_svg(chart, frame).expect("renders").svg;
    if std::env::var_os("GOLDEN_PNG").is_some_and(|v| v == "1") {
        // PNG twins for reviewing by eye (git-ignored).
        let png = cairn_charts::render_png(chart, frame).expect("renders").png;
        std::fs::write(data_dir().join(format!("{name}.png")), png).expect("write png");
    }
    let path = data_dir().join(format!("{name}.svg"));
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    if update || !path.exists() {
        std::fs::create_dir_all(data_dir()).expect("create tests/data");
        std::fs::write(&path, &svg).expect("write golden");
        return;
    }
    let golden = std::fs::read_to_string(&path).expect("read golden");
    if golden != svg {
        let new = data_dir().join(format!("{name}.new.svg"));
        std::fs::write(&new, &svg).expect("write new rendering");
        panic!(
            "{name}: the SVG differs from {} (new rendering in {}); if the change is intended, \
             rerun with UPDATE_GOLDEN=1",
            path.display(),
            new.display()
        );
    }
}

/// 20 runs of a sweep, 2,000 steps each, grouped by optimizer.
fn sweep_chart(band: Band) -> LineChart {
    let mut chart = LineChart::new("loss");
    chart.smoothing = 0.6;
    chart.band = band;
    chart.group_by = Some("params.optimizer".into());
    for (i, run) in sweep().iter().enumerate() {
        let floor = run.metrics["loss"].last;
        let spike = (i == 5).then_some(1200);
        let s = series(
            &run.id.to_string(),
            &run.name,
            loss_curve(i as u64, 2000, floor, spike, 4.0),
        )
        .in_group(cairn_charts::group_key(run, "params.optimizer"));
        chart.series.push(s);
    }
    chart
}

#[test]
fn line_single_run_shows_its_spike() {
    let mut chart = LineChart::new("loss");
    chart.series.push(series(
        "r1",
        "baseline",
        loss_curve(1, 50_000, 0.3, Some(31_337), 5.0),
    ));
    check("line_single", &Chart::Line(chart), &Frame::new(900, 500));
}

#[test]
fn line_smoothed_log_five_runs() {
    let mut chart = LineChart::new("loss");
    chart.smoothing = 0.8;
    chart.y_scale = Scale::Log;
    for i in 0..5 {
        chart.series.push(series(
            &format!("r{i}"),
            &format!("run-{i}"),
            loss_curve(i, 5000, 0.05 * (i + 1) as f64, None, 1.0),
        ));
    }
    check(
        "line_smoothed_log",
        &Chart::Line(chart),
        &Frame::new(900, 500),
    );
}

#[test]
fn line_grouped_min_max() {
    check(
        "line_grouped_minmax",
        &Chart::Line(sweep_chart(Band::MinMax)),
        &Frame::new(1000, 560),
    );
}

#[test]
fn line_grouped_std_dark() {
    check(
        "line_grouped_std_dark",
        &Chart::Line(sweep_chart(Band::StdDev)),
        &Frame::new(1000, 560).with_theme(Theme::Dark),
    );
}

#[test]
fn line_by_wall_and_relative_time() {
    let start = 1_714_564_800_000.0; // 2024-05-01T12:00Z
    let mut wall = LineChart::new("throughput");
    wall.x = XAxis::WallTime;
    let mut relative = LineChart::new("throughput");
    relative.x = XAxis::RelativeTime;
    for i in 0..3u64 {
        let mut n = Noise::new(i);
        let pts: Vec<(f64, f64)> = (0..3000)
            .map(|k| {
                (
                    k as f64 * 2.5 + i as f64 * 1800.0,
                    900.0 + n.next() * 100.0 + i as f64 * 50.0,
                )
            })
            .collect();
        wall.series.push(series(
            &format!("r{i}"),
            &format!("run-{i}"),
            pts.iter()
                .map(|(s, y)| Point {
                    x: start + s * 1000.0,
                    y: *y,
                })
                .collect(),
        ));
        relative.series.push(series(
            &format!("r{i}"),
            &format!("run-{i}"),
            pts.iter()
                .map(|(s, y)| Point {
                    x: s - i as f64 * 1800.0,
                    y: *y,
                })
                .collect(),
        ));
    }
    let mut frame = Frame::new(900, 420);
    frame.utc_offset_minutes = 120;
    check("line_wall_time", &Chart::Line(wall), &frame);
    check(
        "line_relative_time",
        &Chart::Line(relative),
        &Frame::new(900, 420),
    );
}

#[test]
fn line_by_another_metric() {
    let loss = Samples::Points(loss_curve(3, 4000, 0.2, None, 1.0));
    // Epochs logged every 400 steps.
    let epochs = Samples::Points(
        (0..=10)
            .map(|e| Point {
                x: e as f64 * 400.0,
                y: e as f64,
            })
            .collect(),
    );
    let mut chart = LineChart::new("loss");
    chart.x = XAxis::Metric("epoch".into());
    chart
        .series
        .push(Series::new("r1", "run-1", pair_by_step(&loss, &epochs)));
    check("line_x_metric", &Chart::Line(chart), &Frame::new(800, 400));
}

#[test]
fn line_non_finite_values_are_gaps_and_marked() {
    let mut pts = loss_curve(4, 3000, 0.3, None, 1.0);
    for p in &mut pts[1000..1150] {
        p.y = f64::NAN;
    }
    pts[2000].y = f64::INFINITY;
    pts[2500].y = f64::NEG_INFINITY;
    let mut chart = LineChart::new("loss");
    chart.series.push(series("r1", "diverged", pts));
    chart
        .series
        .push(series("r2", "healthy", loss_curve(5, 3000, 0.2, None, 1.0)));
    check("line_nonfinite", &Chart::Line(chart), &Frame::new(800, 400));
}

#[test]
fn line_fifty_runs_keep_a_readable_legend() {
    let mut chart = LineChart::new("val_loss");
    for i in 0..50u64 {
        chart.series.push(series(
            &format!("r{i}"),
            &format!("sweep-2024-05-01-trial-{i:03}"),
            loss_curve(i, 300, 0.1 + i as f64 * 0.01, None, 1.0),
        ));
    }
    check("line_50_runs", &Chart::Line(chart), &Frame::new(1200, 600));
}

#[test]
fn parallel_coordinates_params_to_loss() {
    let runs = sweep();
    let chart = ParallelChart::from_runs(
        &runs,
        &[
            "params.optimizer",
            "params.lr",
            "params.batch_size",
            "metrics.loss",
        ],
    );
    check("parallel", &Chart::Parallel(chart), &Frame::new(1000, 500));
}

#[test]
fn scatter_param_against_metric() {
    let runs = sweep();
    let mut numeric =
        ScatterChart::from_runs(&runs, "params.lr", "metrics.loss", Some("params.optimizer"));
    numeric.x_scale = Scale::Log;
    check(
        "scatter_lr_loss",
        &Chart::Scatter(numeric),
        &Frame::new(800, 450),
    );
    let categorical = ScatterChart::from_runs(&runs, "params.optimizer", "metrics.loss", None);
    check(
        "scatter_optimizer_loss",
        &Chart::Scatter(categorical),
        &Frame::new(800, 450),
    );
}

#[test]
fn bars_of_summary_metrics() {
    let runs = &sweep()[..8];
    let chart = BarChart::from_runs(runs, &["loss", "accuracy", "tokens_per_s"]);
    let height = chart.preferred_height();
    check("bars", &Chart::Bars(chart), &Frame::new(1000, height));
}

#[test]
fn system_metrics_panel() {
    let mut charts = Vec::new();
    for (title, base, spread, gpus) in [
        ("CPU (%)", 60.0, 30.0, 1),
        ("Memory (MB)", 12_000.0, 800.0, 1),
        ("GPU utilisation (%)", 85.0, 20.0, 2),
        ("GPU memory (MB)", 30_000.0, 2000.0, 2),
    ] {
        let mut c = LineChart::new(title);
        c.x = XAxis::RelativeTime;
        for g in 0..gpus {
            let mut n = Noise::new(g + title.len() as u64);
            let pts = (0..720)
                .map(|k| Point {
                    x: k as f64 * 5.0,
                    y: base + (n.next() - 0.5) * spread,
                })
                .collect();
            let label = if gpus > 1 {
                format!("gpu {g}")
            } else {
                "host".to_owned()
            };
            c.series.push(series(&format!("g{g}"), &label, pts));
        }
        charts.push(c);
    }
    let panel = SystemPanel {
        title: Some("run-1 system metrics".into()),
        charts,
    };
    check("system", &Chart::System(panel), &Frame::new(1100, 600));
}
