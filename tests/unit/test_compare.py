"""compare.py's guards: the busy loops and the user's paused cluster are always
restored; a profile's project is named, ported and sized apart from the user's."""

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from dotenv import dotenv_values

from airflow_ha import compare
from airflow_ha.context import Context
from airflow_ha.errors import TimeoutExpiredError
from airflow_ha.profiles import AIRFLOW_DEFAULTS, HA
from airflow_ha.stack import ServiceState, Stack


def test_busy_loops_are_stopped_when_the_block_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[subprocess.Popen[bytes]] = []
    real_popen = subprocess.Popen

    def recording_popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        process = real_popen(*args, **kwargs)
        started.append(process)
        return process

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    monkeypatch.setattr(compare, "BUSY_LOOP_LIMIT_SECONDS", 60)

    seen_running: list[bool] = []

    def failing_test() -> None:
        with compare.busy_cpus(print) as loops:
            seen_running.append(loops == 2 and all(p.poll() is None for p in started))
            raise RuntimeError("test failed")

    with pytest.raises(RuntimeError, match="test failed"):
        failing_test()

    assert seen_running == [True]

    assert len(started) == 2
    assert all(p.poll() is not None for p in started)


@dataclass
class FakeCompose:
    calls: list[str] = field(default_factory=list)

    def pause(self) -> None:
        self.calls.append("pause")

    def unpause(self) -> None:
        self.calls.append("unpause")


@dataclass
class FakeStack:
    compose: FakeCompose = field(default_factory=FakeCompose)
    healthy: bool = True
    project: str = "mine"

    @property
    def docker(self) -> Any:
        return self

    def services(self) -> list[ServiceState]:
        return [ServiceState("worker", "mine-worker-1", "h", "running", "healthy", None)]

    def wait_healthy(self, timeout: float, progress: Any) -> list[ServiceState]:
        if not self.healthy:
            raise TimeoutExpiredError("not healthy after 300 s: mine-worker-1")
        return self.services()


def test_the_users_cluster_is_unpaused_when_the_benchmark_fails() -> None:
    stack = FakeStack()
    lines: list[str] = []
    calls_inside: list[str] = []

    def interrupted_benchmark() -> None:
        with compare.user_cluster_paused(cast(Stack, stack), lines.append):
            calls_inside.extend(stack.compose.calls)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_benchmark()
    assert calls_inside == ["pause"]
    assert stack.compose.calls == ["pause", "unpause"]
    assert lines[-1] == "unpaused your cluster (mine)"


def test_a_slow_recovery_after_unpausing_is_a_warning_not_a_failure() -> None:
    stack = FakeStack(healthy=False)
    lines: list[str] = []
    with compare.user_cluster_paused(cast(Stack, stack), lines.append):
        pass
    assert stack.compose.calls == ["pause", "unpause"]
    assert lines[-1].startswith("warning: your cluster is not healthy again yet: not healthy")


def test_a_profile_runs_apart_from_the_users_cluster(
    tmp_path: Path, write_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = write_env(AIRFLOW_WORKER_CONCURRENCY="3", AIRFLOW_API_PORT="8080")
    ctx = Context(env_file=env_file)
    monkeypatch.setattr(Context, "state_dir", property(lambda self: tmp_path / "state"))
    derived = tmp_path / "state" / "compose.env"
    derived.parent.mkdir()
    derived.write_text("MYSQL_IMAGE=local/mysql:1\nWORKER_REPLICAS=5\n")
    user = dotenv_values(env_file)

    values = compare.bench_env_values(ctx, AIRFLOW_DEFAULTS)

    assert values["COMPOSE_PROJECT_NAME"] == "airflow-ha-bench"
    assert (values["AIRFLOW_API_PORT"], values["FLOWER_PORT"]) == ("0", "0")
    assert values["AIRFLOW_DAGS_DIR"] == "./bench/dags"
    assert values["AIRFLOW_WORKER_CONCURRENCY"] == "8"  # as shipped, not the user's 3
    assert values["MYSQL_PASSWORD"] == user["MYSQL_PASSWORD"]  # the user's secrets
    assert values["MYSQL_IMAGE"] == "local/mysql:1"  # the images the user's cluster runs
    assert values["WORKER_REPLICAS"] == "1"  # the profile's, not the user's scale
    assert values["WORKER_HEAVY_REPLICAS"] == "0"
    assert compare.bench_env_values(ctx, HA)["SCHEDULER_REPLICAS"] == "2"
