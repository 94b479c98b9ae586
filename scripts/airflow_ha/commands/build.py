"""`build`: make every image available (stand-ins where no registry answers)."""

import argparse

from airflow_ha.console import Progress
from airflow_ha.context import Context


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("build", help="build or find every image the cluster runs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    ctx.create_env_file_if_missing(progress)
    images = ctx.build_images(progress)
    for name, image in images.as_env().items():
        print(f"{name}={image}")
    return 0
