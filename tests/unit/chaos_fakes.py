"""Stand-ins for Docker in the chaos unit tests: plain objects with the few
attributes the code reads (python-on-whales objects are duck-typed at runtime).

A fake container behaves as Docker does for what chaos checks: a kill (the
exec of KILL_MAIN_PROCESS) stamps FinishedAt and the restart policy bumps the
restart count; `restart()` stamps FinishedAt and a new StartedAt; network
disconnects really detach it.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.chaos.evidence import ContainerMark
from airflow_ha.chaos.faults import KILL_MAIN_PROCESS
from airflow_ha.chaos.workload import TaskSnapshot
from airflow_ha.stack import SERVICE_LABEL, Stack

FAULT_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
NEVER = datetime(1, 1, 1, tzinfo=UTC)  # Docker's FinishedAt of a container that never stopped


def at(seconds: float) -> datetime:
    """The moment `seconds` after (negative: before) FAULT_AT."""
    return FAULT_AT + timedelta(seconds=seconds)


@dataclass
class FakeConfig:
    labels: dict[str, str] | None
    hostname: str | None
    env: list[str] = field(default_factory=list)


@dataclass
class FakeHealth:
    status: str | None


@dataclass
class FakeState:
    status: str = "running"
    started_at: datetime | None = None
    finished_at: datetime | None = NEVER
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
    starts: int = 0
    stops: int = 0
    stop_error: Exception | None = None
    start_error: Exception | None = None
    # What a kill does: the moment the process dies (None: the kill misses).
    dies_at: datetime | None = None
    # What an exec prints, given its command (None: nothing).
    answer: Callable[[list[str]], str] | None = None

    def execute(self, command: list[str]) -> str:
        self.executed.append(command)
        if command == KILL_MAIN_PROCESS and self.dies_at is not None:
            self.state.finished_at = self.dies_at
            self.restart_count = (self.restart_count or 0) + 1
        if self.exec_error is not None:
            raise self.exec_error
        return self.answer(command) if self.answer is not None else ""

    def restart(self) -> None:
        self.restarts += 1
        if self.dies_at is not None:
            self.state.finished_at = self.dies_at
            self.state.started_at = self.dies_at + timedelta(seconds=1)

    def stop(self) -> None:
        self.stops += 1
        if self.stop_error is not None:
            raise self.stop_error
        self.state.status = "exited"
        if self.dies_at is not None:
            self.state.finished_at = self.dies_at

    def start(self) -> None:
        self.starts += 1
        if self.start_error is not None:
            raise self.start_error
        self.state.status = "running"


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
        state=FakeState(status=status, started_at=at(-3600)),
        restart_count=restart_count,
    )


@dataclass
class FakeCompose:
    containers: list[FakeContainer]
    asked: list[list[str]] = field(default_factory=list)
    # False: everything, whatever was asked (the code must filter by label and state
    # itself); True: as `docker compose ps` answers: the asked services' containers,
    # and stopped ones only with all=True.
    like_docker: bool = False

    def ps(self, services: list[str] | None = None, all: bool = False) -> list[FakeContainer]:
        self.asked.append(list(services or []))
        if not self.like_docker:
            return list(self.containers)
        return [
            c
            for c in self.containers
            if (not services or (c.config.labels or {}).get(SERVICE_LABEL) in services)
            and (all or c.state.status in ("running", "restarting", "paused"))
        ]


@dataclass
class FakeNetwork:
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    detaches: bool = True  # False: disconnect "succeeds" but leaves the container attached
    connect_delay: float = 0.0  # how long a connect takes
    connect_errors: set[str] = field(default_factory=set)  # networks whose connect fails

    def disconnect(self, network: str, target: FakeContainer) -> None:
        self.calls.append(("disconnect", network, target.name))
        if self.detaches and target.network_settings.networks is not None:
            target.network_settings.networks.pop(network, None)

    def connect(self, network: str, target: FakeContainer) -> None:
        self.calls.append(("connect", network, target.name))
        time.sleep(self.connect_delay)
        if network in self.connect_errors:
            raise DockerException(["docker", "network", "connect", network], 1, b"", b"failed")
        networks = target.network_settings.networks
        if networks is None:
            target.network_settings.networks = networks = {}
        networks[network] = object()


@dataclass
class FakeContainerCli:
    containers: list[FakeContainer]
    log_text: dict[str, str] = field(default_factory=dict)  # container name -> its logs
    logs_error: Exception | None = None
    logs_asked: list[tuple[str, datetime | None, datetime | None]] = field(default_factory=list)

    def inspect(self, container_id: str) -> FakeContainer:
        return next(c for c in self.containers if c.id == container_id)

    def logs(self, container: str, since: datetime | None, until: datetime | None) -> str:
        self.logs_asked.append((container, since, until))
        if self.logs_error is not None:
            raise self.logs_error
        return self.log_text[container]


class FakeDocker:
    def __init__(self, containers: list[FakeContainer]) -> None:
        self.compose = FakeCompose(containers)
        self.network = FakeNetwork()
        self.container = FakeContainerCli(containers)


class FakeStack:
    def __init__(self, *containers: FakeContainer) -> None:
        self.docker = FakeDocker(list(containers))
        self.waited: list[float] = []

    def wait_healthy(self, timeout: float, progress: Callable[[str], None]) -> list[object]:
        self.waited.append(timeout)
        for c in self.docker.compose.containers:  # as Stack reports each service's state
            progress(f"{c.name}: healthy")
        return []


def as_stack(stack: FakeStack) -> Stack:
    return cast(Stack, stack)


def as_container(c: FakeContainer) -> Container:
    return cast(Container, c)


def mark_of(c: FakeContainer) -> ContainerMark:
    return ContainerMark.of(as_container(c))


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
    end: datetime | None = None,
) -> TaskSnapshot:
    return TaskSnapshot(
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        state=state,
        try_number=try_number,
        start=start,
        end=end,
        hostname=hostname,
        triggerer_host=triggerer_host,
        triggerer_job_id=job,
    )
