"""Section 2: epochs each strategy pays before it holds a model within 2% of the grid's best.

Every strategy is a replay over the recorded full-budget curves of one configuration (one curve
per dropout value 0.0-0.7 and seed). A strategy pays for an epoch when it would have trained it;
the model it *holds* is the best-validation epoch among the epochs it paid for (the trainer keeps
best-epoch weights). Per seed:

* ``reference`` = the lowest validation loss of the whole grid (every dropout, every epoch);
  *good* means ``<= reference * (1 + GOOD_MARGIN)``.
* ``epochs_to_good`` = epochs paid, in the strategy's order, up to and including the first epoch
  at which the held model is good (None: never).
* ``epochs_total`` = epochs paid until the strategy stops by its own rule.
* ``wasted`` = epochs paid at or after a run's divergence onset (label rule of section 1).

Strategies: ``ours`` (attempt 1 at dropout 0; the detector stops a run at its alarm epoch; the
retrain policy picks the next dropout; a run without an alarm ends the loop), ``grid`` (dropout
0.0 to 0.7 in ascending order, full budget each), ``random_search`` (dropout drawn uniformly from
the recorded grid values, full budget per trial, as SageMaker AMT's Random strategy would with
this search space; expectation over many draws), ``no_remediation`` (dropout 0, full budget), and
for information ``grid_early_stopping`` (the grid with Object2Vec's built-in early stopping).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from o2v_core.detector import DetectorConfig
from o2v_core.retrain_policy import Exhausted, RetrainPolicy

from bench.baselines import alarm_epoch, object2vec_early_stopping
from bench.curves import Curve, label

GOOD_MARGIN = 0.02
RANDOM_DRAWS = 2000
RANDOM_MAX_TRIALS = 60


@dataclass
class PaidRun:
    dropout: float
    paid: int
    stopped_by: str  # detector | budget | early_stopping
    best_value: float
    best_epoch: int
    onset: int | None
    wasted: int


@dataclass
class StrategyRun:
    strategy: str
    seed: int
    epochs_to_good: float | None
    epochs_total: float
    wasted: float
    held_value: float
    held_good: bool
    runs: list[PaidRun] = field(default_factory=list)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _Ledger:
    """Counts paid epochs and remembers when the held model first became good."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.total = 0
        self.reached: int | None = None
        self.held = float("inf")
        self.runs: list[PaidRun] = []

    def pay(self, curve: Curve, dropout: float, paid: int, stopped_by: str) -> PaidRun:
        values = curve.validation[:paid]
        for value in values:
            self.total += 1
            if value < self.held:
                self.held = value
            if self.reached is None and self.held <= self.threshold:
                self.reached = self.total
        best_epoch = min(range(len(values)), key=lambda index: values[index])
        onset = label(curve.validation).onset
        wasted = max(0, paid - onset) if onset is not None else 0
        run = PaidRun(dropout, paid, stopped_by, values[best_epoch], best_epoch, onset, wasted)
        self.runs.append(run)
        return run

    def result(self, strategy: str, seed: int, note: str = "") -> StrategyRun:
        return StrategyRun(strategy, seed, self.reached, self.total, sum(run.wasted for run in self.runs), self.held,
                           self.held <= self.threshold, self.runs, note)


def reference_best(curves: Mapping[float, Curve]) -> float:
    return min(min(curve.validation) for curve in curves.values())


def _nearest(curves: Mapping[float, Curve], dropout: float) -> float:
    return min(curves, key=lambda value: (abs(value - dropout), value))


def run_ours(
    curves: Mapping[float, Curve], seed: int, detector: DetectorConfig, policy: RetrainPolicy
) -> StrategyRun:
    ledger = _Ledger(reference_best(curves) * (1 + GOOD_MARGIN))
    hps: dict[str, str] = {"enc0_max_seq_len": "40", "enc0_vocab_size": "1000", "dropout": "0.0"}
    attempt, notes = 1, []
    while True:
        wanted = float(hps["dropout"])
        dropout = _nearest(curves, wanted)
        if abs(dropout - wanted) > 1e-9:
            notes.append(f"dropout {wanted:g} replayed with the recorded {dropout:g}")
        curve = curves[dropout]
        alarm = alarm_epoch(curve.validation, curve.train, detector)
        ledger.pay(curve, dropout, curve.epochs if alarm is None else alarm + 1,
                   "budget" if alarm is None else "detector")
        if alarm is None:
            break
        following = policy.next_hyperparameters(hps, attempt + 1)
        if isinstance(following, Exhausted):
            notes.append(f"policy exhausted: {following.reason}")
            break
        hps, attempt = following, attempt + 1
    return ledger.result("ours", seed, "; ".join(notes))


def run_grid(curves: Mapping[float, Curve], seed: int, *, early_stopping: bool = False) -> StrategyRun:
    ledger = _Ledger(reference_best(curves) * (1 + GOOD_MARGIN))
    stop = object2vec_early_stopping()
    for dropout in sorted(curves):
        curve = curves[dropout]
        alarm = stop(curve) if early_stopping else None
        ledger.pay(curve, dropout, curve.epochs if alarm is None else alarm + 1,
                   "budget" if alarm is None else "early_stopping")
    return ledger.result("grid_early_stopping" if early_stopping else "grid", seed)


