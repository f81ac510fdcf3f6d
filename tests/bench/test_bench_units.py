"""Fast checks of the benchmark's rules: labelling, the alternative detectors, scoring, replay."""

from __future__ import annotations

import math

from o2v_core.detector import DetectorConfig
from o2v_core.retrain_policy import RetrainPolicy

from bench import value
from bench.baselines import debugger_overfit, keras_early_stopping, object2vec_early_stopping
from bench.cost import GOOD_MARGIN, OwnStop, reference_best, run_grid, run_ours, run_sampled
from bench.curves import SYNTHETIC_FAMILIES, Curve, label, synthetic_suite
from bench.record import RunRecord, RunSpec
from bench.scoring import evaluate, outcome
from bench.tuners import TunerHistory, brackets, hyperband_trial, median_rule_trial, random_trial, rungs


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
    full = OwnStop(False, 9, 0.01, finish_within_epochs=0)
    ref = reference_best(curves)
    ours = run_ours(curves, 0, DetectorConfig(min_epochs=3, patience=2), RetrainPolicy(), reference=ref,
                    own_stop=full)
    assert [run.dropout for run in ours.runs] == [0.0, 0.1]
    assert ours.runs[0].paid < len(overfit) and ours.runs[1].paid == len(regular)
    grid = run_grid(curves, 0, reference=ref, own_stop=full)
    assert grid.epochs_total == len(overfit) + len(regular)
    assert ours.held_value <= 0.6 * (1 + GOOD_MARGIN) and ours.epochs_total < grid.epochs_total


def test_a_diverged_job_that_its_own_early_stopping_ends_soon_is_left_to_finish() -> None:
    """The control plane's stop-or-finish choice: with early stopping on, a job whose own rule ends it
    within finish_within_epochs finishes (its best model is kept) and pays those epochs."""
    # patience 4: bad from epoch 3 on, its own rule ends the 10-epoch job at epoch 7; the detector fires at 5.
    overfit = Curve("d0", "stsb", "recorded_es", (1.0, 0.8, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2), (0.9,) * 8,
                    {"epochs": 10})
    regular = Curve("d1", "stsb", "recorded_es", (1.0, 0.8, 0.7, 0.65, 0.62, 0.61, 0.6, 0.6, 0.6, 0.6),
                    (0.5,) * 10, {"epochs": 10})
    curves = {0.0: overfit, 0.1: regular}
    detector = DetectorConfig(min_epochs=3, patience=2)
    finish = run_ours(curves, 0, detector, RetrainPolicy(), reference=0.6,
                      own_stop=OwnStop(True, 4, 0.01, finish_within_epochs=2))
    stop = run_ours(curves, 0, detector, RetrainPolicy(), reference=0.6,
                    own_stop=OwnStop(True, 4, 0.01, finish_within_epochs=1))
    assert (finish.runs[0].paid, finish.runs[0].stopped_by) == (8, "detector, then early_stopping")
    assert (stop.runs[0].paid, stop.runs[0].stopped_by) == (6, "detector")
    assert finish.runs[1].stopped_by == "budget" and finish.epochs_total == stop.epochs_total + 2


def test_hyperband_rungs_brackets_and_the_asha_cut() -> None:
    assert rungs(1, 16, 3) == [1, 3, 9] and rungs(1, 16, 3, bracket=1) == [3, 9] and rungs(1, 16, 3, 2) == [9]
    assert brackets(1, 16, 3) == 3 and brackets(5, 5, 3) == 1
    trial = hyperband_trial(min_resource=1, eta=3)
    history = TunerHistory()
    good = _curve([1.0 - 0.01 * epoch for epoch in range(16)], name="good")
    bad = _curve([2.0 - 0.01 * epoch for epoch in range(16)], name="bad")
    # Jobs go to brackets 0, 1, 2, 0, ...: the first job of each rung has nothing to lose to.
    assert [trial(good, history) for _ in range(3)] == [16, 16, 16]
    assert trial(bad, history) == 1  # bracket 0: worse than the recorded job at rung 1 (epoch 1)
    assert trial(bad, history) == 3  # bracket 1: its first rung is epoch 3
    assert history.jobs == 5


def test_median_rule_stops_a_job_worse_than_the_median_of_running_averages() -> None:
    trial = median_rule_trial()
    history = TunerHistory()
    first = _curve([1.0, 0.9, 0.8, 0.7, 0.6], name="first")
    assert trial(first, history) == 5  # nothing to compare with: it runs its whole curve
    # Epoch 0 and 1 beat the first job's running averages (1.0, 0.95); epoch 2's 0.95 is worse than 0.9.
    later = _curve([0.99, 0.94, 0.95, 0.5, 0.4], name="later")
    assert trial(later, history) == 3
    assert history.running[1] == [0.99, (0.99 + 0.94) / 2, (0.99 + 0.94 + 0.95) / 3]
    assert random_trial()(first, TunerHistory()) == 5


def test_sampled_strategies_share_their_draws_and_reach_the_grid_best() -> None:
    curves = {0.0: _curve([1.0, 0.8, 0.9, 1.0], name="d0"), 0.5: _curve([1.2, 0.9, 0.7, 0.6], name="d5")}
    ref = reference_best(curves)
    random_run = run_sampled("random_search", random_trial, curves, 0, reference=ref, draws=50)
    hyperband = run_sampled("hyperband", hyperband_trial, curves, 0, reference=ref, draws=50)
    assert random_run.held_good and hyperband.held_good
    assert random_run.epochs_to_good is not None and hyperband.epochs_to_good is not None
    # Same draws. Hyperband cuts dropout 0.5 at its early rungs, where it still trails dropout 0's fast
    # start, so it needs more jobs to let one run to the good epoch: the bias of early cuts on a
    # regularization knob.
    assert hyperband.epochs_to_good > random_run.epochs_to_good


