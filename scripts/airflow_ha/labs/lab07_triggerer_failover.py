"""Lab 7, triggerer failover: kill the triggerer that holds a deferred sensor's
trigger; after triggerer_health_check_threshold another one takes it over, and
the task's log names every triggerer that ran it."""

import re
from collections.abc import Sequence

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

number = 7
slug = "triggerer-failover"
title = "Triggerer failover with a deferrable sensor"

DAG_ID = "lab07_deferred"
FILE = f"{DAG_ID}.py"
SENSOR = "wait"
THRESHOLD_SETTING = "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD"
# Each triggerer that ran a trigger writes its own log file beside the task's:
# ".../attempt=1.log.trigger.<triggerer job id>.log".
TRIGGER_LOG = re.compile(r"\.log\.trigger\.(\d+)\.log$")


def trigger_jobs(env: LabEnv, run_id: str) -> list[tuple[int, str]]:
    """(job id, hostname) of each triggerer job that ran the sensor's trigger."""
    [sensor] = [ti for ti in env.client.task_instances(DAG_ID, run_id) if ti["task_id"] == SENSOR]
    entries = env.client.task_log(DAG_ID, run_id, SENSOR, int(sensor.get("try_number") or 1))
    lines = (str(e.get("event", "")) if isinstance(e, dict) else str(e) for e in entries)
    ids = sorted({int(m.group(1)) for line in lines if (m := TRIGGER_LOG.search(line))})
    if not ids:
        return []
    rows = env.mysql_rows(f"SELECT id, hostname FROM job WHERE id IN ({', '.join(map(str, ids))})")
    return sorted((int(job), host) for job, host in rows)


def threshold(env: LabEnv) -> str:
    [triggerer] = env.containers("triggerer")[:1]
    return env_of(triggerer).get(THRESHOLD_SETTING, "30")


def facts(env: LabEnv, run: JSON) -> dict[str, str] | None:
    """The killed triggerer (it held the trigger first) and the one that ran it last."""
    window = run_window(run)
    if window is None:
        return None
    killed = {c.config.hostname for c in env.containers("triggerer") if stopped_between(c, *window)}
    jobs = trigger_jobs(env, str(run["dag_run_id"]))
    first = [job for job in jobs if job[1] in killed]
    # Another triggerer, or the killed one again under a new job once it was started.
    takers = [job for job in jobs if job[1] not in killed] or first[1:]
    if not first or not takers:
        return None
    return {
        "FIRST_TRIGGERER": first[0][1],
        "TOOK_OVER": takers[0][1],
        "THRESHOLD": threshold(env),
    }


def check(env: LabEnv) -> Sequence[Step]:
    run, truth = newest_with_facts(env, DAG_ID, facts)
    answers = env.answers(number)
    return [
        Step(f"{DAG_ID} has a successful run", run is not None, f"copy labs/files/{FILE}, run it"),
        Step(
            "in one, the triggerer holding the sensor was killed and another ran the trigger on",
            truth is not None,
            "`docker kill` the triggerer that holds the deferred sensor (see the guide)",
        ),
        Step(
            "FIRST_TRIGGERER is the hostname of the triggerer you killed",
            answered(answers, truth, "FIRST_TRIGGERER"),
            "the triggerer job that ran the trigger first",
        ),
        Step(
            "TOOK_OVER is the hostname of the triggerer that took the trigger over",
            answered(answers, truth, "TOOK_OVER"),
            "the sensor's log lists a trigger log per triggerer job",
        ),
        Step(
            "THRESHOLD is the seconds after which a silent triggerer's triggers move",
            number_in(answers.get("THRESHOLD")) == int(threshold(env)),
            "[triggerer] triggerer_health_check_threshold in compose/docker-compose.yaml",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)

    def holder() -> str | None:
        for ti in env.client.task_instances(DAG_ID, run_id):
            job = ti.get("triggerer_job") or {}
            if ti["task_id"] == SENSOR and ti.get("state") == "deferred" and job.get("hostname"):
                return str(job["hostname"])
        return None

    host = wait_for(f"{SENSOR} deferred to a triggerer", holder)

    def running_there() -> bool | None:
        # Assigned is not started: kill it once its trigger log shows it runs the trigger.
        return any(job_host == host for _, job_host in trigger_jobs(env, run_id)) or None

    wait_for(f"the trigger running on {host}", running_there, 60)
    why = f"which holds the trigger of {SENSOR}"
    kill_during_run(env, number, DAG_ID, run_id, "triggerer", host, why, facts)
