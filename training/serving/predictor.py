"""Object2Vec requests -> predictions: parsing, validation, batched inference, rendering.

Request (``Content-Type: application/json``)::

    {"instances": [{"in0": [12, 7, 9]}, {"in0": [3, 5], "in1": [3, 8]}]}

or ``application/jsonlines`` with one instance object per line. An instance with one input
(``in0`` or ``in1``) gets that encoder's embedding, ``{"embeddings": [enc_dim floats]}``; an
instance with both gets ``{"scores": [...]}`` (class probabilities for ``softmax``, one value
for ``mean_squared_error``). The optional content-type parameter
``infer_max_seqlens=<in0>,<in1>`` truncates inputs further; inputs longer than the model's
``enc*_max_seq_len`` are truncated to it, and a requested length above it is lowered to it and
reported (:attr:`Parsed.notes`: the server's log and its ``X-O2V-Infer-Max-Seqlens`` header).
Responses are ``application/json`` (``{"predictions": [...]}``) or ``application/jsonlines`` (one
prediction per line), chosen by ``Accept``; with no ``Accept`` (or only a wildcard) the response
has the request's format.

What AWS's clients send, and what we decided (``shared/reference/object2vec.md`` 4a, 4b, 11g;
docs/local-mode.md "Conformance"):

* No ``Content-Type``, or ``application/octet-stream``: read as ``application/json``. SDK v1-era
  samples send no Content-Type and a real container parsed such a payload (it answered a malformed
  one with 400 "unable to evaluate payload provided", not 415: amazon-sagemaker-examples#824);
  the SageMaker Python SDK v2's default ``Predictor`` serializer sends
  ``application/octet-stream``. What the container does with octet-stream: no source; we read JSON.
* Keys other than ``in0``/``in1`` in an instance (a replayed training file's ``label``) are
  ignored. No source says what the container does; ignoring them lets AWS's samples run.
* No count of instances is imposed (the service imposes none: the movie-recommendation notebook
  sends 9,430 in one request). A request is bounded by its body (InvokeEndpoint's 6 MiB, enforced by
  the server) and by memory: at most ``max_output_values`` output numbers (instances times the
  width of each prediction), else 413.

Every bad request raises :class:`RequestError` with the HTTP status to send and a message
that names the instance and field.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
import torch

from training.model.artifact import LoadedModel
from training.serving.limits import DEFAULT_MAX_OUTPUT_VALUES

JSON = "application/json"
JSONLINES = "application/jsonlines"
JSONLINES_ALIASES = (JSONLINES, "application/x-jsonlines", "application/jsonl")
# Content types read as JSON (see the module docstring): none at all, and a default SDK Predictor's.
JSON_BY_DEFAULT = ("", "application/octet-stream")
WILDCARDS = ("*/*", "application/*")
MAX_SEQ_LEN_LIMIT = 5000
# A request is at most 4 levels deep ({"instances": [{"in0": [ids]}]}); deeper documents are refused
# before parsing (the parser would recurse until RecursionError, a 500).
MAX_JSON_DEPTH = 16
# Token ids are below the vocabulary size; a number this long is not one (and Python refuses to
# convert integers of more than 4300 digits, a ValueError that used to become a 500).
MAX_INTEGER_DIGITS = 18
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Instance:
    in0: list[int] | None
    in1: list[int] | None


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``"application/json; infer_max_seqlens=5,5"`` -> ``("application/json", {"infer_max_seqlens": "5,5"})``."""
    if not header:
        return "", {}
    kind, *params = header.split(";")
    parameters = {}
    for item in params:
        key, _, value = item.partition("=")
        if key.strip():
            parameters[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), parameters


def response_type(accept: str | None, request_type: str = JSON) -> str:
    """The response media type for an ``Accept`` header; 406 when none is supported.

    No ``Accept``, or a wildcard before any supported type, answers in the request's own format
    (``request_type``): JSON Lines in, JSON Lines out, as the developer guide pairs them (4a, 4b)
    and as AWS's genre notebook reads a batch transform's output sent with no Accept (11g).
    """
    if not accept:
        return request_type
    for choice in accept.split(","):
        kind, _ = media_type(choice)
        if kind in WILDCARDS:
            return request_type
        if kind == JSON:
            return JSON
        if kind in JSONLINES_ALIASES:
            return JSONLINES
    raise RequestError(406, f"Accept {accept!r} is not supported; use {JSON} or {JSONLINES}")


