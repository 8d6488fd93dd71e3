#!/usr/bin/env python3
"""Cairn vs MLflow through the real `mlflow` client (issue "Tracking server").

Run by bench/run.sh, which builds Cairn, starts `mlflow server` (SQLite backend) and `cairn serve`
on free loopback ports and stops them. Each phase prints what it measured and appends one JSON
record per figure to --out.

Phases (--phase):
  ingest           RUNS runs x PARAMS params x METRICS metrics x STEPS steps through
                   MlflowClient.log_batch (BATCH metric points per call) against each server.
  disk             bytes per point on disk for the stores of an ingest (servers stopped).
  client-cost      what the mlflow client itself spends building and encoding the same log_batch
                   calls (transport replaced by a stub: no server, no socket).
  raw-ingest       the same log-batch bodies, pre-encoded, POSTed with http.client: the servers'
                   cost without the Python client's.
  populate-mlflow  SEARCH_RUNS runs into an MLflow SQLite store in-process (SqlAlchemyStore),
                   before its server starts.
  search           populates Cairn with the same runs over HTTP, then times
                   search_runs([exp], "metrics.acc > 0.9 and params.optimizer = 'adam'",
                   order_by=["metrics.acc DESC"], max_results=100) through both servers.
  rss              resident memory (current and peak) of a process tree: --pid.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import sqlite3
import statistics
import struct
import sys
import time
import urllib.parse
from pathlib import Path

SEARCH_EXPERIMENT = "search-bench"
SEARCH_FILTER = "metrics.acc > 0.9 and params.optimizer = 'adam'"
SEARCH_ORDER = ["metrics.acc DESC"]
SEARCH_MAX = 100


# ---- helpers -----------------------------------------------------------------------------


def f32(v: float) -> float:
    """A value rounded through float32, as `loss.item()` of a float32 tensor logs it."""
    return struct.unpack("f", struct.pack("f", v))[0]


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def record(args, **fields) -> None:
    fields.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    line = json.dumps(fields, sort_keys=True)
    print("  " + line, flush=True)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def targets(args) -> list[tuple[str, str]]:
    out = []
    if args.only in (None, "mlflow") and args.mlflow_uri:
        out.append(("mlflow", args.mlflow_uri))
    if args.only in (None, "cairn") and args.cairn_uri:
        out.append(("cairn", args.cairn_uri))
    return out


def file_size(p: Path) -> int:
    try:
        return p.stat().st_size
    except FileNotFoundError:
        return 0


# ---- the workload --------------------------------------------------------------------------

METRIC_NAMES = [
    "train/loss", "train/acc", "val/loss", "val/acc", "lr",
    "grad_norm", "throughput", "gpu_mem", "train/ppl", "val/ppl",
]


def metric_name(m: int) -> str:
    return METRIC_NAMES[m] if m < len(METRIC_NAMES) else f"metric_{m}"


def curve_value(m: int, run: int, step: int, steps: int, rng: random.Random) -> float:
    """Float32-origin training curves: losses decay, accuracies rise, an lr schedule, noise."""
    t = step / max(steps, 1)
    kind = m % 5
    noise = rng.gauss(0.0, 1.0)
    scale = 1.0 + (run % 7) * 0.3
    if kind in (0, 2):
        v = scale * math.exp(-3.0 * t) + 0.2 + 0.03 * noise
    elif kind in (1, 3):
        v = 0.95 - 0.8 * math.exp(-4.0 * t) + 0.01 * noise
    elif kind == 4:
        v = 3e-4 * 0.5 * (1.0 + math.cos(math.pi * t))
    else:
        v = 10.0 + m + 0.5 * noise
    return f32(v)


def run_payload(args, run: int):
    """Params and the metric batches of one run: a list of calls, each a list of
    (key, value, timestamp_ms, step). A call carries BATCH points: BATCH // METRICS consecutive
    steps of every metric, as a training loop that buffers its logging sends them."""
    rng = random.Random(1_000_003 * run + 17)
    params = [(f"param_{i:02d}", f"{rng.choice(['adam', 'sgd', 'adamw'])}-{rng.random():.6f}")
              for i in range(args.params)]
    t0 = 1_795_752_388_045 + run * 10_000_000
    points = []
    for step in range(args.steps):
        for m in range(args.metrics):
            points.append((metric_name(m), curve_value(m, run, step, args.steps, rng),
                           t0 + step * 31 + rng.randrange(5), step))
    calls = [points[i:i + args.batch] for i in range(0, len(points), args.batch)]
    return params, calls


# ---- phase: ingest -----------------------------------------------------------------------


def phase_ingest(args) -> None:
    """Both servers in one loop, interleaved run by run (MLflow gets every k-th turn when it runs
    a subset), so that the load other processes put on the machine falls on both alike."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    sides = {}
    for name, uri in targets(args):
        n_runs = args.mlflow_runs if (name == "mlflow" and args.mlflow_runs) else args.runs
        client = MlflowClient(tracking_uri=uri)
        sides[name] = {
            "client": client, "runs": n_runs, "done": 0, "metric_s": 0.0, "other_s": 0.0,
            "points": 0, "per_call": [],
            "exp": client.create_experiment(f"ingest-{int(time.time() * 1000)}"),
        }
    total = max((s["runs"] for s in sides.values()), default=0)
    for r in range(total):
        params, calls = run_payload(args, r)
        param_objs = [Param(k, v) for k, v in params]
        metric_calls = [[Metric(k, v, ts, st) for (k, v, ts, st) in c] for c in calls]
        for name, s in sides.items():
            # Spread a subset evenly over the loop: side s logs run number done when its share
            # of the loop has come.
            if s["done"] >= s["runs"] or (r + 1) * s["runs"] < (s["done"] + 1) * total:
                continue
            client = s["client"]
            t = time.perf_counter()
            rid = client.create_run(s["exp"], run_name=f"ingest-{r}").info.run_id
            client.log_batch(rid, params=param_objs)
            s["other_s"] += time.perf_counter() - t
            for ms in metric_calls:
                t = time.perf_counter()
                client.log_batch(rid, metrics=ms)
                dt = time.perf_counter() - t
                s["metric_s"] += dt
                s["per_call"].append(dt)
                s["points"] += len(ms)
            t = time.perf_counter()
            client.set_terminated(rid)
            s["other_s"] += time.perf_counter() - t
            s["done"] += 1
        if (r + 1) % max(1, total // 10) == 0:
            print("  " + ", ".join(
                f"{n}: {s['done']}/{s['runs']} runs {s['points'] / max(s['metric_s'], 1e-9):,.0f} points/s"
                for n, s in sides.items()), flush=True)
    for name, s in sides.items():
        pts, per_call = s["points"], s["per_call"]
        record(args, bench="ingest", server=name, runs=s["runs"], params=args.params,
               metrics=args.metrics, steps=args.steps, batch=args.batch, points=pts,
               log_batch_calls=len(per_call), interleaved_with=[n for n in sides if n != name],
               seconds_in_metric_log_batch=round(s["metric_s"], 3),
               points_per_s=round(pts / s["metric_s"], 1),
               log_batch_ms_p50=round(pct(per_call, 50) * 1e3, 3),
               log_batch_ms_p99=round(pct(per_call, 99) * 1e3, 3),
               seconds_in_create_params_terminate=round(s["other_s"], 3),
               end_to_end_points_per_s=round(pts / (s["metric_s"] + s["other_s"]), 1))


# ---- phase: client cost ------------------------------------------------------------------


class _StubResponse:
    status_code = 200
    text = "{}"
    headers: dict = {}

    def json(self):
        return {}


def phase_client_cost(args) -> None:
    """Times MlflowClient.log_batch with the HTTP transport replaced by a stub that still
    encodes the body to JSON as requests would: what the client costs per point, no server."""
    import mlflow.utils.rest_utils as rest_utils
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    def stub(host_creds, endpoint, method, **kw):
        if "json" in kw:
            json.dumps(kw["json"]).encode()  # what requests does with json=
        return _StubResponse()

    rest_utils.http_request = stub
    client = MlflowClient(tracking_uri="http://127.0.0.1:9")  # never contacted
    rid = "0" * 32
    n_runs = min(args.runs, 10)
    build = 0.0
    call = 0.0
    points = 0
    for r in range(n_runs):
        _, calls = run_payload(args, r)
        for c in calls:
            t = time.perf_counter()
            ms = [Metric(k, v, ts, st) for (k, v, ts, st) in c]
            build += time.perf_counter() - t
            t = time.perf_counter()
            client.log_batch(rid, metrics=ms)
            call += time.perf_counter() - t
            points += len(ms)
    record(args, bench="client-cost", points=points, batch=args.batch,
           client_log_batch_us_per_point=round(call / points * 1e6, 3),
           client_log_batch_ms_per_call=round(call / (points / args.batch) * 1e3, 3),
           client_max_points_per_s=round(points / call, 1),
           metric_objects_us_per_point=round(build / points * 1e6, 3))


# ---- phase: raw ingest -------------------------------------------------------------------


class Http:
    """One keep-alive connection; POST/GET JSON."""

    def __init__(self, uri: str):
        u = urllib.parse.urlparse(uri)
        self.host, self.port = u.hostname, u.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=600)

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", path, body=body,
                          headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"POST {path}: HTTP {resp.status}: {data[:300]!r}")
        return data

    def post_json(self, path: str, obj) -> dict:
        return json.loads(self.post(path, json.dumps(obj).encode()) or b"{}")


