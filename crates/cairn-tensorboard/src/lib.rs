//! Reads TensorBoard event files (`*tfevents*`) without TensorFlow: the TFRecord framing with
//! its masked CRC-32C checks, and the protobuf messages training loops write into it —
//! `Event`, `Summary.Value`, `TensorProto`, and the hparams plugin's `HParamsPluginData` —
//! decoded by hand, only the fields Cairn keeps. [`write`] writes such files, the way
//! PyTorch's `SummaryWriter` and TF2's summary ops do (for tests, benches and fuzz seeds).
//!
//! What it is not: an importer or a directory walker (`cairn-core`'s `tensorboard` module maps
//! events to runs), and it does no IO: bytes in, events out. Every bound is explicit: a record
//! holds at most [`MAX_RECORD`] bytes; a message is decoded by its own type, so nesting goes as
//! deep as the schema and no deeper (the generic `google.protobuf.Value` list and struct are not
//! descended into); a repeated field holds at most what its record holds.

mod crc32c;
mod proto;
pub mod write;

use proto::Fields;

/// The largest record accepted, in bytes (TensorBoard's own summaries are far smaller; a
/// larger length is a corrupt file, not a big one).
pub const MAX_RECORD: u64 = 64 << 20;

/// What is wrong with an event file, and where: `offset` is the byte where the record (or its
/// header) that is wrong starts.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("at byte {offset}: {kind}")]
pub struct Error {
    pub offset: u64,
    pub kind: ErrorKind,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErrorKind {
    #[error("truncated record: its {part} needs {needed} bytes, {left} left in the file")]
    Truncated {
        part: &'static str,
        needed: u64,
        left: u64,
    },
    #[error(
        "the record length's CRC does not match (stored {stored:#010x}, computed {computed:#010x}): not an event file, or corrupt"
    )]
    LengthCrc { stored: u32, computed: u32 },
    #[error(
        "the record's data CRC does not match (stored {stored:#010x}, computed {computed:#010x}): corrupt"
    )]
    DataCrc { stored: u32, computed: u32 },
    #[error("a record of {len} bytes; at most {max} are accepted")]
    TooLong { len: u64, max: u64 },
    #[error("malformed Event: {0}")]
    Malformed(String),
}

/// One TFRecord of `data`: where it starts and its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub offset: u64,
    pub data: &'a [u8],
}

/// The records of an event file, each checked (length CRC, then data CRC) before it is
/// yielded. The first error ends the iteration.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

/// The records of `data` (a whole event file).
pub fn records(data: &[u8]) -> Records<'_> {
    Records {
        data,
        pos: 0,
        failed: false,
    }
}

impl<'a> Records<'a> {
    fn read(&mut self) -> Result<Record<'a>, Error> {
        let start = self.pos;
        let rest = &self.data[start..];
        let err = |kind| Error {
            offset: start as u64,
            kind,
        };
        if rest.len() < 12 {
            return Err(err(ErrorKind::Truncated {
                part: "header",
                needed: 12,
                left: rest.len() as u64,
            }));
        }
        let len_bytes = &rest[..8];
        let stored = u32::from_le_bytes([rest[8], rest[9], rest[10], rest[11]]);
        let computed = crc32c::masked(len_bytes);
        if stored != computed {
            return Err(err(ErrorKind::LengthCrc { stored, computed }));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or([0; 8]));
        if len > MAX_RECORD {
            return Err(err(ErrorKind::TooLong {
                len,
                max: MAX_RECORD,
            }));
        }
        let needed = len + 4;
        let left = (rest.len() - 12) as u64;
        if left < needed {
            return Err(err(ErrorKind::Truncated {
                part: "data and CRC",
                needed,
                left,
            }));
        }
        let len = len as usize;
        let payload = &rest[12..12 + len];
        let t = &rest[12 + len..16 + len];
        let stored = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
        let computed = crc32c::masked(payload);
        if stored != computed {
            return Err(err(ErrorKind::DataCrc { stored, computed }));
        }
        self.pos = start + 16 + len;
        Ok(Record {
            offset: start as u64,
            data: payload,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.read();
        self.failed = r.is_err();
        Some(r)
    }
}

/// Every event of a whole event file, in order; the first bad record is the error.
pub fn parse(data: &[u8]) -> Result<Vec<Event>, Error> {
    records(data)
        .map(|r| {
            let r = r?;
            Event::decode(r.data).map_err(|m| Error {
                offset: r.offset,
                kind: ErrorKind::Malformed(m),
            })
        })
        .collect()
}

/// An `Event` (`tensorflow/core/util/event.proto`), what Cairn keeps of it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// Seconds since the epoch.
    pub wall_time: f64,
    pub step: i64,
    pub what: What,
}

