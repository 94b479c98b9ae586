"""Where the project's files are, relative to this package's source tree."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "compose" / "docker-compose.yaml"
SWARM_COMPOSE_FILE = REPO_ROOT / "compose" / "swarm.yaml"
HAPROXY_CONFIG = REPO_ROOT / "compose" / "haproxy" / "haproxy.cfg"
ENV_EXAMPLE = REPO_ROOT / ".env.example"
DEFAULT_ENV_FILE = REPO_ROOT / ".env"
IMAGES_DIR = REPO_ROOT / "images"
DAGS_DIR = REPO_ROOT / "dags"
STATE_DIR = REPO_ROOT / ".airflow-ha"
BACKUPS_DIR = REPO_ROOT / "backups"
