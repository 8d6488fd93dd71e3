//! Properties of downsampling: the envelope of each bucket (and of each pixel column drawn)
//! contains every finite value of its points, and a single spike anywhere shows, whatever the
//! length of the series and the number of columns.

use cairn_charts::{
    Bucket, Chart, ChartMap, Frame, LineChart, Point, Samples, Series, downsample, rebucket,
    render_svg,
};
use proptest::prelude::*;

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -1e6f64..1e6,
        1 => prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
        1 => prop_oneof![Just(1e300), Just(-1e300), Just(1e-300), Just(f64::MAX), Just(-f64::MAX)],
    ]
}

fn points() -> impl Strategy<Value = Vec<Point>> {
    prop::collection::vec((-1e4f64..1e4, value()), 1..600)
        .prop_map(|v| v.into_iter().map(|(x, y)| Point { x, y }).collect())
}

/// The bucket whose x span holds `x` (spans of one downsampling never overlap).
fn bucket_of(buckets: &[Bucket], x: f64) -> Option<&Bucket> {
    buckets.iter().find(|b| b.x_lo <= x && x <= b.x_hi)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn every_point_is_inside_its_bucket_envelope(pts in points(), columns in 1usize..400) {
        let buckets = downsample(&pts, None, columns);
        prop_assert!(buckets.len() <= columns);
        prop_assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), pts.len() as u64);
        prop_assert_eq!(
            buckets.iter().map(|b| b.nonfinite).sum::<u64>(),
            pts.iter().filter(|p| !p.y.is_finite()).count() as u64
        );
        for p in &pts {
            let b = bucket_of(&buckets, p.x).expect("every point lands in a bucket");
            if p.y.is_finite() {
                prop_assert!(b.min <= p.y && p.y <= b.max, "{:?} outside {:?}", p, b);
            }
        }
        prop_assert!(buckets.windows(2).all(|w| w[0].x_hi < w[1].x_lo));
    }

    #[test]
    fn a_single_spike_anywhere_shows(len in 1usize..20_000, at in any::<prop::sample::Index>(),
                                     spike in prop_oneof![Just(1e3), Just(-1e3), Just(1e300)],
                                     columns in 1usize..1500) {
        let at = at.index(len);
        let pts: Vec<Point> = (0..len)
            .map(|i| Point { x: i as f64, y: if i == at { spike } else { 1.0 + (i % 7) as f64 * 0.01 } })
            .collect();
        let buckets = downsample(&pts, None, columns);
        let b = bucket_of(&buckets, at as f64).expect("the spike's bucket");
        prop_assert!(b.min == spike || b.max == spike);
        // Merging the buckets again (as a chart does with the store's buckets) keeps it.
        let merged = rebucket(&buckets, None, (columns / 3).max(1));
        prop_assert!(merged.iter().any(|b| b.min == spike || b.max == spike));
    }

    #[test]
    fn nearly_ordered_points_are_still_all_drawn(len in 2usize..3000, at in any::<prop::sample::Index>(),
                                                 how in 0u8..3, zoom in any::<bool>()) {
        // In x order but for one point: moved back, given a NaN x, or swapped with the last.
        let mut pts: Vec<Point> = (0..len).map(|i| Point { x: i as f64, y: (i % 13) as f64 }).collect();
        let at = at.index(len);
        match how {
            0 => pts[at].x = -5.0,
            1 => pts[at].x = f64::NAN,
            _ => pts.swap(at, len - 1),
        }
        let mut chart = LineChart::new("m");
        if zoom {
            chart.x_range = Some((len as f64 * 0.25, len as f64 * 0.75));
        }
        chart.series.push(Series::new("r", "r", Samples::Points(pts.clone())));
        let map = match render_svg(&Chart::Line(chart), &Frame::new(500, 300)).expect("renders").map {
            ChartMap::Line(m) => m,
            other => panic!("a line map, got {other:?}"),
        };
        let s = &map.series[0];
        let inside = |x: f64| x >= map.x.lo && x <= map.x.hi;
        prop_assert_eq!(s.points, pts.iter().filter(|p| inside(p.x)).count() as u64);
        for p in pts.iter().filter(|p| inside(p.x)) {
            let c = s.columns.iter().find(|c| c.x_lo <= p.x && p.x <= c.x_hi).expect("a column holds it");
            prop_assert!(c.min.is_some_and(|m| m <= p.y) && c.max.is_some_and(|m| p.y <= m));
        }
    }

    #[test]
    fn the_columns_drawn_contain_every_point(pts in points(), width in 240u32..1400) {
        let mut chart = LineChart::new("m");
        chart.series.push(Series::new("r", "r", Samples::Points(pts.clone())));
        let map = match render_svg(&Chart::Line(chart), &Frame::new(width, 300)).expect("renders").map {
            ChartMap::Line(m) => m,
            other => panic!("a line map, got {other:?}"),
        };
        let s = &map.series[0];
        prop_assert!(s.columns.len() <= map.plot.width as usize);
        prop_assert_eq!(s.points, pts.len() as u64);
        for p in pts.iter().filter(|p| p.y.is_finite()) {
            let c = s.columns.iter().find(|c| c.x_lo <= p.x && p.x <= c.x_hi).expect("a column holds it");
            prop_assert!(c.min.is_some_and(|m| m <= p.y) && c.max.is_some_and(|m| p.y <= m));
        }
    }
}
