//! Downsampling to pixel columns: an equal-width grid over an x range and per-column
//! accumulators fed with raw points or with buckets, so that the line drawn through each column's
//! first, min, max and last value (M4 aggregation) looks exactly like the full-resolution curve and
//! no spike is ever lost, however long the series.

use crate::series::{Bucket, Point, Samples, Scale};

/// `columns` slices of the x range `lo..=hi`, of equal width on the chart (so in log10 space for
/// a log x axis).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Grid {
    pub(crate) lo: f64,
    pub(crate) hi: f64,
    pub(crate) columns: usize,
    log: bool,
    /// Where the grid starts, in the space it is equal-width in.
    start: f64,
    /// `columns / (end - start)`, computed on halves so that ranges near ±f64::MAX do not
    /// overflow.
    per_half: f64,
}

impl Grid {
    /// A linear grid; `lo < hi`, both finite, `columns >= 1`.
    pub(crate) fn new(lo: f64, hi: f64, columns: usize) -> Grid {
        Grid::with_scale(lo, hi, columns, Scale::Linear)
    }

    /// `lo < hi`, both finite (and positive for a log scale), `columns >= 1`.
    pub(crate) fn with_scale(lo: f64, hi: f64, columns: usize, scale: Scale) -> Grid {
        let log = scale == Scale::Log;
        let (start, end) = if log {
            (lo.log10(), hi.log10())
        } else {
            (lo, hi)
        };
        let columns = columns.max(1);
        Grid {
            lo,
            hi,
            columns,
            log,
            start,
            per_half: columns as f64 / (end / 2.0 - start / 2.0),
        }
    }

    /// The column holding `x`, `None` outside the range (or for a non-finite x).
    #[inline]
    pub(crate) fn index(&self, x: f64) -> Option<usize> {
        if !(x >= self.lo && x <= self.hi) {
            return None;
        }
        let u = if self.log { x.log10() } else { x };
        let i = ((u / 2.0 - self.start / 2.0) * self.per_half) as usize; // saturating cast
        Some(i.min(self.columns - 1))
    }

    /// The x at the left edge of column `i` (`i >= columns` gives `hi`).
    pub(crate) fn x_at(&self, i: usize) -> f64 {
        if i >= self.columns {
            return self.hi;
        }
        let half = i as f64 / self.per_half; // half the offset, so that ±f64::MAX stays finite
        let u = self.start + half + half;
        if self.log { 10f64.powf(u) } else { u }
    }
}

/// What is known about one column's points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Acc {
    pub(crate) x_lo: f64,
    pub(crate) x_hi: f64,
    pub(crate) count: u64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) first: f64,
    pub(crate) last: f64,
    pub(crate) nonfinite: u64,
}

