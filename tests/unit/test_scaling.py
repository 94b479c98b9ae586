"""PoolScaler's decisions against fake Docker, Flower and Airflow: who goes, when, and undo."""

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from python_on_whales import Container

from airflow_ha import scaling
from airflow_ha.airflow_api import JSON, AirflowClient
from airflow_ha.errors import ClusterError, TimeoutExpiredError, UsageError
from airflow_ha.flower_api import FlowerClient, WorkerInfo
from airflow_ha.pools import pool_for_queue
from airflow_ha.scaling import (
    NUMBER_LABEL,
    PoolContainer,
    PoolScaler,
    choose_to_remove,
    one_scale_at_a_time,
    resize,
    task_label,
)
from airflow_ha.stack import Stack


def container(number: int) -> PoolContainer:
    return PoolContainer(name=f"p-worker-{number}", hostname=f"host{number}", number=number)


class FakeDocker:
    """The slice of python-on-whales' DockerClient that PoolScaler uses."""

    def __init__(self, numbers: list[int]) -> None:
        self.running = {container(n).name: container(n) for n in numbers}
        self.removed: list[str] = []
        self.stopped_with: list[int | None] = []
        self.stop_batches: list[list[str]] = []
        self.compose = SimpleNamespace(ps=self._ps, up=self._up)
        self.up_calls: list[dict[str, Any]] = []
        self.container = SimpleNamespace(stop=self._stop, remove=self._remove, logs=self._logs)

    def _ps(self, services: list[str], all: bool) -> list[Any]:
        assert services == ["worker"]
        return [
            SimpleNamespace(
                name=c.name,
                state=SimpleNamespace(status="running"),
                config=SimpleNamespace(hostname=c.hostname, labels={NUMBER_LABEL: str(c.number)}),
            )
            for c in self.running.values()
        ]

    def _up(self, **kwargs: Any) -> None:
        self.up_calls.append(kwargs)
        count = kwargs["scales"]["worker"]
        number = max((c.number for c in self.running.values()), default=0)
        while len(self.running) < count:
            number += 1
            self.running[container(number).name] = container(number)

    def _stop(self, names: list[str], time: int | None = None) -> None:
        self.stopped_with.append(time)
        self.stop_batches.append(list(names))

    def _remove(self, names: list[str]) -> None:
        for name in names:
            self.running.pop(name, None)  # a stopped container is removed all the same
            self.removed.append(name)

    def _logs(self, name: str, tail: int | None = None, until: datetime | None = None) -> str:
        return f"log of {name}"


@dataclass
class FakeFlower:
    """Each worker's busy count, lowered by one per inspection until zero."""

    busy: dict[str, int]
    draining: bool = True
    calls: list[str] = field(default_factory=list)
    interrupt_after: int | None = None
    # When set, Celery knows only the workers whose container runs.
    docker: FakeDocker | None = None

    def worker(self, name: str) -> WorkerInfo | None:
        if self.interrupt_after is not None:
            self.interrupt_after -= 1
            if self.interrupt_after < 0:
                raise KeyboardInterrupt
        if name not in self.busy:
            return None
        busy = self.busy[name]
        if self.draining and any(c == f"cancel {name} default" for c in self.calls):
            self.busy[name] = max(0, busy - 1)
        return WorkerInfo(name, ("default",), 4, active=busy, reserved=0)

    def queues_by_worker(self) -> dict[str, tuple[str, ...]]:
        names = list(self.busy)
        if self.docker is not None:
            running = {c.celery_name for c in self.docker.running.values()}
            names = [name for name in names if name in running]
        return {name: ("default",) for name in names}

    def cancel_consumer(self, name: str, queue: str) -> None:
        self.calls.append(f"cancel {name} {queue}")

    def add_consumer(self, name: str, queue: str) -> None:
        self.calls.append(f"add {name} {queue}")


@dataclass
class FakeAirflow:
    waiting: list[JSON] = field(default_factory=list)
    running: list[JSON] = field(default_factory=list)
    asked: list[tuple[list[str], list[str] | None]] = field(default_factory=list)

    def task_instances_where(
        self, states: list[str], queues: list[str] | None = None
    ) -> list[JSON]:
        self.asked.append((states, queues))
        return self.running if states == ["running"] else self.waiting


