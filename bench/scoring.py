"""Scoring detectors on the labelled suite, and the threshold study for our detector.

Per curve (label from :func:`bench.curves.label`):

* diverging, alarm after the best epoch: **true positive**; delay = ``max(0, alarm - onset)``
  epochs (an alarm between the best epoch and the onset counts as delay 0);
* diverging, alarm at or before the best epoch: **premature** (the run is stopped before its best
  model exists): a false positive *and* a miss;
* diverging, no alarm: **miss** (false negative);
* healthy, alarm: **false positive**; healthy, no alarm: true negative.

precision = TP / (TP + FP), recall = TP / diverging curves, FPR = false alarms / healthy curves.
Percentiles use the nearest-rank method (numpy ``inverted_cdf``), so delays stay whole epochs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from o2v_core.detector import DetectorConfig

from bench.baselines import FirstAlarm, ours
from bench.curves import Curve


@dataclass(frozen=True)
class Outcome:
    curve: str
    family: str
    source: str
    diverging: bool
    onset: int | None
    best_epoch: int
    alarm: int | None
    kind: str  # tp | premature | fn | fp | tn
    delay: int | None


@dataclass
class Score:
    curves: int
    diverging: int
    healthy: int
    tp: int
    fp: int
    fn: int
    premature: int
    healthy_alarms: int
    precision: float
    recall: float
    f1: float
    fpr_healthy: float
    median_delay: float | None
    p90_delay: float | None
    per_family: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def outcome(curve: Curve, alarm: int | None) -> Outcome:
    lab = curve.label
    if lab.diverging:
        if alarm is None:
            kind, delay = "fn", None
        elif alarm <= lab.best_epoch:
            kind, delay = "premature", None
        else:
            assert lab.onset is not None
            kind, delay = "tp", max(0, alarm - lab.onset)
    else:
        kind, delay = ("fp", None) if alarm is not None else ("tn", None)
    return Outcome(curve.name, curve.family, curve.source, lab.diverging, lab.onset, lab.best_epoch, alarm, kind,
                   delay)


def percentile(values: Sequence[int], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q, method="inverted_cdf"))


def summarize(outcomes: Sequence[Outcome]) -> Score:
    tp = sum(item.kind == "tp" for item in outcomes)
    premature = sum(item.kind == "premature" for item in outcomes)
    healthy_alarms = sum(item.kind == "fp" for item in outcomes)
    fn = sum(item.kind == "fn" for item in outcomes) + premature
    fp = healthy_alarms + premature
    diverging = sum(item.diverging for item in outcomes)
    healthy = len(outcomes) - diverging
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / diverging if diverging else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    delays = [item.delay for item in outcomes if item.delay is not None]
    per_family: dict[str, dict[str, Any]] = {}
    for item in outcomes:
        key = item.family if item.source == "synthetic" else f"{item.family}/{item.source}"
        entry = per_family.setdefault(key, {"curves": 0, "diverging": 0, "alarms": 0, "tp": 0, "fp": 0,
                                            "premature": 0, "fn": 0, "delays": []})
        entry["curves"] += 1
        entry["diverging"] += item.diverging
        entry["alarms"] += item.alarm is not None
        if item.kind != "tn":
            entry[item.kind] += 1
        if item.delay is not None:
            entry["delays"].append(item.delay)
    for entry in per_family.values():
        delays_here = entry.pop("delays")
        entry["median_delay"] = percentile(delays_here, 50)
    return Score(
        curves=len(outcomes), diverging=diverging, healthy=healthy, tp=tp, fp=fp, fn=fn, premature=premature,
        healthy_alarms=healthy_alarms, precision=precision, recall=recall, f1=f1,
        fpr_healthy=healthy_alarms / healthy if healthy else 0.0,
        median_delay=float(np.median(delays)) if delays else None,
        p90_delay=percentile(delays, 90),
        per_family=per_family,
    )


def evaluate(first_alarm: FirstAlarm, curves: Iterable[Curve]) -> tuple[Score, list[Outcome]]:
    outcomes = [outcome(curve, first_alarm(curve)) for curve in curves]
    return summarize(outcomes), outcomes


# -- the threshold study ----------------------------------------------------------------------------


def candidate_configs(smoke: bool = False) -> list[DetectorConfig]:
    """The grid of detector settings the study sweeps (invalid combinations skipped)."""
    if smoke:
        patiences: tuple[int, ...] = (2, 3)
        rises: tuple[float, ...] = (0.03, 0.05)
        gaps: tuple[tuple[bool, float, float], ...] = ((False, 0.1, 0.1), (True, 0.1, 0.1))
        min_epochs_options: tuple[int, ...] = (5,)
        smoothings: tuple[int, ...] = (3,)
    else:
        patiences = (1, 2, 3, 4)
        rises = (0.02, 0.03, 0.05, 0.08, 0.12)
        gaps = ((False, 0.1, 0.1), (True, 0.1, 0.1), (True, 0.1, 0.2), (True, 0.2, 0.1), (True, 0.1, 0.05))
        min_epochs_options = (3, 5)
        smoothings = (1, 3, 5)
    # The noise-aware rule (a rise judged against the curve's own epoch-to-epoch noise) with a lower
    # relative floor, without the gap rule: noise multiplier x relative rise.
    noise_rises: tuple[float, ...] = (0.01, 0.02) if smoke else (0.0, 0.01, 0.02, 0.03)
    noise_multipliers: tuple[float, ...] = (3.0,) if smoke else (2.0, 3.0, 4.0, 6.0)
    plain = [(patience, rise, gap, min_epochs, smoothing, 0.0) for patience, rise, gap, min_epochs, smoothing
             in itertools.product(patiences, rises, gaps, min_epochs_options, smoothings)]
    noisy = [(patience, rise, (False, 0.1, 0.1), min_epochs, smoothing, multiplier)
             for patience, rise, min_epochs, smoothing, multiplier
             in itertools.product(patiences, noise_rises, min_epochs_options, smoothings, noise_multipliers)]
    configs: list[DetectorConfig] = []
    seen: set[str] = set()
    for patience, rise, (use_gap, ratio, widening), min_epochs, smoothing, multiplier in plain + noisy:
        floor = max(min_epochs, patience + 1, smoothing)
        config = DetectorConfig(
            min_epochs=floor, patience=patience, smoothing=smoothing, min_relative_rise=rise,
            plateau_tolerance=min(0.01, rise), use_generalization_gap=use_gap, gap_ratio_threshold=ratio,
            gap_widening=widening, noise_multiplier=multiplier,
        )
        key = config.to_json()
        if key not in seen:
            seen.add(key)
            configs.append(config)
    return configs


@dataclass
class StudyRow:
    config: dict[str, Any]
    tune: Score
    meets_constraints: bool


def meets(score: Score, max_median_delay: float = 2.0) -> bool:
    """The targets a default must meet: no false alarm on a healthy curve, median delay <= 2."""
    return (score.healthy_alarms == 0 and score.premature == 0 and score.median_delay is not None
            and score.median_delay <= max_median_delay)


def study(configs: Sequence[DetectorConfig], tune_curves: Sequence[Curve]) -> list[StudyRow]:
    rows = []
    for config in configs:
        score, _ = evaluate(ours(config), tune_curves)
        rows.append(StudyRow(_config_dict(config), score, meets(score)))
    return rows


def _config_dict(config: DetectorConfig) -> dict[str, Any]:
    return dict(asdict(config))


def choose(rows: Sequence[StudyRow], default: DetectorConfig) -> StudyRow:
    """The recommended setting. Tiers: rows meeting every constraint; else rows with no false alarm
    on a healthy curve and no premature alarm (a false alarm kills a good run; a late one costs an
    epoch); else every row. Within the tier: best F1, then lower median and p90 delay, then the
    fewest fields changed from ``default``."""
    tiers = ([row for row in rows if row.meets_constraints],
             [row for row in rows if row.tune.healthy_alarms == 0 and row.tune.premature == 0],
             list(rows))
    pool = next(tier for tier in tiers if tier)
    base = _config_dict(default)

    def key(row: StudyRow) -> tuple[float, float, float, int]:
        changed = sum(row.config[name] != base[name] for name in base)
        return (-round(row.tune.f1, 6), row.tune.median_delay if row.tune.median_delay is not None else 99.0,
                row.tune.p90_delay if row.tune.p90_delay is not None else 99.0, changed)

    return min(pool, key=key)


def tier_of(row: StudyRow) -> str:
    if row.meets_constraints:
        return "meets every constraint"
    if row.tune.healthy_alarms == 0 and row.tune.premature == 0:
        return "no false alarm, median delay above the bound"
    return "best F1 regardless of false alarms"