/// What an event carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum What {
    /// The first event of a file: `brain.Event:2`.
    FileVersion(String),
    Summary(Vec<Value>),
    /// A graph, a session log, run metadata…: nothing Cairn imports.
    #[default]
    Other,
}

/// One `Summary.Value`: a tag and its datum.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Value {
    pub tag: String,
    /// `metadata.plugin_data`: which plugin the value is for (`scalars`, `text`, `hparams`…)
    /// and the plugin's own bytes. TF2 writes it only with a tag's first value.
    pub plugin: Option<PluginData>,
    pub data: Data,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PluginData {
    pub name: String,
    pub content: Vec<u8>,
}

/// The datum of a [`Value`].
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Data {
    /// `simple_value`: a scalar as `SummaryWriter.add_scalar` and TF1 write it.
    Simple(f32),
    Tensor(Box<Tensor>),
    /// An image, histogram or audio summary (by that name): not imported.
    Other(&'static str),
    #[default]
    None,
}

/// TensorFlow's `DataType` numbers Cairn reads.
pub mod dtype {
    pub const FLOAT: i32 = 1;
    pub const DOUBLE: i32 = 2;
    pub const INT32: i32 = 3;
    pub const STRING: i32 = 7;
    pub const INT64: i32 = 9;
    pub const BOOL: i32 = 10;
    pub const HALF: i32 = 19;
}

/// A `TensorProto`: a dtype, a shape and the values, either typed or as raw little-endian
/// `tensor_content`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tensor {
    pub dtype: i32,
    /// Dimension sizes; empty for a scalar.
    pub shape: Vec<i64>,
    pub content: Vec<u8>,
    pub float_val: Vec<f32>,
    pub double_val: Vec<f64>,
    /// `int_val` (int32, and the bit patterns of bool and half values).
    pub int_val: Vec<i64>,
    pub int64_val: Vec<i64>,
    pub bool_val: Vec<bool>,
    pub half_val: Vec<u16>,
    pub string_val: Vec<Vec<u8>>,
}

impl Tensor {
    fn elements(&self) -> Option<i64> {
        self.shape
            .iter()
            .try_fold(1i64, |n, &d| if d < 0 { None } else { n.checked_mul(d) })
    }

    /// The value of a one-element numeric tensor (what TF2's `tf.summary.scalar` writes).
    pub fn scalar(&self) -> Option<f64> {
        if self.elements()? != 1 {
            return None;
        }
        let c = &self.content;
        match self.dtype {
            dtype::FLOAT => self
                .float_val
                .first()
                .map(|&v| f64::from(v))
                .or_else(|| Some(f64::from(f32::from_le_bytes(c.get(..4)?.try_into().ok()?)))),
            dtype::DOUBLE => self
                .double_val
                .first()
                .copied()
                .or_else(|| Some(f64::from_le_bytes(c.get(..8)?.try_into().ok()?))),
            dtype::INT32 => self
                .int_val
                .first()
                .map(|&v| v as i32 as f64)
                .or_else(|| Some(f64::from(i32::from_le_bytes(c.get(..4)?.try_into().ok()?)))),
            dtype::INT64 => self
                .int64_val
                .first()
                .map(|&v| v as f64)
                .or_else(|| Some(i64::from_le_bytes(c.get(..8)?.try_into().ok()?) as f64)),
            dtype::BOOL => self
                .bool_val
                .first()
                .map(|&b| f64::from(u8::from(b)))
                .or_else(|| Some(f64::from(u8::from(*c.first()? != 0)))),
            dtype::HALF => self
                .half_val
                .first()
                .copied()
                .or_else(|| Some(u16::from_le_bytes(c.get(..2)?.try_into().ok()?)))
                .map(half_to_f64),
            _ => None,
        }
    }

