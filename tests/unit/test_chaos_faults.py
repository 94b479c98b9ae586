"""chaos/faults.py without Docker: picking a target, injecting and confirming
the fault from Docker's own record, judging the comeback, and putting a target
back after an interruption (fakes in chaos_fakes.py)."""

import re
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import cast

import pytest
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import AirflowApiError
from airflow_ha.chaos import faults
from airflow_ha.chaos.faults import FAULTS, Fault, TargetBefore
from airflow_ha.chaos.workload import TaskSnapshot, Workload
from airflow_ha.paths import COMPOSE_FILE

from .chaos_fakes import (
    FakeContainer,
    FakeNetworkSettings,
    FakeStack,
    as_container,
    as_stack,
    at,
    container,
    snapshot,
)

# --- pick functions -------------------------------------------------------------------------


def test_first_when_tasks_run_waits_for_two_running_tasks() -> None:
    scheduler = container("scheduler", "s1")
    stack = FakeStack(scheduler)
    pick = faults.first_when_tasks_run("scheduler")

    assert pick(as_stack(stack), []) is None
    one = [snapshot("short"), snapshot("long", state="queued"), snapshot("x", state="success")]
    assert pick(as_stack(stack), one) is None
    two = [*one, snapshot("short", map_index=1)]
    assert pick(as_stack(stack), two) is as_container(scheduler)
    assert stack.docker.compose.asked == [["scheduler"]]  # no Docker call before that


def test_first_when_tasks_run_takes_a_running_container_of_the_service() -> None:
    stopped = container("redis", "r0", status="exited")
    other = container("mysql", "m1")
    unlabeled = container("redis", "r2", labels={})
    redis = container("redis", "r1")
    stack = FakeStack(stopped, other, unlabeled, redis)
    tasks = [snapshot("short"), snapshot("long")]

    assert faults.first_when_tasks_run("redis")(as_stack(stack), tasks) is as_container(redis)
    assert faults.first_when_tasks_run("lb")(as_stack(stack), tasks) is None


def test_worker_running_long_task_is_the_worker_with_the_tasks_hostname() -> None:
    w1, w2, w3 = container("worker", "w1"), container("worker", "w2"), container("worker", "w3")
    impostor = container("scheduler", "w2")  # same hostname, other service
    stack = FakeStack(impostor, w1, w2, w3)
    tasks = [
        snapshot("short", hostname="w1"),
        snapshot("long", state="queued", hostname="w3"),
        snapshot("long", hostname="w2", run_id="run-2"),
    ]
    assert faults.worker_running_long_task(as_stack(stack), tasks) is as_container(w2)
    assert stack.docker.compose.asked == [["worker"]]


@pytest.mark.parametrize(
    "tasks",
    [
        [],
        [snapshot("short", hostname="w1"), snapshot("short", hostname="w1")],
        [snapshot("long", state="queued", hostname="w1")],
        [snapshot("long", state="success", hostname="w1")],
        [snapshot("long", hostname="")],  # running, hostname not recorded yet
        [snapshot("long", hostname="gone")],  # no worker with that hostname
    ],
)
def test_worker_running_long_task_waits(tasks: list[TaskSnapshot]) -> None:
    stack = FakeStack(container("worker", "w1"), container("worker", "w2", status="restarting"))
    assert faults.worker_running_long_task(as_stack(stack), tasks) is None


def test_worker_running_long_task_skips_a_worker_that_is_not_running() -> None:
    stack = FakeStack(container("worker", "w1", status="restarting"))
    tasks = [snapshot("long", hostname="w1")]
    assert faults.worker_running_long_task(as_stack(stack), tasks) is None


def test_triggerer_holding_deferred_task_uses_the_triggerer_host() -> None:
    t1, t2 = container("triggerer", "t1"), container("triggerer", "t2")
    worker = container("worker", "t2")
    stack = FakeStack(worker, t1, t2)
    tasks = [
        snapshot("long", hostname="t1"),
        # Its TI hostname is the worker that deferred it; the triggerer is elsewhere.
        snapshot("deferred", state="deferred", hostname="t1", triggerer_host="t2"),
    ]
    assert faults.triggerer_holding_deferred_task(as_stack(stack), tasks) is as_container(t2)
    assert stack.docker.compose.asked == [["triggerer"]]


