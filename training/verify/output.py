"""How ``o2v verify`` prints: progress while it waits, then one line per check (the line format
of ``o2v preflight``: ``passed`` / ``failed`` with the AWS error and what to do / ``could not tell``),
what the clean-up removed, and the verdict with the exit status."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from training.preflight.report import Check, Status

EXIT_PASSED = 0  # every check passed or could not tell
EXIT_FAILED = 1  # a check failed
EXIT_BAD_INPUT = 2  # nothing was created: credentials, stacks, version, subscription slot
EXIT_INTERRUPTED = 130


@dataclass
class Output:
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    started: float = field(default_factory=time.monotonic)
    checks: list[Check] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def progress(self, text: str) -> None:
        self.say(f"  [{time.monotonic() - self.started:6.1f}s] {text}")

    def check(self, check: Check) -> Check:
        self.checks.append(check)
        self.say(check.line())
        return check

    def count(self, status: Status) -> int:
        return sum(1 for check in self.checks if check.status is status)

    def exit_code(self) -> int:
        return EXIT_FAILED if self.count(Status.FAILED) else EXIT_PASSED

    def verdict(self, local: bool) -> str:
        counts = ", ".join(f"{self.count(status)} {status.value}" for status in (Status.PASSED, Status.FAILED,
                                                                                  Status.UNKNOWN))
        where = "local mode" if local else "this account"
        if self.count(Status.FAILED):
            text = f"the deployment does not work as built in {where}: see the failed lines"
        elif self.count(Status.UNKNOWN):
            text = f"nothing failed in {where}; the lines that could not tell need a real account or a look by hand"
        else:
            text = f"the deployed loop works end to end in {where}"
        return f"{counts}: {text} (exit {self.exit_code()})"


Say = Callable[[str], None]
