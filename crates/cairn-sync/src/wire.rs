//! The wire format: length-prefixed frames (a 4-byte big-endian length, then the payload) of
//! compact binary messages. A frame longer than [`MAX_FRAME`] is refused before it is read, and
//! every read of a field checks the bytes left, so hostile input is an error, never a panic.

use cairn_audit::Event;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// Protocol version carried in `Hello`; a peer speaking another one is refused. Version 3 added
/// audit chains (an audit digest in `Hello`, the `AuditMarks` and `AuditEvents` phase).
pub const VERSION: u16 = 3;

/// The largest frame either side accepts (and sends): 16 MiB. Blobs above the eager limit are
/// never put in one frame.
pub const MAX_FRAME: usize = 16 << 20;

/// Points per `Points` frame (24 bytes each on the wire).
pub const POINTS_PER_FRAME: usize = 65_536;

/// Encoded bytes of trace log entries per `TraceEntries` frame (at least one entry a frame).
pub const TRACE_BYTES_PER_FRAME: usize = 4 << 20;

/// Audit events per `AuditEvents` frame, at most.
pub const AUDIT_EVENTS_PER_FRAME: usize = 4096;

/// Encoded bytes of audit events per `AuditEvents` frame (at least one event a frame).
pub const AUDIT_BYTES_PER_FRAME: usize = 4 << 20;

/// One metric point as it travels: the value as its bit pattern.
pub type WirePoint = (i64, i64, u64);

/// Every message of the sync and join protocols.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// First message of a sync session: version and one digest per part.
    Hello {
        version: u16,
        catalog: [u8; 32],
        metrics: [u8; 32],
        traces: [u8; 32],
        audit: [u8; 32],
        blobs: [u8; 32],
    },
    /// Each doc and a short digest of its heads.
    Heads(Vec<(String, [u8; 8])>),
    /// One automerge sync message for a doc, or none (nothing to say this round).
    Doc { name: String, msg: Option<Vec<u8>> },
    /// The end of this side's part of a round or phase.
    RoundEnd,
    /// Every series and its point count.
    Marks(Vec<(String, String, u64)>),
    /// Points of a series, continuing at index `from`.
    Points {
        run: String,
        key: String,
        from: u64,
        points: Vec<WirePoint>,
    },
    /// A sealed chunk of a series as stored (compressed, with its BLAKE3), continuing at `from`.
    Chunk {
        run: String,
        key: String,
        from: u64,
        count: u64,
        hash: [u8; 32],
        data: Vec<u8>,
    },
    /// Every trace log (its source name) and how many entries it holds.
    TraceMarks(Vec<(String, u64)>),
    /// A sealed chunk of a trace log as stored (compressed, with its BLAKE3), at entry `from`.
    TraceChunk {
        source: String,
        from: u64,
        count: u64,
        hash: [u8; 32],
        data: Vec<u8>,
    },
    /// Encoded entries of a trace log, continuing at entry `from`.
    TraceEntries {
        source: String,
        from: u64,
        entries: Vec<Vec<u8>>,
    },
    /// Every audit chain this side holds: its device's public key, its event count and the
    /// BLAKE3 of its last event.
    AuditMarks(Vec<([u8; 32], u64, [u8; 32])>),
    /// Signed audit events, in chain order (each chain's events ascending).
    AuditEvents(Vec<Event>),
    /// Every blob this side holds, with its size.
    BlobList(Vec<([u8; 32], u64)>),
    /// Blobs this side asks for.
    BlobWant(Vec<[u8; 32]>),
    /// One blob's bytes.
    Blob { hash: [u8; 32], bytes: Vec<u8> },
    /// The session is over.
    Done,
    /// A join request: the invitation's secret and who the device belongs to.
    Join {
        secret: [u8; 32],
        name: String,
        email: String,
    },
    /// The join was accepted; a sync session follows on the same stream.
    Welcome { team: String },
    /// Refused, with why.
    Refused(String),
    /// A piece of a blob fetched on demand, at `offset`; `last` ends the blob.
    BlobPart {
        hash: [u8; 32],
        offset: u64,
        last: bool,
        bytes: Vec<u8>,
    },
    /// The peer does not hold this blob.
    BlobMissing([u8; 32]),
}

