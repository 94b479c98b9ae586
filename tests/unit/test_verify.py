"""verify.py: DAG discovery, runs and the report, against a fake API client."""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from airflow_ha import verify
from airflow_ha.airflow_api import JSON, AirflowApiError, AirflowClient
from airflow_ha.errors import ExitCode, VerificationError
from airflow_ha.verify import (
    EXAMPLE_TAG,
    RunResult,
    TaskResult,
    check_import_errors,
    format_report,
    retried,
    retry_summary,
    run_dags,
    wait_for_dags,
    why_retried,
)


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verify, "POLL_SECONDS", 0.01)


class FakeClient(AirflowClient):
    """Canned answers for the calls verify.py makes; never any HTTP."""

    MAX_CALLS = 1000  # a loop that never ends fails the test instead of hanging it

    def __init__(
        self,
        *,
        import_errors: Iterable[JSON] = (),
        dags: Iterable[str] = (),
        dag_appears_after: int = 0,
        tagged: Iterable[str] = (),
        run_states: dict[str, list[str]] | None = None,
        task_instances: dict[str, list[JSON]] | None = None,
        triggered_state: str = "queued",
        logs: dict[tuple[str, int, int], list[Any]] | None = None,
    ) -> None:
        # No super().__init__(): no session, no URL.
        self._import_errors = list(import_errors)
        self._dags = set(dags)
        self._dag_appears_after = dag_appears_after
        self._tagged = list(tagged)
        self._run_states = {k: list(v) for k, v in (run_states or {}).items()}
        self._task_instances = task_instances or {}
        self.calls: list[tuple[Any, ...]] = []
        self.confs: dict[str, JSON | None] = {}
        self._triggered_state = triggered_state
        self.logical_dates: dict[str, datetime | None] = {}
        self._logs = logs or {}

    def _call(self, *call: Any) -> None:
        if len(self.calls) >= self.MAX_CALLS:
            raise AssertionError(f"polled forever: {len(self.calls)} calls")
        self.calls.append(call)

    def request(self, method: str, path: str, allow_404: bool = False, **kwargs: Any) -> None:
        raise AssertionError(f"unexpected HTTP request {method} {path}")

    def import_errors(self) -> list[JSON]:
        self._call("import_errors")
        return self._import_errors

    def dag(self, dag_id: str) -> JSON | None:
        self._call("dag", dag_id)
        lookups = sum(1 for call in self.calls if call[0] == "dag")
        if dag_id in self._dags and lookups > self._dag_appears_after:
            return {"dag_id": dag_id}
        return None

    def dags_tagged(self, tag: str) -> list[JSON]:
        self._call("dags_tagged", tag)
        return [{"dag_id": d, "tags": [{"name": tag}]} for d in self._tagged]

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("set_paused", dag_id, paused)

    def trigger(
        self, dag_id: str, conf: JSON | None = None, logical_date: datetime | None = None
    ) -> JSON:
        self._call("trigger", dag_id)
        self.confs[dag_id] = conf
        self.logical_dates[dag_id] = logical_date
        return {"dag_run_id": f"manual__{dag_id}", "state": self._triggered_state, "dag_id": dag_id}

    def dag_run(self, dag_id: str, run_id: str) -> JSON:
        self._call("dag_run", dag_id, run_id)
        states = self._run_states[dag_id]
        state = states.pop(0) if len(states) > 1 else states[0]
        return {"dag_id": dag_id, "dag_run_id": run_id, "state": state}

    def task_instances(self, dag_id: str, run_id: str) -> list[JSON]:
        self._call("task_instances", dag_id, run_id)
        return self._task_instances.get(dag_id, [])

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> list[Any]:
        self._call("task_log", task_id, try_number, map_index)
        entry = self._logs[(task_id, try_number, map_index)]
        if isinstance(entry, AirflowApiError):
            raise entry
        return entry


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)


# --- TaskResult -------------------------------------------------------------


