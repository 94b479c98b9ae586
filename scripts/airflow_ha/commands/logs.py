"""`logs`: follow the logs of the cluster or of one service."""

import argparse
import sys

from airflow_ha.context import Context
from airflow_ha.errors import UsageError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("logs", help="follow logs (all services, or one)")
    parser.add_argument("service", nargs="?", help="a service name, e.g. scheduler")
    parser.add_argument("--tail", default="100", help="lines of history to show first")
    parser.add_argument("--no-follow", action="store_true", help="print and exit")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    services = [args.service] if args.service else []
    known = sorted(ctx.stack.docker.compose.config(return_json=True)["services"])
    if args.service and args.service not in known:
        raise UsageError(f"no service {args.service!r}; the services are: {', '.join(known)}")
    for _source, chunk in ctx.stack.docker.compose.logs(
        services=services, tail=args.tail, follow=not args.no_follow, stream=True
    ):
        sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
    return 0
