"""Lab 4, scaling: grow the default worker pool, then shrink it while tasks run
and watch the drain: the removed worker finishes its tasks before it stops."""

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from urllib.parse import quote

from airflow_ha.airflow_api import JSON
from airflow_ha.errors import ClusterError
from airflow_ha.labs.base import LabEnv, Step

number = 4
slug = "scaling"
title = "Scale workers up and down, watch the drain"

DAG_ID = "lab04_drain"
FILE = f"{DAG_ID}.py"
WORKERS_UP = 3
WAIT_SECONDS = 600


def _successful_runs(env: LabEnv) -> list[JSON]:
    answer = env.client.request(
        "GET", f"/api/v2/dags/{quote(DAG_ID)}/dagRuns", allow_404=True, params={"state": "success"}
    )
    return list((answer or {}).get("dag_runs", []))


def check(env: LabEnv) -> Sequence[Step]:
    workers_now = {s.hostname for s in env.services("worker")}
    topology_size = env.ctx.settings.replicas["worker"]
    best: tuple[set[str], list[JSON]] = (set(), [])
    for run in _successful_runs(env):
        tis = env.client.task_instances(DAG_ID, str(run["dag_run_id"]))
        hosts = {str(ti.get("hostname")) for ti in tis}
        if len(hosts) > len(best[0]) or (hosts - workers_now and not best[0] - workers_now):
            best = (hosts, tis)
    hosts, tis = best
    return [
        Step(
            f"the DAG file {FILE} is in the DAG folder",
            (env.dags_dir / FILE).is_file(),
            f"copy labs/files/{FILE} into the DAG folder",
        ),
        Step(f"{DAG_ID} has a successful run", bool(tis), f"trigger {DAG_ID}"),
        Step(
            f"its tasks ran on at least {WORKERS_UP} workers",
            len(hosts) >= WORKERS_UP,
            f"`make scale WORKERS={WORKERS_UP}` before you trigger the run",
        ),
        Step(
            "a worker that ran its tasks was removed while they ran, and finished them",
            bool(hosts - workers_now),
            f"while the tasks run, `make scale WORKERS={topology_size}`",
        ),
        Step(
            "every task of that run succeeded on its first try",
            bool(tis) and all(ti.get("try_number") == 1 for ti in tis),
            "a task that needed a retry lost its worker: scale down with `make scale`, "
            "not `docker rm -f`",
        ),
        Step(
            f"the default pool is back to {topology_size} workers",
            len(workers_now) == topology_size,
            f"`make scale WORKERS={topology_size}`",
        ),
    ]


def _wait(env: LabEnv, what: str, ready: Callable[[], JSON | None]) -> JSON:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        result = ready()
        if result is not None:
            return result
        time.sleep(2)
    raise ClusterError(f"lab {number}: {what} did not happen within {WAIT_SECONDS} s")


def solve(env: LabEnv) -> None:
    topology_size = env.ctx.settings.replicas["worker"]
    env.copy_dag(FILE)
    env.cli("scale", str(WORKERS_UP))
    _wait(env, "the DAG's parsing", lambda: env.client.dag(DAG_ID))
    env.client.set_paused(DAG_ID, paused=False)
    run_id = str(env.client.trigger(DAG_ID, logical_date=datetime.now(UTC))["dag_run_id"])
    env.log(f"{DAG_ID}: triggered {run_id}; waiting for tasks on {WORKERS_UP} workers")

    def on_every_worker() -> JSON | None:
        tis = env.client.task_instances(DAG_ID, run_id)
        running = {ti.get("hostname") for ti in tis if ti.get("state") == "running"}
        return {"hosts": sorted(map(str, running))} if len(running) >= WORKERS_UP else None

    _wait(env, "tasks running on every worker", on_every_worker)
    env.cli("scale", str(topology_size))

    def finished() -> JSON | None:
        run = env.client.dag_run(DAG_ID, run_id)
        return run if run.get("state") in ("success", "failed") else None

    run = _wait(env, f"the end of {run_id}", finished)
    env.log(f"{DAG_ID}: {run['state']}")
