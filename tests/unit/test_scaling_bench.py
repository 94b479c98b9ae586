"""The benchmark's arithmetic and report, from task instances as the REST API returns them."""

import json
from pathlib import Path

from airflow_ha.scaling_bench import (
    BenchResult,
    DrainWait,
    Throughput,
    format_result,
    task_span,
    write_json,
)


def ti(task_id: str, state: str, start: str | None, end: str | None) -> dict[str, object]:
    return {"task_id": task_id, "state": state, "start_date": start, "end_date": end}


def test_span_runs_from_the_first_start_to_the_last_end_of_successful_tasks() -> None:
    tis = [
        ti("light", "success", "2026-11-28T10:00:05Z", "2026-11-28T10:00:10Z"),
        ti("light", "success", "2026-11-28T10:00:01.5Z", "2026-11-28T10:00:07Z"),
        ti("light", "failed", "2026-11-28T09:00:00Z", "2026-11-28T11:00:00Z"),
        ti("report", "success", "2026-11-28T10:00:00Z", "2026-11-28T10:05:00Z"),
    ]
    assert task_span(tis, "light") == (2, 8.5)


def test_no_finished_task_has_no_span() -> None:
    assert task_span([ti("light", "running", "2026-11-28T10:00:00Z", None)], "light") == (0, 0.0)


def test_throughput_and_its_ideal() -> None:
    t = Throughput(workers=2, slots=8, tasks=200, task_seconds=5, span_seconds=250)
    assert t.tasks_per_second == 0.8
    assert t.ideal_tasks_per_second == 1.6


def test_report_and_json(tmp_path: Path) -> None:
    result = BenchResult(
        registration_seconds=31.25,
        throughput=[Throughput(1, 4, 200, 5, 400), Throughput(4, 16, 200, 5, 160)],
        drain=DrainWait(task_left_seconds=20.5, waited_seconds=23.0),
    )
    text = format_result(result)
    assert "scale 1 -> 4, until Celery lists all four: 31.2 s" in text
    assert "4        16     200    5        160.0   1.25     3.20" in text
    assert "`scale` took 23.0 s for a task that had 20.5 s left" in text
    assert "ended 2.5 s after the task" in text

    write_json(result, tmp_path / "bench.json")
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["throughput"][1]["tasks_per_second"] == 1.25
    assert data["drain"]["waited_seconds"] == 23.0
