"""What every lab is made of: its checks (steps a trainee's result must show),
and a solve that does the exercise the way the guide tells a trainee to.

A lab's guide is labs/NN-slug.md. A trainee's answers go in
lab-work/labNN.answers (KEY=value lines, the guide names the keys); DAG files
go in the cluster's DAG folder.
"""

import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from dotenv import dotenv_values

from airflow_ha.airflow_api import AirflowClient
from airflow_ha.chaos.evidence import DockerObserver
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError
from airflow_ha.paths import REPO_ROOT
from airflow_ha.stack import ServiceState

GUIDES_DIR = REPO_ROOT / "labs"
LAB_FILES_DIR = GUIDES_DIR / "files"
DEFAULT_WORK_DIR = REPO_ROOT / "lab-work"

Log = Callable[[str], None]


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

    def services(self, service: str) -> list[ServiceState]:
        return [s for s in self.ctx.stack.services() if s.service == service]

    def mysql_rows(self, sql: str) -> list[list[str]]:
        output = self.observer.mysql(sql)
        return [line.split("\t") for line in output.splitlines() if line]

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


def guide(lab: Lab) -> Path:
    return GUIDES_DIR / f"{lab.number:02d}-{lab.slug}.md"


def first_missing(steps: Sequence[Step]) -> Step | None:
    """The first step not done: later steps usually build on it."""
    return next((step for step in steps if not step.done), None)


def same_text(answer: str | None, truth: str) -> bool:
    """Answers compare without case and surrounding space."""
    return answer is not None and answer.strip().lower() == truth.strip().lower()


def number_in(answer: str | None) -> int | None:
    match = re.fullmatch(r"\s*(\d+)\s*", answer or "")
    return int(match.group(1)) if match else None
