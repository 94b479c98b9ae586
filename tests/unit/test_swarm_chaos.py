"""swarm/chaos.py, swarm/redis.py and swarm/mysql.py: which host a fault
takes, and the verdict."""

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_ha.chaos.workload import RunSnapshot, TaskSnapshot
from airflow_ha.swarm import chaos
from airflow_ha.swarm.chaos import (
    HOST_KILL,
    HOST_PARTITION,
    MYSQL_PRIMARY_KILL,
    REDIS_PRIMARY_KILL,
    Seen,
    choose_host,
    judge,
    retries,
)
from airflow_ha.swarm.mysql import Member, parse_self, whole
from airflow_ha.swarm.redis import other_server, settled

AT = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
LOST = frozenset({"c0ffee000001"})

# The harness's placements: a MySQL member on each node, lb on node 1, the
# Redis primary on 2, its replica on 3.
PLACEMENTS = {
    "node-1": {"mysql-server", "mysql", "lb", "scheduler", "redis-sentinel"},
    "node-2": {"mysql-server", "redis", "worker", "worker-heavy", "redis-sentinel", "api-server"},
    "node-3": {"mysql-server", "mysql", "redis-replica", "worker", "redis-sentinel", "scheduler"},
}


def ti(
    try_number: int,
    start_s: float | None,
    host: str = "beef00000002",
    task: str = "t",
    queued_s: float | None = None,
) -> TaskSnapshot:
    start = None if start_s is None else AT + timedelta(seconds=start_s)
    queued = None if queued_s is None else AT + timedelta(seconds=queued_s)
    return TaskSnapshot(
        "run1", task, -1, "success", try_number, start, None, host, "", None, queued
    )


def run(state: str = "success", end_s: float | None = 100) -> RunSnapshot:
    end = None if end_s is None else AT + timedelta(seconds=end_s)
    return RunSnapshot("run1", state, AT - timedelta(seconds=30), end)


SEEN = Seen(
    "node-2", AT, "died", LOST, promoted_s=6.0, services_back_s=45.0, let_back_s=90.0, whole_s=120.0
)


def seen(**changes: Any) -> Seen:
    """What a runner saw after a fault on node-2: every recovery, unless `changes` say not."""
    return replace(SEEN, **changes)


def test_other_server_names_the_pair() -> None:
    assert other_server("redis") == "redis-replica"
    assert other_server("redis-replica") == "redis"


@pytest.mark.parametrize(
    ("fault", "primary", "host"),
    [
        (HOST_KILL, "redis", "node-2"),
        (HOST_PARTITION, "redis", "node-3"),
        (HOST_KILL, "redis-replica", "node-3"),
        (HOST_PARTITION, "redis-replica", "node-2"),
    ],
)
def test_a_kill_takes_the_primarys_host_a_partition_the_replicas(
    fault: str, primary: str, host: str
) -> None:
    assert choose_host(fault, PLACEMENTS, primary) == host


def test_no_host_with_a_single_point_or_without_a_worker_is_taken() -> None:
    with_lb = {**PLACEMENTS, "node-2": PLACEMENTS["node-2"] | {"lb"}}
    assert choose_host(HOST_KILL, with_lb, "redis") is None
    with_lb = {**PLACEMENTS, "node-3": PLACEMENTS["node-3"] | {"lb"}}
    assert choose_host(HOST_PARTITION, with_lb, "redis") is None
    no_worker = {**PLACEMENTS, "node-2": PLACEMENTS["node-2"] - {"worker"}}
    assert choose_host(HOST_KILL, no_worker, "redis") is None


def test_retries_are_later_tries_started_after_the_fault_earliest_first() -> None:
    tasks = [
        ti(2, 30.0, task="late", queued_s=17.06),
        ti(2, 12.54, task="early"),
        ti(2, 0.0, task="at-the-fault"),
        ti(1, 40.0, task="first-try"),
        ti(2, -5.0, task="retried-before"),
        ti(2, None, task="not-started"),
    ]
    assert [(r.task, r.after_s, r.queued_s) for r in retries(tasks, AT)] == [
        ("early[-1] of run1", 12.5, None),
        ("late[-1] of run1", 30.0, 17.1),
    ]


def test_nothing_lost_is_ok() -> None:
    result = judge(HOST_KILL, seen(whole_s=None), [run(), run()], [ti(2, 20.0)])
    assert result.problems == []
    assert (result.ok, result.verdict) == (True, "ok")
    assert (result.last_again_s, result.runs_done_s) == (20.0, 100.0)


