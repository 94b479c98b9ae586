"""Lab 9, big XComs on MySQL: which sizes Airflow 3 can store on this database,
why the largest cannot, and what to do with big outputs instead."""

from collections.abc import Sequence

from airflow_ha.airflow_api import JSON
from airflow_ha.labs.base import LabEnv, Step, comma_set, number_in, same_text

number = 9
slug = "big-xcom"
title = "Big XComs on MySQL"

DAG_ID = "lab09_big_xcom"
FILE = f"{DAG_ID}.py"
SIZES = ("1kb", "64kb", "1mb", "16mb", "100mb")
STORAGE_BYTES = 100 << 20
LIMIT_SETTING = "max_allowed_packet"

FACTS_SQL = (
    "SELECT @@max_allowed_packet, COLUMN_TYPE FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = 'airflow' AND TABLE_NAME = 'xcom' AND COLUMN_NAME = 'value'"
)


def facts(env: LabEnv, run: JSON) -> dict[str, str]:
    """What the run and the database show: the true answers."""
    run_id = str(run["dag_run_id"])
    states = {ti["task_id"]: ti.get("state") for ti in env.client.task_instances(DAG_ID, run_id)}
    pushed = [size for size in SIZES if states.get(f"push_{size}") == "success"]
    [[packet, column_type]] = env.mysql_rows(FACTS_SQL)
    return {
        "PUSHED": ",".join(pushed),
        "COLUMN_TYPE": column_type,
        "LIMIT_SETTING": LIMIT_SETTING,
        "MAX_ALLOWED_PACKET": packet,
    }


def check(env: LabEnv) -> Sequence[Step]:
    runs = env.runs(DAG_ID, ("success", "failed"))
    run = runs[0] if runs else None
    answers = env.answers(number)
    truth = facts(env, run) if run else {}
    stored = (
        env.client.xcom_value(DAG_ID, str(run["dag_run_id"]), "read_from_storage") if run else None
    )
    return [
        Step(f"{DAG_ID} has a finished run", run is not None, f"copy labs/files/{FILE}, run it"),
        Step(
            "PUSHED names the sizes whose push succeeded",
            bool(truth) and comma_set(answers.get("PUSHED")) == comma_set(truth.get("PUSHED")),
            "look at each push_ task's state in the run",
        ),
        Step(
            "COLUMN_TYPE is the type of the xcom table's value column",
            bool(truth) and same_text(answers.get("COLUMN_TYPE"), truth["COLUMN_TYPE"]),
            "ask information_schema.COLUMNS (see the guide)",
        ),
        Step(
            "LIMIT_SETTING names the MySQL setting that stops the largest push",
            same_text(answers.get("LIMIT_SETTING"), LIMIT_SETTING),
            "the biggest packet MySQL accepts: see the guide",
        ),
        Step(
            "MAX_ALLOWED_PACKET is its value in bytes",
            bool(truth)
            and number_in(answers.get("MAX_ALLOWED_PACKET")) == int(truth["MAX_ALLOWED_PACKET"]),
            "SELECT @@max_allowed_packet",
        ),
        Step(
            "the 100 MB went through storage: read_from_storage saw all of it",
            stored == STORAGE_BYTES,
            "write_to_storage passes a path, not the data",
        ),
    ]


def solve(env: LabEnv) -> None:
    env.copy_dag(FILE)
    run_id = env.trigger(DAG_ID)
    env.wait_for_end(DAG_ID, run_id)
    env.write_answers(number, facts(env, {"dag_run_id": run_id}))
