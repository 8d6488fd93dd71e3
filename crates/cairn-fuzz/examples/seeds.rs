//! Writes the binary seed inputs of the sync, chunk and manifest targets from a real session:
//! a workspace with demo runs, a sealed metric chunk, a file and a directory artifact and a trace
//! syncs to a fresh device (built as `cairn_fuzz::sync_session` builds it) while a relay
//! records what the fresh device receives. Run it after a wire-format change:
//!
//! ```text
//! cargo run -p cairn-fuzz --example seeds -- fuzz/corpus
//! cargo run -p cairn-fuzz --example seeds -- fuzz/corpus audit   # the audit targets' only
//! cargo run -p cairn-fuzz --example seeds -- fuzz/corpus tfevents   # the event files' only
//! ```
//!
//! The text targets' seeds (queries, MLflow bodies, CSV, nvidia-smi captures) were taken from
//! the tests and the GPU-box fixtures once; they do not go stale with a format.

use std::path::Path;

use anyhow::{Context, Result};
use cairn_artifacts::{ArtifactStore, Manifest};
use cairn_catalog::Catalog;
use cairn_core::{DemoOptions, MetricPoint as Point, NewRun, Workspace};
use cairn_metrics::MetricStore;
use cairn_sync::ledger::Ledger;
use cairn_sync::wire::{Msg, read_frame};
use cairn_sync::{Link, SharedStores, StorePaths, Stores, run_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let out = std::env::args()
        .nth(1)
        .context("usage: seeds CORPUS_DIR (fuzz/corpus)")?;
    let out = Path::new(&out);
    let work = tempfile::tempdir()?;
    tfevents_seeds(out)?;
    backup_seeds(out)?;
    if std::env::args().nth(2).as_deref() == Some("tfevents") {
        return Ok(());
    }
    audit_seeds(out, work.path())?;
    if std::env::args().nth(2).as_deref() == Some("audit") {
        return Ok(());
    }

    // A workspace with some of everything a peer sends: demo runs (params, tags, lineage,
    // metrics sealed when the runs ended), a file and a directory artifact.
    let ws_dir = work.path().join("ws");
    let ws = Workspace::create(&ws_dir, "alice")?;
    ws.generate_demo(
        &DemoOptions {
            runs: 2,
            steps: Some(8),
            seed: 3,
        },
        &mut |_, _| {},
    )?;
    let run = ws.start_run(NewRun {
        name: Some("artifacts".into()),
        ..Default::default()
    })?;
    let file = work.path().join("model.bin");
    std::fs::write(&file, b"weights")?;
    ws.add_artifact(run.id, &file, None)?;
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub"))?;
    std::fs::write(tree.join("a.txt"), b"a")?;
    std::fs::write(tree.join("sub/b.txt"), b"bb")?;
    ws.add_artifact(run.id, &tree, Some("tree"))?;
    // A live series (tail rows, sent as points).
    let points: Vec<Point> = (0..30)
        .map(|i| Point {
            step: i,
            ts_ms: 1_700_000_000_000 + i * 100,
            value: 1.0 / (1.0 + i as f64),
        })
        .collect();
    ws.log_metrics(run.id, &[("loss", &points)])?;
    // A trace of the run (entries of a trace log, sent in the trace phase).
    let span = |id: u8, parent: Option<u8>, name: &str| cairn_traces::Span {
        trace_id: [7; 16],
        span_id: [id; 8],
        parent_id: parent.map(|p| [p; 8]),
        name: name.into(),
        start_ns: 1_700_000_000_000_000_000 + u64::from(id) * 1000,
        end_ns: 1_700_000_000_000_500_000,
        attributes: vec![(
            "mlflow.spanInputs".into(),
            cairn_traces::Value::Str("{\"q\": \"hi\"}".into()),
        )],
        ..cairn_traces::Span::default()
    };
    let body = cairn_traces::otlp::encode(&[cairn_traces::otlp::ResourceSpans {
        resource: vec![(
            "service.name".into(),
            cairn_traces::Value::Str("seeds".into()),
        )],
        spans: vec![span(1, None, "agent"), span(2, Some(1), "llm")],
    }]);
    let exp = ws.run(run.id)?.run.experiment.to_string();
    ws.ingest_otlp(
        &exp,
        Some(&run.id.to_string()),
        &body,
        cairn_core::traces::OtlpFormat::Protobuf,
        None,
        &cairn_core::traces::OtlpLimits::default(),
    )?;
    drop(ws);
    let stream = record(&ws_dir, &work.path().join("fresh-1")).await?;
    write(out, "sync_session", "joiner", &stream)?;
    let frames = split_frames(&stream).await?;
    let mut records = Vec::new();
    let mut shards: Vec<String> = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        if let Msg::Doc {
            name,
            msg: Some(msg),
        } = Msg::decode(frame)?
        {
            // The team doc is selector 0; shards take 1, 2, 3 in the order they come.
            let selector = if name == Catalog::team_doc_name() {
                0
            } else {
                let at = shards.iter().position(|s| *s == name).unwrap_or_else(|| {
                    shards.push(name.clone());
                    shards.len() - 1
                });
                1 + (at % 3) as u8
            };
            if let Ok(len) = u16::try_from(msg.len()) {
                records.push(selector);
                records.extend_from_slice(&len.to_be_bytes());
                records.extend_from_slice(&msg);
            }
        }
        if frame.len() <= 4096 {
            write(out, "sync_frame", &format!("frame-{i}"), frame)?;
        }
    }
    write(out, "catalog_sync", "joiner-docs", &records)?;
    // A short stream of frames as the wire carries them.
    let head: usize = frames.iter().take(3).map(|f| 4 + f.len()).sum();
    write(
        out,
        "sync_frame",
        "stream-head",
        &stream[..head.min(stream.len())],
    )?;

    // Each doc's content as JSON, for the peer-chosen doc target.
    let mut catalog = Catalog::open(&ws_dir.join("catalog.db"), "seeds")?;
    let mut shard = 0u8;
    for name in catalog.doc_names()? {
        let doc = automerge::AutoCommit::load(&catalog.export_doc(&name)?)?;
        let selector = if name == Catalog::team_doc_name() {
            0
        } else {
            shard += 1;
            shard
        };
        let mut seed = vec![selector];
        seed.extend(serde_json::to_vec(&to_json(&doc, &automerge::ROOT))?);
        write(out, "peer_doc", &format!("doc-{selector}"), &seed)?;
    }

    let store = ArtifactStore::open(&ws_dir.join("artifacts"))?;
    for (hash, _) in store.list()? {
        let bytes = store.read(&hash)?;
        if Manifest::from_bytes(&hash, &bytes).is_ok() {
            write(out, "manifest", &format!("tree-{hash}"), &bytes)?;
        }
    }

    // Sealed chunks as peers send them: float32-exact values (the 32-bit mode) with NaN and
    // infinities, and float64 values, each long enough to be sealed on append.
    let long_dir = work.path().join("long");
    let ws = Workspace::create(&long_dir, "bob")?;
    let run = ws.start_run(NewRun {
        name: Some("long".into()),
        ..Default::default()
    })?;
    let f32_points: Vec<Point> = (0..1100)
        .map(|i| Point {
            step: i * 10,
            ts_ms: 1_700_000_000_000 + i * 250,
            value: match i % 300 {
                7 => f64::NAN,
                8 => f64::INFINITY,
                _ => f64::from((i as f32).sqrt()),
            },
        })
        .collect();
    let f64_points: Vec<Point> = (0..1030)
        .map(|i| Point {
            step: 1000 - i,
            ts_ms: 1_700_000_000_000 + i * i,
            value: (i as f64).ln_1p() / 3.0,
        })
        .collect();
    ws.log_metrics(run.id, &[("f32", &f32_points), ("f64", &f64_points)])?;
    ws.set_status(run.id, cairn_model::RunStatus::Finished, None)?;
    drop(ws);
    let stream = record(&long_dir, &work.path().join("fresh-2")).await?;
    for (i, frame) in split_frames(&stream).await?.iter().enumerate() {
        if let Msg::Chunk { key, data, .. } = Msg::decode(frame)? {
            write(out, "metric_chunk", &format!("{key}-{i}"), &data)?;
        }
    }
    Ok(())
}