def phase_raw_ingest(args) -> None:
    """The same log-batch bodies, pre-encoded, over one keep-alive connection per server,
    interleaved run by run."""
    sides = {}
    for name, uri in targets(args):
        h = Http(uri)
        exp = h.post_json("/api/2.0/mlflow/experiments/create",
                          {"name": f"raw-{int(time.time() * 1000)}"})["experiment_id"]
        sides[name] = {"h": h, "exp": exp, "spent": 0.0, "points": 0}
    for r in range(args.raw_runs):
        _, calls = run_payload(args, r)
        for name, s in sides.items():
            h = s["h"]
            rid = h.post_json("/api/2.0/mlflow/runs/create",
                              {"experiment_id": s["exp"], "start_time": 1})["run"]["info"]["run_id"]
            bodies = [json.dumps({"run_id": rid, "metrics": [
                {"key": k, "value": v, "timestamp": ts, "step": st} for (k, v, ts, st) in c
            ]}).encode() for c in calls]
            for b, c in zip(bodies, calls):
                t = time.perf_counter()
                h.post("/api/2.0/mlflow/runs/log-batch", b)
                s["spent"] += time.perf_counter() - t
                s["points"] += len(c)
            h.post_json("/api/2.0/mlflow/runs/update",
                        {"run_id": rid, "status": "FINISHED", "end_time": 2})
    for name, s in sides.items():
        record(args, bench="raw-ingest", server=name, runs=args.raw_runs, points=s["points"],
               batch=args.batch, points_per_s=round(s["points"] / s["spent"], 1),
               ms_per_call=round(s["spent"] / (s["points"] / args.batch) * 1e3, 3))


