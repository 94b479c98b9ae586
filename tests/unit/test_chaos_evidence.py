"""chaos/evidence.py: judging Docker's and MySQL's record of a fault, without Docker."""

from dataclasses import replace

import pytest

from airflow_ha.chaos import evidence
from airflow_ha.chaos.evidence import ContainerMark, Restart

from .chaos_fakes import NEVER, as_container, at, container, mark_of

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
