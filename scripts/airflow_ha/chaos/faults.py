"""The faults `chaos` injects, each a target chosen from what the cluster is doing.

Kills are real crashes: SIGKILL to the component's main process (the child of
the container's init), so the container dies at once and Docker's restart
policy, not a manual `docker start`, brings it back. (`docker kill` would count
as a manual stop, which restart policies deliberately ignore.)

Every injection confirms itself from Docker: a kill or a restart by the
container's new FinishedAt (the moment its process died), a partition by the
container's networks once the disconnects returned. An injection Docker does
not confirm returns None, and the fault fails as "not injected".
"""

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import AirflowApiError
from airflow_ha.chaos.evidence import LOST_MYSQL, ContainerMark, DesignedExit, died_at
from airflow_ha.chaos.workload import TaskSnapshot, Workload, now
from airflow_ha.stack import SERVICE_LABEL, Stack

KILL_MAIN_PROCESS = ["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"]
DEATH_TIMEOUT_S = 30.0
PARTITION_S = 40.0
# Redis stays down this long: longer than a client's own reconnect attempts
# (redis-py gives up after a few seconds), so every client's retry is tested,
# not only the quick reconnect a `docker restart` allows.
REDIS_OUTAGE_S = 20.0
# Tasks not yet queued when a scheduler is killed: the survivor must queue them.
UNQUEUED_FOR_SCHEDULER_KILL = 8


@dataclass(frozen=True)
class TargetBefore:
    """The target as it was just before the fault (python-on-whales containers
    re-inspect themselves, so the object alone cannot tell before from after)."""

    mark: ContainerMark
    hostname: str
    networks: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.mark.id

    @property
    def name(self) -> str:
        return self.mark.name

    @classmethod
    def of(cls, container: Container) -> "TargetBefore":
        return cls(
            mark=ContainerMark.of(container),
            hostname=container.config.hostname or "",
            networks=tuple(sorted(container.network_settings.networks or {})),
        )


@dataclass(frozen=True)
class Injection:
    """A fault Docker confirmed: when it struck, and the evidence."""

    at: datetime
    evidence: str


# inject(stack, container, before, stop) -> the confirmed injection, or None.
# `stop` cuts a lasting fault (a partition) short, on Ctrl-C or an error.
Inject = Callable[[Stack, Container, TargetBefore, threading.Event], Injection | None]


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    service: str
    # Returns the container to hit once the workload is in the right state, or None to wait.
    pick: Callable[[Stack, list[TaskSnapshot]], Container | None]
    inject: Inject
    # Once the container is healthy again: is it the comeback this fault expects?
    came_back: Callable[[TargetBefore, Container], bool]
    # Components that exit by design when the target goes away; None: any
    # restart of a component the fault did not target is a crash.
    designed_exit: DesignedExit | None = None


def containers(stack: Stack, service: str) -> list[Container]:
    return [
        c
        for c in stack.docker.compose.ps(services=[service])
        if (c.config.labels or {}).get(SERVICE_LABEL) == service and c.state.status == "running"
    ]


def by_hostname(stack: Stack, service: str, hostname: str) -> Container | None:
    return next((c for c in containers(stack, service) if c.config.hostname == hostname), None)


def confirmed_death(stack: Stack, before: TargetBefore, timeout: float) -> Injection | None:
    """Polls Docker until the container's FinishedAt moves past its value before the fault."""
    deadline = time.monotonic() + timeout
    while True:
        current = ContainerMark.of(stack.docker.container.inspect(before.id))
        died = died_at(before.mark, current)
        if died is not None:
            return Injection(died, f"died at {died:%H:%M:%S.%f} UTC (Docker FinishedAt)")
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.2)


def kill_main_process(
    stack: Stack, container: Container, before: TargetBefore, stop: threading.Event
) -> Injection | None:
    with contextlib.suppress(DockerException):  # the exec dies with the container it kills
        container.execute(KILL_MAIN_PROCESS)
    return confirmed_death(stack, before, DEATH_TIMEOUT_S)


def restart(
    stack: Stack, container: Container, before: TargetBefore, stop: threading.Event
) -> Injection | None:
    container.restart()
    return confirmed_death(stack, before, 0)


def down_for(seconds: float) -> Inject:
    """Stops the container, keeps it stopped, then starts it again."""

    def outage(
        stack: Stack, container: Container, before: TargetBefore, stop: threading.Event
    ) -> Injection | None:
        try:
            container.stop()
            injection = confirmed_death(stack, before, 0)
            stop.wait(seconds)
        finally:  # even on Ctrl-C or an error: never leave it stopped
            with contextlib.suppress(DockerException):
                container.start()
        return injection

    return outage


def partition_for(seconds: float) -> Inject:
    def partition(
        stack: Stack, container: Container, before: TargetBefore, stop: threading.Event
    ) -> Injection | None:
        try:
            for network in before.networks:
                stack.docker.network.disconnect(network, container)
            cut_at = now()
            cut = stack.docker.container.inspect(before.id)
            still = set(cut.network_settings.networks or {}) & set(before.networks)
            stop.wait(seconds)
        finally:  # even on Ctrl-C or an error: never leave a worker cut off
            for network in before.networks:
                with contextlib.suppress(DockerException):
                    stack.docker.network.connect(network, container)
        if still or not before.networks:
            return None
        return Injection(cut_at, f"disconnected from {', '.join(before.networks)}")

    return partition


