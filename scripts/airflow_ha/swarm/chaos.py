"""The faults of `chaos --engines` and their verdict: pure functions of what was seen.

On the Swarm stack a fault is the loss of a Redis primary, of the MySQL
group's primary or of a whole host, while runs of the chaos workload are in
flight (`swarm/chaos_runner.py` injects them and gathers the facts). A fault
passes when nothing was lost: every run succeeded, no task ran again on the
lost host while it was lost, every service is back to what the other hosts
can hold, the Redis replica was promoted (or the group elected a new
primary) where the primary was lost, and what was let back is whole again.
The issue's goals for the times (a task running again within 60 s, a Redis
promotion within 15 s, a new MySQL primary within 30 s) are figures next to
the verdict, not part of it: a busy machine may miss them with nothing lost.
So are the tasks that ran again although their try before ran on a host the
fault did not take (live tasks failed; `make test-swarm` requires none).
"""

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from airflow_ha.chaos.workload import RunSnapshot, TaskSnapshot
from airflow_ha.console import table
from airflow_ha.swarm.redis import other_server

REDIS_PRIMARY_KILL = "redis-primary-kill"
MYSQL_PRIMARY_KILL = "mysql-primary-kill"
HOST_PARTITION = "host-partition"
HOST_KILL = "host-kill"
# Longer than Airflow takes to fail a task that stopped heartbeating (15 s)
# and than a cut-off task takes to stop itself (3 failed heartbeats): the
# tasks there must have been given up, not merely delayed.
PARTITION_AT_LEAST_S = 90.0
# README: what each does.
FAULTS = (REDIS_PRIMARY_KILL, MYSQL_PRIMARY_KILL, HOST_PARTITION, HOST_KILL)
# host-kill leaves a host lost. The MySQL kill last: Airflow's schedulers,
# triggerers and dag-processor exit when it strikes and Swarm starts them
# again, twice if the election is not over, and the next fault would refuse
# a stack that is not at full count.
DEFAULT_FAULTS = (REDIS_PRIMARY_KILL, HOST_PARTITION, MYSQL_PRIMARY_KILL)
# One replica, pinned to the node with its published port: the host the stack
# cannot lose (README, "Single points of failure left").
SINGLE_POINTS = frozenset({"lb"})
GOAL_AGAIN_S = 60.0
# A host kill takes the Redis primary (choose_host).
GOAL_PROMOTED_S = {REDIS_PRIMARY_KILL: 15.0, HOST_KILL: 15.0, MYSQL_PRIMARY_KILL: 30.0}
# The workload's 45 s task is the best victim of a host fault (it cannot
# finish before the fault strikes); waited for this long at most.
LONG_TASK = "long"
LONG_TASK_WAIT_S = 60.0


def choose_host(fault: str, placements: Mapping[str, Collection[str]], primary: str) -> str | None:
    """The host a host fault takes away: the Redis primary's host for a kill
    (the harder loss: the broker moves too), the replica's for a partition
    (cutting the primary's host off would leave a primary taking writes on
    the minority side, which Redis does not reconcile: a host loss for Redis,
    which the kill proves). It must run a worker (so tasks are lost with it)
    and none of the single points. None if no host qualifies.
    `placements`: host -> the stack's services running there."""
    server = primary if fault == HOST_KILL else other_server(primary)
    for host, services in sorted(placements.items()):
        if server in services and "worker" in services and not SINGLE_POINTS & set(services):
            return host
    return None


def strike_now(tasks: Sequence[TaskSnapshot], hostnames: Collection[str], waited_s: float) -> bool:
    """Whether a host fault strikes now, `waited_s` after the workload began:
    a task runs on the host (`hostnames`: its containers), and it is a long
    task, or no long task can come there any more (each started on another
    host: Celery sent them all elsewhere), or LONG_TASK_WAIT_S went by."""
    there = [t for t in tasks if t.state == "running" and t.hostname in hostnames]
    if not there:
        return False
    longs = [t for t in tasks if t.task_id == LONG_TASK]
    all_longs_elsewhere = bool(longs) and all(
        t.hostname and t.hostname not in hostnames for t in longs
    )
    return (
        any(t.task_id == LONG_TASK for t in there)
        or all_longs_elsewhere
        or waited_s >= LONG_TASK_WAIT_S
    )


def crowded_pools(
    nodes_of: Mapping[str, Sequence[str]], pools: Collection[str], worker_hosts: int
) -> list[str]:
    """The worker pools whose running replicas (two or more) all sit on one host
    although `worker_hosts` hosts may run workers. Swarm leaves them so after a
    host it moved them from comes back: losing that one host would then take
    the whole pool, and its queue would wait for Swarm to start workers
    elsewhere. `nodes_of`: service -> the node of each running replica."""
    return sorted(
        service
        for service, nodes in nodes_of.items()
        if service in pools and len(nodes) >= 2 and len(set(nodes)) == 1 and worker_hosts >= 2
    )


