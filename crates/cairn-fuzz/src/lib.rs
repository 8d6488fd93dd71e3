//! The bodies of Cairn's fuzz targets: one function per parser of outside input, taking the
//! fuzzer's bytes and panicking only when the parser breaks a promise (a panic of its own, a
//! round trip that does not hold, an error pointing outside the input).
//!
//! The `cargo fuzz` crate in `fuzz/` (libFuzzer) calls these one line per target; this
//! crate's own test replays every file of `fuzz/corpus/<target>/` and `fuzz/crashers/<target>/`
//! through them on the stable toolchain, so a crasher once found stays fixed.
//!
//! What it is not: a test of behaviour (each parser's own tests say what it should answer) and
//! not part of any shipped binary.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use automerge::sync::SyncDoc;
use cairn_artifacts::{ArtifactStore, Manifest};
use cairn_audit::{AuditStore, Verifier};
use cairn_catalog::{Catalog, RunFilter};
use cairn_metrics::MetricStore;
use cairn_model::{BlobHash, ExperimentId, Run, RunId};
use cairn_search::{IndexedRun, SearchIndex, SearchRequest};
use cairn_sync::ledger::Ledger;
use cairn_sync::wire::{Msg, read_frame};
use cairn_sync::{Link, SessionReport, SharedStores, Stores, Ticket, run_session};

/// A target's body: it takes the fuzzer's bytes and panics when a parser breaks a promise.
pub type Body = fn(&[u8]);

/// Every target: its name (the folder of its corpus and crashers) and its body.
pub const TARGETS: &[(&str, Body)] = &[
    ("query", query),
    ("search", search),
    ("mlflow_request", mlflow_request),
    ("sync_frame", sync_frame),
    ("sync_session", sync_session),
    ("catalog_sync", catalog_sync),
    ("peer_doc", peer_doc),
    ("ticket", ticket),
    ("metrics_csv", metrics_csv),
    ("gpu_query_csv", gpu_query_csv),
    ("gpu_util_trace", gpu_util_trace),
    ("manifest", manifest),
    ("metric_chunk", metric_chunk),
    ("otlp", otlp),
    ("eval_file", eval_file),
    ("audit_bundle", audit_bundle),
    ("audit_store", audit_store),
    ("tfevents", tfevents),
    ("mlflow_meta", mlflow_meta),
    ("mlflow_rest", mlflow_rest),
    ("backup_container", backup_container),
    ("notebook_markup", notebook_markup),
    ("review_file", review_file),
    ("notebook_query", notebook_query),
];

/// The body of target `name`.
pub fn target(name: &str) -> Option<Body> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The docs [`catalog_sync`] records address, by selector byte modulo 4: the team doc, then
/// three shards (any UUIDv7 in its canonical hex form names a shard doc).
pub const SYNC_DOCS: [&str; 4] = [
    "team",
    "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b",
    "0190f5d2a8f47c3a9e1b2c3d4e5f6a7c",
    "0190f5d2a8f47c3a9e1b2c3d4e5f6a7d",
];

/// The peer every sync target plays.
const PEER: &str = "fuzz-peer";

/// A notebook search as a user or a web page types it (`Catalog::search_notebooks`: the query
/// becomes an FTS5 expression): any input answers hits or a `BadQuery` naming the bound it
/// broke — never an FTS5 syntax error, never a panic.
pub fn notebook_query(data: &[u8]) {
    use std::sync::{Mutex, OnceLock};
    static CATALOG: OnceLock<Mutex<(tempfile::TempDir, cairn_catalog::Catalog)>> = OnceLock::new();
    let held = CATALOG.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut cat =
            cairn_catalog::Catalog::open(&dir.path().join("catalog.db"), "fuzz").expect("open");
        let text = "# Warmup\n\nNEAR(a b) \"quoted\" -minus col:on AND OR NOT * ^x\n";
        cat.create_notebook(&cairn_model::notebook::Notebook {
            meta: cairn_model::notebook::NotebookMeta {
                id: cairn_model::NotebookId::new(),
                title: "fuzz".into(),
                owners: vec!["ada".into()],
                tags: vec!["t".into()],
                experiment: None,
                created_ms: 1,
                created_by: "ada".into(),
                updated_ms: 1,
                updated_by: "ada".into(),
                bytes: text.len() as u64,
            },
            text: text.into(),
            heads: Vec::new(),
        })
        .expect("a notebook");
        Mutex::new((dir, cat))
    });
    let guard = held.lock().unwrap_or_else(|p| p.into_inner());
    let q = String::from_utf8_lossy(data);
    match guard.1.search_notebooks(&q, 10) {
        Ok(hits) => assert!(hits.len() <= 10),
        Err(cairn_catalog::Error::BadQuery(why)) => assert!(!why.is_empty()),
        Err(e) => panic!("query {q:?}: {e}"),
    }
}