def make_scaler(
    docker: FakeDocker, flower: FakeFlower, airflow: FakeAirflow | None = None
) -> tuple[PoolScaler, list[str]]:
    log: list[str] = []
    stack = SimpleNamespace(docker=docker)
    stack.last_container_logs = partial(Stack.last_container_logs, cast(Stack, stack))
    scaler = PoolScaler(
        cast(Stack, stack),
        pool_for_queue("default"),
        cast(FlowerClient, flower),
        cast(AirflowClient, airflow or FakeAirflow()),
        log.append,
        poll_seconds=0,
    )
    return scaler, log


def test_the_least_busy_then_the_newest_go_first() -> None:
    containers = [container(1), container(2), container(3), container(4)]
    busy = {"celery@host1": 0, "celery@host2": 3, "celery@host3": 0, "celery@host4": 1}

    chosen = choose_to_remove(containers, busy, 3)

    assert [c.number for c in chosen] == [3, 1, 4]


def test_a_worker_that_did_not_answer_goes_last() -> None:
    containers = [container(1), container(2)]

    chosen = choose_to_remove(containers, {"celery@host1": 5}, 1)

    assert [c.number for c in chosen] == [1]


def test_scale_down_drains_before_it_removes() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 4, "celery@host2": 2, "celery@host3": 0})
    scaler, log = make_scaler(docker, flower)

    removed = scaler.drain_and_remove(1, timeout=10)

    assert [c.name for c in removed] == ["p-worker-3", "p-worker-2"]
    assert docker.removed == ["p-worker-3", "p-worker-2"]
    assert list(docker.running) == ["p-worker-1"]
    # Both stopped consuming before either was removed; the one that stays never did.
    assert flower.calls == ["cancel celery@host3 default", "cancel celery@host2 default"]
    assert flower.busy["celery@host2"] == 0
    assert docker.stopped_with == [600, 600]
    assert docker.stop_batches == [["p-worker-3"], ["p-worker-2"]]
    assert any(line.startswith("waiting for p-worker-2: 2 running") for line in log)


def test_scale_down_shows_the_airflow_tasks_it_waits_for() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 1}, draining=False)
    running = [
        {
            "dag_id": "d",
            "task_id": "t",
            "map_index": 3,
            "state": "running",
            "hostname": "host2",
            "start_date": "2026-11-28T14:02:11.5Z",
        }
    ]
    scaler, log = make_scaler(docker, flower, FakeAirflow(running=running))
    with pytest.raises(TimeoutExpiredError):
        scaler.drain_and_remove(0, timeout=0.05)

    assert "waiting for p-worker-2: 1 running, 0 reserved d.t[3] since 14:02:11" in log


def test_a_drain_that_times_out_leaves_the_workers_consuming_again() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(
        busy={"celery@host1": 9, "celery@host2": 1, "celery@host3": 2}, draining=False
    )
    scaler, log = make_scaler(docker, flower)

    with pytest.raises(TimeoutExpiredError, match=r"2 worker\(s\) still had tasks after 0 s"):
        scaler.drain_and_remove(1, timeout=0.05)

    assert docker.removed == []
    assert flower.calls[-2:] == ["add celery@host2 default", "add celery@host3 default"]
    assert "p-worker-2 consumes default again" in log


def test_an_interrupted_drain_undoes_only_the_workers_still_there() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 9, "celery@host2": 0, "celery@host3": 5})
    # 3 inspections to choose, then host2 (idle: removed), host3, then Ctrl-C.
    flower.interrupt_after = 5
    scaler, _ = make_scaler(docker, flower)

    with pytest.raises(KeyboardInterrupt):
        scaler.drain_and_remove(1, timeout=10)

    assert docker.removed == ["p-worker-2"]
    assert flower.calls[-1] == "add celery@host3 default"
    assert "add celery@host2 default" not in flower.calls


