//! Downsampling properties: the envelope holds every value, spikes survive, counts add up, on
//! both the summary path (many points per bucket) and the decoding path (zoomed in), with
//! non-monotonic steps and non-finite values.

use cairn_metrics::{Bucket, MetricStore, Point};
use proptest::prelude::*;

use crate::{RUN, Rng, loss_curve};

/// A training-like series: steps mostly increasing by a random stride, with occasional resumes
/// from an earlier step; float32 noisy values with rare NaN/inf.
fn series(n: usize, seed: u64, resume_every: u64, nonfinite_every: u64) -> Vec<Point> {
    let mut rng = Rng(seed | 1);
    let stride = 1 + (seed % 13) as i64;
    let mut step = (seed % 1000) as i64 - 500;
    (0..n)
        .map(|i| {
            if resume_every > 0 && rng.next().is_multiple_of(resume_every) {
                step -= (rng.next() % 3_000) as i64;
            }
            step += stride;
            let value = if nonfinite_every > 0 && rng.next().is_multiple_of(nonfinite_every) {
                [f64::NAN, f64::INFINITY, f64::NEG_INFINITY][(rng.next() % 3) as usize]
            } else {
                f64::from(1.0 / (1.0 + i as f32 / 500.0) + rng.unit() * 0.1 - 0.05)
            };
            Point {
                step,
                ts_ms: i as i64,
                value,
            }
        })
        .collect()
}

/// Appends in uneven batches so that tail rows, full chunks and short chunks all occur.
fn store_with(points: &[Point], seal: bool, seed: u64) -> MetricStore {
    let mut store = MetricStore::open_in_memory().unwrap();
    let mut rng = Rng(seed | 1);
    let mut at = 0;
    while at < points.len() {
        let size = match rng.next() % 4 {
            0 => 1 + (rng.next() % 50) as usize,
            1 => 1 + (rng.next() % 3_000) as usize,
            _ => 1 + (rng.next() % 20_000) as usize,
        };
        let end = (at + size).min(points.len());
        store.append(RUN, "m", &points[at..end]).unwrap();
        at = end;
    }
    if seal {
        store.seal_run(RUN).unwrap();
    }
    store
}

/// Checks everything that must hold of `buckets` for `points` within `range`.
fn check(points: &[Point], range: Option<(i64, i64)>, max_buckets: usize, buckets: &[Bucket]) {
    let (lo, hi) = range.unwrap_or_else(|| {
        let lo = points.iter().map(|p| p.step).min().unwrap_or(0);
        let hi = points.iter().map(|p| p.step).max().unwrap_or(0);
        (lo, hi)
    });
    let in_range: Vec<&Point> = points
        .iter()
        .filter(|p| (lo..=hi).contains(&p.step))
        .collect();
    assert!(
        buckets.len() <= max_buckets,
        "{} buckets > {max_buckets}",
        buckets.len()
    );
    // Sorted, disjoint, inside the range, non-empty.
    for w in buckets.windows(2) {
        assert!(
            w[0].step_hi < w[1].step_lo,
            "overlapping buckets {:?} {:?}",
            w[0],
            w[1]
        );
    }
    for b in buckets {
        assert!(
            b.count > 0 && b.step_lo <= b.step_hi && lo <= b.step_lo && b.step_hi <= hi,
            "{b:?}"
        );
        assert!(b.nonfinite <= b.count);
    }
    assert_eq!(
        buckets.iter().map(|b| b.count).sum::<u64>(),
        in_range.len() as u64
    );
    let nonfinite = in_range.iter().filter(|p| !p.value.is_finite()).count() as u64;
    assert_eq!(buckets.iter().map(|b| b.nonfinite).sum::<u64>(), nonfinite);
    // The envelope contains every value.
    for p in &in_range {
        let i = buckets.partition_point(|b| b.step_hi < p.step);
        let b = buckets.get(i).filter(|b| b.step_lo <= p.step);
        let b = b.unwrap_or_else(|| panic!("no bucket holds step {}", p.step));
        if p.value.is_finite() {
            assert!(
                b.min <= p.value && p.value <= b.max,
                "{} outside {b:?}",
                p.value
            );
        }
    }
    // With exact step widths there are no more buckets than the grid has.
    let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
    let width = span.div_ceil(max_buckets as u128);
    assert!(buckets.len() as u128 <= span.div_ceil(width));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn envelope_and_counts_hold(
        n in 1usize..60_000,
        seed in any::<u64>(),
        resume_every in prop_oneof![Just(0u64), 2_000u64..20_000, 2u64..50],
        nonfinite_every in prop_oneof![Just(0u64), 50u64..5_000],
        buckets in prop_oneof![1usize..500, 1usize..5, 500usize..5_000],
        seal in any::<bool>(),
        range in proptest::option::of((0.0f64..1.0, 0.0f64..1.0)),
    ) {
        let points = series(n, seed, resume_every, nonfinite_every);
        let store = store_with(&points, seal, seed);
        let lo = points.iter().map(|p| p.step).min().unwrap();
        let hi = points.iter().map(|p| p.step).max().unwrap();
        // A sub-range in steps, possibly reaching beyond the series on both sides.
        let range = range.map(|(a, b)| {
            let span = (hi - lo + 200) as f64;
            let (a, b) = (lo - 100 + (a * span) as i64, lo - 100 + (b * span) as i64);
            (a.min(b), a.max(b))
        });
        let out = store.downsample(RUN, "m", range, buckets).unwrap();
        check(&points, range, buckets, &out);
    }

    #[test]
    fn a_single_spike_is_never_lost(
        n in 20_000usize..120_000,
        at in any::<prop::sample::Index>(),
        buckets in 1usize..800,
        seed in any::<u64>(),
        spike in prop_oneof![Just(1e6f64), Just(-1e6f64), 3.0f64..10.0, -10.0f64..-1.0],
    ) {
        let mut points = loss_curve(0, n, &mut Rng(seed | 1));
        let i = at.index(n);
        points[i].value = spike;
        let store = store_with(&points, seed % 2 == 0, seed);
        let out = store.downsample(RUN, "m", None, buckets).unwrap();
        check(&points, None, buckets, &out);
        let b = out.iter().find(|b| b.step_lo <= points[i].step && points[i].step <= b.step_hi).unwrap();
        if spike > 0.0 {
            prop_assert_eq!(b.max, spike);
            prop_assert_eq!(out.iter().map(|b| b.max).fold(f64::MIN, f64::max), spike);
        } else {
            prop_assert_eq!(b.min, spike);
        }
    }
}

