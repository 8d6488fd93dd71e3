//! Line charts: one metric of one or many runs, downsampled to one bucket per pixel column and
//! drawn as the M4 polyline (each column's first, min, max and last value), so the picture is the
//! full-resolution one and every spike shows; EMA smoothing over a faint raw curve; groups drawn
//! as their mean with a min–max or ±std band.

use plotters::prelude::DrawingBackend;

use crate::axis::{AxisMap, Unit, padded};
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, TITLE_PX, fit_text};
use crate::downsample::{Acc, Grid, Scan, columns_checked, guess, scan, scan_of_columns};
use crate::error::ChartError;
use crate::fields::natural_cmp;
use crate::frame::{Entry, Frame, Legend, draw_axes, draw_legend, layout_legend, place_plot};
use crate::map::{ColumnMap, GroupColumnMap, GroupMap, LineMap, PixelRect, SeriesMap};
use crate::series::{Band, LineChart, Samples, Scale, Series, XAxis};
use crate::theme::{Marker, Rgb};

/// Charts with more samples than this scan and downsample their series on several threads.
const PARALLEL_ABOVE: usize = 200_000;

fn total_samples(chart: &LineChart) -> usize {
    chart
        .series
        .iter()
        .map(|s| match &s.samples {
            Samples::Points(p) => p.len(),
            Samples::Buckets(b) => b.len(),
        })
        .sum()
}

/// `items.iter().map(f)`, spread over the available cores when `parallel` (scoped threads; the
/// order of the results is kept).
fn par_map<T: Sync, R: Send>(items: &[T], parallel: bool, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = if parallel {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(items.len())
    } else {
        1
    };
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| match h.join() {
                Ok(v) => v,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
}

pub(crate) fn validate(chart: &LineChart) -> Result<(), ChartError> {
    if !(0.0..1.0).contains(&chart.smoothing) {
        return Err(ChartError::Spec {
            field: "smoothing",
            value: chart.smoothing.to_string(),
            reason: "must be in 0.0..1.0 (0 = off)",
        });
    }
    for (field, range, scale) in [
        ("x_range", chart.x_range, chart.x_scale),
        ("y_range", chart.y_range, chart.y_scale),
    ] {
        if let Some((lo, hi)) = range {
            let bad = !(lo.is_finite() && hi.is_finite() && lo < hi)
                || (scale == Scale::Log && lo <= 0.0);
            if bad {
                return Err(ChartError::Spec {
                    field,
                    value: format!("{lo}..{hi}"),
                    reason: "must be finite with lo < hi (and lo > 0 on a log scale)",
                });
            }
        }
    }
    Ok(())
}

/// Debiased exponential moving average over the present values (TensorBoard's smoothing):
/// missing values are skipped and stay missing.
pub(crate) fn ema(values: &[Option<f64>], weight: f64) -> Vec<Option<f64>> {
    let mut acc = 0.0;
    let mut norm = 0.0;
    values
        .iter()
        .map(|v| {
            v.map(|v| {
                acc = acc * weight + (1.0 - weight) * v;
                norm = norm * weight + (1.0 - weight);
                acc / norm
            })
        })
        .collect()
}

/// Fills the missing values between two present ones by linear interpolation (a run whose
/// points are sparser than the pixel columns still has a value in every column it spans).
fn interpolate(values: &mut [Option<f64>]) {
    let mut last: Option<(usize, f64)> = None;
    for i in 0..values.len() {
        if let Some(v) = values[i] {
            if let Some((j, u)) = last
                && i > j + 1
            {
                for (k, slot) in values.iter_mut().enumerate().take(i).skip(j + 1) {
                    let t = (k - j) as f64 / (i - j) as f64;
                    *slot = Some(u + (v - u) * t);
                }
            }
            last = Some((i, v));
        }
    }
}

/// Mean and population standard deviation, scaled so that values near ±f64::MAX do not
/// overflow.
fn mean_std(values: &[f64]) -> (f64, f64) {
    let scale = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if scale == 0.0 || values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|v| v / scale).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|v| (v / scale - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean * scale, var.sqrt() * scale)
}

