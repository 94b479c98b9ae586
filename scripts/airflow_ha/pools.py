"""The Celery worker pools: one Compose service per queue, each scaled on its own.

docker-compose.yaml defines the services (each started with `--queues <queue>`);
a unit test keeps the two in step.
"""

from dataclasses import dataclass

from airflow_ha.errors import UsageError

# More workers than this on one machine only fight over its CPUs; a typo such
# as WORKERS=100 is refused before anything starts.
MAX_WORKERS_PER_POOL = 16


@dataclass(frozen=True)
class WorkerPool:
    queue: str
    service: str


POOLS: tuple[WorkerPool, ...] = (
    WorkerPool(queue="default", service="worker"),
    WorkerPool(queue="heavy", service="worker-heavy"),
)


def pool_for_queue(queue: str) -> WorkerPool:
    for pool in POOLS:
        if pool.queue == queue:
            return pool
    known = ", ".join(pool.queue for pool in POOLS)
    raise UsageError(f"unknown queue {queue!r}: the worker pools serve {known}")


def pool_of_service(service: str) -> WorkerPool | None:
    return next((pool for pool in POOLS if pool.service == service), None)
