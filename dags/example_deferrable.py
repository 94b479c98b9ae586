"""A deferrable wait: the task hands its wait to the triggerer and frees its worker slot.

It proves the triggerer works: the sensor defers, the triggerer fires after the
delay, and a worker resumes the task.
"""

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.time_delta import WaitSensor
from airflow.sdk import dag, task


@dag(
    dag_id="example_deferrable",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["airflow-ha-example"],
    doc_md=__doc__,
)
def example_deferrable() -> None:
    wait = WaitSensor(
        task_id="wait_on_triggerer", time_to_wait=timedelta(seconds=5), deferrable=True
    )

    @task
    def after_wait() -> str:
        return "resumed after the triggerer fired"

    wait >> after_wait()


example_deferrable()