impl Default for Acc {
    fn default() -> Acc {
        Acc {
            x_lo: f64::INFINITY,
            x_hi: f64::NEG_INFINITY,
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
    #[inline]
    fn point(&mut self, x: f64, y: f64) {
        if self.is_empty() {
            self.first = y;
        }
        self.last = y;
        self.count += 1;
        self.x_lo = self.x_lo.min(x);
        self.x_hi = self.x_hi.max(x);
        if y.is_finite() {
            // `f64::min`/`max` ignore a NaN operand: NaN stands for "no finite value yet".
            self.min = self.min.min(y);
            self.max = self.max.max(y);
        } else {
            self.nonfinite += 1;
        }
    }

    /// Adds `count` points spanning `x_lo..=x_hi` after everything added so far. `first`/`last`
    /// are NaN where unknown (a bucket spread over several columns).
    #[allow(clippy::too_many_arguments)]
    fn add(
        &mut self,
        x_lo: f64,
        x_hi: f64,
        count: u64,
        nonfinite: u64,
        min: f64,
        max: f64,
        first: f64,
        last: f64,
    ) {
        if self.is_empty() {
            self.first = first;
        }
        self.last = last;
        self.count += count;
        self.nonfinite += nonfinite;
        self.x_lo = self.x_lo.min(x_lo);
        self.x_hi = self.x_hi.max(x_hi);
        self.min = self.min.min(min);
        self.max = self.max.max(max);
    }

    /// Nothing was added (a column covered by a coarse bucket is not empty even with count 0).
    /// Adds a run of points in x order, all at or after `previous`; returns the last x, or
    /// `None` if the run is not in order.
    fn run(&mut self, points: &[Point], previous: f64) -> Option<f64> {
        let (first, last) = (points.first()?, points.last()?);
        let mut min = f64::INFINITY;
        let mut max = f64::NEG_INFINITY;
        let mut nonfinite = 0;
        let mut x_before = previous;
        let mut ordered = true;
        for p in points {
            // false for a NaN x as well
            ordered &= p.x >= x_before;
            x_before = p.x;
            let y = p.y;
            if y.is_finite() {
                if y < min {
                    min = y;
                }
                if y > max {
                    max = y;
                }
            } else {
                nonfinite += 1;
            }
        }
        if !ordered {
            return None;
        }
        if min > max {
            (min, max) = (f64::NAN, f64::NAN);
        }
        self.add(
            first.x,
            last.x,
            points.len() as u64,
            nonfinite,
            min,
            max,
            first.y,
            last.y,
        );
        Some(last.x)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.x_lo > self.x_hi
    }

    /// The column's value for smoothing and group means: the mean of its first and last value
    /// where finite (buckets carry no sum), else the middle of its envelope.
    pub(crate) fn representative(&self) -> Option<f64> {
        match (self.first.is_finite(), self.last.is_finite()) {
            (true, true) => Some(self.first / 2.0 + self.last / 2.0),
            (true, false) => Some(self.first),
            (false, true) => Some(self.last),
            (false, false) if self.min.is_finite() => Some(self.min / 2.0 + self.max / 2.0),
            _ => None,
        }
    }

    fn to_bucket(self) -> Bucket {
        Bucket {
            x_lo: self.x_lo,
            x_hi: self.x_hi,
            count: self.count,
            min: self.min,
            max: self.max,
            first: self.first,
            last: self.last,
            nonfinite: self.nonfinite,
        }
    }
}

/// Downsamples raw points into at most `columns` equal-width buckets over `range` (`None`: the
/// finite x extent of the points), returning the non-empty ones in x order.
///
/// The guarantee charts rely on: every finite `y` of a point inside the range lies within its
/// bucket's `min..=max`, so a single spike anywhere stays visible; NaN and ±inf are counted in
/// `nonfinite`, never mixed into the envelope. Points with a non-finite x cannot be placed and are
/// skipped. `first`/`last` follow the order of `points`.
pub fn downsample(points: &[Point], range: Option<(f64, f64)>, columns: usize) -> Vec<Bucket> {
    let s = scan_points(points, f64::NEG_INFINITY, f64::INFINITY, false);
    let extent = (s.x_lo <= s.x_hi).then_some((s.x_lo, s.x_hi));
    let Some(grid) = grid_for(range.or(extent), columns) else {
        return Vec::new();
    };
    let mut cols = vec![Acc::default(); grid.columns];
    if !(s.sorted && fill_sorted(&mut cols, &grid, points)) {
        cols = vec![Acc::default(); grid.columns];
        fill_points(&mut cols, &grid, points);
    }
    cols.into_iter()
        .filter(|a| !a.is_empty())
        .map(Acc::to_bucket)
        .collect()
}

/// Merges buckets (e.g. the store's) into at most `columns` equal-width buckets over `range`
/// (`None`: their x extent), with the same envelope guarantee as [`downsample`].
pub fn rebucket(buckets: &[Bucket], range: Option<(f64, f64)>, columns: usize) -> Vec<Bucket> {
    let Some(grid) = grid_for(range.or_else(|| extent_of_buckets(buckets)), columns) else {
        return Vec::new();
    };
    let mut cols = vec![Acc::default(); grid.columns];
    fill_buckets(&mut cols, &grid, buckets);
    cols.into_iter()
        .filter(|a| !a.is_empty())
        .map(Acc::to_bucket)
        .collect()
}

/// A grid over `range`, widened when it is a single value so that it still has a width.
fn grid_for(range: Option<(f64, f64)>, columns: usize) -> Option<Grid> {
    let (lo, hi) = range?;
    if !(lo.is_finite() && hi.is_finite()) || lo > hi || columns == 0 {
        return None;
    }
    let (lo, hi) = if lo == hi { widen(lo) } else { (lo, hi) };
    Some(Grid::new(lo, hi, columns))
}

/// A small range around `v` that is wider than zero even for subnormal or huge values.
pub(crate) fn widen(v: f64) -> (f64, f64) {
    let d = (v.abs() * 0.5).max(f64::MIN_POSITIVE);
    let (lo, hi) = (v - d, v + d);
    if lo < hi && lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (v - 1.0, v + 1.0)
    }
}

/// What one pass over a series learns before any column is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Scan {
    /// Finite x extent of the points (or buckets) in the range.
    pub(crate) x_lo: f64,
    pub(crate) x_hi: f64,
    /// Finite (and, for a log axis, positive) y extent in the range.
    pub(crate) y_lo: f64,
    pub(crate) y_hi: f64,
    /// Points in the range, and how many of them are NaN or infinite.
    pub(crate) points: u64,
    pub(crate) nonfinite: u64,
    /// Points are in non-decreasing x order (the usual case: x is a step or a time), which lets
    /// [`columns_of`] cut them into columns by binary search.
    pub(crate) sorted: bool,
}

