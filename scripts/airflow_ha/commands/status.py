"""`status`: each container's state and health, then the Celery workers (from Flower)."""

import argparse

from airflow_ha.console import table
from airflow_ha.context import Context
from airflow_ha.flower_api import FlowerApiError, FlowerClient


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
        flower = FlowerClient(ctx.stack.url("flower", 5555), ctx.settings.flower_password)
        workers = flower.workers()
    except FlowerApiError as error:
        print(f"Celery workers: unknown ({error})")
    else:
        worker_rows = [("CELERY WORKER", "QUEUES", "CONCURRENCY", "ACTIVE TASKS")]
        worker_rows += [
            (w.name, ",".join(w.queues), str(w.concurrency or "?"), str(w.active)) for w in workers
        ]
        print(table(worker_rows))
    return 0 if all(s.ready for s in states) else 1
