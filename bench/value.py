"""Section 6 of docs/benchmarks.md: is a retrain worth its GPU epochs? Rules and policies judged by the model
they buy.

Everything replays the recorded curves (section 2's records plus the value study's runs,
:data:`bench.config.BenchConfig.value_runs`); nothing is trained here.

**The value label.** An *attempt-1 curve* is a recorded run at dropout ``d`` (weight decay 0) whose
next attempt, the run the retrain policy would start (dropout ``d`` + the policy's step), is recorded
for the same configuration and seed. The retrain is **worth it** when the next attempt's best
validation value (as users run it: Object2Vec's early stopping on) beats attempt 1's by more than
``max(promotion_margin, VALUE_MARGIN)`` (relative): cdk.json's promotion margin is 0, which would
count a 0.01% gain, so the label asks for 1%. The headline suite is the lineages' real attempt 1
(dropout 0); the wider suite starts a lineage at every recorded dropout.

**The rules** (each answers "retrain?" for a finished or running attempt 1, :data:`RULES`).
Precision and recall of "retrain" against the value label; *premature*: an in-flight alarm at or
before the curve's best epoch (the job is stopped before its best model exists).

**The policies.** The loop (deployed detector and finished-job evaluator) replayed per seed with
each ``on_no_improvement`` choice, weight decay from the recorded runs; value per epoch = the
served model's relative validation gain over attempt 1, per GPU-epoch paid.

**Equal budgets.** Each alternative strategy of section 2 gets the epochs the loop paid on that seed
and holds the best model among the epochs it paid for (sampled strategies: mean over draws).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from o2v_core.detector import DetectorConfig
from o2v_core.early_stopping import choose_stop
from o2v_core.retrain_policy import ON_NO_IMPROVEMENT, RetrainPolicy

from bench.baselines import alarm_epoch
from bench.cost import OwnStop, reference_best, run_ours
from bench.curves import Curve
from bench.record import RunRecord
from bench.tuners import Trial, hyperband_trial, median_rule_trial, random_trial, sampled_search

VALUE_MARGIN = 0.01
# The test-split quality of a served model, per dataset (bench.sections._test_quality measures it): STS-B
# Spearman x 100 of the served embeddings' cosine, SNLI accuracy x 100 of the saved model on the test split.
TEST_METRICS = {"stsb": "STS-B Spearman", "snli": "SNLI accuracy"}
ALTERNATIVES: dict[str, Callable[[], Trial]] = {"random_search": random_trial, "hyperband": hyperband_trial,
                                                "median_rule": median_rule_trial}


@dataclass(frozen=True)
class Case:
    """One attempt-1 curve and the next attempt the policy would start."""

    config: str
    seed: int
    dropout: float
    first: RunRecord
    following: RunRecord

    @property
    def first_curve(self) -> Curve:
        return self.first.curve_with_early_stopping()

    @property
    def next_curve(self) -> Curve:
        return self.following.curve_with_early_stopping()

    def gain(self) -> float:
        """The next attempt's relative improvement of the best validation value (positive: better)."""
        mine, theirs = min(self.first_curve.validation), min(self.next_curve.validation)
        return (mine - theirs) / abs(mine)


def cases(records: Sequence[RunRecord], policy: RetrainPolicy) -> list[Case]:
    """Every recorded run (weight decay 0) whose policy-next dropout is recorded, same configuration and seed."""
    plain = {(item.spec.config_name, item.spec.seed, round(item.spec.dropout, 6)): item
             for item in records if not item.spec.weight_decay}
    found = []
    for (config, seed, dropout), item in sorted(plain.items()):
        wanted = round(min(dropout + policy.step_for(2), 1.0), 6)
        following = plain.get((config, seed, wanted))
        if following is not None:
            found.append(Case(config, seed, dropout, item, following))
    return found


def missing_next(records: Sequence[RunRecord], policy: RetrainPolicy) -> list[str]:
    """Attempt-1 runs (dropout 0) with no recorded next attempt."""
    have = {(item.spec.config_name, item.spec.seed, round(item.spec.dropout, 6)) for item in records
            if not item.spec.weight_decay}
    step = round(policy.step_for(2), 6)
    return sorted(f"{config} seed {seed}: no dropout {step:g} run" for config, seed, dropout in have
                  if dropout == 0 and (config, seed, step) not in have)


# -- the rules ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    retrain: bool
    alarm: int | None  # in-flight alarm epoch (None: judged at the end, or no alarm)


