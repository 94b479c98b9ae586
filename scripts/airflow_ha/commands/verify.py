"""`verify`: trigger DAGs through the REST API and report every task."""

import argparse
import os

from airflow_ha.airflow_api import AirflowClient, Credentials
from airflow_ha.argtypes import positive_seconds
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.errors import UsageError, VerificationError
from airflow_ha.verify import format_report, verify

PASSWORD_ENV = "AIRFLOW_PASSWORD"


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "verify", help="run DAGs end-to-end (default: the example DAGs) and report each task"
    )
    parser.add_argument(
        "--dag", action="append", default=[], metavar="ID", help="DAG id (repeatable)"
    )
    parser.add_argument(
        "--timeout", type=positive_seconds, default=600, help="seconds for the runs to finish"
    )
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


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    client = client_for(args, ctx)
    runs = verify(client, args.dag, args.timeout, args.discover_timeout, progress)
    print(format_report(runs))
    failed = [run for run in runs if not run.succeeded]
    if failed:
        names = ", ".join(f"{run.dag_id} ({run.state})" for run in failed)
        raise VerificationError(f"{len(failed)} of {len(runs)} DAG runs did not succeed: {names}")
    progress(f"verified {len(runs)} DAG run(s)")
    return 0
