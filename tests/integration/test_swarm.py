"""The cluster as a Swarm stack over three Docker engines on this machine (`make test-swarm`).

Three engines in containers (`swarm-engines up`), the stack deployed across
them (`swarm-up --engines`), the example DAGs run through the load balancer,
the default workers scaled up and down (with runs in flight) through Swarm,
then, while DAG runs are in flight, the Redis primary killed (its replica
promoted by the sentinels), a host cut off from the others and let back, and
a whole host killed; last, a deploy onto a node that lacks the image, which
must leave no stack behind. The engines,
everything they ran and their state are removed at the end, also when a
test fails.
"""

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from python_on_whales import DockerClient, DockerException

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.paths import STATE_DIR
from airflow_ha.settings import load_settings
from airflow_ha.swarm import deploy
from airflow_ha.swarm.engines import Engine, EngineSet, address

from .conftest import CliResult, readable_dags_copy, run_cli, wait_for, write_env_file

pytestmark = [pytest.mark.integration, pytest.mark.swarm]

UP_TIMEOUT_SECONDS = "1200"
# The Redis primary, workers and a sentinel (engines.labels_for), and whatever
# replicas of the spread services Swarm put there. The first host, which
# holds MySQL (one server, README), is the one the stack cannot lose.
LOST_HOST_INDEX = 2
# The Redis replica, workers and a sentinel: the host whose loss of the network
# splits no Redis server from its clients' majority (cutting the primary's
# host off is a host loss for Redis, which the kill already proves).
CUT_OFF_HOST_INDEX = 3
# Longer than Airflow takes to fail a task that stopped heartbeating (15 s)
# and than a cut-off task takes to stop itself (3 failed heartbeats): the
# tasks there must have been given up, not merely delayed.
CUT_OFF_AT_LEAST_S = 90
SENTINEL_MASTER = "airflow-ha"  # compose/redis/redis-sentinel.sh


@dataclass
class SwarmCluster:
    env_file: Path
    stack: str
    engines: EngineSet
    url: str
    client: AirflowClient
    manager_errors: list[str] = field(default_factory=list)

    def cli(self, *args: str) -> CliResult:
        return run_cli(self.env_file, *args)

    def manager(self) -> DockerClient:
        return self.engines.manager.client()

    def containers(self, service: str) -> list[tuple[DockerClient, str]]:
        """(engine, container id) of each running container of a service of the stack."""
        found = []
        label = f"com.docker.swarm.service.name={self.stack}_{service}"
        for engine in self.engines.engines:
            client = engine.client()
            try:
                running = client.container.list(filters=[("label", label)])
            except DockerException:
                continue  # a lost host
            found += [(client, c.id) for c in running]
        return found

    def redis_cli(self, service: str, *args: str, port: int = 6379) -> str:
        """redis-cli in a running container of a Redis service, with the stack's
        password; "" while the service has no running container to ask."""
        command = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli "$@"'
        for client, container in self.containers(service):
            try:
                return str(
                    client.container.execute(
                        container, ["sh", "-c", command, "-", "-p", str(port), *args]
                    )
                )
            except DockerException:
                continue  # stopped since it was listed
        return ""

    def redis_primary(self) -> str:
        """The Redis server (service name) the sentinels name as the primary."""
        answer = self.redis_cli(
            "redis-sentinel", "sentinel", "get-master-addr-by-name", SENTINEL_MASTER, port=26379
        )
        return answer.split()[0] if answer else ""

    def wait_redis_settled(self, primary: str) -> None:
        """Until the sentinels name `primary` and the other server replicates it."""
        replica = {"redis": "redis-replica", "redis-replica": "redis"}[primary]

        def settled() -> bool:
            if self.redis_primary() != primary:
                return False
            if "master_link_status:up" not in self.redis_cli(replica, "info", "replication"):
                return False
            # ...and the sentinels would promote it (not flagged down).
            seen = self.redis_cli(
                "redis-sentinel", "sentinel", "replicas", SENTINEL_MASTER, port=26379
            )
            flags = ("s_down", "o_down", "disconnected")
            return replica in seen.split() and not any(flag in seen for flag in flags)

        wait_for(f"{primary} the Redis primary, {replica} its replica in sync", settled, 180)

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

    def while_managers_answer(self, probe: Callable[[], bool]) -> Callable[[], bool]:
        """`probe`, which counts as not yet true while the Swarm's managers do not
        answer (seen as "rpc error ... context deadline exceeded": they elect
        a leader, as after a host, which may have led them, is cut off or back)."""

        def asked() -> bool:
            try:
                return probe()
            except DockerException as error:
                if "rpc error" not in str(error):
                    raise
                self.manager_errors.append(str(error).strip().splitlines()[-1])
                return False

        return asked

    def wait_task_running_on(self, host: Engine, containers: set[str]) -> None:
        """Until a task instance runs in one of `containers` (the host's)."""
        wait_for(
            f"a task running on {host.name}",
            lambda: any(
                ti.get("hostname") in containers
                for ti in self.client.task_instances_where(["running"])
            ),
            timeout=180,
        )

    def wait_recovered_without(self, host: Engine, what: str) -> None:
        """Until every service runs what the other hosts can hold, none on `host`."""
        manager = self.manager()
        wait_for(
            what,
            self.while_managers_answer(
                lambda: deploy.recovered(
                    deploy.service_states(manager, self.stack),
                    host.name,
                    deploy.ready_node_labels(manager, excluding=host.name),
                )
            ),
            timeout=300,
        )

    def retried_since(self, moment: datetime) -> list[dict[str, Any]]:
        """Task instances that succeeded on a second or later try started after `moment`."""
        return [
            ti
            for ti in self.client.task_instances_where(["success"])
            if ti["try_number"] > 1 and datetime.fromisoformat(ti["start_date"]) > moment
        ]