impl Scan {
    fn empty() -> Scan {
        Scan {
            x_lo: f64::INFINITY,
            x_hi: f64::NEG_INFINITY,
            y_lo: f64::INFINITY,
            y_hi: f64::NEG_INFINITY,
            points: 0,
            nonfinite: 0,
            sorted: true,
        }
    }

    #[inline]
    fn y(&mut self, v: f64, log: bool) {
        if v.is_finite() && (!log || v > 0.0) {
            self.y_lo = self.y_lo.min(v);
            self.y_hi = self.y_hi.max(v);
        }
    }

    pub(crate) fn has_y(&self) -> bool {
        self.y_lo <= self.y_hi
    }
}

/// One pass over `samples`: extents and counts of what lies in `range` (`None`: everything
/// with a finite x).
pub(crate) fn scan(samples: &Samples, range: Option<(f64, f64)>, log_y: bool) -> Scan {
    let (lo, hi) = range.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    let mut s = Scan::empty();
    match samples {
        Samples::Points(points) => return scan_points(points, lo, hi, log_y),
        Samples::Buckets(buckets) => {
            for b in buckets {
                if b.count == 0 || b.x_hi < lo || b.x_lo > hi {
                    continue;
                }
                if b.x_lo.is_finite() {
                    s.x_lo = s.x_lo.min(b.x_lo);
                }
                if b.x_hi.is_finite() {
                    s.x_hi = s.x_hi.max(b.x_hi);
                }
                s.points += b.count;
                s.nonfinite += b.nonfinite;
                s.y(b.min, log_y);
                s.y(b.max, log_y);
                if log_y && b.min <= 0.0 {
                    // The envelope reaches below a log axis; first/last may still be above 0.
                    s.y(b.first, log_y);
                    s.y(b.last, log_y);
                }
            }
            s.sorted = false;
        }
    }
    s
}

fn scan_points(points: &[Point], lo: f64, hi: f64, log_y: bool) -> Scan {
    // Locals and plain comparisons keep this loop tight: it reads every point of every series.
    let mut sorted = true;
    let mut previous = f64::NEG_INFINITY;
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut count, mut nonfinite) = (0u64, 0u64);
    // Values at or below the floor cannot be drawn (only matters on a log axis).
    let floor = if log_y { 0.0 } else { f64::NEG_INFINITY };
    for p in points {
        let x = p.x;
        // false for a NaN x too, which binary search could not place
        sorted &= x >= previous;
        previous = x;
        let inside = x >= lo && x <= hi && x.abs() < f64::INFINITY;
        if !inside {
            continue;
        }
        if x < x_lo {
            x_lo = x;
        }
        if x > x_hi {
            x_hi = x;
        }
        count += 1;
        let y = p.y;
        if y.is_finite() {
            if y > floor {
                if y < y_lo {
                    y_lo = y;
                }
                if y > y_hi {
                    y_hi = y;
                }
            }
        } else {
            nonfinite += 1;
        }
    }
    Scan {
        x_lo,
        x_hi,
        y_lo,
        y_hi,
        points: count,
        nonfinite,
        sorted,
    }
}