/// A notebook's Markdown and embeds (`cairn_core::notebook_markup`): a teammate's text, through
/// sync. Any input parses and renders without a panic, within the embed bound, and every tag
/// of the output is one the renderer writes: nothing in the text becomes markup.
pub fn notebook_markup(data: &[u8]) {
    use cairn_core::notebook_markup::{
        Embed, EmbedRenderer, MAX_EMBEDS, TAGS, escaped, parse, to_html,
    };
    struct Counting(usize);
    impl EmbedRenderer for Counting {
        fn render(&mut self, e: &Embed) -> String {
            self.0 += 1;
            format!(
                "<span class=\"nb-embed\">{}</span>",
                escaped(&format!("{e:?}"))
            )
        }
    }
    let text = String::from_utf8_lossy(data);
    let mut embeds = Counting(0);
    let html = to_html(&parse(&text), &mut embeds);
    assert!(embeds.0 <= MAX_EMBEDS, "{} embeds drawn", embeds.0);
    for (i, _) in html.match_indices('<') {
        let tag: String = html[i + 1..]
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        assert!(
            TAGS.contains(&tag.as_str()),
            "{text:?} gave the tag <{tag}>: {html}"
        );
    }
    for (i, _) in html.match_indices(" href=\"") {
        let url = &html[i + 7..];
        assert!(
            url.starts_with("http://") || url.starts_with("https://") || url.starts_with("#/"),
            "{text:?}: {html}"
        );
    }
}

/// The query language (`?q=` of `/api/v1/search`, MLflow's `filter`, saved views, the desktop's
/// query bar) and sort keys (`order_by`). What parses prints back to text that parses to the
/// same query and prints the same; an error points inside the text.
pub fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let columns = text.chars().count() + 1;
    match cairn_search::parse(&text) {
        Ok(q) => {
            let printed = q.to_string();
            let again = cairn_search::parse(&printed).unwrap_or_else(|e| {
                panic!("{text:?} printed as {printed:?}, which does not parse: {e}")
            });
            assert_eq!(again, q, "{text:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed, "{text:?}");
        }
        Err(e) => assert!(
            (1..=columns).contains(&e.column) && !e.to_string().is_empty(),
            "{text:?}: {e} (column {})",
            e.column
        ),
    }
    match cairn_search::parse_sort(&text) {
        Ok(keys) => {
            let printed = keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            let again = cairn_search::parse_sort(&printed).unwrap_or_else(|e| {
                panic!("sort {text:?} printed as {printed:?}, which does not parse: {e}")
            });
            assert_eq!(again, keys, "sort {text:?} printed as {printed:?}");
        }
        Err(e) => assert!(
            (1..=columns).contains(&e.column),
            "sort {text:?}: {e} (column {})",
            e.column
        ),
    }
}

/// A query and sort keys (the text before and after the first newline) run on a small index:
/// whatever parses compiles to a tantivy query and answers within the page it asked for.
pub fn search(data: &[u8]) {
    thread_local! {
        static INDEX: SearchIndex = small_index();
    }
    let text = String::from_utf8_lossy(data);
    let (q, sort) = text.split_once('\n').unwrap_or((&text, ""));
    let (Ok(q), Ok(sort)) = (cairn_search::parse(q), cairn_search::parse_sort(sort)) else {
        return;
    };
    let limit = 1 + data.len() % 7;
    let req = SearchRequest::new(q)
        .sorted_by(sort)
        .page(limit, data.len() % 5);
    INDEX.with(|index| {
        if let Ok(page) = index.search(&req) {
            assert!(
                page.runs.len() <= limit,
                "{text:?}: {} runs",
                page.runs.len()
            );
            assert!(page.total <= 12, "{text:?}: total {}", page.total);
        }
    });
}

/// Twelve runs with params, tags, metrics and lineage of every kind the query language reads.
fn small_index() -> SearchIndex {
    let exp = ExperimentId::from_parts(1_700_000_000_000, 1);
    let runs: Vec<Run> = (0..12u64)
        .map(|i| {
            let mut run = Run::new(
                RunId::from_parts(1_700_000_000_000 + i, u128::from(i)),
                exp,
                format!("trial-{i} label smoothing"),
                1_700_000_000_000 + i as i64 * 60_000,
            );
            run.owner = Some(["alice", "bob", "Ünïcode"][i as usize % 3].into());
            run.params
                .insert("lr".into(), format!("{}", 0.001 * (i + 1) as f64));
            run.params
                .insert("optimizer".into(), ["adam", "sgd"][i as usize % 2].into());
            run.tags.insert("stage".into(), "candidate".into());
            run.tags.insert("weird key.with/dots".into(), "%_".into());
            run.metrics.insert(
                "acc".into(),
                cairn_model::MetricSummary {
                    last: 0.5 + i as f64 / 100.0,
                    step: i as i64,
                    ts_ms: 0,
                    min: Some(0.1),
                    max: None,
                    count: 3,
                },
            );
            run.lineage.code = Some(cairn_model::CodeVersion {
                commit: Some(format!("{i:040x}")),
                branch: Some("main".into()),
                ..Default::default()
            });
            run.lineage.datasets.insert(
                "train".into(),
                cairn_model::DatasetSnapshot {
                    digest: Some(format!("blake3:{i:064x}")),
                    rows: Some(1000),
                    ..Default::default()
                },
            );
            run
        })
        .collect();
    let mut index = SearchIndex::in_memory().expect("an index in memory");
    let items: Vec<IndexedRun<'_>> = runs
        .iter()
        .map(|run| IndexedRun {
            run,
            experiment_name: "sweep",
            cost: None,
            review: None,
        })
        .collect();
    index.upsert(&items).expect("indexing the fuzz runs");
    index.commit().expect("committing the fuzz runs");
    index
}

