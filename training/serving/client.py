"""Clients of the inference contract, and sentence -> token-id requests for ``o2v embed``.

The same request goes to the local server (HTTP POST ``<url>/invocations``) or to a SageMaker
endpoint (``sagemaker-runtime`` ``InvokeEndpoint`` via boto3).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from training.data.tokenizer import Tokenizer
from training.data.vocab import UNK_ID, Vocab

if TYPE_CHECKING:
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

    from training.model.artifact import Assets

JSON = "application/json"


class InvocationError(RuntimeError):
    """The server or endpoint refused the request; the message carries its answer."""


class Invoker(Protocol):
    def invoke(self, body: bytes) -> bytes: ...


@dataclass(frozen=True)
class LocalInvoker:
    url: str
    timeout: float = 60.0

    def invoke(self, body: bytes) -> bytes:
        request = urllib.request.Request(
            self.url.rstrip("/") + "/invocations", data=body, method="POST",
            headers={"Content-Type": JSON, "Accept": JSON},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload: bytes = response.read()
                return payload
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            raise InvocationError(f"{self.url} answered {error.code}: {detail}") from None
        except urllib.error.URLError as error:
            raise InvocationError(f"cannot reach {self.url} ({error.reason}); is `o2v serve` running?") from None


@dataclass(frozen=True)
class SageMakerInvoker:
    client: SageMakerRuntimeClient
    endpoint_name: str

    def invoke(self, body: bytes) -> bytes:
        try:
            response = self.client.invoke_endpoint(
                EndpointName=self.endpoint_name, Body=body, ContentType=JSON, Accept=JSON
            )
        except self.client.exceptions.ClientError as error:
            raise InvocationError(f"endpoint {self.endpoint_name!r}: {error}") from None
        return response["Body"].read()


@dataclass(frozen=True)
class SentenceEncoder:
    """Tokenizes sentences exactly as ``o2v prepare`` did, then asks for their embeddings."""

    tokenizer: Tokenizer
    vocab: Vocab
    vocab_size: int | None = None  # the encoder's vocab size; ids beyond it become <unk>
    max_seq_len: int | None = None

    @classmethod
    def of_model(cls, assets: Assets, side: str = "in0") -> SentenceEncoder:
        """The encoder ``o2v embed --model`` builds: the model's tokenizer (or the default one),
        vocabulary and the limits of its encoder for ``side``."""
        if assets.vocab is None:
            raise ValueError(f"{assets.source}: no vocabulary in the model")
        encoder = assets.config.enc0 if side == "in0" else assets.config.enc1
        return cls(assets.tokenizer or Tokenizer(), assets.vocab, encoder.vocab_size, encoder.max_seq_len)

    def token_ids(self, sentence: str, index: int = 0) -> list[int]:
        ids = self._ids(sentence)
        if not ids:
            raise ValueError(f"sentence {index + 1} ({sentence!r}) has no tokens")
        return ids

    def known_token_ids(self, sentence: str) -> list[int] | None:
        """The ids :meth:`token_ids` gives, or None when none of them (after truncation to the
        encoder's length) is a known token: the sentence has no token, or only ``<unk>``. Its
        embedding would be the model's embedding of ``<unk>``, not of the sentence (``o2v embed
        --corpus`` reports such records instead, training/bulk/corpus.py)."""
        ids = self._ids(sentence)
        return ids if any(token != UNK_ID for token in ids) else None

    def _ids(self, sentence: str) -> list[int]:
        ids = self.vocab.encode(self.tokenizer.tokenize(sentence))
        if self.vocab_size is not None:
            ids = [token if token < self.vocab_size else UNK_ID for token in ids]
        return ids[: self.max_seq_len] if self.max_seq_len else ids

    def request(self, sentences: Sequence[str], side: str = "in0") -> bytes:
        if side not in ("in0", "in1"):
            raise ValueError(f"input {side!r}: allowed in0, in1")
        instances = [{side: self.token_ids(sentence, index)} for index, sentence in enumerate(sentences)]
        return json.dumps({"instances": instances}).encode()

    def pair_request(self, pairs: Sequence[tuple[str, str]], right: SentenceEncoder | None = None) -> bytes:
        """A scoring request: each pair's left sentence as ``in0``, its right one as ``in1``
        (tokenized by ``right`` where the second encoder's limits differ)."""
        other = right or self
        instances = [{"in0": self.token_ids(left, index), "in1": other.token_ids(sentence, index)}
                     for index, (left, sentence) in enumerate(pairs)]
        return json.dumps({"instances": instances}).encode()

    def embed(self, invoker: Invoker, sentences: Sequence[str], *, side: str = "in0",
              batch_size: int = 100) -> list[list[float]]:
        embeddings: list[list[float]] = []
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start:start + batch_size]
            answer = json.loads(invoker.invoke(self.request(chunk, side)))
            predictions = answer.get("predictions") if isinstance(answer, dict) else None
            if not isinstance(predictions, list) or len(predictions) != len(chunk):
                raise InvocationError(f"unexpected response: {str(answer)[:200]}")
            embeddings.extend(item["embeddings"] for item in predictions)
        return embeddings
