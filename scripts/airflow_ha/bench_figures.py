"""The benchmark's figures, computed from what the API and the cgroups reported.

Pure functions: `compare.py` does the measuring, this module the arithmetic.
"""

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from airflow_ha.cgroups import Usage
from airflow_ha.verify import TaskResult

CgroupSnapshot = dict[str, tuple[str, Usage]]  # container -> (service, usage)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction <= 1) of a non-empty sequence."""
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)]


def cpu_seconds_by_service(before: CgroupSnapshot, after: CgroupSnapshot) -> dict[str, float]:
    """CPU-seconds each service used between two snapshots.

    A container that appeared in between counts from zero; one that went away
    is left out (its last reading is unknown).
    """
    used: dict[str, float] = {}
    for container, (service, usage) in after.items():
        start = before[container][1].cpu_seconds if container in before else 0.0
        used[service] = used.get(service, 0.0) + max(usage.cpu_seconds - start, 0.0)
    return dict(sorted(used.items()))


def memory_mib_by_service(snapshot: CgroupSnapshot) -> dict[str, float]:
    memory: dict[str, float] = {}
    for service, usage in snapshot.values():
        memory[service] = memory.get(service, 0.0) + usage.memory_bytes / 2**20
    return dict(sorted(memory.items()))


@dataclass(frozen=True)
class ChainFigures:
    tasks: int
    seconds_per_task: float


def chain_figures(tasks: list[TaskResult]) -> ChainFigures:
    """Seconds per task of a chain: from the first task's queueing to the last one's end."""
    done = [t for t in tasks if t.state == "success" and t.ended_at is not None]
    starts = [t.queued_at or t.started_at for t in done]
    if not done or None in starts:
        raise ValueError("the chain has no finished task with its times")
    span = max(t.ended_at for t in done if t.ended_at) - min(s for s in starts if s)
    return ChainFigures(tasks=len(done), seconds_per_task=span.total_seconds() / len(done))


@dataclass(frozen=True)
class FanoutFigures:
    tasks: int
    tasks_per_second: float
    cpu_seconds_per_task: float
    queued_to_running_median: float
    queued_to_running_p95: float


def fanout_figures(tasks: list[TaskResult], task_id: str, cpu_seconds: float) -> FanoutFigures:
    """Figures of the mapped task `task_id`; `cpu_seconds` is the whole cluster's
    CPU use during the run."""
    done = [
        t
        for t in tasks
        if t.task_id == task_id
        and t.state == "success"
        and t.queued_at is not None
        and t.started_at is not None
        and t.ended_at is not None
    ]
    if not done:
        raise ValueError(f"no instance of {task_id} finished with its times")
    first = min(t.queued_at for t in done if t.queued_at)
    last = max(t.ended_at for t in done if t.ended_at)
    span = (last - first).total_seconds()
    waits = [
        (t.started_at - t.queued_at).total_seconds() for t in done if t.started_at and t.queued_at
    ]
    return FanoutFigures(
        tasks=len(done),
        tasks_per_second=len(done) / span if span > 0 else 0.0,
        cpu_seconds_per_task=cpu_seconds / len(done),
        queued_to_running_median=statistics.median(waits),
        queued_to_running_p95=percentile(waits, 0.95),
    )


# HAProxy's httplog line: ... frontend backend/server Tq/Tw/Tc/Tr/Ta STATUS BYTES ...
_HTTPLOG_STATUS = re.compile(r" \S+/\S+ -?\d+/-?\d+/-?\d+/-?\d+/\+?-?\d+ (\d{3}) ")
SERVER_ERRORS = frozenset({502, 503, 504})


def load_balancer_errors(log_text: str) -> list[str]:
    """The load balancer's log lines of requests answered 502, 503 or 504."""
    errors = []
    for line in log_text.splitlines():
        match = _HTTPLOG_STATUS.search(line)
        if match and int(match.group(1)) in SERVER_ERRORS:
            errors.append(line.strip())
    return errors
