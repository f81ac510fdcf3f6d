"""Section 2: epochs each strategy pays before it holds a model within 2% of the grid's best.

Every strategy is a replay over the recorded curves of one configuration (one curve per dropout
value 0.0-0.7 and seed), twice: with Object2Vec's own early stopping on, as users run it (each
curve ends where the recipe's ``early_stopping_patience`` ends the job), and off (the full
budget). A strategy pays for an epoch when it would have trained it; the model it *holds* is the
best-validation epoch among the epochs it paid for (the trainer keeps best-epoch weights). Per seed:

* ``reference`` = the lowest validation loss of the exhaustive full-budget grid (every dropout,
  every epoch, early stopping off), for both replays; *good* means ``<= reference * (1 + GOOD_MARGIN)``.
* ``epochs_to_good`` = epochs paid, in the strategy's order, up to and including the first epoch
  at which the held model is good (None: never).
* ``epochs_total`` = epochs paid until the strategy stops by its own rule.
* ``wasted`` = epochs paid at or after a run's divergence onset (label rule of section 1).

Strategies: ``ours`` (attempt 1 at dropout 0; at the detector's alarm the retrain policy picks the
next dropout, and the diverged job is stopped or left to finish as the control plane chooses,
``finish_diverged_within_epochs``; a run without an alarm ends the loop), ``grid`` (dropout 0.0
to 0.7 in ascending order, each job until its curve ends), ``random_search``, ``hyperband`` and
``median_rule`` (SageMaker AMT's Random strategy alone, with Hyperband, and with
``TrainingJobEarlyStoppingType=AUTO``: :mod:`bench.tuners`, sources and the details AWS leaves open
there; expectations over many draws), ``no_remediation`` (dropout 0, one job).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from o2v_core.detector import DetectorConfig
from o2v_core.early_stopping import choose_stop, ended_by_own_early_stopping
from o2v_core.retrain_policy import Exhausted, LineageBest, RetrainPolicy

from bench.baselines import alarm_epoch
from bench.curves import Curve, label
from bench.tuners import Trial, hyperband_trial, median_rule_trial, random_trial, sampled_search

GOOD_MARGIN = 0.02
RANDOM_DRAWS = 2000
RANDOM_MAX_TRIALS = 60
# Our loop's epochs to a good model over theirs: the targets (random search: for information).
TARGET_BOUNDS = {"grid": 0.35, "hyperband": 0.5, "random_search": 0.5}


@dataclass(frozen=True)
class OwnStop:
    """Object2Vec's own early stopping as the recorded jobs ran it (``enabled`` False: the full budget), and
    the control plane's stop-or-finish setting for diverged jobs."""

    enabled: bool
    patience: int
    tolerance: float
    finish_within_epochs: int | None

    def ended_by(self, curve: Curve) -> str:
        return "early_stopping" if self.ended_itself(curve) else "budget"

    def ended_itself(self, curve: Curve) -> bool:
        """Object2Vec's rule ended this recorded run (the control plane's own test of a finished job)."""
        budget = int(curve.params.get("epochs", curve.epochs))
        return self.enabled and ended_by_own_early_stopping(list(curve.validation), self.patience, self.tolerance,
                                                            budget)

    def ended_after_rise(self, curve: Curve, detector: DetectorConfig) -> bool:
        """The finished-job evaluator's verdict on a run its own early stopping ended."""
        return self.ended_itself(curve) and alarm_epoch(curve.validation, curve.train, detector,
                                                        ended_by_early_stopping=True) is not None


@dataclass
class PaidRun:
    dropout: float
    paid: int
    stopped_by: str  # detector | budget | early_stopping
    best_value: float
    best_epoch: int
    onset: int | None
    wasted: int
    weight_decay: float = 0.0


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

    def pay(self, curve: Curve, dropout: float, paid: int, stopped_by: str, weight_decay: float = 0.0) -> PaidRun:
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
        run = PaidRun(dropout, paid, stopped_by, values[best_epoch], best_epoch, onset, wasted, weight_decay)
        self.runs.append(run)
        return run

    def result(self, strategy: str, seed: int, note: str = "") -> StrategyRun:
        return StrategyRun(strategy, seed, self.reached, self.total, sum(run.wasted for run in self.runs), self.held,
                           self.held <= self.threshold, self.runs, note)


def reference_best(curves: Mapping[float, Curve]) -> float:
    return min(min(curve.validation) for curve in curves.values())


