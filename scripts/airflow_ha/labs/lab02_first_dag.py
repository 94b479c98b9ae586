"""Lab 2, your first DAG: write it, see a parse error, fix it, run it with verify."""

from collections.abc import Sequence
from urllib.parse import quote

from airflow_ha.labs.base import LabEnv, Step

number = 2
slug = "first-dag"
title = "Your first DAG"

DAG_ID = "lab02_first_dag"
FILE = f"{DAG_ID}.py"
MIN_TASKS = 2

SOLUTION = f'''
    """Lab 2: two tasks, the second reads what the first returned (an XCom)."""

    from datetime import datetime

    from airflow.sdk import dag, task


    @dag(dag_id="{DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), tags=["lab"])
    def first_dag():
        @task
        def extract() -> list[int]:
            return [1, 2, 3]

        @task
        def load(numbers: list[int]) -> int:
            print(f"loading {{numbers}}")
            return sum(numbers)

        load(extract())


    first_dag()
'''


def check(env: LabEnv) -> Sequence[Step]:
    path = env.dags_dir / FILE
    errors = [e for e in env.client.import_errors() if str(e.get("filename", "")).endswith(FILE)]
    dag = env.client.dag(DAG_ID)
    tasks = (
        (env.client.request("GET", f"/api/v2/dags/{quote(DAG_ID)}/tasks") or {}).get("tasks", [])
        if dag
        else []
    )
    runs = env.client.request(
        "GET", f"/api/v2/dags/{quote(DAG_ID)}/dagRuns", allow_404=True, params={"state": "success"}
    )
    return [
        Step(
            f"{FILE} is in the DAG folder ({env.dags_dir})",
            path.is_file(),
            "write it (see the guide)",
        ),
        Step(
            f"{FILE} imports without an error",
            path.is_file() and not errors,
            "run `make check-dags` to see the error",
        ),
        Step(
            f"Airflow lists the DAG {DAG_ID}",
            dag is not None,
            "the dag_id must be lab02_first_dag; new files show up within about 10 s",
        ),
        Step(f"{DAG_ID} has at least {MIN_TASKS} tasks", len(tasks) >= MIN_TASKS, "add a task"),
        Step(
            f"{DAG_ID} has a successful run",
            bool(runs and runs.get("total_entries")),
            f"run `make verify DAG={DAG_ID}`",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.write_dag(FILE, SOLUTION)
    env.cli("verify", "--dag", DAG_ID, "--discover-timeout", "120")
