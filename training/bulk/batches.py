"""The bulk path's inner loop without per-sentence Python: token ids -> one float32 array per part
(the model's own ``encode``), and a batch of embeddings -> JSON number text in one numpy pass.

Embedding (:class:`PartEmbedder`). The model is called exactly as the server's
:class:`~training.serving.predictor.Predictor` calls it (``model.encode(side, ids, lengths)`` on
ids clipped to the encoder's length and zero-padded to the longest in the batch, under
``torch.inference_mode``); only the padding is done with numpy instead of a Python loop and the
result stays a float32 array instead of becoming lists of Python floats.

* General path (every network): the same batches as ``Predictor.predict`` on ``batch_size``
  consecutive records (their sentences with a known token, sorted by length, one forward pass), so
  a batch gives the very values the server gives for that request.
* Pooled path (``pooled_embedding`` with no projection layer: the demo's models): the sentences of
  the whole part sorted by length before they are cut into batches, so a batch is padded to little
  more than its own lengths (about half the general path's model time on STS-B and SNLI sentences,
  measured on 20,000). This regrouping cannot change a value: that encoder is a row lookup, a mask, a sum
  over each sentence's own positions and a division (``training.model.encoders.PooledEmbeddingEncoder``),
  with nothing that mixes sentences of a batch, and the padding it adds is masked to exact zeros.
  Tests check it against the general path and against one sentence at a time, bit for bit.

Writing (:func:`format_embeddings`): each value as ``±d.dddddddde±XX``, 9 significant digits in a
fixed width of 16 characters with its separator, built from digit tables by integer arithmetic on
the whole batch. Why 9 digits give back the float32 exactly: the value ``v`` lies in
``[10^e, 10^(e+1))``; the mantissa ``round(v * 10^(8-e))`` is within ``(0.5 + 2^-50)`` of its
last unit ``10^(e-8) <= v * 10^-8`` (float64 arithmetic on an exact float32 value), so the text is
within ``0.51e-8 * v`` of ``v``, while the next float32 either side is at least ``2^-24 * v``
(about ``6e-8 * v``) away; the nearest float32 to the text, which a JSON reader's float32 cast
returns, is ``v`` itself (tests check this on random and extreme bit patterns, subnormals
included). A non-finite value (a broken model) is written as ``%.9g`` writes it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

from training.model.artifact import LoadedModel
from training.model.encoders import PooledEmbeddingEncoder

FLOAT32_DIGITS = "%.9g"  # the fallback for a non-finite value (and the old per-value format)
VALUE_WIDTH = 16  # ",-1.23456789e-02": separator, sign (a space for +), 9 digits, exponent


def _table(texts: Sequence[str]) -> np.ndarray:
    """4-character ASCII strings as one uint32 each (native byte order), for whole-array lookups."""
    assert all(len(text) == 4 for text in texts)
    return np.frombuffer("".join(texts).encode("ascii"), dtype=np.uint32)


_FOUR_DIGITS = _table([f"{number:04d}" for number in range(10_000)])
_LEAD = _table([f",{sign}{digit}." for sign in (" ", "-") for digit in range(10)])  # index: negative*10 + digit
_EXPONENT_OFFSET = 50  # float32 exponents are within [-45, 38]
_EXPONENT = _table([f"e{exponent:+03d}" for exponent in range(-_EXPONENT_OFFSET, _EXPONENT_OFFSET)])
# 10^k for the scale 10^(8-e), each the float64 nearest it (strtod), looked up rather than computed by pow.
_POWERS_OFFSET = 60
_POWERS_OF_TEN = np.array([float(f"1e{power}") for power in range(-_POWERS_OFFSET, _POWERS_OFFSET)])


def format_embeddings(values: np.ndarray) -> list[str]:
    """Each row of a ``[B, D]`` float32 array as the text between an output line's ``[`` and ``]``."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    rows, width = values.shape
    finite = np.isfinite(values)
    cells = np.empty((rows * width, 4), dtype=np.uint32)
    flat = np.where(finite, values, np.float32(0)).reshape(-1)
    magnitude = np.abs(flat.astype(np.float64))
    zero = magnitude == 0
    exponent = np.floor(np.log10(np.where(zero, 1.0, magnitude))).astype(np.int32)
    mantissa = np.rint(magnitude * _POWERS_OF_TEN[8 - exponent + _POWERS_OFFSET])
    # log10 can be one off next to a power of ten, and rounding can carry to 10 digits: corrected here.
    for wrong, step in ((mantissa >= 1e9, 1), ((mantissa < 1e8) & ~zero, -1)):
        if wrong.any():
            exponent[wrong] += step
            mantissa[wrong] = np.rint(magnitude[wrong] * _POWERS_OF_TEN[8 - exponent[wrong] + _POWERS_OFFSET])
    exponent[zero] = 0
    # Below 10^9, so int32: its divisions are several times faster than int64's (measured).
    digits = mantissa.astype(np.int32)
    high = digits // 10_000
    low = digits - high * 10_000
    first = high // 10_000
    middle = high - first * 10_000
    cells[:, 0] = _LEAD.take(first + np.signbit(flat).astype(np.int32) * 10)
    cells[:, 1] = _FOUR_DIGITS.take(middle)
    cells[:, 2] = _FOUR_DIGITS.take(low)
    cells[:, 3] = _EXPONENT.take(exponent + _EXPONENT_OFFSET)
    text = cells.view(np.uint8).tobytes().decode("ascii")
    row_width = width * VALUE_WIDTH
    lines = [text[start + 1:start + row_width] for start in range(0, rows * row_width, row_width)]  # no leading ","
    if not finite.all():
        numbers = ", ".join([FLOAT32_DIGITS] * width)
        for row in np.flatnonzero(~finite.all(axis=1)):
            lines[row] = numbers % tuple(values[row].tolist())
    return lines