Rule = Callable[[Curve], Verdict]


def in_flight(detector: DetectorConfig) -> Rule:
    def rule(curve: Curve) -> Verdict:
        alarm = alarm_epoch(curve.validation, curve.train, detector)
        return Verdict(alarm is not None, alarm)
    return rule


def own_early_stopping(own: OwnStop) -> Rule:
    return lambda curve: Verdict(own.ended_itself(curve), None)


def after_rise(own: OwnStop, detector: DetectorConfig) -> Rule:
    return lambda curve: Verdict(own.ended_after_rise(curve, detector), None)


def budget_after_early_best(own: OwnStop, fraction: float = 0.5) -> Rule:
    """The job ran its whole epoch budget (its own early stopping did not end it) and its best epoch lies in
    the first ``fraction`` of the budget: the later half bought nothing."""
    def rule(curve: Curve) -> Verdict:
        budget = int(curve.params.get("epochs", curve.epochs))
        best = min(range(curve.epochs), key=lambda index: curve.validation[index])
        return Verdict(not own.ended_itself(curve) and best < fraction * budget, None)
    return rule


def either(*rules: Rule) -> Rule:
    def rule(curve: Curve) -> Verdict:
        verdicts = [item(curve) for item in rules]
        alarms = [item.alarm for item in verdicts if item.alarm is not None]
        return Verdict(any(item.retrain for item in verdicts), min(alarms) if alarms else None)
    return rule


def rules(shipped: DetectorConfig, picked: DetectorConfig, own: OwnStop) -> dict[str, tuple[str, Rule]]:
    gap = replace(shipped, use_generalization_gap=True)
    return {
        "loop": ("The loop as deployed: shipped detector in flight, or early_stopped_after_rise at the end",
                 either(in_flight(shipped), after_rise(own, shipped))),
        "shipped": ("Shipped detector (cdk.json), in flight", in_flight(shipped)),
        "study_pick": ("The threshold study's pick (section 1), in flight", in_flight(picked)),
        "o2v_early_stopping": ("Object2Vec's early stopping ended the job", own_early_stopping(own)),
        "early_stopped_after_rise": ("early_stopped_after_rise (finished-job evaluator)", after_rise(own, shipped)),
        "budget_after_early_best": ("Ran its whole budget, best epoch in the first half", budget_after_early_best(own)),
        "generalization_gap": ("Shipped detector with the generalization-gap rule on, in flight", in_flight(gap)),
        "loop_with_budget_rule": ("The loop, plus the budget-after-early-best rule",
                                  either(in_flight(shipped), after_rise(own, shipped), budget_after_early_best(own))),
    }


def _paid(curve: Curve, verdict: Verdict, own: OwnStop) -> int:
    """Epochs attempt 1 pays: to its alarm (or the control plane's finish), else its whole curve."""
    if verdict.alarm is None:
        return curve.epochs
    choice = choose_stop(list(curve.validation[: verdict.alarm + 1]), patience=own.patience, tolerance=own.tolerance,
                         epochs=int(curve.params.get("epochs", curve.epochs)),
                         finish_within_epochs=own.finish_within_epochs)
    return verdict.alarm + 1 if choice.stop else curve.epochs


# The test-split quality of a recorded run's weights at an epoch (None: not measured for that epoch).
TestQuality = Callable[[RunRecord, int], float | None]


def _best(values: Sequence[float]) -> int:
    return min(range(len(values)), key=lambda index: values[index])