#[test]
fn summary_path_and_decoding_path_agree_on_whole_blocks() {
    // Steps 0..131072, 1024 steps per bucket: every block lies in one bucket, so the summary
    // path must give exactly what decoding every point gives.
    let points = loss_curve(0, 16 * 8192, &mut Rng(5));
    let mut store = MetricStore::open_in_memory().unwrap();
    store.append(RUN, "m", &points).unwrap();
    let summary = store.downsample(RUN, "m", None, 128).unwrap();
    assert_eq!(summary.len(), 128);
    for (k, b) in summary.iter().enumerate() {
        let inside = &points[k * 1024..(k + 1) * 1024];
        assert_eq!(
            (b.step_lo, b.step_hi, b.count),
            (k as i64 * 1024, k as i64 * 1024 + 1023, 1024)
        );
        assert_eq!(b.first, inside[0].value);
        assert_eq!(b.last, inside[1023].value);
        assert_eq!(
            b.min,
            inside.iter().map(|p| p.value).fold(f64::INFINITY, f64::min)
        );
        assert_eq!(
            b.max,
            inside
                .iter()
                .map(|p| p.value)
                .fold(f64::NEG_INFINITY, f64::max)
        );
    }
}

#[test]
fn zoomed_in_buckets_are_exact() {
    let points = loss_curve(0, 50_000, &mut Rng(6));
    let store = store_with(&points, false, 6);
    let out = store
        .downsample(RUN, "m", Some((20_000, 20_099)), 100)
        .unwrap();
    assert_eq!(out.len(), 100);
    for (b, p) in out.iter().zip(&points[20_000..20_100]) {
        assert_eq!((b.step_lo, b.step_hi, b.count), (p.step, p.step, 1));
        assert_eq!(
            (b.min, b.max, b.first, b.last),
            (p.value, p.value, p.value, p.value)
        );
    }
}

#[test]
fn degenerate_requests() {
    let points = loss_curve(0, 1_000, &mut Rng(8));
    let store = store_with(&points, false, 8);
    assert!(store.downsample(RUN, "m", None, 0).unwrap().is_empty());
    assert!(
        store
            .downsample(RUN, "m", Some((10, 5)), 10)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .downsample(RUN, "m", Some((5_000, 6_000)), 10)
            .unwrap()
            .is_empty()
    );
    let all = store.downsample(RUN, "m", None, usize::MAX).unwrap();
    assert_eq!(all.len(), 1_000);
    // 2^64 steps in at most 2^64 - 1 buckets: buckets two steps wide.
    let wide = store
        .downsample(RUN, "m", Some((i64::MIN, i64::MAX)), usize::MAX)
        .unwrap();
    assert_eq!(wide.len(), 500);
    assert!(
        wide.iter()
            .all(|b| b.count == 2 && b.step_hi == b.step_lo + 1)
    );
    let one = store.downsample(RUN, "m", None, 1).unwrap();
    assert_eq!(
        (one.len(), one[0].count, one[0].step_lo, one[0].step_hi),
        (1, 1_000, 0, 999)
    );
}
