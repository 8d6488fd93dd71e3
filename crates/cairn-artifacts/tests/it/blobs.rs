//! Single blobs: dedup, immutability, verification on every read path, missing blobs.

use std::fs;
use std::io::{self, Read};
use std::sync::Arc;

use cairn_artifacts::{ArtifactStore, BlobHash, Error, digest_path};
use proptest::prelude::*;

use crate::{blob_file, make_writable, store};

#[test]
fn identical_content_is_stored_once() {
    let (dir, store) = store();
    let first = store.put_bytes(b"weights v1").unwrap();
    assert!(first.new);
    assert_eq!(first.size, 10);
    let again = store.put_bytes(b"weights v1").unwrap();
    assert_eq!((again.hash, again.new), (first.hash, false));
    let via_reader = store.put_reader(&mut &b"weights v1"[..]).unwrap();
    assert_eq!((via_reader.hash, via_reader.new), (first.hash, false));
    let file = dir.path().join("w.bin");
    fs::write(&file, b"weights v1").unwrap();
    let via_file = store.put_file(&file).unwrap();
    assert_eq!((via_file.hash, via_file.new), (first.hash, false));

    let other = store.put_bytes(b"weights v2").unwrap();
    assert!(other.new);
    assert_ne!(other.hash, first.hash);
    let blobs: usize = fs::read_dir(store.root().join("blobs"))
        .unwrap()
        .map(|d| fs::read_dir(d.unwrap().path()).unwrap().count())
        .sum();
    assert_eq!(blobs, 2);
    assert_eq!(
        fs::read_dir(store.root().join("tmp")).unwrap().count(),
        0,
        "temp files cleaned up"
    );
}

#[test]
fn a_stored_blob_is_read_only_and_never_overwritten() {
    let (_dir, store) = store();
    let put = store.put_bytes(b"immutable").unwrap();
    let path = blob_file(&store, &put.hash);
    let before = fs::metadata(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(before.permissions().mode() & 0o777, 0o444);
    }
    assert!(before.permissions().readonly());

    let again = store.put_reader(&mut &b"immutable"[..]).unwrap();
    assert!(!again.new);
    // Same file, same bytes: only its modification time is refreshed (what the collector's
    // grace period reads; see collect.rs).
    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.len(), before.len());
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(after.ino(), before.ino(), "the blob file was not replaced");
    }
    assert_eq!(store.read(&put.hash).unwrap(), b"immutable");
}

#[test]
fn a_tampered_blob_fails_read_copy_to_and_verify_and_leaves_no_copy() {
    let (dir, store) = store();
    let put = store.put_bytes(b"the real model bytes").unwrap();
    let path = blob_file(&store, &put.hash);
    make_writable(&path);
    fs::write(&path, b"the fake model bytes").unwrap(); // same length, other content

    let corrupt = |e: Error| matches!(e, Error::Corrupt { hash, .. } if hash == put.hash);
    assert!(corrupt(store.read(&put.hash).unwrap_err()));
    assert!(corrupt(store.verify(&put.hash).unwrap_err()));
    let out = dir.path().join("out");
    let dest = out.join("model.bin");
    let err = store.copy_to(&put.hash, &dest).unwrap_err();
    assert!(err.to_string().contains(&put.hash.to_hex()), "{err}");
    assert!(corrupt(err));
    assert!(!dest.exists());
    assert_eq!(
        fs::read_dir(&out).unwrap().count(),
        0,
        "no temporary file left next to dest"
    );
    // Nothing silently "fixes" it either: the same-size damaged blob stays detectable.
    assert!(store.contains(&put.hash));
}

