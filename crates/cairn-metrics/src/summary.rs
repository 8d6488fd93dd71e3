//! Summaries of runs of points: one per chunk (stored as columns of the `chunks` row) and one per
//! block of [`BLOCK_POINTS`] consecutive points (stored together in the chunk's `blocks` blob).
//!
//! Downsampling reads these instead of decoding points. They are derived data: everything here
//! can be recomputed from the chunk itself. The blob is not hashed (the chunk hash covers `data`),
//! so [`decode_blocks`] checks its structure and returns an error, never panics, on bad bytes.

use crate::Point;
use crate::error::DecodeError;

/// Points per block summary.
pub const BLOCK_POINTS: usize = 128;

const BLOCKS_VERSION: u8 = 1;
/// step min/max, ts min/max, first/last/min/max value bits (8 × 8), count and nonfinite (2 × 2).
const BLOCK_BYTES: usize = 68;

/// Aggregates of a run of points, in append order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    pub(crate) step_min: i64,
    pub(crate) step_max: i64,
    pub(crate) ts_min: i64,
    pub(crate) ts_max: i64,
    pub(crate) first: f64,
    pub(crate) last: f64,
    /// Finite minimum, NaN if no value is finite.
    pub(crate) min: f64,
    /// Finite maximum, NaN if no value is finite.
    pub(crate) max: f64,
    pub(crate) count: u64,
    pub(crate) nonfinite: u64,
}

impl Summary {
    /// Summarises `points`, which must not be empty.
    pub(crate) fn of(points: &[Point]) -> Self {
        let (first, last) = match (points.first(), points.last()) {
            (Some(f), Some(l)) => (f.value, l.value),
            _ => (f64::NAN, f64::NAN),
        };
        let mut s = Summary {
            step_min: i64::MAX,
            step_max: i64::MIN,
            ts_min: i64::MAX,
            ts_max: i64::MIN,
            first,
            last,
            min: f64::NAN,
            max: f64::NAN,
            count: points.len() as u64,
            nonfinite: 0,
        };
        for p in points {
            s.step_min = s.step_min.min(p.step);
            s.step_max = s.step_max.max(p.step);
            s.ts_min = s.ts_min.min(p.ts_ms);
            s.ts_max = s.ts_max.max(p.ts_ms);
            if p.value.is_finite() {
                // `f64::min` ignores a NaN operand, so NaN works as "no value yet".
                s.min = s.min.min(p.value);
                s.max = s.max.max(p.value);
            } else {
                s.nonfinite += 1;
            }
        }
        s
    }

    /// Extends this summary with the one of the points that follow it.
    pub(crate) fn append(&mut self, next: &Summary) {
        self.step_min = self.step_min.min(next.step_min);
        self.step_max = self.step_max.max(next.step_max);
        self.ts_min = self.ts_min.min(next.ts_min);
        self.ts_max = self.ts_max.max(next.ts_max);
        self.last = next.last;
        self.min = self.min.min(next.min);
        self.max = self.max.max(next.max);
        self.count += next.count;
        self.nonfinite += next.nonfinite;
    }
}

