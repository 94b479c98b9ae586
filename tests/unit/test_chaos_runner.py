"""chaos/runner.py on fakes: following the victim task, judging the comeback, and
whole faults run end to end against a scripted API and fake Docker
(chaos_fakes.py), including the verdicts that must fail."""

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import JSON, AirflowApiError, AirflowClient
from airflow_ha.chaos import faults, runner
from airflow_ha.chaos.evidence import ContainerMark, Restart
from airflow_ha.chaos.faults import FAULTS, Fault, TargetBefore
from airflow_ha.chaos.runner import FaultResult
from airflow_ha.chaos.workload import DAG_ID, TaskSnapshot

from .chaos_fakes import (
    FAULT_AT,
    FakeContainer,
    FakeHealth,
    FakeNetworkSettings,
    FakeStack,
    as_container,
    as_stack,
    at,
    container,
    mark_of,
    snapshot,
)

Details = dict[str, float | int | str]


def target(hostname: str) -> TargetBefore:
    return TargetBefore.of(as_container(container("x", hostname)))


# --- _victim --------------------------------------------------------------------------------


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


@pytest.mark.parametrize("name", ["scheduler-kill", "api-server-kill", "redis-outage"])
def test_other_faults_have_no_victim(name: str) -> None:
    tasks = [
        snapshot("long", hostname="h"),
        snapshot("deferred", state="deferred", triggerer_host="h"),
    ]
    assert runner._victim(FAULTS[name], target("h"), tasks) is None


# --- _follow_victim -------------------------------------------------------------------------

LONG_VICTIM = snapshot("long", hostname="w1", try_number=1, start=at(-20), run_id="run-2")


def follow(
    tasks: list[TaskSnapshot],
    moments: dict[str, datetime],
    details: Details,
    seen: datetime = FAULT_AT + timedelta(seconds=30),
    victim: TaskSnapshot = LONG_VICTIM,
) -> None:
    runner._follow_victim(victim, tasks, seen, moments, details)


def test_follow_victim_records_when_the_killed_try_failed_and_the_retry_started() -> None:
    moments: dict[str, datetime] = {}
    details: Details = {}
    other_run = snapshot("long", try_number=5, start=at(1), hostname="x", run_id="run-1")
    failed = snapshot("long", "up_for_retry", hostname="w1", try_number=1, run_id="run-2")
    follow([other_run, failed], moments, details, seen=at(17))
    retried = snapshot("long", hostname="w2", try_number=2, start=at(27.44), run_id="run-2")
    follow([other_run, retried], moments, details, seen=at(30))

    assert moments == {"loss_detected": at(17), "retry_started": at(27.44)}
    assert details == {"victim_final_state": "running", "victim_tries": 2, "retry_host": "w2"}


@pytest.mark.parametrize(
    "current",
    [
        # Still the first try, whatever its start.
        snapshot("long", hostname="w1", try_number=1, start=at(-20), run_id="run-2"),
        snapshot("long", hostname="w1", try_number=1, start=at(5), run_id="run-2"),
        # A new try that has not started yet, or whose start is not after the first one's.
        snapshot("long", "queued", try_number=2, start=None, run_id="run-2"),
        snapshot("long", "queued", hostname="w1", try_number=2, start=at(-20), run_id="run-2"),
    ],
)
def test_follow_victim_needs_a_new_try_that_started(current: TaskSnapshot) -> None:
    moments: dict[str, datetime] = {}
    details: Details = {}
    follow([current], moments, details)
    assert "retry_started" not in moments
    assert "retry_host" not in details
    assert details["victim_final_state"] == current.state
    assert details["victim_tries"] == current.try_number


def test_the_killed_try_still_running_is_no_loss_yet() -> None:
    moments: dict[str, datetime] = {}
    details: Details = {}
    follow([replace(LONG_VICTIM, start=at(-20))], moments, details)
    assert moments == {}


@pytest.mark.parametrize("state", ["failed", "up_for_retry"])
def test_the_killed_try_failed_is_the_loss_detected(state: str) -> None:
    # No retry left (failed) or one to come (up_for_retry): Airflow saw the loss.
    moments: dict[str, datetime] = {}
    details: Details = {}
    follow([replace(LONG_VICTIM, state=state)], moments, details, seen=at(31))
    assert moments == {"loss_detected": at(31)}
    assert details == {"victim_final_state": state, "victim_tries": 1}


