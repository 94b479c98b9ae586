"""`backup`: a consistent online dump of the metadata database into a private file.

The cluster keeps running: mysqldump reads one InnoDB snapshot without locking
tables. The file holds no Fernet key (module airflow_ha.backups says why).
"""

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from airflow_ha.backups import backup_name, fernet_fingerprint, summary
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.metadata_db import Dumped, MetadataDb
from airflow_ha.paths import BACKUPS_DIR


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "backup", help="dump the metadata database (runs, connections, users) to a file"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=BACKUPS_DIR,
        help=f"folder for the file (default: {BACKUPS_DIR.name}/ of the project, git-ignored)",
    )
    parser.set_defaults(run=run)


def private_dir(directory: Path) -> Path:
    """The backups' folder, created readable by its owner only."""
    if directory.exists() and not directory.is_dir():
        raise ClusterError(f"{directory} is not a folder")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise ClusterError(f"cannot create {directory}: {error.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise ClusterError(f"cannot write to {directory}: permission denied")
    return directory


def take_backup(
    ctx: Context, db: MetadataDb, directory: Path, progress: Progress, label: str = ""
) -> Dumped:
    project = ctx.settings.compose_project_name
    path = private_dir(directory) / backup_name(project, datetime.now(UTC), label)
    progress(f"dumping the metadata database to {path}")
    return db.dump(path, project, fernet_fingerprint(ctx.settings.airflow_fernet_key))


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    private_dir(args.dir)  # a bad folder is refused before the cluster is asked
    db = MetadataDb.of(ctx.stack.docker, ctx.settings.compose_project_name)
    dumped = take_backup(ctx, db, args.dir, progress)
    manifest = dumped.manifest
    print(
        f"backup {dumped.path} ({dumped.size / 1e6:.1f} MB): {len(manifest.rows)} tables, "
        f"{manifest.total_rows} rows: {summary(manifest.rows)}"
    )
    print(
        f"It holds no Fernet key: keep AIRFLOW_FERNET_KEY (fingerprint "
        f"{manifest.fernet_fingerprint}) from .env with it, or its connections and "
        "variables cannot be decrypted after a restore."
    )
    return 0