def test_task_result_from_a_full_api_answer() -> None:
    task = TaskResult.from_api(
        {
            "task_id": "square",
            "map_index": 3,
            "state": "success",
            "try_number": 2,
            "duration": 1.25,
            "hostname": "worker-2",
            "extra": "ignored",
        }
    )
    assert task == TaskResult("square", 3, "success", 2, 1.25, "worker-2")
    assert task.name == "square[3]"


def test_task_result_without_duration_and_hostname() -> None:
    task = TaskResult.from_api(
        {"task_id": "wait", "map_index": -1, "state": None, "duration": None, "hostname": None}
    )
    assert task == TaskResult("wait", -1, "none", 0, None, "")
    assert task.name == "wait"


def test_task_result_with_only_a_task_id() -> None:
    task = TaskResult.from_api({"task_id": "t"})
    assert task == TaskResult("t", -1, "none", 0, None, "")


def test_task_result_converts_types() -> None:
    task = TaskResult.from_api({"task_id": 7, "map_index": "0", "try_number": "1", "duration": 3})
    assert task.task_id == "7"
    assert task.map_index == 0
    assert task.name == "7[0]"
    assert task.try_number == 1
    assert task.duration == 3.0


def test_map_index_zero_is_a_mapped_task() -> None:
    assert TaskResult("square", 0, "success", 1, None, "").name == "square[0]"


# --- format_report ------------------------------------------------------------


def test_format_report_columns_and_summary() -> None:
    runs = [
        RunResult(
            "dag_a",
            "r1",
            "success",
            [
                TaskResult("extract", -1, "success", 1, 12.34, "worker-1"),
                TaskResult("square", 3, "up_for_retry", 2, None, ""),
            ],
        ),
        RunResult("dag_b", "r2", "failed"),
    ]
    expected = (
        "DAG    RUN STATE  TASK       STATE         TRY  DURATION  WORKER HOST\n"
        "dag_a  success    extract    success       1    12.3s     worker-1\n"
        "dag_a  success    square[3]  up_for_retry  2    -         -\n"
        "dag_b  failed     -          -             -    -         -\n"
        "1 of 2 DAG runs succeeded; 1 task(s) needed more than one try: dag_a.square[3] (try 2)"
    )
    assert format_report(runs) == expected


def test_format_report_counts_only_success() -> None:
    runs = [RunResult("a", "1", "success"), RunResult("b", "2", "running")]
    runs += [RunResult("c", "3", "success"), RunResult("d", "4", "failed")]
    assert format_report(runs).endswith("\n2 of 4 DAG runs succeeded; no task needed a second try")


def test_format_report_of_nothing() -> None:
    report = format_report([])
    assert report.splitlines() == [
        "DAG  RUN STATE  TASK  STATE  TRY  DURATION  WORKER HOST",
        "0 of 0 DAG runs succeeded; no task needed a second try",
    ]


def test_every_retried_task_is_named_with_its_try() -> None:
    runs = [
        RunResult("a", "1", "success", [TaskResult("t", -1, "success", 1, 1.0, "w")]),
        RunResult(
            "b",
            "2",
            "success",
            [
                TaskResult("u", -1, "success", 2, 1.0, "w"),
                TaskResult("m", 0, "success", 1, 1.0, "w"),
                TaskResult("m", 1, "success", 3, 1.0, "w"),
            ],
        ),
    ]
    assert retried(runs) == ["b.u (try 2)", "b.m[1] (try 3)"]
    assert retry_summary(runs) == (
        "2 task(s) needed more than one try: b.u (try 2), b.m[1] (try 3)"
    )
    assert retried(runs[:1]) == []


def event(task_id: str, map_index: int, try_number: int, name: str, extra: str = "") -> JSON:
    return {
        "task_id": task_id,
        "map_index": map_index,
        "try_number": try_number,
        "event": name,
        "extra": extra or None,
    }


