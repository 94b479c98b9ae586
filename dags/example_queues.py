"""Route tasks to the two Celery worker pools: `default` and `heavy`.

A task picks its pool with `queue=`: `light` runs on the `worker` service
(queue `default`, 4 slots per worker), `heavy` on `worker-heavy` (queue
`heavy`, 1 slot per worker). `report` prints which hosts ran each queue's tasks.

The params size the run, so the same DAG serves as a quick example (`make
verify`), as the long-task workload of the scaling test and as the benchmark's
sleep-bound load, e.g. conf {"light_tasks": 200, "heavy_tasks": 0, "seconds": 5}.
"""

import socket
import time
from datetime import datetime
from typing import Any

from airflow.sdk import Param, dag, task


@dag(
    dag_id="example_queues",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-ha-example"],
    doc_md=__doc__,
    # Room for the benchmark's 200 mapped tasks on four workers at once.
    max_active_tasks=64,
    params={
        "light_tasks": Param(4, type="integer", minimum=0, maximum=1000),
        "heavy_tasks": Param(2, type="integer", minimum=0, maximum=1000),
        "seconds": Param(2, type="number", minimum=0, maximum=3600),
    },
)
def example_queues() -> None:
    @task(queue="default")
    def plan(kind: str, params: dict[str, Any] | None = None) -> list[int]:
        assert params is not None
        return list(range(int(params[f"{kind}_tasks"])))

    @task(queue="default")
    def light(item: int, params: dict[str, Any] | None = None) -> str:
        assert params is not None
        time.sleep(float(params["seconds"]))
        return socket.gethostname()

    @task(queue="heavy")
    def heavy(item: int, params: dict[str, Any] | None = None) -> str:
        assert params is not None
        time.sleep(float(params["seconds"]))
        return socket.gethostname()

    @task(queue="default", trigger_rule="none_failed")
    def report(light_hosts: list[str], heavy_hosts: list[str]) -> dict[str, list[str]]:
        hosts = {"default": sorted(set(light_hosts)), "heavy": sorted(set(heavy_hosts))}
        for queue, names in hosts.items():
            print(f"queue {queue}: tasks ran on {', '.join(names) or 'no host'}")
        return hosts

    report(
        light.expand(item=plan.override(task_id="plan_light")("light")),
        heavy.expand(item=plan.override(task_id="plan_heavy")("heavy")),
    )


example_queues()
