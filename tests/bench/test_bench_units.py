"""Fast checks of the benchmark's rules: labelling, the alternative detectors, scoring, replay."""

from __future__ import annotations

import math

from o2v_core.detector import DetectorConfig
from o2v_core.retrain_policy import RetrainPolicy

from bench.baselines import debugger_overfit, keras_early_stopping, object2vec_early_stopping
from bench.cost import GOOD_MARGIN, run_grid, run_ours
from bench.curves import SYNTHETIC_FAMILIES, Curve, label, synthetic_suite
from bench.scoring import evaluate, outcome


def _curve(validation: list[float], train: list[float] | None = None, name: str = "c") -> Curve:
    return Curve(name, "synthetic", "test", tuple(validation), tuple(train or [v * 0.9 for v in validation]))


def test_label_rule_onset_is_the_start_of_the_final_tail_above_threshold() -> None:
    # centred median of 3: 0.9 0.8 0.72 0.72 0.75 0.8 0.9 0.95; threshold 0.756; tail from epoch 5
    rising = [1.0, 0.8, 0.7, 0.72, 0.75, 0.8, 0.9, 1.0]
    assert label(rising).diverging and label(rising).onset == 5 and label(rising).best_epoch == 2
    spike = [1.0, 0.8, 0.7, 1.2, 1.1, 0.7, 0.69, 0.69]
    assert not label(spike).diverging
    lucky = [1.0, 0.8, 0.75, 0.74, 0.6, 0.76, 0.75, 0.77, 0.76]  # one lucky epoch does not set the bar
    assert not label(lucky).diverging
    short_tail = [1.0, 0.8, 0.7, 0.7, 0.9, 0.9]
    assert not label(short_tail).diverging  # 2 epochs above: not enough evidence
    nan = [1.0, 0.8, 0.7, math.nan]
    assert label(nan).diverging and label(nan).onset == 3


def test_synthetic_suite_is_deterministic_and_covers_every_family() -> None:
    first, second = synthetic_suite(3, seed=5), synthetic_suite(3, seed=5)
    assert [c.to_json() for c in first] == [c.to_json() for c in second]
    assert {c.family for c in first} == set(SYNTHETIC_FAMILIES)
    assert all(label(c.validation).diverging for c in first if c.family in ("early_divergence", "nan"))


def test_alternatives_follow_their_documented_semantics() -> None:
    flat = _curve([1.0, 0.9, 0.895, 0.894, 0.893, 0.892])
    # Object2Vec's rule (reference 10c): stops when the bad count (epochs not 0.01 below the
    # previous 3 epochs' minimum) exceeds the patience, so on the 4th bad epoch.
    assert object2vec_early_stopping()(flat) == 5
    # A sliding window: the old best (0.5) leaves it, so a recovering curve is not stopped.
    recovering = _curve([1.0, 0.5, 0.9, 0.8, 0.7, 0.6, 0.55])
    assert object2vec_early_stopping()(recovering) is None
    assert keras_early_stopping()(flat) is None  # every epoch is a strict improvement
    gap = _curve([1.0, 0.9, 0.8], [0.95, 0.85, 0.7])  # ratios 0.05, 0.06, 0.14
    assert debugger_overfit()(gap) == 2


def test_scoring_counts_premature_alarms_as_false_positive_and_miss() -> None:
    rising = _curve([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 1.0])
    assert outcome(rising, 1).kind == "premature"
    assert outcome(rising, 6).kind == "tp" and outcome(rising, 6).delay == 2  # onset 4 (smoothed)
    score, _ = evaluate(lambda curve: 1, [rising])
    assert score.fp == 1 and score.fn == 1 and score.tp == 0


def test_replay_pays_only_for_epochs_each_strategy_runs() -> None:
    overfit = [1.0, 0.8, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2]
    regular = [1.0, 0.8, 0.7, 0.65, 0.62, 0.61, 0.6, 0.6]
    curves = {0.0: _curve(overfit, name="d0"), 0.1: _curve(regular, name="d1")}
    ours = run_ours(curves, 0, DetectorConfig(min_epochs=3, patience=2), RetrainPolicy())
    assert [run.dropout for run in ours.runs] == [0.0, 0.1]
    assert ours.runs[0].paid < len(overfit) and ours.runs[1].paid == len(regular)
    grid = run_grid(curves, 0)
    assert grid.epochs_total == len(overfit) + len(regular)
    assert ours.held_value <= 0.6 * (1 + GOOD_MARGIN) and ours.epochs_total < grid.epochs_total
