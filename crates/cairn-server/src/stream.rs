//! Bodies that are never whole in memory: replies produced piece by piece (a metric history, a
//! file), and uploads handed to a blocking reader as they arrive.
//!
//! A reply that fails after its head was sent cannot change its status: the stream ends with an
//! error, hyper drops the connection, and the client sees a cut transfer (a short
//! `Content-Length` body or an unterminated chunked one), never a complete wrong answer.

use std::future::Future;
use std::io::{self, Read};
use std::time::Duration;

use axum::body::{Body, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::{AppState, CallError};

/// The error a streamed reply ends with.
pub(crate) type StreamError = Box<dyn std::error::Error + Send + Sync>;

/// A body whose pieces `next` produces one at a time, each only when the connection wants more
/// (so a slow client holds one piece, not the whole reply). `next` returns the piece and the
/// state for the next call, or `None` at the end; an `Err` piece aborts the reply.
pub(crate) fn pieces<S, F, Fut>(state: S, next: F) -> Body
where
    S: Send + 'static,
    F: FnMut(S) -> Fut + Send + 'static,
    Fut: Future<Output = Option<(Result<Bytes, StreamError>, S)>> + Send + 'static,
{
    Body::from_stream(futures_util::stream::unfold(state, next))
}

/// How much of a file one piece of a download holds.
const FILE_PIECE: usize = 256 * 1024;

/// Where a download is: the reader, and the piece read but not yet sent.
struct Download<R> {
    reader: R,
    held: Option<Bytes>,
}

/// A stored file as a download reply: its length up front, its bytes streamed (and verified)
/// as [`file`] reads them.
pub(crate) fn download(download: cairn_core::ArtifactDownload) -> axum::response::Response {
    use axum::response::IntoResponse;
    let len = download.len();
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/octet-stream".to_owned(),
            ),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
        ],
        file(download),
    )
        .into_response()
}

/// Streams `reader` (read on the blocking pool, one piece at a time) as a body. Each piece is
/// sent only once the read after it succeeded, so the last piece goes out only after the read
/// that reached the end: with a verifying reader (`ArtifactDownload`), a transfer of bytes that
/// do not match their hash never completes.
pub(crate) fn file<R: Read + Send + 'static>(reader: R) -> Body {
    let start = Download { reader, held: None };
    pieces(Some(start), |state| async move {
        let mut state = state?;
        loop {
            let Download { mut reader, held } = state;
            let read = AppState::off_loop(move || {
                let mut buf = vec![0u8; FILE_PIECE];
                let n = read_full(&mut reader, &mut buf)?;
                buf.truncate(n);
                Ok((reader, buf))
            })
            .await;
            match read {
                Ok((reader, buf)) if buf.is_empty() => {
                    // The end, verified: send what was held back, then stop.
                    let last = held?;
                    drop(reader);
                    return Some((Ok(last), None));
                }
                Ok((reader, buf)) => {
                    let next = Download {
                        reader,
                        held: Some(Bytes::from(buf)),
                    };
                    match held {
                        Some(piece) => return Some((Ok(piece), Some(next))),
                        None => state = next,
                    }
                }
                Err(e) => {
                    let e: StreamError = match e {
                        CallError::Core(e) => Box::new(e),
                        CallError::Aborted(m) => m.into(),
                    };
                    tracing::warn!(error = %e, "download cut off");
                    return Some((Err(e), None));
                }
            }
        }
    })
}

/// Reads until `buf` is full or the reader ends (a verifying reader reports a mismatch on the
/// read that reaches the end, which this makes sure happens before the piece is handed on).
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> Result<usize, CallError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(CallError::Aborted(e.to_string())),
        }
    }
    Ok(filled)
}

/// What the receiving side of an upload gets.
#[derive(Debug)]
pub(crate) enum Chunk {
    Data(Bytes),
    /// The body ended normally. Without it, a closed channel means the request was dropped.
    End,
    Fail(io::Error),
}

/// An upload body as a blocking [`Read`]: fed by [`feed`] on the async side, read on the
/// blocking pool. It ends cleanly only when the whole body arrived.
#[derive(Debug)]
pub(crate) struct UploadReader {
    rx: mpsc::Receiver<Chunk>,
    current: Bytes,
    done: bool,
}

