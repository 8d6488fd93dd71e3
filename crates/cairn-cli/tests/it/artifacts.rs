//! `artifact add` / `artifact get`: byte-identical round trips of files and directories,
//! content-addressed deduplication, and tamper detection on the blobs on disk.

use std::path::{Path, PathBuf};

use crate::{Ws, arg, assert_mentions, tree};

/// Bytes that cover every byte value, in an order that does not repeat for a while.
fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect()
}

/// Where the store keeps the blob of `content`: `artifacts/blobs/<2 hex>/<64 hex>`.
fn blob_path(ws: &Ws, content: &[u8]) -> PathBuf {
    let hex = blake3::hash(content).to_hex().to_string();
    ws.dir.join("artifacts/blobs").join(&hex[..2]).join(hex)
}

fn blob_count(ws: &Ws) -> usize {
    tree(&ws.dir.join("artifacts/blobs")).len()
}

/// Flips the first byte of a stored blob (stored read-only, so made writable first).
fn tamper(blob: &Path) {
    let mut perms = std::fs::metadata(blob).expect("stored blob").permissions();
    #[cfg(unix)]
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    #[cfg(not(unix))]
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(blob, perms).unwrap();
    let mut bytes = std::fs::read(blob).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(blob, bytes).unwrap();
}

/// A model directory with nesting, an empty file and duplicate content.
fn model_dir(ws: &Ws) -> PathBuf {
    ws.file("model/weights.bin", payload(64 * 1024, 3));
    ws.file("model/config.json", r#"{"layers": 12}"#);
    ws.file("model/empty.txt", "");
    ws.file("model/tokenizer/vocab.txt", "a\nb\nc\n");
    ws.file("model/tokenizer/copy-of-vocab.txt", "a\nb\nc\n");
    ws.file("model/z.bin", payload(4096, 9));
    ws.tmp().join("model")
}

#[test]
fn a_file_artifact_comes_back_byte_identical() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let bytes = payload(300 * 1024 + 7, 1);
    let src = ws.file("weights.bin", &bytes);

    let added = ws.json(&["artifact", "add", &id, arg(&src)]);
    assert_eq!(added["path"], "weights.bin");
    assert_eq!(
        added["artifact"]["hash"],
        blake3::hash(&bytes).to_hex().as_str()
    );
    assert_eq!(added["artifact"]["size"], bytes.len());
    assert_eq!(added["artifact"]["kind"], "file");
    assert_eq!(ws.show(&id)["artifacts"]["weights.bin"], added["artifact"]);

    let out = ws.tmp().join("restored/weights.bin");
    ws.ok(&["artifact", "get", &id, "weights.bin", "-o", arg(&out)]);
    assert!(
        std::fs::read(&out).unwrap() == bytes,
        "restored bytes differ"
    );
}

#[test]
fn a_directory_artifact_is_restored_identically() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let src = model_dir(&ws);
    let added = ws.json(&["artifact", "add", &id, arg(&src), "--as", "model"]);
    assert_eq!(added["path"], "model");
    assert_eq!(added["artifact"]["kind"], "dir");
    let total: usize = tree(&src).iter().map(|(_, b)| b.len()).sum();
    assert_eq!(added["artifact"]["size"], total);

    let out = ws.tmp().join("restored");
    ws.ok(&["artifact", "get", &id, "model", "-o", arg(&out)]);
    assert_eq!(tree(&out), tree(&src));
}

#[test]
fn identical_content_is_stored_once() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let other = ws.start_run(&[]);
    let bytes = payload(10_000, 5);
    let a = ws.file("a.bin", &bytes);
    let copy = ws.file("copy.bin", &bytes);

    ws.ok(&["artifact", "add", &id, arg(&a)]);
    ws.ok(&["artifact", "add", &id, arg(&a), "--as", "again.bin"]);
    ws.ok(&["artifact", "add", &id, arg(&copy)]);
    ws.ok(&["artifact", "add", &other, arg(&a)]);
    assert_eq!(blob_count(&ws), 1);
    assert!(blob_path(&ws, &bytes).is_file());

    // A directory: one blob per distinct file content, plus its manifest.
    ws.file("dir/one.bin", &bytes);
    ws.file("dir/two.bin", &bytes);
    ws.file("dir/three.txt", "three");
    let dir = ws.tmp().join("dir");
    ws.ok(&["artifact", "add", &id, arg(&dir)]);
    assert_eq!(blob_count(&ws), 3);
    ws.ok(&["artifact", "add", &other, arg(&dir), "--as", "same-dir"]);
    assert_eq!(blob_count(&ws), 3);

    let artifacts = &ws.show(&id)["artifacts"];
    assert_eq!(artifacts["a.bin"], artifacts["again.bin"]);
    assert_eq!(artifacts["a.bin"], artifacts["copy.bin"]);
}

#[test]
fn a_tampered_blob_is_reported_corrupt_and_no_output_file_is_written() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let bytes = payload(50_000, 7);
    let src = ws.file("weights.bin", &bytes);
    ws.ok(&["artifact", "add", &id, arg(&src)]);
    tamper(&blob_path(&ws, &bytes));

    let out_dir = ws.tmp().join("restored");
    let out = out_dir.join("weights.bin");
    let err = ws.fail(&["artifact", "get", &id, "weights.bin", "-o", arg(&out)]);
    assert_mentions(&err, &["corrupt", &blake3::hash(&bytes).to_hex()]);
    assert!(!out.exists(), "a corrupt artifact was written out");
    let left: Vec<_> = match std::fs::read_dir(&out_dir) {
        Ok(entries) => entries.map(|e| e.unwrap().file_name()).collect(),
        Err(_) => Vec::new(),
    };
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// A directory that cannot be restored whole is not restored at all: a half-written model
/// directory next to an error message is too easy to mistake for the real thing.
#[test]
fn a_tampered_blob_in_a_directory_leaves_no_output_directory() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let src = model_dir(&ws);
    ws.ok(&["artifact", "add", &id, arg(&src), "--as", "model"]);
    tamper(&blob_path(&ws, &std::fs::read(src.join("z.bin")).unwrap()));

    let out = ws.tmp().join("restored");
    let err = ws.fail(&["artifact", "get", &id, "model", "-o", arg(&out)]);
    assert_mentions(&err, &["corrupt"]);
    let written = if out.exists() { tree(&out) } else { Vec::new() };
    let names: Vec<&str> = written.iter().map(|(p, _)| p.as_str()).collect();
    assert!(
        !out.exists(),
        "the failed restore left {} with {names:?}",
        out.display()
    );
}

#[test]
fn an_unknown_artifact_is_refused_naming_it() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let out = ws.tmp().join("out.bin");
    let err = ws.fail(&["artifact", "get", &id, "nothing.bin", "-o", arg(&out)]);
    assert_mentions(&err, &["'nothing.bin'", &id]);
    assert!(!out.exists());
}

/// Symlinks under a directory are not followed (by design), but dropping them must not be
/// silent: a Hugging Face snapshot directory, for one, holds nothing but symlinks.
#[cfg(unix)]
#[test]
fn a_directory_artifact_names_the_symlinks_it_did_not_store() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    ws.file("hub/blobs/abc123", "weights");
    ws.file("hub/snapshot/config.json", "{}");
    std::os::unix::fs::symlink(
        "../blobs/abc123",
        ws.tmp().join("hub/snapshot/model.safetensors"),
    )
    .unwrap();
    let snapshot = ws.tmp().join("hub/snapshot");

    let out = ws.output(&["artifact", "add", &id, arg(&snapshot), "--as", "model"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_mentions(&said, &["model.safetensors"]);
}
