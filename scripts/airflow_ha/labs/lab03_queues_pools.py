"""Lab 3, queues and pools: send a task to the heavy workers, and cap how many
such tasks run at once with an Airflow pool."""

from collections.abc import Sequence
from urllib.parse import quote

from airflow_ha.labs.base import LabEnv, Step

number = 3
slug = "queues-and-pools"
title = "Queues and pools"

DAG_ID = "lab03_queues"
FILE = f"{DAG_ID}.py"
POOL = "lab03_pool"
POOL_SLOTS = 2
HEAVY_TASK = "crunch"

SOLUTION = f'''
    """Lab 3: a light task on the default queue, a heavy one on the heavy queue,
    limited by the pool {POOL}."""

    from datetime import datetime

    from airflow.sdk import dag, task


    @dag(dag_id="{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), tags=["lab"])
    def queues():
        @task
        def prepare() -> int:
            return 200_000

        @task(queue="heavy", pool="{POOL}")
        def {HEAVY_TASK}(n: int) -> int:
            return sum(i * i for i in range(n))

        {HEAVY_TASK}(prepare())


    queues()
'''


def check(env: LabEnv) -> Sequence[Step]:
    pool = env.client.request("GET", f"/api/v2/pools/{quote(POOL)}", allow_404=True)
    heavy_hosts = {s.hostname for s in env.services("worker-heavy")}
    runs = (
        env.client.request(
            "GET", f"/api/v2/dags/{quote(DAG_ID)}/dagRuns", allow_404=True,
            params={"state": "success"},
        )
        or {}
    ).get("dag_runs", [])  # fmt: skip
    crunch = [
        ti
        for run in runs
        for ti in env.client.task_instances(DAG_ID, str(run["dag_run_id"]))
        if ti["task_id"] == HEAVY_TASK and ti.get("state") == "success"
    ]
    return [
        Step(
            f"the pool {POOL} exists with {POOL_SLOTS} slots",
            bool(pool) and int((pool or {}).get("slots", -1)) == POOL_SLOTS,
            "create it in the UI (Admin > Pools) or through the REST API",
        ),
        Step(
            f"{DAG_ID} has a successful run",
            bool(runs),
            f"write {FILE}, then `make verify DAG={DAG_ID}`",
        ),
        Step(
            f"its task {HEAVY_TASK} ran in the pool {POOL}",
            any(ti.get("pool") == POOL for ti in crunch),
            f'give the task pool="{POOL}"',
        ),
        Step(
            f"its task {HEAVY_TASK} ran on a heavy worker",
            any(ti.get("hostname") in heavy_hosts and ti.get("queue") == "heavy" for ti in crunch),
            'give the task queue="heavy"; `make status` shows which workers serve it',
        ),
    ]


def solve(env: LabEnv) -> None:
    if env.client.request("GET", f"/api/v2/pools/{quote(POOL)}", allow_404=True) is None:
        pool = {"name": POOL, "slots": POOL_SLOTS, "description": "lab 3"}
        env.client.request("POST", "/api/v2/pools", json=pool, idempotent=False)
    env.write_dag(FILE, SOLUTION)
    env.cli("verify", "--dag", DAG_ID, "--discover-timeout", "120")
