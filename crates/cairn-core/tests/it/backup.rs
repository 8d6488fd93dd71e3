//! Backup, restore and verify on real workspaces: a backup taken while another handle writes
//! holds every write acknowledged before it began; a damaged backup is refused naming the
//! member; a stopped restore changes nothing; verify finds injected faults and repair fixes the
//! derived one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::backup::{self, BackupOptions, Progress};
use cairn_core::{MetricPoint, NewRun, Workspace};
use cairn_model::RunId;

use crate::{start, workspace};

const POINTS: i64 = 40;

/// A run the writer created, logged and stored an artifact for, with that artifact's bytes.
type Acked = (RunId, Vec<u8>);

fn points(n: i64) -> Vec<MetricPoint> {
    (0..n)
        .map(|step| MetricPoint {
            step,
            ts_ms: 1_700_000_000_000 + step,
            value: step as f64 * 0.5,
        })
        .collect()
}

fn take_backup(dir: &Path, out: &Path) -> backup::BackupReport {
    backup::backup(dir, out, BackupOptions::default(), &mut |_| {}).expect("backup")
}

fn restore_into(file: &Path, dir: &Path) -> Result<backup::RestoreReport, cairn_core::Error> {
    backup::restore(file, dir, false, "carol", &mut |_| true)
}

