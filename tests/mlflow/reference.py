"""A real `mlflow server` to compare Cairn with, started once per test session.

It runs MLflow's own server from the same venv, on a SQLite store and a proxied artifact root
in a temporary directory, on a free loopback port, so its answers are what a user of MLflow
would get in the same session. `Http` speaks raw HTTP to either server (the web UI's calls are
not the Python client's); `same_shape` compares two answers field by field, ignoring what is
allowed to differ (ids, times, generated names).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """Raw HTTP to one server: (status, parsed JSON or text)."""

    def __init__(self, uri: str):
        self.uri = uri.rstrip("/")

    def call(self, method: str, path: str, body=None, raw: bytes | None = None,
             content_type: str = "application/json", headers: dict | None = None):
        data = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.uri + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def get(self, path: str):
        return self.call("GET", path)

    def post(self, path: str, body=None):
        return self.call("POST", path, body if body is not None else {})


class Reference:
    """A running `mlflow server`."""

    def __init__(self, uri: str, proc: subprocess.Popen, root: Path):
        self.uri = uri
        self.proc = proc
        self.root = root
        self.http = Http(uri)


def start_reference(root: Path) -> Reference:
    port = _free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(var, None)
    log = open(root / "mlflow-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server",
         "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
         "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, cwd=root, env=env,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"mlflow server exited with {proc.returncode}:\n"
                f"{(root / 'mlflow-server.log').read_text()}")
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2) as r:
                if r.status == 200:
                    return Reference(uri, proc, root)
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    stop_reference(proc)
    raise AssertionError("mlflow server did not answer /health within 120 s")


def stop_reference(proc: subprocess.Popen):
    if proc.poll() is None:
        # Its own session: uvicorn's workers go with it.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="session")
def mlflow_server():
    """MLflow's own server, once per session (it takes seconds to start)."""
    with tempfile.TemporaryDirectory(prefix="cairn-mlflow-ref-") as tmp:
        ref = start_reference(Path(tmp))
        try:
            yield ref
        finally:
            stop_reference(ref.proc)


# What may differ between two servers' answers: identities, clocks and generated names.
IGNORED = {"experiment_id", "run_id", "run_uuid", "start_time", "end_time", "creation_time",
           "last_update_time", "timestamp", "artifact_uri", "artifact_location", "run_name",
           "dataset_id", "created_time", "digest", "next_page_token", "user_id", "root_uri",
           "experimentId", "runUuid", "runId", "startTime", "endTime", "creationTime",
           "lastUpdateTime", "artifactUri", "artifactLocation", "runName", "userId"}
IGNORED_TAGS = {"mlflow.runName", "mlflow.user", "mlflow.source.name", "mlflow.source.type",
                "mlflow.source.git.commit"}


def normalise(v, ignored=IGNORED):
    """`v` with ignored fields blanked and key/value lists of tags sorted."""
    if isinstance(v, dict):
        return {k: ("<ignored>" if k in ignored else normalise(x, ignored)) for k, x in v.items()}
    if isinstance(v, list):
        items = [normalise(x, ignored) for x in v]
        if all(isinstance(x, dict) and set(x) <= {"key", "value"} for x in v):
            items = sorted((x for x in items if x.get("key") not in IGNORED_TAGS),
                           key=lambda x: str(x.get("key")))
        return items
    return v


def same_shape(cairn, mlflow, ignored=IGNORED):
    """Asserts two answers are equal field by field once ignored fields are blanked."""
    a, b = normalise(cairn, ignored), normalise(mlflow, ignored)
    assert a == b, f"Cairn and MLflow differ:\n  cairn:  {json.dumps(a, sort_keys=True)}\n" \
                   f"  mlflow: {json.dumps(b, sort_keys=True)}"
