"""argparse types shared by the commands."""

import argparse

from airflow_ha.pools import MAX_WORKERS_PER_POOL


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= MAX_WORKERS_PER_POOL:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_WORKERS_PER_POOL}: {text!r}")
    return value
