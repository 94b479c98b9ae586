"""bench_report.py: what the benchmark prints, writes to JSON and draws, on made-up figures."""

import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
from matplotlib.figure import Figure

from airflow_ha.bench_figures import ChainFigures, FanoutFigures
from airflow_ha.bench_report import (
    contention_problems,
    fanout_cpu_table,
    format_report,
    healthchecks_table,
    ratio,
    services_table,
    summary_table,
    write_charts,
    write_json,
)
from airflow_ha.compare import ContentionFigures, HealthcheckCost, ProfileResult

from .test_bench_figures import results


def summary_rows(text: str) -> dict[str, list[str]]:
    return {line[:50].strip(): line[50:].split() for line in text.splitlines()[1:]}


def test_a_profile_without_readings_shows_dashes_not_zeros() -> None:
    # An empty measurement is "not measured", never "0 % CPU" or "0 MiB".
    rows = summary_rows(summary_table([ProfileResult("ha"), ProfileResult("airflow-defaults")]))
    assert len(rows) == 9
    assert all(cells == ["-", "-", "-"] for cells in rows.values()), rows


def test_one_or_three_profiles_have_no_ratio_column() -> None:
    ha, defaults = results()
    for profiles in ([ha], [ha, defaults, ProfileResult("third")]):
        lines = summary_table(profiles).splitlines()
        assert lines[0].split() == ["figure", *(p.profile for p in profiles)]
        assert "x" not in lines[1].split()[-1]


def test_summary_figures_and_their_decimals() -> None:
    ha = ProfileResult(
        "ha",
        idle_cpu_percent={"worker": 1.04, "scheduler": 2.0},
        memory_mib={"worker": 100.4, "scheduler": 200.4},
        healthchecks=[HealthcheckCost("w", 0.5, 10, 1), HealthcheckCost("s", 0.25, 30, 2)],
        chain=[ChainFigures(5, 1.0), ChainFigures(5, 3.0)],
        fanout=[FanoutFigures(10, 2.0, 0.1234, 0.5, 1.5), FanoutFigures(10, 4.0, 0.2, 1.5, 2.5)],
        contention=ContentionFigures(2, 3, ["a"], ["b", "c"], 4),
    )
    rows = summary_rows(summary_table([ha]))
    assert rows == {
        "idle CPU, % of one core": ["3.0"],
        "memory, MiB": ["301"],
        "healthchecks, CPU-s per hour": ["240"],  # 0.5 * 360 + 0.25 * 120 * 2
        "chain, s per task": ["2.00"],  # median of the runs
        "fan-out, tasks/s": ["3.00"],
        "fan-out, CPU-s per task": ["0.162"],
        "fan-out, queued->running median, s": ["1.00"],
        "fan-out, queued->running p95, s": ["2.00"],
        "contention: failed runs + retried tasks + LB 5xx": ["7"],
    }


def test_contention_problems_count_failed_runs_retries_and_lb_errors() -> None:
    assert contention_problems(ProfileResult("p")) is None
    with_lb = ProfileResult("p", contention=ContentionFigures(1, 5, ["r1", "r2"], ["t"], 3))
    assert contention_problems(with_lb) == 6
    without_lb = ProfileResult("p", contention=ContentionFigures(1, 5, [], ["t"], None))
    assert contention_problems(without_lb) == 1


def test_ratio_needs_two_numbers_and_a_divisor() -> None:
    assert ratio(None, 2.0) == "-"
    assert ratio(2.0, math.nan) == "-"
    assert ratio(0.0, 2.0) == "0.00x"
    assert ratio(1.0, 3.0) == "0.33x"


def test_services_table_side_by_side_with_gaps() -> None:
    assert services_table(results()) == (
        "service    ha CPU %  ha MiB  airflow-defaults CPU %  airflow-defaults MiB\n"
        "scheduler  8.0       200     5.0                     -\n"
        "worker     2.0       300     20.0                    250"
    )


def test_fanout_cpu_table_takes_the_median_of_runs_that_saw_the_service() -> None:
    runs = [{"worker": 0.1}, {"worker": 0.3, "mysql": 0.05}, {"worker": 0.2}]
    profiles = [ProfileResult("ha", fanout_cpu_per_task=runs), ProfileResult("none")]
    assert fanout_cpu_table(profiles) == (
        "service  ha CPU-s per task  none CPU-s per task\n"
        "mysql    0.050              -\n"
        "worker   0.200              -"
    )