/// An MLflow REST request: the first byte picks the endpoint, the rest is its JSON body or
/// query string, decoded as the handler decodes it.
pub fn mlflow_request(data: &[u8]) {
    let Some((&endpoint, input)) = data.split_first() else {
        return;
    };
    if let Err(message) = cairn_server::mlflow_fuzz::decode_request(usize::from(endpoint), input) {
        assert!(!message.is_empty());
    }
}

/// A sync frame's payload (`Msg::decode`), and the same bytes read as a stream of
/// length-prefixed frames. What decodes encodes back to the same message.
pub fn sync_frame(data: &[u8]) {
    check_msg(data);
    let mut stream = data;
    while let Ok(Some(frame)) = ready(read_frame(&mut stream)) {
        check_msg(&frame);
    }
}

fn check_msg(payload: &[u8]) {
    match Msg::decode(payload) {
        Ok(msg) => {
            let again = Msg::decode(&msg.encode())
                .unwrap_or_else(|e| panic!("{} does not decode once encoded: {e}", msg.kind()));
            assert_eq!(again, msg);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// Polls a future that cannot wait (it reads from memory) to its end.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a read from memory waited"),
    }
}

/// A whole sync session of a fresh device (a joiner) against a hostile peer: the input is the
/// byte stream the peer sends (frames as on the wire), whatever this side says. The session
/// ends in success or an error; the stores it leaves behind still read, and hold no more points
/// than their marks say, no audit event that does not verify and no blob that does not verify.
pub fn sync_session(data: &[u8]) {
    let (result, stores) = session_of_a_joiner(data);
    if let Err(e) = result {
        assert!(!e.to_string().is_empty());
    }
    let mut stores = stores.lock().expect("the stores' lock");
    read_back(&mut stores.catalog);
    if let Ok((marks, _)) = stores.metrics_manifest() {
        for (run, key, count) in marks {
            if let Ok(points) = stores.metrics.history_page(&run, &key, 0, 100_000) {
                assert!(points.len() as u64 <= count, "{run}/{key}");
            }
        }
    }
    if let Ok((marks, _)) = stores.traces_manifest() {
        for (source, count) in marks {
            if let Ok(entries) = stores.traces.entries(&source, 0, 100_000) {
                assert!(entries.len() as u64 <= count, "trace log {source}");
            }
        }
    }
    // Every audit event stored is signed by the device it names and follows its chain: what
    // the peer offered that does not is kept as a conflict, never stored.
    if let Ok(devices) = stores.audit.devices() {
        let mut v = Verifier::new(None);
        for device in devices {
            if let Ok(chain) = stores.audit.chain(&device, 0, 100_000) {
                v.feed(&chain);
            }
        }
        let report = v.finish();
        assert!(report.ok(), "stored audit events: {:?}", report.findings);
    }
    if let Ok(blobs) = stores.artifacts.list() {
        for (hash, _) in blobs {
            assert!(stores.artifacts.read(&hash).is_ok(), "stored blob {hash}");
        }
    }
    // What the peer's catalog says is live or purged (bindings, manifests, signed tombstones).
    if let Err(e) = stores.liveness() {
        assert!(!e.to_string().is_empty());
    }
}

/// Runs a fresh device's side of a session whose peer sends `data`; returns how it ended and
/// the device's stores (in memory, blobs in a temporary directory removed on return).
pub fn session_of_a_joiner(
    data: &[u8],
) -> (Result<SessionReport, cairn_sync::Error>, SharedStores) {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime");
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let stores = SharedStores::new(Stores {
        catalog: Catalog::open_in_memory("fuzz").expect("an in-memory catalog"),
        metrics: MetricStore::open_in_memory().expect("an in-memory metric store"),
        traces: cairn_traces::TraceStore::open_in_memory().expect("an in-memory trace store"),
        audit: AuditStore::open_in_memory().expect("an in-memory audit store"),
        artifacts: ArtifactStore::open(&dir.path().join("artifacts")).expect("an artifact store"),
        ledger: Ledger::open(&dir.path().join("sync.db")).expect("a ledger"),
        manifests: Default::default(),
    });
    let result = RUNTIME.with(|rt| {
        // The link spawns its writer task: made inside the runtime.
        rt.block_on(async { run_session(&stores, PEER, Link::new(data, tokio::io::sink())).await })
    });
    (result, stores)
}

/// Automerge sync messages from a peer applied to a fresh catalog through `sync_receive` (what a
/// session does with each `Doc`), each answered with `sync_generate`. The input is records of a
/// selector byte (which of [`SYNC_DOCS`]), a 2-byte big-endian length and the message.
pub fn catalog_sync(data: &[u8]) {
    let (mut catalog, _) = apply_sync_messages(data);
    read_back(&mut catalog);
}

/// Applies the records of `data` (see [`catalog_sync`]) to a fresh in-memory catalog; returns it
/// and how many messages changed it.
pub fn apply_sync_messages(data: &[u8]) -> (Catalog, usize) {
    let mut catalog = Catalog::open_in_memory("fuzz").expect("an in-memory catalog");
    let mut states = std::collections::BTreeMap::new();
    let mut changed = 0;
    let mut rest = data;
    while let [selector, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (message, next) = tail.split_at(len);
        rest = next;
        let doc = SYNC_DOCS[usize::from(selector % 4)];
        let state = match states.entry(doc) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(catalog.sync_state(PEER, doc).expect("a sync state"))
            }
        };
        match catalog.sync_receive(PEER, doc, state, message) {
            Ok(receipt) => changed += usize::from(receipt.changed),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        if let Err(e) = catalog.sync_generate(doc, state) {
            assert!(!e.to_string().is_empty());
        }
    }
    (catalog, changed)
}

