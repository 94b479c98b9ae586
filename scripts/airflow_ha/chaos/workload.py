"""The chaos workload: several runs of dags/chaos_workload.py, observed through the REST API."""

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.errors import VerificationError

DAG_ID = "chaos_workload"
FINISHED = frozenset({"success", "failed"})


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TaskSnapshot:
    run_id: str
    task_id: str
    map_index: int
    state: str
    try_number: int
    start: datetime | None
    end: datetime | None
    hostname: str
    triggerer_host: str
    triggerer_job_id: int | None
    queued: datetime | None = None  # when its latest try was sent to Celery

    @classmethod
    def from_api(cls, ti: JSON) -> "TaskSnapshot":
        triggerer = ti.get("triggerer_job") or {}
        return cls(
            run_id=str(ti["dag_run_id"]),
            task_id=str(ti["task_id"]),
            map_index=int(ti.get("map_index", -1)),
            state=str(ti.get("state") or "none"),
            try_number=int(ti.get("try_number") or 0),
            start=parse_time(ti.get("start_date")),
            end=parse_time(ti.get("end_date")),
            hostname=str(ti.get("hostname") or ""),
            triggerer_host=str(triggerer.get("hostname") or ""),
            triggerer_job_id=int(triggerer["id"]) if triggerer.get("id") is not None else None,
            queued=parse_time(ti.get("queued_when")),
        )


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    state: str
    start: datetime | None
    end: datetime | None

    @classmethod
    def from_api(cls, run: JSON) -> "RunSnapshot":
        return cls(
            run_id=str(run["dag_run_id"]),
            state=str(run.get("state") or "none"),
            start=parse_time(run.get("start_date")),
            end=parse_time(run.get("end_date")),
        )


def host_of_try(tries: list[JSON], try_number: int) -> str:
    """The hostname that try `try_number` of a task ran on, among its `tries`
    (the REST API's answer); "" if it is not there or ran nowhere."""
    return next(
        (str(t.get("hostname") or "") for t in tries if t.get("try_number") == try_number),
        "",
    )


class Workload:
    """Runs of the chaos DAG, triggered together and watched until they end."""

    def __init__(self, client: AirflowClient, runs: int) -> None:
        self.client = client
        self.runs = runs
        self.run_ids: list[str] = []

    def start(self, discover_timeout: float = 90) -> None:
        deadline = time.monotonic() + discover_timeout
        while self.client.dag(DAG_ID) is None:
            if time.monotonic() > deadline:
                raise VerificationError(
                    f"DAG {DAG_ID} is not parsed: is dags/chaos_workload.py mounted?"
                )
            time.sleep(2)
        self.client.set_paused(DAG_ID, paused=False)
        self.run_ids = [str(self.client.trigger(DAG_ID)["dag_run_id"]) for _ in range(self.runs)]

    def run_snapshots(self) -> list[RunSnapshot]:
        return [RunSnapshot.from_api(self.client.dag_run(DAG_ID, run)) for run in self.run_ids]

    def tasks(self) -> list[TaskSnapshot]:
        return [
            TaskSnapshot.from_api(ti)
            for run in self.run_ids
            for ti in self.client.task_instances(DAG_ID, run)
        ]

    def earlier_host(self, task: TaskSnapshot) -> str:
        """The hostname of the try before `task`'s latest ("" if none was recorded)."""
        tries = self.client.task_tries(DAG_ID, task.run_id, task.task_id, task.map_index)
        return host_of_try(tries, task.try_number - 1)

    def finished(self) -> bool:
        return all(run.state in FINISHED for run in self.run_snapshots())
