"""chaos/report.py and FaultResult: the verdict of each fault, its table row and its JSON."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from airflow_ha.chaos.evidence import Restart
from airflow_ha.chaos.report import HEADER, format_restarts, format_table, write_json
from airflow_ha.chaos.runner import FaultResult

from .chaos_fakes import at

CRASH = Restart(
    "airflow-ha-triggerer-2", "triggerer", "restarted 1 time by its restart policy", "boom"
)


def result(
    fault: str = "scheduler-kill",
    succeeded: int = 3,
    back: float | None = 12.3,
    **changes: Any,
) -> FaultResult:
    runs = changes.pop("runs", 3)
    r = FaultResult(
        fault=fault,
        description=f"the {fault} fault",
        target=f"airflow-ha-{fault.split('-')[0]}-1",
        injected_at=changes.pop("injected_at", at(0)),
        evidence=changes.pop("evidence", "died at 12:00:00.000000 UTC (Docker FinishedAt)"),
        runs=runs,
        succeeded=succeeded,
        failed=changes.pop("failed", 0),
        stuck=changes.pop("stuck", runs - succeeded),
        retries=changes.pop("retries", 0),
        run_seconds=changes.pop("run_seconds", [61.0, 64.5, None][:runs]),
        container_back_s=back,
        next_task_start_s=changes.pop("next_task_start_s", 1.5),
        longest_stall_s=changes.pop("longest_stall_s", 40.25),
        stall_limit_s=changes.pop("stall_limit_s", 390.0),
        deadlocks=changes.pop("deadlocks", 0),
        restarts=changes.pop("restarts", []),
        designed_restarts=changes.pop("designed_restarts", []),
        details=changes.pop("details", {}),
    )
    assert not changes, f"unknown fields {changes}"
    return r


def rows(text: str) -> list[dict[str, str]]:
    """The table's body as one dict per row, cut at the header's column starts."""
    header, *body = text.splitlines()
    starts = [header.index(name) for name in HEADER]
    assert starts == sorted(starts)
    assert header.split() == " ".join(HEADER).split()
    ends = [*starts[1:], None]
    return [
        {name: line[a:b].strip() for name, a, b in zip(HEADER, starts, ends, strict=True)}
        for line in body
    ]


# --- FaultResult: the verdict ---------------------------------------------------------------


def test_ok_needs_every_check_to_pass() -> None:
    good = result()
    assert (good.injected, good.nothing_lost, good.stalled, good.harmful_deadlocks) == (
        True,
        True,
        False,
        False,
    )
    assert (good.problems, good.ok, good.verdict) == ([], True, "ok")


@pytest.mark.parametrize(
    ("r", "verdict", "problem"),
    [
        (
            result(injected_at=None, evidence="Docker shows no sign of it", back=None),
            "not injected",
            "not injected (Docker shows no sign of it)",
        ),
        (result(succeeded=2, failed=1, stuck=0), "LOST/STUCK", "1 failed, 0 stuck of 3 runs"),
        (result(succeeded=1, stuck=2), "LOST/STUCK", "0 failed, 2 stuck of 3 runs"),
        (result(runs=3, succeeded=0, stuck=3), "LOST/STUCK", "0 failed, 3 stuck of 3 runs"),
        (result(back=None), "NOT BACK", "airflow-ha-scheduler-1 not back"),
        (result(longest_stall_s=390.1), "STALLED", "stalled 390.1 s (limit 390 s)"),
        (
            result(details={"api_requests": 500, "api_failed": 1}),
            "API FAILED",
            "1 API requests failed",
        ),
        (
            result(restarts=[CRASH]),
            "CRASHED",
            "airflow-ha-triggerer-2 restarted 1 time by its restart policy",
        ),
    ],
)
def test_each_failed_check_fails_the_fault(r: FaultResult, verdict: str, problem: str) -> None:
    assert r.verdict == verdict
    assert problem in r.problems
    assert not r.ok
    (row,) = rows(format_table([r]))
    assert row["RESULT"] == verdict


@pytest.mark.parametrize(
    "r",
    [
        result(back=0.0),  # 0.0 s is a time, not a missing one
        result(longest_stall_s=390.0),  # at the limit, not beyond it
        result(longest_stall_s=None),
        result(details={"api_requests": 500, "api_failed": 0}),
        result(deadlocks=4),  # deadlocks InnoDB resolved without harm
        result(deadlocks=None),  # MySQL's log could not be read
        result(runs=0, succeeded=0),
    ],
)
def test_these_are_ok(r: FaultResult) -> None:
    assert (r.problems, r.ok, r.verdict) == ([], True, "ok")


def test_the_worst_news_is_the_verdict_and_every_problem_is_listed() -> None:
    r = result(succeeded=2, stuck=1, back=None, restarts=[CRASH], deadlocks=2)
    assert r.verdict == "LOST/STUCK"
    assert r.problems == [
        "0 failed, 1 stuck of 3 runs",
        "airflow-ha-scheduler-1 not back",
        "airflow-ha-triggerer-2 restarted 1 time by its restart policy",
        "2 MySQL deadlocks",
    ]


def test_deadlocks_fail_the_fault_only_with_a_lost_run_or_a_crash() -> None:
    assert result(deadlocks=1, succeeded=2, failed=1, stuck=0).harmful_deadlocks
    assert result(deadlocks=1, restarts=[CRASH]).harmful_deadlocks
    assert not result(deadlocks=1).harmful_deadlocks
    assert not result(deadlocks=0, restarts=[CRASH]).harmful_deadlocks
    assert result(deadlocks=1, restarts=[CRASH]).verdict == "CRASHED"
    deadlock_only = result(deadlocks=1, restarts=[CRASH])
    assert "1 MySQL deadlocks" in deadlock_only.problems


def test_a_not_injected_fault_is_not_also_not_back() -> None:
    r = result(injected_at=None, back=None)
    assert r.problems == [f"not injected ({r.evidence})"]


# --- format_table ---------------------------------------------------------------------------


def test_table_header_and_one_row_per_result() -> None:
    text = format_table([result("scheduler-kill"), result("redis-outage")])
    assert [r["FAULT"] for r in rows(text)] == ["scheduler-kill", "redis-outage"]
    assert len(text.splitlines()) == 3


def test_table_without_results_is_the_header_alone() -> None:
    assert format_table([]).split() == " ".join(HEADER).split()


def test_row_figures() -> None:
    r = result(
        "mysql-restart",
        succeeded=2,
        stuck=1,
        retries=4,
        back=7.25,
        next_task_start_s=None,
        longest_stall_s=30.04,
    )
    (row,) = rows(format_table([r]))
    assert row["TARGET"] == "airflow-ha-mysql-1"
    assert row["RUNS OK"] == "2/3"
    assert row["RETRIES"] == "4"
    assert row["BACK s"] == "7.2"  # one decimal (7.25 rounds half to even)
    assert row["NEXT START s"] == "-"
    assert row["STALL s"] == "30.0"


def test_missing_times_show_a_dash() -> None:
    (row,) = rows(format_table([result(back=None, longest_stall_s=None)]))
    assert (row["BACK s"], row["STALL s"], row["NEXT START s"]) == ("-", "-", "1.5")


def detail(r: FaultResult) -> str:
    (row,) = rows(format_table([r]))
    return row["DETAIL"]


RUNS_TOOK = "runs took 61/64/- s"


def test_detail_of_api_server_kill_counts_failed_requests() -> None:
    r = result(
        "api-server-kill",
        details={"api_requests": 412, "api_failed": 3, "api_first_error": "HTTP 503"},
    )
    assert detail(r) == f"3 of 412 API requests failed; {RUNS_TOOK}"


@pytest.mark.parametrize(
    ("cut_off", "said"),
    [
        (1, "1 answer broken off by the kill, sent again; "),
        (2, "2 answers broken off by the kill, sent again; "),
        (0, ""),
    ],
)
def test_detail_of_api_server_kill_counts_answers_broken_off(cut_off: int, said: str) -> None:
    r = result(
        "api-server-kill", details={"api_requests": 412, "api_failed": 0, "api_cut_off": cut_off}
    )
    assert detail(r) == f"0 of 412 API requests failed; {said}{RUNS_TOOK}"
    assert r.verdict == "ok"  # an answer sent again and whole is not a failed request


def test_detail_of_scheduler_kill_names_the_survivors_first_task() -> None:
    r = result(details={"survivor_queued_s": 3.5, "scheduling_gap_s": 4.0}, run_seconds=[])
    assert detail(r) == (
        "surviving scheduler queued a task after 3.5 s; longest pause between tasks queued 4.0 s"
    )


def test_detail_of_worker_kill_with_a_retry() -> None:
    r = result(
        "worker-kill",
        run_seconds=[80.0],
        details={
            "victim_final_state": "success",
            "victim_tries": 2,
            "loss_detected_s": 16.5,
            "retry_started_s": 27.4,
            "retry_host": "9e8d7c6b5a41",
        },
    )
    assert detail(r) == (
        "killed try failed after 16.5 s; retry running after 27.4 s on 9e8d7c6b5a41; runs took 80 s"
    )


def test_detail_of_worker_fault_without_a_retry_gives_the_long_tasks_state() -> None:
    r = result(
        "worker-kill", run_seconds=[], details={"victim_final_state": "failed", "victim_tries": 1}
    )
    assert detail(r) == "long task: failed, try 1"
    assert detail(result("worker-partition", run_seconds=[])) == "long task: ?, try ?"


def test_detail_of_triggerer_kill() -> None:
    r = result(
        "triggerer-kill",
        run_seconds=[],
        details={
            "trigger_taken_s": 16.0,
            "trigger_taken_by": "b0b0b0b0b0b0",
            "deferred_resumed_s": 30.5,
        },
    )
    assert detail(r) == (
        "trigger taken by b0b0b0b0b0b0 after 16.0 s; deferred task resumed after 30.5 s"
    )


def test_detail_of_mysql_restart_gives_when_the_api_answered_again_and_deadlocks() -> None:
    r = result(
        "mysql-restart",
        run_seconds=[],
        deadlocks=2,
        details={"api_unavailable_polls": 4, "api_back_s": 9.5},
    )
    assert detail(r) == "REST API answered again after 9.5 s; 2 MySQL deadlocks"


def test_detail_names_the_components_that_restarted_as_designed() -> None:
    r = result("mysql-restart", run_seconds=[], designed_restarts=[CRASH])
    assert detail(r) == "restarted as designed when MySQL went away: airflow-ha-triggerer-2"
    assert r.ok
    scheduler = replace(CRASH, container="airflow-ha-scheduler-1", service="scheduler")
    r = result("mysql-restart", run_seconds=[], designed_restarts=[scheduler, CRASH])
    assert detail(r) == (
        "restarted as designed when MySQL went away: airflow-ha-scheduler-1, airflow-ha-triggerer-2"
    )


def test_detail_of_a_fault_without_details_is_the_run_times_alone() -> None:
    assert detail(result("scheduler-kill")) == RUNS_TOOK
    assert detail(result("redis-outage", run_seconds=[], details={"victim_tries": 1})) == ""


def test_columns_line_up_across_rows() -> None:
    long_target = replace(result("worker-kill"), target="a-very-long-container-name-1")
    text = format_table([result(), long_target])
    header, *body = text.splitlines()
    start = header.index("RUNS OK")
    assert all(line[start:].startswith("3/3") for line in body)


def test_format_restarts_gives_each_crash_with_its_logs() -> None:
    text = format_restarts(
        [result(restarts=[CRASH]), result(), result("redis-outage", restarts=[CRASH])]
    )
    crash = "airflow-ha-triggerer-2 (triggerer) restarted 1 time by its restart policy"
    assert text == f"scheduler-kill: {crash}\nboom\nredis-outage: {crash}\nboom"
    assert format_restarts([result()]) == ""


# --- write_json -----------------------------------------------------------------------------


def test_write_json_has_every_field_and_the_verdicts(tmp_path: Path) -> None:
    results = [
        result("worker-kill", retries=1, details={"retry_host": "h1", "retry_started_s": 20.5}),
        result("redis-outage", succeeded=2, stuck=1),
        result("scheduler-kill", injected_at=None, evidence="no target", restarts=[CRASH]),
    ]
    path = tmp_path / "chaos.json"
    write_json(results, path)

    text = path.read_text()
    assert text.endswith("}\n]\n")
    loaded = json.loads(text)
    assert [(r["fault"], r["ok"], r["verdict"], r["injected"]) for r in loaded] == [
        ("worker-kill", True, "ok", True),
        ("redis-outage", False, "LOST/STUCK", True),
        ("scheduler-kill", False, "not injected", False),
    ]
    first = loaded[0]
    assert first["injected_at"] == "2026-03-01T12:00:00+00:00"
    assert first["run_seconds"] == [61.0, 64.5, None]
    assert first["longest_stall_s"] == 40.25
    assert first["stall_limit_s"] == 390.0
    assert first["deadlocks"] == 0
    assert first["details"] == {"retry_host": "h1", "retry_started_s": 20.5}
    assert loaded[2]["injected_at"] is None
    assert loaded[2]["restarts"] == [
        {
            "container": "airflow-ha-triggerer-2",
            "service": "triggerer",
            "what": "restarted 1 time by its restart policy",
            "logs": "boom",
        }
    ]
    fields = set(FaultResult.__dataclass_fields__)
    assert set(first) == fields | {"injected", "ok", "verdict"}


def test_write_json_replaces_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    write_json([result("a"), result("b")], path)
    write_json([result("c")], path)
    assert [r["fault"] for r in json.loads(path.read_text())] == ["c"]