def test_follow_victim_keeps_the_first_retry_but_the_latest_state() -> None:
    moments: dict[str, datetime] = {}
    details: Details = {}
    for tries, host, start, state in ((2, "w2", 25, "running"), (3, "w3", 60, "success")):
        current = snapshot("long", state, hostname=host, try_number=tries, start=at(start))
        follow([replace_run(current)], moments, details, seen=at(start + 1))
    assert moments == {"loss_detected": at(26), "retry_started": at(25)}
    assert details == {"victim_final_state": "success", "victim_tries": 3, "retry_host": "w2"}


def replace_run(task: TaskSnapshot, run_id: str = "run-2") -> TaskSnapshot:
    return TaskSnapshot(**{**task.__dict__, "run_id": run_id})


def test_follow_victim_matches_run_task_and_map_index() -> None:
    moments: dict[str, datetime] = {}
    details: Details = {}
    follow(
        [
            snapshot("long", try_number=2, start=at(5), run_id="run-1"),
            snapshot("long", try_number=2, start=at(5), run_id="run-2", map_index=0),
            snapshot("short", try_number=2, start=at(5), run_id="run-2"),
        ],
        moments,
        details,
    )
    assert (moments, details) == ({}, {})


DEFERRED_VICTIM = snapshot("deferred", "deferred", hostname="w1", triggerer_host="t1", job=7)


def deferred(state: str = "deferred", host: str = "", job: int | None = None) -> TaskSnapshot:
    """The deferred victim as a later poll sees it."""
    return snapshot("deferred", state, hostname="w1", triggerer_host=host, job=job)


def follow_deferred(polls: list[tuple[float, TaskSnapshot]]) -> tuple[dict[str, datetime], Details]:
    moments: dict[str, datetime] = {}
    details: Details = {}
    for seconds, current in polls:
        follow([current], moments, details, seen=at(seconds), victim=DEFERRED_VICTIM)
    return moments, details


def test_a_trigger_taken_by_another_triggerer_names_it() -> None:
    moments, details = follow_deferred(
        [
            (3, deferred(host="t1", job=7)),
            (9, deferred()),  # released by the dead triggerer, not yet taken
            (16, deferred(host="t2", job=8)),
            (40, deferred("success", "t3", 9)),
        ]
    )
    assert moments == {"trigger_taken": at(16), "deferred_resumed": at(40)}
    assert details == {
        "victim_final_state": "success",
        "victim_tries": 1,
        "trigger_taken_by": "t2",
    }


def test_a_trigger_taken_back_by_the_restarted_triggerer_says_so() -> None:
    # Restarted by its policy, the container keeps its hostname but runs a new job.
    moments, details = follow_deferred([(21, deferred(host="t1", job=12))])
    assert moments == {"trigger_taken": at(21)}
    assert details["trigger_taken_by"] == "the restarted triggerer"


def test_the_same_job_still_deferred_has_not_moved_the_trigger() -> None:
    moments, details = follow_deferred(
        [(1, deferred(host="t1", job=7)), (2, deferred(host="t2", job=7)), (3, deferred())]
    )
    assert moments == {}
    assert details == {"victim_final_state": "deferred", "victim_tries": 1}


def test_a_deferred_task_that_resumed_without_a_move_is_not_a_move() -> None:
    moments, details = follow_deferred([(12, deferred("running"))])
    assert moments == {"deferred_resumed": at(12)}
    assert "trigger_taken_by" not in details


# --- _container_back ------------------------------------------------------------------------


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
    c = container("scheduler", "h")
    before = TargetBefore.of(as_container(c))
    c.state.status = status
    c.restart_count = restart_count
    c.state.health = FakeHealth(health) if health is not None else None
    back = runner._container_back(as_stack(FakeStack(c)), FAULTS["scheduler-kill"], before)
    assert back is expected


# --- run_fault end to end on fakes ----------------------------------------------------------


