"""Each container against its limits: memory now, at its peak and allowed; OOM kills;
processes. What an operator reads before raising a limit (or after a task was killed)."""

from collections.abc import Iterable
from dataclasses import dataclass

from airflow_ha.cgroups import Bounds, Usage
from airflow_ha.console import table

MIB = 1024 * 1024
# A peak this close to the limit means the next bigger task may be killed.
NEAR_LIMIT = 0.9


@dataclass(frozen=True)
class ContainerResources:
    service: str
    container: str
    usage: Usage
    bounds: Bounds

    @property
    def peak_share(self) -> float | None:
        """The memory peak as a share of the limit (None: no limit or no peak)."""
        peak, limit = self.bounds.memory_peak_bytes, self.bounds.memory_limit_bytes
        return peak / limit if peak is not None and limit else None

    @property
    def warnings(self) -> list[str]:
        found = []
        if self.bounds.oom_kills:
            found.append(f"{self.bounds.oom_kills} OOM kill(s)")
        if (self.peak_share or 0) >= NEAR_LIMIT:
            found.append("memory peak near the limit")
        limit = self.bounds.pids_limit
        if limit and self.bounds.pids >= NEAR_LIMIT * limit:
            found.append("processes near the limit")
        return found


def _mib(value: int | None) -> str:
    return "-" if value is None else str(round(value / MIB))


def resources_table(containers: Iterable[ContainerResources]) -> str:
    rows = [
        ("SERVICE", "CONTAINER", "MEMORY MiB", "PEAK MiB", "LIMIT MiB", "PEAK %", "PIDS",
         "PIDS LIMIT", "WARNINGS"),
    ]  # fmt: skip
    for c in sorted(containers, key=lambda c: (c.service, c.container)):
        share = c.peak_share
        rows.append(
            (
                c.service,
                c.container,
                _mib(c.usage.memory_bytes),
                _mib(c.bounds.memory_peak_bytes),
                _mib(c.bounds.memory_limit_bytes),
                "-" if share is None else f"{share:.0%}",
                str(c.bounds.pids),
                "-" if c.bounds.pids_limit is None else str(c.bounds.pids_limit),
                "; ".join(c.warnings) or "-",
            )
        )
    return table(rows)
