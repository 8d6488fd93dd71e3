#!/usr/bin/env python3
"""`log_model` of a large model through the real `mlflow` client: Cairn vs MLflow in one run
(issue #13, "How fast": ≥ MLflow's throughput).

Starts `mlflow server` (SQLite store, proxied artifacts in a temporary directory, as the
tests' reference server) and `cairn serve` (a fresh workspace) on free loopback ports, then,
interleaving the two servers, REPEAT times each:

  log_model     `mlflow.pyfunc.log_model(name="model", python_model=…, artifacts={"weights":
                file})` in a fresh run: a pyfunc model whose weights file holds MB megabytes of
                random bytes (so nothing compresses), pip requirements given (no inference).
  log_artifact  `mlflow.log_artifact(file)` of the same file: the upload underneath.

Both servers are left to settle first (--settle) and each kind of call is made once, untimed,
on each server.

Throughput = MB / wall time of the call, client included (what a training script waits for).
A server that does not serve a call (Cairn before logged models) is reported as such, not
timed. One JSON record per measurement is printed, then a summary table.

    CAIRN_BIN=… .venv/bin/python bench/log_model.py [--mb 100] [--repeat 3]

Not part of the test suite (timings are benchmarks): BENCHMARKS.md records the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "mlflow"))

os.environ.update({
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "600",
    "GIT_PYTHON_REFRESH": "quiet",
})
for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
            "MLFLOW_RUN_ID"):
    os.environ.pop(var, None)

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
from reference import start_reference, stop_reference  # noqa: E402

BANNER = re.compile(r"^Cairn is serving (.+) at (http://127\.0\.0\.1:\d+)\s*$")


class Weights(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.size = os.path.getsize(context.artifacts["weights"])

    def predict(self, context, model_input, params=None):
        return [self.size] * len(model_input)


def start_cairn(binary: str, workspace: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [binary, "serve", "--port", "0", "--workspace", str(workspace), "--user", "bench"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    m = BANNER.match(proc.stdout.readline())
    if not m:
        proc.kill()
        raise SystemExit("cairn serve did not announce itself")
    return proc, m.group(2)


def timed(uri: str, what: str, weights: Path) -> float | str:
    """Seconds one call took, or why the server did not serve it."""
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("log-model-bench")
    with mlflow.start_run():
        t = time.perf_counter()
        try:
            if what == "log_model":
                mlflow.pyfunc.log_model(name="model", python_model=Weights(),
                                        artifacts={"weights": str(weights)},
                                        pip_requirements=["mlflow"])
            else:
                mlflow.log_artifact(str(weights))
        except mlflow.exceptions.MlflowException as e:
            return f"not served: {e.error_code}: {str(e.message)[:160]}"
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=int, default=100, help="size of the weights file (MiB)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--settle", type=int, default=40,
                    help="seconds to wait after both servers answer: MLflow's server starts its "
                         "job schedulers some 30 s after it first answers, which slows it "
                         "meanwhile")
    ap.add_argument("--cairn", default=os.environ.get("CAIRN_BIN",
                                                      str(ROOT / "target/release/cairn")))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cairn-log-model-") as tmp:
        tmp = Path(tmp)
        weights = tmp / "weights.bin"
        with open(weights, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        (tmp / "ref").mkdir()
        ref = start_reference(tmp / "ref")
        cairn, cairn_uri = start_cairn(args.cairn, tmp / "ws")
        servers = {"mlflow": ref.uri, "cairn": cairn_uri}
        results: dict[tuple[str, str], list] = {}
        try:
            time.sleep(args.settle)
            # One untimed call of each kind on each server (imports, first connections).
            for what in ("log_artifact", "log_model"):
                for name in servers:
                    r = timed(servers[name], what, weights)
                    print(json.dumps({"warm_up": what, "server": name,
                                      "result": r if isinstance(r, str) else round(r, 3)}),
                          flush=True)
            for what in ("log_artifact", "log_model"):
                for i in range(args.repeat):
                    # Interleaved, and the order swapped each time, so neither server always
                    # goes first (page cache, the client's warm-up).
                    order = ["mlflow", "cairn"] if i % 2 == 0 else ["cairn", "mlflow"]
                    for name in order:
                        r = timed(servers[name], what, weights)
                        results.setdefault((what, name), []).append(r)
                        rec = {"what": what, "server": name, "mb": args.mb, "try": i + 1}
                        if isinstance(r, float):
                            rec.update(seconds=round(r, 3), mb_s=round(args.mb / r, 1))
                        else:
                            rec["error"] = r
                        print(json.dumps(rec), flush=True)
        finally:
            mlflow.set_tracking_uri(None)
            cairn.terminate()
            cairn.wait(timeout=30)
            stop_reference(ref.proc)
        print(f"\n{args.mb} MiB, {args.repeat} tries each, median MiB/s (client wall time):")
        for what in ("log_artifact", "log_model"):
            row = []
            for name in ("mlflow", "cairn"):
                rs = results[(what, name)]
                times = [r for r in rs if isinstance(r, float)]
                row.append(f"{name} {args.mb / statistics.median(times):.1f} "
                           f"({', '.join(f'{args.mb / t:.1f}' for t in times)})"
                           if times else f"{name} {rs[0]}")
            print(f"  {what:13} " + " | ".join(row))


if __name__ == "__main__":
    main()
