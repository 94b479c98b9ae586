"""`chaos`: inject faults one at a time into a running workload; report recovery."""

import argparse
from pathlib import Path

from airflow_ha.argtypes import positive_seconds
from airflow_ha.chaos.faults import FAULTS
from airflow_ha.chaos.report import format_restarts, format_table, write_json
from airflow_ha.chaos.runner import run_all
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import UsageError, VerificationError

DEFAULT_FAULTS = [name for name in FAULTS if name != "worker-partition"]


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "chaos", help="kill components under load; check no DAG run is lost; report recovery"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME",
        help=f"fault (repeatable): {', '.join(FAULTS)}; default: all but worker-partition",
    )
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--runs", type=int, default=3, help="workload DAG runs per fault (default 3)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=900,
        help="seconds per fault for runs to finish (default 900)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    unknown = [name for name in args.fault if name not in FAULTS]
    if unknown:
        raise UsageError(f"unknown fault {', '.join(unknown)}; choose from {', '.join(FAULTS)}")
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.json is not None and not args.json.parent.is_dir():
        raise UsageError(f"--json: folder {args.json.parent} does not exist")
    faults = [FAULTS[name] for name in (args.fault or DEFAULT_FAULTS)]
    client = ctx.airflow_client()
    progress = Progress()
    results = []
    for result in run_all(faults, ctx.stack, client, args.runs, args.timeout, progress):
        results.append(result)
        if args.json is not None:
            write_json(results, args.json)
    print(format_table(results))
    restarts = format_restarts(results)
    if restarts:
        print(f"\nContainers that restarted although no fault aimed at them:\n{restarts}")
    bad = [r for r in results if not r.ok]
    if bad:
        raise VerificationError("; ".join(f"{r.fault}: {', '.join(r.problems)}" for r in bad))
    return 0
