"""chaos/faults.py, chaos/runner.py and chaos/probe.py without Docker.

Targets are picked from a fake Stack whose containers are plain objects with the
few attributes the code reads (it is duck-typed at runtime); the API probe runs
against a tiny fake Airflow API on 127.0.0.1.
"""

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any, cast

import pytest
from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import JSON, AirflowApiError, AirflowClient, Credentials
from airflow_ha.chaos import faults, probe, runner
from airflow_ha.chaos.faults import FAULTS, Fault, TargetBefore
from airflow_ha.chaos.runner import FaultResult
from airflow_ha.chaos.workload import DAG_ID, TaskSnapshot, Workload
from airflow_ha.commands.chaos import DEFAULT_FAULTS
from airflow_ha.errors import ClusterError, TimeoutExpiredError
from airflow_ha.paths import COMPOSE_FILE
from airflow_ha.stack import SERVICE_LABEL, Stack

FAULT_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return FAULT_AT + timedelta(seconds=seconds)


# --- fakes ----------------------------------------------------------------------------------


@dataclass
class FakeConfig:
    labels: dict[str, str] | None
    hostname: str | None


@dataclass
class FakeHealth:
    status: str | None


@dataclass
class FakeState:
    status: str = "running"
    started_at: datetime | None = None
    health: FakeHealth | None = None


@dataclass
class FakeNetworkSettings:
    networks: dict[str, object] | None


@dataclass
class FakeContainer:
    id: str
    name: str
    config: FakeConfig
    state: FakeState = field(default_factory=FakeState)
    restart_count: int | None = 0
    network_settings: FakeNetworkSettings = field(
        default_factory=lambda: FakeNetworkSettings({"airflow-ha_default": object()})
    )
    executed: list[list[str]] = field(default_factory=list)
    exec_error: Exception | None = None
    restarts: int = 0

    def execute(self, command: list[str]) -> str:
        self.executed.append(command)
        if self.exec_error is not None:
            raise self.exec_error
        return ""

    def restart(self) -> None:
        self.restarts += 1


def container(
    service: str,
    hostname: str,
    status: str = "running",
    labels: dict[str, str] | None = None,
    restart_count: int | None = 0,
) -> FakeContainer:
    return FakeContainer(
        id=f"id-{service}-{hostname}",
        name=f"airflow-ha-{service}-{hostname}",
        config=FakeConfig(
            labels={SERVICE_LABEL: service} if labels is None else labels, hostname=hostname
        ),
        state=FakeState(status=status),
        restart_count=restart_count,
    )


@dataclass
class FakeCompose:
    containers: list[FakeContainer]
    asked: list[list[str]] = field(default_factory=list)

    def ps(self, services: list[str] | None = None, all: bool = False) -> list[FakeContainer]:
        # Everything, whatever was asked: the code must filter by label and state itself.
        self.asked.append(list(services or []))
        return list(self.containers)


@dataclass
class FakeNetwork:
    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def disconnect(self, network: str, target: FakeContainer) -> None:
        self.calls.append(("disconnect", network, target.name))

    def connect(self, network: str, target: FakeContainer) -> None:
        self.calls.append(("connect", network, target.name))


@dataclass
class FakeContainerCli:
    containers: list[FakeContainer]

    def inspect(self, container_id: str) -> FakeContainer:
        return next(c for c in self.containers if c.id == container_id)


class FakeDocker:
    def __init__(self, containers: list[FakeContainer]) -> None:
        self.compose = FakeCompose(containers)
        self.network = FakeNetwork()
        self.container = FakeContainerCli(containers)


class FakeStack:
    def __init__(self, *containers: FakeContainer) -> None:
        self.docker = FakeDocker(list(containers))
        self.waited: list[float] = []

    def wait_healthy(self, timeout: float, progress: object) -> list[object]:
        self.waited.append(timeout)
        return []


def as_stack(stack: FakeStack) -> Stack:
    return cast(Stack, stack)


def as_container(c: FakeContainer) -> Container:
    return cast(Container, c)


