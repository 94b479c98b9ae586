"""swarm/pool.py: scaling a worker pool through Swarm's replicas, against a fake Swarm."""

from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any, cast

import pytest
from python_on_whales import DockerClient

from airflow_ha.airflow_api import JSON, AirflowClient
from airflow_ha.errors import TimeoutExpiredError
from airflow_ha.flower_api import FlowerClient
from airflow_ha.pools import pool_for_queue
from airflow_ha.scaling import PoolContainer, resize
from airflow_ha.swarm import pool
from airflow_ha.swarm.deploy import TaskState
from airflow_ha.swarm.pool import SwarmPoolScaler, split_tasks

SERVICE = "st_worker"


def task(slot: int, state: str = "running", desired: str = "running") -> Any:
    """A task as python-on-whales shows it (the fake Swarm changes its states)."""
    return SimpleNamespace(
        slot=slot,
        node_id="n1",
        created_at=None,
        desired_state=desired,
        status=SimpleNamespace(
            state=state,
            err=None,
            container_status=SimpleNamespace(container_id=f"c{slot:02d}" + "0" * 61),
        ),
    )


def task_state(slot: int, state: str = "running", desired: str = "running") -> TaskState:
    return TaskState("n1", state, desired, "", slot=slot, container_id=f"c{slot:02d}" + "0" * 61)


def worker(slot: int) -> PoolContainer:
    return PoolContainer(name=f"{SERVICE}.{slot}", hostname=f"c{slot:02d}" + "0" * 9, number=slot)


def test_running_tasks_split_into_staying_and_leaving_by_slot() -> None:
    tasks = [
        task_state(3, desired="shutdown"),  # Swarm stops it: warm shutdown
        task_state(2),
        task_state(1),
        task_state(4, state="starting"),  # not yet a worker
        task_state(5, state="shutdown", desired="shutdown"),  # gone
        replace(task_state(6), container_id=""),  # no container yet
    ]
    staying, leaving = split_tasks(SERVICE, tasks)
    assert staying == [worker(1), worker(2)]
    assert leaving == [worker(3)]
    assert staying[0].celery_name == "celery@c01" + "0" * 9  # the container's short ID


@dataclass
class FakeSwarm:
    """A replicated service whose tasks start after `start_polls` and whose
    removed tasks stop `stop_polls` inspections after Swarm is asked to."""

    tasks: list[Any]
    start_polls: int = 1
    stop_polls: int = 2
    scales: list[int] = field(default_factory=list)
    _clock: dict[int, int] = field(default_factory=dict)  # slot -> polls left

    def __post_init__(self) -> None:
        self.service = SimpleNamespace(ps=self.ps, logs=self.logs, docker_cmd=["docker", "-H", "x"])

    def run(self, command: list[str]) -> str:
        """`docker service scale` as the scaler runs it (output captured, not printed)."""
        assert command[:5] == ["docker", "-H", "x", "service", "scale"]
        assert command[5] == "--detach"  # progress is ours to show, not the CLI's
        name, count = command[6].split("=")
        self.scale({name: int(count)})
        return f"{name} scaled to {count}"

    def ps(self, name: str) -> list[Any]:
        assert name == SERVICE
        for t in self.tasks:
            left = self._clock.get(t.slot)
            if left is None:
                continue
            if left > 0:
                self._clock[t.slot] = left - 1
                continue
            del self._clock[t.slot]
            t.status.state = "running" if t.desired_state == "running" else "shutdown"
        return list(self.tasks)

    def scale(self, scales: dict[str, int]) -> None:
        ((name, count),) = scales.items()
        assert name == SERVICE
        self.scales.append(count)
        staying = [t for t in self.tasks if t.desired_state == "running"]
        for t in sorted(staying, key=lambda t: -t.slot)[: max(0, len(staying) - count)]:
            t.desired_state = "shutdown"
            self._clock[t.slot] = self.stop_polls
        for slot in range(len(staying) + 1, count + 1):
            self.tasks.append(task(slot, state="starting"))
            self._clock[slot] = self.start_polls

    def logs(self, name: str, tail: int) -> str:
        return f"{tail} lines of {name}"

    def running_slots(self) -> list[int]:
        return sorted(t.slot for t in self.tasks if t.status.state == "running")


@dataclass
class FakeFlower:
    swarm: FakeSwarm

    def queues_by_worker(self) -> dict[str, tuple[str, ...]]:
        return {
            f"celery@{t.status.container_status.container_id[:12]}": ("default",)
            for t in self.swarm.tasks
            if t.status.state == "running" and t.desired_state == "running"
        }


@dataclass
class FakeAirflow:
    running: list[JSON] = field(default_factory=list)
    waiting: list[JSON] = field(default_factory=list)

    def task_instances_where(
        self, states: list[str], queues: list[str] | None = None
    ) -> list[JSON]:
        return self.running if states == ["running"] else self.waiting


