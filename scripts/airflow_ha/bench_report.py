"""The benchmark's output: a side-by-side table, JSON, and PNG charts."""

import json
import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

from airflow_ha.compare import ProfileResult
from airflow_ha.console import table

Figure = Callable[[ProfileResult], float | None]


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def idle_cpu(r: ProfileResult) -> float | None:
    return sum(r.idle_cpu_percent.values()) if r.idle_cpu_percent else None


def memory(r: ProfileResult) -> float | None:
    return sum(r.memory_mib.values()) if r.memory_mib else None


def healthcheck_cpu(r: ProfileResult) -> float | None:
    return sum(h.cpu_seconds_per_hour for h in r.healthchecks) if r.healthchecks else None


def chain_seconds(r: ProfileResult) -> float | None:
    return _median([c.seconds_per_task for c in r.chain])


def fanout_rate(r: ProfileResult) -> float | None:
    return _median([f.tasks_per_second for f in r.fanout])


def fanout_cpu(r: ProfileResult) -> float | None:
    return _median([f.cpu_seconds_per_task for f in r.fanout])


def queued_median(r: ProfileResult) -> float | None:
    return _median([f.queued_to_running_median for f in r.fanout])


def queued_p95(r: ProfileResult) -> float | None:
    return _median([f.queued_to_running_p95 for f in r.fanout])


def contention_problems(r: ProfileResult) -> float | None:
    c = r.contention
    if c is None:
        return None
    return len(c.failed_runs) + len(c.retried_tasks) + (c.load_balancer_errors or 0)


# (label, figure, decimals): the rows of the summary table. Figures over
# several runs are medians.
ROWS: list[tuple[str, Figure, int]] = [
    ("idle CPU, % of one core", idle_cpu, 1),
    ("memory, MiB", memory, 0),
    ("healthchecks, CPU-s per hour", healthcheck_cpu, 0),
    ("chain, s per task", chain_seconds, 2),
    ("fan-out, tasks/s", fanout_rate, 2),
    ("fan-out, CPU-s per task", fanout_cpu, 3),
    ("fan-out, queued->running median, s", queued_median, 2),
    ("fan-out, queued->running p95, s", queued_p95, 2),
    ("contention: failed runs + retried tasks + LB 5xx", contention_problems, 0),
]


def _cell(value: float | None, decimals: int) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def ratio(first: float | None, second: float | None) -> str:
    if first is None or second is None or math.isnan(first) or math.isnan(second) or second == 0:
        return "-"
    return f"{first / second:.2f}x"


def summary_table(results: Sequence[ProfileResult]) -> str:
    header = ["figure", *(r.profile for r in results)]
    if len(results) == 2:
        header.append(f"{results[0].profile} / {results[1].profile}")
    rows = [header]
    for label, figure, decimals in ROWS:
        values = [figure(r) for r in results]
        row = [label, *(_cell(v, decimals) for v in values)]
        if len(results) == 2:
            row.append(ratio(values[0], values[1]))
        rows.append(row)
    return table(rows)


def services_table(results: Sequence[ProfileResult]) -> str:
    """Idle CPU and memory per service, side by side."""
    services = sorted({s for r in results for s in r.idle_cpu_percent})
    header = ["service"]
    for r in results:
        header += [f"{r.profile} CPU %", f"{r.profile} MiB"]
    rows = [header]
    for service in services:
        row = [service]
        for r in results:
            row.append(_cell(r.idle_cpu_percent.get(service), 1))
            row.append(_cell(r.memory_mib.get(service), 0))
        rows.append(row)
    return table(rows)


def fanout_cpu_table(results: Sequence[ProfileResult]) -> str:
    """Where a fan-out task's CPU goes: CPU-s per task per service (median of runs)."""
    services = sorted({s for r in results for run in r.fanout_cpu_per_task for s in run})
    rows = [["service", *(f"{r.profile} CPU-s per task" for r in results)]]
    for service in services:
        row = [service]
        for r in results:
            values = [run[service] for run in r.fanout_cpu_per_task if service in run]
            row.append(_cell(_median(values), 3))
        rows.append(row)
    return table(rows)


