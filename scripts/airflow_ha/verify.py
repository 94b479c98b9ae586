"""Run DAGs end-to-end through the REST API and report every task.

Works against any Airflow 3 API: it needs only a URL and credentials.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from airflow_ha.airflow_api import JSON, AirflowApiError, AirflowClient, parse_time
from airflow_ha.console import table
from airflow_ha.errors import VerificationError

EXAMPLE_TAG = "airflow-ha-example"
FINISHED_RUN_STATES = frozenset({"success", "failed"})
NOT_TRIGGERED = "not triggered"
# Task states that are a result, not a failure: a branch not taken, a task
# removed from the DAG after the run was created.
PASSED_TASK_STATES = frozenset({"success"})
SKIPPED_TASK_STATES = frozenset({"skipped", "removed"})
POLL_SECONDS = 2.0
LOG_TAIL_LINES = 30
# A task may log one huge line (Airflow logs a task's return value): keep each short.
LOG_LINE_CHARS = 500

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
    # The last lines of the last try's log; read only for tasks that did not succeed.
    log_tail: tuple[str, ...] = ()

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

    @property
    def failed(self) -> bool:
        """Neither succeeded nor skipped: failed, upstream_failed, or never finished."""
        return self.state not in PASSED_TASK_STATES | SKIPPED_TASK_STATES


@dataclass
class RunResult:
    dag_id: str
    run_id: str
    state: str = "queued"
    tasks: list[TaskResult] = field(default_factory=list)
    logical_date: datetime | None = None
    error: str = ""  # why the run could not be created (state NOT_TRIGGERED)

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


@dataclass(frozen=True)
class ImportProblem:
    """A DAG file that could not be imported, with Airflow's traceback."""

    filename: str
    trace: str


