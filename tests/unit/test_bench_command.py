"""`bench` (commands/bench.py) end to end, with the measuring replaced: what it asks
compare.py for, what it prints and writes, and that it holds the scale lock."""

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

import airflow_ha.commands.bench as bench
from airflow_ha import cli
from airflow_ha.bench_figures import ChainFigures, FanoutFigures
from airflow_ha.compare import STAGES, ContentionFigures, ProfileResult
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.profiles import Profile
from airflow_ha.scaling import one_scale_at_a_time


class FakeComparison:
    """Stands in for compare.run_comparison, which needs a running cluster."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        # Idle, chain and fan-out readings make charts, which take a second each to draw.
        self.chartable = True
        self.asked: list[tuple[list[str], list[str], int]] = []
        self.scale_refused: list[bool] = []

    def __call__(
        self,
        ctx: Context,
        profiles: Sequence[Profile],
        stages: Sequence[str],
        runs: int,
        log: Callable[[str], None],
    ) -> list[ProfileResult]:
        self.asked.append(([p.name for p in profiles], list(stages), runs))
        for p in profiles:
            log(f"measuring {p.name}")
        try:
            with one_scale_at_a_time(self.state_dir):
                self.scale_refused.append(False)
        except ClusterError:
            self.scale_refused.append(True)
        if not self.chartable:
            return [
                ProfileResult(p.name, contention=ContentionFigures(2, 3, [], ["t"] * i, 0))
                for i, p in enumerate(profiles)
            ]
        return [
            ProfileResult(
                p.name,
                idle_cpu_percent={"worker": 1.0 + i},
                chain=[ChainFigures(10, 0.5 + i)],
                fanout=[FanoutFigures(100, 4.0 + i, 0.1, 1.0, 2.0)],
            )
            for i, p in enumerate(profiles)
        ]


@pytest.fixture
def comparison(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeComparison:
    fake = FakeComparison(tmp_path / "state")
    monkeypatch.setattr(bench, "run_comparison", fake)
    return fake


@pytest.fixture
def chartless(comparison: FakeComparison) -> FakeComparison:
    comparison.chartable = False
    return comparison


def run_bench(tmp_path: Path, *argv: str) -> int:
    """`airflow-ha bench ARGV`, parsed by the real CLI, charts into tmp_path/charts."""
    charts = tmp_path / "charts"
    args = cli.build_parser().parse_args(["bench", "--charts", str(charts), *argv])
    ctx = SimpleNamespace(state_dir=tmp_path / "state")
    assert args.run is bench.run  # the command `bench` dispatches to
    code: int = bench.run(args, cast(Context, ctx))
    return code


def test_by_default_this_cluster_then_airflows_defaults_every_stage(
    comparison: FakeComparison, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_bench(tmp_path) == 0

    assert comparison.asked == [(["ha", "airflow-defaults"], list(STAGES), 3)]
    out, err = capsys.readouterr()
    header = out.splitlines()[0].split()
    assert header == ["figure", "ha", "airflow-defaults", "ha", "/", "airflow-defaults"]
    assert "fan-out, tasks/s" in out
    charts = sorted(p.name for p in (tmp_path / "charts").iterdir())
    assert charts == ["bench-idle-cpu.png", "bench-tasks.png"]
    assert f"chart: {tmp_path / 'charts' / 'bench-tasks.png'}" in err
    assert not list(tmp_path.glob("*.json"))  # no --json, no file


def test_the_profiles_stages_and_runs_asked_for(
    chartless: FakeComparison, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_bench(
        tmp_path,
        "--profile",
        "airflow-defaults",
        "--stage",
        "chain",
        "--stage",
        "idle",
        "--runs",
        "1",
    )

    assert code == 0
    assert chartless.asked == [(["airflow-defaults"], ["chain", "idle"], 1)]
    assert capsys.readouterr().out.splitlines()[0].split() == ["figure", "airflow-defaults"]


@pytest.mark.parametrize("runs", [1, bench.MAX_RUNS])
def test_the_edge_run_counts_are_accepted(
    chartless: FakeComparison, tmp_path: Path, runs: int
) -> None:
    assert run_bench(tmp_path, "--runs", str(runs)) == 0
    assert chartless.asked[0][2] == runs


def test_the_figures_go_to_json_when_asked(chartless: FakeComparison, tmp_path: Path) -> None:
    run_bench(tmp_path, "--json", str(tmp_path / "bench.json"))

    data = json.loads((tmp_path / "bench.json").read_text())
    assert [p["profile"] for p in data["profiles"]] == ["ha", "airflow-defaults"]
    problems = data["summary"]["contention: failed runs + retried tasks + LB 5xx"]
    assert problems == {"ha": 0, "airflow-defaults": 1}


def test_no_scale_may_run_while_the_benchmark_does(
    chartless: FakeComparison, tmp_path: Path
) -> None:
    run_bench(tmp_path)

    assert chartless.scale_refused == [True]
    with one_scale_at_a_time(tmp_path / "state"):  # and the lock is freed afterwards
        pass


def test_profiles_run_in_the_order_given(chartless: FakeComparison, tmp_path: Path) -> None:
    run_bench(tmp_path, "--profile", "airflow-defaults", "--profile", "ha")
    assert chartless.asked[0][0] == ["airflow-defaults", "ha"]


def test_progress_goes_to_stderr_and_the_report_to_stdout(
    chartless: FakeComparison, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_bench(tmp_path, "--profile", "ha")
    out, err = capsys.readouterr()
    assert "measuring ha" in err
    assert "measuring" not in out
    assert out.startswith("figure")


def test_charts_go_to_bench_results_by_default(
    chartless: FakeComparison, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["bench"])
    bench.run(args, cast(Context, SimpleNamespace(state_dir=tmp_path / "state")))
    assert (tmp_path / "bench-results").is_dir()  # the folder .gitignore keeps out of git
