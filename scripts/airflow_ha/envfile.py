"""Create .env from .env.example, filling every empty secret with a fresh value."""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

from airflow_ha.errors import ConfigError
from airflow_ha.settings import SECRET_KEYS


def generate_secret(key: str) -> str:
    if key == "AIRFLOW_FERNET_KEY":
        return Fernet.generate_key().decode()
    return secrets.token_urlsafe(32)


def render_env(example_text: str, overrides: dict[str, str] | None = None) -> str:
    """The example's lines with empty secrets generated and `overrides` applied.

    Comments and order are kept, so the result stays documented.
    """
    overrides = dict(overrides or {})
    lines = []
    for line in example_text.splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and not line.lstrip().startswith("#"):
            if key in overrides:
                value = overrides.pop(key)
            elif key in SECRET_KEYS and not value.strip():
                value = generate_secret(key)
            line = f"{key}={value}"
        lines.append(line)
    if overrides:
        raise ConfigError(f"unknown setting(s): {', '.join(sorted(overrides))}")
    return "\n".join(lines) + "\n"


def create_env_file(target: Path, example: Path, overrides: dict[str, str] | None = None) -> bool:
    """Write `target` (mode 0600) unless it exists; return whether it was created."""
    text = render_env(example.read_text(), overrides)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    return True
