"""Ctrl-C, SIGTERM and SIGHUP in ``o2v demo``: stop the run, never the clean-up.

While the demo runs, each of the three signals raises :class:`Interrupted` in the main thread, so
the run stops where it is and the clean-up runs. During the clean-up they are only noted: a second
Ctrl-C, or the SIGTERM a terminal or a supervisor sends after it, must not cut the clean-up short
(that left process groups behind) nor turn a run that had succeeded into exit 130.

An interrupted run leaves a partial ``report.md`` in its run directory saying so, the stage it was
in and what it had written, unless the full report was written already.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType

from training.atomic import atomic_file
from training.demo.report import REPORT_FILE

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NAMES = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Interrupted(KeyboardInterrupt):
    """A signal stopped the run; ``how`` names it."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class SignalGuard:
    """Signals raise :class:`Interrupted` until :meth:`cleaning_up`; after that they are noted."""

    def __init__(self) -> None:
        self.raising = True
        self.noted: list[str] = []

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        how = NAMES.get(signal.Signals(signum), signal.Signals(signum).name)
        if self.raising:
            raise Interrupted(how)
        self.noted.append(how)

    def cleaning_up(self) -> None:
        self.raising = False


@contextmanager
def guarded_signals() -> Iterator[SignalGuard]:
    guard = SignalGuard()
    previous = {sig: signal.signal(sig, guard._handle) for sig in SIGNALS}
    try:
        yield guard
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def how_interrupted(error: KeyboardInterrupt) -> str:
    return error.how if isinstance(error, Interrupted) else NAMES[signal.SIGINT]


def write_interrupted_report(run_dir: Path, *, how: str, stage: str, started: float) -> Path | None:
    """A short ``report.md`` for a run that did not finish; None if the full report exists."""
    report = run_dir / REPORT_FILE
    if report.exists() or not run_dir.is_dir():
        return None
    written = sorted(path.name + ("/" if path.is_dir() else "") for path in run_dir.iterdir()
                     if not path.name.startswith("."))
    listing = "\n".join(f"- `{name}`" for name in written) or "- nothing yet"
    text = f"""# o2v demo: interrupted

**This run did not finish.** It was interrupted by {how} at {datetime.now().isoformat(timespec="seconds")},
{time.monotonic() - started:.0f} s after it started, during stage **{stage}**. There is no result:
no model was evaluated and this report replaces the full one. The local services and every process
of the run were stopped.

What the run had written in this directory:

{listing}

Start a new run with `o2v demo`.
"""
    with atomic_file(report) as staging:
        staging.write_text(text, encoding="utf-8")
    return report
