"""Run README commands in a fresh shell, as a user who just cloned the repository would.

The shell starts from ``env -i``: ``HOME`` (a fresh directory) and ``PATH=/usr/bin:/bin`` only,
the repository root as its working directory, so a command that relies on something the README
does not set up (a venv on ``PATH``, an exported variable) fails here as it would for the user.
One exception: when the suite itself runs with ``PYTHONPATH`` (a git worktree whose ``.venv`` is
another checkout's editable install), it is passed on so that the commands run this checkout's
code; ``make test`` on a clone sets none.

Each command is followed by a marker line with its exit status; the script stops at the first
failure. The shell gets its own process group, killed at the end, so a command the README runs
in the background (``o2v serve ... &``) does not outlive the test.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.readme.blocks import REPO_ROOT

MARKER = "@@readme-command"
MARKER_LINE = re.compile(rf"^{MARKER} (\d+) rc=(\d+)$", re.MULTILINE)


@dataclass(frozen=True)
class ShellRun:
    script: str
    output: str  # stdout and stderr together
    returncode: int
    statuses: dict[int, int]  # command index -> exit status

    def describe(self) -> str:
        return f"script:\n{self.script}\n--- output (last 6000 characters):\n{self.output[-6000:]}"


def clean_environment(home: Path) -> dict[str, str]:
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def script_of(lines: list[list[str]]) -> str:
    """One script: each README command's lines, then its marker; stop at the first failure."""
    parts = []
    for index, command_lines in enumerate(lines):
        if not command_lines:
            continue
        body = " &&\n".join(command_lines)  # one README command's stand-ins fail together
        parts.append(f"{body}\n__rc=$?; echo; echo \"{MARKER} {index} rc=$__rc\"; "
                     f"[ $__rc -eq 0 ] || exit $__rc")
    return "\n".join(parts) + "\n"


def run_in_clean_shell(lines: list[list[str]], home: Path, *, timeout: float, cwd: Path = REPO_ROOT) -> ShellRun:
    # Background commands (`o2v serve ... &`) are stopped when the script ends, however it ends.
    script = "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + script_of(lines)
    home.mkdir(parents=True, exist_ok=True)
    log = home / "shell-output.txt"
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            ["/usr/bin/env", "-i", *(f"{key}={value}" for key, value in clean_environment(home).items()),
             "/bin/bash", "--noprofile", "--norc", "-c", script],
            cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        try:
            returncode = process.wait(timeout=timeout)
            timed_out = ""
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            returncode = process.wait()
            timed_out = f"\n(timed out after {timeout:.0f} s)"
        finally:
            _kill_group(process.pid)
    output = log.read_text(encoding="utf-8", errors="replace") + timed_out
    statuses = {int(index): int(code) for index, code in MARKER_LINE.findall(output)}
    return ShellRun(script, output, returncode, statuses)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
