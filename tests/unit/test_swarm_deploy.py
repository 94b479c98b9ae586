"""The pure decisions of airflow_ha.swarm.deploy (labels, readiness, recovery, image
problems), and its listing of a service's tasks against a fake client."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from airflow_ha.swarm import deploy
from airflow_ha.swarm.deploy import (
    ServiceState,
    TaskState,
    capacity,
    image_problem,
    missing_labels,
    recovered,
)

DEPLOYED = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)


def task(
    node: str,
    state: str = "running",
    desired: str = "running",
    error: str = "",
    created: datetime = DEPLOYED + timedelta(seconds=5),
) -> TaskState:
    return TaskState(node=node, state=state, desired=desired, error=error, created=created)


def test_labels_carried_by_some_node_are_not_missing() -> None:
    nodes = [
        {"airflow-ha.mysql": "true", "airflow-ha.lb": "true", "airflow-ha.workers": "true"},
        {"airflow-ha.redis": "true"},
        {"airflow-ha.redis-replica": "true"},
    ]
    assert missing_labels(nodes) == []


def test_a_label_no_node_carries_or_not_set_to_true_is_missing() -> None:
    nodes = [{"airflow-ha.mysql": "true", "airflow-ha.lb": "false", "other": "true"}]
    assert missing_labels(nodes) == [
        "airflow-ha.lb",
        "airflow-ha.redis",
        "airflow-ha.redis-replica",
        "airflow-ha.workers",
    ]
    assert missing_labels([]) == [
        "airflow-ha.lb",
        "airflow-ha.mysql",
        "airflow-ha.redis",
        "airflow-ha.redis-replica",
        "airflow-ha.workers",
    ]


def test_a_service_is_ready_with_its_replicas_running() -> None:
    assert ServiceState("worker", 2, (task("a"), task("b"))).ready
    assert not ServiceState("worker", 2, (task("a"), task("b", state="starting"))).ready
    # A task still running but told to stop does not count.
    assert not ServiceState("worker", 2, (task("a"), task("b", desired="shutdown"))).ready
    assert ServiceState("worker", 2, (task("a"), task("b"))).nodes == ["a", "b"]


def test_the_one_shot_init_is_ready_once_it_completed() -> None:
    assert ServiceState("airflow-init", 1, (task("a", state="complete", desired="shutdown"),)).ready
    assert not ServiceState("airflow-init", 1, (task("a"),)).ready
    assert not ServiceState(
        "airflow-init", 1, (task("a", state="failed", desired="shutdown"),)
    ).ready


WORKERS = {"airflow-ha.workers": "true"}
TWO_SURVIVORS = [{"airflow-ha.mysql": "true"}, WORKERS]


def test_recovered_when_every_service_runs_its_replicas_away_from_the_lost_node() -> None:
    init = ServiceState("airflow-init", 1, (task("lost", state="complete", desired="shutdown"),))
    back = [
        init,
        ServiceState(
            "worker", 2, (task("a"), task("b"), task("lost", state="running", desired="shutdown"))
        ),
    ]
    assert recovered(back, "lost", TWO_SURVIVORS)
    still_there = [ServiceState("worker", 2, (task("a"), task("lost")))]
    assert not recovered(still_there, "lost", TWO_SURVIVORS)
    short = [ServiceState("worker", 2, (task("a"),))]
    assert not recovered(short, "lost", TWO_SURVIVORS)
    assert not recovered([], "lost", TWO_SURVIVORS)


def test_recovered_with_what_the_surviving_nodes_can_hold() -> None:
    # Three sentinels, one per node: two on two nodes; not one fewer.
    assert recovered(
        [ServiceState("redis-sentinel", 3, (task("a"), task("b")))], "lost", TWO_SURVIVORS
    )
    assert not recovered([ServiceState("redis-sentinel", 3, (task("a"),))], "lost", TWO_SURVIVORS)
    # The Redis replica's only node was lost: none can run.
    assert recovered([ServiceState("redis-replica", 1, ())], "lost", TWO_SURVIVORS)
    # A service pinned to a label some survivor carries must be back.
    assert not recovered([ServiceState("worker", 2, (task("b"),))], "lost", TWO_SURVIVORS)


def test_capacity_of_the_nodes_for_each_kind_of_service() -> None:
    assert capacity("scheduler", TWO_SURVIVORS) == 2
    assert capacity("scheduler", []) == 0
    assert capacity("worker", TWO_SURVIVORS) is None
    assert capacity("worker", [{"airflow-ha.workers": "false"}]) == 0
    assert capacity("redis-replica", TWO_SURVIVORS) == 0
    # One member of the MySQL group per node labelled for it.
    assert capacity("mysql-server", TWO_SURVIVORS) == 1
    assert capacity("mysql-server", [{"airflow-ha.mysql": "true"}] * 3) == 3
    assert capacity("mysql", TWO_SURVIVORS) == 2
    assert capacity("flower", []) is None


def test_a_task_rejected_for_want_of_an_image_is_named_with_its_node() -> None:
    fine = ServiceState("worker", 1, (task("a"),))
    rejected = ServiceState(
        "redis",
        1,
        (task("n2", state="rejected", desired="shutdown", error="No such image: redis:8 "),),
    )
    assert image_problem([fine], DEPLOYED) is None
    assert (
        image_problem([fine, rejected], DEPLOYED)
        == "node n2 lacks the image of redis (No such image: redis:8)"
    )


def test_a_rejection_made_at_the_moment_of_the_deploy_counts() -> None:
    at_deploy = task(
        "n2", state="rejected", desired="shutdown", error="No such image: x", created=DEPLOYED
    )
    assert image_problem([ServiceState("redis", 1, (at_deploy,))], DEPLOYED) is not None


def test_a_task_that_failed_for_another_reason_is_no_image_problem() -> None:
    crashed = ServiceState(
        "scheduler",
        2,
        (task("n1", state="failed", desired="shutdown", error="task: non-zero exit (1)"),),
    )
    assert image_problem([crashed], DEPLOYED) is None


def test_a_rejection_from_before_the_deploy_is_history() -> None:
    old = task(
        "n2",
        state="rejected",
        desired="shutdown",
        error="No such image: redis:8",
        created=DEPLOYED - timedelta(hours=1),
    )
    assert image_problem([ServiceState("redis", 1, (old, task("n2")))], DEPLOYED) is None


def vanishing_ps(fails: list[bytes]) -> tuple[Any, list[str]]:
    """A client whose `service ps` fails with each of `fails` in turn, then
    answers with one task (python-on-whales reads a task when it is listed or
    asked for a field: either may fail)."""
    calls: list[str] = []
    task = SimpleNamespace(
        node_id="n1",
        desired_state="running",
        created_at=DEPLOYED,
        slot=2,
        status=SimpleNamespace(
            state="running", err=None, container_status=SimpleNamespace(container_id="c" * 64)
        ),
    )

    def ps(service: str) -> list[Any]:
        calls.append(service)
        if len(calls) <= len(fails):
            raise DockerException(["docker", "inspect"], 1, b"", fails[len(calls) - 1])
        return [task]

    return SimpleNamespace(service=SimpleNamespace(ps=ps)), calls


def test_tasks_are_read_again_when_one_vanishes_before_it_is_read() -> None:
    client, calls = vanishing_ps([b"Error: No such object: srnve2i7", b"Error: No such object: x"])
    assert deploy.service_tasks(client, "st_worker", {"n1": "node-1"}) == [
        TaskState("node-1", "running", "running", "", DEPLOYED, slot=2, container_id="c" * 64)
    ]
    assert calls == ["st_worker"] * 3


def test_a_third_vanishing_or_another_error_is_raised() -> None:
    client, calls = vanishing_ps([b"Error: No such object: a"] * 3)
    with pytest.raises(DockerException, match="No such object"):
        deploy.service_tasks(client, "st_worker", {})
    assert len(calls) == 3
    client, calls = vanishing_ps([b"Cannot connect to the Docker daemon"])
    with pytest.raises(DockerException, match="Cannot connect"):
        deploy.service_tasks(client, "st_worker", {})
    assert len(calls) == 1