def test_why_retried_names_what_ended_each_earlier_try() -> None:
    runs = [
        RunResult(
            "b",
            "2",
            "success",
            [
                TaskResult("u", -1, "success", 2, 1.0, "w"),
                TaskResult("m", 0, "success", 1, 1.0, "w"),
                TaskResult("m", 1, "success", 3, 1.0, "w"),
                TaskResult("q", -1, "success", 2, 1.0, "w"),
            ],
        ),
    ]
    events = {
        "2": [
            event("u", -1, 1, "running"),
            event("u", -1, 1, "heartbeat timeout", "Task did not emit heartbeat"),
            event("u", -1, 2, "success"),
            event("m", 0, 1, "failed", "not this one: m[0] was not retried"),
            event("m", 1, 1, "up_for_retry"),
            event("m", 1, 2, "failed", "second try"),
            event("m", 1, 3, "failed", "the last try is not an earlier one"),
            event("u", 0, 1, "failed", "another map index"),
            # No map index or try (a user's action on the task): said too.
            {"task_id": "u", "map_index": None, "try_number": None, "event": "clear"},
        ],
        "other run": [event("q", -1, 1, "failed")],
    }
    assert why_retried(runs, events) == [
        "b.u (try 2): heartbeat timeout Task did not emit heartbeat",
        "b.u (try 2): clear",
        "b.m[1] (try 3): up_for_retry",
        "b.m[1] (try 3): failed second try",
        "b.q (try 2): no event logged",
    ]
    assert why_retried(runs, {}) == [
        "b.u (try 2): no event logged",
        "b.m[1] (try 3): no event logged",
        "b.q (try 2): no event logged",
    ]


def test_run_result_succeeded() -> None:
    assert RunResult("d", "r", "success").succeeded
    assert not RunResult("d", "r", "failed").succeeded
    assert not RunResult("d", "r").succeeded  # queued


# --- check_import_errors ------------------------------------------------------


def test_no_import_errors_passes() -> None:
    check_import_errors(FakeClient())


def test_import_errors_list_every_file_once() -> None:
    client = FakeClient(
        import_errors=[
            {"filename": "/opt/airflow/dags/b.py", "stack_trace": "SyntaxError: b"},
            {"filename": "/opt/airflow/dags/a.py", "stack_trace": "NameError: a"},
            {"filename": "/opt/airflow/dags/b.py", "stack_trace": "ImportError: b2"},
        ]
    )
    with pytest.raises(VerificationError) as caught:
        check_import_errors(client)
    error = caught.value
    assert str(error) == (
        "3 DAG import error(s) in: /opt/airflow/dags/a.py, /opt/airflow/dags/b.py"
    )
    assert error.exit_code == ExitCode.VERIFY
    for trace in ("SyntaxError: b", "NameError: a", "ImportError: b2"):
        assert trace in error.details


# --- wait_for_dags ------------------------------------------------------------


def test_wait_returns_named_dags_that_exist() -> None:
    log = Log()
    client = FakeClient(dags=["one", "two"])
    assert wait_for_dags(client, ["one", "two"], timeout=5, log=log) == ["one", "two"]
    assert log.lines == []


def test_wait_stops_at_once_on_import_errors() -> None:
    client = FakeClient(import_errors=[{"filename": "broken.py"}], dags=["one"])
    with pytest.raises(VerificationError, match=r"1 DAG import error\(s\) in: broken\.py"):
        wait_for_dags(client, ["one"], timeout=60, log=Log())
    assert client.calls == [("import_errors",)]


def test_wait_names_the_dag_that_never_appears() -> None:
    log = Log()
    client = FakeClient(dags=["present"])
    with pytest.raises(VerificationError) as caught:
        wait_for_dags(client, ["present", "ghost"], timeout=0.2, log=log)

    message = str(caught.value)
    assert message.startswith("DAG ghost did not appear within 0 s")
    assert "present" not in message
    assert "\n" not in message
    assert caught.value.exit_code == ExitCode.VERIFY
    ghost_lookups = [call for call in client.calls if call == ("dag", "ghost")]
    assert len(ghost_lookups) >= 2, "it gave up without polling again"
    assert log.lines == ["waiting for the dag-processor to parse ghost"]  # announced once


