"""docker_host.py: the settings files, not exported shell variables, decide what Compose reads."""

import os
from pathlib import Path

import pytest

from airflow_ha.docker_host import drop_shadowing_exports, shadowing_exports


def test_only_exports_with_another_value_shadow() -> None:
    environ = {"BIND_ADDRESS": "0.0.0.0", "FLOWER_PORT": "5555", "HOME": "/root"}
    values = {"BIND_ADDRESS": "127.0.0.1", "FLOWER_PORT": "5555", "WORKER_REPLICAS": "2"}

    assert shadowing_exports(environ, values) == ["BIND_ADDRESS"]


def test_an_empty_export_shadows_a_value() -> None:
    assert shadowing_exports({"AIRFLOW_API_PORT": ""}, {"AIRFLOW_API_PORT": "8080"}) == [
        "AIRFLOW_API_PORT"
    ]


def test_shadowing_exports_are_dropped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BIND_ADDRESS=127.0.0.1\nFLOWER_PORT=5555\n")
    derived = tmp_path / "compose.env"
    derived.write_text("WORKER_REPLICAS=2\n")
    monkeypatch.setenv("BIND_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("WORKER_REPLICAS", "9")
    monkeypatch.setenv("FLOWER_PORT", "5555")

    drop_shadowing_exports([env_file, derived])

    assert "BIND_ADDRESS" not in os.environ
    assert "WORKER_REPLICAS" not in os.environ
    assert os.environ["FLOWER_PORT"] == "5555"
    assert capsys.readouterr().err == (
        "airflow-ha: warning: ignoring the exported BIND_ADDRESS, WORKER_REPLICAS: the "
        f"settings file decides ({env_file}); unset them to silence this\n"
    )


def test_nothing_is_said_when_nothing_shadows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("BIND_ADDRESS=127.0.0.1\n")
    monkeypatch.delenv("BIND_ADDRESS", raising=False)

    drop_shadowing_exports([env_file])

    assert capsys.readouterr().err == ""
