"""Deploy the stack onto a Swarm, watch it come up, and take it down.

The checks before a deploy each end in one line naming what to do, and leave
the Swarm untouched: the engine must be a manager; for every label the stack
places services by, some node must carry it; the engines must be able to make
an overlay network. A node that lacks an image shows up once the stack is
deployed (its tasks are rejected with "No such image"): the stack is then
removed again, so nothing stays half-deployed.
"""

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.components.task.cli_wrapper import Task
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError, ConfigError, TimeoutExpiredError
from airflow_ha.swarm.stack_file import (
    NODE_LABELS,
    ONE_SHOT_SERVICES,
    PINNED_SERVICES,
    SPREAD_SERVICES,
    node_label,
)

OVERLAY_CHECK_NETWORK = "airflow-ha-overlay-check"
OVERLAY_SUBNET_TIMEOUT_S = 10.0  # Swarm's allocator gives a new network its subnet at once
LOG_LINES_ON_FAILURE = 25

Log = Callable[[str], None]


@dataclass(frozen=True)
class TaskState:
    """One Swarm task of a service, as `docker service ps` shows it."""

    node: str
    state: str  # current state: running, complete, rejected, failed, ...
    desired: str  # desired state: running, shutdown, complete
    error: str
    created: datetime | None = None
    slot: int = 0  # of a replicated service
    container_id: str = ""


@dataclass(frozen=True)
class ServiceState:
    """A service of the stack: its name without the stack prefix, replicas
    wanted, and its tasks."""

    service: str
    replicas: int
    tasks: tuple[TaskState, ...]

    @property
    def running(self) -> int:
        return sum(1 for t in self.tasks if t.state == "running" and t.desired == "running")

    @property
    def ready(self) -> bool:
        if self.service in ONE_SHOT_SERVICES:
            return any(t.state == "complete" for t in self.tasks)
        return self.running >= self.replicas

    @property
    def nodes(self) -> list[str]:
        return sorted(t.node for t in self.tasks if t.state == "running" and t.desired == "running")


def missing_labels(node_labels: Iterable[Mapping[str, str]]) -> list[str]:
    """The stack's placement labels that no node carries (with value "true")."""
    carried = {key for labels in node_labels for key, value in labels.items() if value == "true"}
    return [node_label(label) for label in NODE_LABELS if node_label(label) not in carried]


def capacity(service: str, nodes: Sequence[Mapping[str, str]]) -> int | None:
    """How many replicas of a service these nodes (their labels) can run: one
    per node for a spread service (per node of its label, if it is pinned
    too), none without a node of its label, else any number (None)."""
    if service in PINNED_SERVICES:
        label = node_label(PINNED_SERVICES[service])
        nodes = [labels for labels in nodes if labels.get(label) == "true"]
        if service not in SPREAD_SERVICES:
            return None if nodes else 0
    if service in SPREAD_SERVICES:
        return len(nodes)
    return None


def recovered(
    services: Sequence[ServiceState], lost_node: str, surviving: Sequence[Mapping[str, str]]
) -> bool:
    """Every service runs as many replicas as the surviving nodes (their
    labels) can hold, none of them on the lost node: its replica count, or
    one per node for a spread service (three sentinels on two nodes: two),
    or none for a service pinned to the lost node alone (the Redis replica)."""

    def back(state: ServiceState) -> bool:
        room = capacity(state.service, surviving)
        wanted = state.replicas if room is None else min(state.replicas, room)
        return state.running >= wanted and lost_node not in state.nodes

    return bool(services) and all(back(s) for s in services if s.service not in ONE_SHOT_SERVICES)


def ready_node_labels(client: DockerClient, excluding: str = "") -> list[dict[str, str]]:
    """The labels of every ready node of the Swarm (but the one named `excluding`)."""
    return [
        dict(n.spec.labels or {})
        for n in client.node.list()
        if n.status.state == "ready" and n.description.hostname != excluding
    ]


