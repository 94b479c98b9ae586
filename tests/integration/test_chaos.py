"""Every fault of `chaos` on a real HA cluster, through the CLI and its JSON: no
DAG run may be lost, and each fault must really have happened.

These assert outcomes, never timings (the machine is shared and noisy): the
fault was confirmed by Docker, every workload run succeeded, the target came
back, no other component restarted, and the fault-specific outcome holds.
`make chaos` measures the times.
"""

import json
from pathlib import Path

import pytest

from airflow_ha.chaos.faults import FAULTS

from .conftest import Cluster

pytestmark = pytest.mark.integration

RUNS = 2
TIMEOUT_S = 600


def chaos(cluster: Cluster, name: str, tmp_path: Path) -> dict[str, object]:
    """Runs one fault through the CLI; returns its JSON row once it is judged ok."""
    path = tmp_path / f"{name}.json"
    outcome = cluster.cli(
        "chaos", "--fault", name, "--runs", str(RUNS), "--timeout", str(TIMEOUT_S),
        "--json", str(path),
    )  # fmt: skip
    print(outcome)
    (row,) = json.loads(path.read_text())
    assert row["injected"], f"{name} was not injected: {row['evidence']}"
    assert row["verdict"] == "ok", f"{name}: {row}\n{outcome}"
    assert outcome.code == 0, outcome
    assert row["succeeded"] == row["runs"] == RUNS
    assert row["restarts"] == []
    return dict(row)


def details(row: dict[str, object]) -> dict[str, object]:
    found = row["details"]
    assert isinstance(found, dict)
    return found


def test_every_fault_is_tested_here() -> None:
    tested = {name for name, _ in CHECKS}
    assert tested == set(FAULTS)


def died_per_docker(row: dict[str, object]) -> None:
    assert "Docker FinishedAt" in str(row["evidence"])


def surviving_scheduler_took_over(row: dict[str, object]) -> None:
    died_per_docker(row)
    assert "survivor_queued_s" in details(row), row


def no_request_failed(row: dict[str, object]) -> None:
    died_per_docker(row)
    d = details(row)
    assert int(str(d["api_requests"])) > 0
    assert d["api_failed"] == 0, d


def long_task_retried(row: dict[str, object]) -> None:
    died_per_docker(row)
    d = details(row)
    # Airflow failed the killed try (heartbeat timeout) and a new try succeeded:
    # on the other worker, or on the killed one if its restart won the race.
    assert "loss_detected_s" in d, d
    assert "retry_started_s" in d, d
    assert d["victim_final_state"] == "success", d
    assert int(str(d["victim_tries"])) >= 2, d


def deferred_task_carried_on(row: dict[str, object]) -> None:
    died_per_docker(row)
    d = details(row)
    assert d["victim_final_state"] == "success", d
    assert "trigger_taken_s" in d or "deferred_resumed_s" in d, d


def partitioned_and_back(row: dict[str, object]) -> None:
    assert str(row["evidence"]).startswith("disconnected from "), row
    assert details(row)["victim_final_state"] == "success", row


CHECKS = [
    ("scheduler-kill", surviving_scheduler_took_over),
    ("api-server-kill", no_request_failed),
    ("worker-kill", long_task_retried),
    ("triggerer-kill", deferred_task_carried_on),
    ("redis-outage", died_per_docker),
    ("mysql-restart", died_per_docker),
    ("worker-partition", partitioned_and_back),
]


@pytest.mark.parametrize(("name", "check"), CHECKS, ids=[name for name, _ in CHECKS])
def test_fault_loses_no_run(cluster: Cluster, tmp_path: Path, name: str, check: object) -> None:
    row = chaos(cluster, name, tmp_path)
    assert callable(check)
    check(row)
