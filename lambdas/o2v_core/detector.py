"""The divergence detector: is this Object2Vec job overfitting? Defined once.

The in-flight monitor, the finished-job evaluator, ``o2v detect`` and the benchmarks all call
:func:`detect`. Input: the per-epoch validation loss (``validation:cross_entropy`` for
``output_layer=softmax``, ``validation:mean_squared_error`` for regression) and, when the job
logs it, the train loss of the same epochs. Lower is better for both.

Rules (thresholds in :class:`DetectorConfig`; rationale in ``docs/detector.md``):

``non_finite``
    A NaN or infinite validation or train loss diverges at once, whatever the epoch count.
``insufficient_data``
    Fewer than ``min_epochs`` validation epochs: no decision yet (not diverged).
The *reference* is the minimum of the validation curve smoothed by a trailing median of
``smoothing`` epochs (3 by default), so one lucky low epoch does not set the bar. Its epoch is
the reference epoch. (``best_epoch``/``best_value`` in the decision are the raw lowest value.)

``validation_rise``
    At least ``patience`` epochs have passed since the reference epoch, and the last ``patience``
    epochs all lie above the reference by more than
    ``max(min_relative_rise * reference, min_absolute_rise, noise_multiplier * noise)``. One bump,
    a plateau, or a curve that keeps making new minima never satisfies this. ``noise`` is the
    curve's own epoch-to-epoch noise (the *noise-aware* part, off while ``noise_multiplier`` is 0):
    the robust standard deviation of the prefix's second differences,
    ``1.4826 * median(|v[i] - 2 v[i-1] + v[i-2]|) / sqrt(6)``. Second differences cancel a linear
    trend, so neither a steady descent nor a steady rise counts as noise, and the median ignores
    the few strongly curved epochs at the start.
``early_stopped_after_rise`` (only for a finished job that Object2Vec's own early stopping ended)
    The job ended itself (reference section 10c: no epoch beat the window minimum for more than
    ``early_stopping_patience`` epochs), so its curve may end before ``patience`` epochs above the
    reference could be seen. It diverged when the *median* of the epochs after its lowest epoch
    lies above that lowest value by more than the rise bar above (the raw minimum here: those
    are the epochs Object2Vec counted as bad). A run that stopped on a plateau (within the bar)
    is healthy. The median, not the last epoch, so one noisy epoch neither makes nor breaks it.
``generalization_gap`` (only with a train loss, when ``use_generalization_gap``)
    At least ``patience`` epochs have passed since the reference epoch, the validation loss is
    drifting up (the last value is above ``reference * (1 + plateau_tolerance)``), every epoch of
    the last ``patience`` has a gap ratio ``(validation - train) / train`` above
    ``gap_ratio_threshold`` (SageMaker Debugger's Overfit rule), and the ratio has grown by at
    least ``gap_widening`` since the reference epoch. A flat validation curve (within
    ``plateau_tolerance``) is left to Object2Vec's own early stopping and never fires.

The rules are checked on every prefix of the curve, oldest first, so the whole-curve verdict of
a finished job is the same one the in-flight monitor reached (or would have reached) epoch by
epoch; ``detected_at_epoch`` is the first epoch at which a rule held.

Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from o2v_core.config_check import ConfigFieldError, FieldChecks
from o2v_core.events import DivergenceDecisionDetail

CONFIG_NAME = "detector config"

REASON_NON_FINITE = "non_finite"
REASON_INSUFFICIENT_DATA = "insufficient_data"
REASON_VALIDATION_RISE = "validation_rise"
REASON_GENERALIZATION_GAP = "generalization_gap"
REASON_EARLY_STOPPED_AFTER_RISE = "early_stopped_after_rise"
REASON_HEALTHY = "healthy"
REASONS = (
    REASON_NON_FINITE,
    REASON_INSUFFICIENT_DATA,
    REASON_VALIDATION_RISE,
    REASON_GENERALIZATION_GAP,
    REASON_EARLY_STOPPED_AFTER_RISE,
    REASON_HEALTHY,
)

Status = Literal["undecided", "healthy", "diverged"]
Point = tuple[int, float]


_FLOAT_RANGES = {
    "min_relative_rise": 10.0,
    "min_absolute_rise": 1000.0,
    "plateau_tolerance": 10.0,
    "gap_ratio_threshold": 100.0,
    "gap_widening": 100.0,
    "noise_multiplier": 100.0,
}


class DetectorConfigError(ConfigFieldError):
    """A detector threshold is unknown, of the wrong type or out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(CONFIG_NAME, field, message)


