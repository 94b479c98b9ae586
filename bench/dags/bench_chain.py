"""Benchmark: 20 no-op tasks, one after the other (time per task = scheduling latency)."""

from datetime import datetime

from airflow.sdk import chain, dag, task

LENGTH = 20


@dag(dag_id="bench_chain", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def bench_chain() -> None:
    @task
    def noop() -> None:
        pass

    chain(*[noop.override(task_id=f"step_{i:02d}")() for i in range(LENGTH)])


bench_chain()
