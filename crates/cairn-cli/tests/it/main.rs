//! End-to-end tests of the `cairn` binary: each test runs the real executable against a workspace
//! in a fresh temporary directory and reads its `--json` output back.
//!
//! Every command gets `--workspace` and `--user`, and `HOME`/`XDG_DATA_HOME` point into the
//! temporary directory, so no test can reach the real user's default workspace or git config.

mod artifacts;
mod backup;
mod bad_input;
mod charts;
mod cost;
mod demo;
mod evals;
mod experiments;
mod guards;
mod import;
mod index;
mod models;
mod netns;
mod notebooks;
mod properties;
mod runs;
mod schema;
mod serve_memory;
mod sync;
mod workspace;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The metrics CSV a real training job wrote on a GPU box: `step,unix_ms,loss,acc,lr`, 300 rows.
const FIXTURE_METRICS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/gpu-box/metrics.csv"
);

/// A scratch directory with a workspace at `<tmp>/ws`, and the `cairn` binary pointed at it.
struct Ws {
    tmp: tempfile::TempDir,
    dir: PathBuf,
    user: String,
}

impl Ws {
    /// An initialised workspace; commands run as user `tester`.
    fn new() -> Ws {
        let ws = Ws::uninit();
        ws.ok(&["init"]);
        ws
    }

    /// A scratch directory whose `ws` subdirectory does not exist yet.
    fn uninit() -> Ws {
        let tmp = tempfile::Builder::new()
            .prefix("cairn-it-")
            .tempdir()
            .expect("temporary directory");
        let dir = tmp.path().join("ws");
        Ws {
            tmp,
            dir,
            user: "tester".into(),
        }
    }

    /// The scratch directory (also the working directory of every command).
    fn tmp(&self) -> &Path {
        self.tmp.path()
    }

    /// The binary with an isolated environment and no workspace or user arguments.
    fn bare(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cairn"));
        cmd.current_dir(self.tmp())
            .env_remove("CAIRN_WORKSPACE")
            .env_remove("CAIRN_USER")
            .env_remove("CAIRN_LOG")
            .env("HOME", self.tmp())
            .env("XDG_DATA_HOME", self.tmp().join("xdg-data"))
            .env("GIT_CONFIG_NOSYSTEM", "1");
        cmd
    }

    /// The binary pointed at this workspace as this user, with `args`.
    fn cmd<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut cmd = self.bare();
        cmd.arg("--workspace")
            .arg(&self.dir)
            .arg("--user")
            .arg(&self.user)
            .args(args);
        cmd
    }

    fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.cmd(args).output().expect("run the cairn binary")
    }

    /// Runs `args`, which must succeed; returns stdout.
    fn ok<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        checked_ok(&self.output(args), args)
    }

    /// Runs `args`, which must fail with a non-zero exit; returns stderr.
    fn fail<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        checked_fail(&self.output(args), args)
    }

    /// Runs `args --json`, which must succeed, and parses stdout.
    fn json<S: AsRef<OsStr>>(&self, args: &[S]) -> Value {
        let mut all: Vec<&OsStr> = args.iter().map(AsRef::as_ref).collect();
        all.push(OsStr::new("--json"));
        parse_json(&self.ok(&all))
    }

    /// Starts a run with `args` after `run start`; returns its id.
    fn start_run(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "start"];
        all.extend_from_slice(args);
        let out = self.ok(&all);
        let id = out.trim().to_owned();
        assert!(
            id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "`run start` printed {out:?}, not a run id"
        );
        id
    }

    /// `runs show ID --json`.
    fn show(&self, id: &str) -> Value {
        self.json(&["runs", "show", id])
    }

    /// `runs list --json` with room for every run a test makes.
    fn list(&self) -> Vec<Value> {
        array(self.json(&["runs", "list", "--limit", "100000"]))
    }

    /// Writes `bytes` to `name` in the scratch directory; returns its path.
    fn file(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.tmp().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }
}

fn describe<S: AsRef<OsStr>>(args: &[S]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn checked_ok<S: AsRef<OsStr>>(out: &Output, args: &[S]) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`cairn {}` failed ({}):\nstdout: {stdout}\nstderr: {}",
        describe(args),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn checked_fail<S: AsRef<OsStr>>(out: &Output, args: &[S]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success() && out.status.code().is_some_and(|c| c != 0),
        "`cairn {}` should have failed but exited with {}:\nstdout: {}\nstderr: {stderr}",
        describe(args),
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("error: "),
        "`cairn {}` failed without an error message: {stderr}",
        describe(args)
    );
    stderr
}

fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn array(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("expected a JSON array, got {other}"),
    }
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v:#}"))
}

/// Asserts that `haystack` contains every one of `needles`.
#[track_caller]
fn assert_mentions(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}

/// The numbers after `"key": ` on the lines of pretty-printed JSON, parsed by Rust's correctly
/// rounded parser. serde_json (without its `float_roundtrip` feature) may read a float one ulp
/// off, so assertions that values are bit-exact read the text instead.
fn exact_numbers(pretty_json: &str, key: &str) -> Vec<f64> {
    let prefix = format!("\"{key}\": ");
    pretty_json
        .lines()
        .filter_map(|l| l.trim().strip_prefix(&prefix))
        .map(|rest| {
            let text = rest.trim_end_matches(',');
            text.parse()
                .unwrap_or_else(|_| panic!("\"{key}\": {text} is not a number"))
        })
        .collect()
}

/// Every file under `dir` as (relative path, bytes), sorted by path.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under dir")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((rel, std::fs::read(&path).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

/// The path as a command-line argument (temporary paths are UTF-8).
fn arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}
