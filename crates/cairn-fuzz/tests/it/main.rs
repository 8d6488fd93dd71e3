//! Replays every input of `fuzz/corpus/<target>/` (the seeds and what fuzzing kept) and
//! `fuzz/crashers/<target>/` (inputs that once broke a parser) through the target bodies, on the
//! stable toolchain, in the normal test run.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted (none when the folder is absent).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| {
                e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                    .path()
            })
            .filter(|p| p.is_file())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.sort();
    files
}

/// Runs every corpus and crasher input of `target`; fails naming each input that panicked.
fn replay(target: &str) {
    let body = cairn_fuzz::target(target).unwrap_or_else(|| panic!("no target {target}"));
    let corpus = inputs("corpus", target);
    assert!(
        !corpus.is_empty(),
        "{target} has no seed corpus in fuzz/corpus/{target}/"
    );
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&inputs("crashers", target)) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| body(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target} panicked on {failed:#?}");
}

macro_rules! replay_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(stringify!($name));
            }
        )*

        #[test]
        fn every_target_is_replayed_and_has_a_libfuzzer_binary() {
            let replayed = [$(stringify!($name)),*];
            let declared: Vec<&str> = cairn_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(replayed.as_slice(), declared.as_slice());
            let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml"))
                .expect("fuzz/Cargo.toml");
            for name in declared {
                let line = format!("fuzz_targets/{name}.rs");
                assert!(manifest.contains(&line), "fuzz/Cargo.toml lacks {line}");
                let body = std::fs::read_to_string(fuzz_dir().join(&line))
                    .unwrap_or_else(|e| panic!("fuzz/{line}: {e}"));
                assert!(body.contains(&format!("cairn_fuzz::{name}(data)")), "fuzz/{line}");
            }
        }
    };
}

replay_tests!(
    query,
    search,
    mlflow_request,
    sync_frame,
    sync_session,
    catalog_sync,
    peer_doc,
    ticket,
    metrics_csv,
    gpu_query_csv,
    gpu_util_trace,
    manifest,
    metric_chunk,
    otlp,
    eval_file,
    audit_bundle,
    audit_store,
    tfevents,
    mlflow_meta,
    mlflow_rest,
    backup_container,
    notebook_markup,
    review_file,
    notebook_query,
);

/// Every folder of inputs names a target: a renamed target does not silently stop replaying.
#[test]
fn every_input_folder_names_a_target() {
    for kind in ["corpus", "crashers"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let name = entry.expect("a folder entry").file_name();
            let name = name.to_string_lossy();
            assert!(
                cairn_fuzz::target(&name).is_some(),
                "fuzz/{kind}/{name} names no target"
            );
        }
    }
}

/// The recorded session seed is a whole session a fresh device completes, receiving runs,
/// points and blobs: after a wire change that breaks it, regenerate the seeds (`examples/seeds`).
#[test]
fn the_joiner_seed_is_a_whole_session() {
    let seed = std::fs::read(fuzz_dir().join("corpus/sync_session/seed-joiner")).unwrap();
    let (result, stores) = cairn_fuzz::session_of_a_joiner(&seed);
    let report = result.expect("the recorded session replays");
    assert!(report.docs_changed > 0, "{report:?}");
    assert!(report.points_received > 0, "{report:?}");
    assert!(report.blobs_received > 0, "{report:?}");
    let stores = stores.lock().unwrap();
    let runs = stores
        .catalog
        .list_runs(&cairn_catalog::RunFilter::default())
        .unwrap();
    assert_eq!(runs.len(), 3);
}

/// The automerge messages of that session build the same runs in a fresh catalog.
#[test]
fn the_catalog_seed_brings_runs_to_a_fresh_catalog() {
    let seed = std::fs::read(fuzz_dir().join("corpus/catalog_sync/seed-joiner-docs")).unwrap();
    let (catalog, changed) = cairn_fuzz::apply_sync_messages(&seed);
    assert!(changed > 0);
    let runs = catalog
        .list_runs(&cairn_catalog::RunFilter::default())
        .unwrap();
    assert_eq!(runs.len(), 3);
}

/// The docs of that session as JSON, written by a peer of their own, bring a run each shard.
#[test]
fn the_peer_doc_seeds_are_stored_and_projected() {
    for entry in std::fs::read_dir(fuzz_dir().join("corpus/peer_doc")).unwrap() {
        let path = entry.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("seed-doc-")
        {
            continue;
        }
        let seed = std::fs::read(&path).unwrap();
        let (catalog, changed) = cairn_fuzz::peer_doc_in_a_fresh_catalog(&seed);
        assert!(changed, "{}", path.display());
        if seed[0] != 0 {
            let runs = catalog
                .list_runs(&cairn_catalog::RunFilter::default())
                .unwrap();
            assert!(!runs.is_empty(), "{}", path.display());
        }
    }
}

/// The OTLP seeds are real exports that decode to spans in every form (a seed the decoder
/// refused would leave the fuzzer mutating an error path only).
#[test]
fn the_otlp_seeds_decode_to_spans() {
    let limits = cairn_traces::otlp::Limits::default();
    for path in inputs("corpus", "otlp") {
        let data = std::fs::read(&path).unwrap();
        let (form, body) = data.split_first().unwrap();
        let body = if form & 2 == 0 {
            body.to_vec()
        } else {
            cairn_traces::otlp::decompress(body, "gzip", 1 << 20).unwrap()
        };
        let request = if form & 1 == 0 {
            cairn_traces::otlp::decode_protobuf(&body, &limits)
        } else {
            cairn_traces::otlp::decode_json(&body, &limits)
        }
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            request.iter().any(|r| !r.spans.is_empty()),
            "{}",
            path.display()
        );
    }
}

/// The by-group seeds are files `cairn eval log --file` takes.
#[test]
fn the_eval_file_seeds_parse_to_slices() {
    for path in inputs("corpus", "eval_file") {
        let data = std::fs::read(&path).unwrap();
        let (named, body) = data.split_first().unwrap();
        let attributes: Vec<String> = ["sex", "race"][..usize::from(named % 3)]
            .iter()
            .map(|a| a.to_string())
            .collect();
        let slices = cairn_core::by_group::parse(std::str::from_utf8(body).unwrap(), &attributes)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(slices.len() >= 2, "{}: {slices:?}", path.display());
    }
}

/// The event-file seeds read whole: the real files and the writer's.
#[test]
fn the_tfevents_seeds_are_good_event_files() {
    let seeds = inputs("corpus", "tfevents");
    assert!(seeds.len() >= 3);
    for path in seeds {
        let data = std::fs::read(&path).unwrap();
        let events =
            cairn_tensorboard::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(events.len() > 2, "{}", path.display());
    }
}
