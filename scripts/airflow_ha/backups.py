"""Backup files of the metadata database: what one holds, and whether it may be restored.

A backup is the gzip-compressed output of `mysqldump --single-transaction
--skip-extended-insert`: one INSERT line per row, so each table's rows are
counted as the dump streams past. One comment line follows the dump with the
manifest as JSON (when it was taken, the Fernet key's fingerprint, the schema's
revision, the rows of each table). It comes last because the counts are known
only at the end, and so a file without it is a dump that did not complete.

The Fernet key is not in the file: connections' and variables' secrets stay
encrypted in it, so the file alone does not give them away. A restore needs the
same key in .env, and is refused otherwise (the fingerprint tells).
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

FORMAT = 1
TRAILER_PREFIX = b"-- airflow-ha-backup "
SUFFIX = ".sql.gz"
_CREATE_TABLE = re.compile(rb"^CREATE TABLE `([^`]+)` \(")
_INSERT = re.compile(rb"^INSERT INTO `([^`]+)` VALUES ")
_REVISION = re.compile(rb"^INSERT INTO `alembic_version` VALUES \('([0-9A-Za-z_]+)'\);")
# Tables a user asks about after a restore, in the order the summary names them.
SUMMARY_TABLES = {
    "dag_run": "DAG runs",
    "task_instance": "task instances",
    "connection": "connections",
    "variable": "variables",
    "ab_user": "users",
}


class BadBackupError(ValueError):
    """The file is not a complete backup of this tool."""


def fernet_fingerprint(key: str) -> str:
    """A short digest that tells keys apart without revealing them."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def backup_name(project: str, taken: datetime, label: str = "") -> str:
    stamp = taken.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{project}-{stamp}{'-' + label if label else ''}{SUFFIX}"


@dataclass(frozen=True)
class Manifest:
    created: str
    project: str
    fernet_fingerprint: str
    alembic_revision: str
    rows: dict[str, int] = field(default_factory=dict)
    format: int = FORMAT

    def trailer(self) -> bytes:
        return TRAILER_PREFIX + json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def from_trailer(cls, line: bytes) -> "Manifest":
        if not line.startswith(TRAILER_PREFIX):
            raise BadBackupError("it does not end with the backup's manifest: an incomplete dump")
        try:
            data = json.loads(line[len(TRAILER_PREFIX) :])
        except ValueError:
            raise BadBackupError("its manifest is not JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise BadBackupError(f"its manifest is not of format {FORMAT}")
        try:
            return cls(**data)
        except TypeError as error:
            raise BadBackupError(f"its manifest does not match format {FORMAT}: {error}") from None

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


class RowCounter:
    """Each table's rows in a dump, counted as its lines stream past."""

    def __init__(self) -> None:
        self.rows: dict[str, int] = {}
        self.alembic_revision = ""

    def feed(self, line: bytes) -> None:
        if line.startswith(b"INSERT INTO "):
            match = _INSERT.match(line)
            if match:
                table = match.group(1).decode()
                self.rows[table] = self.rows.get(table, 0) + 1
                revision = _REVISION.match(line)
                if revision:
                    self.alembic_revision = revision.group(1).decode()
        elif line.startswith(b"CREATE TABLE "):
            match = _CREATE_TABLE.match(line)
            if match:
                self.rows.setdefault(match.group(1).decode(), 0)


def restore_problems(
    manifest: Manifest, fernet_key: str, active_runs: int, force: bool
) -> list[str]:
    """Why this backup must not be restored now; empty when it may."""
    problems = []
    current = fernet_fingerprint(fernet_key)
    if manifest.fernet_fingerprint != current:
        problems.append(
            f"it was taken with Fernet key {manifest.fernet_fingerprint}, and AIRFLOW_FERNET_KEY "
            f"in .env is {current}: its connections and variables could not be decrypted; "
            "put the key of that time back in .env"
        )
    if active_runs and not force:
        problems.append(
            f"{active_runs} DAG run(s) are queued or running and would be lost: let them "
            "finish, or restore with --force (make restore FORCE=yes)"
        )
    return problems


def count_mismatches(expected: Mapping[str, int], found: Mapping[str, int]) -> list[str]:
    """Tables whose rows in the database differ from the backup's counts."""
    mismatches = []
    for table in sorted(expected.keys() | found.keys()):
        want, have = expected.get(table), found.get(table)
        if want != have:
            mismatches.append(
                f"{table}: {'absent' if have is None else have} in the database, "
                f"{'absent' if want is None else want} in the backup"
            )
    return mismatches


def summary(rows: Mapping[str, int]) -> str:
    """'12 DAG runs, 80 task instances, ...' for the tables a user asks about."""
    return ", ".join(f"{rows.get(table, 0)} {name}" for table, name in SUMMARY_TABLES.items())