/// Syncs the workspace at `stocked` to a fresh device (its files under `fresh`) and returns the
/// bytes the fresh device received.
async fn record(stocked: &Path, fresh: &Path) -> Result<Vec<u8>> {
    let stocked = SharedStores::new(Stores::open(&StorePaths::in_workspace(stocked), "alice")?);
    let fresh = SharedStores::new(Stores {
        catalog: Catalog::open_in_memory("fuzz")?,
        metrics: MetricStore::open_in_memory()?,
        traces: cairn_traces::TraceStore::open_in_memory()?,
        audit: cairn_audit::AuditStore::open_in_memory()?,
        artifacts: ArtifactStore::open(&fresh.join("artifacts"))?,
        ledger: Ledger::open(&fresh.join("sync.db"))?,
        manifests: Default::default(),
    });
    // stocked → relay (records) → fresh; fresh → stocked directly.
    let (to_relay, mut relay_in) = tokio::io::duplex(1 << 20);
    let (mut relay_out, to_fresh) = tokio::io::duplex(1 << 20);
    let (from_fresh, to_stocked) = tokio::io::duplex(1 << 20);
    let relay = tokio::spawn(async move {
        let mut recorded = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = relay_in.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            recorded.extend_from_slice(&buf[..n]);
            relay_out.write_all(&buf[..n]).await?;
        }
        relay_out.shutdown().await?;
        Ok::<_, std::io::Error>(recorded)
    });
    let (a, b) = tokio::join!(
        run_session(&stocked, "fresh", Link::new(to_stocked, to_relay)),
        run_session(&fresh, "alice", Link::new(to_fresh, from_fresh)),
    );
    a?;
    anyhow::ensure!(b?.changed(), "the fresh side received nothing");
    Ok(relay.await??)
}

