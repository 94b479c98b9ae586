"""What every command needs: the settings, the Docker client and the stack."""

import hashlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from io import StringIO
from pathlib import Path

from dotenv import dotenv_values
from python_on_whales import DockerClient

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.docker_host import check_docker
from airflow_ha.envfile import create_env_file, render_env
from airflow_ha.errors import ClusterError, ConfigError
from airflow_ha.flower_api import FlowerClient
from airflow_ha.images import ImageBuilder, ResolvedImages
from airflow_ha.paths import DEFAULT_ENV_FILE, ENV_EXAMPLE, HAPROXY_CONFIG, REPO_ROOT, STATE_DIR
from airflow_ha.pools import MAX_WORKERS_PER_POOL, POOLS
from airflow_ha.secret_files import secret_values, secrets_dir, write_secret_files
from airflow_ha.settings import Settings, load_settings, parse_settings
from airflow_ha.stack import Stack


def replica_variable(service: str) -> str:
    """The Compose variable that holds a service's replica count."""
    return f"{service.upper().replace('-', '_')}_REPLICAS"


@dataclass
class Context:
    env_file: Path
    verbose: bool = False

    def create_env_file_if_missing(self, log: Callable[[str], None]) -> None:
        """Create ./.env, and only that: a mistyped --env-file is an error, not a
        new cluster; and never over volumes that an earlier .env's secrets made."""
        if self.env_file.exists():
            return  # loading it says what may be wrong with it
        if self.env_file.resolve() != DEFAULT_ENV_FILE.resolve():
            raise ConfigError(
                f"{self.env_file} does not exist: `up` creates only {DEFAULT_ENV_FILE}; "
                "check the path, or copy .env.example there"
            )
        project = self.tool_settings.compose_project_name
        volumes = self.docker.volume.list(
            filters=[("label", f"com.docker.compose.project={project}")]
        )
        if volumes:
            names = " ".join(sorted(volume.name for volume in volumes))
            raise ConfigError(
                f"{self.env_file} is missing, but project {project} has data made with an "
                f"earlier one, whose passwords and Fernet key a new one would not match: put "
                f"it back, or delete the data with `docker volume rm {names}`"
            )
        if create_env_file(self.env_file, ENV_EXAMPLE):
            log(f"created {self.env_file} with freshly generated secrets (mode 0600)")

    def build_images(self, log: Callable[[str], None]) -> ResolvedImages:
        """Make every image available and hand the resolved names to Compose."""
        images = ImageBuilder(self.stack.docker, self.settings, log).ensure_all()
        self.save_derived(images)
        return images

    @cached_property
    def settings(self) -> Settings:
        settings = load_settings(self.env_file)
        mode = self.env_file.stat().st_mode & 0o777
        if mode & 0o066:
            print(
                f"airflow-ha: warning: other users may read or change {self.env_file} "
                f"(mode {mode:04o}), which holds every secret: chmod 600 {self.env_file}",
                file=sys.stderr,
            )
        return settings

    @cached_property
    def tool_settings(self) -> Settings:
        """.env's settings, or .env.example's where there is no .env yet (its
        secrets generated in memory, never written): what commands that start
        no cluster of this project need, such as images to build."""
        if self.env_file.is_file():
            return self.settings
        return parse_settings(
            dotenv_values(stream=StringIO(render_env(ENV_EXAMPLE.read_text()))), str(ENV_EXAMPLE)
        )

    def default_dags_dir(self) -> Path:
        """The DAG folder of .env (relative to the repository), else ./dags."""
        return (REPO_ROOT / self.tool_settings.airflow_dags_dir).resolve()

    @cached_property
    def docker(self) -> DockerClient:
        """The Docker Engine, checked, for work outside a Compose project."""
        docker = DockerClient()
        check_docker(docker)
        return docker

    @property
    def state_dir(self) -> Path:
        return STATE_DIR / self.settings.compose_project_name

    @property
    def derived_env_file(self) -> Path:
        """Values the CLI derives for Compose: resolved images and replica counts."""
        return self.state_dir / "compose.env"

    @property
    def scaled_file(self) -> Path:
        """Pool sizes set by `scale`, which `up` keeps instead of the topology's."""
        return self.state_dir / "scaled.json"

    def scaled(self) -> dict[str, int]:
        if not self.scaled_file.is_file():
            return {}
        damaged = ConfigError(
            f"{self.scaled_file} is damaged: delete it to use the topology's worker counts"
        )
        try:
            sizes = {str(k): int(v) for k, v in json.loads(self.scaled_file.read_text()).items()}
        except (ValueError, AttributeError, TypeError):
            raise damaged from None
        pools = {pool.service for pool in POOLS}
        if any(k not in pools or not 0 <= v <= MAX_WORKERS_PER_POOL for k, v in sizes.items()):
            raise damaged
        return sizes

    @property
    def replicas(self) -> dict[str, int]:
        """Containers per scalable service: the topology's, then what `scale` set."""
        return self.settings.replicas | self.scaled()

    def record_scale(self, service: str, count: int) -> None:
        """Remember a pool's size for later `up`s and hand it to Compose now."""
        if not self.derived_env_file.is_file():
            raise ClusterError(
                f"project {self.settings.compose_project_name} was never started: run `make up`"
            )
        self.scaled_file.write_text(json.dumps(self.scaled() | {service: count}, indent=2) + "\n")
        values = {k: v or "" for k, v in dotenv_values(self.derived_env_file).items()}
        values[replica_variable(service)] = str(count)
        self._write_derived(values)

    def forget_scale(self) -> None:
        self.scaled_file.unlink(missing_ok=True)

    def save_derived(self, images: ResolvedImages) -> None:
        values = images.as_env()
        for service, count in self.replicas.items():
            values[replica_variable(service)] = str(count)
        # Compose cannot see a bind-mounted file change; a digest in lb's
        # environment makes `up` recreate lb when haproxy.cfg changes.
        values["HAPROXY_CONFIG_DIGEST"] = hashlib.sha256(HAPROXY_CONFIG.read_bytes()).hexdigest()[
            :16
        ]
        self._write_derived(values)
        write_secret_files(secrets_dir(self.state_dir), secret_values(self.settings))

    def _write_derived(self, values: dict[str, str]) -> None:
        self.derived_env_file.parent.mkdir(parents=True, exist_ok=True)
        self.derived_env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.__dict__.pop("stack", None)  # the next stack reads the new file

    @property
    def env_files(self) -> list[Path]:
        """Compose's variables: .env, then what the CLI derived (later ones win)."""
        if self.derived_env_file.is_file():
            return [self.env_file, self.derived_env_file]
        return [self.env_file]

    @cached_property
    def stack(self) -> Stack:
        stack = Stack(self.settings, self.env_files)
        check_docker(stack.docker)
        return stack

    def airflow_client(self, url: str | None = None) -> AirflowClient:
        """The REST API of this project, through its load balancer (or at `url`:
        a Swarm stack's), as .env's admin."""
        credentials = Credentials(
            self.settings.airflow_admin_user, self.settings.airflow_admin_password
        )
        return AirflowClient(url or self.stack.api_url(), credentials)

    def flower_client(self, url: str | None = None) -> FlowerClient:
        return FlowerClient(url or self.stack.url("flower", 5555), self.settings.flower_password)
