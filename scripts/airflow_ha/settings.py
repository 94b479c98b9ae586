"""The cluster's settings: the keys of .env, as one typed model validated once."""

import base64
import binascii
import ipaddress
import itertools
import re
from enum import StrEnum
from io import StringIO
from pathlib import Path
from typing import Annotated, Literal

from dotenv import dotenv_values
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from airflow_ha.errors import ConfigError
from airflow_ha.logins import password_problem
from airflow_ha.paths import REPO_ROOT

_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,}$")
_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_IMAGE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_USER_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# More certificates than any proxy needs: the setting points at too wide a folder.
MAX_EXTRA_CA_CERTS = 50


def _safe_secret(value: str) -> str:
    # Secrets end up in connection URLs and shell commands: keep them to
    # characters that need no quoting anywhere.
    if not _SAFE_SECRET.fullmatch(value):
        raise ValueError(
            "must be at least 16 characters of A-Z a-z 0-9 _ - "
            "(empty? delete .env and run `make up` to generate one)"
        )
    problem = password_problem(value)
    if problem:
        raise ValueError(f"is too weak: {problem}")
    return value


def _fernet_key(value: str) -> str:
    try:
        raw = base64.urlsafe_b64decode(value.encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ValueError("must be 32 url-safe base64-encoded bytes (a Fernet key)")
    return value


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(f"must be {what}")
        return value

    return AfterValidator(check)


def _existing_dir(value: str) -> str:
    if ":" in value:
        # Compose's short volume syntax (SOURCE:TARGET:MODE) splits at every colon.
        raise ValueError(f"{value} holds a ':', which Compose cannot mount: rename the folder")
    if not (REPO_ROOT / value).is_dir():
        raise ValueError(f"{value} is not a directory")
    return value


def _ca_certs_dir(value: str) -> str:
    """Empty, a folder that does not exist on this host (the default is Debian's,
    and adds nothing elsewhere), or a folder with a few *.crt files, which all go
    into the image."""
    folder = REPO_ROOT / value
    if not value or not folder.exists():
        return value
    if not folder.is_dir():
        raise ValueError(f"{value} is not a folder")
    if folder.resolve() == Path("/"):
        raise ValueError("is the root folder: point it at the folder of your proxy's certificates")
    found = sum(1 for _ in itertools.islice(folder.rglob("*.crt"), MAX_EXTRA_CA_CERTS + 1))
    if found > MAX_EXTRA_CA_CERTS:
        raise ValueError(
            f"{value} holds more than {MAX_EXTRA_CA_CERTS} *.crt files: point it at the folder "
            "of your proxy's certificates"
        )
    return value


def _ip_address(value: str) -> str:
    ipaddress.ip_address(value)
    return value


class Topology(StrEnum):
    HA = "ha"
    SINGLE = "single"


# Replicas of each scalable service. One dag-processor in both: two on one DAG
# bundle would duplicate every parse. One heavy worker in both: its queue's
# tasks wait in Redis while it restarts, and `make scale` adds more.
TOPOLOGY_REPLICAS: dict[Topology, dict[str, int]] = {
    Topology.HA: {
        "scheduler": 2,
        "api-server": 2,
        "triggerer": 2,
        "worker": 2,
        "worker-heavy": 1,
    },
    Topology.SINGLE: {
        "scheduler": 1,
        "api-server": 1,
        "triggerer": 1,
        "worker": 1,
        "worker-heavy": 1,
    },
}

Secret = Annotated[str, AfterValidator(_safe_secret)]
Port = Annotated[int, Field(ge=0, le=65535)]
ImageRef = Annotated[str, _matching(_IMAGE_REF, "an image reference such as name:tag")]


class Settings(BaseModel):
    """Every key of .env; .env.example documents each one."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    compose_project_name: Annotated[
        str, _matching(_PROJECT_NAME, "lower-case letters, digits, _ and -")
    ] = Field(alias="COMPOSE_PROJECT_NAME")
    bind_address: Annotated[str, AfterValidator(_ip_address)] = Field(alias="BIND_ADDRESS")
    airflow_api_port: Port = Field(alias="AIRFLOW_API_PORT")
    flower_port: Port = Field(alias="FLOWER_PORT")
    airflow_dags_dir: Annotated[str, AfterValidator(_existing_dir)] = Field(
        alias="AIRFLOW_DAGS_DIR"
    )
    topology: Topology = Field(alias="TOPOLOGY")
    airflow_worker_concurrency: int = Field(alias="AIRFLOW_WORKER_CONCURRENCY", ge=1, le=256)
    airflow_heavy_worker_concurrency: int = Field(
        alias="AIRFLOW_HEAVY_WORKER_CONCURRENCY", ge=1, le=256
    )
    # Optional, so that a .env written before it existed still loads.
    airflow_load_examples: Literal["true", "false"] = Field(
        default="false", alias="AIRFLOW_LOAD_EXAMPLES"
    )
    # Optional, as above.
    airflow_log_retention_days: int = Field(
        default=30, alias="AIRFLOW_LOG_RETENTION_DAYS", ge=1, le=3650
    )
    airflow_db_retention_days: int = Field(
        default=90, alias="AIRFLOW_DB_RETENTION_DAYS", ge=1, le=3650
    )
    airflow_admin_user: Annotated[str, _matching(_USER_NAME, "letters, digits, _ . and -")] = Field(
        alias="AIRFLOW_ADMIN_USER"
    )
    airflow_admin_password: Secret = Field(alias="AIRFLOW_ADMIN_PASSWORD")
    airflow_fernet_key: Annotated[str, AfterValidator(_fernet_key)] = Field(
        alias="AIRFLOW_FERNET_KEY"
    )
    airflow_jwt_secret: Secret = Field(alias="AIRFLOW_JWT_SECRET")
    airflow_api_secret_key: Secret = Field(alias="AIRFLOW_API_SECRET_KEY")
    mysql_root_password: Secret = Field(alias="MYSQL_ROOT_PASSWORD")
    mysql_password: Secret = Field(alias="MYSQL_PASSWORD")
    redis_password: Secret = Field(alias="REDIS_PASSWORD")
    flower_password: Secret = Field(alias="FLOWER_PASSWORD")
    airflow_image: ImageRef = Field(alias="AIRFLOW_IMAGE")
    mysql_image: ImageRef = Field(alias="MYSQL_IMAGE")
    redis_image: ImageRef = Field(alias="REDIS_IMAGE")
    haproxy_image: ImageRef = Field(alias="HAPROXY_IMAGE")
    debian_image: ImageRef = Field(alias="DEBIAN_IMAGE")
    build_extra_ca_certs: Annotated[str, AfterValidator(_ca_certs_dir)] = Field(
        alias="BUILD_EXTRA_CA_CERTS"
    )

    @model_validator(mode="after")
    def _distinct_ports(self) -> "Settings":
        if self.airflow_api_port and self.airflow_api_port == self.flower_port:
            raise ValueError(
                f"AIRFLOW_API_PORT and FLOWER_PORT are both {self.flower_port}: give each "
                "its own port, or 0 for a free one"
            )
        return self

    @property
    def replicas(self) -> dict[str, int]:
        """Containers per scalable service, as the topology prescribes."""
        return dict(TOPOLOGY_REPLICAS[self.topology])

    @property
    def extra_ca_certs_dir(self) -> Path | None:
        return REPO_ROOT / self.build_extra_ca_certs if self.build_extra_ca_certs else None


SECRET_KEYS: tuple[str, ...] = tuple(
    str(field.alias)
    for field in Settings.model_fields.values()
    if field.alias
    and (field.alias.endswith(("_PASSWORD", "_SECRET", "_SECRET_KEY")) or "FERNET" in field.alias)
)


def parse_settings(values: dict[str, str | None], source: str) -> Settings:
    """Validate raw key/value pairs; the error names every bad key, on one line."""
    try:
        return Settings.model_validate({k: v if v is not None else "" for k, v in values.items()})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            if item["type"] == "missing":
                problems.append(f"{key} is missing (copy it from .env.example)")
            elif item["type"] == "extra_forbidden":
                problems.append(f"{key} is not a known setting")
            else:
                message = item["msg"].removeprefix("Value error, ")
                problems.append(f"{key} {message}" if key else message)
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def read_env_text(env_file: Path) -> str:
    """The text of a settings file, or one line on why it cannot be read."""
    if env_file.is_dir():
        raise ConfigError(f"{env_file} is a folder, not a settings file")
    if not env_file.is_file():
        raise ConfigError(f"{env_file} does not exist: run `make up` to create it")
    try:
        return env_file.read_text(encoding="utf-8")
    except PermissionError:
        info = env_file.stat()
        raise ConfigError(
            f"cannot read {env_file}: it belongs to uid {info.st_uid} with mode "
            f"{info.st_mode & 0o777:04o}; run as that user"
        ) from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{env_file} is not UTF-8 text: byte 0x{error.object[error.start]:02x} "
            f"at offset {error.start}"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read {env_file}: {error.strerror}") from None


def env_values(text: str) -> dict[str, str | None]:
    """KEY=VALUE pairs, parsed as Compose's --env-file reads them."""
    return dict(dotenv_values(stream=StringIO(text)))


def load_settings(env_file: Path) -> Settings:
    return parse_settings(env_values(read_env_text(env_file)), str(env_file))