/// A doc whose content a hostile peer chose (any valid automerge, any shape): the first byte
/// picks the doc (as in [`SYNC_DOCS`]), the rest is JSON the peer's doc holds at its root. It
/// reaches a fresh catalog through the sync protocol, as a session's rounds would bring it, and
/// is stored and projected or refused as corrupt.
pub fn peer_doc(data: &[u8]) {
    let (mut catalog, _) = peer_doc_in_a_fresh_catalog(data);
    read_back(&mut catalog);
}

/// Syncs the doc [`peer_doc`] describes into a fresh in-memory catalog; returns the catalog and
/// whether the doc was stored (not refused).
pub fn peer_doc_in_a_fresh_catalog(data: &[u8]) -> (Catalog, bool) {
    let mut catalog = Catalog::open_in_memory("fuzz").expect("an in-memory catalog");
    let Some((&selector, json)) = data.split_first() else {
        return (catalog, false);
    };
    let Ok(serde_json::Value::Object(root)) = serde_json::from_slice(json) else {
        return (catalog, false);
    };
    let mut theirs = automerge::AutoCommit::new();
    if put_map(&mut theirs, &automerge::ROOT, &root).is_err() {
        return (catalog, false);
    }
    let doc = SYNC_DOCS[usize::from(selector % 4)];
    let mut ours = catalog.sync_state(PEER, doc).expect("a sync state");
    let mut their_state = automerge::sync::State::new();
    let mut changed = false;
    // A session's rounds: each side says what it has until neither has anything to say.
    for _ in 0..8 {
        let mut said = false;
        if let Some(msg) = theirs.sync().generate_sync_message(&mut their_state) {
            said = true;
            match catalog.sync_receive(PEER, doc, &mut ours, &msg.encode()) {
                Ok(receipt) => changed |= receipt.changed,
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    break;
                }
            }
        }
        match catalog.sync_generate(doc, &mut ours) {
            Ok(Some(reply)) => {
                said = true;
                let reply = automerge::sync::Message::decode(&reply).expect("our own message");
                theirs
                    .sync()
                    .receive_sync_message(&mut their_state, reply)
                    .expect("the peer's doc takes our message");
            }
            Ok(None) => {}
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        if !said {
            break;
        }
    }
    (catalog, changed)
}

fn put_map(
    doc: &mut automerge::AutoCommit,
    obj: &automerge::ObjId,
    map: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), automerge::AutomergeError> {
    use automerge::transaction::Transactable;
    for (key, value) in map {
        match value {
            serde_json::Value::Object(inner) => {
                let child = doc.put_object(obj, key.as_str(), automerge::ObjType::Map)?;
                put_map(doc, &child, inner)?;
            }
            serde_json::Value::Array(items) => {
                let child = doc.put_object(obj, key.as_str(), automerge::ObjType::List)?;
                for (i, item) in items.iter().enumerate() {
                    doc.insert(&child, i, scalar(item))?;
                }
            }
            other => doc.put(obj, key.as_str(), scalar(other))?,
        }
    }
    Ok(())
}

