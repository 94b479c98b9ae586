"""`status`: each container of the project with its state and health."""

import argparse

from airflow_ha.console import table
from airflow_ha.context import Context


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("status", help="show each service's state and health")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    states = ctx.stack.services()
    if not states:
        print(f"project {ctx.stack.project} has no containers: run `make up`")
        return 1
    rows = [("SERVICE", "CONTAINER", "STATE")]
    rows += [(s.service, s.container, s.label) for s in states]
    print(table(rows))
    return 0 if all(s.ready for s in states) else 1
