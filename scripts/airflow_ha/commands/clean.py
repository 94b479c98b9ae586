"""`clean`: stop the cluster and delete its volumes, only when confirmed."""

import argparse

from airflow_ha.context import Context
from airflow_ha.errors import UsageError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("clean", help="stop the cluster and DELETE its data volumes")
    parser.add_argument("--yes", action="store_true", help="confirm deleting the volumes")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    project = ctx.settings.compose_project_name
    if not args.yes:
        raise UsageError(
            f"clean deletes every volume of project {project} (database, logs); "
            "confirm with --yes (make clean CONFIRM=yes)"
        )
    ctx.stack.down(remove_volumes=True)
    ctx.forget_scale()
    print(
        f"project {project} stopped, its volumes deleted, "
        f"its worker pools back to the {ctx.settings.topology} topology's sizes"
    )
    return 0
