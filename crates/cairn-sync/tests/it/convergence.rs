//! Three peers in one process: fixed-seed random interleavings of creates, edits, conflicting
//! edits, metric logging, traces (spans and conflicting tags) and artifact adds, with partitions (only some pairs sync) and restarts;
//! afterwards every peer holds the same catalog, series, traces and blobs.

use cairn_catalog::RunEdit;
use cairn_model::{ExperimentId, RunId};

use crate::common::{Peer, sync};

/// xorshift64*: a fixed-seed generator, so every failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct World {
    peers: Vec<Peer>,
    /// Experiments and runs each peer knows (what it could have seen locally).
    exps: Vec<Vec<ExperimentId>>,
    /// (run, the peer that created it: the only one that logs its metrics).
    runs: Vec<Vec<(RunId, usize)>>,
    /// Points each run/key holds on its writer.
    logged: std::collections::BTreeMap<(RunId, String), i64>,
    /// Traces each peer knows, and how many were written in all.
    traces: Vec<Vec<[u8; 16]>>,
    traces_written: usize,
}

impl World {
    fn new() -> World {
        World {
            peers: vec![Peer::new("ada"), Peer::new("bo"), Peer::new("cy")],
            exps: vec![Vec::new(); 3],
            runs: vec![Vec::new(); 3],
            logged: Default::default(),
            traces: vec![Vec::new(); 3],
            traces_written: 0,
        }
    }

    async fn sync(&mut self, a: usize, b: usize) {
        let (pa, pb) = (&self.peers[a], &self.peers[b]);
        sync(pa, pb).await;
        // What one knows, the other now knows too.
        let union_e: Vec<ExperimentId> = merge(&self.exps[a], &self.exps[b]);
        let union_r: Vec<(RunId, usize)> = merge(&self.runs[a], &self.runs[b]);
        self.exps[a] = union_e.clone();
        self.exps[b] = union_e;
        self.runs[a] = union_r.clone();
        self.runs[b] = union_r;
        let union_t = merge(&self.traces[a], &self.traces[b]);
        self.traces[a] = union_t.clone();
        self.traces[b] = union_t;
    }

    async fn step(&mut self, rng: &mut Rng, i: usize) {
        let p = rng.below(3);
        match rng.below(11) {
            0 => {
                let id = self.peers[p].create_experiment(&format!("exp-{p}-{i}"));
                self.exps[p].push(id);
            }
            1 | 2 => {
                if self.exps[p].is_empty() {
                    let id = self.peers[p].create_experiment(&format!("exp-{p}-{i}"));
                    self.exps[p].push(id);
                }
                let exp = self.exps[p][rng.below(self.exps[p].len())];
                let run = self.peers[p].create_run(exp, &format!("run-{i}"));
                self.runs[p].push((run, p));
            }
            3 | 4 => {
                if let Some(&(run, _)) = pick(rng, &self.runs[p]) {
                    let edit = match rng.below(3) {
                        0 => RunEdit::Param(
                            format!("p{}", rng.below(4)),
                            format!("{}", rng.next() % 100),
                        ),
                        1 => RunEdit::Tag("stage".into(), format!("from-{p}-{i}")),
                        _ => RunEdit::Notes(format!("note by {p} at {i}")),
                    };
                    self.peers[p].edit(run, edit);
                }
            }
            5 => {
                // The same field on two peers, neither having seen the other's edit.
                let q = (p + 1) % 3;
                let shared: Vec<(RunId, usize)> = self.runs[p]
                    .iter()
                    .filter(|r| self.runs[q].contains(r))
                    .copied()
                    .collect();
                if let Some(&(run, _)) = pick(rng, &shared) {
                    self.peers[p]
                        .edit(run, RunEdit::Tag("verdict".into(), format!("{p}-says-{i}")));
                    self.peers[q]
                        .edit(run, RunEdit::Tag("verdict".into(), format!("{q}-says-{i}")));
                }
            }
            6 => {
                let own: Vec<(RunId, usize)> =
                    self.runs[p].iter().filter(|r| r.1 == p).copied().collect();
                if let Some(&(run, _)) = pick(rng, &own) {
                    let key = format!("m{}", rng.below(2));
                    let at = self.logged.entry((run, key.clone())).or_insert(0);
                    let n = 1 + rng.below(300);
                    self.peers[p].log(run, &key, *at, n);
                    *at += n as i64;
                }
            }
            7 => {
                if let Some(&(run, _)) = pick(rng, &self.runs[p]) {
                    let size = 1 + rng.below(20_000);
                    let bytes: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
                    self.peers[p].add_artifact(run, &format!("out/{i}.bin"), &bytes);
                }
            }
            8 => {
                let q = (p + 1 + rng.below(2)) % 3;
                self.sync(p, q).await;
            }
            10 => {
                // A new trace (now and then one long enough to be sealed into a chunk), or a
                // tag on a trace this peer knows, set on another peer too (a conflict).
                if rng.below(2) == 0 || self.traces[p].is_empty() {
                    let mut t = [0u8; 16];
                    t[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    t[8] = p as u8;
                    let spans = if rng.below(4) == 0 {
                        1024 + rng.below(600)
                    } else {
                        1 + rng.below(20)
                    };
                    self.peers[p].log_trace(t, "e", spans, i as i64);
                    self.traces[p].push(t);
                    self.traces_written += 1;
                } else {
                    let t = self.traces[p][rng.below(self.traces[p].len())];
                    let q = (p + 1) % 3;
                    self.peers[p].tag_trace(t, "verdict", &format!("{p}-says-{i}"), i as i64);
                    self.peers[q].tag_trace(t, "verdict", &format!("{q}-says-{i}"), i as i64);
                }
            }
            _ => self.peers[p].restart(),
        }
    }
}

fn pick<'a, T>(rng: &mut Rng, v: &'a [T]) -> Option<&'a T> {
    (!v.is_empty()).then(|| &v[rng.below(v.len())])
}