/// The pixel row of a column's value, with values a log axis cannot place pushed just below
/// the plot.
fn py(y: &AxisMap, v: f64) -> Option<i32> {
    if y.scale == Scale::Log && v.is_finite() && v <= 0.0 {
        return Some(y.px_lo.round() as i32 + 3);
    }
    y.px_clamped(v)
}

fn push(path: &mut Vec<(i32, i32)>, p: (i32, i32)) {
    if path.last() != Some(&p) {
        path.push(p);
    }
}

/// The M4 polyline of a series: per column its first, min, max and last value, broken where a
/// column holds only non-finite values.
fn m4_segments(cols: &[Acc], x0: i32, y: &AxisMap) -> Vec<Vec<(i32, i32)>> {
    let mut segments = Vec::new();
    let mut path: Vec<(i32, i32)> = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if c.is_empty() {
            continue;
        }
        let (Some(lo), Some(hi)) = (py(y, c.min), py(y, c.max)) else {
            if !path.is_empty() {
                segments.push(std::mem::take(&mut path));
            }
            continue;
        };
        if y.scale == Scale::Log && c.max <= 0.0 {
            if !path.is_empty() {
                segments.push(std::mem::take(&mut path));
            }
            continue;
        }
        let x = x0 + i as i32;
        let first = c.first.is_finite().then(|| py(y, c.first)).flatten();
        let last = c.last.is_finite().then(|| py(y, c.last)).flatten();
        if let Some(f) = first {
            push(&mut path, (x, f));
        }
        // Visit the envelope end nearer the first value first.
        let start = first.or_else(|| path.last().map(|p| p.1)).unwrap_or(lo);
        let (a, b) = if (start - lo).abs() <= (start - hi).abs() {
            (lo, hi)
        } else {
            (hi, lo)
        };
        push(&mut path, (x, a));
        push(&mut path, (x, b));
        if let Some(l) = last {
            push(&mut path, (x, l));
        }
    }
    if !path.is_empty() {
        segments.push(path);
    }
    segments
}

/// A polyline through per-column values, broken where a value is missing and `gaps[i]` says
/// the column is a gap (all non-finite) rather than merely empty.
fn value_segments(
    values: &[Option<f64>],
    gaps: &[bool],
    x0: i32,
    y: &AxisMap,
) -> Vec<Vec<(i32, i32)>> {
    let mut segments = Vec::new();
    let mut path = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match v.and_then(|v| py(y, v)) {
            Some(p) => push(&mut path, (x0 + i as i32, p)),
            None if gaps.get(i).copied().unwrap_or(false) && !path.is_empty() => {
                segments.push(std::mem::take(&mut path));
            }
            None => {}
        }
    }
    if !path.is_empty() {
        segments.push(path);
    }
    segments
}

/// A series' columns and what is drawn from them.
#[derive(Debug)]
struct Drawn {
    cols: Vec<Acc>,
    reps: Vec<Option<f64>>,
    smoothed: Vec<Option<f64>>,
    gaps: Vec<bool>,
    scan: Scan,
}

/// Where everything goes, for some ranges.
#[derive(Debug)]
struct Layout {
    legend: Legend,
    plot: PixelRect,
    x_axis: AxisMap,
    y_axis: AxisMap,
    y_ticks: Vec<(f64, String)>,
    grid: Grid,
}