@dataclass
class FakeObserver:
    stack: FakeStack
    deadlocks: int = 0
    deadlock_readings: int = 0
    log_text: str = ""
    logs_until: list[datetime | None] = field(default_factory=list)
    limit: float = 390.0
    # (seconds after the target's death, host of the scheduler that queued a task)
    decisions: list[tuple[float, str]] = field(default_factory=list)
    decisions_asked: list[list[str]] = field(default_factory=list)
    # The readings of the deadlock counter (1: before the fault, 2: after) that fail.
    counter_fails: tuple[int, ...] = ()
    counter_error: Exception = field(default_factory=lambda: LookupError("no running mysql"))

    def marks(self) -> dict[str, ContainerMark]:
        return {c.id: mark_of(c) for c in self.stack.docker.compose.containers}

    def logs(self, container: str, since: datetime, until: datetime | None) -> str:
        assert since <= datetime.now(UTC)
        self.logs_until.append(until)
        return f"last lines of {container}" + self.log_text

    def deadlock_count(self) -> int:
        # InnoDB's counter: `deadlocks` more at the end than at the start.
        self.deadlock_readings += 1
        if self.deadlock_readings in self.counter_fails:
            raise self.counter_error
        return 5 + (self.deadlocks if self.deadlock_readings > 1 else 0)

    def stall_limit(self) -> float:
        return self.limit

    def queue_decisions(self, dag_id: str, run_ids: list[str]) -> list[tuple[datetime, str]]:
        assert dag_id == DAG_ID
        self.decisions_asked.append(run_ids)
        death = self.stack.docker.container.inspect("id-worker-w1").dies_at
        assert death is not None
        return [(death + timedelta(seconds=s), host) for s, host in self.decisions]


class ScriptedClient:
    """The AirflowClient calls of Workload: the first poll of task instances
    (the target search) sees the long task running on w1; every later poll sees
    the workload after the fault, its times counted from DEATH."""

    def __init__(self, death: datetime) -> None:
        self.death = death
        self.polls = 0
        self.triggered: list[str] = []
        self.unavailable_polls = 0  # after the fault, fail this many polls (MySQL down)
        self.unavailable_error = "GET taskInstances failed with HTTP 503: no database"
        self.final_states: dict[str, str] = {}  # run id -> its state after the fault
        self.on_after: list[Any] = []  # callbacks run on the first poll after the fault
        self.interrupt_on_poll: int | None = None

    def dag(self, dag_id: str) -> JSON | None:
        return {"dag_id": dag_id}

    def set_paused(self, dag_id: str, paused: bool) -> None:
        assert (dag_id, paused) == (DAG_ID, False)

    def trigger(self, dag_id: str, conf: JSON | None = None) -> JSON:
        self.triggered.append(f"run-{len(self.triggered) + 1}")
        return {"dag_run_id": self.triggered[-1]}

    def after(self, seconds: float) -> str:
        return (self.death + timedelta(seconds=seconds)).isoformat()

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        if self.polls <= 1:
            return {"dag_run_id": run_id, "state": "running", "start_date": self.after(-20)}
        state = self.final_states.get(run_id, "success")
        end = self.after(50) if state in ("success", "failed") else None
        return {
            "dag_run_id": run_id,
            "state": state,
            "start_date": self.after(-20),
            "end_date": end,
        }

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        def ti(
            task_id: str, start: float, end: float | None, map_index: int = -1, **more: Any
        ) -> JSON:
            return {
                "dag_run_id": run_id,
                "task_id": task_id,
                "map_index": map_index,
                "start_date": self.after(start),
                "end_date": None if end is None else self.after(end),
                "state": "running",
                "try_number": 1,
                "hostname": "w1",
                **more,
            }

        if run_id == "run-1":
            self.polls += 1
            if self.polls == self.interrupt_on_poll:
                raise KeyboardInterrupt
            if self.polls == 2:
                for callback in self.on_after:
                    callback()
        if self.polls > 1 and self.unavailable_polls > 0:
            self.unavailable_polls -= 1
            raise AirflowApiError(self.unavailable_error)
        if run_id != "run-1":
            return []
        if self.polls <= 1:
            return [ti("short", -1, None, 0), ti("short", -0.5, None, 1), ti("long", -10, None)]
        return [
            ti("short", -1, 1, 0, state="success"),
            ti("short", -0.5, 1.5, 1, state="success"),
            ti("short", 1.26, 3, 2, state="success"),
            ti("short", 4, 6.04, 3, state="success"),
            ti("long", 2.04, 47, state="success", try_number=2, hostname="w2"),
        ]


