"""Scale one Celery worker pool without losing a task.

Up: Compose starts the new containers, then we wait until Celery knows every
one of them (through Flower) and consumes the pool's queue.

Down: we choose the workers to remove (the least busy, then the newest), tell
them through Flower to stop consuming, wait until each has finished the tasks
it runs or has already taken (Celery's active and reserved lists, and Airflow's
running task instances on its host), then stop and remove it. Should the wait
time out or be interrupted, the workers still waiting consume again, so the
pool is left as it was.
"""

import fcntl
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from python_on_whales import Container

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.errors import ClusterError, TimeoutExpiredError, UsageError
from airflow_ha.flower_api import FlowerClient, WorkerInfo
from airflow_ha.pools import WorkerPool
from airflow_ha.stack import Stack

NUMBER_LABEL = "com.docker.compose.container-number"
# Matches `stop_grace_period` of the worker services in docker-compose.yaml:
# the longest a task may still run when a worker is stopped.
STOP_GRACE_SECONDS = 600
# Task instances that will need a worker of their queue before they can finish.
WAITING_STATES = ["scheduled", "queued", "up_for_retry", "up_for_reschedule", "deferred"]
REPORT_EVERY_SECONDS = 30.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class PoolContainer:
    """One running container of a worker pool."""

    name: str
    hostname: str
    number: int

    @property
    def celery_name(self) -> str:
        return f"celery@{self.hostname}"

    @classmethod
    def of(cls, container: Container) -> "PoolContainer":
        labels = container.config.labels or {}
        return cls(
            name=container.name,
            hostname=container.config.hostname or "",
            number=int(labels.get(NUMBER_LABEL, "0")),
        )


def choose_to_remove(
    containers: list[PoolContainer], busy: dict[str, int], count: int
) -> list[PoolContainer]:
    """The `count` containers to drain: the least busy, then the newest.

    A worker that did not answer (absent from `busy`) is treated as busy: its
    tasks are unknown, so it goes last.
    """
    unknown = 1 << 30

    def order(container: PoolContainer) -> tuple[int, int]:
        return busy.get(container.celery_name, unknown), -container.number

    return sorted(containers, key=order)[:count]


def task_label(ti: JSON) -> str:
    """dag.task[map index], and since when it runs (UTC) if it does."""
    name = f"{ti.get('dag_id')}.{ti.get('task_id')}"
    map_index = ti.get("map_index")
    if isinstance(map_index, int) and map_index >= 0:
        name += f"[{map_index}]"
    started = parse_time(ti.get("start_date"))
    if ti.get("state") == "running" and started is not None:
        name += f" since {started.astimezone(UTC):%H:%M:%S}"
    return name


class WorkReport:
    """Says what each draining worker still does: a line per worker whose work
    changed since the last call, and one for every worker now and then."""

    def __init__(self, log: Log, line: str, every: float | None = None) -> None:
        self._log = log
        self._line = line  # with {name} and {work}
        self._every = REPORT_EVERY_SECONDS if every is None else every
        self._said: dict[str, str] = {}
        self._all_said_at: float | None = None

    def __call__(self, work: dict[str, str]) -> None:
        now = time.monotonic()
        everything = self._all_said_at is None or now - self._all_said_at > self._every
        for name, left in work.items():
            if everything or self._said.get(name) != left:
                self._log(self._line.format(name=name, work=left))
        if everything:
            self._all_said_at = now
        self._said = dict(work)


