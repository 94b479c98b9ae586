"""`scale`: set how many Celery workers serve one queue, draining on the way down.

On one machine, Compose's scale of the project's pool; with --engines or
--host, the replicas of the pool's service in the Swarm stack (airflow_ha.swarm.pool).
"""

import argparse

from airflow_ha.argtypes import positive_seconds, worker_count
from airflow_ha.commands.swarm import swarm_client, target_parser
from airflow_ha.console import Progress, table
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.pools import MAX_WORKERS_PER_POOL, POOLS, WorkerPool, pool_for_queue
from airflow_ha.scaling import (
    STOP_GRACE_SECONDS,
    PoolContainer,
    PoolScaler,
    one_scale_at_a_time,
    resize,
)
from airflow_ha.swarm import deploy
from airflow_ha.swarm.pool import SwarmPoolScaler


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    queues = ", ".join(pool.queue for pool in POOLS)
    parser = subparsers.add_parser(
        "scale",
        parents=[target_parser(default="the project's Compose stack on this machine")],
        help="set how many Celery workers serve a queue; removed workers finish their tasks first",
    )
    parser.add_argument(
        "workers", type=worker_count, help=f"workers wanted (0 to {MAX_WORKERS_PER_POOL})"
    )
    parser.add_argument(
        "--queue", default=POOLS[0].queue, help=f"the pool's queue: {queues} (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=300,
        help="seconds for new workers to register with Celery (default 300)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=positive_seconds,
        default=STOP_GRACE_SECONDS,
        help="seconds removed workers may take to finish their tasks "
        f"(default {STOP_GRACE_SECONDS}, the workers' stop_grace_period)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="remove a queue's last worker even while tasks wait for one",
    )
    parser.set_defaults(run=run)


def _scaler(
    args: argparse.Namespace, ctx: Context, pool: WorkerPool, progress: Progress
) -> PoolScaler:
    if not (args.engines or args.host):
        ctx.stack.require_running()
        return PoolScaler(ctx.stack, pool, ctx.flower_client(), ctx.airflow_client(), progress)
    client = swarm_client(args, ctx)
    deploy.check_manager(client)
    stack = ctx.settings.compose_project_name
    if not deploy.service_states(client, stack):
        raise ClusterError(f"stack {stack} is not deployed on this Swarm: run `make swarm-up`")
    flower = ctx.flower_client(deploy.published_url(client, stack, "flower", 5555))
    airflow = ctx.airflow_client(deploy.api_url(client, stack))
    return SwarmPoolScaler(client, stack, pool, flower, airflow, progress, args.timeout)


def run(args: argparse.Namespace, ctx: Context) -> int:
    pool = pool_for_queue(args.queue)
    progress = Progress()
    with one_scale_at_a_time(ctx.state_dir):
        scaler = _scaler(args, ctx, pool, progress)
        after, new = resize(
            scaler, args.workers, ctx.record_scale, args.timeout, args.drain_timeout, args.force
        )
        _report(scaler, after, new)
    progress(
        f"pool {pool.service}: {args.workers} worker(s) consume queue {pool.queue}, "
        "as Celery reports"
    )
    return 0


def _report(scaler: PoolScaler, containers: list[PoolContainer], new: set[str]) -> None:
    if not containers:
        print(f"no workers consume queue {scaler.pool.queue}")
        return
    rows = [("CONTAINER", "CELERY WORKER", "QUEUES", "CONCURRENCY", "ACTIVE TASKS", "")]
    for container in containers:
        info = scaler.flower.worker(container.celery_name)
        rows.append(
            (
                container.name,
                container.celery_name,
                ",".join(info.queues) if info else "?",
                str(info.concurrency or "?") if info else "?",
                str(info.active) if info else "?",
                "new" if container.name in new else "",
            )
        )
    print(table(rows))
