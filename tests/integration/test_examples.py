"""Airflow's own example DAGs (AIRFLOW_LOAD_EXAMPLES=true) on a real cluster.

A throw-away cluster of its own (TOPOLOGY=single, an empty DAG folder, so every
DAG it loads is one that ships inside Airflow or its providers) is started
through the CLI; one `verify` runs every self-contained example at once, and
each run must succeed. The examples that cannot run here are listed with the
reason, and the loaded examples must be exactly RUNNABLE plus NOT_RUNNABLE: a
new Airflow version that adds or drops an example fails this test by name.
"""

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.paths import STATE_DIR
from airflow_ha.settings import load_settings
from airflow_ha.stack import Stack

from .conftest import UP_TIMEOUT_SECONDS, CliResult, run_cli, write_env_file

# Not in `make test` (5.5 minutes more): `make test-examples` runs it.
pytestmark = [pytest.mark.integration, pytest.mark.examples]

# One `verify` triggers every run and they all run at once: about 95 runs and
# 400 tasks on the single worker's 8 task slots (3.5 min here, on 2 cores).
VERIFY_TIMEOUT_SECONDS = 900
# How long the dag-processor may take to load every example after `up`.
PARSE_TIMEOUT_SECONDS = 180
# The bundle of AIRFLOW_DAGS_DIR; the examples come in bundles of their own.
DAGS_FOLDER_BUNDLE = "dags-folder"

# Self-contained: no provider, connection, network service (but PyPI, for the
# virtualenv tasks), person or other DAG's run needed. Each run must succeed.
RUNNABLE: tuple[str, ...] = (
    "aggregate_regional_sales",
    "asset1_producer",
    "asset2_producer",
    "asset_alias_example_alias_consumer",
    "asset_alias_example_alias_consumer_with_no_taskflow",
    "asset_alias_example_alias_producer",
    "asset_alias_example_alias_producer_with_no_taskflow",
    "asset_consumes_1",
    "asset_consumes_1_and_2",
    "asset_consumes_1_never_scheduled",
    "asset_consumes_unknown_never_scheduled",
    "asset_produces_1",
    "asset_produces_2",
    "asset_s3_bucket_consumer",
    "asset_s3_bucket_consumer_with_no_taskflow",
    "asset_s3_bucket_producer",
    "asset_s3_bucket_producer_with_no_taskflow",
    "child_dag",
    "clean_and_combine_player_stats",
    "compute_player_odds",
    "conditional_asset_and_time_based_timetable",
    "consume_1_and_2_with_asset_expressions",
    "consume_1_or_2_with_asset_expressions",
    "consume_1_or_both_2_and_3_with_asset_expressions",
    "consumes_asset_decorator",
    "daily_inference",
    "daily_team_a_rollup",
    "example_asset_state_store_consumer",
    "example_asset_state_store_producer",
    "example_asset_with_watchers",
    "example_bash_decorator",
    "example_bash_operator",
    "example_branch_datetime_operator",
    "example_branch_datetime_operator_2",
    "example_branch_datetime_operator_3",
    "example_branch_dop_operator_v3",
    "example_branch_labels",
    "example_complex",
    "example_custom_weight",
    "example_display_name",
    "example_dynamic_task_mapping",
    "example_dynamic_task_mapping_with_no_taskflow_operators",
    "example_external_task",
    "example_external_task_marker_parent",
    "example_measurement_correction_decorator",
    "example_measurement_correction_operator",
    "example_nested_branch_dag",
    "example_params_trigger_ui",
    "example_python_decorator",
    "example_python_operator",
    "example_sensor_decorator",
    "example_setup_teardown",
    "example_setup_teardown_taskflow",
    "example_short_circuit_decorator",
    "example_short_circuit_operator",
    "example_simplest_dag",
    "example_skip_dag",
    "example_task_group",
    "example_task_group_decorator",
    "example_task_group_mapping",
    "example_task_mapping_second_order",
    "example_task_state_store",
    "example_task_state_store_mapped",
    "example_time_delta_sensor_async",
    "example_trigger_controller_dag",
    "example_trigger_target_dag",
    "example_weekday_branch_operator",
    "example_workday_timetable",
    "example_xcom",
    "example_xcom_args",
    "example_xcom_args_with_operators",
    "ingest_region_stats",
    "ingest_regional_sales",
    "ingest_team_a_player_stats",
    "latest_only",
    "latest_only_with_trigger",
    "live_region_player_stats",
    "monthly_team_a_rollup",
    "multi_region_player_stats",
    "player_odds_quality_check_wont_ever_to_trigger",
    "regional_stats_breakdown",
    "scatter_live_region_to_segments",
    "segment_region_stats_early_rollup",
    "segment_region_stats_rollup",
    "summarize_live_region_stats",
    "team_analytics_producer",
    "team_b_player_stats",
    "team_c_player_stats",
    "team_ml_consumer",
    "trailing_week_inference",
    "train_weekly_model",
    "tutorial",
    "tutorial_dag",
    "tutorial_taskflow_api",
    "tutorial_taskflow_api_virtualenv",
    "tutorial_taskflow_templates",
)

