//! Idle GPU time from sampled utilisation: how long each GPU a run held sat below a threshold,
//! and in which phase of the run.
//!
//! How samples count (the rule every figure follows):
//! - A sample stands for the time from its timestamp until the next sample of the same GPU
//!   (utilisation held until the next reading), clipped to the time the run held the GPU.
//! - A gap longer than [`GAP_FACTOR`] times the GPU's median sampling interval is not
//!   believed: the sample before it covers only that much, and the rest of the gap is
//!   *unobserved* — counted neither idle nor busy. The last sample covers one median interval.
//!   A GPU with a single sample has no interval and covers nothing.
//! - Time before the first sample is unobserved. Samples taken before the run started still
//!   say what the GPU was doing when it started.
//! - A sample is *idle* when its utilisation is below the threshold (strictly); a NaN or
//!   negative reading is unobserved.
//! - Phases, per GPU: idle time before its first busy sample is *start* (data loading,
//!   start-up), after the end of its last busy sample is *end*, between them *middle*
//!   (stalls). A GPU never busy while held is *unused*: its idle time counts there instead.

use serde::{Deserialize, Serialize};

/// How many median sampling intervals one sample may cover before the rest of a gap counts as
/// unobserved (so one or two lost readings still count, a sampler that stopped does not).
pub const GAP_FACTOR: i64 = 3;
/// The idle threshold unless the team sets another, in percent utilisation.
pub const DEFAULT_IDLE_THRESHOLD_PCT: f64 = 5.0;
/// The most idle spans kept per run for charts (the figures count every one).
pub const MAX_SPANS: usize = 2_000;

/// One reading of one GPU's utilisation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UtilSample {
    /// Unix milliseconds.
    pub ts_ms: i64,
    /// `utilization.gpu`, in percent.
    pub pct: f64,
}

/// The readings of one GPU, by its index on the machine.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuTrace {
    pub index: u32,
    /// In any order; sorted by time before use.
    pub samples: Vec<UtilSample>,
}

/// A stretch of time one GPU sat idle: `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct IdleSpan {
    pub gpu: u32,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Idle time of a run's GPUs, in GPU-seconds (one GPU idle for one second is one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct IdleFigures {
    pub threshold_pct: f64,
    /// GPUs with readings.
    pub gpus: u32,
    /// GPU-seconds covered by readings while the run held the GPUs.
    pub observed_s: f64,
    pub idle_s: f64,
    pub start_s: f64,
    pub middle_s: f64,
    pub end_s: f64,
    pub unused_s: f64,
    /// Merged idle stretches per GPU (at most [`MAX_SPANS`], the longest kept).
    pub spans: Vec<IdleSpan>,
}

impl IdleFigures {
    /// Idle share of the observed GPU time, 0 when nothing was observed.
    pub fn share(&self) -> f64 {
        if self.observed_s > 0.0 {
            self.idle_s / self.observed_s
        } else {
            0.0
        }
    }
}

fn median_interval(samples: &[UtilSample]) -> Option<i64> {
    let mut deltas: Vec<i64> = samples
        .windows(2)
        .map(|w| w[1].ts_ms - w[0].ts_ms)
        .filter(|d| *d > 0)
        .collect();
    if deltas.is_empty() {
        return None;
    }
    deltas.sort_unstable();
    Some(deltas[(deltas.len() - 1) / 2])
}

