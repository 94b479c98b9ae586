"""`make bench`: the same workloads on two clusters, one after the other, on the
same images and machine: `ha` (this cluster as shipped) and `airflow-defaults`
(what Airflow's own Compose file gives a user). See profiles.py.

Each profile runs as its own Compose project (`<project>-bench`, free ports,
the DAGs of bench/dags), which is removed with its volumes afterwards. The
user's cluster is paused meanwhile, so it neither disturbs the figures nor is
touched, and is unpaused at the end, also on failure and on Ctrl-C.

Stages, per profile: warm-up runs; `idle` (CPU per service over 60 s, and
memory); `healthchecks` (CPU per run of each service's healthcheck); `chain`
(20 no-op tasks in a row); `fanout` (200 no-op mapped tasks); `contention`
(the chain and the fan-out at once while busy loops keep every CPU busy).
"""

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dotenv import dotenv_values
from python_on_whales import Container
from python_on_whales.exceptions import DockerException

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.bench_figures import (
    ChainFigures,
    FanoutFigures,
    chain_figures,
    cpu_seconds_by_service,
    fanout_figures,
    load_balancer_errors,
    memory_mib_by_service,
)
from airflow_ha.context import Context, replica_variable
from airflow_ha.errors import ClusterError, TimeoutExpiredError
from airflow_ha.paths import ENV_EXAMPLE
from airflow_ha.profiles import Profile
from airflow_ha.secret_files import secret_values, secrets_dir, write_secret_files
from airflow_ha.settings import SECRET_KEYS, Settings, parse_settings
from airflow_ha.stack import SERVICE_LABEL, Stack
from airflow_ha.verify import RunResult, retried, run_dags, wait_for_dags

STAGES = ("idle", "healthchecks", "chain", "fanout", "contention")
CHAIN_DAG = "bench_chain"
FANOUT_DAG = "bench_fanout"
FANOUT_TASK = "noop"
FANOUT_TASKS = 200
WARM_UP_FANOUT_TASKS = 32
IDLE_SETTLE_SECONDS = 30
IDLE_WINDOW_SECONDS = 60
HEALTHCHECK_SAMPLES = 3
RUN_TIMEOUT = 900
UP_TIMEOUT = 600
BUSY_LOOPS_PER_CPU = 2
# A busy loop ends by itself after this long, even if this process is killed.
BUSY_LOOP_LIMIT_SECONDS = 900

Log = Callable[[str], None]
SETTING_KEYS = frozenset(str(f.alias) for f in Settings.model_fields.values())


@dataclass(frozen=True)
class HealthcheckCost:
    service: str
    cpu_seconds_per_run: float
    interval_seconds: float
    containers: int

    @property
    def cpu_seconds_per_hour(self) -> float:
        return self.cpu_seconds_per_run * 3600 / self.interval_seconds * self.containers


@dataclass(frozen=True)
class ContentionFigures:
    busy_loops: int
    runs: int
    failed_runs: list[str]
    retried_tasks: list[str]
    load_balancer_errors: int | None  # None: this profile has no load balancer


@dataclass
class ProfileResult:
    profile: str
    idle_cpu_percent: dict[str, float] = field(default_factory=dict)
    memory_mib: dict[str, float] = field(default_factory=dict)
    healthchecks: list[HealthcheckCost] = field(default_factory=list)
    chain: list[ChainFigures] = field(default_factory=list)
    fanout: list[FanoutFigures] = field(default_factory=list)
    # Per fan-out run: CPU-seconds per task that each service spent.
    fanout_cpu_per_task: list[dict[str, float]] = field(default_factory=list)
    contention: ContentionFigures | None = None


def bench_env_values(ctx: Context, profile: Profile) -> dict[str, str]:
    """The settings of a profile's project: .env.example's as shipped, the
    user's secrets and images, its own name, free ports and the bench DAGs."""
    user = {k: v or "" for k, v in dotenv_values(ctx.env_file).items()}
    derived = {k: v or "" for k, v in dotenv_values(ctx.derived_env_file).items()}
    values = {k: v or "" for k, v in dotenv_values(ENV_EXAMPLE).items()}
    values |= {k: user[k] for k in SECRET_KEYS if k in user}
    values |= {k: v for k, v in derived.items() if k.endswith("_IMAGE")}
    values |= {
        "COMPOSE_PROJECT_NAME": f"{ctx.settings.compose_project_name}-bench",
        "AIRFLOW_API_PORT": "0",
        "FLOWER_PORT": "0",
        "AIRFLOW_DAGS_DIR": "./bench/dags",
        "AIRFLOW_LOAD_EXAMPLES": "false",
        "AIRFLOW_ADMIN_USER": user.get("AIRFLOW_ADMIN_USER", "admin"),
    }
    for service, count in profile.replicas.items():
        values[replica_variable(service)] = str(count)
    values["HAPROXY_CONFIG_DIGEST"] = "bench"
    return values


