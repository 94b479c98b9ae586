"""Inject one fault into a running workload, watch the recovery, and judge it.

Every time is measured from the moment of failure Docker confirmed (the
container's FinishedAt, or the return of the network disconnect), never from
when the command was sent.
"""

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Protocol

from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import AirflowApiError, AirflowClient
from airflow_ha.chaos import metrics
from airflow_ha.chaos.evidence import (
    ContainerMark,
    DockerObserver,
    Restart,
    deadlocks_during,
    unexpected_restarts,
)
from airflow_ha.chaos.faults import (
    Fault,
    Injection,
    TargetBefore,
    restore,
    wait_for_target,
)
from airflow_ha.chaos.probe import ApiProbe
from airflow_ha.chaos.workload import DAG_ID, FINISHED, TaskSnapshot, Workload, now
from airflow_ha.stack import Stack

Log = Callable[[str], None]
TARGET_TIMEOUT_S = 180.0
Details = dict[str, float | int | str]


class Observer(Protocol):
    """The facts beyond the REST API (evidence.DockerObserver on a real stack)."""

    def marks(self) -> dict[str, ContainerMark]: ...
    def logs(self, container: str, since: datetime, until: datetime | None) -> str: ...
    def deadlock_count(self) -> int: ...
    def stall_limit(self) -> float: ...
    def queue_decisions(self, dag_id: str, run_ids: list[str]) -> list[tuple[datetime, str]]: ...


@dataclass
class FaultResult:
    fault: str
    description: str
    target: str
    injected_at: datetime | None  # the confirmed moment of failure; None: not injected
    evidence: str  # how Docker confirmed it, or why it was not injected
    runs: int
    succeeded: int
    failed: int
    stuck: int
    retries: int
    run_seconds: list[float | None]
    container_back_s: float | None
    next_task_start_s: float | None
    longest_stall_s: float | None
    stall_limit_s: float
    deadlocks: int | None  # None: MySQL's log could not be read
    restarts: list[Restart] = field(default_factory=list)  # crashes: not targeted, not designed
    designed_restarts: list[Restart] = field(default_factory=list)  # see Fault.designed_exit
    details: Details = field(default_factory=dict)

    @property
    def injected(self) -> bool:
        return self.injected_at is not None

    @property
    def nothing_lost(self) -> bool:
        return self.succeeded == self.runs

    @property
    def stalled(self) -> bool:
        return self.longest_stall_s is not None and self.longest_stall_s > self.stall_limit_s

    @property
    def failed_api_requests(self) -> int:
        """Requests of the API probe (api-server faults) that failed; 0 where none ran."""
        return int(self.details.get("api_failed", 0))

    @property
    def harmful_deadlocks(self) -> bool:
        """Deadlocks while a run failed or a component crashed: possibly their cause."""
        return bool(self.deadlocks) and (not self.nothing_lost or bool(self.restarts))

    @property
    def problems(self) -> list[str]:
        """Why the fault is not ok, most telling first; empty when it is."""
        found = []
        if not self.injected:
            found.append(f"not injected ({self.evidence})")
        if not self.nothing_lost:
            found.append(f"{self.failed} failed, {self.stuck} stuck of {self.runs} runs")
        if self.injected and self.container_back_s is None:
            found.append(f"{self.target} not back")
        if self.stalled:
            found.append(f"stalled {self.longest_stall_s} s (limit {self.stall_limit_s:.0f} s)")
        if self.failed_api_requests:
            found.append(f"{self.failed_api_requests} API requests failed")
        if self.restarts:
            found.append(", ".join(f"{r.container} {r.what}" for r in self.restarts))
        if self.harmful_deadlocks:
            found.append(f"{self.deadlocks} MySQL deadlocks")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        checks = (
            (not self.injected, "not injected"),
            (not self.nothing_lost, "LOST/STUCK"),
            (self.container_back_s is None, "NOT BACK"),
            (self.stalled, "STALLED"),
            (self.failed_api_requests > 0, "API FAILED"),
            (bool(self.restarts), "CRASHED"),
            (self.harmful_deadlocks, "DEADLOCK"),
        )
        return next((label for failed, label in checks if failed), "ok")

    def as_json(self) -> dict[str, object]:
        payload = asdict(self)
        payload["injected_at"] = self.injected_at.isoformat() if self.injected_at else None
        return {
            **payload,
            "injected": self.injected,
            "ok": self.ok,
            "verdict": self.verdict,
        }


