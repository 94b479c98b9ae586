"""argparse types shared by the commands."""

import argparse
import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow_ha.pools import MAX_WORKERS_PER_POOL


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    # float() also reads "nan" and "inf", with which a deadline never comes.
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_WORKERS_PER_POOL:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_WORKERS_PER_POOL}: {text!r}")
    return value


def output_file(text: str) -> Path:
    """A file to write a report to: its folder must exist, and it must not be a folder."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file")
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder of {text!r} does not exist")
    return path


def _conf_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{where} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{where} must be a JSON object")
    return value


def dag_conf(text: str) -> tuple[str, dict[str, Any]]:
    """`DAG_ID={"key": "value"}`: the conf one DAG's run is triggered with."""
    dag_id, sep, conf = text.partition("=")
    if not sep or not dag_id:
        raise argparse.ArgumentTypeError(f"expected DAG_ID=JSON, got {text!r}")
    return dag_id, _conf_object(conf, f"the conf of {dag_id}")


def dag_conf_file(text: str) -> dict[str, dict[str, Any]]:
    """A JSON file {"dag_id": {conf}, ...}."""
    try:
        content = Path(text).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise argparse.ArgumentTypeError(f"cannot read {text!r}: {error}") from None
    confs = _conf_object(content, text)
    for dag_id, conf in confs.items():
        if not isinstance(conf, dict):
            raise argparse.ArgumentTypeError(f"{text}: the conf of {dag_id} must be a JSON object")
    return confs


def logical_date(text: str) -> str | datetime:
    """`now` (as the UI triggers), `none` (no logical date), or an ISO 8601 time with a zone."""
    if text in ("now", "none"):
        return text
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected now, none or an ISO 8601 time, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, e.g. {text}+00:00")
    return moment
