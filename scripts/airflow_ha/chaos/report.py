"""The chaos table and JSON."""

import json
from dataclasses import asdict
from pathlib import Path

from airflow_ha.chaos.runner import FaultResult
from airflow_ha.console import table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _detail(result: FaultResult) -> str:
    d = result.details
    parts = []
    if "api_requests" in d:
        parts.append(f"{d['api_failed']} of {d['api_requests']} API requests failed")
    if "loss_detected_s" in d:
        parts.append(f"killed try failed after {d['loss_detected_s']} s")
    if "retry_started_s" in d:
        parts.append(f"retried after {d['retry_started_s']} s on {d['retry_host']}")
    elif result.fault.startswith("worker"):
        parts.append(
            f"killed task: {d.get('victim_final_state', '?')}, try {d.get('victim_tries', '?')}"
        )
    if "api_back_s" in d:
        parts.append(f"REST API answered again after {d['api_back_s']} s")
    if "trigger_moved_s" in d:
        parts.append(f"trigger moved/resumed after {d['trigger_moved_s']} s")
    return "; ".join(parts)


def format_table(results: list[FaultResult]) -> str:
    rows = [
        (
            "FAULT",
            "TARGET",
            "RUNS OK",
            "RETRIES",
            "BACK s",
            "NEXT START s",
            "MAX GAP s",
            "RESULT",
            "DETAIL",
        )
    ]
    for r in results:
        verdict = (
            "ok"
            if r.ok
            else "LOST/STUCK"
            if not r.nothing_lost
            else "NOT BACK"
            if r.container_back_s is None
            else "API FAILED"
        )
        rows.append(
            (
                r.fault,
                r.target,
                f"{r.succeeded}/{r.runs}",
                str(r.retries),
                _seconds(r.container_back_s),
                _seconds(r.next_task_start_s),
                _seconds(r.max_start_gap_s),
                verdict,
                _detail(r),
            )
        )
    return table(rows)


def write_json(results: list[FaultResult], path: Path) -> None:
    payload = [{**asdict(r), "ok": r.ok, "nothing_lost": r.nothing_lost} for r in results]
    path.write_text(json.dumps(payload, indent=2) + "\n")
