"""chaos/metrics.py and chaos/workload.py: recovery figures from hand-made task snapshots."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.chaos import metrics
from airflow_ha.chaos.workload import DAG_ID, TaskSnapshot, Workload
from airflow_ha.errors import VerificationError

FAULT_AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """The moment `seconds` after (negative: before) the fault."""
    return FAULT_AT + timedelta(seconds=seconds)


def snapshot(
    task_id: str = "short",
    start: datetime | None = None,
    try_number: int = 1,
    state: str = "success",
    map_index: int = -1,
) -> TaskSnapshot:
    return TaskSnapshot(
        run_id="run-1",
        task_id=task_id,
        map_index=map_index,
        state=state,
        try_number=try_number,
        start=start,
        hostname="worker-a",
        triggerer_host="",
        triggerer_job_id=None,
    )


def shorts(*seconds: float) -> list[TaskSnapshot]:
    """Short tasks started at these offsets from the fault."""
    return [snapshot("short", at(s), map_index=i) for i, s in enumerate(seconds)]


# --- next_start_after ---------------------------------------------------------------------


def test_next_start_after_is_the_first_start_strictly_after_the_moment() -> None:
    tasks = [
        snapshot("long", at(7.5)),
        snapshot("short", at(-1)),
        snapshot("short", at(0)),  # at the moment itself: not after it
        snapshot("deferred", at(3.25)),
        snapshot("short", None),
    ]
    assert metrics.next_start_after(tasks, FAULT_AT) == 3.25


def test_next_start_after_counts_every_task_not_only_short_ones() -> None:
    tasks = [snapshot("short", at(9)), snapshot("long", at(2))]
    assert metrics.next_start_after(tasks, FAULT_AT) == 2.0


def test_next_start_after_is_none_without_a_later_start() -> None:
    assert metrics.next_start_after([], FAULT_AT) is None
    tasks = [snapshot("short", at(-3)), snapshot("short", at(0)), snapshot("long", None)]
    assert metrics.next_start_after(tasks, FAULT_AT) is None


def test_task_starts_are_sorted_and_skip_tasks_that_never_started() -> None:
    tasks = [snapshot(start=at(4)), snapshot(start=None), snapshot(start=at(-2))]
    assert metrics.task_starts(tasks) == [at(-2), at(4)]


# --- max_start_gap ------------------------------------------------------------------------


def test_max_start_gap_is_the_longest_pause_between_consecutive_short_starts() -> None:
    tasks = shorts(-2, -1, 0.5, 1.0, 13.0, 14.0)
    assert metrics.max_start_gap(tasks, FAULT_AT) == 12.0


def test_max_start_gap_spanning_the_fault_is_measured_between_real_starts() -> None:
    # One start 2 s before the fault, the next 10 s after it: a 12 s gap,
    # neither 10 s (from the fault) nor 2 s (to the fault).
    assert metrics.max_start_gap(shorts(-2, 10, 11), FAULT_AT) == 12.0


def test_max_start_gap_window_starts_five_seconds_before_the_fault() -> None:
    # -30 and -20 are outside the window: their 10 s and 20 s gaps must not count.
    assert metrics.max_start_gap(shorts(-30, -20, -4, 1), FAULT_AT) == 5.0
    # Exactly 5 s before is still inside the window.
    assert metrics.max_start_gap(shorts(-60, -5, 1), FAULT_AT) == 6.0
    # Just over 5 s before is outside: only the two starts after the fault remain.
    assert metrics.max_start_gap(shorts(-60, -5.001, 1, 3), FAULT_AT) == 2.0


def test_max_start_gap_counts_only_short_tasks() -> None:
    tasks = [
        *shorts(-1, 1, 9),
        snapshot("long", at(4)),
        snapshot("deferred", at(5)),
        snapshot("items", at(6)),
    ]
    # With the other tasks the longest gap would be 3 s (6 -> 9); short alone: 8 s.
    assert metrics.max_start_gap(tasks, FAULT_AT) == 8.0


def test_max_start_gap_is_none_without_a_short_start_after_the_fault() -> None:
    tasks = [*shorts(-4, -3, -1, 0), snapshot("long", at(10)), snapshot("short", None)]
    assert metrics.max_start_gap(tasks, FAULT_AT) is None


def test_max_start_gap_is_none_with_only_one_start_in_the_window() -> None:
    assert metrics.max_start_gap(shorts(-40, -20, 3), FAULT_AT) is None
    assert metrics.max_start_gap(shorts(3), FAULT_AT) is None


def test_max_start_gap_is_none_without_any_short_start() -> None:
    assert metrics.max_start_gap([], FAULT_AT) is None
    assert (
        metrics.max_start_gap([snapshot("long", at(1)), snapshot("long", at(9))], FAULT_AT) is None
    )


def test_max_start_gap_ignores_the_order_of_the_snapshots() -> None:
    assert metrics.max_start_gap(shorts(7, -1, 2, 3), FAULT_AT) == 4.0


# --- retries ------------------------------------------------------------------------------


def test_retries_sum_the_tries_beyond_the_first() -> None:
    tasks = [snapshot(try_number=1), snapshot(try_number=3), snapshot(try_number=2)]
    assert metrics.retries(tasks) == 3


def test_retries_are_never_negative_for_tasks_that_never_ran() -> None:
    tasks = [snapshot(try_number=0), snapshot(try_number=0), snapshot(try_number=2)]
    assert metrics.retries(tasks) == 1
    assert metrics.retries([snapshot(try_number=0)]) == 0
    assert metrics.retries([]) == 0


# --- workload: parse_time and TaskSnapshot.from_api ---------------------------------------


def test_parse_time_reads_a_z_suffix_as_utc() -> None:
    parsed = parse_time("2026-03-01T12:00:05.250000Z")
    assert parsed == datetime(2026, 3, 1, 12, 0, 5, 250000, tzinfo=UTC)
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_parse_time_keeps_an_explicit_offset() -> None:
    parsed = parse_time("2026-03-01T14:00:00+02:00")
    assert parsed == FAULT_AT
    assert parsed is not None
    assert parsed.tzinfo == timezone(timedelta(hours=2))


@pytest.mark.parametrize("value", [None, ""])
def test_parse_time_of_nothing_is_none(value: str | None) -> None:
    assert parse_time(value) is None


def test_from_api_with_every_field() -> None:
    ti: JSON = {
        "dag_run_id": "manual__2026-03-01",
        "task_id": "deferred",
        "map_index": 3,
        "state": "deferred",
        "try_number": 2,
        "start_date": "2026-03-01T12:00:01Z",
        "hostname": "4f2a9c1e0b7d",
        "triggerer_job": {"id": 17, "hostname": "a1b2c3d4e5f6", "job_type": "TriggererJob"},
    }
    assert TaskSnapshot.from_api(ti) == TaskSnapshot(
        run_id="manual__2026-03-01",
        task_id="deferred",
        map_index=3,
        state="deferred",
        try_number=2,
        start=at(1),
        hostname="4f2a9c1e0b7d",
        triggerer_host="a1b2c3d4e5f6",
        triggerer_job_id=17,
    )


def test_from_api_without_triggerer_job_start_date_or_hostname() -> None:
    ti: JSON = {"dag_run_id": "r", "task_id": "short"}
    assert TaskSnapshot.from_api(ti) == TaskSnapshot(
        run_id="r",
        task_id="short",
        map_index=-1,
        state="none",
        try_number=0,
        start=None,
        hostname="",
        triggerer_host="",
        triggerer_job_id=None,
    )


def test_from_api_with_null_fields() -> None:
    ti: JSON = {
        "dag_run_id": "r",
        "task_id": "long",
        "map_index": -1,
        "state": None,
        "try_number": None,
        "start_date": None,
        "hostname": None,
        "triggerer_job": None,
    }
    task = TaskSnapshot.from_api(ti)
    assert (task.state, task.try_number, task.start) == ("none", 0, None)
    assert (task.hostname, task.triggerer_host, task.triggerer_job_id) == ("", "", None)


def test_from_api_with_a_triggerer_job_without_hostname_or_id() -> None:
    ti: JSON = {"dag_run_id": "r", "task_id": "deferred", "triggerer_job": {"hostname": None}}
    task = TaskSnapshot.from_api(ti)
    assert (task.triggerer_host, task.triggerer_job_id) == ("", None)


def test_from_api_keeps_the_triggerer_job_id_without_hostname() -> None:
    ti: JSON = {"dag_run_id": "r", "task_id": "deferred", "triggerer_job": {"id": 42}}
    task = TaskSnapshot.from_api(ti)
    assert task.triggerer_job_id == 42
    assert task.triggerer_host == ""


# --- workload: Workload against a fake client ---------------------------------------------


@dataclass
class FakeClient:
    """The few AirflowClient methods Workload calls."""

    parsed: bool = True
    paused: list[tuple[str, bool]] = field(default_factory=list)
    triggered: int = 0
    states: dict[str, str] = field(default_factory=dict)
    instances: dict[str, list[JSON]] = field(default_factory=dict)

    def dag(self, dag_id: str) -> JSON | None:
        return {"dag_id": dag_id} if self.parsed else None

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.paused.append((dag_id, paused))

    def trigger(self, dag_id: str, conf: JSON | None = None) -> JSON:
        assert dag_id == DAG_ID
        self.triggered += 1
        run_id = f"run-{self.triggered}"
        self.states[run_id] = "queued"
        return {"dag_run_id": run_id}

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        return {"dag_run_id": run_id, "state": self.states[run_id]}

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        return self.instances.get(run_id, [])


def workload_of(client: FakeClient, runs: int) -> Workload:
    return Workload(cast(AirflowClient, client), runs)


def test_workload_start_unpauses_and_triggers_each_run() -> None:
    client = FakeClient()
    workload = workload_of(client, 3)
    workload.start()
    assert client.paused == [(DAG_ID, False)]
    assert workload.run_ids == ["run-1", "run-2", "run-3"]


def test_workload_start_fails_when_the_dag_is_not_parsed() -> None:
    client = FakeClient(parsed=False)
    with pytest.raises(VerificationError, match=r"DAG chaos_workload is not parsed"):
        workload_of(client, 2).start(discover_timeout=-1)
    assert client.triggered == 0
    assert client.paused == []


def test_workload_is_finished_only_when_every_run_is() -> None:
    client = FakeClient()
    workload = workload_of(client, 2)
    workload.start()
    client.states["run-1"] = "success"
    assert not workload.finished()
    client.states["run-2"] = "failed"
    assert workload.run_states() == {"run-1": "success", "run-2": "failed"}
    assert workload.finished()


def test_workload_tasks_are_the_snapshots_of_every_run() -> None:
    client = FakeClient()
    workload = workload_of(client, 2)
    workload.start()
    ti: dict[str, Any] = {"task_id": "long", "state": "running", "try_number": 1}
    client.instances = {
        "run-1": [{**ti, "dag_run_id": "run-1"}],
        "run-2": [{**ti, "dag_run_id": "run-2", "task_id": "short", "map_index": 0}],
    }
    tasks = workload.tasks()
    assert [(t.run_id, t.task_id, t.map_index) for t in tasks] == [
        ("run-1", "long", -1),
        ("run-2", "short", 0),
    ]
