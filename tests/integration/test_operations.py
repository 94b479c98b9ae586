"""Operating the cluster: what `docker inspect` says about every container."""

import pytest

from .conftest import Cluster

pytestmark = pytest.mark.integration

ROTATION = ("json-file", {"max-size": "10m", "max-file": "3"})


def test_every_container_rotates_its_logs(cluster: Cluster) -> None:
    containers = cluster.stack.docker.compose.ps(all=True)
    assert len(containers) >= 11
    logging = {
        c.name: (log.type, log.config) if (log := c.host_config.log_config) else None
        for c in containers
    }
    assert {name: how for name, how in logging.items() if how != ROTATION} == {}