/// The chart's layout given what is known of its series.
fn layout(
    chart: &LineChart,
    frame: &Frame,
    region: PixelRect,
    group_keys: &[String],
    scans: &[Scan],
    x_range: Option<(f64, f64)>,
) -> Layout {
    let pal = frame.theme.palette();
    let log_y = chart.y_scale == Scale::Log;
    let (x_lo, x_hi) = match x_range {
        Some(r) => r,
        None => {
            let lo = scans.iter().map(|s| s.x_lo).fold(f64::INFINITY, f64::min);
            let hi = scans
                .iter()
                .map(|s| s.x_hi)
                .fold(f64::NEG_INFINITY, f64::max);
            let lo = if chart.x_scale == Scale::Log {
                lo.max(f64::MIN_POSITIVE)
            } else {
                lo
            };
            if lo < hi {
                (lo, hi)
            } else if lo == hi {
                crate::downsample::widen(lo)
            } else if chart.x_scale == Scale::Log {
                (1.0, 10.0)
            } else {
                (0.0, 1.0)
            }
        }
    };
    let (x_lo, x_hi) = if chart.x_scale == Scale::Log && x_lo <= 0.0 {
        (x_hi.min(1.0) / 10.0, x_hi.max(1.0))
    } else {
        (x_lo, x_hi)
    };
    let (y_lo, y_hi) = match chart.y_range {
        Some(r) => r,
        None => {
            let lo = scans.iter().map(|s| s.y_lo).fold(f64::INFINITY, f64::min);
            let hi = scans
                .iter()
                .map(|s| s.y_hi)
                .fold(f64::NEG_INFINITY, f64::max);
            if lo <= hi {
                padded(lo, hi, chart.y_scale)
            } else if log_y {
                (1.0, 10.0)
            } else {
                (0.0, 1.0)
            }
        }
    };

    let entries: Vec<Entry> = if chart.is_grouped() {
        group_keys
            .iter()
            .enumerate()
            .map(|(gi, k)| {
                let n = chart
                    .series
                    .iter()
                    .filter(|s| s.group.as_deref() == Some(k))
                    .count();
                let (color, marker) = pal.style(gi);
                Entry {
                    label: format!("{k} ({n})"),
                    color,
                    marker,
                }
            })
            .collect()
    } else {
        chart
            .series
            .iter()
            .zip(scans)
            .enumerate()
            .map(|(i, (s, sc))| {
                let (color, marker) = pal.style(i);
                let label = if sc.nonfinite > 0 {
                    format!("{} ({} NaN/inf)", s.label, sc.nonfinite)
                } else {
                    s.label.clone()
                };
                Entry {
                    label,
                    color,
                    marker,
                }
            })
            .collect()
    };
    let title_h = 30;
    let bottom_h = 42;
    let legend = layout_legend(
        chart.group_by.clone(),
        entries,
        region,
        region.height - title_h - bottom_h,
    );

    let mut y_axis = AxisMap {
        scale: chart.y_scale,
        lo: y_lo,
        hi: y_hi,
        px_lo: 0.0,
        px_hi: 0.0,
        unit: Unit::Value,
        title: chart.metric.clone(),
    };
    let (plot, y_ticks) = place_plot(
        region,
        (title_h, bottom_h),
        legend.width,
        &mut y_axis,
        frame.utc_offset_minutes,
    );
    let x_unit = match chart.x {
        XAxis::Step => Unit::Step,
        XAxis::WallTime => Unit::EpochMs,
        XAxis::RelativeTime => Unit::Seconds,
        XAxis::Metric(_) => Unit::Value,
    };
    let x_axis = AxisMap {
        scale: chart.x_scale,
        lo: x_lo,
        hi: x_hi,
        // Column i is drawn at pixel plot.x + i; the axis spans the columns' left edges.
        px_lo: f64::from(plot.x),
        px_hi: f64::from(plot.right()),
        unit: x_unit,
        title: match (&chart.x, frame.utc_offset_minutes) {
            (XAxis::WallTime, 0) => "time (UTC)".to_owned(),
            (XAxis::WallTime, m) => format!("time (UTC{:+03}:{:02})", m / 60, (m % 60).abs()),
            (x, _) => x.title(),
        },
    };
    let grid = Grid::with_scale(x_lo, x_hi, plot.width as usize, chart.x_scale);
    Layout {
        legend,
        plot,
        x_axis,
        y_axis,
        y_ticks,
        grid,
    }
}

