"""Scaling worker pools on a real cluster while long tasks run (see conftest.py)."""

import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from airflow_ha.airflow_api import JSON
from airflow_ha.errors import ExitCode
from airflow_ha.flower_api import FlowerClient
from airflow_ha.verify import wait_for_dags

from .browser import Browser, task_page
from .conftest import CliResult, Cluster, wait_for

pytestmark = pytest.mark.integration

DAG = "example_queues"
# Tasks long enough that the workers chosen to go are still running them when
# `scale 1` starts.
TASK_SECONDS = 60


def workload(cluster: Cluster) -> JSON:
    """Enough light tasks to fill three default workers' slots, whatever their
    concurrency: with fewer, the first new worker takes every waiting task
    (Celery reserves a whole worker's worth) and the second gets none."""
    slots = cluster.settings.airflow_worker_concurrency
    return {"light_tasks": 3 * slots, "heavy_tasks": 2, "seconds": TASK_SECONDS}


def pool_hosts(cluster: Cluster, service: str) -> set[str]:
    """Hostnames of the pool's running containers (Celery calls them celery@<hostname>)."""
    return {
        s.hostname
        for s in cluster.stack.services()
        if s.service == service and s.state == "running"
    }


def celery_workers_on(cluster: Cluster, queue: str) -> set[str]:
    flower = FlowerClient(cluster.stack.url("flower", 5555), cluster.settings.flower_password)
    return {name for name, queues in flower.queues_by_worker().items() if queue in queues}


def running_containers(cluster: Cluster) -> dict[str, str]:
    return {s.container: s.label for s in cluster.stack.services() if s.state == "running"}


@pytest.fixture
def pools_restored(cluster: Cluster) -> Iterator[None]:
    """Give the pools back their topology sizes for the tests that follow."""
    yield
    for args in (["2"], ["1", "--queue", "heavy"]):
        result = cluster.cli("scale", *args, "--drain-timeout", "300")
        assert result.code == 0, str(result)


def test_bad_scale_requests_leave_the_cluster_untouched(cluster: Cluster) -> None:
    before = running_containers(cluster)
    for args, message in [
        (["-1"], "argument workers: must be between 0 and 16: '-1'"),
        (["many"], "argument workers: not a whole number: 'many'"),
        (["2", "--queue", "gpu"], "unknown queue 'gpu': the worker pools serve default, heavy"),
    ]:
        result = cluster.cli("scale", *args)
        assert result.code == ExitCode.USAGE, str(result)
        assert message in result.stderr.strip().splitlines()[-1], str(result)
    assert running_containers(cluster) == before


