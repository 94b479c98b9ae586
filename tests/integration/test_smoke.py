"""`check-dags` and `smoke` as a CI job runs them: each test makes its own DAG
folder, runs the CLI as a separate process, and checks the exit code, the JUnit
and JSON files, and that nothing of a smoke cluster is left behind."""

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, TestCase

from airflow_ha.commands.smoke import PROJECT_PREFIX
from airflow_ha.errors import ExitCode
from airflow_ha.paths import DAGS_DIR, STATE_DIR

from .conftest import CliResult, run_cli

pytestmark = pytest.mark.integration

EXAMPLE_DAGS = ("example_deferrable", "example_fanout_xcom", "example_queues")
FAILING_DAG = "smoke_fails"


def dag_folder(directory: Path, files: dict[str, str]) -> Path:
    """A DAG folder the containers' user can read, with the example DAGs and `files`."""
    folder = directory / "dags"
    folder.mkdir()
    for name in EXAMPLE_DAGS:
        shutil.copy(DAGS_DIR / f"{name}.py", folder)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text))
    for path in (directory, folder):
        path.chmod(0o755)
    for file in folder.iterdir():
        file.chmod(0o644)
    return folder


BROKEN = """
    from airflow.sdk import dag
    import no_such_module_here

    @dag()
    def broken():
        pass

    broken()
"""

FAILING = f"""
    from datetime import datetime
    from airflow.sdk import dag, task

    @dag(dag_id="{FAILING_DAG}", schedule=None, start_date=datetime(2026, 1, 1),
         default_args={{"retries": 0}})
    def fails():
        @task
        def broken() -> None:
            raise ValueError("smoke: this task fails on purpose")

        broken()

    fails()
"""


def smoke_leftovers() -> list[str]:
    """Containers, volumes, networks and state folders of smoke clusters."""
    found = []
    for kind, listing in (
        ("container", ["docker", "container", "ls", "--all", "--format", "{{.Names}}"]),
        ("volume", ["docker", "volume", "ls", "--format", "{{.Name}}"]),
        ("network", ["docker", "network", "ls", "--format", "{{.Name}}"]),
    ):
        names = subprocess.run(listing, capture_output=True, text=True, check=True).stdout.split()
        found += [f"{kind} {name}" for name in names if name.startswith(PROJECT_PREFIX)]
    if STATE_DIR.is_dir():
        found += [
            f"state {p.name}" for p in STATE_DIR.iterdir() if p.name.startswith(PROJECT_PREFIX)
        ]
    return found


@pytest.fixture
def no_smoke_cluster_before() -> Iterator[None]:
    assert smoke_leftovers() == [], "a smoke cluster is already there"
    yield
    assert smoke_leftovers() == [], "the smoke cluster was not removed"


def no_env_file(directory: Path) -> Path:
    """An --env-file that does not exist: smoke needs no .env (CI has none)."""
    return directory / "absent.env"


def cases(junit: Path) -> dict[tuple[str, str], TestCase]:
    return {(c.classname, c.name): c for suite in JUnitXml.fromfile(str(junit)) for c in suite}


def smoke(tmp_path: Path, folder: Path, *args: str) -> CliResult:
    return run_cli(
        no_env_file(tmp_path),
        "smoke", "--dags-dir", str(folder),
        "--junit", str(tmp_path / "smoke.xml"), "--json", str(tmp_path / "smoke.json"), *args,
    )  # fmt: skip


def test_check_dags_finds_an_import_error_in_seconds(tmp_path: Path) -> None:
    folder = dag_folder(tmp_path, {"broken.py": BROKEN})
    junit = tmp_path / "check.xml"
    started = time.monotonic()
    result = run_cli(
        no_env_file(tmp_path), "check-dags", "--dags-dir", str(folder), "--junit", str(junit)
    )
    print(f"check-dags took {time.monotonic() - started:.1f} s")
    assert result.code == ExitCode.VERIFY, str(result)
    assert result.stderr.strip().splitlines()[-1] == (
        f"airflow-ha: error: 1 DAG file(s) in {folder} failed to import: broken.py"
    )
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in result.stdout
    found = cases(junit)
    [failure] = found["broken.py", "import"].result
    assert isinstance(failure, Failure)
    assert "no_such_module_here" in (failure.text or "")
    assert all(found[f"{name}.py", "import"].is_passed for name in EXAMPLE_DAGS)