@pytest.mark.parametrize(
    "tasks",
    [
        [],
        [snapshot("deferred", state="running", hostname="t1")],
        [snapshot("deferred", state="deferred", hostname="t1", triggerer_host="")],
        [snapshot("deferred", state="success", triggerer_host="t1")],
        [snapshot("long", state="deferred", triggerer_host="t1")],
    ],
)
def test_triggerer_holding_deferred_task_waits(tasks: list[TaskSnapshot]) -> None:
    stack = FakeStack(container("triggerer", "t1"))
    assert faults.triggerer_holding_deferred_task(as_stack(stack), tasks) is None


def test_scheduler_kill_waits_until_tasks_are_left_for_the_survivor_to_queue() -> None:
    scheduler = container("scheduler", "s1")
    stack = as_stack(FakeStack(scheduler))
    running = [snapshot("short", map_index=i) for i in range(2)]
    waiting = [snapshot("short", state="scheduled", map_index=10 + i) for i in range(4)]
    unseen = [snapshot("short", state="none", map_index=20 + i) for i in range(4)]
    queued = [snapshot("short", state="queued", map_index=30 + i) for i in range(9)]

    assert faults.scheduler_with_tasks_to_queue(stack, running + queued) is None
    assert faults.scheduler_with_tasks_to_queue(stack, running + waiting + unseen[:3]) is None
    assert faults.scheduler_with_tasks_to_queue(stack, waiting + unseen) is None  # none runs
    found = faults.scheduler_with_tasks_to_queue(stack, running + waiting + unseen)
    assert found is as_container(scheduler)


# --- TargetBefore and the came_back predicates ----------------------------------------------


def test_target_before_copies_the_container_as_it_was() -> None:
    c = container("worker", "w1", restart_count=2)
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    before = TargetBefore.of(as_container(c))
    c.restart_count = 3
    c.config.hostname = "changed"
    c.state.started_at = at(5)
    assert (before.id, before.name, before.hostname) == ("id-worker-w1", c.name, "w1")
    assert (before.mark.restart_count, before.mark.started_at) == (2, at(-3600))
    assert before.networks == ("back", "front")


def test_target_before_of_a_container_without_hostname_or_restart_count() -> None:
    c = container("redis", "r1", restart_count=None)
    c.config.hostname = None
    before = TargetBefore.of(as_container(c))
    assert (before.hostname, before.mark.restart_count) == ("", 0)


def before_of(c: FakeContainer) -> TargetBefore:
    return TargetBefore.of(as_container(c))


@pytest.mark.parametrize(("restart_count", "expected"), [(None, False), (1, False), (2, True)])
def test_restarted_by_policy(restart_count: int | None, expected: bool) -> None:
    before = before_of(container("scheduler", "abc", restart_count=1))
    now = container("scheduler", "abc", restart_count=restart_count)
    assert faults.restarted_by_policy(before, as_container(now)) is expected


@pytest.mark.parametrize(
    ("started_at", "expected"),
    [(None, False), (at(-3600), False), (at(-7200), False), (at(-3599.9), True), (at(3), True)],
)
def test_started_again(started_at: object, expected: bool) -> None:
    before = before_of(container("mysql", "abc"))  # started at -3600
    now = container("mysql", "abc")
    now.state.started_at = started_at  # type: ignore[assignment]
    assert faults.started_again(before, as_container(now)) is expected