def test_the_last_worker_is_kept_while_tasks_wait_for_its_queue() -> None:
    waiting = [{"dag_id": "d", "task_id": "t", "map_index": i, "state": "queued"} for i in range(5)]
    airflow = FakeAirflow(waiting=waiting)
    scaler, _ = make_scaler(FakeDocker([1]), FakeFlower(busy={}), airflow)

    with pytest.raises(UsageError) as caught:
        scaler.refuse_emptying_with_waiting_tasks()

    message = str(caught.value)
    assert "refusing to remove the last worker of queue default: 5 task(s) wait" in message
    assert "(d.t[0], d.t[1], d.t[2] and 2 more)" in message
    assert "--force" in message
    assert "\n" not in message
    states, queues = airflow.asked[0]
    assert "queued" in states
    assert "scheduled" in states
    assert queues == ["default"]


def test_the_last_worker_may_go_when_nothing_waits() -> None:
    scaler, _ = make_scaler(FakeDocker([1]), FakeFlower(busy={}), FakeAirflow())

    scaler.refuse_emptying_with_waiting_tasks()


def test_registration_timeout_names_the_missing_workers_with_their_logs() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 0})
    scaler, _ = make_scaler(docker, flower)

    with pytest.raises(TimeoutExpiredError) as caught:
        scaler.wait_registered(timeout=0.05)

    assert str(caught.value) == (
        "2 worker(s) did not register with Celery within 0 s: "
        "p-worker-2 (celery@host2), p-worker-3 (celery@host3)"
    )
    assert "log of p-worker-3" in caught.value.details


def test_registration_returns_once_every_container_consumes_the_queue() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0})
    scaler, log = make_scaler(docker, flower)

    assert [c.number for c in scaler.wait_registered(timeout=1)] == [1, 2]
    assert log == ["2 of 2 registered"]


def test_task_label_of_a_queued_and_a_running_task() -> None:
    assert task_label({"dag_id": "d", "task_id": "t", "map_index": -1, "state": "queued"}) == "d.t"
    running = {
        "dag_id": "d",
        "task_id": "t",
        "map_index": 0,
        "state": "running",
        "start_date": "2026-11-28T15:04:05+00:00",
    }
    assert task_label(running) == "d.t[0] since 15:04:05"


class Recorder:
    def __init__(self, docker: FakeDocker) -> None:
        self.docker = docker
        self.calls: list[tuple[str, int, int]] = []

    def __call__(self, service: str, count: int) -> None:
        """Records the size asked for, and how many containers ran at that moment."""
        self.calls.append((service, count, len(self.docker.running)))


def test_scale_up_records_the_size_first_then_waits_for_registration() -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={f"celery@host{n}": 0 for n in (1, 2, 3)})
    scaler, _ = make_scaler(docker, flower)
    record = Recorder(docker)

    after, new = resize(scaler, 3, record, timeout=1, drain_timeout=1)

    assert record.calls == [("worker", 3, 1)]
    assert [c.number for c in after] == [1, 2, 3]
    assert new == {"p-worker-2", "p-worker-3"}
    [call] = docker.up_calls
    assert call["services"] == ["worker"]
    assert call["recreate"] is False  # running workers are never recreated
    assert call["dependencies"] is False


def test_a_failed_drain_records_what_really_runs() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 5, "celery@host2": 0, "celery@host3": 5})
    flower.draining = False
    scaler, _ = make_scaler(docker, flower)
    record = Recorder(docker)

    with pytest.raises(TimeoutExpiredError):
        resize(scaler, 1, record, timeout=1, drain_timeout=0.05)

    assert record.calls == [("worker", 2, 2)]  # host2 was idle and went; host3 stayed


def test_a_count_celery_does_not_confirm_is_an_error() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0, "celery@stray": 0})
    scaler, _ = make_scaler(docker, flower)

    with pytest.raises(
        ClusterError, match=r"Celery reports 3 worker\(s\) on queue default, 2 asked"
    ):
        resize(scaler, 2, Recorder(docker), timeout=1, drain_timeout=1)


def test_emptying_with_waiting_tasks_is_refused_before_anything_changes() -> None:
    docker = FakeDocker([1])
    airflow = FakeAirflow(waiting=[{"dag_id": "d", "task_id": "t", "state": "queued"}])
    scaler, _ = make_scaler(docker, FakeFlower(busy={"celery@host1": 0}), airflow)
    record = Recorder(docker)

    with pytest.raises(UsageError):
        resize(scaler, 0, record, timeout=1, drain_timeout=1)

    assert record.calls == []
    assert list(docker.running) == ["p-worker-1"]


