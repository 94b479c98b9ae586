"""The cluster on a busy machine: requests wait instead of failing, and no task
needs a second try when nothing was broken.

Both tests failed before the load balancer was made to fail open: with
api-servers that answered slowly, HAProxy marked both down at once and
answered 503 (seen here: 38 of 86 probe requests during a 25 s pause), and
tasks failed their Execution API calls.
"""

import re
import time
from datetime import UTC, datetime

import pytest

from airflow_ha.bench_figures import load_balancer_errors
from airflow_ha.chaos.probe import ApiProbe
from airflow_ha.compare import busy_cpus
from airflow_ha.verify import read_why_retried, retried, run_dags

from .conftest import Cluster, wait_for

pytestmark = pytest.mark.integration

PAUSE_SECONDS = 25
RUN_TIMEOUT = 900
# The project's example DAGs (a fan-out with XCom, a deferrable task, both
# worker pools) and the benchmark's 200-task fan-out and 20-task chain.
CONTENTION_DAGS = [
    "example_queues",
    "example_fanout_xcom",
    "example_deferrable",
    "bench_fanout",
    "bench_chain",
]


# An api-server's access log line: "request finished ... method=GET path=/execution/health".
EXECUTION_REQUEST = re.compile(r"request finished .* path=(/execution/\S*)")


def lb_errors_since(cluster: Cluster, since: str) -> list[str]:
    return load_balancer_errors(str(cluster.stack.docker.compose.logs(["lb"], since=since)))


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_requests_wait_for_api_servers_that_do_not_answer(cluster: Cluster) -> None:
    """Every api-server frozen (docker pause) for 25 s: slow, not dead."""
    since = now()
    api_servers = [s.container for s in cluster.stack.services() if s.service == "api-server"]
    with ApiProbe(cluster.client) as probe:
        cluster.stack.docker.container.pause(api_servers)
        try:
            time.sleep(PAUSE_SECONDS)
        finally:
            cluster.stack.docker.container.unpause(api_servers)
        time.sleep(5)
    assert probe.result.requests > 0
    assert probe.result.failed == 0, probe.result.errors
    assert lb_errors_since(cluster, since) == []


def test_busy_cpus_fail_no_task_try_and_no_request(cluster: Cluster) -> None:
    since = now()
    with busy_cpus(print):
        runs = run_dags(
            cluster.client,
            CONTENTION_DAGS,
            RUN_TIMEOUT,
            print,
            {"bench_fanout": {"tasks": 200}},
        )
    # All of it at once, so that a failure shows every symptom and, for each
    # retried task, what Airflow's event log says ended its earlier try.
    outcome = {
        "failed runs": [r.dag_id for r in runs if not r.succeeded],
        "retried tasks": retried(runs),
        "why retried": read_why_retried(cluster.client, runs),
        "load balancer errors": lb_errors_since(cluster, since),
    }
    assert outcome == {key: [] for key in outcome}


def test_a_restarted_api_server_builds_its_execution_routes_before_tasks_reach_it(
    cluster: Cluster,
) -> None:
    """The Execution API builds its versioned routes on its first request, and
    its api-server answers nothing else meanwhile (12 to 30 s on a busy
    machine): that first request must be a health check (Docker's or the load
    balancer's), not a task's call. In CI, after `down` and `up`, the tasks'
    first calls did it, and tasks whose heartbeats waited were failed."""
    docker = cluster.stack.docker
    container = next(s.container for s in cluster.stack.services() if s.service == "api-server")
    since = datetime.now(UTC)
    docker.container.restart(container)
    wait_for(
        "the restarted api-server to be healthy",
        lambda: (
            (health := docker.container.inspect(container).state.health) is not None
            and health.status == "healthy"
        ),
        timeout=300,
    )
    [run] = run_dags(cluster.client, ["example_fanout_xcom"], RUN_TIMEOUT, print)
    assert run.succeeded, run
    paths = EXECUTION_REQUEST.findall(str(docker.container.logs(container, since=since)))
    assert paths, "no Execution API request reached the restarted api-server"
    assert paths[0] == "/execution/health", paths[:5]
    # ...and it did serve the tasks' calls afterwards.
    assert any(path != "/execution/health" for path in paths), paths
