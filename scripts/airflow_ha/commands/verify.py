"""`verify`: trigger DAGs through the REST API and report every task."""

import argparse
import os
from collections.abc import Callable

from airflow_ha.airflow_api import JSON, AirflowClient, Credentials
from airflow_ha.argtypes import (
    dag_conf,
    dag_conf_file,
    logical_date,
    output_file,
    positive_seconds,
)
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError, UsageError, VerificationError
from airflow_ha.junit import verify_report
from airflow_ha.report_files import ReportFiles
from airflow_ha.verify import (
    DagImportError,
    Outcome,
    format_report,
    logical_date_source,
    verify,
)

PASSWORD_ENV = "AIRFLOW_PASSWORD"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """What to run and where to report it: shared by `verify` and `smoke`."""
    parser.add_argument(
        "--dag", action="append", default=[], metavar="ID", help="DAG id (repeatable)"
    )
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        type=dag_conf,
        metavar="DAG_ID=JSON",
        help="the conf (params) of one DAG's run, a JSON object (repeatable)",
    )
    parser.add_argument(
        "--conf-file",
        type=dag_conf_file,
        metavar="FILE",
        help='a JSON file {"dag_id": {conf}, ...}; --conf wins for a DAG in both',
    )
    parser.add_argument(
        "--logical-date",
        type=logical_date,
        default="now",
        metavar="now|none|TIME",
        help="the runs' logical date: now (as the UI triggers; default), none, or an "
        "ISO 8601 time with a zone",
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=600, help="seconds for the runs to finish"
    )
    parser.add_argument("--junit", type=output_file, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--json", type=output_file, metavar="FILE", help="write JSON here")


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "verify", help="run DAGs end-to-end (default: the example DAGs) and report each task"
    )
    add_run_options(parser)
    parser.add_argument(
        "--discover-timeout",
        type=positive_seconds,
        default=90,
        help="seconds to wait for a DAG to be parsed (default 90)",
    )
    parser.add_argument("--url", help="Airflow API base URL (default: this project's api-server)")
    parser.add_argument(
        "--user",
        help=f"API user (default: .env's admin); the password is read from ${PASSWORD_ENV}",
    )
    parser.set_defaults(run=run)


def client_for(args: argparse.Namespace, ctx: Context) -> AirflowClient:
    if args.user:
        password = os.environ.get(PASSWORD_ENV)
        if not password:
            raise UsageError(
                f"--user needs the password in the environment variable {PASSWORD_ENV}"
            )
        credentials = Credentials(args.user, password)
    else:
        credentials = Credentials(
            ctx.settings.airflow_admin_user, ctx.settings.airflow_admin_password
        )
    url = args.url or ctx.stack.api_url()
    return AirflowClient(url, credentials)


def confs(args: argparse.Namespace) -> dict[str, JSON]:
    return (args.conf_file or {}) | dict(args.conf)


def verify_and_report(
    args: argparse.Namespace,
    client: Callable[[], AirflowClient],
    dag_ids: list[str],
    discover_timeout: float,
    progress: Progress,
    reports: ReportFiles,
) -> None:
    """Run the DAGs, print the report, write the files asked for (also when the
    runs could not even start), and raise VerificationError unless all succeeded."""
    outcome = Outcome()
    try:
        outcome.runs = verify(
            client(),
            dag_ids,
            args.timeout,
            discover_timeout,
            progress,
            confs(args),
            logical_date_source(args.logical_date),
        )
    except DagImportError as error:
        outcome.problems = error.problems
        raise
    except ClusterError as error:
        outcome.error = str(error)
        raise
    except KeyboardInterrupt:
        outcome.error = "interrupted before the runs finished"
        raise
    finally:
        reports.write(
            verify_report(outcome.runs, outcome.problems, outcome.error), outcome.as_json()
        )
    print(format_report(outcome.runs))
    failed = outcome.failed_runs
    if failed:
        names = ", ".join(f"{run.dag_id} ({run.state})" for run in failed)
        raise VerificationError(
            f"{len(failed)} of {len(outcome.runs)} DAG runs did not succeed: {names}"
        )
    progress(f"verified {len(outcome.runs)} DAG run(s)")


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    reports = ReportFiles(args.junit, args.json)
    verify_and_report(
        args, lambda: client_for(args, ctx), args.dag, args.discover_timeout, progress, reports
    )
    return 0
