"""A real cluster under a unique Compose project name, torn down even on failure.

The cluster is started once per test session through the CLI, exactly as a user
would (`airflow-ha --env-file FILE up`), with random host ports and its own
copy of the DAG folder, so it never collides with a developer's cluster.
"""

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.envfile import render_env
from airflow_ha.paths import DAGS_DIR, ENV_EXAMPLE, REPO_ROOT, STATE_DIR
from airflow_ha.settings import Settings, load_settings
from airflow_ha.stack import Stack

from .browser import Browser

UP_TIMEOUT_SECONDS = 900
RESOURCES_REPORT = STATE_DIR / "test-resources.txt"
BENCH_DAGS_DIR = REPO_ROOT / "bench" / "dags"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"


T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 240) -> T:
    """probe()'s first truthy value, asked every 2 s until the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def run_cli(env_file: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    """Run the CLI as a separate process, as the Makefile does."""
    process = subprocess.run(
        [sys.executable, "-m", "airflow_ha", "--env-file", str(env_file), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    return CliResult(process.returncode, process.stdout, process.stderr)


def write_env_file(directory: Path, **overrides: str) -> Path:
    env_file = directory / ".env"
    env_file.write_text(render_env(ENV_EXAMPLE.read_text(), overrides))
    env_file.chmod(0o600)
    return env_file


def readable_dags_copy(directory: Path) -> Path:
    """A copy of dags/ and of the benchmark's DAGs (bench/dags: the contention
    test's load) that the containers' user (uid 50000) can read."""
    target = directory / "dags"
    shutil.copytree(DAGS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    for dag_file in BENCH_DAGS_DIR.glob("*.py"):
        shutil.copy(dag_file, target / dag_file.name)
    for path in (directory, target):
        path.chmod(0o755)
    for file in target.iterdir():
        file.chmod(0o644)
    return target


@dataclass
class Cluster:
    env_file: Path
    dags_dir: Path
    settings: Settings
    stack: Stack
    client: AirflowClient

    def cli(self, *args: str) -> CliResult:
        return run_cli(self.env_file, *args)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("cluster")
    project = f"afha-it-{uuid.uuid4().hex[:8]}"
    dags_dir = readable_dags_copy(workdir)
    env_file = write_env_file(
        workdir,
        COMPOSE_PROJECT_NAME=project,
        AIRFLOW_API_PORT="0",
        FLOWER_PORT="0",
        AIRFLOW_DAGS_DIR=str(dags_dir),
    )
    settings = load_settings(env_file)
    try:
        result = run_cli(env_file, "up", "--timeout", str(UP_TIMEOUT_SECONDS))
        assert result.code == 0, f"`up` failed:\n{result}"
        derived_env = STATE_DIR / project / "compose.env"
        stack = Stack(settings, [env_file, derived_env])
        client = AirflowClient(
            stack.api_url(),
            Credentials(settings.airflow_admin_user, settings.airflow_admin_password),
        )
        yield Cluster(env_file, dags_dir, settings, stack, client)
    finally:
        # Memory peaks after every test's workload, for sizing the limits (README,
        # "Operations"); containers restarted by a test show their peak since then.
        RESOURCES_REPORT.parent.mkdir(parents=True, exist_ok=True)
        RESOURCES_REPORT.write_text(run_cli(env_file, "resources").stdout)
        Stack(settings, [env_file]).down(remove_volumes=True)
        shutil.rmtree(STATE_DIR / project, ignore_errors=True)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the session, started by the first test that needs it."""
    started = Browser()
    try:
        yield started
    finally:
        started.quit()
