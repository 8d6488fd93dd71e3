//! Deterministic test data: training-like curves with noise and spikes, runs with params.

use cairn_charts::{Point, Samples, Series};
use cairn_model::{ExperimentId, MetricSummary, Run, RunId};

/// xorshift64*: reproducible noise without a dependency.
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Noise {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in `0..1`.
    pub fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A loss curve: exponential decay towards `floor`, multiplicative noise, one spike at
/// `spike_at` (if any) of `spike`× the value.
pub fn loss_curve(
    seed: u64,
    steps: usize,
    floor: f64,
    spike_at: Option<usize>,
    spike: f64,
) -> Vec<Point> {
    let mut n = Noise::new(seed);
    let rate = 3.0 + n.next() * 2.0;
    (0..steps)
        .map(|i| {
            let t = i as f64 / steps.max(1) as f64;
            let base = floor + (2.5 - floor) * (-rate * t).exp();
            let mut y = base * (1.0 + (n.next() - 0.5) * 0.3);
            if spike_at == Some(i) {
                y *= spike;
            }
            Point { x: i as f64, y }
        })
        .collect()
}

pub fn series(id: &str, label: &str, points: Vec<Point>) -> Series {
    Series::new(id, label, Samples::Points(points))
}

/// A run named `name` with params and a loss summary, started at a fixed time.
pub fn run(i: u64, name: &str, params: &[(&str, &str)], loss: f64) -> Run {
    let id = RunId::from_parts(1_714_564_800_000 + i, u128::from(i) * 7919);
    let exp = ExperimentId::from_parts(1_714_564_800_000, 1);
    let mut r = Run::new(id, exp, name, 1_714_564_800_000 + i as i64 * 60_000);
    for (k, v) in params {
        r.params.insert((*k).to_owned(), (*v).to_owned());
    }
    for (key, value) in [
        ("loss", loss),
        ("accuracy", 1.0 - loss / 3.0),
        ("tokens_per_s", 900.0 + i as f64 * 37.0),
    ] {
        r.metrics.insert(
            key.to_owned(),
            MetricSummary {
                last: value,
                step: 1000,
                ts_ms: 0,
                min: None,
                max: None,
                count: 1001,
            },
        );
    }
    r
}

/// A 20-run sweep over optimizer × learning rate × batch size.
pub fn sweep() -> Vec<Run> {
    let optimizers = ["adam", "sgd", "adamw", "lion"];
    let lrs = ["1e-4", "3e-4", "0.001", "0.003", "0.01"];
    let batches = ["32", "64", "128"];
    (0..20u64)
        .map(|i| {
            let opt = optimizers[i as usize % 4];
            let lr = lrs[(i as usize / 4) % 5];
            let batch = batches[i as usize % 3];
            let lr_v: f64 = lr.parse().unwrap_or(0.001);
            let loss = 0.2
                + (lr_v.log10() + 2.7).abs() * 0.25
                + if opt == "sgd" { 0.3 } else { 0.0 }
                + (i % 3) as f64 * 0.02;
            run(
                i,
                &format!("sweep-{i:02}-{opt}"),
                &[
                    ("optimizer", opt),
                    ("lr", lr),
                    ("batch_size", batch),
                    ("seed", "7"),
                ],
                loss,
            )
        })
        .collect()
}