def test_reconnected_needs_the_same_running_container_on_every_network_it_had() -> None:
    c = container("worker", "abc")
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    before = before_of(c)
    assert faults.reconnected(before, as_container(c))

    c.network_settings = FakeNetworkSettings({"front": object()})  # still cut off one
    assert not faults.reconnected(before, as_container(c))
    c.network_settings = FakeNetworkSettings(None)  # cut off all
    assert not faults.reconnected(before, as_container(c))

    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    c.state.started_at = at(10)  # it restarted: not the partition's comeback
    assert not faults.reconnected(before, as_container(c))

    replaced = container("worker", "abc")
    replaced.id = "def"
    replaced.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    assert not faults.reconnected(before, as_container(replaced))


# --- injections, confirmed by Docker ------------------------------------------------------


def inject(
    fault: Fault | faults.Inject, c: FakeContainer, stack: FakeStack | None = None
) -> object:
    run = fault.inject if isinstance(fault, Fault) else fault
    return run(as_stack(stack or FakeStack(c)), as_container(c), before_of(c), threading.Event())


def test_a_kill_is_confirmed_by_the_containers_new_finished_at() -> None:
    c = container("scheduler", "s1")
    c.dies_at = at(0.4)
    c.exec_error = DockerException(["docker", "exec"], 137, b"", b"")  # dies with its container

    injection = inject(FAULTS["scheduler-kill"], c)

    assert c.executed == [["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"]]
    assert isinstance(injection, faults.Injection)
    assert injection.at == at(0.4)
    assert "Docker FinishedAt" in injection.evidence


def test_a_kill_docker_does_not_confirm_is_not_injected(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 10))
    slept: list[float] = []
    monkeypatch.setattr(
        faults, "time", SimpleNamespace(monotonic=lambda: next(clock), sleep=slept.append)
    )
    c = container("worker", "w1")  # the kill misses: FinishedAt never moves

    assert inject(FAULTS["worker-kill"], c) is None
    assert slept == [0.2, 0.2]  # deadline 0 + 30: checked at 10, 20 and 30, then gave up


def test_a_restart_is_confirmed_by_the_finished_at_it_leaves() -> None:
    c = container("mysql", "m1")
    c.dies_at = at(1)
    injection = inject(FAULTS["mysql-restart"], c)
    assert c.restarts == 1
    assert isinstance(injection, faults.Injection)
    assert injection.at == at(1)


def test_an_outage_stops_the_container_confirms_it_then_starts_it_again() -> None:
    c = container("redis", "r1")
    c.dies_at = at(1)
    waited: list[float | None] = []

    class RecordedStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waited.append(timeout)
            return False

    stop = RecordedStop()
    outage = FAULTS["redis-outage"].inject
    injection = outage(as_stack(FakeStack(c)), as_container(c), before_of(c), stop)
    assert (c.stops, c.starts, c.restarts) == (1, 1, 0)
    assert waited == [faults.REDIS_OUTAGE_S]
    assert c.state.status == "running"
    assert isinstance(injection, faults.Injection)
    assert injection.at == at(1)


def test_an_outage_is_cut_short_by_its_stop_event_and_still_starts_the_container() -> None:
    c = container("redis", "r1")
    c.dies_at = at(1)
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    injection = faults.down_for(3600)(as_stack(FakeStack(c)), as_container(c), before_of(c), stop)
    assert time.monotonic() - started < 60
    assert injection is not None
    assert c.starts == 1


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """faults' sleeps, recorded instead of slept (its clock runs as usual)."""
    recorded: list[float] = []
    monkeypatch.setattr(
        faults, "time", SimpleNamespace(monotonic=time.monotonic, sleep=recorded.append)
    )
    return recorded


def test_an_outage_that_left_no_trace_is_not_injected_and_starts_the_container(
    slept: list[float],
) -> None:
    c = container("redis", "r1")  # the stop leaves FinishedAt as it was
    assert inject(faults.down_for(0), c) is None
    assert (c.stops, c.starts) == (1, 1)
    # `docker stop` returns once the container has stopped: its trace is there
    # at once or never.
    assert slept == []


