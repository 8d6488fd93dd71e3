"""The real `mlflow` client against a real `cairn serve`.

Each test module gets its own server on a fresh workspace (port 0, user `tester`). Values are
read back twice: through the MLflow client (what users of MLflow see) and through
`cairn runs show --json` (what Cairn stored), which opens the workspace while the server holds it.

Nothing here reaches the internet: telemetry is off before `mlflow` is imported, and every
socket connection to a non-loopback address fails the test.
"""

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

# Before `mlflow` is imported: some of these are read at import time.
_OFFLINE_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    "GIT_PYTHON_REFRESH": "quiet",
    # The client records `getpass.getuser()` as the run's user.
    "LOGNAME": "alice",
    "USER": "alice",
}
os.environ.update(_OFFLINE_ENV)
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_EXPERIMENT_ID",
             "MLFLOW_EXPERIMENT_NAME", "MLFLOW_RUN_ID", "MLFLOW_TRACKING_TOKEN"):
    os.environ.pop(_var, None)

import mlflow  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CAIRN_BIN = os.environ.get("CAIRN_BIN", str(REPO / "target" / "debug" / "cairn"))
CLIENT_USER = "alice"
SERVER_USER = "tester"

_BANNER = re.compile(r"^Cairn is serving (.+) at (http://127\.0\.0\.1:\d+)\s*$")


def _is_loopback(host) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def no_internet():
    """Fails any connection that is not to loopback (the tests must never reach the internet)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise AssertionError(f"test tried to reach {address!r}: only loopback is allowed")

    def connect(sock, address):
        check(sock, address)
        return real_connect(sock, address)

    def connect_ex(sock, address):
        check(sock, address)
        return real_connect_ex(sock, address)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    yield
    socket.socket.connect = real_connect
    socket.socket.connect_ex = real_connect_ex


class Cairn:
    """A running `cairn serve` and the workspace it serves."""

    def __init__(self, uri: str, workspace: Path, proc: subprocess.Popen):
        self.uri = uri
        self.workspace = workspace
        self.proc = proc

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """Runs the `cairn` CLI on the served workspace."""
        return subprocess.run(
            [CAIRN_BIN, "--workspace", str(self.workspace), "--user", SERVER_USER, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def cli_json(self, *args: str):
        out = self.cli(*args, "--json")
        assert out.returncode == 0, f"cairn {' '.join(args)} failed:\n{out.stderr}"
        return json.loads(out.stdout)

    def run(self, run_id: str) -> dict:
        """`cairn runs show ID --json`: the run as Cairn stored it."""
        return self.cli_json("runs", "show", run_id)

    def metric(self, run_id: str, key: str) -> list:
        """`cairn runs metric ID KEY --json`: every point of a series as Cairn stored it."""
        return self.cli_json("runs", "metric", run_id, key)


def _start(workspace: Path) -> Cairn:
    assert Path(CAIRN_BIN).is_file(), (
        f"{CAIRN_BIN} does not exist: build it with `cargo build -p cairn-cli` or set CAIRN_BIN"
    )
    proc = subprocess.Popen(
        [CAIRN_BIN, "serve", "--port", "0", "--workspace", str(workspace), "--user", SERVER_USER],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
    )
    line = proc.stdout.readline()
    m = _BANNER.match(line)
    if not m:
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise AssertionError(f"cairn serve did not announce itself: {line!r}\n{err}")
    assert Path(m.group(1)) == workspace
    return Cairn(m.group(2), workspace, proc)


def _stop(server: Cairn) -> str:
    server.proc.send_signal(signal.SIGTERM)
    try:
        _, err = server.proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        _, err = server.proc.communicate()
        raise AssertionError(f"cairn serve did not stop on SIGTERM:\n{err}")
    assert server.proc.returncode == 0, f"cairn serve exited with {server.proc.returncode}:\n{err}"
    return err


def _reset_client_state():
    while mlflow.active_run() is not None:
        mlflow.end_run()
    # `set_experiment` remembers the experiment in the module and in the environment; the next
    # module talks to another server, where that id does not exist.
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture(scope="module")
def cairn():
    """A `cairn serve` on a fresh workspace, with the MLflow client pointed at it."""
    with tempfile.TemporaryDirectory(prefix="cairn-mlflow-") as tmp:
        workspace = Path(tmp) / "ws"
        server = _start(workspace)
        try:
            _reset_client_state()
            # Sets MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI too.
            mlflow.set_tracking_uri(server.uri)
            mlflow.set_registry_uri(server.uri)
            yield server
        finally:
            _reset_client_state()
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            os.environ.pop("MLFLOW_REGISTRY_URI", None)
            _stop(server)


@pytest.fixture(autouse=True)
def _no_leftover_run():
    """A failing test must not leave its active run to the next one."""
    yield
    while mlflow.active_run() is not None:
        mlflow.end_run(status="FAILED")


@pytest.fixture
def client(cairn):
    return mlflow.MlflowClient(tracking_uri=cairn.uri, registry_uri=cairn.uri)


@pytest.fixture
def experiment(cairn, request):
    """A fresh experiment named after the test, set as the active one."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    exp = mlflow.set_experiment(name)
    return exp.experiment_id


# MLflow's own server, for the suites that compare Cairn's answers with it (reference.py).
from reference import mlflow_server  # noqa: E402,F401
