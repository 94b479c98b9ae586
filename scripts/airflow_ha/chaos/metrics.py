"""Recovery figures computed from task and run times around the moment of failure."""

import itertools
from datetime import datetime

from airflow_ha.chaos.workload import RunSnapshot, TaskSnapshot

DECISIONS_BEFORE_S = 5.0


def task_starts(tasks: list[TaskSnapshot]) -> list[datetime]:
    return sorted(t.start for t in tasks if t.start is not None)


def next_start_after(tasks: list[TaskSnapshot], moment: datetime) -> float | None:
    """Seconds from `moment` to the first task start after it."""
    later = [s for s in task_starts(tasks) if s > moment]
    return (later[0] - moment).total_seconds() if later else None


def progress_events(tasks: list[TaskSnapshot], runs: list[RunSnapshot]) -> list[datetime]:
    """Every moment the workload moved: a task started or ended, a run ended."""
    moments = [t.start for t in tasks] + [t.end for t in tasks] + [r.end for r in runs]
    return sorted(m for m in moments if m is not None)


def longest_stall(events: list[datetime], death: datetime, end: datetime) -> float:
    """The longest time from the failure to `end` (the last run's end, or now if
    runs are still going) in which the workload made no progress at all."""
    inside = [e for e in events if death < e < end]
    points = [death, *inside, end]
    return max((b - a).total_seconds() for a, b in itertools.pairwise(points))


def run_seconds(runs: list[RunSnapshot]) -> list[float | None]:
    """Each run's time from its start to its end; None for a run that did not end."""
    return [
        None if r.start is None or r.end is None else round((r.end - r.start).total_seconds(), 1)
        for r in runs
    ]


def survivor_first_queue(
    decisions: list[tuple[datetime, str]], death: datetime, dead_host: str
) -> float | None:
    """Seconds from the death of a scheduler to the first task another scheduler queued."""
    later = [when for when, host in decisions if when > death and host != dead_host]
    return (min(later) - death).total_seconds() if later else None


def scheduling_gap(decisions: list[tuple[datetime, str]], death: datetime) -> float | None:
    """The longest pause between consecutive tasks queued (by any scheduler),
    from shortly before the death to the last one queued."""
    window = sorted(
        when for when, _ in decisions if (death - when).total_seconds() <= DECISIONS_BEFORE_S
    )
    if len(window) < 2 or window[-1] <= death:
        return None
    return max((b - a).total_seconds() for a, b in itertools.pairwise(window))


def retries(tasks: list[TaskSnapshot]) -> int:
    return sum(max(t.try_number - 1, 0) for t in tasks)
