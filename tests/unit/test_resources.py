"""resources.py: a container against its limits, and the warnings an operator needs."""

from airflow_ha.cgroups import Bounds, Usage
from airflow_ha.resources import MIB, ContainerResources, resources_table


def container(
    peak: int | None = 500 * MIB,
    limit: int | None = 1024 * MIB,
    oom_kills: int = 0,
    pids: int = 10,
    pids_limit: int | None = 100,
    name: str = "p-worker-1",
) -> ContainerResources:
    return ContainerResources(
        "worker", name, Usage(1.0, 300 * MIB), Bounds(peak, limit, oom_kills, pids, pids_limit)
    )


def test_a_container_well_within_its_limits_has_no_warning() -> None:
    assert container().peak_share == 500 / 1024
    assert container().warnings == []


def test_without_a_limit_or_a_peak_there_is_no_share() -> None:
    assert container(limit=None).peak_share is None
    assert container(peak=None).peak_share is None
    assert container(limit=None).warnings == []


def test_warnings_name_oom_kills_and_what_is_near_its_limit() -> None:
    assert container(peak=922 * MIB, oom_kills=2, pids=90).warnings == [
        "2 OOM kill(s)",
        "memory peak near the limit",
        "processes near the limit",
    ]
    # Just under 90 %: no warning.
    assert container(peak=921 * MIB, pids=89).warnings == []


def test_the_table_in_mib_sorted_by_container() -> None:
    text = resources_table(
        [
            container(name="p-worker-2", limit=None, pids_limit=None),
            container(oom_kills=1, peak=1000 * MIB),
        ]
    )
    assert text.splitlines() == [
        "SERVICE  CONTAINER   MEMORY MiB  PEAK MiB  LIMIT MiB  PEAK %  PIDS  PIDS LIMIT  WARNINGS",
        "worker   p-worker-1  300         1000      1024       98%     10    100         "
        "1 OOM kill(s); memory peak near the limit",
        "worker   p-worker-2  300         500       -          -       10    -           -",
    ]
