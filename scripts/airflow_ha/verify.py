"""Run DAGs end-to-end through the REST API and report every task.

Works against any Airflow 3 API: it needs only a URL and credentials.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.console import table
from airflow_ha.errors import VerificationError

EXAMPLE_TAG = "airflow-ha-example"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
POLL_SECONDS = 2.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class TaskResult:
    task_id: str
    map_index: int
    state: str
    try_number: int
    duration: float | None
    hostname: str
    queued_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None

    @classmethod
    def from_api(cls, ti: JSON) -> "TaskResult":
        return cls(
            task_id=str(ti["task_id"]),
            map_index=int(ti.get("map_index", -1)),
            state=str(ti.get("state") or "none"),
            try_number=int(ti.get("try_number") or 0),
            duration=float(ti["duration"]) if ti.get("duration") is not None else None,
            hostname=str(ti.get("hostname") or ""),
            queued_at=parse_time(ti.get("queued_when")),
            started_at=parse_time(ti.get("start_date")),
            ended_at=parse_time(ti.get("end_date")),
        )

    @property
    def name(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str = "queued"
    tasks: list[TaskResult] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def check_import_errors(client: AirflowClient) -> None:
    errors = client.import_errors()
    if errors:
        files = ", ".join(sorted({str(e.get("filename", "?")) for e in errors}))
        details = "\n\n".join(f"{e.get('filename')}:\n{e.get('stack_trace', '')}" for e in errors)
        raise VerificationError(f"{len(errors)} DAG import error(s) in: {files}", details=details)


def wait_for_dags(client: AirflowClient, dag_ids: list[str], timeout: float, log: Log) -> list[str]:
    """Wait until the DAGs are parsed (or the example DAGs when none are named).

    A DAG file added after start-up is picked up within the dag-processor's
    refresh interval; import errors stop the wait at once.
    """
    deadline = time.monotonic() + timeout
    announced = False
    while True:
        check_import_errors(client)
        if dag_ids:
            missing = [d for d in dag_ids if client.dag(d) is None]
            if not missing:
                return dag_ids
        else:
            found = sorted(str(d["dag_id"]) for d in client.dags_tagged(EXAMPLE_TAG))
            if found:
                return found
            missing = [f"(any DAG tagged {EXAMPLE_TAG!r})"]
        if time.monotonic() > deadline:
            raise VerificationError(
                f"DAG {', '.join(missing)} did not appear within {timeout:.0f} s: "
                "is its file in the DAG folder, and does it define that dag_id?"
            )
        if not announced:
            log(f"waiting for the dag-processor to parse {', '.join(missing)}")
            announced = True
        time.sleep(POLL_SECONDS)


def run_dags(
    client: AirflowClient,
    dag_ids: list[str],
    timeout: float,
    log: Log,
    conf: dict[str, JSON] | None = None,
) -> list[RunResult]:
    """Unpause and trigger each DAG (with its `conf`, if given), then wait for
    every run to finish."""
    runs = []
    for dag_id in dag_ids:
        client.set_paused(dag_id, paused=False)
        created = client.trigger(dag_id, (conf or {}).get(dag_id))
        runs.append(RunResult(dag_id, str(created["dag_run_id"]), str(created["state"])))
        log(f"{dag_id}: triggered run {created['dag_run_id']}")
    deadline = time.monotonic() + timeout
    pending = list(runs)
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        for run in list(pending):
            state = str(client.dag_run(run.dag_id, run.run_id)["state"])
            if state != run.state:
                log(f"{run.dag_id}: {state}")
                run.state = state
            if state in FINISHED_RUN_STATES:
                pending.remove(run)
    for run in runs:
        tis = client.task_instances(run.dag_id, run.run_id)
        run.tasks = sorted(map(TaskResult.from_api, tis), key=lambda t: (t.task_id, t.map_index))
    return runs


def retried(runs: list[RunResult]) -> list[str]:
    """`dag.task (try N)` for each task instance that needed more than one try.

    A retry that ends in success still means the first try failed: with no
    fault injected, that is a false failure (a busy machine, a lost heartbeat)
    and a non-idempotent task would have done its work twice.
    """
    return [
        f"{run.dag_id}.{task.name} (try {task.try_number})"
        for run in runs
        for task in run.tasks
        if task.try_number > 1
    ]


def retry_summary(runs: list[RunResult]) -> str:
    tries = retried(runs)
    if not tries:
        return "no task needed a second try"
    return f"{len(tries)} task(s) needed more than one try: {', '.join(tries)}"


def format_report(runs: list[RunResult]) -> str:
    rows = [("DAG", "RUN STATE", "TASK", "STATE", "TRY", "DURATION", "WORKER HOST")]
    for run in runs:
        if not run.tasks:
            rows.append((run.dag_id, run.state, "-", "-", "-", "-", "-"))
        for task in run.tasks:
            duration = f"{task.duration:.1f}s" if task.duration is not None else "-"
            rows.append(
                (
                    run.dag_id,
                    run.state,
                    task.name,
                    task.state,
                    str(task.try_number),
                    duration,
                    task.hostname or "-",
                )
            )
    succeeded = sum(run.succeeded for run in runs)
    return f"{table(rows)}\n{succeeded} of {len(runs)} DAG runs succeeded; {retry_summary(runs)}"


def verify(
    client: AirflowClient,
    dag_ids: list[str],
    timeout: float,
    discover_timeout: float,
    log: Log,
) -> list[RunResult]:
    selected = wait_for_dags(client, dag_ids, discover_timeout, log)
    return run_dags(client, selected, timeout, log)
