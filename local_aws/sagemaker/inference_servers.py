"""The inference server processes behind the local SageMaker API's endpoints.

One :class:`Server` per deployed production variant: ``python -m training.serving`` (SageMaker's
serving contract: ``GET /ping``, ``POST /invocations``) on a loopback port, its output copied to a
log file and to the local Logs group ``/aws/sagemaker/Endpoints/<endpoint>``. The endpoints that
start and stop them are :mod:`local_aws.sagemaker.endpoints`.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local_aws import procs
from local_aws.clients import LogForwarder

ServerCommand = Callable[[Path, int], list[str]]


def server_command(threads: int) -> ServerCommand:
    """The local inference server, as SageMaker starts the serving container, on ``threads`` threads."""

    def command(model: Path, port: int) -> list[str]:
        return [sys.executable, "-u", "-m", "training.serving", "--model", str(model), "--port", str(port),
                "--threads", str(threads)]

    return command


@dataclass
class Server:
    """One running inference server (one production variant of one endpoint config)."""

    process: subprocess.Popen[bytes]
    port: int
    config_name: str
    forwarder: LogForwarder
    reader: threading.Thread

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        procs.stop_process(self.process, grace_seconds=10)
        self.reader.join(timeout=5)
        self.forwarder.close()


def ping(port: int) -> bool:
    """Whether the server on ``port`` answers ``GET /ping`` with 200 (SageMaker's health check)."""
    connection = http.client.HTTPConnection(procs.LOOPBACK, port, timeout=2)
    try:
        connection.request("GET", "/ping")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def pump_output(process: subprocess.Popen[bytes], forwarder: LogForwarder, log_path: Path) -> None:
    """Copy the server's output to ``log_path`` and, line by line, to the local Logs (until it exits)."""
    assert process.stdout is not None
    with log_path.open("ab") as log:
        for raw in process.stdout:
            log.write(raw)
            log.flush()
            forwarder.add(raw.decode("utf-8", errors="replace").rstrip("\n"))
    with contextlib.suppress(Exception):
        forwarder.flush()
