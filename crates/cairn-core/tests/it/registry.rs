//! The model registry as records: content pinning, locked artifact paths, numbering across
//! peers that registered offline, alias conflicts, tombstones, and the migration of the format
//! before records.

use std::collections::BTreeMap;

use cairn_core::{Code, Workspace};
use cairn_model::RunId;

use super::{start, workspace};

/// Two workspaces' stores synced once over an in-memory stream, as peers do.
pub(crate) fn sync(a: &Workspace, b: &Workspace) {
    use cairn_sync::{Link, SharedStores, StorePaths, Stores, run_session};
    let open = |ws: &Workspace| {
        SharedStores::new(
            Stores::open(&StorePaths::in_workspace(ws.dir()), ws.user()).expect("sync stores"),
        )
    };
    let (sa, sb) = (open(a), open(b));
    let (na, nb) = (a.device_id().unwrap(), b.device_id().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (x, y) = tokio::io::duplex(64 * 1024);
        let (xr, xw) = tokio::io::split(x);
        let (yr, yw) = tokio::io::split(y);
        let (ra, rb) = tokio::join!(
            run_session(&sa, &nb, Link::new(xr, xw)),
            run_session(&sb, &na, Link::new(yr, yw)),
        );
        ra.expect("session a");
        rb.expect("session b");
    });
}

/// A second workspace (another device, another person).
pub(crate) fn peer(dir: &tempfile::TempDir, name: &str, user: &str) -> Workspace {
    Workspace::create(&dir.path().join(name), user).expect("create a peer workspace")
}

/// A run whose `model/` holds two files uploaded one by one, as MLflow clients do.
pub(crate) fn trained(ws: &Workspace, weights: &[u8]) -> RunId {
    let run = start(ws, "train", &[]);
    ws.add_artifact_reader(run, "model/MLmodel", &mut &b"flavors: {}\n"[..])
        .unwrap();
    ws.add_artifact_reader(run, "model/weights.bin", &mut &weights[..])
        .unwrap();
    run
}

pub(crate) fn register(ws: &Workspace, name: &str, run: RunId) -> cairn_model::ModelVersion {
    if ws.registered_model(name).is_err() {
        ws.create_registered_model(name, None, BTreeMap::new())
            .unwrap();
    }
    ws.create_model_version(
        name,
        &format!("runs:/{run}/model"),
        Some(run),
        None,
        BTreeMap::new(),
    )
    .unwrap()
}

