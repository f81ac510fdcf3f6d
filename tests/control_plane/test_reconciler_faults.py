"""The fault matrix of the reconciler's lineage repairs: a lost verdict and a lost next attempt.

A diverging job finishes and one edge-triggered step is lost for good: its SageMaker state change
never reaches the evaluator (``verdict``), or the evaluator's ``ValidationLossDiverged`` never
reaches the launcher (``next-attempt``). The reconciler's run that repairs it is killed or fails
at each of its AWS calls, before the call or after AWS applied it (tests/support/faults.py). Then what
follows, with sources: EventBridge delivers each put event to its rule's target (the rules of
``o2v_core.events.rules()``, SQS queues standing in for the targets), and the reconciler runs
again on its schedule (``o2v_core.functions.RECONCILER``; a failed run is not retried, the next
one comes). Every case ends with exactly one attempt-2 job and no ``RetrainingExhausted``.
"""

from __future__ import annotations

import pytest
from control_plane.handlers import finished_job_evaluator, retrain_launcher
from o2v_core.events import RETRAINING_EXHAUSTED
from o2v_core.functions import RECONCILER
from o2v_core.naming import job_name

from tests.control_plane.test_fault_injection import fresh, reconciler
from tests.support.aws_calls import attributed_to
from tests.support.cloud import DIVERGING, Cloud, epoch_lines, log_header
from tests.support.faults import MODES, Injector, fault_points, invoke_async, run_faulted

LINEAGE = "stsb-baseline"


def run_world(cloud: Cloud, fault: Injector, *, lost: str) -> tuple[int, int]:
    """(attempt-2 jobs, RetrainingExhausted notifications) after the faulted repair and what follows."""
    parent = cloud.create_job(LINEAGE, status="Completed")
    cloud.write_log(parent, log_header(parent) + epoch_lines(DIVERGING, "mean_squared_error"))
    if lost == "next-attempt":  # the verdict is put, its delivery to the launcher is lost
        cloud.put_on_default_bus(cloud.sagemaker_state_change(parent))
        for event in cloud.delivered("finished_job_evaluator"):
            assert invoke_async(finished_job_evaluator.handler, event, None, every_attempt=False)
        assert cloud.delivered("retrain_launcher"), "the evaluator put no ValidationLossDiverged"
    with attributed_to(RECONCILER.function_id):  # its handler's logic, with the clock moved on
        run_faulted(lambda: reconciler(cloud).run(), fault)
    for _ in range(2):  # the repair's own deliveries, then the reconciler's next run and its deliveries
        for event in cloud.delivered("retrain_launcher"):
            invoke_async(retrain_launcher.handler, event, None, every_attempt=False)
        with attributed_to(RECONCILER.function_id):
            reconciler(cloud).run()
    for event in cloud.delivered("retrain_launcher"):
        invoke_async(retrain_launcher.handler, event, None, every_attempt=False)
    children = sum(name == job_name(cloud.deployment, LINEAGE, 2) for name in cloud.training_jobs())
    notified = [event["detail-type"] for event in cloud.delivered("notifications")]
    return children, notified.count(RETRAINING_EXHAUSTED)


@pytest.mark.parametrize("lost", ["verdict", "next-attempt"])
def test_a_fault_at_any_reconciler_call_repairing_a_lost_step_still_gives_exactly_one_next_attempt(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, lost: str
) -> None:
    cloud.use_config(monkeypatch)
    counter = Injector()
    assert run_world(cloud, counter, lost=lost) == (1, 0), "the fault-free repair already fails"
    calls = counter.seen
    fresh(cloud)
    assert "CreateTrainingJob" in calls or "PutEvents" in calls, calls  # the repair is among the calls faulted
    failures = []
    for index, mode in fault_points(calls, MODES):
        outcome = run_world(cloud, Injector(target=index, mode=mode), lost=lost)
        if outcome != (1, 0):
            failures.append(f"call {index} ({calls[index]}) {mode}: (attempt-2 jobs, exhausted) = {outcome}")
        fresh(cloud)
    assert failures == []