def snapshot(
    task_id: str,
    state: str = "running",
    hostname: str = "",
    triggerer_host: str = "",
    try_number: int = 1,
    start: datetime | None = None,
    run_id: str = "run-1",
    map_index: int = -1,
    job: int | None = None,
) -> TaskSnapshot:
    return TaskSnapshot(
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        state=state,
        try_number=try_number,
        start=start,
        hostname=hostname,
        triggerer_host=triggerer_host,
        triggerer_job_id=job,
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


# --- TargetBefore and the came_back predicates ----------------------------------------------


def test_target_before_copies_the_container_as_it_was() -> None:
    c = container("worker", "w1", restart_count=2)
    before = TargetBefore.of(as_container(c))
    c.restart_count = 3
    c.config.hostname = "changed"
    assert before == TargetBefore(
        id="id-worker-w1",
        name="airflow-ha-worker-w1",
        hostname="w1",
        restart_count=2,
        networks=("airflow-ha_default",),
    )


def test_target_before_of_a_container_without_hostname_or_restart_count() -> None:
    c = container("redis", "r1", restart_count=None)
    c.config.hostname = None
    before = TargetBefore.of(as_container(c))
    assert (before.hostname, before.restart_count) == ("", 0)


BEFORE = TargetBefore(id="abc", name="airflow-ha-scheduler-1", hostname="abc", restart_count=1)


@pytest.mark.parametrize(("restart_count", "expected"), [(None, False), (1, False), (2, True)])
def test_restarted_by_policy(restart_count: int | None, expected: bool) -> None:
    now = container("scheduler", "abc", restart_count=restart_count)
    assert faults.restarted_by_policy(BEFORE, as_container(now), FAULT_AT) is expected


@pytest.mark.parametrize(
    ("started_at", "expected"),
    [(None, False), (at(-0.001), False), (at(-600), False), (at(0), True), (at(3), True)],
)
def test_started_since(started_at: datetime | None, expected: bool) -> None:
    now = container("mysql", "abc")
    now.state.started_at = started_at
    assert faults.started_since(BEFORE, as_container(now), FAULT_AT) is expected


def test_reconnected_needs_the_same_container_on_every_network_it_had() -> None:
    before = TargetBefore("abc", "airflow-ha-worker-1", "abc", 0, ("back", "front"))
    same = container("worker", "abc")
    same.id = "abc"
    same.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    assert faults.reconnected(before, as_container(same), FAULT_AT)

    same.network_settings = FakeNetworkSettings({"front": object()})  # still cut off one
    assert not faults.reconnected(before, as_container(same), FAULT_AT)
    same.network_settings = FakeNetworkSettings(None)  # cut off all
    assert not faults.reconnected(before, as_container(same), FAULT_AT)

    replaced = container("worker", "abc")
    replaced.id = "def"
    replaced.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    assert not faults.reconnected(before, as_container(replaced), FAULT_AT)


# --- injections -----------------------------------------------------------------------------


def test_kill_main_process_sigkills_the_child_of_init() -> None:
    c = container("scheduler", "s1")
    faults.kill_main_process(as_stack(FakeStack(c)), as_container(c))
    assert c.executed == [["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"]]


def test_kill_main_process_ignores_the_exec_dying_with_its_container() -> None:
    c = container("scheduler", "s1")
    c.exec_error = DockerException(["docker", "exec"], 137, b"", b"")
    faults.kill_main_process(as_stack(FakeStack(c)), as_container(c))
    assert len(c.executed) == 1


def test_restart_restarts_the_container() -> None:
    c = container("redis", "r1")
    faults.restart(as_stack(FakeStack(c)), as_container(c))
    assert c.restarts == 1


def test_partition_disconnects_every_network_then_reconnects_it() -> None:
    c = container("worker", "w1")
    c.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    stack = FakeStack(c)
    faults.partition_for(0)(as_stack(stack), as_container(c))
    assert stack.docker.network.calls == [
        ("disconnect", "front", c.name),
        ("disconnect", "back", c.name),
        ("connect", "front", c.name),
        ("connect", "back", c.name),
    ]


# --- the FAULTS registry --------------------------------------------------------------------


def compose_services() -> set[str]:
    """The service names of compose/docker-compose.yaml (two-space keys under services:)."""
    text = COMPOSE_FILE.read_text()
    section = text.split("\nservices:\n", 1)[1]
    section = re.split(r"\n(?=\S)", section, maxsplit=1)[0]  # up to the next top-level key
    return set(re.findall(r"^  ([a-z][a-z0-9-]*):\s*$", section, flags=re.MULTILINE))


def test_compose_services_are_read() -> None:
    services = compose_services()
    assert {"scheduler", "api-server", "worker", "triggerer", "mysql", "redis"} <= services
    assert "mysql-data" not in services  # a volume, not a service


def test_every_fault_is_registered_under_its_own_name() -> None:
    assert all(name == fault.name for name, fault in FAULTS.items())
    assert list(FAULTS) == [
        "scheduler-kill",
        "api-server-kill",
        "worker-kill",
        "triggerer-kill",
        "redis-restart",
        "mysql-restart",
        "worker-partition",
    ]
    descriptions = [f.description for f in FAULTS.values()]
    assert len(set(descriptions)) == len(descriptions)


def test_every_fault_hits_a_compose_service() -> None:
    services = compose_services()
    for fault in FAULTS.values():
        assert fault.service in services, fault.name
        assert fault.name.startswith(fault.service + "-"), fault.name


def test_kills_are_judged_by_the_restart_policy_and_restarts_by_the_start_time() -> None:
    for name, fault in FAULTS.items():
        if name.endswith("-kill"):
            assert fault.inject is faults.kill_main_process, name
            assert fault.came_back is faults.restarted_by_policy, name
        elif name.endswith("-restart"):
            assert fault.inject is faults.restart, name
            assert fault.came_back is faults.started_since, name
    partition = FAULTS["worker-partition"]
    assert partition.came_back is faults.reconnected
    assert partition.pick is faults.worker_running_long_task
    assert FAULTS["worker-kill"].pick is faults.worker_running_long_task
    assert FAULTS["triggerer-kill"].pick is faults.triggerer_holding_deferred_task


def test_the_default_faults_are_all_but_the_partition() -> None:
    assert "worker-partition" not in DEFAULT_FAULTS
    assert DEFAULT_FAULTS == [
        "scheduler-kill",
        "api-server-kill",
        "worker-kill",
        "triggerer-kill",
        "redis-restart",
        "mysql-restart",
    ]
    assert len(DEFAULT_FAULTS) == len(set(DEFAULT_FAULTS)) == len(FAULTS) - 1


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


def test_wait_for_target_fails_when_the_workload_ends_first() -> None:
    workload = FakeWorkload([], done=True)
    with pytest.raises(ClusterError, match=r"^test-fault: the workload ended before a target"):
        faults.wait_for_target(picking(None), as_stack(FakeStack()), cast(Workload, workload), 5)


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
    with pytest.raises(TimeoutExpiredError, match=r"no target found within 3 s$"):
        faults.wait_for_target(picking(None), as_stack(FakeStack()), cast(Workload, workload), 3)
    assert slept == [1, 1]  # deadline 0 + 3; polls at ticks 1 and 2, none at 3


def test_wait_for_target_times_out() -> None:
    workload = FakeWorkload([])
    with pytest.raises(TimeoutExpiredError, match=r"^test-fault: no target found within 0 s$"):
        faults.wait_for_target(picking(None), as_stack(FakeStack()), cast(Workload, workload), 0)


# --- runner: _victim, _follow_victim, _container_back ---------------------------------------


def target(hostname: str) -> TargetBefore:
    return TargetBefore(id=hostname, name=f"c-{hostname}", hostname=hostname, restart_count=0)


def test_victim_of_a_worker_fault_is_the_long_task_on_that_worker() -> None:
    mine = snapshot("long", hostname="w2", run_id="run-2")
    tasks = [
        snapshot("short", hostname="w2"),
        snapshot("long", hostname="w1"),
        snapshot("deferred", state="deferred", hostname="w2", triggerer_host="w2"),
        mine,
    ]
    assert runner._victim(FAULTS["worker-kill"], target("w2"), tasks) is mine
    assert runner._victim(FAULTS["worker-partition"], target("w2"), tasks) is mine
    assert runner._victim(FAULTS["worker-kill"], target("w9"), tasks) is None


def test_victim_of_a_triggerer_fault_is_the_deferred_task_it_holds() -> None:
    mine = snapshot("deferred", state="deferred", hostname="w1", triggerer_host="t2")
    tasks = [
        snapshot("long", hostname="t2"),
        snapshot("deferred", state="deferred", triggerer_host="t1"),
        mine,
    ]
    assert runner._victim(FAULTS["triggerer-kill"], target("t2"), tasks) is mine
    # Matched on the triggerer, not on the TI hostname (the worker that deferred it).
    assert runner._victim(FAULTS["triggerer-kill"], target("w1"), tasks) is None


@pytest.mark.parametrize("name", ["scheduler-kill", "api-server-kill", "redis-restart"])
def test_other_faults_have_no_victim(name: str) -> None:
    tasks = [
        snapshot("long", hostname="h"),
        snapshot("deferred", state="deferred", triggerer_host="h"),
    ]
    assert runner._victim(FAULTS[name], target("h"), tasks) is None


LONG_VICTIM = snapshot("long", hostname="w1", try_number=1, start=at(-20), run_id="run-2")


def follow(tasks: list[TaskSnapshot], details: dict[str, float | int | str]) -> None:
    runner._follow_victim(LONG_VICTIM, tasks, FAULT_AT, details, observed_at=at(30))


def test_follow_victim_records_a_retry_after_the_fault() -> None:
    details: dict[str, float | int | str] = {}
    other_run = snapshot("long", try_number=5, start=at(1), hostname="x", run_id="run-1")
    retried = snapshot(
        "long", "running", hostname="w2", try_number=2, start=at(27.44), run_id="run-2"
    )
    follow([other_run, retried], details)
    assert details == {
        "victim_final_state": "running",
        "victim_tries": 2,
        "loss_detected_s": 30.0,
        "retry_started_s": 27.4,
        "retry_host": "w2",
    }


@pytest.mark.parametrize(
    "current",
    [
        # Still the first try, whatever its start.
        snapshot("long", hostname="w1", try_number=1, start=at(-20), run_id="run-2"),
        snapshot("long", hostname="w1", try_number=1, start=at(5), run_id="run-2"),
        # A new try that has not started yet, or whose start is not after the fault.
        snapshot("long", "up_for_retry", try_number=2, start=None, run_id="run-2"),
        snapshot("long", "queued", hostname="w1", try_number=2, start=at(-20), run_id="run-2"),
        snapshot("long", "queued", hostname="w1", try_number=2, start=at(0), run_id="run-2"),
    ],
)
def test_follow_victim_needs_a_new_try_started_after_the_fault(current: TaskSnapshot) -> None:
    details: dict[str, float | int | str] = {}
    follow([current], details)
    assert "retry_started_s" not in details
    assert "retry_host" not in details
    assert details["victim_final_state"] == current.state
    assert details["victim_tries"] == current.try_number


def test_follow_victim_keeps_the_first_retry_but_the_latest_state() -> None:
    details: dict[str, float | int | str] = {}
    follow(
        [snapshot("long", "running", hostname="w2", try_number=2, start=at(25), run_id="run-2")],
        details,
    )
    follow(
        [snapshot("long", "running", hostname="w3", try_number=3, start=at(60), run_id="run-2")],
        details,
    )
    follow(
        [snapshot("long", "success", hostname="w3", try_number=3, start=at(60), run_id="run-2")],
        details,
    )
    assert details == {
        "victim_final_state": "success",
        "victim_tries": 3,
        "loss_detected_s": 30.0,
        "retry_started_s": 25.0,
        "retry_host": "w2",
    }


def test_follow_victim_matches_run_task_and_map_index() -> None:
    details: dict[str, float | int | str] = {}
    follow(
        [
            snapshot("long", try_number=2, start=at(5), run_id="run-1"),
            snapshot("long", try_number=2, start=at(5), run_id="run-2", map_index=0),
            snapshot("short", try_number=2, start=at(5), run_id="run-2"),
        ],
        details,
    )
    assert details == {}


DEFERRED_VICTIM = snapshot("deferred", "deferred", hostname="w1", triggerer_host="t1", job=7)


def deferred(state: str = "deferred", host: str = "", job: int | None = None) -> TaskSnapshot:
    """The deferred victim as a later poll sees it."""
    return snapshot("deferred", state, hostname="w1", triggerer_host=host, job=job)


def test_follow_victim_records_when_another_triggerer_job_took_the_trigger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [at(3)]
    monkeypatch.setattr(runner, "now", lambda: clock[0])
    details: dict[str, float | int | str] = {}

    runner._follow_victim(DEFERRED_VICTIM, [deferred(host="t1", job=7)], FAULT_AT, details)
    # The dead triggerer's trigger is released before another job takes it.
    clock[0] = at(9)
    runner._follow_victim(DEFERRED_VICTIM, [deferred(host="", job=None)], FAULT_AT, details)
    assert "trigger_moved_s" not in details

    clock[0] = at(16.04)
    runner._follow_victim(DEFERRED_VICTIM, [deferred(host="t2", job=8)], FAULT_AT, details)
    clock[0] = at(40)
    runner._follow_victim(DEFERRED_VICTIM, [deferred("success", "t3", 9)], FAULT_AT, details)

    assert details == {
        "victim_final_state": "success",
        "victim_tries": 1,
        "trigger_moved_s": 16.0,
        "new_triggerer": "t2",
    }


def test_follow_victim_counts_the_restarted_triggerer_as_a_new_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Restarted by its policy, the container keeps its hostname but runs a new job.
    monkeypatch.setattr(runner, "now", lambda: at(21))
    details: dict[str, float | int | str] = {}
    runner._follow_victim(DEFERRED_VICTIM, [deferred(host="t1", job=12)], FAULT_AT, details)
    assert details["trigger_moved_s"] == 21.0
    assert details["new_triggerer"] == "t1"


def test_follow_victim_ignores_the_same_job_still_deferred(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "now", lambda: at(5))
    details: dict[str, float | int | str] = {}
    # Even with another hostname reported, the same job has not moved the trigger.
    for current in (deferred(host="t1", job=7), deferred(host="t2", job=7), deferred()):
        runner._follow_victim(DEFERRED_VICTIM, [current], FAULT_AT, details)
    assert details == {"victim_final_state": "deferred", "victim_tries": 1}


def test_follow_victim_counts_a_resumed_task_as_moved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "now", lambda: at(12))
    details: dict[str, float | int | str] = {}
    runner._follow_victim(DEFERRED_VICTIM, [deferred("running")], FAULT_AT, details)
    assert details["trigger_moved_s"] == 12.0
    assert details["new_triggerer"] == "-"
    assert "retry_started_s" not in details