def image_problem(services: Sequence[ServiceState], since: datetime) -> str | None:
    """The first task made since `since` and rejected for want of an image, as
    one line, or None. Older tasks are history: a stack deployed again over a
    running one must not be removed for a rejection it has long got over."""
    for state in services:
        for task in state.tasks:
            recent = task.created is not None and task.created >= since
            if recent and "No such image" in task.error:
                return f"node {task.node} lacks the image of {state.service} ({task.error.strip()})"
    return None


def check_manager(client: DockerClient) -> None:
    swarm = client.system.info().swarm
    state = swarm.local_node_state if swarm else "inactive"
    if swarm is None or state != "active":
        raise ConfigError(
            f"this Docker engine is not part of a Swarm (state: {state}): point SWARM_HOST "
            "at a manager of your Swarm, run `docker swarm init` here for a one-host Swarm, "
            "or `make swarm-engines` for three engines on this machine (then ENGINES=1)"
        )
    if not swarm.control_available:
        raise ConfigError(
            "this Docker engine is a Swarm worker, not a manager: run `make swarm-up` "
            "against a manager (SWARM_HOST=ssh://user@manager or its socket)"
        )


def check_labels(client: DockerClient) -> None:
    missing = missing_labels(ready_node_labels(client))
    if missing:
        adds = " ".join(f"--label-add {label}=true" for label in missing)
        raise ConfigError(
            f"no ready node carries the label(s) {', '.join(missing)}: "
            f'`docker node update {adds} <node>` on a manager (README, "Beyond one machine")'
        )


def check_overlay(client: DockerClient) -> None:
    """Creates and removes an overlay network, as the stack's would be. Swarm
    accepts a network it has no subnet for (its address pool used up) and
    gives it none a moment later: the stack's tasks would then never start."""
    try:
        client.network.create(OVERLAY_CHECK_NETWORK, driver="overlay")
    except DockerException as error:
        reason = (error.stderr or "").strip().splitlines()[-1:] or ["unknown error"]
        raise ConfigError(f"the Swarm cannot create an overlay network: {reason[0]}") from None
    try:
        deadline = time.monotonic() + OVERLAY_SUBNET_TIMEOUT_S
        while not client.network.inspect(OVERLAY_CHECK_NETWORK).ipam.config:
            if time.monotonic() > deadline:
                raise ConfigError(
                    "the Swarm cannot create an overlay network: it gave one no subnet, its "
                    "address pool is used up (`docker info`: Default Address Pool; `docker "
                    "network ls --filter driver=overlay` shows what holds it)"
                )
            time.sleep(0.5)
    finally:
        client.network.remove(OVERLAY_CHECK_NETWORK)


def _task_state(task: Task, node_names: Mapping[str, str]) -> TaskState:
    status = task.status
    container = status.container_status if status else None
    return TaskState(
        node=node_names.get(task.node_id or "") or task.node_id or "-",
        state=(status.state if status else None) or "-",
        desired=task.desired_state or "-",
        error=(status.err if status else None) or "",
        created=task.created_at,
        slot=task.slot or 0,
        container_id=(container.container_id if container else None) or "",
    )


def service_tasks(
    client: DockerClient, service: str, node_names: Mapping[str, str], tries: int = 3
) -> list[TaskState]:
    """The tasks of a service, read at once. python-on-whales lists their IDs,
    then reads each one, so a task Swarm deletes in between (a scale-down, an
    old task past the history limit) fails the read: then all are read again."""
    attempt = 1
    while True:
        try:
            return [_task_state(task, node_names) for task in client.service.ps(service)]
        except DockerException as error:
            if "No such object" not in str(error) or attempt >= tries:
                raise
            attempt += 1


def node_names(client: DockerClient) -> dict[str, str]:
    """Node ID -> hostname (its name in `docker node ls`)."""
    return {n.id: str(n.description.hostname) for n in client.node.list()}