def restarted_by_policy(before: TargetBefore, now: Container) -> bool:
    return (now.restart_count or 0) > before.mark.restart_count


def started_again(before: TargetBefore, now: Container) -> bool:
    started = now.state.started_at
    return started is not None and (
        before.mark.started_at is None or started > before.mark.started_at
    )


def reconnected(before: TargetBefore, now: Container) -> bool:
    """A partitioned container is back when it is the same container (it never
    stopped) and attached again to every network it had before the fault."""
    attached = set(now.network_settings.networks or {})
    return (
        now.id == before.id
        and now.state.started_at == before.mark.started_at
        and set(before.networks) <= attached
    )


def restore(stack: Stack, before: TargetBefore) -> list[str]:
    """Puts the target back as it was if the fault left it down or cut off: the
    safety net after Ctrl-C, an error, or a container that did not come back."""
    done = []
    current = stack.docker.container.inspect(before.id)
    if current.state.status != "running":
        current.start()
        done.append(f"started {before.name}")
    attached = set(current.network_settings.networks or {})
    for network in before.networks:
        if network not in attached:
            stack.docker.network.connect(network, current)
            done.append(f"reconnected {before.name} to {network}")
    return done


def first_when_tasks_run(service: str) -> Callable[[Stack, list[TaskSnapshot]], Container | None]:
    def pick(stack: Stack, tasks: list[TaskSnapshot]) -> Container | None:
        if sum(t.state == "running" for t in tasks) < 2:
            return None
        found = containers(stack, service)
        return found[0] if found else None

    return pick


def scheduler_with_tasks_to_queue(stack: Stack, tasks: list[TaskSnapshot]) -> Container | None:
    """A scheduler, once tasks run and enough are still unqueued that the
    surviving scheduler has to queue some of them itself."""
    unqueued = sum(t.state in ("none", "scheduled") for t in tasks)
    if unqueued < UNQUEUED_FOR_SCHEDULER_KILL:
        return None
    return first_when_tasks_run("scheduler")(stack, tasks)


def worker_running_long_task(stack: Stack, tasks: list[TaskSnapshot]) -> Container | None:
    """The worker that runs the long task, as Airflow records it (TI hostname)."""
    for task in tasks:
        if task.task_id == "long" and task.state == "running" and task.hostname:
            return by_hostname(stack, "worker", task.hostname)
    return None


def triggerer_holding_deferred_task(stack: Stack, tasks: list[TaskSnapshot]) -> Container | None:
    """The triggerer that holds a deferred task's trigger (TI's triggerer job)."""
    for task in tasks:
        if task.task_id == "deferred" and task.state == "deferred" and task.triggerer_host:
            return by_hostname(stack, "triggerer", task.triggerer_host)
    return None


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("scheduler-kill", "SIGKILL one scheduler", "scheduler",
              scheduler_with_tasks_to_queue, kill_main_process, restarted_by_policy),
        Fault("api-server-kill", "SIGKILL one api-server", "api-server",
              first_when_tasks_run("api-server"), kill_main_process, restarted_by_policy),
        Fault("worker-kill", "SIGKILL the worker running the long task", "worker",
              worker_running_long_task, kill_main_process, restarted_by_policy),
        Fault("triggerer-kill", "SIGKILL the triggerer holding a deferred task", "triggerer",
              triggerer_holding_deferred_task, kill_main_process, restarted_by_policy),
        Fault("redis-outage", f"stop Redis for {REDIS_OUTAGE_S:.0f} s, then start it", "redis",
              first_when_tasks_run("redis"), down_for(REDIS_OUTAGE_S), started_again),
        Fault("mysql-restart", "restart MySQL", "mysql",
              first_when_tasks_run("mysql"), restart, started_again, LOST_MYSQL),
        Fault("worker-partition",
              f"cut the long task's worker off the network for {PARTITION_S:.0f} s",
              "worker", worker_running_long_task, partition_for(PARTITION_S), reconnected),
    )
}  # fmt: skip


def wait_for_target(
    fault: Fault, stack: Stack, workload: Workload, timeout: float
) -> tuple[Container | None, list[TaskSnapshot]]:
    """The container to hit and the tasks it was picked from; None if no target
    showed up in time or the workload ended first (the caller then fails the
    fault without touching the cluster)."""
    deadline = time.monotonic() + timeout
    tasks: list[TaskSnapshot] = []
    while time.monotonic() < deadline:
        try:
            tasks = workload.tasks()
            if workload.finished():
                return None, tasks
        except AirflowApiError:
            time.sleep(1)  # a busy API answers again shortly; the deadline bounds this
            continue
        target = fault.pick(stack, tasks)
        if target is not None:
            return target, tasks
        time.sleep(0.5)
    return None, tasks
