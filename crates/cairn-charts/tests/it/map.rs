//! The chart map: serialisable, consistent with what was drawn, and enough to hover, zoom and
//! toggle runs.

use cairn_charts::{
    Chart, ChartMap, Frame, LineChart, LineMap, Samples, Series, downsample, render_svg,
};

use crate::fixtures::{loss_curve, series, sweep};

fn line_map(chart: &LineChart, frame: &Frame) -> LineMap {
    match render_svg(&Chart::Line(chart.clone()), frame)
        .expect("renders")
        .map
    {
        ChartMap::Line(m) => m,
        other => panic!("a line map, got {other:?}"),
    }
}

#[test]
fn maps_round_trip_through_json() {
    let runs = sweep();
    let mut line = LineChart::new("loss");
    line.smoothing = 0.5;
    let mut pts = loss_curve(1, 3000, 0.2, Some(100), 3.0);
    pts[7].y = f64::NAN;
    line.series.push(series("a", "run a", pts));
    let charts = [
        Chart::Line(line),
        Chart::Parallel(cairn_charts::ParallelChart::from_runs(
            &runs,
            &["params.lr", "params.optimizer", "metrics.loss"],
        )),
        Chart::Scatter(cairn_charts::ScatterChart::from_runs(
            &runs,
            "params.lr",
            "metrics.loss",
            Some("params.optimizer"),
        )),
        Chart::Bars(cairn_charts::BarChart::from_runs(
            &runs,
            &["loss", "accuracy"],
        )),
    ];
    for chart in &charts {
        let map = render_svg(chart, &Frame::default()).expect("renders").map;
        let json = serde_json::to_string(&map).expect("serialises");
        let back: ChartMap = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, map);
    }
}

#[test]
fn hover_finds_the_column_under_the_pointer() {
    let mut chart = LineChart::new("loss");
    chart
        .series
        .push(series("a", "a", loss_curve(2, 100_000, 0.2, None, 1.0)));
    let map = line_map(&chart, &Frame::new(1200, 500));
    let s = &map.series[0];
    assert_eq!(
        s.columns.len(),
        map.plot.width as usize,
        "one column per pixel"
    );
    for c in s.columns.iter().step_by(97) {
        // The pixel column's left and right edges bound the x of its points.
        let left = map.x.from_px(f64::from(map.plot.x) + f64::from(c.i));
        let right = map.x.from_px(f64::from(map.plot.x) + f64::from(c.i) + 1.0);
        assert!(
            left - 1e-6 <= c.x_lo && c.x_hi <= right + 1e-6,
            "{c:?} not in {left}..{right}"
        );
        // And the y mapping places its envelope inside the plot.
        let top = map.y.to_px(c.max.expect("finite")).expect("placed");
        assert!(top >= f64::from(map.plot.y) && top <= f64::from(map.plot.y + map.plot.height));
    }
}

#[test]
fn zooming_re_renders_a_range_at_full_resolution() {
    let pts = loss_curve(3, 200_000, 0.2, Some(100_500), 10.0);
    let mut chart = LineChart::new("loss");
    chart.series.push(series("a", "a", pts.clone()));
    let whole = line_map(&chart, &Frame::new(1200, 500));
    // The user drags over four pixels around the spike; the UI asks for that x range.
    let at = whole.x.to_px(100_500.0).expect("on the chart").floor();
    let (lo, hi) = (whole.x.from_px(at - 2.0), whole.x.from_px(at + 2.0));
    assert!(
        lo < 100_500.0 && 100_500.0 < hi,
        "the spike is in the range"
    );
    // The caller supplies buckets for that range only, one per column (as the store would).
    let buckets = downsample(&pts, Some((lo, hi)), 1200);
    chart.series[0] = Series::new("a", "a", Samples::Buckets(buckets));
    chart.x_range = Some((lo, hi));
    let zoomed = line_map(&chart, &Frame::new(1200, 500));
    let s = &zoomed.series[0];
    let in_range = pts.iter().filter(|p| p.x >= lo && p.x <= hi).count() as u64;
    assert_eq!(s.points, in_range);
    assert!(
        s.columns.iter().all(|c| c.count == 1),
        "every point has its own column"
    );
    assert!(
        s.columns.iter().any(|c| c.max == Some(pts[100_500].y)),
        "the spike is there"
    );
}

#[test]
fn runs_can_be_toggled_by_id_and_groups_list_their_runs() {
    let runs = sweep();
    let mut chart = LineChart::new("loss");
    chart.group_by = Some("params.optimizer".into());
    for (i, r) in runs.iter().enumerate() {
        chart.series.push(
            series(
                &r.id.to_string(),
                &r.name,
                loss_curve(i as u64, 500, 0.2, None, 1.0),
            )
            .in_group(cairn_charts::group_key(r, "params.optimizer")),
        );
    }
    let map = line_map(&chart, &Frame::default());
    let ids: Vec<String> = runs.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(
        map.series.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        ids
    );
    let keys: Vec<&str> = map.groups.iter().map(|g| g.key.as_str()).collect();
    assert_eq!(keys, ["adam", "adamw", "lion", "sgd"]);
    assert_eq!(map.groups.iter().map(|g| g.runs.len()).sum::<usize>(), 20);
    // Without a run the UI re-renders the chart from the remaining series.
    chart.series.retain(|s| s.id != ids[0]);
    let fewer = line_map(&chart, &Frame::default());
    assert_eq!(fewer.groups[0].runs.len(), 4, "adam lost one run");
    for g in &map.groups {
        for c in &g.columns {
            assert!(c.lo <= c.mean && c.mean <= c.hi, "{c:?}");
        }
    }
}