const HELLO: u8 = 1;
const HEADS: u8 = 2;
const DOC: u8 = 3;
const ROUND_END: u8 = 4;
const MARKS: u8 = 5;
const POINTS: u8 = 6;
const BLOB_LIST: u8 = 7;
const BLOB_WANT: u8 = 8;
const BLOB: u8 = 9;
const DONE: u8 = 10;
const JOIN: u8 = 11;
const WELCOME: u8 = 12;
const REFUSED: u8 = 13;
const BLOB_PART: u8 = 14;
const BLOB_MISSING: u8 = 15;
const CHUNK: u8 = 16;
const TRACE_MARKS: u8 = 17;
const TRACE_CHUNK: u8 = 18;
const TRACE_ENTRIES: u8 = 19;
const AUDIT_MARKS: u8 = 20;
const AUDIT_EVENTS: u8 = 21;

impl Msg {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::new());
        match self {
            Msg::Hello {
                version,
                catalog,
                metrics,
                traces,
                audit,
                blobs,
            } => {
                w.u8(HELLO);
                w.0.extend_from_slice(&version.to_be_bytes());
                w.0.extend_from_slice(catalog);
                w.0.extend_from_slice(metrics);
                w.0.extend_from_slice(traces);
                w.0.extend_from_slice(audit);
                w.0.extend_from_slice(blobs);
            }
            Msg::Heads(docs) => {
                w.u8(HEADS);
                w.uvar(docs.len() as u64);
                for (name, digest) in docs {
                    w.str(name);
                    w.0.extend_from_slice(digest);
                }
            }
            Msg::Doc { name, msg } => {
                w.u8(DOC);
                w.str(name);
                match msg {
                    Some(m) => {
                        w.u8(1);
                        w.bytes(m);
                    }
                    None => w.u8(0),
                }
            }
            Msg::RoundEnd => w.u8(ROUND_END),
            Msg::Marks(marks) => {
                w.u8(MARKS);
                w.uvar(marks.len() as u64);
                for (run, key, count) in marks {
                    w.str(run);
                    w.str(key);
                    w.uvar(*count);
                }
            }
            Msg::Points {
                run,
                key,
                from,
                points,
            } => {
                w.u8(POINTS);
                w.str(run);
                w.str(key);
                w.uvar(*from);
                w.uvar(points.len() as u64);
                for (step, ts, bits) in points {
                    w.0.extend_from_slice(&step.to_be_bytes());
                    w.0.extend_from_slice(&ts.to_be_bytes());
                    w.0.extend_from_slice(&bits.to_be_bytes());
                }
            }
            Msg::Chunk {
                run,
                key,
                from,
                count,
                hash,
                data,
            } => {
                w.u8(CHUNK);
                w.str(run);
                w.str(key);
                w.uvar(*from);
                w.uvar(*count);
                w.0.extend_from_slice(hash);
                w.bytes(data);
            }
            Msg::TraceMarks(marks) => {
                w.u8(TRACE_MARKS);
                w.uvar(marks.len() as u64);
                for (source, count) in marks {
                    w.str(source);
                    w.uvar(*count);
                }
            }
            Msg::TraceChunk {
                source,
                from,
                count,
                hash,
                data,
            } => {
                w.u8(TRACE_CHUNK);
                w.str(source);
                w.uvar(*from);
                w.uvar(*count);
                w.0.extend_from_slice(hash);
                w.bytes(data);
            }
            Msg::TraceEntries {
                source,
                from,
                entries,
            } => {
                w.u8(TRACE_ENTRIES);
                w.str(source);
                w.uvar(*from);
                w.uvar(entries.len() as u64);
                for e in entries {
                    w.bytes(e);
                }
            }
            Msg::AuditMarks(marks) => {
                w.u8(AUDIT_MARKS);
                w.uvar(marks.len() as u64);
                for (device, count, head) in marks {
                    w.0.extend_from_slice(device);
                    w.uvar(*count);
                    w.0.extend_from_slice(head);
                }
            }
            Msg::AuditEvents(events) => {
                w.u8(AUDIT_EVENTS);
                w.uvar(events.len() as u64);
                for e in events {
                    w.event(e);
                }
            }
            Msg::BlobList(blobs) => {
                w.u8(BLOB_LIST);
                w.uvar(blobs.len() as u64);
                for (hash, size) in blobs {
                    w.0.extend_from_slice(hash);
                    w.uvar(*size);
                }
            }
            Msg::BlobWant(hashes) => {
                w.u8(BLOB_WANT);
                w.uvar(hashes.len() as u64);
                for hash in hashes {
                    w.0.extend_from_slice(hash);
                }
            }
            Msg::Blob { hash, bytes } => {
                w.u8(BLOB);
                w.0.extend_from_slice(hash);
                w.bytes(bytes);
            }
            Msg::Done => w.u8(DONE),
            Msg::Join {
                secret,
                name,
                email,
            } => {
                w.u8(JOIN);
                w.0.extend_from_slice(secret);
                w.str(name);
                w.str(email);
            }
            Msg::Welcome { team } => {
                w.u8(WELCOME);
                w.str(team);
            }
            Msg::Refused(why) => {
                w.u8(REFUSED);
                w.str(why);
            }
            Msg::BlobPart {
                hash,
                offset,
                last,
                bytes,
            } => {
                w.u8(BLOB_PART);
                w.0.extend_from_slice(hash);
                w.uvar(*offset);
                w.u8(u8::from(*last));
                w.bytes(bytes);
            }
            Msg::BlobMissing(hash) => {
                w.u8(BLOB_MISSING);
                w.0.extend_from_slice(hash);
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Msg, Error> {
        let mut r = Reader { buf: bytes };
        let msg = match r.u8()? {
            HELLO => Msg::Hello {
                // Another version's Hello has another layout: its version is all it can say.
                version: match u16::from_be_bytes(r.array()?) {
                    VERSION => VERSION,
                    other => return Err(version_mismatch(other)),
                },
                catalog: r.array()?,
                metrics: r.array()?,
                traces: r.array()?,
                audit: r.array()?,
                blobs: r.array()?,
            },
            HEADS => {
                let n = r.len(9)?;
                let mut docs = Vec::with_capacity(n);
                for _ in 0..n {
                    docs.push((r.str()?, r.array()?));
                }
                Msg::Heads(docs)
            }
            DOC => Msg::Doc {
                name: r.str()?,
                msg: match r.u8()? {
                    0 => None,
                    1 => Some(r.bytes()?),
                    other => return Err(Error::Protocol(format!("bad option tag {other}"))),
                },
            },
            ROUND_END => Msg::RoundEnd,
            MARKS => {
                let n = r.len(3)?;
                let mut marks = Vec::with_capacity(n);
                for _ in 0..n {
                    marks.push((r.str()?, r.str()?, r.uvar()?));
                }
                Msg::Marks(marks)
            }
            POINTS => {
                let run = r.str()?;
                let key = r.str()?;
                let from = r.uvar()?;
                let n = r.len(24)?;
                let mut points = Vec::with_capacity(n);
                for _ in 0..n {
                    points.push((
                        i64::from_be_bytes(r.array()?),
                        i64::from_be_bytes(r.array()?),
                        u64::from_be_bytes(r.array()?),
                    ));
                }
                Msg::Points {
                    run,
                    key,
                    from,
                    points,
                }
            }
            CHUNK => Msg::Chunk {
                run: r.str()?,
                key: r.str()?,
                from: r.uvar()?,
                count: r.uvar()?,
                hash: r.array()?,
                data: r.bytes()?,
            },
            TRACE_MARKS => {
                let n = r.len(2)?;
                let mut marks = Vec::with_capacity(n);
                for _ in 0..n {
                    marks.push((r.str()?, r.uvar()?));
                }
                Msg::TraceMarks(marks)
            }
            TRACE_CHUNK => Msg::TraceChunk {
                source: r.str()?,
                from: r.uvar()?,
                count: r.uvar()?,
                hash: r.array()?,
                data: r.bytes()?,
            },
            TRACE_ENTRIES => {
                let source = r.str()?;
                let from = r.uvar()?;
                let n = r.len(1)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(r.bytes()?);
                }
                Msg::TraceEntries {
                    source,
                    from,
                    entries,
                }
            }
            AUDIT_MARKS => {
                let n = r.len(65)?;
                let mut marks = Vec::with_capacity(n);
                for _ in 0..n {
                    marks.push((r.array()?, r.uvar()?, r.array()?));
                }
                Msg::AuditMarks(marks)
            }
            AUDIT_EVENTS => {
                let n = r.len(MIN_EVENT_BYTES)?;
                let mut events = Vec::with_capacity(n);
                for _ in 0..n {
                    events.push(r.event()?);
                }
                Msg::AuditEvents(events)
            }
            BLOB_LIST => {
                let n = r.len(33)?;
                let mut blobs = Vec::with_capacity(n);
                for _ in 0..n {
                    blobs.push((r.array()?, r.uvar()?));
                }
                Msg::BlobList(blobs)
            }
            BLOB_WANT => {
                let n = r.len(32)?;
                let mut hashes = Vec::with_capacity(n);
                for _ in 0..n {
                    hashes.push(r.array()?);
                }
                Msg::BlobWant(hashes)
            }
            BLOB => Msg::Blob {
                hash: r.array()?,
                bytes: r.bytes()?,
            },
            DONE => Msg::Done,
            JOIN => Msg::Join {
                secret: r.array()?,
                name: r.str()?,
                email: r.str()?,
            },
            WELCOME => Msg::Welcome { team: r.str()? },
            REFUSED => Msg::Refused(r.str()?),
            BLOB_PART => Msg::BlobPart {
                hash: r.array()?,
                offset: r.uvar()?,
                last: match r.u8()? {
                    0 => false,
                    1 => true,
                    other => return Err(Error::Protocol(format!("bad flag {other}"))),
                },
                bytes: r.bytes()?,
            },
            BLOB_MISSING => Msg::BlobMissing(r.array()?),
            other => return Err(Error::Protocol(format!("unknown message type {other}"))),
        };
        if !r.buf.is_empty() {
            return Err(Error::Protocol(format!(
                "{} stray bytes after a message",
                r.buf.len()
            )));
        }
        Ok(msg)
    }

    /// A short name for logs and errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Msg::Hello { .. } => "Hello",
            Msg::Heads(_) => "Heads",
            Msg::Doc { .. } => "Doc",
            Msg::RoundEnd => "RoundEnd",
            Msg::Marks(_) => "Marks",
            Msg::Points { .. } => "Points",
            Msg::Chunk { .. } => "Chunk",
            Msg::TraceMarks(_) => "TraceMarks",
            Msg::TraceChunk { .. } => "TraceChunk",
            Msg::TraceEntries { .. } => "TraceEntries",
            Msg::AuditMarks(_) => "AuditMarks",
            Msg::AuditEvents(_) => "AuditEvents",
            Msg::BlobList(_) => "BlobList",
            Msg::BlobWant(_) => "BlobWant",
            Msg::Blob { .. } => "Blob",
            Msg::Done => "Done",
            Msg::Join { .. } => "Join",
            Msg::Welcome { .. } => "Welcome",
            Msg::Refused(_) => "Refused",
            Msg::BlobPart { .. } => "BlobPart",
            Msg::BlobMissing(_) => "BlobMissing",
        }
    }
}