class BenchCluster:
    """One profile's throw-away project."""

    def __init__(self, ctx: Context, profile: Profile, log: Log) -> None:
        self.profile = profile
        self.log = log
        values = bench_env_values(ctx, profile)
        settings_values: dict[str, str | None] = {
            k: v for k, v in values.items() if k in SETTING_KEYS
        }
        self.settings = parse_settings(settings_values, f"the {profile.name} profile's settings")
        self.env_file = ctx.state_dir / "bench.env"
        self.env_file.parent.mkdir(parents=True, exist_ok=True)
        self.env_file.touch(mode=0o600)
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        # The bench project's own state folder, beside the user's project's.
        self.state_dir = ctx.state_dir.parent / self.settings.compose_project_name
        write_secret_files(secrets_dir(self.state_dir), secret_values(self.settings))
        self.stack = Stack(self.settings, [self.env_file], profile.overrides, profile.api_service)

    def up(self) -> AirflowClient:
        self.log(f"{self.profile.name}: starting project {self.stack.project}")
        self.stack.down(remove_volumes=True, quiet=True)  # what an interrupted run may have left
        self.stack.up(quiet=True)
        self.stack.wait_healthy(UP_TIMEOUT, lambda _: None)
        self.log(f"{self.profile.name}: every container is healthy")
        credentials = Credentials(
            self.settings.airflow_admin_user, self.settings.airflow_admin_password
        )
        return AirflowClient(self.stack.api_url(), credentials)

    def down(self) -> None:
        self.log(f"{self.profile.name}: removing project {self.stack.project}")
        self.stack.down(remove_volumes=True, quiet=True)
        self.env_file.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)


def _one_run(
    client: AirflowClient, dag_id: str, conf: dict[str, object] | None = None
) -> RunResult:
    [run] = run_dags(
        client, [dag_id], RUN_TIMEOUT, lambda _: None, {dag_id: conf} if conf else None
    )
    if not run.succeeded:
        raise ClusterError(f"benchmark run {dag_id} {run.run_id} ended {run.state}")
    return run


def healthcheck_command(test: Sequence[str]) -> str | None:
    """The shell command of a Docker healthcheck test, or None if it has none."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return test[1]
    if test[0] == "CMD":
        return shlex.join(test[1:])
    return shlex.join(test)


def children_cpu_seconds(times_output: str) -> float:
    """User + system CPU of the children, from bash's `times` (its last line)."""
    user, system = times_output.strip().splitlines()[-1].split()

    def seconds(value: str) -> float:
        minutes, _, rest = value.partition("m")
        return int(minutes) * 60 + float(rest.rstrip("s"))

    return seconds(user) + seconds(system)


def _healthcheck_cost(
    container: Container, service: str, containers: int
) -> HealthcheckCost | None:
    check = container.config.healthcheck
    command = healthcheck_command(check.test or []) if check else None
    if check is None or command is None:
        return None
    samples = []
    for _ in range(HEALTHCHECK_SAMPLES):
        output = container.execute(["bash", "-c", f"( {command} ) >/dev/null 2>&1; times"])
        samples.append(children_cpu_seconds(str(output)))
    interval = (check.interval or 30_000_000_000) / 1e9
    return HealthcheckCost(service, sorted(samples)[len(samples) // 2], interval, containers)


@contextmanager
def busy_cpus(log: Log) -> Iterator[int]:
    """Two busy loops per CPU for the duration of the block; always stopped."""
    count = BUSY_LOOPS_PER_CPU * (os.cpu_count() or 1)
    loop = (
        "import time\n"
        f"end = time.monotonic() + {BUSY_LOOP_LIMIT_SECONDS}\n"
        "while time.monotonic() < end:\n    pass\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", loop]) for _ in range(count)]
    log(f"started {count} busy loops ({BUSY_LOOPS_PER_CPU} per CPU)")
    try:
        yield count
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()
        log(f"stopped the {count} busy loops")


