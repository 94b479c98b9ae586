"""Scale a worker pool of the Swarm stack: the service's replicas, not Compose's scale.

Swarm, not we, chooses the tasks a scale-down removes, and it stops each one
with SIGTERM: Celery's warm shutdown, a drain the worker does itself. The
worker takes no new task from then on, hands back the messages it had taken
but not started, and finishes the tasks it runs, for up to the service's
`stop_grace_period` (600 s, as on one machine), before its container goes.
We wait for that, showing what each leaving worker still runs. (On one
machine `scale` chooses the least busy workers and drains them before the
stop; Swarm offers no way to name the task a scale-down removes.)
"""

import time
from functools import partial

from python_on_whales import DockerClient
from python_on_whales.utils import run

from airflow_ha.airflow_api import AirflowClient
from airflow_ha.errors import TimeoutExpiredError
from airflow_ha.flower_api import FlowerClient
from airflow_ha.pools import WorkerPool
from airflow_ha.scaling import Log, PoolContainer, PoolScaler, WorkReport, task_label
from airflow_ha.stack import LOG_LINES_ON_FAILURE, log_tails
from airflow_ha.swarm import deploy
from airflow_ha.swarm.deploy import TaskState


def task_container(service: str, task: TaskState) -> PoolContainer | None:
    """A running task as a pool container: named `<service>.<slot>` as `docker
    service ps` names it; its hostname (Celery's `celery@<hostname>`, Airflow's
    task hostname) is its container's short ID, Docker's default."""
    if task.state != "running" or not task.container_id:
        return None
    return PoolContainer(
        name=f"{service}.{task.slot}", hostname=task.container_id[:12], number=task.slot
    )


def split_tasks(
    service: str, tasks: list[TaskState]
) -> tuple[list[PoolContainer], list[PoolContainer]]:
    """The running tasks meant to run, and those Swarm is stopping (leaving), each by slot."""
    staying: list[PoolContainer] = []
    leaving: list[PoolContainer] = []
    for task in tasks:
        container = task_container(service, task)
        if container is not None:
            (staying if task.desired == "running" else leaving).append(container)
    return sorted(staying, key=lambda c: c.number), sorted(leaving, key=lambda c: c.number)


class SwarmPoolScaler(PoolScaler):
    """PoolScaler's decisions and checks (registration, the last worker of a
    queue), with Swarm's service replicas underneath: it overrides every method
    that reaches Compose, so it has no Compose `stack`."""

    def __init__(
        self,
        client: DockerClient,
        stack: str,
        pool: WorkerPool,
        flower: FlowerClient,
        airflow: AirflowClient,
        log: Log,
        start_timeout: float,
        poll_seconds: float = 2.0,
    ) -> None:
        self.client = client
        self.start_timeout = start_timeout
        self.service = f"{stack}_{pool.service}"
        self.pool = pool
        self.flower = flower
        self.airflow = airflow
        self.log = log
        self.poll_seconds = poll_seconds

    def _tasks(self) -> tuple[list[PoolContainer], list[PoolContainer]]:
        tasks = deploy.service_tasks(self.client, self.service, node_names={})  # nodes unused
        return split_tasks(self.service, tasks)

    def _scale(self, count: int) -> None:
        # Not python-on-whales' service.scale: it lets the docker CLI print
        # "… scaled to N" on our stdout, above the table `scale` prints.
        run(
            [
                *self.client.service.docker_cmd,
                "service",
                "scale",
                "--detach",
                f"{self.service}={count}",
            ]
        )

    def containers(self) -> list[PoolContainer]:
        return self._tasks()[0]

    def start(self, count: int) -> set[str]:
        """Ask Swarm for `count` replicas; the new ones' names once Swarm runs them
        all (it schedules and starts them after `service scale` returns)."""
        before = {c.hostname for c in self.containers()}
        self.log(f"asking Swarm for {count} replicas of {self.service}")
        self._scale(count)
        deadline = time.monotonic() + self.start_timeout
        while len(running := self.containers()) < count:
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"Swarm runs {len(running)} of {count} replicas of {self.service} after "
                    f"{self.start_timeout:.0f} s: `make swarm-status` shows where they are"
                )
            time.sleep(self.poll_seconds)
        return {c.name for c in running if c.hostname not in before}

    def last_logs(self, containers: list[str]) -> str:
        """The service's last log lines (each line names its task)."""
        return log_tails(
            {
                self.service: partial(
                    self.client.service.logs, self.service, tail=LOG_LINES_ON_FAILURE
                )
            }
        )

    def drain_and_remove(self, count: int, timeout: float) -> list[PoolContainer]:
        """Let Swarm stop replicas until `count` are left; wait for their warm shutdown."""
        before = self.containers()
        self._scale(count)
        deadline = time.monotonic() + timeout
        report = WorkReport(self.log, "{name} in warm shutdown: {work}")
        while True:
            staying, leaving = self._tasks()
            if not leaving and len(staying) <= count:
                break
            running = self._running_by_host()
            holding = {
                c.name: ", ".join(task_label(ti) for ti in running.get(c.hostname, []))
                or "no Airflow task left, stopping"
                for c in leaving
            }
            report(holding)
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"{len(leaving)} worker(s) still finish their tasks after {timeout:.0f} s; "
                    "Swarm goes on stopping them (at most their stop_grace_period): "
                    + "; ".join(f"{name}: {left}" for name, left in holding.items())
                )
            time.sleep(self.poll_seconds)
        gone = [c for c in before if c.hostname not in {s.hostname for s in staying}]
        for container in gone:
            self.log(f"{container.name} ({container.celery_name}) finished its tasks and stopped")
        return gone
