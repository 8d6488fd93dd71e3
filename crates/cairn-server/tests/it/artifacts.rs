//! The `mlflow-artifacts` proxy: uploads and downloads are byte-exact, and no artifact path
//! (`..`, `%2e%2e`, encoded slashes) reaches outside the run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::http::{Request, assert_mlflow_error};
use crate::server::{Seeded, TestServer};

/// Every file under `dir` with its content.
fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.insert(path.clone(), std::fs::read(&path).expect("read file"));
            }
        }
    }
    out
}

const PAYLOAD: &[u8] = b"#!/bin/sh\necho pwned\n";

#[test]
fn path_traversal_in_uploads_is_refused_and_writes_nothing() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let run = seeded.id.as_str();
    let before = files(server.scratch());
    let traversals = [
        "../../x".to_owned(),
        "../../../../../../tmp/cairn-escape".to_owned(),
        "a/../../x".to_owned(),
        "model/../../../workspace.json".to_owned(),
        "%2e%2e/%2e%2e/x".to_owned(),
        "%2E%2E/%2E%2E/x".to_owned(),
        "..%2f..%2fx".to_owned(),
        "%2e%2e%2f%2e%2e%2fx".to_owned(),
        "..".to_owned(),
        "model/..".to_owned(),
    ];
    for rel in &traversals {
        let target = format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{rel}");
        let resp = server.send(&Request::new("PUT", &target).body(PAYLOAD));
        assert!(
            resp.status == 400 || resp.status == 404,
            "PUT {target}: {} {}",
            resp.status,
            resp.text()
        );
        let code = if resp.status == 400 {
            "INVALID_PARAMETER_VALUE"
        } else {
            "RESOURCE_DOES_NOT_EXIST"
        };
        assert_mlflow_error(&resp, resp.status, code);
        // And nothing comes back from there either.
        let resp = server.get(&target);
        assert_ne!(resp.status, 200, "GET {target}: {}", resp.text());
        assert!(resp.json()["error_code"].is_string(), "GET {target}");
    }
    // The traversal as the run id part of the path, with the experiment part too.
    for target in [
        format!("/api/2.0/mlflow-artifacts/artifacts/0/..%2f..%2f{run}/artifacts/x"),
        format!("/api/2.0/mlflow-artifacts/artifacts/../../0/{run}/artifacts/x"),
        format!("/api/2.0/mlflow-artifacts/artifacts/%2e%2e/{run}/artifacts/../x"),
    ] {
        let resp = server.send(&Request::new("PUT", &target).body(PAYLOAD));
        assert!(
            (400..500).contains(&resp.status),
            "PUT {target}: {} {}",
            resp.status,
            resp.text()
        );
    }

    let after = files(server.scratch());
    let new: Vec<&PathBuf> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    let holding_payload: Vec<&PathBuf> = after
        .iter()
        .filter(|(_, content)| content.windows(PAYLOAD.len()).any(|w| w == PAYLOAD))
        .map(|(p, _)| p)
        .collect();
    assert!(
        holding_payload.is_empty(),
        "the refused upload was written: {holding_payload:?} (new files: {new:?})"
    );
    assert!(
        !Path::new("/tmp/cairn-escape").exists(),
        "a file was written outside the workspace"
    );
    let top = server
        .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={run}"))
        .ok();
    assert_eq!(
        top["files"],
        json!([{ "path": "model", "is_dir": true }]),
        "the run's artifacts changed"
    );
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn traversal_in_downloads_listings_and_deletes_reaches_nothing_outside_the_run() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let run = seeded.id.as_str();
    let marker = std::fs::read(server.dir().join("workspace.json")).expect("workspace.json");
    for rel in [
        "../../../workspace.json",
        "%2e%2e/%2e%2e/%2e%2e/workspace.json",
        "model/../../../../workspace.json",
        "/etc/passwd",
        "%2fetc%2fpasswd",
    ] {
        for target in [
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{rel}"),
            format!("/api/v1/runs/{run}/artifacts/{rel}"),
        ] {
            let resp = server.get(&target);
            assert_ne!(resp.status, 200, "GET {target}: {}", resp.text());
            assert!(
                !resp.body.windows(marker.len()).any(|w| w == marker),
                "GET {target} leaked workspace.json"
            );
        }
        let resp = server.send(&Request::new(
            "DELETE",
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{rel}"),
        ));
        assert_ne!(resp.status, 200, "DELETE {rel}: {}", resp.text());
        let resp = server.get(&format!(
            "/api/2.0/mlflow-artifacts/artifacts?path=0/{run}/artifacts/{rel}"
        ));
        if resp.status == 200 {
            assert_eq!(resp.json()["files"], json!([]), "listing {rel}");
        }
        let resp = server.get(&format!(
            "/api/2.0/mlflow/artifacts/list?run_id={run}&path={rel}"
        ));
        if resp.status == 200 {
            assert_eq!(resp.json()["files"], json!([]), "artifacts/list {rel}");
        }
    }
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn uploads_download_byte_for_byte() {
    let server = TestServer::start();
    let run = server.create_run();
    let every_byte: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 17).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("data/every-byte.bin", &every_byte),
        ("empty.txt", b""),
        (
            "unicode/r\u{e9}sum\u{e9} \u{1f600}.txt",
            "caf\u{e9}\n".as_bytes(),
        ),
        ("deep/a/b/c/d/e.json", b"{\"k\": [1, 2, 3]}"),
    ];
    for (path, bytes) in cases {
        let encoded = path
            .replace(' ', "%20")
            .replace('\u{e9}', "%C3%A9")
            .replace('\u{1f600}', "%F0%9F%98%80");
        let target = format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/{encoded}");
        server.send(&Request::new("PUT", &target).body(bytes)).ok();
        let back = server.get(&target);
        assert_eq!(back.status, 200, "GET {path}: {}", back.text());
        assert_eq!(back.body, bytes, "{path} did not come back byte for byte");
    }
    // Uploading to the same path again replaces the content.
    let target = format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/empty.txt");
    server
        .send(&Request::new("PUT", &target).body("now full"))
        .ok();
    assert_eq!(server.get(&target).body, b"now full");

    let listing = server
        .get(&format!(
            "/api/2.0/mlflow-artifacts/artifacts?path=0/{run}/artifacts/data"
        ))
        .ok();
    assert_eq!(
        listing["files"],
        json!([{ "path": "every-byte.bin", "is_dir": false, "file_size": every_byte.len() }])
    );
    let top = server
        .get(&format!("/api/2.0/mlflow/artifacts/list?run_id={run}"))
        .ok();
    let paths: Vec<&str> = top["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["path"].as_str().expect("path"))
        .collect();
    assert_eq!(paths, ["data", "deep", "empty.txt", "unicode"]);
    assert_eq!(
        top["root_uri"],
        format!("mlflow-artifacts:/0/{run}/artifacts")
    );

    // Deleting a directory unbinds what is under it, and only that.
    server
        .send(&Request::new(
            "DELETE",
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/deep"),
        ))
        .ok();
    let resp = server.get(&format!(
        "/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/deep/a/b/c/d/e.json"
    ));
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");

    let stopped = server.stop();
    let stored = stopped.run(&run);
    assert_eq!(
        stored
            .artifacts
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        [
            "data/every-byte.bin",
            "empty.txt",
            "unicode/r\u{e9}sum\u{e9} \u{1f600}.txt"
        ]
    );
    assert_eq!(
        stopped
            .ws
            .read_artifact(stored.id, "data/every-byte.bin")
            .expect("read back"),
        every_byte
    );
}