def service_states(client: DockerClient, stack: str) -> list[ServiceState]:
    services = client.service.list(filters=[("label", f"com.docker.stack.namespace={stack}")])
    names = node_names(client)
    states = []
    for service in services:
        name = str(service.spec.name).removeprefix(f"{stack}_")
        mode = service.spec.mode or {}
        replicas = int((mode.get("Replicated") or {}).get("Replicas") or 0)
        tasks = service_tasks(client, service.id, names)
        states.append(ServiceState(name, replicas, tuple(tasks)))
    return sorted(states, key=lambda s: s.service)


def published_url(client: DockerClient, stack: str, service: str, target_port: int) -> str:
    """http:// and the address of the node running `service`, with the port it
    publishes for `target_port` (published on that node only: `mode: host`);
    a sentence instead when it does not run."""
    inspected = client.service.inspect(f"{stack}_{service}")
    ports = (inspected.endpoint.ports if inspected.endpoint else None) or []
    published = next((p.published_port for p in ports if p.target_port == target_port), None)
    nodes = next((s.nodes for s in service_states(client, stack) if s.service == service), [])
    if published is None or not nodes:
        return f"(the {service} service is not running)"
    address = client.node.inspect(nodes[0]).status.addr
    return f"http://{address}:{published}"


def api_url(client: DockerClient, stack: str) -> str:
    """The Airflow UI's and REST API's address: the load balancer's."""
    return published_url(client, stack, "lb", 8080)


def deploy(client: DockerClient, stack: str, stack_file: Path) -> None:
    # resolve_image="never": the images are on the nodes; there may be no registry.
    client.stack.deploy(stack, compose_files=[stack_file], resolve_image="never")


def wait_ready(
    client: DockerClient, stack: str, since: datetime, timeout: float, log: Log
) -> list[ServiceState]:
    """Wait until every service runs its replicas (airflow-init: completed once).
    A node without an image for a task made since `since` (the deploy) removes
    the stack again and fails at once."""
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        states = service_states(client, stack)
        for state in states:
            label = f"{state.running}/{state.replicas} running" + (
                f" on {', '.join(state.nodes)}" if state.nodes else ""
            )
            if state.service in ONE_SHOT_SERVICES:
                label = "completed" if state.ready else "running once"
            if seen.get(state.service) != label:
                seen[state.service] = label
                log(f"{state.service}: {label}")
        problem = image_problem(states, since)
        if problem:
            remove(client, stack, log)
            raise ClusterError(
                f"{problem}: load it there (`docker save <image> | docker load`) "
                "and run `make swarm-up` again; the stack was removed"
            )
        if states and all(s.ready for s in states):
            return states
        if time.monotonic() > deadline:
            waiting = [s for s in states if not s.ready]
            details = "\n".join(_last_logs(client, stack, s.service) for s in waiting[:3])
            names = ", ".join(s.service for s in waiting)
            raise TimeoutExpiredError(
                f"not running after {timeout:.0f} s: {names} (`make swarm-down` removes the stack)",
                details,
            )
        time.sleep(3)


def _last_logs(client: DockerClient, stack: str, service: str) -> str:
    try:
        logs = client.service.logs(f"{stack}_{service}", tail=LOG_LINES_ON_FAILURE)
    except DockerException:
        return f"--- {service}: no logs"
    return f"--- {service}, last {LOG_LINES_ON_FAILURE} lines:\n{str(logs).rstrip()}"


def remove(client: DockerClient, stack: str, log: Log, timeout: float = 120) -> None:
    """Remove the stack's services, secrets, configs and network (volumes stay).

    `docker stack rm` cannot remove the network while the services' containers
    still stop on their nodes: it is tried again until they have stopped."""
    client.stack.remove(stack)
    deadline = time.monotonic() + timeout
    label = f"com.docker.stack.namespace={stack}"
    while networks := client.network.list(filters=[("label", label)]):
        if time.monotonic() > deadline:
            names = ", ".join(n.name for n in networks)
            raise TimeoutExpiredError(
                f"stack {stack}: network {names} still in use after {timeout:.0f} s"
            )
        time.sleep(2)
        for network in networks:
            with contextlib.suppress(DockerException):  # still attached: next round
                client.network.remove(network)
    log(f"stack {stack} removed (its volumes stay on their nodes: `docker volume ls`)")
