"""`scale` (commands/scale.py) as the user types it, with the resize itself replaced:
the flags reach resize(), which test_scaling.py checks on its own."""

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

import airflow_ha.commands.scale as scale
from airflow_ha import cli
from airflow_ha.context import Context
from airflow_ha.scaling import PoolScaler


def run_scale(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *argv: str) -> dict[str, Any]:
    """`airflow-ha scale ARGV`; what resize() was asked."""
    asked: dict[str, Any] = {}

    def fake_resize(scaler: PoolScaler, count: int, *rest: Any) -> tuple[list[Any], set[str]]:
        asked.update(queue=scaler.pool.queue, count=count, rest=rest)
        return [], set()

    monkeypatch.setattr(scale, "resize", fake_resize)
    ctx = SimpleNamespace(
        stack=SimpleNamespace(require_running=lambda: None),
        state_dir=tmp_path,
        flower_client=lambda: None,
        airflow_client=lambda: None,
        record_scale=lambda service, count: None,
    )
    args = cli.build_parser().parse_args(["scale", *argv])
    assert args.run is scale.run
    assert scale.run(args, cast(Context, ctx)) == 0
    return asked


def test_force_reaches_the_resize(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    asked = run_scale(monkeypatch, tmp_path, "0", "--queue", "heavy", "--force")
    assert (asked["queue"], asked["count"]) == ("heavy", 0)
    *_, force = asked["rest"]
    assert force is True


def test_without_force_the_resize_may_refuse(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked = run_scale(monkeypatch, tmp_path, "0")
    *_, force = asked["rest"]
    assert force is False