# ---- phase: disk -------------------------------------------------------------------------


def phase_disk(args) -> None:
    if args.mlflow_db and args.only in (None, "mlflow"):
        db = Path(args.mlflow_db)
        size = sum(file_size(Path(str(db) + s)) for s in ("", "-wal", "-journal"))
        con = sqlite3.connect(db)
        n = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
        con.close()
        record(args, bench="disk", server="mlflow", db_bytes=size, points=n,
               bytes_per_point=round(size / max(n, 1), 2),
               note="whole SQLite db (params, tags, latest_metrics included) / metric rows")
    if args.cairn_workspace and args.only in (None, "cairn"):
        ws = Path(args.cairn_workspace)
        db = ws / "metrics.db"
        main, wal = file_size(db), file_size(ws / "metrics.db-wal")
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        pts, cbytes, nchunks = con.execute(
            "SELECT COALESCE(SUM(count),0), COALESCE(SUM(length(data)+length(blocks)),0), "
            "COUNT(*) FROM chunks").fetchone()
        tail = con.execute("SELECT COALESCE(SUM(next_seq - tail_start),0) FROM series").fetchone()[0]
        total = con.execute("SELECT COALESCE(SUM(count),0) FROM series").fetchone()[0]
        con.close()
        record(args, bench="disk", server="cairn", metrics_db_bytes=main, wal_bytes=wal,
               points=total, tail_points=tail, chunks=nchunks,
               bytes_per_point_files=round((main + wal) / max(total, 1), 2),
               bytes_per_point_db_only=round(main / max(total, 1), 2),
               sealed_chunk_bytes=cbytes,
               sealed_chunk_bytes_per_point=round(cbytes / max(pts, 1), 2),
               catalog_db_bytes=file_size(ws / "catalog.db") + file_size(ws / "catalog.db-wal"))


# ---- phases: search ----------------------------------------------------------------------


