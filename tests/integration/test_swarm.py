"""The cluster as a Swarm stack over three Docker engines on this machine (`make test-swarm`).

Three engines in containers (`swarm-engines up`), the stack deployed across
them (`swarm-up --engines`), the example DAGs run through the load balancer,
the default workers scaled up and down (with runs in flight) through Swarm,
then, while DAG runs are in flight, `chaos --engines` kills the Redis
primary (its replica promoted by the sentinels), kills the MySQL group's
primary (the group elects another), cuts a host off from the others and
lets it back, and kills a whole host; last, a deploy onto a node
that lacks the image, which must leave no stack behind. The engines,
everything they ran and their state are removed at the end, also when a
test fails. Besides, on an engine of its own: a Swarm that cannot create
an overlay network, which `swarm-up` must refuse before deploying anything.
"""

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import NoSuchNetwork
from python_on_whales.utils import run

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.images import ImageBuilder
from airflow_ha.paths import STATE_DIR
from airflow_ha.settings import load_settings
from airflow_ha.swarm import deploy
from airflow_ha.swarm.chaos import PARTITION_AT_LEAST_S
from airflow_ha.swarm.engines import (
    NODE_IMAGE,
    EngineSet,
    address,
    labels_for,
    service_containers,
)
from airflow_ha.swarm.engines import start as start_engines
from airflow_ha.swarm.engines import stop as stop_engines
from airflow_ha.swarm.mysql import SERVICE as MYSQL_SERVER
from airflow_ha.swarm.mysql import StackMySQL
from airflow_ha.swarm.redis import SENTINEL_MASTER, StackRedis
from airflow_ha.swarm.stack_file import node_label

from .conftest import CliResult, readable_dags_copy, run_cli, wait_for, write_env_file

pytestmark = [pytest.mark.integration, pytest.mark.swarm]

UP_TIMEOUT_SECONDS = "1200"
# The hosts `chaos --engines` takes (swarm/chaos.py, choose_host): a kill the
# Redis primary's (engines.labels_for: the second), a partition the replica's
# (the third). The first, with the load balancer, it never takes.
LOST_HOST_INDEX = 2
CUT_OFF_HOST_INDEX = 3


