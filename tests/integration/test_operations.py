"""Operating the cluster: log rotation, limits, hardening and where the secrets
are, as `docker inspect`, `docker top` and the cgroups show them, and a task
that eats memory killed without harming anything else."""

import json
import subprocess
import textwrap
import uuid

import pytest
from dotenv import dotenv_values
from python_on_whales import Container

from airflow_ha.settings import SECRET_KEYS
from airflow_ha.stack import SERVICE_LABEL
from airflow_ha.verify import run_dags, wait_for_dags

from .conftest import Cluster

pytestmark = pytest.mark.integration

ROTATION = ("json-file", {"max-size": "10m", "max-file": "3"})
GIB = 1024**3


def test_every_container_rotates_its_logs(cluster: Cluster) -> None:
    containers = cluster.stack.docker.compose.ps(all=True)
    assert len(containers) >= 11
    logging = {
        c.name: (log.type, log.config) if (log := c.host_config.log_config) else None
        for c in containers
    }
    assert {name: how for name, how in logging.items() if how != ROTATION} == {}


def test_every_container_has_a_memory_and_a_process_limit(cluster: Cluster) -> None:
    limits = {
        name: (service, bounds.memory_limit_bytes, bounds.pids_limit)
        for name, (service, _, bounds) in cluster.stack.cgroup_bounds().items()
    }
    assert len(limits) >= 10
    unlimited = {name: seen for name, seen in limits.items() if None in seen}
    assert unlimited == {}
    by_service = {service: memory for service, memory, _ in limits.values()}
    assert by_service["api-server"] == 2 * GIB
    assert by_service["worker"] == 3 * GIB
    assert by_service["worker-heavy"] == 4 * GIB
    assert by_service["mysql"] == 2 * GIB


def test_the_host_kernel_would_kill_tasks_first_and_mysql_last(cluster: Cluster) -> None:
    scores = {
        (c.config.labels or {})[SERVICE_LABEL]: c.host_config.oom_score_adj or 0
        for c in cluster.stack.docker.compose.ps()
    }
    assert scores["worker"] == scores["worker-heavy"] == 500
    assert scores["mysql"] == scores["redis"] == 0
    airflow = {"api-server", "scheduler", "triggerer", "dag-processor", "flower", "maintenance"}
    assert {scores[service] for service in airflow} == {200}


# Lab 10's SSH server stands for a remote machine the cluster reaches; sshd
# needs root to switch to the logged-in user, so it is not hardened.
LAB_SERVICES = {"ssh-target"}


def cluster_containers(cluster: Cluster, all: bool = False) -> list[Container]:
    return [
        c
        for c in cluster.stack.docker.compose.ps(all=all)
        if (c.config.labels or {}).get(SERVICE_LABEL) not in LAB_SERVICES
    ]


def test_every_container_is_hardened(cluster: Cluster) -> None:
    containers = cluster_containers(cluster, all=True)
    assert len(containers) >= 11
    weaker = {
        c.name: (hc.cap_drop, hc.cap_add, hc.security_opt, hc.readonly_rootfs)
        for c in containers
        for hc in [c.host_config]
        if hc.cap_drop != ["ALL"]
        or hc.cap_add
        or "no-new-privileges:true" not in (hc.security_opt or [])
        or not hc.readonly_rootfs
    }
    assert weaker == {}


def test_no_process_of_the_cluster_runs_as_root(cluster: Cluster) -> None:
    processes: dict[str, list[list[str]]] = {}
    for container in cluster_containers(cluster):
        top = subprocess.run(
            ["docker", "top", container.name, "-eo", "pid,uid,args"],
            capture_output=True, text=True, check=True,
        ).stdout.splitlines()[1:]  # fmt: skip
        processes[container.name] = [line.split(None, 2) for line in top]
    assert len(processes) >= 10
    assert all(processes.values())  # docker top saw each one's processes
    as_root = {name: [p for p in seen if p[1] == "0"] for name, seen in processes.items()}
    assert {name: seen for name, seen in as_root.items() if seen} == {}


def secret_values_of(cluster: Cluster) -> dict[str, str]:
    values = dotenv_values(cluster.env_file)
    return {key: str(values[key]) for key in SECRET_KEYS}


def test_no_secret_is_in_docker_inspect(cluster: Cluster) -> None:
    secrets = secret_values_of(cluster)
    containers = cluster.stack.docker.compose.ps(all=True)
    assert len(containers) >= 11
    shown = {}
    for container in containers:
        config = container.config
        text = json.dumps([config.env, config.cmd, config.entrypoint, config.labels])
        shown[container.name] = sorted(key for key, value in secrets.items() if value in text)
    assert {name: keys for name, keys in shown.items() if keys} == {}