/// An automerge object as JSON (maps as objects, lists as arrays, text as a string).
fn to_json(doc: &automerge::AutoCommit, obj: &automerge::ObjId) -> serde_json::Value {
    use automerge::{ObjType, ReadDoc, ScalarValue, Value};
    let value = |v: Value<'_>, id: automerge::ObjId| match v {
        Value::Object(ObjType::Map | ObjType::Table | ObjType::List) => to_json(doc, &id),
        Value::Object(ObjType::Text) => doc.text(&id).unwrap_or_default().into(),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(t) => t.to_string().into(),
            ScalarValue::Int(i) | ScalarValue::Timestamp(i) => (*i).into(),
            ScalarValue::Uint(u) => (*u).into(),
            ScalarValue::F64(f) => {
                serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
            }
            ScalarValue::Boolean(b) => (*b).into(),
            _ => serde_json::Value::Null,
        },
    };
    match doc.object_type(obj) {
        Ok(ObjType::List) => (0..doc.length(obj))
            .filter_map(|i| doc.get(obj, i).ok().flatten())
            .map(|(v, id)| value(v, id))
            .collect(),
        _ => doc
            .keys(obj)
            .filter_map(|k| Some((k.clone(), doc.get(obj, k.as_str()).ok().flatten()?)))
            .map(|(k, (v, id))| (k, value(v, id)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    }
}

async fn split_frames(stream: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some(frame) = read_frame(&mut rest).await? {
        frames.push(frame);
    }
    Ok(frames)
}

/// The `tfevents` seeds: the GPU box's real event files (PyTorch's scalars and `add_hparams`)
/// and one of the writer's making with every other kind an import reads (TF2 tensor scalars with
/// the plugin named once, text, a failed session end).
fn tfevents_seeds(out: &Path) -> Result<()> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gpu-box");
    for name in ["train", "hparams"] {
        let path = fixtures.join(format!("{name}.tfevents"));
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        write(out, "tfevents", &format!("gpu-box-{name}"), &bytes)?;
    }
    use cairn_tensorboard::{HParamValue, SessionStatus, write::EventFile};
    let mut f = EventFile::new(1_795_752_388.0);
    f.hparams_start(
        1_795_752_388.0,
        &[
            ("lr", HParamValue::Number(1e-3)),
            ("opt", HParamValue::Text("sgd".into())),
            ("amp", HParamValue::Bool(true)),
        ],
    );
    for step in 0..4 {
        let t = 1_795_752_389.0 + f64::from(step);
        f.scalar(t, i64::from(step), "train/loss", 1.0 / (step + 1) as f32);
        f.tensor_scalar(t, i64::from(step), "val/acc", 0.2 * step as f32, step == 0);
    }
    f.text(1_795_752_394.0, 3, "notes", "diverged after **step 3**");
    f.hparams_end(1_795_752_395.0, SessionStatus::Failure);
    write(out, "tfevents", "written-tf2-text-hparams", f.bytes())
}

