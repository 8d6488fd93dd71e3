//! The protobuf wire format, the little of it event files need: a reader of one message's
//! fields (no recursion of its own: each message type decodes its own children, so nesting is
//! as deep as the schema and no deeper) and the encoders the writer uses.

/// One field's value as it stands on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// The fields of one message, in order.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The message's name, for errors.
    what: &'static str,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Fields { buf, pos: 0, what }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(format!("{}: a varint runs past the end", self.what));
            };
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(format!("{}: a varint longer than 64 bits", self.what));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("{}: a varint longer than 10 bytes", self.what))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "{}: a field of {n} bytes runs past the end ({} left)",
                    self.what,
                    self.buf.len() - self.pos
                )
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field: its number and value; `None` at the end.
    pub(crate) fn next_field(&mut self) -> Option<Result<(u32, Wire<'a>), String>> {
        if self.pos >= self.buf.len() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<(u32, Wire<'a>), String> {
        let key = self.varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|&n| n != 0 && n < (1 << 29))
            .ok_or_else(|| format!("{}: invalid field number {}", self.what, key >> 3))?;
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Wire::Fixed64(u64::from_le_bytes(b.try_into().map_err(|_| "fixed64")?))
            }
            2 => {
                let n = self.varint()?;
                let n = usize::try_from(n).map_err(|_| format!("{}: length {n}", self.what))?;
                Wire::Bytes(self.take(n)?)
            }
            5 => {
                let b = self.take(4)?;
                Wire::Fixed32(u32::from_le_bytes(b.try_into().map_err(|_| "fixed32")?))
            }
            t => {
                return Err(format!(
                    "{}: field {number} has wire type {t}, which event files do not use",
                    self.what
                ));
            }
        };
        Ok((number, wire))
    }
}

/// What a field of the wrong wire type says.
pub(crate) fn wrong(what: &str, field: &str) -> String {
    format!("{what}.{field} has the wrong wire type")
}

/// Reads a `string` field (invalid UTF-8 is replaced, as a tag is still worth keeping).
pub(crate) fn string(w: Wire<'_>, what: &str, field: &str) -> Result<String, String> {
    match w {
        Wire::Bytes(b) => Ok(String::from_utf8_lossy(b).into_owned()),
        _ => Err(wrong(what, field)),
    }
}

pub(crate) fn bytes<'a>(w: Wire<'a>, what: &str, field: &str) -> Result<&'a [u8], String> {
    match w {
        Wire::Bytes(b) => Ok(b),
        _ => Err(wrong(what, field)),
    }
}

pub(crate) fn varint(w: Wire<'_>, what: &str, field: &str) -> Result<u64, String> {
    match w {
        Wire::Varint(v) => Ok(v),
        _ => Err(wrong(what, field)),
    }
}

pub(crate) fn double(w: Wire<'_>, what: &str, field: &str) -> Result<f64, String> {
    match w {
        Wire::Fixed64(v) => Ok(f64::from_bits(v)),
        _ => Err(wrong(what, field)),
    }
}

pub(crate) fn float(w: Wire<'_>, what: &str, field: &str) -> Result<f32, String> {
    match w {
        Wire::Fixed32(v) => Ok(f32::from_bits(v)),
        _ => Err(wrong(what, field)),
    }
}

/// A repeated `float` field, packed (one `Bytes`) or not (one value per field).
pub(crate) fn repeated_f32(
    w: Wire<'_>,
    out: &mut Vec<f32>,
    what: &str,
    field: &str,
) -> Result<(), String> {
    match w {
        Wire::Fixed32(v) => out.push(f32::from_bits(v)),
        Wire::Bytes(b) if b.len() % 4 == 0 => out.extend(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        Wire::Bytes(b) => {
            return Err(format!(
                "{what}.{field}: {} packed bytes are not whole 4-byte values",
                b.len()
            ));
        }
        _ => return Err(wrong(what, field)),
    }
    Ok(())
}

/// A repeated `double` field, packed or not.
pub(crate) fn repeated_f64(
    w: Wire<'_>,
    out: &mut Vec<f64>,
    what: &str,
    field: &str,
) -> Result<(), String> {
    match w {
        Wire::Fixed64(v) => out.push(f64::from_bits(v)),
        Wire::Bytes(b) if b.len() % 8 == 0 => out.extend(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])),
        ),
        Wire::Bytes(b) => {
            return Err(format!(
                "{what}.{field}: {} packed bytes are not whole 8-byte values",
                b.len()
            ));
        }
        _ => return Err(wrong(what, field)),
    }
    Ok(())
}

/// A repeated varint field, packed or not.
pub(crate) fn repeated_varint(
    w: Wire<'_>,
    out: &mut Vec<u64>,
    what: &'static str,
    field: &str,
) -> Result<(), String> {
    match w {
        Wire::Varint(v) => out.push(v),
        Wire::Bytes(b) => {
            let mut f = Fields::new(b, what);
            while f.pos < b.len() {
                out.push(f.varint()?);
            }
        }
        _ => return Err(wrong(what, field)),
    }
    Ok(())
}

// ---- encoding (the writer) ----------------------------------------------------------------

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, (u64::from(field) << 3) | u64::from(wire));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, field: u32, b: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub(crate) fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    put_key(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_float(out: &mut Vec<u8>, field: u32, v: f32) {
    put_key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_key(out, field, 0);
    put_varint(out, v);
}
