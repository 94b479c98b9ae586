"""settings.py: one typed model, and one-line errors that name every bad key."""

import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from airflow_ha.errors import ConfigError, ExitCode
from airflow_ha.settings import (
    SECRET_KEYS,
    Settings,
    _matching,
    load_settings,
    parse_settings,
)

from .conftest import WriteEnv

SOURCE = "test.env"


def config_error(values: dict[str, str | None]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(values, SOURCE)
    return caught.value


def named_keys(message: str, candidates: set[str]) -> set[str]:
    """The candidate keys that appear in `message` as whole words."""
    return {key for key in candidates if re.search(rf"\b{re.escape(key)}\b", message)}


def assert_names_only(error: ConfigError, bad: set[str], known: set[str]) -> str:
    message = str(error)
    assert "\n" not in message, message
    assert message.startswith(f"{SOURCE}: "), message
    assert named_keys(message, known | bad) == bad, message
    assert error.exit_code == ExitCode.CONFIG
    return message


def test_single_topology_runs_one_of_each(valid_values: dict[str, str | None]) -> None:
    settings = parse_settings({**valid_values, "TOPOLOGY": "single"}, SOURCE)
    assert settings.replicas == {
        "scheduler": 1,
        "api-server": 1,
        "triggerer": 1,
        "worker": 1,
        "worker-heavy": 1,
    }


def test_valid_values_give_typed_settings(valid_values: dict[str, str | None]) -> None:
    settings = parse_settings(valid_values, SOURCE)

    assert settings.compose_project_name == "airflow-ha"
    assert settings.bind_address == "127.0.0.1"
    assert settings.airflow_api_port == 8080
    assert settings.flower_port == 5555
    assert settings.topology == "ha"
    assert settings.replicas == {
        "scheduler": 2,
        "api-server": 2,
        "triggerer": 2,
        "worker": 2,
        "worker-heavy": 1,
    }
    assert settings.airflow_worker_concurrency == 8
    assert settings.airflow_load_examples == "false"
    assert settings.airflow_admin_user == "admin"
    assert settings.airflow_admin_password == valid_values["AIRFLOW_ADMIN_PASSWORD"]
    assert settings.airflow_fernet_key == valid_values["AIRFLOW_FERNET_KEY"]
    assert settings.mysql_password == valid_values["MYSQL_PASSWORD"]
    assert settings.airflow_image == "airflow-ha/airflow:3.3.2"
    assert settings.extra_ca_certs_dir == Path("/usr/local/share/ca-certificates")


def test_settings_are_frozen(valid_values: dict[str, str | None]) -> None:
    settings = parse_settings(valid_values, SOURCE)
    with pytest.raises(ValueError, match="frozen"):
        settings.flower_port = 1  # type: ignore[misc]


def test_every_field_is_a_key_of_the_example(valid_values: dict[str, str | None]) -> None:
    aliases = {str(field.alias) for field in Settings.model_fields.values()}
    assert aliases == set(valid_values)


def test_secret_keys_are_the_passwords_and_signing_keys() -> None:
    assert set(SECRET_KEYS) == {
        "AIRFLOW_ADMIN_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "MYSQL_ROOT_PASSWORD",
        "MYSQL_PASSWORD",
        "REDIS_PASSWORD",
        "FLOWER_PASSWORD",
    }


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("AIRFLOW_API_PORT", "0"),
        ("AIRFLOW_API_PORT", "65535"),
        ("BIND_ADDRESS", "0.0.0.0"),
        ("BIND_ADDRESS", "::1"),
        ("TOPOLOGY", "single"),
        ("COMPOSE_PROJECT_NAME", "a1_b-2"),
        ("BUILD_EXTRA_CA_CERTS", ""),
        ("MYSQL_PASSWORD", "A-Za-z0-9_-xxxxx"),
        ("AIRFLOW_FERNET_KEY", "QUJD" * 10 + "QUI="),  # exactly 32 bytes
    ],
)
def test_edge_values_are_accepted(
    valid_values: dict[str, str | None], key: str, value: str
) -> None:
    settings = parse_settings({**valid_values, key: value}, SOURCE)
    assert str(settings.model_dump(by_alias=True)[key]) == value


def test_empty_ca_certs_means_no_folder(valid_values: dict[str, str | None]) -> None:
    settings = parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": ""}, SOURCE)
    assert settings.extra_ca_certs_dir is None


def test_missing_key_is_named(valid_values: dict[str, str | None]) -> None:
    values = dict(valid_values)
    del values["AIRFLOW_JWT_SECRET"]
    message = assert_names_only(config_error(values), {"AIRFLOW_JWT_SECRET"}, set(valid_values))
    assert "AIRFLOW_JWT_SECRET is missing" in message


