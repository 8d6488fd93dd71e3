//! Fetching blobs on demand (`cairn/blob/1`): the large artifacts a sync session does not send
//! eagerly. The asker sends `BlobWant`; the holder answers each hash, in order, with `BlobPart`s
//! of up to 1 MiB (read straight from its store, so memory does not grow with the blob) or
//! `BlobMissing`, then `Done`. The asker writes parts to a temporary file while hashing them and
//! stores the file only if it hashes to what was asked for. Either side gives up on a peer
//! that sends nothing for [`FETCH_IDLE`] (per read, so a slow link is never cut off).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_model::BlobHash;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::Error;
use crate::idle::{IdleReader, is_idle_timeout};
use crate::store::SharedStores;
use crate::wire::{Msg, read_frame, write_frame};

/// Bytes per `BlobPart`.
const PART: usize = 1 << 20;
/// Hashes one request may ask for.
const MAX_WANT: usize = 10_000;
/// How long either side waits for the next byte from the other before giving up.
pub const FETCH_IDLE: Duration = Duration::from_secs(30);

/// What one fetch got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FetchReport {
    pub fetched: Vec<String>,
    pub missing: Vec<String>,
    pub bytes: u64,
}

/// The holder's side: answers one request, then closes its sending side.
pub async fn serve_blobs<R, W>(stores: &SharedStores, reader: R, mut writer: W) -> Result<(), Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = IdleReader::new(reader, FETCH_IDLE);
    let frame = read_frame(&mut reader)
        .await?
        .ok_or_else(|| Error::Protocol("the peer closed before asking".into()))?;
    let want = match Msg::decode(&frame)? {
        Msg::BlobWant(w) if w.len() <= MAX_WANT => w,
        Msg::BlobWant(w) => {
            return Err(Error::Protocol(format!("{} blobs asked at once", w.len())));
        }
        other => {
            return Err(Error::Protocol(format!(
                "expected BlobWant, got {}",
                other.kind()
            )));
        }
    };
    // Only live blobs are served: not a deleted artifact's, not a deleted run's, not a purged one.
    let live = stores.run(|s| s.liveness()).await?;
    for hash in want {
        let file = if live.is_live(&BlobHash(hash)) {
            stores
                .run(move |s| Ok(s.artifacts.open_unverified(&BlobHash(hash)).ok()))
                .await?
        } else {
            None
        };
        let Some(mut file) = file else {
            write_frame(&mut writer, &Msg::BlobMissing(hash).encode()).await?;
            continue;
        };
        let mut offset = 0u64;
        let mut buf = vec![0u8; PART];
        loop {
            // File reads on the blocking pool, one part at a time.
            let (n, f, b) = tokio::task::spawn_blocking(move || {
                let n = read_full(&mut file, &mut buf);
                (n, file, buf)
            })
            .await
            .map_err(|e| Error::Team(format!("a blob read failed: {e}")))?;
            (file, buf) = (f, b);
            let n = n?;
            let last = n < PART;
            let part = Msg::BlobPart {
                hash,
                offset,
                last,
                bytes: buf[..n].to_vec(),
            };
            write_frame(&mut writer, &part.encode()).await?;
            offset += n as u64;
            if last {
                break;
            }
        }
    }
    write_frame(&mut writer, &Msg::Done.encode()).await?;
    writer.shutdown().await?;
    Ok(())
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> Result<usize, Error> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The asker's side: asks `peer` for `hashes`, stores each blob that arrives whole and
/// verified. A part out of order or a blob that does not hash to its name is an error; nothing
/// of that blob is stored. A peer that sends nothing for `idle` is an [`Error::Net`] naming it
/// and the blob that was awaited.
pub async fn fetch_blobs<R, W>(
    stores: &SharedStores,
    peer: &str,
    reader: R,
    mut writer: W,
    hashes: &[BlobHash],
    idle: Duration,
) -> Result<FetchReport, Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = IdleReader::new(reader, idle);
    let quiet = |e: Error, what: String| match e {
        Error::Io(io) if is_idle_timeout(&io) => Error::Net(format!(
            "peer {peer} sent nothing for {idle:?} while {what} was awaited; giving up"
        )),
        other => other,
    };
    let want: Vec<[u8; 32]> = hashes.iter().map(|h| h.0).take(MAX_WANT).collect();
    write_frame(&mut writer, &Msg::BlobWant(want.clone()).encode()).await?;
    writer.flush().await?;
    let tmp_dir = stores.run(|s| Ok(s.artifacts.tmp_dir())).await?;
    let mut report = FetchReport::default();
    for expected in want {
        let mut partial: Option<Partial> = None;
        loop {
            let frame = read_frame(&mut reader)
                .await
                .map_err(|e| quiet(e, format!("blob {}", BlobHash(expected))))?
                .ok_or_else(|| {
                    Error::Protocol(format!(
                        "peer {peer} closed the connection before blob {} was whole",
                        BlobHash(expected)
                    ))
                })?;
            match Msg::decode(&frame)? {
                Msg::BlobMissing(h) if h == expected => {
                    report.missing.push(BlobHash(h).to_hex());
                    break;
                }
                Msg::BlobPart {
                    hash,
                    offset,
                    last,
                    bytes,
                } if hash == expected => {
                    let mut p = match partial.take() {
                        Some(p) => p,
                        None => {
                            let dir = tmp_dir.clone();
                            blocking(move || Partial::create(&dir)).await?
                        }
                    };
                    if offset != p.len {
                        return Err(Error::Protocol(format!(
                            "blob {} part at {offset}, expected {}",
                            BlobHash(hash),
                            p.len
                        )));
                    }
                    // Writing and hashing the part on the blocking pool.
                    let p = blocking(move || p.write(&bytes).map(|()| p)).await?;
                    if last {
                        let actual = BlobHash(*p.hasher.finalize().as_bytes());
                        if actual != BlobHash(expected) {
                            return Err(Error::Protocol(format!(
                                "blob {} arrived as content hashing to {actual}",
                                BlobHash(expected)
                            )));
                        }
                        // The partial file goes (on drop) once it is stored.
                        let stored = stores
                            .run(move |s| Ok(s.artifacts.put_file(&p.path)?))
                            .await?;
                        report.bytes += stored.size;
                        report.fetched.push(stored.hash.to_hex());
                        break;
                    }
                    partial = Some(p);
                }
                other => {
                    return Err(Error::Protocol(format!(
                        "expected blob {}, got {}",
                        BlobHash(expected),
                        other.kind()
                    )));
                }
            }
        }
    }
    let end = read_frame(&mut reader)
        .await
        .map_err(|e| quiet(e, "the end of the reply".into()))?;
    match end.map(|f| Msg::decode(&f)) {
        Some(Ok(Msg::Done)) => Ok(report),
        _ => Err(Error::Protocol("expected Done after the blobs".into())),
    }
}

/// Runs blocking file work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Team(format!("a blob file task failed: {e}")))?
}

/// A blob being received: a temporary file (removed on drop) and the running hash.
struct Partial {
    path: PathBuf,
    file: std::fs::File,
    hasher: blake3::Hasher,
    len: u64,
}

static NEXT_TMP: AtomicU64 = AtomicU64::new(0);

impl Partial {
    fn create(dir: &std::path::Path) -> Result<Partial, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::File {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join(format!(
            "fetch-{}-{}",
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed)
        ));
        let file = std::fs::File::create(&path).map_err(|source| Error::File {
            path: path.clone(),
            source,
        })?;
        Ok(Partial {
            path,
            file,
            hasher: blake3::Hasher::new(),
            len: 0,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.file.write_all(bytes).map_err(|source| Error::File {
            path: self.path.clone(),
            source,
        })?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // The blob is stored (copied into place) or abandoned: either way the file goes.
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::debug!(path = %self.path.display(), "removing a partial blob: {e}");
        }
    }
}
