"""`bench`: the same workloads on this cluster and on Airflow's defaults, side by side."""

import argparse
from pathlib import Path

from airflow_ha.bench_report import format_report, write_charts, write_json
from airflow_ha.compare import STAGES, run_comparison
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import UsageError
from airflow_ha.profiles import PROFILES
from airflow_ha.scaling import one_scale_at_a_time

MAX_RUNS = 10


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "bench",
        help="compare this cluster with Airflow's defaults: idle CPU, memory, tasks/s, latency",
    )
    parser.add_argument(
        "--profile",
        action="append",
        choices=sorted(PROFILES),
        help="profile to run (repeatable; default: ha, then airflow-defaults)",
    )
    parser.add_argument(
        "--stage",
        action="append",
        choices=STAGES,
        help="stage to run (repeatable; default: all)",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs of the chain and of the fan-out (default 3)"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--charts",
        type=Path,
        default=Path("bench-results"),
        help="folder for the PNG charts (default bench-results)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    names = args.profile or ["ha", "airflow-defaults"]
    if len(set(names)) != len(names):
        raise UsageError("--profile: each profile once")
    if not 1 <= args.runs <= MAX_RUNS:
        raise UsageError(f"--runs must be between 1 and {MAX_RUNS}")
    if args.json is not None and not args.json.parent.is_dir():
        raise UsageError(f"--json: folder {args.json.parent} does not exist")
    if args.charts.exists() and not args.charts.is_dir():
        raise UsageError(f"--charts: {args.charts} is not a folder")
    stages = args.stage or list(STAGES)
    progress = Progress()
    # The benchmark pauses the cluster: no `scale` may run meanwhile.
    with one_scale_at_a_time(ctx.state_dir):
        results = run_comparison(ctx, [PROFILES[n] for n in names], stages, args.runs, progress)
    print(format_report(results))
    if args.json is not None:
        write_json(results, args.json)
    for chart in write_charts(results, args.charts):
        progress(f"chart: {chart}")
    return 0
