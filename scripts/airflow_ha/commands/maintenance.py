"""`maintenance`: one pass of the maintenance service now (old task logs, `airflow db clean`)."""

import argparse
import sys
from collections.abc import Iterable
from typing import cast

from airflow_ha.context import Context
from airflow_ha.errors import ClusterError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "maintenance", help="delete old task logs and metadata rows now (as done daily)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    running = [
        c
        for c in ctx.stack.docker.compose.ps()
        if c.name.endswith("-maintenance-1") and c.state.running
    ]
    if not running:
        raise ClusterError(
            f"the maintenance service of project {ctx.stack.project} is not running: run `make up`"
        )
    # A failing pass ends the stream with a DockerException: its output is shown
    # above, and the CLI names the failed command.
    # Through the entrypoint, which gives it the database's URL from its secret.
    command = ["airflow-entrypoint", "airflow-maintenance", "--once"]
    output = running[0].execute(command, stream=True)
    for _source, chunk in cast(Iterable[tuple[str, bytes]], output):
        sys.stdout.write(chunk.decode(errors="replace"))
        sys.stdout.flush()
    return 0
