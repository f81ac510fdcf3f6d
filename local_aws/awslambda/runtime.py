"""The Lambda runtime: one warm worker process per function, invoked as Lambda invokes it.

Each function runs in its own process (:mod:`local_aws.awslambda.worker`, the handler imported by
its dotted path in :data:`o2v_core.functions.FUNCTIONS`, as Lambda's ``_HANDLER``), with the
function's timeout; its stderr goes to the function's log group, as Lambda's does. Invocations of
one function are serialized (concurrency 1).
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from o2v_core.functions import FunctionSpec

from local_aws import procs
from local_aws.clients import Clients, LogForwarder


def function_name(deployment: str, spec: FunctionSpec) -> str:
    """The local Lambda function name of ``spec``."""
    return f"{deployment}-{spec.function_id}".replace("_", "-")


class LambdaFunction:
    """One warm worker process for one function; invocations are serialized (concurrency 1)."""

    def __init__(self, spec: FunctionSpec, env: Mapping[str, str], clients: Clients, log_dir: Path,
                 echo: Callable[[str, str], None] | None = None) -> None:
        self.spec = spec
        self.env = dict(env)
        self.clients = clients
        self.log_dir = log_dir
        self.echo = echo
        self.name = env["AWS_LAMBDA_FUNCTION_NAME"]
        self.process: subprocess.Popen[bytes] | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._forwarder: LogForwarder | None = None

    def start(self) -> None:
        stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        env = {**self.env, "AWS_LAMBDA_LOG_STREAM_NAME": stream}
        self._forwarder = LogForwarder(self.clients, env["AWS_LAMBDA_LOG_GROUP_NAME"], stream)
        self.process = procs.spawn_group_leader(
            [sys.executable, "-u", "-m", "local_aws.awslambda.worker", "--function", self.spec.function_id],
            env=env)
        self._replies = queue.Queue()
        self._threads = [
            threading.Thread(target=self._read_replies, args=(self.process, self._replies), daemon=True),
            threading.Thread(target=self._read_logs, args=(self.process, self._forwarder), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_replies(self, process: subprocess.Popen[bytes], replies: queue.Queue[dict[str, Any] | None]) -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                replies.put(json.loads(raw))
        replies.put(None)

    def _read_logs(self, process: subprocess.Popen[bytes], forwarder: LogForwarder) -> None:
        assert process.stderr is not None
        with (self.log_dir / f"{self.name}.log").open("ab") as log:
            for raw in process.stderr:
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                forwarder.add(line)
                if self.echo is not None:
                    self.echo(self.spec.function_id, line)

    def invoke(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Invoke synchronously; Lambda's error shape on failure, timeout or crash."""
        with self._lock:
            if self.process is None or self.process.poll() is not None:
                self.stop()
                self.start()
            assert self.process is not None and self.process.stdin is not None
            request_id = str(uuid.uuid4())
            deadline = time.time() + self.spec.timeout_seconds
            line = json.dumps({"requestId": request_id, "event": event, "deadlineMs": int(deadline * 1000)})
            try:
                self.process.stdin.write(line.encode() + b"\n")
                self.process.stdin.flush()
            except OSError as error:
                return {"ok": False, "errorType": "Runtime.ExitError", "errorMessage": f"worker gone: {error}"}
            try:
                reply = self._replies.get(timeout=self.spec.timeout_seconds)
            except queue.Empty:
                self.stop()  # Lambda discards a timed-out execution environment
                return {"ok": False, "errorType": "Sandbox.Timedout",
                        "errorMessage": f"Task timed out after {self.spec.timeout_seconds:.2f} seconds"}
            if reply is None:
                code = self.process.wait()
                return {"ok": False, "errorType": "Runtime.ExitError",
                        "errorMessage": f"the function's process exited with status {code}; see "
                                        f"{self.log_dir / (self.name + '.log')}"}
            return reply

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                with contextlib.suppress(OSError):
                    process.stdin.close()
            procs.stop_group(process, grace_seconds=5)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