def test_not_injected_is_the_only_problem_named() -> None:
    nothing = Seen("node-2", None, "no task ran on node-2", LOST)
    result = judge(HOST_KILL, nothing, [run("running", None)], [ti(2, 20.0)])
    assert result.problems == ["not injected (no task ran on node-2)"]
    assert result.verdict == "not injected"
    assert (result.retried, result.runs_done_s) == ([], None)
    payload = result.as_json()
    assert (payload["injected_at"], payload["verdict"]) == (None, "not injected")


def test_runs_done_counts_failed_runs_too_to_the_last_end() -> None:
    result = judge(HOST_KILL, seen(), [run(end_s=50.0), run("failed", 100.04)], [])
    assert result.runs_done_s == 100.0
    assert judge(HOST_KILL, seen(manager_unanswered=3), [run()], []).manager_unanswered == 3


def test_a_failed_or_unfinished_run_fails_the_fault() -> None:
    result = judge(HOST_KILL, seen(), [run(), run("failed"), run("running", None)], [])
    assert result.problems == ["1 failed, 1 stuck of 3 runs"]
    assert result.verdict == "FAILED"
    assert result.runs_done_s is None


@pytest.mark.parametrize(
    ("fault", "missing", "problem"),
    [
        (REDIS_PRIMARY_KILL, "promoted_s", "the Redis replica was not promoted"),
        (HOST_KILL, "promoted_s", "the Redis replica was not promoted"),
        (HOST_KILL, "services_back_s", "the services did not come back on the other hosts"),
        (HOST_PARTITION, "services_back_s", "the services did not come back on the other hosts"),
        (HOST_PARTITION, "whole_s", "node-2 not whole again"),
        (REDIS_PRIMARY_KILL, "whole_s", "node-2 not whole again"),
        (MYSQL_PRIMARY_KILL, "promoted_s", "the MySQL group elected no new primary"),
        (MYSQL_PRIMARY_KILL, "whole_s", "node-2 not whole again"),
    ],
)
def test_each_fault_needs_its_recovery(fault: str, missing: str, problem: str) -> None:
    result = judge(fault, seen(**{missing: None}), [run()], [])
    assert result.problems == [problem]


@pytest.mark.parametrize(
    ("fault", "missing"),
    [
        (REDIS_PRIMARY_KILL, "services_back_s"),
        (MYSQL_PRIMARY_KILL, "services_back_s"),
        (HOST_PARTITION, "promoted_s"),
        (HOST_KILL, "whole_s"),
    ],
)
def test_a_recovery_a_fault_does_not_cause_is_not_asked_for(fault: str, missing: str) -> None:
    assert judge(fault, seen(**{missing: None}), [run()], []).ok


def test_a_retry_on_the_lost_host_fails_the_fault() -> None:
    result = judge(HOST_KILL, seen(), [run()], [ti(2, 20.0, host="c0ffee000001")])
    assert result.problems == ["1 task(s) ran on the lost host while it was lost"]
    # A killed host is lost for good, whatever `let_back_s` says.
    late = judge(HOST_KILL, seen(let_back_s=90.0), [run()], [ti(2, 95.0, host="c0ffee000001")])
    assert len(late.on_lost_host) == 1


def test_a_partitioned_host_may_take_tasks_once_let_back() -> None:
    during = ti(2, 89.9, host="c0ffee000001", task="during")
    after = ti(2, 90.0, host="c0ffee000001", task="after")
    result = judge(HOST_PARTITION, seen(let_back_s=90.0), [run()], [during, after])
    assert [r.task for r in result.on_lost_host] == ["during[-1] of run1"]


def test_times_above_the_goals_are_noted_not_failed() -> None:
    result = judge(HOST_KILL, seen(promoted_s=15.1), [run()], [ti(2, 60.1), ti(2, 60.0)])
    assert result.ok
    assert result.notes == [
        "a task running again after 60.1 s: above the 60 s goal",
        "promoted after 15.1 s: above the 15 s goal",
    ]
    at_goal = judge(HOST_KILL, seen(promoted_s=15.0), [run()], [ti(2, 60.0)])
    assert at_goal.notes == []
    # A new MySQL primary's goal is 30 s; a partition promotes nothing.
    assert judge(MYSQL_PRIMARY_KILL, seen(promoted_s=30.0), [run()], []).notes == []
    assert judge(MYSQL_PRIMARY_KILL, seen(promoted_s=30.1), [run()], []).notes == [
        "promoted after 30.1 s: above the 30 s goal"
    ]
    assert judge(HOST_PARTITION, seen(promoted_s=99.0), [run()], []).notes == []