def test_follow_victim_without_the_victim_changes_nothing() -> None:
    details: dict[str, float | int | str] = {"victim_tries": 1}
    follow([], details)
    assert details == {"victim_tries": 1}


def back_check(c: FakeContainer, fault: Fault) -> bool:
    before = TargetBefore(id=c.id, name=c.name, hostname="h", restart_count=0)
    return runner._container_back(as_stack(FakeStack(c)), fault, before, FAULT_AT)


@pytest.mark.parametrize(
    ("status", "health", "restart_count", "expected"),
    [
        ("running", "healthy", 1, True),
        ("running", None, 1, True),  # no health check: running is enough
        ("running", "starting", 1, False),
        ("running", "unhealthy", 1, False),
        ("restarting", "healthy", 1, False),
        ("exited", None, 1, False),
        ("running", "healthy", 0, False),  # healthy, but never restarted: not back yet
    ],
)
def test_container_back(
    status: str, health: str | None, restart_count: int, expected: bool
) -> None:
    c = container("scheduler", "h", status=status, restart_count=restart_count)
    c.state.health = FakeHealth(health) if health is not None else None
    assert back_check(c, FAULTS["scheduler-kill"]) is expected


# --- runner: run_fault end to end on fakes --------------------------------------------------


class ScriptedClient:
    """The AirflowClient calls of Workload, scripted before and after the fault."""

    def __init__(self) -> None:
        self.t0 = datetime.now(UTC)
        self.injected_at: datetime | None = None
        self.triggered: list[str] = []
        self.unavailable_polls = 0  # after the fault, fail this many polls (MySQL down)
        self.final_states: dict[str, str] = {}  # run id -> its state after the fault

    def dag(self, dag_id: str) -> JSON | None:
        return {"dag_id": dag_id}

    def set_paused(self, dag_id: str, paused: bool) -> None:
        assert (dag_id, paused) == (DAG_ID, False)

    def trigger(self, dag_id: str, conf: JSON | None = None) -> JSON:
        self.triggered.append(f"run-{len(self.triggered) + 1}")
        return {"dag_run_id": self.triggered[-1]}

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        if self.injected_at is None:
            return {"state": "running"}
        return {"state": self.final_states.get(run_id, "success")}

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        def ti(task_id: str, start: datetime, map_index: int = -1, **more: Any) -> JSON:
            return {
                "dag_run_id": run_id,
                "task_id": task_id,
                "map_index": map_index,
                "start_date": start.isoformat(),
                "state": "running",
                "try_number": 1,
                "hostname": "w1",
                **more,
            }

        if self.injected_at is not None and self.unavailable_polls > 0:
            self.unavailable_polls -= 1
            raise AirflowApiError("GET taskInstances failed with HTTP 503: no database")
        if run_id != "run-1":
            return []
        t0, fault = self.t0, self.injected_at
        if fault is None:
            return [
                ti("short", t0 - timedelta(seconds=1), 0),
                ti("short", t0 - timedelta(seconds=0.5), 1),
                ti("long", t0 - timedelta(seconds=10)),
            ]
        return [
            ti("short", t0 - timedelta(seconds=1), 0, state="success"),
            ti("short", t0 - timedelta(seconds=0.5), 1, state="success"),
            ti("short", fault + timedelta(seconds=1), 2, state="success"),
            ti("short", fault + timedelta(seconds=4), 3, state="success"),
            ti("long", fault + timedelta(seconds=2), state="success", try_number=2, hostname="w2"),
        ]