def healthchecks_table(results: Sequence[ProfileResult]) -> str:
    rows = [["profile", "service", "CPU-s per run", "every", "containers", "CPU-s per hour"]]
    for r in results:
        for h in r.healthchecks:
            rows.append(
                [
                    r.profile,
                    h.service,
                    f"{h.cpu_seconds_per_run:.3f}",
                    f"{h.interval_seconds:.0f} s",
                    str(h.containers),
                    f"{h.cpu_seconds_per_hour:.0f}",
                ]
            )
    return table(rows)


def contention_lines(results: Sequence[ProfileResult]) -> list[str]:
    lines = []
    for r in results:
        c = r.contention
        if c is None:
            continue
        lb = "no load balancer" if c.load_balancer_errors is None else f"{c.load_balancer_errors}"
        lines.append(
            f"{r.profile}: {c.busy_loops} busy loops; {c.runs - len(c.failed_runs)} of {c.runs} "
            f"runs succeeded; retried tasks: {', '.join(c.retried_tasks) or 'none'}; "
            f"load balancer 502/503/504: {lb}"
        )
    return lines


def format_report(results: Sequence[ProfileResult]) -> str:
    parts = [summary_table(results)]
    if any(r.idle_cpu_percent for r in results):
        parts.append("Idle, per service (cgroup CPU over the window; memory at its end):")
        parts.append(services_table(results))
    if any(r.fanout_cpu_per_task for r in results):
        parts.append("Fan-out, CPU per task by service (median of the runs):")
        parts.append(fanout_cpu_table(results))
    if any(r.healthchecks for r in results):
        parts.append("Healthchecks (median of 3 runs of each service's check):")
        parts.append(healthchecks_table(results))
    parts += contention_lines(results)
    return "\n\n".join(parts)


def write_json(results: Sequence[ProfileResult], path: Path) -> None:
    data = {
        "profiles": [asdict(r) for r in results],
        "summary": {label: {r.profile: figure(r) for r in results} for label, figure, _ in ROWS},
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_charts(results: Sequence[ProfileResult], folder: Path) -> list[Path]:
    """bench-idle-cpu.png (per service) and bench-tasks.png (tasks/s, s per task)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    width = 0.8 / max(len(results), 1)

    services = sorted({s for r in results for s in r.idle_cpu_percent})
    if services:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        for i, r in enumerate(results):
            xs = [n + i * width for n in range(len(services))]
            total = sum(r.idle_cpu_percent.values())
            values = [r.idle_cpu_percent.get(s, 0.0) for s in services]
            ax.bar(xs, values, width, label=f"{r.profile} (total {total:.1f} %)")
        ax.set_xticks([n + width * (len(results) - 1) / 2 for n in range(len(services))])
        ax.set_xticklabels(services, rotation=30, ha="right")
        ax.set_ylabel("% of one core")
        ax.set_title("Idle CPU per service (cgroup, 60 s window)")
        ax.legend()
        fig.tight_layout()
        written.append(folder / "bench-idle-cpu.png")
        fig.savefig(written[-1], dpi=100)
        plt.close(fig)

    panels = [
        ("fan-out: tasks/s (higher is better)", fanout_rate),
        ("chain: s per task (lower is better)", chain_seconds),
        ("fan-out: CPU-s per task (lower is better)", fanout_cpu),
    ]
    if not any(r.chain or r.fanout for r in results):
        return written
    fig, axes = plt.subplots(1, len(panels), figsize=(11, 3.8))
    names = [r.profile for r in results]
    for ax, (title, figure) in zip(axes, panels, strict=True):
        values = [figure(r) or 0.0 for r in results]
        bars = ax.bar(names, values, color=[f"C{i}" for i in range(len(results))])
        ax.bar_label(bars, fmt="%.2f")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    written.append(folder / "bench-tasks.png")
    fig.savefig(written[-1], dpi=100)
    plt.close(fig)
    return written
