"""STS-B style scoring, defined once for the demo's report and the bench's quality section.

The score is Spearman's rank correlation between the cosine similarity of two sentences'
embeddings and the gold similarity (the STS Benchmark's protocol; ``../shared/data/README.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from training.data.readers import Pair, read_stsb


def scored_pairs(path: Path, limit: int | None = None) -> list[tuple[str, str, float]]:
    """``(sentence 1, sentence 2, gold score)`` of an STS-B file, in file order; ``limit`` keeps the first."""
    pairs = [(row.text0, row.text1, float(row.label)) for row in read_stsb(path)
             if isinstance(row, Pair) and row.label is not None]
    return pairs[:limit] if limit else pairs


def cosine_rows(left: Sequence[Sequence[float]] | npt.NDArray[np.floating],
                right: Sequence[Sequence[float]] | npt.NDArray[np.floating]) -> list[float]:
    """Row-wise cosine similarity of two equally long lists of vectors (0 for a zero vector)."""
    a, b = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare {a.shape} embeddings with {b.shape}")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = (a * b).sum(axis=1)
    return [float(dot / norm) if norm else 0.0 for dot, norm in zip(dots, norms, strict=True)]


def spearman(predicted: Sequence[float], gold: Sequence[float]) -> float:
    """Spearman's rho in [-1, 1]."""
    from scipy.stats import spearmanr

    return float(spearmanr(predicted, gold).statistic)
