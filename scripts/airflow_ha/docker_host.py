"""Access to the Docker Engine and Compose v2, checked once before any work."""

import shutil
from collections.abc import Sequence
from pathlib import Path

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


def compose_client(
    project_name: str,
    env_files: list[Path],
    overrides: Sequence[Path] = (),
    profiles: Sequence[str] = (),
) -> DockerClient:
    """A client bound to this project's Compose file (and overrides), name and env
    files (later ones win), with the given Compose profiles enabled."""
    return DockerClient(
        compose_files=[COMPOSE_FILE, *overrides],
        compose_project_name=project_name,
        compose_env_files=list(env_files),
        compose_project_directory=REPO_ROOT,
        compose_profiles=list(profiles),
    )
