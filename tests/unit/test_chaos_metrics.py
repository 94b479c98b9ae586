"""chaos/metrics.py and chaos/workload.py: recovery figures from hand-made task snapshots."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import pytest

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.chaos import metrics
from airflow_ha.chaos import workload as workload_module
from airflow_ha.chaos.workload import DAG_ID, RunSnapshot, TaskSnapshot, Workload, host_of_try
from airflow_ha.errors import VerificationError

from . import chaos_fakes as fakes
from .chaos_fakes import FAULT_AT, at


def snapshot(
    task_id: str = "short",
    start: datetime | None = None,
    try_number: int = 1,
    state: str = "success",
    map_index: int = -1,
    end: datetime | None = None,
) -> TaskSnapshot:
    """A task of run-1 on worker-a, by default a finished short one."""
    return fakes.snapshot(
        task_id,
        state,
        hostname="worker-a",
        try_number=try_number,
        start=start,
        map_index=map_index,
        end=end,
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


# --- progress, stalls and run times ------------------------------------------------------


def run(end: float | None, start: float | None = -30, state: str = "success") -> RunSnapshot:
    return RunSnapshot(
        "run-1", state, None if start is None else at(start), None if end is None else at(end)
    )


def test_progress_events_are_every_task_start_and_end_and_every_run_end() -> None:
    tasks = [
        snapshot("short", at(2), end=at(4)),
        snapshot("long", at(-10), end=None),
        snapshot("deferred", None),
    ]
    runs = [run(9), run(None, state="running")]
    assert metrics.progress_events(tasks, runs) == [at(-10), at(2), at(4), at(9)]


def test_longest_stall_is_the_longest_quiet_time_from_the_death_to_the_end() -> None:
    events = [at(-5), at(1), at(2), at(30), at(31)]
    # death -> 1 -> 2 -> 30 -> 31 -> end 33: the quiet 28 s between 2 and 30.
    assert metrics.longest_stall(events, FAULT_AT, at(33)) == 28.0


def test_longest_stall_counts_from_the_death_not_from_the_last_event_before_it() -> None:
    assert metrics.longest_stall([at(-100), at(40)], FAULT_AT, at(41)) == 40.0


def test_longest_stall_runs_to_the_end_when_nothing_moved_since() -> None:
    # Runs still going at `end` (now): the stall goes on to it.
    assert metrics.longest_stall([at(1), at(3)], FAULT_AT, at(300)) == 297.0
    assert metrics.longest_stall([], FAULT_AT, at(12)) == 12.0


def test_longest_stall_ignores_events_after_the_end() -> None:
    assert metrics.longest_stall([at(1), at(500)], FAULT_AT, at(10)) == 9.0


def test_run_seconds_are_each_runs_time_or_none_while_it_goes_on() -> None:
    assert metrics.run_seconds([run(40.04), run(None), run(10, start=None)]) == [70.0, None, None]


def test_run_seconds_keep_tenths() -> None:
    assert metrics.run_seconds([run(40.34), run(12.06, start=-0.5)]) == [70.3, 12.6]


DECISIONS = [(at(-6), "s1"), (at(-4), "s1"), (at(1), "s1"), (at(7.5), "s2"), (at(9), "s2")]


def test_the_survivor_is_the_first_other_scheduler_to_queue_after_the_death() -> None:
    assert metrics.survivor_first_queue(DECISIONS, FAULT_AT, "s1") == 7.5
    assert metrics.survivor_first_queue(DECISIONS, FAULT_AT, "s2") == 1.0
    assert metrics.survivor_first_queue(DECISIONS[:3], FAULT_AT, "s1") is None


def test_a_task_queued_at_the_moment_of_death_is_not_the_survivors_first() -> None:
    # Queued as the scheduler died: the survivor had not taken over yet.
    decisions = [(at(-2), "s1"), (FAULT_AT, "s2"), (at(4.5), "s2")]
    assert metrics.survivor_first_queue(decisions, FAULT_AT, "s1") == 4.5


def test_scheduling_gap_is_the_longest_pause_between_queued_tasks_around_the_death() -> None:
    # From -4 (within 5 s before the death) on: -4 -> 1 -> 7.5 -> 9; -6 is outside.
    assert metrics.scheduling_gap(DECISIONS, FAULT_AT) == 6.5
    assert metrics.scheduling_gap([(at(-5), "a"), (at(3), "b")], FAULT_AT) == 8.0
    assert metrics.scheduling_gap([(at(-5.1), "a"), (at(3), "b")], FAULT_AT) is None
    assert metrics.scheduling_gap([(at(-3), "a"), (at(-1), "b")], FAULT_AT) is None
    assert metrics.scheduling_gap([], FAULT_AT) is None


def test_scheduling_gap_needs_a_task_queued_after_the_death() -> None:
    # Judged by the last one queued, not by the second.
    assert metrics.scheduling_gap([(at(-3), "a"), (at(-1), "a"), (at(4.5), "b")], FAULT_AT) == 5.5
    # The last one queued exactly at the death: nothing after it yet.
    assert metrics.scheduling_gap([(at(-3), "a"), (FAULT_AT, "a")], FAULT_AT) is None


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
        "end_date": "2026-03-01T12:00:09.5Z",
        "hostname": "4f2a9c1e0b7d",
        "triggerer_job": {"id": 17, "hostname": "a1b2c3d4e5f6", "job_type": "TriggererJob"},
        "queued_when": "2026-03-01T12:00:00.5Z",
    }
    assert TaskSnapshot.from_api(ti) == TaskSnapshot(
        run_id="manual__2026-03-01",
        task_id="deferred",
        map_index=3,
        state="deferred",
        try_number=2,
        start=at(1),
        end=at(9.5),
        hostname="4f2a9c1e0b7d",
        triggerer_host="a1b2c3d4e5f6",
        triggerer_job_id=17,
        queued=at(0.5),
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
        end=None,
        hostname="",
        triggerer_host="",
        triggerer_job_id=None,
        queued=None,
    )


def test_run_snapshot_from_api() -> None:
    full: JSON = {
        "dag_run_id": "r",
        "state": "success",
        "start_date": "2026-03-01T12:00:01Z",
        "end_date": "2026-03-01T12:01:00Z",
    }
    assert RunSnapshot.from_api(full) == RunSnapshot("r", "success", at(1), at(60))
    bare: JSON = {"dag_run_id": "r", "state": None}
    assert RunSnapshot.from_api(bare) == RunSnapshot("r", "none", None, None)


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
    tries: dict[tuple[str, str, int], list[JSON]] = field(default_factory=dict)

    def dag(self, dag_id: str) -> JSON | None:
        return {"dag_id": dag_id} if self.parsed and dag_id == DAG_ID else None

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.paused.append((dag_id, paused))

    def trigger(self, dag_id: str, conf: JSON | None = None) -> JSON:
        assert dag_id == DAG_ID
        self.triggered += 1
        run_id = f"run-{self.triggered}"
        self.states[run_id] = "queued"
        return {"dag_run_id": run_id}

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        assert dag_id == DAG_ID
        return {"dag_run_id": run_id, "state": self.states[run_id]}

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        assert dag_id == DAG_ID
        return self.instances.get(run_id, [])

    def task_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[JSON]:
        assert dag_id == DAG_ID
        return self.tries.get((run_id, task_id, map_index), [])


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


class FakeClock:
    """time.monotonic and time.sleep of a clock that moves only when slept on, or
    by `per_call` on each call of `dag` (a slow API)."""

    def __init__(self, client: FakeClient, per_call: float) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.per_call = per_call
        dag = client.dag

        def slow_dag(dag_id: str) -> JSON | None:
            self.now += per_call
            return dag(dag_id)

        client.dag = slow_dag  # type: ignore[method-assign]

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("per_call", "gave_up_after"),
    [
        (0.0, 92.0),  # asked at 0, 2, ..., 90 (not yet past 90 s), 92
        (1.0, 91.0),  # asked at 1, 4, ..., 88, 91
    ],
)
def test_workload_start_waits_90_s_for_the_dag_asking_every_2_s(
    monkeypatch: pytest.MonkeyPatch, per_call: float, gave_up_after: float
) -> None:
    client = FakeClient(parsed=False)
    clock = FakeClock(client, per_call)
    monkeypatch.setattr(workload_module, "time", clock)
    with pytest.raises(VerificationError, match=r"DAG chaos_workload is not parsed"):
        workload_of(client, 2).start()
    assert clock.now - 1000.0 == gave_up_after
    assert set(clock.slept) == {2}


def test_workload_start_goes_on_once_the_dag_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    client = FakeClient(parsed=False)
    clock = FakeClock(client, 0.0)
    monkeypatch.setattr(workload_module, "time", clock)
    sleep = clock.sleep

    def parsed_after_three(seconds: float) -> None:
        sleep(seconds)
        client.parsed = len(clock.slept) == 3

    clock.sleep = parsed_after_three  # type: ignore[method-assign]
    workload = workload_of(client, 2)
    workload.start()
    assert clock.slept == [2, 2, 2]
    assert workload.run_ids == ["run-1", "run-2"]


def test_a_workload_not_started_has_no_runs() -> None:
    workload = workload_of(FakeClient(), 2)
    assert (workload.run_ids, workload.run_snapshots(), workload.tasks()) == ([], [], [])
    assert workload.finished()


def test_workload_is_finished_only_when_every_run_is() -> None:
    client = FakeClient()
    workload = workload_of(client, 2)
    workload.start()
    client.states["run-1"] = "success"
    assert not workload.finished()
    client.states["run-2"] = "failed"
    assert [(r.run_id, r.state) for r in workload.run_snapshots()] == [
        ("run-1", "success"),
        ("run-2", "failed"),
    ]
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


def test_host_of_try_names_where_that_try_ran() -> None:
    tries: list[JSON] = [
        {"try_number": 1, "hostname": "w1"},
        {"try_number": 2, "hostname": None},
        {"try_number": 3, "hostname": "w3"},
    ]
    assert host_of_try(tries, 1) == "w1"
    assert host_of_try(tries, 3) == "w3"
    assert host_of_try(tries, 2) == ""  # never started anywhere
    assert host_of_try(tries, 4) == ""
    assert host_of_try([], 1) == ""


def test_a_retried_tasks_earlier_host_is_its_try_before() -> None:
    client = FakeClient(tries={("run-1", "long", -1): [
        {"try_number": 1, "hostname": "lost"},
        {"try_number": 2, "hostname": "alive"},
    ]})  # fmt: skip
    workload = workload_of(client, 1)
    assert workload.earlier_host(snapshot("long", try_number=2)) == "lost"
    assert workload.earlier_host(snapshot("short", try_number=2)) == ""