def score_rule(rule: Rule, found: Sequence[Case], threshold: float, own: OwnStop,
               test: TestQuality) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for case in found:
        curve = case.first_curve
        verdict = rule(curve)
        worth = case.gain() > threshold
        best_epoch = min(range(curve.epochs), key=lambda index: curve.validation[index])
        paid = _paid(curve, verdict, own)
        held_epoch = _best(curve.validation[:paid])  # attempt 1's epoch the loop holds (and serves, if it stays)
        held_first = curve.validation[held_epoch]
        served, served_record, served_epoch = held_first, case.first, held_epoch
        if verdict.retrain:
            paid += case.next_curve.epochs
            if min(case.next_curve.validation) < held_first:
                served_epoch = _best(case.next_curve.validation)
                served, served_record = case.next_curve.validation[served_epoch], case.following
        # Attempt 1's test quality at its best epoch as users run it (the model it would serve alone).
        first_test, served_test = test(case.first, best_epoch), test(served_record, served_epoch)
        rows.append({
            "config": case.config, "seed": case.seed, "dropout": case.dropout, "worth": worth,
            "gain": case.gain(), "retrain": verdict.retrain, "alarm": verdict.alarm, "best_epoch": best_epoch,
            "premature": verdict.alarm is not None and verdict.alarm <= best_epoch, "epochs": paid,
            "served_dropout": served_record.spec.dropout, "served_epoch": served_epoch,
            "served_value": served, "first_value": min(curve.validation),
            "first_test": first_test, "served_test": served_test,
            "test_metric": TEST_METRICS.get(case.first.spec.dataset, case.first.spec.dataset),
        })
    tp = sum(row["retrain"] and row["worth"] for row in rows)
    fp = sum(row["retrain"] and not row["worth"] for row in rows)
    fn = sum(not row["retrain"] and row["worth"] for row in rows)
    tested = [row for row in rows if row["first_test"] is not None and row["served_test"] is not None]
    return {
        "cases": len(rows), "worth": sum(row["worth"] for row in rows), "retrain": tp + fp,
        "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
        "premature": sum(row["premature"] for row in rows),
        "mean_epochs": statistics.fmean(row["epochs"] for row in rows) if rows else None,
        "test_cases": len(tested),
        "served_worse_on_test": sum(row["served_test"] < row["first_test"] for row in tested),
        "test_gain": test_gains(tested),
        "rows": rows,
    }