def _container_back(stack: Stack, fault: Fault, before: TargetBefore) -> bool:
    current = stack.docker.container.inspect(before.id)
    state = current.state
    if state.status != "running" or (state.health is not None and state.health.status != "healthy"):
        return False
    return fault.came_back(before, current)


def _victim(fault: Fault, target: TargetBefore, tasks: list[TaskSnapshot]) -> TaskSnapshot | None:
    """The task the fault is aimed at: the long task on a killed worker, the
    deferred task on a killed triggerer."""
    host = target.hostname
    for task in tasks:
        if fault.service == "worker" and task.task_id == "long" and task.hostname == host:
            return task
        if (
            fault.service == "triggerer"
            and task.task_id == "deferred"
            and task.triggerer_host == host
        ):
            return task
    return None


def _follow_victim(
    victim: TaskSnapshot,
    tasks: list[TaskSnapshot],
    seen: datetime,
    moments: dict[str, datetime],
    details: Details,
) -> None:
    """Record what became of the victim task (`seen`: when `tasks` were read);
    `moments` get the first time each change was observed."""
    current = next(
        (
            t
            for t in tasks
            if (t.run_id, t.task_id, t.map_index)
            == (victim.run_id, victim.task_id, victim.map_index)
        ),
        None,
    )
    if current is None:
        return
    details["victim_final_state"] = current.state
    details["victim_tries"] = current.try_number
    if victim.task_id == "long":
        if current.try_number > victim.try_number or current.state in (
            "up_for_retry",
            "failed",
        ):
            # Airflow failed the killed try (heartbeat timeout): the part the config controls.
            moments.setdefault("loss_detected", seen)
        start = current.start
        if (
            "retry_started" not in moments
            and current.try_number > victim.try_number
            and start is not None
            and (victim.start is None or start > victim.start)
        ):
            moments["retry_started"] = start
            details["retry_host"] = current.hostname
    if victim.task_id == "deferred":
        job = current.triggerer_job_id
        if job not in (None, victim.triggerer_job_id) and "trigger_taken" not in moments:
            moments["trigger_taken"] = seen
            # Another triggerer, or the killed one restarted (same host, new job).
            details["trigger_taken_by"] = (
                "the restarted triggerer"
                if current.triggerer_host == victim.triggerer_host
                else current.triggerer_host
            )
        if current.state != "deferred":
            moments.setdefault("deferred_resumed", seen)


def _seconds_after(moment: datetime | None, death: datetime | None) -> float | None:
    if moment is None or death is None:
        return None
    return round((moment - death).total_seconds(), 1)


class _Injector:
    """The fault's injection, running in a thread while the workload is watched."""

    def __init__(self, fault: Fault, stack: Stack, container: Container, before: TargetBefore):
        self.stop = threading.Event()
        self._pool = ThreadPoolExecutor(1)
        self.future: Future[Injection | None] = self._pool.submit(
            fault.inject, stack, container, before, self.stop
        )

    def end(self) -> None:
        """Ends a lasting fault (a partition) now and waits for its thread."""
        self.stop.set()
        self._pool.shutdown(wait=True)

    def finish(self) -> Injection | None:
        """Ends the fault; the confirmed injection (re-raises its error)."""
        self.end()
        return self.future.result()


NOT_CONFIRMED = "Docker shows no sign of it"


@dataclass
class _Watched:
    """What was seen while the fault ran, in absolute times."""

    evidence: str
    injection: Injection | None = None
    back_at: datetime | None = None
    details: Details = field(default_factory=dict)
    moments: dict[str, datetime] = field(default_factory=dict)

    def injected(self, injection: Injection | None) -> None:
        self.injection = injection
        self.evidence = injection.evidence if injection is not None else NOT_CONFIRMED


