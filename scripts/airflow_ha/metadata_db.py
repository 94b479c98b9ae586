"""The metadata database in the project's mysql container: dump, load, count.

Every command runs inside that container, as MySQL's root with the password
from the container's own secret file, so no password passes through this
process or appears in a command line.
"""

import gzip
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from python_on_whales import Container, DockerClient

from airflow_ha.backups import BadBackupError, Manifest, RowCounter
from airflow_ha.errors import ClusterError
from airflow_ha.secret_files import SECRETS_MOUNT

DATABASE = "airflow"
_AS_ROOT = f'MYSQL_PWD="$(cat {SECRETS_MOUNT}/mysql_root_password)" exec'
# --single-transaction: one consistent snapshot while Airflow keeps writing
# (InnoDB), without locking tables. --skip-extended-insert: a line per row.
DUMP = (
    f"{_AS_ROOT} mysqldump -uroot --single-transaction --quick --skip-extended-insert "
    f"--skip-add-locks --no-tablespaces --hex-blob --default-character-set=utf8mb4 {DATABASE}"
)
CLIENT = f"{_AS_ROOT} mysql -uroot --default-character-set=utf8mb4 --batch --skip-column-names"
# The database is replaced whole, so that no table of the newer schema stays
# beside the restored ones. The airflow user's grants outlive the drop.
LOAD_PREAMBLE = (
    f"DROP DATABASE IF EXISTS {DATABASE};\n"
    f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;\n"
    f"USE {DATABASE};\nSET autocommit=0;\n"
).encode()
LOAD_END = b"COMMIT;\n"
STDERR_LINES = 5


@dataclass(frozen=True)
class Dumped:
    path: Path
    manifest: Manifest
    size: int


def _stderr_tail(text: bytes) -> str:
    lines = [line for line in text.decode(errors="replace").splitlines() if line.strip()]
    return "\n".join(lines[-STDERR_LINES:])


def read_manifest(path: Path) -> Manifest:
    """The manifest of a complete backup file, reading it whole (which also
    proves it decompresses); one line on what is wrong otherwise."""
    try:
        last = b""
        with gzip.open(path, "rb") as dump:
            for line in dump:
                last = line
    except FileNotFoundError:
        raise ClusterError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise ClusterError(f"{path} is a folder, not a backup file") from None
    except PermissionError:
        raise ClusterError(f"cannot read {path}: permission denied") from None
    except (OSError, EOFError) as error:
        raise ClusterError(f"{path} is not a complete gzip file ({error})") from None
    try:
        return Manifest.from_trailer(last)
    except BadBackupError as error:
        raise ClusterError(f"{path} is not a backup of airflow-ha: {error}") from None


class MetadataDb:
    def __init__(self, docker: DockerClient, container: Container) -> None:
        self.docker = docker
        self.container = container

    @classmethod
    def of(cls, docker: DockerClient, project: str) -> "MetadataDb":
        running = [c for c in docker.compose.ps(services=["mysql"]) if c.state.running]
        if not running:
            raise ClusterError(f"the mysql service of project {project} is not running: make up")
        return cls(docker, running[0])

    def _exec(self, script: str, stdin: bool = False) -> list[str]:
        docker = [str(part) for part in self.docker.client_config.docker_cmd]
        interactive = ["-i"] if stdin else []
        return [*docker, "exec", *interactive, self.container.name, "sh", "-c", script]

    def query(self, sql: str) -> list[list[str]]:
        result = subprocess.run(
            self._exec(f"{CLIENT} {DATABASE}", stdin=True),
            input=sql.encode(),
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"MySQL refused a query: {_stderr_tail(result.stderr)}")
        return [line.split("\t") for line in result.stdout.decode().splitlines()]

    def table_rows(self) -> dict[str, int]:
        """Rows of every table of the metadata database, counted exactly."""
        tables = [
            row[0]
            for row in self.query(
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = '{DATABASE}' AND table_type = 'BASE TABLE';"
            )
        ]
        if not tables:
            return {}
        counts = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM `{t}`" for t in tables)
        return {name: int(count) for name, count in self.query(counts + ";")}

    def active_runs(self) -> int:
        """DAG runs queued or running; 0 in a database Airflow has not set up."""
        has_runs = self.query(
            "SELECT COUNT(*) FROM information_schema.tables "
            f"WHERE table_schema = '{DATABASE}' AND table_name = 'dag_run';"
        )
        if has_runs[0][0] == "0":
            return 0
        found = self.query("SELECT COUNT(*) FROM dag_run WHERE state IN ('queued', 'running');")
        return int(found[0][0])

    def dump(self, path: Path, project: str, fingerprint: str) -> Dumped:
        """A consistent dump into `path` (mode 0600), written under a temporary
        name and renamed only once complete."""
        partial = path.with_name(path.name + ".partial")
        counter = RowCounter()
        created = datetime.now(UTC).isoformat(timespec="seconds")
        with _streaming(self._exec(DUMP), stdout=subprocess.PIPE) as (process, errors):
            assert process.stdout is not None
            try:
                with _private_file(partial) as raw, gzip.GzipFile(fileobj=raw, mode="wb") as out:
                    for line in process.stdout:
                        counter.feed(line)
                        out.write(line)
                    if process.wait() != 0:
                        raise ClusterError(f"mysqldump failed: {_stderr_tail(errors())}")
                    manifest = Manifest(
                        created=created,
                        project=project,
                        fernet_fingerprint=fingerprint,
                        alembic_revision=counter.alembic_revision,
                        rows=counter.rows,
                    )
                    out.write(manifest.trailer())
                partial.rename(path)
            finally:
                partial.unlink(missing_ok=True)
        return Dumped(path, manifest, path.stat().st_size)

    def load(self, path: Path) -> None:
        """Replace the metadata database with the dump in `path`."""
        with _streaming(self._exec(CLIENT, stdin=True), stdin=subprocess.PIPE) as (
            process,
            errors,
        ):
            assert process.stdin is not None
            try:
                process.stdin.write(LOAD_PREAMBLE)
                with gzip.open(path, "rb") as dump:
                    for line in dump:
                        process.stdin.write(line)
                process.stdin.write(LOAD_END)
                process.stdin.close()
            except BrokenPipeError:
                pass  # the client ended early: its exit code and error say why
            if process.wait() != 0:
                raise ClusterError(f"loading {path} into MySQL failed: {_stderr_tail(errors())}")


@contextmanager
def _streaming(
    command: list[str], stdin: int | None = None, stdout: int | None = None
) -> Iterator[tuple["subprocess.Popen[bytes]", Callable[[], bytes]]]:
    """A process whose stdin or stdout streams, and a reader of its stderr.

    Its errors go to a file: a pipe nobody reads while the data streams could
    fill up and stall it. Killed if the caller fails (or is interrupted) first.
    """
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, stdin=stdin, stdout=stdout, stderr=errors) as process,
    ):

        def read_errors() -> bytes:
            errors.seek(0)
            return errors.read()

        try:
            yield process, read_errors
        except BaseException:
            process.kill()
            raise


@contextmanager
def _private_file(path: Path) -> Iterator[IO[bytes]]:
    """A new file only its owner may read: a backup holds password hashes."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        yield file
