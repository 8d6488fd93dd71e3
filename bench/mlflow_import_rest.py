"""`cairn import mlflow` from a SQL store and from MLflow's own server on it (issue #18: "the
same history through MLflow's REST API for comparison").

Makes an MLflow SQL store with the real `mlflow` package (one experiment, RUNS runs with PARAMS
params, a tag and an artifact each, one point per series), grows each of its KEYS series to
STEPS points straight in the store's `metrics` table (the client logs ~3.5k points/s; SQLite
takes them a hundred times faster), starts `mlflow server` on it on a free loopback port, and
imports the same store into two fresh workspaces: `sqlite:///…` (read directly) and
`http://127.0.0.1:PORT` (paged through the REST API). Each import is then run again (nothing
new). Prints one line per import: seconds, runs/s, points/s, and the re-import's seconds.

    .venv/bin/python bench/mlflow_import_rest.py            # CAIRN_BIN: the binary measured
    RUNS=50 KEYS=5 STEPS=2000 PARAMS=20 .venv/bin/python bench/mlflow_import_rest.py

Results are JSON lines on stdout after the table (one per import), to paste into BENCHMARKS.md.
"""

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

os.environ.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
                   "GIT_PYTHON_REFRESH": "quiet"})
for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
    os.environ.pop(var, None)

import mlflow  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAIRN = os.environ.get("CAIRN_BIN", str(ROOT / "target" / "release" / "cairn"))
RUNS = int(os.environ.get("RUNS", "50"))
KEYS = int(os.environ.get("KEYS", "5"))
STEPS = int(os.environ.get("STEPS", "2000"))
PARAMS = int(os.environ.get("PARAMS", "20"))


def make_store(root: Path) -> str:
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.create_experiment("bench", artifact_location=(root / "art").as_uri())
    (root / "weights.bin").write_bytes(os.urandom(64 << 10))
    runs = []
    for i in range(RUNS):
        rid = client.create_run(exp, run_name=f"r{i}", start_time=1_700_000_000_000 + i).info.run_id
        client.log_batch(
            rid,
            params=[mlflow.entities.Param(f"p{j}", str(i * j)) for j in range(PARAMS)],
            metrics=[mlflow.entities.Metric(f"m{k}", 0.0, 1_700_000_000_000, 0)
                     for k in range(KEYS)],
            tags=[mlflow.entities.RunTag("group", str(i % 4))])
        client.log_artifact(rid, str(root / "weights.bin"))
        client.set_terminated(rid, "FINISHED", end_time=1_700_000_900_000 + i)
        runs.append(rid)
    with sqlite3.connect(root / "mlflow.db") as db:
        db.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            ((f"m{k}", 1.0 / s + k, 1_700_000_000_000 + s, rid, s)
             for rid in runs for k in range(KEYS) for s in range(1, STEPS)))
    return uri


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log = open(root / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
         f"sqlite:///{root / 'mlflow.db'}", "--artifacts-destination", str(root / "proxied"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"mlflow server exited:\n{(root / 'mlflow-server.log').read_text()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return url, proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit("mlflow server did not answer /health within 180 s")


def timed_import(workspace: Path, source: str) -> tuple[float, dict]:
    t0 = time.monotonic()
    out = subprocess.run([CAIRN, "--workspace", str(workspace), "--user", "bench", "--json",
                          "import", "mlflow", source], capture_output=True, text=True)
    secs = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"cairn import mlflow {source} failed:\n{out.stderr}")
    return secs, json.loads(out.stdout)


def main():
    assert Path(CAIRN).is_file(), f"{CAIRN}: build it (cargo build --release -p cairn-cli)"
    with tempfile.TemporaryDirectory(prefix="cairn-bench-mlflow-rest-") as tmp:
        root = Path(tmp)
        t0 = time.monotonic()
        uri = make_store(root)
        print(f"store: {RUNS} runs x {KEYS} metrics x {STEPS} steps = {RUNS * KEYS * STEPS:,} "
              f"points, {PARAMS} params a run; made in {time.monotonic() - t0:.1f} s",
              file=sys.stderr)
        url, proc = start_server(root)
        try:
            records = []
            for kind, source in (("sqlite", uri), ("rest", url)):
                secs, report = timed_import(root / f"ws-{kind}", source)
                again, second = timed_import(root / f"ws-{kind}", source)
                assert report["added"]["points"] == RUNS * KEYS * STEPS, report["added"]
                assert all(v == 0 for v in second["added"].values()), second["added"]
                records.append({
                    "source": kind, "runs": RUNS, "points": RUNS * KEYS * STEPS,
                    "params": report["added"]["params"], "seconds": round(secs, 2),
                    "runs_per_s": round(RUNS / secs, 1),
                    "points_per_s": round(RUNS * KEYS * STEPS / secs),
                    "artifact_bytes": report["artifact_bytes"],
                    "reimport_seconds": round(again, 2), "cairn": CAIRN,
                })
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    print(f"{'source':<8} {'seconds':>8} {'runs/s':>8} {'points/s':>10} {'again (s)':>10}")
    for r in records:
        print(f"{r['source']:<8} {r['seconds']:>8} {r['runs_per_s']:>8} "
              f"{r['points_per_s']:>10,} {r['reimport_seconds']:>10}")
    for r in records:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
