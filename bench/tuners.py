"""SageMaker automatic model tuning (AMT), simulated on the recorded curves from its documented rules.

A tuning job launches training jobs one after another (``MaxParallelTrainingJobs=1``, so the
simulation is deterministic), each with a dropout drawn uniformly from the recorded grid values
(AMT's Random strategy over a categorical range; Bayesian proposals cannot be replayed without
AWS's model, and a sampler that learns can only help on later trials). Each job pays for the
epochs it trains before it ends: by its budget, by its own Object2Vec early stopping (the curve
ends there), or by the tuner's stopping rule. Numbers are expectations over many draws.

``hyperband`` (``Strategy=Hyperband``, ``HyperbandStrategyConfig``)
    Documented: ``MinResource`` "If the value for MinResource has not been reached, the training
    job is not stopped by Hyperband"; ``MaxResource`` "Once a job reaches the MaxResource value, it
    is stopped" (API_HyperbandStrategyConfig,
    https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperbandStrategyConfig.html);
    Hyperband "uses the final and intermediate results of a training job to dynamically allocate
    resources ... while automatically stopping under-performing configurations" (same page); it
    "uses Asynchronous Successive Halving Algorithm (ASHA)" (AWS Machine Learning Blog, "Amazon
    SageMaker Automatic Model Tuning now provides up to three times faster hyperparameter tuning
    with Hyperband", 2022); ``TrainingJobEarlyStoppingType`` must be ``OFF`` with Hyperband
    (API_HyperParameterTuningJobConfig).
    NOT documented by AWS, chosen here: the reduction factor ``eta`` = 3 (Hyperband's and ASHA's
    usual value); the rungs ``MinResource * eta**k`` below ``MaxResource``; the brackets of
    asynchronous Hyperband (Li et al. 2020, "A System for Massively Parallel Hyperparameter
    Tuning", section 3.3): bracket ``b`` starts its rungs at ``MinResource * eta**b``, jobs go to
    the brackets in turn; and the rule at a rung, as Ray Tune's ASHA scheduler applies it: a job
    reaching a rung continues only if its validation loss at that epoch is within the best
    ``1/eta`` of the losses recorded at that rung of its bracket, itself included (so the first
    job of a rung always continues). A stopped job keeps the best epoch it paid for: favourable
    to Hyperband, since whether a stopped Object2Vec job saves a model is unconfirmed (reference
    section 10d).
``median_rule`` (``TrainingJobEarlyStoppingType=AUTO``)
    Documented (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-early-stopping.html):
    after each epoch, "compute the running average of the objective metric for all previous
    training jobs up to the same epoch, and then compute the median of all of the running
    averages"; if the current job's objective value is worse (higher, when minimizing) "than the
    median value of running averages of the objective metric for previous training jobs up to
    the same epoch", SageMaker stops the current job.
    NOT documented, chosen here: the rule applies from the first epoch and as soon as one previous
    job has reached that epoch; a previous job counts at the epochs it reported (a stopped job
    drops out of later epochs); the running average is the mean of the job's values from its
    first epoch to that epoch.
A non-finite loss ends a job at once in both (the training job fails).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from bench.curves import Curve

HYPERBAND_MIN_RESOURCE = 1  # epochs; the smallest value a user can set, the most aggressive
HYPERBAND_ETA = 3  # not documented by AWS (see the module docstring)

# trial(curve, history) -> epochs that job pays; it records what later jobs compare with in history.
Trial = Callable[[Curve, "TunerHistory"], int]


@dataclass
class TunerHistory:
    """What the previous jobs of one tuning job reported."""

    jobs: int = 0
    running: list[list[float]] = field(default_factory=list)  # median rule: each job's running averages
    rungs: dict[tuple[int, int], list[float]] = field(default_factory=dict)  # hyperband: (bracket, rung) -> values


def rungs(min_resource: int, max_resource: int, eta: int, bracket: int = 0) -> list[int]:
    """The epochs (counted from 1) at which a job of ``bracket`` may be stopped; ``max_resource`` ends it."""
    result: list[int] = []
    resource = min_resource * eta**bracket
    while resource < max_resource:
        result.append(resource)
        resource *= eta
    return result


def brackets(min_resource: int, max_resource: int, eta: int) -> int:
    """Hyperband's bracket count: one per possible first rung below ``max_resource``, at least one."""
    return max(1, len(rungs(min_resource, max_resource, eta)))


def hyperband_trial(min_resource: int = HYPERBAND_MIN_RESOURCE, eta: int = HYPERBAND_ETA) -> Trial:
    def trial(curve: Curve, history: TunerHistory) -> int:
        max_resource = int(curve.params.get("epochs", curve.epochs))  # the job's epochs hyperparameter
        bracket = history.jobs % brackets(min_resource, max_resource, eta)
        history.jobs += 1
        ended = _first_non_finite(curve)
        available = curve.epochs if ended is None else ended + 1
        for rung in rungs(min_resource, max_resource, eta, bracket):
            if rung > available:
                break
            value = curve.validation[rung - 1]
            recorded = history.rungs.setdefault((bracket, rung), [])
            recorded.append(value)
            if value > _percentile(recorded, 100.0 / eta):
                return rung
        return available

    return trial


def median_rule_trial() -> Trial:
    def trial(curve: Curve, history: TunerHistory) -> int:
        history.jobs += 1
        running: list[float] = []
        total = 0.0
        paid = curve.epochs
        for epoch, value in enumerate(curve.validation):
            total += value
            running.append(total / (epoch + 1))
            if not math.isfinite(value):
                paid = epoch + 1
                break
            averages = [previous[epoch] for previous in history.running if len(previous) > epoch]
            if averages and value > statistics.median(averages):
                paid = epoch + 1
                break
        history.running.append(running)
        return paid

    return trial


def random_trial() -> Trial:
    """AMT's Random strategy without early stopping: every job runs until its curve ends."""
    def trial(curve: Curve, history: TunerHistory) -> int:
        history.jobs += 1
        ended = _first_non_finite(curve)
        return curve.epochs if ended is None else ended + 1

    return trial


def _percentile(values: list[float], q: float) -> float:
    """numpy's default (linear) percentile, without numpy's per-call cost (it runs millions of times)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _first_non_finite(curve: Curve) -> int | None:
    return next((index for index, value in enumerate(curve.validation) if not math.isfinite(value)), None)


def sampled_search(
    curves: Mapping[float, Curve], trial: Trial, rng: random.Random, *, max_jobs: int,
    pay: Callable[[Curve, float, int], bool],
) -> bool:
    """One tuning job: draw a dropout per job, let ``trial`` say how many epochs it pays, hand them to
    ``pay`` (which answers whether the held model is good now). True once it is."""
    values = sorted(curves)
    history = TunerHistory()
    for _ in range(max_jobs):
        dropout = rng.choice(values)
        curve = curves[dropout]
        if pay(curve, dropout, trial(curve, history)):
            return True
    return False
