"""Benchmark: N no-op mapped tasks at once (default 200): throughput and cost per task."""

from datetime import datetime

from airflow.sdk import Param, dag, task


@dag(
    dag_id="bench_fanout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # Let the slots, not the DAG, limit how many run at once.
    max_active_tasks=64,
    params={"tasks": Param(200, type="integer", minimum=1, maximum=1000)},
)
def bench_fanout() -> None:
    @task
    def items(**context: object) -> list[int]:
        params = context["params"]
        assert isinstance(params, dict)
        return list(range(int(params["tasks"])))

    @task
    def noop(item: int) -> None:
        pass

    noop.expand(item=items())


bench_fanout()
