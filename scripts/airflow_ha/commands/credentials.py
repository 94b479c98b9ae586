"""`credentials`: print the logins of the UI and Flower (only when asked)."""

import argparse

from airflow_ha.context import Context


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser("credentials", help="print the UI and Flower logins")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    settings = ctx.settings
    print(
        f"Airflow UI / REST API  user: {settings.airflow_admin_user}  "
        f"password: {settings.airflow_admin_password}"
    )
    print(f"Flower                 user: flower  password: {settings.flower_password}")
    return 0
