"""The JUnit and JSON files a CI job asked for, written whatever happens.

A command writes its full report when it has one; if it stops before that (a
missing folder, a cluster that did not start, Ctrl-C), `on_error` writes a
report that says why, so a pipeline's JUnit step never finds an empty file.
"""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from python_on_whales.exceptions import DockerException

from airflow_ha.errors import ClusterError
from airflow_ha.junit import error_report


class ReportFiles:
    def __init__(self, junit: Path | None, json_file: Path | None) -> None:
        self.junit = junit
        self.json_file = json_file
        self.written = False

    def write(self, junit_xml: str, json_value: Any) -> None:
        if self.junit:
            self.junit.write_text(junit_xml)
        if self.json_file:
            self.json_file.write_text(json.dumps(json_value, indent=2) + "\n")
        self.written = True

    @contextmanager
    def on_error(self, command: str) -> Iterator["ReportFiles"]:
        """Unless a report was written, turn a known error into a failing one."""
        try:
            yield self
        except (ClusterError, DockerException, KeyboardInterrupt) as error:
            if not self.written:
                if isinstance(error, KeyboardInterrupt):
                    message = "interrupted"
                elif isinstance(error, DockerException):
                    message = f"docker failed (exit {error.return_code})"
                else:
                    message = str(error)
                details = getattr(error, "details", "") or ""
                self.write(
                    error_report(command, message, details),
                    {"ok": False, "error": message, "details": details},
                )
            raise
