"""The Swarm stack's MySQL group as its members see themselves: each member's
role and state in the group (performance_schema.replication_group_members),
asked with the mysql client inside the member's own container, on whichever
engine runs it, as the check user the router uses
(compose/mysql/mysql-server.sh)."""

from collections.abc import Sequence
from dataclasses import dataclass

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from airflow_ha.swarm.engines import Engine, service_containers

SERVICE = "mysql-server"
MEMBERS = 3  # compose/swarm.yaml, MYSQL_SERVERS
_ASK_SELF = [
    *("mysql", "-uhacheck", "--password=", "-h127.0.0.1", "-NBe"),
    "SELECT MEMBER_ROLE, MEMBER_STATE FROM performance_schema.replication_group_members "
    "WHERE MEMBER_ID = @@server_uuid",
]


@dataclass(frozen=True)
class Member:
    """A running member's container, and its role and state as it says
    ("" when it does not answer, or is in no group)."""

    client: DockerClient
    container: str
    role: str
    state: str

    @property
    def primary(self) -> bool:
        return self.role == "PRIMARY" and self.state == "ONLINE"


def parse_self(answer: str) -> tuple[str, str]:
    """`mysql -N -B`'s answer to the query about itself -> (role, state)."""
    fields = answer.split()
    return (fields[0], fields[1]) if len(fields) == 2 else ("", "")


def whole(members: Sequence[Member], count: int = MEMBERS) -> bool:
    """`count` members answer ONLINE, and exactly one of them is the primary."""
    online = [m for m in members if m.state == "ONLINE"]
    return len(online) == count and sum(m.primary for m in online) == 1


class StackMySQL:
    def __init__(self, engines: Sequence[Engine], stack: str) -> None:
        self.engines = engines
        self.stack = stack

    def members(self) -> list[Member]:
        """Every running member's container with its answer; engines that do
        not answer (a lost host) are passed over."""
        found = []
        for client, container in service_containers(self.engines, self.stack, SERVICE):
            try:
                answer = str(client.container.execute(container, _ASK_SELF))
            except DockerException:
                answer = ""  # starting, or stopped since it was listed
            found.append(Member(client, container, *parse_self(answer)))
        return found

    def primary(self) -> Member | None:
        return next((m for m in self.members() if m.primary), None)

    def whole(self) -> bool:
        return whole(self.members())
