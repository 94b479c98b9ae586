"""The values the CLI derives for Compose: images and the topology's replicas."""

from pathlib import Path

import pytest
from dotenv import dotenv_values

from airflow_ha import context as context_module
from airflow_ha.context import Context, replica_variable
from airflow_ha.images import ResolvedImages

from .conftest import WriteEnv

IMAGES = ResolvedImages(airflow="a:1", mysql="m:2", redis="r:3", haproxy="h:4", debian="d:5")


@pytest.mark.parametrize(
    ("topology", "expected"),
    [("ha", "2"), ("single", "1")],
)
def test_derived_env_has_images_and_replicas(
    topology: str,
    expected: str,
    write_env: WriteEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(context_module, "STATE_DIR", tmp_path / "state")
    ctx = Context(env_file=write_env(TOPOLOGY=topology))

    ctx.save_derived(IMAGES)

    values = dotenv_values(ctx.derived_env_file)
    assert ctx.derived_env_file.parent == tmp_path / "state" / "airflow-ha"
    for name in ("SCHEDULER", "API_SERVER", "TRIGGERER", "WORKER"):
        assert values[f"{name}_REPLICAS"] == expected
    assert values["HAPROXY_IMAGE"] == "h:4"
    assert values["MYSQL_IMAGE"] == "m:2"


def test_replica_variable_matches_the_compose_file() -> None:
    compose = (Path(__file__).parents[2] / "compose" / "docker-compose.yaml").read_text()
    for service in ("scheduler", "api-server", "triggerer", "worker"):
        assert f"${{{replica_variable(service)}:-" in compose
