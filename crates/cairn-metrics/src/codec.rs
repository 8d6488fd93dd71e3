//! The chunk codec: Gorilla-style bit packing of a run of [`Point`]s into one immutable blob.
//!
//! Layout (all lengths LEB128 varints):
//!
//! ```text
//! header u8        high nibble: codec version (1); low nibble: value mode (0 = f64, 1 = f32)
//! count            number of points (>= 1)
//! len(steps) len(ts) len(values)
//! steps section    first step raw (64 bits), then delta-of-delta in Gorilla buckets (zigzag)
//! ts section       same for the timestamps
//! values section   first value raw, then XOR with the previous value, leading/trailing windows
//! ```
//!
//! Each section is byte-aligned and padded with zero bits, so one column can be read without the
//! others and every length is checked exactly on decode. In f32 mode (taken only when every value
//! of the chunk converts to f32 and back bit-exactly) the XOR runs on the 32-bit patterns, which
//! roughly halves the bytes of float32-origin training curves.
//!
//! This module knows nothing about SQLite, hashes or summaries; it only turns points into bytes
//! and back, bit-exactly for every `f64` (NaN payloads, ±inf, -0.0, subnormals), and returns
//! an error, never panics, on bytes it did not write.

use crate::Point;
use crate::bits::{BitReader, BitWriter};
use crate::error::DecodeError;

const VERSION: u8 = 1;
const MODE_F64: u8 = 0;
const MODE_F32: u8 = 1;

/// No chunk this crate writes holds more points; a larger count is corruption.
const MAX_POINTS: u64 = 1 << 20;

/// Encodes `points` (at least one) into a chunk blob.
pub(crate) fn encode(points: &[Point]) -> Vec<u8> {
    debug_assert!(!points.is_empty());
    let f32_mode = points.iter().all(|p| f32_bits_exact(p.value).is_some());

    let mut steps = BitWriter::with_capacity(points.len() / 4 + 16);
    encode_ints(&mut steps, points.iter().map(|p| p.step));
    let steps = steps.finish();

    let mut ts = BitWriter::with_capacity(points.len() * 2 + 16);
    encode_ints(&mut ts, points.iter().map(|p| p.ts_ms));
    let ts = ts.finish();

    let mut values = BitWriter::with_capacity(points.len() * 4 + 16);
    if f32_mode {
        encode_xor::<32>(
            &mut values,
            points
                .iter()
                .map(|p| u64::from(f32_bits_exact(p.value).unwrap_or(0))),
        );
    } else {
        encode_xor::<64>(&mut values, points.iter().map(|p| p.value.to_bits()));
    }
    let values = values.finish();

    let mut out = Vec::with_capacity(1 + 4 * 10 + steps.len() + ts.len() + values.len());
    out.push((VERSION << 4) | if f32_mode { MODE_F32 } else { MODE_F64 });
    put_varint(&mut out, points.len() as u64);
    put_varint(&mut out, steps.len() as u64);
    put_varint(&mut out, ts.len() as u64);
    put_varint(&mut out, values.len() as u64);
    out.extend_from_slice(&steps);
    out.extend_from_slice(&ts);
    out.extend_from_slice(&values);
    out
}

/// Decodes a chunk blob written by [`encode`].
pub(crate) fn decode(data: &[u8]) -> Result<Vec<Point>, DecodeError> {
    let (&header, mut rest) = data
        .split_first()
        .ok_or(DecodeError::Truncated("empty chunk"))?;
    let f32_mode = match (header >> 4, header & 0x0f) {
        (VERSION, MODE_F64) => false,
        (VERSION, MODE_F32) => true,
        _ => return Err(DecodeError::UnknownHeader(header)),
    };
    let count = get_varint(&mut rest)?;
    if count == 0 || count > MAX_POINTS {
        return Err(DecodeError::Malformed(format!("point count {count}")));
    }
    let count = count as usize; // <= MAX_POINTS
    let steps_len = get_len(&mut rest)?;
    let ts_len = get_len(&mut rest)?;
    let values_len = get_len(&mut rest)?;
    let total = steps_len
        .checked_add(ts_len)
        .and_then(|n| n.checked_add(values_len));
    if total != Some(rest.len()) {
        return Err(if total.is_some_and(|t| t > rest.len()) {
            DecodeError::Truncated("sections extend past the end of the chunk")
        } else {
            DecodeError::Malformed("bytes after the last section".into())
        });
    }
    let (steps, rest) = rest.split_at(steps_len);
    let (ts, values) = rest.split_at(ts_len);
    // Every point after the first takes at least one bit of the steps section; this bounds the
    // allocation below by the size of the input.
    if count - 1 > steps_len.saturating_mul(8) {
        return Err(DecodeError::Malformed(format!(
            "{count} points cannot fit in a {steps_len}-byte steps section"
        )));
    }

    let mut points = vec![
        Point {
            step: 0,
            ts_ms: 0,
            value: 0.0
        };
        count
    ];
    decode_ints(steps, points.iter_mut().map(|p| &mut p.step), "steps")?;
    decode_ints(ts, points.iter_mut().map(|p| &mut p.ts_ms), "timestamps")?;
    if f32_mode {
        decode_xor::<32>(values, points.iter_mut().map(|p| &mut p.value), |bits| {
            f32_bits_to_f64(bits as u32)
        })?;
    } else {
        decode_xor::<64>(
            values,
            points.iter_mut().map(|p| &mut p.value),
            f64::from_bits,
        )?;
    }
    Ok(points)
}

