"""envfile.py: .env is the documented example with fresh secrets, written once, 0600."""

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from airflow_ha.envfile import create_env_file, generate_secret, render_env
from airflow_ha.errors import ConfigError
from airflow_ha.settings import SECRET_KEYS, load_settings, parse_settings

from .conftest import env_values


def test_the_example_ships_no_secret(example_text: str) -> None:
    example = env_values(example_text)
    for key in SECRET_KEYS:
        assert key in example, key
        assert not example[key], f"{key} has a value in .env.example"


def test_every_secret_is_filled(example_text: str) -> None:
    values = env_values(render_env(example_text))
    for key in SECRET_KEYS:
        assert values[key], key
    parse_settings(values, "rendered")  # and the result is a valid .env


def test_secrets_are_fresh_on_every_call(example_text: str) -> None:
    first = env_values(render_env(example_text))
    second = env_values(render_env(example_text))
    for key in SECRET_KEYS:
        assert first[key] != second[key], key
    non_secrets = set(first) - set(SECRET_KEYS)
    assert {k: first[k] for k in non_secrets} == {k: second[k] for k in non_secrets}


def test_secrets_differ_from_each_other(example_text: str) -> None:
    values = env_values(render_env(example_text))
    secrets = [values[key] for key in SECRET_KEYS]
    assert len(set(secrets)) == len(secrets)


def test_the_generated_fernet_key_is_accepted_by_fernet(example_text: str) -> None:
    key = env_values(render_env(example_text))["AIRFLOW_FERNET_KEY"]
    assert key is not None
    fernet = Fernet(key.encode())
    assert fernet.decrypt(fernet.encrypt(b"connection password")) == b"connection password"


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_generate_secret_passes_validation(key: str) -> None:
    # The generated value alone must satisfy the key's own validator.
    secret = generate_secret(key)
    if key == "AIRFLOW_FERNET_KEY":
        Fernet(secret.encode())
    else:
        assert len(secret) >= 16
        assert secret.replace("-", "").replace("_", "").isalnum()


def test_comments_blank_lines_and_order_are_kept(example_text: str) -> None:
    rendered = render_env(example_text)
    example_lines = example_text.splitlines()
    rendered_lines = rendered.splitlines()

    assert len(rendered_lines) == len(example_lines)
    assert rendered.endswith("\n")
    assert not rendered.endswith("\n\n")
    for before, after in zip(example_lines, rendered_lines, strict=True):
        key = before.partition("=")[0]
        if before.startswith("#") or "=" not in before:
            assert after == before
        elif key in SECRET_KEYS:
            assert after.startswith(f"{key}=")
            assert after != before
        else:
            assert after == before


def test_a_small_example_exactly() -> None:
    example = (
        "# MYSQL_PASSWORD= in a comment stays as is\n"
        "\n"
        "COMPOSE_PROJECT_NAME=demo\n"
        "MYSQL_PASSWORD=\n"
        "  # indented REDIS_PASSWORD=\n"
        "REDIS_PASSWORD=kept-because-it-has-a-value\n"
    )
    lines = render_env(example).splitlines()

    assert lines[0] == "# MYSQL_PASSWORD= in a comment stays as is"
    assert lines[1] == ""
    assert lines[2] == "COMPOSE_PROJECT_NAME=demo"
    assert lines[3].startswith("MYSQL_PASSWORD=")
    assert len(lines[3]) > len("MYSQL_PASSWORD=") + 16
    assert lines[4] == "  # indented REDIS_PASSWORD="
    assert lines[5] == "REDIS_PASSWORD=kept-because-it-has-a-value"
    assert len(lines) == 6


def test_overrides_replace_values_and_secrets(example_text: str) -> None:
    password = "given-password-0123456789"
    values = env_values(
        render_env(
            example_text,
            {"AIRFLOW_API_PORT": "0", "COMPOSE_PROJECT_NAME": "other", "MYSQL_PASSWORD": password},
        )
    )
    assert values["AIRFLOW_API_PORT"] == "0"
    assert values["COMPOSE_PROJECT_NAME"] == "other"
    assert values["MYSQL_PASSWORD"] == password
    assert values["FLOWER_PORT"] == "5555"
    assert values["REDIS_PASSWORD"]  # the other secrets are still generated


def test_overrides_do_not_mutate_the_callers_dict(example_text: str) -> None:
    overrides = {"FLOWER_PORT": "0"}
    render_env(example_text, overrides)
    assert overrides == {"FLOWER_PORT": "0"}


def test_unknown_overrides_are_rejected_by_name(example_text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        render_env(example_text, {"NO_SUCH_KEY": "1", "ANOTHER_ONE": "2", "FLOWER_PORT": "0"})
    message = str(caught.value)
    assert "ANOTHER_ONE, NO_SUCH_KEY" in message
    assert "FLOWER_PORT" not in message
    assert "\n" not in message


def test_create_env_file_writes_a_private_valid_file(tmp_path: Path, example_text: str) -> None:
    example = tmp_path / "example"
    example.write_text(example_text)
    target = tmp_path / ".env"

    assert create_env_file(target, example, {"FLOWER_PORT": "0"}) is True

    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    settings = load_settings(target)
    assert settings.flower_port == 0
    assert env_values(target.read_text())["MYSQL_PASSWORD"]


def test_create_env_file_never_overwrites(tmp_path: Path, example_text: str) -> None:
    example = tmp_path / "example"
    example.write_text(example_text)
    target = tmp_path / ".env"
    original = b"COMPOSE_PROJECT_NAME=mine\r\n# hand-edited, no trailing newline"
    target.write_bytes(original)
    target.chmod(0o640)

    assert create_env_file(target, example) is False

    assert target.read_bytes() == original
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
