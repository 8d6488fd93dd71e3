//! Directory trees: put_dir/restore_dir round trips, deterministic tree hashes, and manifests
//! that try to write outside the restore directory.

use std::fs;
use std::path::Path;

use cairn_artifacts::{Error, Manifest, ManifestEntry, digest_path};

use crate::{files_under, store};

/// A small model-output tree: nested dirs, an empty file, a file bigger than one read buffer.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("checkpoints/epoch-1")).unwrap();
    fs::create_dir_all(root.join("eval/plots")).unwrap();
    fs::create_dir_all(root.join("empty-dir")).unwrap();
    fs::write(root.join("config.json"), br#"{"lr":0.0003}"#).unwrap();
    fs::write(
        root.join("checkpoints/epoch-1/model.bin"),
        vec![3u8; 150_000],
    )
    .unwrap();
    fs::write(root.join("checkpoints/latest.txt"), b"epoch-1").unwrap();
    fs::write(root.join("eval/report.html"), b"<h1>ok</h1>").unwrap();
    fs::write(root.join("eval/plots/.keep"), b"").unwrap();
}

#[test]
fn put_dir_then_restore_dir_recreates_the_tree() {
    let (dir, store) = store();
    let src = dir.path().join("src");
    make_tree(&src);
    let put = store.put_dir(&src).unwrap();
    assert_eq!(put.files, 5);
    assert_eq!(put.total_size, 13 + 150_000 + 7 + 11);
    assert!(put.skipped.is_empty());

    let manifest = store.manifest(&put.hash).unwrap();
    let paths: Vec<&str> = manifest.entries.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "checkpoints/epoch-1/model.bin",
            "checkpoints/latest.txt",
            "config.json",
            "eval/plots/.keep",
            "eval/report.html"
        ]
    );

    let out = dir.path().join("restored");
    assert_eq!(store.restore_dir(&put.hash, &out).unwrap(), put.total_size);
    assert_eq!(files_under(&out), files_under(&src));
    assert!(
        !out.join("empty-dir").exists(),
        "empty directories are not part of a stored tree"
    );

    // Restoring again over the same, non-empty directory is refused and leaves it as it was:
    // a restore never mixes into (or deletes) what is already there.
    let err = store.restore_dir(&put.hash, &out).unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(files_under(&out), files_under(&src));
    // An empty directory is a fine destination.
    let empty = dir.path().join("empty-target");
    std::fs::create_dir(&empty).unwrap();
    store.restore_dir(&put.hash, &empty).unwrap();
    assert_eq!(files_under(&empty), files_under(&src));
}

#[test]
fn equal_trees_hash_equal_and_one_changed_byte_changes_the_hash() {
    let (dir, store) = store();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    make_tree(&a);
    make_tree(&b);
    let put_a = store.put_dir(&a).unwrap();
    let put_b = store.put_dir(&b).unwrap();
    assert_eq!(put_a.hash, put_b.hash);
    let digest = digest_path(&a).unwrap();
    assert_eq!(
        (digest.hash, digest.size, digest.files),
        (put_a.hash, put_a.total_size, 5)
    );

    let mut bytes = fs::read(b.join("checkpoints/epoch-1/model.bin")).unwrap();
    bytes[149_999] ^= 1;
    fs::write(b.join("checkpoints/epoch-1/model.bin"), bytes).unwrap();
    let changed = store.put_dir(&b).unwrap();
    assert_ne!(changed.hash, put_a.hash);
    assert_eq!(digest_path(&b).unwrap().hash, changed.hash);

    // A rename alone changes the tree too.
    fs::rename(a.join("config.json"), a.join("config2.json")).unwrap();
    assert_ne!(digest_path(&a).unwrap().hash, put_a.hash);
}

