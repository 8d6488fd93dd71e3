"""A run the real `mlflow` client logs into `cairn serve` from the server's machine is costed from
that machine's profile (the server records it, the client sends none): `cairn cost run` prices it
from the team's price for the host."""

import socket

T0 = 1_700_000_000_000
HALF_HOUR_MS = 30 * 60 * 1000


def test_a_run_logged_from_the_servers_machine_is_priced_from_its_host(cairn, client, experiment):
    run = client.create_run(experiment, start_time=T0, run_name="local-training")
    run_id = run.info.run_id
    client.log_metric(run_id, "loss", 0.5, timestamp=T0 + 1000, step=1)
    client.set_terminated(run_id, status="FINISHED", end_time=T0 + HALF_HOUR_MS)

    infra = cairn.run(run_id)["lineage"]["infra"]
    assert infra["host"] == socket.gethostname()

    out = cairn.cli("cost", "price", "set", infra["host"], "7.20", "--per", "hour",
                    "--from", "always")
    assert out.returncode == 0, out.stderr

    cost = cairn.cli_json("cost", "run", run_id)["cost"]
    assert cost["source"] == "table"
    assert cost["hours"] == 0.5
    assert abs(cost["machine_usd"] - 3.60) < 1e-9
    assert cost["usd"] >= cost["machine_usd"]
    assert cost["running"] is False
