//! The backup file: one container of named members and, at its end, a manifest listing each
//! member's path, size and BLAKE3, so a damaged or truncated backup is found before anything is
//! restored from it.
//!
//! ```text
//! "CAIRNBK1"                                    8 bytes
//! member*:  u16 path length, path (UTF-8), u64 size, the bytes
//! manifest: JSON (Manifest)
//! trailer:  u64 manifest length, BLAKE3 of the manifest (32 bytes), "CAIRNEND"
//! ```
//!
//! Integers are little-endian. The manifest comes last so the writer streams each member once;
//! the reader reads the trailer first, then the manifest, and only then walks the members,
//! checking each header against the manifest's entry. A backup is outside input (it may come
//! from anywhere): every length is bounded before it is used, every path is checked to stay
//! inside the directory it is restored into, and nothing is trusted until its hash matched.

use std::collections::HashSet;
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

/// The first bytes of a backup file.
pub const MAGIC: &[u8; 8] = b"CAIRNBK1";
/// The last bytes of a backup file.
pub const END: &[u8; 8] = b"CAIRNEND";
const TRAILER: u64 = 8 + 32 + 8;
/// The largest manifest a reader accepts (~2M members).
pub const MAX_MANIFEST: u64 = 256 << 20;
/// The most members one backup holds.
pub const MAX_MEMBERS: usize = 4_000_000;
/// The longest member path, in bytes.
pub const MAX_PATH: usize = 1024;
/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// What is wrong with a backup file, or with reading or writing one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    #[error("not a Cairn backup (it does not start with {:?})", std::str::from_utf8(MAGIC).unwrap_or("?"))]
    NotABackup,
    #[error("the backup is truncated or its end is damaged: {0}")]
    Trailer(String),
    #[error("the backup's manifest is damaged: {0}")]
    Manifest(String),
    #[error("member {path}: {reason}")]
    Member { path: String, reason: String },
    #[error("backup format {found} is newer than this build of Cairn reads ({FORMAT})")]
    TooNew { found: u32 },
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl ContainerError {
    fn member(path: &str, reason: impl Into<String>) -> ContainerError {
        ContainerError::Member {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }

    fn io(op: &'static str) -> impl FnOnce(io::Error) -> ContainerError {
        move |source| ContainerError::Io { op, source }
    }
}

/// One member as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Relative, `/`-separated, inside the restored workspace.
    pub path: String,
    pub size: u64,
    /// BLAKE3 of the member's bytes, 64 hex digits.
    pub blake3: String,
}

/// The backup's table of contents and what it was taken from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// When the snapshot was taken (ms since the epoch).
    pub created_ms: i64,
    /// The workspace's id (from `workspace.json`).
    pub workspace: String,
    /// The Cairn version that wrote it.
    pub cairn: String,
    /// Whether the device key (and the peer ledger that goes with it) is inside.
    pub includes_key: bool,
    pub members: Vec<Member>,
}

/// Checks that a member path is relative, `/`-separated, and stays inside the directory it
/// is restored into: no empty, `.` or `..` component, no backslash, no NUL, bounded.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_PATH {
        return Err(format!(
            "a path must have 1 to {MAX_PATH} bytes (has {})",
            path.len()
        ));
    }
    if path.contains(['\\', '\0', ':']) {
        return Err("a path may not hold '\\', ':' or NUL".into());
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("a path must be relative, without empty, '.' or '..' parts".into());
    }
    Ok(())
}

impl Manifest {
    /// Checks what the reader relies on: the format, the bounds, every path, no path twice, no
    /// path that is also another's directory, and hashes of the right shape.
    pub fn check(&self) -> Result<(), ContainerError> {
        if self.format > FORMAT {
            return Err(ContainerError::TooNew { found: self.format });
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(ContainerError::Manifest(format!(
                "{} members, more than {MAX_MEMBERS}",
                self.members.len()
            )));
        }
        let mut seen = HashSet::with_capacity(self.members.len());
        for m in &self.members {
            check_path(&m.path).map_err(|r| ContainerError::member(&m.path, r))?;
            if m.blake3.len() != 64 || !m.blake3.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ContainerError::member(
                    &m.path,
                    "its BLAKE3 is not 64 hex digits",
                ));
            }
            if !seen.insert(m.path.as_str()) {
                return Err(ContainerError::member(&m.path, "listed twice"));
            }
        }
        for m in &self.members {
            let mut at = 0;
            while let Some(i) = m.path[at..].find('/') {
                let dir = &m.path[..at + i];
                if seen.contains(dir) {
                    return Err(ContainerError::member(
                        dir,
                        format!("is a file, and also the directory of {}", m.path),
                    ));
                }
                at += i + 1;
            }
        }
        Ok(())
    }

    /// The members' bytes in all.
    pub fn total_bytes(&self) -> u64 {
        self.members.iter().map(|m| m.size).sum()
    }
}

