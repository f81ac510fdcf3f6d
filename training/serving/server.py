"""The HTTP server: SageMaker's inference contract on a configurable port, served by waitress.

``GET /ping`` answers 200 once the model is loaded; ``POST /invocations`` runs
:class:`training.serving.predictor.Predictor`. Bad requests get a 4xx with
``{"error": "<message>"}``; an unexpected failure gets a 500; either way the server keeps
serving.

Why waitress (a production WSGI server, pure Python) rather than ``http.server``: one I/O thread
multiplexes every connection with ``poll()`` and a fixed pool of worker threads runs requests, so
idle or slow connections cost a socket, not a thread; the listen backlog is 2048 rather than
``socketserver``'s 5 (which dropped SYNs under connection churn); at most ``max_connections``
connections are open at once (more wait in the backlog); a request is dispatched only once its
whole body has arrived, so a client that announces more bytes than it sends cannot hold a worker.
docs/benchmarks.md ("Inference server under load") measures it against the former stdlib server.

Framing errors are answered by waitress itself, in plain text: a malformed ``Content-Length``
(``-1``, ``abc``) gets 400, a body over ``max_body_bytes`` 413. A request whose headers or body
stop arriving gets 408 after ``read_timeout`` seconds (waitress alone would close such a
connection without an answer); an idle keep-alive connection is closed after ``idle_timeout``.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from o2v_core.aws_quotas import INVOKE_ENDPOINT_MAX_BODY_BYTES
from waitress import wasyncore  # type: ignore[import-untyped]
from waitress.adjustments import Adjustments  # type: ignore[import-untyped]
from waitress.server import TcpWSGIServer  # type: ignore[import-untyped]

from training.serving.predictor import Predictor, RequestError, response_type

# Reports that infer_max_seqlens was lowered to the model's maximum. InvokeEndpoint passes back only
# its modelled response headers (botocore sagemaker-runtime InvokeEndpointOutput: Content-Type,
# x-Amzn-Invoked-Production-Variant, X-Amzn-SageMaker-Custom-Attributes), so behind an endpoint the
# report is the log line, in the endpoint's log group.
CLAMPED_HEADER = "X-O2V-Infer-Max-Seqlens"

DEFAULT_PORT = 8080
DEFAULT_MAX_BODY_BYTES = INVOKE_ENDPOINT_MAX_BODY_BYTES
DEFAULT_MAX_CONNECTIONS = 4096
DEFAULT_READ_TIMEOUT = 10  # seconds for a request's headers and body to arrive
DEFAULT_IDLE_TIMEOUT = 60  # seconds an idle keep-alive connection is kept
DEFAULT_WORKERS = 4  # request threads; inference itself is serialised by the Predictor
BACKLOG = 2048
JSON = "application/json"

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class InferenceApp:
    """The WSGI application: routing, the body's presence, and JSON answers."""

    def __init__(self, predictor: Predictor, *, quiet: bool = False) -> None:
        self.predictor = predictor
        self.quiet = quiet

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.monotonic()
        notes: list[str] = []
        status, body, content_type = self.answer(environ, notes)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        if notes:
            headers.append((CLAMPED_HEADER, "; ".join(notes)))
            for note in notes:  # always logged, even with --quiet: it changes the answer
                sys.stderr.write(f"serve: warning: {note}\n")
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        if not self.quiet:
            sys.stderr.write(f"serve: {environ.get('REMOTE_ADDR', '-')} {environ['REQUEST_METHOD']} "
                             f"{environ.get('PATH_INFO', '')} {status} "
                             f"{1000 * (time.monotonic() - started):.1f} ms\n")
        return [body]

    def answer(self, environ: dict[str, Any], notes: list[str]) -> tuple[int, bytes, str]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        if path == "/ping":
            if method in ("GET", "HEAD"):
                return HTTPStatus.OK, b"{}", JSON
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, "use GET /ping or POST /invocations")
        if path != "/invocations":
            return _error(HTTPStatus.NOT_FOUND, f"no such path {path!r}; use GET /ping or POST /invocations")
        if method != "POST":
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, "use POST /invocations")
        try:
            # waitress has read the whole body (or answered 400/413/408 itself) before calling us;
            # a body without Content-Length or chunked framing arrives as no header at all.
            if "CONTENT_LENGTH" not in environ:
                raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
            body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"] or 0))
            parsed = self.predictor.parse(body, environ.get("CONTENT_TYPE"))
            accept = response_type(environ.get("HTTP_ACCEPT"), parsed.kind)
            notes.extend(parsed.notes)
            predictions = self.predictor.predict(parsed.instances, parsed.limits)
            return HTTPStatus.OK, Predictor.render(predictions, accept), accept
        except RequestError as error:
            return _error(error.status, error.message)
        except Exception as error:  # keep serving whatever happens
            return _error(HTTPStatus.INTERNAL_SERVER_ERROR, f"inference failed: {type(error).__name__}: {error}")


