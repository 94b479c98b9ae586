"""Celery configuration: Airflow's own, retried result reads and writes, a worker liveness file,
the modules every task needs imported once per worker instead of once per task, and what
Celery needs besides a `sentinel://` URL (the Swarm stack's Redis is reached through Sentinel).

Selected by AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=airflow_ha_celery.CELERY_CONFIG.

Why a file: the usual worker healthcheck, `celery inspect ping`, starts a new
Python process that imports Celery and round-trips through Redis, about 0.65
CPU-seconds each time; every 10 s on three workers that was a quarter of a
core on an idle cluster. Instead the worker's own consumer touches
/tmp/celery-worker-alive every few seconds from its event loop, and the
healthcheck only asks how old that file is (`find -mmin`), at no CPU cost.

The file is touched by a timer of the consumer, which Celery starts only once
the broker connection is up and stops when it is lost, so a stale file means
"no broker connection" or "event loop stuck", the two things ping detected.
"""

import importlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery import bootsteps
from celery.backends.redis import RedisBackend, SentinelBackend
from celery.signals import celeryd_init


class RetriedMget:
    """A Redis result backend whose bulk read waits for Redis to come back.

    The schedulers read every running task's state with one MGET per loop
    (BulkStateFetcher._get_many_from_kv_backend). Celery retries the
    backend's writes and single reads on a connection error, but not MGET,
    and Airflow catches nothing around it: while `chaos` restarted Redis in
    CI, a scheduler died of `ConnectionError: Connection reset by peer`, and
    `chaos --fault redis-outage` made one restart 4 times. Here MGET goes
    through the backend's own retry loop (`ensure`, the one its writes use).
    """

    def mget(self, keys: list[str]) -> list[bytes | None]:
        return self.ensure(super().mget, (keys,))


class RedisResultBackend(RetriedMget, RedisBackend):
    """Celery's Redis result backend, MGET retried (`redis://`)."""


class SentinelResultBackend(RetriedMget, SentinelBackend):
    """Celery's Redis result backend through Redis Sentinel, MGET retried (`sentinel://`)."""


# The name under which the Swarm stack's sentinels watch its Redis primary
# (compose/redis/redis-sentinel.sh).
SENTINEL_MASTER_NAME = "airflow-ha"


def sentinel_options(url: str) -> dict[str, Any]:
    """The transport options a `sentinel://` URL needs (none for another URL).

    The URL's password opens the Redis servers; the sentinels ask for the
    same one, which Kombu and Celery send them only from `sentinel_kwargs`.
    One name resolves to every sentinel, and redis-py tries each address in
    turn: 2 s timeouts keep one on a lost host from holding a client long.
    """
    if not url.startswith("sentinel://"):
        return {}
    return {
        "master_name": SENTINEL_MASTER_NAME,
        "sentinel_kwargs": {
            "password": urlsplit(url.split(";")[0]).password,
            "socket_connect_timeout": 2,
            "socket_timeout": 2,
        },
    }


# Sentinel URLs are the Swarm stack's, whose Redis primary may be on a host
# that vanishes: no reset closes the clients' connections, and without a
# socket timeout a publish or a read waits on the dead connection forever
# (Kombu's note on `socket_timeout`; Celery's result backend waits 120 s).
# After 5 s the client gives up, asks the sentinels again and finds the
# promoted replica (a live Redis answers in milliseconds). A worker's event
# loop reads its BRPOP and pub/sub connections with no timeout at all: Kombu
# drops them once a reply is overdue by `health_check_interval`, checked as
# often. At 10 s, a worker that outlived a killed host got the waiting tasks
# only 44.7 s after the kill, all at once as its pub/sub connection was
# dropped (its BRPOP connection had been dropped after 21.5 s; `make chaos
# ENGINES=1 FAULT=host-kill`). At 4 s: a PING every 4 s on each idle
# connection of a worker.
SENTINEL_BROKER_TIMEOUTS = {
    "socket_timeout": 5,
    "socket_connect_timeout": 5,
    "health_check_interval": 4,
}
SENTINEL_RESULT_TIMEOUTS = {"redis_socket_timeout": 5, "redis_socket_connect_timeout": 5}


_BROKER_URL = DEFAULT_CELERY_CONFIG["broker_url"]
_RESULT_URL = DEFAULT_CELERY_CONFIG["result_backend"]
_SENTINEL_BROKER = _BROKER_URL.startswith("sentinel://")
_SENTINEL_RESULTS = _RESULT_URL.startswith("sentinel://")
_RESULT_BACKEND_CLASS = "SentinelResultBackend" if _SENTINEL_RESULTS else "RedisResultBackend"

