"""The cluster as a Swarm stack over three Docker engines on this machine (`make test-swarm`).

Three engines in containers (`swarm-engines up`), the stack deployed across
them (`swarm-up --engines`), the example DAGs run through the load balancer,
then a whole host killed while DAG runs are in flight. The engines, everything
they ran and their state are removed at the end, also when a test fails.
"""

import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.paths import STATE_DIR
from airflow_ha.settings import load_settings
from airflow_ha.swarm import deploy
from airflow_ha.swarm.engines import EngineSet

from .conftest import CliResult, readable_dags_copy, run_cli, wait_for, write_env_file

pytestmark = [pytest.mark.integration, pytest.mark.swarm]

UP_TIMEOUT_SECONDS = "1200"
LOST_HOST_INDEX = 3  # workers only (engines.labels_for): what Swarm can move


@dataclass
class SwarmCluster:
    env_file: Path
    stack: str
    engines: EngineSet
    url: str
    client: AirflowClient

    def cli(self, *args: str) -> CliResult:
        return run_cli(self.env_file, *args)

    def manager(self) -> DockerClient:
        return self.engines.manager.client()


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmCluster]:
    workdir = tmp_path_factory.mktemp("swarm")
    project = f"afha-sw-{uuid.uuid4().hex[:8]}"
    env_file = write_env_file(
        workdir,
        COMPOSE_PROJECT_NAME=project,
        AIRFLOW_DAGS_DIR=str(readable_dags_copy(workdir)),
    )
    settings = load_settings(env_file)
    engines = EngineSet(f"{project}-swarm", 3, STATE_DIR / project / "swarm-engines")
    try:
        result = run_cli(env_file, "swarm-engines", "up")
        assert result.code == 0, f"`swarm-engines up` failed:\n{result}"
        result = run_cli(env_file, "swarm-up", "--engines", "--timeout", UP_TIMEOUT_SECONDS)
        assert result.code == 0, f"`swarm-up` failed:\n{result}"
        match = re.search(r"Airflow UI and REST API: (http://\S+)", result.stdout)
        assert match, result
        url = match[1]
        credentials = Credentials(settings.airflow_admin_user, settings.airflow_admin_password)
        yield SwarmCluster(env_file, project, engines, url, AirflowClient(url, credentials))
    finally:
        result = run_cli(env_file, "swarm-engines", "down")
        assert result.code == 0, f"`swarm-engines down` failed:\n{result}"
        shutil.rmtree(STATE_DIR / project, ignore_errors=True)


def test_replicas_are_spread_and_pinned_services_sit_on_their_nodes(swarm: SwarmCluster) -> None:
    states = {s.service: s for s in deploy.service_states(swarm.manager(), swarm.stack)}
    for service in ("api-server", "scheduler", "triggerer"):
        nodes = states[service].nodes
        assert len(nodes) == 2, (service, nodes)
        assert len(set(nodes)) == 2, (service, nodes)
    node = {e.index: e.name for e in swarm.engines.engines}
    assert states["mysql"].nodes == [node[1]]
    assert states["lb"].nodes == [node[1]]
    assert states["redis"].nodes == [node[2]]
    assert set(states["worker"].nodes) <= {node[2], node[3]}
    result = swarm.cli("swarm-status", "--engines")
    assert result.code == 0, result
    assert swarm.url in result.stdout


def test_example_dags_run_across_the_hosts(swarm: SwarmCluster) -> None:
    result = swarm.cli("verify", "--url", swarm.url)
    assert result.code == 0, result
    assert "3 of 3 DAG runs succeeded; no task needed a second try" in result.stdout, result


def test_a_mistaken_swarm_up_leaves_the_stack_running(swarm: SwarmCluster) -> None:
    manager = swarm.manager()
    namespace = f"com.docker.stack.namespace={swarm.stack}"

    def versions() -> dict[str, int | None]:
        return {
            str(s.spec.name): s.version.index if s.version else None
            for s in manager.service.list(filters=[("label", namespace)])
        }

    before = versions()
    node = swarm.engines.engines[1].name
    manager.node.update(node, rm_labels=["airflow-ha.redis"])
    try:
        result = swarm.cli("swarm-up", "--engines")
    finally:
        manager.node.update(node, labels_add={"airflow-ha.redis": "true"})
    assert result.code == 3, result
    assert result.stderr.strip().splitlines()[-1] == (
        "airflow-ha: error: no ready node carries the label(s) airflow-ha.redis: "
        "`docker node update --label-add airflow-ha.redis=true <node>` on a manager "
        '(README, "Beyond one machine")'
    )
    # Not one service of the running stack was changed.
    assert versions() == before


def test_losing_a_whole_host_loses_no_run(swarm: SwarmCluster) -> None:
    lost = swarm.engines.engines[LOST_HOST_INDEX - 1]
    lost_containers = {c.id[:12] for c in lost.client().container.list()}
    verify = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_ha",
            "--env-file",
            str(swarm.env_file),
            "verify",
            "--url",
            swarm.url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(
            f"a task running on {lost.name}",
            lambda: any(
                ti.get("hostname") in lost_containers
                for ti in swarm.client.task_instances_where(["running"])
            ),
            timeout=180,
        )
        DockerClient().container.kill(lost.name)
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        output, _ = verify.communicate(timeout=900)
    finally:
        if verify.poll() is None:
            verify.kill()
    assert verify.returncode == 0, output
    assert "3 of 3 DAG runs succeeded" in output, output

    manager = swarm.manager()
    wait_for(
        "every service back to its replicas on the surviving hosts",
        lambda: deploy.recovered(deploy.service_states(manager, swarm.stack), lost.name),
        timeout=300,
    )
    recovered_s = time.monotonic() - killed

    retried = [ti for ti in swarm.client.task_instances_where(["success"]) if ti["try_number"] > 1]
    for ti in retried:
        assert ti["hostname"] not in lost_containers, ti
    again = [
        (datetime.fromisoformat(ti["start_date"]) - killed_at).total_seconds()
        for ti in retried
        if datetime.fromisoformat(ti["start_date"]) > killed_at
    ]
    print(
        f"\nhost-kill {lost.name}: {len(retried)} task(s) retried on other hosts, "
        f"the last running again {max(again, default=0):.1f} s after the kill; "
        f"every service back to its replicas after {recovered_s:.1f} s"
    )