def make_scaler(
    monkeypatch: pytest.MonkeyPatch,
    swarm: FakeSwarm,
    airflow: FakeAirflow | None = None,
    start_timeout: float = 5,
) -> tuple[SwarmPoolScaler, list[str]]:
    log: list[str] = []
    monkeypatch.setattr(pool, "run", swarm.run)  # the docker CLI, on the fake
    scaler = SwarmPoolScaler(
        cast(DockerClient, swarm),
        "st",
        pool_for_queue("default"),
        cast(FlowerClient, FakeFlower(swarm)),
        cast(AirflowClient, airflow or FakeAirflow()),
        log.append,
        start_timeout=start_timeout,
        poll_seconds=0,
    )
    return scaler, log


def test_scale_up_waits_for_swarm_then_for_celery(monkeypatch: pytest.MonkeyPatch) -> None:
    swarm = FakeSwarm([task(1), task(2)], start_polls=3)
    scaler, log = make_scaler(monkeypatch, swarm)
    recorded: list[tuple[str, int]] = []

    after, new = resize(scaler, 4, lambda s, n: recorded.append((s, n)), timeout=5, drain_timeout=5)

    assert swarm.scales == [4]
    assert swarm.running_slots() == [1, 2, 3, 4]
    assert new == {f"{SERVICE}.3", f"{SERVICE}.4"}
    assert [c.number for c in after] == [1, 2, 3, 4]
    assert recorded == [("worker", 4)]  # a later `swarm-up` deploys as many
    assert log[1] == f"asking Swarm for 4 replicas of {SERVICE}"
    assert "4 of 4 registered" in log


def test_scale_up_that_swarm_cannot_place_times_out_naming_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swarm = FakeSwarm([task(1)], start_polls=10**6)  # no node can run them
    scaler, _ = make_scaler(monkeypatch, swarm, start_timeout=0.05)
    with pytest.raises(
        TimeoutExpiredError, match=rf"^Swarm runs 1 of 3 replicas of {SERVICE} after 0 s"
    ):
        scaler.start(3)


def test_scale_down_waits_for_the_warm_shutdown_and_shows_what_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swarm = FakeSwarm([task(1), task(2), task(3)], stop_polls=4)
    ti = {
        "dag_id": "d",
        "task_id": "t",
        "map_index": -1,
        "state": "running",
        "hostname": worker(3).hostname,
        "start_date": "2026-12-07T04:00:00Z",
    }
    other = ti | {"task_id": "u", "map_index": 2}
    scaler, log = make_scaler(monkeypatch, swarm, FakeAirflow(running=[ti, other]))
    recorded: list[tuple[str, int]] = []

    after, new = resize(scaler, 1, lambda s, n: recorded.append((s, n)), timeout=5, drain_timeout=5)

    assert swarm.scales == [1]
    assert swarm.running_slots() == [1]  # returned only once both had stopped
    assert (after, new) == ([worker(1)], set())
    assert recorded == [("worker", 1)]
    assert f"{SERVICE}.3 in warm shutdown: d.t since 04:00:00, d.u[2] since 04:00:00" in log
    assert f"{SERVICE}.2 in warm shutdown: no Airflow task left, stopping" in log
    assert log[-2:] == [
        f"{SERVICE}.2 (celery@{worker(2).hostname}) finished its tasks and stopped",
        f"{SERVICE}.3 (celery@{worker(3).hostname}) finished its tasks and stopped",
    ]


def test_a_drain_that_outlasts_its_timeout_says_swarm_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swarm = FakeSwarm([task(1), task(2), task(3)], stop_polls=10**6)
    scaler, _ = make_scaler(monkeypatch, swarm)
    with pytest.raises(TimeoutExpiredError) as caught:
        scaler.drain_and_remove(1, timeout=0.05)
    assert str(caught.value) == (
        "2 worker(s) still finish their tasks after 0 s; Swarm goes on stopping them "
        f"(at most their stop_grace_period): {SERVICE}.2: no Airflow task left, stopping; "
        f"{SERVICE}.3: no Airflow task left, stopping"
    )


def test_the_last_worker_is_not_removed_while_tasks_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    swarm = FakeSwarm([task(1)])
    waiting = [{"dag_id": "d", "task_id": "t", "state": "queued"}]
    scaler, _ = make_scaler(monkeypatch, swarm, FakeAirflow(waiting=waiting))
    with pytest.raises(Exception, match="refusing to remove the last worker of queue default"):
        resize(scaler, 0, lambda s, n: None, timeout=5, drain_timeout=5)
    assert swarm.scales == []  # Swarm was never asked


def test_a_failed_registration_shows_the_services_last_log_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swarm = FakeSwarm([task(1)])
    scaler, _ = make_scaler(monkeypatch, swarm)
    scaler.flower = cast(FlowerClient, SimpleNamespace(queues_by_worker=lambda: {}))
    with pytest.raises(TimeoutExpiredError) as caught:
        scaler.wait_registered(0.05)
    assert f"25 lines of {SERVICE}" in str(caught.value.details)