def test_scale_1_3_1_while_long_tasks_run(
    cluster: Cluster, pools_restored: None, browser: Browser
) -> None:
    client = cluster.client
    client.base_url = cluster.stack.api_url()
    heavy_hosts = pool_hosts(cluster, "worker-heavy")
    default_hosts = pool_hosts(cluster, "worker")

    result = cluster.cli("scale", "1")
    assert result.code == 0, str(result)
    hosts_at_1 = pool_hosts(cluster, "worker")
    assert len(hosts_at_1) == 1
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_at_1}

    wait_for_dags(client, [DAG], timeout=120, log=print)
    client.set_paused(DAG, False)
    run_id = str(client.trigger(DAG, workload(cluster))["dag_run_id"])

    def tasks() -> list[JSON]:
        return client.task_instances(DAG, run_id)

    # The heavy pool's single slot runs one task while the other waits for it:
    # removing the pool's last worker is refused, and nothing changes.
    wait_for(
        "a heavy task queued behind the running one",
        lambda: [t for t in tasks() if t["task_id"] == "heavy" and t["state"] == "queued"],
    )
    result = cluster.cli("scale", "0", "--queue", "heavy")
    assert result.code == ExitCode.USAGE, str(result)
    assert "refusing to remove the last worker of queue heavy" in result.stderr, str(result)
    assert pool_hosts(cluster, "worker-heavy") == heavy_hosts

    result = cluster.cli("scale", "3")
    assert result.code == 0, str(result)
    hosts_at_3 = pool_hosts(cluster, "worker")
    assert len(hosts_at_3) == 3
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_at_3}
    default_hosts |= hosts_at_3
    new_hosts = hosts_at_3 - hosts_at_1
    for host in new_hosts:
        assert f"celery@{host}" in result.stdout, str(result)

    def running_on_new_workers() -> list[JSON]:
        running = [t for t in tasks() if t["state"] == "running"]
        return running if new_hosts <= {t["hostname"] for t in running} else []

    running_before = wait_for("tasks running on both new workers", running_on_new_workers)

    result = cluster.cli("scale", "1")
    assert result.code == 0, str(result)
    assert "waiting for" in result.stderr, str(result)
    hosts_left = pool_hosts(cluster, "worker")
    assert len(hosts_left) == 1
    assert celery_workers_on(cluster, "default") == {f"celery@{h}" for h in hosts_left}
    removed = hosts_at_3 - hosts_left
    assert {t["hostname"] for t in running_before} & removed, "scale-down had nothing to wait for"
    # Every task the removed workers ran had finished on them when they went.
    for ti in tasks():
        if ti["hostname"] in removed:
            assert (ti["state"], ti["try_number"]) == ("success", 1), ti

    def finished_run() -> JSON | None:
        run = client.dag_run(DAG, run_id)
        return run if run["state"] in ("success", "failed") else None

    run = wait_for("the DAG run to finish", finished_run, timeout=400)
    assert run["state"] == "success", run
    for ti in tasks():
        assert (ti["state"], ti["try_number"]) == ("success", 1), ti
        pool = heavy_hosts if ti["queue"] == "heavy" else default_hosts
        assert ti["hostname"] in pool, (ti["task_id"], ti["queue"], ti["hostname"], pool)
    assert {t["queue"] for t in tasks()} == {"default", "heavy"}

    # The log of a task whose worker is gone, read in the UI: workers serve no
    # logs; the api-servers read them from the shared log volume. The task
    # returned its worker's hostname, which its log shows.
    gone = next(t for t in tasks() if t["hostname"] in removed and t["task_id"] == "light")
    base = cluster.stack.api_url()
    browser.log_in(
        base, cluster.settings.airflow_admin_user, cluster.settings.airflow_admin_password
    )
    browser.open(task_page(base, DAG, run_id, "light", int(gone["map_index"])))
    browser.wait_for_text(f"Done. Returned value was: {gone['hostname']}")
    browser.screenshot("removed-worker-log")


# --- the scale-down guards -----------------------------------------------------

HELD_DAG = "scale_guards_held"
# One task on the heavy queue that runs until the test creates its release file
# next to the DAG file (the DAG folder is mounted into every container): the
# scale-downs tried meanwhile have a task to wait for however slow the machine,
# and the test never waits longer than it needs to.
HELD_DAG_SOURCE = f'''"""A heavy task that runs until its release file appears beside this one."""

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import Param, dag, task


@dag(
    dag_id="{HELD_DAG}",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args={{"retries": 0}},
    params={{"release": Param("", type="string")}},
)
def scale_guards_held() -> None:
    @task(queue="heavy")
    def hold(params: dict[str, Any] | None = None) -> None:
        assert params is not None
        assert params["release"], "the run's conf names no release file"
        release = Path(__file__).with_name(params["release"])
        deadline = time.monotonic() + 1800
        while not release.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{{release}} did not appear within 30 minutes")
            time.sleep(1)

    hold()


scale_guards_held()
'''


@dataclass
class BackgroundCli:
    """The CLI running in its own process; its output goes to files read as it runs."""

    process: "subprocess.Popen[bytes]"
    stdout_file: Path
    stderr_file: Path

    def stderr(self) -> str:
        return self.stderr_file.read_text()

    def wait_for_output(self, text: str) -> None:
        wait_for(
            f"{text!r} on the CLI's stderr",
            lambda: text in self.stderr() or self.process.poll() is not None,
        )
        assert text in self.stderr(), f"the CLI ended before it printed {text!r}:\n{self.result()}"

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the CLI's process."""
        self.process.send_signal(signal.SIGINT)

    def result(self, timeout: float = 120) -> CliResult:
        code = self.process.wait(timeout)
        return CliResult(code, self.stdout_file.read_text(), self.stderr())


