"""End-to-end tests against a real cluster (see conftest.py)."""

import json
import socket
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml

from airflow_ha.airflow_api import AirflowApiError, AirflowClient, Credentials
from airflow_ha.errors import ExitCode
from airflow_ha.verify import run_dags

from .conftest import CliResult, Cluster, run_cli, write_env_file

pytestmark = pytest.mark.integration

FANOUT_DAG = "example_fanout_xcom"
FANOUT_TOTAL = sum(i * i for i in range(8))


def worker_lines(result: CliResult) -> list[list[str]]:
    """The CELERY WORKER rows of `status`: worker, container, queues, concurrency, tasks."""
    return [line.split() for line in result.stdout.splitlines() if line.startswith("celery@")]


def test_every_service_is_healthy(cluster: Cluster) -> None:
    # The chaos tests run first: right after Redis restarted or a worker was cut
    # off, the workers may not yet answer Flower's broadcast (they do within
    # seconds), and `status` rightly lists none. Ask again for a while.
    deadline = time.monotonic() + 120
    result = cluster.cli("status")
    while not worker_lines(result) and time.monotonic() < deadline:
        time.sleep(5)
        result = cluster.cli("status")
    assert result.code == 0, str(result)
    # Workers as Flower's authenticated API reports them: queue and concurrency.
    pools = Counter((line[2], line[3]) for line in worker_lines(result))
    assert pools == {
        ("default", str(cluster.settings.airflow_worker_concurrency)): 2,
        ("heavy", str(cluster.settings.airflow_heavy_worker_concurrency)): 1,
    }, result.stdout
    containers = Counter(s.service for s in cluster.stack.services())
    assert containers == {
        "mysql": 1, "redis": 1, "airflow-init": 1, "lb": 1, "dag-processor": 1, "flower": 1,
        "scheduler": 2, "api-server": 2, "triggerer": 2, "worker": 2, "worker-heavy": 1,
        "maintenance": 1,
    }  # fmt: skip


def test_verify_runs_the_example_dags(cluster: Cluster) -> None:
    result = cluster.cli("verify", "--timeout", "300")
    assert result.code == 0, str(result)
    assert "3 of 3 DAG runs succeeded; no task needed a second try" in result.stdout
    assert FANOUT_DAG in result.stdout
    assert "example_deferrable" in result.stdout
    assert "example_queues" in result.stdout


def test_xcom_value_and_worker_hosts_through_the_api(cluster: Cluster) -> None:
    [run] = run_dags(cluster.client, [FANOUT_DAG], timeout=300, log=print)
    assert run.state == "success", run
    assert cluster.client.xcom_value(FANOUT_DAG, run.run_id, "total") == FANOUT_TOTAL

    worker_hosts = {s.hostname for s in cluster.stack.services() if s.service == "worker"}
    task_hosts = {t.hostname for t in run.tasks}
    assert task_hosts <= worker_hosts, (task_hosts, worker_hosts)
    mapped_hosts = {t.hostname for t in run.tasks if t.task_id == "square"}
    assert len(mapped_hosts) >= 2, f"the fan-out ran on one worker only: {mapped_hosts}"


def test_a_dag_file_added_after_start_is_verified(cluster: Cluster) -> None:
    dag_id = f"added_later_{uuid.uuid4().hex[:6]}"
    dag_file = cluster.dags_dir / f"{dag_id}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow.sdk import dag, task

            @dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1))
            def added_later():
                @task
                def hello(ds=None) -> str:
                    # verify triggers as the UI does: with a logical date, so `ds` is set.
                    assert ds, "no logical date"
                    return ds
                hello()

            added_later()
            """
        )
    )
    dag_file.chmod(0o644)
    result = cluster.cli("verify", "--dag", dag_id, "--discover-timeout", "60")
    assert result.code == 0, str(result)
    assert "1 of 1 DAG runs succeeded" in result.stdout


def test_verify_of_a_failing_dag_fails_names_the_task_and_reports_the_others(
    cluster: Cluster, tmp_path: Path
) -> None:
    dag_id = f"fails_{uuid.uuid4().hex[:6]}"
    dag_file = cluster.dags_dir / f"{dag_id}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow.sdk import dag, task

            @dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1),
                 default_args={{"retries": 0}})
            def fails():
                @task
                def fine() -> None:
                    pass

                @task
                def broken() -> None:
                    raise RuntimeError("this task fails on purpose")

                fine() >> broken()

            fails()
            """
        )
    )
    dag_file.chmod(0o644)
    junit, report = tmp_path / "verify.xml", tmp_path / "verify.json"
    result = cluster.cli(
        "verify", "--dag", dag_id, "--dag", FANOUT_DAG, "--discover-timeout", "60",
        "--junit", str(junit), "--json", str(report),
    )  # fmt: skip
    assert result.code == ExitCode.VERIFY, str(result)
    rows = [line.split() for line in result.stdout.splitlines()]
    assert [dag_id, "failed", "broken", "failed", "1"] in [row[:5] for row in rows], str(result)
    assert [dag_id, "failed", "fine", "success", "1"] in [row[:5] for row in rows], str(result)
    assert any(row[:2] == [FANOUT_DAG, "success"] for row in rows), str(result)
    assert "1 of 2 DAG runs succeeded" in result.stdout, str(result)
    error = result.stderr.strip().splitlines()[-1]
    assert error == f"airflow-ha: error: 1 of 2 DAG runs did not succeed: {dag_id} (failed)"
    # The text report and the JUnit failure carry the failed try's last log lines.
    assert "RuntimeError: this task fails on purpose" in result.stdout, str(result)
    cases = {(c.classname, c.name): c for suite in JUnitXml.fromfile(str(junit)) for c in suite}
    [failure] = cases[dag_id, "broken"].result
    assert isinstance(failure, Failure)
    assert failure.message.startswith("failed (try 1) on ")
    assert "RuntimeError: this task fails on purpose" in (failure.text or "")
    assert cases[dag_id, "fine"].is_passed
    assert cases[FANOUT_DAG, "square[0]"].is_passed
    data = json.loads(report.read_text())
    assert data["ok"] is False
    assert {run["dag_id"]: run["state"] for run in data["runs"]} == {
        dag_id: "failed",
        FANOUT_DAG: "success",
    }