def test_wait_polls_until_the_dag_is_parsed() -> None:
    log = Log()
    client = FakeClient(dags=["late"], dag_appears_after=3)
    assert wait_for_dags(client, ["late"], timeout=5, log=log) == ["late"]
    assert client.calls.count(("dag", "late")) == 4
    assert client.calls.count(("import_errors",)) == 4  # checked on every round
    assert log.lines == ["waiting for the dag-processor to parse late"]


def test_wait_without_dag_ids_finds_the_example_dags_sorted() -> None:
    client = FakeClient(tagged=["zeta", "alpha"])
    assert wait_for_dags(client, [], timeout=5, log=Log()) == ["alpha", "zeta"]
    assert ("dags_tagged", EXAMPLE_TAG) in client.calls


def test_wait_without_dag_ids_and_no_example_dags() -> None:
    with pytest.raises(VerificationError, match=f"any DAG tagged '{EXAMPLE_TAG}'"):
        wait_for_dags(FakeClient(), [], timeout=0.03, log=Log())


# --- run_dags -----------------------------------------------------------------


def test_run_dags_unpauses_triggers_waits_and_collects_tasks() -> None:
    log = Log()
    client = FakeClient(
        run_states={"dag_a": ["running", "running", "success"], "dag_b": ["failed"]},
        task_instances={
            "dag_a": [
                {"task_id": "square", "map_index": 10, "state": "success", "hostname": "w1"},
                {"task_id": "square", "map_index": 2, "state": "success", "hostname": "w2"},
                {"task_id": "total", "map_index": -1, "state": "success", "hostname": "w1"},
                {"task_id": "extract", "map_index": -1, "state": "success", "duration": 0.5},
            ],
        },
    )

    runs = run_dags(client, ["dag_a", "dag_b"], timeout=5, log=log)

    assert [(r.dag_id, r.run_id, r.state) for r in runs] == [
        ("dag_a", "manual__dag_a", "success"),
        ("dag_b", "manual__dag_b", "failed"),
    ]
    assert [t.name for t in runs[0].tasks] == ["extract", "square[2]", "square[10]", "total"]
    assert runs[0].tasks[0].duration == 0.5
    assert runs[1].tasks == []
    # Each DAG is unpaused before it is triggered.
    assert client.calls[:4] == [
        ("set_paused", "dag_a", False),
        ("trigger", "dag_a"),
        ("set_paused", "dag_b", False),
        ("trigger", "dag_b"),
    ]
    # A finished run is not polled again.
    assert client.calls.count(("dag_run", "dag_b", "manual__dag_b")) == 1
    assert client.calls.count(("dag_run", "dag_a", "manual__dag_a")) == 3
    # State changes are logged once each.
    assert log.lines == [
        "dag_a: triggered run manual__dag_a",
        "dag_b: triggered run manual__dag_b",
        "dag_a: running",
        "dag_b: failed",
        "dag_a: success",
    ]


def test_run_dags_gives_up_at_the_timeout_and_still_reports() -> None:
    client = FakeClient(
        run_states={"slow": ["running"]},
        task_instances={"slow": [{"task_id": "sleep", "state": "running"}]},
    )
    [run] = run_dags(client, ["slow"], timeout=0.05, log=Log())

    assert run.state == "running"
    assert not run.succeeded
    assert [t.state for t in run.tasks] == ["running"]


def test_verify_discovers_then_runs() -> None:
    client = FakeClient(tagged=["example"], run_states={"example": ["success"]})
    runs = verify.verify(client, [], timeout=5, discover_timeout=5, log=Log())
    assert [(r.dag_id, r.state) for r in runs] == [("example", "success")]


def test_task_result_keeps_when_it_was_queued_started_and_ended() -> None:
    task = TaskResult.from_api(
        {
            "task_id": "t",
            "queued_when": "2026-12-01T10:00:00Z",
            "start_date": "2026-12-01T10:00:02Z",
            "end_date": "2026-12-01T10:00:05.5Z",
        }
    )
    assert task.queued_at == datetime(2026, 12, 1, 10, 0, 0, tzinfo=UTC)
    assert task.started_at == datetime(2026, 12, 1, 10, 0, 2, tzinfo=UTC)
    assert task.ended_at == datetime(2026, 12, 1, 10, 0, 5, 500000, tzinfo=UTC)


