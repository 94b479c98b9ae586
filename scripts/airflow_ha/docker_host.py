"""Access to the Docker Engine and Compose v2, checked once before any work."""

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from dotenv import dotenv_values
from python_on_whales import DockerClient
from python_on_whales.client_config import ClientNotFoundError
from python_on_whales.exceptions import DockerException

from airflow_ha.errors import DockerUnavailableError
from airflow_ha.paths import COMPOSE_FILE, REPO_ROOT

INSTALL_HINT = "run `sudo scripts/install-host-tools.sh` or install Docker's compose plugin"


def check_docker(docker: DockerClient) -> None:
    """Fail with one clear line unless the engine answers and Compose v2 is there."""
    try:
        docker.system.info()
    except ClientNotFoundError:
        raise DockerUnavailableError("the docker command is not installed") from None
    except DockerException:
        raise DockerUnavailableError(
            "Docker Engine is not running or not reachable (is the daemon started, "
            "and may this user use it?)"
        ) from None
    try:
        docker.compose.version()
    except DockerException:
        if shutil.which("docker-compose"):
            raise DockerUnavailableError(
                "only Compose v1 (docker-compose) is installed; Compose v2 is needed: "
                + INSTALL_HINT
            ) from None
        raise DockerUnavailableError(
            f"Docker Compose v2 is not installed: {INSTALL_HINT}"
        ) from None


def shadowing_exports(environ: Mapping[str, str], file_values: Mapping[str, str]) -> list[str]:
    """Keys of the env files that the shell exports with another value: Compose
    would take the shell's value over the validated file's."""
    return sorted(key for key, value in file_values.items() if environ.get(key, value) != value)


def drop_shadowing_exports(env_files: Sequence[Path]) -> None:
    """Take the env files' keys out of this process's environment, so the
    Compose commands it runs read the files, and say which were dropped."""
    values: dict[str, str] = {}
    for env_file in env_files:
        values |= {k: v or "" for k, v in dotenv_values(env_file).items()}
    shadowing = shadowing_exports(os.environ, values)
    for key in shadowing:
        del os.environ[key]
    if shadowing:
        print(
            f"airflow-ha: warning: ignoring the exported {', '.join(shadowing)}: "
            f"the settings file decides ({env_files[0]}); unset them to silence this",
            file=sys.stderr,
        )


def compose_client(
    project_name: str,
    env_files: list[Path],
    overrides: Sequence[Path] = (),
    profiles: Sequence[str] = (),
) -> DockerClient:
    """A client bound to this project's Compose file (and overrides), name and env
    files (later ones win, and win over exported variables), with the given
    Compose profiles enabled."""
    drop_shadowing_exports(env_files)
    return DockerClient(
        compose_files=[COMPOSE_FILE, *overrides],
        compose_project_name=project_name,
        compose_env_files=list(env_files),
        compose_project_directory=REPO_ROOT,
        compose_profiles=list(profiles),
    )