def test_table_and_json_carry_the_verdict(tmp_path: Path) -> None:
    good = judge(
        HOST_PARTITION, seen(), [run()], [ti(2, 20.0, queued_s=16.0), ti(2, 8.0, queued_s=7.0)]
    )
    bad = judge(HOST_KILL, seen(services_back_s=None), [run("failed")], [])
    text = chaos.format_table([good, bad])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["FAULT", "TARGET", "RUNS"]
    assert "ok" in lines[1].split()
    assert "let back after 90.0 s" in lines[1]
    assert "FAILED" in lines[2].split()
    assert "1 failed, 0 stuck of 1 runs" in lines[2]
    assert lines[1].split()[3:8] == ["2", "20.0", "6.0", "45.0", "ok"]
    assert (
        lines[1]
        .split("ok", 1)[1]
        .strip()
        .startswith("the last task to run again queued after 16.0 s; let back after 90.0 s")
    )
    assert "whole again after 120.0 s; runs done after 100.0 s" in lines[1]
    assert lines[2].split()[3:7] == ["0", "-", "6.0", "-"]
    redis = judge(REDIS_PRIMARY_KILL, seen(manager_unanswered=2), [run()], [])
    assert (
        chaos.format_table([redis])
        .splitlines()[1]
        .endswith(
            "a replica in sync after 120.0 s; runs done after 100.0 s; "
            "the Swarm's managers did not answer 2 time(s)"
        )
    )
    mysql = judge(MYSQL_PRIMARY_KILL, seen(), [run()], [])
    assert "the group whole again after 120.0 s" in chaos.format_table([mysql])
    path = tmp_path / "chaos.json"
    chaos.write_json([good, bad], path)
    payload = json.loads(path.read_text())
    assert [p["ok"] for p in payload] == [True, False]
    assert (payload[0]["last_again_s"], payload[0]["last_queued_s"]) == (20.0, 16.0)
    assert payload[1]["last_queued_s"] is None
    assert [p["verdict"] for p in payload] == ["ok", "FAILED"]
    assert payload[0]["injected_at"] == AT.isoformat()
    assert payload[1]["problems"][0] == "1 failed, 0 stuck of 1 runs"


REPLICAS_OK = "name redis-replica ip 10.0.0.5 port 6379 flags slave"


@pytest.mark.parametrize(
    ("named", "replication", "replicas", "expected"),
    [
        ("redis", "role:slave\nmaster_link_status:up", REPLICAS_OK, True),
        ("redis-replica", "master_link_status:up", REPLICAS_OK, False),
        ("redis", "master_link_status:down", REPLICAS_OK, False),
        ("redis", "master_link_status:up", "", False),
        ("redis", "master_link_status:up", REPLICAS_OK + ",s_down", False),
        ("redis", "master_link_status:up", REPLICAS_OK + ",disconnected", False),
        ("redis", "master_link_status:up", REPLICAS_OK.replace("slave", "slave,o_down"), False),
    ],
)
def test_redis_is_settled_when_the_replica_follows_and_could_be_promoted(
    named: str, replication: str, replicas: str, expected: bool
) -> None:
    assert settled(named, "redis", replication, replicas) is expected


def test_a_mysql_member_says_its_role_and_state() -> None:
    assert parse_self("PRIMARY\tONLINE\n") == ("PRIMARY", "ONLINE")
    assert parse_self("SECONDARY\tRECOVERING") == ("SECONDARY", "RECOVERING")
    # Not in a group (no row), or no answer.
    assert parse_self("") == ("", "")
    assert parse_self("\tOFFLINE") == ("", "")


def member(role: str, state: str = "ONLINE") -> Member:
    return Member(None, "c", role, state)  # type: ignore[arg-type]


