"""The fault matrix of a better candidate that arrives while the endpoint bakes another model.

The endpoint serves A1; A2 (better) has just been promoted and its blue/green deployment bakes
(the endpoint is ``Updating``: SageMaker refuses another ``UpdateEndpoint`` until it is
``InService``, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpoint.html).
Then C, better than both, succeeds. Faulted (tests/support/faults.py), on the first attempt or on every
attempt (the event then ends in the alarmed on-failure queue):

* C's promoter invocation, at each of its AWS calls;
* the reconciler's run that decides the deferred C once the bake is over, killed or failing
  before or after each of its calls.

Then what AWS does next: Lambda's retries, the bake ending (``tests.support.sagemaker_fake.settle``), the
reconciler's next runs. Every case ends with C served, the record naming C (and its artifact),
exactly one ``ModelPromoted`` for A2 and one for C, in that order, and a quiet last reconciler run.
"""

from __future__ import annotations

import pytest
from control_plane.handlers.promoter import handler
from o2v_core.functions import RECONCILER

from tests.promotion.support import DEPLOYMENT, Aws, succeeded
from tests.promotion.test_promoter_faults import (
    Outcome,
    expected_promotion,
    matrix,
    observe,
    reconciler,
    settle_and_reconcile,
)
from tests.promotion.test_reconciler import decided, healthy_job, serve_first
from tests.support import sagemaker_fake
from tests.support.aws_calls import attributed_to
from tests.support.cloud import HEALTHY
from tests.support.faults import MODES, Injector, invoke_async, run_faulted

SECOND = f"{DEPLOYMENT}--sts-a2"
CANDIDATE = f"{DEPLOYMENT}--other-a1"


def baking(aws: Aws) -> list[dict[str, object]]:
    """A1 served, A2 promoted and baking, C finished and judged healthy; the events put so far."""
    serve_first(aws)
    second = aws.training_job("sts", 2, tags=decided("sts", 2))
    assert invoke_async(handler, succeeded(second, artifact=aws.model_artifact(second), best=0.45), None,
                        every_attempt=False)
    assert healthy_job(aws, "other") == CANDIDATE
    assert HEALTHY[-1][1] < 0.45, "the candidate must be better than the model being baked"
    return aws.events()


def candidate_arrives(aws: Aws, fault: Injector | None, *, every_attempt: bool) -> Outcome:
    events = baking(aws)
    event = succeeded(CANDIDATE, artifact=aws.model_artifact(CANDIDATE), best=HEALTHY[-1][1])
    ok = invoke_async(handler, event, fault, every_attempt=every_attempt)
    events += aws.events()
    settle_and_reconcile(aws)
    return observe(aws, events, dead_letters=int(not ok))


def deferred_decided(aws: Aws, fault: Injector | None) -> Outcome:
    events = baking(aws)
    event = succeeded(CANDIDATE, artifact=aws.model_artifact(CANDIDATE), best=HEALTHY[-1][1])
    assert invoke_async(handler, event, None, every_attempt=False)
    assert aws.tags_of_job(CANDIDATE).get("o2v:promotion") == "deferred"
    sagemaker_fake.settle()  # the bake is over: A2 InService
    with attributed_to(RECONCILER.function_id):
        run_faulted(lambda: reconciler().run(), fault or Injector())
    events += aws.events()
    settle_and_reconcile(aws)
    return observe(aws, events, dead_letters=0)


def expected(outcome: Outcome) -> list[str]:
    problems = [problem for problem in expected_promotion(outcome, CANDIDATE)
                if not problem.startswith("ModelPromoted for")]  # A2's promotion is announced first here
    if outcome.promoted != [SECOND, CANDIDATE]:
        problems.append(f"ModelPromoted for {outcome.promoted}, expected exactly [{SECOND}, {CANDIDATE}]")
    return problems


@pytest.mark.parametrize("every_attempt", [False, True], ids=["once", "every-attempt"])
def test_a_fault_at_any_call_of_a_candidate_arriving_during_the_bake_still_serves_it_once_the_bake_is_over(
    aws: Aws, every_attempt: bool
) -> None:
    def check(outcome: Outcome) -> list[str]:
        problems = expected(outcome)
        if outcome.dead_letters and not every_attempt:
            problems.append("a retried event still ended in the failure queue")
        return problems

    calls, failures = matrix(aws, lambda fault: candidate_arrives(aws, fault, every_attempt=every_attempt), check,
                             ("kill-after",) if every_attempt else MODES, every_attempt=every_attempt)
    assert calls >= 4, f"the promoter made only {calls} AWS calls on the deferred candidate"
    assert failures == []


def test_a_fault_at_any_reconciler_call_deciding_a_deferred_candidate_still_serves_it_once(aws: Aws) -> None:
    calls, failures = matrix(aws, lambda fault: deferred_decided(aws, fault), expected, MODES)
    assert calls >= 8, f"the reconciler made only {calls} AWS calls"
    assert failures == []
