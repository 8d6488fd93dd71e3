//! `cairn backup`, `cairn restore` and `cairn verify` through the binary: a round trip that
//! verifies clean, `--json` reports, a non-empty target refused, a damaged backup refused
//! naming the member, and verify's exit status.

use super::{Ws, str_of};

#[test]
fn backup_restore_verify_round_trip() {
    let ws = Ws::new();
    let id = ws.start_run(&["--exp", "e", "--param", "lr=0.1"]);
    let file = ws.tmp().join("ws.cairnbak");
    let file_arg = file.to_str().unwrap();
    // With the key: the device moving (without it, the restore is a new device, whose verify
    // reports the old device's audit chain as an unknown signer: cairn-core's tests).
    let report = ws.json(&["backup", "-o", file_arg, "--include-key"]);
    assert_eq!(report["includes_key"], true);
    assert!(report["members"].as_u64().unwrap() >= 4, "{report}");
    // Never over an existing file.
    let e = ws.fail(&["backup", "-o", file_arg]);
    assert!(e.contains("already exists"), "{e}");

    let checked = ws.json(&["restore", "--check", file_arg]);
    assert_eq!(checked["workspace"], report["workspace"]);

    // Into the workspace itself: not empty, refused.
    let e = ws.fail(&["restore", file_arg]);
    assert!(e.contains("--force"), "{e}");

    let target = ws.tmp().join("restored");
    let t = target.to_str().unwrap();
    let at_target = |args: &[&str]| {
        let out = ws
            .bare()
            .args(["--workspace", t, "--user", "tester", "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let restored = at_target(&["restore", file_arg]);
    assert_eq!(restored["indexed_runs"], 1);
    let shown = at_target(&["runs", "show", &id]);
    assert_eq!(str_of(&shown, "/params/lr"), "0.1");
    let v = at_target(&["verify"]);
    assert_eq!(v["ok"], true, "{v}");

    // A byte of the catalog flipped: refused, naming the member; nothing written.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0xff;
    let bad = ws.file("bad.cairnbak", &bytes);
    let other = ws.tmp().join("never");
    let out = ws
        .bare()
        .args([
            "--workspace",
            other.to_str().unwrap(),
            "restore",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("member ") || e.contains("manifest"), "{e}");
    assert!(!other.exists());
}

#[test]
fn verify_exits_1_on_a_damaged_blob_and_names_it() {
    let ws = Ws::new();
    let id = ws.start_run(&["--exp", "e"]);
    let f = ws.file("notes.txt", b"hello");
    ws.ok(&["artifact", "add", &id, f.to_str().unwrap()]);
    ws.ok(&["verify"]);
    let hash = blake3::hash(b"hello").to_hex().to_string();
    let blob = ws.dir.join("artifacts/blobs").join(&hash[..2]).join(&hash);
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(&blob, b"jello").unwrap();
    let out = ws.output(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("blob: {hash}")), "{text}");
    assert!(text.contains("NOT OK: 1 blob"), "{text}");
    // Repair rebuilds what is derived and leaves the blob reported.
    let out = ws.output(&["verify", "--repair", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["problems"][0]["area"], "blob");
    assert!(
        v["repaired"][1]
            .as_str()
            .unwrap()
            .starts_with("search index")
    );
}
