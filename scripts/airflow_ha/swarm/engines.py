"""Several Docker engines in containers on this machine, joined into one Swarm.

The hosts of `make test-swarm`, and of anyone trying the Swarm stack on one
machine. Each engine
runs in a container of images/swarm-node, with its own network address on a
bridge network of this machine, its own images (a tmpfs data root: overlayfs
works on tmpfs, not on the outer engine's storage), and its socket published
in a folder of the state directory, so the CLI reaches it without a TCP port.
What such an engine needs, seen on this kind of machine: every capability
but SYS_RESOURCE (not `--privileged`), seccomp and AppArmor unconfined, the
cgroup tree mounted read-write. Its containers' cgroups go under
/swarm-node-<name> of each hierarchy, which `down` removes.

Killing an engine's container kills every container it runs at once: a host
lost, as `make test-swarm` does.
"""

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError, TimeoutExpiredError
from airflow_ha.swarm.stack_file import NODE_LABELS, node_label

NODE_IMAGE = "airflow-ha/swarm-node:trixie"
ROLE_LABEL = "io.airflow-ha.swarm-engines"
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Room for the images and the containers' writable layers, in memory as used.
DATA_ROOT_SIZE = "12g"
ENGINE_START_TIMEOUT = 60.0

Log = Callable[[str], None]


def labels_for(index: int, count: int) -> tuple[str, ...]:
    """The airflow-ha node labels of the index-th engine (1-based): a member
    of the MySQL group on each of the first three, the load balancer on the
    first, the Redis primary on the second and its replica on the third (the
    first, with two engines), so that losing one host never takes both Redis
    servers or a majority of the group; Celery workers on every host but the
    first, whose CPUs serve the load balancer. A single engine carries every
    label."""
    if count == 1:
        return NODE_LABELS
    if index == 1:
        return ("lb", "mysql", "redis-replica") if count == 2 else ("lb", "mysql")
    if index == 2:
        return ("mysql", "redis", "workers")
    if index == 3:
        return ("mysql", "redis-replica", "workers")
    return ("workers",)


@dataclass(frozen=True)
class Engine:
    name: str  # container name, hostname and Swarm node name
    index: int
    socket: Path

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def client(self) -> DockerClient:
        return DockerClient(host=self.host)


@dataclass(frozen=True)
class EngineSet:
    prefix: str
    count: int
    state_dir: Path

    @property
    def network(self) -> str:
        return f"{self.prefix}-hosts"

    @property
    def engines(self) -> list[Engine]:
        return [
            Engine(f"{self.prefix}-node-{i}", i, self.state_dir / f"node-{i}" / "docker.sock")
            for i in range(1, self.count + 1)
        ]

    @property
    def manager(self) -> Engine:
        return self.engines[0]


def answers(client: DockerClient) -> bool:
    """The Docker engine behind `client` answers."""
    try:
        client.system.info()
    except DockerException:
        return False
    return True


def service_containers(
    engines: Iterable[Engine], stack: str, service: str
) -> list[tuple[DockerClient, str]]:
    """(engine, container ID) of each running container of a service of the
    stack; engines that do not answer (a lost host) are passed over."""
    found = []
    label = f"com.docker.swarm.service.name={stack}_{service}"
    for engine in engines:
        client = engine.client()
        try:
            running = client.container.list(filters=[("label", label)])
        except DockerException:
            continue
        found += [(client, c.id) for c in running]
    return found


def running_engines(docker: DockerClient, engines: EngineSet) -> list[str]:
    """Names of the engine containers of this set's prefix that exist, running
    or not, however many were started."""
    containers = docker.container.list(
        all=True, filters=[("label", f"{ROLE_LABEL}={engines.prefix}")]
    )
    return sorted(c.name for c in containers)


def discover(docker: DockerClient, prefix: str, state_dir: Path) -> EngineSet:
    """The set of engines started with this prefix, as many as there are."""
    return EngineSet(
        prefix, len(running_engines(docker, EngineSet(prefix, 0, state_dir))), state_dir
    )


def reachable_manager(engines: EngineSet) -> Engine | None:
    """The first engine that answers as a Swarm manager: with one host lost,
    another manager still speaks for the Swarm."""
    for engine in engines.engines:
        try:
            swarm = engine.client().system.info().swarm
        except DockerException:
            continue
        if swarm is not None and swarm.control_available:
            return engine
    return None


def is_up(docker: DockerClient, engines: EngineSet) -> bool:
    """Every engine answers and the manager sees all of them as Swarm nodes."""
    if len(running_engines(docker, engines)) != engines.count:
        return False
    if not all(answers(e.client()) for e in engines.engines):
        return False
    try:
        nodes = engines.manager.client().node.list()
    except DockerException:
        return False
    return sorted(str(n.description.hostname) for n in nodes) == sorted(
        e.name for e in engines.engines
    )


def start(
    docker: DockerClient,
    engines: EngineSet,
    node_image: str,
    images: Sequence[str],
    bind_paths: Iterable[Path],
    log: Log,
) -> None:
    """Start the engines, join them into a Swarm (every node a manager, so two of
    three keep a quorum), label them, and load `images` into each. On any failure
    everything started so far is removed before the error goes on."""
    try:
        docker.network.create(engines.network, driver="bridge", labels={ROLE_LABEL: engines.prefix})
        for engine in engines.engines:
            _run_engine(docker, engines, engine, node_image, bind_paths)
            log(f"{engine.name}: engine started")
        for engine in engines.engines:
            _wait_engine(engine)
        _form_swarm(docker, engines, log)
        sync_images(docker, engines, images, log)
    except BaseException:
        log("removing the engines started so far")
        stop(docker, engines, log)
        raise


