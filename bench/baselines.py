"""The detectors compared in section 1: ours and what a user would choose instead.

Each detector sees a run epoch by epoch and answers the first epoch (0-based) at which it would
stop the run, or None. Semantics of the alternatives (sources in docs/benchmarks.md):

``object2vec_early_stopping``
    Object2Vec's built-in early stopping (``early_stopping_patience=3``,
    ``early_stopping_tolerance=0.01``, the defaults), the rule the real container applies
    (``o2v_core.early_stopping``, reference section 10c, the same code the local trainer runs): an
    epoch is bad unless its validation loss is below the minimum of the previous ``patience``
    epochs by at least the tolerance; a good epoch resets the count; the run stops when the bad
    count exceeds ``patience``. A non-finite loss stops the job at once (the trainer fails the job).
``debugger_overfit``
    SageMaker Debugger's Overfit rule with its defaults (``ratio_threshold=0.1``, ``patience=1``,
    ``start_step=0``), evaluated once per epoch on the epoch's mean losses: the rule fires once
    ``(validation - train) / train`` has exceeded the threshold for ``patience`` consecutive
    steps. Non-finite ratios never exceed the threshold (comparisons with NaN are false).
``keras_early_stopping``
    ``keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)`` (``min_delta=0``): the wait
    counter grows every epoch and resets on a strictly lower validation loss; training stops when
    it reaches ``patience``. NaN is never an improvement (Keras has a separate TerminateOnNaN).
``ours``
    :func:`o2v_core.detector.detect` with a :class:`~o2v_core.detector.DetectorConfig`; it checks
    every prefix, so ``detected_at_epoch`` is the epoch the in-flight monitor stops at.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from o2v_core.detector import DetectorConfig, detect
from o2v_core.early_stopping import EarlyStopping

from bench.curves import Curve

FirstAlarm = Callable[[Curve], "int | None"]


@dataclass(frozen=True)
class Detector:
    name: str
    title: str
    first_alarm: FirstAlarm


def object2vec_early_stopping(patience: int = 3, tolerance: float = 0.01) -> FirstAlarm:
    def first_alarm(curve: Curve) -> int | None:
        rule = EarlyStopping(patience, tolerance)
        for epoch, value in enumerate(curve.validation):
            train = curve.train[epoch] if epoch < len(curve.train) else 0.0
            if not math.isfinite(value) or not math.isfinite(train):
                return epoch
            if rule.observe(value).stop:
                return epoch
        return None

    return first_alarm


def debugger_overfit(ratio_threshold: float = 0.1, patience: int = 1, start_step: int = 0) -> FirstAlarm:
    def first_alarm(curve: Curve) -> int | None:
        exceeded = 0
        for epoch in range(start_step, min(len(curve.validation), len(curve.train))):
            train, validation = curve.train[epoch], curve.validation[epoch]
            ratio = (validation - train) / train if train > 0 else math.nan
            exceeded = exceeded + 1 if ratio > ratio_threshold else 0
            if exceeded >= patience:
                return epoch
        return None

    return first_alarm


def keras_early_stopping(patience: int = 3, min_delta: float = 0.0) -> FirstAlarm:
    def first_alarm(curve: Curve) -> int | None:
        best = math.inf
        wait = 0
        for epoch, value in enumerate(curve.validation):
            wait += 1
            if value - min_delta < best:  # False for NaN
                best, wait = value, 0
                continue
            if wait >= patience and epoch > 0:
                return epoch
        return None

    return first_alarm


def ours(config: DetectorConfig | None = None) -> FirstAlarm:
    cfg = config or DetectorConfig()

    def first_alarm(curve: Curve) -> int | None:
        return alarm_epoch(curve.validation, curve.train, cfg)

    return first_alarm


def alarm_epoch(
    validation: Sequence[float], train: Sequence[float], config: DetectorConfig, *,
    ended_by_early_stopping: bool = False,
) -> int | None:
    """The detector's first alarm on a curve (``ended_by_early_stopping``: judged as a finished job's
    curve that Object2Vec's own early stopping ended, as the finished-job evaluator does)."""
    decision = detect(list(enumerate(validation)), list(enumerate(train)) or None, config,
                      ended_by_early_stopping=ended_by_early_stopping)
    return decision.detected_at_epoch if decision.diverged else None


def alternatives() -> list[Detector]:
    return [
        Detector("object2vec_early_stopping", "Object2Vec early stopping (patience 3, tolerance 0.01)",
                 object2vec_early_stopping()),
        Detector("debugger_overfit", "SageMaker Debugger Overfit (ratio 0.1, patience 1)", debugger_overfit()),
        Detector("keras_early_stopping", "Keras EarlyStopping (patience 3)", keras_early_stopping()),
    ]
