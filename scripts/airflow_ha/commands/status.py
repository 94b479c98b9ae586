"""`status`: each container's state and health, then the Celery workers (from Flower)."""

import argparse

from airflow_ha.console import table
from airflow_ha.context import Context
from airflow_ha.flower_api import FlowerApiError


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "status", help="show each service's state and health, and the Celery workers"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    states = ctx.stack.services()
    if not states:
        print(f"project {ctx.stack.project} has no containers: run `make up`")
        return 1
    rows = [("SERVICE", "CONTAINER", "STATE")]
    rows += [(s.service, s.container, s.label) for s in states]
    print(table(rows))
    print()
    try:
        workers = ctx.flower_client().workers()
    except FlowerApiError as error:
        print(f"Celery workers: unknown ({error})")
    else:
        containers = {s.hostname: s for s in states}
        worker_rows = [("CELERY WORKER", "CONTAINER", "QUEUES", "CONCURRENCY", "ACTIVE TASKS")]
        for w in workers:
            container = containers.get(w.hostname)
            worker_rows.append(
                (
                    w.name,
                    container.container if container else "(not in this project)",
                    ",".join(w.queues),
                    str(w.concurrency or "?"),
                    str(w.active),
                )
            )
        print(table(worker_rows))
    return 0 if all(s.ready for s in states) else 1