_FIELDS = FieldChecks(DetectorConfigError)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector thresholds. Defaults and why: ``docs/detector.md``."""

    min_epochs: int = 5
    # patience 3 keeps the detector inside Object2Vec's own early stopping (default patience 3):
    # a longer patience could never see a rise before the job ends itself. docs/detector.md.
    patience: int = 3
    smoothing: int = 3
    min_relative_rise: float = 0.05
    min_absolute_rise: float = 1e-4
    plateau_tolerance: float = 0.01
    # Off by default: on real runs the train/validation gap widens in healthy runs too
    # (the curve-suite study in docs/benchmarks.md); the rule stays available.
    use_generalization_gap: bool = False
    gap_ratio_threshold: float = 0.1
    gap_widening: float = 0.1
    # 0: the rise bar is relative/absolute only; k > 0 also demands k times the curve's own noise.
    noise_multiplier: float = 0.0

    def __post_init__(self) -> None:
        _FIELDS.integer("min_epochs", self.min_epochs, 2, 100)
        _FIELDS.integer("patience", self.patience, 1, 50)
        _FIELDS.integer("smoothing", self.smoothing, 1, 9)
        for name, high in _FLOAT_RANGES.items():
            # ints are accepted for float fields (JSON "0"); store them as floats
            object.__setattr__(self, name, _FIELDS.number(name, getattr(self, name), 0.0, high))
        _FIELDS.boolean("use_generalization_gap", self.use_generalization_gap)
        if self.patience >= self.min_epochs:
            raise DetectorConfigError(
                "patience",
                f"{self.patience} must be below min_epochs ({self.min_epochs}); allowed: int in "
                f"[1, {self.min_epochs - 1}] (a rise needs a best epoch plus 'patience' epochs after it)",
            )
        if self.smoothing > self.min_epochs:
            raise DetectorConfigError(
                "smoothing",
                f"{self.smoothing} is above min_epochs ({self.min_epochs}); allowed: int in [1, {self.min_epochs}]",
            )
        if self.min_relative_rise == 0 and self.min_absolute_rise == 0:
            raise DetectorConfigError(
                "min_relative_rise", "and min_absolute_rise are both 0, so any bump would fire; set one above 0"
            )
        if self.plateau_tolerance > self.min_relative_rise:
            raise DetectorConfigError(
                "plateau_tolerance",
                f"{self.plateau_tolerance!r} is out of range; allowed: number in [0, min_relative_rise="
                f"{self.min_relative_rise:g}]",
            )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> DetectorConfig:
        """Build from a JSON-like mapping; missing fields take their defaults."""
        return cls(**_FIELDS.known_fields(cls, data))  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> DetectorConfig:
        return cls.from_mapping(_FIELDS.json_object(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Decision:
    """The detector's verdict on one curve."""

    status: Status
    reason: str
    explanation: str
    metric: str
    best_epoch: int | None
    best_value: float | None
    detected_at_epoch: int | None
    last_epoch: int | None
    last_value: float | None
    epochs_seen: int

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    @property
    def decided(self) -> bool:
        return self.status != "undecided"

    def to_detail(self) -> DivergenceDecisionDetail:
        """The event form; a non-finite loss becomes null (JSON has no NaN) and ``reason`` says why."""
        return DivergenceDecisionDetail(
            diverged=self.diverged,
            reason=self.reason,
            best_epoch=self.best_epoch,
            best_value=_finite_or_none(self.best_value),
            detected_at_epoch=self.detected_at_epoch,
            last_value=_finite_or_none(self.last_value),
        )

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON form for ``o2v detect --json`` (non-finite values as strings)."""
        data = asdict(self)
        data["diverged"] = self.diverged
        for key in ("best_value", "last_value"):
            value = data[key]
            if isinstance(value, float) and not math.isfinite(value):
                data[key] = str(value)
        return data


def detect(
    validation: Sequence[Point],
    train: Sequence[Point] | None = None,
    config: DetectorConfig | None = None,
    *,
    metric: str = "validation:loss",
    ended_by_early_stopping: bool = False,
) -> Decision:
    """Decide whether a validation curve diverged. Epochs must be strictly increasing.

    ``ended_by_early_stopping``: the curve is a finished job's, ended by Object2Vec's own early
    stopping (:func:`o2v_core.early_stopping.ended_by_own_early_stopping`); it enables the
    ``early_stopped_after_rise`` rule.
    """
    cfg = config or DetectorConfig()
    val = _checked(validation, "validation")
    train_by_epoch = dict(_checked(train or (), "train"))

    non_finite = _first_non_finite(val, train_by_epoch)
    if non_finite is not None:
        epoch, channel, value = non_finite
        upto = [(e, v) for e, v in val if e <= epoch]
        best = _best([(e, v) for e, v in upto if e < epoch])
        last = (epoch, value) if channel == "validation" else (upto[-1] if upto else None)
        return _decision(
            "diverged", REASON_NON_FINITE,
            f"{channel} loss is {value} at epoch {epoch}; a non-finite loss does not recover",
            metric, best, epoch, last, len(val),
        )

    for end in range(cfg.min_epochs, len(val) + 1):
        fired = _rise(val[:end], cfg) or _gap(val[:end], train_by_epoch, cfg)
        if fired is not None:
            reason, explanation = fired
            return _decision("diverged", reason, explanation, metric, _best(val[:end]), val[end - 1][0], val[-1],
                             len(val))

    if ended_by_early_stopping and len(val) >= cfg.min_epochs:
        after_rise = _rise_before_own_stop(val, cfg)
        if after_rise is not None:
            return _decision("diverged", REASON_EARLY_STOPPED_AFTER_RISE, after_rise, metric, _best(val), val[-1][0],
                             val[-1], len(val))

    best = _best(val)
    last = val[-1] if val else None
    if best is None or last is None or len(val) < cfg.min_epochs:
        explanation = f"only {len(val)} validation epoch(s); the detector decides from {cfg.min_epochs}"
        return _decision("undecided", REASON_INSUFFICIENT_DATA, explanation, metric, best, None, last, len(val))
    if best[0] == last[0]:
        explanation = f"validation loss is still improving: its best, {best[1]:.6g}, is the latest epoch ({last[0]})"
    else:
        explanation = (
            f"no sustained rise: best {best[1]:.6g} at epoch {best[0]}, latest {last[1]:.6g} at epoch {last[0]} "
            f"(fires when {cfg.patience} epochs in a row after the minimum are above "
            f"{_threshold(_reference(val, cfg)[1][1], cfg, _noise(val, cfg)):.6g})"
        )
    return _decision("healthy", REASON_HEALTHY, explanation, metric, best, None, last, len(val))


def _decision(
    status: Status, reason: str, explanation: str, metric: str, best: Point | None, detected_at: int | None,
    last: Point | None, epochs_seen: int,
) -> Decision:
    return Decision(
        status=status, reason=reason, explanation=explanation, metric=metric,
        best_epoch=best[0] if best else None, best_value=best[1] if best else None,
        detected_at_epoch=detected_at,
        last_epoch=last[0] if last else None, last_value=last[1] if last else None,
        epochs_seen=epochs_seen,
    )


# ---------------------------------------------------------------------------------------------


def _checked(points: Sequence[Point], channel: str) -> list[Point]:
    result: list[Point] = []
    for epoch, value in points:
        if result and epoch <= result[-1][0]:
            raise ValueError(f"{channel} epochs must be strictly increasing; epoch {epoch} follows {result[-1][0]}")
        result.append((int(epoch), float(value)))
    return result


def _first_non_finite(val: list[Point], train: Mapping[int, float]) -> tuple[int, str, float] | None:
    found = [(epoch, "validation", value) for epoch, value in val if not math.isfinite(value)]
    found += [(epoch, "train", value) for epoch, value in train.items() if not math.isfinite(value)]
    if not found:
        return None
    return min(found, key=lambda item: (item[0], item[1] != "validation"))


def _best(points: Sequence[Point]) -> Point | None:
    if not points:
        return None
    return min(points, key=lambda point: point[1])  # first occurrence of the minimum


def _threshold(reference: float, cfg: DetectorConfig, noise: float = 0.0) -> float:
    return reference + max(abs(reference) * cfg.min_relative_rise, cfg.min_absolute_rise,
                           cfg.noise_multiplier * noise)


# The median absolute deviation of a normal sample times this is its standard deviation.
_MAD_TO_SIGMA = 1.4826


def curve_noise(values: Sequence[float]) -> float:
    """Robust epoch-to-epoch noise of a curve: the standard deviation of white noise that would give
    these second differences (``v[i] - 2 v[i-1] + v[i-2]`` has variance 6 sigma^2); 0 below 3 values."""
    second = [abs(values[i] - 2 * values[i - 1] + values[i - 2]) for i in range(2, len(values))]
    if not second:
        return 0.0
    return _MAD_TO_SIGMA * statistics.median(second) / math.sqrt(6)


def _reference(prefix: Sequence[Point], cfg: DetectorConfig) -> tuple[int, Point]:
    """Index and (epoch, value) of the minimum of the trailing-median-smoothed curve."""
    values = [value for _, value in prefix]
    smoothed = [statistics.median(values[max(0, i - cfg.smoothing + 1): i + 1]) for i in range(len(values))]
    index = min(range(len(smoothed)), key=lambda i: smoothed[i])  # first occurrence of the minimum
    return index, (prefix[index][0], smoothed[index])


def _noise(prefix: Sequence[Point], cfg: DetectorConfig) -> float:
    return curve_noise([value for _, value in prefix]) if cfg.noise_multiplier else 0.0


def _rise(prefix: Sequence[Point], cfg: DetectorConfig) -> tuple[str, str] | None:
    index, (ref_epoch, ref_value) = _reference(prefix, cfg)
    if len(prefix) - 1 - index < cfg.patience:
        return None
    noise = _noise(prefix, cfg)
    threshold = _threshold(ref_value, cfg, noise)
    window = prefix[-cfg.patience:]
    if all(value > threshold for _, value in window):
        noise_term = f", {cfg.noise_multiplier:g} x noise {noise:.3g}" if cfg.noise_multiplier else ""
        return REASON_VALIDATION_RISE, (
            f"validation loss rose after its smoothed minimum ({ref_value:.6g} at epoch {ref_epoch}, trailing median "
            f"of {cfg.smoothing} epochs): epochs {window[0][0]}-{window[-1][0]} are all above {threshold:.6g} "
            f"(minimum + max({cfg.min_relative_rise:g} x minimum, {cfg.min_absolute_rise:g}{noise_term})); epoch "
            f"{window[-1][0]}: {window[-1][1]:.6g}"
        )
    return None


def _rise_before_own_stop(val: Sequence[Point], cfg: DetectorConfig) -> str | None:
    best = _best(val)
    assert best is not None
    index = val.index(best)
    after = [value for _, value in val[index + 1:]]
    if not after:
        return None
    threshold = _threshold(best[1], cfg, _noise(val, cfg))
    median = statistics.median(after)
    if median <= threshold:
        return None
    return (
        f"Object2Vec's own early stopping ended the job at epoch {val[-1][0]}, after its validation loss rose: "
        f"the median of epochs {val[index + 1][0]}-{val[-1][0]} ({median:.6g}) is above {threshold:.6g} "
        f"(its minimum {best[1]:.6g} at epoch {best[0]} + max({cfg.min_relative_rise:g} x minimum, "
        f"{cfg.min_absolute_rise:g}))"
    )


def _gap(prefix: Sequence[Point], train: Mapping[int, float], cfg: DetectorConfig) -> tuple[str, str] | None:
    if not cfg.use_generalization_gap or not train:
        return None
    index, (ref_epoch, ref_value) = _reference(prefix, cfg)
    if len(prefix) - 1 - index < cfg.patience:
        return None
    last_epoch, last_value = prefix[-1]
    if last_value <= ref_value + abs(ref_value) * cfg.plateau_tolerance:
        return None  # a plateau: Object2Vec's own early stopping handles it
    window = prefix[-cfg.patience:]
    points = [prefix[index], *window]
    if any(epoch not in train or train[epoch] <= 0 for epoch, _ in points):
        return None
    ratios = {epoch: (value - train[epoch]) / train[epoch] for epoch, value in points}
    if not all(ratios[epoch] > cfg.gap_ratio_threshold for epoch, _ in window):
        return None
    if ratios[last_epoch] - ratios[ref_epoch] < cfg.gap_widening:
        return None
    return REASON_GENERALIZATION_GAP, (
        f"validation loss has not improved since epoch {ref_epoch} (smoothed minimum {ref_value:.6g}, trailing "
        f"median of {cfg.smoothing} epochs) and is drifting up (epoch {last_epoch}: {last_value:.6g}), while the "
        f"generalization gap (validation - train) / train widened from {ratios[ref_epoch]:.3g} at epoch {ref_epoch} "
        f"to {ratios[last_epoch]:.3g} (above {cfg.gap_ratio_threshold:g} for {cfg.patience} epochs, widening >= "
        f"{cfg.gap_widening:g})"
    )


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
