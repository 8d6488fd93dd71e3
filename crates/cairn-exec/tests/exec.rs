//! `exec` runs real commands: lineage, system metrics, output and exit status are recorded, and
//! the child can reach the embedded tracking server.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_core::Workspace;
use cairn_exec::{ExecOptions, exec};
use cairn_model::RunStatus;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

fn options(cwd: &Path, command: &[&str]) -> ExecOptions {
    ExecOptions {
        experiment: Some("exec".into()),
        name: None,
        params: BTreeMap::from([("lr".into(), "0.1".into())]),
        tags: BTreeMap::new(),
        datasets: vec![("train".into(), "data.csv".into())],
        git: true,
        instance_type: Some("p5.48xlarge".into()),
        hourly_price_usd: Some(98.32),
        interval: Duration::from_millis(200),
        cwd: cwd.to_owned(),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["config", "user.email", "t@example.com"]);
    git(dir.path(), &["config", "user.name", "t"]);
    std::fs::write(dir.path().join("data.csv"), "x,y\n1,2\n").unwrap();
    git(dir.path(), &["add", "."]);
    git(dir.path(), &["commit", "-qm", "init"]);
    dir
}

#[test]
fn a_successful_command_is_recorded_with_lineage_metrics_and_output() {
    let code = repo();
    let wsdir = tempfile::tempdir().unwrap();
    let ws = Workspace::create(wsdir.path(), "tester").unwrap();
    // The child sees the embedded server and its run id; it prints them and runs ~1 s.
    let script = r#"echo "uri=$MLFLOW_TRACKING_URI run=$MLFLOW_RUN_ID"; echo oops >&2; sleep 1"#;
    let mut seen = None;
    let out = exec(
        ws,
        &options(code.path(), &["sh", "-c", script]),
        |run, addr| seen = Some((run.id, addr)),
    )
    .unwrap();
    let (id, addr) = seen.unwrap();
    assert_eq!(out.run, id);
    assert_eq!((out.status, out.exit_code), (RunStatus::Finished, 0));
    assert!(out.samples >= 2, "{out:?}");
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);

    let ws = Workspace::open(wsdir.path(), "check").unwrap();
    let view = ws.run(id).unwrap();
    let run = &view.run;
    assert_eq!(run.status, RunStatus::Finished);
    assert!(run.end_ms.is_some());
    assert_eq!(run.params["lr"], "0.1");
    assert_eq!(run.tags["cairn.command"], format!("sh -c {script}"));
    let commit = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(code.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let c = run.lineage.code.as_ref().unwrap();
    assert_eq!(c.commit.as_deref(), Some(commit.trim()));
    assert!(!c.dirty);
    let d = &run.lineage.datasets["train"];
    let expected = cairn_artifacts_digest(&code.path().join("data.csv"));
    assert_eq!(d.digest.as_deref(), Some(expected.as_str()));
    let infra = run.lineage.infra.as_ref().unwrap();
    assert!(infra.host.is_some() && infra.memory_bytes.unwrap() > 0);
    assert_eq!(infra.hourly_price_usd, Some(98.32));
    assert!(
        view.live_metrics
            .contains_key("system/cpu_utilization_percentage"),
        "{:?}",
        view.live_metrics.keys()
    );
    assert!(view.live_metrics["system/system_memory_usage_megabytes"].count >= 2);
    let log = String::from_utf8(ws.read_artifact(id, "logs/output.log").unwrap()).unwrap();
    assert!(
        log.contains(&format!("uri=http://{addr} run={id}")),
        "{log}"
    );
    assert!(log.contains("oops"), "{log}");
}

/// The digest of a single-file dataset: the BLAKE3 of its bytes, computed independently.
fn cairn_artifacts_digest(path: &Path) -> String {
    format!(
        "blake3:{}",
        blake3::hash(&std::fs::read(path).unwrap()).to_hex()
    )
}

#[test]
fn a_failing_command_fails_the_run_and_passes_its_exit_code_on() {
    let code = repo();
    let wsdir = tempfile::tempdir().unwrap();
    let ws = Workspace::create(wsdir.path(), "tester").unwrap();
    let out = exec(
        ws,
        &options(code.path(), &["sh", "-c", "echo dying; exit 3"]),
        |_, _| {},
    )
    .unwrap();
    assert_eq!((out.status, out.exit_code), (RunStatus::Failed, 3));
    let ws = Workspace::open(wsdir.path(), "check").unwrap();
    assert_eq!(ws.run(out.run).unwrap().run.status, RunStatus::Failed);
    assert_eq!(
        ws.read_artifact(out.run, "logs/output.log").unwrap(),
        b"dying\n"
    );
}

#[test]
fn a_command_killed_by_a_signal_is_a_killed_run() {
    let code = repo();
    let wsdir = tempfile::tempdir().unwrap();
    let ws = Workspace::create(wsdir.path(), "tester").unwrap();
    let out = exec(
        ws,
        &options(code.path(), &["sh", "-c", "kill -9 $$"]),
        |_, _| {},
    )
    .unwrap();
    assert_eq!((out.status, out.exit_code), (RunStatus::Killed, 128 + 9));
}

#[test]
fn a_command_that_cannot_start_is_an_error_and_a_failed_run() {
    let code = repo();
    let wsdir = tempfile::tempdir().unwrap();
    let ws = Workspace::create(wsdir.path(), "tester").unwrap();
    let err = exec(
        ws,
        &options(code.path(), &["/nonexistent/train"]),
        |_, _| {},
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot start '/nonexistent/train'"),
        "{err}"
    );
    let ws = Workspace::open(wsdir.path(), "check").unwrap();
    let runs = ws.runs_page(&Default::default()).unwrap().runs;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Failed);
}

#[test]
fn a_refusing_schema_stops_the_command_before_it_starts() {
    let code = repo();
    let wsdir = tempfile::tempdir().unwrap();
    let ws = Workspace::create(wsdir.path(), "tester").unwrap();
    let schema = cairn_model::RunSchema {
        required: vec!["params.epochs: int".parse().unwrap()],
        enforcement: cairn_model::Enforcement::Refuse,
    };
    ws.set_schema(None, schema).unwrap();
    let marker = code.path().join("ran");
    let cmd = format!("touch {}", marker.display());
    let err = exec(ws, &options(code.path(), &["sh", "-c", &cmd]), |_, _| {}).unwrap_err();
    assert!(
        err.to_string().contains("params.epochs is missing"),
        "{err}"
    );
    assert!(!marker.exists(), "the command must not have run");
}
