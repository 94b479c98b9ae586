"""Inject a fault of `chaos --engines` into the Swarm stack under the chaos
workload, watch the recovery, and hand what was seen to the verdict
(`swarm/chaos.py`).

The faults act on the engines of `swarm-engines up`, where each host's
engine is a socket on this machine and each host a container: a host is
killed by killing its engine's container (everything on it dies at once; no
FIN, no RST reaches its peers), cut off by dropping every packet between its
engine and the others (iptables' raw table in the engine's network
namespace, ahead of connection tracking, so no established connection slips
by), and the Redis primary or the MySQL group's primary by killing its
container on its host's engine.
Every time counts from the injection as Docker confirms it (the killed
container's FinishedAt), or from the return of the last iptables rule.
"""

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run

from airflow_ha.airflow_api import AirflowApiError, AirflowClient
from airflow_ha.chaos.evidence import ContainerMark, died_at
from airflow_ha.chaos.workload import Workload, now
from airflow_ha.errors import ClusterError
from airflow_ha.pools import POOLS
from airflow_ha.swarm import deploy
from airflow_ha.swarm.chaos import (
    HOST_KILL,
    HOST_PARTITION,
    MYSQL_PRIMARY_KILL,
    PARTITION_AT_LEAST_S,
    REDIS_PRIMARY_KILL,
    Seen,
    SwarmFaultResult,
    choose_host,
    crowded_pools,
    judge,
    strike_now,
    task_key,
)
from airflow_ha.swarm.engines import Engine, EngineSet, address, reachable_manager
from airflow_ha.swarm.mysql import StackMySQL
from airflow_ha.swarm.redis import SERVERS, StackRedis, other_server
from airflow_ha.swarm.stack_file import PINNED_SERVICES, node_label

Log = Callable[[str], None]
TARGET_TIMEOUT_S = 180.0
# Services back on the other hosts: Swarm needs its node-down timeout, then a
# container start and a healthcheck on a busy machine.
RECOVERY_TIMEOUT_S = 300.0
DEATH_TIMEOUT_S = 30.0


@dataclass
class _Watch:
    """Moments seen after the injection, and the managers' silences meanwhile."""

    injected_at: datetime
    started: float = field(default_factory=time.monotonic)  # for deadlines
    promoted: datetime | None = None
    back: datetime | None = None
    let_back: datetime | None = None
    whole: datetime | None = None
    manager_unanswered: int = 0

    def after(self, moment: datetime | None) -> float | None:
        """Seconds from the injection to `moment`."""
        return None if moment is None else round((moment - self.injected_at).total_seconds(), 1)

    def seen(self, seen: Seen) -> Seen:
        return replace(
            seen,
            promoted_s=self.after(self.promoted),
            services_back_s=self.after(self.back),
            let_back_s=self.after(self.let_back),
            whole_s=self.after(self.whole),
            manager_unanswered=self.manager_unanswered,
        )