@dataclass
class Run:
    result: FaultResult
    lines: list[str]
    stack: FakeStack
    target: FakeContainer
    observer: FakeObserver


def run_fault(
    fault: Fault | None = None,
    client: ScriptedClient | None = None,
    timeout: float = 30,
    dies: bool = True,
    target_present: bool = True,
    others: tuple[FakeContainer, ...] = (),
    **observed: Any,
) -> Run:
    """Runs a fault (worker-kill unless said) against fakes; the target w1 dies
    at DEATH, a real recent moment (the runner's own clock is real)."""
    death = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    client = client or ScriptedClient(death)
    client.death = death
    w1, w2 = container("worker", "w1"), container("worker", "w2")
    w1.dies_at = death if dies else None
    stack = FakeStack(w2, *others, *([w1] if target_present else []))
    observer = FakeObserver(stack, **observed)
    lines: list[str] = []
    result = runner.run_fault(
        fault or FAULTS["worker-kill"],
        as_stack(stack),
        cast(AirflowClient, client),
        2,
        timeout,
        log=lines.append,
        observer=observer,
    )
    return Run(result, lines, stack, w1, observer)


def test_a_worker_kill_is_measured_from_the_confirmed_death() -> None:
    run = run_fault()
    r = run.result

    assert run.stack.waited == [300]
    assert r.target == run.target.name
    assert r.injected_at == run.target.dies_at
    assert "Docker FinishedAt" in r.evidence
    assert (r.runs, r.succeeded, r.failed, r.stuck) == (2, 2, 0, 0)
    assert r.retries == 1
    assert r.run_seconds == [70.0, 70.0]
    assert r.container_back_s is not None
    assert 0 <= r.container_back_s < 60
    assert r.next_task_start_s == 1.3  # 1.26 s, to tenths
    # From the death: starts/ends at 1, 1.26, 1.5, 2.04, 3, 4, 6.04, then nothing
    # until the long task's retry ended at 47: 40.96 s, to tenths.
    assert r.longest_stall_s == 41.0
    assert r.stall_limit_s == 390.0
    assert r.deadlocks == 0
    assert r.restarts == []
    assert r.details["retry_started_s"] == 2.0  # 2.04 s, to tenths
    assert r.details["retry_host"] == "w2"
    assert (r.details["victim_final_state"], r.details["victim_tries"]) == ("success", 2)
    loss = r.details["loss_detected_s"]
    assert isinstance(loss, float)
    assert 0 <= loss < 60
    assert (r.verdict, r.ok) == ("ok", True)
    assert (r.fault, r.description) == ("worker-kill", FAULTS["worker-kill"].description)
    assert any(
        f"SIGKILL the worker running the long task: {run.target.name}" in line for line in run.lines
    )
    assert run.lines[-1] == "worker-kill: 2/2 runs succeeded, 1 retries"


def test_a_kill_that_docker_does_not_confirm_fails_as_not_injected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(faults, "DEATH_TIMEOUT_S", 0)
    run = run_fault(dies=False)
    r = run.result

    assert (r.injected, r.injected_at, r.verdict, r.ok) == (False, None, "not injected", False)
    assert r.evidence == "Docker shows no sign of it"
    # Nothing is timed from a failure that did not happen, though every run succeeded.
    assert (r.container_back_s, r.next_task_start_s, r.longest_stall_s) == (None, None, None)
    assert r.succeeded == r.runs == 2
    assert r.problems == ["not injected (Docker shows no sign of it)"]
    assert any("NOT injected" in line for line in run.lines)


def test_a_missing_target_fails_the_fault_without_touching_the_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "TARGET_TIMEOUT_S", 0)
    run = run_fault(target_present=False)
    r = run.result

    assert (r.target, r.injected, r.verdict) == ("-", False, "not injected")
    assert "no target found within 0 s" in r.evidence
    assert r.succeeded == r.runs == 2  # the workload was still watched to its end
    for c in run.stack.docker.compose.containers:
        assert (c.executed, c.restarts, c.starts) == ([], 0, 0)
    assert run.stack.docker.network.calls == []
    assert any("the cluster is left untouched" in line for line in run.lines)