class PoolScaler:
    def __init__(
        self,
        stack: Stack,
        pool: WorkerPool,
        flower: FlowerClient,
        airflow: AirflowClient,
        log: Log,
        poll_seconds: float = 2.0,
    ) -> None:
        self.stack = stack
        self.pool = pool
        self.flower = flower
        self.airflow = airflow
        self.log = log
        self.poll_seconds = poll_seconds

    def containers(self) -> list[PoolContainer]:
        found = self.stack.docker.compose.ps(services=[self.pool.service], all=True)
        running = [PoolContainer.of(c) for c in found if c.state.status == "running"]
        return sorted(running, key=lambda c: c.number)

    def registered(self) -> dict[str, tuple[str, ...]]:
        """Celery workers that consume this pool's queue, with all their queues."""
        return {
            name: queues
            for name, queues in self.flower.queues_by_worker().items()
            if self.pool.queue in queues
        }

    # --- up -------------------------------------------------------------------

    def start(self, count: int) -> set[str]:
        """Let Compose run `count` containers of the pool; the names of the new ones."""
        before = {c.name for c in self.containers()}
        self.log(f"starting {count - len(before)} {self.pool.service} container(s)")
        self.stack.docker.compose.up(
            services=[self.pool.service],
            scales={self.pool.service: count},
            detach=True,
            no_build=True,
            recreate=False,
            dependencies=False,
        )
        return {c.name for c in self.containers()} - before

    def wait_registered(self, timeout: float) -> list[PoolContainer]:
        """Wait until every container of the pool consumes its queue in Celery."""
        deadline = time.monotonic() + timeout
        last_report = ""
        while True:
            containers = self.containers()
            registered = self.registered()
            missing = [c for c in containers if c.celery_name not in registered]
            report = f"{len(containers) - len(missing)} of {len(containers)} registered"
            if missing:
                report += "; waiting for " + ", ".join(
                    f"{c.name} ({c.celery_name})" for c in missing
                )
            if report != last_report:
                self.log(report)
                last_report = report
            if not missing:
                return containers
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"{len(missing)} worker(s) did not register with Celery within "
                    f"{timeout:.0f} s: "
                    + ", ".join(f"{c.name} ({c.celery_name})" for c in missing),
                    details=self.last_logs([c.name for c in missing]),
                )
            time.sleep(self.poll_seconds)

    def last_logs(self, containers: list[str]) -> str:
        """The last log lines of these containers, for an error's details."""
        return self.stack.last_container_logs(containers)

    # --- down -----------------------------------------------------------------

    def refuse_emptying_with_waiting_tasks(self) -> None:
        """Removing a queue's last worker strands its waiting tasks: refuse."""
        waiting = self.airflow.task_instances_where(WAITING_STATES, [self.pool.queue])
        if not waiting:
            return
        examples = ", ".join(task_label(ti) for ti in waiting[:3])
        more = f" and {len(waiting) - 3} more" if len(waiting) > 3 else ""
        raise UsageError(
            f"refusing to remove the last worker of queue {self.pool.queue}: "
            f"{len(waiting)} task(s) wait for one ({examples}{more}); "
            "they would wait until the pool grows again. "
            "Use --force (make: FORCE=yes) to do it anyway"
        )

    def drain_and_remove(self, count: int, timeout: float) -> list[PoolContainer]:
        """Remove containers until `count` are left, each only once it is idle."""
        containers = self.containers()
        infos = {c.celery_name: self.flower.worker(c.celery_name) for c in containers}
        busy = {name: info.busy for name, info in infos.items() if info is not None}
        leaving = choose_to_remove(containers, busy, len(containers) - count)
        queues = {c.name: self._queues(infos.get(c.celery_name)) for c in leaving}
        self.log(
            "draining "
            + ", ".join(f"{c.name} ({c.celery_name})" for c in leaving)
            + ": they take no new tasks and finish the ones they have"
        )
        waiting = list(leaving)
        try:
            for container in leaving:
                for queue in queues[container.name]:
                    self.flower.cancel_consumer(container.celery_name, queue)
            self._wait_and_remove(waiting, timeout)
        except BaseException:
            self._consume_again(waiting, queues)
            raise
        return leaving

    def _queues(self, info: WorkerInfo | None) -> tuple[str, ...]:
        return info.queues if info is not None and info.queues else (self.pool.queue,)

    def _wait_and_remove(self, waiting: list[PoolContainer], timeout: float) -> None:
        """Remove each container of `waiting` once drained; `waiting` shrinks as they go."""
        deadline = time.monotonic() + timeout
        report = WorkReport(self.log, "waiting for {name}: {work}")
        while waiting:
            running = self._running_by_host()
            holding: dict[str, str] = {}
            drained: list[PoolContainer] = []
            for container in waiting:
                left = self._work_left(container, running)
                if left:
                    holding[container.name] = left
                else:
                    drained.append(container)
            if drained:
                self._remove(drained)
                waiting[:] = [c for c in waiting if c not in drained]
            if not waiting:
                return
            report(holding)
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"{len(waiting)} worker(s) still had tasks after {timeout:.0f} s and were "
                    "left running and consuming again: "
                    + "; ".join(f"{name}: {left}" for name, left in holding.items())
                )
            time.sleep(self.poll_seconds)

    def _running_by_host(self) -> dict[str, list[JSON]]:
        by_host: dict[str, list[JSON]] = {}
        for ti in self.airflow.task_instances_where(["running"]):
            by_host.setdefault(str(ti.get("hostname") or ""), []).append(ti)
        return by_host

    def _work_left(self, container: PoolContainer, running: dict[str, list[JSON]]) -> str:
        """What the container still does, in words; empty once it is idle."""
        info = self.flower.worker(container.celery_name)
        if info is None:
            if not self._is_running(container):
                return ""
            return "not answering Celery's inspect"
        tasks = running.get(container.hostname, [])
        if info.busy == 0 and not tasks:
            return ""
        parts = [f"{info.active} running, {info.reserved} reserved"]
        if tasks:
            parts.append(", ".join(task_label(ti) for ti in tasks))
        return " ".join(parts)

    def _is_running(self, container: PoolContainer) -> bool:
        return any(c.name == container.name for c in self.containers())

    def _remove(self, containers: list[PoolContainer]) -> None:
        """Stop (in parallel) and remove drained workers."""
        names = [c.name for c in containers]
        # SIGTERM: Celery's warm shutdown, which would still let a task finish.
        self.stack.docker.container.stop(names, time=STOP_GRACE_SECONDS)
        self.stack.docker.container.remove(names)
        for container in containers:
            self.log(f"{container.name} ({container.celery_name}) drained, stopped and removed")

    def _consume_again(
        self, waiting: Iterable[PoolContainer], queues: dict[str, tuple[str, ...]]
    ) -> None:
        for container in waiting:
            for queue in queues[container.name]:
                try:
                    self.flower.add_consumer(container.celery_name, queue)
                except ClusterError as error:
                    self.log(f"{container.name} could not consume {queue} again: {error}")
                else:
                    self.log(f"{container.name} consumes {queue} again")


