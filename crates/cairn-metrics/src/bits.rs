//! Big-endian bit packing for the chunk codec: a writer that appends up to 64 bits at a time and a
//! reader that returns an error, never panics, when the bytes run out.
//!
//! This is not a general bitstream library: it only does what [`crate::codec`] needs.

use crate::error::DecodeError;

/// Appends bit fields, most significant bit first.
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    buf: Vec<u8>,
    /// Pending bits, right-aligned; `n` of them are valid (`n < 64`).
    acc: u64,
    n: u32,
}

impl BitWriter {
    pub(crate) fn with_capacity(bytes: usize) -> Self {
        Self {
            buf: Vec::with_capacity(bytes),
            acc: 0,
            n: 0,
        }
    }

    /// Appends the low `bits` bits of `value` (`bits <= 64`).
    #[inline]
    pub(crate) fn write(&mut self, value: u64, bits: u32) {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return;
        }
        let value = value & mask(bits);
        let free = 64 - self.n;
        if bits < free {
            self.acc = (self.acc << bits) | value;
            self.n += bits;
        } else {
            // Fill the accumulator up to 64 bits, flush it, keep the rest.
            let rest = bits - free;
            let top = shl(self.acc, free) | (value >> rest);
            self.buf.extend_from_slice(&top.to_be_bytes());
            self.acc = value & mask(rest);
            self.n = rest;
        }
    }

    /// Pads the last byte with zero bits and returns the bytes.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            let aligned = self.acc << (64 - self.n);
            let bytes = self.n.div_ceil(8) as usize;
            self.buf.extend_from_slice(&aligned.to_be_bytes()[..bytes]);
        }
        self.buf
    }
}

/// Reads bit fields written by [`BitWriter`].
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` not yet loaded into `acc`.
    pos: usize,
    /// Loaded bits, left-aligned; `n` of them are valid.
    acc: u64,
    n: u32,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            acc: 0,
            n: 0,
        }
    }

    #[inline]
    fn refill(&mut self) {
        if let Some(word) = self.data.get(self.pos..self.pos + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let word = u64::from_be_bytes(bytes);
            // Load whole bytes only, so that `pos` stays byte-exact.
            let take = (64 - self.n) / 8;
            let added = take * 8;
            if added > 0 {
                self.acc |= shl(word >> (64 - added), 64 - added - self.n);
                self.n += added;
                self.pos += take as usize;
            }
        } else {
            while self.n <= 56 {
                let Some(&byte) = self.data.get(self.pos) else {
                    break;
                };
                self.acc |= u64::from(byte) << (56 - self.n);
                self.n += 8;
                self.pos += 1;
            }
        }
    }

    /// Reads `bits` bits (`bits <= 64`).
    #[inline]
    pub(crate) fn read(&mut self, bits: u32) -> Result<u64, DecodeError> {
        debug_assert!(bits <= 64);
        if bits == 0 {
            return Ok(0);
        }
        if bits > 56 {
            let hi = self.read(32)?;
            let lo = self.read(bits - 32)?;
            return Ok((hi << (bits - 32)) | lo);
        }
        if self.n < bits {
            self.refill();
            if self.n < bits {
                return Err(DecodeError::Truncated("bit stream ends inside a field"));
            }
        }
        let value = self.acc >> (64 - bits);
        self.acc = shl(self.acc, bits);
        self.n -= bits;
        Ok(value)
    }

    #[inline]
    pub(crate) fn read_bit(&mut self) -> Result<bool, DecodeError> {
        Ok(self.read(1)? == 1)
    }

    /// Number of bytes touched so far (the last one possibly partly), i.e. where a byte-aligned
    /// writer would have stopped.
    pub(crate) fn bytes_consumed(&self) -> usize {
        // `n` bits are loaded but unread; whole unread bytes are given back.
        self.pos - (self.n / 8) as usize
    }
}

#[inline]
fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

#[inline]
fn shl(x: u64, s: u32) -> u64 {
    if s >= 64 { 0 } else { x << s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec((any::<u64>(), 0u32..=64), 0..200)) {
            let mut w = BitWriter::default();
            for &(v, b) in &fields {
                w.write(v, b);
            }
            let total_bits: u32 = fields.iter().map(|&(_, b)| b).sum();
            let bytes = w.finish();
            prop_assert_eq!(bytes.len(), total_bits.div_ceil(8) as usize);
            let mut r = BitReader::new(&bytes);
            for &(v, b) in &fields {
                prop_assert_eq!(r.read(b).unwrap(), v & mask(b));
            }
            prop_assert_eq!(r.bytes_consumed(), bytes.len());
            // Only padding is left.
            prop_assert!(r.read(8).is_err());
        }
    }

    #[test]
    fn reading_past_the_end_is_an_error() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.read(3).unwrap(), 0b111);
        assert!(r.read(6).is_err());
        assert!(BitReader::new(&[]).read_bit().is_err());
        assert!(BitReader::new(&[1, 2, 3]).read(64).is_err());
    }
}