/// The f32 bit pattern of `v` if converting it to f32 and back gives the same f64 bits.
///
/// NaNs are converted by hand (sign, quiet bit and the top 22 payload bits, as IEEE 754 hardware
/// does) because Rust leaves the payload of a NaN produced by `as` unspecified.
pub(crate) fn f32_bits_exact(v: f64) -> Option<u32> {
    let bits = v.to_bits();
    if v.is_nan() {
        let mantissa = bits & ((1 << 52) - 1);
        if mantissa & ((1 << 29) - 1) != 0 {
            return None;
        }
        let sign = ((bits >> 63) as u32) << 31;
        return Some(sign | (0xff << 23) | (mantissa >> 29) as u32);
    }
    let narrow = v as f32;
    (f64::from(narrow).to_bits() == bits).then(|| narrow.to_bits())
}

/// The inverse of [`f32_bits_exact`].
pub(crate) fn f32_bits_to_f64(bits: u32) -> f64 {
    let narrow = f32::from_bits(bits);
    if narrow.is_nan() {
        let sign = u64::from(bits >> 31) << 63;
        let mantissa = u64::from(bits & ((1 << 23) - 1)) << 29;
        return f64::from_bits(sign | (0x7ff << 52) | mantissa);
    }
    f64::from(narrow)
}

// ---- integers: delta-of-delta -------------------------------------------------------------

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Gorilla's buckets, widened for 64-bit steps and millisecond clocks:
/// `0` (dod = 0), `10`+7, `110`+9, `1110`+12, `11110`+32, `11111`+64 bits of zigzag.
fn encode_ints(w: &mut BitWriter, mut values: impl Iterator<Item = i64>) {
    let Some(first) = values.next() else { return };
    w.write(first as u64, 64);
    let (mut prev, mut prev_delta) = (first, 0i64);
    for v in values {
        let delta = v.wrapping_sub(prev);
        let z = zigzag(delta.wrapping_sub(prev_delta));
        if z == 0 {
            w.write(0, 1);
        } else if z < 1 << 7 {
            w.write((0b10 << 7) | z, 9);
        } else if z < 1 << 9 {
            w.write((0b110 << 9) | z, 12);
        } else if z < 1 << 12 {
            w.write((0b1110 << 12) | z, 16);
        } else if z < 1 << 32 {
            w.write((0b11110 << 32) | z, 37);
        } else {
            w.write(0b11111, 5);
            w.write(z, 64);
        }
        prev = v;
        prev_delta = delta;
    }
}

fn decode_ints<'p>(
    bytes: &[u8],
    mut out: impl Iterator<Item = &'p mut i64>,
    column: &'static str,
) -> Result<(), DecodeError> {
    let mut r = BitReader::new(bytes);
    let Some(slot) = out.next() else {
        return Ok(());
    };
    let first = r.read(64)? as i64;
    *slot = first;
    let (mut prev, mut prev_delta) = (first, 0i64);
    for slot in out {
        let z = if !r.read_bit()? {
            0
        } else if !r.read_bit()? {
            r.read(7)?
        } else if !r.read_bit()? {
            r.read(9)?
        } else if !r.read_bit()? {
            r.read(12)?
        } else if !r.read_bit()? {
            r.read(32)?
        } else {
            r.read(64)?
        };
        let delta = prev_delta.wrapping_add(unzigzag(z));
        prev = prev.wrapping_add(delta);
        prev_delta = delta;
        *slot = prev;
    }
    check_consumed(&r, bytes.len(), column)
}

// ---- values: XOR with leading/trailing-zero windows ---------------------------------------

/// Leading zeros are stored in 5 bits, so at most 31 are recorded (Gorilla does the same).
const MAX_LEAD: u32 = 31;