def test_an_outage_whose_start_fails_is_still_reported() -> None:
    c = container("redis", "r1")
    c.dies_at = at(1)
    c.start_error = DockerException(["docker", "start"], 1, b"", b"")
    injection = inject(faults.down_for(0), c)
    assert isinstance(injection, faults.Injection)  # the runner's restore() starts it
    assert c.starts == 1


def test_an_outage_whose_stop_fails_still_starts_the_container() -> None:
    c = container("redis", "r1")
    c.stop_error = DockerException(["docker", "stop"], 1, b"", b"")
    with pytest.raises(DockerException):
        inject(faults.down_for(0), c)
    assert c.starts == 1


def test_a_restart_that_left_no_trace_is_not_injected_and_not_waited_for(
    slept: list[float],
) -> None:
    c = container("mysql", "m1")
    assert inject(FAULTS["mysql-restart"], c) is None
    assert c.restarts == 1
    # `docker restart` returns once the container runs again: its trace is there
    # at once or never.
    assert slept == []


def test_partition_disconnects_every_network_confirms_it_then_reconnects() -> None:
    c = container("worker", "w1")
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    stack = FakeStack(c)
    before = time.time()

    injection = inject(faults.partition_for(0), c, stack)

    assert stack.docker.network.calls == [
        ("disconnect", "back", c.name),
        ("disconnect", "front", c.name),
        ("connect", "back", c.name),
        ("connect", "front", c.name),
    ]
    assert isinstance(injection, faults.Injection)
    assert injection.evidence == "disconnected from back, front"
    assert before <= injection.at.timestamp() <= time.time()
    assert set(c.network_settings.networks or {}) == {"front", "back"}


def test_a_disconnect_that_leaves_the_container_attached_is_not_injected() -> None:
    c = container("worker", "w1")
    stack = FakeStack(c)
    stack.docker.network.detaches = False
    assert inject(faults.partition_for(0), c, stack) is None


def test_a_partition_is_cut_short_by_its_stop_event_and_still_reconnects() -> None:
    c = container("worker", "w1")
    stack = FakeStack(c)
    stop = threading.Event()
    stop.set()
    started = time.monotonic()
    injection = faults.partition_for(3600)(as_stack(stack), as_container(c), before_of(c), stop)
    assert time.monotonic() - started < 60
    assert injection is not None
    assert stack.docker.network.calls[-1] == ("connect", "airflow-ha_default", c.name)


def test_a_reconnect_that_fails_does_not_stop_the_others() -> None:
    c = container("worker", "w1")
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    stack = FakeStack(c)
    stack.docker.network.connect_errors = {"back"}

    injection = inject(faults.partition_for(0), c, stack)

    assert stack.docker.network.calls[-2:] == [
        ("connect", "back", c.name),
        ("connect", "front", c.name),
    ]
    assert set(c.network_settings.networks or {}) == {"front"}
    assert isinstance(injection, faults.Injection)  # the cut itself was confirmed


def test_a_partition_reconnects_even_when_the_check_fails() -> None:
    c = container("worker", "w1")
    stack = FakeStack(c)
    stack.docker.container.containers = []  # inspect fails
    with pytest.raises(StopIteration):
        inject(faults.partition_for(0), c, stack)
    assert stack.docker.network.calls[-1] == ("connect", "airflow-ha_default", c.name)


def test_restore_starts_a_stopped_target_and_reconnects_its_networks() -> None:
    c = container("worker", "w1")
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    before = before_of(c)
    c.state.status = "exited"
    c.network_settings = FakeNetworkSettings({"front": object()})

    done = faults.restore(as_stack(FakeStack(c)), before)

    assert done == [f"started {c.name}", f"reconnected {c.name} to back"]
    assert c.starts == 1
    assert set(c.network_settings.networks or {}) == {"front", "back"}


def test_restore_of_a_target_that_is_back_does_nothing() -> None:
    c = container("redis", "r1")
    stack = FakeStack(c)
    assert faults.restore(as_stack(stack), before_of(c)) == []
    assert (c.starts, stack.docker.network.calls) == (0, [])


# --- the FAULTS registry against the Compose file ------------------------------------------


