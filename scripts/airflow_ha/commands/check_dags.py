"""`check-dags`: parse a DAG folder with Airflow's DagBag in a container, no cluster."""

import argparse
from pathlib import Path

from airflow_ha.argtypes import output_file
from airflow_ha.console import Progress
from airflow_ha.context import Context
from airflow_ha.dag_check import DagCheck, check_folder, format_check, run_check
from airflow_ha.errors import VerificationError
from airflow_ha.images import ImageBuilder
from airflow_ha.junit import dag_check_report
from airflow_ha.report_files import ReportFiles


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "check-dags",
        help="import every DAG file with Airflow's DagBag in a container (no cluster)",
    )
    parser.add_argument(
        "--dags-dir",
        type=Path,
        help="DAG folder (default: AIRFLOW_DAGS_DIR of .env, else ./dags)",
    )
    parser.add_argument("--junit", type=output_file, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--json", type=output_file, metavar="FILE", help="write JSON here")
    parser.set_defaults(run=run)


def check_dags(ctx: Context, folder: Path, progress: Progress) -> DagCheck:
    """The Airflow image (built if missing or stale), then one parse of `folder`."""
    check_folder(folder)  # before a build that may take minutes
    image = ImageBuilder(ctx.docker, ctx.tool_settings, progress).ensure_airflow()
    progress(f"parsing {folder} with Airflow's DagBag in {image} (no network)")
    return run_check(ctx.docker, image, folder)


def require_clean(check: DagCheck, folder: Path) -> None:
    if check.errors:
        raise VerificationError(
            f"{len(check.errors)} DAG file(s) in {folder} failed to import: "
            + ", ".join(check.errors)
        )
    if not check.dag_ids:
        raise VerificationError(f"no DAG found in {folder}")


def checked(ctx: Context, folder: Path, progress: Progress, reports: ReportFiles) -> DagCheck:
    """Parse `folder`, print and write the result; raise unless every file imported
    and there is at least one DAG."""
    check = check_dags(ctx, folder, progress)
    reports.write(dag_check_report(check), check.as_json())
    print(format_check(check, folder))
    require_clean(check, folder)
    return check


def run(args: argparse.Namespace, ctx: Context) -> int:
    progress = Progress()
    reports = ReportFiles(args.junit, args.json)
    with reports.on_error("check-dags"):
        folder = args.dags_dir.resolve() if args.dags_dir else ctx.default_dags_dir()
        checked(ctx, folder, progress, reports)
    return 0