class DagImportError(VerificationError):
    """DAG files failed to import; `problems` holds each file and its trace."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        files = ", ".join(sorted({p.filename for p in problems}))
        details = "\n\n".join(f"{p.filename}:\n{p.trace}" for p in problems)
        super().__init__(f"{len(problems)} DAG import error(s) in: {files}", details=details)
        self.problems = problems


def check_import_errors(client: AirflowClient) -> None:
    errors = client.import_errors()
    if errors:
        raise DagImportError(
            [
                ImportProblem(str(e.get("filename", "?")), str(e.get("stack_trace", "")))
                for e in errors
            ]
        )


def log_line(entry: Any) -> str:
    """One line of a task log as the API gives it: a structured entry or a string."""
    if not isinstance(entry, dict):
        return str(entry)
    parts = [str(entry.get(key)) for key in ("timestamp", "level") if entry.get(key)]
    line = " ".join([*parts, str(entry.get("event", ""))])
    for detail in entry.get("error_detail") or []:
        if isinstance(detail, dict):
            line += f"\n{detail.get('exc_type', '?')}: {detail.get('exc_value', '')}"
    return line


def shortened(line: str, limit: int = LOG_LINE_CHARS) -> str:
    if len(line) <= limit:
        return line
    return f"{line[:limit]}... ({len(line) - limit} more characters)"


def log_tail(entries: list[Any], lines: int = LOG_TAIL_LINES) -> tuple[str, ...]:
    text = [line for entry in entries[-lines:] for line in log_line(entry).splitlines()]
    return tuple(shortened(line) for line in text[-lines:])


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
    logical_date: Callable[[], datetime | None] = lambda: None,
    with_log_tails: bool = False,
) -> list[RunResult]:
    """Unpause and trigger each DAG (with its `conf`, if given, and the logical
    date `logical_date()` gives), then wait for every run to finish.

    `with_log_tails`: read the last log lines of every task that did not succeed.
    """
    runs = []
    for dag_id in dag_ids:
        client.set_paused(dag_id, paused=False)
        date = logical_date()
        try:
            created = client.trigger(dag_id, (conf or {}).get(dag_id), date)
        except AirflowApiError as error:
            # One refused run (a required param without a value) must not stop the others.
            runs.append(RunResult(dag_id, "", NOT_TRIGGERED, [], date, str(error)))
            log(f"{dag_id}: {NOT_TRIGGERED}: {error}")
            continue
        runs.append(RunResult(dag_id, str(created["dag_run_id"]), str(created["state"]), [], date))
        log(f"{dag_id}: triggered run {created['dag_run_id']}")
    deadline = time.monotonic() + timeout
    pending = [run for run in runs if run.state != NOT_TRIGGERED]
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
        if run.state == NOT_TRIGGERED:
            continue
        tis = client.task_instances(run.dag_id, run.run_id)
        run.tasks = sorted(map(TaskResult.from_api, tis), key=lambda t: (t.task_id, t.map_index))
        if with_log_tails:
            run.tasks = [_with_log_tail(client, run, task) for task in run.tasks]
    return runs


def _with_log_tail(client: AirflowClient, run: RunResult, task: TaskResult) -> TaskResult:
    if not task.failed or task.try_number < 1:
        return task
    try:
        entries = client.task_log(
            run.dag_id, run.run_id, task.task_id, task.try_number, task.map_index
        )
    except AirflowApiError as error:
        return replace(task, log_tail=(f"(the log could not be read: {error})",))
    return replace(task, log_tail=log_tail(entries))


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


# Event log entries every try writes; the others say why a try ended early.
ROUTINE_EVENTS = frozenset({"running", "success"})


def why_retried(runs: list[RunResult], events: dict[str, list[JSON]]) -> list[str]:
    """What Airflow's event log says about each earlier try of a retried task:
    `dag.task (try N): event extra`, from `events` (run_id -> that run's entries).
    A retried task without such an entry is listed as `no event logged`."""
    reasons = []
    for run in runs:
        for task in run.tasks:
            if task.try_number < 2:
                continue
            said = [
                f"{event.get('event')} {event.get('extra') or ''}".strip()
                for event in events.get(run.run_id, [])
                if event.get("task_id") == task.task_id
                and _number(event.get("map_index"), -1) == task.map_index
                and _number(event.get("try_number"), 0) < task.try_number
                and event.get("event") not in ROUTINE_EVENTS
            ]
            for reason in said or ["no event logged"]:
                reasons.append(f"{run.dag_id}.{task.name} (try {task.try_number}): {reason}")
    return reasons


def _number(value: Any, absent: int) -> int:
    """An event log field that may be null (an event of no task try)."""
    return absent if value is None else int(value)


def read_why_retried(client: AirflowClient, runs: list[RunResult]) -> list[str]:
    """why_retried() with the event log of every run that has a retried task."""
    events = {
        run.run_id: client.event_logs(run.dag_id, run.run_id)
        for run in runs
        if any(task.try_number > 1 for task in run.tasks)
    }
    return why_retried(runs, events)


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
    tails = [
        f"--- {run.dag_id}.{task.name}: {task.state}, try {task.try_number}, last log lines ---\n"
        + "\n".join(task.log_tail)
        for run in runs
        for task in run.tasks
        if task.log_tail
    ]
    summary = f"{succeeded} of {len(runs)} DAG runs succeeded; {retry_summary(runs)}"
    return "\n".join([table(rows), *tails, summary])


def as_json(runs: list[RunResult]) -> list[JSON]:
    """The runs and their tasks as plain JSON values (times in ISO 8601)."""

    def iso(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return [
        {
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "state": run.state,
            "succeeded": run.succeeded,
            "logical_date": iso(run.logical_date),
            "error": run.error,
            "tasks": [
                {
                    "task_id": task.task_id,
                    "map_index": task.map_index,
                    "state": task.state,
                    "try_number": task.try_number,
                    "duration": task.duration,
                    "hostname": task.hostname,
                    "queued_at": iso(task.queued_at),
                    "started_at": iso(task.started_at),
                    "ended_at": iso(task.ended_at),
                    "log_tail": list(task.log_tail),
                }
                for task in run.tasks
            ],
        }
        for run in runs
    ]


@dataclass
class Outcome:
    """What one `verify` found: the runs, or why it stopped before or while running them."""

    runs: list[RunResult] = field(default_factory=list)
    problems: list[ImportProblem] = field(default_factory=list)
    error: str | None = None

    @property
    def failed_runs(self) -> list[RunResult]:
        return [run for run in self.runs if not run.succeeded]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not (self.failed_runs or self.problems or self.error)

    def as_json(self) -> JSON:
        return {
            "ok": self.ok,
            "error": self.error,
            "import_errors": [{"filename": p.filename, "trace": p.trace} for p in self.problems],
            "runs": as_json(self.runs),
        }


def logical_date_source(choice: str | datetime) -> Callable[[], datetime | None]:
    """What each triggered run's logical date is: `now` as the UI does, `none`, or a time."""
    if choice == "now":
        return lambda: datetime.now(UTC)
    if choice == "none":
        return lambda: None
    if isinstance(choice, datetime):
        return lambda: choice
    raise ValueError(f"not a logical date choice: {choice!r}")


def verify(
    client: AirflowClient,
    dag_ids: list[str],
    timeout: float,
    discover_timeout: float,
    log: Log,
    conf: dict[str, JSON] | None = None,
    logical_date: Callable[[], datetime | None] = lambda: None,
) -> list[RunResult]:
    selected = wait_for_dags(client, dag_ids, discover_timeout, log)
    return run_dags(client, selected, timeout, log, conf, logical_date, with_log_tails=True)
