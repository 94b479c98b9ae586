"""The worker pools in pools.py and the worker services in docker-compose.yaml agree."""

import re

import pytest

from airflow_ha.errors import UsageError
from airflow_ha.paths import COMPOSE_FILE
from airflow_ha.pools import POOLS, WorkerPool, pool_for_queue, pool_of_service
from airflow_ha.scaling import STOP_GRACE_SECONDS


def service_block(name: str) -> str:
    """The text of one top-level service of the Compose file."""
    text = COMPOSE_FILE.read_text()
    match = re.search(rf"^  {re.escape(name)}:\n(.*?)(?=^  \S|^\S|\Z)", text, re.M | re.S)
    assert match, f"no service {name} in {COMPOSE_FILE}"
    return match.group(1)


@pytest.mark.parametrize("pool", POOLS, ids=lambda pool: pool.service)
def test_each_pool_service_consumes_exactly_its_queue(pool: WorkerPool) -> None:
    block = service_block(pool.service)
    assert "<<: *celery-worker" in block
    queues = re.search(r'"--queues", "([^"]+)"', block)
    assert queues is not None
    assert queues.group(1) == pool.queue


def test_workers_may_finish_tasks_for_as_long_as_scale_waits() -> None:
    anchor = COMPOSE_FILE.read_text().split("x-celery-worker:", 1)[1].split("\nservices:", 1)[0]
    assert f"stop_grace_period: {STOP_GRACE_SECONDS}s" in anchor


def test_pools_by_queue_and_by_service() -> None:
    assert pool_for_queue("heavy").service == "worker-heavy"
    assert pool_of_service("worker") == pool_for_queue("default")
    assert pool_of_service("scheduler") is None


def test_an_unknown_queue_names_the_known_ones() -> None:
    with pytest.raises(
        UsageError, match="unknown queue 'gpu': the worker pools serve default, heavy"
    ):
        pool_for_queue("gpu")
