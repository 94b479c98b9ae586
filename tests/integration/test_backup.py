"""Backup, clean, restore on the real cluster: the data comes back, secrets decrypt."""

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_ha.airflow_api import AirflowApiError, AirflowClient, Credentials
from airflow_ha.backups import fernet_fingerprint
from airflow_ha.metadata_db import read_manifest
from airflow_ha.verify import run_dags

from .conftest import Cluster
from .test_cluster import added_password

pytestmark = pytest.mark.integration

RUN_DAG = "example_deferrable"
HELD_DAG = "example_queues"


def snapshot(client: AirflowClient, run_ids: list[str]) -> dict[str, Any]:
    """What a restore must bring back as it was: runs and their task instances."""
    return {
        run_id: (
            client.dag_run(RUN_DAG, run_id)["state"],
            sorted(
                (ti["task_id"], ti["state"], ti["try_number"], ti["hostname"])
                for ti in client.task_instances(RUN_DAG, run_id)
            ),
        )
        for run_id in run_ids
    }


def container_starts(cluster: Cluster) -> dict[str, object]:
    return {c.name: c.state.started_at for c in cluster.stack.docker.compose.ps(all=True)}


def connection_password(cluster: Cluster, conn_id: str) -> str:
    """Decrypted by Airflow itself, with the Fernet key of the running cluster."""
    output = cluster.stack.docker.compose.execute(
        "scheduler",
        ["airflow-entrypoint", "airflow", "connections", "get", conn_id, "-o", "json"],
        tty=False,
    )
    [connection] = json.loads(str(output)[str(output).index("[") :])
    return str(connection["password"])


def test_backup_clean_restore_brings_back_runs_secrets_and_users(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = cluster.client
    [run] = run_dags(client, [RUN_DAG], timeout=300, log=print)
    assert run.state == "success"
    suffix = uuid.uuid4().hex[:6]
    conn_id, var_key, trainee = f"backup_conn_{suffix}", f"backup_var_{suffix}", f"trainee-{suffix}"
    conn_password, var_value = f"pw-{uuid.uuid4().hex}", f"value-{uuid.uuid4().hex}"
    client.request(
        "POST",
        "/api/v2/connections",
        json={
            "connection_id": conn_id,
            "conn_type": "http",
            "host": "example.org",
            "login": "me",
            "password": conn_password,
        },
    )
    client.request("POST", "/api/v2/variables", json={"key": var_key, "value": var_value})
    trainee_password = added_password(cluster.cli("users", "add", trainee, "--role", "op"), trainee)
    before = snapshot(client, [run.run_id])
    backups = tmp_path / "backups"

    taken = cluster.cli("backup", "--dir", str(backups))
    assert taken.code == 0, str(taken)
    [backup] = backups.glob("*.sql.gz")
    assert backups.stat().st_mode & 0o777 == 0o700
    assert backup.stat().st_mode & 0o777 == 0o600
    manifest = read_manifest(backup)
    assert manifest.fernet_fingerprint == fernet_fingerprint(cluster.settings.airflow_fernet_key)
    assert manifest.rows["dag_run"] >= 1
    assert manifest.rows["ab_user"] >= 2
    dump = gzip.decompress(backup.read_bytes())
    # Encrypted in the file: neither the key nor the secrets it protects are in it.
    for secret in (cluster.settings.airflow_fernet_key, conn_password, var_value):
        assert secret.encode() not in dump

    # A queued run (its DAG is paused, so it stays queued) is an active run.
    client.set_paused(HELD_DAG, True)
    held = client.trigger(HELD_DAG)
    started = container_starts(cluster)
    refused = cluster.cli("restore", str(backup))
    assert refused.code == 1, str(refused)
    assert "1 DAG run(s) are queued or running" in refused.stderr
    assert refused.stderr.strip().splitlines()[-1].startswith("airflow-ha: error: not restoring")
    assert "Traceback" not in refused.stderr
    assert container_starts(cluster) == started
    assert list(backups.glob("*before-restore*")) == []
    # Changes after the backup, which the restore must undo.
    client.request(
        "PATCH", f"/api/v2/dags/{HELD_DAG}/dagRuns/{held['dag_run_id']}", json={"state": "failed"}
    )
    client.request("DELETE", f"/api/v2/variables/{var_key}")

    cleaned = cluster.cli("clean", "--yes")
    assert cleaned.code == 0, str(cleaned)
    assert cluster.stack.services() == []
    restored = cluster.cli("restore", str(backup), "--timeout", "600")
    assert restored.code == 0, str(restored)
    assert "as in the backup" in restored.stderr

    client.base_url = cluster.stack.api_url()  # a new random port
    assert snapshot(client, [run.run_id]) == before
    with pytest.raises(AirflowApiError, match="HTTP 404"):
        client.dag_run(HELD_DAG, held["dag_run_id"])
    assert (client.request("GET", f"/api/v2/variables/{var_key}") or {})["value"] == var_value
    assert connection_password(cluster, conn_id) == conn_password
    as_trainee = AirflowClient(client.base_url, Credentials(trainee, trainee_password))
    assert as_trainee.dag_run(RUN_DAG, run.run_id)["state"] == "success"
    # The restored cluster runs DAGs.
    [again] = run_dags(client, [RUN_DAG], timeout=300, log=print)
    assert again.state == "success"