def test_a_zero_duration_is_a_duration() -> None:
    task = TaskResult.from_api({"task_id": "t", "duration": 0})
    assert task.duration == 0.0
    runs = [RunResult("d", "r", "success", [task])]
    assert "0.0s" in format_report(runs).splitlines()[1]


def test_import_error_details_give_each_file_and_its_trace() -> None:
    client = FakeClient(
        import_errors=[
            {"filename": "a.py", "stack_trace": "Trace A"},
            {"stack_trace": "Trace without file"},
            {"filename": "c.py"},
        ]
    )
    with pytest.raises(VerificationError) as caught:
        check_import_errors(client)
    assert str(caught.value) == "3 DAG import error(s) in: ?, a.py, c.py"
    assert caught.value.details == "a.py:\nTrace A\n\n?:\nTrace without file\n\nc.py:\n"


def test_run_dags_passes_each_dag_its_own_conf() -> None:
    client = FakeClient(run_states={"a": ["success"], "b": ["success"]})
    run_dags(client, ["a", "b"], timeout=5, log=Log(), conf={"a": {"n": 3}})
    assert client.confs == {"a": {"n": 3}, "b": None}


def test_run_dags_without_conf_triggers_with_none() -> None:
    client = FakeClient(run_states={"a": ["success"]})
    run_dags(client, ["a"], timeout=5, log=Log())
    assert client.confs == {"a": None}


def test_run_dags_stops_polling_once_every_run_finished() -> None:
    client = FakeClient(run_states={"a": ["running", "failed"], "b": ["success"]})
    runs = run_dags(client, ["a", "b"], timeout=5, log=Log())

    assert [r.state for r in runs] == ["failed", "success"]
    polls = [call for call in client.calls if call[0] == "dag_run"]
    assert polls == [
        ("dag_run", "a", "manual__a"),
        ("dag_run", "b", "manual__b"),
        ("dag_run", "a", "manual__a"),
    ]


def test_run_dags_reports_an_unfinished_run_with_its_last_state() -> None:
    log = Log()
    client = FakeClient(run_states={"a": ["queued", "running"]})
    [run] = run_dags(client, ["a"], timeout=0.1, log=log)
    assert run.state == "running"
    assert log.lines == ["a: triggered run manual__a", "a: running"]  # queued was no change


def test_the_discovery_timeout_is_not_the_run_timeout() -> None:
    with pytest.raises(VerificationError, match="did not appear within 0 s"):
        verify.verify(FakeClient(), ["ghost"], timeout=5, discover_timeout=0.05, log=Log())


def test_the_state_a_trigger_answers_is_the_runs_first_state() -> None:
    log = Log()
    client = FakeClient(run_states={"a": ["running", "success"]}, triggered_state="running")
    run_dags(client, ["a"], timeout=5, log=log)
    assert log.lines == ["a: triggered run manual__a", "a: success"]


def test_verify_runs_the_named_dags_not_the_examples() -> None:
    log = Log()
    client = FakeClient(
        dags=["mine"], dag_appears_after=1, tagged=["example"], run_states={"mine": ["success"]}
    )
    runs = verify.verify(client, ["mine"], timeout=5, discover_timeout=5, log=log)
    assert [(r.dag_id, r.state) for r in runs] == [("mine", "success")]
    assert log.lines[0] == "waiting for the dag-processor to parse mine"


def test_every_missing_dag_is_named_with_a_hint() -> None:
    log = Log()
    with pytest.raises(VerificationError) as caught:
        wait_for_dags(FakeClient(), ["a", "b"], timeout=0.05, log=log)
    assert str(caught.value) == (
        "DAG a, b did not appear within 0 s: "
        "is its file in the DAG folder, and does it define that dag_id?"
    )
    assert log.lines == ["waiting for the dag-processor to parse a, b"]


def test_the_tasks_reported_are_those_of_the_run_triggered() -> None:
    client = FakeClient(run_states={"a": ["success"]})
    run_dags(client, ["a"], timeout=5, log=Log())
    assert client.calls[-1] == ("task_instances", "a", "manual__a")