# example_outlet_event_extra.py declares Asset(uri="s3://output/1.txt", name="test-asset"),
# example_inlet_event_extra.py Asset("s3://output/1.txt") (named after its URI). Airflow
# activates only the first of two assets that share a URI; which file the dag-processor
# stores first varies from one start to the next (both orders were seen here).
ASSET_CLASH = (
    "s3://output/1.txt is both asset 'test-asset' (example_outlet_event_extra.py) and asset "
    "'s3://output/1.txt' (example_inlet_event_extra.py): the file parsed first keeps it and "
    "the other file's tasks fail on an inactive asset; which one varies from start to start"
)

# Loaded, but a triggered run cannot succeed here (or anywhere, unattended).
NOT_RUNNABLE: dict[str, str] = {
    "asset_with_extra_by_context": ASSET_CLASH,
    "asset_with_extra_by_yield": ASSET_CLASH,
    "asset_with_extra_from_classic_operator": ASSET_CLASH,
    "example_analytics": "AnalyticsOperator needs the common-sql provider's [datafusion] extra "
    "(not installed) and S3, GCS, Azure and Iceberg connections",
    "example_branch_operator": "its virtualenv tasks pin numpy~=1.26.0, which has no wheel for "
    "the image's Python 3.13, and the image has no C compiler to build it",
    "example_branch_python_operator_decorator": "its @task.branch_virtualenv and @task.virtualenv "
    "pin numpy~=1.26.0: no wheel for Python 3.13, no C compiler in the image",
    "example_dag_decorator": "GETs https://httpbingo.org/get: needs internet access beyond PyPI",
    "example_external_task_marker_child": "its ExternalTaskSensor waits for the run of "
    "example_external_task_marker_parent with the same logical date, which a triggered run "
    "never has (times out after 600 s)",
    "example_failed_dag": "fails on purpose",
    "example_hitl_operator": "human in the loop: waits for answers given in the UI",
    "example_params_ui_tutorial": "a trigger-form tutorial: cannot be triggered without a value "
    "for its required param required_field",
    "example_passing_params_via_test_command": "renders {{ params.foo }}, which only "
    "`airflow tasks test -t` passes; a triggered run fails",
    "example_retry_policy": "shows retries against https://api.example.com/data, a placeholder "
    "that never answers: fails after 6 tries",
    "example_sensors": "a deferred TimeSensor waits an hour (its timeout=1 does not apply while "
    "deferred); FileSensor needs connection fs_default, which Airflow 3 does not create, and its "
    "deferred twin looks in the triggerer's /tmp, where the worker's task never writes",
    "example_task_state_store_async": "Airflow 3.3.2 bug: calls task_state_store.aget(), which "
    "task-sdk 1.3.2 does not have",
    "read_asset_event": ASSET_CLASH,
    "read_asset_event_from_classic": ASSET_CLASH,
    "tutorial_objectstorage": "needs pandas and duckdb (not in the image), the Amazon provider "
    "with an S3 bucket, and internet access to open-meteo.com",
}