def request_type(content_type: str | None) -> str:
    """The request's format, ``JSON`` or ``JSONLINES``; 415 for anything else."""
    kind, _ = media_type(content_type)
    if kind == JSON or kind in JSON_BY_DEFAULT:
        return JSON
    if kind in JSONLINES_ALIASES:
        return JSONLINES
    raise RequestError(415, f"Content-Type {content_type!r} is not supported; use {JSON} or {JSONLINES}")


@dataclass(frozen=True)
class Parsed:
    """A parsed request: its instances, the sequence limits to apply, and what to report."""

    instances: list[Instance]
    limits: tuple[int, int]
    kind: str  # JSON or JSONLINES
    notes: tuple[str, ...] = ()


class Predictor:
    def __init__(self, loaded: LoadedModel, *, max_output_values: int = DEFAULT_MAX_OUTPUT_VALUES,
                 batch_size: int = 256) -> None:
        self.model = loaded.model
        self.config = loaded.config
        self.max_output_values = max_output_values
        self.batch_size = batch_size
        self.vocab_sizes = (self.config.enc0.vocab_size, self.config.enc1.vocab_size)
        self.max_lens = (self.config.enc0.max_seq_len, self.config.enc1.max_seq_len)
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------- parse
    def parse(self, body: bytes, content_type: str | None) -> Parsed:
        kind = request_type(content_type)
        limits, notes = self._limits(media_type(content_type)[1].get("infer_max_seqlens"))
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError(400, "request body is not valid UTF-8") from None
        if kind == JSON:
            document = _json(text, "request body")
            if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
                raise RequestError(400, 'request body must be a JSON object {"instances": [...]}')
            extra = sorted(set(document) - {"instances"})
            if extra:
                raise RequestError(400, f"unknown request field(s) {', '.join(extra)}; only 'instances' is allowed")
            raw: list[Any] = document["instances"]
        else:
            raw = [_json(line, f"line {number}") for number, line in enumerate(text.splitlines(), start=1)
                   if line.strip()]
        if not raw:
            raise RequestError(400, "the request has no instances")
        instances = [self._instance(item, index) for index, item in enumerate(raw)]
        self._check_memory(instances)
        return Parsed(instances, limits, kind, notes)

    def _check_memory(self, instances: Sequence[Instance]) -> None:
        pairs = sum(1 for item in instances if item.in0 is not None and item.in1 is not None)
        values = pairs * self.config.output_size + (len(instances) - pairs) * self.config.enc_dim
        if values > self.max_output_values:
            raise RequestError(413, f"{len(instances)} instances would return {values} numbers; this server answers "
                                    f"at most {self.max_output_values} per request (--max-output-values, a memory "
                                    "bound); send fewer instances per request")

    def _limits(self, raw: str | None) -> tuple[tuple[int, int], tuple[str, ...]]:
        if raw is None:
            return self.max_lens, ()
        parts = raw.split(",")
        try:
            values = [int(part) for part in parts]
        except ValueError:
            values = []
        if len(values) != 2 or not all(1 <= value <= MAX_SEQ_LEN_LIMIT for value in values):
            raise RequestError(400, f"infer_max_seqlens={raw!r}: expected two integers in [1, {MAX_SEQ_LEN_LIMIT}]")
        # Above the training maximum there is no trained position to use: lowered to it, and said so.
        # What the service does then is not documented (the DG allows up to 5000; 4b).
        notes = tuple(f"infer_max_seqlens {value} for in{side} is above the model's enc{side}_max_seq_len {limit}; "
                      f"in{side} is truncated to {limit}"
                      for side, (value, limit) in enumerate(zip(values, self.max_lens, strict=True)) if value > limit)
        return (min(values[0], self.max_lens[0]), min(values[1], self.max_lens[1])), notes

    def _instance(self, item: object, index: int) -> Instance:
        if not isinstance(item, dict):
            raise RequestError(400, f"instance {index}: must be a JSON object with in0 and/or in1")
        # Other keys (a replayed training file's "label") are ignored: no source says what the
        # container does with them, and ignoring them lets AWS's samples run (module docstring).
        if "in0" not in item and "in1" not in item:
            raise RequestError(400, f"instance {index}: needs in0, in1 or both")
        sides = [self._ids(item[name], index, side) if name in item else None
                 for side, name in enumerate(("in0", "in1"))]
        return Instance(sides[0], sides[1])

    def _ids(self, value: object, index: int, side: int) -> list[int]:
        name = f"in{side}"
        if not isinstance(value, list) or not value:
            raise RequestError(400, f"instance {index}: {name} must be a non-empty list of integer token ids")
        limit = self.vocab_sizes[side]
        for token in value:
            if isinstance(token, bool) or not isinstance(token, int):
                raise RequestError(400, f"instance {index}: {name} must hold integer token ids; found {token!r}")
            if not 0 <= token < limit:
                raise RequestError(400, f"instance {index}: {name} token id {token} is outside the vocabulary "
                                        f"[0, {limit - 1}] (enc{side}_vocab_size={limit})")
        return value

    # --------------------------------------------------------------------------------- predict
    def predict(self, instances: Sequence[Instance], limits: tuple[int, int]) -> list[dict[str, list[float]]]:
        results: list[dict[str, list[float]]] = [{} for _ in instances]
        groups: dict[str, list[int]] = {"in0": [], "in1": [], "pair": []}
        for position, item in enumerate(instances):
            groups[_kind(item)].append(position)
        with self._lock, torch.inference_mode():
            for key, positions in groups.items():
                # Similar lengths share a batch, so little padding is computed.
                positions.sort(key=lambda p: max(len(instances[p].in0 or ()), len(instances[p].in1 or ())))
                for start in range(0, len(positions), self.batch_size):
                    chunk = positions[start:start + self.batch_size]
                    if key == "pair":
                        in0, len0 = _pad([instances[p].in0 or [] for p in chunk], limits[0])
                        in1, len1 = _pad([instances[p].in1 or [] for p in chunk], limits[1])
                        values = self.model.scores(in0, len0, in1, len1)
                        name = "scores"
                    else:
                        side = 0 if key == "in0" else 1
                        ids, lengths = _pad([getattr(instances[p], key) or [] for p in chunk], limits[side])
                        values = self.model.encode(side, ids, lengths)
                        name = "embeddings"
                    for p, row in zip(chunk, values.tolist(), strict=True):
                        results[p] = {name: row}
        return results

    # ---------------------------------------------------------------------------------- render
    @staticmethod
    def render(predictions: list[dict[str, list[float]]], kind: str) -> bytes:
        if kind == JSONLINES:
            return "".join(json.dumps(item) + "\n" for item in predictions).encode()
        return json.dumps({"predictions": predictions}).encode()


