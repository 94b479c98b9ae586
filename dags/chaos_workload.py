"""Workload of `make chaos`: keeps tasks queued and running while faults are injected.

- `short`: 24 two-second tasks per run; with a few runs at once they outnumber
  the workers' slots, so tasks are always queued and a start is due every
  fraction of a second (a gap in starts shows a scheduling outage);
- `long`: one 45-second task, the victim when a worker is killed mid-task;
- `deferred`: a 60-second deferrable wait, held by a triggerer meanwhile: long
  enough that a killed triggerer's trigger is seen moving to another one
  (after the 15 s dead-triggerer threshold) before it fires.

Retries come from the cluster's defaults ([core] default_task_retries).
"""

import time
from datetime import datetime, timedelta

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import dag, task

SHORT_TASKS = 24
SHORT_SECONDS = 2
LONG_SECONDS = 45
DEFER_SECONDS = 60


@dag(
    dag_id="chaos_workload",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=8,
    tags=["airflow-ha-chaos"],
    doc_md=__doc__,
)
def chaos_workload() -> None:
    @task
    def items() -> list[int]:
        return list(range(SHORT_TASKS))

    @task
    def short(item: int) -> int:
        time.sleep(SHORT_SECONDS)
        return item

    @task
    def long() -> str:
        time.sleep(LONG_SECONDS)
        return "survived"

    WaitSensor(task_id="deferred", time_to_wait=timedelta(seconds=DEFER_SECONDS), deferrable=True)
    short.expand(item=items())
    long()


chaos_workload()
