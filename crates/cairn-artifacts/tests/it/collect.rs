//! Collecting blobs nothing references: the grace period that spares a blob a writer is about to
//! bind, storing content again refreshing it, purges, and what crashed writers left in `tmp/`.

use std::fs;
use std::time::{Duration, SystemTime};

use cairn_artifacts::Collected;

use crate::{blob_file, store};

const HOUR: Duration = Duration::from_secs(3600);

/// Makes a file look as if it was last written `ago`.
fn age(path: &std::path::Path, ago: Duration) {
    let f = fs::File::open(path).unwrap();
    f.set_modified(SystemTime::now() - ago).unwrap();
}

#[test]
fn a_blob_older_than_the_grace_period_is_collected_and_a_fresh_one_is_not() {
    let (_dir, store) = store();
    let old = store.put_bytes(b"an unbound old blob").unwrap();
    let fresh = store.put_bytes(b"just stored, not bound yet").unwrap();
    age(&blob_file(&store, &old.hash), 2 * HOUR);
    assert_eq!(
        store.collect(&old.hash, HOUR).unwrap(),
        Collected::Removed(19)
    );
    assert!(!store.contains(&old.hash));
    assert_eq!(store.collect(&fresh.hash, HOUR).unwrap(), Collected::Recent);
    assert!(store.contains(&fresh.hash));
    assert_eq!(store.collect(&old.hash, HOUR).unwrap(), Collected::Absent);
    assert_eq!(
        fs::read_dir(store.tmp_dir()).unwrap().count(),
        0,
        "nothing left aside"
    );
}

#[test]
fn storing_content_that_is_already_there_spares_it_from_the_collector() {
    // A writer storing content an old unbound blob already holds (a re-upload of a deleted
    // artifact), then binding it: the collector in between must not take it.
    let (dir, store) = store();
    let file = dir.path().join("model.bin");
    fs::write(&file, b"weights").unwrap();
    type PutFn<'a> = Box<dyn Fn() -> cairn_artifacts::Put + 'a>;
    let puts: [(&str, PutFn<'_>); 3] = [
        (
            "put_bytes",
            Box::new(|| store.put_bytes(b"weights").unwrap()),
        ),
        (
            "put_reader",
            Box::new(|| store.put_reader(&mut &b"weights"[..]).unwrap()),
        ),
        ("put_file", Box::new(|| store.put_file(&file).unwrap())),
    ];
    for (how, put) in puts {
        let first = put();
        age(&blob_file(&store, &first.hash), 2 * HOUR);
        let again = put();
        assert!(!again.new, "{how}");
        assert_eq!(
            store.collect(&first.hash, HOUR).unwrap(),
            Collected::Recent,
            "{how}: a blob stored again was collected"
        );
        assert_eq!(store.read(&first.hash).unwrap(), b"weights", "{how}");
    }
}

#[test]
fn a_verified_put_from_a_peer_refreshes_the_blob_too() {
    let (_dir, store) = store();
    let put = store.put_bytes(b"from a peer").unwrap();
    age(&blob_file(&store, &put.hash), 2 * HOUR);
    store.put_verified(&put.hash, b"from a peer").unwrap();
    assert_eq!(store.collect(&put.hash, HOUR).unwrap(), Collected::Recent);
}

#[test]
fn remove_deletes_at_once_whatever_its_age() {
    let (_dir, store) = store();
    let put = store.put_bytes(b"AWS_SECRET_ACCESS_KEY=...").unwrap();
    assert_eq!(store.remove(&put.hash).unwrap(), Some(25));
    assert!(!store.contains(&put.hash));
    assert_eq!(store.remove(&put.hash).unwrap(), None);
    // And content stored again after a removal is whole again.
    let again = store.put_bytes(b"AWS_SECRET_ACCESS_KEY=...").unwrap();
    assert!(again.new);
}

#[test]
fn the_tmp_sweep_removes_what_crashed_writers_left_and_puts_back_what_a_collector_moved() {
    let (_dir, store) = store();
    let tmp = store.tmp_dir();
    let stale = tmp.join("put-dead-writer");
    fs::write(&stale, vec![0u8; 1000]).unwrap();
    age(&stale, 2 * HOUR);
    let busy = tmp.join("fetch-live-writer");
    fs::write(&busy, b"arriving").unwrap();
    // A blob a crashed collector had moved aside, without deciding.
    let put = store.put_bytes(b"moved aside").unwrap();
    let aside = tmp.join(format!("gc-{}-1-0", put.hash.to_hex()));
    fs::rename(blob_file(&store, &put.hash), &aside).unwrap();
    age(&aside, 2 * HOUR);
    assert_eq!(store.sweep_tmp(HOUR, true).unwrap(), (1, 1000));
    assert!(stale.exists(), "a dry run removed something");
    assert_eq!(store.sweep_tmp(HOUR, false).unwrap(), (1, 1000));
    assert!(!stale.exists());
    assert!(busy.exists(), "a file being written was removed");
    assert_eq!(store.read(&put.hash).unwrap(), b"moved aside");
    assert!(!aside.exists());
}
