"""Parse a DAG folder with Airflow's own DagBag in a throw-away container.

No cluster, no database, no network: the Airflow image's `airflow-check-dags`
imports every file the way the dag-processor does and says, per file, which
DAGs it defines or why it failed. Before that, the folder is checked for files
the containers' user (uid 50000, group 0) could not read, which the cluster
would otherwise skip in silence.
"""

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError, VerificationError
from airflow_ha.verify import ImportProblem

CONTAINER_UID = 50000
CONTAINER_GID = 0
CONTAINER_DAGS = "/opt/airflow/dags"


@dataclass(frozen=True)
class DagCheck:
    """What parsing a DAG folder found: each file's DAG ids, each failing file's error."""

    files: dict[str, list[str]]
    errors: dict[str, str]
    seconds: float
    output: str = ""  # the last lines the DAG files and Airflow printed while parsing

    @property
    def dag_ids(self) -> list[str]:
        return sorted(dag_id for ids in self.files.values() for dag_id in ids)

    @property
    def problems(self) -> list[ImportProblem]:
        return [ImportProblem(name, trace) for name, trace in sorted(self.errors.items())]

    def as_json(self) -> dict[str, object]:
        return {
            "ok": not self.errors,
            "files": self.files,
            "errors": self.errors,
            "dag_ids": self.dag_ids,
            "seconds": self.seconds,
            "output": self.output,
        }


def parse_check_output(output: str) -> DagCheck:
    """The JSON line `airflow-check-dags` prints; files that failed keep only their error."""
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        data = json.loads(lines[-1])
        errors = {str(k): str(v) for k, v in data["errors"].items()}
        files = {
            str(name): sorted(str(d) for d in ids)
            for name, ids in data["files"].items()
            if name not in errors
        }
        return DagCheck(files, errors, float(data["seconds"]), str(data.get("output", "")))
    except (IndexError, ValueError, KeyError, TypeError, AttributeError):
        raise ClusterError(
            f"airflow-check-dags printed no result: {output.strip()[-300:]!r}"
        ) from None


def container_can_read(mode: int, uid: int, gid: int, directory: bool) -> bool:
    """Whether uid 50000 (group 0) may read a file, or list and enter a folder."""
    need = (stat.S_IRUSR | stat.S_IXUSR) if directory else stat.S_IRUSR
    if uid == CONTAINER_UID:
        return mode & need == need
    if gid == CONTAINER_GID:
        return mode & (need >> 3) == need >> 3
    return mode & (need >> 6) == need >> 6


def unreadable_paths(folder: Path) -> list[str]:
    """Paths under `folder` (itself included) the containers' user cannot read."""
    found = []
    for root, dirs, files in os.walk(folder):
        for name, is_dir in [(root, True)] + [(os.path.join(root, f), False) for f in files]:
            info = os.stat(name)
            if not container_can_read(info.st_mode, info.st_uid, info.st_gid, is_dir):
                found.append(os.path.relpath(name, folder))
        dirs[:] = [d for d in dirs if d != "__pycache__"]
    return sorted(found)


def unreadable_problem(folder: Path) -> str | None:
    """What in `folder` the containers' user cannot read, as one line, or None."""
    unreadable = unreadable_paths(folder)
    if not unreadable:
        return None
    shown = ", ".join(unreadable[:5]) + (" ..." if len(unreadable) > 5 else "")
    return (
        f"the containers' user (uid {CONTAINER_UID}, group {CONTAINER_GID}) cannot read "
        f"{len(unreadable)} path(s) in {folder}: {shown} (chmod o+r files, o+rx folders)"
    )


def check_folder(folder: Path) -> None:
    """Fail with one line on a folder that is missing or that the containers cannot read."""
    if not folder.is_dir():
        raise VerificationError(f"DAG folder {folder} does not exist or is not a folder")
    problem = unreadable_problem(folder)
    if problem:
        raise VerificationError(problem)


def run_check(docker: DockerClient, image: str, folder: Path) -> DagCheck:
    """Parse `folder` (checked by `check_folder` first) in a container of `image` with
    no network, removed afterwards."""
    try:
        output = docker.run(
            image,
            [CONTAINER_DAGS],
            entrypoint="/usr/local/bin/airflow-check-dags",
            remove=True,
            networks=["none"],
            volumes=[(folder.resolve(), CONTAINER_DAGS, "ro")],
            envs={
                "AIRFLOW_HOME": "/tmp/airflow",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
                "AIRFLOW__CORE__DAGS_FOLDER": CONTAINER_DAGS,
                # Airflow's own info lines would only hide the DAG files' warnings.
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
            },
        )
    except DockerException as error:
        raise ClusterError(
            f"parsing the DAG folder failed in the container (exit {error.return_code})",
            details=(error.stderr or "").strip()[-2000:],
        ) from None
    return parse_check_output(str(output))


def format_check(check: DagCheck, folder: Path) -> str:
    lines = [f"{name}: {', '.join(ids) or '(no DAG)'}" for name, ids in check.files.items()]
    lines += [f"{p.filename}: IMPORT ERROR\n{p.trace.rstrip()}" for p in check.problems]
    verdict = (
        f"{len(check.errors)} of {len(check.files) + len(check.errors)} file(s) failed to import"
        if check.errors
        else f"{len(check.dag_ids)} DAG(s) in {len(check.files)} file(s), no import error"
    )
    lines.append(f"{verdict} ({folder}, parsed in {check.seconds:.1f} s)")
    return "\n".join(lines)
