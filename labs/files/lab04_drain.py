"""Lab 4: enough 25-second tasks to fill every slot of three default workers."""

import os
import time
from datetime import datetime

from airflow.sdk import dag, task

WORKERS = 3
SLOTS = int(os.environ.get("AIRFLOW__CELERY__WORKER_CONCURRENCY", "8"))


@dag(
    dag_id="lab04_drain",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 0},
)
def drain() -> None:
    @task
    def work(n: int) -> int:
        time.sleep(25)
        return n

    work.expand(n=list(range(WORKERS * SLOTS)))


drain()
