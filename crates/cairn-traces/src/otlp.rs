//! OTLP/HTTP trace requests (`ExportTraceServiceRequest`), as OpenTelemetry's exporters and
//! MLflow's client send them to `/v1/traces`: binary protobuf and OTLP/JSON.
//!
//! A small hand-written decoder for outside input, bounded everywhere ([`Limits`]): the body's
//! size, spans per request, attributes per span, events and links per span, the bytes of one
//! value, how deep values nest. Every refusal names where it happened
//! (`resource_spans[0].scope_spans[0].spans[3]`) and what was wrong. Unknown fields are
//! skipped, as protobuf requires; groups and malformed lengths are errors, never panics.
//!
//! [`encode`] writes the same messages, for tests, seed corpora and benchmarks.

use std::io::Read;

use crate::error::Error;
use crate::model::{Event, Link, Span, SpanStatus, StatusCode, Value};

/// Bounds on one request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Bytes of the (inflated) body.
    pub max_bytes: usize,
    pub max_spans: usize,
    /// Attributes of one span, event, link or resource.
    pub max_attributes: usize,
    pub max_events: usize,
    pub max_links: usize,
    /// Bytes of one string or bytes value, key or name.
    pub max_value_bytes: usize,
    /// Nesting of arrays and maps in one value.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 16 << 20,
            max_spans: 100_000,
            max_attributes: 4096,
            max_events: 4096,
            max_links: 1024,
            max_value_bytes: 8 << 20,
            max_depth: crate::codec::MAX_DEPTH,
        }
    }
}

/// The spans of one `ResourceSpans`, with the resource's attributes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceSpans {
    pub resource: Vec<(String, Value)>,
    pub spans: Vec<Span>,
}

fn bad(at: &str, what: impl std::fmt::Display) -> Error {
    Error::Otlp(if at.is_empty() {
        what.to_string()
    } else {
        format!("{at}: {what}")
    })
}

/// Inflates a `Content-Encoding: gzip` (or `deflate`) body, refusing one that inflates past
/// `max_bytes`.
pub fn decompress(body: &[u8], encoding: &str, max_bytes: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let read = match encoding.trim().to_ascii_lowercase().as_str() {
        "" | "identity" => return Ok(body.to_vec()),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(body)
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(body)
            .take(max_bytes as u64 + 1)
            .read_to_end(&mut out),
        other => {
            return Err(bad(
                "",
                format!("Content-Encoding '{other}' is not supported (gzip, deflate or none)"),
            ));
        }
    };
    read.map_err(|e| bad("", format!("the {encoding} body does not inflate: {e}")))?;
    if out.len() > max_bytes {
        return Err(bad(
            "",
            format!("the body inflates past the limit of {max_bytes} bytes"),
        ));
    }
    Ok(out)
}

// ---- protobuf ---------------------------------------------------------------------------

#[derive(Debug)]
enum Wire<'a> {
    Varint(u64),
    I64(u64),
    Len(&'a [u8]),
    I32(u32),
}

struct Pb<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Pb<'a> {
    fn new(b: &'a [u8]) -> Self {
        Pb { b, at: 0 }
    }

    fn varint(&mut self, at: &str) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.b.get(self.at) else {
                return Err(bad(at, "the message ends inside a varint"));
            };
            self.at += 1;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(bad(at, "a varint is longer than 10 bytes"))
    }

    fn fixed<const N: usize>(&mut self, at: &str) -> Result<[u8; N], Error> {
        let s = self
            .b
            .get(self.at..self.at + N)
            .ok_or_else(|| bad(at, "the message ends inside a fixed-width field"))?;
        self.at += N;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// The next field, or `None` at the end of the message.
    fn next(&mut self, at: &str) -> Result<Option<(u32, Wire<'a>)>, Error> {
        if self.at >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint(at)?;
        let field = u32::try_from(key >> 3).map_err(|_| bad(at, "a field number is too large"))?;
        if field == 0 {
            return Err(bad(at, "field number 0 is not valid protobuf"));
        }
        let wire = match key & 7 {
            0 => Wire::Varint(self.varint(at)?),
            1 => Wire::I64(u64::from_le_bytes(self.fixed(at)?)),
            2 => {
                let n = self.varint(at)?;
                let left = (self.b.len() - self.at) as u64;
                if n > left {
                    return Err(bad(
                        at,
                        format!("field {field} claims {n} bytes, {left} are left"),
                    ));
                }
                let s = &self.b[self.at..self.at + n as usize];
                self.at += n as usize;
                Wire::Len(s)
            }
            5 => Wire::I32(u32::from_le_bytes(self.fixed(at)?)),
            w => {
                return Err(bad(
                    at,
                    format!(
                        "field {field} has wire type {w} (groups and unknown types are refused)"
                    ),
                ));
            }
        };
        Ok(Some((field, wire)))
    }
}

