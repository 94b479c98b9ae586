"""settings.py: one typed model, and one-line errors that name every bad key."""

import re
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from airflow_ha.errors import ConfigError, ExitCode
from airflow_ha.paths import REPO_ROOT
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


def test_a_ca_certs_folder_is_a_path_from_the_repository(
    valid_values: dict[str, str | None],
) -> None:
    settings = parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": "certs/corp"}, SOURCE)
    assert settings.extra_ca_certs_dir == REPO_ROOT / "certs/corp"
    absolute = parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": "/nowhere/certs"}, SOURCE)
    assert absolute.extra_ca_certs_dir == Path("/nowhere/certs")


def test_a_pattern_validator_refuses_what_does_not_match_whole() -> None:
    # The validators are built when the model class is; build one here to see it work.
    adapter = TypeAdapter(Annotated[str, _matching(re.compile(r"[a-z]+"), "lower-case letters")])
    assert adapter.validate_python("abc") == "abc"
    for bad in ("ab1", "Abc", ""):
        with pytest.raises(ValidationError, match="Value error, must be lower-case letters"):
            adapter.validate_python(bad)


# --- bad inputs that used to be accepted or to end in a traceback -----------------------------


def test_the_two_ports_must_differ_unless_both_are_free(
    valid_values: dict[str, str | None],
) -> None:
    same = {**valid_values, "AIRFLOW_API_PORT": "8080", "FLOWER_PORT": "8080"}
    assert str(config_error(same)) == (
        f"{SOURCE}: AIRFLOW_API_PORT and FLOWER_PORT are both 8080: give each its own port, "
        "or 0 for a free one"
    )
    parse_settings({**valid_values, "AIRFLOW_API_PORT": "0", "FLOWER_PORT": "0"}, SOURCE)


def test_a_dags_folder_with_a_colon_is_refused(
    valid_values: dict[str, str | None], tmp_path: Path
) -> None:
    folder = tmp_path / "dags:v2"
    folder.mkdir()
    message = str(config_error({**valid_values, "AIRFLOW_DAGS_DIR": str(folder)}))
    assert message == (
        f"{SOURCE}: AIRFLOW_DAGS_DIR {folder} holds a ':', which Compose cannot mount: "
        "rename the folder"
    )


@pytest.mark.parametrize("key", sorted(set(SECRET_KEYS) - {"AIRFLOW_FERNET_KEY"}))
@pytest.mark.parametrize(
    ("weak", "why"),
    [
        ("aaaaaaaaaaaaaaaa", 'Repeats like "aaa" are easy to guess (strength 0 of 4, needs 3)'),
        ("password12345678", "This is similar to a commonly used password"),
    ],
)
def test_a_weak_secret_is_refused(
    valid_values: dict[str, str | None], key: str, weak: str, why: str
) -> None:
    message = str(config_error({**valid_values, key: weak}))
    assert message.startswith(f"{SOURCE}: {key} is too weak: {why}")


def test_extra_ca_certs_may_name_a_folder_this_host_lacks(
    valid_values: dict[str, str | None],
) -> None:
    parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": "/no/such/folder"}, SOURCE)
    parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": ""}, SOURCE)


def test_extra_ca_certs_must_be_a_narrow_folder(
    valid_values: dict[str, str | None], tmp_path: Path
) -> None:
    def problem(value: str) -> str:
        return str(config_error({**valid_values, "BUILD_EXTRA_CA_CERTS": value}))

    assert problem("/") == (
        f"{SOURCE}: BUILD_EXTRA_CA_CERTS is the root folder: point it at the folder of "
        "your proxy's certificates"
    )
    a_file = tmp_path / "proxy.crt"
    a_file.write_text("x")
    assert problem(str(a_file)) == f"{SOURCE}: BUILD_EXTRA_CA_CERTS {a_file} is not a folder"
    wide = tmp_path / "wide"
    (wide / "deep").mkdir(parents=True)
    for n in range(50):
        (wide / "deep" / f"{n}.crt").write_text("x")
    parse_settings({**valid_values, "BUILD_EXTRA_CA_CERTS": str(wide)}, SOURCE)  # 50: fine
    (wide / "one-more.crt").write_text("x")
    assert problem(str(wide)) == (
        f"{SOURCE}: BUILD_EXTRA_CA_CERTS {wide} holds more than 50 *.crt files: point it "
        "at the folder of your proxy's certificates"
    )


def test_an_env_file_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path)
    assert str(caught.value) == f"{tmp_path} is a folder, not a settings file"


def test_an_env_file_that_is_not_utf8(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"BIND_ADDRESS=127.0.0.1\nFLOWER_PORT=55\xe955\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file)
    assert str(caught.value) == f"{env_file} is not UTF-8 text: byte 0xe9 at offset 37"


def test_an_env_file_this_user_may_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("")
    env_file.chmod(0o600)

    def refuse(self: Path, encoding: str | None = None) -> str:
        raise PermissionError(13, "Permission denied")

    # Root reads any file, so the refusal another user gets is staged.
    monkeypatch.setattr(Path, "read_text", refuse)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file)
    assert str(caught.value) == (
        f"cannot read {env_file}: it belongs to uid {env_file.stat().st_uid} with mode 0600; "
        "run as that user"
    )


def test_an_env_file_that_cannot_be_read_for_another_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("")

    def fail(self: Path, encoding: str | None = None) -> str:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Path, "read_text", fail)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file)
    assert str(caught.value) == f"cannot read {env_file}: Input/output error"


def test_a_secret_weak_only_because_it_repeats_the_product_name(
    valid_values: dict[str, str | None],
) -> None:
    # zxcvbn rates it 3 of 4 on its own, 2 with "airflow" as a known word.
    message = str(config_error({**valid_values, "AIRFLOW_ADMIN_PASSWORD": "airflow-airflow-9k"}))
    assert message.startswith(f"{SOURCE}: AIRFLOW_ADMIN_PASSWORD is too weak: ")
    assert "(strength 2 of 4, needs 3)" in message
