"""Lab 7: a sensor that defers its 60-second wait to a triggerer."""

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import dag, task


@dag(dag_id="lab07_deferred", schedule=None, start_date=datetime(2026, 1, 1), tags=["lab"])
def deferred() -> None:
    wait = WaitSensor(task_id="wait", time_to_wait=timedelta(seconds=60), deferrable=True)

    @task
    def after_wait() -> str:
        return "resumed"

    wait >> after_wait()


deferred()
