//! Writes event files as PyTorch's `SummaryWriter` and TF2's summary ops do: TFRecord frames
//! around `Event` protobufs. Cairn imports event files and never writes them for users; this is
//! for tests, benches and fuzz seeds that need files of a chosen shape (and broken ones).

use crate::proto::{put_bytes, put_double, put_float, put_key, put_uint, put_varint};
use crate::{HParamValue, SessionStatus, crc32c};

/// Frames `data` as one TFRecord: length, masked CRC of the length, data, masked CRC of the data.
pub fn record(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 16);
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::masked(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32c::masked(data).to_le_bytes());
    out
}

/// An event file being written to a buffer.
#[derive(Debug, Default, Clone)]
pub struct EventFile {
    bytes: Vec<u8>,
}

impl EventFile {
    /// A new file, opening with the `brain.Event:2` event every writer puts first.
    pub fn new(wall_time: f64) -> Self {
        let mut e = event_head(wall_time, 0);
        put_bytes(&mut e, 3, b"brain.Event:2");
        let mut f = EventFile::default();
        f.push(&e);
        f
    }

    /// The file's bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Appends an already encoded `Event` as one record.
    pub fn push(&mut self, event: &[u8]) {
        self.bytes.extend_from_slice(&record(event));
    }

    /// A scalar as `SummaryWriter.add_scalar` writes it: `simple_value`.
    pub fn scalar(&mut self, wall_time: f64, step: i64, tag: &str, value: f32) {
        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes());
        put_float(&mut v, 2, value);
        self.summary(wall_time, step, &v);
    }

    /// A scalar as TF2's `tf.summary.scalar` writes it: a float tensor of shape `[]`, the
    /// scalars plugin named in its metadata (only when `with_metadata`: TF2 names it with a
    /// tag's first value only).
    pub fn tensor_scalar(
        &mut self,
        wall_time: f64,
        step: i64,
        tag: &str,
        value: f32,
        with_metadata: bool,
    ) {
        let mut t = Vec::new();
        put_uint(&mut t, 1, crate::dtype::FLOAT as u64);
        put_bytes(&mut t, 2, &[]);
        put_bytes(&mut t, 4, &value.to_le_bytes());
        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes());
        if with_metadata {
            put_bytes(&mut v, 9, &metadata("scalars", &[]));
        }
        put_bytes(&mut v, 8, &t);
        self.summary(wall_time, step, &v);
    }

    /// A text summary as `SummaryWriter.add_text` writes it: a string tensor of shape `[1]`,
    /// plugin `text`.
    pub fn text(&mut self, wall_time: f64, step: i64, tag: &str, text: &str) {
        let mut dim = Vec::new();
        put_uint(&mut dim, 1, 1);
        let mut shape = Vec::new();
        put_bytes(&mut shape, 2, &dim);
        let mut t = Vec::new();
        put_uint(&mut t, 1, crate::dtype::STRING as u64);
        put_bytes(&mut t, 2, &shape);
        put_bytes(&mut t, 8, text.as_bytes());
        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes());
        put_bytes(&mut v, 9, &metadata("text", &[]));
        put_bytes(&mut v, 8, &t);
        self.summary(wall_time, step, &v);
    }

    /// `_hparams_/session_start_info` with these hparams, as `add_hparams` writes it.
    pub fn hparams_start(&mut self, wall_time: f64, hparams: &[(&str, HParamValue)]) {
        let mut start = Vec::new();
        for (k, v) in hparams {
            let mut value = Vec::new();
            match v {
                HParamValue::Number(n) => put_double(&mut value, 2, *n),
                HParamValue::Text(s) => put_bytes(&mut value, 3, s.as_bytes()),
                HParamValue::Bool(b) => put_uint(&mut value, 4, u64::from(*b)),
                HParamValue::Other("list") => put_bytes(&mut value, 6, &[]),
                HParamValue::Other("struct") => put_bytes(&mut value, 5, &[]),
                HParamValue::Other(_) => put_uint(&mut value, 1, 0),
            }
            let mut entry = Vec::new();
            put_bytes(&mut entry, 1, k.as_bytes());
            put_bytes(&mut entry, 2, &value);
            put_bytes(&mut start, 1, &entry);
        }
        let mut content = Vec::new();
        put_bytes(&mut content, 3, &start);
        self.hparams(wall_time, "_hparams_/session_start_info", &content);
    }

    /// `_hparams_/session_end_info` with this status.
    pub fn hparams_end(&mut self, wall_time: f64, status: SessionStatus) {
        let code = match status {
            SessionStatus::Unknown => 0,
            SessionStatus::Success => 1,
            SessionStatus::Failure => 2,
            SessionStatus::Running => 3,
        };
        let mut end = Vec::new();
        put_uint(&mut end, 1, code);
        let mut content = Vec::new();
        put_bytes(&mut content, 4, &end);
        self.hparams(wall_time, "_hparams_/session_end_info", &content);
    }

    fn hparams(&mut self, wall_time: f64, tag: &str, content: &[u8]) {
        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes());
        put_bytes(&mut v, 9, &metadata("hparams", content));
        self.summary(wall_time, 0, &v);
    }

    fn summary(&mut self, wall_time: f64, step: i64, value: &[u8]) {
        let mut s = Vec::with_capacity(value.len() + 4);
        put_bytes(&mut s, 1, value);
        let mut e = event_head(wall_time, step);
        put_bytes(&mut e, 5, &s);
        self.push(&e);
    }
}

fn event_head(wall_time: f64, step: i64) -> Vec<u8> {
    let mut e = Vec::with_capacity(64);
    put_double(&mut e, 1, wall_time);
    if step != 0 {
        put_key(&mut e, 2, 0);
        put_varint(&mut e, step as u64);
    }
    e
}

fn metadata(plugin: &str, content: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    put_bytes(&mut p, 1, plugin.as_bytes());
    if !content.is_empty() {
        put_bytes(&mut p, 2, content);
    }
    let mut m = Vec::new();
    put_bytes(&mut m, 1, &p);
    m
}
