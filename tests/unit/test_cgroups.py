"""cgroups.py on fake /proc and /sys/fs/cgroup trees, v1 and v2."""

from pathlib import Path

import pytest

from airflow_ha.cgroups import Bounds, Usage, cgroup_paths, read_bounds, read_usage
from airflow_ha.errors import ClusterError

V1_PROC = (
    "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n"
)


def test_cgroup_paths_v1_and_v2_lines() -> None:
    assert cgroup_paths(V1_PROC) == {
        "memory": "/docker/abc",
        "cpu": "/docker/abc",
        "cpuacct": "/docker/abc",
        "systemd": "/docker/abc",
        "": "/docker/abc",
    }
    assert cgroup_paths("0::/system.slice/docker-abc.scope\n") == {
        "": "/system.slice/docker-abc.scope"
    }


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_v1_reads_cpuacct_and_memory_without_inactive_cache(tmp_path: Path) -> None:
    write(tmp_path / "proc/42/cgroup", V1_PROC)
    write(tmp_path / "cg/cpuacct/docker/abc/cpuacct.usage", "2500000000\n")
    write(tmp_path / "cg/memory/docker/abc/memory.usage_in_bytes", "1000\n")
    write(tmp_path / "cg/memory/docker/abc/memory.stat", "cache 300\ntotal_inactive_file 200\n")

    usage = read_usage(42, root=tmp_path / "cg", proc=tmp_path / "proc")

    assert usage == Usage(cpu_seconds=2.5, memory_bytes=800)


def test_v2_reads_cpu_stat_and_memory_current(tmp_path: Path) -> None:
    write(tmp_path / "proc/7/cgroup", "0::/system.slice/docker-abc.scope\n")
    group = tmp_path / "cg/system.slice/docker-abc.scope"
    write(group / "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n")
    write(group / "memory.current", "5000\n")
    write(group / "memory.stat", "anon 4000\ninactive_file 1000\n")

    usage = read_usage(7, root=tmp_path / "cg", proc=tmp_path / "proc")

    assert usage == Usage(cpu_seconds=1.5, memory_bytes=4000)


def test_an_unreadable_cgroup_is_one_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "proc/7/cgroup", "0::/gone\n")
    with pytest.raises(ClusterError, match=r"cannot read the cgroup of process 7 .* Docker host"):
        read_usage(7, root=tmp_path / "cg", proc=tmp_path / "proc")


V1_PIDS_PROC = V1_PROC + "9:pids:/docker/abc\n"


def test_v1_bounds_with_limits(tmp_path: Path) -> None:
    write(tmp_path / "proc/42/cgroup", V1_PIDS_PROC)
    memory = tmp_path / "cg/memory/docker/abc"
    write(memory / "memory.max_usage_in_bytes", "3000\n")
    write(memory / "memory.limit_in_bytes", "4096\n")
    write(memory / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    write(tmp_path / "cg/pids/docker/abc/pids.current", "17\n")
    write(tmp_path / "cg/pids/docker/abc/pids.max", "512\n")

    bounds = read_bounds(42, root=tmp_path / "cg", proc=tmp_path / "proc")

    assert bounds == Bounds(3000, 4096, 2, 17, 512)


def test_v1_bounds_without_limits(tmp_path: Path) -> None:
    write(tmp_path / "proc/42/cgroup", V1_PIDS_PROC)
    memory = tmp_path / "cg/memory/docker/abc"
    write(memory / "memory.max_usage_in_bytes", "3000\n")
    write(memory / "memory.limit_in_bytes", "9223372036854771712\n")
    write(memory / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n")  # kernel < 4.13
    write(tmp_path / "cg/pids/docker/abc/pids.current", "3\n")
    write(tmp_path / "cg/pids/docker/abc/pids.max", "max\n")

    bounds = read_bounds(42, root=tmp_path / "cg", proc=tmp_path / "proc")

    assert bounds == Bounds(3000, None, 0, 3, None)


@pytest.mark.parametrize(("peak", "expected"), [("6000\n", 6000), (None, None)])
def test_v2_bounds(tmp_path: Path, peak: str | None, expected: int | None) -> None:
    write(tmp_path / "proc/7/cgroup", "0::/system.slice/docker-abc.scope\n")
    group = tmp_path / "cg/system.slice/docker-abc.scope"
    if peak is not None:
        write(group / "memory.peak", peak)
    write(group / "memory.max", "8192\n")
    write(group / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    write(group / "pids.current", "9\n")
    write(group / "pids.max", "max\n")

    bounds = read_bounds(7, root=tmp_path / "cg", proc=tmp_path / "proc")

    assert bounds == Bounds(expected, 8192, 1, 9, None)


def test_unreadable_bounds_are_one_clear_error(tmp_path: Path) -> None:
    write(tmp_path / "proc/7/cgroup", V1_PROC)  # no pids controller
    with pytest.raises(ClusterError, match=r"cannot read the cgroup of process 7 .* Docker host"):
        read_bounds(7, root=tmp_path / "cg", proc=tmp_path / "proc")
