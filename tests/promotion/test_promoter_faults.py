"""The fault matrix of the promoter and the reconciler's serving repairs.

At every AWS call the promoter makes while it promotes a better candidate (SageMaker, SSM, the S3
announcement ledger, EventBridge), the invocation is killed or fails, before the call or after
AWS applied it (tests/support/faults.py); on the first attempt, or on every attempt (the event then ends
in the on-failure queue, whose alarm fires). Then what AWS does next: Lambda's two retries, the
endpoint settling (or rolling back, :func:`tests.support.sagemaker_fake.roll_back`), EventBridge
delivering to the rules' targets, and the reconciler's runs. Every case must end with:

* the best healthy model served: the endpoint InService on the better candidate's config (or,
  after a rollback, on the model it served before);
* the served-model record naming what the endpoint serves, with its artifact;
* exactly one ``ModelPromoted`` for the change of the served model (none when it did not change),
  and after a rollback exactly one ``ModelRolledBack`` when a promotion had been announced;
* a last reconciler run that finds nothing to do.

The reconciler's own calls get the same treatment: a rollback is repaired by a reconciler killed
or failing before or after each of its calls, followed by its next runs (a better candidate that
arrived during the bake: tests/promotion/test_bake_faults.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from control_plane.handlers.promoter import handler
from control_plane.handlers.wiring import reconciler_from_config
from control_plane.logic.reconciler import Reconciler
from o2v_core.events import MODEL_PROMOTED, MODEL_ROLLED_BACK
from o2v_core.function_settings import ReconcilerSettings
from o2v_core.functions import RECONCILER

from tests.promotion.conftest import fresh_account
from tests.promotion.support import CONFIG, DEPLOYMENT, ENDPOINT, Aws, succeeded
from tests.promotion.test_reconciler import LATER, decided, serve_first, write_curve
from tests.support import sagemaker_fake
from tests.support.aws_calls import attributed_to
from tests.support.cloud import HEALTHY
from tests.support.faults import MODES, Injector, fault_points, invoke_async, run_faulted


@dataclass
class Outcome:
    served: str  # the training job whose config the endpoint serves
    recorded: str | None  # the training job the record names
    url_matches: bool  # the record's modelDataUrl is the served job's artifact
    promoted: list[str] = field(default_factory=list)  # ModelPromoted's trainingJobName, in order
    rolled_back: int = 0
    dead_letters: int = 0
    quiet: bool = True  # the last reconciler run found nothing to do


def reconciler() -> Reconciler:
    return reconciler_from_config(ReconcilerSettings.from_config(CONFIG), now=lambda: LATER)


def reconcile() -> dict[str, object]:
    with attributed_to(RECONCILER.function_id):  # its handler's logic, with the clock moved on
        return reconciler().run().as_dict()


def settle_and_reconcile(aws: Aws, *, roll_back: bool = False) -> None:
    """The endpoint settles (or rolls back) and the reconciler runs, until nothing is left to do."""
    for _ in range(2):
        (sagemaker_fake.roll_back if roll_back else sagemaker_fake.settle)()
        try:
            reconcile()
        except Exception:  # its error alarm fires; the next run repairs
            continue


def observe(aws: Aws, events: list[dict[str, object]], dead_letters: int) -> Outcome:
    endpoint = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService", endpoint["EndpointStatus"]
    config = aws.sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"])["Tags"]}
    served = tags.get("o2v:training-job", "")
    record = aws.record()
    last = reconcile()
    events += aws.events()
    detail_types = [str(e["detail-type"]) for e in events]
    return Outcome(
        served=served,
        recorded=record["trainingJobName"] if record else None,
        url_matches=record is not None and record["modelDataUrl"] == aws.model_artifact(served),
        promoted=[str(e["detail"]["trainingJobName"]) for e in events  # type: ignore[index]
                  if e["detail-type"] == MODEL_PROMOTED],
        rolled_back=detail_types.count(MODEL_ROLLED_BACK),
        dead_letters=dead_letters,
        quiet=last["record"] == "unchanged" and not any(
            last[key] for key in ("confirmed", "republished", "judged", "continued", "decided", "deferred_decided")
        ),
    )


def promote_better(aws: Aws, fault: Injector | None, *, every_attempt: bool) -> Outcome:
    """The endpoint serves FIRST; a BETTER candidate succeeds; its promoter invocation is faulted."""
    serve_first(aws)
    job = aws.training_job("sts", 2, tags=decided("sts", 2), hyperparameters={"output_layer": "mean_squared_error"})
    write_curve(aws, job, HEALTHY)  # the reconciler judges the curve again before it decides
    event = succeeded(job, artifact=aws.model_artifact(job), best=min(validation for _, validation, _ in HEALTHY))
    ok = invoke_async(handler, event, fault, every_attempt=every_attempt)
    events = aws.events()
    settle_and_reconcile(aws)
    return observe(aws, events, dead_letters=int(not ok))


def expected_promotion(outcome: Outcome, job: str) -> list[str]:
    problems = []
    if outcome.served != job:
        problems.append(f"serves {outcome.served}, not the better {job}")
    if outcome.recorded != outcome.served or not outcome.url_matches:
        problems.append(f"record {outcome.recorded} (url ok: {outcome.url_matches}) != served {outcome.served}")
    if outcome.promoted != [job]:
        problems.append(f"ModelPromoted for {outcome.promoted}, expected exactly [{job}]")
    if not outcome.quiet:
        problems.append("the last reconciler run still repaired something")
    return problems


def matrix(aws: Aws, world: Callable[[Injector | None], Outcome], check: Callable[[Outcome], list[str]],
           modes: tuple[str, ...], *, every_attempt: bool = False) -> tuple[int, list[str]]:
    """Run ``world`` once per (call, mode); the calls are counted on a fault-free run first."""
    counter = Injector()
    assert check(world(counter)) == [], "the fault-free run already fails"
    names = counter.seen
    failures = []
    for index, mode in fault_points(names, modes, every_attempt=every_attempt):
        fresh_account(aws.url, aws.sagemaker_url)
        outcome = world(Injector(target=index, mode=mode))
        failures += [f"call {index} ({names[index]}) {mode}: {problem}" for problem in check(outcome)]
    fresh_account(aws.url, aws.sagemaker_url)
    return len(names), failures


@pytest.mark.parametrize("every_attempt", [False, True], ids=["once", "every-attempt"])
def test_a_fault_at_any_promoter_call_still_serves_the_better_model_and_announces_it_once(
    aws: Aws, every_attempt: bool
) -> None:
    job = f"{DEPLOYMENT}--sts-a2"

    def world(fault: Injector | None) -> Outcome:
        return promote_better(aws, fault, every_attempt=every_attempt)

    def check(outcome: Outcome) -> list[str]:
        problems = expected_promotion(outcome, job)
        if outcome.dead_letters and not every_attempt:
            problems.append("a retried event still ended in the failure queue")
        return problems

    # Killed before a call on every attempt, the event is as good as lost: the reconciler's
    # decision covers that (tests/promotion/test_reconciler.py); killed after, AWS applied it.
    calls, failures = matrix(aws, world, check, ("kill-after",) if every_attempt else MODES,
                             every_attempt=every_attempt)
    assert calls >= 10, f"the promoter made only {calls} AWS calls"
    assert failures == []


def rolled_back_world(aws: Aws, fault: Injector | None) -> Outcome:
    """A2's blue/green deployment rolls back; the reconciler's first run after it is faulted."""
    serve_first(aws)
    job = aws.training_job("sts", 2, tags=decided("sts", 2))
    assert invoke_async(handler, succeeded(job, artifact=aws.model_artifact(job), best=0.4), None,
                        every_attempt=False)
    events = aws.events()
    sagemaker_fake.roll_back()
    with attributed_to(RECONCILER.function_id):
        run_faulted(lambda: reconciler().run(), fault or Injector())
    events += aws.events()
    settle_and_reconcile(aws, roll_back=True)
    return observe(aws, events, dead_letters=0)


def test_a_fault_at_any_reconciler_call_after_a_rollback_still_corrects_the_record_and_notifies_once(
    aws: Aws,
) -> None:
    first, rejected = f"{DEPLOYMENT}--sts-a1", f"{DEPLOYMENT}--sts-a2"

    def check(outcome: Outcome) -> list[str]:
        problems = []
        if outcome.served != first:
            problems.append(f"serves {outcome.served}, not {first} (the rollback's)")
        if outcome.recorded != outcome.served or not outcome.url_matches:
            problems.append(f"record {outcome.recorded} (url ok: {outcome.url_matches}) != served {outcome.served}")
        if outcome.promoted != [rejected] or outcome.rolled_back != 1:
            problems.append(f"ModelPromoted {outcome.promoted}, ModelRolledBack x{outcome.rolled_back}")
        if "o2v:rolled-back" not in aws.tags_of_job(rejected):
            problems.append("the rejected job is not marked rolled back")
        if not outcome.quiet:
            problems.append("the last reconciler run still repaired something")
        return problems

    # Every mode at every call (tests.support.faults.fault_points runs each distinct fault once): the
    # reconciler's own guard catches ordinary errors, so those differ from kills.
    calls, failures = matrix(aws, lambda fault: rolled_back_world(aws, fault), check, MODES)
    assert calls >= 8, f"the reconciler made only {calls} AWS calls"
    assert failures == []
