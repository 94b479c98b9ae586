"""The chaos table, the unexpected restarts' logs, and the JSON."""

import json
from pathlib import Path

from airflow_ha.chaos.runner import FaultResult
from airflow_ha.console import table


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _runs_took(result: FaultResult) -> str:
    times = ["-" if t is None else f"{t:.0f}" for t in result.run_seconds]
    return f"runs took {'/'.join(times)} s" if times else ""


def _detail(result: FaultResult) -> str:
    d = result.details
    parts = []
    if "api_requests" in d:
        parts.append(f"{d['api_failed']} of {d['api_requests']} API requests failed")
        if cut_off := d.get("api_cut_off", 0):
            answers = "answer" if cut_off == 1 else "answers"
            parts.append(f"{cut_off} {answers} broken off by the kill, sent again")
    if "survivor_queued_s" in d:
        parts.append(f"surviving scheduler queued a task after {d['survivor_queued_s']} s")
    if "scheduling_gap_s" in d:
        parts.append(f"longest pause between tasks queued {d['scheduling_gap_s']} s")
    if "loss_detected_s" in d:
        parts.append(f"killed try failed after {d['loss_detected_s']} s")
    if "retry_started_s" in d:
        parts.append(f"retry running after {d['retry_started_s']} s on {d['retry_host']}")
    elif result.fault.startswith("worker"):
        parts.append(
            f"long task: {d.get('victim_final_state', '?')}, try {d.get('victim_tries', '?')}"
        )
    if "trigger_taken_s" in d:
        parts.append(f"trigger taken by {d['trigger_taken_by']} after {d['trigger_taken_s']} s")
    if "deferred_resumed_s" in d:
        parts.append(f"deferred task resumed after {d['deferred_resumed_s']} s")
    if "api_back_s" in d:
        parts.append(f"REST API answered again after {d['api_back_s']} s")
    if result.designed_restarts:
        names = ", ".join(r.container for r in result.designed_restarts)
        parts.append(f"restarted as designed when MySQL went away: {names}")
    if result.deadlocks:
        parts.append(f"{result.deadlocks} MySQL deadlocks")
    parts.append(_runs_took(result))
    return "; ".join(p for p in parts if p)


HEADER = (
    "FAULT",
    "TARGET",
    "RUNS OK",
    "RETRIES",
    "BACK s",
    "NEXT START s",
    "STALL s",
    "RESULT",
    "DETAIL",
)


def format_table(results: list[FaultResult]) -> str:
    """One row per fault; times count from the confirmed moment of failure."""
    rows = [HEADER]
    for r in results:
        rows.append(
            (
                r.fault,
                r.target,
                f"{r.succeeded}/{r.runs}",
                str(r.retries),
                _seconds(r.container_back_s),
                _seconds(r.next_task_start_s),
                _seconds(r.longest_stall_s),
                r.verdict,
                _detail(r),
            )
        )
    return table(rows)


def format_restarts(results: list[FaultResult]) -> str:
    """The containers that restarted although no fault aimed at them, with their last logs."""
    blocks = [
        f"{r.fault}: {restart.container} ({restart.service}) {restart.what}\n{restart.logs}"
        for r in results
        for restart in r.restarts
    ]
    return "\n".join(blocks)


def write_json(results: list[FaultResult], path: Path) -> None:
    payload = [r.as_json() for r in results]
    path.write_text(json.dumps(payload, indent=2) + "\n")