def test_healthchecks_table_has_one_row_per_profile_and_service() -> None:
    ha = ProfileResult(
        "ha",
        healthchecks=[
            HealthcheckCost("worker", 0.0123, 10, 2),
            HealthcheckCost("mysql", 0.5, 30, 1),
        ],
    )
    defaults = ProfileResult("airflow-defaults", healthchecks=[HealthcheckCost("redis", 1, 5, 1)])
    assert healthchecks_table([ha, defaults]) == (
        "profile           service  CPU-s per run  every  containers  CPU-s per hour\n"
        "ha                worker   0.012          10 s   2           9\n"
        "ha                mysql    0.500          30 s   1           60\n"
        "airflow-defaults  redis    1.000          5 s    1           720"
    )


def test_the_report_has_only_the_sections_with_readings() -> None:
    assert format_report([ProfileResult("ha")]) == summary_table([ProfileResult("ha")])

    full = format_report(results()).split("\n\n")
    assert full[0] == summary_table(results())
    assert full[1:7] == [
        "Idle, per service (cgroup CPU over the window; memory at its end):",
        services_table(results()),
        "Fan-out, CPU per task by service (median of the runs):",
        fanout_cpu_table(results()),
        "Healthchecks (median of 3 runs of each service's check):",
        healthchecks_table(results()),
    ]
    assert len(full) == 9  # and one line per profile with a contention test
    assert full[7].startswith("ha: 4 busy loops")
    assert full[8].startswith("airflow-defaults: 4 busy loops")


def test_a_profile_without_contention_has_no_contention_line() -> None:
    ha, _ = results()
    report = format_report([ProfileResult("quiet", chain=[ChainFigures(1, 1.0)]), ha])
    assert "quiet:" not in report
    assert report.endswith(
        "ha: 4 busy loops; 2 of 2 runs succeeded; retried tasks: none; load balancer 502/503/504: 0"
    )


def test_the_contention_line_names_every_retried_task() -> None:
    contention = ContentionFigures(2, 3, ["r"], ["d.a (try 2)", "d.b (try 3)"], 5)
    report = format_report([ProfileResult("ha", contention=contention)])
    assert report.endswith(
        "ha: 2 busy loops; 2 of 3 runs succeeded; "
        "retried tasks: d.a (try 2), d.b (try 3); load balancer 502/503/504: 5"
    )


