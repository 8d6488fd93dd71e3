"""`cairn export parquet|csv`: the tables read back with pyarrow, pandas, polars and DuckDB, every value compared
with what Cairn stored (`cairn runs show --json`, `cairn runs metric --json`, `cairn search
--json` for cost): a demo workspace (lineage, tags, cost, parents) and runs logged by the real
MLflow client (typed params, NaN and ±inf points)."""

import json
import math
import subprocess
import time
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mlflow.entities import Metric, Param, RunTag

from conftest import CAIRN_BIN, SERVER_USER


def cli(workspace: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CAIRN_BIN, "--workspace", str(workspace), "--user", SERVER_USER, *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def cli_json(workspace: Path, *args: str):
    out = cli(workspace, *args, "--json")
    assert out.returncode == 0, f"cairn {' '.join(args)} failed:\n{out.stderr}"
    return json.loads(out.stdout)


def num(v):
    """A number as `--json` prints it (non-finite ones as text) as a float; None stays None."""
    if v is None:
        return None
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def read_rows(path: Path) -> tuple[pa.Schema, list[dict]]:
    """A Parquet table's schema and rows, times as Unix milliseconds."""
    table = pq.read_table(path)
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        cols[name] = col.to_pylist()
    rows = [dict(zip(cols, values)) for values in zip(*cols.values())]
    return table.schema, rows


def typed(text: str, t: pa.DataType):
    if pa.types.is_int64(t):
        return int(text)
    if pa.types.is_float64(t):
        return float(text)
    if pa.types.is_boolean(t):
        return text.strip().lower() == "true"
    return text


def check_runs_table(workspace: Path, schema: pa.Schema, rows: list[dict], costs: dict):
    """Every row against `cairn runs show --json` of its run."""
    param_cols = [n for n in schema.names if n.startswith("params.")]
    metric_keys = [n[len("metrics."):] for n in schema.names if n.startswith("metrics.")]
    for row in rows:
        shown = cli_json(workspace, "runs", "show", row["run_id"])
        lineage = shown.get("lineage", {})
        code = lineage.get("code") or {}
        infra = lineage.get("infra") or {}
        gpus = infra.get("gpus") or []
        assert row["name"] == shown["name"]
        assert row["experiment_id"] == shown["experiment"]
        assert row["experiment"] == shown["experiment_name"]
        assert row["owner"] == shown.get("owner")
        assert row["status"] == shown["status"]
        assert row["start_time"] == shown["start_ms"]
        assert row["end_time"] == shown.get("end_ms")
        assert row["parent_id"] == shown.get("parent")
        assert row["parent_kind"] == shown.get("parent_kind")
        datasets = lineage.get("datasets")
        assert (json.loads(row["datasets"]) if row["datasets"] else None) == (datasets or None)
        fs = lineage.get("feature_set") or {}
        assert row["feature_set"] == fs.get("name")
        assert row["feature_set_version"] == fs.get("version")
        assert row["code_repo"] == code.get("repo")
        assert row["code_commit"] == code.get("commit")
        assert row["code_branch"] == code.get("branch")
        assert row["code_dirty"] == (code.get("dirty", False) if code else None)
        assert row["infra_host"] == infra.get("host")
        assert row["infra_instance_type"] == infra.get("instance_type")
        assert row["infra_gpu_model"] == (",".join(dict.fromkeys(g["model"] for g in gpus)) or None)
        assert row["infra_gpu_count"] == (sum(g["count"] for g in gpus) if gpus else None)
        assert (json.loads(row["tags"]) if row["tags"] else {}) == shown.get("tags", {})
        cost = costs.get(row["run_id"]) or {}
        if row["status"] == "running":
            # A running run's cost grows with the clock: the export's is as of its start.
            assert (row["cost_usd"] is None) == (cost.get("usd") is None)
            assert row["cost_usd"] is None or row["cost_usd"] <= cost["usd"]
        else:
            assert same(row["cost_usd"], cost.get("usd"))
            assert same(row["gpu_idle_share"], cost.get("idle_share"))
        params = shown.get("params", {})
        for col in param_cols:
            key = col[len("params."):]
            want = typed(params[key], schema.field(col).type) if key in params else None
            assert row[col] == want or same(row[col], want), (row["run_id"], col, row[col], want)
        assert set(params) <= {c[len("params."):] for c in param_cols}
        summaries = {**shown.get("metrics", {}), **shown.get("live_metrics", {})}
        for key in metric_keys:
            s = summaries.get(key) or {}
            assert same(row[f"metrics.{key}"], num(s.get("last"))), (key, row, s)
            assert same(row[f"metrics_min.{key}"], num(s.get("min"))), (key, row, s)
            assert same(row[f"metrics_max.{key}"], num(s.get("max"))), (key, row, s)


def check_metrics_table(workspace: Path, rows: list[dict], runs: list[str]):
    """Every series, point by point, against `cairn runs metric --json`, in the order logged."""
    series: dict[tuple, list] = {}
    order = []
    for r in rows:
        k = (r["run_id"], r["key"])
        if k not in series:
            series[k] = []
            order.append(k)
        series[k].append(r)
    # Series by series (each contiguous), runs in the runs table's order, keys sorted.
    assert len(order) == len({k for k in order})
    assert [k[0] for k in order] == sorted((k[0] for k in order), key=runs.index)
    for run in runs:
        keys = [k for (r, k) in order if r == run]
        assert keys == sorted(keys)
        live = cli_json(workspace, "runs", "show", run).get("live_metrics", {})
        assert keys == sorted(live), run
    for (run, key), points in series.items():
        stored = cli_json(workspace, "runs", "metric", run, key)
        assert len(points) == len(stored), (run, key)
        for p, s in zip(points, stored):
            assert p["step"] == s["step"]
            assert p["timestamp"] == s["ts_ms"]
            assert same(p["value"], num(s["value"])), (run, key, p, s)


def search_costs(workspace: Path) -> dict:
    page = cli_json(workspace, "search", "", "--limit", "5000")
    return {r["id"]: r.get("cost") for r in page["runs"]}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    workspace = tmp_path_factory.mktemp("export-demo") / "ws"
    out = cli(workspace, "demo", "--runs", "14", "--steps", "60")
    assert out.returncode == 0, out.stderr
    return workspace


def test_parquet_tables_hold_exactly_what_cairn_stored(demo, tmp_path):
    out_dir = tmp_path / "pq"
    done = cli(demo, "export", "parquet", "-o", str(out_dir), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Progress came as JSON lines on stderr, the last one with every run written.
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert lines and lines[-1]["progress"]["phase"] == "writing"
    assert lines[-1]["progress"]["runs"] == lines[-1]["progress"]["of"] == report["runs"]
    assert sorted(p.name for p in out_dir.iterdir()) == ["metrics.parquet", "runs.parquet"]

    costs = search_costs(demo)
    schema, runs = read_rows(out_dir / "runs.parquet")
    assert {r["run_id"] for r in runs} == set(costs), "every live run, once"
    assert report["runs"] == len(runs) == 14
    assert any(r["cost_usd"] is not None for r in runs), "the demo's runs have costs"
    assert any(r["datasets"] for r in runs) and any(r["parent_id"] for r in runs)
    assert schema.field("start_time").type == pa.timestamp("ms", tz="UTC")
    # Params typed: integers, floats and text each get their column type.
    types = {n: schema.field(n).type for n in schema.names if n.startswith("params.")}
    assert pa.int64() in types.values() and pa.string() in types.values()
    assert types["params.learning_rate"] == pa.float64()
    for name, t in types.items():
        assert report["params"][name[len("params."):]] == {
            pa.int64(): "int", pa.float64(): "float", pa.bool_(): "bool", pa.string(): "string"}[t]
    check_runs_table(demo, schema, runs, costs)

    mschema, points = read_rows(out_dir / "metrics.parquet")
    assert mschema.names == ["run_id", "key", "step", "timestamp", "value"]
    assert pa.types.is_dictionary(mschema.field("run_id").type)
    assert report["points"] == len(points) > 0
    check_metrics_table(demo, points, [r["run_id"] for r in runs])

    # Row groups for scans, and the columns encoded as they compress best.
    meta = pq.ParquetFile(out_dir / "metrics.parquet").metadata
    assert meta.num_row_groups == 1
    group = meta.row_group(0)
    encodings = {group.column(i).path_in_schema: group.column(i).encodings for i in range(5)}
    assert "DELTA_BINARY_PACKED" in encodings["step"]
    assert "BYTE_STREAM_SPLIT" in encodings["value"]
    assert group.column(4).compression == "ZSTD"


def test_polars_and_duckdb_read_the_tables_as_pyarrow_does(demo, tmp_path):
    out_dir = tmp_path / "pq"
    assert cli(demo, "export", "parquet", "-o", str(out_dir)).returncode == 0
    runs_file, metrics_file = out_dir / "runs.parquet", out_dir / "metrics.parquet"
    _, want_points = read_rows(metrics_file)
    _, want_runs = read_rows(runs_file)

    points = pl.read_parquet(metrics_file)
    assert points.schema["timestamp"] == pl.Datetime("ms", "UTC")
    got = points.with_columns(
        pl.col("run_id").cast(pl.String), pl.col("key").cast(pl.String),
        pl.col("timestamp").dt.epoch("ms")).to_dicts()
    assert len(got) == len(want_points)
    assert all(g["run_id"] == w["run_id"] and g["key"] == w["key"] and g["step"] == w["step"]
               and g["timestamp"] == w["timestamp"] and same(g["value"], w["value"])
               for g, w in zip(got, want_points))
    runs = pl.read_parquet(runs_file)
    assert runs.columns == list(want_runs[0])
    assert runs["run_id"].to_list() == [r["run_id"] for r in want_runs]

    # DuckDB, as the README's one-liner uses it: the best accuracy of each run by name.
    best = dict(duckdb.sql(
        f"SELECT r.name, max(m.value) FROM '{metrics_file}' m JOIN '{runs_file}' r USING (run_id) "
        "WHERE m.key = 'acc' GROUP BY r.name").fetchall())
    by_run = {r["run_id"]: r["name"] for r in want_runs}
    want_best: dict = {}
    for p in want_points:
        if p["key"] == "acc":
            name = by_run[p["run_id"]]
            want_best[name] = max(want_best.get(name, -math.inf), p["value"])
    assert best == want_best and best
    types = duckdb.sql(f"SELECT typeof(step), typeof(timestamp), typeof(value) FROM '{metrics_file}' "
                       "LIMIT 1").fetchall()[0]
    assert types == ("BIGINT", "TIMESTAMP WITH TIME ZONE", "DOUBLE")


def test_csv_tables_read_by_pandas_equal_the_parquet_ones(demo, tmp_path):
    pq_dir, csv_dir = tmp_path / "pq", tmp_path / "csv"
    assert cli(demo, "export", "parquet", "-o", str(pq_dir)).returncode == 0
    done = cli(demo, "export", "csv", "-o", str(csv_dir))
    assert done.returncode == 0, done.stderr
    assert "exported 14 runs" in done.stdout

    want = pd.read_parquet(pq_dir / "runs.parquet")
    got = pd.read_csv(csv_dir / "runs.csv", keep_default_na=False, na_values=[""])
    assert list(got.columns) == list(want.columns)
    # A running run's cost grows between the two exports: those rows are compared without it.
    ended = want["status"] != "running"
    for col in ("cost_usd", "gpu_idle_share"):
        got[col], want[col] = got[col].where(ended), want[col].where(ended)
    for col in want.columns:
        if col in ("start_time", "end_time"):
            g = pd.to_datetime(got[col], utc=True)
            assert ((g == want[col]) | (g.isna() & want[col].isna())).all(), col
        elif pd.api.types.is_float_dtype(want[col]) or pd.api.types.is_integer_dtype(want[col]):
            assert all(same(a if a == a else None, b if b == b else None)
                       for a, b in zip(got[col], want[col])), col
        else:
            w = want[col].astype(object).where(want[col].notna(), None).tolist()
            g = got[col].astype(object).where(got[col].notna(), None).tolist()
            assert g == w, col

    want = pd.read_parquet(pq_dir / "metrics.parquet")
    got = pd.read_csv(csv_dir / "metrics.csv")
    assert len(got) == len(want)
    assert (got["run_id"] == want["run_id"].astype(str)).all()
    assert (got["key"] == want["key"].astype(str)).all()
    assert (got["step"] == want["step"]).all()
    assert (pd.to_datetime(got["timestamp"], utc=True) == want["timestamp"]).all()
    assert all(same(a, b) for a, b in zip(got["value"], want["value"]))


def test_mlflow_logged_params_and_non_finite_points_export_exactly(cairn, client, experiment, tmp_path):
    now = int(time.time() * 1000)
    values = [1.5, math.nan, math.inf, -math.inf, -0.0, 1e-300, 0.1]
    runs = []
    for i, params in enumerate([
        {"lr": "0.001", "layers": "4", "opt": "adam", "amp": "true", "seed": "7"},
        {"lr": "1", "layers": "8", "opt": "sgd", "amp": "False", "seed": "x7"},
    ]):
        run = client.create_run(experiment, run_name=f"export-{i}")
        rid = run.info.run_id
        client.log_batch(
            rid,
            metrics=[Metric("loss", v * (i + 1), now + s, s) for s, v in enumerate(values)],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag("suite", "export")],
        )
        client.set_terminated(rid)
        runs.append(rid)

    out_dir = tmp_path / "out"
    done = cairn.cli("export", "parquet", "--query", "tags.suite = 'export'", "-o", str(out_dir))
    assert done.returncode == 0, done.stderr
    schema, rows = read_rows(out_dir / "runs.parquet")
    assert sorted(r["run_id"] for r in rows) == sorted(runs)
    assert schema.field("params.lr").type == pa.float64()
    assert schema.field("params.layers").type == pa.int64()
    assert schema.field("params.opt").type == pa.string()
    assert schema.field("params.amp").type == pa.bool_()
    assert schema.field("params.seed").type == pa.string()
    check_runs_table(cairn.workspace, schema, rows, search_costs(cairn.workspace))
    by_id = {r["run_id"]: r for r in rows}
    assert by_id[runs[0]]["params.lr"] == 0.001 and by_id[runs[1]]["params.amp"] is False

    _, points = read_rows(out_dir / "metrics.parquet")
    check_metrics_table(cairn.workspace, points, [r["run_id"] for r in rows])
    loss = [p["value"] for p in points if p["run_id"] == runs[0]]
    assert all(same(a, b) for a, b in zip(loss, values)) and len(loss) == len(values)

    # The same in CSV, as pandas reads it: NaN and the infinities come back as such.
    csv_dir = tmp_path / "csv"
    done = cairn.cli("export", "csv", "-q", "tags.suite = 'export'", "-o", str(csv_dir))
    assert done.returncode == 0, done.stderr
    text = (csv_dir / "metrics.csv").read_text()
    assert ",NaN\n" in text and ",inf\n" in text and ",-inf\n" in text
    frame = pd.read_csv(csv_dir / "metrics.csv")
    got = frame[frame["run_id"] == runs[0]]["value"].tolist()
    assert all(same(a, b) for a, b in zip(got, values)) and len(got) == len(values)
    # Polars and DuckDB read the non-finite values too, in both formats.
    for path in (csv_dir / "metrics.csv", out_dir / "metrics.parquet"):
        frame = pl.read_csv(path) if path.suffix == ".csv" else pl.read_parquet(path)
        got = frame.filter(pl.col("run_id").cast(pl.String) == runs[0])["value"].to_list()
        assert all(same(a, b) for a, b in zip(got, values)) and len(got) == len(values), path
        counts = duckdb.sql(
            f"SELECT count(*) FILTER (isnan(value)), count(*) FILTER (value = 'inf'::DOUBLE), "
            f"count(*) FILTER (value = '-inf'::DOUBLE) FROM '{path}'").fetchall()[0]
        assert counts == (2, 2, 2), path


def test_bad_input_is_refused_and_leaves_no_file(cairn, tmp_path):
    out_dir = tmp_path / "out"
    bad = cairn.cli("export", "parquet", "--query", "colour = 'red'", "-o", str(out_dir))
    assert bad.returncode != 0
    assert "unknown field 'colour'" in bad.stderr
    assert bad.stderr.count("unknown field") == 1, "the cause is said once"
    assert not out_dir.exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    refused = cairn.cli("export", "csv", "-o", str(busy))
    assert refused.returncode != 0
    assert "keep.txt" in refused.stderr and "--force" in refused.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt"]
    forced = cairn.cli("export", "csv", "-o", str(busy), "--force")
    assert forced.returncode == 0, forced.stderr
    assert sorted(p.name for p in busy.iterdir()) == ["keep.txt", "metrics.csv", "runs.csv"]

    a_file = tmp_path / "file"
    a_file.write_text("x")
    not_dir = cairn.cli("export", "parquet", "-o", str(a_file))
    assert not_dir.returncode != 0 and "not a directory" in not_dir.stderr
