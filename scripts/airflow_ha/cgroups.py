"""CPU time, memory and limits of a container, read from its cgroup (v1 or v2).

`docker stats --no-stream` samples one instant and misses short-lived
processes such as healthchecks; a cgroup's CPU counter accumulates every
process ever run in the container, so two readings over a window give the
container's true CPU use in that window.
"""

from dataclasses import dataclass
from pathlib import Path

from airflow_ha.errors import ClusterError

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # since the container started
    memory_bytes: int  # in use now, without the reclaimable page cache


def cgroup_paths(proc_cgroup: str) -> dict[str, str]:
    """Controller -> path, from /proc/<pid>/cgroup; v2's unified path is under ""."""
    paths: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller.removeprefix("name=")] = path
    return paths


def _stat(text: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            values[key] = int(value)
    return values


@dataclass(frozen=True)
class Bounds:
    """How close a container is to its limits (None: no limit, or not known)."""

    memory_peak_bytes: int | None  # the most it ever used, page cache included
    memory_limit_bytes: int | None
    oom_kills: int  # processes the kernel killed for reaching the memory limit
    pids: int  # processes and threads now
    pids_limit: int | None


# cgroup v1 writes "no limit" as the largest page-aligned 63-bit number.
_V1_UNLIMITED = 1 << 62


def _limit(text: str) -> int | None:
    value = text.strip()
    if value == "max":
        return None
    number = int(value)
    return None if number >= _V1_UNLIMITED else number


def _optional(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def read_bounds(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> Bounds:
    """Memory peak and limit, OOM kills, and process count and limit of the cgroup
    that process `pid` is in."""
    try:
        paths = cgroup_paths((proc / str(pid) / "cgroup").read_text())
        if "memory" in paths:  # v1
            memory = root / "memory" / paths["memory"].lstrip("/")
            pids = root / "pids" / paths["pids"].lstrip("/")
            peak: int | None = int((memory / "memory.max_usage_in_bytes").read_text())
            limit = _limit((memory / "memory.limit_in_bytes").read_text())
            events = _stat((memory / "memory.oom_control").read_text())
        else:  # v2; memory.peak is there from Linux 5.19
            memory = pids = root / paths[""].lstrip("/")
            peak_text = _optional(memory / "memory.peak")
            peak = int(peak_text) if peak_text else None
            limit = _limit((memory / "memory.max").read_text())
            events = _stat((memory / "memory.events").read_text())
        count = int((pids / "pids.current").read_text())
        pids_limit = _limit((pids / "pids.max").read_text())
    except (OSError, KeyError, ValueError) as error:
        raise ClusterError(
            f"cannot read the cgroup of process {pid} under {root} ({error}): "
            "run this on the Docker host"
        ) from None
    return Bounds(peak, limit, events.get("oom_kill", 0), count, pids_limit)


def read_usage(pid: int, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> Usage:
    """The usage of the cgroup that process `pid` (a container's main process) is in."""
    try:
        paths = cgroup_paths((proc / str(pid) / "cgroup").read_text())
        if "cpuacct" in paths:  # v1: one hierarchy per controller
            cpu_dir = root / "cpuacct" / paths["cpuacct"].lstrip("/")
            memory_dir = root / "memory" / paths["memory"].lstrip("/")
            cpu = int((cpu_dir / "cpuacct.usage").read_text()) / 1e9
            memory = int((memory_dir / "memory.usage_in_bytes").read_text())
            inactive = _stat((memory_dir / "memory.stat").read_text()).get("total_inactive_file", 0)
        else:  # v2: one unified hierarchy
            group = root / paths[""].lstrip("/")
            cpu = _stat((group / "cpu.stat").read_text())["usage_usec"] / 1e6
            memory = int((group / "memory.current").read_text())
            inactive = _stat((group / "memory.stat").read_text()).get("inactive_file", 0)
    except (OSError, KeyError, ValueError) as error:
        raise ClusterError(
            f"cannot read the cgroup of process {pid} under {root} ({error}): "
            "the benchmark must run on the Docker host"
        ) from None
    return Usage(cpu_seconds=cpu, memory_bytes=max(memory - inactive, 0))