class PartEmbedder:
    """Token ids of a part's records -> their embeddings (see the module docstring)."""

    def __init__(self, loaded: LoadedModel, side: str, batch_size: int) -> None:
        self.model = loaded.model
        self.which = 0 if side == "in0" else 1
        self.limit = (loaded.config.enc0 if self.which == 0 else loaded.config.enc1).max_seq_len
        self.dim = loaded.config.enc_dim
        self.batch_size = batch_size
        encoder = self.model.enc0 if self.which == 0 else self.model.enc1
        self.pooled = isinstance(encoder, PooledEmbeddingEncoder) and isinstance(encoder.project, torch.nn.Identity)

    def embed(self, ids: Sequence[list[int] | None], *, pooled: bool | None = None) -> np.ndarray:
        """``[len(ids), enc_dim]`` float32; rows of ``None`` (no known token) are left zero.
        ``pooled`` forces a path (for tests); by default the pooled path is taken where it applies."""
        result = np.zeros((len(ids), self.dim), dtype=np.float32)
        if pooled if pooled is not None else self.pooled:
            groups = [[index for index, found in enumerate(ids) if found is not None]]
        else:  # Predictor.predict's batches: batch_size consecutive records, their known sentences
            groups = [[index for index in range(start, min(start + self.batch_size, len(ids)))
                       if ids[index] is not None] for start in range(0, len(ids), self.batch_size)]
        with torch.inference_mode():
            for group in groups:
                # Predictor.predict's order: by length, stable, then cut into batch_size.
                group.sort(key=lambda index: len(ids[index] or ()))
                for start in range(0, len(group), self.batch_size):
                    chosen = group[start:start + self.batch_size]
                    padded, lengths = self._pad([ids[index] or [] for index in chosen])
                    result[chosen] = self.model.encode(self.which, padded, lengths).numpy()
        return result

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``Predictor``'s padding (clip to the encoder's length, zeros after), in three numpy steps."""
        clipped = [sequence[:self.limit] for sequence in sequences]
        lengths = np.fromiter(map(len, clipped), dtype=np.int64, count=len(clipped))
        padded = np.zeros((len(clipped), int(lengths.max())), dtype=np.int64)
        padded[np.arange(padded.shape[1])[None, :] < lengths[:, None]] = np.fromiter(
            itertools.chain.from_iterable(clipped), dtype=np.int64, count=int(lengths.sum()))
        return torch.from_numpy(padded), torch.from_numpy(lengths)
