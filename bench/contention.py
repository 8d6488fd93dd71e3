#!/usr/bin/env python3
"""Reads under writes against one `cairn serve` (issue #12, "How fast").

Run by `bench/run.sh contention`, which starts `cairn serve` on a copy of a `cairn demo` workspace.
Only the public HTTP APIs are used (`GET /api/v1/search`, MLflow `runs/get`, `experiments/create`,
`runs/create`, `runs/log-batch`), so the same script measures a server built before and after the
`&self` Workspace handle.

Every client is its own process (Python's GIL would serialise threads) with one keep-alive
connection. A window is WARMUP seconds of traffic that is not counted, then DURATION seconds that
are: a request counts when it starts inside the window, a writer batch when it ends inside it.
Windows, in this order (--windows):

  idle          one reader alternating the search and `runs/get` (one of the search page's runs)
  writer-alone  one writer streaming `runs/log-batch` (BATCH metrics per call: 10 metrics x
                BATCH/10 consecutive steps, one run, the next call as soon as the last returns)
  under-write   the reader of `idle` and the writer of `writer-alone` at once
  search-1      one reader, search only: requests/s
  search-N      N readers (--readers), search only: requests/s in total
  search-N-under-write  the N readers and the writer at once

Each window appends one JSON record per client kind to --out (bench "contention").
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import random
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mlflow_compare import METRIC_NAMES, curve_value, pct, record  # noqa: E402

WINDOWS = ["idle", "writer-alone", "under-write", "search-1", "search-N", "search-N-under-write"]


class Conn:
    """One keep-alive HTTP/1.1 connection; the bearer token from CAIRN_TOKEN when set."""

    def __init__(self, uri: str, timeout: float = 60.0):
        u = urllib.parse.urlparse(uri)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.headers = {"Content-Type": "application/json"}
        token = os.environ.get("CAIRN_TOKEN")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=self.headers)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def ok(self, method: str, path: str, body: bytes | None = None) -> bytes:
        status, data = self.request(method, path, body)
        if status != 200:
            raise RuntimeError(f"{method} {path[:120]}: HTTP {status}: {data[:300]!r}")
        return data


def search_path(args) -> str:
    q = {"q": args.query, "order": args.order, "limit": str(args.limit)}
    return "/api/v1/search?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)


# ---- clients (each in its own process) -------------------------------------------------------


def reader(uri: str, paths: list[tuple[str, str]], t0: float, t1: float, out) -> None:
    """Cycles through `paths` ((label, GET path)); latencies of requests started in [t0, t1)."""
    c = Conn(uri)
    lat = {label: [] for label, _ in paths}
    errors = {label: 0 for label, _ in paths}
    first_error = None
    i = 0
    while True:
        label, path = paths[i % len(paths)]
        i += 1
        start = time.monotonic()
        if start >= t1:
            break
        try:
            status, data = c.request("GET", path)
        except (OSError, http.client.HTTPException) as e:
            status, data = -1, str(e).encode()
            c = Conn(uri)
        dt = time.monotonic() - start
        if start < t0:
            continue
        if status == 200:
            lat[label].append(dt)
        else:
            errors[label] += 1
            first_error = first_error or f"{label}: HTTP {status}: {data[:200]!r}"
    out.put({"kind": "reader", "lat": lat, "errors": errors, "first_error": first_error})


def batch_bodies(run_id: str, batch: int, stop: threading.Event, q: queue.Queue) -> None:
    """Encodes log-batch bodies ahead of the sender (the GIL is free while it waits on the
    socket): 10 metrics x batch/10 consecutive steps per body, steps rising without end, values
    from float32-rounded training curves (10 cycles of precomputed values)."""
    per = batch // len(METRIC_NAMES)
    rng = random.Random(12_345)
    cycles = 10
    tmpl = [[",".join(
        '{"key":"%s","value":%r,"timestamp":%%(t)d,"step":%%(s)d}'
        % (METRIC_NAMES[m], curve_value(m, 0, c * per + j, cycles * per, rng))
        for m in range(len(METRIC_NAMES))) for j in range(per)] for c in range(cycles)]
    head = '{"run_id":"%s","metrics":[' % run_id
    b = 0
    while not stop.is_set():
        s0 = b * per
        t0 = 1_795_752_388_045 + s0 * 31
        rows = tmpl[b % cycles]
        body = (head + ",".join([rows[j] % {"t": t0 + j * 31, "s": s0 + j}
                                 for j in range(per)]) + "]}").encode()
        while not stop.is_set():
            try:
                q.put((body, per * len(METRIC_NAMES)), timeout=0.1)
                break
            except queue.Full:
                continue
        b += 1


def writer(uri: str, run_id: str, batch: int, t0: float, t1: float, out) -> None:
    c = Conn(uri)
    stop = threading.Event()
    bodies: queue.Queue = queue.Queue(maxsize=4)
    enc = threading.Thread(target=batch_bodies, args=(run_id, batch, stop, bodies), daemon=True)
    enc.start()
    lat, points, errors, first_error = [], 0, 0, None
    while True:
        body, n = bodies.get()
        start = time.monotonic()
        if start >= t1:
            break
        try:
            status, data = c.request("POST", "/api/2.0/mlflow/runs/log-batch", body)
        except (OSError, http.client.HTTPException) as e:
            status, data = -1, str(e).encode()
            c = Conn(uri)
        end = time.monotonic()
        if status != 200:
            if start >= t0:
                errors += 1
                first_error = first_error or f"log-batch: HTTP {status}: {data[:200]!r}"
            continue
        if t0 <= end <= t1:
            points += n
        if start >= t0:
            lat.append(end - start)
    stop.set()
    out.put({"kind": "writer", "lat": lat, "points": points, "errors": errors,
             "first_error": first_error})


def child(fn, out, *a) -> None:
    """A client's process: whatever goes wrong is reported to the driver, which is waiting."""
    try:
        fn(*a, out)
    except BaseException as e:  # noqa: BLE001 (the driver re-raises it)
        out.put({"kind": "failed", "error": f"{fn.__name__}: {e!r}"})


