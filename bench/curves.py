"""The labelled curve suite: synthetic families plus curves recorded from local training runs.

A curve is one run's per-epoch validation loss (and train loss), epochs counted from 0 as the
trainer prints them. Every curve, synthetic or recorded, is labelled by the same rule
(:func:`label`), written down in docs/benchmarks.md. It sees the whole curve, so it may look
ahead, which no detector can:

* Non-finite values count as +infinity (a NaN loss never recovers).
* The curve is smoothed by a centred running median of 3 epochs (2 at either end), so one
  lucky or unlucky epoch neither sets the best value nor makes a rise.
* ``best`` is the first epoch of the smoothed minimum; the threshold is
  ``smoothed_best * (1 + ONSET_MARGIN)``.
* The curve **diverges** when the smoothed curve ends with a *tail* of epochs that are all above
  the threshold, at least ``ONSET_PERSIST`` epochs long, or when the raw curve holds a non-finite
  value. Its **onset** is the first epoch of that tail (for a NaN run, the earlier of the tail and
  the first non-finite epoch). Otherwise the curve is *healthy*.

A synthetic family name says how the curve was generated, not its label: a noisy healthy curve
that happens to end 3 epochs above the threshold is labelled diverging (the counts per family
are reported).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

ONSET_MARGIN = 0.05
ONSET_PERSIST = 3

SYNTHETIC_FAMILIES: tuple[str, ...] = (
    "healthy",
    "noisy_healthy",
    "plateau",
    "spike_recovers",
    "early_divergence",
    "late_divergence",
    "slow_drift",
    "nan",
)


@dataclass(frozen=True)
class Label:
    diverging: bool
    onset: int | None
    best_epoch: int
    best_value: float


@dataclass(frozen=True)
class Curve:
    """One run's curves. ``source`` is ``synthetic``, ``stsb`` or ``snli``; ``family`` is the synthetic
    family or ``recorded``; ``params`` hold dropout, seed and network settings of recorded runs."""

    name: str
    source: str
    family: str
    validation: tuple[float, ...]
    train: tuple[float, ...]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs(self) -> int:
        return len(self.validation)

    @property
    def label(self) -> Label:
        return label(self.validation)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "family": self.family,
            "validation": [_json_float(value) for value in self.validation],
            "train": [_json_float(value) for value in self.train],
            "params": self.params,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Curve:
        return cls(
            name=str(data["name"]),
            source=str(data["source"]),
            family=str(data["family"]),
            validation=tuple(float(value) for value in data["validation"]),
            train=tuple(float(value) for value in data["train"]),
            params=dict(data.get("params", {})),
        )


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def smoothed(validation: Sequence[float], width: int = 3) -> list[float]:
    """Centred running median (window clipped at the ends); non-finite values as +infinity."""
    values = [value if math.isfinite(value) else math.inf for value in validation]
    half = width // 2
    result = []
    for index in range(len(values)):
        window = sorted(values[max(0, index - half): index + half + 1])
        middle = len(window) // 2
        result.append(window[middle] if len(window) % 2 else (window[middle - 1] + window[middle]) / 2)
    return result


def label(validation: Sequence[float], *, margin: float = ONSET_MARGIN, persist: int = ONSET_PERSIST) -> Label:
    """The ground-truth label of a validation curve (rule in the module docstring)."""
    if not validation:
        raise ValueError("an empty curve has no label")
    values = smoothed(validation)
    best_epoch = min(range(len(values)), key=lambda index: values[index])
    best_value = values[best_epoch]
    threshold = best_value * (1 + margin) if best_value > 0 else best_value + margin
    below = [index for index, value in enumerate(values) if value <= threshold]
    tail_start = below[-1] + 1 if below else 0
    first_non_finite = next((index for index, value in enumerate(validation) if not math.isfinite(value)), None)
    if first_non_finite is not None:
        return Label(True, min(tail_start, first_non_finite), best_epoch, best_value)
    if len(values) - tail_start >= persist:
        return Label(True, tail_start, best_epoch, best_value)
    return Label(False, None, best_epoch, best_value)


# -- synthetic curves ------------------------------------------------------------------------------


def _noise(rng: random.Random, sigma: float) -> float:
    return 1.0 + rng.gauss(0.0, sigma)


def synthetic_curve(family: str, index: int, rng: random.Random) -> Curve:
    """One curve of ``family``; shapes and parameter ranges are listed in docs/benchmarks.md."""
    if family not in SYNTHETIC_FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {', '.join(SYNTHETIC_FAMILIES)}")
    epochs = rng.randint(20, 30)
    start = rng.uniform(1.0, 2.5)
    floor = start * rng.uniform(0.4, 0.8)
    tau = rng.uniform(1.5, 5.0)
    gap = rng.uniform(-0.05, 0.25)  # healthy (validation - train) / train
    sigma = 0.005
    rise: list[float] = [0.0] * epochs
    params: dict[str, Any] = {}
    slope = 0.0
    if family in ("healthy", "noisy_healthy"):
        # still improving slowly at the end of the budget (a converged, flat curve is a plateau)
        tau = rng.uniform(3.0, 8.0)
        slope = rng.uniform(0.001, 0.004)
    if family == "noisy_healthy":
        sigma = rng.uniform(0.015, 0.03)
    elif family == "plateau":
        tau = rng.uniform(0.8, 1.5)
        sigma = 0.002
    elif family in ("early_divergence", "late_divergence", "slow_drift"):
        turn = rng.randint(3, 6) if family == "early_divergence" else rng.randint(11, max(12, epochs - 7))
        if family == "slow_drift":
            turn = rng.randint(5, 9)
            rate = rng.uniform(0.004, 0.01)
        else:
            rate = rng.uniform(0.02, 0.08)
        power = rng.choice((1.0, 1.3))
        rise = [floor * rate * max(0, epoch - turn) ** power for epoch in range(epochs)]
        sigma = 0.01
        params = {"turn": turn, "rate": round(rate, 4)}
    base = [floor * (1 - slope * epoch) + (start - floor) * math.exp(-epoch / tau) for epoch in range(epochs)]
    validation = [(base[e] + rise[e]) * _noise(rng, sigma) for e in range(epochs)]
    # Train loss keeps falling while the validation loss turns up (the overfitting signature).
    train_drop = [0.5 * rise[e] for e in range(epochs)]
    train = [max(1e-3, base[e] / (1 + gap) - train_drop[e]) * _noise(rng, sigma / 2) for e in range(epochs)]
    if family == "spike_recovers":
        at = rng.randint(5, epochs - 6)
        height = rng.uniform(0.15, 0.5)
        for offset in range(rng.choice((1, 2))):
            validation[at + offset] *= 1 + height
        params = {"spike_at": at, "height": round(height, 3)}
    if family == "nan":
        at = rng.randint(4, epochs - 3)
        if rng.random() < 0.5:  # a blow-up, then NaN
            validation[at - 1] *= rng.uniform(1.5, 4.0)
            train[at - 1] *= rng.uniform(1.5, 4.0)
        for epoch in range(at, epochs):
            validation[epoch] = math.nan
            train[epoch] = math.nan
        params = {"nan_at": at}
    return Curve(f"synthetic/{family}/{index:03d}", "synthetic", family, tuple(validation), tuple(train), params)


def synthetic_suite(per_family: int, seed: int = 0) -> list[Curve]:
    rng = random.Random(seed)
    return [synthetic_curve(family, index, rng) for family in SYNTHETIC_FAMILIES for index in range(per_family)]


def split_of(curve: Curve, position: int) -> str:
    """``tune`` or ``eval``. Recorded runs split by seed (even seeds tune); synthetic curves
    alternate within their family (``position`` = index in the family)."""
    seed = curve.params.get("seed")
    if isinstance(seed, int):
        return "tune" if seed % 2 == 0 else "eval"
    return "tune" if position % 2 == 0 else "eval"


def assign_splits(curves: Iterable[Curve]) -> dict[str, str]:
    counters: dict[tuple[str, str], int] = {}
    result: dict[str, str] = {}
    for curve in curves:
        key = (curve.source, curve.family)
        position = counters.get(key, 0)
        counters[key] = position + 1
        result[curve.name] = split_of(curve, position)
    return result
