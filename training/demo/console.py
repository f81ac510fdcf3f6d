"""The demo's progress lines and run directories."""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

from training.demo.options import DemoError


class Console:
    """Timestamped progress lines, safe to call from any thread."""

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def line(self, tag: str, message: str) -> None:
        with self._lock:
            elapsed = time.monotonic() - self.started
            print(f"[{elapsed:6.1f}s] {tag:<9} {message}", file=self.stream, flush=True)

    def plain(self, message: str = "") -> None:
        with self._lock:
            print(message, file=self.stream, flush=True)


def new_run_dir(runs_dir: Path) -> Path:
    """``runs/<timestamp>/``; a second run in the same second gets a suffix."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    for suffix in ("", *(f"-{index}" for index in range(2, 100))):
        candidate = runs_dir / f"{stamp}{suffix}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise DemoError(f"cannot create a new run directory under {runs_dir}")


def short(job_name: str) -> str:
    """``o2v-dev-stsb-demo-a2`` -> ``a2``."""
    return job_name.rsplit("-", 1)[-1]

