"""The Swarm stack's Redis as its sentinels see it, asked with redis-cli inside
the stack's own containers on whichever engine runs them (the engines of
`swarm-engines up`: a container is reached through its own host's engine)."""

from collections.abc import Sequence

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.swarm.engines import Engine, service_containers

SENTINEL_MASTER = "airflow-ha"  # compose/redis/redis-sentinel.sh
SENTINEL_PORT = 26379
SERVERS = ("redis", "redis-replica")  # a new stack's first primary, then its replica
# The sentinels' flags for a replica they would not promote.
UNPROMOTABLE_FLAGS = ("s_down", "o_down", "disconnected")
_CLI = 'REDISCLI_AUTH="$(cat /run/secrets/redis_password)" exec redis-cli "$@"'


def other_server(server: str) -> str:
    """The other Redis server of the pair."""
    return SERVERS[1] if server == SERVERS[0] else SERVERS[0]


def settled(named_primary: str, primary: str, replication: str, sentinels_replicas: str) -> bool:
    """The sentinels name `primary`, the other server replicates it (its `INFO
    replication` says the link is up), and the sentinels list that server as
    a replica they could promote (`SENTINEL REPLICAS`: no down flag)."""
    replica = other_server(primary)
    return (
        named_primary == primary
        and "master_link_status:up" in replication
        and replica in sentinels_replicas.split()
        and not any(flag in sentinels_replicas for flag in UNPROMOTABLE_FLAGS)
    )


class StackRedis:
    def __init__(self, engines: Sequence[Engine], stack: str) -> None:
        self.engines = engines
        self.stack = stack

    def containers(self, service: str) -> list[tuple[DockerClient, str]]:
        return service_containers(self.engines, self.stack, service)

    def cli(self, service: str, *args: str, port: int = 6379) -> str:
        """redis-cli's answer in a running container of `service`, with the
        stack's password; "" while no container of it answers."""
        for client, container in self.containers(service):
            try:
                return str(
                    client.container.execute(
                        container, ["sh", "-c", _CLI, "-", "-p", str(port), *args]
                    )
                )
            except DockerException:
                continue  # stopped since it was listed
        return ""

    def sentinel(self, *args: str) -> str:
        return self.cli("redis-sentinel", "sentinel", *args, port=SENTINEL_PORT)

    def primary(self) -> str:
        """The server (service name) the sentinels name as the primary; "" when
        no sentinel answers."""
        answer = self.sentinel("get-master-addr-by-name", SENTINEL_MASTER)
        return answer.split()[0] if answer else ""

    def settled(self, primary: str) -> bool:
        return settled(
            self.primary(),
            primary,
            self.cli(other_server(primary), "info", "replication"),
            self.sentinel("replicas", SENTINEL_MASTER),
        )
