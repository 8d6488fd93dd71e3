#!/usr/bin/env python3
"""Search over evaluation fields (issue #14, "How fast": "search over evaluation fields at 100k
runs within the search targets" — DESIGN.md: a filtered + sorted first page in <= 50 ms p50 at
100k runs, the catalog issue's p99 <= 150 ms).

Against a running `cairn serve` on a `cairn demo --runs 100000` workspace (the demo logs an
evaluation `test` on every finished run, with slices by sex on ~30% of them):

    python3 bench/eval_search.py http://127.0.0.1:PORT [--reps 50] [--out results.jsonl]

Each query is `GET /api/v1/search?q=…&order=…&limit=100` on one keep-alive connection, the
queries in rounds (5 warm-up rounds, then --reps timed ones) so outside load falls on all alike (the client's wall time per request: HTTP, the search,
loading the page's 100 runs, JSON). Prints p50 / p99 / max and the number of matches.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time
import urllib.parse

QUERIES = [
    # Baselines: the same sorts over plain metrics and over every run.
    ("metrics.acc > 0.9", "metrics.acc DESC"),
    ("", "metrics.acc DESC"),
    ("eval.test.acc > 0.9", "eval.test.acc DESC"),
    ("fairness.acc.difference < 0.03", "metrics.acc DESC"),
    ("fairness.selection_rate.ratio >= 0.8", "created DESC"),
    ("is:compliant", "metrics.acc DESC"),
    ("is:compliant and eval.test.acc > 0.8 and fairness.acc.difference < 0.05", "eval.test.acc DESC"),
    ("eval.test.auc > 0.8 or eval.test.map50 > 0.5", "created DESC"),
    ("is:incomplete", "created DESC"),
]


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("uri")
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--out")
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.uri)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    paths = [(q, order, "/api/v1/search?" + urllib.parse.urlencode(
        {"q": q, "order": order, "limit": "100"}, quote_via=urllib.parse.quote))
        for q, order in QUERIES]
    lat: dict[str, list[float]] = {q: [] for q, _, _ in paths}
    total: dict[str, int] = {}
    # Rounds over every query, so that outside load falls on all of them alike.
    for i in range(5 + args.reps):
        for q, _, path in paths:
            t = time.perf_counter()
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            dt = (time.perf_counter() - t) * 1e3
            if resp.status != 200:
                raise SystemExit(f"{q}: HTTP {resp.status}: {body[:300]!r}")
            if i >= 5:
                lat[q].append(dt)
            total[q] = json.loads(body)["total"]
    for q, order, _ in paths:
        xs = lat[q]
        r = {"bench": "eval_search", "query": q, "order": order, "matches": total[q],
             "p50_ms": round(pct(xs, 0.5), 2), "p99_ms": round(pct(xs, 0.99), 2),
             "max_ms": round(max(xs), 2), "reps": args.reps}
        print(json.dumps(r))
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(r) + "\n")

if __name__ == "__main__":
    main()