#[cfg(unix)]
#[test]
fn symlinks_are_skipped_and_listed_not_followed() {
    let (dir, store) = store();
    let src = dir.path().join("src");
    make_tree(&src);
    let secret = dir.path().join("secret.txt");
    fs::write(&secret, b"do not store").unwrap();
    std::os::unix::fs::symlink(&secret, src.join("link-to-file")).unwrap();
    std::os::unix::fs::symlink(dir.path(), src.join("eval/link-to-dir")).unwrap();
    let put = store.put_dir(&src).unwrap();
    assert_eq!(put.files, 5);
    assert_eq!(
        put.skipped,
        vec![src.join("eval/link-to-dir"), src.join("link-to-file")]
    );
    let stored: Vec<u8> = fs::read(&secret).unwrap();
    assert!(!store.contains(&cairn_artifacts::BlobHash(
        *blake3::hash(&stored).as_bytes()
    )));
}

#[test]
fn hand_crafted_traversal_manifests_are_refused_before_writing() {
    let (dir, store) = store();
    let payload = store.put_bytes(b"pwned").unwrap();
    let out = dir.path().join("out");
    for bad in [
        "../escape.txt",
        "a/../../escape.txt",
        "/tmp/escape.txt",
        "a\0b",
        "a//b",
        "./x",
    ] {
        // A well-formed first entry, so a refusal must come before any writing.
        let entry = |path: &str| serde_json::json!({"path": path, "hash": payload.hash.to_hex(), "size": 5});
        let json =
            serde_json::json!({"cairn_manifest": 1, "entries": [entry("0-ok.txt"), entry(bad)]});
        let manifest = store.put_bytes(json.to_string().as_bytes()).unwrap();
        let err = store.restore_dir(&manifest.hash, &out).unwrap_err();
        match &err {
            Error::UnsafePath {
                manifest: m, path, ..
            } => {
                assert_eq!((m, path.as_str()), (&manifest.hash, bad));
            }
            other => panic!("{bad:?}: expected UnsafePath, got {other}"),
        }
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        assert!(!out.join("0-ok.txt").exists(), "{bad:?}: nothing written");
    }
    assert!(!dir.path().join("escape.txt").exists());
}

#[cfg(unix)]
#[test]
fn restore_does_not_write_through_a_symlink_in_dest() {
    let (dir, store) = store();
    let src = dir.path().join("src");
    make_tree(&src);
    let put = store.put_dir(&src).unwrap();
    let out = dir.path().join("out");
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir_all(&out).unwrap();
    fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, out.join("eval")).unwrap();
    let err = store.restore_dir(&put.hash, &out).unwrap_err();
    assert!(matches!(err, Error::UnsafeDestination { .. }), "{err}");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn a_manifest_that_lies_about_sizes_or_is_not_a_manifest_is_refused() {
    let (dir, store) = store();
    let blob = store.put_bytes(b"12345").unwrap();
    let lying = Manifest::from_entries(vec![ManifestEntry {
        path: "f".into(),
        hash: blob.hash,
        size: 6,
    }]);
    let m = store.put_bytes(&lying.to_bytes()).unwrap();
    assert_eq!(m.hash, lying.hash());
    let err = store
        .restore_dir(&m.hash, &dir.path().join("out"))
        .unwrap_err();
    assert!(matches!(err, Error::BadManifest { .. }), "{err}");

    let not_manifest = store.put_bytes(b"plain text").unwrap();
    let err = store.manifest(&not_manifest.hash).unwrap_err();
    assert!(
        matches!(err, Error::BadManifest { hash, .. } if hash == not_manifest.hash),
        "{err}"
    );
}

#[test]
fn a_corrupt_file_blob_stops_restore_with_corrupt() {
    let (dir, store) = store();
    let src = dir.path().join("src");
    make_tree(&src);
    let put = store.put_dir(&src).unwrap();
    let manifest = store.manifest(&put.hash).unwrap();
    let victim = &manifest.entries[2]; // config.json
    let path = crate::blob_file(&store, &victim.hash);
    crate::make_writable(&path);
    fs::write(&path, br#"{"lr":9.9999}"#).unwrap();
    let out = dir.path().join("out");
    let err = store.restore_dir(&put.hash, &out).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { hash, .. } if hash == victim.hash),
        "{err}"
    );
    assert!(!out.join("config.json").exists());
}
