"""What Docker and MySQL say happened around a fault, beyond what the REST API shows.

Decisions are pure functions of the facts (`died_at`, `unexpected_restarts`,
`deadlocks_during`, `parse_decisions`, `stall_limit`); `DockerObserver` is the
thin I/O that gathers the facts from a running stack.
"""

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.secret_files import SECRETS_MOUNT
from airflow_ha.stack import LOG_LINES_ON_FAILURE, SERVICE_LABEL, Stack

# InnoDB counts the deadlocks it resolves (a counter enabled by default, reset
# when MySQL restarts); SHOW ENGINE INNODB STATUS shows the latest one.
DEADLOCKS_SQL = "SELECT COUNT FROM information_schema.INNODB_METRICS WHERE NAME = 'lock_deadlocks'"
# Airflow rescues a task whose broker message was lost (its worker died before
# the task started, or Redis restarted) once it has been queued for
# task_queued_timeout, checked every task_queued_timeout_check_interval.
# A run may stall that long plus this margin for scheduling it again.
STALL_MARGIN_S = 60.0
AIRFLOW_DEFAULTS = {"TASK_QUEUED_TIMEOUT": 600.0, "TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": 120.0}


@dataclass(frozen=True)
class ContainerMark:
    """A container as Docker describes it at one moment."""

    id: str
    name: str
    service: str
    status: str
    restart_count: int
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, container: Container) -> "ContainerMark":
        state = container.state
        return cls(
            id=container.id,
            name=container.name,
            service=(container.config.labels or {}).get(SERVICE_LABEL, ""),
            status=str(state.status),
            restart_count=container.restart_count or 0,
            started_at=state.started_at,
            finished_at=state.finished_at,
        )


@dataclass(frozen=True)
class Restart:
    """A container that restarted, stopped or vanished although no fault aimed at it."""

    container: str
    service: str
    what: str
    logs: str = ""


def died_at(before: ContainerMark, now: ContainerMark) -> datetime | None:
    """When the container's process died since `before`: Docker's FinishedAt, which
    it sets when the main process exits (a kill, a crash, a stop or a restart)."""
    if now.finished_at is None:
        return None
    if before.finished_at is not None and now.finished_at <= before.finished_at:
        return None
    return now.finished_at


@dataclass(frozen=True)
class DesignedExit:
    """Services that exit by design when a fault's target goes away, and the log
    lines that show it was for that reason (then their restart is no crash)."""

    services: frozenset[str]
    signs: tuple[str, ...]
    why: str

    def explains(self, restart: Restart) -> bool:
        logs = restart.logs.lower()
        return restart.service in self.services and any(s.lower() in logs for s in self.signs)


# Airflow's scheduler, triggerer and dag-processor exit when a query finds the
# metadata database gone (after [database] max_db_retries on the paths that retry),
# and rely on their restart policy; the api-servers and workers reconnect.
LOST_MYSQL = DesignedExit(
    frozenset({"scheduler", "triggerer", "dag-processor"}),
    (
        # The MySQL client's connection errors 2002, 2013 and 2006, as worded by
        # the client in the Airflow image and by older ones, and SQLAlchemy's
        # error for a session whose connection was lost.
        "Can't connect to server on 'mysql'",
        "Can't connect to MySQL server on 'mysql'",
        "Lost connection to server during query",
        "Lost connection to MySQL server",
        "server has gone away",
        "Can't reconnect until invalid transaction is rolled back",
    ),
    "exited when MySQL went away, as Airflow's components do, and were restarted",
)


def what_happened(before: ContainerMark, now: ContainerMark | None) -> str | None:
    """How a running container changed, or None if it kept running untouched."""
    if now is None:
        return "removed"
    if now.restart_count > before.restart_count:
        times = now.restart_count - before.restart_count
        return f"restarted {times} time{'s' if times > 1 else ''} by its restart policy"
    if now.started_at != before.started_at:
        return "restarted"
    if now.status != "running":
        return f"now {now.status}"
    return None


def unexpected_restarts(
    before: dict[str, ContainerMark], after: dict[str, ContainerMark], target_id: str | None
) -> list[Restart]:
    """Containers running before the fault that did not keep running untouched,
    other than the fault's own target."""
    found = []
    for container_id, mark in sorted(before.items(), key=lambda item: item[1].name):
        if container_id == target_id or mark.status != "running":
            continue
        what = what_happened(mark, after.get(container_id))
        if what is not None:
            found.append(Restart(mark.name, mark.service, what))
    return found


