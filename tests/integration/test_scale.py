"""Scaling worker pools on a real cluster while long tasks run (see conftest.py)."""

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from airflow_ha.airflow_api import JSON
from airflow_ha.errors import ExitCode
from airflow_ha.flower_api import FlowerClient
from airflow_ha.verify import wait_for_dags

from .conftest import Cluster

pytestmark = pytest.mark.integration

DAG = "example_queues"
# Tasks long enough that the workers chosen to go are still running them when
# `scale 1` starts.
TASK_SECONDS = 60


def workload(cluster: Cluster) -> JSON:
    """Enough light tasks to fill three default workers' slots, whatever their
    concurrency: with fewer, the first new worker takes every waiting task
    (Celery reserves a whole worker's worth) and the second gets none."""
    slots = cluster.settings.airflow_worker_concurrency
    return {"light_tasks": 3 * slots, "heavy_tasks": 2, "seconds": TASK_SECONDS}


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 240) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def pool_hosts(cluster: Cluster, service: str) -> set[str]:
    """Hostnames of the pool's running containers (Celery calls them celery@<hostname>)."""
    return {
        s.hostname
        for s in cluster.stack.services()
        if s.service == service and s.state == "running"
    }


def celery_workers_on(cluster: Cluster, queue: str) -> set[str]:
    flower = FlowerClient(cluster.stack.url("flower", 5555), cluster.settings.flower_password)
    return {name for name, queues in flower.queues_by_worker().items() if queue in queues}


def running_containers(cluster: Cluster) -> dict[str, str]:
    return {s.container: s.label for s in cluster.stack.services() if s.state == "running"}


@pytest.fixture
def pools_restored(cluster: Cluster) -> Iterator[None]:
    """Give the pools back their topology sizes for the tests that follow."""
    yield
    for args in (["2"], ["1", "--queue", "heavy"]):
        result = cluster.cli("scale", *args, "--drain-timeout", "300")
        assert result.code == 0, str(result)


def test_bad_scale_requests_leave_the_cluster_untouched(cluster: Cluster) -> None:
    before = running_containers(cluster)
    for args, message in [
        (["-1"], "argument workers: must be between 0 and 16: '-1'"),
        (["many"], "argument workers: not a whole number: 'many'"),
        (["2", "--queue", "gpu"], "unknown queue 'gpu': the worker pools serve default, heavy"),
    ]:
        result = cluster.cli("scale", *args)
        assert result.code == ExitCode.USAGE, str(result)
        assert message in result.stderr.strip().splitlines()[-1], str(result)
    assert running_containers(cluster) == before


def test_scale_1_3_1_while_long_tasks_run(cluster: Cluster, pools_restored: None) -> None:
    client = cluster.client
    client.base_url = cluster.stack.api_url()
    heavy_hosts = pool_hosts(cluster, "worker-heavy")
    default_hosts = pool_hosts(cluster, "worker")

    result = cluster.cli("scale", "1")
    assert result.code == 0, str(result)
    hosts_at_1 = pool_hosts(cluster, "worker")
    assert len(hosts_at_1) == 1
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_at_1}

    wait_for_dags(client, [DAG], timeout=120, log=print)
    client.set_paused(DAG, False)
    run_id = str(client.trigger(DAG, workload(cluster))["dag_run_id"])

    def tasks() -> list[JSON]:
        return client.task_instances(DAG, run_id)

    # The heavy pool's single slot runs one task while the other waits for it:
    # removing the pool's last worker is refused, and nothing changes.
    wait_for(
        "a heavy task queued behind the running one",
        lambda: [t for t in tasks() if t["task_id"] == "heavy" and t["state"] == "queued"],
    )
    result = cluster.cli("scale", "0", "--queue", "heavy")
    assert result.code == ExitCode.USAGE, str(result)
    assert "refusing to remove the last worker of queue heavy" in result.stderr, str(result)
    assert pool_hosts(cluster, "worker-heavy") == heavy_hosts

    result = cluster.cli("scale", "3")
    assert result.code == 0, str(result)
    hosts_at_3 = pool_hosts(cluster, "worker")
    assert len(hosts_at_3) == 3
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_at_3}
    default_hosts |= hosts_at_3
    new_hosts = hosts_at_3 - hosts_at_1
    for host in new_hosts:
        assert f"celery@{host}" in result.stdout, str(result)

    def running_on_new_workers() -> list[JSON]:
        running = [t for t in tasks() if t["state"] == "running"]
        return running if new_hosts <= {t["hostname"] for t in running} else []

    running_before = wait_for("tasks running on both new workers", running_on_new_workers)

    result = cluster.cli("scale", "1")
    assert result.code == 0, str(result)
    assert "waiting for" in result.stderr, str(result)
    hosts_left = pool_hosts(cluster, "worker")
    assert len(hosts_left) == 1
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_left}
    removed = hosts_at_3 - hosts_left
    assert {t["hostname"] for t in running_before} & removed, "scale-down had nothing to wait for"
    # Every task the removed workers ran had finished on them when they went.
    for ti in tasks():
        if ti["hostname"] in removed:
            assert (ti["state"], ti["try_number"]) == ("success", 1), ti

    def finished_run() -> JSON | None:
        run = client.dag_run(DAG, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_for("the DAG run to finish", finished_run, timeout=400)
    assert run["state"] == "success", run
    for ti in tasks():
        assert (ti["state"], ti["try_number"]) == ("success", 1), ti
        pool = heavy_hosts if ti["queue"] == "heavy" else default_hosts
        assert ti["hostname"] in pool, (ti["task_id"], ti["queue"], ti["hostname"], pool)
    assert {t["queue"] for t in tasks()} == {"default", "heavy"}