#[test]
fn a_version_is_pinned_to_its_content_and_its_path_is_locked_in_every_way_in() {
    let (dir, ws) = workspace();
    let run = trained(&ws, b"weights v1");
    let v = register(&ws, "churn", run);
    assert_eq!(v.version, 1);
    assert_eq!(v.path.as_deref(), Some("model"));
    let content = v.content.expect("pinned to a content hash");

    // Every way of writing or deleting the locked path is refused, naming the version.
    let refused = |e: cairn_core::Error| {
        assert_eq!(e.code(), Code::Conflict, "{e}");
        let msg = e.to_string();
        assert!(msg.contains("'churn' version 1"), "{msg}");
    };
    refused(
        ws.add_artifact_reader(run, "model/weights.bin", &mut &b"rewritten"[..])
            .unwrap_err(),
    );
    refused(
        ws.add_artifact_reader(run, "model/extra.bin", &mut &b"added"[..])
            .unwrap_err(),
    );
    refused(ws.artifact_upload(run, "model/MLmodel").unwrap_err());
    refused(ws.delete_artifact(run, "model/MLmodel").unwrap_err());
    refused(ws.delete_artifact(run, "model").unwrap_err());
    refused(ws.delete_artifact(run, "").unwrap_err());
    let src = dir.path().join("weights.bin");
    std::fs::write(&src, b"from disk").unwrap();
    refused(
        ws.add_artifact(run, &src, Some("model/weights.bin"))
            .unwrap_err(),
    );
    // Other paths of the run are not locked.
    ws.add_artifact_reader(run, "eval/report.txt", &mut &b"ok"[..])
        .unwrap();
    ws.add_artifact_reader(run, "modelling-notes.txt", &mut &b"not under model/"[..])
        .unwrap();
    assert_eq!(
        ws.read_artifact(run, "model/weights.bin").unwrap(),
        b"weights v1"
    );

    // A download reads the pinned content by its hash.
    let out = dir.path().join("dl");
    ws.download_model_version("churn", 1, &out).unwrap();
    assert_eq!(
        std::fs::read(out.join("weights.bin")).unwrap(),
        b"weights v1"
    );
    assert_eq!(
        std::fs::read(out.join("MLmodel")).unwrap(),
        b"flavors: {}\n"
    );
    let listed = ws.registered_content_entries(&content, "").unwrap();
    assert_eq!(
        listed.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["MLmodel", "weights.bin"]
    );

    // Deleting the version is a tombstone; the path is unlocked, the content stays pinned.
    ws.delete_model_version("churn", 1, "trained on the wrong split")
        .unwrap();
    let m = ws.registered_model("churn").unwrap();
    let d = m.version(1).unwrap().deleted.as_ref().expect("a tombstone");
    assert_eq!(
        (d.user.as_str(), d.reason.as_str()),
        ("alice", "trained on the wrong split")
    );
    assert_eq!(
        ws.model_version("churn", 1).unwrap_err().code(),
        Code::NotFound
    );
    ws.add_artifact_reader(run, "model/weights.bin", &mut &b"retrained"[..])
        .unwrap();
    // The number stays taken.
    assert_eq!(register(&ws, "churn", run).version, 2);
}

#[test]
fn a_directory_artifact_and_a_single_file_register_as_they_are() {
    let (dir, ws) = workspace();
    let run = start(&ws, "train", &[]);
    let model = dir.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("a.bin"), b"a").unwrap();
    let (_, dir_ref, _) = ws.add_artifact(run, &model, Some("model")).unwrap();
    ws.add_artifact_reader(run, "best.ckpt", &mut &b"ckpt"[..])
        .unwrap();
    let v = register(&ws, "dir", run);
    assert_eq!(
        v.content,
        Some(dir_ref.hash),
        "a directory artifact's own manifest"
    );
    ws.create_registered_model("file", None, BTreeMap::new())
        .unwrap();
    let f = ws
        .create_model_version(
            "file",
            &format!("runs:/{run}/best.ckpt"),
            Some(run),
            None,
            BTreeMap::new(),
        )
        .unwrap();
    assert_eq!(f.content_kind, Some(cairn_model::ArtifactKind::File));
    assert!(ws.delete_artifact(run, "best.ckpt").is_err());
    let out = dir.path().join("f.ckpt");
    ws.download_model_version("file", 1, &out).unwrap();
    assert_eq!(std::fs::read(out).unwrap(), b"ckpt");
    // Nothing at the path: refused, naming it.
    let e = ws
        .create_model_version(
            "file",
            &format!("runs:/{run}/nothing"),
            Some(run),
            None,
            BTreeMap::new(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("nothing"), "{e}");
}

#[test]
fn deleting_a_model_is_a_tombstone_and_a_new_model_of_that_name_starts_at_one() {
    let (_dir, ws) = workspace();
    let run = trained(&ws, b"w");
    register(&ws, "m", run);
    register(&ws, "m", run);
    ws.delete_registered_model("m", "retired").unwrap();
    assert_eq!(ws.registered_model("m").unwrap_err().code(), Code::NotFound);
    assert!(ws.registered_models().unwrap().is_empty());
    // The deleted versions no longer lock the run's path.
    ws.add_artifact_reader(run, "model/weights.bin", &mut &b"w2"[..])
        .unwrap();
    assert_eq!(register(&ws, "m", run).version, 1);
}