def test_idle_workers_are_stopped_together() -> None:
    docker = FakeDocker([1, 2, 3, 4])
    flower = FakeFlower(busy={f"celery@host{n}": 0 for n in (1, 2, 3, 4)})
    scaler, _ = make_scaler(docker, flower)

    scaler.drain_and_remove(1, timeout=10)

    assert docker.stop_batches == [["p-worker-4", "p-worker-3", "p-worker-2"]]


def test_force_removes_the_last_worker_although_tasks_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={"celery@host1": 0})
    monkeypatch.setattr(flower, "queues_by_worker", dict)  # Celery's view once it is gone
    airflow = FakeAirflow(waiting=[{"dag_id": "d", "task_id": "t", "state": "queued"}])
    scaler, _ = make_scaler(docker, flower, airflow)
    record = Recorder(docker)

    after, _ = resize(scaler, 0, record, timeout=1, drain_timeout=1, force=True)

    assert after == []
    assert docker.removed == ["p-worker-1"]
    assert record.calls == [("worker", 0, 0)]


def test_a_second_scale_of_a_project_is_refused_while_the_first_runs(tmp_path: Path) -> None:
    state_dir = tmp_path / "afha-one"

    def another_scale() -> None:
        with one_scale_at_a_time(state_dir):
            pass

    with (
        one_scale_at_a_time(state_dir),
        pytest.raises(ClusterError, match="another `scale` of project afha-one is running"),
    ):
        another_scale()
    another_scale()  # the first's end freed the lock


def running_task(host: str, task_id: str = "t") -> JSON:
    return {
        "dag_id": "d",
        "task_id": task_id,
        "map_index": -1,
        "state": "running",
        "hostname": host,
    }


def test_a_worker_celery_calls_idle_stays_while_airflow_runs_a_task_on_its_host() -> None:
    # Celery's lists miss a task between its ack and its start: Airflow still runs it there.
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0, "celery@host3": 0})
    airflow = FakeAirflow(running=[running_task("host2", "held"), running_task("host1", "other")])
    scaler, log = make_scaler(docker, flower, airflow)

    with pytest.raises(TimeoutExpiredError, match=r"p-worker-2: 0 running, 0 reserved d\.held$"):
        scaler.drain_and_remove(1, timeout=0.05)

    # host3 was idle in both Celery and Airflow; host2 ran an Airflow task; host1 stays anyway.
    assert docker.removed == ["p-worker-3"]
    assert "waiting for p-worker-2: 0 running, 0 reserved d.held" in log
    assert flower.calls[-1] == "add celery@host2 default"
    assert (["running"], None) in airflow.asked


def test_a_worker_goes_once_airflow_no_longer_runs_anything_on_its_host() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0})

    class FinishingAirflow(FakeAirflow):
        """The task on host2 finishes after two looks."""

        def task_instances_where(
            self, states: list[str], queues: list[str] | None = None
        ) -> list[JSON]:
            if len(self.asked) >= 2:
                self.running = []
            return super().task_instances_where(states, queues)

    airflow = FinishingAirflow(running=[running_task("host2")])
    scaler, log = make_scaler(docker, flower, airflow)

    removed = scaler.drain_and_remove(1, timeout=10)

    assert [c.name for c in removed] == ["p-worker-2"]
    assert docker.removed == ["p-worker-2"]
    assert len(airflow.asked) == 3
    assert log.count("waiting for p-worker-2: 0 running, 0 reserved d.t") == 1
    assert log[-1] == "p-worker-2 (celery@host2) drained, stopped and removed"


def test_a_task_without_a_host_holds_no_worker() -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={"celery@host1": 0})
    airflow = FakeAirflow(running=[{"dag_id": "d", "task_id": "t", "hostname": None}])
    scaler, _ = make_scaler(docker, flower, airflow)

    scaler.drain_and_remove(0, timeout=10)

    assert docker.removed == ["p-worker-1"]


def test_shrinking_to_a_smaller_pool_does_not_ask_about_waiting_tasks() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0}, docker=docker)
    airflow = FakeAirflow(waiting=[{"dag_id": "d", "task_id": "t", "state": "queued"}])
    scaler, _ = make_scaler(docker, flower, airflow)

    after, _ = resize(scaler, 1, Recorder(docker), timeout=1, drain_timeout=1)

    assert [c.name for c in after] == ["p-worker-1"]
    assert all(states == ["running"] for states, _ in airflow.asked)