def test_unknown_key_is_named(valid_values: dict[str, str | None]) -> None:
    values = {**valid_values, "AIRFLOW_WORKERS": "3"}
    message = assert_names_only(config_error(values), {"AIRFLOW_WORKERS"}, set(valid_values))
    assert "AIRFLOW_WORKERS is not a known setting" in message


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param("REDIS_PASSWORD", "", "make up", id="empty-secret"),
        pytest.param("REDIS_PASSWORD", None, "make up", id="secret-without-equals"),
        pytest.param("MYSQL_PASSWORD", "abcdefgh@ijklmnop", "A-Z a-z 0-9 _ -", id="secret-at"),
        pytest.param("FLOWER_PASSWORD", "abcdefgh/ijklmnop", "A-Z a-z 0-9 _ -", id="secret-slash"),
        pytest.param(
            "AIRFLOW_JWT_SECRET", "abcdefgh ijklmnop", "A-Z a-z 0-9 _ -", id="secret-space"
        ),
        pytest.param("AIRFLOW_API_SECRET_KEY", "a" * 15, "at least 16", id="secret-short"),
        pytest.param("AIRFLOW_FERNET_KEY", "not-a-fernet-key", "Fernet", id="fernet-garbage"),
        pytest.param("AIRFLOW_FERNET_KEY", "", "Fernet", id="fernet-empty"),
        pytest.param("AIRFLOW_FERNET_KEY", "QUJD" * 10 + "QQ==", "Fernet", id="fernet-31-bytes"),
        pytest.param("AIRFLOW_FERNET_KEY", "QUJD" * 11, "Fernet", id="fernet-33-bytes"),
        pytest.param("AIRFLOW_API_PORT", "65536", "65535", id="port-too-high"),
        pytest.param("FLOWER_PORT", "-1", "greater than or equal to 0", id="port-negative"),
        pytest.param("FLOWER_PORT", "http", "integer", id="port-not-a-number"),
        pytest.param("AIRFLOW_API_PORT", "80.5", "integer", id="port-fraction"),
        pytest.param("BIND_ADDRESS", "localhost", "IPv4 or IPv6", id="bind-hostname"),
        pytest.param("BIND_ADDRESS", "256.0.0.1", "IPv4 or IPv6", id="bind-bad-octet"),
        pytest.param("COMPOSE_PROJECT_NAME", "Airflow-HA", "lower-case", id="project-upper"),
        pytest.param("COMPOSE_PROJECT_NAME", "-airflow", "lower-case", id="project-dash-first"),
        pytest.param("COMPOSE_PROJECT_NAME", "", "lower-case", id="project-empty"),
        pytest.param("TOPOLOGY", "triple", "'ha' or 'single'", id="topology"),
        pytest.param("TOPOLOGY", "", "'ha' or 'single'", id="topology-empty"),
        pytest.param("AIRFLOW_WORKER_CONCURRENCY", "0", "greater than or equal to 1", id="conc"),
        pytest.param("AIRFLOW_ADMIN_USER", "ad min", "letters, digits", id="user-space"),
        pytest.param("AIRFLOW_LOAD_EXAMPLES", "yes", "'true' or 'false'", id="examples-yes"),
        pytest.param("MYSQL_IMAGE", "mysql 8.4", "image reference", id="image-space"),
    ],
)
def test_bad_value_is_named_on_one_line(
    valid_values: dict[str, str | None], key: str, value: str | None, expected: str
) -> None:
    values = {**valid_values, key: value}
    message = assert_names_only(config_error(values), {key}, set(valid_values))
    assert expected in message


def test_several_bad_keys_are_all_named_on_one_line(valid_values: dict[str, str | None]) -> None:
    values = {**valid_values, "FLOWER_PORT": "x", "REDIS_PASSWORD": "", "EXTRA": "1"}
    del values["MYSQL_IMAGE"]
    bad = {"FLOWER_PORT", "REDIS_PASSWORD", "EXTRA", "MYSQL_IMAGE"}
    message = assert_names_only(config_error(values), bad, set(valid_values))
    assert message.count(";") == len(bad) - 1


def test_secret_values_never_appear_in_errors(valid_values: dict[str, str | None]) -> None:
    leaked = "abcdefgh@ijklmnop-leak"
    message = str(config_error({**valid_values, "MYSQL_ROOT_PASSWORD": leaked}))
    assert leaked not in message


def test_load_settings_reads_a_generated_file(
    valid_env_file: Path, valid_values: dict[str, str | None]
) -> None:
    settings = load_settings(valid_env_file)
    assert settings.airflow_api_port == 8080
    assert len(settings.airflow_jwt_secret) >= 16
    # A fresh file has fresh secrets, not the fixture's.
    assert settings.airflow_jwt_secret != valid_values["AIRFLOW_JWT_SECRET"]


