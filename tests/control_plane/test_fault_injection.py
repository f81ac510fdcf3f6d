"""Fault injection: kill or fail each AWS call of a handler, let AWS do what it does next, and check
that the lineage still gets exactly one next attempt.

At every AWS call the evaluator or the launcher makes, the invocation is killed or fails, before
the call or after AWS applied it (tests/support/faults.py).

What AWS does next, with sources:

* Lambda retries a failed async invocation twice, then sends it to the DLQ
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html). The fault
  hits the first attempt (``once``) or all three (``every attempt``: the event ends in the DLQ,
  whose alarm fires, stacks/constructs/failure_alarms.py).
* EventBridge delivers each put event to the rule's target (the rules from
  ``o2v_core.events.rules()``, with SQS queues standing in for the targets).
* The reconciler runs on its schedule (past its grace period here).

Then: exactly one attempt-2 job, no ``RetrainingExhausted``, and nothing left unrepaired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from control_plane.aws.announcements import Announcements
from control_plane.aws.endpoint import SageMakerServing
from control_plane.aws.event_bus import EventBus
from control_plane.aws.serving_record import ServingRecordStore
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.aws.training_logs import TrainingLogs
from control_plane.handlers import finished_job_evaluator, retrain_launcher
from control_plane.logic.announce import Announcer
from control_plane.logic.promotion import Promoter
from control_plane.logic.reconciler import Reconciler
from o2v_core.detector import DetectorConfig
from o2v_core.events import ANNOUNCEMENT_WITNESS, RETRAINING_EXHAUSTED, TRAINING_FAILED
from o2v_core.function_settings import PromoterSettings
from o2v_core.functions import RECONCILER
from o2v_core.naming import job_name
from o2v_core.retrain_policy import RetrainPolicy

from tests.support.aws_calls import attributed_to
from tests.support.cloud import ARTIFACT_BUCKET, BUS, DIVERGING, IMAGE, ROLE, Cloud, epoch_lines, log_header
from tests.support.faults import KILLS, MODES, Injector, fault_points, invoke_async

LINEAGE = "stsb-baseline"
LATER = datetime.now(UTC) + timedelta(hours=1)


def reconciler(cloud: Cloud, *, now: datetime = LATER) -> Reconciler:
    settings = PromoterSettings(
        deployment=cloud.deployment, endpoint_name=f"{cloud.deployment}-embeddings",
        # The diverged parent is Completed, so it is also a promotion candidate the reconciler decides.
        serving_model_parameter=f"/o2v/{cloud.deployment}/serving-model", model_role_arn=ROLE,
        image_uri=IMAGE, promotion_margin=0.0, endpoint_instance_type="ml.m5.large", event_bus_name=BUS,
        rollback_alarm_names="", training_role_arn=ROLE, artifact_bucket=ARTIFACT_BUCKET,
    )
    return Reconciler(
        deployment=cloud.deployment, jobs=TrainingJobs(), logs=TrainingLogs(), bus=EventBus(BUS),
        detector=DetectorConfig(), policy=RetrainPolicy(),
        promoter=Promoter(settings, SageMakerServing(), ServingRecordStore(settings.serving_model_parameter),
                          EventBus(BUS), Announcer(EventBus(BUS), Announcements(
                              ARTIFACT_BUCKET, cloud.deployment,
                              witness_queue_url=cloud.queues[ANNOUNCEMENT_WITNESS]))),
        now=lambda: now,
    )


@dataclass
class Outcome:
    children: int
    exhausted: int
    dead_letters: int
    diverged_events: int


def run_world(cloud: Cloud, fault: Injector | None, *, stage: str, every_attempt: bool) -> Outcome:
    """A diverging job finishes; the evaluator and launcher run (one of them faulted), then the
    reconciler, with every put event delivered to its rule's target."""
    parent = cloud.create_job(LINEAGE, status="Completed")
    cloud.write_log(parent, log_header(parent) + epoch_lines(DIVERGING, "mean_squared_error"))
    dead = 0
    diverged_events = 0
    cloud.put_on_default_bus(cloud.sagemaker_state_change(parent))
    for event in cloud.delivered("finished_job_evaluator"):
        ok = invoke_async(finished_job_evaluator.handler, event, fault if stage == "evaluator" else None,
                          every_attempt=every_attempt)
        dead += not ok
    for round_ in range(2):  # the handlers' own deliveries, then after the reconciler's repairs
        for event in cloud.delivered("retrain_launcher"):
            diverged_events += 1
            ok = invoke_async(retrain_launcher.handler, event, fault if stage == "launcher" else None,
                              every_attempt=every_attempt)
            dead += not ok
            fault = None if stage == "launcher" else fault  # the fault hits one delivery
        if round_ == 0:
            with attributed_to(RECONCILER.function_id):  # its handler's logic, with the clock moved on
                reconciler(cloud).run()
    children = sum(name == job_name(cloud.deployment, LINEAGE, 2) for name in cloud.training_jobs())
    notified = [event["detail-type"] for event in cloud.delivered("notifications")]
    exhausted = notified.count(RETRAINING_EXHAUSTED)
    assert notified.count(TRAINING_FAILED) == 0, notified
    return Outcome(children, exhausted, dead, diverged_events)


def fresh(cloud: Cloud) -> None:
    """An empty account again, with the bus and the rules."""
    cloud.reset()
    cloud.queues.clear()
    cloud.wire_rules()


def calls_made(cloud: Cloud, stage: str) -> list[str]:
    """How many AWS calls the stage's handler makes on the happy path (to enumerate the faults)."""
    counter = Injector(target=None)  # counts, never raises
    run_world(cloud, counter, stage=stage, every_attempt=False)
    fresh(cloud)
    return counter.seen


@pytest.mark.parametrize("every_attempt", [False, True], ids=["once", "every-attempt"])
@pytest.mark.parametrize("stage", ["evaluator", "launcher"])
def test_a_fault_at_any_aws_call_still_gives_exactly_one_next_attempt(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, stage: str, every_attempt: bool
) -> None:
    cloud.use_config(monkeypatch)
    calls = calls_made(cloud, stage)
    assert len(calls) >= 4, f"the {stage} made only {calls} AWS calls"
    failures = []
    # When every attempt fails, killed or failed makes no difference to what is left (the DLQ and
    # the reconciler); the ordinary errors matter on a single attempt, where except blocks run.
    for index, mode in fault_points(calls, KILLS if every_attempt else MODES, every_attempt=every_attempt):
        outcome = run_world(cloud, Injector(target=index, mode=mode), stage=stage, every_attempt=every_attempt)
        if outcome.children != 1 or outcome.exhausted != 0:
            failures.append(f"call {index} ({calls[index]}) {mode}: {outcome}")
        if outcome.dead_letters and not every_attempt:
            failures.append(f"call {index} ({calls[index]}) {mode}: a retried event still ended in the DLQ: {outcome}")
        fresh(cloud)
    assert failures == []