# Task code on a worker must find none of these: with them it could read every
# connection in the database, or sign itself an API token or a UI session.
NOT_ON_WORKERS = (
    "MYSQL_ROOT_PASSWORD",
    "MYSQL_PASSWORD",
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "FLOWER_PASSWORD",
)
# What a task can read as the worker's user: the secret files and every
# process's environment (the worker's own included).
READABLE_BY_A_TASK = "cat /run/secrets/* /proc/[0-9]*/environ 2>/dev/null; env; true"


def test_a_task_on_a_worker_can_read_no_database_password_or_key(cluster: Cluster) -> None:
    secrets = secret_values_of(cluster)
    workers = [
        c
        for c in cluster.stack.docker.compose.ps()
        if (c.config.labels or {}).get(SERVICE_LABEL) in ("worker", "worker-heavy")
    ]
    assert len(workers) >= 2
    for worker in workers:
        readable = str(worker.execute(["sh", "-c", READABLE_BY_A_TASK]))
        # The broker's password is there (the worker needs it): the probe sees secrets.
        assert secrets["REDIS_PASSWORD"] in readable
        found = [key for key in NOT_ON_WORKERS if secrets[key] in readable]
        assert found == [], f"{worker.name} exposes {found}"


def test_redis_takes_its_password_outside_its_command_line(cluster: Cluster) -> None:
    [redis] = cluster.stack.docker.compose.ps(services=["redis"])
    top = subprocess.run(
        ["docker", "top", redis.name, "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    assert "redis-server" in top
    assert secret_values_of(cluster)["REDIS_PASSWORD"] not in top


def test_a_task_that_eats_memory_is_killed_and_nothing_else(cluster: Cluster) -> None:
    dag_id = f"memory_hog_{uuid.uuid4().hex[:6]}"
    dag_file = cluster.dags_dir / f"{dag_id}.py"
    dag_file.write_text(
        textwrap.dedent(
            f"""
            from datetime import datetime
            from airflow.sdk import dag, task

            @dag(dag_id="{dag_id}", schedule=None, start_date=datetime(2026, 1, 1))
            def memory_hog():
                @task(retries=0)
                def eat():
                    eaten = []
                    while True:  # 64 MiB at a time, each page written, without bound
                        eaten.append(b"x" * (64 << 20))
                eat()

            memory_hog()
            """
        )
    )
    dag_file.chmod(0o644)
    wait_for_dags(cluster.client, [dag_id], 90, print)
    before = {
        name: (service, bounds.oom_kills)
        for name, (service, _, bounds) in cluster.stack.cgroup_bounds().items()
    }
    started = {c.name: (c.id, str(c.state.started_at)) for c in cluster.stack.docker.compose.ps()}

    [run] = run_dags(cluster.client, [dag_id], timeout=300, log=print)

    assert run.state == "failed", run
    after = cluster.stack.cgroup_bounds()
    killed = {name for name, (_, kills) in before.items() if after[name][2].oom_kills > kills}
    [task] = run.tasks
    [worker] = [name for name in killed if before[name][0] == "worker"]
    assert killed == {worker}, killed  # OOM kills in that worker only
    assert task.hostname == cluster.stack.docker.container.inspect(worker).config.hostname
    # Every container still runs, none restarted: the kernel killed the task's process.
    assert {c.name: (c.id, str(c.state.started_at)) for c in cluster.stack.docker.compose.ps()} == (
        started
    )
    [again] = run_dags(cluster.client, ["example_queues"], timeout=300, log=print)
    assert again.state == "success", again


def test_maintenance_deletes_old_task_logs_and_cleans_the_database(cluster: Cluster) -> None:
    [service] = [c for c in cluster.stack.docker.compose.ps() if c.name.endswith("-maintenance-1")]
    logs = "/opt/airflow/logs"
    service.execute(
        [
            "sh",
            "-c",
            f"mkdir -p {logs}/dag_id=gone && echo old > {logs}/dag_id=gone/attempt=1.log"
            f" && touch -d '40 days ago' {logs}/dag_id=gone/attempt=1.log"
            f" && echo new > {logs}/kept.log",
        ]
    )

    result = cluster.cli("maintenance")

    assert result.code == 0, str(result)
    assert "maintenance: deleted 1 log file(s)" in result.stdout
    assert "maintenance: done" in result.stdout  # after `airflow db clean` succeeded
    left = str(service.execute(["sh", "-c", f"ls {logs}; ls {logs}/dag_id=gone 2>&1 || true"]))
    assert "kept.log" in left
    assert "No such file or directory" in left
