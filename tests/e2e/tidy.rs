//! The architecture's rules, checked (in the style of rust-analyzer's `tidy`): ARCHITECTURE.md
//! states them, and this test fails the build when a change breaks one — a front end reaching
//! past `cairn-core` into a store, a framework crate outside its one home, a library reading the
//! environment, a source file without its `//!` line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_owned()
}

/// Every workspace member: (package name, directory, names of its `[dependencies]`).
fn members() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.push(root().join("src-tauri"));
    dirs.push(root().join("tests"));
    dirs.sort();
    dirs.into_iter()
        .map(|dir| {
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("a manifest");
            let (name, deps) = parse_manifest(&manifest);
            (name, dir, deps)
        })
        .collect()
}

/// The package name and the dependency names of `[dependencies]` (not dev- or build-
/// dependencies: tests may use anything). Our manifests write one dependency per line.
fn parse_manifest(text: &str) -> (String, Vec<String>) {
    let mut section = "";
    let mut name = String::new();
    let mut deps = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        match section {
            "[package]" if key == "name" => {
                name = line
                    .split_once('=')
                    .map(|(_, v)| v.trim().trim_matches('"').to_owned())
                    .unwrap_or_default();
            }
            "[dependencies]" if !key.is_empty() => deps.push(key.to_owned()),
            _ => {}
        }
    }
    (name, deps)
}

fn deps_of(members: &[(String, PathBuf, Vec<String>)]) -> BTreeMap<String, Vec<String>> {
    members
        .iter()
        .map(|(n, _, d)| (n.clone(), d.clone()))
        .collect()
}

#[test]
fn front_ends_reach_the_stores_only_through_cairn_core() {
    let deps = deps_of(&members());
    // What each front end may use of ours: the API boundary, the domain types, the other front
    // ends it embeds, the binaries' settings, and (for `cairn exec`'s sampler) the probes.
    let allowed: &[(&str, &[&str])] = &[
        (
            "cairn-cli",
            &[
                "cairn-core",
                "cairn-model",
                "cairn-server",
                "cairn-exec",
                "cairn-export",
                "cairn-settings",
            ],
        ),
        ("cairn-server", &["cairn-core", "cairn-model"]),
        (
            "cairn-desktop",
            &[
                "cairn-core",
                "cairn-model",
                "cairn-server",
                "cairn-settings",
            ],
        ),
        (
            "cairn-exec",
            &["cairn-core", "cairn-model", "cairn-server", "cairn-probe"],
        ),
    ];
    let mut wrong = Vec::new();
    for (front, ok) in allowed {
        let Some(d) = deps.get(*front) else {
            wrong.push(format!("{front} is not a workspace member any more"));
            continue;
        };
        for dep in d.iter().filter(|d| d.starts_with("cairn-")) {
            if !ok.contains(&dep.as_str()) {
                wrong.push(format!(
                    "{front} depends on {dep}: use cairn-core's API instead"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn each_framework_lives_in_its_one_crate() {
    // (framework crates, the one member that may depend on them)
    let homes: &[(&[&str], &str)] = &[
        (
            &["axum", "hyper", "hyper-util", "tower", "tower-http"],
            "cairn-server",
        ),
        (&["clap"], "cairn-cli"),
        (&["tauri", "tauri-build", "wry"], "cairn-desktop"),
        (&["cairn-settings", "dirs"], "binaries"),
    ];
    let binaries = ["cairn-cli", "cairn-desktop"];
    let mut wrong = Vec::new();
    for (name, _, deps) in members() {
        for (frameworks, home) in homes {
            for f in deps.iter().filter(|d| frameworks.contains(&d.as_str())) {
                let at_home = if *home == "binaries" {
                    binaries.contains(&name.as_str()) || name == "cairn-settings"
                } else {
                    name == *home
                };
                if !at_home {
                    wrong.push(format!(
                        "{name} depends on {f}, which belongs to {home} only"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_model_does_no_io() {
    let deps = deps_of(&members());
    // ts-rs and schemars only behind the `ts` feature, for cairn-wire's generated files; blake3
    // is computation (a gate policy's and its figures' digests), no I/O.
    let allowed = [
        "blake3",
        "serde",
        "serde_json",
        "thiserror",
        "uuid",
        "ts-rs",
        "schemars",
    ];
    let extra: Vec<&String> = deps["cairn-model"]
        .iter()
        .filter(|d| !allowed.contains(&d.as_str()))
        .collect();
    assert!(
        extra.is_empty(),
        "cairn-model is pure data (serde, thiserror, uuid, blake3; ts-rs, schemars); it depends on {extra:?}"
    );
}

#[test]
fn the_event_file_reader_does_no_io() {
    // cairn-tensorboard: bytes in, events out (ARCHITECTURE.md). Its only dependency is
    // thiserror, and its library sources open no file, socket or process (its tests read the
    // fixtures).
    let deps = deps_of(&members());
    assert_eq!(deps["cairn-tensorboard"], ["thiserror"]);
    let dir = root().join("crates/cairn-tensorboard/src");
    for path in sources(&dir) {
        if path.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a source file");
        for io in ["std::fs", "std::net", "std::process", "std::env"] {
            assert!(
                !text.contains(io),
                "{} uses {io}: cairn-tensorboard does no IO",
                path.display()
            );
        }
    }
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let path = e.expect("a directory entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !["target", "node_modules", "corpus", "artifacts"].contains(&name) {
                    pending.push(path);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_source_file_says_what_it_is() {
    let mut missing = Vec::new();
    for dir in ["crates", "src-tauri/src", "tests"] {
        for path in sources(&root().join(dir)) {
            let text = std::fs::read_to_string(&path).expect("a source file");
            if !text.trim_start().starts_with("//!") {
                missing.push(
                    path.strip_prefix(root())
                        .unwrap_or(&path)
                        .display()
                        .to_string(),
                );
            }
        }
    }
    assert!(
        missing.is_empty(),
        "these files do not open with a `//!` line saying what they are:\n{}",
        missing.join("\n")
    );
}

#[test]
fn only_binaries_read_the_environment() {
    // Libraries take paths, identities and settings as arguments; the binaries (and
    // cairn-settings, which they call) read the environment.
    let exempt = [
        "cairn-cli",
        "cairn-settings",
        "cairn-wire",
        "cairn-e2e",
        "cairn-desktop",
    ];
    let mut wrong = Vec::new();
    for (name, dir, _) in members() {
        if exempt.contains(&name.as_str()) {
            continue;
        }
        for path in sources(&dir.join("src")) {
            let text = std::fs::read_to_string(&path).expect("a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for needle in ["std::env::var", "env::var_os", "env::var("] {
                if code.contains(needle) {
                    wrong.push(format!(
                        "{} reads the environment ({needle})",
                        path.strip_prefix(root()).unwrap_or(&path).display()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_manifest_reader_reads_what_our_manifests_write() {
    let (name, deps) = parse_manifest(
        "[package]\nname = \"x\"\n\n[dependencies]\ncairn-core.workspace = true\n\
         ts-rs = { workspace = true, optional = true }\n\"quoted\" = \"1\"\n\n\
         [dev-dependencies]\ntempfile.workspace = true\n",
    );
    assert_eq!(name, "x");
    assert_eq!(deps, ["cairn-core", "ts-rs", "quoted"]);
}