@contextmanager
def cut_off(engines: EngineSet, host: Engine) -> Iterator[None]:
    """Drops every packet between `host` and the other engines until the block
    ends (also on failure): the host and its containers run on, unreachable.
    In the raw table, ahead of connection tracking and of the engine's own
    rules, so no established connection or Docker's rules let a packet by."""
    docker = DockerClient()
    peers = [address(docker, engines, e) for e in engines.engines if e != host]
    rules = [r for p in peers for r in (["PREROUTING", "-s", p], ["OUTPUT", "-d", p])]
    for rule in rules:
        docker.container.execute(host.name, ["iptables", "-t", "raw", "-I", *rule, "-j", "DROP"])
    try:
        yield
    finally:
        for rule in rules:
            docker.container.execute(
                host.name, ["iptables", "-t", "raw", "-D", *rule, "-j", "DROP"]
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
    assert states["mysql"].nodes == [node[1]]
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
    replicas_before = {container for _, container in swarm.containers("redis-replica")}
    manager.node.update(node, rm_labels=[label])
    try:
        # A bounded wait: should the check let it through, it waits for a
        # service that no node can run.
        result = swarm.cli("swarm-up", "--engines", "--timeout", "120")
        wait_for(
            "Swarm to stop the replica whose node lost its label",
            lambda: not replicas_before & {c for _, c in swarm.containers("redis-replica")},
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
    swarm: SwarmCluster,
) -> None:
    primary = "redis"  # a new stack's first primary (redis-server.sh)
    swarm.wait_redis_settled(primary)
    verify = swarm.start_verify()
    try:
        wait_for("a task running", lambda: swarm.client.task_instances_where(["running"]), 180)
        client, container = swarm.containers(primary)[0]
        client.container.kill(container)
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        # Asked twice a second (wait_for's 2 s would blur the figure).
        while swarm.redis_primary() in (primary, "") and time.monotonic() - killed < 120:
            time.sleep(0.5)
        promoted_s = time.monotonic() - killed
        output, _ = verify.communicate(timeout=900)
        finished_s = time.monotonic() - killed
    finally:
        if verify.poll() is None:
            verify.kill()
    assert swarm.redis_primary() == "redis-replica", f"no promotion in {promoted_s:.0f} s"
    assert verify.returncode == 0, output
    assert "3 of 3 DAG runs succeeded" in output, output
    # The killed server, started again by Swarm, follows the new primary, and
    # the sentinels count it as a replica they could promote.
    swarm.wait_redis_settled("redis-replica")
    retried = swarm.retried_since(killed_at)
    print(
        f"\nredis-primary-kill: replica promoted {promoted_s:.1f} s after the kill "
        f"(asked every 0.5 s); {len(retried)} task(s) retried; "
        f"the runs done {finished_s:.1f} s after the kill"
    )

    # A planned switch back (what an operator does before maintenance of a
    # host), which also puts the primary back where the host-loss test expects it.
    answer = swarm.redis_cli("redis-sentinel", "sentinel", "failover", SENTINEL_MASTER, port=26379)
    assert answer.strip() == "OK", answer
    swarm.wait_redis_settled("redis")


def test_a_host_cut_off_from_the_others_loses_no_run(swarm: SwarmCluster) -> None:
    swarm.wait_redis_settled("redis")
    unanswered_before = len(swarm.manager_errors)
    host = swarm.engines.engines[CUT_OFF_HOST_INDEX - 1]
    its_containers = {c.id[:12] for c in host.client().container.list()}
    manager = swarm.manager()
    verify = swarm.start_verify()
    try:
        swarm.wait_task_running_on(host, its_containers)
        with cut_off(swarm.engines, host):
            cut_at = datetime.now(UTC)
            cut = time.monotonic()
            swarm.wait_recovered_without(
                host, "every service back to its replicas on the hosts still connected"
            )
            recovered_s = time.monotonic() - cut
            time.sleep(max(0.0, CUT_OFF_AT_LEAST_S - recovered_s))
        healed_s = time.monotonic() - cut
        output, _ = verify.communicate(timeout=900)
    finally:
        if verify.poll() is None:
            verify.kill()
    assert verify.returncode == 0, output
    assert "3 of 3 DAG runs succeeded" in output, output
    retried = swarm.retried_since(cut_at)
    for ti in retried:
        assert ti["hostname"] not in its_containers, ti
    again = [(datetime.fromisoformat(ti["start_date"]) - cut_at).total_seconds() for ti in retried]
    # Let back in, the host is a ready node again and every service is at its
    # full count across the three hosts, the Redis replica in sync.
    wait_for(
        f"{host.name} ready again, every service at its replicas",
        swarm.while_managers_answer(
            lambda: (
                len(deploy.ready_node_labels(manager)) == len(swarm.engines.engines)
                and all(s.ready for s in deploy.service_states(manager, swarm.stack))
            )
        ),
        timeout=300,
    )
    swarm.wait_redis_settled("redis")
    back_s = time.monotonic() - cut
    print(
        f"\nhost-partition {host.name}: {len(retried)} task(s) retried on other hosts, "
        f"the last running again {max(again, default=0):.1f} s after the cut; every "
        f"service back to its replicas on the others after {recovered_s:.1f} s; let back "
        f"after {healed_s:.1f} s, every service at full count on all hosts after "
        f"{back_s:.1f} s; the managers did not answer "
        f"{len(swarm.manager_errors) - unanswered_before} time(s) (asked every 2 s)"
    )


def test_losing_a_whole_host_loses_no_run(swarm: SwarmCluster) -> None:
    swarm.wait_redis_settled("redis")  # on the host about to be lost
    lost = swarm.engines.engines[LOST_HOST_INDEX - 1]
    lost_containers = {c.id[:12] for c in lost.client().container.list()}
    verify = swarm.start_verify()
    try:
        swarm.wait_task_running_on(lost, lost_containers)
        DockerClient().container.kill(lost.name)
        killed_at = datetime.now(UTC)
        killed = time.monotonic()
        swarm.wait_recovered_without(
            lost, "every service back to its replicas on the surviving hosts"
        )
        recovered_s = time.monotonic() - killed
        output, _ = verify.communicate(timeout=900)
        finished_s = time.monotonic() - killed
        assert swarm.redis_primary() == "redis-replica"  # promoted on a surviving host
    finally:
        if verify.poll() is None:
            verify.kill()
    assert verify.returncode == 0, output
    assert "3 of 3 DAG runs succeeded" in output, output

    retried = swarm.retried_since(killed_at)
    for ti in retried:
        assert ti["hostname"] not in lost_containers, ti
    again = [
        (datetime.fromisoformat(ti["start_date"]) - killed_at).total_seconds() for ti in retried
    ]
    print(
        f"\nhost-kill {lost.name}: {len(retried)} task(s) retried on other hosts, "
        f"the last running again {max(again, default=0):.1f} s after the kill; "
        f"every service back to its replicas after {recovered_s:.1f} s; "
        f"the runs done {finished_s:.1f} s after the kill"
    )


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
