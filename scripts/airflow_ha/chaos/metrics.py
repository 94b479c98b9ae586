"""Recovery figures computed from task start times around a fault."""

import itertools
from datetime import datetime

from airflow_ha.chaos.workload import TaskSnapshot

GAP_WINDOW_BEFORE_S = 5.0


def task_starts(tasks: list[TaskSnapshot]) -> list[datetime]:
    return sorted(t.start for t in tasks if t.start is not None)


def next_start_after(tasks: list[TaskSnapshot], moment: datetime) -> float | None:
    """Seconds from `moment` to the first task start after it."""
    later = [s for s in task_starts(tasks) if s > moment]
    return (later[0] - moment).total_seconds() if later else None


def max_start_gap(tasks: list[TaskSnapshot], fault_at: datetime) -> float | None:
    """The longest pause between consecutive starts of the workload's short tasks,
    from shortly before the fault to their last start. While short tasks were
    queued a start was always due, so a long pause is a scheduling outage."""
    starts = task_starts([t for t in tasks if t.task_id == "short"])
    window = [s for s in starts if (fault_at - s).total_seconds() <= GAP_WINDOW_BEFORE_S]
    if not window or window[-1] <= fault_at:
        return None
    return (
        max((b - a).total_seconds() for a, b in itertools.pairwise(window))
        if len(window) > 1
        else None
    )


def retries(tasks: list[TaskSnapshot]) -> int:
    return sum(max(t.try_number - 1, 0) for t in tasks)