#[test]
fn a_truncated_blob_is_corrupt_and_a_new_put_repairs_it() {
    let (_dir, store) = store();
    let content = vec![42u8; 200_000];
    let put = store.put_bytes(&content).unwrap();
    let path = blob_file(&store, &put.hash);
    make_writable(&path);
    fs::write(&path, &content[..1000]).unwrap();
    assert!(matches!(store.read(&put.hash), Err(Error::Corrupt { .. })));
    assert!(matches!(
        store.verify(&put.hash),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(
        store.size(&put.hash).unwrap(),
        1000,
        "size reports what is on disk"
    );

    let repaired = store.put_bytes(&content).unwrap();
    assert!(
        repaired.new,
        "a blob of the wrong length is replaced by the checked content"
    );
    store.verify(&put.hash).unwrap();
    assert_eq!(store.read(&put.hash).unwrap(), content);
}

#[test]
fn a_missing_blob_is_not_found_everywhere() {
    let (dir, store) = store();
    let absent = BlobHash(*blake3::hash(b"never stored").as_bytes());
    assert!(!store.contains(&absent));
    let not_found = |r: Result<_, Error>| matches!(r, Err(Error::NotFound(h)) if h == absent);
    assert!(not_found(store.read(&absent).map(|_| ())));
    assert!(not_found(store.verify(&absent)));
    assert!(not_found(store.size(&absent).map(|_| ())));
    assert!(not_found(
        store.copy_to(&absent, &dir.path().join("x")).map(|_| ())
    ));
    assert!(not_found(store.manifest(&absent).map(|_| ())));
    assert!(not_found(
        store
            .restore_dir(&absent, &dir.path().join("r"))
            .map(|_| ())
    ));
    let msg = store.read(&absent).unwrap_err().to_string();
    assert_eq!(
        msg,
        format!("blob {} is not in the artifact store", absent.to_hex())
    );
}

#[test]
fn copy_to_streams_a_verified_copy_and_replaces_dest() {
    let (dir, store) = store();
    // Not a multiple of the 64 KiB buffer, so the last read is a short one.
    let content: Vec<u8> = (0..300_001u32).map(|i| (i * 7 % 251) as u8).collect();
    let put = store.put_bytes(&content).unwrap();
    let dest = dir.path().join("a/b/c/model.bin");
    assert_eq!(store.copy_to(&put.hash, &dest).unwrap(), 300_001);
    assert_eq!(fs::read(&dest).unwrap(), content);
    assert!(
        !fs::metadata(&dest).unwrap().permissions().readonly(),
        "a copy is the user's to edit"
    );

    let small = store.put_bytes(b"small").unwrap();
    assert_eq!(store.copy_to(&small.hash, &dest).unwrap(), 5);
    assert_eq!(fs::read(&dest).unwrap(), b"small");
    assert_eq!(fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1);
}

#[test]
fn put_file_streams_and_matches_digest_path() {
    let (dir, store) = store();
    let file = dir.path().join("data.bin");
    let content: Vec<u8> = (0..1_000_003u32).map(|i| (i % 253) as u8).collect();
    fs::write(&file, &content).unwrap();
    let put = store.put_file(&file).unwrap();
    assert_eq!(put.hash.to_hex(), blake3::hash(&content).to_hex().as_str());
    assert_eq!(put.size, content.len() as u64);
    let digest = digest_path(&file).unwrap();
    assert_eq!(
        (digest.hash, digest.size, digest.files),
        (put.hash, put.size, 1)
    );
    let prefixed: BlobHash = format!("blake3:{}", digest.hash).parse().unwrap();
    assert_eq!(prefixed, put.hash);
}

#[test]
fn put_file_and_digest_path_name_a_missing_path() {
    let (dir, store) = store();
    let missing = dir.path().join("nope.bin");
    let err = store.put_file(&missing).unwrap_err();
    assert!(err.to_string().contains("nope.bin"), "{err}");
    let err = digest_path(&missing).unwrap_err();
    assert!(err.to_string().contains("nope.bin"), "{err}");
}

/// A reader that fails part-way, like an HTTP upload whose client went away.
struct Broken(usize);

impl Read for Broken {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "client went away",
            ));
        }
        let n = self.0.min(buf.len());
        buf[..n].fill(1);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failing_reader_stores_nothing() {
    let (_dir, store) = store();
    let err = store.put_reader(&mut Broken(100_000)).unwrap_err();
    assert!(matches!(err, Error::Input(_)), "{err}");
    assert!(
        err.to_string().contains("client went away")
            || format!("{err:?}").contains("client went away")
    );
    assert_eq!(fs::read_dir(store.root().join("tmp")).unwrap().count(), 0);
    assert_eq!(fs::read_dir(store.root().join("blobs")).unwrap().count(), 0);
}

#[test]
fn concurrent_writers_of_one_content_store_it_once() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let content = Arc::new(vec![9u8; 500_000]);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (store, content) = (Arc::clone(&store), Arc::clone(&content));
            std::thread::spawn(move || store.put_bytes(&content).unwrap())
        })
        .collect();
    let puts: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(puts.iter().filter(|p| p.new).count(), 1, "{puts:?}");
    assert!(puts.iter().all(|p| p.hash == puts[0].hash));
    store.verify(&puts[0].hash).unwrap();
    // Another store on the same root sees it.
    let other = ArtifactStore::open(store.root()).unwrap();
    assert!(other.contains(&puts[0].hash));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn put_bytes_then_read_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..200_000)) {
        let (_dir, store) = store();
        let put = store.put_bytes(&bytes).unwrap();
        prop_assert_eq!(put.size, bytes.len() as u64);
        prop_assert_eq!(store.size(&put.hash).unwrap(), bytes.len() as u64);
        prop_assert_eq!(store.read(&put.hash).unwrap(), bytes.clone());
        prop_assert!(store.verify(&put.hash).is_ok());
        prop_assert!(!store.put_bytes(&bytes).unwrap().new);
    }
}

#[test]
fn a_verified_stream_ends_only_after_the_content_checked_out() {
    let (_dir, store) = store();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let put = store.put_bytes(&content).unwrap();

    let mut reader = store.open_verified(&put.hash).unwrap();
    assert_eq!(reader.len(), content.len() as u64);
    let mut back = Vec::new();
    reader
        .read_to_end(&mut back)
        .expect("an intact blob streams to its end");
    assert_eq!(back, content);

    // Same length, other content: every byte comes out, but the read that reaches the end
    // fails, naming the blob, so a transfer that holds back its last piece never completes.
    let path = blob_file(&store, &put.hash);
    make_writable(&path);
    let mut tampered = content.clone();
    tampered[299_999] ^= 1;
    fs::write(&path, &tampered).unwrap();
    let mut reader = store.open_verified(&put.hash).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut seen = 0usize;
    let err = loop {
        match reader.read(&mut buf) {
            Ok(0) => panic!("a tampered blob read to a clean end"),
            Ok(n) => seen += n,
            Err(e) => break e,
        }
    };
    assert_eq!(seen, content.len());
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(&put.hash.to_hex()), "{err}");

    let missing = BlobHash([7; 32]);
    assert!(matches!(
        store.open_verified(&missing),
        Err(Error::NotFound(h)) if h == missing
    ));
}
