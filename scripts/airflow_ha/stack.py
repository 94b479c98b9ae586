"""The running Compose project: start, wait for health, report, stop."""

import socket
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.cgroups import Bounds, Usage, read_bounds, read_usage
from airflow_ha.docker_host import compose_client
from airflow_ha.errors import ClusterError, ConfigError, TimeoutExpiredError
from airflow_ha.settings import Settings

SERVICE_LABEL = "com.docker.compose.service"
ONE_SHOT_SERVICES = frozenset({"airflow-init"})
LOG_LINES_ON_FAILURE = 25


def http_url(host: str | None, port: int) -> str:
    """The URL of a published port: the wildcard addresses are reached on the
    loopback, and an IPv6 address goes in brackets (RFC 3986)."""
    if host in (None, "", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass(frozen=True)
class ServiceState:
    """One container of the project, as `status` shows it."""

    service: str
    container: str
    hostname: str
    state: str
    health: str
    exit_code: int | None

    @property
    def ready(self) -> bool:
        if self.service in ONE_SHOT_SERVICES:
            return self.state == "exited" and self.exit_code == 0
        return self.state == "running" and self.health in ("healthy", "-")

    @property
    def failed(self) -> bool:
        return self.service in ONE_SHOT_SERVICES and self.state == "exited" and self.exit_code != 0

    @property
    def label(self) -> str:
        if self.service in ONE_SHOT_SERVICES and self.state == "exited":
            return f"exited ({self.exit_code})"
        return self.state if self.health == "-" else f"{self.state}, {self.health}"


@dataclass(frozen=True)
class PublishedPort:
    setting: str
    service: str
    container_port: int
    host_port: int


def _service_state(container: Container) -> ServiceState:
    state = container.state
    health = state.health.status if state.health is not None and state.health.status else "-"
    return ServiceState(
        service=(container.config.labels or {}).get(SERVICE_LABEL, "?"),
        container=container.name,
        hostname=container.config.hostname or "",
        state=state.status or "?",
        health=health,
        exit_code=state.exit_code,
    )


def log_tails(readers: dict[str, Callable[[], object]]) -> str:
    chunks = []
    for name, read in readers.items():
        try:
            text = str(read())
        except DockerException as error:
            text = f"(no logs: {error})"
        chunks.append(f"--- last {LOG_LINES_ON_FAILURE} log lines of {name} ---\n{text}")
    return "\n".join(chunks)


class Stack:
    """One Compose project of the cluster.

    `overrides` are Compose files layered over the main one (a benchmark
    profile's); `api_service` is the service that publishes the API on 8080.
    """

    def __init__(
        self,
        settings: Settings,
        env_files: list[Path],
        overrides: Sequence[Path] = (),
        api_service: str = "lb",
    ) -> None:
        self.settings = settings
        self.api_service = api_service
        self.docker: DockerClient = compose_client(
            settings.compose_project_name, env_files, overrides
        )

    @property
    def project(self) -> str:
        return self.settings.compose_project_name

    def published_ports(self) -> list[PublishedPort]:
        return [
            PublishedPort(
                "AIRFLOW_API_PORT", self.api_service, 8080, self.settings.airflow_api_port
            ),
            PublishedPort("FLOWER_PORT", "flower", 5555, self.settings.flower_port),
        ]

    def services(self) -> list[ServiceState]:
        states = [_service_state(c) for c in self.docker.compose.ps(all=True)]
        return sorted(states, key=lambda s: (s.service, s.container))

    def check_ports_free(self) -> None:
        """Refuse to start when a configured host port is taken by something else."""
        for port in self.published_ports():
            if port.host_port == 0 or self._publishes(port):
                continue
            family = socket.AF_INET6 if ":" in self.settings.bind_address else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind((self.settings.bind_address, port.host_port))
                except OSError:
                    raise ConfigError(
                        f"port {port.host_port} on {self.settings.bind_address} is already in use; "
                        f"free it or set {port.setting} in .env (0 picks a free port)"
                    ) from None

    def _publishes(self, port: PublishedPort) -> bool:
        try:
            _, host_port = self.docker.compose.port(port.service, port.container_port)
        except DockerException:
            return False
        return host_port == port.host_port

    def api_url(self) -> str:
        """The UI / REST API, through the load balancer."""
        return self.url(self.api_service, 8080)

    def url(self, service: str, container_port: int) -> str:
        try:
            host, port = self.docker.compose.port(service, container_port)
        except DockerException:
            raise ClusterError(
                f"{service} is not running in project {self.project}: run `make up`"
            ) from None
        if port is None:
            raise ClusterError(
                f"{service} publishes no port {container_port} in project {self.project}"
            )
        return http_url(host, port)

    def up(self, quiet: bool = False) -> None:
        # A benchmark that was killed outright leaves the cluster paused.
        if any(s.state == "paused" for s in self.services()):
            self.docker.compose.unpause()
        self.docker.compose.up(detach=True, no_build=True, remove_orphans=True, quiet=quiet)

    def wait_healthy(
        self,
        timeout: float,
        progress: Callable[[str], None],
        services: Collection[str] = (),
    ) -> list[ServiceState]:
        """Wait until every container (of `services`, if given) is healthy
        (one-shots: exited 0), showing changes."""
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while True:
            states = [s for s in self.services() if not services or s.service in services]
            for state in states:
                if seen.get(state.container) != state.label:
                    seen[state.container] = state.label
                    progress(f"{state.container}: {state.label}")
            failed = [s for s in states if s.failed]
            if failed:
                raise ClusterError(
                    f"{failed[0].service} failed with exit code {failed[0].exit_code}",
                    details=self.last_logs([failed[0].service]),
                )
            if states and all(s.ready for s in states):
                return states
            if time.monotonic() > deadline:
                waiting = [s for s in states if not s.ready]
                names = ", ".join(f"{s.container} ({s.label})" for s in waiting)
                raise TimeoutExpiredError(
                    f"not healthy after {timeout:.0f} s: {names or 'no containers'}",
                    details=self.last_logs(sorted({s.service for s in waiting})),
                )
            time.sleep(2)

    def last_logs(self, services: list[str]) -> str:
        """The last log lines of each service, for an error's details."""
        return log_tails(
            {
                service: partial(
                    self.docker.compose.logs, services=[service], tail=str(LOG_LINES_ON_FAILURE)
                )
                for service in services
            }
        )

    def last_container_logs(self, containers: list[str]) -> str:
        """The last log lines of each container, for an error's details."""
        return log_tails(
            {
                name: partial(self.docker.container.logs, name, tail=LOG_LINES_ON_FAILURE)
                for name in containers
            }
        )

    def cgroup_usage(self) -> dict[str, tuple[str, Usage]]:
        """Container name -> (service, CPU and memory) of every running container."""
        usage = {}
        for container in self.docker.compose.ps():
            if container.state.running and container.state.pid:
                service = (container.config.labels or {}).get(SERVICE_LABEL, "?")
                usage[container.name] = (service, read_usage(container.state.pid))
        return usage

    def cgroup_bounds(self) -> dict[str, tuple[str, Usage, Bounds]]:
        """Container name -> (service, usage, limits) of every running container."""
        found = {}
        for container in self.docker.compose.ps():
            if container.state.running and container.state.pid:
                service = (container.config.labels or {}).get(SERVICE_LABEL, "?")
                pid = container.state.pid
                found[container.name] = (service, read_usage(pid), read_bounds(pid))
        return found

    def require_running(self) -> None:
        if not any(s.state == "running" for s in self.services()):
            raise ClusterError(f"project {self.project} is not running: run `make up` first")

    def down(self, remove_volumes: bool = False, quiet: bool = False) -> None:
        self.docker.compose.down(remove_orphans=True, volumes=remove_volumes, quiet=quiet)
