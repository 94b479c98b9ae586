"""What every command needs: the settings, the Docker client and the stack."""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from python_on_whales import DockerClient

from airflow_ha.docker_host import check_docker
from airflow_ha.images import ResolvedImages
from airflow_ha.paths import STATE_DIR
from airflow_ha.settings import Settings, load_settings
from airflow_ha.stack import Stack


@dataclass
class Context:
    env_file: Path
    verbose: bool = False

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.env_file)

    @property
    def images_env_file(self) -> Path:
        """Image names resolved by the last build (stand-ins or not), for Compose."""
        return STATE_DIR / self.settings.compose_project_name / "images.env"

    def save_images(self, images: ResolvedImages) -> None:
        self.images_env_file.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in images.as_env().items()]
        self.images_env_file.write_text("\n".join(lines) + "\n")
        self.__dict__.pop("stack", None)  # the next stack reads the new file

    @cached_property
    def stack(self) -> Stack:
        env_files = [self.env_file]
        if self.images_env_file.is_file():
            env_files.append(self.images_env_file)
        stack = Stack(self.settings, env_files)
        check_docker(stack.docker)
        return stack

    @property
    def docker(self) -> DockerClient:
        return self.stack.docker
