"""Command line entry point: parse, dispatch, and turn known errors into one line."""

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from python_on_whales.exceptions import DockerException

from airflow_ha.commands import (
    backup,
    bench,
    bench_scaling,
    build,
    chaos,
    check_dags,
    clean,
    credentials,
    down,
    lab,
    logs,
    maintenance,
    resources,
    restore,
    scale,
    smoke,
    status,
    swarm,
    up,
    users,
    verify,
)
from airflow_ha.context import Context
from airflow_ha.errors import ClusterError, ExitCode
from airflow_ha.paths import DEFAULT_ENV_FILE

COMMANDS = (
    up,
    down,
    clean,
    status,
    resources,
    maintenance,
    backup,
    restore,
    scale,
    logs,
    verify,
    check_dags,
    smoke,
    lab,
    chaos,
    bench,
    bench_scaling,
    credentials,
    users,
    build,
    swarm,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit with ExitCode.USAGE."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="airflow-ha", description=__doc__)
    parser.add_argument(
        "--env-file", type=Path, default=DEFAULT_ENV_FILE, help="settings file (default: ./.env)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="tracebacks on errors")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = Context(env_file=args.env_file, verbose=args.verbose)
    try:
        return int(args.run(args, ctx))
    except ClusterError as error:
        if error.details:
            print(error.details, file=sys.stderr)
        print(f"airflow-ha: error: {error}", file=sys.stderr)
        if args.verbose:
            traceback.print_exc()
        return int(error.exit_code)
    except DockerException as error:
        # Docker's own explanation comes first; the last line stays the one-line summary.
        print("\n".join((error.stderr or "").strip().splitlines()[-10:]), file=sys.stderr)
        what = error.docker_command[1] if len(error.docker_command) > 1 else "command"
        print(
            f"airflow-ha: error: docker {what} failed (exit {error.return_code})", file=sys.stderr
        )
        if args.verbose:
            traceback.print_exc()
        return int(ExitCode.DOCKER)
    except KeyboardInterrupt:
        print("airflow-ha: interrupted", file=sys.stderr)
        return 130