/// Draws `chart` into `region` of the canvas and returns its map.
pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &LineChart,
    frame: &Frame,
    region: PixelRect,
) -> Result<LineMap, ChartError> {
    draw_in(cv, chart, frame, region, true)
}

/// [`draw`]; `of_runs` says the series are runs (the title counts them) rather than, say, the
/// GPUs of one run in a system-metrics panel.
pub(crate) fn draw_in<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &LineChart,
    frame: &Frame,
    region: PixelRect,
    of_runs: bool,
) -> Result<LineMap, ChartError> {
    validate(chart)?;
    let pal = frame.theme.palette();
    let log_y = chart.y_scale == Scale::Log;
    let grouped = chart.is_grouped();

    let x_range = chart.x_range.map(|(lo, hi)| {
        if chart.x_scale == Scale::Log {
            (lo.max(f64::MIN_POSITIVE), hi)
        } else {
            (lo, hi)
        }
    });

    // Groups, in natural order of their keys.
    let mut group_keys: Vec<String> = chart
        .series
        .iter()
        .filter_map(|s| s.group.clone())
        .collect();
    group_keys.sort_by(|a, b| natural_cmp(a, b));
    group_keys.dedup();
    let group_of = |key: &Option<String>| {
        key.as_ref()
            .and_then(|k| group_keys.iter().position(|g| g == k))
    };

    // Ranges and columns. The layout (so the pixel grid) depends on the y range and on the
    // legend, which depend on the data; reading every point twice, once for the ranges and once
    // for the columns, doubles the cost of long series. So the first layout comes from a guess
    // (x from the first and last points, exact when they are in x order; y from a sample),
    // the columns are built on it, and they are rebuilt only if the exact ranges they yield
    // lay the chart out differently. A log y axis needs the smallest positive value, which
    // columns do not keep, so it is scanned exactly first.
    let big = total_samples(chart) > PARALLEL_ABOVE;
    let mut exact = log_y;
    let mut scans: Vec<Scan> = par_map(&chart.series, big, |s| {
        if exact {
            scan(&s.samples, x_range, log_y)
        } else {
            guess(&s.samples, x_range)
        }
    });
    let mut lay = layout(chart, frame, region, &group_keys, &scans, x_range);
    let cols: Vec<Vec<Acc>> = loop {
        let with_scans: Vec<(&Series, &Scan)> = chart.series.iter().zip(&scans).collect();
        let attempt: Vec<Option<Vec<Acc>>> = par_map(&with_scans, big, |&(s, sc)| {
            columns_checked(&s.samples, &lay.grid, sc.sorted)
        });
        if attempt.iter().any(Option::is_none) {
            // Points taken to be in x order were not: scan every series and start over.
            scans = par_map(&chart.series, big, |s| scan(&s.samples, x_range, log_y));
            exact = true;
            lay = layout(chart, frame, region, &group_keys, &scans, x_range);
            continue;
        }
        let cols: Vec<Vec<Acc>> = attempt.into_iter().flatten().collect();
        if exact {
            break cols;
        }
        scans = cols
            .iter()
            .zip(&scans)
            .map(|(c, s)| scan_of_columns(c, s.sorted))
            .collect();
        exact = true;
        let exact_lay = layout(chart, frame, region, &group_keys, &scans, x_range);
        let same_pixels = exact_lay.grid == lay.grid && exact_lay.plot == lay.plot;
        lay = exact_lay;
        if same_pixels {
            break cols;
        }
    };
    let Layout {
        legend,
        plot,
        x_axis,
        y_axis,
        y_ticks,
        grid,
    } = lay;
    let no_data = !scans.iter().any(Scan::has_y);

    // Columns, smoothing.
    let smoothing = chart.smoothing;
    let with_cols: Vec<(Vec<Acc>, &Scan)> = cols.into_iter().zip(&scans).collect();
    let drawn: Vec<Drawn> = par_map(&with_cols, big, |(cols, sc)| {
        let cols = cols.clone();
        let reps: Vec<Option<f64>> = cols.iter().map(|c| c.representative()).collect();
        let gaps: Vec<bool> = cols
            .iter()
            .map(|c| !c.is_empty() && !c.min.is_finite())
            .collect();
        let smoothed = if smoothing > 0.0 {
            ema(&reps, smoothing)
        } else {
            Vec::new()
        };
        Drawn {
            cols,
            reps,
            smoothed,
            gaps,
            scan: **sc,
        }
    });

    // Draw: background, title, grid and ticks.
    let title = chart.title.clone().unwrap_or_else(|| chart.metric.clone());
    cv.text(
        &fit_text(&title, TITLE_PX, f64::from(plot.width) * 0.6),
        (plot.x, region.y + 15),
        TITLE_PX,
        pal.text,
        Align::Start,
        true,
        false,
    )?;
    let mut notes = Vec::new();
    if smoothing > 0.0 {
        notes.push(format!("EMA {smoothing}"));
    }
    if log_y {
        notes.push("log y".to_owned());
    }
    if grouped {
        notes.push(match chart.band {
            Band::MinMax => "band: min–max".to_owned(),
            Band::StdDev => "band: ±1 std".to_owned(),
        });
    }
    if of_runs {
        notes.push(match chart.series.len() {
            1 => "1 run".to_owned(),
            n => format!("{n} runs"),
        });
    }
    cv.text(
        &notes.join(" · "),
        (plot.right(), region.y + 15),
        TICK_PX,
        pal.muted,
        Align::End,
        false,
        false,
    )?;
    cv.text(
        &fit_text(&y_axis.title, LABEL_PX, f64::from(plot.height)),
        (region.x + 10, plot.y + plot.height / 2),
        LABEL_PX,
        pal.text,
        Align::Middle,
        false,
        true,
    )?;
    draw_axes(cv, plot, Some(&x_axis), &y_axis, frame, pal, &y_ticks)?;
    for &(lo, hi) in &chart.shade {
        if let (Some(a), Some(b)) = (x_axis.to_px(lo), x_axis.to_px(hi)) {
            let (a, b) = (a.min(b), a.max(b));
            let a = (a.round() as i32).clamp(plot.x, plot.right());
            let b = (b.round() as i32).clamp(plot.x, plot.right());
            if b > a {
                cv.rect(
                    (a, plot.y + 1),
                    (b, plot.bottom() - 1),
                    pal.alert,
                    0.14,
                    true,
                )?;
            }
        }
    }

    let thick = if grouped || chart.series.len() <= 10 {
        2
    } else {
        1
    };
    let mut groups = Vec::new();
    if grouped {
        for (gi, key) in group_keys.iter().enumerate() {
            let (color, _) = pal.style(gi);
            let members: Vec<usize> = (0..chart.series.len())
                .filter(|&i| chart.series[i].group.as_ref() == Some(key))
                .collect();
            let mut reps: Vec<Vec<Option<f64>>> = Vec::new();
            let mut smooth: Vec<Vec<Option<f64>>> = Vec::new();
            for &m in &members {
                let mut r = drawn[m].reps.clone();
                interpolate(&mut r);
                if smoothing > 0.0 {
                    smooth.push(ema(&r, smoothing));
                }
                reps.push(r);
            }
            let mut columns = Vec::new();
            let mut mean_line = vec![None; grid.columns];
            let mut smooth_line = vec![None; grid.columns];
            for i in 0..grid.columns {
                let values: Vec<f64> = reps.iter().filter_map(|r| r[i]).collect();
                if values.is_empty() {
                    continue;
                }
                let (mean, std) = mean_std(&values);
                let (lo, hi) = match chart.band {
                    Band::MinMax => {
                        let mut lo = f64::INFINITY;
                        let mut hi = f64::NEG_INFINITY;
                        for (k, &m) in members.iter().enumerate() {
                            let c = &drawn[m].cols[i];
                            if c.min.is_finite() {
                                lo = lo.min(c.min);
                                hi = hi.max(c.max);
                            } else if let Some(v) = reps[k][i] {
                                lo = lo.min(v);
                                hi = hi.max(v);
                            }
                        }
                        (lo, hi)
                    }
                    Band::StdDev => (mean - std, mean + std),
                };
                let smoothed = (smoothing > 0.0)
                    .then(|| {
                        let s: Vec<f64> = smooth.iter().filter_map(|r| r[i]).collect();
                        (!s.is_empty()).then(|| mean_std(&s).0)
                    })
                    .flatten();
                mean_line[i] = Some(mean);
                smooth_line[i] = smoothed;
                columns.push(GroupColumnMap {
                    i: i as u32,
                    runs: values.len() as u32,
                    mean,
                    lo,
                    hi,
                    smoothed,
                });
            }
            draw_band(cv, &columns, plot.x, &y_axis, color)?;
            let no_gaps = vec![false; grid.columns];
            if smoothing > 0.0 {
                for seg in value_segments(&mean_line, &no_gaps, plot.x, &y_axis) {
                    cv.polyline(seg, color, 0.35, 1)?;
                }
                for seg in value_segments(&smooth_line, &no_gaps, plot.x, &y_axis) {
                    cv.polyline(seg, color, 1.0, thick)?;
                }
            } else {
                for seg in value_segments(&mean_line, &no_gaps, plot.x, &y_axis) {
                    cv.polyline(seg, color, 1.0, thick)?;
                }
            }
            groups.push(GroupMap {
                key: key.clone(),
                color: color.hex(),
                runs: members
                    .iter()
                    .map(|&m| chart.series[m].id.clone())
                    .collect(),
                columns,
            });
        }
    } else {
        for (i, d) in drawn.iter().enumerate() {
            let (color, marker) = pal.style(i);
            let raw_alpha = if smoothing > 0.0 { 0.25 } else { 1.0 };
            let mut end = None;
            for seg in m4_segments(&d.cols, plot.x, &y_axis) {
                end = seg.last().copied();
                cv.polyline(seg, color, raw_alpha, 1)?;
            }
            if smoothing > 0.0 {
                for seg in value_segments(&d.smoothed, &d.gaps, plot.x, &y_axis) {
                    end = seg.last().copied();
                    cv.polyline(seg, color, 1.0, thick)?;
                }
            }
            if let Some(p) = end {
                cv.marker(marker, p, 3, color)?;
            }
        }
    }

    // Non-finite values: a strip along the bottom of the plot under each run of columns holding
    // any, and a triangle where each run starts.
    for (i, d) in drawn.iter().enumerate() {
        if d.scan.nonfinite == 0 {
            continue;
        }
        let color = match group_of(&chart.series[i].group) {
            Some(g) => pal.style(g).0,
            None => pal.style(i).0,
        };
        // Runs of non-empty columns holding non-finite values; empty columns between two such
        // columns do not break a run.
        let mut run: Option<(usize, usize)> = None;
        let mut runs = Vec::new();
        for (k, c) in d.cols.iter().enumerate().filter(|(_, c)| !c.is_empty()) {
            match (c.nonfinite > 0, run) {
                (true, Some((a, _))) => run = Some((a, k)),
                (true, None) => run = Some((k, k)),
                (false, Some(r)) => {
                    runs.push(r);
                    run = None;
                }
                (false, None) => {}
            }
        }
        runs.extend(run);
        for (start, end) in runs {
            let (a, b) = (plot.x + start as i32, plot.x + end as i32 + 1);
            cv.rect(
                (a, plot.bottom() - 3),
                (b, plot.bottom()),
                pal.alert,
                0.9,
                true,
            )?;
            cv.marker(Marker::TriangleUp, (a, plot.bottom() - 8), 3, color)?;
        }
    }
    if no_data {
        let msg = if chart.series.is_empty() {
            "no data"
        } else {
            "no finite values in range"
        };
        cv.text(
            msg,
            (plot.x + plot.width / 2, plot.y + plot.height / 2),
            LABEL_PX,
            pal.muted,
            Align::Middle,
            false,
            false,
        )?;
    }
    draw_legend(cv, &legend, plot.right() + 14, plot.y, pal)?;

    // The map.
    let finite = |v: f64| v.is_finite().then_some(v);
    let series = chart
        .series
        .iter()
        .zip(&drawn)
        .enumerate()
        .map(|(i, (s, d))| {
            let (color, marker) = match group_of(&s.group) {
                Some(g) => pal.style(g),
                None => pal.style(i),
            };
            SeriesMap {
                id: s.id.clone(),
                label: s.label.clone(),
                group: s.group.clone(),
                color: color.hex(),
                marker,
                points: d.scan.points,
                nonfinite: d.scan.nonfinite,
                columns: d
                    .cols
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| !c.is_empty())
                    .map(|(k, c)| ColumnMap {
                        i: k as u32,
                        x_lo: c.x_lo,
                        x_hi: c.x_hi,
                        count: c.count,
                        min: finite(c.min),
                        max: finite(c.max),
                        first: finite(c.first),
                        last: finite(c.last),
                        smoothed: d.smoothed.get(k).copied().flatten(),
                        nonfinite: c.nonfinite,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(LineMap {
        plot,
        x: x_axis,
        y: y_axis,
        smoothing,
        series,
        groups,
        legend_hidden: legend.hidden,
    })
}

/// A group's band as filled polygons, one per stretch of columns with data.
fn draw_band<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    columns: &[GroupColumnMap],
    x0: i32,
    y: &AxisMap,
    color: Rgb,
) -> Result<(), ChartError> {
    let mut k = 0;
    while k < columns.len() {
        let start = k;
        while k + 1 < columns.len() && columns[k + 1].i == columns[k].i + 1 {
            k += 1;
        }
        let stretch = &columns[start..=k];
        k += 1;
        let mut upper = Vec::with_capacity(stretch.len());
        let mut lower = Vec::with_capacity(stretch.len());
        for c in stretch {
            let x = x0 + c.i as i32;
            if let (Some(a), Some(b)) = (py(y, c.hi), py(y, c.lo)) {
                push(&mut upper, (x, a));
                push(&mut lower, (x, b));
            }
        }
        if upper.len() == 1 {
            cv.line(upper[0], lower[0], color, 0.5)?;
            continue;
        }
        // The edges are drawn as well as the fill: a spike one column wide is a sliver of fill
        // nobody sees, but its edge is a clear line.
        cv.polyline(upper.clone(), color, 0.45, 1)?;
        cv.polyline(lower.clone(), color, 0.45, 1)?;
        lower.reverse();
        upper.extend(lower);
        cv.polygon(upper, color, 0.15)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ema_is_debiased_and_skips_missing() {
        let s = ema(&[Some(1.0), None, Some(1.0), Some(3.0)], 0.5);
        assert_eq!(s[0], Some(1.0));
        assert_eq!(s[1], None);
        assert_eq!(s[2], Some(1.0));
        // (0.25 * 1 + 0.5 * 3 ...) / norm: 1.0 weighted 3/7, 3.0 weighted 4/7.
        let v = s[3].unwrap();
        assert!(
            (v - (1.0 * 3.0 / 7.0 + 3.0 * 4.0 / 7.0)).abs() < 1e-12,
            "{v}"
        );
    }

    #[test]
    fn interpolation_fills_only_between_values() {
        let mut v = vec![None, Some(0.0), None, None, Some(3.0), None];
        interpolate(&mut v);
        assert_eq!(
            v,
            vec![None, Some(0.0), Some(1.0), Some(2.0), Some(3.0), None]
        );
    }

    #[test]
    fn mean_and_std_survive_huge_values() {
        let (m, s) = mean_std(&[1e308, 1e308, -1e308, -1e308]);
        assert_eq!(m, 0.0);
        assert!((s - 1e308).abs() / 1e308 < 1e-12);
    }
}