def deadlocks_during(before: int, after: int) -> int:
    """Deadlocks between two readings of InnoDB's counter; a lower second reading
    means MySQL restarted in between, and counted `after` since."""
    return after - before if after >= before else after


def parse_decisions(tsv: str) -> list[tuple[datetime, str]]:
    """(queued at, host of the scheduler that queued it) from MySQL's batch
    output: one `YYYY-MM-DD HH:MM:SS.ffffff<TAB>hostname` line per task try."""
    decisions = []
    for line in tsv.splitlines():
        if not line.strip():
            continue
        when, host = line.split("\t", 1)
        moment = datetime.strptime(when, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        decisions.append((moment, host.strip()))
    return sorted(decisions)


def stall_limit(scheduler_env: dict[str, str]) -> float:
    """The longest a run may stall: Airflow's own rescue of a task whose broker
    message was lost, as the running scheduler is configured, plus a margin."""
    seconds = {
        name: float(scheduler_env.get(f"AIRFLOW__SCHEDULER__{name}", default))
        for name, default in AIRFLOW_DEFAULTS.items()
    }
    return sum(seconds.values()) + STALL_MARGIN_S


def env_of(container: Container) -> dict[str, str]:
    pairs = (item.partition("=") for item in container.config.env or [])
    return {name: value for name, _, value in pairs}


# Each try a scheduler queued: the task instances of the runs and their past tries.
DECISIONS_SQL = """
SET time_zone = '+00:00';
SELECT t.queued_dttm, j.hostname FROM {table} t JOIN job j ON j.id = t.queued_by_job_id
WHERE t.dag_id = {dag} AND t.run_id IN ({runs}) AND t.queued_dttm IS NOT NULL
"""


class DockerObserver:
    """Reads the facts above from a running stack."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def marks(self) -> dict[str, ContainerMark]:
        containers = self.stack.docker.compose.ps(all=True)
        return {c.id: ContainerMark.of(c) for c in containers}

    def mark(self, container_id: str) -> ContainerMark:
        return ContainerMark.of(self.stack.docker.container.inspect(container_id))

    def logs(self, container: str, since: datetime, until: datetime | None) -> str:
        """The container's last log lines written in [since, until]. (Docker applies
        --tail before --until, so the lines are cut here, not by Docker.)"""
        try:
            text = str(self.stack.docker.container.logs(container, since=since, until=until))
        except DockerException as error:
            return f"(no logs: {error})"
        return "\n".join(text.splitlines()[-LOG_LINES_ON_FAILURE:])

    def _one(self, service: str) -> Container:
        running = [
            c
            for c in self.stack.docker.compose.ps(services=[service])
            if c.state.status == "running"
        ]
        if not running:
            raise LookupError(f"no running {service} container")
        return running[0]

    def mysql(self, sql: str, user: str = "airflow", password: str = "mysql_password") -> str:
        # The password stays inside the container, read from its secret file
        # into MYSQL_PWD: it is in no command line.
        secret = f"{SECRETS_MOUNT}/{password}"
        command = f'MYSQL_PWD="$(cat {secret})" mysql -u{user} -N -B airflow -e {shlex.quote(sql)}'
        return str(self._one("mysql").execute(["sh", "-c", command]))

    def deadlock_count(self) -> int:
        """InnoDB's deadlock counter (reading it needs the PROCESS privilege: root)."""
        return int(self.mysql(DEADLOCKS_SQL, "root", "mysql_root_password").strip() or 0)

    def stall_limit(self) -> float:
        return stall_limit(env_of(self._one("scheduler")))

    def queue_decisions(self, dag_id: str, run_ids: list[str]) -> list[tuple[datetime, str]]:
        if not run_ids:
            return []
        quoted = ", ".join(_sql_string(run) for run in run_ids)
        rows = [
            self.mysql(DECISIONS_SQL.format(table=table, dag=_sql_string(dag_id), runs=quoted))
            for table in ("task_instance", "task_instance_history")
        ]
        return parse_decisions("\n".join(rows))


def _sql_string(value: str) -> str:
    if not re.fullmatch(r"[\w:.+\-]+", value):
        raise ValueError(f"unexpected characters in {value!r}")
    return f"'{value}'"
