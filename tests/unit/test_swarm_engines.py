"""The pure choices of the three-engine harness (airflow_ha.swarm.engines)."""

from pathlib import Path

from airflow_ha.swarm.deploy import missing_labels
from airflow_ha.swarm.engines import EngineSet, images_to_load, labels_for
from airflow_ha.swarm.stack_file import node_label


def labels_of(count: int) -> list[dict[str, str]]:
    return [
        {node_label(label): "true" for label in labels_for(i, count)} for i in range(1, count + 1)
    ]


def test_every_number_of_engines_carries_every_label_the_stack_needs() -> None:
    for count in range(1, 6):
        assert missing_labels(labels_of(count)) == [], count


def test_mysql_and_the_two_redis_servers_are_on_three_hosts() -> None:
    assert labels_for(1, 3) == ("lb", "mysql")
    assert labels_for(2, 3) == ("mysql", "redis", "workers")
    assert labels_for(3, 3) == ("mysql", "redis-replica", "workers")
    assert labels_for(4, 5) == ("workers",)
    assert labels_for(5, 5) == ("workers",)
    assert labels_for(1, 2) == ("lb", "mysql", "redis-replica")
    assert labels_for(2, 2) == ("mysql", "redis", "workers")
    assert labels_for(1, 1) == ("lb", "mysql", "redis", "redis-replica", "workers")


def test_engines_are_named_and_reached_by_their_index() -> None:
    engines = EngineSet("p-swarm", 3, Path("/state"))
    assert [e.name for e in engines.engines] == [
        "p-swarm-node-1",
        "p-swarm-node-2",
        "p-swarm-node-3",
    ]
    assert engines.manager.host == "unix:///state/node-1/docker.sock"
    assert engines.network == "p-swarm-hosts"


def test_images_missing_or_in_another_version_are_loaded() -> None:
    wanted = {"airflow": "sha256:new", "mysql": "sha256:m", "redis": "sha256:r"}
    present = {"airflow": "sha256:old", "mysql": "sha256:m"}
    assert images_to_load(wanted, present) == ["airflow", "redis"]
    assert images_to_load(wanted, wanted) == []