# --- logical dates, log tails, the outcome ---------------------------------------


def test_runs_are_triggered_with_the_logical_date_the_source_gives() -> None:
    moment = datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC)
    client = FakeClient(run_states={"a": ["success"]})
    [run] = run_dags(client, ["a"], timeout=5, log=Log(), logical_date=lambda: moment)
    assert client.logical_dates == {"a": moment}
    assert run.logical_date == moment


def test_logical_date_sources() -> None:
    before = datetime.now(UTC)
    now = verify.logical_date_source("now")()
    assert now is not None
    assert before <= now <= datetime.now(UTC)
    assert verify.logical_date_source("none")() is None
    fixed = datetime(2020, 1, 1, tzinfo=UTC)
    assert verify.logical_date_source(fixed)() == fixed
    with pytest.raises(ValueError, match="tomorrow"):
        verify.logical_date_source("tomorrow")


def failing_run_client(logs: dict[tuple[str, int, int], list[Any]]) -> FakeClient:
    return FakeClient(
        run_states={"a": ["failed"]},
        task_instances={
            "a": [
                {"task_id": "ok", "state": "success", "try_number": 1},
                {"task_id": "branch", "state": "skipped", "try_number": 0},
                {"task_id": "boom", "map_index": 2, "state": "failed", "try_number": 3},
                {"task_id": "after", "state": "upstream_failed", "try_number": 0},
            ]
        },
        logs=logs,
    )


def test_log_tails_are_read_only_for_tries_of_tasks_that_failed() -> None:
    entries = [{"event": f"line {n}"} for n in range(40)]
    client = failing_run_client({("boom", 3, 2): entries})
    [run] = run_dags(client, ["a"], timeout=5, log=Log(), with_log_tails=True)
    tails = {task.name: task.log_tail for task in run.tasks}
    assert tails["boom[2]"] == tuple(f"line {n}" for n in range(10, 40))
    assert tails["ok"] == tails["branch"] == tails["after"] == ()
    assert [call for call in client.calls if call[0] == "task_log"] == [("task_log", "boom", 3, 2)]


def test_without_log_tails_no_log_is_read() -> None:
    client = failing_run_client({})
    run_dags(client, ["a"], timeout=5, log=Log())
    assert not [call for call in client.calls if call[0] == "task_log"]


def test_an_unreadable_log_is_said_in_the_tail_and_does_not_stop_verify() -> None:
    client = failing_run_client({("boom", 3, 2): AirflowApiError("HTTP 404")})  # type: ignore[dict-item]
    [run] = run_dags(client, ["a"], timeout=5, log=Log(), with_log_tails=True)
    [boom] = [task for task in run.tasks if task.task_id == "boom"]
    assert boom.log_tail == ("(the log could not be read: HTTP 404)",)


def test_log_lines_of_structured_entries_and_plain_strings() -> None:
    entry = {
        "timestamp": "2026-12-02T03:04:05Z",
        "level": "error",
        "event": "Task failed with exception",
        "error_detail": [{"exc_type": "ValueError", "exc_value": "bad input"}],
    }
    assert verify.log_line(entry) == (
        "2026-12-02T03:04:05Z error Task failed with exception\nValueError: bad input"
    )
    assert verify.log_line({"event": "plain"}) == "plain"
    assert verify.log_line("a raw line") == "a raw line"
    assert verify.log_tail([entry, "x"], lines=2) == ("ValueError: bad input", "x")


def test_task_failed_means_neither_success_nor_skipped() -> None:
    def task(state: str) -> TaskResult:
        return TaskResult("t", -1, state, 1, None, "")

    assert [s for s in ("success", "skipped", "removed") if task(s).failed] == []
    assert all(task(s).failed for s in ("failed", "upstream_failed", "queued", "none"))