/// The error for a peer speaking another protocol version, naming both.
pub fn version_mismatch(theirs: u16) -> Error {
    Error::Protocol(format!(
        "the peer speaks sync version {theirs}, this build {VERSION}: both devices need the \
         same Cairn release"
    ))
}

/// The fewest bytes an encoded audit event takes (every text empty, no subjects, no fields).
const MIN_EVENT_BYTES: usize = 16;

/// The bytes `event` takes in an `AuditEvents` frame.
pub fn audit_event_len(event: &Event) -> usize {
    let mut w = Writer(Vec::new());
    w.event(event);
    w.0.len()
}

/// Writes one frame; returns the bytes written.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> Result<u64, Error> {
    if payload.len() > MAX_FRAME {
        return Err(Error::Protocol(format!(
            "refusing to send a {}-byte frame (the limit is {MAX_FRAME})",
            payload.len()
        )));
    }
    w.write_all(&(payload.len() as u32).to_be_bytes()).await?;
    w.write_all(payload).await?;
    Ok(4 + payload.len() as u64)
}

/// Reads one frame (its length checked before its bytes are read); `None` at a clean end of
/// stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, Error> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(Error::Protocol(format!(
            "peer announced a {len}-byte frame (the limit is {MAX_FRAME})"
        )));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    Ok(Some(buf))
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    /// LEB128.
    fn uvar(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    fn bytes(&mut self, b: &[u8]) {
        self.uvar(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    /// An audit event, its texts as they are (the signature covers them as texts).
    fn event(&mut self, e: &Event) {
        self.str(&e.device);
        self.uvar(e.seq);
        self.str(&e.prev);
        self.0.extend_from_slice(&e.at_ms.to_be_bytes());
        self.str(&e.member);
        self.str(&e.kind);
        self.uvar(e.subjects.len() as u64);
        for s in &e.subjects {
            self.str(s);
        }
        self.uvar(e.fields.len() as u64);
        for (k, v) in &e.fields {
            self.str(k);
            self.str(v);
        }
        self.str(&e.signature);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Protocol(format!(
                "message truncated: wanted {n} more bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    fn uvar(&mut self) -> Result<u64, Error> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Error::Protocol("varint longer than 64 bits".into()))
    }
    /// A count of items, each at least `min_size` bytes: never more than the bytes left allow,
    /// so a hostile count cannot make us allocate.
    fn len(&mut self, min_size: usize) -> Result<usize, Error> {
        let n = self.uvar()?;
        if n > (self.buf.len() / min_size.max(1)) as u64 {
            return Err(Error::Protocol(format!(
                "count {n} exceeds what the {} bytes left can hold",
                self.buf.len()
            )));
        }
        Ok(n as usize)
    }
    fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let n = self.uvar()?;
        let n = usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.buf.len())
            .ok_or_else(|| Error::Protocol(format!("length {n} exceeds the message")))?;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> Result<String, Error> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| Error::Protocol("a string is not UTF-8".into()))
    }
    fn event(&mut self) -> Result<Event, Error> {
        let device = self.str()?;
        let seq = self.uvar()?;
        let prev = self.str()?;
        let at_ms = i64::from_be_bytes(self.array()?);
        let member = self.str()?;
        let kind = self.str()?;
        let n = self.len(1)?;
        let mut subjects = Vec::with_capacity(n);
        for _ in 0..n {
            subjects.push(self.str()?);
        }
        let n = self.len(2)?;
        let mut fields = std::collections::BTreeMap::new();
        for _ in 0..n {
            let key = self.str()?;
            if fields.insert(key, self.str()?).is_some() {
                return Err(Error::Protocol(format!(
                    "audit event {seq} names a field twice"
                )));
            }
        }
        Ok(Event {
            device,
            seq,
            prev,
            at_ms,
            member,
            kind,
            subjects,
            fields,
            signature: self.str()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_round_trips() {
        let msgs = vec![
            Msg::Hello {
                version: VERSION,
                catalog: [1; 32],
                metrics: [2; 32],
                traces: [4; 32],
                audit: [5; 32],
                blobs: [3; 32],
            },
            Msg::Heads(vec![("team".into(), [9; 8]), ("x".into(), [0; 8])]),
            Msg::Doc {
                name: "team".into(),
                msg: Some(vec![1, 2, 3]),
            },
            Msg::Doc {
                name: "team".into(),
                msg: None,
            },
            Msg::RoundEnd,
            Msg::Marks(vec![("r".into(), "loss".into(), 300)]),
            Msg::Points {
                run: "r".into(),
                key: "k".into(),
                from: 7,
                points: vec![(1, -2, f64::NAN.to_bits())],
            },
            Msg::Chunk {
                run: "r".into(),
                key: "k".into(),
                from: 8192,
                count: 8192,
                hash: [1; 32],
                data: vec![5; 40],
            },
            Msg::TraceMarks(vec![("0123456789abcdef0123456789abcdef".into(), 1 << 20)]),
            Msg::TraceChunk {
                source: "s".into(),
                from: 1024,
                count: 1024,
                hash: [2; 32],
                data: vec![7; 30],
            },
            Msg::TraceEntries {
                source: "s".into(),
                from: 3,
                entries: vec![vec![1, 2], vec![], vec![3; 300]],
            },
            Msg::AuditMarks(vec![([1; 32], 3, [2; 32]), ([3; 32], 0, [0; 32])]),
            Msg::AuditEvents(vec![
                Event {
                    device: "ab".repeat(32),
                    seq: 1 << 40,
                    prev: cairn_audit::event::GENESIS.into(),
                    at_ms: -5,
                    member: "Ada".into(),
                    kind: "alias.moved".into(),
                    subjects: vec!["model:churn".into(), String::new()],
                    fields: [("why".to_owned(), "ok \u{1f600}".to_owned())]
                        .into_iter()
                        .collect(),
                    signature: "cd".repeat(64),
                },
                Event {
                    device: String::new(),
                    seq: 0,
                    prev: String::new(),
                    at_ms: 0,
                    member: String::new(),
                    kind: String::new(),
                    subjects: vec![],
                    fields: Default::default(),
                    signature: String::new(),
                },
            ]),
            Msg::BlobList(vec![([4; 32], 1 << 40)]),
            Msg::BlobWant(vec![[5; 32]]),
            Msg::Blob {
                hash: [6; 32],
                bytes: b"abc".to_vec(),
            },
            Msg::Done,
            Msg::Join {
                secret: [7; 32],
                name: "Ada".into(),
                email: "ada@example.org".into(),
            },
            Msg::Welcome { team: "t".into() },
            Msg::Refused("no".into()),
            Msg::BlobPart {
                hash: [8; 32],
                offset: 1 << 33,
                last: true,
                bytes: vec![0; 10],
            },
            Msg::BlobMissing([3; 32]),
        ];
        for m in msgs {
            assert_eq!(Msg::decode(&m.encode()).unwrap(), m);
            if let Msg::AuditEvents(events) = &m {
                let sizes: usize = events.iter().map(audit_event_len).sum();
                assert_eq!(m.encode().len(), 2 + sizes, "the sizes paging counts");
            }
        }
    }

    #[test]
    fn truncated_and_hostile_input_is_an_error() {
        let full = Msg::Marks(vec![("run".into(), "key".into(), 5)]).encode();
        for cut in 0..full.len() {
            assert!(Msg::decode(&full[..cut]).is_err(), "cut at {cut}");
        }
        // A count of 2^60 items in a 12-byte message.
        let hostile = [MARKS, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10];
        assert!(Msg::decode(&hostile).is_err());
        assert!(Msg::decode(&[200]).is_err());
        let mut extra = Msg::Done.encode();
        extra.push(0);
        assert!(Msg::decode(&extra).is_err());
        // A Hello of version 2 (four digests, no audit digest) names both versions.
        let mut old = vec![HELLO, 0, 2];
        old.extend_from_slice(&[0; 4 * 32]);
        let err = Msg::decode(&old).unwrap_err().to_string();
        assert!(
            err.contains("sync version 2, this build 3"),
            "an older peer is named: {err}"
        );
        // An audit event cut anywhere, and one that names a field twice.
        let e = Msg::AuditEvents(vec![Event {
            device: "ab".repeat(32),
            seq: 3,
            prev: "00".repeat(32),
            at_ms: 1,
            member: "m".into(),
            kind: "k".into(),
            subjects: vec!["s".into()],
            fields: [("a".to_owned(), "1".to_owned())].into_iter().collect(),
            signature: "cd".repeat(64),
        }])
        .encode();
        for cut in 0..e.len() {
            assert!(Msg::decode(&e[..cut]).is_err(), "cut at {cut}");
        }
        // One event: empty device, seq 0, empty prev, at_ms 0, empty member and kind, no
        // subjects, two fields both named "a", an empty signature.
        let mut twice = vec![AUDIT_EVENTS, 1, 0, 0, 0];
        twice.extend_from_slice(&[0; 8]);
        twice.extend_from_slice(&[0, 0, 0, 2, 1, b'a', 0, 1, b'a', 0, 0]);
        let err = Msg::decode(&twice).unwrap_err().to_string();
        assert!(err.contains("names a field twice"), "{err}");
    }
}
