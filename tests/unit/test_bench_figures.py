"""The benchmark's arithmetic and report, on made-up readings."""

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_ha.bench_figures import (
    ChainFigures,
    FanoutFigures,
    chain_figures,
    cpu_seconds_by_service,
    fanout_figures,
    load_balancer_errors,
    memory_mib_by_service,
    percentile,
)
from airflow_ha.bench_report import format_report, ratio, summary_table, write_charts, write_json
from airflow_ha.cgroups import Usage
from airflow_ha.compare import (
    ContentionFigures,
    HealthcheckCost,
    ProfileResult,
    children_cpu_seconds,
    healthcheck_command,
)
from airflow_ha.verify import TaskResult

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def task(
    task_id: str, queued: float, start: float, end: float, state: str = "success", index: int = -1
) -> TaskResult:
    return TaskResult(task_id, index, state, 1, end - start, "w", at(queued), at(start), at(end))


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.95) == 95.0
    assert percentile(values, 0.5) == 50.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([5.0, 1.0], 1.0) == 5.0


def test_cpu_by_service_sums_containers_and_counts_new_ones_from_zero() -> None:
    before = {
        "w-1": ("worker", Usage(10.0, 0)),
        "w-2": ("worker", Usage(20.0, 0)),
        "gone": ("worker", Usage(99.0, 0)),
        "s-1": ("scheduler", Usage(5.0, 0)),
    }
    after = {
        "w-1": ("worker", Usage(11.5, 0)),
        "w-2": ("worker", Usage(20.5, 0)),
        "w-3": ("worker", Usage(0.25, 0)),
        "s-1": ("scheduler", Usage(6.0, 0)),
    }
    assert cpu_seconds_by_service(before, after) == {"scheduler": 1.0, "worker": 2.25}


def test_memory_by_service_in_mib() -> None:
    snapshot = {"a": ("x", Usage(0, 2**20)), "b": ("x", Usage(0, 2**21)), "c": ("y", Usage(0, 0))}
    assert memory_mib_by_service(snapshot) == {"x": 3.0, "y": 0.0}


def test_chain_time_per_task_from_first_queued_to_last_end() -> None:
    tasks = [task(f"s{i}", queued=i, start=i + 0.2, end=i + 0.5) for i in range(4)]
    figures = chain_figures(tasks)
    assert figures.tasks == 4
    assert figures.seconds_per_task == pytest.approx(3.5 / 4)


def test_chain_without_finished_tasks_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"^the chain has no finished task with its times$"):
        chain_figures([task("s", 0, 1, 2, state="failed")])


def test_fanout_figures_only_count_the_mapped_task() -> None:
    tasks = [task("items", 0, 0, 100)]  # the upstream task does not count
    tasks += [task("noop", queued=10, start=10 + i, end=11 + i, index=i) for i in range(10)]
    tasks.append(task("noop", 10, 12, 13, state="failed", index=10))

    figures = fanout_figures(tasks, "noop", cpu_seconds=5.0)

    assert figures.tasks == 10
    assert figures.tasks_per_second == pytest.approx(10 / 10)  # queued at 10, last end at 20
    assert figures.cpu_seconds_per_task == 0.5
    assert figures.queued_to_running_median == 4.5
    assert figures.queued_to_running_p95 == 9.0


def test_fanout_without_the_task_is_an_error() -> None:
    with pytest.raises(ValueError, match="no instance of noop"):
        fanout_figures([task("items", 0, 0, 1)], "noop", 1.0)


def test_load_balancer_errors_are_502_503_504_only() -> None:
    log = "\n".join(
        [
            "1.2.3.4:5 [01/Dec/2026:20:30:40.460] airflow api-servers/api1 0/0/0/25/25 200 480 - "
            '- ---- 3/3/2/2/0 0/0 "GET /api/v2/monitor/health HTTP/1.1"',
            "1.2.3.4:6 [01/Dec/2026:20:30:41.000] airflow api-servers/<NOSRV> 0/-1/-1/-1/0 503 217 "
            '- - SC-- 1/1/0/0/0 0/0 "PATCH /execution/task-instances/x/run HTTP/1.1"',
            "1.2.3.4:7 [01/Dec/2026:20:30:42.000] airflow api-servers/api2 0/0/0/30001/+30001 504 "
            '194 - - sH-- 1/1/0/0/0 0/0 "GET /x HTTP/1.1"',
            "1.2.3.4:8 [01/Dec/2026:20:30:43.000] airflow api-servers/api2 0/0/0/5/5 500 10 - - "
            '---- 1/1/0/0/0 0/0 "GET /y HTTP/1.1"',
            "Server api-servers/api1 is DOWN, reason: Layer4 connection problem 503",
        ]
    )
    errors = load_balancer_errors(log)
    assert len(errors) == 2
    assert "PATCH /execution" in errors[0]
    assert " 504 " in errors[1]


def test_healthcheck_commands_of_every_test_form() -> None:
    assert healthcheck_command(["CMD-SHELL", "test -f /x"]) == "test -f /x"
    assert healthcheck_command(["CMD", "curl", "-f", "http://a b"]) == "curl -f 'http://a b'"
    assert healthcheck_command(["NONE"]) is None
    assert healthcheck_command([]) is None