@dataclass(frozen=True)
class Retry:
    """A task that ran again after the fault: where, and how many seconds after
    (also when it was sent to Celery again: the rest of the wait is the
    workers')."""

    task: str
    host: str
    after_s: float
    queued_s: float | None
    earlier_host: str = ""  # where the try before ran ("" when not known)


# A task instance: (run_id, task_id, map_index).
TaskKey = tuple[str, str, int]
NO_EARLIER_HOSTS: Mapping[TaskKey, str] = MappingProxyType({})


def task_key(task: TaskSnapshot) -> TaskKey:
    return (task.run_id, task.task_id, task.map_index)


def retries(
    tasks: Sequence[TaskSnapshot],
    since: datetime,
    earlier_hosts: Mapping[TaskKey, str] = NO_EARLIER_HOSTS,
) -> list[Retry]:
    """Tasks on a second or later try that started after `since`, earliest
    first, with the host of each one's try before (`earlier_hosts`)."""
    found = [
        Retry(
            f"{t.task_id}[{t.map_index}] of {t.run_id}",
            t.hostname,
            round((t.start - since).total_seconds(), 1),
            None if t.queued is None else round((t.queued - since).total_seconds(), 1),
            earlier_hosts.get(task_key(t), ""),
        )
        for t in tasks
        if t.try_number > 1 and t.start is not None and t.start > since
    ]
    return sorted(found, key=lambda r: r.after_s)


def failed_where_nothing_was_lost(
    fault: str, retried: Sequence[Retry], lost_hostnames: Collection[str]
) -> list[Retry]:
    """The tasks that ran again although their try before ran on a host the
    fault did not take (a kill of Redis or of MySQL takes no host): live tasks
    failed, e.g. because their heartbeats went unrecorded while MySQL had no
    primary. Retries whose earlier host is not known are left out."""
    host_lost = fault in (HOST_PARTITION, HOST_KILL)
    return [
        r
        for r in retried
        if r.earlier_host and not (host_lost and r.earlier_host in lost_hostnames)
    ]


