//! A stored blob read out as a stream that is verified as it goes: what a server hands a client
//! without holding the file in memory and without ever completing a transfer of wrong bytes.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;

use cairn_model::BlobHash;

use crate::Error;

/// Reads one blob, hashing every byte. The read that reaches the end checks the hash: it
/// returns `Ok(0)` only when the content hashed to the blob's name, and an error of kind
/// [`io::ErrorKind::InvalidData`] wrapping [`Error::Corrupt`] when it did not. A caller that
/// hands each piece on only after the next read succeeded (holding the last one back until the
/// end was verified) therefore never completes a transfer of corrupt bytes.
#[derive(Debug)]
pub struct VerifiedReader {
    file: File,
    path: PathBuf,
    expected: BlobHash,
    hasher: blake3::Hasher,
    len: u64,
    verified: bool,
}

impl VerifiedReader {
    pub(crate) fn new(file: File, path: PathBuf, expected: BlobHash) -> Result<Self, Error> {
        let len = file.metadata().map_err(Error::io("inspect", &path))?.len();
        Ok(VerifiedReader {
            file,
            path,
            expected,
            hasher: blake3::Hasher::new(),
            len,
            verified: false,
        })
    }

    /// The blob's size on disk (not yet verified: the end of the read says whether it holds).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The hash the content must have.
    pub fn hash(&self) -> &BlobHash {
        &self.expected
    }
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.verified || buf.is_empty() {
            return Ok(0);
        }
        let n = self.file.read(buf).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", self.path.display()),
            )
        })?;
        if n > 0 {
            self.hasher.update(&buf[..n]);
            return Ok(n);
        }
        let actual = BlobHash(*self.hasher.finalize().as_bytes());
        if actual != self.expected {
            tracing::warn!(blob = %self.expected, actual = %actual, "corrupt blob while streaming");
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Error::Corrupt {
                    hash: self.expected,
                    actual,
                },
            ));
        }
        self.verified = true;
        Ok(0)
    }
}