def _nearest(curves: Mapping[float, Curve], dropout: float) -> float:
    return min(curves, key=lambda value: (abs(value - dropout), value))


def _lineage(ledger: _Ledger, tried: Sequence[dict[str, str]]) -> LineageBest:
    """What the launcher knows when the latest paid run diverged: its best, and the best before it."""
    earlier = ledger.runs[:-1]
    if not earlier:
        return LineageBest(ledger.runs[-1].best_value, None)
    index = min(range(len(earlier)), key=lambda at: earlier[at].best_value)
    return LineageBest(ledger.runs[-1].best_value, earlier[index].best_value, f"attempt {index + 1}", tried[index])


def run_ours(
    curves: Mapping[float, Curve], seed: int, detector: DetectorConfig, policy: RetrainPolicy,
    *, reference: float, own_stop: OwnStop, decayed: Mapping[tuple[float, float], Curve] | None = None,
) -> StrategyRun:
    """Attempt 1 at dropout 0; at the detector's alarm the next attempt starts, and the diverged job is
    stopped or left to finish by :func:`o2v_core.early_stopping.choose_stop` (the control plane's
    choice, ``finish_diverged_within_epochs``); a run without an alarm ends the loop. The policy sees
    the lineage's best so far as the launcher does (:class:`~o2v_core.retrain_policy.LineageBest`);
    ``decayed``: recorded curves by (dropout, weight decay) for attempts the policy gives weight decay."""
    ledger = _Ledger(reference * (1 + GOOD_MARGIN))
    hps: dict[str, str] = {"enc0_max_seq_len": "40", "enc0_vocab_size": "1000", "dropout": "0.0"}
    attempt, notes = 1, []
    tried: list[dict[str, str]] = []
    while True:
        wanted = float(hps["dropout"])
        weight_decay = float(hps.get("weight_decay", "0"))
        tried.append(hps)
        found = (decayed or {}).get((round(wanted, 6), round(weight_decay, 6))) if weight_decay or decayed else None
        if found is not None:
            dropout, curve = wanted, found
        else:
            if weight_decay:
                notes.append(f"weight decay {weight_decay:g} not recorded: replayed without it")
                weight_decay = 0.0
            dropout = _nearest(curves, wanted)
            if abs(dropout - wanted) > 1e-9:
                notes.append(f"dropout {wanted:g} replayed with the recorded {dropout:g}")
            curve = curves[dropout]
        alarm = alarm_epoch(curve.validation, curve.train, detector)
        if alarm is None:
            ended_by = own_stop.ended_by(curve)
            ledger.pay(curve, dropout, curve.epochs, ended_by, weight_decay)
            # The finished-job evaluator's verdict: ended by its own early stopping after a rise
            # (the detector's early_stopped_after_rise rule) is a reason to retrain too.
            if not own_stop.ended_after_rise(curve, detector):
                break
            ledger.runs[-1].stopped_by = "early_stopping, after a rise"
            following = policy.next_hyperparameters(hps, attempt + 1, _lineage(ledger, tried))
            if isinstance(following, Exhausted):
                notes.append(f"lineage stopped ({following.stopped_because}): {following.reason}")
                break
            hps, attempt = following, attempt + 1
            continue
        choice = choose_stop(list(curve.validation[: alarm + 1]), patience=own_stop.patience,
                             tolerance=own_stop.tolerance, epochs=int(curve.params.get("epochs", curve.epochs)),
                             finish_within_epochs=own_stop.finish_within_epochs)
        if choice.stop:
            ledger.pay(curve, dropout, alarm + 1, "detector", weight_decay)
        else:  # left to finish: it pays until its own early stopping (where the curve ends) or its budget
            ledger.pay(curve, dropout, curve.epochs, "detector, then " + own_stop.ended_by(curve), weight_decay)
        following = policy.next_hyperparameters(hps, attempt + 1, _lineage(ledger, tried))
        if isinstance(following, Exhausted):
            notes.append(f"lineage stopped ({following.stopped_because}): {following.reason}")
            break
        hps, attempt = following, attempt + 1
    return ledger.result("ours", seed, "; ".join(notes))


def run_grid(curves: Mapping[float, Curve], seed: int, *, reference: float, own_stop: OwnStop) -> StrategyRun:
    ledger = _Ledger(reference * (1 + GOOD_MARGIN))
    for dropout in sorted(curves):
        curve = curves[dropout]
        ledger.pay(curve, dropout, curve.epochs, own_stop.ended_by(curve))
    return ledger.result("grid", seed)


