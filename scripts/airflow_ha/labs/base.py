"""What every lab is made of: its checks (steps a trainee's result must show),
and a solve that does the exercise the way the guide tells a trainee to.

A lab's guide is labs/NN-slug.md. A trainee's answers go in
lab-work/labNN.answers (KEY=value lines, the guide names the keys); DAG files
go in the cluster's DAG folder.
"""

import re
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Protocol, TypeVar
from urllib.parse import quote

from dotenv import dotenv_values
from python_on_whales import Container

from airflow_ha.airflow_api import JSON, AirflowClient, parse_time
from airflow_ha.chaos.evidence import DockerObserver
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.paths import REPO_ROOT
from airflow_ha.stack import ServiceState
from airflow_ha.verify import wait_for_dags

GUIDES_DIR = REPO_ROOT / "labs"
WAIT_SECONDS = 600
POLL_SECONDS = 2.0
LAB_FILES_DIR = GUIDES_DIR / "files"
DEFAULT_WORK_DIR = REPO_ROOT / "lab-work"

Log = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Step:
    """One thing the trainee's result must show; `hint` says what to do when it does not."""

    description: str
    done: bool
    hint: str = ""


@dataclass
class LabEnv:
    """The cluster a lab runs on, and the trainee's work folder."""

    ctx: Context
    work_dir: Path
    log: Log

    @cached_property
    def client(self) -> AirflowClient:
        return self.ctx.airflow_client()

    @cached_property
    def observer(self) -> DockerObserver:
        return DockerObserver(self.ctx.stack)

    @property
    def dags_dir(self) -> Path:
        return (REPO_ROOT / self.ctx.settings.airflow_dags_dir).resolve()

    def answers_file(self, number: int) -> Path:
        return self.work_dir / f"lab{number:02d}.answers"

    def answers(self, number: int) -> dict[str, str]:
        """The trainee's answers (KEY=value); a missing file is no answers."""
        path = self.answers_file(number)
        if not path.is_file():
            return {}
        return {k.upper(): (v or "").strip() for k, v in dotenv_values(path).items()}

    def write_answers(self, number: int, answers: dict[str, str]) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{key}={value}\n" for key, value in answers.items())
        self.answers_file(number).write_text(text)

    def write_dag(self, name: str, source: str) -> Path:
        """A DAG file in the cluster's DAG folder, readable by the containers."""
        path = self.dags_dir / name
        path.write_text(textwrap.dedent(source).lstrip())
        path.chmod(0o644)
        return path

    def copy_dag(self, name: str) -> Path:
        """A DAG file the lab gives (labs/files/), copied into the DAG folder."""
        return self.write_dag(name, (LAB_FILES_DIR / name).read_text())

    def containers(self, service: str) -> list[Container]:
        """The service's containers, as Docker inspects them now."""
        return list(self.ctx.stack.docker.compose.ps(services=[service], all=True))

    def services(self, service: str) -> list[ServiceState]:
        return [s for s in self.ctx.stack.services() if s.service == service]

    def mysql_rows(self, sql: str) -> list[list[str]]:
        output = self.observer.mysql(sql)
        return [line.split("\t") for line in output.splitlines() if line]

    def runs(self, dag_id: str, states: Sequence[str] = ("success",)) -> list[JSON]:
        """The DAG's runs in those states, newest first (none if the DAG is unknown)."""
        answer = self.client.request(
            "GET",
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns",
            allow_404=True,
            params={"state": list(states), "order_by": "-start_date"},
        )
        return list((answer or {}).get("dag_runs", []))

    def trigger(self, dag_id: str) -> str:
        """Wait for the DAG to be parsed, unpause it and start a run (logical date now)."""
        wait_for_dags(self.client, [dag_id], timeout=WAIT_SECONDS, log=self.log)
        self.client.set_paused(dag_id, paused=False)
        run_id = str(self.client.trigger(dag_id, logical_date=datetime.now(UTC))["dag_run_id"])
        self.log(f"{dag_id}: triggered {run_id}")
        return run_id

    def wait_for_end(self, dag_id: str, run_id: str) -> JSON:
        def finished() -> JSON | None:
            run = self.client.dag_run(dag_id, run_id)
            return run if run.get("state") in ("success", "failed") else None

        run = wait_for(f"the end of {dag_id} {run_id}", finished)
        self.log(f"{dag_id}: {run['state']}")
        return run

    def start_again(self, container: str, service: str) -> None:
        """`docker start` a container a lab killed (Docker counts `docker kill` as a
        manual stop: the restart policy leaves it down), and wait until it is healthy."""
        self.ctx.stack.docker.container.start(container)
        self.wait_ready(container, service)

    def wait_ready(self, container: str, service: str) -> None:
        def ready() -> bool | None:
            return any(s.container == container and s.ready for s in self.services(service)) or None

        wait_for(f"{container} healthy", ready)
        self.log(f"{container}: running, healthy")

    def cli(self, *args: str) -> None:
        """Run a command as a trainee would (`make ...`); fail on a non-zero exit."""
        from airflow_ha.cli import main  # the CLI registers the lab command: import late

        self.log(f"airflow-ha {' '.join(args)}")
        code = main(["--env-file", str(self.ctx.env_file), *args])
        if code != 0:
            raise ClusterError(f"`airflow-ha {' '.join(args)}` exited {code}")