impl Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Chunk::Data(b)) => self.current = b,
                Some(Chunk::End) => self.done = true,
                Some(Chunk::Fail(e)) => return Err(e),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the upload was abandoned before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// A channel from a request body to an [`UploadReader`]; a few frames in flight at most.
pub(crate) fn upload_channel() -> (mpsc::Sender<Chunk>, UploadReader) {
    let (tx, rx) = mpsc::channel(8);
    (
        tx,
        UploadReader {
            rx,
            current: Bytes::new(),
            done: false,
        },
    )
}

/// Sends `body` into `tx` frame by frame, giving up when no frame came for `idle`. Returns
/// when the body ended, failed, or the reader stopped reading (its own error says why).
pub(crate) async fn feed(body: Body, tx: mpsc::Sender<Chunk>, idle: Duration) {
    let mut frames = body.into_data_stream();
    loop {
        let chunk = match tokio::time::timeout(idle, frames.next()).await {
            Ok(Some(Ok(data))) => Chunk::Data(data),
            Ok(Some(Err(e))) => Chunk::Fail(io::Error::other(format!("the upload broke off: {e}"))),
            Ok(None) => Chunk::End,
            Err(_) => Chunk::Fail(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the upload sent nothing for {} s", idle.as_secs()),
            )),
        };
        let last = !matches!(chunk, Chunk::Data(_));
        if tx.send(chunk).await.is_err() || last {
            return;
        }
    }
}

/// Writes one point into a streamed reply (the separator between points is written for it).
pub(crate) type PointWriter =
    std::sync::Arc<dyn Fn(&mut String, &cairn_core::MetricPoint) + Send + Sync>;

/// A metric history reply as `open` + points + `close`, read from the metric store one sealed
/// chunk at a time (each read a call of its own: the workspace is free between chunks, and a
/// slow client holds one encoded chunk). Points `from..to`: `to` is the series' length when the
/// request came, so the reply is the history as it was then.
pub(crate) struct History {
    pub(crate) st: AppState,
    pub(crate) run: cairn_model::RunId,
    pub(crate) key: String,
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) open: &'static str,
    pub(crate) close: String,
    pub(crate) write: PointWriter,
}

impl History {
    pub(crate) fn into_body(self) -> Body {
        struct At {
            h: History,
            opened: bool,
            wrote_one: bool,
        }
        let start = At {
            h: self,
            opened: false,
            wrote_one: false,
        };
        pieces(Some(start), |state| async move {
            let mut at = state?;
            let mut out = String::new();
            if !at.opened {
                out.push_str(at.h.open);
                at.opened = true;
            }
            if at.h.from >= at.h.to {
                out.push_str(&at.h.close);
                return Some((Ok(Bytes::from(out)), None));
            }
            let (run, key, from, to) = (at.h.run, at.h.key.clone(), at.h.from, at.h.to);
            let write = at.h.write.clone();
            let mut first = !at.wrote_one;
            let budget = at.h.st.limits.request_budget;
            let read = at.h.st.call(move |ws| {
                let points = ws.metric_history_chunk(run, &key, from, to)?;
                out.reserve(points.len() * 64);
                for p in &points {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    write(&mut out, p);
                }
                Ok((out, points.len() as u64))
            });
            match tokio::time::timeout(budget, read).await {
                Ok(Ok((out, n))) if n > 0 => {
                    at.h.from += n;
                    at.wrote_one = true;
                    Some((Ok(Bytes::from(out)), Some(at)))
                }
                Ok(Ok(_)) => {
                    // A series only grows; an empty read before `to` is a store that changed
                    // under us: end the reply broken rather than short.
                    let e: StreamError = format!(
                        "metric '{}' of run {} ended at point {} of {}",
                        at.h.key, at.h.run, at.h.from, at.h.to
                    )
                    .into();
                    Some((Err(e), None))
                }
                Ok(Err(e)) => {
                    let e: StreamError = match e {
                        CallError::Core(e) => Box::new(e),
                        CallError::Aborted(m) => m.into(),
                    };
                    tracing::warn!(error = %e, "metric history cut off");
                    Some((Err(e), None))
                }
                Err(_) => {
                    let e: StreamError =
                        format!("the workspace was busy for over {} s", budget.as_secs()).into();
                    tracing::warn!(error = %e, "metric history cut off");
                    Some((Err(e), None))
                }
            }
        })
    }
}
