"""Lab 5, kill a scheduler mid-run: the other one carries on (active-active), and
the metadata database says which one queued each task (queued_by_job_id)."""

from collections.abc import Sequence
from datetime import datetime

from airflow_ha.airflow_api import JSON
from airflow_ha.labs.base import (
    LabEnv,
    Step,
    answered,
    kill_during_run,
    newest_with_facts,
    run_window,
    stopped_between,
    wait_for,
)

number = 5
slug = "scheduler-kill"
title = "Kill a scheduler mid-run, find who took over"

DAG_ID = "lab05_takeover"
FILE = f"{DAG_ID}.py"
STEPS_BEFORE_KILL = 4

# Which scheduler (host) queued each task of a run, in the order they were queued.
QUEUED_BY_SQL = """
SET time_zone = '+00:00';
SELECT DATE_FORMAT(ti.queued_dttm, '%Y-%m-%dT%H:%i:%s.%f+00:00'), j.hostname
FROM task_instance ti JOIN job j ON j.id = ti.queued_by_job_id
WHERE ti.dag_id = '{dag}' AND ti.run_id = '{run}' ORDER BY ti.queued_dttm
"""


def queued_by(env: LabEnv, run_id: str) -> list[tuple[datetime, str]]:
    if "'" in run_id:
        raise ValueError(f"unexpected run id {run_id!r}")
    rows = env.mysql_rows(QUEUED_BY_SQL.format(dag=DAG_ID, run=run_id))
    return [(datetime.fromisoformat(when), host) for when, host in rows]


def facts(env: LabEnv, run: JSON) -> dict[str, str] | None:
    """The killed scheduler and the one that queued the first task after the kill."""
    window = run_window(run)
    if window is None:
        return None
    killed = [c for c in env.containers("scheduler") if stopped_between(c, *window)]
    if not killed:
        return None
    kill_time = killed[0].state.finished_at
    assert kill_time is not None
    after = [host for when, host in queued_by(env, str(run["dag_run_id"])) if when > kill_time]
    if not after:
        return None
    return {"KILLED_SCHEDULER": str(killed[0].config.hostname), "TOOK_OVER": after[0]}


def check(env: LabEnv) -> Sequence[Step]:
    run, truth = newest_with_facts(env, DAG_ID, facts)
    answers = env.answers(number)
    tis = env.client.task_instances(DAG_ID, str(run["dag_run_id"])) if run else []
    return [
        Step(f"{DAG_ID} has a successful run", run is not None, f"copy labs/files/{FILE}, run it"),
        Step(
            "a scheduler was killed while that run went on",
            truth is not None,
            "`docker kill` a scheduler container while the run's tasks are being queued",
        ),
        Step(
            "every task of the run succeeded on its first try",
            bool(tis) and all(ti.get("try_number") == 1 for ti in tis),
            "a task needed a retry: run the DAG again",
        ),
        Step(
            "KILLED_SCHEDULER names the scheduler you killed (its hostname)",
            answered(answers, truth, "KILLED_SCHEDULER"),
            "the container's hostname: `docker inspect -f '{{.Config.Hostname}}' <container>`",
        ),
        Step(
            "TOOK_OVER names the scheduler that queued the first task after the kill",
            answered(answers, truth, "TOOK_OVER"),
            "join task_instance.queued_by_job_id with job.hostname (see the guide)",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)

    def busy_scheduler() -> str | None:
        queued = queued_by(env, run_id)
        return queued[-1][1] if len(queued) > STEPS_BEFORE_KILL else None

    host = wait_for(f"{STEPS_BEFORE_KILL} tasks of {run_id} queued", busy_scheduler)
    kill_during_run(
        env, number, DAG_ID, run_id, "scheduler", host, "which queued the latest task", facts
    )
