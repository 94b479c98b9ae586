"""`up`: create .env if needed, build images, start the cluster, wait for health."""

import argparse
import ipaddress

from airflow_ha.argtypes import positive_seconds
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.dag_check import unreadable_problem
from airflow_ha.errors import ConfigError
from airflow_ha.stack import Stack


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "up", help="create .env, build images, start and wait for health"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=600,
        help="seconds to wait for health (default 600)",
    )
    parser.set_defaults(run=run)


def start(ctx: Context, timeout: float, progress: Progress, build: bool = True) -> Stack:
    """Build what is missing (unless the caller just did), start the project and
    wait until every container is healthy."""
    settings = ctx.settings
    # Unreadable DAG files would vanish quietly from the cluster.
    problem = unreadable_problem(ctx.default_dags_dir())
    if problem:
        raise ConfigError(f"AIRFLOW_DAGS_DIR: {problem}")
    if not ipaddress.ip_address(settings.bind_address).is_loopback:
        progress(
            f"warning: BIND_ADDRESS={settings.bind_address}: the UI, the REST API and Flower "
            "are reachable from other machines, not only from this one"
        )
    ctx.stack.check_ports_free()
    scaled = ctx.scaled()
    if scaled:
        sizes = ", ".join(f"{service} {count}" for service, count in sorted(scaled.items()))
        progress(f"keeping the worker pool sizes set by `scale`: {sizes} (`clean` resets them)")
    if build:
        progress("images")
        ctx.build_images(progress)
    stack = ctx.stack  # a new stack that reads the image names just resolved
    progress(f"starting project {stack.project}")
    stack.up()
    states = stack.wait_healthy(timeout, progress)
    running = sum(1 for s in states if s.state == "running")
    progress(f"{running} containers running and healthy")
    return stack


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    ctx.create_env_file_if_missing(progress)
    stack = start(ctx, args.timeout, progress)
    print(f"Airflow UI and REST API: {stack.api_url()}")
    print(f"Flower:                  {stack.url('flower', 5555)}  (user: flower)")
    print("Credentials:             make credentials")
    return 0