struct Decoder<'l> {
    limits: &'l Limits,
    spans: usize,
}

fn want_len<'a>(at: &str, field: &str, w: Wire<'a>) -> Result<&'a [u8], Error> {
    match w {
        Wire::Len(b) => Ok(b),
        other => Err(bad(
            at,
            format!("{field} is not length-delimited ({other:?})"),
        )),
    }
}

fn want_varint(at: &str, field: &str, w: Wire<'_>) -> Result<u64, Error> {
    match w {
        Wire::Varint(v) => Ok(v),
        other => Err(bad(at, format!("{field} is not a varint ({other:?})"))),
    }
}

fn want_fixed64(at: &str, field: &str, w: Wire<'_>) -> Result<u64, Error> {
    match w {
        Wire::I64(v) => Ok(v),
        other => Err(bad(at, format!("{field} is not a fixed64 ({other:?})"))),
    }
}

impl Decoder<'_> {
    fn text(&self, at: &str, field: &str, b: &[u8]) -> Result<String, Error> {
        if b.len() > self.limits.max_value_bytes {
            return Err(bad(
                at,
                format!(
                    "{field} has {} bytes (at most {})",
                    b.len(),
                    self.limits.max_value_bytes
                ),
            ));
        }
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| bad(at, format!("{field} is not UTF-8: {e}")))
    }

    fn request(&mut self, b: &[u8]) -> Result<Vec<ResourceSpans>, Error> {
        if b.len() > self.limits.max_bytes {
            return Err(bad(
                "",
                format!(
                    "the request has {} bytes (at most {})",
                    b.len(),
                    self.limits.max_bytes
                ),
            ));
        }
        let mut out = Vec::new();
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next("request")? {
            if f == 1 {
                let at = format!("resource_spans[{}]", out.len());
                let body = want_len(&at, "resource_spans", w)?;
                out.push(self.resource_spans(&at, body)?);
            }
        }
        Ok(out)
    }

    fn resource_spans(&mut self, at: &str, b: &[u8]) -> Result<ResourceSpans, Error> {
        let mut rs = ResourceSpans::default();
        let mut scopes = 0;
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            match f {
                1 => {
                    let body = want_len(at, "resource", w)?;
                    let at = format!("{at}.resource");
                    let mut pb = Pb::new(body);
                    while let Some((f, w)) = pb.next(&at)? {
                        if f == 1 {
                            let kv = want_len(&at, "attributes", w)?;
                            self.push_attr(&at, &mut rs.resource, kv)?;
                        }
                    }
                }
                2 => {
                    let body = want_len(at, "scope_spans", w)?;
                    let at = format!("{at}.scope_spans[{scopes}]");
                    scopes += 1;
                    let mut pb = Pb::new(body);
                    while let Some((f, w)) = pb.next(&at)? {
                        if f == 2 {
                            let at = format!("{at}.spans[{}]", rs.spans.len());
                            let body = want_len(&at, "spans", w)?;
                            self.spans += 1;
                            if self.spans > self.limits.max_spans {
                                return Err(bad(
                                    &at,
                                    format!(
                                        "the request holds more than {} spans",
                                        self.limits.max_spans
                                    ),
                                ));
                            }
                            rs.spans.push(self.span(&at, body)?);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(rs)
    }

    fn push_attr(
        &self,
        at: &str,
        attrs: &mut Vec<(String, Value)>,
        kv: &[u8],
    ) -> Result<(), Error> {
        if attrs.len() >= self.limits.max_attributes {
            return Err(bad(
                at,
                format!("more than {} attributes", self.limits.max_attributes),
            ));
        }
        attrs.push(self.key_value(at, kv, 0)?);
        Ok(())
    }

    fn key_value(&self, at: &str, b: &[u8], depth: usize) -> Result<(String, Value), Error> {
        let mut key = String::new();
        let mut value = Value::Empty;
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            match f {
                1 => key = self.text(at, "an attribute key", want_len(at, "key", w)?)?,
                2 => {
                    let body = want_len(at, "value", w)?;
                    value = self.any_value(&format!("{at}: attribute '{key}'"), body, depth)?;
                }
                _ => {}
            }
        }
        Ok((key, value))
    }

    fn any_value(&self, at: &str, b: &[u8], depth: usize) -> Result<Value, Error> {
        if depth > self.limits.max_depth {
            return Err(bad(
                at,
                format!(
                    "the value nests deeper than {} levels",
                    self.limits.max_depth
                ),
            ));
        }
        let mut v = Value::Empty;
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            v = match f {
                1 => {
                    Value::Str(self.text(at, "a string value", want_len(at, "string_value", w)?)?)
                }
                2 => Value::Bool(want_varint(at, "bool_value", w)? != 0),
                3 => Value::Int(want_varint(at, "int_value", w)? as i64),
                4 => Value::Double(f64::from_bits(want_fixed64(at, "double_value", w)?)),
                5 => {
                    let body = want_len(at, "array_value", w)?;
                    let mut items = Vec::new();
                    let mut pb = Pb::new(body);
                    while let Some((f, w)) = pb.next(at)? {
                        if f == 1 {
                            if items.len() >= self.limits.max_attributes {
                                return Err(bad(
                                    at,
                                    format!(
                                        "an array holds more than {} values",
                                        self.limits.max_attributes
                                    ),
                                ));
                            }
                            items.push(self.any_value(
                                at,
                                want_len(at, "values", w)?,
                                depth + 1,
                            )?);
                        }
                    }
                    Value::Array(items)
                }
                6 => {
                    let body = want_len(at, "kvlist_value", w)?;
                    let mut items = Vec::new();
                    let mut pb = Pb::new(body);
                    while let Some((f, w)) = pb.next(at)? {
                        if f == 1 {
                            if items.len() >= self.limits.max_attributes {
                                return Err(bad(
                                    at,
                                    format!(
                                        "a map holds more than {} entries",
                                        self.limits.max_attributes
                                    ),
                                ));
                            }
                            items.push(self.key_value(
                                at,
                                want_len(at, "values", w)?,
                                depth + 1,
                            )?);
                        }
                    }
                    Value::KvList(items)
                }
                7 => {
                    let b = want_len(at, "bytes_value", w)?;
                    if b.len() > self.limits.max_value_bytes {
                        return Err(bad(at, format!("a bytes value has {} bytes", b.len())));
                    }
                    Value::Bytes(b.to_vec())
                }
                _ => v,
            };
        }
        Ok(v)
    }

    fn attrs_of(
        &self,
        at: &str,
        attrs: &mut Vec<(String, Value)>,
        w: Wire<'_>,
    ) -> Result<(), Error> {
        let kv = want_len(at, "attributes", w)?;
        self.push_attr(at, attrs, kv)
    }

    fn span(&self, at: &str, b: &[u8]) -> Result<Span, Error> {
        let mut s = Span::default();
        let (mut trace, mut span, mut parent) = (None, None, None);
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            match f {
                1 => trace = Some(want_len(at, "trace_id", w)?),
                2 => span = Some(want_len(at, "span_id", w)?),
                3 => {
                    s.trace_state = self.text(at, "trace_state", want_len(at, "trace_state", w)?)?
                }
                4 => parent = Some(want_len(at, "parent_span_id", w)?),
                5 => s.name = self.text(at, "the name", want_len(at, "name", w)?)?,
                6 => s.kind = want_varint(at, "kind", w)? as i32,
                7 => s.start_ns = want_fixed64(at, "start_time_unix_nano", w)?,
                8 => s.end_ns = want_fixed64(at, "end_time_unix_nano", w)?,
                9 => self.attrs_of(at, &mut s.attributes, w)?,
                11 => {
                    if s.events.len() >= self.limits.max_events {
                        return Err(bad(
                            at,
                            format!("more than {} events", self.limits.max_events),
                        ));
                    }
                    let at = format!("{at}.events[{}]", s.events.len());
                    s.events.push(self.event(&at, want_len(&at, "events", w)?)?);
                }
                13 => {
                    if s.links.len() >= self.limits.max_links {
                        return Err(bad(
                            at,
                            format!("more than {} links", self.limits.max_links),
                        ));
                    }
                    let at = format!("{at}.links[{}]", s.links.len());
                    s.links.push(self.link(&at, want_len(&at, "links", w)?)?);
                }
                15 => {
                    let body = want_len(at, "status", w)?;
                    let mut pb = Pb::new(body);
                    while let Some((f, w)) = pb.next(at)? {
                        match f {
                            2 => {
                                s.status.message = self.text(
                                    at,
                                    "the status message",
                                    want_len(at, "message", w)?,
                                )?;
                            }
                            3 => {
                                s.status.code =
                                    StatusCode::from_i32(want_varint(at, "code", w)? as i64)
                            }
                            _ => {}
                        }
                    }
                }
                16 => {
                    if let Wire::I32(v) = w {
                        s.flags = v;
                    }
                }
                _ => {}
            }
        }
        s.trace_id = id(at, "trace_id", trace)?;
        s.span_id = id(at, "span_id", span)?;
        s.parent_id = match parent {
            None | Some([]) => None,
            Some(p) => Some(id(at, "parent_span_id", Some(p))?),
        };
        Ok(s)
    }

    fn event(&self, at: &str, b: &[u8]) -> Result<Event, Error> {
        let mut e = Event::default();
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            match f {
                1 => e.time_ns = want_fixed64(at, "time_unix_nano", w)?,
                2 => e.name = self.text(at, "the event name", want_len(at, "name", w)?)?,
                3 => self.attrs_of(at, &mut e.attributes, w)?,
                _ => {}
            }
        }
        Ok(e)
    }

    fn link(&self, at: &str, b: &[u8]) -> Result<Link, Error> {
        let mut l = Link::default();
        let (mut trace, mut span) = (None, None);
        let mut pb = Pb::new(b);
        while let Some((f, w)) = pb.next(at)? {
            match f {
                1 => trace = Some(want_len(at, "trace_id", w)?),
                2 => span = Some(want_len(at, "span_id", w)?),
                3 => {
                    l.trace_state = self.text(at, "trace_state", want_len(at, "trace_state", w)?)?
                }
                4 => self.attrs_of(at, &mut l.attributes, w)?,
                _ => {}
            }
        }
        l.trace_id = id(at, "trace_id", trace)?;
        l.span_id = id(at, "span_id", span)?;
        Ok(l)
    }
}

