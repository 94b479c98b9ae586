"""`down`: stop and remove the containers; keep every volume (the data)."""

import argparse

from airflow_ha.context import Context


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("down", help="stop the cluster, keeping its data")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.stack.down(remove_volumes=False)
    print(f"project {ctx.stack.project} stopped; its volumes (data) are kept")
    return 0