def compose_services() -> set[str]:
    """The service names of compose/docker-compose.yaml (two-space keys under services:)."""
    text = COMPOSE_FILE.read_text()
    section = text.split("\nservices:\n", 1)[1]
    section = re.split(r"\n(?=\S)", section, maxsplit=1)[0]  # up to the next top-level key
    return set(re.findall(r"^  ([a-z][a-z0-9-]*):\s*$", section, flags=re.MULTILINE))


def test_every_fault_hits_a_compose_service() -> None:
    services = compose_services()
    assert {"scheduler", "api-server", "worker", "triggerer", "mysql", "redis"} <= services
    for name, fault in FAULTS.items():
        assert name == fault.name
        assert fault.service in services, fault.name
        assert fault.name.startswith(fault.service + "-"), fault.name


# --- wait_for_target ------------------------------------------------------------------------


@dataclass
class FakeWorkload:
    snapshots: list[TaskSnapshot]
    done: bool = False
    api_errors: int = 0  # fail this many polls first, as a busy API does

    def tasks(self) -> list[TaskSnapshot]:
        if self.api_errors > 0:
            self.api_errors -= 1
            raise AirflowApiError("GET taskInstances failed with HTTP 500: busy")
        return self.snapshots

    def finished(self) -> bool:
        return self.done


def picking(target: FakeContainer | None) -> Fault:
    return Fault(
        "test-fault",
        "a test fault",
        "worker",
        lambda stack, tasks: as_container(target) if target is not None else None,
        faults.restart,
        faults.reconnected,
    )


def test_wait_for_target_returns_the_target_and_the_tasks_it_was_picked_from() -> None:
    c = container("worker", "w1")
    workload = FakeWorkload([snapshot("long", hostname="w1")])
    found, tasks = faults.wait_for_target(
        picking(c), as_stack(FakeStack(c)), cast(Workload, workload), timeout=5
    )
    assert found is as_container(c)
    assert tasks == workload.snapshots


def test_wait_for_target_gives_up_when_the_workload_ends_first() -> None:
    workload = FakeWorkload([snapshot("short", state="success")], done=True)
    found, tasks = faults.wait_for_target(
        picking(container("worker", "w1")), as_stack(FakeStack()), cast(Workload, workload), 5
    )
    assert found is None
    assert tasks == workload.snapshots


def test_wait_for_target_retries_while_the_api_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        faults, "time", SimpleNamespace(monotonic=time.monotonic, sleep=slept.append)
    )
    c = container("worker", "w1")
    workload = FakeWorkload([snapshot("long", hostname="w1")], api_errors=2)
    found, tasks = faults.wait_for_target(
        picking(c), as_stack(FakeStack(c)), cast(Workload, workload), timeout=5
    )
    assert found is as_container(c)
    assert tasks == workload.snapshots
    assert slept == [1, 1]


def test_wait_for_target_times_out_while_the_api_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(100))
    slept: list[float] = []
    monkeypatch.setattr(
        faults, "time", SimpleNamespace(monotonic=lambda: next(clock), sleep=slept.append)
    )
    workload = FakeWorkload([], api_errors=1000)
    found, tasks = faults.wait_for_target(
        picking(None), as_stack(FakeStack()), cast(Workload, workload), 3
    )
    assert (found, tasks) == (None, [])  # no task was ever seen
    assert slept == [1, 1]  # deadline 0 + 3; polls at ticks 1 and 2, none at 3


def test_wait_for_target_times_out_when_nothing_is_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(100))
    slept: list[float] = []
    monkeypatch.setattr(
        faults, "time", SimpleNamespace(monotonic=lambda: next(clock), sleep=slept.append)
    )
    workload = FakeWorkload([snapshot("short")])
    found, tasks = faults.wait_for_target(
        picking(None), as_stack(FakeStack()), cast(Workload, workload), 3
    )
    assert (found, tasks) == (None, workload.snapshots)
    assert slept == [0.5, 0.5]