def test_emptying_an_idle_pool_without_force_checks_then_removes() -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={"celery@host1": 0}, docker=docker)
    airflow = FakeAirflow()
    scaler, _ = make_scaler(docker, flower, airflow)

    resize(scaler, 0, Recorder(docker), timeout=1, drain_timeout=1)

    assert docker.removed == ["p-worker-1"]
    assert airflow.asked[0] == (scaling.WAITING_STATES, ["default"])


def test_scale_up_starts_the_missing_containers_detached_without_building() -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={f"celery@host{n}": 0 for n in (1, 2, 3)})
    scaler, log = make_scaler(docker, flower)

    resize(scaler, 3, Recorder(docker), timeout=1, drain_timeout=1)

    [call] = docker.up_calls
    assert call["scales"] == {"worker": 3}
    assert call["detach"] is True  # returns once started; registration is checked apart
    assert call["no_build"] is True  # a resize never rebuilds the image
    assert log[:2] == ["pool worker (queue default): 1 -> 3", "starting 2 worker container(s)"]


def test_resizing_to_the_current_size_starts_and_drains_nothing() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 3, "celery@host2": 0})
    scaler, log = make_scaler(docker, flower)
    record = Recorder(docker)

    after, new = resize(scaler, 2, record, timeout=1, drain_timeout=1)

    assert [c.number for c in after] == [1, 2]
    assert new == set()
    assert record.calls == [("worker", 2, 2)]
    assert docker.up_calls == []
    assert flower.calls == []
    assert log == ["pool worker (queue default): 2 -> 2", "2 of 2 registered"]


def test_shrinking_reports_no_new_container() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0}, docker=docker)
    scaler, _ = make_scaler(docker, flower)

    after, new = resize(scaler, 1, Recorder(docker), timeout=1, drain_timeout=1)

    assert ([c.number for c in after], new) == ([1], set())


def test_a_lost_worker_is_reported_after_a_shrink() -> None:
    docker = FakeDocker([1, 2])
    # Celery has lost p-worker-1's worker: after p-worker-2 goes, it sees none.
    flower = FakeFlower(busy={"celery@host2": 0}, docker=docker)
    scaler, _ = make_scaler(docker, flower)

    with pytest.raises(ClusterError) as caught:
        resize(scaler, 1, Recorder(docker), timeout=1, drain_timeout=1)

    assert docker.removed == ["p-worker-2"]
    assert str(caught.value) == "Celery reports 0 worker(s) on queue default, 1 asked: none"


def test_stray_workers_are_named_after_a_shrink() -> None:
    docker = FakeDocker([1, 2])
    # Celery still lists the removed worker and one no container of ours runs.
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 0, "celery@stray": 0})
    scaler, _ = make_scaler(docker, flower)

    with pytest.raises(ClusterError) as caught:
        resize(scaler, 1, Recorder(docker), timeout=1, drain_timeout=1)

    assert str(caught.value) == (
        "Celery reports 3 worker(s) on queue default, 1 asked: "
        "celery@host1, celery@host2, celery@stray"
    )


class LateFlower(FakeFlower):
    """host2 registers with Celery only at the third look."""

    looks: int = 0

    def queues_by_worker(self) -> dict[str, tuple[str, ...]]:
        self.looks += 1
        known = super().queues_by_worker()
        return known if self.looks >= 3 else {k: v for k, v in known.items() if k != "celery@host2"}


def test_registration_waits_and_says_each_change_once() -> None:
    docker = FakeDocker([1, 2])
    flower = LateFlower(busy={"celery@host1": 0, "celery@host2": 0})
    scaler, log = make_scaler(docker, flower)

    assert [c.number for c in scaler.wait_registered(timeout=10)] == [1, 2]

    assert flower.looks == 3
    assert log == [
        "1 of 2 registered; waiting for p-worker-2 (celery@host2)",
        "2 of 2 registered",
    ]


