"""chaos/evidence.py: judging Docker's and MySQL's record of a fault, without Docker."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from python_on_whales.exceptions import DockerException

from airflow_ha.chaos import evidence
from airflow_ha.chaos.evidence import ContainerMark, Restart
from airflow_ha.chaos.workload import DAG_ID
from airflow_ha.secret_files import SECRETS_MOUNT
from airflow_ha.stack import LOG_LINES_ON_FAILURE

from .chaos_fakes import (
    NEVER,
    FakeContainer,
    FakeStack,
    as_container,
    as_stack,
    at,
    container,
    mark_of,
)

BEFORE = ContainerMark("id1", "airflow-ha-scheduler-1", "scheduler", "running", 2, at(-60), NEVER)


def test_container_mark_reads_what_docker_says() -> None:
    c = container("worker", "w1", restart_count=None)
    c.state.finished_at = at(-70)
    assert ContainerMark.of(as_container(c)) == ContainerMark(
        "id-worker-w1", "airflow-ha-worker-w1", "worker", "running", 0, at(-3600), at(-70)
    )
    c.config.labels = None
    assert mark_of(c).service == ""


@pytest.mark.parametrize(
    ("before_finished", "now_finished", "expected"),
    [
        (NEVER, at(0.3), at(0.3)),  # first death of a container that never stopped
        (at(-50), at(0.3), at(0.3)),
        (None, at(0.3), at(0.3)),
        (at(-50), at(-50), None),  # FinishedAt unchanged: it did not die
        (at(-50), at(-51), None),
        (NEVER, NEVER, None),
        (at(-50), None, None),
    ],
)
def test_died_at_is_a_finished_at_newer_than_before(
    before_finished: object, now_finished: object, expected: object
) -> None:
    before = replace(BEFORE, finished_at=before_finished)  # type: ignore[arg-type]
    now = replace(BEFORE, finished_at=now_finished)  # type: ignore[arg-type]
    assert evidence.died_at(before, now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (BEFORE, None),
        (None, "removed"),
        (replace(BEFORE, restart_count=3), "restarted 1 time by its restart policy"),
        (replace(BEFORE, restart_count=4), "restarted 2 times by its restart policy"),
        (replace(BEFORE, restart_count=5), "restarted 3 times by its restart policy"),
        (replace(BEFORE, started_at=at(5)), "restarted"),
        (replace(BEFORE, status="exited"), "now exited"),
        (
            replace(BEFORE, status="restarting", restart_count=3),
            "restarted 1 time by its restart policy",
        ),
        (replace(BEFORE, finished_at=at(1)), None),  # FinishedAt alone: judged by the rest
    ],
)
def test_what_happened(now: ContainerMark | None, expected: str | None) -> None:
    assert evidence.what_happened(BEFORE, now) == expected


def test_unexpected_restarts_skip_the_target_and_containers_not_running_before() -> None:
    target = replace(BEFORE, id="t", name="z-target")
    init = replace(BEFORE, id="i", name="a-init", status="exited")
    steady = replace(BEFORE, id="s", name="b-steady", service="redis")
    crashed = replace(BEFORE, id="c", name="c-crashed", service="triggerer")
    gone = replace(BEFORE, id="g", name="d-gone", service="worker")
    before = {m.id: m for m in (target, init, steady, crashed, gone)}
    after = {
        "t": replace(target, restart_count=9),
        "i": replace(init, started_at=at(1)),
        "s": steady,
        "c": replace(crashed, restart_count=3),
    }
    assert evidence.unexpected_restarts(before, after, "t") == [
        Restart("c-crashed", "triggerer", "restarted 1 time by its restart policy"),
        Restart("d-gone", "worker", "removed"),
    ]
    # Without a target (none was found), every change counts.
    assert [r.container for r in evidence.unexpected_restarts(before, after, None)] == [
        "c-crashed",
        "d-gone",
        "z-target",
    ]


def test_unexpected_restarts_are_listed_by_container_name() -> None:
    # Docker's ids sort the other way round.
    names = ["airflow-ha-api-server-1", "airflow-ha-redis-1", "airflow-ha-worker-1"]
    before = {f"{9 - i}f3a": replace(BEFORE, id=f"{9 - i}f3a", name=n) for i, n in enumerate(names)}
    assert [r.container for r in evidence.unexpected_restarts(before, {}, None)] == names


@pytest.mark.parametrize(
    ("before", "after", "expected"), [(3, 3, 0), (3, 7, 4), (0, 2, 2), (9, 2, 2)]
)
def test_deadlocks_during_counts_from_zero_again_after_a_mysql_restart(
    before: int, after: int, expected: int
) -> None:
    assert evidence.deadlocks_during(before, after) == expected


def test_parse_decisions_reads_mysql_batch_output_as_utc() -> None:
    tsv = "2026-03-01 12:00:09.500000\tsched-b\n\n2026-03-01 11:59:58.000000\tsched-a\n"
    assert evidence.parse_decisions(tsv) == [(at(-2), "sched-a"), (at(9.5), "sched-b")]
    assert evidence.parse_decisions("") == []


def test_stall_limit_is_airflows_rescue_of_a_lost_message_plus_a_margin() -> None:
    env = {
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "30",
    }
    assert evidence.stall_limit(env) == 300 + 30 + evidence.STALL_MARGIN_S
    # Airflow's defaults where the cluster sets nothing.
    assert evidence.stall_limit({}) == 600 + 120 + evidence.STALL_MARGIN_S


def test_env_of_splits_on_the_first_equals_sign() -> None:
    c = container("scheduler", "s1")
    c.config.env = ["A=1", "B=x=y", "EMPTY="]
    assert evidence.env_of(as_container(c)) == {"A": "1", "B": "x=y", "EMPTY": ""}


@pytest.mark.parametrize(
    "value", ["manual__2026-12-01T23:10:01.123456+00:00", "scheduled__x", "run-1"]
)
def test_sql_string_quotes_run_ids(value: str) -> None:
    assert evidence._sql_string(value) == f"'{value}'"


@pytest.mark.parametrize("value", ["x' OR '1'='1", "a;b", "", "a b"])
def test_sql_string_refuses_anything_else(value: str) -> None:
    with pytest.raises(ValueError, match="unexpected characters"):
        evidence._sql_string(value)


@pytest.mark.parametrize(
    ("service", "logs", "expected"),
    [
        (
            "scheduler",
            "OperationalError: (2002, \"Can't connect to server on 'mysql' (115)\")",
            True,
        ),
        (
            "triggerer",
            "PendingRollbackError: Can't reconnect until invalid transaction is rolled back",
            True,
        ),
        ("dag-processor", "(2013, 'Lost connection to MySQL server during query')", True),
        # As MySQL 9's client words it (seen in make chaos).
        (
            "scheduler",
            "(MySQLdb.OperationalError) (2013, 'Lost connection to server during query')",
            True,
        ),
        ("scheduler", "(2006, 'Server has gone away')", True),  # in any case
        ("scheduler", "(2006, 'MySQL server has gone away')", True),
        ("scheduler", "KeyError: 'dag_id'", False),  # a crash of its own
        ("worker", "Can't connect to server on 'mysql'", False),  # workers must ride it out
        ("api-server", "MySQL server has gone away", False),
    ],
)
def test_a_lost_mysql_explains_only_its_dependents_exits_with_the_sign_in_their_logs(
    service: str, logs: str, expected: bool
) -> None:
    restart = Restart("c", service, "restarted 1 time by its restart policy", logs)
    assert evidence.LOST_MYSQL.explains(restart) is expected


# --- DockerObserver: gathering the facts from a fake stack that answers as Docker does ----


def observe(*containers: FakeContainer) -> tuple[evidence.DockerObserver, FakeStack]:
    stack = FakeStack(*containers)
    stack.docker.compose.like_docker = True
    return evidence.DockerObserver(as_stack(stack)), stack


def test_marks_cover_every_container_of_the_project_stopped_ones_too() -> None:
    up = container("worker", "w1")
    init = container("airflow-init", "i1", status="exited")  # its exit is no crash
    observer, _ = observe(up, init)
    assert observer.marks() == {up.id: mark_of(up), init.id: mark_of(init)}


def test_mark_inspects_the_container_asked_for() -> None:
    a, b = container("worker", "w1"), container("worker", "w2", restart_count=4)
    b.state.finished_at = at(-5)
    observer, _ = observe(a, b)
    assert observer.mark(b.id) == mark_of(b)
    assert observer.mark(b.id).restart_count == 4


def test_logs_are_the_last_lines_between_since_and_until() -> None:
    c = container("scheduler", "s1")
    observer, stack = observe(c)
    lines = [f"line {i}" for i in range(LOG_LINES_ON_FAILURE + 15)]
    stack.docker.container.log_text[c.name] = "\n".join(lines) + "\n"

    assert observer.logs(c.name, at(-5), at(7)).splitlines() == lines[-LOG_LINES_ON_FAILURE:]
    assert stack.docker.container.logs_asked == [(c.name, at(-5), at(7))]
    # Fewer lines than the limit: all of them; no `until`: up to now.
    stack.docker.container.log_text[c.name] = "one\ntwo"
    assert observer.logs(c.name, at(-5), None) == "one\ntwo"
    assert stack.docker.container.logs_asked[-1] == (c.name, at(-5), None)


def test_logs_docker_cannot_give_say_why_instead_of_failing_the_run() -> None:
    c = container("scheduler", "s1")
    observer, stack = observe(c)
    error = DockerException(["docker", "logs", c.name], 1, b"", b"No such container")
    stack.docker.container.logs_error = error
    assert observer.logs(c.name, at(-5), at(7)) == f"(no logs: {error})"


# A `mysql` client that stands in for the one in the MySQL container: it records
# its arguments and the password it got, and prints the rows the test gave for the
# first table its SQL names (as `mysql -N -B` prints them: no header, tab-separated).
FAKE_MYSQL = """#!{python}
import json, os, sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "calls.jsonl", "a") as calls:
    calls.write(json.dumps({{"password": os.environ.get("MYSQL_PWD"), "args": sys.argv[1:]}}))
    calls.write("\\n")
