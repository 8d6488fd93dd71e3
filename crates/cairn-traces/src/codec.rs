//! The bytes of the log: one compact binary encoding per [`Entry`] (varints, length-prefixed
//! text, typed attribute values), and sealed chunks — a run of entries, DEFLATE-compressed, named
//! by the BLAKE3 of the compressed bytes.
//!
//! Decoding is for bytes that may come from a peer: every length is checked against what is
//! left before anything is allocated, attribute values nest at most [`MAX_DEPTH`] levels, text
//! must be UTF-8, and a chunk may not inflate past [`MAX_CHUNK_RAW`] bytes. A violation is a
//! [`DecodeError`] saying what was wrong, never a panic.

use std::io::{Read, Write};

use crate::error::DecodeError;
use crate::model::{
    Assessment, Entry, Event, Field, Link, Record, Span, SpanStatus, StatusCode, TraceId, Value,
};

/// How deep attribute values may nest (an array in a map in an array …).
pub const MAX_DEPTH: usize = 32;
/// The most bytes a chunk's entries may take once inflated.
pub const MAX_CHUNK_RAW: usize = 64 << 20;
/// The version byte every sealed chunk starts with.
const CHUNK_FORMAT: u8 = 1;

const SPAN: u8 = 1;
const INFO: u8 = 2;
const TAG: u8 = 3;
const ASSESSMENT: u8 = 4;
const LINK: u8 = 5;
const DELETE: u8 = 6;

/// Encodes one entry.
pub fn encode_entry(e: &Entry, out: &mut Vec<u8>) {
    let mut w = Writer(out);
    w.i64(e.at_ms);
    match &e.record {
        Record::Span { experiment, span } => {
            w.u8(SPAN);
            w.str(experiment);
            w.span(span);
        }
        Record::Info {
            trace,
            fields,
            metadata,
            tags,
        } => {
            w.u8(INFO);
            w.str(trace.as_str());
            w.len(fields.len());
            for (f, v) in fields {
                w.u8(*f as u8);
                w.opt_str(v.as_deref());
            }
            w.pairs(metadata);
            w.pairs(tags);
        }
        Record::Tag { trace, key, value } => {
            w.u8(TAG);
            w.str(trace.as_str());
            w.str(key);
            w.opt_str(value.as_deref());
        }
        Record::Assessment { trace, id, body } => {
            w.u8(ASSESSMENT);
            w.str(trace.as_str());
            w.str(id);
            // An assessment is small and rarely written: JSON keeps its many optional fields
            // readable to future versions.
            let json = body
                .as_ref()
                .map(|b| serde_json::to_string(b).unwrap_or_default());
            w.opt_str(json.as_deref());
        }
        Record::Link { trace, run } => {
            w.u8(LINK);
            w.str(trace.as_str());
            w.str(run);
        }
        Record::Delete { trace } => {
            w.u8(DELETE);
            w.str(trace.as_str());
        }
    }
}

/// Encodes one entry into a fresh buffer.
pub fn entry_bytes(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_entry(e, &mut out);
    out
}

/// Decodes one entry; the bytes must hold exactly one.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    let mut r = Reader { b: bytes, at: 0 };
    let e = r.entry()?;
    if r.at != bytes.len() {
        return Err(DecodeError::Malformed(format!(
            "{} bytes left after the entry",
            bytes.len() - r.at
        )));
    }
    Ok(e)
}

/// A chunk's compressed bytes and the BLAKE3 hash naming them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub data: Vec<u8>,
    pub hash: [u8; 32],
    /// Bytes of the entries before compression.
    pub raw: usize,
}

/// Seals encoded entries (each as [`encode_entry`] wrote it) into a chunk.
pub fn seal(entries: &[&[u8]]) -> Sealed {
    let mut raw = Vec::with_capacity(entries.iter().map(|e| e.len() + 3).sum());
    for e in entries {
        Writer(&mut raw).len(e.len());
        raw.extend_from_slice(e);
    }
    let mut data = vec![CHUNK_FORMAT];
    // Level 3: spans' JSON-ish attributes compress 5-10x already; higher levels cost ingest
    // speed for a few percent.
    let mut enc = flate2::write::DeflateEncoder::new(&mut data, flate2::Compression::new(3));
    // Writing into a Vec cannot fail.
    if enc
        .write_all(&raw)
        .and_then(|()| enc.finish().map(drop))
        .is_err()
    {
        tracing::error!("compressing a trace chunk into memory failed");
    }
    let hash = *blake3::hash(&data).as_bytes();
    Sealed {
        data,
        hash,
        raw: raw.len(),
    }
}