@pytest.mark.parametrize(
    ("final_state", "failed", "stuck"), [("failed", 1, 0), ("running", 0, 1), ("queued", 0, 1)]
)
def test_a_run_that_did_not_succeed_is_counted_and_not_ok(
    final_state: str, failed: int, stuck: int
) -> None:
    client = ScriptedClient(FAULT_AT)
    client.final_states = {"run-2": final_state}

    # A run that never ends keeps the runner waiting to its timeout: keep it short.
    r = run_fault(client=client, timeout=4).result
    since_death = (datetime.now(UTC) - client.death).total_seconds()

    assert (r.runs, r.succeeded, r.failed, r.stuck) == (2, 1, failed, stuck)
    assert (r.nothing_lost, r.ok, r.verdict) == (False, False, "LOST/STUCK")
    assert f"{failed} failed, {stuck} stuck of 2 runs" in r.problems
    expected_seconds = [70.0, 70.0 if final_state == "failed" else None]
    assert r.run_seconds == expected_seconds
    assert r.longest_stall_s is not None
    if final_state == "failed":  # every run ended: the stall is judged up to the last end
        assert r.longest_stall_s == 41.0
    else:  # a run goes on: the stall runs from the last task end (6.04 s) to now
        assert 9 - 6.04 - 0.1 <= r.longest_stall_s <= since_death - 6.04 + 0.1


def test_a_run_that_stalled_beyond_the_limit_fails() -> None:
    r = run_fault(limit=40.0).result
    assert r.longest_stall_s == 41.0
    assert (r.stalled, r.ok, r.verdict) == (True, False, "STALLED")
    assert r.problems == ["stalled 41.0 s (limit 40 s)"]


def test_a_component_the_fault_did_not_target_that_restarted_fails_with_its_logs() -> None:
    scheduler = container("scheduler", "s1")
    client = ScriptedClient(FAULT_AT)
    client.on_after.append(lambda: setattr(scheduler, "restart_count", 1))

    r = run_fault(client=client, others=(scheduler,)).result

    assert r.restarts == [
        Restart(
            scheduler.name,
            "scheduler",
            "restarted 1 time by its restart policy",
            f"last lines of {scheduler.name}",
        )
    ]
    assert (r.ok, r.verdict) == (False, "CRASHED")
    assert r.problems == [f"{scheduler.name} restarted 1 time by its restart policy"]


def crash_during(client: ScriptedClient, c: FakeContainer) -> None:
    """`c` is restarted by its policy when the workload is first polled after the fault."""

    def crash() -> None:
        c.restart_count = 1
        c.state.started_at = at(7)

    client.on_after.append(crash)


LOST_DB = "sqlalchemy.exc.OperationalError: (2002, \"Can't connect to server on 'mysql' (115)\")"


def mysql_like_fault() -> Fault:
    """worker-kill's target and workload, with mysql-restart's designed exits."""
    return replace(FAULTS["worker-kill"], designed_exit=FAULTS["mysql-restart"].designed_exit)


def test_a_designed_exit_is_reported_apart_and_does_not_fail_the_fault() -> None:
    scheduler = container("scheduler", "s1")
    client = ScriptedClient(FAULT_AT)
    crash_during(client, scheduler)

    run = run_fault(fault=mysql_like_fault(), client=client, others=(scheduler,), log_text=LOST_DB)

    assert run.result.restarts == []
    (designed,) = run.result.designed_restarts
    assert (designed.container, designed.service) == (scheduler.name, "scheduler")
    assert run.observer.logs_until == [at(7)]  # how the process before the restart ended
    assert run.result.ok


@pytest.mark.parametrize(
    ("service", "logs"), [("scheduler", "KeyError: 'dag_id'"), ("worker", LOST_DB)]
)
def test_a_restart_the_fault_does_not_explain_is_a_crash(service: str, logs: str) -> None:
    other = container(service, "x9")
    client = ScriptedClient(FAULT_AT)
    crash_during(client, other)

    run = run_fault(fault=mysql_like_fault(), client=client, others=(other,), log_text=logs)

    assert [r.container for r in run.result.restarts] == [other.name]
    assert run.result.designed_restarts == []
    assert run.result.verdict == "CRASHED"


def test_deadlocks_are_counted_and_fail_the_fault_only_with_harm() -> None:
    harmless = run_fault(deadlocks=2).result
    assert (harmless.deadlocks, harmless.ok) == (2, True)

    scheduler = container("scheduler", "s1")
    client = ScriptedClient(FAULT_AT)
    client.on_after.append(lambda: setattr(scheduler, "restart_count", 1))
    harmful = run_fault(client=client, others=(scheduler,), deadlocks=1).result
    assert harmful.harmful_deadlocks
    assert "1 MySQL deadlocks" in harmful.problems


