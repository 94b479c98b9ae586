"""Fan out over several Celery workers and pass data between tasks with XCom.

`make_batches` returns a list (an XCom); `square` is mapped over it, one task
instance per item, each sleeping long enough that the instances overlap and
more than one worker takes part; `total` sums their XComs. For the default
8 items the result is 0² + 1² + ... + 7² = 140, which the integration tests
read back through the REST API.
"""

import socket
import time
from datetime import datetime

from airflow.sdk import dag, task

ITEMS = 8
SECONDS_PER_ITEM = 5


@dag(
    dag_id="example_fanout_xcom",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-ha-example"],
    doc_md=__doc__,
)
def example_fanout_xcom() -> None:
    @task
    def make_batches(count: int = ITEMS) -> list[int]:
        return list(range(count))

    @task
    def square(item: int) -> dict[str, object]:
        time.sleep(SECONDS_PER_ITEM)
        return {"item": item, "square": item * item, "host": socket.gethostname()}

    @task
    def total(results: list[dict[str, object]]) -> int:
        hosts = sorted({str(r["host"]) for r in results})
        print(f"{len(results)} results from {len(hosts)} worker(s): {', '.join(hosts)}")
        return sum(int(str(r["square"])) for r in results)

    total(square.expand(item=make_batches()))


example_fanout_xcom()