def test_outcome_is_ok_only_with_runs_that_all_succeeded_and_no_problem() -> None:
    good = RunResult("a", "r1", "success")
    bad = RunResult("b", "r2", "failed")
    assert verify.Outcome([good]).ok
    assert not verify.Outcome([]).ok
    assert not verify.Outcome([good, bad]).ok
    assert verify.Outcome([good, bad]).failed_runs == [bad]
    assert not verify.Outcome([good], problems=[verify.ImportProblem("f.py", "x")]).ok
    assert not verify.Outcome([good], error="stopped").ok


def test_outcome_as_json() -> None:
    moment = datetime(2026, 12, 2, tzinfo=UTC)
    task = TaskResult("t", 1, "failed", 2, 1.5, "w1", None, moment, None, ("x",))
    outcome = verify.Outcome(
        [RunResult("a", "r1", "failed", [task], moment)],
        [verify.ImportProblem("f.py", "trace")],
        "why",
    )
    assert outcome.as_json() == {
        "ok": False,
        "error": "why",
        "import_errors": [{"filename": "f.py", "trace": "trace"}],
        "runs": [
            {
                "dag_id": "a",
                "run_id": "r1",
                "state": "failed",
                "succeeded": False,
                "logical_date": "2026-12-02T00:00:00+00:00",
                "error": "",
                "tasks": [
                    {
                        "task_id": "t",
                        "map_index": 1,
                        "state": "failed",
                        "try_number": 2,
                        "duration": 1.5,
                        "hostname": "w1",
                        "queued_at": None,
                        "started_at": "2026-12-02T00:00:00+00:00",
                        "ended_at": None,
                        "log_tail": ["x"],
                    }
                ],
            }
        ],
    }


def test_the_report_shows_the_log_tail_of_each_failed_task() -> None:
    task = TaskResult("boom", -1, "failed", 2, None, "w1", log_tail=("first", "last"))
    report = format_report([RunResult("a", "r", "failed", [task])])
    assert "--- a.boom: failed, try 2, last log lines ---\nfirst\nlast\n0 of 1" in report


def test_import_errors_carry_each_problem() -> None:
    client = FakeClient(import_errors=[{"filename": "x.py", "stack_trace": "boom"}])
    with pytest.raises(verify.DagImportError) as caught:
        check_import_errors(client)
    assert caught.value.problems == [verify.ImportProblem("x.py", "boom")]


def test_a_huge_log_line_is_shortened() -> None:
    huge = {"event": "Done. Returned value was: " + "x" * 10_000}
    [line] = verify.log_tail([huge])
    assert line == "Done. Returned value was: " + "x" * 474 + "... (9526 more characters)"
    assert verify.shortened("short") == "short"
    assert verify.shortened("x" * 500) == "x" * 500


def test_a_refused_trigger_fails_that_dag_only() -> None:
    class Refusing(FakeClient):
        def trigger(
            self, dag_id: str, conf: JSON | None = None, logical_date: datetime | None = None
        ) -> JSON:
            if dag_id == "needs_param":
                raise AirflowApiError("POST .../dagRuns failed with HTTP 400: required_field")
            return super().trigger(dag_id, conf, logical_date)

    log = Log()
    client = Refusing(run_states={"ok": ["success"]})
    runs = run_dags(client, ["needs_param", "ok"], timeout=5, log=log)
    assert [(r.dag_id, r.state, r.succeeded) for r in runs] == [
        ("needs_param", "not triggered", False),
        ("ok", "success", True),
    ]
    assert runs[0].error == "POST .../dagRuns failed with HTTP 400: required_field"
    assert runs[0].tasks == []
    assert "needs_param: not triggered: POST .../dagRuns failed with HTTP 400" in log.lines[0]
    assert not [
        c for c in client.calls if c[0] in ("dag_run", "task_instances") and c[1] == "needs_param"
    ]


def test_log_lines_without_event_or_exception_type() -> None:
    assert verify.log_line({"timestamp": "t", "level": "info"}) == "t info "
    assert verify.log_line({"event": "e", "error_detail": [{"exc_value": "v"}]}) == "e\n?: v"
    assert verify.log_line({"event": "e", "error_detail": [{"exc_type": "T"}]}) == "e\nT: "
