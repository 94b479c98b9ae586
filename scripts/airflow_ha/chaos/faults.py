"""The faults `chaos` injects, each a target chosen from what the cluster is doing.

Kills are real crashes: SIGKILL to the component's main process (the child of
the container's init), so the container dies at once and Docker's restart
policy, not a manual `docker start`, brings it back. (`docker kill` would count
as a manual stop, which restart policies deliberately ignore.)
"""

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import AirflowApiError
from airflow_ha.chaos.workload import TaskSnapshot, Workload
from airflow_ha.errors import ClusterError, TimeoutExpiredError
from airflow_ha.stack import SERVICE_LABEL, Stack

KILL_MAIN_PROCESS = ["sh", "-c", "kill -KILL $(cat /proc/1/task/1/children)"]


@dataclass(frozen=True)
class TargetBefore:
    """The target as it was just before the fault (python-on-whales containers
    re-inspect themselves, so the object alone cannot tell before from after)."""

    id: str
    name: str
    hostname: str
    restart_count: int
    networks: tuple[str, ...] = ()

    @classmethod
    def of(cls, container: Container) -> "TargetBefore":
        return cls(
            id=container.id,
            name=container.name,
            hostname=container.config.hostname or "",
            restart_count=container.restart_count or 0,
            networks=tuple(sorted(container.network_settings.networks or {})),
        )


@dataclass(frozen=True)
class Fault:
    name: str
    description: str
    service: str
    # Returns the container to hit once the workload is in the right state, or None to wait.
    pick: Callable[[Stack, list[TaskSnapshot]], Container | None]
    inject: Callable[[Stack, Container], None]
    # Once the container is healthy again: is it the comeback this fault expects?
    came_back: Callable[[TargetBefore, Container, datetime], bool]


def containers(stack: Stack, service: str) -> list[Container]:
    return [
        c
        for c in stack.docker.compose.ps(services=[service])
        if (c.config.labels or {}).get(SERVICE_LABEL) == service and c.state.status == "running"
    ]


def by_hostname(stack: Stack, service: str, hostname: str) -> Container | None:
    return next((c for c in containers(stack, service) if c.config.hostname == hostname), None)


def kill_main_process(stack: Stack, container: Container) -> None:
    with contextlib.suppress(DockerException):  # the exec dies with the container it kills
        container.execute(KILL_MAIN_PROCESS)


def restarted_by_policy(before: TargetBefore, now: Container, fault_at: datetime) -> bool:
    return (now.restart_count or 0) > before.restart_count


def started_since(before: TargetBefore, now: Container, fault_at: datetime) -> bool:
    return now.state.started_at is not None and now.state.started_at >= fault_at


def reconnected(before: TargetBefore, now: Container, fault_at: datetime) -> bool:
    """A partitioned container is back when it is the same container (it never
    stopped) and attached again to every network it had before the fault."""
    attached = set(now.network_settings.networks or {})
    return now.id == before.id and set(before.networks) <= attached


def restart(stack: Stack, container: Container) -> None:
    container.restart()


def first_when_tasks_run(service: str) -> Callable[[Stack, list[TaskSnapshot]], Container | None]:
    def pick(stack: Stack, tasks: list[TaskSnapshot]) -> Container | None:
        if sum(t.state == "running" for t in tasks) < 2:
            return None
        found = containers(stack, service)
        return found[0] if found else None

    return pick


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


def partition_for(seconds: float) -> Callable[[Stack, Container], None]:
    def partition(stack: Stack, container: Container) -> None:
        networks = list((container.network_settings.networks or {}).keys())
        try:
            for network in networks:
                stack.docker.network.disconnect(network, container)
            time.sleep(seconds)
        finally:  # even on Ctrl-C: never leave a worker cut off
            for network in networks:
                with contextlib.suppress(DockerException):
                    stack.docker.network.connect(network, container)

    return partition


FAULTS: dict[str, Fault] = {
    fault.name: fault
    for fault in (
        Fault("scheduler-kill", "SIGKILL one scheduler", "scheduler",
              first_when_tasks_run("scheduler"), kill_main_process, restarted_by_policy),
        Fault("api-server-kill", "SIGKILL one api-server", "api-server",
              first_when_tasks_run("api-server"), kill_main_process, restarted_by_policy),
        Fault("worker-kill", "SIGKILL the worker running the long task", "worker",
              worker_running_long_task, kill_main_process, restarted_by_policy),
        Fault("triggerer-kill", "SIGKILL the triggerer holding a deferred task", "triggerer",
              triggerer_holding_deferred_task, kill_main_process, restarted_by_policy),
        Fault("redis-restart", "restart Redis", "redis",
              first_when_tasks_run("redis"), restart, started_since),
        Fault("mysql-restart", "restart MySQL", "mysql",
              first_when_tasks_run("mysql"), restart, started_since),
        Fault("worker-partition", "cut the long task's worker off the network for 40 s",
              "worker", worker_running_long_task, partition_for(40), reconnected),
    )
}  # fmt: skip


def wait_for_target(
    fault: Fault, stack: Stack, workload: Workload, timeout: float
) -> tuple[Container, list[TaskSnapshot]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            tasks = workload.tasks()
            if workload.finished():
                raise ClusterError(f"{fault.name}: the workload ended before a target was found")
        except AirflowApiError:
            time.sleep(1)  # a busy API answers again shortly; the deadline bounds this
            continue
        target = fault.pick(stack, tasks)
        if target is not None:
            return target, tasks
        time.sleep(0.5)
    raise TimeoutExpiredError(f"{fault.name}: no target found within {timeout:.0f} s")
