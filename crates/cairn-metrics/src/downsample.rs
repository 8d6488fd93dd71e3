//! The bucketing half of [`MetricStore::downsample`](crate::MetricStore::downsample): an
//! equal-width grid over a step range and accumulators fed with single points, whole summaries,
//! or summaries that straddle one bucket boundary.
//!
//! Reading chunks and deciding what to decode is the store's job; this module does no IO.

use std::collections::BTreeMap;

use crate::summary::Summary;
use crate::{Bucket, Point};

/// Equal-width buckets over the steps `lo..=hi`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Grid {
    lo: i64,
    hi: i64,
    width: u128,
    len: usize,
}

/// Where a summary's points fall on the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fit {
    /// No point is in the range.
    Outside,
    /// Every point is in this bucket.
    One(usize),
    /// The points are in this bucket and the next, and none is non-finite.
    Two(usize),
    /// Only decoding the points can place them.
    Decode,
}

impl Grid {
    /// `lo <= hi` and `buckets >= 1`.
    pub(crate) fn new(lo: i64, hi: i64, buckets: usize) -> Self {
        let span = (i128::from(hi) - i128::from(lo) + 1).max(1) as u128;
        let width = span.div_ceil(buckets.max(1) as u128);
        let len = usize::try_from(span.div_ceil(width)).unwrap_or(usize::MAX);
        Grid { lo, hi, width, len }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn contains(&self, step: i64) -> bool {
        (self.lo..=self.hi).contains(&step)
    }

    pub(crate) fn index(&self, step: i64) -> Option<usize> {
        if !self.contains(step) {
            return None;
        }
        let offset = (i128::from(step) - i128::from(self.lo)) as u128;
        usize::try_from(offset / self.width).ok()
    }

    /// Last step of bucket `i`.
    fn end(&self, i: usize) -> i64 {
        let end = i128::from(self.lo) + ((i as u128 + 1) * self.width) as i128 - 1;
        end.min(i128::from(self.hi)) as i64
    }

    pub(crate) fn fit(&self, s: &Summary) -> Fit {
        if s.step_max < self.lo || s.step_min > self.hi {
            return Fit::Outside;
        }
        let (Some(a), Some(b)) = (self.index(s.step_min), self.index(s.step_max)) else {
            return Fit::Decode; // partly outside the range
        };
        if a == b {
            Fit::One(a)
        } else if b == a + 1 && s.nonfinite == 0 && s.count >= 2 {
            Fit::Two(a)
        } else {
            Fit::Decode
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Acc {
    step_lo: i64,
    step_hi: i64,
    count: u64,
    min: f64,
    max: f64,
    first: f64,
    last: f64,
    nonfinite: u64,
}

impl Default for Acc {
    fn default() -> Self {
        Acc {
            step_lo: i64::MAX,
            step_hi: i64::MIN,
            count: 0,
            min: f64::NAN,
            max: f64::NAN,
            first: f64::NAN,
            last: f64::NAN,
            nonfinite: 0,
        }
    }
}

impl Acc {
    /// Adds `count` points spanning `step_lo..=step_hi` in append order after everything so far.
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        step_lo: i64,
        step_hi: i64,
        count: u64,
        nonfinite: u64,
        min: f64,
        max: f64,
        first: f64,
        last: f64,
    ) {
        if self.count == 0 {
            self.first = first;
        }
        self.last = last;
        self.step_lo = self.step_lo.min(step_lo);
        self.step_hi = self.step_hi.max(step_hi);
        self.count += count;
        self.nonfinite += nonfinite;
        // `f64::min`/`max` ignore a NaN operand: NaN means "no finite value".
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }
}

/// Bucket accumulators: dense when the grid is small, sparse when a caller asks for far more
/// buckets than there are points (zoomed all the way in).
#[derive(Debug)]
enum Slots {
    Dense(Vec<Acc>),
    Sparse(BTreeMap<usize, Acc>),
}

/// Accumulates points and summaries, fed in append order, into the buckets of a [`Grid`].
#[derive(Debug)]
pub(crate) struct Buckets {
    grid: Grid,
    slots: Slots,
}

impl Buckets {
    /// `points_hint`: about how many points will be fed (picks dense or sparse storage).
    pub(crate) fn new(grid: Grid, points_hint: u64) -> Self {
        let dense_limit = points_hint.saturating_mul(2).max(4096);
        let slots = if (grid.len() as u64) <= dense_limit {
            Slots::Dense(vec![Acc::default(); grid.len()])
        } else {
            Slots::Sparse(BTreeMap::new())
        };
        Buckets { grid, slots }
    }

    fn slot(&mut self, i: usize) -> Option<&mut Acc> {
        match &mut self.slots {
            Slots::Dense(v) => v.get_mut(i),
            Slots::Sparse(m) => Some(m.entry(i).or_default()),
        }
    }

    pub(crate) fn point(&mut self, p: &Point) {
        let Some(i) = self.grid.index(p.step) else {
            return;
        };
        let finite = p.value.is_finite();
        let (v, nonfinite) = if finite { (p.value, 0) } else { (f64::NAN, 1) };
        if let Some(acc) = self.slot(i) {
            acc.add(p.step, p.step, 1, nonfinite, v, v, p.value, p.value);
        }
    }

    /// Adds a summary whose points all fall in bucket `i` (see [`Grid::fit`]).
    pub(crate) fn one(&mut self, i: usize, s: &Summary) {
        if let Some(acc) = self.slot(i) {
            acc.add(
                s.step_min,
                s.step_max,
                s.count,
                s.nonfinite,
                s.min,
                s.max,
                s.first,
                s.last,
            );
        }
    }

    /// Adds a summary whose points fall in buckets `i` and `i + 1`, none of them non-finite.
    pub(crate) fn two(&mut self, i: usize, s: &Summary) {
        let boundary = self.grid.end(i);
        // Each side holds at least one point (the ones at step_min and step_max); the rest is
        // shared in proportion to the step spans.
        let left_span = (i128::from(boundary) - i128::from(s.step_min) + 1) as u128;
        let total_span = (i128::from(s.step_max) - i128::from(s.step_min) + 1) as u128;
        let rest = u128::from(s.count.saturating_sub(2));
        let left = 1 + (rest * left_span / total_span.max(1)) as u64;
        let left = left.min(s.count);
        let right = s.count - left;
        if let Some(acc) = self.slot(i) {
            acc.add(s.step_min, boundary, left, 0, s.min, s.max, s.first, s.last);
        }
        if right > 0
            && let Some(acc) = self.slot(i + 1)
        {
            acc.add(
                boundary + 1,
                s.step_max,
                right,
                0,
                s.min,
                s.max,
                s.first,
                s.last,
            );
        }
    }

    /// The non-empty buckets in step order.
    pub(crate) fn finish(self) -> Vec<Bucket> {
        let to_bucket = |a: &Acc| Bucket {
            step_lo: a.step_lo,
            step_hi: a.step_hi,
            count: a.count,
            min: a.min,
            max: a.max,
            first: a.first,
            last: a.last,
            nonfinite: a.nonfinite,
        };
        match self.slots {
            Slots::Dense(v) => v.iter().filter(|a| a.count > 0).map(to_bucket).collect(),
            Slots::Sparse(m) => m.values().filter(|a| a.count > 0).map(to_bucket).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(step_min: i64, step_max: i64, count: u64) -> Summary {
        Summary {
            step_min,
            step_max,
            ts_min: 0,
            ts_max: 0,
            first: 1.0,
            last: 2.0,
            min: 0.5,
            max: 3.0,
            count,
            nonfinite: 0,
        }
    }

    #[test]
    fn grid_covers_the_range_with_equal_widths() {
        let g = Grid::new(0, 999, 3);
        assert_eq!((g.width, g.len()), (334, 3));
        assert_eq!(g.index(333), Some(0));
        assert_eq!(g.index(334), Some(1));
        assert_eq!(g.index(999), Some(2));
        assert_eq!(g.index(1000), None);
        assert_eq!(g.end(2), 999);
        let full = Grid::new(i64::MIN, i64::MAX, 7);
        assert_eq!(full.index(i64::MAX), Some(6));
        assert_eq!(Grid::new(5, 5, 100).len(), 1);
    }

    #[test]
    fn fit_classifies_summaries() {
        let g = Grid::new(0, 999, 10); // width 100
        assert_eq!(g.fit(&summary(10, 90, 50)), Fit::One(0));
        assert_eq!(g.fit(&summary(150, 250, 50)), Fit::Two(1));
        assert_eq!(g.fit(&summary(150, 350, 50)), Fit::Decode);
        assert_eq!(g.fit(&summary(-5, 50, 50)), Fit::Decode);
        assert_eq!(g.fit(&summary(1000, 1050, 50)), Fit::Outside);
        let mut with_nan = summary(150, 250, 50);
        with_nan.nonfinite = 1;
        assert_eq!(g.fit(&with_nan), Fit::Decode);
    }

    #[test]
    fn straddling_summary_is_split_and_enveloped() {
        let g = Grid::new(0, 999, 10);
        let mut b = Buckets::new(g, 128);
        b.two(1, &summary(150, 249, 100));
        let out = b.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].count + out[1].count, 100);
        assert_eq!(
            (
                out[0].step_lo,
                out[0].step_hi,
                out[1].step_lo,
                out[1].step_hi
            ),
            (150, 199, 200, 249)
        );
        assert!(out.iter().all(|b| b.min == 0.5 && b.max == 3.0));
    }

    #[test]
    fn sparse_storage_for_huge_bucket_counts() {
        let g = Grid::new(0, i64::MAX, usize::MAX);
        let mut b = Buckets::new(g, 2);
        b.point(&Point {
            step: 7,
            ts_ms: 0,
            value: 1.0,
        });
        b.point(&Point {
            step: i64::MAX,
            ts_ms: 0,
            value: f64::NAN,
        });
        let out = b.finish();
        assert_eq!(out.len(), 2);
        assert_eq!((out[1].count, out[1].nonfinite), (1, 1));
        assert!(out[1].min.is_nan());
    }
}
