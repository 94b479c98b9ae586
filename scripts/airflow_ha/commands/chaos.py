"""`chaos`: inject faults one at a time into a running workload; report recovery.

On one machine the faults of the Compose cluster (chaos/faults.py); with
--engines, the loss of the Redis primary or of a whole host of the Swarm stack
on the engines of `swarm-engines up` (swarm/chaos.py).
"""

import argparse
from pathlib import Path

from airflow_ha.argtypes import positive_seconds
from airflow_ha.chaos.faults import FAULTS
from airflow_ha.chaos.report import format_restarts, format_table, write_json
from airflow_ha.chaos.runner import run_all
from airflow_ha.commands.swarm import engine_set, swarm_client
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError, UsageError, VerificationError
from airflow_ha.swarm import chaos as swarm_chaos
from airflow_ha.swarm import deploy
from airflow_ha.swarm.chaos_runner import SwarmChaos

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
        help=(
            f"fault (repeatable): {', '.join(FAULTS)}; default: all but worker-partition. "
            f"With --engines: {', '.join(swarm_chaos.FAULTS)}; default: "
            f"{', '.join(swarm_chaos.DEFAULT_FAULTS)}"
        ),
    )
    parser.add_argument(
        "--engines",
        action="store_true",
        help="the Swarm stack on the engines of `swarm-engines up`: lose its Redis primary, a host",
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
    known = list(swarm_chaos.FAULTS if args.engines else FAULTS)
    unknown = [name for name in args.fault if name not in known]
    if unknown:
        where = " against the Swarm (--engines)" if args.engines else ""
        raise UsageError(
            f"unknown fault {', '.join(unknown)}{where}; choose from {', '.join(known)}"
        )
    if args.runs < 1:
        raise UsageError("--runs must be at least 1")
    if args.json is not None and not args.json.parent.is_dir():
        raise UsageError(f"--json: folder {args.json.parent} does not exist")
    if args.engines:
        return _run_swarm(args, ctx)
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


def _run_swarm(args: argparse.Namespace, ctx: Context) -> int:
    manager = swarm_client(argparse.Namespace(engines=True, host=None), ctx)
    stack = ctx.settings.compose_project_name
    if not deploy.service_states(manager, stack):
        raise ClusterError(f"stack {stack} is not deployed on this Swarm: run `make swarm-up`")
    client = ctx.airflow_client(deploy.api_url(manager, stack))
    chaos = SwarmChaos(ctx.docker, engine_set(ctx), stack, client, Progress())
    results = []
    for name in args.fault or swarm_chaos.DEFAULT_FAULTS:
        results.append(chaos.run(name, args.runs, args.timeout))
        if args.json is not None:
            swarm_chaos.write_json(results, args.json)
    print(swarm_chaos.format_table(results))
    bad = [r for r in results if not r.ok]
    if bad:
        raise VerificationError("; ".join(f"{r.fault}: {', '.join(r.problems)}" for r in bad))
    return 0