CELERY_CONFIG = {
    **DEFAULT_CELERY_CONFIG,
    # Celery's `class+url` form (celery.app.backends.by_url): the URL stays
    # Airflow's [celery] result_backend, read from its secret file.
    "result_backend": f"airflow_ha_celery:{_RESULT_BACKEND_CLASS}+{_RESULT_URL}",
    "broker_transport_options": {
        **DEFAULT_CELERY_CONFIG["broker_transport_options"],
        **sentinel_options(_BROKER_URL),
        **(SENTINEL_BROKER_TIMEOUTS if _SENTINEL_BROKER else {}),
    },
    **(SENTINEL_RESULT_TIMEOUTS if _SENTINEL_RESULTS else {}),
    # The result backend is Redis (workers get no database password). A
    # worker's pool processes keep their Redis connection between tasks; one
    # that broke while the worker was cut off failed the next task's first
    # write (its STARTED state: BrokenPipeError), and Celery then marked that
    # task failed before it ran (seen after `chaos` worker-partition). Retry
    # such writes on a new connection, and ping a connection idle for 10 s
    # before using it.
    "result_backend_always_retry": True,
    # The retry loop of RedisResultBackend.mget and of the writes: once a
    # second for a minute (Celery's default: 20 s), longer than a Redis
    # restart on a busy 2-core machine (12 s in CI); a longer outage still
    # ends the scheduler, and its restart policy brings it back.
    "result_backend_transport_options": {
        **DEFAULT_CELERY_CONFIG["result_backend_transport_options"],
        **sentinel_options(_RESULT_URL),
        "retry_policy": {"max_retries": 60, "interval_start": 0, "interval_step": 1, "interval_max": 1},
    },
    "result_backend_max_retries": 10,
    # A task sent while Redis is away: keep trying to publish it until
    # Airflow's send timeout ([celery] operation_timeout, 1 s) ends the try,
    # which the executor counts as a timeout and sends again on its next
    # loop, up to [celery] task_publish_max_retries times (compose file).
    # Celery's default (3 tries within 0.6 s) raised a connection error
    # instead, and Airflow failed at once a try that never ran: 30 tasks in
    # one `chaos --fault redis-outage`. Bounded, for a publish outside
    # Airflow's timeout: at most about 50 s.
    "task_publish_retry_policy": {
        "max_retries": 100,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    },
    "redis_backend_health_check_interval": 10,
}

ALIVE_FILE = Path("/tmp/celery-worker-alive")
TOUCH_EVERY_SECONDS = 5.0


class TouchAliveFile(bootsteps.StartStopStep):
    """Consumer step: touch ALIVE_FILE while the consumer runs."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.timer_entry: Any = None

    def start(self, parent: Any) -> None:
        ALIVE_FILE.touch()
        self.timer_entry = parent.timer.call_repeatedly(TOUCH_EVERY_SECONDS, ALIVE_FILE.touch)

    def stop(self, parent: Any) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
            self.timer_entry = None
        ALIVE_FILE.unlink(missing_ok=True)


@celeryd_init.connect
def add_alive_step(sender: Any = None, instance: Any = None, **kwargs: Any) -> None:
    """Runs in `celery worker` only, before its consumer is built."""
    instance.app.steps["consumer"].add(TouchAliveFile)


# Imported by the worker before its pool starts, so that every task process
# (forked from a pool process, and gone when its task ends) finds them loaded.
# Airflow's task runner imports the first when it parses the task's DAG file
# (task_runner.parse, for BundleDagBag): that import pulls in Airflow's ORM
# models and serialization, about 250 ms of CPU, which every task paid again
# because the import happened after the fork, in a process that then exits
# (PYTHONPROFILEIMPORTTIME=1 in a worker lists it in every task's log). The
# others are what `@task` in a DAG file and the end of every task load.
# README, "Light and steady".
TASK_MODULES = (
    "airflow.dag_processing.dagbag",
    "airflow.sdk.definitions.decorators.setup_teardown",
    "airflow.sdk.definitions.asset.metadata",
    "airflow.version",
)


@celeryd_init.connect
def import_task_modules(**kwargs: Any) -> None:
    """Runs in `celery worker` only, in the main process, before the pool forks."""
    for name in TASK_MODULES:
        importlib.import_module(name)
