"""The two clusters `make bench` compares, on the same images and machine."""

from dataclasses import dataclass
from pathlib import Path

from airflow_ha.paths import REPO_ROOT
from airflow_ha.settings import TOPOLOGY_REPLICAS, Topology


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    overrides: tuple[Path, ...]  # Compose files layered over docker-compose.yaml
    replicas: dict[str, int]
    api_service: str  # the service that publishes the API
    load_balancer: bool  # whether lb's log tells of 5xx answers


HA = Profile(
    name="ha",
    description="this cluster as shipped (TOPOLOGY=ha)",
    overrides=(),
    replicas=dict(TOPOLOGY_REPLICAS[Topology.HA]),
    api_service="lb",
    load_balancer=True,
)

AIRFLOW_DEFAULTS = Profile(
    name="airflow-defaults",
    description="one of each component, Airflow's default settings and healthchecks",
    overrides=(REPO_ROOT / "compose" / "profiles" / "airflow-defaults.yaml",),
    replicas={"scheduler": 1, "api-server": 1, "triggerer": 1, "worker": 1, "worker-heavy": 0},
    api_service="api-server",
    load_balancer=False,
)

PROFILES = {profile.name: profile for profile in (HA, AIRFLOW_DEFAULTS)}
