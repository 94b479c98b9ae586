"""Scaling benchmark: figures to read, never assertions (the machine is shared and noisy).

On the running cluster, with the default worker pool and the `example_queues` DAG:
- how long `scale` 1 -> 4 takes until Celery lists all four workers;
- tasks per second of one sleep-bound run (N tasks of S seconds) per pool size;
- how long a scale-down waits for a running task, and how soon after the task
  ends the worker is gone.
The pool gets its size from before back at the end.
"""

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.console import table
from airflow_ha.context import Context
from airflow_ha.errors import TimeoutExpiredError
from airflow_ha.pools import pool_for_queue
from airflow_ha.scaling import STOP_GRACE_SECONDS, PoolScaler, resize
from airflow_ha.verify import wait_for_dags

DAG = "example_queues"
REGISTER_TIMEOUT = 300
Log = Callable[[str], None]


@dataclass(frozen=True)
class Throughput:
    workers: int
    slots: int
    tasks: int
    task_seconds: float
    span_seconds: float

    @property
    def tasks_per_second(self) -> float:
        return self.tasks / self.span_seconds if self.span_seconds > 0 else 0.0

    @property
    def ideal_tasks_per_second(self) -> float:
        """What the slots could do if a task cost nothing but its sleep."""
        return self.slots / self.task_seconds if self.task_seconds > 0 else 0.0


def task_span(task_instances: list[JSON], task_id: str) -> tuple[int, float]:
    """Instances of `task_id` that succeeded, and seconds from the first start to the last end."""
    done = [ti for ti in task_instances if ti["task_id"] == task_id and ti["state"] == "success"]
    starts = [t for t in (parse_time(ti.get("start_date")) for ti in done) if t is not None]
    ends = [t for t in (parse_time(ti.get("end_date")) for ti in done) if t is not None]
    if not starts or not ends:
        return len(done), 0.0
    return len(done), (max(ends) - min(starts)).total_seconds()


@dataclass(frozen=True)
class DrainWait:
    task_left_seconds: float  # from the start of the scale-down to the task's end
    waited_seconds: float  # from the start of the scale-down to the end of `scale`

    @property
    def after_task_seconds(self) -> float:
        return self.waited_seconds - self.task_left_seconds


@dataclass(frozen=True)
class BenchResult:
    registration_seconds: float
    throughput: list[Throughput]
    drain: DrainWait