# -- section 6: the value label, the rules and the policies (issue 29) --------------------------------


def _record(dropout: float, validation: list[float], *, seed: int = 0, weight_decay: float = 0.0,
            es_epoch: int | None = None) -> RunRecord:
    spec = RunSpec("stsb", "pooled_embedding", 8, dropout, seed, len(validation), weight_decay)
    return RunRecord(spec, "validation:mean_squared_error", validation, [v * 0.5 for v in validation],
                     [1.0] * len(validation), 1.0, 0, f"models/{spec.key}", 3, 0.01, es_epoch)


def test_the_value_label_asks_for_the_next_attempt_to_beat_attempt_1_by_the_margin() -> None:
    records = [_record(0.0, [1.0, 0.8, 0.9, 1.0]), _record(0.1, [1.0, 0.78, 0.77, 0.8]),
               _record(0.2, [1.0, 0.7, 0.6, 0.5]), _record(0.1, [1.0, 0.1], weight_decay=0.001)]
    found = value.cases(records, RetrainPolicy())
    assert [(case.dropout, case.following.spec.dropout) for case in found] == [(0.0, 0.1), (0.1, 0.2)]
    assert round(found[0].gain(), 4) == 0.0375  # 0.8 -> 0.77
    table = value.agreement(found, 0.05)
    assert [row["worth"] for row in table["rows"]] == [False, True]  # 3.75% is under a 5% margin; 35% is not
    assert value.missing_next([_record(0.0, [1.0, 0.9], seed=3)], RetrainPolicy()) == [
        "stsb/pooled_embedding-8 seed 3: no dropout 0.1 run"]


def test_the_budget_rule_fires_only_on_a_job_that_ran_its_budget_after_an_early_best() -> None:
    own = OwnStop(True, 3, 0.01, None)
    rule = value.budget_after_early_best(own)
    early_best = _curve([1.0, 0.5, 0.6, 0.55, 0.56, 0.57, 0.58, 0.52])  # its 8-epoch budget ran out
    assert rule(early_best).retrain
    assert not rule(_curve([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])).retrain  # best at the end
    ended_itself = Curve("e", "stsb", "recorded_es", (1.0, 0.5, 0.6, 0.7, 0.8, 0.9), (0.5,) * 6, {"epochs": 12})
    assert own.ended_itself(ended_itself) and not rule(ended_itself).retrain


def test_rule_scores_count_wasted_and_missed_retrains_and_the_served_model() -> None:
    records = [_record(0.0, [1.0, 0.8, 0.9, 1.0]), _record(0.1, [1.0, 0.7, 0.75, 0.8]),
               _record(0.2, [1.0, 0.9, 0.95, 0.99])]
    found = value.cases(records, RetrainPolicy())
    always = value.score_rule(lambda curve: value.Verdict(True, None), found, 0.01, OwnStop(True, 3, 0.01, None),
                              lambda item, epoch: 50.0 + 10 * item.spec.dropout)
    assert (always["tp"], always["fp"], always["fn"]) == (1, 1, 0)
    assert always["precision"] == 0.5 and always["recall"] == 1.0
    first = always["rows"][0]
    assert first["served_dropout"] == 0.1 and first["epochs"] == 8  # both attempts paid
    assert always["rows"][1]["served_dropout"] == 0.1  # the worse next attempt is not served


def test_the_stop_policy_pays_less_than_raising_a_knob_that_stopped_helping() -> None:
    # attempt 1 overfits, dropout 0.1 helps, 0.2 and 0.3 are worse: every attempt ends after a rise
    def overfit(low: float) -> Curve:
        return _curve([1.0, low, low * 1.2, low * 1.3, low * 1.4, low * 1.5, low * 1.6])

    curves = {0.0: overfit(0.8), 0.1: overfit(0.6), 0.2: overfit(0.7), 0.3: overfit(0.75)}
    detector = DetectorConfig(min_epochs=3, patience=2)
    own = OwnStop(False, 9, 0.01, finish_within_epochs=0)
    replayed = value.replay_policies({0: curves}, {}, detector,
                                     value.policy_variants(RetrainPolicy(), ()), own,
                                     lambda d, w, s, e: None)
    stop, keep = replayed["stop"]["seeds"][0], replayed["keep_raising"]["seeds"][0]
    assert stop["path"] == ["0", "0.1", "0.2"] and keep["path"] == ["0", "0.1", "0.2", "0.3"]
    assert stop["served_value"] == keep["served_value"] == 0.6 and stop["epochs"] < keep["epochs"]
    assert "no_improvement" in stop["note"]
    assert value.choose_policy(replayed) == "stop"


def test_equal_budgets_cut_every_strategy_at_the_loops_epochs() -> None:
    curves = {0.0: _curve([1.0, 0.9, 0.8]), 0.1: _curve([1.0, 0.7, 0.6])}
    assert value.held_at_budget(curves, [(0.0, 3), (0.1, 3)], 4) == 0.8  # 3 epochs of 0.0, 1 of 0.1
    assert value.held_at_budget(curves, [(0.0, 3), (0.1, 3)], 5) == 0.7
    loop = {"seeds": [{"seed": 0, "epochs": 6, "served_value": 0.6, "first_value": 0.8}]}
    found = value.equal_budgets({0: curves}, loop, draws=20)
    row = found["rows"][0]
    assert row["grid"] == 0.6 and row["random_search"]["mean"] >= 0.6
    assert found["met"] is True