fn merge<T: Ord + Copy>(a: &[T], b: &[T]) -> Vec<T> {
    let mut out: Vec<T> = a.iter().chain(b).copied().collect();
    out.sort();
    out.dedup();
    out
}

/// Returns the traces written (so the caller knows traces were part of it).
async fn converge_with_seed(seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut world = World::new();
    for i in 0..120 {
        world.step(&mut rng, i).await;
    }
    // The partition heals: a ring, twice, brings everything everywhere.
    for _ in 0..2 {
        world.sync(0, 1).await;
        world.sync(1, 2).await;
        world.sync(2, 0).await;
    }
    let a = world.peers[0].snapshot();
    let b = world.peers[1].snapshot();
    let c = world.peers[2].snapshot();
    assert_eq!(a, b, "seed {seed}: ada and bo differ");
    assert_eq!(b, c, "seed {seed}: bo and cy differ");
    let runs = world.runs[0].len();
    assert_eq!(a.runs.as_array().unwrap().len(), runs, "seed {seed}");
    // Every point logged on a writer reached every peer.
    for ((run, key), n) in &world.logged {
        let got = a
            .series
            .get(&(run.to_string(), key.clone()))
            .map_or(0, |s| s.len());
        assert_eq!(got as i64, *n, "seed {seed}: {run}/{key}");
    }
    assert_eq!(a.traces.len(), world.traces_written, "seed {seed}: traces");
    // In sync: another session moves nothing but the hellos and goodbyes.
    let (ra, _) = sync(&world.peers[0], &world.peers[1]).await;
    assert_eq!(ra.docs_differing, 0);
    assert!(!ra.changed());
    world.traces_written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peers_converge_under_random_interleavings() {
    let mut traces = 0;
    for seed in [0x5eed_0001, 0xdead_beef, 0x0c0f_fee0, 42] {
        traces += converge_with_seed(seed).await;
    }
    assert!(traces > 0, "the interleavings wrote traces");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_edits_of_one_field_are_kept_as_a_conflict_on_both_peers() {
    let a = Peer::new("ada");
    let b = Peer::new("bo");
    let exp = a.create_experiment("e");
    let run = a.create_run(exp, "r");
    sync(&a, &b).await;
    a.edit(run, RunEdit::Tag("verdict".into(), "ship".into()));
    b.edit(run, RunEdit::Tag("verdict".into(), "hold".into()));
    sync(&a, &b).await;
    for p in [&a, &b] {
        let r = p.run(run);
        let conflict = r
            .conflicts
            .iter()
            .find(|c| c.field.contains("verdict"))
            .unwrap_or_else(|| panic!("{}: no conflict in {:?}", p.name, r.conflicts));
        let values: Vec<String> = conflict.values.iter().map(|v| v.to_string()).collect();
        assert!(values.iter().any(|v| v.contains("ship")), "{values:?}");
        assert!(values.iter().any(|v| v.contains("hold")), "{values:?}");
    }
    assert_eq!(a.run(run).tags, b.run(run).tags);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_runs_raise_the_change_counter_the_search_index_reads() {
    let a = Peer::new("ada");
    let b = Peer::new("bo");
    let exp = a.create_experiment("e");
    let seen = b.with(|s| s.catalog.changes_since(0)).unwrap().0;
    let run = a.create_run(exp, "fresh");
    sync(&a, &b).await;
    let (seq, changed) = b.with(|s| s.catalog.changes_since(seen)).unwrap();
    assert!(seq > seen);
    assert_eq!(changed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run]);
    // An edit arriving later re-projects that run only.
    let other = a.create_run(exp, "other");
    sync(&a, &b).await;
    a.edit(run, RunEdit::Notes("better".into()));
    let before = b.with(|s| s.catalog.changes_since(0)).unwrap().0;
    let (_, rb) = sync(&a, &b).await;
    assert_eq!(rb.docs_changed, 1);
    let (_, changed) = b.with(|s| s.catalog.changes_since(before)).unwrap();
    assert_eq!(changed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![run]);
    assert_eq!(b.run(run).notes, "better");
    assert_eq!(b.run(other).name, "other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_series_travel_as_sealed_chunks_and_resume_where_the_peer_ends() {
    let a = Peer::new("ada");
    let b = Peer::new("bo");
    let exp = a.create_experiment("e");
    let run = a.create_run(exp, "long");
    // 100k points: sealed chunks of 8,192 and a remainder; then a short tail of rows.
    a.log(run, "loss", 0, 100_000);
    a.log(run, "loss", 100_000, 10);
    let (_, rb) = sync(&a, &b).await;
    assert_eq!(rb.points_received, 100_010);
    // Far below 24 bytes a point: the chunks went as stored.
    assert!(
        rb.received < 100_000 * 12,
        "{} bytes for 100k points",
        rb.received
    );
    // More later, past a partly filled tail on both sides.
    a.log(run, "loss", 100_010, 70_000);
    let (_, rb) = sync(&a, &b).await;
    assert_eq!(rb.points_received, 70_000);
    assert_eq!(a.snapshot().series, b.snapshot().series);
}
