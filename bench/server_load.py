"""Section ``server``: the inference server under load and bad input, the former stdlib server vs waitress.

Both servers run as subprocesses on the same model with 2 torch threads, one after the other in
one bench run; each gets, in this order:

1. batch-1 sentences/s over HTTP (one keep-alive connection, the client tokenizes; the same
   requests as the throughput section), against all-MiniLM-L6-v2 in process on the same sentences;
2. ``clients`` client threads, each sending ``requests_per_client`` batch-1 ``/invocations``, once
   over one keep-alive connection per client and once with a new connection per request
   (latency includes the connect; p50/p99/max, 5xx and failed requests);
3. the bad-request set: each raw request on its own connection, read until the server answers
   and closes or ``hang_after`` seconds pass (a hang);
4. ``idle_connections`` connections opened without sending anything, held, then all closed at
   once, while a prober times ``GET /ping`` on a new connection every 100 ms throughout.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.serving import MiniLM, ServerClient
from bench.throughput import _timed, batches_of
from training.serving.server import raise_open_files_limit

SERVERS = {"stdlib": "bench.stdlib_server", "waitress": "training.serving"}
TITLES = {"stdlib": "former server (http.server, thread per connection)", "waitress": "o2v serve (waitress)"}
PROBE_EVERY = 0.1
PROBE_TIMEOUT = 5.0


def bad_requests(good: bytes) -> dict[str, bytes]:
    """Malformed requests around ``good``, a well-formed body."""
    head = b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"

    def framed(body: bytes, length: int | str | None = "exact") -> bytes:
        length = len(body) if length == "exact" else length
        value = b"" if length is None else f"Content-Length: {length}\r\n".encode()
        return head + value + b"\r\n" + body

    return {
        "JSON nested 100,000 levels": framed(b"[" * 100_000 + b"]" * 100_000),
        "token id of 5,000 digits": framed(b'{"instances": [{"in0": [' + b"7" * 5000 + b"]}]}"),
        "Content-Length: -1": framed(good, -1),
        "Content-Length: abc": framed(good, "abc"),
        "Content-Length 1,000 larger than the body": framed(good, len(good) + 1000),
        "headers cut short": b"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Ty",
        "no Content-Length": framed(b"", None),
        "not JSON": framed(b"{oops"),
        "not UTF-8": framed(b'{"instances": [{"in0": [1]}]}\xff'),
    }


def _exchange(port: int, data: bytes, hang_after: float) -> dict[str, Any]:
    started = time.monotonic()
    chunks: list[bytes] = []
    outcome = "answered"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=hang_after) as sock:
            sock.sendall(data)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
    except TimeoutError:
        outcome = "hang"
    except OSError as error:
        outcome = f"error: {error.strerror or error}"
    answer = b"".join(chunks)
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/") and len(answer.split()) > 1 else None
    if outcome == "answered" and status is None:
        outcome = "closed without an answer"
    elif outcome == "hang" and status is not None:
        outcome = "answered"  # answered, then kept the connection open
    return {"status": status, "outcome": outcome, "seconds": round(time.monotonic() - started, 2)}


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def _load(port: int, body: bytes, *, clients: int, per_client: int, keepalive: bool) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()
    headers = {"Content-Type": "application/json"}

    def client() -> None:
        connection: http.client.HTTPConnection | None = None
        for _ in range(per_client):
            tick = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                connection.request("POST", "/invocations", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                with lock:
                    latencies.append(time.perf_counter() - tick)
                    statuses.append(response.status)
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    failures.append(type(error).__name__)
                connection = None
            if not keepalive and connection is not None:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = time.perf_counter() - started
    ms = 1000 * np.asarray(latencies or [float("nan")])
    return {
        "clients": clients, "requests": clients * per_client, "seconds": round(total, 2),
        "requests_per_second": len(latencies) / total,
        "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
        "5xx": sum(status >= 500 for status in statuses), "non_200": sum(status != 200 for status in statuses),
        "failed": len(failures), "failures": sorted(set(failures)),
    }


def _ping(port: int) -> float | None:
    tick = time.perf_counter()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
        connection.request("GET", "/ping")
        ok = connection.getresponse().status == 200
        connection.close()
    except (OSError, http.client.HTTPException):
        return None
    return time.perf_counter() - tick if ok else None


def _idle(port: int, count: int, hold: float, after: float) -> dict[str, Any]:
    raise_open_files_limit(count + 256)
    probes: list[tuple[float, str, float | None]] = []
    phase = ["opening"]
    stop = threading.Event()
    origin = time.perf_counter()

    def prober() -> None:
        while not stop.is_set():
            tick = time.perf_counter()
            probes.append((tick - origin, phase[0], _ping(port)))
            stop.wait(max(0.0, PROBE_EVERY - (time.perf_counter() - tick)))

    thread = threading.Thread(target=prober)
    thread.start()
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        sockets.append(sock)
    poller = select.poll()  # select() stops at file descriptor 1024
    pending = {sock.fileno(): sock for sock in sockets}
    for descriptor in pending:
        poller.register(descriptor, select.POLLOUT)
    deadline = time.monotonic() + 10
    while pending and time.monotonic() < deadline:
        for descriptor, _ in poller.poll(500):
            poller.unregister(descriptor)
            pending.pop(descriptor, None)
    established = sum(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0 for sock in sockets
                      if sock.fileno() not in pending)
    phase[0] = "holding"
    time.sleep(hold)
    phase[0] = "after closing"
    for sock in sockets:
        sock.close()
    time.sleep(after)
    stop.set()
    thread.join()
    by_phase: dict[str, Any] = {}
    for name in ("opening", "holding", "after closing"):
        values = [latency for _, where, latency in probes if where == name]
        answered = [value for value in values if value is not None]
        by_phase[name] = {"probes": len(values), "unanswered": len(values) - len(answered),
                          "max_ms": 1000 * max(answered) if answered else None}
    answered_all = [latency for _, _, latency in probes if latency is not None]
    return {
        "connections": count, "established": established, "hold_seconds": hold, "after_seconds": after,
        "probes": len(probes), "unanswered": sum(latency is None for _, _, latency in probes),
        "max_ping_ms": 1000 * max(answered_all) if answered_all else None, "phases": by_phase,
        "probe_timeout_s": PROBE_TIMEOUT,
    }


def train_model(repo: Path, dataset: Path, work: Path, pairs: int) -> Path:
    """A model at the app's default sizes (cdk.json ``dev``), one epoch on the first ``pairs`` pairs:
    serving speed depends on the sizes, not on how well it learned."""
    import shutil

    from o2v_core.hyperparameters import with_defaults

    from bench.record import manifest_hyperparameters
    from bench.throughput import _train_subset, app_default_hyperparameters
    from training.trainer.loop import Channels, train

    model_dir = work / "server-model"
    if (model_dir / "model.pt").is_file() and (model_dir / "model_config.json").is_file():
        return model_dir
    subset = _train_subset(dataset, work / "server-data" / f"train-{pairs}", pairs)
    hps = with_defaults({**app_default_hyperparameters(repo), **manifest_hyperparameters(dataset), "epochs": 1},
                        where="server bench model")
    shutil.rmtree(model_dir, ignore_errors=True)
    with open(os.devnull, "w", encoding="utf-8") as devnull:
        train(hps, Channels.from_directory(subset), model_dir=model_dir, archive=None, seed=0, log=devnull,
              quiet=True)
    return model_dir


def measure(model: Path, sentences: Sequence[str], *, minilm: MiniLM | None, clients: int, per_client: int,
            batch1_requests: int, idle_connections: int, hang_after: float, read_timeout: int,
            log: Any = print) -> dict[str, Any]:
    workload = batches_of(sentences, 1, batch1_requests)
    result: dict[str, Any] = {
        "clients": clients, "requests_per_client": per_client, "batch1_requests": batch1_requests,
        "idle_connections": idle_connections, "hang_after_s": hang_after, "read_timeout_s": read_timeout,
        "servers": {}, "titles": TITLES, "cores": os.cpu_count(),
    }
    for name, module in SERVERS.items():
        extra = ["--read-timeout", str(read_timeout)] if name == "waitress" else []
        with ServerClient(model, module=module, extra=extra) as client:
            log(f"server: {name}: batch-1 sentences/s")
            row: dict[str, Any] = {"batch1": _timed(client.embed, workload)}
            body = client.encoder.request(sentences[:1])
            for mode, keepalive in (("keepalive", True), ("new_connection", False)):
                log(f"server: {name}: {clients} clients, {mode}")
                row[mode] = _load(client.port, body, clients=clients, per_client=per_client, keepalive=keepalive)
            log(f"server: {name}: bad-request set")
            row["bad_requests"] = {case: _exchange(client.port, data, hang_after)
                                   for case, data in bad_requests(body).items()}
            log(f"server: {name}: {idle_connections} idle connections")
            row["idle"] = _idle(client.port, idle_connections, hold=3.0, after=10.0)
            bad = row["bad_requests"].values()
            row["bad_summary"] = {"5xx": sum((item["status"] or 0) >= 500 for item in bad),
                                  "hangs": sum(item["outcome"] == "hang" for item in bad),
                                  "no_answer": sum(item["status"] is None for item in bad)}
            result["servers"][name] = row
    if minilm is not None:
        log("server: all-MiniLM-L6-v2 batch 1")
        result["minilm_batch1"] = _timed(minilm.embed, workload)
        for row in result["servers"].values():
            row["batch1"]["x_minilm"] = (row["batch1"]["sentences_per_second"]
                                         / result["minilm_batch1"]["sentences_per_second"])
    return result