def run_no_remediation(curves: Mapping[float, Curve], seed: int) -> StrategyRun:
    ledger = _Ledger(reference_best(curves) * (1 + GOOD_MARGIN))
    ledger.pay(curves[min(curves)], min(curves), curves[min(curves)].epochs, "budget")
    return ledger.result("no_remediation", seed)


def run_random(curves: Mapping[float, Curve], seed: int, *, draws: int = RANDOM_DRAWS) -> StrategyRun:
    """Expected cost of random search (mean over ``draws`` independent searches)."""
    rng = random.Random(1000 + seed)
    values = sorted(curves)
    to_good: list[int] = []
    wasted: list[int] = []
    misses = 0
    for _ in range(draws):
        ledger = _Ledger(reference_best(curves) * (1 + GOOD_MARGIN))
        for _trial in range(RANDOM_MAX_TRIALS):
            dropout = rng.choice(values)
            ledger.pay(curves[dropout], dropout, curves[dropout].epochs, "budget")
            if ledger.reached is not None:
                break
        if ledger.reached is None:
            misses += 1
            continue
        to_good.append(ledger.reached)
        wasted.append(sum(run.wasted for run in ledger.runs))
    mean_to_good = statistics.fmean(to_good) if to_good else None
    note = f"mean over {draws} searches" + (f"; {misses} found no good model in {RANDOM_MAX_TRIALS} trials"
                                             if misses else "")
    # Random search has no stopping rule of its own: its total is the trials up to the good model.
    return StrategyRun("random_search", seed, mean_to_good, mean_to_good or 0.0,
                       statistics.fmean(wasted) if wasted else 0.0, reference_best(curves), bool(to_good), [], note)


STRATEGIES = ("ours", "grid", "random_search", "no_remediation", "grid_early_stopping")


def replay(
    by_seed: Mapping[int, Mapping[float, Curve]], detector: DetectorConfig, policy: RetrainPolicy,
    *, draws: int = RANDOM_DRAWS,
) -> dict[str, Any]:
    runs: list[StrategyRun] = []
    for seed, curves in sorted(by_seed.items()):
        runs.append(run_ours(curves, seed, detector, policy))
        runs.append(run_grid(curves, seed))
        runs.append(run_random(curves, seed, draws=draws))
        runs.append(run_no_remediation(curves, seed))
        runs.append(run_grid(curves, seed, early_stopping=True))
    summary = {name: _summary([run for run in runs if run.strategy == name]) for name in STRATEGIES}
    return {"runs": [run.to_json() for run in runs], "summary": summary, "targets": _targets(summary, runs),
            "draws": draws, "reference": {str(seed): reference_best(curves) for seed, curves in by_seed.items()}}


def _summary(runs: Sequence[StrategyRun]) -> dict[str, Any]:
    reached = [run.epochs_to_good for run in runs if run.epochs_to_good is not None]
    return {
        "seeds": len(runs),
        "reached": len(reached),
        "mean_epochs_to_good": statistics.fmean(reached) if len(reached) == len(runs) and runs else None,
        "mean_epochs_to_good_reached_only": statistics.fmean(reached) if reached else None,
        "mean_epochs_total": statistics.fmean(run.epochs_total for run in runs) if runs else None,
        "mean_wasted": statistics.fmean(run.wasted for run in runs) if runs else None,
        "held_good": sum(run.held_good for run in runs),
    }


def _targets(summary: Mapping[str, Mapping[str, Any]], runs: Sequence[StrategyRun]) -> dict[str, Any]:
    """Our epochs over theirs. ``ratio``: mean epochs to a good model (None unless every seed of both
    reached one); ``ratio_reached``: the same over the seeds where our loop reached one;
    ``ratio_total``: mean epochs paid in all."""
    ours = summary["ours"]["mean_epochs_to_good"]
    ours_runs = {run.seed: run for run in runs if run.strategy == "ours"}
    result: dict[str, Any] = {}
    for other, bound in (("grid", 0.35), ("random_search", 0.5)):
        theirs = summary[other]["mean_epochs_to_good"]
        ratio = ours / theirs if ours is not None and theirs else None
        pairs = [(ours_runs[run.seed].epochs_to_good, run.epochs_to_good) for run in runs
                 if run.strategy == other and run.seed in ours_runs]
        both = [(mine, their) for mine, their in pairs if mine is not None and their is not None]
        total_theirs = summary[other]["mean_epochs_total"]
        total_ours = summary["ours"]["mean_epochs_total"]
        result[other] = {
            "ratio": ratio,
            "bound": bound,
            "met": ratio is not None and ratio <= bound,
            "ratio_reached": (statistics.fmean(m for m, _ in both) / statistics.fmean(t for _, t in both)
                              if both else None),
            "seeds_reached": len(both),
            "seeds": len(pairs),
            "ratio_total": total_ours / total_theirs if total_theirs else None,
            "met_total": bool(total_theirs) and total_ours is not None and total_ours / total_theirs <= bound,
        }
    return result