def resize(
    scaler: PoolScaler,
    count: int,
    record: Callable[[str, int], None],
    timeout: float,
    drain_timeout: float,
    force: bool = False,
) -> tuple[list[PoolContainer], set[str]]:
    """Bring the pool to `count` workers; its containers after, and the new ones' names.

    `record` remembers the pool's size (Context.record_scale): before starting
    containers, and after removing them, whatever happened, so that Compose and
    later `up`s agree with what runs.
    """
    pool = scaler.pool
    before = scaler.containers()
    scaler.log(f"pool {pool.service} (queue {pool.queue}): {len(before)} -> {count}")
    new: set[str] = set()
    if count > len(before):
        record(pool.service, count)
        new = scaler.start(count)
        after = scaler.wait_registered(timeout)
    elif count < len(before):
        if count == 0 and not force:
            scaler.refuse_emptying_with_waiting_tasks()
        try:
            scaler.drain_and_remove(count, drain_timeout)
        finally:
            record(pool.service, len(scaler.containers()))
        after = scaler.containers()
    else:
        record(pool.service, count)
        after = scaler.wait_registered(timeout)
    registered = scaler.registered()
    if len(registered) != count:
        raise ClusterError(
            f"Celery reports {len(registered)} worker(s) on queue {pool.queue}, "
            f"{count} asked: " + (", ".join(sorted(registered)) or "none")
        )
    return after, new


@contextmanager
def one_scale_at_a_time(state_dir: Path) -> Iterator[None]:
    """Two resizes of one project at once would fight over its workers."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "scale.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another `scale` of project {state_dir.name} is running: let it finish"
            ) from None
        yield
