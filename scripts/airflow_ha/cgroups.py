"""CPU time and memory of a container, read from its cgroup (v1 or v2).

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
