"""`cairn import mlflow` against a store the real `mlflow` package wrote (mlflow_history.py),
through each kind of SOURCE: the SQL store read directly, the file store, and MLflow's own
server (`mlflow server` on the SQL store, read over its REST API). Every value is read back
through Cairn's MLflow API with the real client, beside the same value read from the source
with the same client, and a second import adds nothing. An import killed part-way and run again
ends where a clean import does."""

import json
import math
import os
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest

from conftest import CAIRN_BIN, SERVER_USER, _start, _stop
from mlflow_history import REGISTERED, log_history
from reference import Http, start_reference, stop_reference


@pytest.fixture(scope="module", params=["sqlite", "mlruns", "rest"])
def store(request):
    """A source and its artifacts, written by the real client: (uri, ids). The SQL store, the
    file store MLflow still reads and writes when allowed to, and MLflow's server on a SQL store
    (its URL: every value then comes over REST, to the importer and to the client alike)."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    with tempfile.TemporaryDirectory(prefix="mlflow-store-") as tmp:
        tmp = Path(tmp)
        if request.param == "mlruns":
            uri = str(tmp / "mlruns")
        else:
            # The reference server serves `root/mlflow.db`.
            uri = f"sqlite:///{tmp / 'mlflow.db'}"
        ids = log_history(uri, tmp / "artifacts")
        if request.param != "rest":
            yield uri, ids
            return
        server = start_reference(tmp)
        try:
            yield server.uri, ids
        finally:
            stop_reference(server.proc)


@pytest.fixture(scope="module")
def cairn(store):
    """A `cairn serve` of its own for each store (both hold the same names)."""
    with tempfile.TemporaryDirectory(prefix="cairn-import-") as tmp:
        server = _start(Path(tmp) / "ws")
        try:
            yield server
        finally:
            _stop(server)


@pytest.fixture(scope="module")
def imported(cairn, store):
    """The store imported once into the served workspace: the report."""
    uri, _ = store
    out = cairn.cli("import", "mlflow", uri, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _same(a, b):
    """Floats equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _logged(v):
    """What was logged: MLflow's SQL store keeps ±inf as ±float max."""
    if v == 1.7976931348623157e308:
        return math.inf
    if v == -1.7976931348623157e308:
        return -math.inf
    return v


def _runs(client):
    exps = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r for r in client.search_runs(exps, max_results=1000)}


def test_the_report_reconciles_both_sides(imported):
    src, added, present = imported["in_source"], imported["added"], imported["present"]
    assert src["runs"] == 5 and added["runs"] == 5 and present["runs"] == 0
    assert added["points"] == src["points"] == 2 * (3000 + 5 + 1) + 1
    assert added["params"] == src["params"] == 7
    assert added["tags"] == src["tags"]
    assert added["datasets"] == src["datasets"] == 1
    assert added["artifacts"] == src["artifacts"] == 6
    assert (added["models"], added["versions"], added["aliases"]) == (1, 2, 1)
    assert imported["skipped"] == {}


def test_every_run_reads_back_as_in_mlflow(cairn, store, imported):
    uri, _ = store
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    want = _runs(source)
    assert len(want) == 5
    for rid, s in want.items():
        got = here.get_run(rid)
        assert got.info.run_id == rid
        assert got.info.run_name == s.info.run_name
        assert got.info.status == s.info.status
        assert got.info.start_time == s.info.start_time
        assert got.info.end_time == s.info.end_time
        assert got.info.user_id == s.info.user_id
        assert got.data.params == s.data.params
        for k, v in s.data.tags.items():
            assert got.data.tags.get(k) == v, (rid, k)
        assert here.get_experiment(got.info.experiment_id).name == \
            source.get_experiment(s.info.experiment_id).name
        for key in s.data.metrics:
            a = sorted((m.step, m.timestamp, _logged(m.value))
                       for m in source.get_metric_history(rid, key))
            b = sorted((m.step, m.timestamp, m.value) for m in here.get_metric_history(rid, key))
            assert len(a) == len(b), (rid, key)
            for x, y in zip(a, b):
                assert x[:2] == y[:2] and _same(x[2], y[2]), (rid, key, x, y)


def test_nan_and_infinities_are_kept(cairn, store, imported):
    _, ids = store
    points = cairn.metric(ids["children"][0], "grad_norm")
    values = [p["value"] for p in points]
    assert len(values) == 5
    # What `--json` writes for the values JSON has no number for.
    assert any(v in ("NaN", None) or (isinstance(v, float) and math.isnan(v)) for v in values)
    assert any(v in ("Infinity", "inf") or v == math.inf for v in values), values
    assert any(v in ("-Infinity", "-inf") or v == -math.inf for v in values), values


