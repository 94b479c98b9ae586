"""`smoke`: what a CI pipeline runs to test its DAGs on a real, throw-away cluster.

Import check (seconds, no cluster), then a cluster of its own (a unique project
name, random ports, fresh secrets: it never touches a developer's cluster),
`verify` of every DAG in the folder or of those named, JUnit and JSON, then the
cluster and its volumes are removed: also on failure, Ctrl-C or SIGTERM (what a
CI system sends to a cancelled job). The exit code is the verification's.
"""

import argparse
import shutil
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from airflow_ha.argtypes import positive_seconds
from airflow_ha.commands.check_dags import check_dags, require_clean
from airflow_ha.commands.up import start
from airflow_ha.commands.verify import add_run_options, verify_and_report
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.dag_check import DagCheck, format_check
from airflow_ha.envfile import render_env
from airflow_ha.errors import VerificationError
from airflow_ha.junit import dag_check_report
from airflow_ha.paths import ENV_EXAMPLE, STATE_DIR
from airflow_ha.report_files import ReportFiles
from airflow_ha.settings import Settings, Topology
from airflow_ha.stack import Stack

PROJECT_PREFIX = "afha-smoke-"
# Taken from the developer's .env when there is one, so that a smoke run uses
# the images already built and the same build settings.
INHERITED_KEYS = (
    "AIRFLOW_IMAGE",
    "MYSQL_IMAGE",
    "REDIS_IMAGE",
    "HAPROXY_IMAGE",
    "DEBIAN_IMAGE",
    "BUILD_EXTRA_CA_CERTS",
    "AIRFLOW_WORKER_CONCURRENCY",
    "AIRFLOW_HEAVY_WORKER_CONCURRENCY",
)


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "smoke",
        help="check imports, start a throw-away cluster, run the DAGs, report, remove it",
    )
    parser.add_argument("--dags-dir", type=Path, required=True, help="the DAG folder to test")
    add_run_options(parser)
    parser.add_argument(
        "--topology",
        choices=[t.value for t in Topology],
        default=Topology.SINGLE.value,
        help="single (default: one of each component, the fastest start) or ha",
    )
    parser.add_argument(
        "--up-timeout",
        type=positive_seconds,
        default=600,
        help="seconds for the cluster to become healthy (default 600)",
    )
    parser.add_argument(
        "--discover-timeout",
        type=positive_seconds,
        default=180,
        help="seconds for the dag-processor to list the DAGs (default 180)",
    )
    parser.set_defaults(run=run)


def select_dags(named: list[str], check: DagCheck, folder: Path) -> list[str]:
    """The DAGs to run: those named, each of which the folder must define, else all."""
    unknown = sorted(set(named) - set(check.dag_ids))
    if unknown:
        raise VerificationError(
            f"unknown DAG id(s) {', '.join(unknown)}: {folder} defines " + ", ".join(check.dag_ids)
        )
    return list(dict.fromkeys(named)) or check.dag_ids


def smoke_overrides(
    project: str, folder: Path, topology: str, developer: Settings | None
) -> dict[str, str]:
    """The settings of a smoke cluster, over .env.example's (secrets are generated)."""
    overrides = {
        "COMPOSE_PROJECT_NAME": project,
        "BIND_ADDRESS": "127.0.0.1",
        "AIRFLOW_API_PORT": "0",
        "FLOWER_PORT": "0",
        "AIRFLOW_DAGS_DIR": str(folder),
        "TOPOLOGY": topology,
        "AIRFLOW_LOAD_EXAMPLES": "false",
    }
    if developer is not None:
        values = developer.model_dump(by_alias=True)
        overrides |= {key: str(values[key]) for key in INHERITED_KEYS}
    return overrides


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) stops the run like Ctrl-C: the cluster is removed."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded(progress: Progress) -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the cluster is being removed."""

    def wait(signum: int, frame: FrameType | None) -> None:
        progress("still removing the smoke cluster; it takes a few more seconds")

    previous = {sig: signal.signal(sig, wait) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    reports = ReportFiles(args.junit, args.json)
    folder = args.dags_dir.resolve()
    with sigterm_interrupts(), reports.on_error("smoke"):
        check = check_dags(ctx, folder, progress)
        print(format_check(check, folder))
        if check.errors or not check.dag_ids:
            reports.write(dag_check_report(check), check.as_json())
            require_clean(check, folder)
        dag_ids = select_dags(args.dag, check, folder)
        developer = ctx.settings if ctx.env_file.is_file() else None
        project = PROJECT_PREFIX + uuid.uuid4().hex[:8]
        state_dir = STATE_DIR / project
        state_dir.mkdir(parents=True)
        env_file = state_dir / ".env"
        env_file.touch(mode=0o600)
        overrides = smoke_overrides(project, folder, args.topology, developer)
        env_file.write_text(render_env(ENV_EXAMPLE.read_text(), overrides))
        smoke = Context(env_file=env_file, verbose=ctx.verbose)
        progress(f"smoke cluster {project} ({args.topology}) for {len(dag_ids)} DAG(s)")
        try:
            start(smoke, args.up_timeout, progress)
            verify_and_report(
                args, smoke.airflow_client, dag_ids, args.discover_timeout, progress, reports
            )
        finally:
            with shielded(progress):
                progress(f"removing {project}: containers, networks, volumes")
                Stack(smoke.settings, [env_file]).down(remove_volumes=True, quiet=True)
                shutil.rmtree(state_dir, ignore_errors=True)
                progress(f"removed {project}")
    return 0