@dataclass(frozen=True)
class _Aim:
    """The fault's target: the container, as it was, and the task it aims at."""

    container: Container
    before: TargetBefore
    victim: TaskSnapshot | None


def _watch(
    fault: Fault,
    stack: Stack,
    workload: Workload,
    aim: _Aim | None,
    timeout: float,
    watched: _Watched,
    log: Log,
) -> None:
    """Injects the fault (if there is a target) and follows the workload until it
    ended and the target is back, or the timeout; puts the target back on Ctrl-C."""
    injector = _Injector(fault, stack, aim.container, aim.before) if aim is not None else None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                tasks = workload.tasks()
                seen = now()
                finished = workload.finished()
            except AirflowApiError as error:
                # Expected while MySQL restarts: the API cannot answer without it.
                unavailable = int(watched.details.get("api_unavailable_polls", 0)) + 1
                watched.details["api_unavailable_polls"] = unavailable
                if unavailable == 1:
                    log(f"{fault.name}: API not answering; waiting ({str(error)[:80]})")
                time.sleep(1)
                continue
            if "api_unavailable_polls" in watched.details:
                watched.moments.setdefault("api_back", seen)
            if aim is not None and aim.victim is not None:
                _follow_victim(aim.victim, tasks, seen, watched.moments, watched.details)
            if injector is not None and injector.future.done() and watched.injection is None:
                watched.injected(injector.future.result())  # re-raises a failed injection
                if watched.injection is None:
                    log(f"{fault.name}: NOT injected: {watched.evidence}")
            if (
                aim is not None
                and watched.injection is not None
                and watched.back_at is None
                and _container_back(stack, fault, aim.before)
            ):
                watched.back_at = now()
                log(f"{fault.name}: {aim.before.name} healthy again")
            injection_over = injector is None or injector.future.done()
            if finished and injection_over and (watched.back_at or watched.injection is None):
                break
            time.sleep(1)
    except BaseException:
        if injector is not None and aim is not None:
            log(f"{fault.name}: interrupted; putting {aim.before.name} back")
            injector.end()
            for action in restore(stack, aim.before) or [f"{aim.before.name} was already back"]:
                log(f"{fault.name}: {action}")
        raise
    if injector is not None and watched.injection is None:  # the timeout came first
        watched.injected(injector.finish())


def run_fault(
    fault: Fault,
    stack: Stack,
    client: AirflowClient,
    runs: int,
    timeout: float,
    log: Log,
    observer: Observer | None = None,
) -> FaultResult:
    observer = observer or DockerObserver(stack)
    log(f"{fault.name}: waiting until every service is healthy")
    stack.wait_healthy(timeout=300, progress=lambda _line: None)
    stall_limit = observer.stall_limit()
    workload = Workload(client, runs)
    workload.start()
    log(f"{fault.name}: {runs} workload runs triggered; waiting for a target")
    container, tasks = wait_for_target(fault, stack, workload, TARGET_TIMEOUT_S)
    aim = None
    if container is not None:
        before = TargetBefore.of(container)
        aim = _Aim(container, before, _victim(fault, before, tasks))
    marks_before = observer.marks()
    deadlocks_before = _deadlock_count(observer)
    watch_started = now()
    watched = _Watched(
        f"no target found within {TARGET_TIMEOUT_S:.0f} s or before the workload ended"
    )
    if aim is None:
        log(f"{fault.name}: {watched.evidence}; the cluster is left untouched")
    else:
        log(f"{fault.name}: {fault.description}: {aim.before.name}")
    probe = ApiProbe(client) if fault.service == "api-server" and aim is not None else None
    with probe or contextlib.nullcontext():
        _watch(fault, stack, workload, aim, timeout, watched, log)
    if aim is not None and watched.back_at is None:
        for action in restore(stack, aim.before):
            log(f"{fault.name}: {aim.before.name} did not come back: {action}")
    if probe is not None:
        watched.details["api_requests"] = probe.result.requests
        watched.details["api_failed"] = probe.result.failed
        watched.details["api_cut_off"] = probe.result.cut_off
        if probe.result.errors:
            watched.details["api_first_error"] = probe.result.errors[0]
    result = _judge(
        fault,
        aim,
        workload,
        watched,
        observer,
        stall_limit,
        _restarts(observer, marks_before, aim, watch_started),
        _deadlocks(deadlocks_before, _deadlock_count(observer)),
    )
    log(f"{fault.name}: {result.succeeded}/{result.runs} runs succeeded, {result.retries} retries")
    return result


