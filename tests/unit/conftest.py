"""Shared fixtures of the unit tests: generated settings, never a Docker daemon."""

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from dotenv import dotenv_values

from airflow_ha import context
from airflow_ha.envfile import render_env
from airflow_ha.paths import ENV_EXAMPLE

WriteEnv = Callable[..., Path]


@pytest.fixture(autouse=True)
def private_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every project's state (.airflow-ha/<project>: derived settings, secret
    files, the scale lock) goes to a temporary folder: a unit test must never
    touch the state of a cluster the developer is running beside it."""
    monkeypatch.setattr(context, "STATE_DIR", tmp_path_factory.mktemp("state"))


def env_values(text: str) -> dict[str, str | None]:
    """The key/value pairs of .env text, parsed exactly as load_settings parses a file."""
    return dict(dotenv_values(stream=io.StringIO(text)))


@pytest.fixture
def example_text() -> str:
    return ENV_EXAMPLE.read_text()


@pytest.fixture
def valid_values(example_text: str) -> dict[str, str | None]:
    """Every setting, as `make up` would generate it from .env.example."""
    return env_values(render_env(example_text))


@pytest.fixture
def write_env(tmp_path: Path, example_text: str) -> WriteEnv:
    """Write a generated .env (with optional overrides) into tmp_path; return its path."""

    def write(**overrides: str) -> Path:
        env_file = tmp_path / ".env"
        env_file.write_text(render_env(example_text, overrides))
        env_file.chmod(0o600)
        return env_file

    return write


@pytest.fixture
def valid_env_file(write_env: WriteEnv) -> Path:
    return write_env()
