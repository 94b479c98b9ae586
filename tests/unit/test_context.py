"""The values the CLI derives for Compose (images, replicas), and which .env `up` creates."""

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pytest
from dotenv import dotenv_values

from airflow_ha import context as context_module
from airflow_ha.context import Context, replica_variable
from airflow_ha.errors import ClusterError, ConfigError
from airflow_ha.images import ResolvedImages
from airflow_ha.paths import DEFAULT_ENV_FILE, REPO_ROOT

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


def test_secrets_go_to_the_projects_state_folder_only(
    write_env: WriteEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A context whose state is elsewhere (every test's) never writes the real
    project's secret files: a running cluster's containers would read the
    test's passwords at their next restart."""
    monkeypatch.setattr(context_module, "STATE_DIR", tmp_path / "state")
    ctx = Context(env_file=write_env())
    real = REPO_ROOT / ".airflow-ha" / ctx.settings.compose_project_name / "secrets"
    before = sorted((p.name, p.stat().st_mtime_ns) for p in real.iterdir()) if real.is_dir() else []

    ctx.save_derived(IMAGES)

    mine = tmp_path / "state" / ctx.settings.compose_project_name / "secrets"
    assert (mine / "mysql_password").read_text() == ctx.settings.mysql_password
    after = sorted((p.name, p.stat().st_mtime_ns) for p in real.iterdir()) if real.is_dir() else []
    assert after == before


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


# --- which .env `up` may create, and the warnings about a .env --------------------------------


@dataclass
class FakeVolume:
    name: str


@dataclass
class FakeVolumes:
    found: list[FakeVolume]
    filters: list[object] = field(default_factory=list)

    def list(self, filters: object) -> list[FakeVolume]:
        self.filters.append(filters)
        return self.found


def with_volumes(monkeypatch: pytest.MonkeyPatch, *names: str) -> FakeVolumes:
    volumes = FakeVolumes([FakeVolume(name) for name in names])
    monkeypatch.setattr(Context, "docker", SimpleNamespace(volume=volumes))
    return volumes


def test_up_creates_no_env_file_but_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volumes = with_volumes(monkeypatch)
    typo = tmp_path / ".evn"

    with pytest.raises(ConfigError) as caught:
        Context(env_file=typo).create_env_file_if_missing(pytest.fail)

    assert str(caught.value) == (
        f"{typo} does not exist: `up` creates only {DEFAULT_ENV_FILE}; "
        "check the path, or copy .env.example there"
    )
    assert not typo.exists()
    assert volumes.filters == []


def test_up_creates_the_default_env_file_where_no_data_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / ".env"
    monkeypatch.setattr(context_module, "DEFAULT_ENV_FILE", default)
    volumes = with_volumes(monkeypatch)
    said: list[str] = []

    Context(env_file=default).create_env_file_if_missing(said.append)

    assert volumes.filters == [[("label", "com.docker.compose.project=airflow-ha")]]
    assert said == [f"created {default} with freshly generated secrets (mode 0600)"]
    assert default.stat().st_mode & 0o777 == 0o600


def test_up_creates_no_env_file_over_an_earlier_ones_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / ".env"
    monkeypatch.setattr(context_module, "DEFAULT_ENV_FILE", default)
    with_volumes(monkeypatch, "airflow-ha_mysql-data", "airflow-ha_airflow-logs")

    with pytest.raises(ConfigError) as caught:
        Context(env_file=default).create_env_file_if_missing(pytest.fail)

    assert str(caught.value) == (
        f"{default} is missing, but project airflow-ha has data made with an earlier one, "
        "whose passwords and Fernet key a new one would not match: put it back, or delete "
        "the data with `docker volume rm airflow-ha_airflow-logs airflow-ha_mysql-data`"
    )
    assert not default.exists()


def test_an_existing_env_file_is_left_alone(
    valid_env_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volumes = with_volumes(monkeypatch, "airflow-ha_mysql-data")
    before = valid_env_file.read_bytes()

    Context(env_file=valid_env_file).create_env_file_if_missing(pytest.fail)

    assert valid_env_file.read_bytes() == before
    assert volumes.filters == []


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o640, True), (0o602, True)])
def test_an_env_file_others_may_read_or_change_is_warned_about(
    valid_env_file: Path, capsys: pytest.CaptureFixture[str], mode: int, warned: bool
) -> None:
    valid_env_file.chmod(mode)

    assert Context(env_file=valid_env_file).settings.bind_address == "127.0.0.1"

    expected = (
        f"airflow-ha: warning: other users may read or change {valid_env_file} (mode "
        f"{mode:04o}), which holds every secret: chmod 600 {valid_env_file}\n"
    )
    assert capsys.readouterr().err == (expected if warned else "")