/// The backup container's seeds: small backups written by the product's writer, as files
/// (`seed-file-*`) and in the target's framed form (two bytes of split, the members, the
/// manifest: `seed-framed-*`), so mutations reach the manifest and member checks.
fn backup_seeds(out: &Path) -> Result<()> {
    use cairn_core::backup::container::{FORMAT, MAGIC, Manifest, Writer};
    /// A member: its path and bytes.
    type Member<'a> = (&'a str, &'a [u8]);
    let sets: [(&str, &[Member<'_>]); 2] = [
        (
            "two",
            &[
                ("workspace.json", b"{\"format\":1}"),
                ("catalog.db", b"SQLite format 3\0"),
            ],
        ),
        (
            "blob",
            &[
                ("workspace.json", b"{}"),
                ("artifacts/blobs/ab/ab01", b""),
                ("device.key", &[7; 32]),
            ],
        ),
    ];
    for (name, members) in sets {
        let mut w = Writer::new(Vec::new())?;
        for (path, bytes) in members {
            w.add(path, bytes.len() as u64, &mut &bytes[..], &mut |_| {})?;
        }
        let (file, _) = w.finish(Manifest {
            format: FORMAT,
            created_ms: 1_795_752_388_000,
            workspace: "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b".into(),
            cairn: "0.1.0".into(),
            includes_key: name == "blob",
            members: Vec::new(),
        })?;
        write(out, "backup_container", &format!("file-{name}"), &file)?;
        // Framed: the bytes between the magic and the manifest, then the manifest.
        let mlen = u64::from_le_bytes(file[file.len() - 48..file.len() - 40].try_into()?) as usize;
        let members_end = file.len() - 48 - mlen;
        let region = &file[MAGIC.len()..members_end];
        let mut framed = u16::try_from(region.len())?.to_le_bytes().to_vec();
        framed.extend_from_slice(region);
        framed.extend_from_slice(&file[members_end..file.len() - 48]);
        write(out, "backup_container", &format!("framed-{name}"), &framed)?;
    }
    Ok(())
}

fn write(out: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = out.join(target);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("seed-{name}"));
    std::fs::write(&path, bytes).with_context(|| path.display().to_string())?;
    Ok(())
}

/// The audit targets' seeds: a workspace whose model version went through registration, an
/// approval-free promotion and a deployment, exported as a JSONL and an HTML bundle
/// (`audit_bundle`), and its chain as the rows of an `audit.db` (`audit_store`).
fn audit_seeds(out: &Path, work: &Path) -> Result<()> {
    let ws = Workspace::create(&work.join("audited"), "alice")?;
    let run = ws.start_run(NewRun {
        name: Some("trained".into()),
        ..Default::default()
    })?;
    ws.add_artifact_reader(run.id, "model/weights.bin", &mut &b"weights"[..])?;
    ws.create_registered_model("churn", None, Default::default())?;
    ws.create_model_version(
        "churn",
        &format!("runs:/{}/model", run.id),
        Some(run.id),
        None,
        Default::default(),
    )?;
    ws.promote("churn", 1, "champion", Some("best on val"))?;
    ws.deploy(
        "churn",
        None,
        Some("champion"),
        "prod-eu",
        "beats the baseline",
    )?;
    for (format, name) in [
        (cairn_core::audit::AuditFormat::Jsonl, "jsonl"),
        (cairn_core::audit::AuditFormat::Html, "html"),
    ] {
        let file = work.join(format!("bundle.{name}"));
        ws.audit_export(format, &file)?;
        write(out, "audit_bundle", name, &std::fs::read(&file)?)?;
    }
    let store = cairn_audit::AuditStore::open(&work.join("audited/audit.db"))?;
    let mut rows = String::new();
    for device in store.devices()? {
        for e in store.chain(&device, 0, 1_000)? {
            let cols = [
                e.device.clone(),
                e.seq.to_string(),
                e.prev.clone(),
                e.at_ms.to_string(),
                e.member.clone(),
                e.kind.clone(),
                serde_json::to_string(&e.subjects)?,
                serde_json::to_string(&e.fields)?,
                e.signature.clone(),
            ];
            // Tabs and newlines inside a value would split it (JSON escapes them anyway).
            let cols: Vec<String> = cols.iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
            rows.push_str(&cols.join("\t"));
            rows.push('\n');
        }
    }
    write(out, "audit_store", "chain", rows.as_bytes())?;
    Ok(())
}
