//! Axes: the mapping between data values and pixels (the same one the UI gets in the chart map,
//! so hover and zoom agree with what was drawn), automatic ranges, tick positions and labels for
//! numbers, steps, wall-clock times and durations.

use serde::{Deserialize, Serialize};

use crate::series::Scale;

/// What an axis measures, which decides how its ticks are placed and labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Unit {
    /// A plain number (metric values, params).
    Value,
    /// Training steps: integers, labelled 10k, 1.5M.
    Step,
    /// Milliseconds since the Unix epoch, labelled as a clock time.
    EpochMs,
    /// Seconds, labelled as a duration (1h30m).
    Seconds,
}

/// How one axis maps data values to pixels: `lo` is drawn at pixel `px_lo`, `hi` at `px_hi`,
/// linearly in the value (or in its log10 for [`Scale::Log`]) in between. For a y axis `px_lo`
/// is the bottom of the plot, so `px_lo > px_hi`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AxisMap {
    /// Linear or log.
    pub scale: Scale,
    /// The value at `px_lo`.
    pub lo: f64,
    /// The value at `px_hi`.
    pub hi: f64,
    /// The pixel (x or y, from the canvas' top left) of `lo`.
    pub px_lo: f64,
    /// The pixel of `hi`.
    pub px_hi: f64,
    /// What the values are.
    pub unit: Unit,
    /// The axis title drawn.
    pub title: String,
}

impl AxisMap {
    /// Where `v` falls between `lo` (0) and `hi` (1); `None` for a value that cannot be placed
    /// (non-finite, or <= 0 on a log axis).
    pub fn fraction(&self, v: f64) -> Option<f64> {
        if !v.is_finite() {
            return None;
        }
        match self.scale {
            Scale::Linear => {
                // Halves keep spans near ±f64::MAX finite.
                Some((v / 2.0 - self.lo / 2.0) / (self.hi / 2.0 - self.lo / 2.0))
            }
            Scale::Log => {
                if v <= 0.0 {
                    return None;
                }
                let (a, b) = (self.lo.log10(), self.hi.log10());
                Some((v.log10() - a) / (b - a))
            }
        }
    }

    /// The pixel of `v`, `None` if it cannot be placed. Values outside `lo..=hi` map outside the
    /// pixel range.
    pub fn to_px(&self, v: f64) -> Option<f64> {
        self.fraction(v)
            .map(|t| self.px_lo + (self.px_hi - self.px_lo) * t)
    }

    /// The value drawn at pixel `px` (the inverse of [`AxisMap::to_px`]).
    pub fn from_px(&self, px: f64) -> f64 {
        let t = (px - self.px_lo) / (self.px_hi - self.px_lo);
        match self.scale {
            Scale::Linear => {
                let half = (self.hi / 2.0 - self.lo / 2.0) * t;
                self.lo + half + half
            }
            Scale::Log => {
                let (a, b) = (self.lo.log10(), self.hi.log10());
                10f64.powf(a + (b - a) * t)
            }
        }
    }

    /// The pixel of `v` rounded and kept within a few pixels of the axis, for drawing.
    pub(crate) fn px_clamped(&self, v: f64) -> Option<i32> {
        let px = self.to_px(v)?;
        let (a, b) = if self.px_lo < self.px_hi {
            (self.px_lo, self.px_hi)
        } else {
            (self.px_hi, self.px_lo)
        };
        Some(px.clamp(a - 3.0, b + 3.0).round() as i32)
    }

    /// Tick positions and labels, about `target` of them.
    pub(crate) fn ticks(&self, target: usize, utc_offset_min: i32) -> Vec<(f64, String)> {
        let target = target.max(2);
        match (self.scale, self.unit) {
            (Scale::Log, _) => log_ticks(self.lo, self.hi, target),
            (Scale::Linear, Unit::EpochMs) => time_ticks(self.lo, self.hi, target, utc_offset_min),
            (Scale::Linear, Unit::Seconds) => duration_ticks(self.lo, self.hi, target),
            (Scale::Linear, unit) => {
                let (values, step) = linear_ticks(self.lo, self.hi, target);
                values
                    .into_iter()
                    .map(|v| (v, format_number(v, step, unit == Unit::Step)))
                    .collect()
            }
        }
    }
}