#[test]
fn peers_registering_offline_keep_every_version_with_stable_distinct_numbers() {
    let (dir, ada) = workspace();
    let bob = peer(&dir, "bob", "bob");
    let run = trained(&ada, b"base");
    register(&ada, "churn", run);
    register(&ada, "churn", run);
    sync(&ada, &bob);
    assert_eq!(bob.registered_model("churn").unwrap().versions.len(), 2);

    // Offline: both register "version 3"; Bob registers a 4th too; each points @champion at
    // its own newest.
    let ra = trained(&ada, b"ada's");
    let a3 = register(&ada, "churn", ra);
    std::thread::sleep(std::time::Duration::from_millis(3));
    let rb = trained(&bob, b"bob's");
    let b3 = register(&bob, "churn", rb);
    let b4 = register(&bob, "churn", rb);
    assert_eq!((a3.version, b3.version, b4.version), (3, 3, 4));
    ada.set_model_alias("churn", "champion", 3, Some("ada's pick"))
        .unwrap();
    bob.set_model_alias("churn", "champion", 4, Some("bob's pick"))
        .unwrap();

    sync(&ada, &bob);
    let numbers = |ws: &Workspace| {
        ws.registered_model("churn")
            .unwrap()
            .versions
            .iter()
            .map(|v| (v.id, v.version))
            .collect::<BTreeMap<_, _>>()
    };
    let on_ada = numbers(&ada);
    assert_eq!(on_ada, numbers(&bob), "every peer numbers alike");
    assert_eq!(on_ada.len(), 5, "no version lost");
    // The earlier claim of 3 keeps it; the later one takes the lowest number nobody claims;
    // 4 was unique.
    assert_eq!(on_ada[&a3.id], 3);
    assert_eq!(on_ada[&b4.id], 4);
    assert_eq!(on_ada[&b3.id], 5);
    // Nobody's content was mixed up.
    let out = dir.path().join("b3");
    ada.download_model_version("churn", 5, &out).unwrap();
    assert_eq!(std::fs::read(out.join("weights.bin")).unwrap(), b"bob's");

    // The concurrent alias moves are both kept, shown as a conflict on both peers.
    for ws in [&ada, &bob] {
        let m = ws.registered_model("churn").unwrap();
        let champion = m.alias("champion").unwrap();
        assert!(champion.in_conflict());
        assert_eq!(
            champion
                .targets
                .iter()
                .map(|t| t.number)
                .collect::<Vec<_>>(),
            [3, 4]
        );
        let e = ws.model_version_by_alias("churn", "champion").unwrap_err();
        assert_eq!(e.code(), Code::Conflict);
        assert!(e.to_string().contains("versions 3 and 4"), "{e}");
    }

    // A later move settles it everywhere; the numbers never moved again.
    bob.set_model_alias("churn", "champion", 5, Some("settled"))
        .unwrap();
    let next = register(&ada, "churn", ra);
    assert_eq!(
        next.version, 6,
        "a new claim goes above every number in use"
    );
    sync(&ada, &bob);
    sync(&bob, &ada);
    for ws in [&ada, &bob] {
        let m = ws.registered_model("churn").unwrap();
        let champion = m.alias("champion").unwrap();
        assert!(!champion.in_conflict());
        assert_eq!(champion.holder().unwrap().number, 5);
        assert_eq!(
            ws.model_version_by_alias("churn", "champion").unwrap().id,
            b3.id
        );
    }
    let mut after = on_ada.clone();
    after.insert(next.id, 6);
    assert_eq!(numbers(&ada), after);
    assert_eq!(numbers(&bob), after);
}