    /// The strings of a string tensor (a text summary), in order; `None` for another dtype.
    pub fn strings(&self) -> Option<Vec<String>> {
        (self.dtype == dtype::STRING).then(|| {
            self.string_val
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }
}

/// An IEEE half as a double.
fn half_to_f64(h: u16) -> f64 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = i32::from((h >> 10) & 0x1f);
    let frac = f64::from(h & 0x3ff);
    sign * match exp {
        0 => frac * 2f64.powi(-24),
        31 if frac == 0.0 => f64::INFINITY,
        31 => f64::NAN,
        e => (1.0 + frac / 1024.0) * 2f64.powi(e - 15),
    }
}

impl Event {
    /// Decodes one record's payload.
    pub fn decode(buf: &[u8]) -> Result<Event, String> {
        const W: &str = "Event";
        let mut e = Event::default();
        let mut f = Fields::new(buf, W);
        while let Some(field) = f.next_field() {
            match field? {
                (1, w) => e.wall_time = proto::double(w, W, "wall_time")?,
                (2, w) => e.step = proto::varint(w, W, "step")? as i64,
                (3, w) => e.what = What::FileVersion(proto::string(w, W, "file_version")?),
                (5, w) => e.what = What::Summary(decode_summary(proto::bytes(w, W, "summary")?)?),
                _ => {}
            }
        }
        Ok(e)
    }
}

fn decode_summary(buf: &[u8]) -> Result<Vec<Value>, String> {
    const W: &str = "Summary";
    let mut values = Vec::new();
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        if let (1, w) = field? {
            values.push(decode_value(proto::bytes(w, W, "value")?)?);
        }
    }
    Ok(values)
}

fn decode_value(buf: &[u8]) -> Result<Value, String> {
    const W: &str = "Summary.Value";
    let mut v = Value::default();
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        match field? {
            (1, w) => v.tag = proto::string(w, W, "tag")?,
            // TF1's `node_name` stands in for a missing tag.
            (7, w) if v.tag.is_empty() => v.tag = proto::string(w, W, "node_name")?,
            (2, w) => v.data = Data::Simple(proto::float(w, W, "simple_value")?),
            (3, _) | (5, _) => v.data = Data::Other("histogram"),
            (4, _) => v.data = Data::Other("image"),
            (6, _) => v.data = Data::Other("audio"),
            (8, w) => {
                v.data = Data::Tensor(Box::new(decode_tensor(proto::bytes(w, W, "tensor")?)?))
            }
            (9, w) => v.plugin = decode_metadata(proto::bytes(w, W, "metadata")?)?,
            _ => {}
        }
    }
    Ok(v)
}

fn decode_metadata(buf: &[u8]) -> Result<Option<PluginData>, String> {
    const W: &str = "SummaryMetadata";
    let mut plugin = None;
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        if let (1, w) = field? {
            let mut p = PluginData::default();
            let mut g = Fields::new(proto::bytes(w, W, "plugin_data")?, "PluginData");
            while let Some(field) = g.next_field() {
                match field? {
                    (1, w) => p.name = proto::string(w, "PluginData", "plugin_name")?,
                    (2, w) => p.content = proto::bytes(w, "PluginData", "content")?.to_vec(),
                    _ => {}
                }
            }
            plugin = Some(p);
        }
    }
    Ok(plugin)
}