/// An id field of exactly `N` bytes, not all zero (OpenTelemetry's invalid id).
fn id<const N: usize>(at: &str, field: &str, b: Option<&[u8]>) -> Result<[u8; N], Error> {
    let b = b.ok_or_else(|| bad(at, format!("{field} is missing")))?;
    let a: [u8; N] = b
        .try_into()
        .map_err(|_| bad(at, format!("{field} has {} bytes, not {N}", b.len())))?;
    if a.iter().all(|&x| x == 0) {
        return Err(bad(at, format!("{field} is all zeros (an invalid id)")));
    }
    Ok(a)
}

/// Decodes a binary protobuf `ExportTraceServiceRequest`.
pub fn decode_protobuf(body: &[u8], limits: &Limits) -> Result<Vec<ResourceSpans>, Error> {
    Decoder { limits, spans: 0 }.request(body)
}

// ---- JSON ---------------------------------------------------------------------------------

type Json = serde_json::Value;

/// A field by its OTLP/JSON (lowerCamelCase) or protobuf (snake_case) name.
fn field<'a>(o: &'a serde_json::Map<String, Json>, camel: &str, snake: &str) -> Option<&'a Json> {
    o.get(camel)
        .or_else(|| o.get(snake))
        .filter(|v| !v.is_null())
}