def test_json_is_indented_and_ends_with_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    write_json([ProfileResult("ha", chain=[ChainFigures(2, 0.5)])], path)

    text = path.read_text()
    assert text.endswith("}\n")
    assert text.startswith('{\n  "profiles": [\n')
    data = json.loads(text)
    assert data["summary"]["chain, s per task"] == {"ha": 0.5}
    assert data["summary"]["idle CPU, % of one core"] == {"ha": None}
    assert list(data["summary"]) == [
        "idle CPU, % of one core",
        "memory, MiB",
        "healthchecks, CPU-s per hour",
        "chain, s per task",
        "fan-out, tasks/s",
        "fan-out, CPU-s per task",
        "fan-out, queued->running median, s",
        "fan-out, queued->running p95, s",
        "contention: failed runs + retried tasks + LB 5xx",
    ]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each chart shows, read from the figure as it is saved."""
    seen: list[dict[str, Any]] = []
    save = Figure.savefig

    def recording_savefig(fig: Figure, *args: Any, **kwargs: Any) -> None:
        seen.append(
            {
                "axes": [
                    {
                        "title": ax.get_title(),
                        "ylabel": ax.get_ylabel(),
                        "ticks": [t.get_text() for t in ax.get_xticklabels()],
                        "rotation": [t.get_rotation() for t in ax.get_xticklabels()],
                        "align": [t.get_horizontalalignment() for t in ax.get_xticklabels()],
                        "bars": [round(p.get_height(), 6) for p in ax.patches],  # type: ignore[attr-defined]
                        "bar_x": [round(p.get_x(), 6) for p in ax.patches],  # type: ignore[attr-defined]
                        "bar_w": [round(p.get_width(), 6) for p in ax.patches],  # type: ignore[attr-defined]
                        "colours": [p.get_facecolor() for p in ax.patches],
                        "tick_x": [round(float(x), 6) for x in ax.get_xticks()],
                        "left": round(ax.get_position().x0, 3),
                        "bottom": round(ax.get_position().y0, 3),
                        "legend": [t.get_text() for t in legend.get_texts()]
                        if (legend := ax.get_legend()) is not None
                        else [],
                        "labels": [t.get_text() for t in ax.texts],
                        "fontsize": ax.title.get_fontsize(),
                    }
                    for ax in fig.axes
                ]
            }
        )
        save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", recording_savefig)
    return seen


def test_the_idle_cpu_chart_shows_each_service_side_by_side(
    tmp_path: Path, drawn: list[dict[str, Any]]
) -> None:
    charts = write_charts(results(), tmp_path / "new" / "folder")

    assert charts[0] == tmp_path / "new" / "folder" / "bench-idle-cpu.png"
    assert png_size(charts[0]) == (1000, 450)
    [ax] = drawn[0]["axes"]
    assert ax["title"] == "Idle CPU per service (cgroup, 60 s window)"
    assert ax["ylabel"] == "% of one core"
    assert ax["ticks"] == ["scheduler", "worker"]
    assert ax["rotation"] == [30.0, 30.0]
    assert ax["align"] == ["right", "right"]
    # ha's bars, then airflow-defaults' (which has no scheduler memory but does have CPU).
    assert ax["bars"] == [8.0, 2.0, 5.0, 20.0]
    assert ax["bar_x"] == [-0.2, 0.8, 0.2, 1.2]  # width 0.4, centred on the ticks
    assert ax["legend"] == ["ha (total 10.0 %)", "airflow-defaults (total 25.0 %)"]


def test_the_tasks_chart_has_three_panels(tmp_path: Path, drawn: list[dict[str, Any]]) -> None:
    charts = write_charts(results(), tmp_path)

    assert charts[1] == tmp_path / "bench-tasks.png"
    assert png_size(charts[1]) == (1100, 380)
    axes = drawn[1]["axes"]
    assert [ax["title"] for ax in axes] == [
        "fan-out: tasks/s (higher is better)",
        "chain: s per task (lower is better)",
        "fan-out: CPU-s per task (lower is better)",
    ]
    assert {ax["fontsize"] for ax in axes} == {10.0}
    assert [ax["bars"] for ax in axes] == [[10.0, 8.0], [0.4, 0.8], [0.2, 0.25]]
    assert axes[0]["labels"] == ["10.00", "8.00"]
    assert axes[0]["ticks"] == ["ha", "airflow-defaults"]


def test_a_missing_figure_is_drawn_as_zero(tmp_path: Path, drawn: list[dict[str, Any]]) -> None:
    profiles = [ProfileResult("ha", chain=[ChainFigures(1, 2.0)]), ProfileResult("other")]

    charts = write_charts(profiles, tmp_path)

    assert [c.name for c in charts] == ["bench-tasks.png"]  # no idle readings, no idle chart
    assert [ax["bars"] for ax in drawn[0]["axes"]] == [[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]]


def test_no_readings_no_charts(tmp_path: Path) -> None:
    assert write_charts([ProfileResult("ha")], tmp_path / "charts") == []
    assert (tmp_path / "charts").is_dir()


def test_one_profiles_bars_take_the_full_slot(tmp_path: Path, drawn: list[dict[str, Any]]) -> None:
    write_charts([ProfileResult("ha", idle_cpu_percent={"worker": 1.0, "mysql": 2.0})], tmp_path)
    [ax] = drawn[0]["axes"]
    assert ax["bar_w"] == [0.8, 0.8]
    assert ax["bar_x"] == [-0.4, 0.6]


def test_a_service_one_profile_lacks_is_a_zero_bar_under_its_tick(
    tmp_path: Path, drawn: list[dict[str, Any]]
) -> None:
    profiles = [
        ProfileResult("ha", idle_cpu_percent={"worker": 2.0, "mysql": 1.0}),
        ProfileResult("airflow-defaults", idle_cpu_percent={"worker": 4.0}),
    ]
    write_charts(profiles, tmp_path)

    [ax] = drawn[0]["axes"]
    assert ax["ticks"] == ["mysql", "worker"]
    assert ax["bars"] == [1.0, 2.0, 0.0, 4.0]
    assert ax["tick_x"] == [0.2, 1.2]  # between each service's two bars
    assert ax["colours"][0] != ax["colours"][2]  # one colour per profile


def test_the_tasks_panels_stand_side_by_side_one_colour_per_profile(
    tmp_path: Path, drawn: list[dict[str, Any]]
) -> None:
    write_charts(results(), tmp_path)

    axes = drawn[1]["axes"]
    assert len({ax["bottom"] for ax in axes}) == 1
    assert [ax["left"] for ax in axes] == sorted({ax["left"] for ax in axes})
    for ax in axes:
        ha, defaults = ax["colours"]
        assert ha != defaults