fn decode_tensor(buf: &[u8]) -> Result<Tensor, String> {
    const W: &str = "TensorProto";
    let mut t = Tensor::default();
    let mut f = Fields::new(buf, W);
    let mut ints = Vec::new();
    while let Some(field) = f.next_field() {
        match field? {
            (1, w) => t.dtype = proto::varint(w, W, "dtype")? as i32,
            (2, w) => t.shape = decode_shape(proto::bytes(w, W, "tensor_shape")?)?,
            (4, w) => t.content = proto::bytes(w, W, "tensor_content")?.to_vec(),
            (5, w) => proto::repeated_f32(w, &mut t.float_val, W, "float_val")?,
            (6, w) => proto::repeated_f64(w, &mut t.double_val, W, "double_val")?,
            (7, w) => {
                ints.clear();
                proto::repeated_varint(w, &mut ints, W, "int_val")?;
                t.int_val.extend(ints.iter().map(|&v| v as i64));
            }
            (8, w) => t
                .string_val
                .push(proto::bytes(w, W, "string_val")?.to_vec()),
            (10, w) => {
                ints.clear();
                proto::repeated_varint(w, &mut ints, W, "int64_val")?;
                t.int64_val.extend(ints.iter().map(|&v| v as i64));
            }
            (11, w) => {
                ints.clear();
                proto::repeated_varint(w, &mut ints, W, "bool_val")?;
                t.bool_val.extend(ints.iter().map(|&v| v != 0));
            }
            (13, w) => {
                ints.clear();
                proto::repeated_varint(w, &mut ints, W, "half_val")?;
                t.half_val.extend(ints.iter().map(|&v| v as u16));
            }
            _ => {}
        }
    }
    Ok(t)
}

fn decode_shape(buf: &[u8]) -> Result<Vec<i64>, String> {
    const W: &str = "TensorShapeProto";
    let mut dims = Vec::new();
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        if let (2, w) = field? {
            let mut size = 0;
            let mut g = Fields::new(proto::bytes(w, W, "dim")?, "TensorShapeProto.Dim");
            while let Some(field) = g.next_field() {
                if let (1, w) = field? {
                    size = proto::varint(w, "TensorShapeProto.Dim", "size")? as i64;
                }
            }
            dims.push(size);
        }
    }
    Ok(dims)
}

/// What the hparams plugin (`plugin_name` `hparams`) says in one value's `plugin_data.content`
/// (`HParamsPluginData`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum HParams {
    /// `_hparams_/experiment`: the hparams and metrics a sweep declares.
    Experiment {
        hparams: Vec<String>,
        /// The metrics' tags (`hparam/final_loss`).
        metrics: Vec<String>,
    },
    /// `_hparams_/session_start_info`: this run's hparam values.
    SessionStart {
        hparams: Vec<(String, HParamValue)>,
        group_name: String,
        start_time_secs: f64,
    },
    /// `_hparams_/session_end_info`: how the run ended.
    SessionEnd {
        status: SessionStatus,
        end_time_secs: f64,
    },
    /// A version of the plugin data without any of the three.
    Empty,
}

/// An hparam's value (`google.protobuf.Value`).
#[derive(Debug, Clone, PartialEq)]
pub enum HParamValue {
    Number(f64),
    Text(String),
    Bool(bool),
    /// Null, a list or a struct: not an hparam value TensorBoard shows.
    Other(&'static str),
}

/// `tensorboard.hparams.Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Unknown,
    Success,
    Failure,
    Running,
}