#[test]
fn a_model_deleted_on_one_peer_while_another_registered_keeps_the_new_version() {
    let (dir, ada) = workspace();
    let bob = peer(&dir, "bob", "bob");
    let run = trained(&ada, b"w");
    register(&ada, "m", run);
    sync(&ada, &bob);
    ada.delete_registered_model("m", "retired").unwrap();
    let rb = trained(&bob, b"bob");
    let kept = register(&bob, "m", rb);
    sync(&ada, &bob);
    for ws in [&ada, &bob] {
        let m = ws.registered_model("m").unwrap();
        assert_eq!(
            m.live_versions().map(|v| v.id).collect::<Vec<_>>(),
            [kept.id],
            "the tombstone covers what its writer saw, not a concurrent version"
        );
    }
}

#[test]
fn the_format_before_records_migrates_with_its_numbers_aliases_and_content() {
    let (dir, ws) = workspace();
    let run = trained(&ws, b"old weights");
    let path = ws.dir().to_owned();
    // What the registry wrote before records: one JSON value per model, version 2 deleted
    // by the old last-writer-wins code (numbers 1 and 3 remain).
    let content = ws.run(run).unwrap().run.artifacts["model/weights.bin"].hash;
    let legacy = serde_json::json!({
        "name": "churn",
        "description": "predicts churn",
        "tags": {"team": "growth"},
        "created_ms": 1_700_000_000_000i64,
        "updated_ms": 1_700_000_100_000i64,
        "aliases": {"champion": 3},
        "versions": [
            {"version": 1, "source": format!("runs:/{run}/model/weights.bin"), "run": run.to_string(),
             "content": content.to_string(), "created_ms": 1_700_000_000_001i64, "user": "ada"},
            {"version": 3, "source": "s3://bucket/churn/3", "created_ms": 1_700_000_050_000i64,
             "description": "from s3", "tags": {"k": "v"}},
        ],
    });
    drop(ws);
    {
        let mut cat = cairn_catalog::Catalog::open(&path.join("catalog.db"), "old").unwrap();
        cat.put_team_entry("model/churn", Some(&legacy.to_string()))
            .unwrap();
    }
    let ws = Workspace::open(&path, "alice").unwrap();
    let m = ws.registered_model("churn").unwrap();
    assert_eq!(m.description.as_deref(), Some("predicts churn"));
    assert_eq!(m.tags["team"], "growth");
    assert_eq!(
        m.versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 3],
        "numbers kept"
    );
    let v1 = m.version(1).unwrap();
    assert_eq!(
        (v1.content, v1.run, v1.user.as_str()),
        (Some(content), Some(run), "ada")
    );
    assert_eq!(v1.path.as_deref(), Some("model/weights.bin"));
    assert_eq!(m.version(3).unwrap().tags["k"], "v");
    assert_eq!(
        ws.model_version_by_alias("churn", "champion")
            .unwrap()
            .version,
        3
    );
    // The old entry is gone, its path locked, and opening again changes nothing.
    let mut cat = cairn_catalog::Catalog::open(&path.join("catalog.db"), "check").unwrap();
    assert_eq!(cat.team_entry("model/churn").unwrap(), None);
    assert!(ws.delete_artifact(run, "model/weights.bin").is_err());
    drop(ws);
    let ws = Workspace::open(&path, "alice").unwrap();
    assert_eq!(ws.registered_model("churn").unwrap(), m);
    assert_eq!(register(&ws, "churn", trained(&ws, b"new")).version, 4);

    // A peer migrating the same old entry writes the same records: nothing doubles.
    let other = peer(&dir, "other", "bob");
    let other_path = other.dir().to_owned();
    drop(other);
    {
        let mut cat = cairn_catalog::Catalog::open(&other_path.join("catalog.db"), "old").unwrap();
        cat.put_team_entry("model/churn", Some(&legacy.to_string()))
            .unwrap();
    }
    let other = Workspace::open(&other_path, "bob").unwrap();
    sync(&ws, &other);
    let merged = other.registered_model("churn").unwrap();
    assert_eq!(
        merged
            .versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [1, 3, 4]
    );
}