class SwarmChaos:
    """The faults of `chaos --engines` on the stack `stack` over `engines`."""

    def __init__(
        self, docker: DockerClient, engines: EngineSet, stack: str, client: AirflowClient, log: Log
    ) -> None:
        self.docker = docker  # this machine's engine, which runs the engines' containers
        self.engines = engines
        self.stack = stack
        self.client = client
        self.log = log
        self.redis = StackRedis(engines.engines, stack)
        self.mysql = StackMySQL(engines.engines, stack)

    def manager(self) -> DockerClient:
        engine = reachable_manager(self.engines)
        if engine is None:
            raise ClusterError("no engine of `make swarm-engines` answers as a Swarm manager")
        return engine.client()

    def _asked(self, watch: _Watch, probe: Callable[[], bool]) -> bool:
        """`probe`, counted as not yet true while the Swarm's managers do not
        answer ("rpc error": they elect a leader, as after a manager was cut
        off or came back)."""
        try:
            return probe()
        except DockerException as error:
            if "rpc error" not in str(error):
                raise
            watch.manager_unanswered += 1
            return False

    def _crowded_pools(self, manager: DockerClient) -> list[str]:
        nodes_of = {s.service: s.nodes for s in deploy.service_states(manager, self.stack)}
        worker_hosts = sum(
            labels.get(node_label(PINNED_SERVICES["worker"])) == "true"
            for labels in deploy.ready_node_labels(manager)
        )
        return crowded_pools(nodes_of, {pool.service for pool in POOLS}, worker_hosts)

    def spread_pools(self) -> list[str]:
        """Spreads a pool crowded onto one host over the hosts again: a forced
        update replaces its workers one at a time (each in warm shutdown), and
        Swarm places each new one on the host with the fewest. Returns what
        could not be done, one note each: the fault is over and judged by
        then, and a refused update (seen once: a returned engine's "Address
        already in use", which pauses it) must not take the verdict away."""
        try:
            manager = self.manager()
            crowded = self._crowded_pools(manager)
        except (ClusterError, DockerException) as error:
            return [f"the worker pools not checked for a crowded host ({_said(error)})"]
        notes = []
        for service in crowded:
            self.log(f"{service}: every worker on one host (Swarm does not move replicas "
                     "back to a host that returns); spreading them again")  # fmt: skip
            # Not python-on-whales' service.update: it lets the docker CLI print
            # the service's name on our stdout, above the table.
            command = ["service", "update", "--force", "--detach=false", "--quiet"]
            try:
                run([*manager.service.docker_cmd, *command, f"{self.stack}_{service}"])
            except DockerException as error:
                notes.append(
                    f"{service} left on one host, its update refused ({_said(error)}): "
                    f"`docker service update --force {self.stack}_{service}` on a manager "
                    "spreads it"
                )
                self.log(f"{service}: not spread again: {_said(error)}")
        return notes

    def check_whole(self) -> str:
        """The Redis primary, once every host is a ready node, every service at
        full count, no worker pool crowded onto one host, Redis settled and
        the MySQL group whole; a ClusterError naming what is missing otherwise."""
        manager = self.manager()
        ready = len(deploy.ready_node_labels(manager))
        if ready < self.engines.count:
            raise ClusterError(
                f"{self.engines.count - ready} of the {self.engines.count} hosts are not ready "
                "Swarm nodes, and chaos needs them all (after a host-kill: `make "
                "swarm-engines-down`, `make swarm-engines`, `make swarm-up ENGINES=1`)"
            )
        starting = [s.service for s in deploy.service_states(manager, self.stack) if not s.ready]
        if starting:
            raise ClusterError(
                f"{', '.join(starting)} not at full count: see `make swarm-status ENGINES=1`, "
                "and try again once every service runs"
            )
        crowded = self._crowded_pools(manager)
        if crowded:
            raise ClusterError(
                f"every worker of {', '.join(crowded)} runs on one host, so losing it would "
                "take the whole pool: `docker service update --force "
                f'{self.stack}_{crowded[0]}` on a manager spreads them (README, "Beyond '
                'one machine")'
            )
        primary = self.redis.primary()
        if primary not in SERVERS or not self.redis.settled(primary):
            raise ClusterError(
                "the Redis servers are not settled (a primary the sentinels name and its "
                "replica in sync): see `make swarm-status ENGINES=1`, and try again shortly"
            )
        if not self.mysql.whole():
            raise ClusterError(
                "the MySQL group is not whole (every member ONLINE, one of them the primary): "
                "see `docker service logs <stack>_mysql-server`, and try again shortly"
            )
        return primary

    def _engine(self, name: str) -> Engine:
        return next(e for e in self.engines.engines if e.name == name)

    def _target_host(self, fault: str, primary: str) -> Engine:
        placements: dict[str, set[str]] = {}
        for state in deploy.service_states(self.manager(), self.stack):
            for node in state.nodes:
                placements.setdefault(node, set()).add(state.service)
        if fault == REDIS_PRIMARY_KILL:
            host = next((h for h, s in placements.items() if primary in s), None)
        elif fault == MYSQL_PRIMARY_KILL:
            member = self.mysql.primary()
            host = None if member is None else str(member.client.system.info().name)
        else:
            host = choose_host(fault, placements, primary)
        if host is None:
            raise ClusterError(
                f"{fault}: no host runs the server it needs (besides a worker, without the "
                'load balancer, for a host fault: the node labels of README, "Beyond one machine")'
            )
        return self._engine(host)

    def _wait_task_on(self, workload: Workload, hostnames: frozenset[str]) -> bool:
        """Until the fault may strike the host of `hostnames` (`strike_now`).
        False: not within the timeout, or the workload ended first."""
        started = time.monotonic()
        while (waited := time.monotonic() - started) < TARGET_TIMEOUT_S:
            try:
                tasks = workload.tasks()
                if workload.finished():
                    return False
            except AirflowApiError:
                time.sleep(1)
                continue
            if strike_now(tasks, hostnames, waited):
                return True
            time.sleep(1)
        return False

    def _kill(self, client: DockerClient, container: str) -> datetime | None:
        """Kills a container; its FinishedAt once Docker records the death."""
        before = ContainerMark.of(client.container.inspect(container))
        client.container.kill(container)
        deadline = time.monotonic() + DEATH_TIMEOUT_S
        while time.monotonic() < deadline:
            died = died_at(before, ContainerMark.of(client.container.inspect(container)))
            if died is not None:
                return died
            time.sleep(0.2)
        return None

    @contextlib.contextmanager
    def _cut_off(self, host: Engine) -> Iterator[None]:
        """Every packet between `host` and the other engines dropped until the
        block ends (also on failure or Ctrl-C)."""
        peers = [address(self.docker, self.engines, e) for e in self.engines.engines if e != host]
        rules = [r for p in peers for r in (["PREROUTING", "-s", p], ["OUTPUT", "-d", p])]
        added = []
        try:
            for rule in rules:
                self.docker.container.execute(
                    host.name, ["iptables", "-t", "raw", "-I", *rule, "-j", "DROP"]
                )
                added.append(rule)
            yield
        finally:
            for rule in added:
                self.docker.container.execute(
                    host.name, ["iptables", "-t", "raw", "-D", *rule, "-j", "DROP"]
                )

    def run(self, fault: str, runs: int, timeout: float) -> SwarmFaultResult:
        primary = self.check_whole()
        host = self._target_host(fault, primary)
        hostnames = frozenset(c.id[:12] for c in host.client().container.list())
        workload = Workload(self.client, runs)
        workload.start()
        # The MySQL primary's host may run no worker (the first): the fault
        # strikes while tasks run anywhere, and loses no host.
        lost = frozenset[str]() if fault == MYSQL_PRIMARY_KILL else hostnames
        on = "any host" if fault == MYSQL_PRIMARY_KILL else host.name
        wait_on = self._all_hostnames() if fault == MYSQL_PRIMARY_KILL else hostnames
        self.log(f"{fault}: {runs} workload runs triggered; waiting for a task on {on}")
        target = {
            REDIS_PRIMARY_KILL: f"{primary} on {host.name}",
            MYSQL_PRIMARY_KILL: f"mysql primary on {host.name}",
        }.get(fault, host.name)
        seen = Seen(target, None, "", lost)
        # Whether a host fault takes the MySQL primary too (a failover of the
        # group besides), named with the result; asked only for a host fault
        # (it runs a query in every member's container).
        mysql_primary = self.mysql.primary() if fault in (HOST_PARTITION, HOST_KILL) else None
        mysql_on_host = (
            mysql_primary is not None and mysql_primary.client.system.info().name == host.name
        )
        if not self._wait_task_on(workload, wait_on):
            seen = replace(seen, evidence=f"no task ran on {on} within "
                           f"{TARGET_TIMEOUT_S:.0f} s or before the runs ended")  # fmt: skip
            self.log(f"{fault}: {seen.evidence}; the cluster is left untouched")
        elif fault == HOST_PARTITION:
            seen = self._partition(seen, primary, host, workload, timeout)
        else:
            seen = self._kill_and_watch(fault, seen, primary, host, workload, timeout)
        tasks = workload.tasks()
        earlier = {task_key(t): workload.earlier_host(t) for t in tasks if t.try_number > 1}
        result = judge(fault, seen, workload.run_snapshots(), tasks, earlier)
        if mysql_on_host and result.injected:
            result.notes.append(f"the MySQL primary was on {host.name}")
        if fault == HOST_PARTITION and result.injected:
            result.notes.extend(self.spread_pools())  # leave the stack as it was found
        if fault == HOST_KILL and result.injected:
            result.notes.append(
                f"{host.name} stays lost (its state was in memory): `make swarm-engines-down`, "
                "`make swarm-engines` and `make swarm-up ENGINES=1` start over"
            )
        self.log(f"{fault}: {result.succeeded}/{result.runs} runs succeeded, "
                 f"{len(result.retried)} task(s) ran again")  # fmt: skip
        return result

    def _all_hostnames(self) -> frozenset[str]:
        return frozenset(
            c.id[:12] for engine in self.engines.engines for c in engine.client().container.list()
        )

    def _partition(
        self, seen: Seen, primary: str, host: Engine, workload: Workload, timeout: float
    ) -> Seen:
        with self._cut_off(host):
            watch = _Watch(now())
            self.log(f"{HOST_PARTITION}: {host.name} cut off from the other hosts")
            self._watch(HOST_PARTITION, host, timeout, watch, None)
        watch.let_back = now()
        self.log(f"{HOST_PARTITION}: {host.name} let back after {watch.after(watch.let_back)} s")
        self._follow(HOST_PARTITION, primary, host, workload, timeout, watch)
        evidence = "every packet between it and the other hosts dropped"
        return watch.seen(replace(seen, injected_at=watch.injected_at, evidence=evidence))

    def _kill_and_watch(
        self, fault: str, seen: Seen, primary: str, host: Engine, workload: Workload,
        timeout: float,
    ) -> Seen:  # fmt: skip
        killed_mysql = ""  # the MySQL primary's container, for mysql-primary-kill
        if fault == HOST_KILL:
            died = self._kill(self.docker, host.name)
            what = f"host {host.name} (its engine's container)"
        elif fault == MYSQL_PRIMARY_KILL:
            member = self.mysql.primary()
            if member is None:
                return replace(seen, evidence="the MySQL group has no primary to kill")
            killed_mysql = member.container
            died = self._kill(member.client, killed_mysql)
            what = f"MySQL primary (container {killed_mysql[:12]})"
        else:
            client, container = self.redis.containers(primary)[0]
            died = self._kill(client, container)
            what = f"Redis server {primary} (container {container[:12]})"
        if died is None:
            return replace(seen, evidence=f"Docker shows no death of {what}")
        self.log(f"{fault}: {what} killed")
        watch = _Watch(died)
        self._watch(fault, host, timeout, watch, lambda: self._promoted(primary, killed_mysql))
        self._follow(fault, primary, host, workload, timeout, watch)
        evidence = f"{what} died at {died:%H:%M:%S.%f} UTC (Docker's FinishedAt)"
        return watch.seen(replace(seen, injected_at=died, evidence=evidence))

    def _watch(
        self, fault: str, host: Engine, timeout: float, watch: _Watch,
        promoted: Callable[[], bool] | None,
    ) -> None:  # fmt: skip
        """Watches the fault's first phase: for a partition, until the services
        are back on the others and the cut lasted PARTITION_AT_LEAST_S (or
        RECOVERY_TIMEOUT_S went by); else until the promotion (`promoted`
        says when it is seen) and the services' return were seen, or the
        timeout."""
        partitioned = fault == HOST_PARTITION
        expects_promotion = promoted is not None
        only_a_server = fault in (REDIS_PRIMARY_KILL, MYSQL_PRIMARY_KILL)
        manager = self.manager()
        deadline = watch.started + (RECOVERY_TIMEOUT_S if partitioned else timeout)
        while time.monotonic() < deadline:
            if promoted is not None and watch.promoted is None and promoted():
                watch.promoted = now()
                self.log(f"{fault}: a new primary")
            pending_services = not only_a_server and watch.back is None
            if pending_services and self._asked(
                watch, lambda: self._recovered_without(manager, host)
            ):
                watch.back = now()
                self.log(f"{fault}: every service back on the other hosts")
            elapsed = time.monotonic() - watch.started
            if partitioned and watch.back is not None and elapsed >= PARTITION_AT_LEAST_S:
                break
            if (
                not partitioned
                and (watch.promoted or not expects_promotion)
                and (watch.back or only_a_server)
            ):
                break
            time.sleep(0.5 if expects_promotion and watch.promoted is None else 2)

    def _promoted(self, redis_primary: str, killed_mysql: str) -> bool:
        """A new primary: the MySQL group names one other than the killed
        member's container (`killed_mysql`), or else the sentinels name a
        Redis server other than `redis_primary`."""
        if killed_mysql:
            new = self.mysql.primary()
            return new is not None and new.container != killed_mysql
        return self.redis.primary() not in (redis_primary, "")

    def _recovered_without(self, manager: DockerClient, host: Engine) -> bool:
        return deploy.recovered(
            deploy.service_states(manager, self.stack),
            host.name,
            deploy.ready_node_labels(manager, excluding=host.name),
        )

    def _follow(
        self, fault: str, primary: str, host: Engine, workload: Workload, timeout: float,
        watch: _Watch,
    ) -> None:  # fmt: skip
        """Until the runs end and what was let back is whole again (the host a
        ready node with every service at full count, the killed Redis server a
        replica in sync, or the killed MySQL primary a member again), or the
        timeout."""
        manager = self.manager()
        deadline = watch.started + timeout
        while time.monotonic() < deadline:
            pending = watch.whole is None and fault != HOST_KILL
            if pending and self._asked(watch, lambda: self._whole(fault, manager, primary)):
                watch.whole = now()
                what = {
                    HOST_PARTITION: f"{host.name} whole",
                    MYSQL_PRIMARY_KILL: "the MySQL group whole",
                }.get(fault, f"{primary} a replica in sync")
                self.log(f"{fault}: {what} again")
            try:
                finished = workload.finished()
            except AirflowApiError:
                finished = False
            if finished and (watch.whole is not None or fault == HOST_KILL):
                return
            time.sleep(2)

    def _whole(self, fault: str, manager: DockerClient, primary: str) -> bool:
        if fault == REDIS_PRIMARY_KILL:
            return self.redis.settled(other_server(primary))
        if fault == MYSQL_PRIMARY_KILL:
            return self.mysql.whole()
        return (
            len(deploy.ready_node_labels(manager)) == self.engines.count
            and all(s.ready for s in deploy.service_states(manager, self.stack))
            and self.redis.settled(primary)
            and self.mysql.whole()
        )


def _said(error: ClusterError | DockerException) -> str:
    """What went wrong, in one line: for the docker CLI, its last on stderr."""
    if isinstance(error, ClusterError):
        return str(error)
    lines = (error.stderr or "").strip().splitlines()
    return lines[-1] if lines else f"docker exited {error.return_code}"
