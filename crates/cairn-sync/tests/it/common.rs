//! Test peers: a workspace's stores in a temporary directory, synced over `tokio::io::duplex`.

use std::collections::BTreeMap;

use cairn_catalog::Catalog;
use cairn_metrics::Point;
use cairn_model::{ArtifactKind, ArtifactRef, BlobHash, Experiment, ExperimentId, Run, RunId};
use cairn_sync::{Error, Link, SessionReport, SharedStores, StorePaths, Stores, run_session};
use tempfile::TempDir;

pub struct Peer {
    pub name: String,
    pub _dir: TempDir,
    pub paths: StorePaths,
    pub stores: SharedStores,
}

impl Peer {
    pub fn new(name: &str) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let paths = StorePaths::in_workspace(dir.path());
        std::fs::create_dir_all(&paths.artifacts).unwrap();
        let stores = SharedStores::new(Stores::open(&paths, name).unwrap());
        Peer {
            name: name.to_owned(),
            _dir: dir,
            paths,
            stores,
        }
    }

    /// A restart: every handle is dropped and the stores are opened again from disk.
    pub fn restart(&mut self) {
        self.stores = SharedStores::new(Stores::open(&self.paths, &self.name).unwrap());
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Stores) -> T) -> T {
        f(&mut self.stores.lock().unwrap())
    }

    pub fn create_experiment(&self, name: &str) -> ExperimentId {
        let exp = Experiment {
            id: ExperimentId::new(),
            name: name.to_owned(),
            created_ms: 1,
            description: None,
            tags: BTreeMap::new(),
            schema: None,
            deleted: false,
        };
        self.with(|s| s.catalog.create_experiment(&exp)).unwrap();
        exp.id
    }

    pub fn create_run(&self, exp: ExperimentId, name: &str) -> RunId {
        let run = Run::new(RunId::new(), exp, name, 1_700_000_000_000);
        self.with(|s| s.catalog.create_runs(std::slice::from_ref(&run)))
            .unwrap();
        run.id
    }

    pub fn edit(&self, run: RunId, edit: cairn_catalog::RunEdit) {
        self.with(|s| s.catalog.update_run(run, &[edit])).unwrap();
    }

    pub fn log(&self, run: RunId, key: &str, from_step: i64, n: usize) {
        let points: Vec<Point> = (0..n)
            .map(|i| Point {
                step: from_step + i as i64,
                ts_ms: 1_700_000_000_000 + i as i64,
                value: (from_step as f64 + i as f64).sin(),
            })
            .collect();
        self.with(|s| s.metrics.append(&run.to_string(), key, &points))
            .unwrap();
    }

    pub fn add_artifact(&self, run: RunId, path: &str, bytes: &[u8]) {
        let put = self.with(|s| s.artifacts.put_bytes(bytes)).unwrap();
        self.edit(
            run,
            cairn_catalog::RunEdit::Artifact(
                path.to_owned(),
                ArtifactRef {
                    hash: put.hash,
                    size: put.size,
                    kind: ArtifactKind::File,
                },
            ),
        );
    }

    /// Stores `files` as a directory artifact (a manifest blob listing their blobs) at `path`.
    #[allow(dead_code)]
    pub fn add_dir_artifact(&self, run: RunId, path: &str, files: &[(&str, &[u8])]) -> BlobHash {
        let entries = files
            .iter()
            .map(|(name, bytes)| {
                let put = self.with(|s| s.artifacts.put_bytes(bytes)).unwrap();
                cairn_artifacts::ManifestEntry {
                    path: (*name).to_owned(),
                    hash: put.hash,
                    size: put.size,
                }
            })
            .collect();
        let manifest = cairn_artifacts::Manifest::from_entries(entries);
        let put = self
            .with(|s| s.artifacts.put_bytes(&manifest.to_bytes()))
            .unwrap();
        self.edit(
            run,
            cairn_catalog::RunEdit::Artifact(
                path.to_owned(),
                ArtifactRef {
                    hash: put.hash,
                    size: manifest.total_size(),
                    kind: ArtifactKind::Dir,
                },
            ),
        );
        put.hash
    }

    /// Writes a trace of `spans` spans (ids from `t`) in experiment `exp`, as this device's
    /// own log entries.
    #[allow(dead_code)]
    pub fn log_trace(&self, t: [u8; 16], exp: &str, spans: usize, at_ms: i64) {
        let entries: Vec<cairn_traces::Entry> = (0..spans)
            .map(|i| {
                let n = i as u64;
                cairn_traces::Entry {
                    at_ms,
                    record: cairn_traces::Record::Span {
                        experiment: exp.to_owned(),
                        span: cairn_traces::Span {
                            trace_id: t,
                            span_id: (n + 1).to_be_bytes(),
                            parent_id: (i > 0).then_some(1u64.to_be_bytes()),
                            name: format!("span-{i}"),
                            start_ns: 1_000_000 + n * 1000,
                            end_ns: 1_000_000 + n * 1000 + 500,
                            ..cairn_traces::Span::default()
                        },
                    },
                }
            })
            .collect();
        self.with(|s| s.traces.append(&entries)).unwrap();
    }

    /// Sets a tag of trace `t` in this device's log.
    #[allow(dead_code)]
    pub fn tag_trace(&self, t: [u8; 16], key: &str, value: &str, at_ms: i64) {
        let entry = cairn_traces::Entry {
            at_ms,
            record: cairn_traces::Record::Tag {
                trace: cairn_traces::TraceId::from_otel(&t),
                key: key.to_owned(),
                value: Some(value.to_owned()),
            },
        };
        self.with(|s| s.traces.append(&[entry])).unwrap();
    }

    /// Whether the blob of `bytes` is stored here.
    #[allow(dead_code)]
    pub fn holds(&self, bytes: &[u8]) -> bool {
        self.with(|s| s.artifacts.contains(&hash_of(bytes)))
    }

    /// Everything a peer holds, in a comparable form.
    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| {
            let mut runs: Vec<Run> = s.catalog.changes_since(0).unwrap().1;
            runs.sort_by_key(|r| r.id);
            let mut experiments = s.catalog.experiments().unwrap();
            experiments.sort_by_key(|e| e.id);
            let heads = s.catalog.doc_heads().unwrap();
            let mut series = BTreeMap::new();
            for m in s.metrics.series_marks().unwrap() {
                let pts: Vec<cairn_sync::wire::WirePoint> = s
                    .metrics
                    .history(&m.run, &m.key)
                    .unwrap()
                    .iter()
                    .map(|p| (p.step, p.ts_ms, p.value.to_bits()))
                    .collect();
                series.insert((m.run, m.key), pts);
            }
            let blobs = s.artifacts.list().unwrap();
            let (infos, _) = s
                .traces
                .search(&cairn_traces::Search {
                    limit: cairn_traces::MAX_PAGE,
                    ..cairn_traces::Search::default()
                })
                .unwrap();
            let traces = infos
                .iter()
                .map(|i| {
                    let spans = s.traces.spans(&i.trace_id).unwrap();
                    format!("{i:?} {spans:?}")
                })
                .collect();
            Snapshot {
                runs: serde_json::to_value(&runs).unwrap(),
                experiments: serde_json::to_value(&experiments).unwrap(),
                heads: heads
                    .into_iter()
                    .filter(|d| !d.heads.is_empty())
                    .map(|d| (d.name, d.heads))
                    .collect(),
                series,
                traces,
                blobs,
            }
        })
    }

    pub fn run(&self, id: RunId) -> Run {
        self.with(|s| s.catalog.run(id)).unwrap().unwrap()
    }
}

