//! Edge cases: one point, all-NaN, constant, huge and tiny values, 100 runs, empty charts and
//! invalid specs. Each must render (or fail with the right error) and keep its promises.

use cairn_charts::{
    BarChart, BarRow, Bucket, Cell, Chart, ChartError, ChartMap, Frame, LineChart, LineMap,
    ParallelChart, ParallelRow, Point, Samples, Scale, ScatterChart, Series, SystemPanel,
    render_svg,
};

use crate::fixtures::{loss_curve, series};

fn line_map(chart: LineChart, frame: &Frame) -> (String, LineMap) {
    let r = render_svg(&Chart::Line(chart), frame).expect("renders");
    match r.map {
        ChartMap::Line(m) => (r.svg, m),
        other => panic!("a line map, got {other:?}"),
    }
}

fn one(points: Vec<Point>) -> LineChart {
    let mut c = LineChart::new("m");
    c.series.push(series("r", "run", points));
    c
}

/// No coordinate or attribute of the SVG may be NaN or infinite (text may say "NaN").
pub fn assert_clean(svg: &str) {
    for tag in svg
        .split('<')
        .filter_map(|s| s.split_once('>').map(|(t, _)| t))
    {
        assert!(
            !tag.contains("NaN") && !tag.contains("inf"),
            "bad tag <{tag}>"
        );
    }
    assert!(svg.trim_end().ends_with("</svg>"));
}

#[test]
fn one_point() {
    let (svg, map) = line_map(one(vec![Point { x: 5.0, y: 0.25 }]), &Frame::default());
    assert_clean(&svg);
    let cols = &map.series[0].columns;
    assert_eq!(cols.len(), 1);
    assert_eq!((cols[0].min, cols[0].max), (Some(0.25), Some(0.25)));
    assert!(map.x.lo < 5.0 && 5.0 < map.x.hi, "a single x is widened");
    assert!(map.y.lo < 0.25 && 0.25 < map.y.hi);
    assert!(svg.contains("<circle"), "the end marker shows the point");
}

#[test]
fn all_nan_series() {
    let pts = (0..500)
        .map(|i| Point {
            x: i as f64,
            y: f64::NAN,
        })
        .collect();
    let (svg, map) = line_map(one(pts), &Frame::default());
    assert_clean(&svg);
    let s = &map.series[0];
    assert_eq!((s.points, s.nonfinite), (500, 500));
    assert!(s.columns.iter().all(|c| c.min.is_none() && c.max.is_none()));
    assert!(svg.contains("no finite values in range"));
    assert!(svg.contains("(500 NaN/inf)"), "the legend says so");
}

#[test]
fn constant_series() {
    let pts = (0..10_000)
        .map(|i| Point {
            x: i as f64,
            y: 3.0,
        })
        .collect();
    let (svg, map) = line_map(one(pts), &Frame::default());
    assert_clean(&svg);
    assert!(map.y.lo < 3.0 && 3.0 < map.y.hi);
    assert!(
        map.series[0]
            .columns
            .iter()
            .all(|c| c.min == Some(3.0) && c.max == Some(3.0))
    );
}

#[test]
fn huge_and_tiny_values() {
    for (lo, hi) in [
        (1e300, 3e300),
        (-1e308, 1e308),
        (1e-300, 3e-300),
        (5e-324, 5e-324),
        (-f64::MAX, f64::MAX),
    ] {
        for scale in [Scale::Linear, Scale::Log] {
            let pts = (0..1000)
                .map(|i| Point {
                    x: i as f64,
                    y: if i % 2 == 0 { lo } else { hi },
                })
                .collect();
            let mut chart = one(pts);
            chart.y_scale = scale;
            let (svg, map) = line_map(chart, &Frame::default());
            assert_clean(&svg);
            assert!(
                map.y.lo.is_finite() && map.y.hi.is_finite() && map.y.lo < map.y.hi,
                "{lo} {hi} {scale:?}: {:?}",
                map.y
            );
            if scale == Scale::Linear || lo > 0.0 {
                let c = &map.series[0].columns[0];
                assert_eq!((c.min, c.max), (Some(lo), Some(hi)));
            }
        }
    }
}

#[test]
fn log_scale_with_zero_and_negative_values() {
    let pts = (0..100)
        .map(|i| Point {
            x: i as f64,
            y: i as f64 - 50.0,
        })
        .collect();
    let mut chart = one(pts);
    chart.y_scale = Scale::Log;
    let (svg, map) = line_map(chart, &Frame::default());
    assert_clean(&svg);
    assert!(map.y.lo > 0.0 && map.y.hi >= 49.0);
}

#[test]
fn a_hundred_runs() {
    let mut chart = LineChart::new("loss");
    for i in 0..100u64 {
        let label = format!("sweep-2024-05-01-lr-search-trial-{i:03}");
        chart.series.push(series(
            &format!("r{i}"),
            &label,
            loss_curve(i, 500, 0.2, None, 1.0),
        ));
    }
    let (svg, map) = line_map(chart, &Frame::new(1200, 600));
    assert_clean(&svg);
    assert_eq!(map.series.len(), 100);
    assert!(
        map.legend_hidden > 0,
        "100 entries cannot all fit at 600 px"
    );
    assert!(svg.contains(&format!("+{} more", map.legend_hidden)));
    // Every run keeps a distinct colour and marker pair for the first 56.
    let styles: std::collections::BTreeSet<_> = map.series[..56]
        .iter()
        .map(|s| (s.color.clone(), format!("{:?}", s.marker)))
        .collect();
    assert_eq!(styles.len(), 56);
}