def test_an_unknown_dag_fails_with_one_clear_line(cluster: Cluster, tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    result = cluster.cli(
        "verify", "--dag", "no_such_dag", "--discover-timeout", "15", "--junit", str(junit)
    )
    assert result.code == ExitCode.VERIFY, str(result)
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("airflow-ha: error: DAG no_such_dag did not appear"), str(result)
    xml = JUnitXml.fromfile(str(junit))
    assert (xml.tests, xml.errors) == (1, 1)


def test_up_on_a_running_cluster_changes_nothing(cluster: Cluster) -> None:
    def running() -> dict[str, str]:
        return {
            c.name: f"{c.id}@{c.state.started_at}"
            for c in cluster.stack.docker.compose.ps()
            if c.state.status == "running"
        }

    before = running()
    result = cluster.cli("up", "--timeout", "300")
    assert result.code == 0, str(result)
    assert running() == before


def test_a_port_in_use_is_refused_before_anything_starts(cluster: Cluster, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        project = f"afha-port-{uuid.uuid4().hex[:6]}"
        env_file = write_env_file(
            tmp_path, COMPOSE_PROJECT_NAME=project, AIRFLOW_API_PORT=str(port), FLOWER_PORT="0"
        )
        result = run_cli(env_file, "up")
    assert result.code == ExitCode.CONFIG, str(result)
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert (
        cluster.stack.docker.container.list(
            all=True, filters=[("label", f"com.docker.compose.project={project}")]
        )
        == []
    )


def added_password(result: CliResult, name: str) -> str:
    """The generated password `users add` printed for `name`."""
    assert result.code == 0, str(result)
    [row] = [line.split() for line in result.stdout.splitlines() if line.split()[0] == name]
    return row[2]


def test_logins_with_roles_a_viewer_reads_but_cannot_trigger(cluster: Cluster) -> None:
    viewer, user = (f"{role}-{uuid.uuid4().hex[:6]}" for role in ("viewer", "user"))
    added = {
        name: cluster.cli("users", "add", name, "--role", name.split("-")[0])
        for name in (viewer, user)
    }
    viewer_password, user_password = (added_password(added[name], name) for name in (viewer, user))
    as_viewer = AirflowClient(cluster.client.base_url, Credentials(viewer, viewer_password))
    as_user = AirflowClient(cluster.client.base_url, Credentials(user, user_password))

    assert as_viewer.dag("example_deferrable") is not None
    with pytest.raises(AirflowApiError, match="HTTP 403"):
        as_viewer.trigger("example_deferrable")
    # The same call by the User role works: the 403 is the role's, not a broken API.
    assert as_user.trigger("example_deferrable")["state"] == "queued"

    refused = cluster.cli("users", "add", viewer, "--role", "op")
    assert refused.code == 1, str(refused)
    assert f"user {viewer} exists already" in refused.stderr
    listed = cluster.cli("users", "list")
    assert listed.code == 0, str(listed)
    rows = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()[1:]}
    assert {viewer: "Viewer", user: "User"}.items() <= rows.items()
    assert rows[cluster.settings.airflow_admin_user] == "Admin"

    removed = cluster.cli("users", "remove", viewer, user)
    assert removed.code == 0, str(removed)
    with pytest.raises(AirflowApiError, match="was refused"):
        AirflowClient(cluster.client.base_url, Credentials(viewer, viewer_password)).health()
    gone = cluster.cli("users", "remove", viewer)
    assert gone.code == 1, str(gone)
    assert f"no such user: {viewer}" in gone.stderr


def test_down_keeps_the_data(cluster: Cluster) -> None:
    [run] = run_dags(cluster.client, ["example_deferrable"], timeout=300, log=print)
    assert run.state == "success"
    trainee = f"trainee-{uuid.uuid4().hex[:6]}"
    password = added_password(cluster.cli("users", "add", trainee, "--role", "op"), trainee)
    assert cluster.cli("down").code == 0
    assert cluster.stack.services() == []
    result = cluster.cli("up", "--timeout", "600")
    assert result.code == 0, str(result)
    cluster.client.base_url = cluster.stack.api_url()
    assert cluster.client.dag_run("example_deferrable", run.run_id)["state"] == "success"
    as_trainee = AirflowClient(cluster.client.base_url, Credentials(trainee, password))
    assert as_trainee.dag_run("example_deferrable", run.run_id)["state"] == "success"