def test_a_scheduler_kill_reports_when_the_survivor_queued_and_the_scheduling_gap() -> None:
    # w1 stands for the killed scheduler, w2 for the survivor.
    fault = Fault(
        "scheduler-kill",
        "kill it",
        "scheduler",
        lambda stack, tasks: as_container(cast(FakeStack, stack).docker.container.containers[-1]),
        faults.kill_main_process,
        faults.restarted_by_policy,
    )
    decisions = [
        (-1.0, "w1"),
        (2.0, "w1"),  # the killed scheduler restarted (same host): not the survivor
        (9.54, "w2"),
        (12.0, "w2"),
    ]
    run = run_fault(fault=fault, decisions=decisions)

    assert run.observer.decisions_asked == [["run-1", "run-2"]]
    # In tenths of a second: 9.54 s, and 7.54 s from 2 to 9.54.
    assert run.result.details["survivor_queued_s"] == 9.5
    assert run.result.details["scheduling_gap_s"] == 7.5
    assert run.result.ok


def test_only_a_scheduler_kill_asks_for_scheduling_decisions() -> None:
    run = run_fault(decisions=[(1.0, "w2")])
    assert run.observer.decisions_asked == []
    assert "survivor_queued_s" not in run.result.details


def test_run_fault_waits_out_an_unavailable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        runner, "time", SimpleNamespace(monotonic=time.monotonic, sleep=slept.append)
    )
    client = ScriptedClient(FAULT_AT)
    client.unavailable_polls = 3

    run = run_fault(client=client)
    r = run.result

    assert r.details["api_unavailable_polls"] == 3
    assert isinstance(r.details["api_back_s"], float)  # first answer after the outage
    assert slept[:3] == [1, 1, 1]  # one pause per failed poll
    assert set(slept) == {1}  # and a poll a second after it
    not_answering = [line for line in run.lines if "API not answering" in line]
    assert len(not_answering) == 1  # said once per outage, not once per poll
    assert "HTTP 503" in not_answering[0]
    assert r.ok
    assert r.details["retry_started_s"] == 2.0


def test_ctrl_c_during_a_partition_reconnects_the_worker_and_says_so() -> None:
    client = ScriptedClient(FAULT_AT)
    client.interrupt_on_poll = 3
    fault = Fault(
        "worker-partition",
        "cut it off for an hour",
        "worker",
        faults.worker_running_long_task,
        faults.partition_for(3600),
        faults.reconnected,
    )
    started = time.monotonic()
    lines: list[str] = []
    w1, w2 = container("worker", "w1"), container("worker", "w2")
    w1.network_settings = FakeNetworkSettings({"front": object(), "back": object()})
    stack = FakeStack(w2, w1)
    stack.docker.network.connect_delay = 0.2  # Docker takes its time to reconnect

    with pytest.raises(KeyboardInterrupt):
        runner.run_fault(
            fault,
            as_stack(stack),
            cast(AirflowClient, client),
            2,
            600,
            log=lines.append,
            observer=FakeObserver(stack),
        )

    assert time.monotonic() - started < 60  # the hour-long partition was cut short
    assert set(w1.network_settings.networks or {}) == {"front", "back"}
    assert ("connect", "back", w1.name) in stack.docker.network.calls
    # The partition ended (its reconnects done) before the safety net looked.
    assert lines[-2:] == [
        f"worker-partition: interrupted; putting {w1.name} back",
        f"worker-partition: {w1.name} was already back",
    ]
    assert [call[0] for call in stack.docker.network.calls] == ["disconnect"] * 2 + ["connect"] * 2


def test_a_target_that_did_not_come_back_is_started_and_the_fault_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ScriptedClient(FAULT_AT)

    def stays_down(stack: Any, c: Any, before: TargetBefore, stop: Any) -> faults.Injection:
        c.state.status = "exited"
        return faults.Injection(client.death, "died (test)")

    fault = Fault(
        "worker-kill",
        "stop it",
        "worker",
        faults.worker_running_long_task,
        stays_down,
        faults.restarted_by_policy,
    )
    run = run_fault(fault=fault, client=client, timeout=3)

    assert (run.result.container_back_s, run.result.verdict) == (None, "NOT BACK")
    assert run.target.starts == 1
    assert any("did not come back: started" in line for line in run.lines)


