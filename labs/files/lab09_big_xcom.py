"""Lab 9: XComs of growing size on MySQL, and what to do with big outputs instead."""

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag, get_current_context, task

SIZES = {"1kb": 1 << 10, "64kb": 64 << 10, "1mb": 1 << 20, "16mb": 16 << 20, "100mb": 100 << 20}
# A folder every Airflow container mounts (the task logs volume): a stand-in for
# the object storage (S3, GCS, a shared file system) a real cluster would use.
SHARED = Path("/opt/airflow/logs/lab09")


@dag(
    dag_id="lab09_big_xcom",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    tags=["lab"],
    default_args={"retries": 0},
)
def big_xcom() -> None:
    for name, size in SIZES.items():

        @task(task_id=f"push_{name}")
        def push(size: int = size) -> None:
            # An explicit push, and no return value: Airflow logs a task's return
            # value, and a 100 MB log line alone takes minutes (the guide says more).
            get_current_context()["ti"].xcom_push(key="blob", value="x" * size)

        push()

    @task
    def write_to_storage() -> str:
        # The right practice: put the data in storage, pass its path.
        run_id = get_current_context()["run_id"].replace(":", "_").replace("+", "_")
        path = SHARED / f"{run_id}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(SIZES["100mb"]))
        return str(path)

    @task
    def read_from_storage(path: str) -> int:
        size = Path(path).stat().st_size
        Path(path).unlink()
        return size

    read_from_storage(write_to_storage())


big_xcom()