/// Idle figures of `traces` over the time the run held its GPUs, `[lo, hi)` in Unix ms, with
/// readings below `threshold_pct` counted idle. See the module's rules.
pub fn idle_figures(traces: &[GpuTrace], lo: i64, hi: i64, threshold_pct: f64) -> IdleFigures {
    let mut out = IdleFigures {
        threshold_pct,
        ..Default::default()
    };
    let mut spans = Vec::new();
    for trace in traces {
        let mut samples = trace.samples.clone();
        samples.sort_by_key(|s| s.ts_ms);
        samples.dedup_by_key(|s| s.ts_ms);
        let Some(median) = median_interval(&samples) else {
            continue;
        };
        out.gpus += 1;
        let cap = median.saturating_mul(GAP_FACTOR);
        // (covered from, covered to, idle?) of each reading, clipped to the run's window.
        let mut pieces: Vec<(i64, i64, bool)> = Vec::with_capacity(samples.len());
        for (i, s) in samples.iter().enumerate() {
            let until = samples
                .get(i + 1)
                .map_or(s.ts_ms.saturating_add(median), |n| n.ts_ms);
            let until = until.min(s.ts_ms.saturating_add(cap));
            let (a, b) = (s.ts_ms.max(lo), until.min(hi));
            if b <= a || s.pct.is_nan() || s.pct < 0.0 {
                continue;
            }
            pieces.push((a, b, s.pct < threshold_pct));
        }
        let first_busy = pieces.iter().position(|p| !p.2);
        let last_busy = pieces.iter().rposition(|p| !p.2);
        for (i, &(a, b, idle)) in pieces.iter().enumerate() {
            let secs = (b - a) as f64 / 1000.0;
            out.observed_s += secs;
            if !idle {
                continue;
            }
            out.idle_s += secs;
            match (first_busy, last_busy) {
                (Some(f), _) if i < f => out.start_s += secs,
                (_, Some(l)) if i > l => out.end_s += secs,
                (Some(_), Some(_)) => out.middle_s += secs,
                _ => out.unused_s += secs,
            }
            match spans.last_mut() {
                Some(IdleSpan { gpu, end_ms, .. }) if *gpu == trace.index && *end_ms == a => {
                    *end_ms = b
                }
                _ => spans.push(IdleSpan {
                    gpu: trace.index,
                    start_ms: a,
                    end_ms: b,
                }),
            }
        }
    }
    if spans.len() > MAX_SPANS {
        spans.sort_by_key(|s| std::cmp::Reverse(s.end_ms - s.start_ms));
        spans.truncate(MAX_SPANS);
        spans.sort_by_key(|s| (s.gpu, s.start_ms));
    }
    out.spans = spans;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(index: u32, samples: &[(i64, f64)]) -> GpuTrace {
        GpuTrace {
            index,
            samples: samples
                .iter()
                .map(|&(ts_ms, pct)| UtilSample { ts_ms, pct })
                .collect(),
        }
    }

    #[test]
    fn each_reading_holds_until_the_next_and_phases_split_idle_time() {
        // One GPU read every second: idle 2 s (start), busy 2 s, idle 1 s (stall), busy 1 s,
        // idle 2 s (end); the last reading covers one median interval (1 s).
        let t = trace(
            0,
            &[
                (0, 0.0),
                (1000, 3.0),
                (2000, 90.0),
                (3000, 80.0),
                (4000, 4.9),
                (5000, 99.0),
                (6000, 0.0),
                (7000, 1.0),
            ],
        );
        let f = idle_figures(&[t], 0, 100_000, 5.0);
        assert_eq!(f.observed_s, 8.0);
        assert_eq!(
            (f.idle_s, f.start_s, f.middle_s, f.end_s, f.unused_s),
            (5.0, 2.0, 1.0, 2.0, 0.0)
        );
        assert_eq!(f.share(), 5.0 / 8.0);
        assert_eq!(
            f.spans,
            vec![
                IdleSpan {
                    gpu: 0,
                    start_ms: 0,
                    end_ms: 2000
                },
                IdleSpan {
                    gpu: 0,
                    start_ms: 4000,
                    end_ms: 5000
                },
                IdleSpan {
                    gpu: 0,
                    start_ms: 6000,
                    end_ms: 8000
                },
            ]
        );
    }

    #[test]
    fn a_gap_past_three_intervals_is_unobserved_not_idle() {
        // Readings every 1 s, then none for 10 s: the 3000 reading covers 3 s, 7 s are unknown.
        let t = trace(
            0,
            &[
                (0, 0.0),
                (1000, 0.0),
                (2000, 0.0),
                (3000, 0.0),
                (13_000, 50.0),
                (14_000, 50.0),
            ],
        );
        let f = idle_figures(&[t], 0, 15_000, 5.0);
        assert_eq!(f.observed_s, 3.0 + 3.0 + 1.0 + 1.0);
        assert_eq!(f.idle_s, 6.0);
        assert_eq!(f.start_s, 6.0);
    }

    #[test]
    fn only_the_time_the_run_held_the_gpu_counts_and_unused_gpus_are_their_own_phase() {
        // GPU 0 busy from 2 s; GPU 1 never busy. The run held them over [1500, 4500).
        let g0 = trace(
            0,
            &[
                (0, 0.0),
                (1000, 0.0),
                (2000, 60.0),
                (3000, 60.0),
                (4000, 60.0),
            ],
        );
        let g1 = trace(
            1,
            &[(0, 0.0), (1000, 0.0), (2000, 0.0), (3000, 0.0), (4000, 0.0)],
        );
        let f = idle_figures(&[g0, g1], 1500, 4500, 5.0);
        assert_eq!(f.gpus, 2);
        assert_eq!(f.observed_s, 3.0 + 3.0);
        assert_eq!((f.start_s, f.unused_s, f.idle_s), (0.5, 3.0, 3.5));
        // A GPU with one reading has no interval and covers nothing; NaN readings are unknown.
        let one = trace(2, &[(2000, 0.0)]);
        let nan = trace(3, &[(0, f64::NAN), (1000, 0.0), (2000, 0.0)]);
        let f = idle_figures(&[one, nan], 0, 10_000, 5.0);
        assert_eq!((f.gpus, f.observed_s, f.idle_s), (1, 2.0, 2.0));
    }
}