def search_run(i: int) -> dict:
    """The i-th of the search runs: the same on both sides."""
    rng = random.Random(7_919 * i + 3)
    optimizer = rng.choice(["adam", "sgd", "adamw", "rmsprop"])
    acc = f32(min(0.999, max(0.0, rng.gauss(0.8, 0.08))))
    loss = f32(max(0.0, (1.0 - acc) * 2.0 + rng.gauss(0.0, 0.05)))
    return {
        "name": f"search-{i:05d}",
        "params": {"optimizer": optimizer, "lr": f"{10 ** rng.uniform(-5, -2):.2e}"},
        "metrics": {"acc": acc, "loss": loss},
        "tags": {"team": rng.choice(["vision", "nlp", "speech"]),
                 "dataset": rng.choice(["imagenet-1k", "c4-en", "librispeech"])},
        "start": 1_795_000_000_000 + i * 60_000,
    }


def phase_populate_mlflow(args) -> None:
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    db = Path(args.mlflow_db)
    art = Path(args.mlflow_artifacts or (str(db) + "-artifacts"))
    art.mkdir(parents=True, exist_ok=True)
    store = SqlAlchemyStore(f"sqlite:///{db}", str(art))
    # Setup only, not measured: no fsync per commit (SQLite's default is one per transaction,
    # ~3 transactions a run, and 10k runs then took over 30 min on this machine). The file is
    # an ordinary rollback-journal SQLite database either way.
    from sqlalchemy import event

    def _fast(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA synchronous = OFF")

    event.listen(store.engine, "connect", _fast)
    store.engine.dispose()
    exp = store.create_experiment(SEARCH_EXPERIMENT)
    t0 = time.perf_counter()
    for i in range(args.search_runs):
        r = search_run(i)
        run = store.create_run(exp, user_id="bench", start_time=r["start"], tags=[],
                               run_name=r["name"])
        rid = run.info.run_id
        store.log_batch(
            rid,
            metrics=[Metric(k, v, r["start"] + 1000, 0) for k, v in r["metrics"].items()],
            params=[Param(k, v) for k, v in r["params"].items()],
            tags=[RunTag(k, v) for k, v in r["tags"].items()],
        )
        store.update_run_info(rid, RunStatus.FINISHED, r["start"] + 2000, None)
        if (i + 1) % max(1, args.search_runs // 10) == 0:
            print(f"  mlflow populate: {i + 1}/{args.search_runs} runs", flush=True)
    record(args, bench="populate", server="mlflow", via="SqlAlchemyStore in-process",
           runs=args.search_runs, seconds=round(time.perf_counter() - t0, 2))


def populate_cairn_http(args, uri: str) -> None:
    """The same runs into Cairn through its MLflow REST API (create, log-batch, update)."""
    h = Http(uri)
    exp = h.post_json("/api/2.0/mlflow/experiments/create",
                      {"name": SEARCH_EXPERIMENT})["experiment_id"]
    t0 = time.perf_counter()
    for i in range(args.search_runs):
        r = search_run(i)
        rid = h.post_json("/api/2.0/mlflow/runs/create", {
            "experiment_id": exp, "run_name": r["name"], "user_id": "bench",
            "start_time": r["start"], "tags": [{"key": "mlflow.runName", "value": r["name"]}],
        })["run"]["info"]["run_id"]
        h.post_json("/api/2.0/mlflow/runs/log-batch", {
            "run_id": rid,
            "metrics": [{"key": k, "value": v, "timestamp": r["start"] + 1000, "step": 0}
                        for k, v in r["metrics"].items()],
            "params": [{"key": k, "value": v} for k, v in r["params"].items()],
            "tags": [{"key": k, "value": v} for k, v in r["tags"].items()],
        })
        h.post_json("/api/2.0/mlflow/runs/update",
                    {"run_id": rid, "status": "FINISHED", "end_time": r["start"] + 2000})
        if (i + 1) % max(1, args.search_runs // 10) == 0:
            print(f"  cairn populate: {i + 1}/{args.search_runs} runs "
                  f"({(i + 1) / (time.perf_counter() - t0):.0f} runs/s)", flush=True)
    record(args, bench="populate", server="cairn", via="MLflow REST (create, log-batch, update)",
           runs=args.search_runs, seconds=round(time.perf_counter() - t0, 2))


def expected_top(args) -> list[float]:
    accs = [r["metrics"]["acc"] for r in map(search_run, range(args.search_runs))
            if r["params"]["optimizer"] == "adam" and r["metrics"]["acc"] > 0.9]
    return sorted(accs, reverse=True)


def phase_search(args) -> None:
    from mlflow.tracking import MlflowClient

    want = expected_top(args)
    print(f"  {len(want)} of {args.search_runs} runs match the filter", flush=True)
    for name, uri in targets(args):
        if name == "cairn" and not args.no_populate_cairn:
            populate_cairn_http(args, uri)
        client = MlflowClient(tracking_uri=uri)
        exp = client.get_experiment_by_name(SEARCH_EXPERIMENT).experiment_id
        # The same query as a raw POST (what the server alone costs, JSON included).
        body = json.dumps({"experiment_ids": [exp], "filter": SEARCH_FILTER,
                           "order_by": SEARCH_ORDER, "max_results": SEARCH_MAX}).encode()
        h = Http(uri)
        got = None
        for _ in range(3):  # warm-up
            got = client.search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER,
                                     max_results=SEARCH_MAX)
            h.post("/api/2.0/mlflow/runs/search", body)
        accs = [r.data.metrics["acc"] for r in got]
        ok = accs == want[:SEARCH_MAX]
        if not ok:
            print(f"  WARNING {name}: results differ from the expected top {SEARCH_MAX}: "
                  f"got {len(accs)} runs, first {accs[:3]} want {want[:3]}", flush=True)
        client_t, raw_t = [], []
        for _ in range(args.queries):
            t = time.perf_counter()
            client.search_runs([exp], SEARCH_FILTER, order_by=SEARCH_ORDER,
                               max_results=SEARCH_MAX)
            client_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            h.post("/api/2.0/mlflow/runs/search", body)
            raw_t.append(time.perf_counter() - t)
        record(args, bench="search", server=name, runs=args.search_runs,
               matching=len(want), returned=len(accs), results_match_expected=ok,
               queries=args.queries,
               client_ms_p50=round(pct(client_t, 50) * 1e3, 2),
               client_ms_p99=round(pct(client_t, 99) * 1e3, 2),
               client_ms_mean=round(statistics.mean(client_t) * 1e3, 2),
               raw_http_ms_p50=round(pct(raw_t, 50) * 1e3, 2),
               raw_http_ms_p99=round(pct(raw_t, 99) * 1e3, 2))


# ---- phase: rss --------------------------------------------------------------------------


def phase_rss(args) -> None:
    def children(pid: int) -> list[int]:
        out = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == pid:
                    out.append(int(d.name))
        return out

    todo, tree = [args.pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children(p))
    rss = hwm = 0
    for p in tree:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1])
        except OSError:
            pass
    record(args, bench="rss", server=args.label or str(args.pid), processes=len(tree),
           rss_mib=round(rss / 1024, 1), peak_rss_mib_sum=round(hwm / 1024, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase", default="ingest",
                    choices=["ingest", "disk", "client-cost", "raw-ingest", "populate-mlflow",
                             "search", "rss"])
    ap.add_argument("--only", choices=["cairn", "mlflow"])
    ap.add_argument("--mlflow-uri")
    ap.add_argument("--cairn-uri")
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--mlflow-runs", type=int, default=0,
                    help="runs on the MLflow side (a subset; default: --runs)")
    ap.add_argument("--params", type=int, default=20)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=1000, help="metric points per log_batch call")
    ap.add_argument("--raw-runs", type=int, default=20, help="runs in the raw-ingest phase")
    ap.add_argument("--search-runs", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--no-populate-cairn", action="store_true",
                    help="search: Cairn already holds the search runs")
    ap.add_argument("--mlflow-db", help="MLflow SQLite file (populate-mlflow, disk)")
    ap.add_argument("--mlflow-artifacts")
    ap.add_argument("--cairn-workspace", help="Cairn workspace dir (disk)")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--label")
    ap.add_argument("--out", help="append JSON records here")
    args = ap.parse_args()
    if args.batch % args.metrics:
        sys.exit("--batch must be a multiple of --metrics")
    {
        "ingest": phase_ingest,
        "disk": phase_disk,
        "client-cost": phase_client_cost,
        "raw-ingest": phase_raw_ingest,
        "populate-mlflow": phase_populate_mlflow,
        "search": phase_search,
        "rss": phase_rss,
    }[args.phase](args)


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    main()
