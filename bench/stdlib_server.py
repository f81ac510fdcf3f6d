"""The baseline for the server section: the inference server as it was before waitress.

``http.server.ThreadingHTTPServer`` (one thread per connection, ``socketserver``'s listen backlog
of 5, no connection cap, reads without a timeout) with the same Predictor, byte for byte the
``training/serving/server.py`` of commit 51e7b8f. Bench-only: ``python -m bench.stdlib_server
--model PATH --port N``. It is what a user gets from the standard library, kept so one bench run
measures the old and the new server side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from training.serving.predictor import Predictor, RequestError, response_type

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints' payload limit


class InferenceServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, quiet: bool = False) -> None:
        self.predictor = predictor
        self.max_body_bytes = max_body_bytes
        self.quiet = quiet
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="o2v-serve", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"
    server_version = "o2v-serve"
    # Headers and body go out in separate writes; with Nagle on, a small response waits ~40 ms
    # for the client's delayed ACK (measured in docs/benchmarks.md).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:
        if not self.server.quiet:
            sys.stderr.write(f"serve: {self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}).encode())

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/ping":
            self._send(HTTPStatus.OK, b"{}")
        elif self.path.split("?")[0] == "/invocations":
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no such path {self.path!r}; use GET /ping or POST /invocations")

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/invocations":
            self._discard_body()
            self._error(HTTPStatus.NOT_FOUND, f"no such path {self.path!r}; use POST /invocations")
            return
        started = time.monotonic()
        try:
            body = self._read_body()
            parsed = self.server.predictor.parse(body, self.headers.get("Content-Type"))
            accept = response_type(self.headers.get("Accept"), parsed.kind)
            predictions = self.server.predictor.predict(parsed.instances, parsed.limits)
            self._send(HTTPStatus.OK, Predictor.render(predictions, accept), accept)
        except RequestError as error:
            self._error(error.status, error.message)
        except Exception as error:  # keep serving whatever happens
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"inference failed: {type(error).__name__}: {error}")
        finally:
            if not self.server.quiet:
                sys.stderr.write(f"serve: invocation took {1000 * (time.monotonic() - started):.1f} ms\n")

    def _read_body(self) -> bytes:
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            self.close_connection = True
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
        try:
            length = int(raw_length)
        except ValueError:
            self.close_connection = True
            raise RequestError(HTTPStatus.BAD_REQUEST, f"Content-Length {raw_length!r} is not a number") from None
        if length > self.server.max_body_bytes:
            self.close_connection = True  # the unread body must not be parsed as the next request
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"request body of {length} bytes exceeds the limit of {self.server.max_body_bytes}")
        return self.rfile.read(length)

    def _discard_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= self.server.max_body_bytes:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _not_allowed(self) -> None:
        self._discard_body()
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping or POST /invocations")

    do_PUT = do_DELETE = do_PATCH = _not_allowed


def _json_before(text: str, where: str) -> object:
    """The Predictor's JSON parsing before the fix: no depth or digit limit (RecursionError and
    ValueError went up as 500s)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise RequestError(400, f"{where}: not valid JSON ({error.msg} at line {error.lineno} "
                                f"column {error.colno})") from None


def main(argv: Sequence[str] | None = None) -> int:
    from training.model.artifact import load
    from training.serving import predictor

    predictor._json = _json_before  # the server as it was, end to end
    from training.trainer.threads import configure_threads

    parser = argparse.ArgumentParser(prog="python -m bench.stdlib_server", description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    server = InferenceServer(Predictor(load(args.model)), "127.0.0.1", args.port, quiet=args.quiet)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
