"""The secrets of .env as files for Compose's `secrets:`, one value per file.

Compose mounts each service only the files it needs (compose/docker-compose.yaml
lists them per service), so no secret is in `docker inspect`, and workers, where
DAG code runs, get neither the database's password nor the keys that sign
tokens or decrypt connections. The Airflow image's entrypoint exports each file
named like a variable as that variable; MySQL and Redis read theirs directly.
"""

import hashlib
import hmac
from pathlib import Path

from airflow_ha.settings import Settings

# Where Compose mounts them in a container.
SECRETS_MOUNT = "/run/secrets"
# The Celery broker and, since workers must not reach MySQL, the result
# backend: Redis's databases 0 and 1.
BROKER_DB = 0
RESULT_BACKEND_DB = 1
# How long a client waits for MySQL's greeting. Without a limit it waits for
# ever: seen on the Swarm stack, where a connection the router accepted as the
# group's primary died stayed open with no server behind it, and a scheduler
# waited in it until its health check had it killed (docs/mysql-group-replication.md).
# Seconds: a greeting takes milliseconds, also on a busy machine.
MYSQL_CONNECT_TIMEOUT_S = 10


def secret_values(settings: Settings) -> dict[str, str]:
    """File name -> content (no trailing newline: the value exactly)."""
    mysql_url = (
        f"mysql+mysqldb://airflow:{settings.mysql_password}@mysql:3306/airflow"
        f"?connect_timeout={MYSQL_CONNECT_TIMEOUT_S}"
    )
    redis_url = f"redis://:{settings.redis_password}@redis:6379"
    return {
        "mysql_root_password": settings.mysql_root_password,
        "mysql_password": settings.mysql_password,
        "redis_password": settings.redis_password,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": mysql_url,
        "AIRFLOW__CELERY__BROKER_URL": f"{redis_url}/{BROKER_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis_url}/{RESULT_BACKEND_DB}",
        "AIRFLOW__CORE__FERNET_KEY": settings.airflow_fernet_key,
        "AIRFLOW__API_AUTH__JWT_SECRET": settings.airflow_jwt_secret,
        "AIRFLOW__API__SECRET_KEY": settings.airflow_api_secret_key,
        "AIRFLOW__CELERY__FLOWER_BASIC_AUTH": f"flower:{settings.flower_password}",
        "AIRFLOW_ADMIN_PASSWORD": settings.airflow_admin_password,
    }


def replication_password(root_password: str) -> str:
    """The MySQL group's replication user's password: derived from the root
    password (an HMAC, which does not reveal it), so that it is generated
    with .env's secrets, stays the same for the group's lifetime, and needs
    no line in .env files made before the Swarm stack had a group. 32 hex
    digits (128 bits): MySQL refuses a longer replication password."""
    return hmac.new(
        root_password.encode(), b"airflow-ha mysql group replication", hashlib.sha256
    ).hexdigest()[:32]


def swarm_secret_values(settings: Settings) -> dict[str, str]:
    """The Swarm stack's Celery URLs (compose/swarm.yaml reads them from
    `swarm_secrets_dir`): through its three Redis Sentinels, reached by one
    name that resolves to each of them. Celery's clients ask them which Redis
    server is the primary (the monitored name is in airflow_ha_celery.py).
    And the password the MySQL group's members replicate with."""
    sentinels = f"sentinel://:{settings.redis_password}@redis-sentinel:26379"
    return {
        "AIRFLOW__CELERY__BROKER_URL": f"{sentinels}/{BROKER_DB}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"{sentinels}/{RESULT_BACKEND_DB}",
        "mysql_replication_password": replication_password(settings.mysql_root_password),
    }


def secrets_dir(state_dir: Path) -> Path:
    """Where they are in a project's state folder (.airflow-ha/<project>, where
    compose/docker-compose.yaml reads them). Taken from the caller's state
    folder, never rebuilt from the global one: a test that moves its project's
    state elsewhere must not overwrite a running cluster's secrets."""
    return state_dir / "secrets"


def swarm_secrets_dir(state_dir: Path) -> Path:
    return secrets_dir(state_dir) / "swarm"


def write_secret_files(directory: Path, values: dict[str, str]) -> None:
    """Write each value to its file, replacing the old one whole.

    The folder is its owner's only (0700); the files are readable by all
    (0444), because Compose bind-mounts them with the host's owner and mode
    and the containers' users (airflow, mysql, redis) are not their owner.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # whatever the umask
    for name, value in values.items():
        partial = directory / f".{name}.partial"
        partial.unlink(missing_ok=True)  # read-only once written
        partial.write_text(value)
        partial.chmod(0o444)
        partial.replace(directory / name)