def test_the_missing_workers_are_listed_with_their_celery_names() -> None:
    docker = FakeDocker([1, 2, 3])
    scaler, log = make_scaler(docker, FakeFlower(busy={"celery@host2": 0}))

    with pytest.raises(TimeoutExpiredError):
        scaler.wait_registered(timeout=0)

    assert log == [
        "1 of 3 registered; waiting for p-worker-1 (celery@host1), p-worker-3 (celery@host3)"
    ]


def refusal(waiting_count: int) -> str:
    waiting = [
        {"dag_id": "d", "task_id": "t", "map_index": i, "state": "queued"}
        for i in range(waiting_count)
    ]
    scaler, _ = make_scaler(FakeDocker([1]), FakeFlower(busy={}), FakeAirflow(waiting=waiting))
    with pytest.raises(UsageError) as caught:
        scaler.refuse_emptying_with_waiting_tasks()
    return str(caught.value)


def test_the_refusal_says_why_and_how_to_do_it_anyway() -> None:
    assert refusal(1) == (
        "refusing to remove the last worker of queue default: 1 task(s) wait for one "
        "(d.t[0]); they would wait until the pool grows again. "
        "Use --force (make: FORCE=yes) to do it anyway"
    )


def test_the_refusal_names_three_waiting_tasks_then_counts_the_rest() -> None:
    assert "(d.t[0], d.t[1], d.t[2]);" in refusal(3)
    assert "(d.t[0], d.t[1], d.t[2] and 1 more);" in refusal(4)


def test_a_container_without_hostname_or_number_label() -> None:
    found = SimpleNamespace(name="c", config=SimpleNamespace(hostname=None, labels=None))
    assert PoolContainer.of(cast(Container, found)) == PoolContainer("c", "", 0)


def test_start_times_are_shown_in_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        ti = {
            "dag_id": "d",
            "task_id": "t",
            "state": "running",
            "start_date": "2026-11-28T15:04:05Z",
        }
        assert task_label(ti) == "d.t since 15:04:05"
    finally:
        monkeypatch.undo()
        time.tzset()


class TwoQueueFlower(FakeFlower):
    """Every worker consumes `default` and `extra`."""

    def worker(self, name: str) -> WorkerInfo | None:
        info = super().worker(name)
        return None if info is None else replace(info, queues=("default", "extra"))


def test_a_drained_worker_stops_consuming_every_queue_it_had() -> None:
    docker = FakeDocker([1, 2])
    flower = TwoQueueFlower(busy={"celery@host1": 0, "celery@host2": 5}, draining=False)
    scaler, log = make_scaler(docker, flower)

    removed = scaler.drain_and_remove(1, timeout=10)

    assert [c.name for c in removed] == ["p-worker-1"]
    assert flower.calls == ["cancel celery@host1 default", "cancel celery@host1 extra"]
    assert log[0] == (
        "draining p-worker-1 (celery@host1): they take no new tasks and finish the ones they have"
    )


def test_a_worker_that_does_not_answer_is_waited_for_then_consumes_its_pools_queue_again() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0})  # host2 does not answer
    scaler, log = make_scaler(docker, flower)
    scaler.pool = pool_for_queue("default")

    with pytest.raises(TimeoutExpiredError) as caught:
        scaler.drain_and_remove(0, timeout=0.05)

    assert str(caught.value) == (
        "1 worker(s) still had tasks after 0 s and were left running and consuming again: "
        "p-worker-2: not answering Celery's inspect"
    )
    assert docker.removed == ["p-worker-1"]
    assert "cancel celery@host2 default" in flower.calls
    assert flower.calls[-1] == "add celery@host2 default"
    assert "waiting for p-worker-2: not answering Celery's inspect" in log


def test_a_worker_whose_container_stopped_during_the_drain_counts_as_drained() -> None:
    docker = FakeDocker([1, 2])
    flower = FakeFlower(busy={"celery@host1": 0, "celery@host2": 3}, draining=False)
    scaler, _ = make_scaler(docker, flower)

    def crash(name: str, queue: str) -> None:
        FakeFlower.cancel_consumer(flower, name, queue)
        if name == "celery@host2":  # the worker dies: no container, no answer
            del docker.running["p-worker-2"]
            del flower.busy["celery@host2"]

    flower.cancel_consumer = crash  # type: ignore[method-assign]

    scaler.drain_and_remove(0, timeout=10)

    assert sorted(docker.removed) == ["p-worker-1", "p-worker-2"]


