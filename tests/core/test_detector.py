"""The divergence detector on the curves it must and must not fire on, and its config."""

from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from o2v_core.config_check import ConfigFieldError
from o2v_core.detector import (
    REASON_GENERALIZATION_GAP,
    REASON_HEALTHY,
    REASON_INSUFFICIENT_DATA,
    REASON_NON_FINITE,
    REASON_VALIDATION_RISE,
    DetectorConfig,
    DetectorConfigError,
    Point,
    curve_noise,
    detect,
)


def points(values: list[float]) -> list[Point]:
    return list(enumerate(values))


def decaying(epochs: int, *, floor: float = 0.6, noise: float = 0.0, seed: int = 0) -> list[float]:
    """An Object2Vec-like validation curve: fast early progress, then a flattening tail."""
    rng = random.Random(seed)
    return [(floor + 0.4 * math.exp(-epoch / 4)) * (1 + rng.gauss(0, noise)) for epoch in range(epochs)]


# ---------------------------------------------------------------------------------------------
# Curves that must not fire


def test_healthy_curve_is_healthy() -> None:
    decision = detect(points(decaying(30)))
    assert decision.status == "healthy" and decision.reason == REASON_HEALTHY
    assert not decision.diverged and decision.decided
    assert decision.best_epoch == 29 and decision.detected_at_epoch is None
    assert "still improving" in decision.explanation


@pytest.mark.parametrize("seed", range(20))
def test_noisy_healthy_curve_does_not_fire(seed: int) -> None:
    """2 % epoch-to-epoch noise on a curve that flattens out: the trailing-median minimum keeps a
    lucky low epoch from setting the bar (raw minimum would fire on about 1 curve in 9)."""
    decision = detect(points(decaying(30, noise=0.02, seed=seed)))
    assert not decision.diverged, decision.explanation


def test_plateau_does_not_fire_even_while_train_loss_keeps_falling() -> None:
    validation = [0.9, 0.7, 0.55, 0.5, 0.48] + [0.47 * (1 + 0.004 * (-1) ** epoch) for epoch in range(15)]
    train = [0.9 * 0.85**epoch for epoch in range(20)]  # the gap widens, but validation is flat
    decision = detect(points(validation), points(train))
    assert decision.status == "healthy", decision.explanation


def test_still_improving_with_a_widening_gap_does_not_fire() -> None:
    validation = [1.0 - 0.02 * epoch for epoch in range(20)]
    train = [1.0 - 0.045 * epoch for epoch in range(20)]
    assert detect(points(validation), points(train)).status == "healthy"


def test_one_noisy_bump_does_not_fire() -> None:
    values = decaying(20)
    values[10] *= 1.4
    assert detect(points(values)).status == "healthy"


def test_a_spike_that_recovers_does_not_fire() -> None:
    values = decaying(20)
    values[8] *= 3.0
    values[9] *= 2.0  # two epochs high (fewer than patience = 3), then back on the curve
    decision = detect(points(values))
    assert decision.status == "healthy" and decision.best_epoch == 19


# ---------------------------------------------------------------------------------------------
# Curves that must fire


def test_late_divergence_fires_a_few_epochs_after_the_minimum() -> None:
    values = decaying(25) + [decaying(25)[-1] * (1 + 0.03 * step) for step in range(1, 8)]
    decision = detect(points(values))
    assert decision.diverged and decision.reason == REASON_VALIDATION_RISE
    assert decision.best_epoch == 24 and decision.best_value == pytest.approx(values[24])
    # epochs 25, 26 are +3 %, +6 %: 26, 27, 28 are the first three above +5 % of the median minimum
    assert decision.detected_at_epoch == 28
    assert decision.last_epoch == 31 and decision.last_value == pytest.approx(values[-1])


def test_overfitting_from_the_start_fires_once_min_epochs_are_in() -> None:
    decision = detect(points([0.5, 0.4, 0.45, 0.5, 0.56, 0.62]))
    assert decision.diverged and decision.detected_at_epoch == 5


def test_widening_generalization_gap_fires_before_the_rise_rule() -> None:
    # Validation drifts up 1.5-3 % (under the 5 % rise threshold) while train keeps falling.
    validation = [0.9, 0.7, 0.6, 0.55, 0.53, 0.52, 0.52, 0.528, 0.533, 0.536, 0.54]
    train = [0.9, 0.68, 0.56, 0.5, 0.47, 0.45, 0.43, 0.41, 0.39, 0.37, 0.35]
    on = DetectorConfig(use_generalization_gap=True)
    with_train = detect(points(validation), points(train), on)
    assert with_train.diverged and with_train.reason == REASON_GENERALIZATION_GAP
    assert with_train.detected_at_epoch == 9
    assert "widened" in with_train.explanation
    assert detect(points(validation), config=on).status == "healthy"  # without train, no gap rule
    assert detect(points(validation), points(train)).status == "healthy"  # off by default


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_validation_diverges_at_once(bad: float) -> None:
    decision = detect(points([0.5, 0.4, bad]))
    assert decision.diverged and decision.reason == REASON_NON_FINITE
    assert decision.detected_at_epoch == 2 and decision.best_epoch == 1 and decision.best_value == 0.4
    detail = decision.to_detail()
    assert detail.last_value is None and detail.reason == REASON_NON_FINITE  # JSON has no NaN
    json.dumps(decision.to_dict(), allow_nan=False)


def test_non_finite_train_loss_diverges_too() -> None:
    decision = detect(points([0.5, 0.4, 0.35, 0.3]), points([0.5, 0.4, math.nan, 0.3]))
    assert decision.reason == REASON_NON_FINITE and decision.detected_at_epoch == 2
    assert "train loss is nan" in decision.explanation
    assert decision.last_value == 0.35


