//! Transfers too large to hold in memory, for front ends that stream them (the HTTP server): an
//! artifact read out verified as it goes, an upload stored without holding the workspace, and a
//! metric history read one sealed chunk at a time.
//!
//! Each is split so that the long part holds no store connection: the handle is asked only to
//! open the transfer and to finish it, never while bytes travel at the speed of a client.

use std::io::{self, Read};

use cairn_artifacts::{ArtifactStore, VerifiedReader};
use cairn_catalog::RunEdit;
use cairn_metrics::Point;
use cairn_model::{ArtifactKind, ArtifactRef, RunId, validate_artifact_path};

use crate::{Error, Stores};

/// A stored file being read for a client. Every byte is hashed; the read that reaches the end
/// fails (kind [`io::ErrorKind::InvalidData`]) when the content does not match its hash, so a
/// reader that hands each piece on only after the next read succeeded never completes a
/// transfer of wrong bytes. Needs no workspace once opened.
#[derive(Debug)]
pub struct ArtifactDownload {
    reader: VerifiedReader,
}

impl ArtifactDownload {
    /// The size in bytes (from the file; the end of the read says whether its content holds).
    pub fn len(&self) -> u64 {
        self.reader.len()
    }

    pub fn is_empty(&self) -> bool {
        self.reader.is_empty()
    }
}

impl ArtifactDownload {
    /// Opens a stored blob for a verified read.
    pub(crate) fn open(store: &ArtifactStore, hash: &cairn_model::BlobHash) -> Result<Self, Error> {
        Ok(ArtifactDownload {
            reader: store.open_verified(hash)?,
        })
    }
}

impl Read for ArtifactDownload {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read(buf)
    }
}

/// An upload accepted for one path of one run, to be stored without the workspace
/// ([`ArtifactUpload::store`]) and then bound to the run ([`crate::Workspace::bind_artifact`]).
#[derive(Debug)]
pub struct ArtifactUpload {
    store: ArtifactStore,
    run: RunId,
    path: String,
}

impl ArtifactUpload {
    /// Stores what `reader` yields until its end: written to a temporary file while hashed, then
    /// moved into the content-addressed store, so memory use does not grow with its size. The
    /// run does not see it until [`crate::Workspace::bind_artifact`]; content stored but never bound
    /// (the client went away, the run was deleted meanwhile) is referenced by no run.
    pub fn store(self, reader: &mut dyn Read) -> Result<StoredArtifact, Error> {
        let put = self.store.put_reader(reader)?;
        Ok(StoredArtifact {
            run: self.run,
            path: self.path,
            reference: ArtifactRef {
                hash: put.hash,
                size: put.size,
                kind: ArtifactKind::File,
            },
        })
    }
}

/// Content an [`ArtifactUpload`] stored, not yet bound to its run.
#[derive(Debug)]
pub struct StoredArtifact {
    run: RunId,
    path: String,
    reference: ArtifactRef,
}

impl Stores {
    /// Opens the file at `path` among the run's artifacts (inside directory artifacts too) for
    /// streaming, verified as it is read.
    pub(crate) fn open_artifact_path(
        &self,
        id: RunId,
        path: &str,
    ) -> Result<ArtifactDownload, Error> {
        let hash = self.artifact_file(id, path)?;
        Ok(ArtifactDownload {
            reader: self.blob_store().open_verified(&hash)?,
        })
    }

    /// Accepts an upload to the run's artifact `logical`: the run must exist and the path be
    /// valid, checked before a byte of the content is read.
    pub(crate) fn artifact_upload(
        &mut self,
        id: RunId,
        logical: &str,
    ) -> Result<ArtifactUpload, Error> {
        self.run_record(id)?;
        let logical = logical.trim_matches('/');
        validate_artifact_path(logical)?;
        // Refused before a byte of the content is read.
        self.guard_registered_path(id, logical, false)?;
        Ok(ArtifactUpload {
            store: self.blob_store().clone(),
            run: id,
            path: logical.to_owned(),
        })
    }

    /// Binds stored upload content to its run's path, as `add_artifact_reader` does in one step.
    /// A report `mlflow.evaluate` writes is listed on the run's latest evaluation too.
    pub(crate) fn bind_artifact(&mut self, stored: StoredArtifact) -> Result<ArtifactRef, Error> {
        let run = self.run_record(stored.run)?;
        // Checked again: a version may have been registered while the bytes travelled.
        self.guard_registered_path(stored.run, &stored.path, false)?;
        let mut edits = vec![RunEdit::Artifact(
            stored.path.clone(),
            stored.reference.clone(),
        )];
        edits.extend(self.mlflow_report_edit(&run, &stored.path));
        self.catalog_mut().update_run(stored.run, &edits)?;
        Ok(stored.reference)
    }

    /// How many points the run's series `key` holds now: where a streamed history stops, so a
    /// reply is the history as it was when asked for even while the run keeps logging.
    pub(crate) fn metric_len(&self, id: RunId, key: &str) -> Result<u64, Error> {
        self.require_series(id, key)?;
        Ok(self
            .metrics()
            .series_info(&id.to_string(), key)?
            .map_or(0, |s| s.count))
    }

    /// Points `from..to` of the run's series `key`, up to the end of the sealed chunk that holds
    /// `from`: reading on from where the last piece ended walks the history holding one decoded
    /// chunk at a time. Empty at the end. The run is not looked up again (see
    /// `metric_len`, which a reader asks first).
    pub(crate) fn metric_history_chunk(
        &self,
        id: RunId,
        key: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Point>, Error> {
        Ok(self
            .metrics()
            .history_chunk(&id.to_string(), key, from, to)?)
    }
}