def run_worker_kill(
    client: ScriptedClient, timeout: float = 30
) -> tuple[FaultResult, list[str], FakeStack]:
    w1, w2 = container("worker", "w1"), container("worker", "w2")
    stack = FakeStack(w2, w1)
    clock_readings: list[datetime] = []

    def runner_now() -> datetime:
        clock_readings.append(datetime.now(UTC))
        return clock_readings[-1]

    def inject(stack: Stack, target: Container) -> None:
        # The scripted task times count from the runner's fault time (its first
        # clock reading), not from when this thread happens to run: on a busy
        # machine that can be much later, and the figures must not depend on it.
        client.injected_at = clock_readings[0]
        cast(FakeContainer, target).restart_count = 1
        cast(FakeContainer, target).state.health = FakeHealth("healthy")

    fault = Fault(
        "worker-kill",
        "kill it",
        "worker",
        faults.worker_running_long_task,
        inject,
        faults.restarted_by_policy,
    )
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "now", runner_now)
        result = runner.run_fault(
            fault, as_stack(stack), cast(AirflowClient, client), 2, timeout, log=lines.append
        )
    return result, lines, stack


def test_run_fault_measures_a_worker_kill_on_fakes() -> None:
    client = ScriptedClient()
    result, lines, stack = run_worker_kill(client)
    w1 = stack.docker.container.inspect("id-worker-w1")

    assert stack.waited == [300]
    assert client.triggered == ["run-1", "run-2"]
    assert result.target == w1.name
    assert (result.runs, result.succeeded, result.failed, result.stuck) == (2, 2, 0, 0)
    assert result.retries == 1
    assert result.ok
    assert result.container_back_s is not None
    # Real seconds, on a machine that may be busy: within the run's 30 s timeout.
    assert 0 <= result.container_back_s < 30
    assert result.next_task_start_s == 1.0
    assert result.max_start_gap_s == 3.0
    loss_detected_s = result.details.pop("loss_detected_s")
    assert isinstance(loss_detected_s, float)
    assert 0 <= loss_detected_s < 30
    assert result.details == {
        "victim_final_state": "success",
        "victim_tries": 2,
        "retry_started_s": 2.0,
        "retry_host": "w2",
    }
    assert any(f"kill it: {w1.name}" in line for line in lines)
    assert lines[-1] == "worker-kill: 2/2 runs succeeded, 1 retries"