def test_the_group_is_whole_with_every_member_online_and_one_primary() -> None:
    group = [member("PRIMARY"), member("SECONDARY"), member("SECONDARY")]
    assert whole(group)
    assert member("PRIMARY").primary
    assert not member("PRIMARY", "RECOVERING").primary
    assert not member("SECONDARY").primary
    assert not whole(group[:2])
    assert not whole([*group[:2], member("SECONDARY", "RECOVERING")])
    assert not whole([*group[:2], member("", "")])
    assert not whole([member("PRIMARY"), member("PRIMARY"), member("SECONDARY")])
    assert not whole([member("SECONDARY")] * 3)
    assert whole(group[:2], count=2)


POOL_SERVICES = {"worker", "worker-heavy"}


def test_a_pool_all_on_one_host_is_crowded_when_another_could_run_workers() -> None:
    nodes_of = {
        "worker": ["node-2", "node-2"],
        "worker-heavy": ["node-2"],  # one worker: nowhere to spread it
        "scheduler": ["node-1", "node-1"],  # not a pool
    }
    assert chaos.crowded_pools(nodes_of, POOL_SERVICES, worker_hosts=2) == ["worker"]
    assert chaos.crowded_pools(nodes_of, POOL_SERVICES, worker_hosts=1) == []
    spread = {"worker": ["node-2", "node-3"], "worker-heavy": ["node-3", "node-3", "node-2"]}
    assert chaos.crowded_pools(spread, POOL_SERVICES, worker_hosts=2) == []


def running(task: str, host: str = "") -> TaskSnapshot:
    """A task of the workload: running on `host`, or not started yet (no host)."""
    state = "running" if host else "scheduled"
    return TaskSnapshot("run1", task, -1, state, 1, AT if host else None, None, host, "", None)


THERE = "c0ffee000001"  # in LOST: the target host's container
ELSEWHERE = "beef00000002"


def test_a_host_fault_strikes_at_once_when_a_long_task_runs_there() -> None:
    tasks = [running("long", THERE), running("long"), running("short", ELSEWHERE)]
    assert chaos.strike_now(tasks, LOST, waited_s=0)


def test_a_host_fault_waits_for_a_long_task_that_may_still_come_there() -> None:
    tasks = [running("short", THERE), running("long", ELSEWHERE), running("long")]
    assert not chaos.strike_now(tasks, LOST, waited_s=59.9)
    assert chaos.strike_now(tasks, LOST, waited_s=60)


def test_a_host_fault_takes_any_task_there_once_every_long_task_runs_elsewhere() -> None:
    tasks = [running("short", THERE), running("long", ELSEWHERE), running("long", ELSEWHERE)]
    assert chaos.strike_now(tasks, LOST, waited_s=0)


def test_a_host_fault_never_strikes_a_host_without_a_running_task() -> None:
    idle = [running("short", ELSEWHERE), running("long", ELSEWHERE)]
    assert not chaos.strike_now(idle, LOST, waited_s=600)
    done_there = [ti(1, 0, host=THERE, task="short"), running("long", ELSEWHERE)]  # success
    assert not chaos.strike_now(done_there, LOST, waited_s=600)
    assert not chaos.strike_now([], LOST, waited_s=600)


def test_a_retry_carries_the_host_of_its_earlier_try() -> None:
    task = ti(2, 20.0)
    [known] = retries([task], AT, {chaos.task_key(task): "c0ffee000001"})
    assert known.earlier_host == "c0ffee000001"
    [unknown] = retries([task], AT)
    assert unknown.earlier_host == ""


def test_tasks_that_failed_on_a_host_not_lost_are_noted_not_failed() -> None:
    there, alive, unknown = ti(2, 20.0, task="a"), ti(2, 21.0, task="b"), ti(2, 22.0, task="c")
    earlier = {chaos.task_key(there): "c0ffee000001", chaos.task_key(alive): "beef00000002"}
    result = judge(HOST_KILL, seen(), [run()], [there, alive, unknown], earlier)
    assert result.ok
    assert result.notes == ["1 of the tasks that ran again had run on a host not lost"]
    assert [r.earlier_host for r in result.retried] == ["c0ffee000001", "beef00000002", ""]
    assert [r.task for r in result.failed_where_nothing_was_lost] == ["b[-1] of run1"]
    assert judge(HOST_PARTITION, seen(), [run()], [there], earlier).notes == []
    # A kill of Redis or of MySQL takes no host: every earlier try was on one not lost.
    for fault in (MYSQL_PRIMARY_KILL, REDIS_PRIMARY_KILL):
        killed = judge(fault, seen(), [run()], [there, alive], earlier)
        assert killed.notes == ["2 of the tasks that ran again had run on a host not lost"]