@dataclass
class SwarmCluster:
    env_file: Path
    stack: str
    engines: EngineSet
    url: str
    client: AirflowClient

    def cli(self, *args: str) -> CliResult:
        return run_cli(self.env_file, *args)

    def manager(self) -> DockerClient:
        return self.engines.manager.client()

    @property
    def redis(self) -> StackRedis:
        return StackRedis(self.engines.engines, self.stack)

    @property
    def mysql(self) -> StackMySQL:
        return StackMySQL(self.engines.engines, self.stack)

    def wait_redis_settled(self, primary: str) -> None:
        """Until the sentinels name `primary` and the other server replicates it."""
        wait_for(
            f"{primary} the Redis primary, its replica in sync",
            lambda: self.redis.settled(primary),
            180,
        )

    def mysql_primary_on(self, engine_name: str) -> None:
        """Make the MySQL group's member on that engine the primary, as an
        operator would (`group_replication_set_as_primary`), then wait until
        the group is whole with it and every service is ready again for 30 s
        (Airflow's processes that held the old primary restart on its
        read-only errors)."""
        [engine] = [e for e in self.engines.engines if e.name == engine_name]
        [(client, container)] = service_containers([engine], self.stack, MYSQL_SERVER)
        switch = "SELECT group_replication_set_as_primary(@@server_uuid)"
        client.container.execute(
            container,
            ["sh", "-c", f'MYSQL_PWD="$(cat /run/secrets/mysql_root_password)" '
             f'mysql -uroot -e "{switch}"'],
        )  # fmt: skip
        wait_for(
            f"the MySQL primary on {engine_name}, the group whole",
            lambda: (
                (primary := self.mysql.primary()) is not None
                and primary.container == container
                and self.mysql.whole()
            ),
            120,
        )
        ready_since: list[float] = []

        def ready_for_30_s() -> bool:
            states = deploy.service_states(self.manager(), self.stack)
            if not all(state.ready for state in states):
                ready_since.clear()
                return False
            ready_since[:] = ready_since or [time.monotonic()]
            return time.monotonic() - ready_since[0] >= 30

        wait_for("every service ready for 30 s", ready_for_30_s, 300)

    def chaos_passes(self, fault: str, workdir: Path, target: str) -> dict[str, Any]:
        """`chaos --engines --fault <fault>`, which must pass by its own verdict
        against `target` with 3 of 3 runs, no task that ran on a host the fault
        did not take failed (a MySQL failover outlasts Airflow's usual
        heartbeat timeout: compose/swarm.yaml); its result as the JSON says."""
        report = workdir / f"{fault}.json"
        result = self.cli("chaos", "--engines", "--fault", fault, "--json", str(report))
        # In the captured output: pytest cuts a long assertion message short.
        print(f"\n{result.stderr}\n{result.stdout}")
        assert result.code == 0, f"chaos --fault {fault} exited {result.code}"
        payloads: list[dict[str, Any]] = json.loads(report.read_text())
        [payload] = payloads
        assert payload["ok"], payload
        assert payload["target"] == target, payload
        assert (payload["runs"], payload["succeeded"]) == (3, 3), payload
        assert payload["failed_where_nothing_was_lost"] == [], payload
        return payload

    def start_verify(self, *args: str) -> "subprocess.Popen[str]":
        """`verify` (of the example DAGs, unless `args` say which), running while
        a test breaks something."""
        command = [sys.executable, "-m", "airflow_ha", "--env-file", str(self.env_file)]
        return subprocess.Popen(
            [*command, "verify", "--url", self.url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwarmCluster]:
    workdir = tmp_path_factory.mktemp("swarm")
    project = f"afha-sw-{uuid.uuid4().hex[:8]}"
    env_file = write_env_file(
        workdir,
        COMPOSE_PROJECT_NAME=project,
        AIRFLOW_DAGS_DIR=str(readable_dags_copy(workdir)),
    )
    settings = load_settings(env_file)
    engines = EngineSet(f"{project}-swarm", 3, STATE_DIR / project / "swarm-engines")
    try:
        result = run_cli(env_file, "swarm-engines", "up")
        assert result.code == 0, f"`swarm-engines up` failed:\n{result}"
        result = run_cli(env_file, "swarm-up", "--engines", "--timeout", UP_TIMEOUT_SECONDS)
        assert result.code == 0, f"`swarm-up` failed:\n{result}"
        match = re.search(r"Airflow UI and REST API: (http://\S+)", result.stdout)
        assert match, result
        url = match[1]
        credentials = Credentials(settings.airflow_admin_user, settings.airflow_admin_password)
        yield SwarmCluster(env_file, project, engines, url, AirflowClient(url, credentials))
    finally:
        result = run_cli(env_file, "swarm-engines", "down")
        assert result.code == 0, f"`swarm-engines down` failed:\n{result}"
        shutil.rmtree(STATE_DIR / project, ignore_errors=True)


def test_replicas_are_spread_and_pinned_services_sit_on_their_nodes(swarm: SwarmCluster) -> None:
    states = {s.service: s for s in deploy.service_states(swarm.manager(), swarm.stack)}
    for service in ("api-server", "scheduler", "triggerer"):
        nodes = states[service].nodes
        assert len(nodes) == 2, (service, nodes)
        assert len(set(nodes)) == 2, (service, nodes)
    node = {e.index: e.name for e in swarm.engines.engines}
    # A member of the MySQL group on each host, the routers to its primary on two.
    assert states["mysql-server"].nodes == sorted(node.values())
    assert len(set(states["mysql"].nodes)) == 2, states["mysql"]
    assert states["lb"].nodes == [node[1]]
    assert states["redis"].nodes == [node[2]]
    assert set(states["worker"].nodes) <= {node[2], node[3]}
    result = swarm.cli("swarm-status", "--engines")
    assert result.code == 0, result
    assert swarm.url in result.stdout


def test_example_dags_run_across_the_hosts(swarm: SwarmCluster) -> None:
    result = swarm.cli("verify", "--url", swarm.url)
    assert result.code == 0, result
    assert "3 of 3 DAG runs succeeded; no task needed a second try" in result.stdout, result


def test_workers_scale_through_swarm_and_leave_by_warm_shutdown(swarm: SwarmCluster) -> None:
    """Up to three default workers, each given 60 s tasks, then down to one:
    whichever two Swarm stops hold running tasks, and must finish them first
    (Celery's warm shutdown), so the run succeeds with no task on a second try."""
    up = swarm.cli("scale", "3", "--engines")
    assert up.code == 0, up
    assert "3 of 3 registered" in up.stderr, up
    manager = swarm.manager()
    workers = {s.service: s for s in deploy.service_states(manager, swarm.stack)}
    assert (workers["worker"].replicas, workers["worker"].running) == (3, 3)
    hosts = {
        t.container_id[:12]
        for t in deploy.service_tasks(manager, f"{swarm.stack}_worker", {})
        if t.state == "running"
    }
    # Enough 60 s tasks for every slot of the three workers (test_scale.py says why).
    slots = load_settings(swarm.env_file).airflow_worker_concurrency
    conf = json.dumps({"light_tasks": 3 * slots, "heavy_tasks": 1, "seconds": 60})
    verify = swarm.start_verify("--dag", "example_queues", "--conf", f"example_queues={conf}")
    try:
        wait_for(
            "a task running on each of the three workers",
            lambda: (
                hosts
                <= {ti.get("hostname") for ti in swarm.client.task_instances_where(["running"])}
            ),
            timeout=180,
        )
        down = swarm.cli("scale", "1", "--engines")
        output, _ = verify.communicate(timeout=900)
    finally:
        if verify.poll() is None:
            verify.kill()
    assert down.code == 0, down
    assert down.stdout.count("celery@") == 1, down  # the table of the one left
    stopped = [line for line in down.stderr.splitlines() if "finished its tasks" in line]
    assert len(stopped) == 2, down
    assert "in warm shutdown: example_queues.light" in down.stderr, down  # they held tasks
    assert verify.returncode == 0, output
    assert "1 of 1 DAG runs succeeded; no task needed a second try" in output, output
    workers = {s.service: s for s in deploy.service_states(manager, swarm.stack)}
    assert (workers["worker"].replicas, workers["worker"].running) == (1, 1)
    print("\nscale 3 -> 1 with 60 s tasks on every worker:\n" + down.stderr)
    again = swarm.cli("scale", "2", "--engines")  # what the tests after this one expect
    assert again.code == 0, again


def test_a_mistaken_swarm_up_leaves_the_stack_running(swarm: SwarmCluster) -> None:
    manager = swarm.manager()
    namespace = f"com.docker.stack.namespace={swarm.stack}"

    def versions() -> dict[str, int | None]:
        return {
            str(s.spec.name): s.version.index if s.version else None
            for s in manager.service.list(filters=[("label", namespace)])
        }

    # Without a node for the Redis replica (the label whose loss the stack
    # bears best: Swarm stops the tasks of a label removed under them).
    before = versions()
    label = "airflow-ha.redis-replica"
    node = swarm.engines.engines[2].name
    replicas_before = {container for _, container in swarm.redis.containers("redis-replica")}
    manager.node.update(node, rm_labels=[label])
    try:
        # A bounded wait: should the check let it through, it waits for a
        # service that no node can run.
        result = swarm.cli("swarm-up", "--engines", "--timeout", "120")
        wait_for(
            "Swarm to stop the replica whose node lost its label",
            lambda: not replicas_before & {c for _, c in swarm.redis.containers("redis-replica")},
            timeout=120,
        )
    finally:
        manager.node.update(node, labels_add={label: "true"})
    assert result.code == 3, result
    assert result.stderr.strip().splitlines()[-1] == (
        f"airflow-ha: error: no ready node carries the label(s) {label}: "
        f"`docker node update --label-add {label}=true <node>` on a manager "
        '(README, "Beyond one machine")'
    )
    # Not one service of the running stack was changed.
    assert versions() == before
    swarm.wait_redis_settled("redis")


def test_losing_the_redis_primary_promotes_its_replica_and_loses_no_run(
    swarm: SwarmCluster, tmp_path: Path
) -> None:
    swarm.wait_redis_settled("redis")  # a new stack's first primary (redis-server.sh)
    target = f"redis on {swarm.engines.engines[LOST_HOST_INDEX - 1].name}"
    fault = swarm.chaos_passes("redis-primary-kill", tmp_path, target)
    assert fault["promoted_s"] is not None, fault
    # Seen from outside the command: the replica is the primary, and the
    # killed server, started again by Swarm, follows it.
    assert swarm.redis.primary() == "redis-replica"
    swarm.wait_redis_settled("redis-replica")

    # A planned switch back (what an operator does before maintenance of a
    # host), which also puts the primary back where the host tests expect it.
    answer = swarm.redis.sentinel("failover", SENTINEL_MASTER)
    assert answer.strip() == "OK", answer
    swarm.wait_redis_settled("redis")


def test_losing_the_mysql_primary_elects_another_and_loses_no_run(
    swarm: SwarmCluster, tmp_path: Path
) -> None:
    wait_for("the MySQL group whole", lambda: swarm.mysql.whole(), 180)
    before = swarm.mysql.primary()
    assert before is not None
    target = f"mysql primary on {before.client.system.info().name}"
    fault = swarm.chaos_passes("mysql-primary-kill", tmp_path, target)
    assert fault["promoted_s"] is not None, fault
    # Seen from outside the command: another member is the primary (the
    # killed one's container is gone: Swarm started a new one), and the group
    # is whole again with three members.
    after = swarm.mysql.primary()
    assert after is not None
    assert after.container != before.container
    assert before.container not in {m.container for m in swarm.mysql.members()}
    assert swarm.mysql.whole()


def test_a_host_cut_off_from_the_others_loses_no_run(swarm: SwarmCluster, tmp_path: Path) -> None:
    """The Redis replica's host (the third) cut off for at least 90 s, then let
    back: the command also spreads a worker pool that Swarm crowded onto the
    other host meanwhile, so the next test loses a host of a spread stack.
    The MySQL primary is moved there first, the hard case: it is cut off with
    the minority, the connected side elects another, and the old one must not
    serve stale reads after the let-back (README, "A run lost after a
    partition")."""
    swarm.wait_redis_settled("redis")
    host = swarm.engines.engines[CUT_OFF_HOST_INDEX - 1].name
    swarm.mysql_primary_on(host)
    fault = swarm.chaos_passes("host-partition", tmp_path, host)
    assert fault["let_back_s"] >= PARTITION_AT_LEAST_S, fault
    assert f"the MySQL primary was on {host}" in fault["notes"], fault
    # Seen from outside the command: the host a ready node again, every
    # service at its full count, every worker pool spread over the hosts.
    manager = swarm.manager()
    assert len(deploy.ready_node_labels(manager)) == len(swarm.engines.engines)
    states = {s.service: s for s in deploy.service_states(manager, swarm.stack)}
    assert all(s.ready for s in states.values()), states
    assert len(set(states["worker"].nodes)) == 2, states["worker"]
    swarm.wait_redis_settled("redis")


def test_losing_a_whole_host_loses_no_run(swarm: SwarmCluster, tmp_path: Path) -> None:
    swarm.wait_redis_settled("redis")  # on the host about to be lost
    lost = swarm.engines.engines[LOST_HOST_INDEX - 1].name
    swarm.chaos_passes("host-kill", tmp_path, lost)
    # Seen from outside the command: the host is gone, and Redis promoted on another.
    assert swarm.redis.primary() == "redis-replica"
    manager = swarm.manager()
    assert lost not in {
        n.description.hostname for n in manager.node.list() if n.status.state == "ready"
    }
    # The command refuses a second fault while a host is missing.
    again = swarm.cli("chaos", "--engines", "--fault", "redis-primary-kill")
    assert again.code != 0, again
    assert "1 of the 3 hosts are not ready Swarm nodes" in again.stderr.strip().splitlines()[-1]


def test_a_node_without_the_image_leaves_no_stack_behind(swarm: SwarmCluster) -> None:
    """After the host loss (the last test: it removes the stack). The Redis
    label moves to the first host, so that the labels check passes without
    the lost one; the third host loses the Airflow image; `swarm-up --host`
    (which, unlike `--engines`, gives the engines no images) must name the
    node and the image, and leave no service of the stack behind."""
    manager = swarm.manager()
    template = manager.service.inspect(f"{swarm.stack}_worker").spec.task_template
    assert template is not None
    assert template.container_spec is not None
    image = str(template.container_spec.image)
    result = swarm.cli("swarm-down", "--engines")
    assert result.code == 0, result
    first, third = swarm.engines.engines[0], swarm.engines.engines[2]
    manager.node.update(first.name, labels_add={"airflow-ha.redis": "true"})
    third.client().image.remove(image, force=True)

    result = swarm.cli("swarm-up", "--host", swarm.engines.manager.host, "--timeout", "600")

    assert result.code == 1, result
    last = result.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"airflow-ha: error: node {third.name} lacks the image of [\w-]+ \(.*No such image.*\): "
        r"load it there \(`docker save <image> \| docker load`\) and run `make swarm-up` "
        "again; the stack was removed",
        last,
    ), last
    namespace = f"com.docker.stack.namespace={swarm.stack}"
    assert manager.service.list(filters=[("label", namespace)]) == []
    # With no stack left, a `scale` against the Swarm says so and changes nothing.
    result = swarm.cli("scale", "2", "--engines")
    assert result.code != 0, result
    assert result.stderr.strip().splitlines()[-1] == (
        f"airflow-ha: error: stack {swarm.stack} is not deployed on this Swarm: run `make swarm-up`"
    )
    assert manager.service.list(filters=[("label", namespace)]) == []


