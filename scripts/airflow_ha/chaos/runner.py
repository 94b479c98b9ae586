"""Inject one fault into a running workload and measure the recovery."""

import contextlib
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from airflow_ha.airflow_api import AirflowApiError, AirflowClient
from airflow_ha.chaos import metrics
from airflow_ha.chaos.faults import Fault, TargetBefore, wait_for_target
from airflow_ha.chaos.probe import ApiProbe
from airflow_ha.chaos.workload import FINISHED, TaskSnapshot, Workload, now
from airflow_ha.stack import Stack

Log = Callable[[str], None]
TARGET_TIMEOUT_S = 180.0


@dataclass
class FaultResult:
    fault: str
    description: str
    target: str
    runs: int
    succeeded: int
    failed: int
    stuck: int
    retries: int
    container_back_s: float | None
    next_task_start_s: float | None
    max_start_gap_s: float | None
    details: dict[str, float | int | str] = field(default_factory=dict)

    @property
    def nothing_lost(self) -> bool:
        return self.succeeded == self.runs

    @property
    def failed_api_requests(self) -> int:
        """Requests of the API probe (api-server faults) that failed; 0 where none ran."""
        return int(self.details.get("api_failed", 0))

    @property
    def ok(self) -> bool:
        return (
            self.nothing_lost
            and self.container_back_s is not None
            and self.failed_api_requests == 0
        )


def _container_back(stack: Stack, fault: Fault, before: TargetBefore, fault_at: datetime) -> bool:
    current = stack.docker.container.inspect(before.id)
    state = current.state
    if state.status != "running" or (state.health is not None and state.health.status != "healthy"):
        return False
    return fault.came_back(before, current, fault_at)


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
    at: datetime,
    details: dict[str, float | int | str],
    observed_at: datetime | None = None,
) -> None:
    """Record what became of the victim task; `observed_at` is when `tasks` were read."""
    seen = observed_at or now()
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
    if (
        victim.task_id == "long"
        and "loss_detected_s" not in details
        and (current.try_number > victim.try_number or current.state in ("up_for_retry", "failed"))
    ):
        # Airflow failed the killed try (heartbeat timeout): the part the config controls.
        details["loss_detected_s"] = round((seen - at).total_seconds(), 1)
    start = current.start
    if (
        victim.task_id == "long"
        and "retry_started_s" not in details
        and current.try_number > victim.try_number
        and start is not None
        and start > at
    ):
        details["retry_started_s"] = round((start - at).total_seconds(), 1)
        details["retry_host"] = current.hostname
    if victim.task_id == "deferred" and "trigger_moved_s" not in details:
        # A new triggerer job (possibly the restarted container, same hostname).
        moved = current.triggerer_job_id not in (None, victim.triggerer_job_id)
        if moved or current.state != "deferred":
            details["trigger_moved_s"] = round((seen - at).total_seconds(), 1)
            details["new_triggerer"] = current.triggerer_host or "-"


def run_fault(
    fault: Fault,
    stack: Stack,
    client: AirflowClient,
    runs: int,
    timeout: float,
    log: Log,
) -> FaultResult:
    log(f"{fault.name}: waiting until every service is healthy")
    stack.wait_healthy(timeout=300, progress=lambda _line: None)
    workload = Workload(client, runs)
    workload.start()
    log(f"{fault.name}: {runs} workload runs triggered; waiting for a target")
    container, tasks = wait_for_target(fault, stack, workload, TARGET_TIMEOUT_S)
    target = TargetBefore.of(container)
    victim = _victim(fault, target, tasks)
    details: dict[str, float | int | str] = {}
    probe = ApiProbe(client) if fault.service == "api-server" else None
    # The fault runs in a thread: a partition lasts 40 s, and the workload is
    # watched meanwhile (when the lost task is failed, when it is retried).
    with probe or contextlib.nullcontext(), ThreadPoolExecutor(1) as injector:
        fault_at = now()
        log(f"{fault.name}: {fault.description}: {target.name}")
        injection = injector.submit(fault.inject, stack, container)
        back_s: float | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                tasks = workload.tasks()
                finished = workload.finished()
            except AirflowApiError as error:
                # Expected while MySQL restarts: the API cannot answer without it.
                unavailable = int(details.get("api_unavailable_polls", 0)) + 1
                details["api_unavailable_polls"] = unavailable
                if unavailable == 1:
                    log(f"{fault.name}: API not answering; waiting ({str(error)[:80]})")
                time.sleep(1)
                continue
            if "api_unavailable_polls" in details and "api_back_s" not in details:
                details["api_back_s"] = round((now() - fault_at).total_seconds(), 1)
            if victim is not None:
                _follow_victim(victim, tasks, fault_at, details)
            injected = injection.done()
            if injected:
                injection.result()  # re-raise a failed injection
            if back_s is None and injected and _container_back(stack, fault, target, fault_at):
                back_s = round((now() - fault_at).total_seconds(), 1)
                log(f"{fault.name}: {target.name} healthy again after {back_s} s")
            if back_s is not None and finished:
                break
            time.sleep(1)
    if probe is not None:
        details["api_requests"] = probe.result.requests
        details["api_failed"] = probe.result.failed
        if probe.result.errors:
            details["api_first_error"] = probe.result.errors[0]
    states = workload.run_states()
    tasks = workload.tasks()
    if victim is not None:
        _follow_victim(victim, tasks, fault_at, details)
    result = FaultResult(
        fault=fault.name,
        description=fault.description,
        target=target.name,
        runs=len(states),
        succeeded=sum(s == "success" for s in states.values()),
        failed=sum(s == "failed" for s in states.values()),
        stuck=sum(s not in FINISHED for s in states.values()),
        retries=metrics.retries(tasks),
        container_back_s=back_s,
        next_task_start_s=_rounded(metrics.next_start_after(tasks, fault_at)),
        max_start_gap_s=_rounded(metrics.max_start_gap(tasks, fault_at)),
        details=details,
    )
    log(f"{fault.name}: {result.succeeded}/{result.runs} runs succeeded, {result.retries} retries")
    return result


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def run_all(
    faults: list[Fault], stack: Stack, client: AirflowClient, runs: int, timeout: float, log: Log
) -> Iterator[FaultResult]:
    for fault in faults:
        yield run_fault(fault, stack, client, runs, timeout, log)
