//! Embeds the built web UI (`ui/dist`) in the server, so a `cairn` binary serves its UI wherever
//! it is installed. Generates `$OUT_DIR/ui_files.rs`: every file under `ui/dist` as
//! `(path, bytes)`. Without a built UI the list is empty and the server says how to build it.

use std::path::{Path, PathBuf};

/// Every file under `dir`, as (path relative to it with `/` separators, absolute path).
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
    }
    out.sort();
    out
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../../ui/dist");
    // A rebuilt UI (new file names, new contents) rebuilds the server.
    println!("cargo::rerun-if-changed={}", dist.display());
    let found = files(&dist);
    let mut code = String::from("/// The built web UI: (path under `ui/dist`, contents).\n");
    code.push_str("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &found {
        println!("cargo::rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("];\n");
    if found.iter().all(|(rel, _)| rel != "index.html") {
        println!(
            "cargo::warning=ui/dist is not built: this cairn-server serves no web UI (npm --prefix ui ci && npm --prefix ui run build, then build again)"
        );
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("ui_files.rs");
    if let Err(e) = std::fs::write(&out, code) {
        println!("cargo::warning=cannot write {}: {e}", out.display());
    }
}