fn positive_finite(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}

/// A range that shows every value of `lo..=hi` with a little room around it, widened when it
/// is a single value, and with positive bounds on a log scale.
pub(crate) fn padded(lo: f64, hi: f64, scale: Scale) -> (f64, f64) {
    match scale {
        Scale::Linear => {
            let (lo, hi) = if lo < hi {
                (lo, hi)
            } else {
                crate::downsample::widen(lo)
            };
            let pad = (hi / 2.0 - lo / 2.0) * 0.1; // 5% of the span on each side
            let (a, b) = (lo - pad, hi + pad);
            if a.is_finite() && b.is_finite() {
                (a, b)
            } else {
                (lo, hi)
            }
        }
        Scale::Log => {
            let (a, b) = (lo.log10(), hi.log10());
            let (a, b) = if a < b { (a, b) } else { (a - 0.5, b + 0.5) };
            let pad = (b - a) * 0.05;
            // Keep within the positive finite doubles.
            let lo2 = 10f64.powf(a - pad).max(f64::MIN_POSITIVE.min(lo));
            let hi2 = 10f64.powf(b + pad).min(f64::MAX);
            if lo2 > 0.0 && lo2 < hi2 {
                (lo2, hi2)
            } else {
                (f64::MIN_POSITIVE, f64::MAX)
            }
        }
    }
}

/// Nice linear ticks (1, 2 or 5 times a power of ten apart) within `lo..=hi`, and their step.
pub(crate) fn linear_ticks(lo: f64, hi: f64, target: usize) -> (Vec<f64>, f64) {
    let span_half = hi / 2.0 - lo / 2.0;
    if !positive_finite(span_half) {
        return (vec![lo], 1.0);
    }
    let raw = span_half / target as f64 * 2.0;
    let step = nice_step(raw);
    if !positive_finite(step) {
        return (vec![lo, hi], hi / 2.0 - lo / 2.0);
    }
    let first = (lo / step).ceil();
    let last = (hi / step).floor();
    // Too many ticks means lo and hi are so large compared with their difference that steps
    // of this size cannot be told apart in f64: show the two ends only.
    if !(first.is_finite() && last.is_finite()) || last - first > 4.0 * target as f64 {
        return (vec![lo, hi], span_half * 2.0);
    }
    let mut out = Vec::new();
    let mut k = first;
    while k <= last {
        let v = k * step;
        out.push(if v == 0.0 { 0.0 } else { v }); // no "-0"
        k += 1.0;
    }
    (out, step)
}

