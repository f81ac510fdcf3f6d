"""The local SageMaker API's HTTP side: SageMaker's two wire protocols, in front of
:class:`local_aws.sagemaker.api.LocalSageMaker`.

* ``sagemaker`` (JSON 1.1, ``POST /`` with ``X-Amz-Target: SageMaker.<Operation>``): the request
  body goes to :meth:`LocalSageMaker.call`; an :class:`~local_aws.clients.ApiError` answers with
  SageMaker's error shape (``__type``, ``message``, the ``x-amzn-ErrorType`` header).
* ``sagemaker-runtime`` (REST-JSON, ``POST /endpoints/<name>/invocations``): InvokeEndpoint.
* ``GET /ping``: readiness.
"""

from __future__ import annotations

import json
import os
import re
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from local_aws import procs
from local_aws.clients import ApiError

if TYPE_CHECKING:
    from local_aws.sagemaker.api import LocalSageMaker

INVOCATIONS = re.compile(r"^/endpoints/([^/]+)/invocations$")


def make_handler(api: LocalSageMaker) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "LocalSageMaker/1"
        disable_nagle_algorithm = procs.NO_NAGLE  # headers and body in two writes: no 40 ms wait

        def log_message(self, format: str, *args: Any) -> None:  # quiet: the audit log records calls
            return

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("x-amzn-RequestId", os.urandom(16).hex())
            self.end_headers()
            self.wfile.write(body)

        def _error(self, error: ApiError, *, json_type: str) -> None:
            body = json.dumps({"__type": error.code, "message": error.message, "Message": error.message,
                               **error.fields})
            self._send(error.status, body.encode(), {"Content-Type": json_type, "x-amzn-ErrorType": error.code})

        def do_GET(self) -> None:
            if self.path == "/ping":
                self._send(200, b"{}", {"Content-Type": "application/json"})
            else:
                self._error(ApiError("UnknownOperationException", f"GET {self.path}", 404),
                            json_type="application/json")

        def do_POST(self) -> None:
            body = self._body()
            match = INVOCATIONS.match(self.path.split("?", 1)[0])
            if match:
                try:
                    api.audit("InvokeEndpoint", {"EndpointName": unquote(match.group(1))},
                              self.headers.get("User-Agent", ""), None)
                    status, payload, headers = api.endpoints.invoke(
                        unquote(match.group(1)), body, self.headers.get("Content-Type"), self.headers.get("Accept"))
                    self._send(status, payload, headers)
                except ApiError as error:
                    self._error(error, json_type="application/json")
                return
            target = self.headers.get("X-Amz-Target", "")
            json_type = "application/x-amz-json-1.1"
            if not target.startswith("SageMaker."):
                self._error(ApiError("UnknownOperationException", f"no X-Amz-Target SageMaker.* in POST {self.path}"),
                            json_type=json_type)
                return
            try:
                params = json.loads(body or b"{}")
                result = api.call(target.split(".", 1)[1], params, self.headers.get("User-Agent", ""))
                self._send(200, json.dumps(result).encode(), {"Content-Type": json_type})
            except ApiError as error:
                self._error(error, json_type=json_type)
            except json.JSONDecodeError as decode_error:
                self._error(ApiError("SerializationException", str(decode_error)), json_type=json_type)
            except Exception as unexpected:  # a bug here must reach the caller, not vanish
                self._error(ApiError("InternalFailure", f"{type(unexpected).__name__}: {unexpected}", 500),
                            json_type=json_type)

    return Handler
