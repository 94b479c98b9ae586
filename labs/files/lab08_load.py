"""Lab 8: work in flight while MySQL and Redis restart, then one more task that
must be scheduled and sent through Redis afterwards."""

import time
from datetime import datetime, timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="lab08_load",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
)
def load() -> None:
    @task
    def work(n: int) -> int:
        time.sleep(45)
        return n

    @task
    def after(results: list[int]) -> int:
        return sum(results)

    after(work.expand(n=[1, 2, 3, 4]))


load()
