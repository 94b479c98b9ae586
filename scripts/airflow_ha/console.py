"""Progress output: plain lines on stderr, with elapsed time, so logs stay readable."""

import sys
import time
from collections.abc import Sequence
from typing import TextIO


class Progress:
    """Prints `[  12s] message` lines; the clock starts when the object is made."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._start = time.monotonic()
        self._stream = stream if stream is not None else sys.stderr

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def __call__(self, message: str) -> None:
        print(f"[{self.elapsed:5.0f}s] {message}", file=self._stream, flush=True)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
