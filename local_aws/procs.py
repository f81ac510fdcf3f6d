"""Child processes of local mode: each in its own process group, always stopped, never orphaned.

Every service of local mode (the moto server, the local SageMaker API) runs as a child process
that leads its own process group; the training jobs and inference servers that the SageMaker
API starts join *its* group. Stopping a service therefore signals the whole group: SIGTERM,
a grace period, then SIGKILL. On Linux a service also gets SIGTERM when the process that
started it dies (``PR_SET_PDEATHSIG``), so even a killed ``o2v demo`` leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

LOOPBACK = "127.0.0.1"

# Each reply's headers and body leave in two writes. With Nagle's algorithm on (the socketserver
# default, StreamRequestHandler.disable_nagle_algorithm = False), the body waits for the client's
# ACK of the headers, which the client delays (TCP delayed acknowledgement, up to about 40 ms on
# Linux, RFC 1122 4.2.3.2): every call then takes 40 ms more. Our local servers (moto's, the
# local SageMaker API) therefore send each segment at once.
# https://docs.python.org/3/library/socketserver.html#socketserver.StreamRequestHandler
NO_NAGLE = True


def _set_parent_death_signal() -> None:  # runs in the child, between fork and exec
    if sys.platform.startswith("linux"):
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            libc = ctypes.CDLL(libc_name, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def spawn_group_leader(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    log_path: Path | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``command`` as the leader of a new process group (and session).

    Output goes to ``log_path``; without one, stdin, stdout and stderr are pipes. The caller
    must be a thread that lives as long as the child (the parent-death signal is tied to the
    creating thread); ``o2v demo`` starts its services from its main thread.
    """
    if log_path is None:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal,
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_set_parent_death_signal,
        )


def spawn_in_group(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    stdout: int | IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a worker (trainer, inference server) inside the caller's own process group."""
    return subprocess.Popen(
        list(command),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )


def group_alive(pgid: int) -> bool:
    """Whether any process is still in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(process: subprocess.Popen[bytes], *, grace_seconds: float = 10.0) -> None:
    """SIGTERM the process group led by ``process``, wait, then SIGKILL whatever is left."""
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=max(0.0, grace_seconds))
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def stop_process(process: subprocess.Popen[bytes], *, grace_seconds: float = 10.0) -> int | None:
    """SIGTERM one process, wait, then SIGKILL it; returns its exit status."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    return process.poll()


def wait_for_ready_file(path: Path, process: subprocess.Popen[bytes], *, what: str, log_path: Path,
                        timeout: float = 60.0) -> dict[str, Any]:
    """Wait until a child writes its JSON ready file; fail clearly when it dies or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                data: dict[str, Any] = json.loads(path.read_text())
                return data
            except json.JSONDecodeError:
                pass  # written atomically, but be tolerant of a racing reader
        code = process.poll()
        if code is not None:
            raise RuntimeError(f"{what} exited with status {code} before it was ready; see {log_path}:\n"
                               + tail(log_path))
        time.sleep(0.05)
    raise RuntimeError(f"{what} was not ready after {timeout:.0f} s; see {log_path}:\n" + tail(log_path))


def write_ready_file(path: Path, data: Mapping[str, Any]) -> None:
    """Write a ready file atomically (the parent polls for it)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(dict(data)))
    temporary.replace(path)


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def free_port() -> int:
    """A free loopback TCP port (for servers that cannot report the port they bound)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port