class ProfileBench:
    def __init__(self, cluster: BenchCluster, client: AirflowClient, log: Log) -> None:
        self.cluster = cluster
        self.client = client
        self.log = log
        self.name = cluster.profile.name

    def warm_up(self) -> None:
        """Parse the DAGs and run each once, so no stage pays for first use."""
        wait_for_dags(self.client, [CHAIN_DAG, FANOUT_DAG], RUN_TIMEOUT, self.log)
        _one_run(self.client, CHAIN_DAG)
        _one_run(self.client, FANOUT_DAG, {"tasks": WARM_UP_FANOUT_TASKS})
        self.log(f"{self.name}: warmed up")

    def idle(self, result: ProfileResult) -> None:
        self.log(
            f"{self.name}: idle, settling {IDLE_SETTLE_SECONDS} s, "
            f"then measuring {IDLE_WINDOW_SECONDS} s"
        )
        time.sleep(IDLE_SETTLE_SECONDS)
        before = self.cluster.stack.cgroup_usage()
        started = time.monotonic()
        time.sleep(IDLE_WINDOW_SECONDS)
        after = self.cluster.stack.cgroup_usage()
        window = time.monotonic() - started
        used = cpu_seconds_by_service(before, after)
        result.idle_cpu_percent = {s: 100 * cpu / window for s, cpu in used.items()}
        result.memory_mib = memory_mib_by_service(after)
        cpu, memory = sum(result.idle_cpu_percent.values()), sum(result.memory_mib.values())
        self.log(f"{self.name}: idle {cpu:.1f} % of one core, {memory:.0f} MiB")

    def healthchecks(self, result: ProfileResult) -> None:
        by_service: dict[str, list[Container]] = {}
        for container in self.cluster.stack.docker.compose.ps():
            service = (container.config.labels or {}).get(SERVICE_LABEL, "?")
            by_service.setdefault(service, []).append(container)
        for service, containers in sorted(by_service.items()):
            try:
                cost = _healthcheck_cost(containers[0], service, len(containers))
            except DockerException as error:
                self.log(f"{self.name}: {service}: healthcheck not measured ({error.return_code})")
                continue
            if cost is not None:
                result.healthchecks.append(cost)
        self.log(f"{self.name}: healthchecks measured")

    def chain(self, result: ProfileResult, runs: int) -> None:
        for n in range(1, runs + 1):
            figures = chain_figures(_one_run(self.client, CHAIN_DAG).tasks)
            result.chain.append(figures)
            self.log(f"{self.name}: chain {n}/{runs}: {figures.seconds_per_task:.2f} s per task")

    def fanout(self, result: ProfileResult, runs: int) -> None:
        for n in range(1, runs + 1):
            before = self.cluster.stack.cgroup_usage()
            run = _one_run(self.client, FANOUT_DAG, {"tasks": FANOUT_TASKS})
            after = self.cluster.stack.cgroup_usage()
            by_service = cpu_seconds_by_service(before, after)
            figures = fanout_figures(run.tasks, FANOUT_TASK, sum(by_service.values()))
            result.fanout.append(figures)
            result.fanout_cpu_per_task.append(
                {service: cpu / figures.tasks for service, cpu in by_service.items()}
            )
            self.log(
                f"{self.name}: fan-out {n}/{runs}: {figures.tasks_per_second:.2f} tasks/s, "
                f"{figures.cpu_seconds_per_task:.3f} CPU-s per task"
            )

    def contention(self, result: ProfileResult) -> None:
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with busy_cpus(self.log) as loops:
            runs = run_dags(
                self.client,
                [FANOUT_DAG, CHAIN_DAG],
                RUN_TIMEOUT,
                lambda _: None,
                {FANOUT_DAG: {"tasks": FANOUT_TASKS}},
            )
        lb_errors = None
        if self.cluster.profile.load_balancer:
            log_text = str(self.cluster.stack.docker.compose.logs(["lb"], since=since))
            lb_errors = len(load_balancer_errors(log_text))
        result.contention = ContentionFigures(
            busy_loops=loops,
            runs=len(runs),
            failed_runs=[f"{r.dag_id} ({r.state})" for r in runs if not r.succeeded],
            retried_tasks=retried(runs),
            load_balancer_errors=lb_errors,
        )
        self.log(
            f"{self.name}: under contention {len(result.contention.failed_runs)} failed run(s), "
            f"{len(result.contention.retried_tasks)} retried task(s), "
            f"load balancer 5xx: {'-' if lb_errors is None else lb_errors}"
        )


def bench_profile(
    ctx: Context, profile: Profile, stages: Sequence[str], runs: int, log: Log
) -> ProfileResult:
    cluster = BenchCluster(ctx, profile, log)
    result = ProfileResult(profile.name)
    try:
        bench = ProfileBench(cluster, cluster.up(), log)
        bench.warm_up()
        if "idle" in stages:
            bench.idle(result)
        if "healthchecks" in stages:
            bench.healthchecks(result)
        if "chain" in stages:
            bench.chain(result, runs)
        if "fanout" in stages:
            bench.fanout(result, runs)
        if "contention" in stages:
            bench.contention(result)
    finally:
        cluster.down()
    return result


@contextmanager
def user_cluster_paused(stack: Stack, log: Log) -> Iterator[None]:
    """Pause the user's cluster for the benchmark; unpause it whatever happens."""
    running = [s for s in stack.services() if s.state == "running"]
    log(f"pausing your cluster ({stack.project}, {len(running)} containers) for the benchmark")
    stack.docker.compose.pause()
    try:
        yield
    finally:
        stack.docker.compose.unpause()
        log(f"unpaused your cluster ({stack.project})")
        try:
            stack.wait_healthy(300, lambda _: None)
        except (ClusterError, TimeoutExpiredError) as error:
            log(f"warning: your cluster is not healthy again yet: {error}")


def run_comparison(
    ctx: Context, profiles: Sequence[Profile], stages: Sequence[str], runs: int, log: Log
) -> list[ProfileResult]:
    ctx.stack.require_running()
    if not ctx.derived_env_file.is_file():
        raise ClusterError(
            f"project {ctx.settings.compose_project_name} was never started: run `make up`"
        )
    with user_cluster_paused(ctx.stack, log):
        return [bench_profile(ctx, profile, stages, runs, log) for profile in profiles]