def test_run_all_runs_each_fault_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    passed: list[tuple[object, ...]] = []

    def fake_run_fault(fault: Fault, *args: object) -> str:
        seen.append(fault.name)
        passed.append(args)
        return fault.name

    monkeypatch.setattr(runner, "run_fault", fake_run_fault)
    chosen = [FAULTS["redis-outage"], FAULTS["scheduler-kill"]]
    lines: list[str] = []
    stack, client = as_stack(FakeStack()), cast(AirflowClient, object())
    results = runner.run_all(chosen, stack, client, 3, 240.0, lines.append)
    assert seen == []  # a generator: nothing runs before the first result is asked for
    assert list(results) == ["redis-outage", "scheduler-kill"]  # type: ignore[comparison-overlap]
    assert seen == ["redis-outage", "scheduler-kill"]
    assert passed == [(stack, client, 3, 240.0, lines.append)] * 2


def test_one_poll_the_api_did_not_answer_is_said_once_with_the_error_cut_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        runner, "time", SimpleNamespace(monotonic=time.monotonic, sleep=lambda seconds: None)
    )
    client = ScriptedClient(FAULT_AT)
    client.unavailable_polls = 1
    client.unavailable_error = "GET taskInstances failed with HTTP 503: " + "x" * 100

    run = run_fault(client=client)

    assert run.result.details["api_unavailable_polls"] == 1
    not_answering = [line for line in run.lines if "API not answering" in line]
    assert not_answering == [
        f"worker-kill: API not answering; waiting ({client.unavailable_error[:80]})"
    ]


def test_an_injection_that_returns_after_the_timeout_is_still_confirmed() -> None:
    client = ScriptedClient(FAULT_AT)

    def lasting(stack: Any, c: Any, before: TargetBefore, stop: Any) -> faults.Injection:
        stop.wait(600)  # a partition: over only when the runner ends it
        return faults.Injection(client.death, "cut off (test)")

    fault = replace(FAULTS["worker-kill"], inject=lasting)
    r = run_fault(fault=fault, client=client, timeout=2).result

    assert (r.injected_at, r.evidence) == (client.death, "cut off (test)")
    assert r.longest_stall_s == 41.0  # timed from the confirmed moment


def test_a_victims_fate_first_seen_by_the_final_read_still_counts() -> None:
    # No time to watch: only the judge's own read sees the killed try fail.
    r = run_fault(timeout=0).result
    assert r.injected
    loss = r.details["loss_detected_s"]
    assert isinstance(loss, float)
    assert 0 <= loss < 60
    assert r.details["retry_started_s"] == 2.0


@pytest.mark.parametrize(
    ("fails", "error"),
    [
        ((1,), LookupError("no running mysql container")),
        ((2,), ValueError("invalid literal for int()")),
        ((1, 2), DockerException(["docker", "exec"], 1, b"", b"MySQL is down")),
    ],
)
def test_deadlocks_are_unknown_when_a_counter_reading_failed(
    fails: tuple[int, ...], error: Exception
) -> None:
    r = run_fault(deadlocks=3, counter_fails=fails, counter_error=error).result
    assert r.deadlocks is None
    assert r.ok  # unknown is no failure


@dataclass
class FakeProbe:
    """ApiProbe as the runner sees it: a context manager with a result."""

    client: object
    scripted: ScriptedClient  # whose poll count tells when the probe ran
    result: SimpleNamespace
    entered_at_poll: int | None = None
    exited_at_poll: int | None = None

    def __enter__(self) -> "FakeProbe":
        self.entered_at_poll = self.scripted.polls
        return self

    def __exit__(self, *exc: object) -> None:
        self.exited_at_poll = self.scripted.polls


def probing(
    monkeypatch: pytest.MonkeyPatch, client: ScriptedClient, **result: Any
) -> list[FakeProbe]:
    """The probes the runner makes, each answering `result`."""
    made: list[FakeProbe] = []

    def make(probe_client: object) -> FakeProbe:
        made.append(FakeProbe(probe_client, client, SimpleNamespace(**result)))
        return made[-1]

    monkeypatch.setattr(runner, "ApiProbe", make)
    return made


