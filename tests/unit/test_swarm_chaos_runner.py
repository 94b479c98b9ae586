"""swarm/chaos_runner.py: after a partition, a pool that Swarm cannot spread
again is a note on the verdict, never the end of `chaos` without one."""

from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError
from airflow_ha.swarm import chaos_runner
from airflow_ha.swarm.chaos_runner import SwarmChaos
from airflow_ha.swarm.engines import EngineSet

PAUSED = (
    b"overall progress: 1 out of 2 tasks\n"
    b"service update paused: update paused due to failure or early termination of task "
    b"x1y2: starting container failed: Address already in use\n"
)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SwarmChaos:
    """A runner whose managers answer, with the default pool crowded onto one host."""
    engines = EngineSet("t", 3, tmp_path)
    swarm = SwarmChaos(DockerClient(), engines, "st", None, lambda _line: None)  # type: ignore[arg-type]
    monkeypatch.setattr(swarm, "manager", lambda: DockerClient(host="unix:///nowhere.sock"))
    monkeypatch.setattr(swarm, "_crowded_pools", lambda _manager: ["worker"])
    return swarm


def test_a_spread_pool_leaves_no_note(runner: SwarmChaos, monkeypatch: pytest.MonkeyPatch) -> None:
    commands: list[list[str]] = []
    monkeypatch.setattr(chaos_runner, "run", commands.append)
    assert runner.spread_pools() == []
    assert commands[0][-6:] == [
        "service", "update", "--force", "--detach=false", "--quiet", "st_worker",
    ]  # fmt: skip


def test_a_refused_update_is_a_note_with_the_engines_words(
    runner: SwarmChaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(command: list[str]) -> None:
        raise DockerException([str(part) for part in command], 1, b"", PAUSED)

    monkeypatch.setattr(chaos_runner, "run", refused)
    [note] = runner.spread_pools()
    assert note.startswith("worker left on one host, its update refused (service update paused")
    assert "Address already in use" in note
    assert "`docker service update --force st_worker`" in note


def test_unanswering_managers_are_a_note(
    runner: SwarmChaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_manager() -> DockerClient:
        raise ClusterError("no engine answers as a Swarm manager")

    monkeypatch.setattr(runner, "manager", no_manager)
    assert runner.spread_pools() == [
        "the worker pools not checked for a crowded host (no engine answers as a Swarm manager)"
    ]


def test_a_docker_failure_without_words_says_its_exit(
    runner: SwarmChaos, monkeypatch: pytest.MonkeyPatch
) -> None:
    def silent(command: list[str]) -> None:
        raise DockerException([str(part) for part in command], 125)

    monkeypatch.setattr(chaos_runner, "run", silent)
    [note] = runner.spread_pools()
    assert "(docker exited 125)" in note