def test_children_cpu_from_bash_times() -> None:
    assert children_cpu_seconds("0m0.004s 0m0.001s\n0m0.640s 0m0.010s\n") == pytest.approx(0.65)
    assert children_cpu_seconds("0m0.0s 0m0.0s\n1m2.500s 0m0.500s") == pytest.approx(63.0)


def test_healthcheck_cost_per_hour() -> None:
    cost = HealthcheckCost("worker", cpu_seconds_per_run=0.5, interval_seconds=10, containers=3)
    assert cost.cpu_seconds_per_hour == pytest.approx(0.5 * 360 * 3)


def results() -> list[ProfileResult]:
    ha = ProfileResult(
        "ha",
        idle_cpu_percent={"worker": 2.0, "scheduler": 8.0},
        memory_mib={"worker": 300.0, "scheduler": 200.0},
        healthchecks=[HealthcheckCost("worker", 0.001, 10, 2)],
        chain=[ChainFigures(20, 0.3), ChainFigures(20, 0.5), ChainFigures(20, 0.4)],
        fanout=[FanoutFigures(200, 10.0, 0.2, 1.0, 3.0)],
        fanout_cpu_per_task=[{"worker": 0.1, "mysql": 0.02}, {"worker": 0.3, "mysql": 0.04}],
        contention=ContentionFigures(4, 2, [], [], 0),
    )
    defaults = ProfileResult(
        "airflow-defaults",
        idle_cpu_percent={"worker": 20.0, "scheduler": 5.0},
        memory_mib={"worker": 250.0},
        chain=[ChainFigures(20, 0.8)],
        fanout=[FanoutFigures(200, 8.0, 0.25, 2.0, 6.0)],
        contention=ContentionFigures(
            4, 2, ["bench_chain (failed)"], ["bench_fanout.noop[3] (try 2)"], None
        ),
    )
    return [ha, defaults]


def test_summary_table_has_a_ratio_column_of_medians() -> None:
    lines = summary_table(results()).splitlines()
    assert lines[0].split() == ["figure", "ha", "airflow-defaults", "ha", "/", "airflow-defaults"]
    rows = {line[:50].strip(): line[50:].split() for line in lines[1:]}
    assert rows["idle CPU, % of one core"] == ["10.0", "25.0", "0.40x"]
    assert rows["chain, s per task"] == ["0.40", "0.80", "0.50x"]
    assert rows["fan-out, tasks/s"] == ["10.00", "8.00", "1.25x"]
    assert rows["healthchecks, CPU-s per hour"] == ["1", "-", "-"]
    assert rows["contention: failed runs + retried tasks + LB 5xx"] == ["0", "2", "0.00x"]


def test_ratio_of_missing_or_zero_is_a_dash() -> None:
    assert ratio(1.0, None) == "-"
    assert ratio(1.0, 0.0) == "-"
    assert ratio(math.nan, 1.0) == "-"
    assert ratio(3.0, 2.0) == "1.50x"


def test_report_names_retried_tasks_and_missing_load_balancer() -> None:
    report = format_report(results())
    assert (
        "ha: 4 busy loops; 2 of 2 runs succeeded; retried tasks: none; load balancer 502/503/504: 0"
        in report
    )
    assert (
        "retried tasks: bench_fanout.noop[3] (try 2); load balancer 502/503/504: no load balancer"
        in report
    )
    assert "1 of 2 runs succeeded" in report
    assert "mysql    0.030" in report  # median of the two runs
    assert "worker   0.200" in report


def test_json_and_charts_are_written(tmp_path: Path) -> None:
    write_json(results(), tmp_path / "bench.json")
    data = json.loads((tmp_path / "bench.json").read_text())
    assert data["summary"]["fan-out, tasks/s"] == {"ha": 10.0, "airflow-defaults": 8.0}
    assert data["profiles"][0]["chain"][0] == {"tasks": 20, "seconds_per_task": 0.3}

    charts = write_charts(results(), tmp_path / "charts")
    assert [c.name for c in charts] == ["bench-idle-cpu.png", "bench-tasks.png"]
    for chart in charts:
        assert chart.read_bytes().startswith(b"\x89PNG")


def test_a_chain_counts_the_tasks_that_completed_not_those_it_asked_for() -> None:
    tasks = [task(f"s{i}", queued=i, start=i + 0.2, end=i + 1) for i in range(3)]
    tasks.append(task("s3", queued=3, start=3.2, end=9, state="failed"))
    tasks.append(task("s4", queued=9, start=9, end=9, state="upstream_failed"))

    figures = chain_figures(tasks)

    assert figures == ChainFigures(tasks=3, seconds_per_task=1.0)  # 0 to 3 s over 3 tasks


def test_fanout_rate_over_a_fraction_of_a_second() -> None:
    tasks = [task("noop", queued=0, start=0.1, end=0.5, index=i) for i in range(2)]
    assert fanout_figures(tasks, "noop", 1.0).tasks_per_second == pytest.approx(4.0)


def test_a_fanout_with_no_measurable_span_has_no_rate() -> None:
    # Clock granularity can put queueing and the end on one instant: no rate, not a crash.
    tasks = [task("noop", queued=0, start=0, end=0, index=i) for i in range(3)]
    figures = fanout_figures(tasks, "noop", 1.5)
    assert figures.tasks_per_second == 0.0
    assert figures.cpu_seconds_per_task == 0.5
