//! Integration tests of `cairn-metrics`, one binary (`autotests = false`): the store's behaviour
//! through its public API, durability on real files, downsampling properties, and storage size
//! on a real training log.

mod downsample;
mod durability;
mod storage;
mod store;

use cairn_metrics::Point;

/// A deterministic xorshift generator, so tests need no `rand`.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// A float32-origin decaying loss curve with noise, steps `from..from + n`.
pub(crate) fn loss_curve(from: i64, n: usize, rng: &mut Rng) -> Vec<Point> {
    (from..from + n as i64)
        .map(|i| {
            let noise = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 0.05;
            let v = 2.3 * (-(i as f32) / 30_000.0).exp() + 0.15 + noise;
            Point {
                step: i,
                ts_ms: 1_795_752_388_045 + i * 31 + (rng.next() % 4) as i64,
                value: f64::from(v),
            }
        })
        .collect()
}

/// Bitwise equality of point lists (so NaN == NaN and -0.0 != 0.0).
pub(crate) fn same_points(a: &[Point], b: &[Point]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.step == y.step && x.ts_ms == y.ts_ms && x.value.to_bits() == y.value.to_bits()
        })
}

pub(crate) const RUN: &str = "0123456789abcdef0123456789abcdef";
