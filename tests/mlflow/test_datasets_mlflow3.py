"""Datasets as MLflow 3 logs them (`mlflow.log_input`, `MlflowClient.log_inputs`), read back
beside a real `mlflow server`: the dataset's source and profile exactly as the client sent them
(`num_elements` of a NumPy dataset, a source that is not `{"uri": …}`), its digest, schema and
context; refusals of oversized fields in MLflow's words."""

import json
import uuid

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag

from reference import Http


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _servers(cairn, mlflow_server):
    return (mlflow.MlflowClient(cairn.uri), mlflow.MlflowClient(mlflow_server.uri))


def _inputs(run):
    """A run's dataset inputs as comparable tuples, in a stable order."""
    return sorted(
        ((i.dataset.name, i.dataset.digest, i.dataset.source_type, i.dataset.source,
          i.dataset.schema, i.dataset.profile, sorted((t.key, t.value) for t in i.tags))
         for i in run.inputs.dataset_inputs),
        key=repr)


def test_log_input_keeps_the_dataset_as_mlflow_does(cairn, mlflow_server, tmp_path):
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": [0, 1, 0]})
    csv = tmp_path / "train.csv"
    df.to_csv(csv, index=False)
    datasets = [
        (mlflow.data.from_pandas(df, source=str(csv), name="frame", targets="label"), "training"),
        (mlflow.data.from_numpy(np.arange(12.0).reshape(4, 3), source="s3://bucket/x.npy",
                                name="array"), "eval"),
    ]
    got = []
    for client in _servers(cairn, mlflow_server):
        mlflow.set_tracking_uri(client.tracking_uri)
        mlflow.set_experiment(_unique("data"))
        with mlflow.start_run() as run:
            for d, context in datasets:
                mlflow.log_input(d, context=context)
        got.append(_inputs(client.get_run(run.info.run_id)))
    mlflow.set_tracking_uri(cairn.uri)
    ours, theirs = got
    assert ours == theirs
    # The NumPy dataset's profile names its element count.
    assert any("num_elements" in (p or "") for *_, p, _ in ours)


def test_log_inputs_round_trips_the_source_exactly(cairn, mlflow_server):
    inputs = [
        DatasetInput(Dataset(name="raw", digest="d1", source_type="code", source="source1"),
                     tags=[InputTag("mlflow.data.context", "train"), InputTag("k", "v")]),
        DatasetInput(Dataset(name="tbl", digest="d2", source_type="delta_table",
                             source=json.dumps({"delta_table_name": "main.t", "version": 3}),
                             schema='{"mlflow_colspec": []}', profile='{"num_rows": 7}')),
    ]
    got = []
    for client in _servers(cairn, mlflow_server):
        exp = client.create_experiment(_unique("inputs"))
        rid = client.create_run(exp).info.run_id
        client.log_inputs(rid, datasets=inputs)
        got.append(_inputs(client.get_run(rid)))
    assert got[0] == got[1]


@pytest.mark.parametrize("dataset,tags", [
    ({"name": "n" * 501, "digest": "d", "source_type": "local", "source": "s"}, []),
    ({"name": "n", "digest": "d" * 37, "source_type": "local", "source": "s"}, []),
    ({"name": "n", "digest": "d", "source_type": "local", "source": "s" * 65536}, []),
    ({"name": "n", "digest": "d", "source_type": "local", "source": "s"},
     [{"key": "k" * 256, "value": "v"}]),
    ({"name": "n", "digest": "d", "source_type": "local", "source": "s"},
     [{"key": "k", "value": "v" * 501}]),
])
def test_oversized_dataset_fields_are_refused_in_mlflows_words(cairn, mlflow_server, dataset,
                                                                tags):
    answers = []
    for (http, client) in ((Http(cairn.uri), mlflow.MlflowClient(cairn.uri)),
                           (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri))):
        rid = client.create_run(client.create_experiment(_unique("big"))).info.run_id
        answers.append(http.post("/api/2.0/mlflow/runs/log-inputs",
                                 {"run_id": rid, "datasets": [{"dataset": dataset, "tags": tags}]}))
    ours, theirs = answers
    assert theirs[0] == 400, theirs
    assert ours[0] == theirs[0], (ours, theirs)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])


def test_search_datasets_summarises_an_experiments_datasets(cairn, mlflow_server):
    inputs = [
        DatasetInput(Dataset(name="a", digest="d1", source_type="code", source="s"),
                     tags=[InputTag("mlflow.data.context", "train")]),
        DatasetInput(Dataset(name="a", digest="d1", source_type="code", source="s"),
                     tags=[InputTag("mlflow.data.context", "eval")]),
        DatasetInput(Dataset(name="b", digest="d2", source_type="code", source="s")),
    ]
    got = []
    for http, client in ((Http(cairn.uri), mlflow.MlflowClient(cairn.uri)),
                         (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri))):
        exp = client.create_experiment(_unique("summaries"))
        for _ in range(2):  # the same datasets in two runs are summarised once
            client.log_inputs(client.create_run(exp).info.run_id, datasets=inputs)
        other = client.create_experiment(_unique("empty"))
        status, body = http.post("/ajax-api/2.0/mlflow/experiments/search-datasets",
                                 {"experiment_ids": [exp, other, "987654"]})
        assert status == 200, body
        summaries = sorted(({**s, "experiment_id": s["experiment_id"] == exp}
                            for s in body["dataset_summaries"]), key=repr)
        # A dataset is an input of a run once: the second input of `a` was passed over.
        got.append((summaries, _inputs(client.search_runs([exp])[0])))
        assert http.post("/ajax-api/2.0/mlflow/experiments/search-datasets",
                         {"experiment_ids": [other]}) == (200, {})
    assert got[0] == got[1]


@pytest.mark.parametrize("ids", [[], [str(i) for i in range(21)]])
def test_search_datasets_refusals_read_as_mlflows(cairn, mlflow_server, ids):
    body = {"experiment_ids": ids}
    ours = Http(cairn.uri).post("/ajax-api/2.0/mlflow/experiments/search-datasets", body)
    theirs = mlflow_server.http.post("/ajax-api/2.0/mlflow/experiments/search-datasets", body)
    assert ours[0] == theirs[0] == 400, (ours, theirs)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])