/// A cheap stand-in for [`scan`] that reads a sample of each series: x from the first and last
/// points with a finite x (exact when the points are in x order, which [`columns_checked`]
/// verifies), y from every 64th point. Counts are unknown (zero). Buckets are few: they are
/// scanned exactly.
pub(crate) fn guess(samples: &Samples, range: Option<(f64, f64)>) -> Scan {
    const STRIDE: usize = 64;
    let points = match samples {
        Samples::Points(points) => points,
        Samples::Buckets(_) => return scan(samples, range, false),
    };
    let mut s = Scan::empty();
    let finite = |p: &&Point| p.x.is_finite();
    if let (Some(first), Some(last)) = (points.iter().find(finite), points.iter().rfind(finite)) {
        s.x_lo = first.x.min(last.x);
        s.x_hi = first.x.max(last.x);
    }
    let (lo, hi) = range.unwrap_or((f64::NEG_INFINITY, f64::INFINITY));
    let sample = points.iter().step_by(STRIDE).chain(points.last());
    for p in sample.filter(|p| p.x >= lo && p.x <= hi) {
        s.y(p.y, false);
    }
    s
}

/// The exact [`Scan`] of a series from its columns on a grid covering all of its points.
pub(crate) fn scan_of_columns(cols: &[Acc], sorted: bool) -> Scan {
    let mut s = Scan::empty();
    s.sorted = sorted;
    for c in cols.iter().filter(|c| !c.is_empty()) {
        s.x_lo = s.x_lo.min(c.x_lo);
        s.x_hi = s.x_hi.max(c.x_hi);
        s.points += c.count;
        s.nonfinite += c.nonfinite;
        s.y(c.min, false);
        s.y(c.max, false);
    }
    s
}

/// Dense per-column accumulators of `samples` on `grid` (length `grid.columns`); `sorted`
/// (from [`scan`]) says the points are in x order.
#[cfg(test)]
pub(crate) fn columns_of(samples: &Samples, grid: &Grid, sorted: bool) -> Vec<Acc> {
    columns_checked(samples, grid, sorted).unwrap_or_else(|| {
        let mut cols = vec![Acc::default(); grid.columns];
        if let Samples::Points(points) = samples {
            fill_points(&mut cols, grid, points);
        }
        cols
    })
}

/// [`columns_of`], where `sorted` is a claim: `None` if the points turn out not to be in x
/// order (no point is skipped in checking).
pub(crate) fn columns_checked(samples: &Samples, grid: &Grid, sorted: bool) -> Option<Vec<Acc>> {
    let mut cols = vec![Acc::default(); grid.columns];
    match samples {
        Samples::Points(points) if sorted => {
            if !fill_sorted(&mut cols, grid, points) {
                return None;
            }
        }
        Samples::Points(points) => fill_points(&mut cols, grid, points),
        Samples::Buckets(buckets) => fill_buckets(&mut cols, grid, buckets),
    }
    Some(cols)
}

fn fill_points(cols: &mut [Acc], grid: &Grid, points: &[Point]) {
    for p in points {
        if let Some(i) = grid.index(p.x) {
            cols[i].point(p.x, p.y);
        }
    }
}

/// [`fill_points`] for points in x order: each column's points are a contiguous run, found by
/// binary search, and summarised in a tight loop. Returns false (leaving `cols` meaningless) if
/// the points are not in x order after all; every point is checked.
fn fill_sorted(cols: &mut [Acc], grid: &Grid, points: &[Point]) -> bool {
    let ordered = |ps: &[Point]| ps.windows(2).all(|w| w[0].x <= w[1].x);
    let start = points.partition_point(|p| p.x < grid.lo);
    let end = points.partition_point(|p| p.x <= grid.hi).max(start);
    // Outside the range, points are only checked for order (with one point of overlap).
    if !ordered(&points[..(start + 1).min(points.len())])
        || !ordered(&points[end.saturating_sub(1)..])
    {
        return false;
    }
    let mut previous = f64::NEG_INFINITY;
    let mut rest = &points[start..end];
    while let Some(first) = rest.first() {
        let Some(c) = grid.index(first.x) else {
            return false; // out of order: a point outside the range inside it
        };
        // `Grid::index` never decreases with x, so the column's points come first.
        let n = rest
            .partition_point(|p| grid.index(p.x).is_some_and(|i| i <= c))
            .max(1);
        let (run, tail) = rest.split_at(n);
        match cols[c].run(run, previous) {
            Some(last) => previous = last,
            None => return false,
        }
        rest = tail;
    }
    true
}

