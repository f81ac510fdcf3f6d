"""The reconciler against the SageMaker fake and the moto server: what lost events, crashed invocations and a blue/green
rollback leave behind is repaired once, and a second run changes nothing.

AWS behaviour applied here, with sources:

* Lambda retries a failed async invocation twice, then the DLQ
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html): the
  ``retries`` below re-run the handler twice with the same event.
* A blue/green update whose alarm trips during the bake rolls back to the old fleet
  (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html):
  :func:`tests.support.sagemaker_fake.roll_back`; one that succeeds becomes InService on the new
  config: :func:`tests.support.sagemaker_fake.settle`.
* A crash is a ``BaseException`` raised from a botocore ``before-call``/``after-call`` hook
  (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/events.html), so no
  ``except Exception`` in our code runs, as when Lambda kills an invocation (timeout, memory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from control_plane.aws import clients
from control_plane.handlers.promoter import handler
from control_plane.handlers.wiring import reconciler_from_config
from o2v_core.events import MODEL_PROMOTED, MODEL_ROLLED_BACK, PROMOTION_SKIPPED
from o2v_core.function_settings import ReconcilerSettings
from o2v_core.functions import RECONCILER
from o2v_core.naming import Lineage, job_name, tag_list
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX

from tests.promotion.support import CONFIG, DEPLOYMENT, IMAGE, Aws, succeeded
from tests.support import sagemaker_fake
from tests.support.aws_calls import attributed_to
from tests.support.cloud import HEALTHY, epoch_lines, log_header
from tests.support.faults import Killed, killed
from tests.support.lambda_context import lambda_context

LATER = datetime.now(UTC) + timedelta(hours=1)  # past the reconciler's grace period


def run_reconciler() -> dict[str, object]:
    with attributed_to(RECONCILER.function_id):  # its handler's logic, with the clock moved on
        return reconciler_from_config(ReconcilerSettings.from_config(CONFIG), now=lambda: LATER).run().as_dict()


def promote(aws: Aws, job: str, best: float) -> dict[str, object]:
    return handler(succeeded(job, artifact=aws.model_artifact(job), best=best), lambda_context())


def decided(lineage: str, attempt: int) -> dict[str, str]:  # the evaluator judged it a success
    return {"o2v:evaluated": "succeeded"}


def serve_first(aws: Aws) -> str:
    job = aws.training_job("sts", 1, tags=decided("sts", 1))
    assert promote(aws, job, 0.5)["outcome"] == MODEL_PROMOTED
    sagemaker_fake.settle()
    aws.events()
    return job


def test_a_rollback_rewrites_the_record_notifies_once_and_the_rejected_model_is_never_redeployed(aws: Aws) -> None:
    first = serve_first(aws)
    rejected = aws.training_job("sts", 2, tags=decided("sts", 2))
    assert promote(aws, rejected, 0.4)["outcome"] == MODEL_PROMOTED
    assert (aws.record() or {})["trainingJobName"] == rejected  # written when the deployment started
    aws.events()

    sagemaker_fake.roll_back()
    report = run_reconciler()

    assert report["record"] == "rolled_back"
    assert [e["detail-type"] for e in aws.events()] == [MODEL_ROLLED_BACK]
    record = aws.record()
    assert record is not None and record["trainingJobName"] == first
    assert record["modelDataUrl"] == aws.model_artifact(first)
    assert "o2v:rolled-back" in aws.tags_of_job(rejected)

    again = promote(aws, rejected, 0.4)  # its success redelivered: vetoed, not "already serving"
    assert again["outcome"] == PROMOTION_SKIPPED and "rolled this model back" in str(again["reason"])
    assert len(aws.log.endpoint_updates) == 1
    aws.events()
    assert run_reconciler()["record"] == "unchanged"
    assert aws.events() == []


def test_a_promoter_killed_before_model_promoted_is_announced_once_by_the_reconciler(aws: Aws) -> None:
    serve_first(aws)
    job = aws.training_job("sts", 2, tags=decided("sts", 2))
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    with killed("events", "PutEvents"), contextlib.suppress(Killed):
        handler(event, lambda_context())
    for _ in range(2):  # Lambda's two async retries
        assert handler(event, lambda_context())["outcome"] == PROMOTION_SKIPPED
    assert (aws.record() or {})["trainingJobName"] != job
    sagemaker_fake.settle()

    # Its claim was made before the kill: the reconciler puts the claimed event, and the record
    # step finds the announcement made and only writes the record.
    report = run_reconciler()
    assert report["republished"] == [f"promoted/{job}"]
    assert report["record"] == "record_written"
    assert run_reconciler()["record"] == "unchanged"

    promoted = [e for e in aws.events() if e["detail-type"] == MODEL_PROMOTED]
    assert [e["detail"]["trainingJobName"] for e in promoted] == [job]
    record = aws.record()
    assert record is not None and record["trainingJobName"] == job and record["metricValue"] == 0.4
    assert record["modelDataUrl"] == aws.model_artifact(job)


def test_a_promoter_killed_after_model_promoted_is_not_announced_again(aws: Aws) -> None:
    """Killed after ModelPromoted was put and confirmed, before the record write: the reconciler
    writes the record from the endpoint and announces nothing (it did twice before the ledger)."""
    serve_first(aws)
    job = aws.training_job("sts", 2, tags=decided("sts", 2))
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    with killed_after_the_event("ssm", "PutParameter"), contextlib.suppress(Killed):
        handler(event, lambda_context())
    for _ in range(2):  # Lambda's two async retries: the endpoint is deploying its config already
        assert handler(event, lambda_context())["outcome"] == PROMOTION_SKIPPED
    sagemaker_fake.settle()

    report = run_reconciler()

    assert report["record"] == "record_written" and report["republished"] == []
    promoted = [e for e in aws.events() if e["detail-type"] == MODEL_PROMOTED]
    assert [e["detail"]["trainingJobName"] for e in promoted] == [job]
    assert (aws.record() or {})["trainingJobName"] == job


@contextlib.contextmanager
def killed_after_the_event(service: str, operation: str) -> Iterator[None]:
    """Kill the invocation at the first ``operation`` call after a successful PutEvents."""
    put = {"done": False}
    events_client = clients.client("events")
    target = clients.client(service)
    after_put = "after-call.eventbridge.PutEvents"
    name = f"before-call.{target.meta.service_model.service_id.hyphenize()}.{operation}"

    def mark(**_: Any) -> None:
        put["done"] = True

    def die(**_: Any) -> None:
        if put["done"]:
            raise Killed(f"killed before {operation}, after PutEvents")

    events_client.meta.events.register(after_put, mark, unique_id="o2v-mark")
    target.meta.events.register(name, die, unique_id="o2v-kill")
    try:
        yield
    finally:
        events_client.meta.events.unregister(after_put, unique_id="o2v-mark")
        target.meta.events.unregister(name, unique_id="o2v-kill")


def test_a_better_candidate_during_the_bake_is_deferred_then_promoted_once_the_endpoint_is_free(aws: Aws) -> None:
    serve_first(aws)
    second = aws.training_job("sts", 2, tags=decided("sts", 2))
    assert promote(aws, second, 0.45)["outcome"] == MODEL_PROMOTED  # the endpoint bakes it now
    candidate = healthy_job(aws, "other")
    aws.events()

    result = promote(aws, candidate, HEALTHY[-1][1])
    assert str(result["reason"]).startswith("deferred: ")
    assert run_reconciler()["deferred_decided"] == []  # still baking: nothing decided yet
    sagemaker_fake.settle()

    report = run_reconciler()

    assert report["deferred_decided"] == [f"{candidate}: {MODEL_PROMOTED}"]
    assert len(aws.log.endpoint_updates) == 2
    assert aws.log.endpoint_updates[-1][1].endswith("other-a1")
    assert aws.tags_of_job(candidate)["o2v:promotion"] == "decided"
    sagemaker_fake.settle()
    assert run_reconciler()["deferred_decided"] == []
    assert [e["detail"]["trainingJobName"] for e in aws.events() if e["detail-type"] == MODEL_PROMOTED] == [
        candidate
    ]


def healthy_job(aws: Aws, lineage: str) -> str:
    """A finished job with a healthy regression curve in CloudWatch Logs, judged succeeded."""
    name = job_name(DEPLOYMENT, lineage, 1)
    tags = Lineage(DEPLOYMENT, lineage, 1, None).tags() | {"o2v:evaluated": "succeeded"}
    aws.sagemaker.create_training_job(
        TrainingJobName=name,
        AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=CONFIG.training_role_arn,
        HyperParameters={"output_layer": "mean_squared_error"},
        OutputDataConfig={"S3OutputPath": f"s3://{CONFIG.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
        Tags=[{"Key": t["Key"], "Value": t["Value"]} for t in tag_list(tags)],
    )
    sagemaker_fake.set_status(name, "Completed")
    write_curve(aws, name, HEALTHY)
    return name


def write_curve(aws: Aws, name: str, curve: Sequence[tuple[int, float, float | None]]) -> None:
    """The job's validation curve in its CloudWatch Logs stream, as Object2Vec writes it."""
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/sagemaker/TrainingJobs")
    stream = f"{name}/algo-1-1764150000"
    logs.create_log_stream(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream)
    now = int(datetime.now(UTC).timestamp() * 1000)
    lines = log_header(name) + epoch_lines(curve, "mean_squared_error")
    logs.put_log_events(logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": line} for line in lines])


def test_a_success_whose_event_was_lost_is_promoted_by_the_reconciler_onto_a_new_endpoint(aws: Aws) -> None:
    job = healthy_job(aws, "sts")  # judged succeeded, but its TrainingSucceeded never reached the promoter
    assert aws.record() is None

    report = run_reconciler()

    assert report["record"] == "no_endpoint"  # nothing served yet, so no record to repair
    record = aws.record()
    assert record is not None and record["trainingJobName"] == job
    assert [e["detail"]["trainingJobName"] for e in aws.events() if e["detail-type"] == MODEL_PROMOTED] == [job]
    assert aws.tags_of_job(job)["o2v:promotion"] == "decided"
    sagemaker_fake.settle()
    assert run_reconciler()["record"] == "unchanged" and aws.events() == []