def test_each_task_a_worker_runs_is_named() -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={"celery@host1": 0})
    airflow = FakeAirflow(running=[running_task("host1", "a"), running_task("host1", "b")])
    scaler, log = make_scaler(docker, flower, airflow)

    with pytest.raises(TimeoutExpiredError):
        scaler.drain_and_remove(0, timeout=0.05)

    assert "waiting for p-worker-1: 0 running, 0 reserved d.a, d.b" in log


def test_the_wait_is_told_once_per_change_and_again_every_so_often(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docker = FakeDocker([1])
    flower = FakeFlower(busy={"celery@host1": 2})
    flower.draining = False
    scaler, log = make_scaler(docker, flower)
    looks = iter([3, 3, 2, 2, 0])  # the first look chooses who goes

    def worker(name: str) -> WorkerInfo:
        return WorkerInfo(name, ("default",), 4, active=next(looks), reserved=0)

    flower.worker = worker  # type: ignore[method-assign]

    scaler.drain_and_remove(0, timeout=10)

    waits = [line for line in log if line.startswith("waiting")]
    assert waits == [
        "waiting for p-worker-1: 3 running, 0 reserved",
        "waiting for p-worker-1: 2 running, 0 reserved",
    ]

    monkeypatch.setattr(scaling, "REPORT_EVERY_SECONDS", -1.0)  # every look is "a while"
    docker = FakeDocker([1])
    scaler, log = make_scaler(docker, flower)
    looks = iter([3, 3, 3, 0])  # the first look chooses who goes
    scaler.drain_and_remove(0, timeout=10)
    assert [line for line in log if line.startswith("waiting")] == [
        "waiting for p-worker-1: 3 running, 0 reserved",
        "waiting for p-worker-1: 3 running, 0 reserved",
    ]


def test_a_worker_that_cannot_consume_again_does_not_stop_the_others() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 9, "celery@host2": 1, "celery@host3": 2})
    flower.draining = False
    scaler, log = make_scaler(docker, flower)

    def add_consumer(name: str, queue: str) -> None:
        if name == "celery@host2":
            raise ClusterError("Flower answered 500")
        flower.calls.append(f"add {name} {queue}")

    flower.add_consumer = add_consumer  # type: ignore[method-assign]

    with pytest.raises(TimeoutExpiredError):
        scaler.drain_and_remove(1, timeout=0.05)

    assert "p-worker-2 could not consume default again: Flower answered 500" in log
    assert flower.calls[-1] == "add celery@host3 default"


def test_several_workers_are_named_in_the_drain_and_in_the_timeout() -> None:
    docker = FakeDocker([1, 2, 3])
    flower = FakeFlower(busy={"celery@host1": 9, "celery@host2": 1, "celery@host3": 2})
    flower.draining = False
    scaler, log = make_scaler(docker, flower)

    with pytest.raises(TimeoutExpiredError) as caught:
        scaler.drain_and_remove(1, timeout=0.05)

    assert log[0] == (
        "draining p-worker-2 (celery@host2), p-worker-3 (celery@host3): "
        "they take no new tasks and finish the ones they have"
    )
    assert str(caught.value) == (
        "2 worker(s) still had tasks after 0 s and were left running and consuming again: "
        "p-worker-2: 1 running, 0 reserved; p-worker-3: 2 running, 0 reserved"
    )


def test_work_report_says_each_worker_once_then_only_changes() -> None:
    said: list[str] = []
    report = scaling.WorkReport(said.append, "waiting for {name}: {work}", every=3600)
    report({"w1": "2 running", "w2": "1 running"})
    report({"w1": "2 running", "w2": "1 running"})
    report({"w1": "1 running", "w2": "1 running"})
    report({"w1": "1 running"})
    assert said == [
        "waiting for w1: 2 running",
        "waiting for w2: 1 running",
        "waiting for w1: 1 running",
    ]


def test_work_report_says_everything_again_now_and_then() -> None:
    said: list[str] = []
    report = scaling.WorkReport(said.append, "{name}: {work}", every=0)
    report({"w1": "busy"})
    time.sleep(0.001)
    report({"w1": "busy"})
    assert said == ["w1: busy", "w1: busy"]