class Lab(Protocol):
    number: int
    slug: str
    title: str

    def check(self, env: LabEnv) -> Sequence[Step]: ...

    def solve(self, env: LabEnv) -> None: ...


Facts = Callable[[LabEnv, JSON], dict[str, str] | None]


def newest_with_facts(
    env: LabEnv, dag_id: str, facts: Facts
) -> tuple[JSON | None, dict[str, str] | None]:
    """The newest successful run whose facts show the lab's event, with those facts;
    else the newest successful run (or none) and no facts."""
    runs = env.runs(dag_id)
    for run in runs:
        found = facts(env, run)
        if found:
            return run, found
    return (runs[0] if runs else None), None


def kill_during_run(
    env: LabEnv, number: int, dag_id: str, run_id: str, service: str, host: str, why: str,
    facts: Facts,
) -> None:  # fmt: skip
    """`docker kill` the service's container on `host`, as the lab's guide does; wait
    for the run's end, start the container again, and write the answers it shows."""
    [victim] = [c for c in env.containers(service) if c.config.hostname == host]
    env.log(f"killing {victim.name} (host {host}), {why}")
    env.ctx.stack.docker.container.kill(victim)
    run = env.wait_for_end(dag_id, run_id)
    truth = facts(env, run)
    env.start_again(victim.name, service)
    if truth is None:
        raise ClusterError(f"lab {number}: the kill of {victim.name} does not show in {run_id}")
    env.write_answers(number, truth)


def wait_for(what: str, ready: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
    """Poll `ready` until it gives a value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = ready()
        if value is not None:
            return value
        time.sleep(POLL_SECONDS)
    raise ClusterError(f"{what} did not happen within {timeout:.0f} s")


def guide(lab: Lab) -> Path:
    return GUIDES_DIR / f"{lab.number:02d}-{lab.slug}.md"


def first_missing(steps: Sequence[Step]) -> Step | None:
    """The first step not done: later steps usually build on it."""
    return next((step for step in steps if not step.done), None)


def same_text(answer: str | None, truth: str) -> bool:
    """Answers compare without case and surrounding space."""
    return answer is not None and answer.strip().lower() == truth.strip().lower()


def answered(answers: dict[str, str], truth: dict[str, str] | None, key: str) -> bool:
    """Whether the trainee's answer for `key` is the true one (none known: not answered)."""
    return truth is not None and same_text(answers.get(key), truth[key])


def comma_set(answer: str | None) -> set[str]:
    """A comma-separated answer as a set, without case and surrounding space."""
    return {part.strip().lower() for part in (answer or "").split(",") if part.strip()}


def number_in(answer: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*", answer or "")
    return int(match.group(1)) if match else None


def stopped_between(container: Container, start: datetime, end: datetime) -> bool:
    """Whether the container's process ended in [start, end] (a kill or a restart:
    Docker keeps the last end in FinishedAt, also once the container runs again)."""
    finished = container.state.finished_at
    return finished is not None and start <= finished <= end


def run_window(run: JSON) -> tuple[datetime, datetime] | None:
    """When a finished DAG run started and ended."""
    start, end = parse_time(run.get("start_date")), parse_time(run.get("end_date"))
    return (start, end) if start and end else None