# ---- the driver ------------------------------------------------------------------------------


def summary(lat: list[float]) -> dict:
    return {
        "requests": len(lat),
        "ms_p50": round(pct(lat, 50) * 1e3, 2),
        "ms_p99": round(pct(lat, 99) * 1e3, 2),
        "ms_mean": round(sum(lat) / len(lat) * 1e3, 2) if lat else float("nan"),
        "ms_max": round(max(lat) * 1e3, 2) if lat else float("nan"),
    }


def new_writer_run(args, c: Conn, window: str) -> str:
    exp = json.loads(c.ok("POST", "/api/2.0/mlflow/experiments/create", json.dumps(
        {"name": f"contention-{window}-{int(time.time() * 1000)}"}).encode()))["experiment_id"]
    run = json.loads(c.ok("POST", "/api/2.0/mlflow/runs/create", json.dumps(
        {"experiment_id": exp, "run_name": f"writer-{window}", "user_id": "bench",
         "start_time": int(time.time() * 1000)}).encode()))
    return run["run"]["info"]["run_id"]


def window(args, name: str, readers: list[list[tuple[str, str]]], with_writer: bool,
           base: dict) -> None:
    c = Conn(args.cairn_uri)
    run_id = new_writer_run(args, c, name) if with_writer else None
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    t0 = time.monotonic() + args.warmup + 0.5  # 0.5 s for the processes to start
    t1 = t0 + args.duration
    procs = [ctx.Process(target=child, args=(reader, out, args.cairn_uri, p, t0, t1))
             for p in readers]
    if with_writer:
        procs.append(ctx.Process(target=child, args=(writer, out, args.cairn_uri, run_id,
                                                     args.batch, t0, t1)))
    load_before = os.getloadavg()[0]
    for p in procs:
        p.start()
    # Results are read before join: a child blocks on a full pipe until it is read.
    results = [out.get(timeout=t1 - time.monotonic() + 300) for _ in procs]
    for p in procs:
        p.join()
    load_after = os.getloadavg()[0]
    failed = [r["error"] for r in results if r["kind"] == "failed"]
    if failed:
        sys.exit(f"window {name}: a client failed: {failed}")
    common = dict(base, window=name, readers=len(readers), writer=with_writer,
                  duration_s=args.duration, warmup_s=args.warmup,
                  load_1m_before=round(load_before, 2), load_1m_after=round(load_after, 2))
    rs = [r for r in results if r["kind"] == "reader"]
    labels = sorted({label for r in rs for label in r["lat"]})
    for label in labels:
        lat = [x for r in rs for x in r["lat"][label]]
        errors = sum(r["errors"][label] for r in rs)
        first = next((r["first_error"] for r in rs if r["first_error"]), None)
        rec = dict(common, client="reader", endpoint=label, errors=errors,
                   req_per_s=round(len(lat) / args.duration, 1), **summary(lat))
        if first:
            rec["first_error"] = first
        record(args, **rec)
    for w in (r for r in results if r["kind"] == "writer"):
        rec = dict(common, client="writer", endpoint="log-batch", batch=args.batch,
                   errors=w["errors"], points=w["points"],
                   points_per_s=round(w["points"] / args.duration, 1), **summary(w["lat"]))
        if w["first_error"]:
            rec["first_error"] = w["first_error"]
        record(args, **rec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cairn-uri", required=True)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds counted per window")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds not counted per window")
    ap.add_argument("--readers", type=int, default=8, help="readers of the search-N windows")
    ap.add_argument("--batch", type=int, default=1000, help="metric points per log-batch")
    ap.add_argument("--query", default="metrics.acc > 0.5 and params.optimizer = 'adam'")
    ap.add_argument("--order", default="metrics.acc DESC")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--windows", default=",".join(WINDOWS),
                    help=f"comma-separated, of: {', '.join(WINDOWS)}")
    ap.add_argument("--label", help="stored with every record (e.g. the commit measured)")
    ap.add_argument("--out", help="append JSON records here")
    args = ap.parse_args()
    if args.batch % len(METRIC_NAMES) or not 0 < args.batch <= 1000:
        sys.exit(f"--batch must be a multiple of {len(METRIC_NAMES)} in 10..1000 (MLflow's limit)")
    wanted = [w.strip() for w in args.windows.split(",") if w.strip()]
    unknown = [w for w in wanted if w not in WINDOWS]
    if unknown:
        sys.exit(f"unknown window(s) {unknown}; known: {WINDOWS}")

    # The page a UI shows first, and the runs on it for runs/get; checked once, parsed once.
    c = Conn(args.cairn_uri)
    search = search_path(args)
    t = time.monotonic()
    answer = c.ok("GET", search)
    first_ms = (time.monotonic() - t) * 1e3
    page = json.loads(answer)
    if not isinstance(page, dict) or "total" not in page or "runs" not in page:
        sys.exit(f"GET {search}: expected {{total, runs: [{{id, ...}}]}}, got {answer[:300]!r}")
    ids = [r["id"] for r in page["runs"]]
    if not ids:
        sys.exit(f"the search {args.query!r} matches no run: is this a `cairn demo` workspace?")
    gets = [f"/api/2.0/mlflow/runs/get?run_id={urllib.parse.quote(i)}" for i in ids]
    run0 = json.loads(c.ok("GET", gets[0]))["run"]["info"]["run_id"]
    everything = json.loads(c.ok("GET", "/api/v1/search?limit=1"))["total"]
    base = {"bench": "contention", "workspace_runs": everything, "query": args.query,
            "order": args.order, "limit": args.limit, "matching": page["total"]}
    if args.label:
        base["label"] = args.label
    print(f"  {everything} runs; the search matches {page['total']} "
          f"(first answer {first_ms:.0f} ms); runs/get of {run0} and {len(ids) - 1} more",
          flush=True)

    # A reader alternates the search and runs/get of the page's runs in turn.
    mixed = []
    for g in gets:
        mixed += [("search", search), ("runs/get", g)]
    only_search = [("search", search)]
    n = args.readers
    plans = {
        "idle": ([mixed], False),
        "writer-alone": ([], True),
        "under-write": ([mixed], True),
        "search-1": ([only_search], False),
        "search-N": ([only_search] * n, False),
        "search-N-under-write": ([only_search] * n, True),
    }
    for w in wanted:
        readers, with_writer = plans[w]
        name = w.replace("-N", f"-{n}")
        print(f"  window {name}: {len(readers)} reader(s){' + writer' if with_writer else ''}, "
              f"{args.warmup:g} s warm-up + {args.duration:g} s", flush=True)
        window(args, name, readers, with_writer, base)


if __name__ == "__main__":
    main()
