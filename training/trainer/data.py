"""Object2Vec JSON Lines channels in memory, and the mini-batches drawn from them.

A record is ``{"label": <number>, "in0": [ids], "in1": [ids]}``. Token ids must lie in
``[0, enc*_vocab_size)``; sequences longer than ``enc*_max_seq_len`` are truncated; labels
are class ids ``0..num_classes-1`` (``softmax``) or real numbers (``mean_squared_error``).
Every problem is reported as ``file:line: problem``.

Sequences are stored flat (one int array plus offsets), so memory is about the size of the
token ids themselves, and a batch is padded only to its own longest sequence.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from training.data.errors import DataError
from training.model.config import ModelConfig

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Sequences:
    """Variable-length id sequences: ``flat[offsets[i] : offsets[i] + lengths[i]]``."""

    flat: IntArray
    offsets: IntArray
    lengths: IntArray

    def padded(self, index: IntArray) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = self.lengths[index]
        width = int(lengths.max()) if len(index) else 1
        steps = np.arange(width)
        valid = steps[None, :] < lengths[:, None]
        positions = np.where(valid, self.offsets[index][:, None] + steps[None, :], 0)
        ids = np.where(valid, self.flat[positions] if len(self.flat) else 0, 0)
        return torch.from_numpy(ids), torch.from_numpy(lengths)


@dataclass(frozen=True)
class PairData:
    in0: Sequences
    in1: Sequences
    labels: npt.NDArray[np.generic]
    files: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)


def channel_files(channel: Path) -> list[Path]:
    """The data files of a channel directory (recursively, hidden files skipped, sorted)."""
    if channel.is_file():
        return [channel]
    files = sorted(
        path for path in channel.rglob("*")
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(channel).parts)
    )
    if not files:
        raise DataError(channel, None, "channel has no data files")
    return files


def _ids(value: object, name: str, vocab_size: int, path: Path, line: int) -> list[int]:
    if not isinstance(value, list) or not value:
        raise DataError(path, line, f"{name!r} must be a non-empty list of token ids")
    for token in value:
        if isinstance(token, bool) or not isinstance(token, int):
            raise DataError(path, line, f"{name!r} must hold integer token ids; found {token!r}")
        if not 0 <= token < vocab_size:
            raise DataError(path, line, f"{name!r} token id {token} is outside [0, {vocab_size - 1}] "
                                        f"(enc{name[-1]}_vocab_size={vocab_size})")
    return value


def load_channel(channel: Path, config: ModelConfig) -> PairData:
    """Read every record of a channel; raises :class:`DataError` naming file and line."""
    flat: tuple[list[int], list[int]] = ([], [])
    lengths: tuple[list[int], list[int]] = ([], [])
    labels: list[float] = []
    limits = (config.enc0.max_seq_len, config.enc1.max_seq_len)
    sizes = (config.enc0.vocab_size, config.enc1.vocab_size)
    classification = config.output_layer == "softmax"
    files = channel_files(channel)
    for path in files:
        with path.open(encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as error:
                    raise DataError(path, line, f"not valid JSON ({error.msg} at column {error.colno})") from None
                if not isinstance(record, dict):
                    raise DataError(path, line, "a record must be a JSON object with label, in0 and in1")
                missing = [key for key in ("label", "in0", "in1") if key not in record]
                if missing:
                    raise DataError(path, line, f"record lacks {', '.join(missing)}")
                for side in (0, 1):
                    ids = _ids(record[f"in{side}"], f"in{side}", sizes[side], path, line)[: limits[side]]
                    flat[side].extend(ids)
                    lengths[side].append(len(ids))
                labels.append(_label(record["label"], classification, config.num_classes, path, line))
    if not labels:
        raise DataError(channel, None, "channel has no records")

    def sequences(side: int) -> Sequences:
        length_array = np.asarray(lengths[side], dtype=np.int64)
        offsets = np.concatenate(([0], np.cumsum(length_array)[:-1])).astype(np.int64)
        return Sequences(np.asarray(flat[side], dtype=np.int64), offsets, length_array)

    label_array = np.asarray(labels, dtype=np.int64 if classification else np.float32)
    return PairData(sequences(0), sequences(1), label_array, tuple(str(path) for path in files))


def _label(value: object, classification: bool, num_classes: int, path: Path, line: int) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DataError(path, line, f"label must be a finite number, got {value!r}")
    if classification and (not float(value).is_integer() or not 0 <= value < num_classes):
        raise DataError(path, line, f"label {value!r} must be a class id in [0, {num_classes - 1}] "
                                    f"(num_classes={num_classes}, output_layer=softmax)")
    return float(value)


@dataclass(frozen=True)
class Batch:
    in0: torch.Tensor
    len0: torch.Tensor
    in1: torch.Tensor
    len1: torch.Tensor
    labels: torch.Tensor


def make_batch(data: PairData, index0: IntArray, index1: IntArray, labels: npt.NDArray[np.generic]) -> Batch:
    in0, len0 = data.in0.padded(index0)
    in1, len1 = data.in1.padded(index1)
    return Batch(in0, len0, in1, len1, torch.from_numpy(np.ascontiguousarray(labels)))


def epoch_batches(
    data: PairData, batch_size: int, rng: np.random.Generator, *, bucket_width: int = 0,
    negative_sampling_rate: int = 0,
) -> Iterator[Batch]:
    """Shuffled training batches for one epoch.

    ``bucket_width > 0``: examples whose longer input has a similar length (same
    ``length // bucket_width``) are batched together, so batches carry less padding.
    ``negative_sampling_rate = r > 0``: each positive pair (label 1) also yields ``r``
    pairs of its ``in0`` with a random other record's ``in1``, labelled 0.
    """
    count = len(data)
    index0 = np.arange(count, dtype=np.int64)
    index1 = index0.copy()
    labels = data.labels
    if negative_sampling_rate > 0:
        positives = np.flatnonzero(labels == 1)
        anchors = np.repeat(positives, negative_sampling_rate)
        partners = rng.integers(0, count - 1, size=len(anchors)) if count > 1 else np.zeros_like(anchors)
        partners = partners + (partners >= anchors)  # never the pair's own in1
        index0 = np.concatenate((index0, anchors))
        index1 = np.concatenate((index1, partners.astype(np.int64)))
        labels = np.concatenate((labels, np.zeros(len(anchors), dtype=labels.dtype)))
    order = rng.permutation(len(index0))
    if bucket_width > 0:
        longest = np.maximum(data.in0.lengths[index0[order]], data.in1.lengths[index1[order]])
        order = order[np.argsort(longest // bucket_width, kind="stable")]
        keys = (np.maximum(data.in0.lengths[index0[order]], data.in1.lengths[index1[order]]) // bucket_width)
        batches: list[IntArray] = []
        for key in np.unique(keys):
            members = order[keys == key]
            batches.extend(members[start:start + batch_size] for start in range(0, len(members), batch_size))
        chunks = [batches[i] for i in rng.permutation(len(batches))]
    else:
        chunks = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    for chunk in chunks:
        yield make_batch(data, index0[chunk], index1[chunk], labels[chunk])


def eval_batches(data: PairData, batch_size: int) -> Iterator[Batch]:
    """Evaluation batches, in file order."""
    index = np.arange(len(data), dtype=np.int64)
    for start in range(0, len(index), batch_size):
        chunk = index[start:start + batch_size]
        yield make_batch(data, chunk, chunk, data.labels[chunk])


def count_batches(data: PairData, batch_size: int, negative_sampling_rate: int) -> int:
    extra = int((data.labels == 1).sum()) * negative_sampling_rate if negative_sampling_rate else 0
    return math.ceil((len(data) + extra) / batch_size)