def network_names(client: DockerClient) -> set[str]:
    """The engine's networks' names, in one `network ls`: python-on-whales's
    `network.list()` inspects each network afterwards, and one removed in
    between (the first Swarm's, going) failed a run at 603fb34."""
    listing = run([*client.docker_cmd, "network", "ls", "--format", "{{.Name}}"])
    assert isinstance(listing, str)
    return set(listing.split())


def test_a_swarm_without_room_for_an_overlay_network_gets_no_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """One engine of its own, its Swarm's address pool made one /24, which
    the ingress network takes: `swarm-up --host` must say so in one line
    (exit 3) and leave the Swarm as it was."""
    workdir = tmp_path_factory.mktemp("swarm-overlay")
    project = f"afha-ov-{uuid.uuid4().hex[:8]}"
    env_file = write_env_file(workdir, COMPOSE_PROJECT_NAME=project)
    docker = DockerClient()
    harness = EngineSet(f"{project}-swarm", 1, STATE_DIR / project / "swarm-engines")
    node_image = ImageBuilder(docker, load_settings(env_file), print).ensure_swarm_node(NODE_IMAGE)
    try:
        start_engines(docker, harness, node_image, [], [], print)
        engine = harness.manager
        client = engine.client()
        client.swarm.leave(force=True)
        run(
            [
                *client.docker_cmd,
                *("swarm", "init", "--advertise-addr", address(docker, harness, engine)),
                *("--default-addr-pool", "10.231.0.0/24", "--default-addr-pool-mask-length", "24"),
            ]
        )
        labels = {node_label(label): "true" for label in labels_for(1, 1)}
        client.node.update(engine.name, labels_add=labels)

        # The new Swarm's ingress network holds the pool's one subnet (the
        # first Swarm's may linger a while): Swarm accepts a new overlay
        # network, and gives it no subnet.
        def ingress_holds_the_pool() -> bool:
            try:
                ingress = client.network.list(filters=[("name", "ingress")])
            except NoSuchNetwork:  # the first Swarm's, removed between list and inspect
                return False
            return any(
                n.ipam.config and n.ipam.config[0].get("Subnet") == "10.231.0.0/24" for n in ingress
            )

        wait_for("the ingress network to hold the pool", ingress_holds_the_pool, timeout=60)
        networks = network_names(client)

        result = run_cli(env_file, "swarm-up", "--host", engine.host, "--timeout", "60")

        assert result.code == 3, result
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("airflow-ha: error: the Swarm cannot create an overlay network: "), (
            line
        )
        assert "address pool is used up" in line, line
        assert client.service.list() == []
        assert client.secret.list() == []
        # None added (the first Swarm's lingering ones may go meanwhile).
        assert network_names(client) - networks == set()
    finally:
        stop_engines(docker, harness, print)
        shutil.rmtree(STATE_DIR / project, ignore_errors=True)