def test_too_short_is_no_decision_yet() -> None:
    decision = detect(points([0.5, 0.7, 0.9, 1.2]))  # rising, but only 4 epochs
    assert decision.status == "undecided" and decision.reason == REASON_INSUFFICIENT_DATA
    assert not decision.diverged and not decision.decided
    assert detect([]).status == "undecided"


def test_the_whole_curve_verdict_matches_the_in_flight_one() -> None:
    """The finished-job evaluator (whole curve) reports what the monitor found epoch by epoch."""
    values = decaying(12) + [decaying(12)[-1] * (1 + 0.04 * step) for step in range(1, 10)]
    whole = detect(points(values))
    assert whole.detected_at_epoch is not None
    first = next(end for end in range(1, len(values) + 1) if detect(points(values[:end])).diverged)
    assert first - 1 == whole.detected_at_epoch
    in_flight = detect(points(values[:first]))
    assert (in_flight.reason, in_flight.detected_at_epoch, in_flight.best_epoch) == (
        whole.reason, whole.detected_at_epoch, whole.best_epoch
    )


def test_epochs_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        detect([(0, 0.5), (2, 0.4), (1, 0.3)])


@given(st.lists(st.floats(min_value=1e-6, max_value=1e3), min_size=1, max_size=60, unique=True),
       st.booleans())
def test_a_strictly_improving_curve_never_diverges(values: list[float], with_train: bool) -> None:
    curve = sorted(values, reverse=True)
    train = points([value / 2 for value in curve]) if with_train else None
    assert not detect(points(curve), train).diverged


# ---------------------------------------------------------------------------------------------
# Config


def test_config_defaults_and_json_round_trip() -> None:
    config = DetectorConfig()
    assert DetectorConfig.from_json(config.to_json()) == config
    assert DetectorConfig.from_json("") == config == DetectorConfig.from_json("{}")
    custom = DetectorConfig.from_json('{"patience": 4, "min_relative_rise": 0, "min_absolute_rise": 0.01, '
                                      '"plateau_tolerance": 0}')
    assert custom.patience == 4 and isinstance(custom.min_relative_rise, float)


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ('{"patience": 0}', "patience", "int in [1, 50]"),
        ('{"patience": 2.5}', "patience", "int in [1, 50]"),
        ('{"patience": true}', "patience", "int in [1, 50]"),
        ('{"min_epochs": 1}', "min_epochs", "int in [2, 100]"),
        ('{"min_epochs": 4, "patience": 4}', "patience", "int in [1, 3]"),
        ('{"smoothing": 0}', "smoothing", "int in [1, 9]"),
        ('{"min_relative_rise": -0.1}', "min_relative_rise", "number in [0, 10]"),
        ('{"min_relative_rise": "5%"}', "min_relative_rise", "number in [0, 10]"),
        ('{"min_relative_rise": 0.005}', "plateau_tolerance", "[0, min_relative_rise=0.005]"),
        ('{"min_relative_rise": 0, "min_absolute_rise": 0, "plateau_tolerance": 0}', "min_relative_rise", "both 0"),
        ('{"gap_ratio_threshold": 1000}', "gap_ratio_threshold", "number in [0, 100]"),
        ('{"use_generalization_gap": "yes"}', "use_generalization_gap", "true or false"),
        ('{"patiense": 3}', "patiense", "known fields: min_epochs, patience"),
        ('[3]', "<root>", "JSON object"),
        ('{"patience": ', "<root>", "not valid JSON"),
    ],
)
def test_config_errors_name_the_field_and_the_allowed_range(text: str, field: str, allowed: str) -> None:
    with pytest.raises(ConfigFieldError) as raised:
        DetectorConfig.from_json(text)
    assert raised.value.field == field
    assert str(raised.value).startswith(f"detector config field {field!r}")
    assert allowed in str(raised.value)


def test_config_errors_are_detector_config_errors() -> None:
    with pytest.raises(DetectorConfigError):
        DetectorConfig(patience=0)


def test_curve_noise_ignores_a_linear_trend_and_measures_the_jitter() -> None:
    assert curve_noise([1.0 - 0.05 * epoch for epoch in range(10)]) == pytest.approx(0.0, abs=1e-12)
    assert curve_noise([1.0, 0.9]) == 0.0  # too short to say
    jitter = [1.0 + (0.02 if epoch % 2 else -0.02) for epoch in range(12)]
    assert curve_noise(jitter) == pytest.approx(1.4826 * 0.08 / math.sqrt(6))


def test_the_noise_aware_rule_raises_the_bar_on_a_noisy_curve_only() -> None:
    """A rise judged against the curve's own epoch-to-epoch noise: 6% above the minimum fires the plain 5%
    rule, but on a curve that jitters by 4% an epoch it is noise; on a smooth curve the same rise fires."""
    noisy = [1.0, 0.8, 0.64, 0.6, 0.64, 0.56, 0.6, 0.56, 0.6, 0.636, 0.64, 0.638]
    smooth = [1.0, 0.8, 0.7, 0.62, 0.6, 0.6, 0.601, 0.6, 0.636, 0.64, 0.638, 0.64]
    plain, aware = DetectorConfig(), DetectorConfig(noise_multiplier=3.0)
    assert detect(list(enumerate(noisy)), None, plain).diverged
    quiet = detect(list(enumerate(noisy)), None, aware)
    assert not quiet.diverged and "above" in quiet.explanation
    fired = detect(list(enumerate(smooth)), None, aware)
    assert fired.diverged and "x noise" in fired.explanation
    assert DetectorConfig().noise_multiplier == 0.0  # off by default: bench/results decides (docs/benchmarks.md)