/// Encodes `W`-bit patterns (`W` = 32 or 64): `0` = same as previous; `10` + bits inside the
/// previous window; `11` + 5 bits leading zeros + length-1 (5 or 6 bits) + the meaningful bits.
fn encode_xor<const W: u32>(w: &mut BitWriter, mut values: impl Iterator<Item = u64>) {
    let len_bits = if W == 64 { 6 } else { 5 };
    let Some(first) = values.next() else { return };
    w.write(first, W);
    let mut prev = first;
    // No window until the first explicit one.
    let (mut win_lead, mut win_trail) = (W + 1, W + 1);
    for v in values {
        let x = v ^ prev;
        prev = v;
        if x == 0 {
            w.write(0, 1);
            continue;
        }
        let lead = (x.leading_zeros() - (64 - W)).min(MAX_LEAD);
        let trail = x.trailing_zeros();
        if lead >= win_lead && trail >= win_trail && win_lead <= W {
            w.write(0b10, 2);
            w.write(x >> win_trail, W - win_lead - win_trail);
        } else {
            let len = W - lead - trail;
            w.write(0b11, 2);
            w.write(u64::from(lead), 5);
            w.write(u64::from(len - 1), len_bits);
            w.write(x >> trail, len);
            (win_lead, win_trail) = (lead, trail);
        }
    }
}

fn decode_xor<'p, const W: u32>(
    bytes: &[u8],
    mut out: impl Iterator<Item = &'p mut f64>,
    to_f64: impl Fn(u64) -> f64,
) -> Result<(), DecodeError> {
    let len_bits = if W == 64 { 6 } else { 5 };
    let mut r = BitReader::new(bytes);
    let Some(slot) = out.next() else {
        return Ok(());
    };
    let mut prev = r.read(W)?;
    *slot = to_f64(prev);
    let mut window: Option<(u32, u32)> = None; // (lead, trail)
    for slot in out {
        if r.read_bit()? {
            let (lead, len) = if r.read_bit()? {
                let lead = r.read(5)? as u32;
                let len = r.read(len_bits)? as u32 + 1;
                if lead + len > W {
                    return Err(DecodeError::Malformed(format!(
                        "value window of {lead} leading zeros and {len} bits exceeds {W} bits"
                    )));
                }
                window = Some((lead, W - lead - len));
                (lead, len)
            } else {
                let (lead, trail) = window.ok_or_else(|| {
                    DecodeError::Malformed("value reuses a window before any was set".into())
                })?;
                (lead, W - lead - trail)
            };
            let trail = W - lead - len;
            prev ^= r.read(len)? << trail;
        }
        *slot = to_f64(prev);
    }
    check_consumed(&r, bytes.len(), "values")
}

fn check_consumed(r: &BitReader<'_>, len: usize, column: &'static str) -> Result<(), DecodeError> {
    if r.bytes_consumed() == len {
        Ok(())
    } else {
        Err(DecodeError::Malformed(format!(
            "{column} section has trailing bytes"
        )))
    }
}

// ---- varints ------------------------------------------------------------------------------

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input
            .split_first()
            .ok_or(DecodeError::Truncated("chunk header ends inside a varint"))?;
        *input = rest;
        let part = u64::from(byte & 0x7f);
        if shift == 63 && part > 1 {
            return Err(DecodeError::Malformed("varint overflows 64 bits".into()));
        }
        v |= part << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError::Malformed("varint longer than 10 bytes".into()))
}