def test_check_dags_of_a_clean_folder_lists_its_dags(tmp_path: Path) -> None:
    folder = dag_folder(tmp_path, {})
    result = run_cli(no_env_file(tmp_path), "check-dags", "--dags-dir", str(folder))
    assert result.code == 0, str(result)
    assert "3 DAG(s) in 3 file(s), no import error" in result.stdout


MISSING = "DAG folder {folder} does not exist or is not a folder"
UNKNOWN = "unknown DAG id(s) nope: {folder} defines "
IMPORT_ERROR = "1 DAG file(s) in {folder} failed to import: broken.py"


@pytest.mark.usefixtures("no_smoke_cluster_before")
@pytest.mark.parametrize(
    ("files", "args", "error"),
    [
        pytest.param(None, (), MISSING, id="missing"),
        pytest.param({}, ("--dag", "nope"), UNKNOWN, id="unknown-dag"),
        pytest.param({"broken.py": BROKEN}, (), IMPORT_ERROR, id="import-error"),
    ],
)
def test_smoke_refuses_bad_input_before_any_cluster(
    tmp_path: Path, files: dict[str, str] | None, args: tuple[str, ...], error: str
) -> None:
    folder = tmp_path / "missing" if files is None else dag_folder(tmp_path, files)
    result = smoke(tmp_path, folder, *args)
    assert result.code == ExitCode.VERIFY, str(result)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("airflow-ha: error: " + error.format(folder=folder)), str(result)
    assert "Traceback" not in result.stderr
    xml = JUnitXml.fromfile(str(tmp_path / "smoke.xml"))
    assert xml.failures + xml.errors >= 1
    assert json.loads((tmp_path / "smoke.json").read_text())["ok"] is False


@pytest.mark.usefixtures("no_smoke_cluster_before")
def test_smoke_of_an_empty_folder_says_there_is_no_dag(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir(mode=0o755)
    (folder / "helpers.py").write_text("VALUE = 1\n")
    (folder / "helpers.py").chmod(0o644)
    result = smoke(tmp_path, folder)
    assert result.code == ExitCode.VERIFY, str(result)
    assert result.stderr.strip().splitlines()[-1] == f"airflow-ha: error: no DAG found in {folder}"


@pytest.mark.usefixtures("no_smoke_cluster_before")
def test_smoke_runs_every_dag_reports_each_task_and_removes_the_cluster(tmp_path: Path) -> None:
    folder = dag_folder(tmp_path, {"fails.py": FAILING})
    started = time.monotonic()
    result = smoke(tmp_path, folder)
    print(f"smoke took {time.monotonic() - started:.0f} s\n{result}")
    assert result.code == ExitCode.VERIFY, str(result)
    assert result.stderr.strip().splitlines()[-1] == (
        f"airflow-ha: error: 1 of 4 DAG runs did not succeed: {FAILING_DAG} (failed)"
    )
    found = cases(tmp_path / "smoke.xml")
    [failure] = found[FAILING_DAG, "broken"].result
    assert isinstance(failure, Failure)
    assert "ValueError: smoke: this task fails on purpose" in (failure.text or "")
    for dag_id in EXAMPLE_DAGS:
        tasks = [case for (dag, _), case in found.items() if dag == dag_id]
        assert tasks, f"no testcase for {dag_id}"
        assert all(case.is_passed for case in tasks), dag_id
    assert ("example_fanout_xcom", "square[7]") in found
    runs = json.loads((tmp_path / "smoke.json").read_text())["runs"]
    assert {run["dag_id"]: run["state"] for run in runs} == {
        **dict.fromkeys(EXAMPLE_DAGS, "success"),
        FAILING_DAG: "failed",
    }
    assert all(run["logical_date"] for run in runs)


@pytest.mark.usefixtures("no_smoke_cluster_before")
def test_a_cancelled_smoke_removes_its_cluster(tmp_path: Path) -> None:
    """SIGTERM, what a CI system sends to a cancelled job, while the cluster starts."""
    folder = dag_folder(tmp_path, {})
    junit = tmp_path / "smoke.xml"
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_ha", "--env-file", str(no_env_file(tmp_path)),
         "smoke", "--dags-dir", str(folder), "--junit", str(junit)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while not any(item.startswith("container ") for item in smoke_leftovers()):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no smoke container appeared"
            time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "airflow-ha: interrupted", stderr
    assert "removed afha-smoke-" in stderr
    [error] = next(c for suite in JUnitXml.fromfile(str(junit)) for c in suite).result
    assert isinstance(error, Error)
    assert error.message == "interrupted"