def test_load_settings_names_the_file_and_the_key(write_env: WriteEnv) -> None:
    env_file = write_env(AIRFLOW_API_PORT="http")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file)
    message = str(caught.value)
    assert message.startswith(f"{env_file}: AIRFLOW_API_PORT ")
    assert "\n" not in message


def test_load_settings_on_a_key_without_value(valid_env_file: Path) -> None:
    text = valid_env_file.read_text()
    text = re.sub(r"^REDIS_PASSWORD=.*$", "REDIS_PASSWORD", text, flags=re.MULTILINE)
    valid_env_file.write_text(text)
    with pytest.raises(ConfigError, match=r"REDIS_PASSWORD must be at least 16 characters"):
        load_settings(valid_env_file)


def test_load_settings_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / ".env"
    with pytest.raises(ConfigError) as caught:
        load_settings(missing)
    message = str(caught.value)
    assert str(missing) in message
    assert "`make up`" in message
    assert "\n" not in message
    assert caught.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize("dags_dir", ["./dags", "dags"])
def test_dags_dir_relative_to_the_repository(
    valid_values: dict[str, str | None], dags_dir: str
) -> None:
    settings = parse_settings({**valid_values, "AIRFLOW_DAGS_DIR": dags_dir}, SOURCE)
    assert settings.airflow_dags_dir == dags_dir


def test_dags_dir_absolute(valid_values: dict[str, str | None], tmp_path: Path) -> None:
    settings = parse_settings({**valid_values, "AIRFLOW_DAGS_DIR": str(tmp_path)}, SOURCE)
    assert settings.airflow_dags_dir == str(tmp_path)


def test_dags_dir_must_be_a_directory(valid_values: dict[str, str | None], tmp_path: Path) -> None:
    a_file = tmp_path / "dag.py"
    a_file.write_text("")
    for bad in (str(tmp_path / "missing"), str(a_file), "./no-such-folder"):
        values = {**valid_values, "AIRFLOW_DAGS_DIR": bad}
        message = assert_names_only(config_error(values), {"AIRFLOW_DAGS_DIR"}, set(valid_values))
        assert f"{bad} is not a directory" in message


def test_a_env_written_before_load_examples_existed_still_loads(
    valid_values: dict[str, str | None],
) -> None:
    values = {k: v for k, v in valid_values.items() if k != "AIRFLOW_LOAD_EXAMPLES"}
    assert parse_settings(values, ".env").airflow_load_examples == "false"


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        pytest.param(
            "REDIS_PASSWORD",
            "",
            "REDIS_PASSWORD must be at least 16 characters of A-Z a-z 0-9 _ - "
            "(empty? delete .env and run `make up` to generate one)",
            id="secret",
        ),
        pytest.param(
            "AIRFLOW_FERNET_KEY",
            "abc",  # not base64 at all: bad padding
            "AIRFLOW_FERNET_KEY must be 32 url-safe base64-encoded bytes (a Fernet key)",
            id="fernet-not-base64",
        ),
        pytest.param(
            "AIRFLOW_FERNET_KEY",
            "QUJD",  # base64, but 3 bytes
            "AIRFLOW_FERNET_KEY must be 32 url-safe base64-encoded bytes (a Fernet key)",
            id="fernet-short",
        ),
    ],
)
def test_the_error_says_what_a_value_must_be(
    valid_values: dict[str, str | None], key: str, value: str, expected: str
) -> None:
    assert str(config_error({**valid_values, key: value})) == f"{SOURCE}: {expected}"


def test_a_ca_certs_key_without_value_means_no_folder(
    valid_values: dict[str, str | None],
) -> None:
    # `BUILD_EXTRA_CA_CERTS` alone on a line: dotenv gives None, read as empty.
    settings = parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": None}, SOURCE)
    assert settings.extra_ca_certs_dir is None


def test_a_ca_certs_folder_is_a_path(valid_values: dict[str, str | None]) -> None:
    settings = parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": "certs/corp"}, SOURCE)
    assert settings.extra_ca_certs_dir == Path("certs/corp")


def test_a_pattern_validator_refuses_what_does_not_match_whole() -> None:
    # The validators are built when the model class is; build one here to see it work.
    adapter = TypeAdapter(Annotated[str, _matching(re.compile(r"[a-z]+"), "lower-case letters")])
    assert adapter.validate_python("abc") == "abc"
    for bad in ("ab1", "Abc", ""):
        with pytest.raises(ValidationError, match="Value error, must be lower-case letters"):
            adapter.validate_python(bad)
