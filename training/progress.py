"""Progress reporting on stderr (stdout is reserved for results and metric lines)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Prints ``label: message`` at most every ``interval`` seconds (always when forced)."""

    def __init__(self, label: str, *, interval: float = 2.0, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.label = label
        self.interval = interval
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self._last = time.monotonic()

    def update(self, message: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not force and now - self._last < self.interval):
            return
        self._last = now
        print(f"{self.label}: {message}", file=self.stream, flush=True)
