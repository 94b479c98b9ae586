"""Lab 4, scaling: grow the default worker pool, then shrink it while tasks run
and watch the drain: the removed worker finishes its tasks before it stops."""

from collections.abc import Sequence

from airflow_ha.airflow_api import JSON
from airflow_ha.labs.base import LabEnv, Step, wait_for

number = 4
slug = "scaling"
title = "Scale workers up and down, watch the drain"

DAG_ID = "lab04_drain"
FILE = f"{DAG_ID}.py"
WORKERS_UP = 3
WAIT_SECONDS = 600


def check(env: LabEnv) -> Sequence[Step]:
    workers_now = {s.hostname for s in env.services("worker")}
    topology_size = env.ctx.settings.replicas["worker"]
    best: tuple[set[str], list[JSON]] = (set(), [])
    for run in env.runs(DAG_ID):
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


def solve(env: LabEnv) -> None:
    topology_size = env.ctx.settings.replicas["worker"]
    env.copy_dag(FILE)
    env.cli("scale", str(WORKERS_UP))
    run_id = env.trigger(DAG_ID)
    env.log(f"waiting for tasks of {run_id} on {WORKERS_UP} workers")

    def on_every_worker() -> JSON | None:
        tis = env.client.task_instances(DAG_ID, run_id)
        running = {ti.get("hostname") for ti in tis if ti.get("state") == "running"}
        return {"hosts": sorted(map(str, running))} if len(running) >= WORKERS_UP else None

    wait_for("tasks running on every worker", on_every_worker)
    env.cli("scale", str(topology_size))
    env.wait_for_end(DAG_ID, run_id)