def _restarts(
    observer: Observer,
    marks_before: dict[str, ContainerMark],
    aim: _Aim | None,
    since: datetime,
) -> list[Restart]:
    """Containers the fault did not target that restarted, with their logs from
    `since` to their latest start: how the process before it ended."""
    marks_after = observer.marks()
    started = {mark.name: mark.started_at for mark in marks_after.values()}
    target_id = aim.before.id if aim is not None else None
    return [
        replace(r, logs=observer.logs(r.container, since, started.get(r.container)))
        for r in unexpected_restarts(marks_before, marks_after, target_id)
    ]


def _judge(
    fault: Fault,
    aim: _Aim | None,
    workload: Workload,
    watched: _Watched,
    observer: Observer,
    stall_limit: float,
    restarts: list[Restart],
    deadlocks: int | None,
) -> FaultResult:
    """The fault's result from what was watched and the workload's final state;
    every time counts from the confirmed death."""
    death = watched.injection.at if watched.injection is not None else None
    runs = workload.run_snapshots()
    tasks = workload.tasks()
    details = watched.details
    if aim is not None and aim.victim is not None:
        _follow_victim(aim.victim, tasks, now(), watched.moments, details)
    for name, moment in watched.moments.items():
        seconds = _seconds_after(moment, death)
        if seconds is not None:
            details[f"{name}_s"] = seconds
    if death is not None and aim is not None and fault.service == "scheduler":
        decisions = observer.queue_decisions(DAG_ID, workload.run_ids)
        for key, value in (
            (
                "survivor_queued_s",
                metrics.survivor_first_queue(decisions, death, aim.before.hostname),
            ),
            ("scheduling_gap_s", metrics.scheduling_gap(decisions, death)),
        ):
            if value is not None:
                details[key] = round(value, 1)
    designed = fault.designed_exit
    designed_restarts = [r for r in restarts if designed is not None and designed.explains(r)]
    ends = [r.end for r in runs if r.end is not None]
    all_finished = all(r.state in FINISHED for r in runs)
    end = max(ends) if all_finished and ends else now()
    events = metrics.progress_events(tasks, runs)
    return FaultResult(
        fault=fault.name,
        description=fault.description,
        target=aim.before.name if aim is not None else "-",
        injected_at=death,
        evidence=watched.evidence,
        runs=len(runs),
        succeeded=sum(r.state == "success" for r in runs),
        failed=sum(r.state == "failed" for r in runs),
        stuck=sum(r.state not in FINISHED for r in runs),
        retries=metrics.retries(tasks),
        run_seconds=metrics.run_seconds(runs),
        container_back_s=_seconds_after(watched.back_at, death),
        next_task_start_s=_rounded(metrics.next_start_after(tasks, death) if death else None),
        longest_stall_s=(
            None if death is None else round(metrics.longest_stall(events, death, end), 1)
        ),
        stall_limit_s=stall_limit,
        deadlocks=deadlocks,
        restarts=[r for r in restarts if r not in designed_restarts],
        designed_restarts=designed_restarts,
        details=details,
    )


def _deadlock_count(observer: Observer) -> int | None:
    try:
        return observer.deadlock_count()
    except (LookupError, ValueError, DockerException):  # MySQL down or not answering
        return None


def _deadlocks(before: int | None, after: int | None) -> int | None:
    return None if before is None or after is None else deadlocks_during(before, after)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_all(
    faults: list[Fault],
    stack: Stack,
    client: AirflowClient,
    runs: int,
    timeout: float,
    log: Log,
) -> Iterator[FaultResult]:
    for fault in faults:
        yield run_fault(fault, stack, client, runs, timeout, log)