fn obj<'a>(at: &str, v: &'a Json) -> Result<&'a serde_json::Map<String, Json>, Error> {
    v.as_object()
        .ok_or_else(|| bad(at, format!("expected an object, found {}", kind(v))))
}

fn arr<'a>(at: &str, v: Option<&'a Json>) -> Result<&'a [Json], Error> {
    match v {
        None => Ok(&[]),
        Some(Json::Array(a)) => Ok(a),
        Some(other) => Err(bad(at, format!("expected a list, found {}", kind(other)))),
    }
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "a list",
        Json::Object(_) => "an object",
    }
}

/// An int64/uint64 as OTLP/JSON writes it: a decimal string or a number.
fn int(at: &str, what: &str, v: Option<&Json>) -> Result<Option<i128>, Error> {
    match v {
        None => Ok(None),
        Some(Json::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .map(Some)
            .ok_or_else(|| bad(at, format!("{what} is not an integer: {n}"))),
        Some(Json::String(s)) => s
            .trim()
            .parse::<i128>()
            .map(Some)
            .map_err(|_| bad(at, format!("{what} is not an integer: '{s}'"))),
        Some(other) => Err(bad(
            at,
            format!("{what} is {}, not an integer", kind(other)),
        )),
    }
}

fn time(at: &str, what: &str, v: Option<&Json>) -> Result<u64, Error> {
    match int(at, what, v)? {
        None => Ok(0),
        Some(n) => u64::try_from(n).map_err(|_| bad(at, format!("{what} {n} is out of range"))),
    }
}

fn json_id<const N: usize>(at: &str, field_name: &str, v: Option<&Json>) -> Result<[u8; N], Error> {
    let s = match v {
        Some(Json::String(s)) => s,
        Some(other) => {
            return Err(bad(
                at,
                format!("{field_name} is {}, not a string", kind(other)),
            ));
        }
        None => return Err(bad(at, format!("{field_name} is missing"))),
    };
    // OTLP/JSON writes ids in hex; protobuf's own JSON mapping in base64.
    let bytes = if s.len() == 2 * N {
        crate::encoding::unhex(s)
    } else {
        None
    }
    .or_else(|| crate::encoding::unbase64(s).filter(|b| b.len() == N))
    .ok_or_else(|| {
        bad(
            at,
            format!("{field_name} '{s}' is not {N} bytes in hex or base64"),
        )
    })?;
    id(at, field_name, Some(&bytes))
}

struct JsonDecoder<'l> {
    limits: &'l Limits,
    spans: usize,
}

