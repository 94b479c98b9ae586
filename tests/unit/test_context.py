"""The values the CLI derives for Compose: images and the topology's replicas."""

from pathlib import Path

import pytest
from dotenv import dotenv_values

from airflow_ha import context as context_module
from airflow_ha.context import Context, replica_variable
from airflow_ha.errors import ClusterError, ConfigError
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
    for service in ("scheduler", "api-server", "triggerer", "worker", "worker-heavy"):
        assert f"${{{replica_variable(service)}:-" in compose


@pytest.fixture
def started(write_env: WriteEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Context:
    """A context whose project `up` has run once (the derived file exists)."""
    monkeypatch.setattr(context_module, "STATE_DIR", tmp_path / "state")
    ctx = Context(env_file=write_env())
    ctx.save_derived(IMAGES)
    return ctx


def test_a_scaled_pool_keeps_its_size_through_the_next_up(started: Context) -> None:
    started.record_scale("worker", 5)

    assert dotenv_values(started.derived_env_file)["WORKER_REPLICAS"] == "5"
    assert dotenv_values(started.derived_env_file)["AIRFLOW_IMAGE"] == "a:1"
    started.save_derived(IMAGES)  # what the next `up` does
    values = dotenv_values(started.derived_env_file)
    assert values["WORKER_REPLICAS"] == "5"
    assert values["WORKER_HEAVY_REPLICAS"] == "1"
    assert values["SCHEDULER_REPLICAS"] == "2"


def test_forget_scale_returns_to_the_topology(started: Context) -> None:
    started.record_scale("worker-heavy", 3)
    started.forget_scale()
    started.save_derived(IMAGES)

    assert dotenv_values(started.derived_env_file)["WORKER_HEAVY_REPLICAS"] == "1"
    assert started.scaled() == {}


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"scheduler": 5}', '{"worker": -1}', '{"worker": "many"}']
)
def test_a_damaged_scale_file_is_one_clear_error(started: Context, text: str) -> None:
    started.scaled_file.write_text(text)

    with pytest.raises(ConfigError, match=r"scaled\.json is damaged: delete it"):
        started.save_derived(IMAGES)


def test_scaling_a_project_never_started_is_refused(
    write_env: WriteEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "STATE_DIR", tmp_path / "state")
    ctx = Context(env_file=write_env())

    with pytest.raises(ClusterError, match="was never started: run `make up`"):
        ctx.record_scale("worker", 3)
    assert not ctx.scaled_file.exists()
