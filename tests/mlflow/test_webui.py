"""What MLflow's web UI calls, by raw HTTP, beside a real `mlflow server`: every endpoint again
under `/ajax-api/`, `upload-artifact` (its refusals word for word), multipart uploads refused so
that the client falls back, and the features Cairn does not serve refused as `NOT_IMPLEMENTED`
naming the feature."""

import uuid

import mlflow
import pytest

from reference import Http


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _both(cairn, mlflow_server):
    """(raw HTTP, MLflow client) for Cairn and for MLflow's server."""
    return ((Http(cairn.uri), mlflow.MlflowClient(cairn.uri)),
            (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri)))


def test_every_endpoint_answers_under_ajax_api_as_under_api(cairn, mlflow_server):
    answers = []
    for http, client in _both(cairn, mlflow_server):
        exp_id = client.create_experiment(_unique("ajax"), tags={"t": "1"})
        run = client.create_run(exp_id)
        client.log_metric(run.info.run_id, "m", 0.5, step=3)
        seen = []
        for prefix in ("/api", "/ajax-api"):
            seen.append((
                http.get(f"{prefix}/2.0/mlflow/experiments/get?experiment_id={exp_id}"),
                http.get(f"{prefix}/2.0/mlflow/runs/get?run_id={run.info.run_id}"),
                http.post(f"{prefix}/2.0/mlflow/runs/search",
                          {"experiment_ids": [exp_id], "max_results": 5}),
                http.get(f"{prefix}/2.0/mlflow/metrics/get-history?run_id={run.info.run_id}"
                         "&metric_key=m"),
                # A refusal reads the same under either prefix.
                http.post(f"{prefix}/2.0/mlflow/runs/log-metric", {"run_id": 31}),
            ))
        assert seen[0] == seen[1]
        answers.append(seen[1])
    ours, theirs = answers
    assert [a[0] for a in ours] == [b[0] for b in theirs] == [200, 200, 200, 200, 400]
    refused = [(a[1]["error_code"], a[1]["message"]) for a in (ours[-1], theirs[-1])]
    assert refused[0] == refused[1]


def test_an_unknown_ajax_endpoint_is_named_as_requested(cairn):
    status, body = Http(cairn.uri).get("/ajax-api/2.0/mlflow/no-such-thing")
    assert (status, body["error_code"]) == (404, "ENDPOINT_NOT_FOUND")
    assert "/ajax-api/2.0/mlflow/no-such-thing" in body["message"]


def test_upload_artifact_stores_the_body_as_the_run_artifact(cairn, mlflow_server):
    for http, client in _both(cairn, mlflow_server):
        run = client.create_run(client.create_experiment(_unique("upload")))
        rid = run.info.run_id
        status, body = http.call("POST", f"/ajax-api/2.0/mlflow/upload-artifact?run_uuid={rid}"
                                 "&path=notes/table.json", raw=b'{"rows": [1, 2]}')
        assert (status, body) == (200, ""), body
        files = client.list_artifacts(rid, "notes")
        assert [(f.path, f.file_size) for f in files] == [("notes/table.json", 16)]
        local = client.download_artifacts(rid, "notes/table.json")
        assert open(local, "rb").read() == b'{"rows": [1, 2]}'


@pytest.mark.parametrize("query,data", [
    ("path=a.txt", b"x"),
    ("run_uuid=RUN", b"x"),
    ("run_uuid=RUN&path=../evil.txt", b"x"),
    ("run_uuid=RUN&path=/abs.txt", b"x"),
    ("run_uuid=RUN&path=a%23b.txt", b"x"),
    ("run_uuid=RUN&path=a.txt", b""),
    ("run_uuid=RUN&path=a.txt", b"x" * (10 * 1024 * 1024 + 1)),
    ("run_uuid=0123456789abcdef0123456789abcdef&path=a.txt", b"x"),
])
def test_upload_artifact_refusals_read_as_mlflows(cairn, mlflow_server, query, data):
    answers = []
    for http, client in _both(cairn, mlflow_server):
        rid = client.create_run(client.create_experiment(_unique("refuse"))).info.run_id
        answers.append(http.call("POST", "/ajax-api/2.0/mlflow/upload-artifact?"
                                 + query.replace("RUN", rid), raw=data))
    ours, theirs = answers
    assert ours[0] == theirs[0], (ours, theirs)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])


def test_multipart_uploads_are_refused_so_the_client_falls_back(cairn, mlflow_server,
                                                                 monkeypatch, tmp_path):
    body = {"path": "big.bin", "num_parts": 2}
    path = "/api/2.0/mlflow-artifacts/mpu/create/1/abc/artifacts/big.bin"
    ours = Http(cairn.uri).post(path, body)
    theirs = mlflow_server.http.post(path, body)
    assert ours == theirs, (ours, theirs)
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "true")
    monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", "1")
    f = tmp_path / "big.bin"
    f.write_bytes(b"\x00\x01" * 5000)
    client = mlflow.MlflowClient(cairn.uri)
    rid = client.create_run(client.create_experiment(_unique("mpu"))).info.run_id
    client.log_artifact(rid, str(f))
    assert [(a.path, a.file_size) for a in client.list_artifacts(rid)] == [("big.bin", 10000)]


@pytest.mark.parametrize("method,path,feature", [
    ("POST", "/api/3.0/mlflow/gateway/secrets/create", "AI gateway"),
    ("GET", "/ajax-api/3.0/mlflow/gateway/endpoints/list", "AI gateway"),
    ("POST", "/ajax-api/2.0/mlflow/gateway-proxy", "AI gateway"),
    ("POST", "/ajax-api/2.0/mlflow/runs/create-promptlab-run", "prompt lab"),
    ("GET", "/api/3.0/mlflow/scorers/list", "scorers"),
    ("POST", "/api/3.0/mlflow/issues/search", "issues"),
    ("GET", "/api/2.0/mlflow/webhooks", "webhooks"),
    ("POST", "/api/2.0/mlflow/artifacts/presigned-upload-url", "presigned"),
])
def test_features_cairn_does_not_serve_are_refused_by_name(cairn, method, path, feature):
    status, body = Http(cairn.uri).call(method, path, body={} if method == "POST" else None)
    assert (status, body["error_code"]) == (501, "NOT_IMPLEMENTED"), body
    assert feature in body["message"] and path in body["message"], body
