"""Lab 6: one long task with retries; kill the worker that runs it."""

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="lab06_retry",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
)
def retry() -> None:
    @task
    def long_task() -> str:
        # Idempotent: running it twice does no harm. A task that a lost worker
        # may leave half-done must be.
        time.sleep(30)
        return "done"

    long_task()


retry()
