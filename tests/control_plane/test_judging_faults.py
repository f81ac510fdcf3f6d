"""Fault injection for the two in-flight judges: the divergence monitor and the metric-line judge.

A job diverges while it runs. At every AWS call the faulted judge makes on it (tests/support/faults.py:
killed or failed, before the call or after AWS applied it), the invocation ends; then what AWS
does next, with sources:

* The metric-line judge is invoked by a CloudWatch Logs subscription, asynchronously ("CloudWatch
  Logs invokes your function asynchronously",
  https://docs.aws.amazon.com/lambda/latest/dg/services-cloudwatchlogs.html), so Lambda retries it
  twice and then sends the batch to the on-failure queue
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), which is
  alarmed (stacks/constructs/failure_alarms.py; stacks/constructs/log_subscriptions.py wires it).
  The fault hits the first attempt (``once``) or all three (``every attempt``).
* The monitor runs on a schedule (``o2v_core.functions.DIVERGENCE_MONITOR``): a failed run is not
  retried, its next tick is. The fault hits one tick (``once``) or two in a row (``every tick``).
  The next clean tick comes after one interval, when a job the judge heard from is no longer
  "covered" (``control_plane.logic.monitor.COVERED_WITHIN_S``).
* The job then ends on its own (Completed, when nobody stopped it) and SageMaker puts its state
  change, which the FinishedTrainingJob rule routes to the evaluator; the rules deliver every put
  event; the reconciler runs past its grace period.

Then: exactly one attempt-2 job, no ``RetrainingExhausted``, no notification twice, and a dead
letter only where every attempt failed (then its alarm fires).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import pytest
from control_plane.handlers import finished_job_evaluator, metric_line_judge, retrain_launcher
from control_plane.handlers.wiring import judge_from_env
from control_plane.logic.monitor import COVERED_WITHIN_S, run_monitor
from o2v_core.events import RETRAINING_EXHAUSTED
from o2v_core.functions import RECONCILER
from o2v_core.naming import job_name

from tests.control_plane.test_fault_injection import fresh, reconciler
from tests.control_plane.test_metric_line_judge import delivery
from tests.support import sagemaker_fake
from tests.support.aws_calls import attributed_to
from tests.support.cloud import DIVERGING, PATIENT, Cloud, epoch_lines, log_header
from tests.support.faults import KILLS, MODES, Injector, fault_points, invoke_async, run_faulted

LINEAGE = "stsb-baseline"
STAGES = ("monitor", "judge")


@dataclass
class Outcome:
    children: int
    exhausted: int
    dead_letters: int
    notified_twice: list[str]


def next_tick() -> None:
    """The monitor's next scheduled run, one interval later (the judge's recent lines no longer cover the job)."""
    later = time.time() + COVERED_WITHIN_S + 60
    run_monitor(judge_from_env(), now=lambda: later)


def run_world(cloud: Cloud, fault: Injector | None, *, stage: str, every_attempt: bool) -> Outcome:
    job = cloud.create_job(LINEAGE, hyperparameters=PATIENT)
    metric_lines = epoch_lines(DIVERGING[:8], "mean_squared_error")  # up to the decisive epoch 7
    cloud.write_log(job, log_header(job) + metric_lines)
    dead = 0
    if stage == "judge":  # the decisive epochs' lines in one subscription delivery
        dead += not invoke_async(metric_line_judge.handler, delivery(job, metric_lines), fault,
                                 every_attempt=every_attempt)
    else:
        ticks = 2 if every_attempt else 1
        for _ in range(ticks):  # the faulted ticks (the handler's logic; its pacing only waits)
            run_faulted(lambda: run_monitor(judge_from_env()), fault or Injector())
    next_tick()
    if cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "InProgress":
        sagemaker_fake.set_status(job, "Completed")  # left to finish: it ends on its own
    cloud.put_on_default_bus(cloud.sagemaker_state_change(job))
    for event in cloud.delivered("finished_job_evaluator"):
        dead += not invoke_async(finished_job_evaluator.handler, event, None, every_attempt=False)
    for round_ in range(2):  # the handlers' own deliveries, then after the reconciler's repairs
        for event in cloud.delivered("retrain_launcher"):
            dead += not invoke_async(retrain_launcher.handler, event, None, every_attempt=False)
        if round_ == 0:
            with attributed_to(RECONCILER.function_id):
                reconciler(cloud).run()
    children = sum(name == job_name(cloud.deployment, LINEAGE, 2) for name in cloud.training_jobs())
    notified = Counter(event["detail-type"] for event in cloud.delivered("notifications"))
    return Outcome(children, notified[RETRAINING_EXHAUSTED], dead,
                   sorted(kind for kind, times in notified.items() if times > 1))


def calls_made(cloud: Cloud, stage: str) -> list[str]:
    """The AWS calls the stage's first invocation makes on the happy path (to enumerate the faults)."""
    counter = Injector(target=None)
    run_world(cloud, counter, stage=stage, every_attempt=False)
    fresh(cloud)
    return counter.seen


@pytest.mark.parametrize("every_attempt", [False, True], ids=["once", "every-attempt"])
@pytest.mark.parametrize("stage", STAGES)
def test_a_fault_at_any_call_of_a_judge_still_gives_exactly_one_next_attempt(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, stage: str, every_attempt: bool
) -> None:
    cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)  # 2 epochs left > 1: the judge stops it
    calls = calls_made(cloud, stage)
    # The diverging job's report: the event, the tag and the stop are among the calls faulted.
    assert {"PutEvents", "AddTags", "StopTrainingJob"} <= set(calls), calls
    failures = []
    for index, mode in fault_points(calls, KILLS if every_attempt else MODES, every_attempt=every_attempt):
        operation = calls[index]
        outcome = run_world(cloud, Injector(target=index, mode=mode), stage=stage, every_attempt=every_attempt)
        if outcome.children != 1 or outcome.exhausted != 0 or outcome.notified_twice:
            failures.append(f"call {index} ({operation}) {mode}: {outcome}")
        if outcome.dead_letters and not (every_attempt and stage == "judge"):
            failures.append(f"call {index} ({operation}) {mode}: an event ended in the DLQ: {outcome}")
        fresh(cloud)
    assert failures == []
