"""`build`: make every image available (stand-ins where no registry answers)."""

import argparse

from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.envfile import create_env_file
from airflow_ha.images import ImageBuilder
from airflow_ha.paths import ENV_EXAMPLE


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("build", help="build or find every image the cluster runs")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    if create_env_file(ctx.env_file, ENV_EXAMPLE):
        progress(f"created {ctx.env_file} with freshly generated secrets (mode 0600)")
    images = ImageBuilder(ctx.docker, ctx.settings, progress).ensure_all()
    ctx.save_derived(images)
    for name, image in images.as_env().items():
        print(f"{name}={image}")
    return 0