#[test]
fn empty_charts_render() {
    let (svg, _) = line_map(LineChart::new("loss"), &Frame::default());
    assert!(svg.contains("no data"));
    let empty = [
        Chart::Parallel(ParallelChart {
            title: None,
            axes: vec!["params.lr".into()],
            rows: vec![],
        }),
        Chart::Scatter(ScatterChart::from_runs(
            &[],
            "params.lr",
            "metrics.loss",
            None,
        )),
        Chart::Bars(BarChart::from_runs(&[], &["loss"])),
        Chart::System(SystemPanel {
            title: None,
            charts: vec![],
        }),
    ];
    for chart in &empty {
        assert_clean(&render_svg(chart, &Frame::default()).expect("renders").svg);
    }
}

#[test]
fn comparison_views_with_missing_and_odd_values() {
    let rows = vec![
        ParallelRow {
            id: "a".into(),
            label: "a".into(),
            cells: vec![
                Cell::Number(1e-4),
                Cell::Text("adam".into()),
                Cell::Number(0.5),
            ],
        },
        ParallelRow {
            id: "b".into(),
            label: "b".into(),
            cells: vec![
                Cell::Missing,
                Cell::Text("sgd".into()),
                Cell::Number(f64::NAN),
            ],
        },
        ParallelRow {
            id: "c".into(),
            label: "c".into(),
            cells: vec![Cell::Number(1e-1), Cell::Missing, Cell::Missing],
        },
    ];
    let chart = Chart::Parallel(ParallelChart {
        title: None,
        axes: vec!["lr".into(), "opt".into(), "loss".into()],
        rows,
    });
    let r = render_svg(&chart, &Frame::default()).expect("renders");
    assert_clean(&r.svg);
    let ChartMap::Parallel(map) = r.map else {
        panic!("parallel map")
    };
    assert_eq!(
        map.axes[0].numeric.as_ref().map(|a| a.scale),
        Some(Scale::Log),
        "lr spans 3 decades"
    );
    assert_eq!(map.rows.len(), 3);
    let b = map.rows.iter().find(|r| r.id == "b").expect("row b");
    assert_eq!(
        b.points[0].1, map.axes[0].missing_py,
        "a missing value sits on the n/a row"
    );

    let bars = BarChart {
        title: None,
        metrics: vec!["delta".into()],
        rows: (0..100)
            .map(|i| BarRow {
                id: format!("r{i}"),
                label: format!("run-{i}"),
                values: vec![match i {
                    0 => None,
                    1 => Some(f64::NAN),
                    2 => Some(f64::INFINITY),
                    _ => Some(i as f64 - 50.0),
                }],
            })
            .collect(),
    };
    let r = render_svg(&Chart::Bars(bars), &Frame::new(800, 400)).expect("renders");
    assert_clean(&r.svg);
    let ChartMap::Bars(map) = r.map else {
        panic!("bars map")
    };
    assert!(map.hidden > 0);
    assert!(
        r.svg.contains("+inf") && r.svg.contains("NaN"),
        "non-finite values are named"
    );
    let zero = map.panels[0].x.to_px(0.0).expect("zero is placed");
    for bar in &map.panels[0].bars {
        // Negative bars end left of zero, positive ones right of it.
        if bar.value < 0.0 {
            assert!(f64::from(bar.rect.x) < zero);
        } else {
            assert!(f64::from(bar.rect.x) >= zero.floor());
        }
    }
}

#[test]
fn invalid_specs_are_refused_with_the_value() {
    let mut chart = one(loss_curve(1, 10, 0.1, None, 1.0));
    chart.smoothing = 1.5;
    let err =
        render_svg(&Chart::Line(chart.clone()), &Frame::default()).expect_err("smoothing 1.5");
    assert!(
        matches!(
            err,
            ChartError::Spec {
                field: "smoothing",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("1.5"));
    chart.smoothing = 0.0;
    chart.y_scale = Scale::Log;
    chart.y_range = Some((0.0, 1.0));
    let err = render_svg(&Chart::Line(chart.clone()), &Frame::default()).expect_err("log from 0");
    assert!(
        matches!(
            err,
            ChartError::Spec {
                field: "y_range",
                ..
            }
        ),
        "{err}"
    );
    let err =
        render_svg(&Chart::Line(LineChart::new("m")), &Frame::new(10, 10)).expect_err("tiny frame");
    assert!(
        matches!(
            err,
            ChartError::Size {
                width: 10,
                height: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn store_buckets_coarser_than_columns_still_draw() {
    // 10 buckets over 1M steps on a 900 px chart: each spans ~90 columns.
    let buckets: Vec<Bucket> = (0..10)
        .map(|i| Bucket {
            x_lo: i as f64 * 100_000.0,
            x_hi: i as f64 * 100_000.0 + 99_999.0,
            count: 100_000,
            min: -(i as f64),
            max: i as f64 * 10.0,
            first: 0.0,
            last: 1.0,
            nonfinite: 0,
        })
        .collect();
    let mut chart = LineChart::new("m");
    chart
        .series
        .push(Series::new("r", "r", Samples::Buckets(buckets)));
    let (svg, map) = line_map(chart, &Frame::new(900, 400));
    assert_clean(&svg);
    let s = &map.series[0];
    assert_eq!(s.points, 1_000_000);
    assert_eq!(s.columns.iter().map(|c| c.count).sum::<u64>(), 1_000_000);
    assert!(s.columns.iter().any(|c| c.max == Some(90.0)));
    assert_eq!(
        s.columns.len(),
        map.plot.width as usize,
        "every column the buckets span is drawn"
    );
}