fn get_len(input: &mut &[u8]) -> Result<usize, DecodeError> {
    let v = get_varint(input)?;
    usize::try_from(v).map_err(|_| DecodeError::Malformed(format!("section length {v}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(a: &[Point], b: &[Point]) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| {
                x.step == y.step && x.ts_ms == y.ts_ms && x.value.to_bits() == y.value.to_bits()
            })
    }

    fn is_f32_mode(data: &[u8]) -> bool {
        data[0] & 0x0f == MODE_F32
    }

    /// f64 bit patterns biased towards the awkward ones.
    fn value_bits() -> impl Strategy<Value = u64> {
        prop_oneof![
            any::<u64>(),
            any::<f32>().prop_map(|f| f64::from(f).to_bits()),
            Just(f64::NAN.to_bits()),
            Just((-f64::NAN).to_bits()),
            Just(0x7ff0_0000_0000_0001), // signalling NaN
            Just(0x7ff8_0000_2000_0000), // quiet NaN whose payload fits f32
            Just(0x7ff8_0000_0000_0001), // quiet NaN whose payload does not
            Just(f64::INFINITY.to_bits()),
            Just(f64::NEG_INFINITY.to_bits()),
            Just((-0.0f64).to_bits()),
            Just(0),
            Just(1),                               // smallest subnormal
            Just(f64::MIN_POSITIVE.to_bits() - 1), // largest subnormal
            Just(f64::MAX.to_bits()),
        ]
    }

    fn points(max: usize) -> impl Strategy<Value = Vec<Point>> {
        proptest::collection::vec(
            (
                prop_oneof![any::<i64>(), -3i64..3, 0i64..1_000_000],
                prop_oneof![any::<i64>(), 1_700_000_000_000i64..1_700_000_100_000],
                value_bits(),
            ),
            1..max,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(step, ts_ms, bits)| Point {
                    step,
                    ts_ms,
                    value: f64::from_bits(bits),
                })
                .collect()
        })
    }

    /// Mostly-regular series (what training loops produce), float32-origin values.
    fn regular_points() -> impl Strategy<Value = Vec<Point>> {
        (1usize..3000, 0i64..5, 1i64..100, any::<u64>()).prop_map(|(n, step0, dt, seed)| {
            let mut rng = seed | 1;
            (0..n as i64)
                .map(|i| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let jitter = (rng % 7) as i64 - 3;
                    let noise = (rng >> 40) as f32 / (1u64 << 24) as f32;
                    Point {
                        step: step0 + i * 10,
                        ts_ms: 1_700_000_000_000 + i * dt + jitter,
                        value: f64::from(2.0 / (1.0 + i as f32 / 100.0) + noise * 0.05),
                    }
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn round_trips_bit_exactly(points in points(400)) {
            let data = encode(&points);
            let back = decode(&data).unwrap();
            prop_assert!(same(&points, &back));
        }

        #[test]
        fn regular_series_round_trip(points in regular_points()) {
            let data = encode(&points);
            prop_assert!(is_f32_mode(&data));
            prop_assert!(same(&points, &decode(&data).unwrap()));
        }

        #[test]
        fn f32_mode_only_when_exact(points in points(50)) {
            let data = encode(&points);
            // For non-NaN values the hand-written test agrees with the `as` round trip.
            let exact = points.iter().all(|p| {
                if p.value.is_nan() {
                    f32_bits_exact(p.value)
                        .is_some_and(|b| f32_bits_to_f64(b).to_bits() == p.value.to_bits())
                } else {
                    f64::from(p.value as f32).to_bits() == p.value.to_bits()
                }
            });
            prop_assert_eq!(is_f32_mode(&data), exact);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            // Ok or Err are both fine; what matters is returning.
            let _decoded = decode(&bytes).is_ok();
        }

        #[test]
        fn corrupted_chunks_never_panic(points in points(100), at in any::<usize>(), mask in 1u8..=255) {
            let mut data = encode(&points);
            let i = at % data.len();
            data[i] ^= mask;
            let _decoded = decode(&data).is_ok();
        }

        #[test]
        fn every_truncation_is_an_error(points in points(60)) {
            let data = encode(&points);
            for len in 0..data.len() {
                prop_assert!(decode(&data[..len]).is_err(), "prefix of {} bytes decoded", len);
            }
        }
    }

    #[test]
    fn f32_mode_handles_nan_payloads_and_signed_zero() {
        let values = [
            f64::from(f32::NAN),
            -f64::from(f32::NAN),
            f32_bits_to_f64(0x7fc0_1234),
            -0.0,
            f64::from(f32::from_bits(1)), // f32 subnormal
            f64::INFINITY,
        ];
        let points: Vec<Point> = values
            .iter()
            .enumerate()
            .map(|(i, &value)| Point {
                step: i as i64,
                ts_ms: 0,
                value,
            })
            .collect();
        let data = encode(&points);
        assert!(is_f32_mode(&data));
        assert!(same(&points, &decode(&data).unwrap()));
    }

    #[test]
    fn regular_steps_cost_one_bit() {
        let points: Vec<Point> = (0..1000)
            .map(|i| Point {
                step: i * 10,
                ts_ms: i * 1000,
                value: 1.0,
            })
            .collect();
        let data = encode(&points);
        // 3 × 8 bytes of first values, ~3 × 1000 bits, header.
        assert!(data.len() < 24 + 3 * 1000 / 8 + 16, "{} bytes", data.len());
    }

    #[test]
    fn rejects_unknown_headers_and_absurd_counts() {
        let data = encode(&[Point {
            step: 1,
            ts_ms: 2,
            value: 3.0,
        }]);
        let mut bad = data.clone();
        bad[0] = 0x21;
        assert_eq!(decode(&bad), Err(DecodeError::UnknownHeader(0x21)));
        let mut huge = vec![data[0]];
        put_varint(&mut huge, u64::MAX);
        assert!(decode(&huge).is_err());
        let mut many = vec![data[0]];
        put_varint(&mut many, 1 << 19);
        put_varint(&mut many, 8);
        put_varint(&mut many, 0);
        put_varint(&mut many, 0);
        many.extend_from_slice(&[0; 8]);
        assert!(matches!(decode(&many), Err(DecodeError::Malformed(_))));
    }
}