for name, rows in json.loads((here / "answers.json").read_text()):
    if name in sys.argv[-1]:
        sys.stdout.write(rows)
        break
"""
PASSWORDS = {"mysql_password": "airflow-secret", "mysql_root_password": "root-secret"}


@dataclass
class FakeMysql:
    """The mysql container: its `sh -c` runs for real, with FAKE_MYSQL as `mysql`
    and the passwords in secret files, as in the real container (there in
    /run/secrets, here in a folder of the test's)."""

    bin: Path
    container: FakeContainer

    def answers(self, *pairs: tuple[str, str]) -> None:
        """(a name the SQL contains, what mysql prints then), first match wins."""
        (self.bin / "answers.json").write_text(json.dumps(pairs))

    def calls(self) -> list[dict[str, Any]]:
        path = self.bin / "calls.jsonl"
        lines = path.read_text().splitlines() if path.exists() else []
        return [json.loads(line) for line in lines]

    def run(self, command: list[str]) -> str:
        secrets = self.bin / "secrets"
        secrets.mkdir(exist_ok=True)
        for name, value in PASSWORDS.items():
            (secrets / name).write_text(value)
        command = [part.replace(SECRETS_MOUNT, str(secrets)) for part in command]
        env = {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return done.stdout.removesuffix("\n")  # as python-on-whales returns it


@pytest.fixture
def mysql(tmp_path: Path) -> FakeMysql:
    script = tmp_path / "mysql"
    script.write_text(FAKE_MYSQL.format(python=sys.executable))
    script.chmod(0o755)
    fake = FakeMysql(tmp_path, container("mysql", "db"))
    fake.container.answer = fake.run
    fake.answers()
    return fake


def test_deadlock_count_reads_innodbs_counter_as_root_without_the_password_in_the_command(
    mysql: FakeMysql,
) -> None:
    mysql.answers(("INNODB_METRICS", "17\n"))
    observer, _ = observe(container("worker", "w1"), mysql.container)

    assert observer.deadlock_count() == 17
    (call,) = mysql.calls()
    # Root (the counter needs the PROCESS privilege), its password read inside the
    # container; batch output without column names, the SQL passed intact.
    assert call == {
        "password": "root-secret",
        "args": ["-uroot", "-N", "-B", "airflow", "-e", evidence.DEADLOCKS_SQL],
    }
    executed = mysql.container.executed[0]
    assert all(value not in part for value in PASSWORDS.values() for part in executed)


def test_deadlock_count_of_an_empty_answer_is_zero(mysql: FakeMysql) -> None:
    observer, _ = observe(mysql.container)
    assert observer.deadlock_count() == 0


def test_deadlock_count_needs_a_running_mysql(mysql: FakeMysql) -> None:
    mysql.container.state.status = "restarting"
    observer, _ = observe(container("worker", "w1"), mysql.container)
    with pytest.raises(LookupError, match=r"^no running mysql container$"):
        observer.deadlock_count()
    assert mysql.calls() == []


def test_stall_limit_reads_the_environment_of_a_running_scheduler() -> None:
    restarting = container("scheduler", "s0", status="restarting")
    restarting.config.env = ["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=1"]
    worker = container("worker", "w1")
    worker.config.env = ["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=2"]
    first, second = container("scheduler", "s1"), container("scheduler", "s2")
    first.config.env = ["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=300"]
    second.config.env = ["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT=400"]
    observer, stack = observe(restarting, worker, first, second)

    assert observer.stall_limit() == 300 + 120 + evidence.STALL_MARGIN_S
    assert stack.docker.compose.asked == [["scheduler"]]


def test_queue_decisions_read_both_task_tables_as_the_airflow_user(mysql: FakeMysql) -> None:
    mysql.answers(
        ("task_instance_history", "2026-03-01 11:59:58.000000\tsched-a\n"),
        (
            "task_instance",
            "2026-03-01 12:00:09.500000\tsched-b\n2026-03-01 12:00:01.250000\tsched-a\n",
        ),
    )
    observer, _ = observe(mysql.container)

    decisions = observer.queue_decisions(DAG_ID, ["run-1", "manual__2026-03-01T12:00:00+00:00"])

    assert decisions == [(at(-2), "sched-a"), (at(1.25), "sched-a"), (at(9.5), "sched-b")]
    runs = "'run-1', 'manual__2026-03-01T12:00:00+00:00'"
    assert mysql.calls() == [
        {
            "password": "airflow-secret",
            "args": [
                "-uairflow",
                "-N",
                "-B",
                "airflow",
                "-e",
                evidence.DECISIONS_SQL.format(table=table, dag=f"'{DAG_ID}'", runs=runs),
            ],
        }
        for table in ("task_instance", "task_instance_history")
    ]


def test_queue_decisions_of_no_runs_ask_nothing(mysql: FakeMysql) -> None:
    observer, _ = observe(mysql.container)
    assert observer.queue_decisions(DAG_ID, []) == []
    assert mysql.calls() == []


def test_queue_decisions_refuse_a_run_id_that_could_change_the_query(mysql: FakeMysql) -> None:
    observer, _ = observe(mysql.container)
    with pytest.raises(ValueError, match="unexpected characters"):
        observer.queue_decisions(DAG_ID, ["run-1", "x') OR ('1'='1"])
    assert mysql.calls() == []