impl JsonDecoder<'_> {
    fn text(&self, at: &str, what: &str, v: Option<&Json>) -> Result<String, Error> {
        match v {
            None => Ok(String::new()),
            Some(Json::String(s)) => {
                if s.len() > self.limits.max_value_bytes {
                    return Err(bad(
                        at,
                        format!(
                            "{what} has {} bytes (at most {})",
                            s.len(),
                            self.limits.max_value_bytes
                        ),
                    ));
                }
                Ok(s.clone())
            }
            Some(other) => Err(bad(at, format!("{what} is {}, not a string", kind(other)))),
        }
    }

    fn attrs(&self, at: &str, v: Option<&Json>) -> Result<Vec<(String, Value)>, Error> {
        let list = arr(at, v)?;
        if list.len() > self.limits.max_attributes {
            return Err(bad(
                at,
                format!("more than {} attributes", self.limits.max_attributes),
            ));
        }
        list.iter().map(|kv| self.key_value(at, kv, 0)).collect()
    }

    fn key_value(&self, at: &str, kv: &Json, depth: usize) -> Result<(String, Value), Error> {
        let o = obj(at, kv)?;
        let key = self.text(at, "an attribute key", o.get("key"))?;
        let value = match o.get("value") {
            None | Some(Json::Null) => Value::Empty,
            Some(v) => self.any_value(&format!("{at}: attribute '{key}'"), v, depth)?,
        };
        Ok((key, value))
    }

    fn any_value(&self, at: &str, v: &Json, depth: usize) -> Result<Value, Error> {
        if depth > self.limits.max_depth {
            return Err(bad(
                at,
                format!(
                    "the value nests deeper than {} levels",
                    self.limits.max_depth
                ),
            ));
        }
        let o = obj(at, v)?;
        if let Some(s) = field(o, "stringValue", "string_value") {
            return Ok(Value::Str(self.text(at, "a string value", Some(s))?));
        }
        if let Some(b) = field(o, "boolValue", "bool_value") {
            return b
                .as_bool()
                .map(Value::Bool)
                .ok_or_else(|| bad(at, format!("boolValue is {}", kind(b))));
        }
        if let Some(i) = field(o, "intValue", "int_value") {
            let n = int(at, "intValue", Some(i))?.unwrap_or(0);
            return i64::try_from(n)
                .map(Value::Int)
                .map_err(|_| bad(at, format!("intValue {n} is out of range")));
        }
        if let Some(d) = field(o, "doubleValue", "double_value") {
            return match d {
                Json::Number(n) => n
                    .as_f64()
                    .map(Value::Double)
                    .ok_or_else(|| bad(at, "doubleValue is not a number")),
                Json::String(s) => match s.as_str() {
                    "NaN" => Ok(Value::Double(f64::NAN)),
                    "Infinity" => Ok(Value::Double(f64::INFINITY)),
                    "-Infinity" => Ok(Value::Double(f64::NEG_INFINITY)),
                    other => other
                        .parse()
                        .map(Value::Double)
                        .map_err(|_| bad(at, format!("doubleValue '{other}' is not a number"))),
                },
                other => Err(bad(at, format!("doubleValue is {}", kind(other)))),
            };
        }
        if let Some(a) = field(o, "arrayValue", "array_value") {
            let values = arr(at, obj(at, a)?.get("values"))?;
            if values.len() > self.limits.max_attributes {
                return Err(bad(
                    at,
                    format!(
                        "an array holds more than {} values",
                        self.limits.max_attributes
                    ),
                ));
            }
            return values
                .iter()
                .map(|x| self.any_value(at, x, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::Array);
        }
        if let Some(kv) = field(o, "kvlistValue", "kvlist_value") {
            let values = arr(at, obj(at, kv)?.get("values"))?;
            if values.len() > self.limits.max_attributes {
                return Err(bad(
                    at,
                    format!(
                        "a map holds more than {} entries",
                        self.limits.max_attributes
                    ),
                ));
            }
            return values
                .iter()
                .map(|x| self.key_value(at, x, depth + 1))
                .collect::<Result<_, _>>()
                .map(Value::KvList);
        }
        if let Some(b) = field(o, "bytesValue", "bytes_value") {
            let s = self.text(at, "bytesValue", Some(b))?;
            return crate::encoding::unbase64(&s)
                .map(Value::Bytes)
                .ok_or_else(|| bad(at, "bytesValue is not base64"));
        }
        Ok(Value::Empty)
    }

    fn span(&self, at: &str, v: &Json) -> Result<Span, Error> {
        let o = obj(at, v)?;
        let mut s = Span {
            trace_id: json_id(at, "traceId", field(o, "traceId", "trace_id"))?,
            span_id: json_id(at, "spanId", field(o, "spanId", "span_id"))?,
            ..Span::default()
        };
        s.parent_id = match field(o, "parentSpanId", "parent_span_id") {
            Some(Json::String(p)) if p.is_empty() => None,
            None => None,
            p => Some(json_id(at, "parentSpanId", p)?),
        };
        s.trace_state = self.text(at, "traceState", field(o, "traceState", "trace_state"))?;
        s.name = self.text(at, "name", o.get("name"))?;
        s.kind = match o.get("kind") {
            Some(Json::String(k)) => match k.as_str() {
                "SPAN_KIND_UNSPECIFIED" => 0,
                "SPAN_KIND_INTERNAL" => 1,
                "SPAN_KIND_SERVER" => 2,
                "SPAN_KIND_CLIENT" => 3,
                "SPAN_KIND_PRODUCER" => 4,
                "SPAN_KIND_CONSUMER" => 5,
                other => return Err(bad(at, format!("kind '{other}' is not a SpanKind"))),
            },
            other => i32::try_from(int(at, "kind", other)?.unwrap_or(0))
                .map_err(|_| bad(at, "kind is out of range"))?,
        };
        s.flags = u32::try_from(int(at, "flags", o.get("flags"))?.unwrap_or(0))
            .map_err(|_| bad(at, "flags are out of range"))?;
        s.start_ns = time(
            at,
            "startTimeUnixNano",
            field(o, "startTimeUnixNano", "start_time_unix_nano"),
        )?;
        s.end_ns = time(
            at,
            "endTimeUnixNano",
            field(o, "endTimeUnixNano", "end_time_unix_nano"),
        )?;
        s.attributes = self.attrs(at, o.get("attributes"))?;
        let events = arr(at, o.get("events"))?;
        if events.len() > self.limits.max_events {
            return Err(bad(
                at,
                format!("more than {} events", self.limits.max_events),
            ));
        }
        for (i, e) in events.iter().enumerate() {
            let at = format!("{at}.events[{i}]");
            let eo = obj(&at, e)?;
            s.events.push(Event {
                time_ns: time(
                    &at,
                    "timeUnixNano",
                    field(eo, "timeUnixNano", "time_unix_nano"),
                )?,
                name: self.text(&at, "name", eo.get("name"))?,
                attributes: self.attrs(&at, eo.get("attributes"))?,
            });
        }
        let links = arr(at, o.get("links"))?;
        if links.len() > self.limits.max_links {
            return Err(bad(
                at,
                format!("more than {} links", self.limits.max_links),
            ));
        }
        for (i, l) in links.iter().enumerate() {
            let at = format!("{at}.links[{i}]");
            let lo = obj(&at, l)?;
            s.links.push(Link {
                trace_id: json_id(&at, "traceId", field(lo, "traceId", "trace_id"))?,
                span_id: json_id(&at, "spanId", field(lo, "spanId", "span_id"))?,
                trace_state: self.text(
                    &at,
                    "traceState",
                    field(lo, "traceState", "trace_state"),
                )?,
                attributes: self.attrs(&at, lo.get("attributes"))?,
            });
        }
        if let Some(st) = o.get("status").filter(|v| !v.is_null()) {
            let so = obj(at, st)?;
            let code = match so.get("code") {
                Some(Json::String(c)) => match c.as_str() {
                    "STATUS_CODE_UNSET" => StatusCode::Unset,
                    "STATUS_CODE_OK" => StatusCode::Ok,
                    "STATUS_CODE_ERROR" => StatusCode::Error,
                    other => {
                        return Err(bad(
                            at,
                            format!("status code '{other}' is not a StatusCode"),
                        ));
                    }
                },
                other => StatusCode::from_i32(
                    i64::try_from(int(at, "status code", other)?.unwrap_or(0)).unwrap_or(0),
                ),
            };
            s.status = SpanStatus {
                code,
                message: self.text(at, "the status message", so.get("message"))?,
            };
        }
        Ok(s)
    }
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
pub fn decode_json(body: &[u8], limits: &Limits) -> Result<Vec<ResourceSpans>, Error> {
    if body.len() > limits.max_bytes {
        return Err(bad(
            "",
            format!(
                "the request has {} bytes (at most {})",
                body.len(),
                limits.max_bytes
            ),
        ));
    }
    // serde_json refuses nesting past 128 levels by itself, so parsing cannot exhaust the stack.
    let doc: Json = serde_json::from_slice(body).map_err(|e| bad("", format!("not JSON: {e}")))?;
    let root = obj("request", &doc)?;
    let mut d = JsonDecoder { limits, spans: 0 };
    let mut out = Vec::new();
    for (i, rs) in arr("request", field(root, "resourceSpans", "resource_spans"))?
        .iter()
        .enumerate()
    {
        let at = format!("resource_spans[{i}]");
        let ro = obj(&at, rs)?;
        let mut r = ResourceSpans::default();
        if let Some(res) = ro.get("resource").filter(|v| !v.is_null()) {
            r.resource = d.attrs(&format!("{at}.resource"), obj(&at, res)?.get("attributes"))?;
        }
        for (j, ss) in arr(&at, field(ro, "scopeSpans", "scope_spans"))?
            .iter()
            .enumerate()
        {
            let at = format!("{at}.scope_spans[{j}]");
            let so = obj(&at, ss)?;
            for (k, sp) in arr(&at, so.get("spans"))?.iter().enumerate() {
                let at = format!("{at}.spans[{k}]");
                d.spans += 1;
                if d.spans > limits.max_spans {
                    return Err(bad(
                        &at,
                        format!("the request holds more than {} spans", limits.max_spans),
                    ));
                }
                r.spans.push(d.span(&at, sp)?);
            }
        }
        out.push(r);
    }
    Ok(out)
}

// ---- encoding (tests, corpora, benchmarks) -------------------------------------------------

struct Enc(Vec<u8>);

impl Enc {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire));
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn msg(&mut self, field: u32, f: impl FnOnce(&mut Enc)) {
        let mut inner = Enc(Vec::new());
        f(&mut inner);
        self.bytes(field, &inner.0);
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.key(field, 1);
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn kv(&mut self, field: u32, k: &str, v: &Value) {
        self.msg(field, |e| {
            e.bytes(1, k.as_bytes());
            e.msg(2, |e| e.value(v));
        });
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Empty => {}
            Value::Str(s) => self.bytes(1, s.as_bytes()),
            Value::Bool(b) => {
                self.key(2, 0);
                self.varint(u64::from(*b));
            }
            Value::Int(i) => {
                self.key(3, 0);
                self.varint(*i as u64);
            }
            Value::Double(d) => self.fixed64(4, d.to_bits()),
            Value::Array(a) => self.msg(5, |e| {
                for x in a {
                    e.msg(1, |e| e.value(x));
                }
            }),
            Value::KvList(kv) => self.msg(6, |e| {
                for (k, x) in kv {
                    e.kv(1, k, x);
                }
            }),
            Value::Bytes(b) => self.bytes(7, b),
        }
    }
}