def run_no_remediation(curves: Mapping[float, Curve], seed: int, *, reference: float,
                       own_stop: OwnStop) -> StrategyRun:
    ledger = _Ledger(reference * (1 + GOOD_MARGIN))
    curve = curves[min(curves)]
    ledger.pay(curve, min(curves), curve.epochs, own_stop.ended_by(curve))
    return ledger.result("no_remediation", seed)


def run_sampled(
    name: str, trial_factory: Callable[[], Trial], curves: Mapping[float, Curve], seed: int, *,
    reference: float, draws: int = RANDOM_DRAWS,
) -> StrategyRun:
    """Expected cost of a tuning job that draws its dropouts at random (mean over ``draws`` tuning jobs)."""
    rng = random.Random(1000 + seed)  # the same draws for every sampled strategy of a seed
    to_good: list[int] = []
    wasted: list[int] = []
    misses = 0
    for _ in range(draws):
        ledger = _Ledger(reference * (1 + GOOD_MARGIN))

        def pay(curve: Curve, dropout: float, paid: int, ledger: _Ledger = ledger) -> bool:
            ledger.pay(curve, dropout, paid, name)
            return ledger.reached is not None

        if not sampled_search(curves, trial_factory(), rng, max_jobs=RANDOM_MAX_TRIALS, pay=pay):
            misses += 1
            continue
        assert ledger.reached is not None
        to_good.append(ledger.reached)
        wasted.append(sum(run.wasted for run in ledger.runs))
    mean_to_good = statistics.fmean(to_good) if to_good else None
    note = f"mean over {draws} tuning jobs" + (f"; {misses} found no good model in {RANDOM_MAX_TRIALS} jobs"
                                               if misses else "")
    # No stopping rule of its own: its total is the jobs up to the good model.
    return StrategyRun(name, seed, mean_to_good, mean_to_good or 0.0, statistics.fmean(wasted) if wasted else 0.0,
                       reference, bool(to_good) and not misses, [], note)


STRATEGIES = ("ours", "grid", "random_search", "hyperband", "median_rule", "no_remediation")
SAMPLED: dict[str, Callable[[], Trial]] = {"random_search": random_trial, "hyperband": hyperband_trial,
                                           "median_rule": median_rule_trial}


def replay(
    by_seed: Mapping[int, Mapping[float, Curve]], detector: DetectorConfig, policy: RetrainPolicy,
    *, own_stop: OwnStop, references: Mapping[int, float] | None = None, draws: int = RANDOM_DRAWS,
    strategies: Sequence[str] = STRATEGIES,
) -> dict[str, Any]:
    """Every strategy on every seed's curves. ``references``: the exhaustive grid's best per seed (default:
    the best of these curves; pass the full-budget grid's when these curves end early)."""
    refs = {seed: (references or {}).get(seed, reference_best(curves)) for seed, curves in by_seed.items()}
    runs: list[StrategyRun] = []
    for seed, curves in sorted(by_seed.items()):
        ref = refs[seed]
        runs.append(run_ours(curves, seed, detector, policy, reference=ref, own_stop=own_stop))
        if "grid" in strategies:
            runs.append(run_grid(curves, seed, reference=ref, own_stop=own_stop))
        for name, factory in SAMPLED.items():
            if name in strategies:
                runs.append(run_sampled(name, factory, curves, seed, reference=ref, draws=draws))
        if "no_remediation" in strategies:
            runs.append(run_no_remediation(curves, seed, reference=ref, own_stop=own_stop))
    summary = {name: _summary([run for run in runs if run.strategy == name]) for name in strategies}
    found = _targets(summary, runs) if set(STRATEGIES) <= set(strategies) else {}
    return {"runs": [run.to_json() for run in runs], "summary": summary, "targets": found,
            "draws": draws, "reference": {str(seed): ref for seed, ref in refs.items()},
            "own_stop": asdict(own_stop)}


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
    result: dict[str, Any] = {"every_seed_good": {"met": bool(ours_runs) and all(
        run.epochs_to_good is not None for run in ours_runs.values()), "seeds": len(ours_runs),
        "reached": sum(run.epochs_to_good is not None for run in ours_runs.values()),
        # Seeds where any strategy reaches a good model: on the others none could.
        "reachable": len({run.seed for run in runs if run.epochs_to_good is not None}),
        "reached_where_reachable": sum(run.epochs_to_good is not None for run in ours_runs.values())
        == len({run.seed for run in runs if run.epochs_to_good is not None})}}
    for other, bound in TARGET_BOUNDS.items():
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