@dataclass
class SwarmFaultResult:
    fault: str
    target: str
    injected_at: datetime | None  # None: not injected
    evidence: str  # how the injection was confirmed, or why it was not made
    runs: int
    succeeded: int
    failed: int
    stuck: int
    retried: list[Retry]
    # Retries on the lost host's containers while it was lost: a fault cannot
    # have struck a host that still runs tasks.
    on_lost_host: list[Retry]
    # Retries of tasks whose try before ran on a host the fault did not take.
    failed_where_nothing_was_lost: list[Retry]
    # Seconds after the injection; None: not seen before the timeout.
    promoted_s: float | None
    services_back_s: float | None
    let_back_s: float | None  # the partition's end
    whole_s: float | None  # let back: a ready node again, every service at full count
    runs_done_s: float | None
    expects_promotion: bool
    expects_services_back: bool
    expects_whole: bool
    manager_unanswered: int = 0  # Swarm API answers "rpc error" (a leader election)
    notes: list[str] = field(default_factory=list)

    @property
    def injected(self) -> bool:
        return self.injected_at is not None

    @property
    def last_retry(self) -> Retry | None:
        """The task that ran again last."""
        return max(self.retried, key=lambda r: r.after_s, default=None)

    @property
    def last_again_s(self) -> float | None:
        return None if self.last_retry is None else self.last_retry.after_s

    @property
    def last_queued_s(self) -> float | None:
        """When the last task to run again was sent to Celery again."""
        return None if self.last_retry is None else self.last_retry.queued_s

    @property
    def problems(self) -> list[str]:
        """Why the fault is not ok, most telling first; empty when it is."""
        if not self.injected:
            return [f"not injected ({self.evidence})"]
        found = []
        if self.succeeded != self.runs:
            found.append(f"{self.failed} failed, {self.stuck} stuck of {self.runs} runs")
        if self.expects_promotion and self.promoted_s is None:
            found.append(
                "the MySQL group elected no new primary"
                if self.fault == MYSQL_PRIMARY_KILL
                else "the Redis replica was not promoted"
            )
        if self.expects_services_back and self.services_back_s is None:
            found.append("the services did not come back on the other hosts")
        if self.on_lost_host:
            found.append(f"{len(self.on_lost_host)} task(s) ran on the lost host while it was lost")
        if self.expects_whole and self.whole_s is None:
            found.append(f"{self.target} not whole again")
        return found

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        return "ok" if self.ok else ("not injected" if not self.injected else "FAILED")

    def as_json(self) -> dict[str, object]:
        payload = asdict(self)
        payload["injected_at"] = self.injected_at.isoformat() if self.injected_at else None
        return {
            **payload,
            "last_again_s": self.last_again_s,
            "last_queued_s": self.last_queued_s,
            "ok": self.ok,
            "verdict": self.verdict,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class Seen:
    """What the runner saw, in seconds after the injection (None: not seen)."""

    target: str
    injected_at: datetime | None
    evidence: str
    lost_hostnames: frozenset[str]  # the hostnames (container IDs) on the lost host
    promoted_s: float | None = None
    services_back_s: float | None = None
    let_back_s: float | None = None
    whole_s: float | None = None
    manager_unanswered: int = 0


def judge(
    fault: str,
    seen: Seen,
    runs: Sequence[RunSnapshot],
    tasks: Sequence[TaskSnapshot],
    earlier_hosts: Mapping[TaskKey, str] = NO_EARLIER_HOSTS,
) -> SwarmFaultResult:
    at = seen.injected_at
    found = retries(tasks, at, earlier_hosts) if at is not None else []
    # A partitioned host's worker may take tasks again once let back.
    lost_until = seen.let_back_s if fault == HOST_PARTITION else None
    on_lost = [
        r
        for r in found
        if r.host in seen.lost_hostnames and (lost_until is None or r.after_s < lost_until)
    ]
    ends = [r.end for r in runs if r.end is not None]
    done = all(r.state in ("success", "failed") for r in runs) and len(ends) == len(runs)
    runs_done_s = (
        round((max(ends) - at).total_seconds(), 1) if done and ends and at is not None else None
    )
    notes = []
    again = max((r.after_s for r in found), default=None)
    if again is not None and again > GOAL_AGAIN_S:
        notes.append(f"a task running again after {again} s: above the {GOAL_AGAIN_S:.0f} s goal")
    alive = failed_where_nothing_was_lost(fault, found, seen.lost_hostnames)
    if alive:
        notes.append(f"{len(alive)} of the tasks that ran again had run on a host not lost")
    goal = GOAL_PROMOTED_S.get(fault)
    if seen.promoted_s is not None and goal is not None and seen.promoted_s > goal:
        notes.append(f"promoted after {seen.promoted_s} s: above the {goal:.0f} s goal")
    return SwarmFaultResult(
        fault=fault,
        target=seen.target,
        injected_at=at,
        evidence=seen.evidence,
        runs=len(runs),
        succeeded=sum(r.state == "success" for r in runs),
        failed=sum(r.state == "failed" for r in runs),
        stuck=sum(r.state not in ("success", "failed") for r in runs),
        retried=found,
        on_lost_host=on_lost,
        failed_where_nothing_was_lost=alive,
        promoted_s=seen.promoted_s,
        services_back_s=seen.services_back_s,
        let_back_s=seen.let_back_s,
        whole_s=seen.whole_s,
        runs_done_s=runs_done_s,
        expects_promotion=fault in (REDIS_PRIMARY_KILL, MYSQL_PRIMARY_KILL, HOST_KILL),
        expects_services_back=fault in (HOST_PARTITION, HOST_KILL),
        expects_whole=fault in (REDIS_PRIMARY_KILL, MYSQL_PRIMARY_KILL, HOST_PARTITION),
        manager_unanswered=seen.manager_unanswered,
        notes=notes,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _detail(result: SwarmFaultResult) -> str:
    parts = list(result.problems)
    if result.last_queued_s is not None:
        parts.append(f"the last task to run again queued after {result.last_queued_s} s")
    if result.let_back_s is not None:
        parts.append(f"let back after {result.let_back_s} s")
    if result.whole_s is not None:
        what = {
            REDIS_PRIMARY_KILL: "a replica in sync",
            MYSQL_PRIMARY_KILL: "the group whole again",
        }.get(result.fault, "whole again")
        parts.append(f"{what} after {result.whole_s} s")
    if result.runs_done_s is not None:
        parts.append(f"runs done after {result.runs_done_s} s")
    if result.manager_unanswered:
        parts.append(f"the Swarm's managers did not answer {result.manager_unanswered} time(s)")
    return "; ".join(parts + result.notes)


HEADER = (
    "FAULT",
    "TARGET",
    "RUNS OK",
    "RETRIED",
    "LAST AGAIN s",
    "PROMOTED s",
    "BACK s",
    "RESULT",
    "DETAIL",
)


def format_table(results: Sequence[SwarmFaultResult]) -> str:
    """One row per fault; times count from the confirmed injection."""
    rows = [HEADER]
    for r in results:
        rows.append(
            (
                r.fault,
                r.target,
                f"{r.succeeded}/{r.runs}",
                str(len(r.retried)),
                _seconds(r.last_again_s),
                _seconds(r.promoted_s),
                _seconds(r.services_back_s),
                r.verdict,
                _detail(r),
            )
        )
    return table(rows)


def write_json(results: Sequence[SwarmFaultResult], path: Path) -> None:
    path.write_text(json.dumps([r.as_json() for r in results], indent=2) + "\n")