API_SERVER_KILL = replace(FAULTS["worker-kill"], name="api-server-kill", service="api-server")


def test_an_api_server_fault_is_watched_by_the_probe_and_fails_with_its_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ScriptedClient(FAULT_AT)
    made = probing(
        monkeypatch, client, requests=140, failed=2, cut_off=1, errors=["first", "second"]
    )

    r = run_fault(fault=API_SERVER_KILL, client=client).result

    (probe,) = made
    assert probe.client is client
    # Probing from after the target search to the end of the watch (the judge polls once more).
    assert (probe.entered_at_poll, probe.exited_at_poll) == (1, client.polls - 1)
    assert {k: v for k, v in r.details.items() if k.startswith("api_")} == {
        "api_requests": 140,
        "api_failed": 2,
        "api_cut_off": 1,
        "api_first_error": "first",
    }
    assert (r.failed_api_requests, r.verdict) == (2, "API FAILED")


def test_an_api_server_fault_without_failures_has_no_first_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ScriptedClient(FAULT_AT)
    probing(monkeypatch, client, requests=90, failed=0, cut_off=3, errors=[])
    r = run_fault(fault=API_SERVER_KILL, client=client).result
    assert (r.details["api_requests"], r.details["api_failed"], r.details["api_cut_off"]) == (
        90,
        0,
        3,
    )
    assert "api_first_error" not in r.details
    assert r.ok


def test_no_probe_for_other_services_or_without_a_target(monkeypatch: pytest.MonkeyPatch) -> None:
    client = ScriptedClient(FAULT_AT)
    made = probing(monkeypatch, client, requests=1, failed=1, errors=["x"])
    assert "api_requests" not in run_fault(client=client).result.details
    monkeypatch.setattr(runner, "TARGET_TIMEOUT_S", 0)
    r = run_fault(fault=API_SERVER_KILL, target_present=False).result
    assert (r.injected, "api_requests" in r.details) == (False, False)
    assert made == []


def test_without_an_observer_the_facts_come_from_the_stack() -> None:
    death = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    client = ScriptedClient(death)
    w1, w2 = container("worker", "w1"), container("worker", "w2")
    scheduler = container("scheduler", "s1")
    w1.dies_at = death
    scheduler.config.env = ["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=200"]
    stack = FakeStack(w2, scheduler, w1)
    stack.docker.compose.like_docker = True
    lines: list[str] = []

    r = runner.run_fault(
        FAULTS["worker-kill"], as_stack(stack), cast(AirflowClient, client), 2, 30, lines.append
    )

    assert r.stall_limit_s == 200 + 120 + 60  # read from the running scheduler
    assert r.deadlocks is None  # no MySQL container to ask
    assert r.injected_at == death


class LateToSayDone:
    """A ThreadPoolExecutor whose future, though its injection is over, says it is
    not done the first time it is asked: the injection ended between the runner's
    two looks at it in one poll."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers)

    def submit(self, fn: Any, *args: Any) -> Future[Any]:
        future = self.pool.submit(fn, *args)
        future.result()
        looks = iter([False])
        done = future.done
        future.done = lambda: next(looks, done())  # type: ignore[method-assign]
        return future

    def shutdown(self, wait: bool) -> None:
        self.pool.shutdown(wait=wait)


def test_an_injection_that_ends_between_two_looks_is_still_confirmed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "ThreadPoolExecutor", LateToSayDone)
    run = run_fault()
    assert run.result.injected_at == run.target.dies_at


class SteppedClock:
    """time.monotonic and time.sleep of a clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_workload_is_polled_once_a_second_until_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SteppedClock()
    monkeypatch.setattr(runner, "time", clock)
    client = ScriptedClient(FAULT_AT)

    def lasting(stack: Any, c: Any, before: TargetBefore, stop: Any) -> faults.Injection:
        stop.wait(600)  # the runs end at once, but the fault lasts to the timeout
        return faults.Injection(client.death, "cut off (test)")

    run_fault(fault=replace(FAULTS["worker-kill"], inject=lasting), client=client, timeout=10)

    assert clock.slept == [1] * 10  # polls at 0, 1, ..., 9 s; none at the deadline
    assert client.polls == 1 + 10 + 1  # the target search, the watch, the judge
