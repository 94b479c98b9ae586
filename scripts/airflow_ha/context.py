"""What every command needs: the settings, the Docker client and the stack."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from airflow_ha.docker_host import check_docker
from airflow_ha.envfile import create_env_file
from airflow_ha.images import ImageBuilder, ResolvedImages
from airflow_ha.paths import ENV_EXAMPLE, HAPROXY_CONFIG, STATE_DIR
from airflow_ha.settings import Settings, load_settings
from airflow_ha.stack import Stack


def replica_variable(service: str) -> str:
    """The Compose variable that holds a service's replica count."""
    return f"{service.upper().replace('-', '_')}_REPLICAS"


@dataclass
class Context:
    env_file: Path
    verbose: bool = False

    def create_env_file_if_missing(self, log: Callable[[str], None]) -> None:
        if create_env_file(self.env_file, ENV_EXAMPLE):
            log(f"created {self.env_file} with freshly generated secrets (mode 0600)")

    def build_images(self, log: Callable[[str], None]) -> ResolvedImages:
        """Make every image available and hand the resolved names to Compose."""
        images = ImageBuilder(self.stack.docker, self.settings, log).ensure_all()
        self.save_derived(images)
        return images

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.env_file)

    @property
    def derived_env_file(self) -> Path:
        """Values the CLI derives for Compose: resolved images and replica counts."""
        return STATE_DIR / self.settings.compose_project_name / "compose.env"

    def save_derived(self, images: ResolvedImages) -> None:
        values = images.as_env()
        for service, count in self.settings.replicas.items():
            values[replica_variable(service)] = str(count)
        # Compose cannot see a bind-mounted file change; a digest in lb's
        # environment makes `up` recreate lb when haproxy.cfg changes.
        values["HAPROXY_CONFIG_DIGEST"] = hashlib.sha256(HAPROXY_CONFIG.read_bytes()).hexdigest()[
            :16
        ]
        self.derived_env_file.parent.mkdir(parents=True, exist_ok=True)
        self.derived_env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.__dict__.pop("stack", None)  # the next stack reads the new file

    @cached_property
    def stack(self) -> Stack:
        env_files = [self.env_file]
        if self.derived_env_file.is_file():
            env_files.append(self.derived_env_file)
        stack = Stack(self.settings, env_files)
        check_docker(stack.docker)
        return stack