fn fill_buckets(cols: &mut [Acc], grid: &Grid, buckets: &[Bucket]) {
    for b in buckets {
        if b.count == 0 || b.x_hi < grid.lo || b.x_lo > grid.hi || b.x_lo > b.x_hi {
            continue;
        }
        // A bucket only partly inside the range is kept whole: its envelope is all we know.
        let a = grid.index(b.x_lo.max(grid.lo)).unwrap_or(0);
        let z = grid.index(b.x_hi.min(grid.hi)).unwrap_or(grid.columns - 1);
        if a == z {
            cols[a].add(
                b.x_lo,
                b.x_hi,
                b.count,
                b.nonfinite,
                b.min,
                b.max,
                b.first,
                b.last,
            );
            continue;
        }
        // Coarser than a column: the envelope goes into every column it spans (conservative),
        // the points are counted once (in the first), the first value starts the first column
        // and the last value ends the last.
        for (i, col) in cols.iter_mut().enumerate().take(z + 1).skip(a) {
            let (lo, hi) = (grid.x_at(i).max(b.x_lo), grid.x_at(i + 1).min(b.x_hi));
            let (count, nonfinite) = if i == a {
                (b.count, b.nonfinite)
            } else {
                (0, 0)
            };
            let first = if i == a { b.first } else { f64::NAN };
            let last = if i == z { b.last } else { f64::NAN };
            col.add(lo, hi.max(lo), count, nonfinite, b.min, b.max, first, last);
        }
    }
}

