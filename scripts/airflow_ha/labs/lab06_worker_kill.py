"""Lab 6, kill the worker running a task: the task's heartbeat stops, the
scheduler fails the try after task_instance_heartbeat_timeout, and the retry
runs on another worker."""

from collections.abc import Sequence
from urllib.parse import quote

from airflow_ha.airflow_api import JSON
from airflow_ha.chaos.evidence import env_of
from airflow_ha.labs.base import (
    LabEnv,
    Step,
    answered,
    kill_during_run,
    newest_with_facts,
    number_in,
    run_window,
    stopped_between,
    wait_for,
)

number = 6
slug = "worker-kill"
title = "Kill the worker running a task: heartbeat timeout and retries"

DAG_ID = "lab06_retry"
FILE = f"{DAG_ID}.py"
TASK_ID = "long_task"
TIMEOUT_SETTING = "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"


def tries(env: LabEnv, run_id: str) -> list[JSON]:
    path = (
        f"/api/v2/dags/{quote(DAG_ID)}/dagRuns/{quote(run_id, safe='')}"
        f"/taskInstances/{TASK_ID}/tries"
    )
    answer = env.client.request("GET", path, allow_404=True) or {}
    return sorted(answer.get("task_instances", []), key=lambda t: int(t.get("try_number", 0)))


def heartbeat_timeout(env: LabEnv) -> str:
    [scheduler] = env.containers("scheduler")[:1]
    return env_of(scheduler).get(TIMEOUT_SETTING, "300")


def facts(env: LabEnv, run: JSON) -> dict[str, str] | None:
    """The killed worker (ran try 1, died during the run) and the one the retry ran on."""
    window = run_window(run)
    attempts = tries(env, str(run["dag_run_id"]))
    if window is None or len(attempts) < 2:
        return None
    first, last = attempts[0], attempts[-1]
    killed = [
        c
        for c in env.containers("worker")
        if c.config.hostname == first.get("hostname") and stopped_between(c, *window)
    ]
    if not killed or first.get("state") != "failed" or last.get("state") != "success":
        return None
    return {
        "KILLED_WORKER": str(first["hostname"]),
        "RETRIED_ON": str(last.get("hostname")),
        "HEARTBEAT_TIMEOUT": heartbeat_timeout(env),
    }


def check(env: LabEnv) -> Sequence[Step]:
    run, truth = newest_with_facts(env, DAG_ID, facts)
    answers = env.answers(number)
    return [
        Step(f"{DAG_ID} has a successful run", run is not None, f"copy labs/files/{FILE}, run it"),
        Step(
            f"in one, {TASK_ID}'s first try died with the worker you killed, a retry succeeded",
            truth is not None,
            f"`docker kill` the worker running {TASK_ID} (its host is in the UI or `make status`)",
        ),
        Step(
            "KILLED_WORKER is that worker's hostname",
            answered(answers, truth, "KILLED_WORKER"),
            "the host of try 1 (the task's *Task Tries* in the UI)",
        ),
        Step(
            "RETRIED_ON is the hostname of the worker that ran the successful try",
            answered(answers, truth, "RETRIED_ON"),
            "the host of the last try",
        ),
        Step(
            "HEARTBEAT_TIMEOUT is the seconds after which a silent task is failed",
            number_in(answers.get("HEARTBEAT_TIMEOUT")) == int(heartbeat_timeout(env)),
            "[scheduler] task_instance_heartbeat_timeout in compose/docker-compose.yaml",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)

    def running_host() -> str | None:
        for attempt in tries(env, run_id):
            if attempt.get("state") == "running" and attempt.get("hostname"):
                return str(attempt["hostname"])
        return None

    host = wait_for(f"{TASK_ID} running", running_host)
    kill_during_run(env, number, DAG_ID, run_id, "worker", host, f"which runs {TASK_ID}", facts)
