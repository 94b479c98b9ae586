"""`bench-scaling`: measure scaling on the running cluster and print the figures."""

import argparse
from pathlib import Path

from airflow_ha.argtypes import positive_seconds, worker_count
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import UsageError
from airflow_ha.scaling import one_scale_at_a_time
from airflow_ha.scaling_bench import ScalingBenchmark, format_result, write_json


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "bench-scaling",
        help="measure scaling: registration time, tasks/s per pool size, scale-down wait",
    )
    parser.add_argument("--tasks", type=int, default=200, help="tasks per run (default 200)")
    parser.add_argument(
        "--seconds", type=positive_seconds, default=5, help="each task's sleep (default 5)"
    )
    parser.add_argument(
        "--workers",
        type=worker_count,
        nargs="+",
        default=[1, 2, 4],
        help="pool sizes to measure (default 1 2 4)",
    )
    parser.add_argument(
        "--drain-task-seconds",
        type=positive_seconds,
        default=30,
        help="length of the task a scale-down waits for (default 30)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    if not 1 <= args.tasks <= 1000:
        raise UsageError("--tasks must be between 1 and 1000")
    if 0 in args.workers:
        raise UsageError("--workers: every pool size must be at least 1")
    if args.json is not None and not args.json.parent.is_dir():
        raise UsageError(f"--json: folder {args.json.parent} does not exist")
    ctx.stack.require_running()
    progress = Progress()
    with one_scale_at_a_time(ctx.state_dir):
        result = ScalingBenchmark(ctx, progress).run(
            args.tasks, args.seconds, args.workers, args.drain_task_seconds
        )
    print(format_result(result))
    if args.json is not None:
        write_json(result, args.json)
    return 0