@dataclass
class ExamplesCluster:
    env_file: Path
    client: AirflowClient


@pytest.fixture(scope="module")
def examples_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExamplesCluster]:
    workdir = tmp_path_factory.mktemp("examples")
    project = f"afha-examples-{uuid.uuid4().hex[:8]}"
    dags_dir = workdir / "dags"
    dags_dir.mkdir()
    for path in (workdir, dags_dir):
        path.chmod(0o755)
    env_file = write_env_file(
        workdir,
        COMPOSE_PROJECT_NAME=project,
        AIRFLOW_API_PORT="0",
        FLOWER_PORT="0",
        TOPOLOGY="single",
        AIRFLOW_LOAD_EXAMPLES="true",
        AIRFLOW_DAGS_DIR=str(dags_dir),
    )
    settings = load_settings(env_file)
    try:
        result = run_cli(env_file, "up", "--timeout", str(UP_TIMEOUT_SECONDS))
        assert result.code == 0, f"`up` failed:\n{result}"
        stack = Stack(settings, [env_file, STATE_DIR / project / "compose.env"])
        client = AirflowClient(
            stack.api_url(),
            Credentials(settings.airflow_admin_user, settings.airflow_admin_password),
        )
        yield ExamplesCluster(env_file, client)
    finally:
        Stack(settings, [env_file]).down(remove_volumes=True)
        shutil.rmtree(STATE_DIR / project, ignore_errors=True)


def loaded_examples(client: AirflowClient) -> set[str]:
    """The ids of the DAGs Airflow loaded from its example bundles."""
    dags: list[dict[str, object]] = []
    while True:
        page = client.request("GET", "/api/v2/dags", params={"limit": 100, "offset": len(dags)})
        batch = (page or {}).get("dags") or []
        dags.extend(batch)
        if not batch or len(dags) >= int((page or {}).get("total_entries", 0)):
            break
    return {str(d["dag_id"]) for d in dags if d.get("bundle_name") != DAGS_FOLDER_BUNDLE}


def wait_for_examples(client: AirflowClient, expected: set[str]) -> set[str]:
    """The loaded examples once all `expected` are there (or the parse timeout is up)."""
    deadline = time.monotonic() + PARSE_TIMEOUT_SECONDS
    while True:
        loaded = loaded_examples(client)
        if expected <= loaded or time.monotonic() > deadline:
            return loaded
        time.sleep(2)


def test_lists_do_not_overlap() -> None:
    assert not set(RUNNABLE) & set(NOT_RUNNABLE)
    assert len(set(RUNNABLE)) == len(RUNNABLE)


def test_loaded_examples_are_the_listed_ones(examples_cluster: ExamplesCluster) -> None:
    expected = set(RUNNABLE) | set(NOT_RUNNABLE)
    loaded = wait_for_examples(examples_cluster.client, expected)
    assert loaded == expected, (
        f"examples loaded but in neither list: {sorted(loaded - expected)}; "
        f"listed but not loaded: {sorted(expected - loaded)}"
    )


def test_runnable_examples_succeed(examples_cluster: ExamplesCluster, tmp_path: Path) -> None:
    report = tmp_path / "examples.json"
    dag_args = [arg for dag_id in RUNNABLE for arg in ("--dag", dag_id)]
    result: CliResult = run_cli(
        examples_cluster.env_file,
        "verify",
        *dag_args,
        "--json",
        str(report),
        "--timeout",
        str(VERIFY_TIMEOUT_SECONDS),
    )
    assert result.code == 0, f"`verify` of the runnable examples failed:\n{result}"
    outcome = json.loads(report.read_text())
    assert outcome["ok"], outcome
    runs = {run["dag_id"]: run for run in outcome["runs"]}
    assert set(runs) == set(RUNNABLE)
    failed = {dag_id: run["state"] for dag_id, run in runs.items() if not run["succeeded"]}
    assert not failed, f"example runs that did not succeed: {failed}"