/// A JSON value as an automerge scalar: integers as `Int` (or `Uint` above `i64::MAX`), other
/// numbers as `F64`; objects and arrays nested in a list become their JSON text.
fn scalar(value: &serde_json::Value) -> automerge::ScalarValue {
    use automerge::ScalarValue;
    match value {
        serde_json::Value::Null => ScalarValue::Null,
        serde_json::Value::Bool(b) => ScalarValue::Boolean(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => ScalarValue::Int(i),
            (None, Some(u), _) => ScalarValue::Uint(u),
            (None, None, f) => ScalarValue::F64(f.unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => ScalarValue::Str(s.as_str().into()),
        other => ScalarValue::Str(other.to_string().into()),
    }
}

/// Reads what a peer left in the catalog: every doc's heads, experiments, runs (from the
/// projection and from the doc) and the projections rebuilt.
fn read_back(catalog: &mut Catalog) {
    if let Err(e) = catalog.doc_heads() {
        assert!(!e.to_string().is_empty());
    }
    if let Err(e) = catalog.experiments() {
        assert!(!e.to_string().is_empty());
    }
    if let Ok(rows) = catalog.list_runs(&RunFilter::default()) {
        for row in rows {
            if let Err(e) = catalog.run_from_doc(row.id) {
                assert!(!e.to_string().is_empty());
            }
        }
    }
    if let Err(e) = catalog.rebuild_projections() {
        assert!(!e.to_string().is_empty());
    }
}

/// An invitation ticket as pasted into `cairn team join`: what decodes encodes back to a ticket
/// that decodes the same.
pub fn ticket(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match Ticket::decode(&text) {
        Ok(t) => {
            let again = Ticket::decode(&t.encode())
                .unwrap_or_else(|e| panic!("{text:?} re-encoded does not decode: {e}"));
            assert_eq!(again, t);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A metrics CSV for `cairn run log --csv`.
pub fn metrics_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match cairn_core::csv_import::parse(&text, 0) {
        Ok(series) => {
            let rows = text.lines().filter(|l| !l.trim().is_empty()).count();
            for (key, points) in series {
                assert!(points.len() < rows, "{key}: {} points", points.len());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A TensorBoard event file (`cairn import tensorboard`): the TFRecord framing, the `Event`
/// protobufs in it, and the plugin data an import decodes (hparams, text, tensor scalars); and
/// the same bytes straight into the `Event` and hparams decoders. An error points inside the
/// file; a file that reads is exactly its records framed again (the CRCs held, so nothing was
/// skipped or misread).
pub fn tfevents(data: &[u8]) {
    // The decoders themselves, past the CRCs that random bytes rarely get through: the input
    // as one record's payload and as the hparams plugin's content.
    if let Err(m) = cairn_tensorboard::Event::decode(data) {
        assert!(!m.is_empty());
    }
    if let Err(m) = cairn_tensorboard::decode_hparams(data) {
        assert!(!m.is_empty());
    }
    match cairn_tensorboard::parse(data) {
        Ok(events) => {
            let mut framed = Vec::with_capacity(data.len());
            for r in cairn_tensorboard::records(data) {
                let r = r.expect("a file that parses has only good records");
                framed.extend_from_slice(&cairn_tensorboard::write::record(r.data));
            }
            assert_eq!(framed, data, "the records framed again");
            for e in &events {
                let cairn_tensorboard::What::Summary(values) = &e.what else {
                    continue;
                };
                for v in values {
                    if let Some(p) = &v.plugin
                        && p.name == "hparams"
                        && let Err(m) = cairn_tensorboard::decode_hparams(&p.content)
                    {
                        assert!(!m.is_empty());
                    }
                    if let cairn_tensorboard::Data::Tensor(t) = &v.data {
                        assert!(
                            t.scalar().is_none() || t.strings().is_none(),
                            "a tensor read both as a number and as text: {t:?}"
                        );
                    }
                }
            }
        }
        Err(e) => {
            assert!(
                (e.offset as usize) < data.len(),
                "{e} in {} bytes",
                data.len()
            );
            assert!(!e.to_string().is_empty());
        }
    }
}

/// `nvidia-smi --query-gpu=… --format=csv` output, grouped and turned into system metrics as
/// `cairn exec` does.
pub fn gpu_query_csv(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match cairn_probe::parse_query_gpu_csv(&text) {
        Ok(gpus) => {
            let groups = cairn_probe::gpu_groups(&gpus);
            assert_eq!(
                groups.iter().map(|g| g.count as usize).sum::<usize>(),
                gpus.len()
            );
            for (name, value) in cairn_probe::gpu_metrics(&gpus) {
                assert!(value.is_finite(), "{name} = {value}");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A sampled `nvidia-smi` utilisation trace.
pub fn gpu_util_trace(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match cairn_probe::parse_util_trace(&text) {
        Ok(samples) => {
            for s in samples {
                assert!(s.util_gpu_pct.is_finite() && s.memory_used_mib.is_finite());
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A directory manifest blob (from a peer or a damaged store): what parses is valid, and its
/// stored form parses back to the same manifest.
pub fn manifest(data: &[u8]) {
    let hash = BlobHash(*blake3::hash(data).as_bytes());
    match Manifest::from_bytes(&hash, data) {
        Ok(m) => {
            assert!(m.validate(&hash).is_ok());
            let again = Manifest::from_bytes(&m.hash(), &m.to_bytes())
                .unwrap_or_else(|e| panic!("a manifest re-encoded does not parse: {e}"));
            assert_eq!(again, m);
            let total = m.total_size();
            assert!(m.entries.iter().all(|e| e.size <= total));
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A sealed metric chunk as a peer sends it (`Chunk`), with the right BLAKE3: a hostile peer
/// can hash what it sends.
pub fn metric_chunk(data: &[u8]) {
    let hash = blake3::hash(data);
    let points = cairn_metrics::decode_peer_chunk("fuzz/chunk", 0, 0, hash.as_bytes(), data);
    if let Err(e) = points {
        assert!(!e.to_string().is_empty());
    }
}

/// An OTLP/HTTP trace export (`POST /v1/traces`), as any HTTP client may send it: the first
/// byte picks the form (protobuf, JSON, or gzip of either), the rest is the body. What decodes
/// encodes back to protobuf that decodes again to as many spans; a refusal says what was wrong.
pub fn otlp(data: &[u8]) {
    let Some((&form, body)) = data.split_first() else {
        return;
    };
    let limits = cairn_traces::otlp::Limits::default();
    let body = if form & 2 == 0 {
        body.to_vec()
    } else {
        match cairn_traces::otlp::decompress(body, "gzip", 1 << 20) {
            Ok(inflated) => inflated,
            Err(e) => return assert!(!e.to_string().is_empty()),
        }
    };
    let decoded = if form & 1 == 0 {
        cairn_traces::otlp::decode_protobuf(&body, &limits)
    } else {
        cairn_traces::otlp::decode_json(&body, &limits)
    };
    match decoded {
        Ok(request) => {
            let spans: usize = request.iter().map(|r| r.spans.len()).sum();
            let again =
                cairn_traces::otlp::decode_protobuf(&cairn_traces::otlp::encode(&request), &limits)
                    .unwrap_or_else(|e| {
                        panic!("a decoded request re-encoded does not decode: {e}")
                    });
            assert_eq!(again.iter().map(|r| r.spans.len()).sum::<usize>(), spans);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A by-group metrics file for `cairn eval log --file` (fairlearn's `MetricFrame.by_group` as
/// CSV or pandas JSON): the first byte says how many sensitive attributes the command line
/// names (0–2), the rest is the file. Every slice parsed names a group; a refusal says why.
pub fn eval_file(data: &[u8]) {
    let Some((&named, body)) = data.split_first() else {
        return;
    };
    let attributes: Vec<String> = ["sex", "race"][..usize::from(named % 3)]
        .iter()
        .map(|a| a.to_string())
        .collect();
    let text = String::from_utf8_lossy(body);
    match cairn_core::by_group::parse(&text, &attributes) {
        Ok(slices) => {
            for name in slices.keys() {
                assert!(!name.is_empty(), "a slice without a name from {text:?}");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// A review as `cairn review new --file` reads it (JSON or `field: value` lines) and a review
/// template as JSON (`cairn review template set --file`, `PUT /api/v1/review-template`): each
/// reads or is refused with a message; a template that reads is validated, and a review that
/// reads is checked against it and the default template without a panic, a refusal for missing
/// fields naming at least one.
pub fn review_file(data: &[u8]) {
    use cairn_model::review::{Review, ReviewTemplate};
    let text = String::from_utf8_lossy(data);
    let template = serde_json::from_str::<ReviewTemplate>(&text).ok();
    if let Some(t) = &template {
        // Valid or refused with a message, never a panic.
        if let Err(e) = t.validate() {
            assert!(!e.to_string().is_empty());
        }
    }
    let new = match cairn_core::reviews::parse_review_text(&text) {
        Ok(n) => n,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let review = Review {
        id: cairn_model::RecordId::from_parts(0, 0),
        runs: vec![cairn_model::RunId::from_parts(0, 1)],
        experiment: None,
        objective: new.objective,
        method: new.method,
        result: new.result,
        confidence: new.confidence,
        decision: new.decision,
        actions: new.actions,
        text: new.text,
        extra: new.extra,
        user: "fuzz".into(),
        device: None,
        at_ms: 0,
    };
    for t in template
        .into_iter()
        .filter(|t| t.validate().is_ok())
        .chain([ReviewTemplate::default()])
    {
        if let Err(cairn_model::ModelError::ReviewIncomplete { missing }) = review.validate(&t) {
            assert!(!missing.is_empty(), "an incomplete review names a field");
        }
    }
}

/// The name [`audit_bundle`] reads its input as: every refusal names it.
pub const BUNDLE_NAME: &str = "fuzzed-bundle.jsonl";

/// An audit bundle as `cairn audit verify --bundle FILE` reads it (JSONL, or HTML with the
/// JSONL embedded, from a machine with no workspace): it is checked, or refused with an error
/// naming the file and what is wrong in it. A check that passes holds only signed, linked
/// events; its counts agree with its findings.
pub fn audit_bundle(data: &[u8]) {
    let name = std::path::Path::new(BUNDLE_NAME);
    match cairn_audit::bundle::verify_bundle_from(data, name) {
        Ok(check) => {
            assert_eq!(check.header.format, cairn_audit::bundle::BUNDLE_FORMAT);
            let r = &check.report;
            assert!(r.roster_checked);
            assert_eq!(r.ok(), r.findings.is_empty(), "{:?}", r.counts);
            let counted: u64 = r.counts.values().sum();
            assert!(counted >= r.findings.len() as u64, "{:?}", r.counts);
            let in_chains: u64 = r.chains.iter().map(|c| c.events).sum();
            assert_eq!(in_chains, r.events);
            if let Err(why) = &check.sealed {
                assert!(!why.is_empty());
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(
                text.contains(BUNDLE_NAME) && text.len() > BUNDLE_NAME.len() + 16,
                "an unclear refusal: {text}"
            );
        }
    }
}

/// The columns of a stored event, in [`audit_store`]'s input order.
const EVENT_COLUMNS: [&str; 9] = [
    "device",
    "seq",
    "prev",
    "at_ms",
    "member",
    "kind",
    "subjects",
    "fields",
    "signature",
];

/// An `audit.db` someone edited (what `cairn audit verify` must stand up to): each input line is
/// one stored event, its columns separated by tabs in [`EVENT_COLUMNS`] order (`seq` and
/// `at_ms` stored as integers when they parse, as text otherwise; `subjects` and `fields` as
/// the JSON the store keeps). Every reader of the store — verification, the log, a subject's
/// events, a chain, the marks sync compares — answers or fails with an error, and what the
/// batched verification passes verifies one by one too.
pub fn audit_store(data: &[u8]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("audit.db");
    let mut store = AuditStore::open(&path).expect("an audit store");
    {
        let conn = rusqlite::Connection::open(&path).expect("the same database");
        let text = String::from_utf8_lossy(data);
        for line in text.lines().take(64) {
            let mut cols: Vec<&str> = line.splitn(EVENT_COLUMNS.len(), '\t').collect();
            cols.resize(EVENT_COLUMNS.len(), "");
            let int = |t: &str| match t.parse::<i64>() {
                Ok(n) => rusqlite::types::Value::Integer(n),
                Err(_) => rusqlite::types::Value::Text(t.to_owned()),
            };
            let text = |t: &str| rusqlite::types::Value::Text(t.to_owned());
            let row = [
                text(cols[0]),
                int(cols[1]),
                text(""),
                text(cols[2]),
                int(cols[3]),
                text(cols[4]),
                text(cols[5]),
                text(cols[6]),
                text(cols[7]),
                text(cols[8]),
            ];
            // A row SQLite refuses (a repeated key) is no edit anyone could make.
            conn.execute(
                "INSERT OR IGNORE INTO events (device, seq, hash, prev, at_ms, member, kind, \
                 subjects, fields, signature) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                rusqlite::params_from_iter(row),
            )
            .expect("a row of the events table");
            conn.execute(
                "INSERT OR IGNORE INTO subjects (subject, at_ms, device, seq) \
                 SELECT value, e.at_ms, e.device, e.seq FROM events e, json_each(e.subjects) \
                 WHERE e.device = ?1 AND json_valid(e.subjects)",
                [cols[0]],
            )
            .ok();
        }
    }
    // Batch verification and one-by-one checks agree: a store that verifies holds only events
    // whose own signatures verify.
    if let Ok(v) = cairn_audit::verify_store(&store, None) {
        let report = v.finish();
        assert_eq!(
            report.ok(),
            report.findings.is_empty(),
            "{:?}",
            report.counts
        );
        if report.ok()
            && let Ok(devices) = store.devices()
        {
            for d in devices {
                for e in store.chain(&d, 0, 1_000).unwrap_or_default() {
                    assert!(e.verify_signature().is_ok(), "verified, yet: {e:?}");
                }
            }
        }
    }
    store.log(&cairn_audit::Query::default()).ok();
    store.about("run:x", 100).ok();
    store.marks().ok();
    store.conflicts().ok();
    // What sync would then append or accept still works or fails cleanly.
    let key = cairn_audit::DeviceKey::from_secret(&[7; 32]);
    store
        .append(&key, cairn_audit::Draft::new("fuzz", "fuzz.appended", 0))
        .ok();
}

/// A `meta.yaml` of MLflow's file store (`cairn import mlflow ./mlruns`): the importer's small
/// YAML reader. An error names a line of the text; what reads is written back (every value
/// quoted) and reads back the same.
pub fn mlflow_meta(data: &[u8]) {
    use cairn_core::mlflow_import::yaml;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match yaml::parse(text) {
        Ok(doc) => {
            let written = yaml::emit(&doc);
            let again = yaml::parse(&written)
                .unwrap_or_else(|e| panic!("{text:?} written as {written:?} does not read: {e}"));
            assert_eq!(again, doc, "{text:?} written as {written:?}");
        }
        Err(e) => assert!(
            (1..=text.lines().count().max(1)).contains(&e.line) && !e.message.is_empty(),
            "{text:?}: {e}"
        ),
    }
}

/// An answer of an MLflow server (`cairn import mlflow http://…`): the first byte picks the
/// listing the rest answers (experiments, runs, a metric history, artifacts, models, versions).
/// Promises: no panic; an error says what was wrong; a page token handed on is never empty;
/// artifact paths have no leading or trailing `/`; a version number is never 0.
pub fn mlflow_rest(data: &[u8]) {
    use cairn_core::mlflow_import::rest;
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    fn check<T>(r: Result<rest::Page<T>, String>) -> Option<Vec<T>> {
        match r {
            Ok(page) => {
                assert!(page.next.as_deref() != Some(""), "an empty page token");
                Some(page.items)
            }
            Err(e) => {
                assert!(!e.is_empty(), "an error without a message");
                None
            }
        }
    }
    match which % 6 {
        0 => drop(check(rest::experiments_page(body))),
        1 => {
            for r in check(rest::runs_page(body)).into_iter().flatten() {
                assert!(!r.id.is_empty(), "a run without an id");
                assert!(
                    r.metric_keys.windows(2).all(|w| w[0] < w[1]),
                    "keys unsorted"
                );
            }
        }
        2 => drop(check(rest::history_page(body))),
        3 => {
            for f in check(rest::artifacts_page(body)).into_iter().flatten() {
                assert!(!f.path.starts_with('/') && !f.path.ends_with('/'), "{f:?}");
            }
        }
        4 => drop(check(rest::models_page(body))),
        _ => {
            for (_, v) in check(rest::versions_page(body)).into_iter().flatten() {
                assert!(v.version > 0, "version 0");
            }
        }
    }
}

/// A backup file (`cairn restore`, `cairn restore --check`): outside input, from anywhere.
/// Input that starts like a backup is read as given; anything else is taken as the members'
/// region and a manifest (split at the first two bytes, little-endian) and framed with a
/// correct trailer, so the fuzzer reaches the manifest and member checks past the trailer's
/// BLAKE3, which random bytes never match. Promises: no panic; a manifest the reader accepts
/// holds only safe paths; a walk that succeeds saw every member start, end and byte; what
/// walks re-writes into a backup with the same manifest.
pub fn backup_container(data: &[u8]) {
    use cairn_core::backup::container::{self, Reader, Step, Writer};
    use std::io::Cursor;
    let framed;
    let bytes = if data.starts_with(container::MAGIC) {
        data
    } else {
        let (split, rest) = match data {
            [a, b, rest @ ..] => (
                usize::from(u16::from_le_bytes([*a, *b])).min(rest.len()),
                rest,
            ),
            _ => (0, data),
        };
        let (members, manifest) = rest.split_at(split);
        let mut f = container::MAGIC.to_vec();
        f.extend_from_slice(members);
        f.extend_from_slice(manifest);
        f.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
        f.extend_from_slice(blake3::hash(manifest).as_bytes());
        f.extend_from_slice(container::END);
        framed = f;
        &framed
    };
    let mut reader = match Reader::open(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let manifest = reader.manifest().clone();
    for m in &manifest.members {
        assert!(container::check_path(&m.path).is_ok(), "{}", m.path);
    }
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut ends = 0;
    let walked = reader.walk(&mut |step| {
        match step {
            Step::Start(m) => members.push((m.path.clone(), Vec::new())),
            Step::Bytes(b) => {
                if let Some(last) = members.last_mut() {
                    last.1.extend_from_slice(b);
                }
            }
            Step::End(_) => ends += 1,
        }
        Ok(())
    });
    match walked {
        Ok(()) => {
            assert_eq!(ends, manifest.members.len());
            let total: u64 = members.iter().map(|(_, b)| b.len() as u64).sum();
            assert_eq!(total, manifest.total_bytes());
            let mut w = Writer::new(Vec::new()).expect("a writer over memory");
            for (path, b) in &members {
                w.add(path, b.len() as u64, &mut &b[..], &mut |_| {})
                    .unwrap_or_else(|e| panic!("a member that read does not write: {e}"));
            }
            let (again, _) = w
                .finish(manifest.clone())
                .unwrap_or_else(|e| panic!("a manifest that read does not write: {e}"));
            let back = Reader::open(Cursor::new(&again))
                .unwrap_or_else(|e| panic!("a re-written backup does not read: {e}"));
            assert_eq!(back.manifest(), &manifest);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}