/// Encodes one summary per [`BLOCK_POINTS`] points of `points` (not empty), and returns them
/// with the summary of all of `points`.
pub(crate) fn encode_blocks(points: &[Point]) -> (Vec<u8>, Summary) {
    let mut out = Vec::with_capacity(1 + points.len().div_ceil(BLOCK_POINTS) * BLOCK_BYTES);
    out.push(BLOCKS_VERSION);
    let mut total: Option<Summary> = None;
    for block in points.chunks(BLOCK_POINTS) {
        let s = Summary::of(block);
        match &mut total {
            None => total = Some(s),
            Some(t) => t.append(&s),
        }
        for v in [s.step_min, s.step_max, s.ts_min, s.ts_max] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for v in [s.first, s.last, s.min, s.max] {
            out.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        // Both fit: a block holds at most 128 points.
        out.extend_from_slice(&(s.count as u16).to_le_bytes());
        out.extend_from_slice(&(s.nonfinite as u16).to_le_bytes());
    }
    (out, total.unwrap_or_else(|| Summary::of(points)))
}

/// Decodes the block summaries of a chunk of `count` points, checking that they describe exactly
/// that many points and hold consistent values.
pub(crate) fn decode_blocks(bytes: &[u8], count: u64) -> Result<Vec<Summary>, DecodeError> {
    let (&version, body) = bytes
        .split_first()
        .ok_or(DecodeError::Truncated("empty block summaries"))?;
    if version != BLOCKS_VERSION {
        return Err(DecodeError::Malformed(format!(
            "block summary version {version}"
        )));
    }
    let expected = usize::try_from(count.div_ceil(BLOCK_POINTS as u64))
        .map_err(|_| DecodeError::Malformed(format!("point count {count}")))?;
    if body.len() != expected.saturating_mul(BLOCK_BYTES) {
        return Err(DecodeError::Malformed(format!(
            "{} bytes of block summaries for {count} points",
            body.len()
        )));
    }
    let mut out = Vec::with_capacity(expected);
    let mut remaining = count;
    for record in body.chunks_exact(BLOCK_BYTES) {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&record[i * 8..i * 8 + 8]);
            u64::from_le_bytes(b)
        };
        let half = |at: usize| u64::from(u16::from_le_bytes([record[at], record[at + 1]]));
        let s = Summary {
            step_min: word(0) as i64,
            step_max: word(1) as i64,
            ts_min: word(2) as i64,
            ts_max: word(3) as i64,
            first: f64::from_bits(word(4)),
            last: f64::from_bits(word(5)),
            min: f64::from_bits(word(6)),
            max: f64::from_bits(word(7)),
            count: half(64),
            nonfinite: half(66),
        };
        let want = remaining.min(BLOCK_POINTS as u64);
        let finite_ok = if s.nonfinite == s.count {
            s.min.is_nan() && s.max.is_nan()
        } else {
            s.min.is_finite() && s.max.is_finite() && s.min <= s.max
        };
        if s.count != want
            || s.nonfinite > s.count
            || s.step_min > s.step_max
            || s.ts_min > s.ts_max
            || !finite_ok
        {
            return Err(DecodeError::Malformed(format!(
                "block summary {} is inconsistent",
                out.len()
            )));
        }
        remaining -= want;
        out.push(s);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                step: 1000 - i as i64,
                ts_ms: i as i64,
                value,
            })
            .collect()
    }

    #[test]
    fn summary_ignores_nonfinite_values_in_min_max() {
        let s = Summary::of(&pts(&[
            f64::NAN,
            3.0,
            f64::INFINITY,
            -1.0,
            f64::NEG_INFINITY,
        ]));
        assert_eq!((s.min, s.max, s.nonfinite, s.count), (-1.0, 3.0, 3, 5));
        assert!(s.first.is_nan());
        assert_eq!((s.step_min, s.step_max), (996, 1000));
        let none = Summary::of(&pts(&[f64::NAN]));
        assert!(none.min.is_nan() && none.max.is_nan());
    }

    #[test]
    fn blocks_round_trip_and_reject_damage() {
        let values: Vec<f64> = (0..300)
            .map(|i| if i % 50 == 7 { f64::NAN } else { i as f64 })
            .collect();
        let points = pts(&values);
        let (bytes, total) = encode_blocks(&points);
        assert_eq!(total, Summary::of(&points));
        let blocks = decode_blocks(&bytes, 300).unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[2], Summary::of(&points[256..]));
        assert!(decode_blocks(&bytes, 299).is_err());
        assert!(decode_blocks(&bytes[..bytes.len() - 1], 300).is_err());
        assert!(decode_blocks(&[], 300).is_err());
        let mut bad = bytes.clone();
        bad[1 + 64] ^= 0xff; // count of the first block
        assert!(decode_blocks(&bad, 300).is_err());
        let mut bad = bytes;
        bad[1 + 6] ^= 0x01; // step_min of the first block: now far above step_max
        assert!(decode_blocks(&bad, 300).is_err());
    }
}