/// Writes a backup member by member; [`Writer::finish`] writes the manifest.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    members: Vec<Member>,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> Result<Self, ContainerError> {
        out.write_all(MAGIC).map_err(ContainerError::io("write"))?;
        Ok(Writer {
            out,
            members: Vec::new(),
        })
    }

    /// Adds a member of exactly `size` bytes read from `data`; a source that ends early or
    /// holds more (a file that changed under the backup) is an error naming the member.
    pub fn add(
        &mut self,
        path: &str,
        size: u64,
        data: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), ContainerError> {
        check_path(path).map_err(|r| ContainerError::member(path, r))?;
        let len =
            u16::try_from(path.len()).map_err(|_| ContainerError::member(path, "too long"))?;
        self.out
            .write_all(&len.to_le_bytes())
            .and_then(|()| self.out.write_all(path.as_bytes()))
            .and_then(|()| self.out.write_all(&size.to_le_bytes()))
            .map_err(ContainerError::io("write"))?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
            let n = data
                .read(&mut buf[..want])
                .map_err(|e| ContainerError::member(path, format!("read: {e}")))?;
            if n == 0 {
                return Err(ContainerError::member(
                    path,
                    format!("ended {left} bytes before its size {size}"),
                ));
            }
            hasher.update(&buf[..n]);
            self.out
                .write_all(&buf[..n])
                .map_err(ContainerError::io("write"))?;
            left -= n as u64;
            progress(n as u64);
        }
        let mut probe = [0u8; 1];
        if data
            .read(&mut probe)
            .map_err(|e| ContainerError::member(path, format!("read: {e}")))?
            != 0
        {
            return Err(ContainerError::member(
                path,
                format!("grew past its size {size} while it was copied"),
            ));
        }
        self.members.push(Member {
            path: path.to_owned(),
            size,
            blake3: hasher.finalize().to_hex().to_string(),
        });
        Ok(())
    }

    /// Writes the manifest (the members added, in order) and the trailer; returns the output
    /// and the manifest.
    pub fn finish(mut self, mut manifest: Manifest) -> Result<(W, Manifest), ContainerError> {
        manifest.members = std::mem::take(&mut self.members);
        manifest.check()?;
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| ContainerError::Manifest(format!("encode: {e}")))?;
        let hash = blake3::hash(&json);
        self.out
            .write_all(&json)
            .and_then(|()| self.out.write_all(&(json.len() as u64).to_le_bytes()))
            .and_then(|()| self.out.write_all(hash.as_bytes()))
            .and_then(|()| self.out.write_all(END))
            .and_then(|()| self.out.flush())
            .map_err(ContainerError::io("write"))?;
        Ok((self.out, manifest))
    }
}

