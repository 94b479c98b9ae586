"""`restore FILE`: put a backup of the metadata database back, then start Airflow.

Works on a running cluster and on one removed by `clean`. Nothing changes
until the file is read whole and checked (complete dump, same Fernet key as
.env) and no DAG run is queued or running (unless --force). The database it
replaces is first dumped beside FILE, so a mistaken restore loses nothing.
"""

import argparse
from pathlib import Path

from airflow_ha.argtypes import positive_seconds
from airflow_ha.backups import count_mismatches, restore_problems, summary
from airflow_ha.commands.backup import take_backup
from airflow_ha.commands.up import start
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.metadata_db import MetadataDb, read_manifest
from airflow_ha.secret_files import SECRETS_MOUNT
from airflow_ha.stack import Stack

DATA_SERVICES = ("mysql", "redis")
# With --force, tasks still running are abandoned: no warm shutdown for them.
FORCED_STOP_SECONDS = 10


def backup_path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(
            "no backup file named: e.g. make restore FILE=backups/<name>.sql.gz"
        )
    return Path(text)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "restore", help="replace the metadata database with a backup, then start the cluster"
    )
    parser.add_argument("file", type=backup_path, help="a file written by `backup`")
    parser.add_argument(
        "--force", action="store_true", help="restore even while DAG runs are queued or running"
    )
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=600,
        help="seconds to wait for health at each start (default 600)",
    )
    parser.set_defaults(run=run)


def _flush_broker(stack: Stack) -> None:
    """Drop queued task messages of the replaced database (the restored one's
    queued tasks are sent again after [scheduler] task_queued_timeout)."""
    redis = [c for c in stack.docker.compose.ps(services=["redis"]) if c.state.running]
    if redis:
        auth = f'REDISCLI_AUTH="$(cat {SECRETS_MOUNT}/redis_password)"'
        redis[0].execute(["sh", "-c", f"{auth} exec redis-cli FLUSHALL"])


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    progress(f"reading {args.file}")
    manifest = read_manifest(args.file)
    settings = ctx.settings
    # A key mismatch is known without the cluster: refuse before touching it.
    problems = restore_problems(manifest, settings.airflow_fernet_key, 0, args.force)
    if problems:
        raise ClusterError(f"not restoring {args.file}: " + "; ".join(problems))
    progress(
        f"backup of {manifest.created}: {len(manifest.rows)} tables, {manifest.total_rows} rows"
    )
    stack = ctx.stack
    already_up = {s.service for s in stack.services() if s.state == "running"}
    started = [service for service in DATA_SERVICES if service not in already_up]
    if started:
        progress("images")
        ctx.build_images(progress)
        stack = ctx.stack  # reads the image names just resolved
        progress(f"starting {' and '.join(started)}")
        stack.docker.compose.up(started, detach=True, no_build=True, quiet=True)
        stack.wait_healthy(args.timeout, progress, services=DATA_SERVICES)
    db = MetadataDb.of(stack.docker, stack.project)
    problems = restore_problems(manifest, settings.airflow_fernet_key, db.active_runs(), args.force)
    if problems:
        if started:
            stack.docker.compose.stop(started)
        raise ClusterError(f"not restoring {args.file}: " + "; ".join(problems))
    undo = "the database was empty before"
    if db.table_rows():
        safety = take_backup(ctx, db, args.file.resolve().parent, progress, "before-restore")
        progress(f"the database it replaces is saved in {safety.path}")
        undo = f"the database before it is in {safety.path}: make restore FILE={safety.path}"
    airflow = sorted(already_up - set(DATA_SERVICES))
    if airflow:
        progress(f"stopping {', '.join(airflow)}")
        stack.docker.compose.stop(airflow, timeout=FORCED_STOP_SECONDS if args.force else None)
    progress("loading the backup")
    try:
        db.load(args.file)
    except ClusterError as error:
        raise ClusterError(f"{error}; {undo}", details=error.details) from None
    mismatches = count_mismatches(manifest.rows, db.table_rows())
    if mismatches:
        raise ClusterError(
            f"the restored database differs from {args.file}: "
            + "; ".join(mismatches[:5])
            + f"; {undo}"
        )
    progress(f"{manifest.total_rows} rows in {len(manifest.rows)} tables, as in the backup")
    _flush_broker(stack)
    start(ctx, args.timeout, progress, build=False)
    print(f"restored {args.file} (taken {manifest.created}): {summary(manifest.rows)}")
    return 0
