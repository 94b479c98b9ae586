"""Lab 8, restart MySQL and Redis under load: running tasks carry on, the
components that hold a database session exit and are restarted by Docker, and
the run still succeeds."""

from collections.abc import Sequence

from airflow_ha.airflow_api import JSON
from airflow_ha.errors import ClusterError
from airflow_ha.labs.base import (
    LabEnv,
    Step,
    comma_set,
    newest_with_facts,
    run_window,
    stopped_between,
    wait_for,
)

number = 8
slug = "mysql-redis-restart"
title = "Restart MySQL and Redis under load"

DAG_ID = "lab08_load"
FILE = f"{DAG_ID}.py"
RUNNING_BEFORE = 4
NOT_COUNTED = frozenset({"mysql", "redis", "airflow-init"})
SERVICES = (
    "api-server", "dag-processor", "flower", "lb", "scheduler", "triggerer", "worker",
    "worker-heavy",
)  # fmt: skip


def facts(env: LabEnv, run: JSON) -> dict[str, str] | None:
    """The services that restarted after MySQL did, within the run."""
    window = run_window(run)
    if window is None:
        return None
    [mysql] = env.containers("mysql")
    [redis] = env.containers("redis")
    if not (stopped_between(mysql, *window) and stopped_between(redis, *window)):
        return None
    assert mysql.state.finished_at is not None
    restarted = sorted(
        service
        for service in SERVICES
        for c in env.containers(service)
        if stopped_between(c, mysql.state.finished_at, window[1])
    )
    return {"RESTARTED_WITH_MYSQL": ",".join(dict.fromkeys(restarted))}


def check(env: LabEnv) -> Sequence[Step]:
    run, truth = newest_with_facts(env, DAG_ID, facts)
    answers = env.answers(number)
    return [
        Step(f"{DAG_ID} has a successful run", run is not None, f"copy labs/files/{FILE}, run it"),
        Step(
            "MySQL and Redis both restarted while that run went on",
            truth is not None,
            "`docker restart` the mysql and the redis containers while the tasks run",
        ),
        Step(
            "RESTARTED_WITH_MYSQL names the services whose containers restarted after MySQL",
            truth is not None
            and comma_set(answers.get("RESTARTED_WITH_MYSQL"))
            == comma_set(truth["RESTARTED_WITH_MYSQL"]),
            "`make status` and `docker ps` show restarts; the guide says how to tell",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)

    def all_running() -> int | None:
        tis = env.client.task_instances(DAG_ID, run_id)
        running = sum(1 for ti in tis if ti["task_id"] == "work" and ti.get("state") == "running")
        return running if running >= RUNNING_BEFORE else None

    wait_for(f"{RUNNING_BEFORE} tasks of {run_id} running", all_running)
    for service in ("redis", "mysql"):
        [container] = env.containers(service)
        env.log(f"restarting {container.name}")
        env.ctx.stack.docker.container.restart(container)
        env.wait_ready(container.name, service)
    run = env.wait_for_end(DAG_ID, run_id)
    env.ctx.stack.wait_healthy(600, env.log)
    truth = facts(env, run)
    if run.get("state") != "success" or truth is None:
        raise ClusterError(f"lab {number}: {run_id} ended {run.get('state')}")
    env.write_answers(number, truth)
