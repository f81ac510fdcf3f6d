"""The inference server processes behind the local SageMaker API's endpoints.

One :class:`Server` per deployed production variant: ``python -m training.serving`` (SageMaker's
serving contract: ``GET /ping``, ``POST /invocations``) on a loopback port, its output copied to a
log file and to the local Logs group ``/aws/sagemaker/Endpoints/<endpoint>``. The endpoints that
start and stop them are :mod:`local_aws.sagemaker.endpoints`; transform jobs
(:mod:`local_aws.sagemaker.transform_jobs`) start one per instance with :func:`start_server`, as
SageMaker runs the same serving container for both.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_aws import procs
from local_aws.clients import ApiError, Clients, LogForwarder, split_s3_uri

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


def start_server(clients: Clients, container: dict[str, Any], directory: Path, command: ServerCommand,
                 forwarder: LogForwarder, *, config_name: str, ready_timeout: float) -> Server:
    """Download the container's ``ModelDataUrl`` from the local S3 into ``directory``, start the
    server with the container's ``Environment`` (and no ``AWS_*`` variable: the container has no
    business calling the local control plane) and wait until ``/ping`` answers 200."""
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / "model.tar.gz"
    bucket, key = split_s3_uri(container["ModelDataUrl"])
    try:
        clients.s3.download_file(bucket, key, str(archive))
    except Exception as error:
        forwarder.close()
        raise ApiError("ValidationException",
                       f"could not download the model artifact {container['ModelDataUrl']}: {error}") from None
    port = procs.free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(container.get("Environment", {}))
    env["PYTHONUNBUFFERED"] = "1"
    process = procs.spawn_in_group(command(archive, port), env=env, cwd=directory, stdout=subprocess.PIPE)
    reader = threading.Thread(target=pump_output, args=(process, forwarder, directory / "server.log"), daemon=True)
    reader.start()
    server = Server(process, port, config_name, forwarder, reader)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not server.alive():
            server.stop()
            raise ApiError("ValidationException",
                           f"the inference server exited with status {process.returncode} before "
                           f"answering /ping; see {directory / 'server.log'}:\n"
                           + procs.tail(directory / "server.log", 10))
        if ping(port):
            return server
        time.sleep(0.2)
    server.stop()
    raise ApiError("ValidationException",
                   f"the inference server did not pass the /ping health check within {ready_timeout:.0f} s")