#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub runs: serde_json::Value,
    pub experiments: serde_json::Value,
    pub heads: BTreeMap<String, Vec<[u8; 32]>>,
    pub series: BTreeMap<(String, String), Vec<cairn_sync::wire::WirePoint>>,
    /// Every trace's info and spans.
    pub traces: Vec<String>,
    pub blobs: Vec<(cairn_model::BlobHash, u64)>,
}

/// One sync session between two peers over an in-memory stream.
pub async fn sync(a: &Peer, b: &Peer) -> (SessionReport, SessionReport) {
    let (ra, rb) = try_sync(a, b).await;
    (ra.unwrap(), rb.unwrap())
}

pub async fn try_sync(
    a: &Peer,
    b: &Peer,
) -> (Result<SessionReport, Error>, Result<SessionReport, Error>) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    let (xr, xw) = tokio::io::split(x);
    let (yr, yw) = tokio::io::split(y);
    tokio::join!(
        run_session(&a.stores, &b.name, Link::new(xr, xw)),
        run_session(&b.stores, &a.name, Link::new(yr, yw)),
    )
}

/// The team doc's name, for tests that look at docs.
#[allow(dead_code)]
pub fn team_doc() -> &'static str {
    Catalog::team_doc_name()
}

/// The blob name of `bytes`.
#[allow(dead_code)]
pub fn hash_of(bytes: &[u8]) -> BlobHash {
    BlobHash(*blake3::hash(bytes).as_bytes())
}