def test_gains(tested: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per test metric (their units differ): the mean of served minus attempt 1's test quality, and how many."""
    by_metric: dict[str, list[float]] = {}
    for row in tested:
        by_metric.setdefault(str(row["test_metric"]), []).append(row["served_test"] - row["first_test"])
    return {metric: {"mean": statistics.fmean(gains), "cases": len(gains)}
            for metric, gains in sorted(by_metric.items())}


def agreement(found: Sequence[Case], threshold: float) -> dict[str, Any]:
    """Shape label (section 1's rule, on the run as users run it) against the value label."""
    table = {"diverging_worth": 0, "diverging_not_worth": 0, "healthy_worth": 0, "healthy_not_worth": 0}
    rows = []
    for case in found:
        shape = case.first_curve.label.diverging
        worth = case.gain() > threshold
        table[f"{'diverging' if shape else 'healthy'}_{'worth' if worth else 'not_worth'}"] += 1
        rows.append({"config": case.config, "seed": case.seed, "dropout": case.dropout, "shape_diverging": shape,
                     "worth": worth, "gain": case.gain(), "next_dropout": case.following.spec.dropout})
    agree = table["diverging_worth"] + table["healthy_not_worth"]
    return {**table, "cases": len(rows), "agree": agree, "rate": agree / len(rows) if rows else None, "rows": rows}


# -- the policies ------------------------------------------------------------------------------------


def policy_variants(base: RetrainPolicy, weight_decays: Sequence[float]) -> dict[str, RetrainPolicy]:
    variants = {mode: replace(base, on_no_improvement=mode) for mode in ON_NO_IMPROVEMENT if mode != "weight_decay"}
    for value in weight_decays:
        variants[f"weight_decay {value:g}"] = replace(base, on_no_improvement="weight_decay", weight_decay_step=value,
                                                      weight_decay_cap=max(value, base.weight_decay_cap))
    return variants


def replay_policies(
    by_seed: Mapping[int, Mapping[float, Curve]], extra: Mapping[int, Mapping[tuple[float, float], Curve]],
    detector: DetectorConfig, variants: Mapping[str, RetrainPolicy], own: OwnStop,
    test: Callable[[float, float, int, int], float | None],
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, policy in variants.items():
        seeds = []
        for seed, curves in sorted(by_seed.items()):
            ref = reference_best(curves)
            run = run_ours(curves, seed, detector, policy, reference=ref, own_stop=own, decayed=extra.get(seed, {}))
            first = run.runs[0].best_value
            served = min(run.runs, key=lambda item: item.best_value)
            gain = (first - served.best_value) / abs(first)
            seeds.append({
                "seed": seed, "epochs": run.epochs_total, "attempts": len(run.runs), "served_value": served.best_value,
                "served": f"dropout {served.dropout:g}" + (f", weight decay {served.weight_decay:g}"
                                                           if served.weight_decay else ""),
                "first_value": first, "gain": gain, "gain_per_epoch": gain / run.epochs_total,
                "served_test": test(served.dropout, served.weight_decay, seed, served.best_epoch),
                "first_test": test(run.runs[0].dropout, 0.0, seed, run.runs[0].best_epoch),
                "path": [f"{item.dropout:g}" + (f"+wd{item.weight_decay:g}" if item.weight_decay else "")
                         for item in run.runs],
                "note": run.note,
            })
        result[name] = {"seeds": seeds, **_spread(seeds)}
    return result


def _spread(seeds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    def stats(key: str) -> dict[str, float | None]:
        values = [float(row[key]) for row in seeds if row.get(key) is not None]
        if not values:
            return {"mean": None, "sd": None, "min": None, "max": None}
        return {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}
    return {"epochs": stats("epochs"), "gain": stats("gain"), "gain_per_epoch": stats("gain_per_epoch")}


def choose_policy(replayed: Mapping[str, Any]) -> str:
    """The highest mean value per epoch; ties to the cheaper (fewer mean epochs), then the name order."""
    return min(replayed, key=lambda name: (-round(replayed[name]["gain_per_epoch"]["mean"], 9),
                                           replayed[name]["epochs"]["mean"], name))


# -- equal budgets -----------------------------------------------------------------------------------


def held_at_budget(curves: Mapping[float, Curve], order: Sequence[tuple[float, int]], budget: int) -> float:
    """The best validation value among the first ``budget`` epochs paid in ``order`` ((dropout, epochs) jobs)."""
    held, left = float("inf"), budget
    for dropout, paid in order:
        take = min(paid, left)
        if take > 0:
            held = min(held, min(curves[dropout].validation[:take]))
        left -= take
        if left <= 0:
            break
    return held


def sampled_at_budget(curves: Mapping[float, Curve], trial_factory: Callable[[], Trial], budget: int, seed: int,
                      draws: int) -> dict[str, float]:
    rng = random.Random(2000 + seed)
    values = []
    for _ in range(draws):
        order: list[tuple[float, int]] = []
        spent = [0]

        def pay(curve: Curve, dropout: float, paid: int, order: list[tuple[float, int]] = order,
                spent: list[int] = spent) -> bool:
            order.append((dropout, paid))
            spent[0] += paid
            return spent[0] >= budget

        sampled_search(curves, trial_factory(), rng, max_jobs=budget, pay=pay)
        values.append(held_at_budget(curves, order, budget))
    ordered = sorted(values)
    return {"mean": statistics.fmean(values), "p10": ordered[len(ordered) // 10],
            "p90": ordered[(9 * len(ordered)) // 10]}


def equal_budgets(by_seed: Mapping[int, Mapping[float, Curve]], loop: Mapping[str, Any], draws: int) -> dict[str, Any]:
    """Per seed: what each alternative holds after the loop's epochs (relative gain over attempt 1 per epoch)."""
    rows = []
    for row in loop["seeds"]:
        seed, budget = row["seed"], int(row["epochs"])
        curves = by_seed[seed]
        first = row["first_value"]
        entry: dict[str, Any] = {"seed": seed, "budget": budget, "loop": row["served_value"],
                                 "grid": held_at_budget(curves, [(d, curves[d].epochs) for d in sorted(curves)],
                                                        budget),
                                 "grid_best": reference_best(curves)}
        for name, factory in ALTERNATIVES.items():
            entry[name] = sampled_at_budget(curves, factory, budget, seed, draws)
        entry["per_epoch"] = {name: (first - _mean(entry[name])) / abs(first) / budget
                              for name in ("loop", "grid", *ALTERNATIVES)}
        rows.append(entry)
    names = ("loop", "grid", *ALTERNATIVES)
    summary = {name: {"mean": statistics.fmean(row["per_epoch"][name] for row in rows),
                      "sd": statistics.stdev([row["per_epoch"][name] for row in rows]) if len(rows) > 1 else 0.0}
               for name in names} if rows else {}
    best_alternative = max((name for name in names if name != "loop"), key=lambda name: summary[name]["mean"],
                           default=None) if rows else None
    return {"rows": rows, "summary": summary, "best_alternative": best_alternative,
            "met": bool(rows) and all(row["per_epoch"]["loop"] >= max(row["per_epoch"][name] for name in names
                                                                     if name != "loop") - 1e-12 for row in rows)}


def _mean(value: Any) -> float:
    return float(value["mean"]) if isinstance(value, Mapping) else float(value)
