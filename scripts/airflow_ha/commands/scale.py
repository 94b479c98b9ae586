"""`scale`: set how many Celery workers serve one queue, draining on the way down."""

import argparse
import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from airflow_ha.argtypes import positive_seconds
from airflow_ha.console import Progress, table
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.pools import MAX_WORKERS_PER_POOL, POOLS, pool_for_queue
from airflow_ha.scaling import STOP_GRACE_SECONDS, PoolContainer, PoolScaler


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_WORKERS_PER_POOL:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_WORKERS_PER_POOL}: {text!r}")
    return value


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    queues = ", ".join(pool.queue for pool in POOLS)
    parser = subparsers.add_parser(
        "scale",
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


@contextmanager
def _one_scale_at_a_time(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "scale.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ClusterError(
                f"another `scale` of project {state_dir.name} is running: let it finish"
            ) from None
        yield


def run(args: argparse.Namespace, ctx: Context) -> int:
    pool = pool_for_queue(args.queue)
    stack = ctx.stack
    if not any(s.state == "running" for s in stack.services()):
        raise ClusterError(f"project {stack.project} is not running: run `make up` first")
    progress = Progress()
    with _one_scale_at_a_time(ctx.state_dir):
        scaler = PoolScaler(stack, pool, ctx.flower_client(), ctx.airflow_client(), progress)
        before = scaler.containers()
        progress(f"pool {pool.service} (queue {pool.queue}): {len(before)} -> {args.workers}")
        new: set[str] = set()
        if args.workers > len(before):
            ctx.record_scale(pool.service, args.workers)
            new = scaler.start(args.workers)
            after = scaler.wait_registered(args.timeout)
        elif args.workers < len(before):
            if args.workers == 0 and not args.force:
                scaler.refuse_emptying_with_waiting_tasks()
            try:
                scaler.drain_and_remove(args.workers, args.drain_timeout)
            finally:
                ctx.record_scale(pool.service, len(scaler.containers()))
            after = scaler.containers()
        else:
            ctx.record_scale(pool.service, args.workers)
            after = scaler.wait_registered(args.timeout)
        _report(scaler, after, new)
        registered = scaler.registered()
        if len(registered) != args.workers:
            raise ClusterError(
                f"Celery reports {len(registered)} worker(s) on queue {pool.queue}, "
                f"{args.workers} asked: " + (", ".join(registered) or "none")
            )
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
