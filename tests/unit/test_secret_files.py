"""secret_files.py: one file per secret, exactly the value, private folder."""

import os
import stat
from pathlib import Path

import pytest

from airflow_ha.secret_files import (
    replication_password,
    secret_values,
    secrets_dir,
    swarm_secret_values,
    swarm_secrets_dir,
    write_secret_files,
)
from airflow_ha.settings import Settings, load_settings


@pytest.fixture
def valid_settings(valid_env_file: Path) -> Settings:
    return load_settings(valid_env_file)


def test_the_swarm_stacks_celery_urls_go_through_its_sentinels(valid_settings: Settings) -> None:
    redis = valid_settings.redis_password
    values = swarm_secret_values(valid_settings)
    assert values["AIRFLOW__CELERY__BROKER_URL"] == f"sentinel://:{redis}@redis-sentinel:26379/0"
    assert values["AIRFLOW__CELERY__RESULT_BACKEND"] == (
        f"sentinel://:{redis}@redis-sentinel:26379/1"
    )
    # Files of the same names, in their own folder (compose/swarm.yaml).
    assert swarm_secrets_dir(Path("/s")) == Path("/s/secrets/swarm")


def test_the_mysql_groups_replication_password_is_its_own(valid_settings: Settings) -> None:
    password = swarm_secret_values(valid_settings)["mysql_replication_password"]
    # Derived, so the same each time; not the root password, nor any other.
    assert password == replication_password(valid_settings.mysql_root_password)
    assert len(password) == 32  # MySQL's longest
    assert password not in secret_values(valid_settings).values()
    assert replication_password("a") != replication_password("b")


def test_each_url_carries_its_password_and_nothing_else_does(valid_settings: Settings) -> None:
    values = secret_values(valid_settings)
    mysql, redis = valid_settings.mysql_password, valid_settings.redis_password
    assert values["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == (
        f"mysql+mysqldb://airflow:{mysql}@mysql:3306/airflow?connect_timeout=10"
    )
    assert values["AIRFLOW__CELERY__BROKER_URL"] == f"redis://:{redis}@redis:6379/0"
    # Results in Redis, not MySQL: workers need no database password.
    assert values["AIRFLOW__CELERY__RESULT_BACKEND"] == f"redis://:{redis}@redis:6379/1"
    assert (
        values["AIRFLOW__CELERY__FLOWER_BASIC_AUTH"] == f"flower:{valid_settings.flower_password}"
    )
    assert values["AIRFLOW__CORE__FERNET_KEY"] == valid_settings.airflow_fernet_key
    assert values["AIRFLOW__API_AUTH__JWT_SECRET"] == valid_settings.airflow_jwt_secret
    assert values["AIRFLOW__API__SECRET_KEY"] == valid_settings.airflow_api_secret_key
    assert values["AIRFLOW_ADMIN_PASSWORD"] == valid_settings.airflow_admin_password
    assert values["mysql_root_password"] == valid_settings.mysql_root_password
    assert values["mysql_password"] == mysql
    assert values["redis_password"] == redis
    broker_secrets = {"AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"}
    assert {name for name, value in values.items() if redis in value} == broker_secrets | {
        "redis_password"
    }


def test_files_hold_the_value_exactly_in_a_private_folder(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "secrets"
    write_secret_files(folder, {"A": "one", "B": "two"})
    write_secret_files(folder, {"A": "three", "B": "two"})  # a changed .env
    assert (folder / "A").read_text() == "three"  # no newline: Airflow takes it as is
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "A").stat().st_mode) == 0o444
    assert sorted(p.name for p in folder.iterdir()) == ["A", "B"]


def test_modes_do_not_depend_on_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)  # a hardened host's
    try:
        write_secret_files(tmp_path / "secrets", {"A": "one"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secrets" / "A").stat().st_mode) == 0o444
    old = os.umask(0)
    try:
        write_secret_files(tmp_path / "open", {"A": "one"})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o700


def test_a_project_keeps_them_in_its_state_folder(tmp_path: Path) -> None:
    assert secrets_dir(tmp_path / "p") == tmp_path / "p" / "secrets"