@pytest.mark.parametrize(
    ("final_state", "failed", "stuck"), [("failed", 1, 0), ("running", 0, 1), ("queued", 0, 1)]
)
def test_a_run_that_did_not_succeed_is_counted_and_not_ok(
    final_state: str, failed: int, stuck: int
) -> None:
    client = ScriptedClient()
    client.final_states = {"run-2": final_state}

    # A run that never ends keeps the runner waiting to its timeout: keep it short.
    result, lines, _ = run_worker_kill(client, timeout=4)

    assert (result.runs, result.succeeded, result.failed, result.stuck) == (2, 1, failed, stuck)
    assert not result.nothing_lost
    assert not result.ok
    assert lines[-1].startswith("worker-kill: 1/2 runs succeeded")


def test_run_fault_waits_out_an_unavailable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        runner, "time", SimpleNamespace(monotonic=time.monotonic, sleep=slept.append)
    )
    client = ScriptedClient()
    client.unavailable_polls = 3

    result, lines, _ = run_worker_kill(client)

    assert result.details["api_unavailable_polls"] == 3
    assert isinstance(result.details["api_back_s"], float)  # first answer after the outage
    assert slept == [1, 1, 1]  # one pause per failed poll, none once all is back
    not_answering = [line for line in lines if "API not answering" in line]
    assert len(not_answering) == 1  # said once per outage, not once per poll
    assert "HTTP 503" in not_answering[0]
    # The measurement goes on once the API answers again.
    assert result.ok
    assert result.details["retry_started_s"] == 2.0
    assert result.retries == 1


