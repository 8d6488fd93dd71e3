#!/usr/bin/env bash
# Cairn's benchmarks (see BENCHMARKS.md for what each measures and the figures of the last run).
#
#   bench/run.sh [build] [cargo] [demo] [ingest] [client] [search] [contention]   (no argument: all)
#
# build   cargo build --release -p cairn-cli
# cargo   cargo bench -p cairn-metrics --bench ingest; cargo bench -p cairn-core --bench ingest
# demo    `cairn demo --runs $DEMO_RUNS` into a fresh workspace (wall, peak RSS, size), then
#         `cairn runs list --limit 50` and `cairn runs show ID` on it (hyperfine, peak RSS)
# ingest  mlflow server (SQLite) and cairn serve on fresh stores and free loopback ports; the
#         MLflow client logs the same runs into both; bytes per point; raw-HTTP ingest; RSS
# client  what the MLflow client itself costs per log_batch (no server)
# search  $SEARCH_RUNS runs into both (MLflow in-process before its server starts, Cairn over
#         HTTP), then search_runs p50/p99 through both servers
# contention  cairn serve on a copy of a $DEMO_RUNS-run demo workspace ($DEMO_WS, made there when
#         missing; default $BENCH_OUT/demo-ws); /api/v1/search and runs/get latency from one reader
#         idle and while a writer streams log-batch, the writer's points/s alone and under reads,
#         1 vs $READERS search readers (bench/contention.py; issue #12)
#
# Knobs (environment): BENCH_OUT (default /tmp/cairn-bench), RUNS (100), MLFLOW_RUNS (default RUNS;
# e.g. 20 to run the MLflow side of `ingest` on a subset: it logs ~3.5k points/s), STEPS (1000), SEARCH_RUNS (10000),
# QUERIES (50), DEMO_RUNS (100000), RAW_RUNS (10: runs of the raw-HTTP ingest), PYTHON / MLFLOW (default: the project's .venv).
# contention: DEMO_WS (a demo workspace to copy; kept as it is), WINDOW_S (20: seconds counted per
# window), WARMUP_S (3), READERS (8), CAIRN_BIN (measure this binary instead of the build's),
# LABEL (stored in each contention record; default: this checkout's commit; name the build when
# CAIRN_BIN is another one). The demo step (re)builds DEMO_WS.
# Results: $BENCH_OUT/results.jsonl (one JSON record per figure) and $BENCH_OUT/*.txt logs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_OUT:-/tmp/cairn-bench}
PY=${PYTHON:-$ROOT/.venv/bin/python}
# contention needs no package: any python3 does when the venv is absent.
[ -x "$PY" ] || PY=$(command -v python3)
MLFLOW=${MLFLOW:-$ROOT/.venv/bin/mlflow}
# The binary is copied out of target/ so that a concurrent rebuild cannot change it mid-run.
CAIRN=$OUT/cairn
RUNS=${RUNS:-100}
MLFLOW_RUNS=${MLFLOW_RUNS:-$RUNS}
STEPS=${STEPS:-1000}
SEARCH_RUNS=${SEARCH_RUNS:-10000}
QUERIES=${QUERIES:-50}
DEMO_RUNS=${DEMO_RUNS:-100000}
RAW_RUNS=${RAW_RUNS:-10}
DEMO_WS=${DEMO_WS:-$OUT/demo-ws}
WINDOW_S=${WINDOW_S:-20}
WARMUP_S=${WARMUP_S:-3}
READERS=${READERS:-8}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
LABEL=${LABEL:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')}
DRIVER="$PY $ROOT/bench/mlflow_compare.py"
RESULTS=$OUT/results.jsonl

mkdir -p "$OUT"
STEPS_WANTED=("$@")
[ ${#STEPS_WANTED[@]} -eq 0 ] && STEPS_WANTED=(build cargo demo ingest client search contention)
want() { local s; for s in "${STEPS_WANTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
log() { printf '\n== %s ==\n' "$*"; }

# ---- servers ---------------------------------------------------------------------------------

STARTED=()   # pids of the servers this script started

free_port() {
    "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_healthy() { # URL PID NAME
    local i
    for i in $(seq 1 300); do
        if curl -sf -o /dev/null "$1/health"; then
            echo "$3 healthy at $1 after ${i}s"
            return 0
        fi
        kill -0 "$2" 2>/dev/null || { echo "$3 exited; see its log" >&2; return 1; }
        sleep 1
    done
    echo "$3 did not answer $1/health within 300 s" >&2
    return 1
}

descendants() { # PID -> the pid and all its descendants
    local p c
    echo "$1"
    for c in $(pgrep -P "$1" 2>/dev/null || true); do descendants "$c"; done
}

stop_server() { # PID
    local pid=$1 tree i
    kill -0 "$pid" 2>/dev/null || return 0
    tree=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    # Whatever of this server's own tree is still there after 60 s.
    for p in $tree; do kill -KILL "$p" 2>/dev/null || true; done
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local p
    for p in "${STARTED[@]}"; do stop_server "$p"; done
    STARTED=()
}
trap cleanup EXIT

start_mlflow() { # DB ARTIFACTS -> sets MLFLOW_PID, MLFLOW_URI
    local port
    port=$(free_port)
    mkdir -p "$2"
    "$MLFLOW" server --backend-store-uri "sqlite:///$1" --default-artifact-root "$2" \
        --host 127.0.0.1 --port "$port" >"$OUT/mlflow-server-$port.log" 2>&1 &
    MLFLOW_PID=$!
    STARTED+=("$MLFLOW_PID")
    MLFLOW_URI=http://127.0.0.1:$port
    wait_healthy "$MLFLOW_URI" "$MLFLOW_PID" "mlflow server"
}

start_cairn() { # WORKSPACE -> sets CAIRN_PID, CAIRN_URI
    local port
    port=$(free_port)
    "$CAIRN" --workspace "$1" --user bench serve --port "$port" >"$OUT/cairn-serve-$port.log" 2>&1 &
    CAIRN_PID=$!
    STARTED+=("$CAIRN_PID")
    CAIRN_URI=http://127.0.0.1:$port
    wait_healthy "$CAIRN_URI" "$CAIRN_PID" "cairn serve"
}

# ---- the machine -----------------------------------------------------------------------------

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "ram: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "rustc: $(rustc --version 2>/dev/null || echo '?')"
    echo "mlflow: $("$PY" -c 'import mlflow; print(mlflow.__version__)' 2>/dev/null || echo '?')"
    echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "(uncommitted diff sha1 $(git -C "$ROOT" diff HEAD 2>/dev/null | sha1sum | cut -c1-12))"
} | tee "$OUT/machine.txt"

# ---- build -----------------------------------------------------------------------------------

if want build; then
    log "build"
    (cd "$ROOT" && cargo build --release -p cairn-cli)
    cp "$TARGET_DIR/release/cairn" "$CAIRN"
fi
if [ -n "${CAIRN_BIN:-}" ]; then
    cp "$CAIRN_BIN" "$CAIRN"
fi
[ -x "$CAIRN" ] || cp "$TARGET_DIR/release/cairn" "$CAIRN"
echo "cairn binary: sha1 $(sha1sum "$CAIRN" | cut -c1-12)${CAIRN_BIN:+ (copied from CAIRN_BIN)}" |
    tee -a "$OUT/machine.txt"

# ---- cargo benches ---------------------------------------------------------------------------

if want cargo; then
    log "cargo bench -p cairn-metrics --bench ingest"
    (cd "$ROOT" && cargo bench -p cairn-metrics --bench ingest) 2>&1 | tee "$OUT/bench-cairn-metrics.txt"
    log "cargo bench -p cairn-core --bench ingest"
    (cd "$ROOT" && cargo bench -p cairn-core --bench ingest) 2>&1 | tee "$OUT/bench-cairn-core.txt"
fi

# ---- demo: 100k runs -------------------------------------------------------------------------

peak_rss_kib() { awk -F': ' '/Maximum resident set size/ {print $2}' "$1"; }
wall_of() { awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$1"; }

if want demo; then
    log "cairn demo --runs $DEMO_RUNS"
    WS=$DEMO_WS
    rm -rf "$WS"
    /usr/bin/time -v "$CAIRN" --workspace "$WS" --user bench demo --runs "$DEMO_RUNS" \
        2>"$OUT/demo-time.txt" | tee "$OUT/demo.txt"
    du -sb "$WS"/* | tee "$OUT/demo-du.txt"
    echo "demo: wall $(wall_of "$OUT/demo-time.txt"), peak RSS $(peak_rss_kib "$OUT/demo-time.txt") KiB, size $(du -sb "$WS" | cut -f1) bytes"

    log "cairn runs list --limit 50 (on $DEMO_RUNS runs)"
    hyperfine --warmup 2 --runs 10 --export-json "$OUT/list-hyperfine.json" \
        "$CAIRN --workspace $WS --user bench runs list --limit 50" | tee "$OUT/list.txt"
    /usr/bin/time -v "$CAIRN" --workspace "$WS" --user bench runs list --limit 50 \
        >/dev/null 2>"$OUT/list-time.txt"
    echo "runs list: peak RSS $(peak_rss_kib "$OUT/list-time.txt") KiB"

    ID=$("$CAIRN" --workspace "$WS" --user bench --json runs list --limit 1 |
        "$PY" -c 'import json,sys; v=json.load(sys.stdin); v=v.get("runs", v) if isinstance(v, dict) else v; print(v[0]["id"])')
    log "cairn runs show $ID"
    hyperfine --warmup 2 --runs 10 --export-json "$OUT/show-hyperfine.json" \
        "$CAIRN --workspace $WS --user bench runs show $ID" | tee "$OUT/show.txt"
    /usr/bin/time -v "$CAIRN" --workspace "$WS" --user bench runs show "$ID" \
        >/dev/null 2>"$OUT/show-time.txt"
    echo "runs show: peak RSS $(peak_rss_kib "$OUT/show-time.txt") KiB"
fi

# ---- ingest through the MLflow client --------------------------------------------------------

if want ingest; then
    log "ingest: $RUNS runs (MLflow: $MLFLOW_RUNS) x 20 params x 10 metrics x $STEPS steps, log_batch of 1000"
    D=$OUT/ingest
    rm -rf "$D"
    mkdir -p "$D"
    start_mlflow "$D/mlflow.db" "$D/mlflow-artifacts"
    start_cairn "$D/cairn-ws"
    $DRIVER --phase ingest --mlflow-uri "$MLFLOW_URI" --cairn-uri "$CAIRN_URI" \
        --runs "$RUNS" --mlflow-runs "$MLFLOW_RUNS" --steps "$STEPS" --out "$RESULTS"
    $DRIVER --phase disk --mlflow-db "$D/mlflow.db" --cairn-workspace "$D/cairn-ws" --out "$RESULTS"
    $DRIVER --phase rss --pid "$MLFLOW_PID" --label "mlflow server after ingest" --out "$RESULTS"
    $DRIVER --phase rss --pid "$CAIRN_PID" --label "cairn serve after ingest" --out "$RESULTS"
    log "raw-HTTP ingest (pre-encoded bodies, no mlflow client)"
    $DRIVER --phase raw-ingest --mlflow-uri "$MLFLOW_URI" --cairn-uri "$CAIRN_URI" \
        --raw-runs "$RAW_RUNS" --steps "$STEPS" --out "$RESULTS"
    cleanup
    $DRIVER --phase disk --only cairn --cairn-workspace "$D/cairn-ws" --out "$RESULTS"
fi

if want client; then
    log "client cost of MlflowClient.log_batch (transport stubbed)"
    $DRIVER --phase client-cost --runs 10 --steps "$STEPS" --out "$RESULTS"
fi

# ---- search_runs on 10k runs -----------------------------------------------------------------

if want search; then
    log "search: $SEARCH_RUNS runs"
    D=$OUT/search
    rm -rf "$D"
    mkdir -p "$D"
    $DRIVER --phase populate-mlflow --mlflow-db "$D/mlflow.db" \
        --mlflow-artifacts "$D/mlflow-artifacts" --search-runs "$SEARCH_RUNS" --out "$RESULTS"
    start_mlflow "$D/mlflow.db" "$D/mlflow-artifacts"
    start_cairn "$D/cairn-ws"
    $DRIVER --phase search --mlflow-uri "$MLFLOW_URI" --cairn-uri "$CAIRN_URI" \
        --search-runs "$SEARCH_RUNS" --queries "$QUERIES" --out "$RESULTS"
    $DRIVER --phase rss --pid "$MLFLOW_PID" --label "mlflow server after search" --out "$RESULTS"
    $DRIVER --phase rss --pid "$CAIRN_PID" --label "cairn serve after search" --out "$RESULTS"
    cleanup
fi

# ---- contention: reads under writes on 100k runs (issue #12) ---------------------------------

if want contention; then
    if [ ! -f "$DEMO_WS/catalog.db" ]; then
        log "cairn demo --runs $DEMO_RUNS into $DEMO_WS (none there yet)"
        "$CAIRN" --workspace "$DEMO_WS" --user bench demo --runs "$DEMO_RUNS"
    fi
    log "contention: a copy of $DEMO_WS, ${WARMUP_S}s warm-up + ${WINDOW_S}s per window"
    # A copy, so that the writer's runs and whatever a newer binary migrates on open stay out
    # of the workspace that later invocations (and the other binary) start from.
    D=$OUT/contention
    rm -rf "$D"
    mkdir -p "$D"
    cp -a --reflink=auto "$DEMO_WS" "$D/ws"
    start_cairn "$D/ws"
    $PY "$ROOT/bench/contention.py" --cairn-uri "$CAIRN_URI" --duration "$WINDOW_S" \
        --warmup "$WARMUP_S" --readers "$READERS" \
        --label "$LABEL" --out "$RESULTS"
    $DRIVER --phase rss --pid "$CAIRN_PID" --label "cairn serve after contention" --out "$RESULTS"
    cleanup
    rm -rf "$D"
fi

log "done: $RESULTS"