def _error(status: int, message: str) -> tuple[int, bytes, str]:
    return status, json.dumps({"error": message}).encode(), JSON


def _timeout_answer(read_timeout: int) -> bytes:
    body = json.dumps({"error": f"the request's headers or body did not arrive within {read_timeout} s "
                                "(is Content-Length larger than the body?)"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class _Listener(TcpWSGIServer):  # type: ignore[misc]
    """waitress's TCP server, with a 408 for requests that stop arriving (checked every second)."""

    read_timeout = DEFAULT_READ_TIMEOUT

    def handle_accept(self) -> None:
        # waitress accepts one connection per pass of its I/O loop, and a pass visits every open
        # connection: a burst of 2,000 connects took seconds to accept, and a /ping waited in the
        # backlog behind them. Drain the backlog in one pass instead (up to the connection cap).
        for _ in range(BACKLOG):
            before = len(self._map)
            if before >= self.adj.connection_limit:
                return
            super().handle_accept()
            if len(self._map) == before:
                return  # nothing more to accept (or a failed accept, already logged)

    def maintenance(self, now: float) -> None:
        super().maintenance(now)  # closes connections idle for channel_timeout
        for channel in list(self.active_channels.values()):
            partial = channel.request
            if partial is None or channel.requests or channel.will_close or channel.close_when_flushed:
                continue  # idle, busy, or closing already
            begun = partial.__dict__.setdefault("o2v_first_seen", now)
            if now - begun < self.read_timeout:
                continue
            payload = _timeout_answer(self.read_timeout)
            with channel.requests_lock:  # the same steps as waitress's own send_continue()
                channel.request = None
                with channel.outbuf_lock:
                    channel.outbufs[-1].append(payload)
                    channel.current_outbuf_count += len(payload)
                    channel.total_outbufs_len += len(payload)
                channel.close_when_flushed = True


def raise_open_files_limit(wanted: int) -> None:
    """Each connection is a file descriptor; lift the soft limit towards the hard one if needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class InferenceServer:
    def __init__(self, predictor: Predictor, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES, quiet: bool = False,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, read_timeout: int = DEFAULT_READ_TIMEOUT,
                 idle_timeout: int = DEFAULT_IDLE_TIMEOUT, workers: int = DEFAULT_WORKERS) -> None:
        self.predictor = predictor
        self.max_body_bytes = max_body_bytes
        self.quiet = quiet
        raise_open_files_limit(max_connections + 64)
        # Under load waitress warns "Task queue depth is N" for every queued request: expected here.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        if quiet:
            logging.getLogger("waitress").setLevel(logging.ERROR)
        adjustments = Adjustments(
            host=host, port=port, threads=workers, backlog=BACKLOG, connection_limit=max_connections,
            channel_timeout=idle_timeout, cleanup_interval=1, asyncore_use_poll=True,
            max_request_body_size=max_body_bytes, ident="o2v-serve", expose_tracebacks=False,
        )
        self._map: dict[int, Any] = {}
        self._listener = _Listener(InferenceApp(predictor, quiet=quiet), map=self._map, adj=adjustments)
        self._listener.read_timeout = read_timeout
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple[str, int]:
        return str(self._listener.effective_host), int(self._listener.effective_port)

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        try:
            wasyncore.loop(timeout=self._listener.adj.asyncore_loop_timeout, map=self._map, use_poll=True)
        finally:
            self._listener.task_dispatcher.shutdown()
            self._stopped.set()

    def start_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="o2v-serve", daemon=True)
        thread.start()
        return thread

    def shutdown(self) -> None:
        """Stop serving (from another thread): close every socket in the I/O thread, then wait."""
        self._listener.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
        self._stopped.wait(timeout=30)

    def server_close(self) -> None:
        if self._map:
            wasyncore.close_all(self._map)
        if not self._stopped.is_set():
            self._listener.task_dispatcher.shutdown()