#[test]
fn a_backup_taken_while_a_writer_logs_holds_every_acknowledged_write() {
    let (tmp, ws) = workspace();
    let dir = ws.dir().to_owned();
    start(&ws, "e", &[("lr", "0.1")]);
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Another handle, with its own connections, as `cairn serve` or a training job would be.
    let writer = {
        let (acked, stop, dir) = (acked.clone(), stop.clone(), PathBuf::from(&dir));
        std::thread::spawn(move || {
            let ws = Workspace::open(&dir, "bob").expect("open");
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let id = ws
                    .start_run(NewRun {
                        experiment_name: Some("live".into()),
                        ..Default::default()
                    })
                    .expect("start")
                    .id;
                ws.log_metric(id, "loss", &points(POINTS)).expect("log");
                let content = format!("weights of run {i}").into_bytes();
                ws.add_artifact_reader(id, "model.bin", &mut &content[..])
                    .expect("artifact");
                acked.lock().unwrap().push((id, content));
                i += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 3 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<Acked> = acked.lock().unwrap().clone();
    let file = tmp.path().join("ws.cairnbak");
    // With the key: this is the device moving (a solo workspace's audit chains verify only
    // against the device that signed them; see `without_the_key_the_restore_is_a_new_device`).
    let report = backup::backup(
        &dir,
        &file,
        BackupOptions { include_key: true },
        &mut |_| {},
    )
    .expect("backup");
    // Let the writer go on a little after the backup, then stop it.
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(report.databases.contains(&"catalog.db".to_owned()));
    assert!(report.blobs >= before.len() as u64, "{report:?}");
    assert!(report.includes_key);

    let target = tmp.path().join("restored");
    let restored = restore_into(&file, &target).expect("restore");
    assert_eq!(restored.workspace, report.workspace);
    let back = Workspace::open(&target, "carol").unwrap();
    for (id, content) in &before {
        let run = back.run(*id).expect("an acknowledged run is restored");
        assert_eq!(run.experiment_name, "live");
        let history = back.metric_history(*id, "loss").unwrap();
        assert_eq!(history, points(POINTS), "run {id}");
        assert_eq!(&back.read_artifact(*id, "model.bin").unwrap(), content);
    }
    // The restored search index was rebuilt: every restored run is found.
    let found = back
        .search(&cairn_core::SearchRequest {
            q: Some("exp:live".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(found.total >= before.len() as u64);
    assert_eq!(back.device_id().unwrap(), ws.device_id().unwrap());
    let v = back.verify().unwrap();
    assert!(v.ok, "{v:#?}");
    assert!(v.series as usize >= before.len() && v.blobs as usize >= before.len());
    // Runs the writer created after the catalog was copied may have left series behind: a
    // note, not a problem.
    assert!(v.orphan_series <= v.series);
    // The original, still written to by nobody now, verifies too.
    let v = ws.verify().unwrap();
    assert!(v.ok, "{v:#?}");
}

#[test]
fn without_the_key_the_restore_is_a_new_device() {
    let (tmp, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    let dir = ws.dir().to_owned();
    let file = tmp.path().join("b.cairnbak");
    let report = take_backup(&dir, &file);
    assert!(!report.includes_key);
    let m = backup::check_backup(&file, &mut |_| {}).unwrap();
    assert!(
        !m.members
            .iter()
            .any(|m| m.path == "device.key" || m.path == "sync.db")
    );
    let target = tmp.path().join("restored");
    restore_into(&file, &target).unwrap();
    let back = Workspace::open(&target, "carol").unwrap();
    assert_ne!(back.device_id().unwrap(), ws.device_id().unwrap());
    assert_eq!(back.run(id).unwrap().run.params["lr"], "0.1");
    // Everything verifies but the solo workspace's audit chain, signed by a device this one
    // is not: that is what a new identity means, and verify says so.
    let v = back.verify().unwrap();
    assert!(!v.problems.is_empty());
    for p in &v.problems {
        assert_eq!(p.area, "audit", "{v:#?}");
        assert!(p.detail.contains("unknown signer"), "{v:#?}");
    }
}

/// Where the bytes of `member` start in a backup file.
fn member_offset(file: &Path, member: &str) -> u64 {
    let reader = backup::container::Reader::open(std::fs::File::open(file).unwrap()).expect("open");
    let mut at = 8u64;
    for m in &reader.manifest().members {
        at += 2 + m.path.len() as u64 + 8;
        if m.path == member {
            return at;
        }
        at += m.size;
    }
    panic!("no member {member}");
}

#[test]
fn a_backup_with_a_flipped_byte_is_refused_naming_the_member() {
    let (tmp, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    ws.log_metric(id, "loss", &points(10)).unwrap();
    let dir = ws.dir().to_owned();
    let file = tmp.path().join("b.cairnbak");
    take_backup(&dir, &file);
    backup::check_backup(&file, &mut |_| {}).expect("a whole backup checks out");

    let mut bytes = std::fs::read(&file).unwrap();
    let at = member_offset(&file, "metrics.db") + 4000;
    bytes[at as usize] ^= 0x01;
    let bad = tmp.path().join("bad.cairnbak");
    std::fs::write(&bad, &bytes).unwrap();
    let target = tmp.path().join("never");
    let e = restore_into(&bad, &target).unwrap_err();
    assert_eq!(e.code(), cairn_core::Code::Corrupt);
    assert!(e.to_string().contains("member metrics.db"), "{e}");
    assert!(e.to_string().contains("damaged"), "{e}");
    assert!(!target.exists(), "nothing is written from a damaged backup");
    assert!(backup::check_backup(&bad, &mut |_| {}).is_err());

    // Cut short: the end marker is gone.
    let short = tmp.path().join("short.cairnbak");
    std::fs::write(&short, &bytes[..bytes.len() - 100]).unwrap();
    let e = restore_into(&short, &target).unwrap_err();
    assert!(e.to_string().contains("truncated"), "{e}");
    assert!(!target.exists());
}

#[test]
fn restore_refuses_a_non_empty_workspace_without_force_and_a_stopped_one_changes_nothing() {
    let (tmp, ws) = workspace();
    start(&ws, "e", &[("lr", "0.1")]);
    let dir = ws.dir().to_owned();
    let file = tmp.path().join("b.cairnbak");
    take_backup(&dir, &file);

    // The target: another workspace with a run of its own.
    let other = tmp.path().join("other");
    let ow = Workspace::create(&other, "dave").unwrap();
    let mine = start(&ow, "mine", &[]);
    let id_before = std::fs::read(other.join("workspace.json")).unwrap();
    drop(ow);
    let e = restore_into(&file, &other).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");

    // Stopped while writing (as if killed): the target is as it was, nothing left beside it.
    let mut writing = false;
    let e = backup::restore(&file, &other, true, "carol", &mut |p| {
        if p == Progress::Stage("writing") {
            writing = true;
        }
        !(writing && matches!(p, Progress::Bytes { done, .. } if done > 1000))
    })
    .unwrap_err();
    assert!(e.to_string().contains("stopped"), "{e}");
    assert_eq!(
        std::fs::read(other.join("workspace.json")).unwrap(),
        id_before
    );
    assert!(Workspace::open(&other, "dave").unwrap().run(mine).is_ok());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "staging left behind: {left:?}");

    // With --force it replaces the workspace whole.
    let r = backup::restore(&file, &other, true, "carol", &mut |_| true).unwrap();
    assert!(r.replaced);
    let back = Workspace::open(&other, "carol").unwrap();
    assert!(
        back.run(mine).is_err(),
        "the replaced workspace's run is gone"
    );
    assert_eq!(back.workspace_info().id, ws.workspace_info().id);
}

#[test]
fn verify_finds_a_damaged_blob_and_an_edited_projection_and_repair_fixes_the_derived_one() {
    let (_tmp, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    ws.log_metric(id, "loss", &points(10)).unwrap();
    ws.add_artifact_reader(id, "notes.txt", &mut &b"hello"[..])
        .unwrap();
    let dir = ws.dir().to_owned();
    let clean = ws.verify().unwrap();
    assert!(clean.ok, "{clean:#?}");
    assert!(clean.projection_rows > 0 && clean.docs >= 2 && clean.runs == 1);

    // A blob changed on disk behind the store's back.
    let hash = blake3::hash(b"hello").to_hex().to_string();
    let blob = dir.join("artifacts/blobs").join(&hash[..2]).join(&hash);
    make_writable(&blob);
    std::fs::write(&blob, b"hellO").unwrap();
    // A projection row edited behind the doc's back.
    let db = rusqlite::Connection::open(dir.join("catalog.db")).unwrap();
    let n = db
        .execute(
            "UPDATE run_params SET value = '9.9'
             WHERE key = (SELECT id FROM key_names WHERE key = 'lr')",
            [],
        )
        .unwrap();
    assert_eq!(n, 1);
    drop(db);

    let v = ws.verify().unwrap();
    assert!(!v.ok);
    assert!(
        v.problems
            .iter()
            .any(|p| p.area == "blob" && p.subject == hash),
        "{v:#?}"
    );
    assert!(
        v.problems
            .iter()
            .any(|p| p.area == "projection" && p.subject.starts_with("params (")),
        "{v:#?}"
    );

    let r = ws.repair().unwrap();
    assert!(
        r.repaired.iter().any(|w| w.starts_with("projections")),
        "{r:#?}"
    );
    assert!(
        r.repaired.iter().any(|w| w.starts_with("search index")),
        "{r:#?}"
    );
    assert!(!r.problems.iter().any(|p| p.area == "projection"), "{r:#?}");
    // The source of truth is reported, never "repaired".
    assert!(r.problems.iter().any(|p| p.area == "blob"), "{r:#?}");
    assert!(!r.ok);
    assert_eq!(ws.run(id).unwrap().run.params["lr"], "0.1");
}

#[cfg(unix)]
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[cfg(not(unix))]
fn make_writable(path: &Path) {
    let mut p = std::fs::metadata(path).unwrap().permissions();
    p.set_readonly(false);
    std::fs::set_permissions(path, p).unwrap();
}