def test_system_tags_become_lineage(cairn, store, imported):
    _, ids = store
    child = cairn.run(ids["children"][0])
    assert child["parent"] == ids["parent"]
    parent = cairn.run(ids["parent"])
    assert parent["notes"] == "a sweep over depth"
    assert parent["lineage"]["code"]["commit"] == "0123456789abcdef" * 2 + "01234567"
    datasets = child["lineage"]["datasets"]
    assert datasets["training"]["name"] == "train-v1"
    assert datasets["training"]["uri"] == "s3://bucket/train.parquet"


def test_experiments_keep_their_mlflow_id_as_an_alias(cairn, store, imported):
    uri, ids = store
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for eid in ids["experiments"]:
        want = source.get_experiment(eid)
        got = here.get_experiment(eid)
        assert got.name == want.name
        for k, v in want.tags.items():
            assert got.tags.get(k) == v


def test_datasets_read_back_as_inputs(cairn, store, imported):
    uri, ids = store
    rid = ids["children"][0]
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    want = source.get_run(rid).inputs.dataset_inputs
    got = mlflow.MlflowClient(tracking_uri=cairn.uri).get_run(rid).inputs.dataset_inputs
    assert len(got) == len(want) == 1
    for field in ("name", "digest", "source_type", "source", "schema", "profile"):
        assert getattr(got[0].dataset, field) == getattr(want[0].dataset, field), field
    assert {(t.key, t.value) for t in got[0].tags} == {(t.key, t.value) for t in want[0].tags}