class ScalingBenchmark:
    def __init__(self, ctx: Context, log: Log) -> None:
        self.ctx = ctx
        self.log = log
        self.client: AirflowClient = ctx.airflow_client()
        self.scaler = PoolScaler(
            ctx.stack, pool_for_queue("default"), ctx.flower_client(), self.client, log
        )

    def resize(self, count: int, force: bool = False) -> None:
        resize(
            self.scaler, count, self.ctx.record_scale, REGISTER_TIMEOUT, STOP_GRACE_SECONDS, force
        )

    def run(
        self, tasks: int, seconds: float, worker_counts: list[int], drain_task_seconds: float
    ) -> BenchResult:
        original = len(self.scaler.containers())
        wait_for_dags(self.client, [DAG], timeout=120, log=self.log)
        self.client.set_paused(DAG, False)
        try:
            registration = self.registration()
            throughput = [self.throughput(w, tasks, seconds) for w in worker_counts]
            drain = self.drain_wait(drain_task_seconds)
        finally:
            self.log(f"giving the pool back its {original} worker(s)")
            self.resize(original, force=True)
        return BenchResult(registration, throughput, drain)

    def registration(self) -> float:
        self.resize(1)
        started = time.monotonic()
        self.resize(4)
        seconds = time.monotonic() - started
        self.log(f"scale 1 -> 4: all four registered with Celery after {seconds:.1f} s")
        return seconds

    def _run_to_end(self, conf: JSON, timeout: float) -> str:
        run_id = str(self.client.trigger(DAG, conf)["dag_run_id"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.client.dag_run(DAG, run_id)["state"]
            if state in ("success", "failed"):
                self.log(f"run {run_id}: {state}")
                return run_id
            time.sleep(5)
        raise TimeoutExpiredError(f"benchmark run {run_id} of {DAG} did not end in {timeout:.0f} s")

    def throughput(self, workers: int, tasks: int, seconds: float) -> Throughput:
        self.resize(workers)
        infos = [self.scaler.flower.worker(c.celery_name) for c in self.scaler.containers()]
        slots = sum(info.concurrency or 0 for info in infos if info is not None)
        self.log(f"{tasks} tasks of {seconds:g} s on {workers} worker(s), {slots} slots")
        conf = {"light_tasks": tasks, "heavy_tasks": 0, "seconds": seconds}
        run_id = self._run_to_end(conf, timeout=max(1800.0, 4 * tasks * seconds / workers))
        done, span = task_span(self.client.task_instances(DAG, run_id), "light")
        result = Throughput(workers, slots, done, seconds, span)
        self.log(f"{done} tasks in {span:.1f} s: {result.tasks_per_second:.2f} tasks/s")
        return result

    def drain_wait(self, task_seconds: float) -> DrainWait:
        """One worker runs one task; scale to 0 and see how long that waits."""
        self.resize(1)
        conf = {"light_tasks": 1, "heavy_tasks": 0, "seconds": task_seconds}
        run_id = str(self.client.trigger(DAG, conf)["dag_run_id"])
        deadline = time.monotonic() + REGISTER_TIMEOUT
        while not [
            ti
            for ti in self.client.task_instances(DAG, run_id)
            if ti["task_id"] == "light" and ti["state"] == "running"
        ]:
            if time.monotonic() > deadline:
                raise TimeoutExpiredError(
                    f"the task of run {run_id} did not start within {REGISTER_TIMEOUT} s"
                )
            time.sleep(1)
        started_wall, started = datetime.now(UTC), time.monotonic()
        self.resize(0)
        waited = time.monotonic() - started
        [light] = [ti for ti in self.client.task_instances(DAG, run_id) if ti["task_id"] == "light"]
        ended = parse_time(light.get("end_date"))
        left = (ended - started_wall).total_seconds() if ended else float("nan")
        self.log(f"scale 1 -> 0 waited {waited:.1f} s for a task that had {left:.1f} s left")
        self.resize(1)  # the run's last task (report) needs a worker
        return DrainWait(left, waited)


def format_result(result: BenchResult) -> str:
    rows = [("WORKERS", "SLOTS", "TASKS", "SLEEP s", "SPAN s", "TASKS/s", "IDEAL TASKS/s")]
    for t in result.throughput:
        rows.append(
            (
                str(t.workers),
                str(t.slots),
                str(t.tasks),
                f"{t.task_seconds:g}",
                f"{t.span_seconds:.1f}",
                f"{t.tasks_per_second:.2f}",
                f"{t.ideal_tasks_per_second:.2f}",
            )
        )
    drain = result.drain
    return "\n".join(
        [
            f"scale 1 -> 4, until Celery lists all four: {result.registration_seconds:.1f} s",
            "",
            table(rows),
            "",
            f"scale-down with a running task: `scale` took {drain.waited_seconds:.1f} s for a "
            f"task that had {drain.task_left_seconds:.1f} s left, and ended "
            f"{drain.after_task_seconds:.1f} s after the task (polling, Celery's warm "
            "shutdown, the final worker count)",
        ]
    )


def write_json(result: BenchResult, path: Path) -> None:
    data = asdict(result)
    for item, t in zip(data["throughput"], result.throughput, strict=True):
        item["tasks_per_second"] = t.tasks_per_second
        item["ideal_tasks_per_second"] = t.ideal_tasks_per_second
    path.write_text(json.dumps(data, indent=2) + "\n")