/// Verifies a chunk against `hash`, inflates it and splits it into its `count` encoded entries
/// (each still to be decoded with [`decode_entry`]).
pub fn open_chunk(hash: &[u8], data: &[u8], count: u64) -> Result<Vec<Vec<u8>>, DecodeError> {
    let computed = blake3::hash(data);
    if computed.as_bytes().as_slice() != hash {
        return Err(DecodeError::HashMismatch {
            stored: crate::encoding::hex(hash),
            computed: computed.to_hex().to_string(),
        });
    }
    let Some((&format, body)) = data.split_first() else {
        return Err(DecodeError::Truncated("chunk header"));
    };
    if format != CHUNK_FORMAT {
        return Err(DecodeError::UnknownHeader(format));
    }
    let mut raw = Vec::new();
    flate2::read::DeflateDecoder::new(body)
        .take(MAX_CHUNK_RAW as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| DecodeError::Malformed(format!("inflating: {e}")))?;
    if raw.len() > MAX_CHUNK_RAW {
        return Err(DecodeError::Malformed(format!(
            "inflates past {MAX_CHUNK_RAW} bytes"
        )));
    }
    let mut r = Reader { b: &raw, at: 0 };
    let mut out = Vec::new();
    while r.at < raw.len() {
        let n = r.len()?;
        out.push(r.take(n)?.to_vec());
    }
    if out.len() as u64 != count {
        return Err(DecodeError::Malformed(format!(
            "holds {} entries, its row says {count}",
            out.len()
        )));
    }
    Ok(out)
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, b: u8) {
        self.0.push(b);
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn len(&mut self, n: usize) {
        self.varint(n as u64);
    }

    fn i64(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    fn pairs(&mut self, p: &[(String, String)]) {
        self.len(p.len());
        for (k, v) in p {
            self.str(k);
            self.str(v);
        }
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Empty => self.u8(0),
            Value::Str(s) => {
                self.u8(1);
                self.str(s);
            }
            Value::Bool(b) => {
                self.u8(2);
                self.u8(u8::from(*b));
            }
            Value::Int(i) => {
                self.u8(3);
                self.i64(*i);
            }
            Value::Double(d) => {
                self.u8(4);
                self.0.extend_from_slice(&d.to_bits().to_le_bytes());
            }
            Value::Bytes(b) => {
                self.u8(5);
                self.bytes(b);
            }
            Value::Array(a) => {
                self.u8(6);
                self.len(a.len());
                for x in a {
                    self.value(x);
                }
            }
            Value::KvList(kv) => {
                self.u8(7);
                self.attrs(kv);
            }
        }
    }

    fn attrs(&mut self, kv: &[(String, Value)]) {
        self.len(kv.len());
        for (k, v) in kv {
            self.str(k);
            self.value(v);
        }
    }

    fn span(&mut self, s: &Span) {
        self.0.extend_from_slice(&s.trace_id);
        self.0.extend_from_slice(&s.span_id);
        match &s.parent_id {
            None => self.u8(0),
            Some(p) => {
                self.u8(1);
                self.0.extend_from_slice(p);
            }
        }
        self.str(&s.trace_state);
        self.varint(u64::from(s.flags));
        self.str(&s.name);
        self.i64(i64::from(s.kind));
        self.varint(s.start_ns);
        self.varint(s.end_ns);
        self.u8(s.status.code.as_i32() as u8);
        self.str(&s.status.message);
        self.attrs(&s.attributes);
        self.len(s.events.len());
        for e in &s.events {
            self.varint(e.time_ns);
            self.str(&e.name);
            self.attrs(&e.attributes);
        }
        self.len(s.links.len());
        for l in &s.links {
            self.0.extend_from_slice(&l.trace_id);
            self.0.extend_from_slice(&l.span_id);
            self.str(&l.trace_state);
            self.attrs(&l.attributes);
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.left() {
            return Err(DecodeError::Truncated("a length runs past the end"));
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Malformed(
            "a varint longer than 10 bytes".into(),
        ))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        let v = self.varint()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// A count or length: never more than the bytes left (each item takes at least one).
    fn len(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > self.left() as u64 {
            return Err(DecodeError::Truncated("a count exceeds the bytes left"));
        }
        Ok(n as usize)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    fn str(&mut self) -> Result<String, DecodeError> {
        let n = self.len()?;
        let b = self.take(n)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| DecodeError::Malformed(format!("text is not UTF-8: {e}")))
    }

    fn flag(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::Malformed(format!("flag byte {b}"))),
        }
    }

    fn opt_str(&mut self) -> Result<Option<String>, DecodeError> {
        if self.flag()? {
            Ok(Some(self.str()?))
        } else {
            Ok(None)
        }
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push((self.str()?, self.str()?));
        }
        Ok(out)
    }

    fn trace(&mut self) -> Result<TraceId, DecodeError> {
        let s = self.str()?;
        TraceId::parse(&s).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Malformed(format!(
                "attribute values nest deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(match self.u8()? {
            0 => Value::Empty,
            1 => Value::Str(self.str()?),
            2 => Value::Bool(self.flag()?),
            3 => Value::Int(self.i64()?),
            4 => Value::Double(f64::from_bits(u64::from_le_bytes(self.array()?))),
            5 => Value::Bytes(self.bytes()?),
            6 => {
                let n = self.len()?;
                let mut a = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            7 => Value::KvList(self.attrs(depth + 1)?),
            t => return Err(DecodeError::Malformed(format!("value tag {t}"))),
        })
    }

    fn attrs(&mut self, depth: usize) -> Result<Vec<(String, Value)>, DecodeError> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.str()?;
            out.push((k, self.value(depth)?));
        }
        Ok(out)
    }

    fn span(&mut self) -> Result<Span, DecodeError> {
        let trace_id = self.array()?;
        let span_id = self.array()?;
        let parent_id = if self.flag()? {
            Some(self.array()?)
        } else {
            None
        };
        let trace_state = self.str()?;
        let flags = u32::try_from(self.varint()?)
            .map_err(|_| DecodeError::Malformed("span flags exceed 32 bits".into()))?;
        let name = self.str()?;
        let kind = i32::try_from(self.i64()?)
            .map_err(|_| DecodeError::Malformed("span kind exceeds 32 bits".into()))?;
        let start_ns = self.varint()?;
        let end_ns = self.varint()?;
        let code = match self.u8()? {
            c @ 0..=2 => StatusCode::from_i32(i64::from(c)),
            c => return Err(DecodeError::Malformed(format!("status code {c}"))),
        };
        let message = self.str()?;
        let attributes = self.attrs(0)?;
        let n = self.len()?;
        let mut events = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            events.push(Event {
                time_ns: self.varint()?,
                name: self.str()?,
                attributes: self.attrs(0)?,
            });
        }
        let n = self.len()?;
        let mut links = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            links.push(Link {
                trace_id: self.array()?,
                span_id: self.array()?,
                trace_state: self.str()?,
                attributes: self.attrs(0)?,
            });
        }
        Ok(Span {
            trace_id,
            span_id,
            parent_id,
            trace_state,
            flags,
            name,
            kind,
            start_ns,
            end_ns,
            status: SpanStatus { code, message },
            attributes,
            events,
            links,
        })
    }

    fn entry(&mut self) -> Result<Entry, DecodeError> {
        let at_ms = self.i64()?;
        let record = match self.u8()? {
            SPAN => Record::Span {
                experiment: self.str()?,
                span: self.span()?,
            },
            INFO => {
                let trace = self.trace()?;
                let n = self.len()?;
                let mut fields = Vec::with_capacity(n.min(16));
                for _ in 0..n {
                    let f = self.u8()?;
                    let field = Field::ALL
                        .into_iter()
                        .find(|x| *x as u8 == f)
                        .ok_or_else(|| DecodeError::Malformed(format!("trace field {f}")))?;
                    fields.push((field, self.opt_str()?));
                }
                Record::Info {
                    trace,
                    fields,
                    metadata: self.pairs()?,
                    tags: self.pairs()?,
                }
            }
            TAG => Record::Tag {
                trace: self.trace()?,
                key: self.str()?,
                value: self.opt_str()?,
            },
            ASSESSMENT => {
                let trace = self.trace()?;
                let id = self.str()?;
                let body = match self.opt_str()? {
                    None => None,
                    Some(json) => Some(Box::new(
                        serde_json::from_str::<Assessment>(&json)
                            .map_err(|e| DecodeError::Malformed(format!("assessment {id}: {e}")))?,
                    )),
                };
                Record::Assessment { trace, id, body }
            }
            LINK => Record::Link {
                trace: self.trace()?,
                run: self.str()?,
            },
            DELETE => Record::Delete {
                trace: self.trace()?,
            },
            k => return Err(DecodeError::Malformed(format!("entry kind {k}"))),
        };
        Ok(Entry { at_ms, record })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AssessmentSource, AssessmentValue};

    pub(crate) fn sample_span(i: u8) -> Span {
        Span {
            trace_id: [i; 16],
            span_id: [i.wrapping_add(1); 8],
            parent_id: i.is_multiple_of(2).then_some([7; 8]),
            trace_state: "k=v".into(),
            flags: 1,
            name: format!("span-{i}"),
            kind: 1,
            start_ns: 1_700_000_000_000_000_000 + u64::from(i),
            end_ns: 1_700_000_000_500_000_000,
            status: SpanStatus {
                code: StatusCode::Error,
                message: "boom".into(),
            },
            attributes: vec![
                ("s".into(), Value::Str("héllo".into())),
                ("n".into(), Value::Double(f64::NAN)),
                ("z".into(), Value::Double(-0.0)),
                ("i".into(), Value::Int(-42)),
                (
                    "nested".into(),
                    Value::KvList(vec![(
                        "a".into(),
                        Value::Array(vec![
                            Value::Bool(true),
                            Value::Bytes(vec![0, 255]),
                            Value::Empty,
                        ]),
                    )]),
                ),
            ],
            events: vec![Event {
                time_ns: 5,
                name: "exception".into(),
                attributes: vec![("m".into(), Value::Str("x".into()))],
            }],
            links: vec![Link {
                trace_id: [3; 16],
                span_id: [4; 8],
                trace_state: String::new(),
                attributes: vec![],
            }],
        }
    }

    fn entries() -> Vec<Entry> {
        let trace = TraceId::parse("tr-0123").unwrap();
        vec![
            Entry {
                at_ms: 1,
                record: Record::Span {
                    experiment: "exp".into(),
                    span: sample_span(2),
                },
            },
            Entry {
                at_ms: -5,
                record: Record::Info {
                    trace: trace.clone(),
                    fields: vec![
                        (Field::State, Some("OK".into())),
                        (Field::ExecutionMs, None),
                    ],
                    metadata: vec![("m".into(), "1".into())],
                    tags: vec![("t".into(), "2".into())],
                },
            },
            Entry {
                at_ms: i64::MAX,
                record: Record::Tag {
                    trace: trace.clone(),
                    key: "k".into(),
                    value: None,
                },
            },
            Entry {
                at_ms: 3,
                record: Record::Assessment {
                    trace: trace.clone(),
                    id: "a-1".into(),
                    body: Some(Box::new(Assessment {
                        assessment_id: "a-1".into(),
                        assessment_name: "good".into(),
                        trace_id: trace.clone(),
                        span_id: None,
                        source: AssessmentSource {
                            source_type: "HUMAN".into(),
                            source_id: "bob".into(),
                        },
                        create_time_ms: 1,
                        last_update_time_ms: 2,
                        value: AssessmentValue::Feedback {
                            value: serde_json::json!(true),
                            error: None,
                        },
                        rationale: Some("ok".into()),
                        metadata: Default::default(),
                        overrides: None,
                        valid: true,
                    })),
                },
            },
            Entry {
                at_ms: 4,
                record: Record::Link {
                    trace: trace.clone(),
                    run: "r".into(),
                },
            },
            Entry {
                at_ms: i64::MIN,
                record: Record::Delete { trace },
            },
        ]
    }

    /// NaN != NaN: compare through the encoding.
    fn same(a: &Entry, b: &Entry) -> bool {
        entry_bytes(a) == entry_bytes(b)
    }

    #[test]
    fn entries_round_trip_bit_exactly() {
        for e in entries() {
            let back = decode_entry(&entry_bytes(&e)).unwrap();
            assert!(same(&e, &back), "{e:?} came back as {back:?}");
        }
    }

    #[test]
    fn chunks_round_trip_and_verify() {
        let encoded: Vec<Vec<u8>> = entries().iter().map(entry_bytes).collect();
        let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let sealed = seal(&refs);
        assert_eq!(sealed.hash, *blake3::hash(&sealed.data).as_bytes());
        let back = open_chunk(&sealed.hash, &sealed.data, refs.len() as u64).unwrap();
        assert_eq!(back, encoded);
        // A flipped byte fails the hash; a wrong count is named.
        let mut bad = sealed.data.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(
            open_chunk(&sealed.hash, &bad, 6),
            Err(DecodeError::HashMismatch { .. })
        ));
        let err = open_chunk(&sealed.hash, &sealed.data, 5).unwrap_err();
        assert!(err.to_string().contains("holds 6 entries"), "{err}");
    }

    #[test]
    fn truncated_or_hostile_bytes_are_errors() {
        let bytes = entry_bytes(&entries()[0]);
        for n in 0..bytes.len() {
            assert!(
                decode_entry(&bytes[..n]).is_err(),
                "prefix of {n} bytes decoded"
            );
        }
        // A value nested past the limit.
        let mut deep = Value::Int(1);
        for _ in 0..=MAX_DEPTH + 1 {
            deep = Value::Array(vec![deep]);
        }
        let mut span = sample_span(1);
        span.attributes = vec![("deep".into(), deep)];
        let e = Entry {
            at_ms: 0,
            record: Record::Span {
                experiment: "e".into(),
                span,
            },
        };
        let err = decode_entry(&entry_bytes(&e)).unwrap_err();
        assert!(err.to_string().contains("nest deeper"), "{err}");
        // A huge count with no bytes behind it allocates nothing.
        let mut w = vec![0u8, SPAN, 1, b'e'];
        w.extend_from_slice(&[0; 24]);
        w.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        w.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(decode_entry(&w).is_err());
    }
}