def test_artifacts_are_the_same_bytes(cairn, store, imported, tmp_path):
    uri, ids = store
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for rid in ids["children"]:
        a = Path(source.download_artifacts(rid, "", str(tmp_path / rid / "a")))
        b = Path(here.download_artifacts(rid, "", str(tmp_path / rid / "b")))
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert files
        for f in files:
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_the_registry_comes_with_versions_tags_and_aliases(cairn, store, imported, tmp_path,
                                                          monkeypatch):
    uri, _ = store
    # MLflow's registry over a file store opens a side database in the working directory.
    monkeypatch.chdir(tmp_path)
    here = mlflow.MlflowClient(tracking_uri=cairn.uri, registry_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    want, got = source.get_registered_model(REGISTERED), here.get_registered_model(REGISTERED)
    assert got.description == want.description
    assert got.tags == want.tags
    # MLflow's stores hand the version as a number, its REST API as text.
    assert {k: str(v) for k, v in got.aliases.items()} == \
        {k: str(v) for k, v in want.aliases.items()} == {"champion": "2"}
    for n in (1, 2):
        w, g = source.get_model_version(REGISTERED, n), here.get_model_version(REGISTERED, n)
        assert g.run_id == w.run_id
        assert g.tags == w.tags
        # None in the store is "" over REST, from MLflow's server too.
        assert (g.description or None) == (w.description or None)
    champion = here.get_model_version_by_alias(REGISTERED, "champion")
    assert str(champion.version) == "2"


def test_a_second_import_adds_nothing(cairn, store, imported):
    uri, _ = store
    again = cairn.cli_json("import", "mlflow", uri)
    assert again["runs_created"] == 0 and again["runs_updated"] == 0
    assert again["runs_unchanged"] == 5
    assert all(v == 0 for v in again["added"].values()), again["added"]
    for k in ("runs", "params", "tags", "points", "datasets", "artifacts", "versions",
              "aliases"):
        assert again["present"][k] == imported["in_source"][k], k


def test_bad_sources_are_named_and_store_nothing(cairn, tmp_path):
    missing = cairn.cli("import", "mlflow", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.returncode != 0 and "nope.db" in missing.stderr
    other = tmp_path / "other.db"
    import sqlite3
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    out = cairn.cli("import", "mlflow", f"sqlite:///{other}")
    assert out.returncode != 0
    assert "is not an MLflow store" in out.stderr and "other.db" in out.stderr


def test_an_unreachable_server_is_named(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Nothing listens there: refused on every try.
    out = subprocess.run(
        [CAIRN_BIN, "--workspace", str(tmp_path / "ws"), "--user", SERVER_USER,
         "import", "mlflow", f"http://me:secret@127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert f"http://127.0.0.1:{port}" in out.stderr, out.stderr
    assert "secret" not in out.stderr
    assert "tried 4 times" in out.stderr, out.stderr


# An import killed part-way: a store big enough that the import takes seconds.
KILL_RUNS = 24
KILL_KEYS = 4
KILL_STEPS = 12_000


@pytest.fixture(scope="module")
def big_store():
    """A SQL store made by the real client (experiment, runs, params, tags, one point per
    series, an artifact each), its series then grown to KILL_STEPS points straight in the
    store's `metrics` table, as fast as SQLite takes them."""
    import sqlite3
    with tempfile.TemporaryDirectory(prefix="mlflow-big-") as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        exp = client.create_experiment("big", artifact_location=(tmp / "art").as_uri())
        (tmp / "note.txt").write_text("a file per run\n")
        runs = []
        for i in range(KILL_RUNS):
            r = client.create_run(exp, run_name=f"r{i}", start_time=1_700_000_000_000 + i)
            rid = r.info.run_id
            client.log_batch(rid, params=[mlflow.entities.Param("i", str(i))],
                             metrics=[mlflow.entities.Metric(f"m{k}", 0.0, 1_700_000_000_000, 0)
                                      for k in range(KILL_KEYS)],
                             tags=[mlflow.entities.RunTag("batch", str(i % 3))])
            client.log_artifact(rid, str(tmp / "note.txt"))
            client.set_terminated(rid, "FINISHED", end_time=1_700_000_900_000 + i)
            runs.append(rid)
        with sqlite3.connect(tmp / "mlflow.db") as db:
            db.executemany(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?, ?, ?, ?, ?, 0)",
                ((f"m{k}", 1.0 / s + k, 1_700_000_000_000 + s, rid, s)
                 for rid in runs for k in range(KILL_KEYS) for s in range(1, KILL_STEPS)))
        yield uri, runs


def _everything(server, runs):
    """Every run's record, params, tags, summaries and whole histories, through the MLflow
    API of a `cairn serve` (the histories as raw JSON: the client's entities are slow to make
    by the million)."""
    client = mlflow.MlflowClient(tracking_uri=server.uri)
    http = Http(server.uri)
    out = {}
    for rid in runs:
        r = client.get_run(rid)
        histories = {}
        for k in r.data.metrics:
            status, body = http.get(f"/api/2.0/mlflow/metrics/get-history?run_id={rid}"
                                    f"&metric_key={k}")
            assert status == 200, body
            histories[k] = sorted((m.get("step", 0), m["timestamp"], m["value"])
                                  for m in body["metrics"])
        out[rid] = (r.info.status, r.info.start_time, r.info.end_time, r.data.params,
                    {k: v for k, v in r.data.tags.items()}, r.data.metrics, histories,
                    sorted(a.path for a in client.list_artifacts(rid)))
    return out


def test_an_import_killed_part_way_finishes_as_a_clean_one(big_store, tmp_path):
    uri, runs = big_store
    killed, clean = _start(tmp_path / "killed"), _start(tmp_path / "clean")
    try:
        proc = subprocess.Popen(
            [CAIRN_BIN, "--workspace", str(killed.workspace), "--user", SERVER_USER, "--json",
             "import", "mlflow", uri],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # Killed once it has written some runs' points and not all.
        progress = None
        for line in proc.stderr:
            p = json.loads(line).get("progress", {})
            if p.get("phase") == "writing" and 2 <= p["runs"] < p["of"]:
                progress = p
                break
        proc.kill()
        proc.wait(timeout=30)
        assert progress is not None, "the import ended before it could be killed part-way"
        assert proc.returncode == -signal.SIGKILL
        again = killed.cli_json("import", "mlflow", uri)
        assert again["present"]["points"] > 0, "the killed import had stored nothing"
        assert again["in_source"]["points"] == KILL_RUNS * KILL_KEYS * KILL_STEPS
        assert again["added"]["points"] + again["present"]["points"] == \
            again["in_source"]["points"]
        first = clean.cli_json("import", "mlflow", uri)
        assert first["added"]["points"] == first["in_source"]["points"]
        assert _everything(killed, runs) == _everything(clean, runs)
        # And once more: nothing left to add.
        third = killed.cli_json("import", "mlflow", uri)
        assert all(v == 0 for v in third["added"].values()), third["added"]
    finally:
        _stop(killed)
        _stop(clean)
