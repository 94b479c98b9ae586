"""`resources`: every container's memory (now, peak, limit), OOM kills and processes."""

import argparse

from airflow_ha.context import Context
from airflow_ha.resources import ContainerResources, resources_table


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "resources", help="memory now, at its peak and the limit, OOM kills, processes"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    found = ctx.stack.cgroup_bounds()
    if not found:
        print(f"project {ctx.stack.project} has no running containers: run `make up`")
        return 1
    print(
        resources_table(
            ContainerResources(service, name, usage, bounds)
            for name, (service, usage, bounds) in found.items()
        )
    )
    return 0