@contextmanager
def cli_in_background(cluster: Cluster, directory: Path, *args: str) -> Iterator[BackgroundCli]:
    """Start the CLI; one the test leaves running is interrupted (a drain rolls
    back) and waited for, so its lock is free before `pools_restored` runs."""
    stem = directory / "-".join(("cli", *args)).replace("--", "")
    with stem.with_suffix(".out").open("wb") as out, stem.with_suffix(".err").open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow_ha", "--env-file", str(cluster.env_file), *args],
            stdout=out,
            stderr=err,
            # Python turns SIGINT into KeyboardInterrupt only if SIGINT was not
            # ignored when it started, as it is in a shell's background jobs.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    cli = BackgroundCli(process, stem.with_suffix(".out"), stem.with_suffix(".err"))
    try:
        yield cli
    finally:
        if process.poll() is None:
            cli.interrupt()
            try:
                process.wait(120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_scale_down_guards_while_a_task_is_held(
    cluster: Cluster, pools_restored: None, tmp_path: Path
) -> None:
    """The heavy pool's one worker (one slot) runs a held task while `scale 0`
    times out, is interrupted, and is raced by another scale; then `--force`
    removes it although another task waits for the queue. (Without --force that
    is refused: test_scale_1_3_1_while_long_tasks_run.)"""
    client = cluster.client
    client.base_url = cluster.stack.api_url()
    [host] = pool_hosts(cluster, "worker-heavy")
    worker = f"celery@{host}"
    dag_file = cluster.dags_dir / f"{HELD_DAG}.py"
    dag_file.write_text(HELD_DAG_SOURCE)
    dag_file.chmod(0o644)
    release = cluster.dags_dir / f"{HELD_DAG}-release-{uuid.uuid4().hex[:8]}"

    def trigger() -> str:
        return str(client.trigger(HELD_DAG, {"release": release.name})["dag_run_id"])

    def held_task(run_id: str, state: str) -> JSON | None:
        tasks = client.task_instances(HELD_DAG, run_id)  # none until the scheduler makes it
        return tasks[0] if tasks and tasks[0]["state"] == state else None

    def left_as_it_was(result: CliResult) -> None:
        assert "Traceback" not in result.stderr, str(result)
        assert pool_hosts(cluster, "worker-heavy") == {host}, str(result)
        assert celery_workers_on(cluster, "heavy") == {worker}, f"not consuming again:\n{result}"
        assert held_task(held_run, "running"), f"the held task no longer runs:\n{result}"

    try:
        wait_for_dags(client, [HELD_DAG], timeout=240, log=print)
        client.set_paused(HELD_DAG, False)
        held_run = trigger()
        running = wait_for("the held task to run", lambda: held_task(held_run, "running"))
        assert running["hostname"] == host, running

        # A drain that times out: the worker consumes its queue again and stays.
        result = cluster.cli("scale", "0", "--queue", "heavy", "--drain-timeout", "5")
        assert result.code == ExitCode.TIMEOUT, str(result)
        assert "left running and consuming again" in result.stderr.splitlines()[-1], str(result)
        assert "consumes heavy again" in result.stderr, str(result)
        left_as_it_was(result)

        # Ctrl-C during a drain: the same roll-back, one line, no traceback.
        with cli_in_background(cluster, tmp_path, "scale", "0", "--queue", "heavy") as drain:
            drain.wait_for_output("waiting for")
            drain.interrupt()
            result = drain.result()
        assert result.code == 130, str(result)
        assert result.stderr.splitlines()[-1] == "airflow-ha: interrupted", str(result)
        assert "consumes heavy again" in result.stderr, str(result)
        left_as_it_was(result)

        waiting_run = trigger()
        wait_for("a task queued behind the held one", lambda: held_task(waiting_run, "queued"))

        # --force removes the queue's last worker although a task waits for it,
        # once the held task is done; meanwhile a second scale is refused.
        forced = ("scale", "0", "--queue", "heavy", "--force")
        with cli_in_background(cluster, tmp_path, *forced) as first:
            first.wait_for_output("waiting for")
            # (--timeout: were it not refused, it would wait for the draining worker.)
            second = cluster.cli("scale", "2", "--queue", "heavy", "--timeout", "60")
            assert second.code == ExitCode.FAILED, str(second)
            assert second.stderr.splitlines()[-1] == (
                f"airflow-ha: error: another `scale` of project {cluster.stack.project} "
                "is running: let it finish"
            ), str(second)
            assert pool_hosts(cluster, "worker-heavy") == {host}, str(second)
            release.touch()
            result = first.result(timeout=300)
        assert result.code == 0, str(result)
        assert "no workers consume queue heavy" in result.stdout, str(result)
        assert pool_hosts(cluster, "worker-heavy") == set(), str(result)
        assert celery_workers_on(cluster, "heavy") == set(), str(result)
        done = held_task(held_run, "success")
        assert done, client.task_instances(HELD_DAG, held_run)
        assert (done["hostname"], done["try_number"]) == (host, 1), done
        assert held_task(waiting_run, "queued"), client.task_instances(HELD_DAG, waiting_run)
    finally:
        # Held tasks end; the waiting one runs once `pools_restored` brings a worker back.
        release.touch()