/// 1, 2 or 5 times a power of ten, near `raw`.
fn nice_step(raw: f64) -> f64 {
    let exp = raw.log10().floor();
    let mag = 10f64.powf(exp);
    let f = raw / mag;
    // The nearest nice factor, so that the tick count stays close to the target.
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn log_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let (a, b) = (lo.log10(), hi.log10());
    if !(a.is_finite() && b.is_finite()) {
        return Vec::new();
    }
    let (first, last) = (a.ceil() as i64, b.floor() as i64);
    let decades = last - first + 1;
    if decades < 2 {
        // Less than a decade in view: nice linear values, still placed on the log scale.
        let (values, step) = linear_ticks(lo, hi, target);
        return values
            .into_iter()
            .filter(|v| *v > 0.0)
            .map(|v| (v, format_number(v, step, false)))
            .collect();
    }
    let every = ((decades as f64) / target as f64).ceil().max(1.0) as i64;
    let mut out = Vec::new();
    let mut e = first;
    while e <= last {
        let v = 10f64.powi(e as i32);
        out.push((v, format_power(e)));
        if decades <= 2 {
            for m in [2.0, 5.0] {
                let w = v * m;
                if w <= hi {
                    out.push((w, format_number(w, v, false)));
                }
            }
        }
        e += every;
    }
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

fn format_power(e: i64) -> String {
    match e {
        -3..=5 => format_number(10f64.powi(e as i32), 10f64.powi(e as i32), false),
        _ => format!("1e{e}"),
    }
}

/// A tick label for `v` on an axis whose ticks are `step` apart: as few digits as tell the
/// ticks apart; exponent notation for very large or small values; k/M/G for steps.
pub(crate) fn format_number(v: f64, step: f64, si: bool) -> String {
    if v == 0.0 {
        return "0".to_owned();
    }
    let mag = v.abs();
    if si && (1e3..1e15).contains(&mag) {
        let (div, suffix) = if mag >= 1e12 {
            (1e12, "T")
        } else if mag >= 1e9 {
            (1e9, "G")
        } else if mag >= 1e6 {
            (1e6, "M")
        } else {
            (1e3, "k")
        };
        let decimals = decimals_for(step / div);
        return format!("{:.*}{suffix}", decimals, v / div);
    }
    if (1e-4..1e7).contains(&mag) && step >= 1e-9 {
        let decimals = decimals_for(step);
        return format!("{:.*}", decimals, v);
    }
    // Exponent notation with as many mantissa digits as the step needs.
    let digits = (mag.log10().floor() - step.abs().log10().floor()).clamp(0.0, 15.0) as usize;
    let s = format!("{:.*e}", digits, v);
    trim_mantissa(&s)
}

/// Decimals needed to tell apart multiples of `step`.
fn decimals_for(step: f64) -> usize {
    if !positive_finite(step) {
        return 0;
    }
    let d = -step.log10().floor();
    // 2.5-style steps are not produced, but 0.2 * 10^k needs no more than its exponent.
    d.clamp(0.0, 12.0) as usize
}

/// `1.50e3` → `1.5e3`, `2.00e-7` → `2e-7`.
fn trim_mantissa(s: &str) -> String {
    match s.split_once('e') {
        Some((m, e)) if m.contains('.') => {
            let m = m.trim_end_matches('0').trim_end_matches('.');
            format!("{m}e{e}")
        }
        _ => s.to_owned(),
    }
}

const SECOND: f64 = 1.0;
const MINUTE: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86_400.0;

/// Tick intervals for time axes, in seconds.
const TIME_STEPS: &[f64] = &[
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    SECOND,
    2.0 * SECOND,
    5.0 * SECOND,
    10.0 * SECOND,
    15.0 * SECOND,
    30.0 * SECOND,
    MINUTE,
    2.0 * MINUTE,
    5.0 * MINUTE,
    10.0 * MINUTE,
    15.0 * MINUTE,
    30.0 * MINUTE,
    HOUR,
    2.0 * HOUR,
    3.0 * HOUR,
    6.0 * HOUR,
    12.0 * HOUR,
    DAY,
    2.0 * DAY,
    7.0 * DAY,
    14.0 * DAY,
    30.0 * DAY,
    91.0 * DAY,
    182.0 * DAY,
    365.0 * DAY,
];

fn time_step(span_s: f64, target: usize) -> f64 {
    let raw = span_s / target as f64;
    TIME_STEPS
        .iter()
        .copied()
        .find(|s| *s >= raw * 0.7)
        .unwrap_or_else(|| nice_step(raw / (365.0 * DAY)) * 365.0 * DAY)
}

/// Ticks of a wall-clock axis (values in ms since the epoch), at round local times.
fn time_ticks(lo_ms: f64, hi_ms: f64, target: usize, utc_offset_min: i32) -> Vec<(f64, String)> {
    let offset_ms = f64::from(utc_offset_min) * 60_000.0;
    let step_ms = time_step((hi_ms - lo_ms) / 1000.0, target) * 1000.0;
    if !positive_finite(step_ms) || (hi_ms - lo_ms) / step_ms > 1000.0 {
        return vec![(lo_ms, clock_label(lo_ms + offset_ms, 1000.0, true))];
    }
    let mut out = Vec::new();
    let mut t = ((lo_ms + offset_ms) / step_ms).ceil() * step_ms;
    let mut previous_day = None;
    while t - offset_ms <= hi_ms {
        let day = (t / 86_400_000.0).floor();
        let new_day = previous_day != Some(day);
        previous_day = Some(day);
        out.push((t - offset_ms, clock_label(t, step_ms, new_day)));
        t += step_ms;
    }
    out
}

/// `local_ms` formatted for ticks `step_ms` apart; the date is shown where the day changes (and
/// only the date for steps of a day or more).
fn clock_label(local_ms: f64, step_ms: f64, new_day: bool) -> String {
    let total_ms = local_ms.floor() as i64;
    let days = total_ms.div_euclid(86_400_000);
    let ms_of_day = total_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    if step_ms >= 86_400_000.0 {
        return if step_ms >= 28.0 * 86_400_000.0 {
            format!("{y}-{m:02}")
        } else {
            format!("{m:02}-{d:02}")
        };
    }
    let time = if step_ms >= 60_000.0 {
        format!("{h:02}:{min:02}")
    } else if step_ms >= 1000.0 {
        format!("{h:02}:{min:02}:{s:02}")
    } else {
        format!("{min:02}:{s:02}.{ms:03}")
    };
    if new_day {
        format!("{m:02}-{d:02} {time}")
    } else {
        time
    }
}

/// Year, month, day of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Ticks of a duration axis (values in seconds).
fn duration_ticks(lo: f64, hi: f64, target: usize) -> Vec<(f64, String)> {
    let step = time_step(hi - lo, target);
    if !positive_finite(step) || (hi - lo) / step > 1000.0 {
        return vec![(lo, format_duration(lo, 1.0))];
    }
    let mut out = Vec::new();
    let mut t = (lo / step).ceil() * step;
    while t <= hi {
        out.push((t, format_duration(t, step)));
        t += step;
    }
    out
}

/// `5400` → `1h30m`; sub-second steps show milliseconds.
pub(crate) fn format_duration(secs: f64, step: f64) -> String {
    if secs == 0.0 {
        return "0".to_owned();
    }
    let sign = if secs < 0.0 { "-" } else { "" };
    let a = secs.abs();
    if step < 1.0 {
        return format!("{sign}{:.*}s", decimals_for(step), a);
    }
    let total = a.round() as i64;
    let (d, h, m, s) = (
        total / 86_400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    let mut out = String::from(sign);
    for (n, unit) in [(d, "d"), (h, "h"), (m, "m"), (s, "s")] {
        if n != 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(scale: Scale, lo: f64, hi: f64) -> AxisMap {
        AxisMap {
            scale,
            lo,
            hi,
            px_lo: 500.0,
            px_hi: 100.0,
            unit: Unit::Value,
            title: String::new(),
        }
    }

    #[test]
    fn mapping_round_trips_on_both_scales() {
        for a in [axis(Scale::Linear, -2.0, 6.0), axis(Scale::Log, 1e-3, 1e3)] {
            for px in [100.0, 250.0, 500.0] {
                let v = a.from_px(px);
                assert!((a.to_px(v).unwrap() - px).abs() < 1e-9, "{a:?} {px}");
            }
        }
        let huge = axis(Scale::Linear, -1e308, 1e308);
        assert_eq!(huge.to_px(0.0), Some(300.0));
        assert_eq!(axis(Scale::Log, 1.0, 10.0).to_px(-1.0), None);
    }

    #[test]
    fn ticks_are_nice_and_labels_distinct() {
        let (v, step) = linear_ticks(0.0, 1.0, 5);
        assert_eq!(step, 0.2);
        assert_eq!(v.len(), 6);
        let labels: Vec<_> = v.iter().map(|x| format_number(*x, step, false)).collect();
        assert_eq!(labels, ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(format_number(150_000.0, 50_000.0, true), "150k");
        assert_eq!(format_number(1.5e300, 1e299, false), "1.5e300");
        assert_eq!(format_number(3e-300, 1e-300, false), "3e-300");
        let log = log_ticks(1e-6, 1e2, 5);
        assert!(log.iter().any(|(_, l)| l == "1e-6"));
        assert!(log.iter().any(|(_, l)| l == "100"));
    }

    #[test]
    fn time_and_duration_labels() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(format_duration(5400.0, 60.0), "1h30m");
        // 2024-01-01T00:00Z to +2h: ticks on the half hour, the first with its date.
        let t0 = 19_723.0 * 86_400_000.0;
        let ticks = time_ticks(t0, t0 + 7_200_000.0, 4, 0);
        assert_eq!(ticks[0].1, "01-01 00:00");
        assert_eq!(ticks[1].1, "00:30");
        // The same instant one hour east.
        let east = time_ticks(t0, t0 + 7_200_000.0, 4, 60);
        assert_eq!(east[0].1, "01-01 01:00");
    }
}