/// Decodes the hparams plugin's content.
pub fn decode_hparams(buf: &[u8]) -> Result<HParams, String> {
    const W: &str = "HParamsPluginData";
    let mut out = HParams::Empty;
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        match field? {
            (2, w) => out = decode_experiment(proto::bytes(w, W, "experiment")?)?,
            (3, w) => out = decode_session_start(proto::bytes(w, W, "session_start_info")?)?,
            (4, w) => {
                const E: &str = "SessionEndInfo";
                let (mut status, mut end) = (SessionStatus::Unknown, 0.0);
                let mut g = Fields::new(proto::bytes(w, W, "session_end_info")?, E);
                while let Some(field) = g.next_field() {
                    match field? {
                        (1, w) => {
                            status = match proto::varint(w, E, "status")? {
                                1 => SessionStatus::Success,
                                2 => SessionStatus::Failure,
                                3 => SessionStatus::Running,
                                _ => SessionStatus::Unknown,
                            }
                        }
                        (2, w) => end = proto::double(w, E, "end_time_secs")?,
                        _ => {}
                    }
                }
                out = HParams::SessionEnd {
                    status,
                    end_time_secs: end,
                };
            }
            _ => {}
        }
    }
    Ok(out)
}

fn decode_experiment(buf: &[u8]) -> Result<HParams, String> {
    const W: &str = "Experiment";
    let (mut hparams, mut metrics) = (Vec::new(), Vec::new());
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        match field? {
            (4, w) => {
                let mut g = Fields::new(proto::bytes(w, W, "hparam_infos")?, "HParamInfo");
                while let Some(field) = g.next_field() {
                    if let (1, w) = field? {
                        hparams.push(proto::string(w, "HParamInfo", "name")?);
                    }
                }
            }
            (5, w) => {
                let mut g = Fields::new(proto::bytes(w, W, "metric_infos")?, "MetricInfo");
                while let Some(field) = g.next_field() {
                    if let (1, w) = field? {
                        let (mut group, mut tag) = (String::new(), String::new());
                        let mut n =
                            Fields::new(proto::bytes(w, "MetricInfo", "name")?, "MetricName");
                        while let Some(field) = n.next_field() {
                            match field? {
                                (1, w) => group = proto::string(w, "MetricName", "group")?,
                                (2, w) => tag = proto::string(w, "MetricName", "tag")?,
                                _ => {}
                            }
                        }
                        metrics.push(if group.is_empty() {
                            tag
                        } else {
                            format!("{group}/{tag}")
                        });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(HParams::Experiment { hparams, metrics })
}

fn decode_session_start(buf: &[u8]) -> Result<HParams, String> {
    const W: &str = "SessionStartInfo";
    let mut hparams = Vec::new();
    let mut group_name = String::new();
    let mut start_time_secs = 0.0;
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        match field? {
            (1, w) => {
                // A map entry: key = 1, value = 2.
                const M: &str = "SessionStartInfo.HparamsEntry";
                let (mut key, mut value) = (String::new(), HParamValue::Other("null"));
                let mut g = Fields::new(proto::bytes(w, W, "hparams")?, M);
                while let Some(field) = g.next_field() {
                    match field? {
                        (1, w) => key = proto::string(w, M, "key")?,
                        (2, w) => value = decode_value_proto(proto::bytes(w, M, "value")?)?,
                        _ => {}
                    }
                }
                hparams.push((key, value));
            }
            (4, w) => group_name = proto::string(w, W, "group_name")?,
            (5, w) => start_time_secs = proto::double(w, W, "start_time_secs")?,
            _ => {}
        }
    }
    Ok(HParams::SessionStart {
        hparams,
        group_name,
        start_time_secs,
    })
}

fn decode_value_proto(buf: &[u8]) -> Result<HParamValue, String> {
    const W: &str = "google.protobuf.Value";
    let mut v = HParamValue::Other("null");
    let mut f = Fields::new(buf, W);
    while let Some(field) = f.next_field() {
        v = match field? {
            (1, _) => HParamValue::Other("null"),
            (2, w) => HParamValue::Number(proto::double(w, W, "number_value")?),
            (3, w) => HParamValue::Text(proto::string(w, W, "string_value")?),
            (4, w) => HParamValue::Bool(proto::varint(w, W, "bool_value")? != 0),
            (5, _) => HParamValue::Other("struct"),
            (6, _) => HParamValue::Other("list"),
            _ => v,
        };
    }
    Ok(v)
}

#[cfg(test)]
mod tests;
