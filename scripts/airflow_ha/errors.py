"""The one error hierarchy of the package, with the exit code each error maps to.

The CLI prints a known error as one line on stderr and exits with its code;
anything else is a bug and gets a traceback.
"""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    CONFIG = 3
    DOCKER = 4
    TIMEOUT = 5
    VERIFY = 6


class ClusterError(Exception):
    """Base of every error the CLI reports without a traceback."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details


class UsageError(ClusterError):
    exit_code = ExitCode.USAGE


class ConfigError(ClusterError):
    """The .env file or a setting is missing or malformed."""

    exit_code = ExitCode.CONFIG


class DockerUnavailableError(ClusterError):
    """Docker Engine, Compose v2 or a needed host tool is missing or not running."""

    exit_code = ExitCode.DOCKER


class TimeoutExpiredError(ClusterError):
    exit_code = ExitCode.TIMEOUT


class VerificationError(ClusterError):
    """A DAG failed, is missing, or has import errors."""

    exit_code = ExitCode.VERIFY
