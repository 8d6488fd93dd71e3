//! A small PNG encoder for the RGB buffers plotters' bitmap backend draws into: one IDAT of
//! zlib data compressed with fixed-Huffman deflate and greedy LZ77 matching.
//!
//! plotters can only write PNGs to a file path, and this crate does no IO. Charts are mostly flat
//! colour, so matching against the previous pixel and the previous row (plus a hash of recent
//! three-byte sequences) gets within a small factor of zlib at a fraction of the code.

const WINDOW: usize = 32 * 1024;
const MAX_MATCH: usize = 258;
const MIN_MATCH: usize = 3;
const HASH_BITS: u32 = 15;

/// PNG bytes of an 8-bit RGB image, rows top to bottom, no padding.
pub(crate) fn encode_rgb(pixels: &[u8], width: u32, height: u32) -> Vec<u8> {
    let row = width as usize * 3;
    debug_assert_eq!(pixels.len(), row * height as usize);
    // Scanlines with filter type 0 (none): LZ77 sees the previous row at distance `row + 1`.
    let mut raw = Vec::with_capacity((row + 1) * height as usize);
    for line in pixels.chunks_exact(row.max(1)).take(height as usize) {
        raw.push(0);
        raw.extend_from_slice(line);
    }
    let mut out = Vec::with_capacity(raw.len() / 8 + 1024);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8 bits, RGB, deflate, no filter method, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib(&raw, row + 1));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the longest run before `b` can overflow.
    for block in data.chunks(5552) {
        for &x in block {
            a += u32::from(x);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

/// LSB-first bit writer.
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate stores most significant bit first.
    fn code(&mut self, code: u32, len: u32) {
        self.put(code.reverse_bits() >> (32 - len), len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

fn literal(bits: &mut Bits, v: u32) {
    match v {
        0..=143 => bits.code(0x30 + v, 8),
        144..=255 => bits.code(0x190 + (v - 144), 9),
        256..=279 => bits.code(v - 256, 7),
        _ => bits.code(0xC0 + (v - 280), 8),
    }
}

const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

fn emit_match(bits: &mut Bits, len: usize, dist: usize) {
    let li = LENGTH_BASE.partition_point(|&b| usize::from(b) <= len) - 1;
    literal(bits, 257 + li as u32);
    bits.put(
        (len - usize::from(LENGTH_BASE[li])) as u32,
        u32::from(LENGTH_EXTRA[li]),
    );
    let di = DIST_BASE.partition_point(|&b| usize::from(b) <= dist) - 1;
    bits.code(di as u32, 5);
    bits.put(
        (dist - usize::from(DIST_BASE[di])) as u32,
        u32::from(DIST_EXTRA[di]),
    );
}

fn hash(data: &[u8], i: usize) -> usize {
    let v = u32::from(data[i]) | u32::from(data[i + 1]) << 8 | u32::from(data[i + 2]) << 16;
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

fn match_len(data: &[u8], a: usize, b: usize) -> usize {
    let max = MAX_MATCH.min(data.len() - b);
    let mut n = 0;
    while n < max && data[a + n] == data[b + n] {
        n += 1;
    }
    n
}

/// A zlib stream of `data` (one final fixed-Huffman block); `row` is the scanline length, whose
/// distance is always tried as a match.
fn zlib(data: &[u8], row: usize) -> Vec<u8> {
    let mut bits = Bits {
        out: vec![0x78, 0x01],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    let mut head = vec![usize::MAX; 1 << HASH_BITS];
    let mut i = 0;
    while i < data.len() {
        let mut best = (0, 0);
        if i + MIN_MATCH <= data.len() {
            let h = hash(data, i);
            let candidates = [i.checked_sub(3), i.checked_sub(row), Some(head[h])];
            head[h] = i;
            for c in candidates.into_iter().flatten() {
                if c < i && i - c <= WINDOW {
                    let n = match_len(data, c, i);
                    if n > best.0 {
                        best = (n, i - c);
                    }
                }
            }
        }
        if best.0 >= MIN_MATCH {
            emit_match(&mut bits, best.0, best.1);
            i += best.0;
        } else {
            literal(&mut bits, u32::from(data[i]));
            i += 1;
        }
    }
    literal(&mut bits, 256); // end of block
    let mut out = bits.finish();
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A decoder for exactly what [`zlib`] writes (fixed-Huffman blocks), written from RFC 1951
    /// to check the encoder round-trips.
    pub(crate) fn inflate_fixed(z: &[u8]) -> Vec<u8> {
        assert_eq!(&z[..2], &[0x78, 0x01]);
        let data = &z[2..z.len() - 4];
        let mut pos = 0usize; // bit position
        let mut bit = |n: u32| -> u32 {
            let mut v = 0;
            for k in 0..n {
                let b = (data[pos / 8] >> (pos % 8)) & 1;
                v |= u32::from(b) << k;
                pos += 1;
            }
            v
        };
        let mut out: Vec<u8> = Vec::new();
        loop {
            let last = bit(1);
            assert_eq!(bit(2), 1, "fixed Huffman block");
            loop {
                // Read 7 bits MSB-first, extend to 8 or 9 as the code ranges require.
                let mut code = 0;
                for _ in 0..7 {
                    code = (code << 1) | bit(1);
                }
                let sym = if code <= 0x17 {
                    code + 256
                } else {
                    code = (code << 1) | bit(1);
                    if (0x30..=0xBF).contains(&code) {
                        code - 0x30
                    } else if (0xC0..=0xC7).contains(&code) {
                        code - 0xC0 + 280
                    } else {
                        code = (code << 1) | bit(1);
                        code - 0x190 + 144
                    }
                };
                match sym {
                    0..=255 => out.push(sym as u8),
                    256 => break,
                    _ => {
                        let li = (sym - 257) as usize;
                        let len = usize::from(LENGTH_BASE[li])
                            + bit(u32::from(LENGTH_EXTRA[li])) as usize;
                        let mut d = 0;
                        for _ in 0..5 {
                            d = (d << 1) | bit(1);
                        }
                        let di = d as usize;
                        let dist =
                            usize::from(DIST_BASE[di]) + bit(u32::from(DIST_EXTRA[di])) as usize;
                        for _ in 0..len {
                            out.push(out[out.len() - dist]);
                        }
                    }
                }
            }
            if last == 1 {
                break;
            }
        }
        let adler = u32::from_be_bytes(z[z.len() - 4..].try_into().unwrap());
        assert_eq!(adler, adler32(&out));
        out
    }

    #[test]
    fn zlib_round_trips() {
        let mut data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        data.extend(std::iter::repeat_n(200u8, 70_000));
        data.extend((0..300u32).map(|i| (i % 3) as u8));
        let z = zlib(&data, 301);
        assert!(z.len() < data.len() / 4);
        assert_eq!(inflate_fixed(&z), data);
    }

    #[test]
    fn crc_matches_the_png_spec() {
        // CRC of the IEND chunk type, as in every PNG file.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }
}