/// Encodes an `ExportTraceServiceRequest` as binary protobuf.
pub fn encode(request: &[ResourceSpans]) -> Vec<u8> {
    let mut e = Enc(Vec::new());
    for rs in request {
        e.msg(1, |e| {
            e.msg(1, |e| {
                for (k, v) in &rs.resource {
                    e.kv(1, k, v);
                }
            });
            e.msg(2, |e| {
                e.msg(1, |e| e.bytes(1, b"cairn"));
                for s in &rs.spans {
                    e.msg(2, |e| {
                        e.bytes(1, &s.trace_id);
                        e.bytes(2, &s.span_id);
                        if !s.trace_state.is_empty() {
                            e.bytes(3, s.trace_state.as_bytes());
                        }
                        if let Some(p) = &s.parent_id {
                            e.bytes(4, p);
                        }
                        e.bytes(5, s.name.as_bytes());
                        e.key(6, 0);
                        e.varint(s.kind as u64);
                        e.fixed64(7, s.start_ns);
                        e.fixed64(8, s.end_ns);
                        for (k, v) in &s.attributes {
                            e.kv(9, k, v);
                        }
                        for ev in &s.events {
                            e.msg(11, |e| {
                                e.fixed64(1, ev.time_ns);
                                e.bytes(2, ev.name.as_bytes());
                                for (k, v) in &ev.attributes {
                                    e.kv(3, k, v);
                                }
                            });
                        }
                        for l in &s.links {
                            e.msg(13, |e| {
                                e.bytes(1, &l.trace_id);
                                e.bytes(2, &l.span_id);
                                for (k, v) in &l.attributes {
                                    e.kv(4, k, v);
                                }
                            });
                        }
                        e.msg(15, |e| {
                            if !s.status.message.is_empty() {
                                e.bytes(2, s.status.message.as_bytes());
                            }
                            e.key(3, 0);
                            e.varint(s.status.code.as_i32() as u64);
                        });
                        if s.flags != 0 {
                            e.key(16, 5);
                            e.0.extend_from_slice(&s.flags.to_le_bytes());
                        }
                    });
                }
            });
        });
    }
    e.0
}
