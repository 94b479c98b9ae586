"""chaos/report.py and FaultResult: the verdict of each fault, its table row and its JSON."""

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from airflow_ha.chaos.report import format_table, write_json
from airflow_ha.chaos.runner import FaultResult

HEADER = (
    "FAULT",
    "TARGET",
    "RUNS OK",
    "RETRIES",
    "BACK s",
    "NEXT START s",
    "MAX GAP s",
    "RESULT",
    "DETAIL",
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
        runs=runs,
        succeeded=succeeded,
        failed=changes.pop("failed", 0),
        stuck=changes.pop("stuck", runs - succeeded),
        retries=changes.pop("retries", 0),
        container_back_s=back,
        next_task_start_s=changes.pop("next_task_start_s", 1.5),
        max_start_gap_s=changes.pop("max_start_gap_s", 4.25),
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


# --- FaultResult ----------------------------------------------------------------------------


def test_ok_needs_every_run_and_the_container_back() -> None:
    good = result()
    assert good.nothing_lost
    assert good.ok


def test_a_lost_run_is_not_ok_even_with_the_container_back() -> None:
    lost = result(succeeded=2, failed=1, stuck=0)
    assert not lost.nothing_lost
    assert not lost.ok


def test_a_stuck_run_is_lost() -> None:
    stuck = result(succeeded=2, stuck=1)
    assert not stuck.nothing_lost
    assert not stuck.ok


def test_a_container_that_never_came_back_is_not_ok_though_nothing_was_lost() -> None:
    not_back = result(back=None)
    assert not_back.nothing_lost
    assert not not_back.ok


def test_a_container_back_at_once_is_ok() -> None:
    # 0.0 s is a time, not a missing one.
    assert result(back=0.0).ok


def test_nothing_lost_compares_with_the_runs_actually_seen() -> None:
    assert not result(runs=3, succeeded=0, stuck=3).nothing_lost
    assert result(runs=0, succeeded=0).nothing_lost


# --- format_table ---------------------------------------------------------------------------


def test_table_header_and_one_row_per_result() -> None:
    text = format_table([result("scheduler-kill"), result("redis-restart")])
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == " ".join(HEADER).split()
    assert [r["FAULT"] for r in rows(text)] == ["scheduler-kill", "redis-restart"]


def test_table_without_results_is_the_header_alone() -> None:
    assert format_table([]).split() == " ".join(HEADER).split()


@pytest.mark.parametrize(
    ("r", "verdict"),
    [
        (result(), "ok"),
        (result(succeeded=2, failed=1, stuck=0), "LOST/STUCK"),
        (result(succeeded=1, stuck=2), "LOST/STUCK"),
        # Lost runs are the worse news: they win over a container that is not back.
        (result(succeeded=2, stuck=1, back=None), "LOST/STUCK"),
        (result(back=None), "NOT BACK"),
        # A failed request through the load balancer is a failure of the HA promise.
        (result(details={"api_requests": 500, "api_failed": 1}), "API FAILED"),
        (result(details={"api_requests": 500, "api_failed": 0}), "ok"),
    ],
)
def test_verdict_column(r: FaultResult, verdict: str) -> None:
    (row,) = rows(format_table([r]))
    assert row["RESULT"] == verdict


def test_row_figures() -> None:
    r = result(
        "mysql-restart",
        succeeded=2,
        stuck=1,
        retries=4,
        back=7.25,
        next_task_start_s=None,
        max_start_gap_s=30.04,
    )
    (row,) = rows(format_table([r]))
    assert row["TARGET"] == "airflow-ha-mysql-1"
    assert row["RUNS OK"] == "2/3"
    assert row["RETRIES"] == "4"
    assert row["BACK s"] == "7.2"  # one decimal (7.25 rounds half to even)
    assert row["NEXT START s"] == "-"
    assert row["MAX GAP s"] == "30.0"


def test_a_container_not_back_shows_a_dash() -> None:
    (row,) = rows(format_table([result(back=None, max_start_gap_s=None)]))
    assert row["BACK s"] == "-"
    assert row["MAX GAP s"] == "-"
    assert row["NEXT START s"] == "1.5"


def detail(r: FaultResult) -> str:
    (row,) = rows(format_table([r]))
    return row["DETAIL"]


def test_detail_of_api_server_kill_counts_failed_requests() -> None:
    r = result(
        "api-server-kill",
        details={"api_requests": 412, "api_failed": 3, "api_first_error": "HTTP 503"},
    )
    assert detail(r) == "3 of 412 API requests failed"


def test_detail_of_worker_kill_with_a_retry() -> None:
    r = result(
        "worker-kill",
        details={
            "victim_final_state": "success",
            "victim_tries": 2,
            "retry_started_s": 27.4,
            "retry_host": "9e8d7c6b5a41",
        },
    )
    assert detail(r) == "retried after 27.4 s on 9e8d7c6b5a41"


def test_detail_of_worker_kill_without_a_retry_falls_back_to_the_final_state() -> None:
    r = result("worker-kill", details={"victim_final_state": "failed", "victim_tries": 1})
    assert detail(r) == "killed task: failed, try 1"


def test_detail_of_worker_fault_without_a_victim() -> None:
    assert detail(result("worker-partition")) == "killed task: ?, try ?"


def test_detail_of_triggerer_kill() -> None:
    r = result(
        "triggerer-kill",
        details={
            "victim_final_state": "success",
            "victim_tries": 1,
            "trigger_moved_s": 16.0,
            "new_triggerer": "b0b0b0b0b0b0",
        },
    )
    assert detail(r) == "trigger moved/resumed after 16.0 s"


def test_detail_of_a_fault_without_details_is_empty() -> None:
    assert detail(result("scheduler-kill")) == ""
    assert detail(result("redis-restart", details={"victim_tries": 1})) == ""


def test_detail_parts_are_joined() -> None:
    r = result(
        "api-server-kill",
        details={"api_requests": 10, "api_failed": 0, "trigger_moved_s": 2.5},
    )
    assert detail(r) == "0 of 10 API requests failed; trigger moved/resumed after 2.5 s"


def test_columns_line_up_across_rows() -> None:
    long_target = replace(result("worker-kill"), target="a-very-long-container-name-1")
    text = format_table([result(), long_target])
    header, *body = text.splitlines()
    start = header.index("RUNS OK")
    assert all(line[start:].startswith("3/3") for line in body)


# --- write_json -----------------------------------------------------------------------------


def test_write_json_round_trips_with_the_verdicts(tmp_path: Path) -> None:
    results = [
        result("worker-kill", retries=1, details={"retry_host": "h1", "retry_started_s": 20.5}),
        result("redis-restart", succeeded=2, stuck=1),
        result("scheduler-kill", back=None),
    ]
    path = tmp_path / "chaos.json"
    write_json(results, path)

    text = path.read_text()
    assert text.endswith("}\n]\n")
    loaded = json.loads(text)
    assert [(r["fault"], r["ok"], r["nothing_lost"]) for r in loaded] == [
        ("worker-kill", True, True),
        ("redis-restart", False, False),
        ("scheduler-kill", False, True),
    ]
    first = loaded[0]
    assert first == {
        "fault": "worker-kill",
        "description": "the worker-kill fault",
        "target": "airflow-ha-worker-1",
        "runs": 3,
        "succeeded": 3,
        "failed": 0,
        "stuck": 0,
        "retries": 1,
        "container_back_s": 12.3,
        "next_task_start_s": 1.5,
        "max_start_gap_s": 4.25,
        "details": {"retry_host": "h1", "retry_started_s": 20.5},
        "ok": True,
        "nothing_lost": True,
    }
    assert loaded[2]["container_back_s"] is None
    # Every field of the result is there, plus the two verdicts.
    rebuilt = [
        FaultResult(**{k: v for k, v in r.items() if k not in ("ok", "nothing_lost")})
        for r in loaded
    ]
    assert rebuilt == results


def test_write_json_replaces_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "chaos.json"
    write_json([result("a"), result("b")], path)
    write_json([result("c")], path)
    assert [r["fault"] for r in json.loads(path.read_text())] == ["c"]


def test_detail_of_mysql_restart_gives_when_the_api_answered_again() -> None:
    r = result("mysql-restart", details={"api_unavailable_polls": 4, "api_back_s": 9.5})
    assert detail(r) == "REST API answered again after 9.5 s"