/// The finite x extent of buckets.
fn extent_of_buckets(buckets: &[Bucket]) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for b in buckets.iter().filter(|b| b.count > 0) {
        if b.x_lo.is_finite() {
            lo = lo.min(b.x_lo);
        }
        if b.x_hi.is_finite() {
            hi = hi.max(b.x_hi);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Joins a metric with another metric logged in the same run, for charts whose x axis is that
/// other metric (`--x epoch`, `--x tokens`): both come in with x = step; the result has, for
/// each of `y`'s points or buckets, x = the value of `x_metric` at that step, interpolated
/// linearly between the nearest steps where `x_metric` was logged (it need not be logged at the
/// same steps). Points or buckets outside `x_metric`'s step range, or where it is not finite,
/// are left out. Buckets come out as buckets whose x span covers the `x_metric` values seen over
/// their step span; points as points.
pub fn pair_by_step(y: &Samples, x_metric: &Samples) -> Samples {
    // (step, value) knots of the x metric, sorted by step.
    let mut knots: Vec<(f64, f64, f64)> = match x_metric {
        // (step_lo, step_hi, value at lo / hi, min, max) collapsed to (step, lo value, hi value)
        Samples::Points(ps) => ps
            .iter()
            .filter(|p| p.x.is_finite() && p.y.is_finite())
            .map(|p| (p.x, p.y, p.y))
            .collect(),
        Samples::Buckets(bs) => bs
            .iter()
            .filter(|b| b.count > 0 && b.x_lo.is_finite() && b.x_hi.is_finite())
            .flat_map(|b| {
                let first = if b.first.is_finite() { b.first } else { b.min };
                let last = if b.last.is_finite() { b.last } else { b.max };
                [(b.x_lo, first, first), (b.x_hi, last, last)]
            })
            .filter(|k| k.1.is_finite())
            .collect(),
    };
    knots.sort_by(|a, b| a.0.total_cmp(&b.0));
    let at = |step: f64| -> Option<f64> {
        let i = knots.partition_point(|k| k.0 < step);
        if let Some(k) = knots.get(i)
            && k.0 == step
        {
            return Some(k.1);
        }
        let (a, b) = (knots.get(i.checked_sub(1)?)?, knots.get(i)?);
        let t = (step - a.0) / (b.0 - a.0);
        Some(a.2 + (b.1 - a.2) * t)
    };
    match y {
        Samples::Points(ps) => Samples::Points(
            ps.iter()
                .filter_map(|p| at(p.x).map(|x| Point { x, y: p.y }))
                .collect(),
        ),
        Samples::Buckets(bs) => Samples::Buckets(
            bs.iter()
                .filter_map(|b| {
                    let (a, z) = (at(b.x_lo)?, at(b.x_hi)?);
                    Some(Bucket {
                        x_lo: a.min(z),
                        x_hi: a.max(z),
                        ..*b
                    })
                })
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(x: f64, y: f64) -> Point {
        Point { x, y }
    }

    #[test]
    fn grid_places_both_ends() {
        let g = Grid::new(0.0, 10.0, 5);
        assert_eq!(g.index(0.0), Some(0));
        assert_eq!(g.index(1.99), Some(0));
        assert_eq!(g.index(2.0), Some(1));
        assert_eq!(g.index(10.0), Some(4));
        assert_eq!(g.index(10.5), None);
        assert_eq!(g.index(f64::NAN), None);
        assert_eq!(g.x_at(5), 10.0);
        let huge = Grid::new(-f64::MAX, f64::MAX, 4);
        assert_eq!(huge.index(0.0), Some(2));
        assert_eq!(huge.index(f64::MAX), Some(3));
    }

    #[test]
    fn buckets_coarser_than_columns_cover_every_column_they_span() {
        let b = Bucket {
            x_lo: 0.0,
            x_hi: 9.0,
            count: 10,
            min: -1.0,
            max: 5.0,
            first: 0.0,
            last: 2.0,
            nonfinite: 0,
        };
        let cols = columns_of(&Samples::Buckets(vec![b]), &Grid::new(0.0, 9.0, 3), false);
        assert_eq!(cols.iter().map(|c| c.count).sum::<u64>(), 10);
        assert!(cols.iter().all(|c| c.min == -1.0 && c.max == 5.0));
        assert_eq!((cols[0].first, cols[2].last), (0.0, 2.0));
    }

    proptest::proptest! {
        #[test]
        fn sorted_and_unsorted_paths_agree(
            mut xs in proptest::collection::vec(-1e3f64..1e3, 1..400),
            ys in proptest::collection::vec(proptest::prop_oneof![
                -10.0f64..10.0, proptest::prelude::Just(f64::NAN), proptest::prelude::Just(f64::INFINITY)
            ], 400),
            columns in 1usize..300,
            log in proptest::bool::ANY,
        ) {
            xs.sort_by(f64::total_cmp);
            if log {
                xs.iter_mut().for_each(|x| *x = x.abs() + 1.0);
                xs.sort_by(f64::total_cmp);
            }
            let points: Vec<Point> = xs.iter().zip(&ys).map(|(&x, &y)| pt(x, y)).collect();
            let (lo, hi) = (xs[0], xs[xs.len() - 1] + 1.0);
            let scale = if log { Scale::Log } else { Scale::Linear };
            let grid = Grid::with_scale(lo, hi, columns, scale);
            let mut a = vec![Acc::default(); columns];
            let mut b = vec![Acc::default(); columns];
            fill_points(&mut a, &grid, &points);
            proptest::prop_assert!(fill_sorted(&mut b, &grid, &points));
            for (x, y) in a.iter().zip(&b) {
                proptest::prop_assert_eq!(x.count, y.count);
                proptest::prop_assert_eq!(x.nonfinite, y.nonfinite);
                proptest::prop_assert!(x.min.total_cmp(&y.min).is_eq() && x.max.total_cmp(&y.max).is_eq());
                proptest::prop_assert!(x.first.total_cmp(&y.first).is_eq() && x.last.total_cmp(&y.last).is_eq());
            }
        }
    }

    #[test]
    fn pairing_interpolates_between_logged_steps() {
        let epochs = Samples::Points(vec![pt(0.0, 0.0), pt(100.0, 1.0)]);
        let loss = Samples::Points(vec![pt(50.0, 3.0), pt(100.0, 2.0), pt(150.0, 1.0)]);
        let Samples::Points(paired) = pair_by_step(&loss, &epochs) else {
            panic!("points in, points out");
        };
        assert_eq!(paired, vec![pt(0.5, 3.0), pt(1.0, 2.0)]);
    }
}