def _kind(item: Instance) -> str:
    if item.in0 is not None and item.in1 is not None:
        return "pair"
    return "in0" if item.in0 is not None else "in1"


def _json(text: str, where: str) -> Any:
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise RequestError(400, f"{where}: JSON nested {depth} levels deep (counting every [ and {{); the limit "
                                f'is {MAX_JSON_DEPTH} (a request needs 4: {{"instances": [{{"in0": [ids]}}]}})')
    try:
        return json.loads(text, parse_int=lambda digits: _integer(digits, where))
    except RecursionError:  # not reached after the depth check; kept so no document can cause a 500
        raise RequestError(400, f"{where}: JSON nested too deeply; the limit is {MAX_JSON_DEPTH}") from None
    except json.JSONDecodeError as error:
        raise RequestError(400, f"{where}: not valid JSON ({error.msg} at line {error.lineno} "
                                f"column {error.colno})") from None


def json_depth(text: str) -> int:
    """The deepest nesting of brackets in ``text``, in linear time.

    Brackets inside strings count too (skipping strings exactly needs a scanner of our own); no
    valid request has a string with a bracket in it, its only strings are the field names."""
    brackets = _NOT_BRACKETS.sub("", text)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _integer(digits: str, where: str) -> int:
    count = len(digits.lstrip("-"))
    if count > MAX_INTEGER_DIGITS:
        raise RequestError(400, f"{where}: an integer of {count} digits ({digits[:12]}...); token ids have at most "
                                f"{MAX_INTEGER_DIGITS} digits and are below the vocabulary size")
    return int(digits)


def _pad(sequences: list[list[int]], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
    clipped = [sequence[:limit] for sequence in sequences]
    lengths = np.array([len(sequence) for sequence in clipped], dtype=np.int64)
    ids = np.zeros((len(clipped), int(lengths.max())), dtype=np.int64)
    for row, sequence in enumerate(clipped):
        ids[row, : len(sequence)] = sequence
    return torch.from_numpy(ids), torch.from_numpy(lengths)