/// What [`Reader::walk`] hands its callback.
#[derive(Debug)]
pub enum Step<'a> {
    /// A member's header matched the manifest; its bytes follow.
    Start(&'a Member),
    Bytes(&'a [u8]),
    /// The member's bytes hashed to what the manifest says.
    End(&'a Member),
}

/// A backup opened for reading: its manifest is read and checked, its members not yet.
#[derive(Debug)]
pub struct Reader<R: Read + Seek> {
    input: R,
    manifest: Manifest,
    /// Where the manifest starts (the members end).
    members_end: u64,
}

impl<R: Read + Seek> Reader<R> {
    /// Reads the trailer and the manifest and checks both.
    pub fn open(mut input: R) -> Result<Self, ContainerError> {
        let len = input
            .seek(SeekFrom::End(0))
            .map_err(ContainerError::io("seek"))?;
        if len < MAGIC.len() as u64 {
            return Err(ContainerError::NotABackup);
        }
        input
            .seek(SeekFrom::Start(0))
            .map_err(ContainerError::io("seek"))?;
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(ContainerError::io("read"))?;
        if &magic != MAGIC {
            return Err(ContainerError::NotABackup);
        }
        if len < MAGIC.len() as u64 + TRAILER {
            return Err(ContainerError::Trailer(format!(
                "{len} bytes is too short to hold a manifest"
            )));
        }
        input
            .seek(SeekFrom::Start(len - TRAILER))
            .map_err(ContainerError::io("seek"))?;
        let mut trailer = [0u8; TRAILER as usize];
        input
            .read_exact(&mut trailer)
            .map_err(ContainerError::io("read"))?;
        if &trailer[40..] != END {
            return Err(ContainerError::Trailer(
                "its last 8 bytes are not the end marker".into(),
            ));
        }
        let mlen = u64::from_le_bytes(trailer[..8].try_into().unwrap_or_default());
        let room = len - MAGIC.len() as u64 - TRAILER;
        if mlen > room || mlen > MAX_MANIFEST {
            return Err(ContainerError::Trailer(format!(
                "a manifest of {mlen} bytes cannot fit (at most {} here, {MAX_MANIFEST} in any backup)",
                room.min(MAX_MANIFEST)
            )));
        }
        let members_end = len - TRAILER - mlen;
        input
            .seek(SeekFrom::Start(members_end))
            .map_err(ContainerError::io("seek"))?;
        let mut json = vec![0u8; usize::try_from(mlen).unwrap_or(0)];
        input
            .read_exact(&mut json)
            .map_err(ContainerError::io("read"))?;
        if blake3::hash(&json).as_bytes() != &trailer[8..40] {
            return Err(ContainerError::Manifest(
                "its BLAKE3 does not match the one the trailer holds".into(),
            ));
        }
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|e| ContainerError::Manifest(e.to_string()))?;
        manifest.check()?;
        let mut expected = MAGIC.len() as u64;
        for m in &manifest.members {
            expected = expected
                .checked_add(2 + m.path.len() as u64 + 8)
                .and_then(|e| e.checked_add(m.size))
                .ok_or_else(|| ContainerError::member(&m.path, "its size is impossible"))?;
        }
        if expected != members_end {
            return Err(ContainerError::Manifest(format!(
                "its members take {expected} bytes, the file holds {members_end} before the manifest"
            )));
        }
        Ok(Reader {
            input,
            manifest,
            members_end,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Reads every member in order, checking its header against the manifest and its bytes
    /// against its size and BLAKE3. `step` sees each member start, its bytes as they are read
    /// (it may write them out), and its end once it has checked out; the first member that
    /// fails stops the walk, and the error names it.
    pub fn walk(
        &mut self,
        step: &mut dyn FnMut(Step<'_>) -> Result<(), ContainerError>,
    ) -> Result<(), ContainerError> {
        self.input
            .seek(SeekFrom::Start(MAGIC.len() as u64))
            .map_err(ContainerError::io("seek"))?;
        let mut buf = vec![0u8; 256 << 10];
        let mut at = MAGIC.len() as u64;
        for m in &self.manifest.members {
            let damaged = |what: String| ContainerError::member(&m.path, what);
            let mut head = [0u8; 2];
            self.input
                .read_exact(&mut head)
                .map_err(|e| damaged(format!("its header cannot be read: {e}")))?;
            let plen = usize::from(u16::from_le_bytes(head));
            if plen != m.path.len() {
                return Err(damaged(format!(
                    "its header at byte {at} names a path of {plen} bytes, the manifest one of {}",
                    m.path.len()
                )));
            }
            let mut path = vec![0u8; plen];
            self.input
                .read_exact(&mut path)
                .map_err(|e| damaged(format!("its header cannot be read: {e}")))?;
            if path != m.path.as_bytes() {
                return Err(damaged(format!(
                    "its header at byte {at} names another path ({})",
                    String::from_utf8_lossy(&path)
                )));
            }
            let mut size = [0u8; 8];
            self.input
                .read_exact(&mut size)
                .map_err(|e| damaged(format!("its header cannot be read: {e}")))?;
            let size = u64::from_le_bytes(size);
            if size != m.size {
                return Err(damaged(format!(
                    "its header says {size} bytes, the manifest {}",
                    m.size
                )));
            }
            step(Step::Start(m))?;
            let mut hasher = blake3::Hasher::new();
            let mut left = size;
            while left > 0 {
                let want = usize::try_from(left.min(buf.len() as u64)).unwrap_or(buf.len());
                self.input
                    .read_exact(&mut buf[..want])
                    .map_err(|e| damaged(format!("cannot be read: {e}")))?;
                hasher.update(&buf[..want]);
                step(Step::Bytes(&buf[..want]))?;
                left -= want as u64;
            }
            let actual = hasher.finalize().to_hex();
            if actual.as_str() != m.blake3 {
                return Err(damaged(format!(
                    "damaged: its bytes hash to {actual}, the manifest says {}",
                    m.blake3
                )));
            }
            step(Step::End(m))?;
            at += 2 + plen as u64 + 8 + size;
        }
        debug_assert_eq!(at, self.members_end);
        Ok(())
    }

    /// Checks every member without writing anything.
    pub fn verify(&mut self, progress: &mut dyn FnMut(u64)) -> Result<(), ContainerError> {
        self.walk(&mut |step| {
            if let Step::Bytes(bytes) = step {
                progress(bytes.len() as u64);
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn meta() -> Manifest {
        Manifest {
            format: FORMAT,
            created_ms: 1,
            workspace: "w".into(),
            cairn: "0".into(),
            includes_key: false,
            members: Vec::new(),
        }
    }

    fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        for (p, b) in members {
            w.add(p, b.len() as u64, &mut &b[..], &mut |_| {}).unwrap();
        }
        w.finish(meta()).unwrap().0
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, ContainerError> {
        let mut r = Reader::open(Cursor::new(bytes))?;
        let mut out: Vec<(String, Vec<u8>)> = Vec::new();
        r.walk(&mut |step| {
            match step {
                Step::Start(m) => out.push((m.path.clone(), Vec::new())),
                Step::Bytes(b) => {
                    if let Some(last) = out.last_mut() {
                        last.1.extend_from_slice(b);
                    }
                }
                Step::End(_) => {}
            }
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn members_round_trip() {
        let bytes = build(&[
            ("a.db", b"hello"),
            ("artifacts/blobs/ab/x", b""),
            ("c", &[7; 1000]),
        ]);
        let got = read_all(&bytes).unwrap();
        let mut r = Reader::open(Cursor::new(&bytes)).unwrap();
        assert_eq!(r.manifest().members.len(), 3);
        assert_eq!(r.manifest().total_bytes(), 1005);
        r.verify(&mut |_| {}).unwrap();
        assert_eq!(got[0], ("a.db".to_owned(), b"hello".to_vec()));
        assert_eq!(got[1], ("artifacts/blobs/ab/x".to_owned(), Vec::new()));
        assert_eq!(got[2], ("c".to_owned(), vec![7; 1000]));
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let bytes = build(&[("a.db", b"hello"), ("b", b"world!")]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x20;
            assert!(read_all(&bad).is_err(), "byte {i} flipped went unnoticed");
        }
        for cut in 0..bytes.len() {
            assert!(
                read_all(&bytes[..cut]).is_err(),
                "cut at {cut} went unnoticed"
            );
        }
    }

    #[test]
    fn a_flipped_member_byte_names_the_member() {
        let bytes = build(&[("a.db", b"hello"), ("b.db", b"world!")]);
        let mut bad = bytes.clone();
        let at = 8 + 2 + 4 + 8 + 5 + 2 + 4 + 8 + 2;
        bad[at] ^= 1;
        let e = read_all(&bad).unwrap_err();
        assert!(
            matches!(&e, ContainerError::Member { path, .. } if path == "b.db"),
            "{e}"
        );
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn paths_that_leave_the_workspace_are_refused() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "a/./b",
            "a\\b",
            "c:x",
            "a/",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        check_path("artifacts/blobs/ab/abc").unwrap();
        let mut m = meta();
        m.members = vec![
            Member {
                path: "a".into(),
                size: 0,
                blake3: "0".repeat(64),
            },
            Member {
                path: "a/b".into(),
                size: 0,
                blake3: "0".repeat(64),
            },
        ];
        assert!(m.check().is_err());
        m.members.pop();
        m.members.push(m.members[0].clone());
        assert!(m.check().is_err());
    }

    #[test]
    fn a_source_that_changes_size_is_refused() {
        let mut w = Writer::new(Vec::new()).unwrap();
        let e = w.add("a", 10, &mut &b"short"[..], &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("ended 5 bytes before"), "{e}");
        let mut w = Writer::new(Vec::new()).unwrap();
        let e = w.add("a", 2, &mut &b"longer"[..], &mut |_| {}).unwrap_err();
        assert!(e.to_string().contains("grew"), "{e}");
    }
}
