//! The search index shared by processes: several `cairn search`es on a workspace whose index is
//! missing all answer (one rebuilds it, the others wait for it) instead of wiping each other's
//! half-built index.

use std::process::Stdio;

use crate::Ws;

#[test]
fn concurrent_searches_on_a_missing_index_all_answer() {
    let ws = Ws::new();
    ws.ok(&["demo", "--runs", "2000"]);
    let total = ws.list().len();
    for round in 0..3 {
        let index = ws.dir.join("index");
        if index.exists() {
            std::fs::remove_dir_all(&index).unwrap();
        }
        let children: Vec<_> = (0..4)
            .map(|_| {
                ws.cmd(&["search", "", "--limit", "1", "--json"])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn cairn search")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for cairn search");
            assert!(
                out.status.success(),
                "round {round}: a search failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let page = ws.json(&["search", "", "--limit", "1"]);
        assert_eq!(
            page["total"].as_u64(),
            Some(total as u64),
            "round {round}: {page}"
        );
    }
}