def _run_engine(
    docker: DockerClient,
    engines: EngineSet,
    engine: Engine,
    node_image: str,
    bind_paths: Iterable[Path],
) -> None:
    engine.socket.parent.mkdir(parents=True, exist_ok=True)
    volumes: list[tuple[str, str, str]] = [
        (str(CGROUP_ROOT), str(CGROUP_ROOT), "rw"),
        (str(engine.socket.parent), "/run/swarm-node", "rw"),
    ]
    # Bind mounts of the stack (the DAG folder) exist at the same path on every node.
    volumes += [(str(path), str(path), "ro") for path in bind_paths]
    docker.run(
        node_image,
        name=engine.name,
        hostname=engine.name,
        detach=True,
        networks=[engines.network],
        cap_add=["ALL"],
        cap_drop=["SYS_RESOURCE"],
        security_options=["seccomp=unconfined", "apparmor=unconfined"],
        tmpfs=[f"/var/lib/docker:rw,exec,dev,suid,size={DATA_ROOT_SIZE}"],
        volumes=volumes,
        labels={ROLE_LABEL: engines.prefix},
    )


def _wait_engine(engine: Engine) -> None:
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    while not answers(engine.client()):
        if time.monotonic() > deadline:
            raise TimeoutExpiredError(
                f"{engine.name}: its Docker engine did not answer within "
                f"{ENGINE_START_TIMEOUT:.0f} s (see `docker logs {engine.name}`)"
            )
        time.sleep(1)


def address(docker: DockerClient, engines: EngineSet, engine: Engine) -> str:
    """The engine's address on the engines' network (what the others reach it at)."""
    networks = docker.container.inspect(engine.name).network_settings.networks or {}
    return str(networks[engines.network].ip_address)


def _form_swarm(docker: DockerClient, engines: EngineSet, log: Log) -> None:
    manager = engines.manager
    manager_address = address(docker, engines, manager)
    manager.client().swarm.init(advertise_address=manager_address)
    token = manager.client().swarm.join_token("manager")
    for engine in engines.engines[1:]:
        engine.client().swarm.join(
            f"{manager_address}:2377",
            advertise_address=address(docker, engines, engine),
            token=token,
        )
    for engine in engines.engines:
        labels = {node_label(label): "true" for label in labels_for(engine.index, engines.count)}
        manager.client().node.update(engine.name, labels_add=labels)
        log(f"{engine.name}: Swarm manager, labels {', '.join(sorted(labels))}")


def images_to_load(wanted: Mapping[str, str], present: Mapping[str, str]) -> list[str]:
    """The images (name -> ID) an engine lacks or holds in another version."""
    return sorted(name for name, image_id in wanted.items() if present.get(name) != image_id)


def _image_ids(client: DockerClient, names: Iterable[str]) -> dict[str, str]:
    ids = {}
    for name in names:
        if client.image.exists(name):
            ids[name] = str(client.image.inspect(name).id)
    return ids


def sync_images(docker: DockerClient, engines: EngineSet, images: Sequence[str], log: Log) -> None:
    """Give every engine this machine's version of `images`: `docker save` of
    what some engine lacks, once, then `docker load` where it is lacking. No
    registry needed."""
    wanted = _image_ids(docker, images)
    lacking = {
        e.name: images_to_load(wanted, _image_ids(e.client(), images)) for e in engines.engines
    }
    needed = sorted({name for names in lacking.values() for name in names})
    if not needed:
        log("every engine has the current images")
        return
    with tempfile.TemporaryDirectory(prefix="airflow-ha-images-") as tmp:
        archive = Path(tmp) / "images.tar"
        log(f"saving {len(needed)} image(s) for the engines: {', '.join(needed)}")
        docker.image.save(needed, output=archive)
        for engine in engines.engines:
            if lacking[engine.name]:
                engine.client().image.load(archive, quiet=True)
                log(f"{engine.name}: images loaded")


def stop(docker: DockerClient, engines: EngineSet, log: Log) -> None:
    """Remove the engines (all of this prefix), everything they ran and held,
    their network, their sockets' folders and their cgroups. Safe to run on a
    partial or absent set."""
    names = running_engines(docker, engines)
    if names:
        docker.container.remove(names, force=True, volumes=True)
        log(f"removed {', '.join(names)}")
    if docker.network.exists(engines.network):
        docker.network.remove(engines.network)
    for name in names:
        _remove_cgroups(name)
    if engines.state_dir.exists():
        shutil.rmtree(engines.state_dir)


def _remove_cgroups(name: str) -> None:
    """Remove /sys/fs/cgroup/<hierarchy>/swarm-node-<name> trees, deepest first
    (a cgroup directory goes only when it is empty)."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / f"swarm-node-{name}"
        if not top.is_dir():
            continue
        for root, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(root)
            except OSError as error:
                raise ClusterError(f"cannot remove cgroup {root}: {error.strerror}") from None
