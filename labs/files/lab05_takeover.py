"""Lab 5: a chain of short tasks; each one is queued by a scheduler only once the
one before it has finished, so a scheduler is needed all along the run."""

import time
from datetime import datetime

from airflow.sdk import chain, dag, task


@dag(
    dag_id="lab05_takeover",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 0},
)
def takeover() -> None:
    @task
    def step() -> None:
        time.sleep(3)

    chain(*[step.override(task_id=f"step_{n:02d}")() for n in range(15)])


takeover()