def test_run_all_runs_each_fault_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_run_fault(fault: Fault, *args: object) -> FaultResult:
        seen.append(fault.name)
        return FaultResult(fault.name, "", "", 1, 1, 0, 0, 0, 1.0, None, None)

    monkeypatch.setattr(runner, "run_fault", fake_run_fault)
    chosen = [FAULTS["redis-restart"], FAULTS["scheduler-kill"]]
    results = runner.run_all(chosen, as_stack(FakeStack()), cast(AirflowClient, None), 1, 1, print)
    assert seen == []  # a generator: nothing runs before the first result is asked for
    assert [r.fault for r in results] == ["redis-restart", "scheduler-kill"]
    assert seen == ["redis-restart", "scheduler-kill"]


# --- probe: ApiProbe against a fake API on 127.0.0.1 ----------------------------------------

OK_GETS = 3  # the API answers this many GETs, then only errors
FAILURES_WANTED = 8


class ProbeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ProbeHandler)
        self.lock = threading.Lock()
        self.logins = 0
        self.gets = 0
        self.authorizations: set[str | None] = set()
        self.failing = threading.Event()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class ProbeHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    @property
    def fake(self) -> ProbeServer:
        return cast(ProbeServer, self.server)

    def _reply(self, status: int, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/auth/token":
            self._reply(404, b"{}", "application/json")
            return
        with self.fake.lock:
            self.fake.logins += 1
        self._reply(201, json.dumps({"access_token": "tok"}).encode(), "application/json")

    def do_GET(self) -> None:
        if not self.path.startswith("/api/v2/dags?"):
            self._reply(404, b"{}", "application/json")
            return
        with self.fake.lock:
            self.fake.gets += 1
            n = self.fake.gets
            self.fake.authorizations.add(self.headers.get("Authorization"))
        if n <= OK_GETS:
            self._reply(200, b'{"dags": [], "total_entries": 0}', "application/json")
            return
        if n - OK_GETS >= FAILURES_WANTED:
            self.fake.failing.set()
        self._reply(500, f"boom {n}".encode(), "text/plain")


@pytest.fixture
def probe_server() -> Iterator[ProbeServer]:
    server = ProbeServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_probe_counts_requests_and_failures(
    monkeypatch: pytest.MonkeyPatch, probe_server: ProbeServer
) -> None:
    monkeypatch.setattr(probe, "POLL_INTERVAL_S", 0.005)
    client = AirflowClient(probe_server.url, Credentials("admin", "pw"), timeout=5)
    api_probe = probe.ApiProbe(client)

    with api_probe as entered:
        assert entered is api_probe
        assert probe_server.logins == 1  # logged in before the thread starts
        assert probe_server.failing.wait(timeout=5), "the probe stopped sending requests"
    assert not api_probe._thread.is_alive()

    result = api_probe.result
    served = probe_server.gets
    # Every GET after the first one (sent by __enter__ to log in) is counted, none lost.
    assert result.requests == served - 1
    assert result.failed == served - OK_GETS
    assert result.failed >= FAILURES_WANTED
    assert result.requests - result.failed == OK_GETS - 1
    # Only the first five errors are kept, in order.
    assert len(result.errors) == 5
    for i, error in enumerate(result.errors):
        assert error == f"GET /api/v2/dags failed with HTTP 500: boom {OK_GETS + 1 + i}"
    assert probe_server.logins == 1
    assert probe_server.authorizations == {"Bearer tok"}


def test_probe_result_is_empty_before_it_runs() -> None:
    api_probe = probe.ApiProbe(AirflowClient("http://127.0.0.1:9", Credentials("a", "b")))
    assert (api_probe.result.requests, api_probe.result.failed, api_probe.result.errors) == (
        0,
        0,
        [],
    )
    assert not api_probe._thread.is_alive()
