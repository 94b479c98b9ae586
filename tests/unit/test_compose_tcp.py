"""docker-compose.yaml: every container that holds MySQL connections notices a
peer that vanished (a host lost or cut off: no FIN, no RST) within seconds,
not the kernel's 15 minutes (data unacknowledged) or 2 hours (idle)."""

from typing import Any

import pytest
import yaml

from airflow_ha.paths import COMPOSE_FILE

SERVICES: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
AIRFLOW = sorted(n for n, s in SERVICES.items() if "AIRFLOW_IMAGE" in s.get("image", ""))


def test_every_airflow_component_is_found() -> None:
    assert {"scheduler", "api-server", "dag-processor", "triggerer", "worker"} <= set(AIRFLOW)


@pytest.mark.parametrize("name", [*AIRFLOW, "mysql"])
def test_a_vanished_peer_is_noticed_within_seconds(name: str) -> None:
    sysctls = {key: int(value) for key, value in SERVICES[name].get("sysctls", {}).items()}
    idle_s = sysctls.get("net.ipv4.tcp_keepalive_time", 7200) + sysctls.get(
        "net.ipv4.tcp_keepalive_intvl", 75
    ) * sysctls.get("net.ipv4.tcp_keepalive_probes", 9)
    assert idle_s <= 20
    # 6 retransmissions from a 200 ms timeout, doubling: about 25 s.
    assert sysctls.get("net.ipv4.tcp_retries2", 15) <= 6
