"""What the settled loop did, read back from the services, one check each (see :mod:`loop_checks`
for the sources of the AWS behaviour they rely on)."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core import curve_store
from o2v_core.events import MODEL_PROMOTED
from o2v_core.naming import TAG_PARENT

from training.preflight.report import Check, Status
from training.verify.loop_checks import EXAMPLE_SENTENCES, LoopChecks, aws_error
from training.verify.run_tag import is_verify_job
from training.verify.target import served_record

NOT_SETTLED = "the loop did not settle (see above)"


def curve_store_check(loop: LoopChecks) -> Check:
    """The judge got attempt 1's ``#quality_metric`` lines through the subscription and stored them."""
    name = "metric lines reach the judge"
    job = loop.seen.first_job
    try:
        item = loop.client("dynamodb").get_item(TableName=loop.target.curve_table,
                                                Key={curve_store.PARTITION_KEY: {"S": job}}).get("Item")
    except (ClientError, BotoCoreError) as error:
        return Check(name, Status.FAILED, f"GetItem on {loop.target.curve_table}: {aws_error(error)}",
                     "allow dynamodb:GetItem (and kms:Decrypt on the data key) for these credentials")
    lines = [key for key in (item or {}) if key.startswith(curve_store.LINE_PREFIX)]
    if not lines:
        return Check(name, Status.FAILED, f"the curve store {loop.target.curve_table} holds no line of {job}",
                     "check the subscription filter on /aws/sagemaker/TrainingJobs and the metric-line judge's log "
                     "group and its on-failure queue")
    return Check(name, Status.PASSED, f"the curve store holds {len(lines)} #quality_metric line(s) of {job}")


def _dropout(job: dict[str, Any]) -> float:
    return float(job.get("HyperParameters", {}).get("dropout", "0"))


def divergence_check(loop: LoopChecks) -> Check:
    name = "divergence detected, attempt 2 with more dropout"
    first = loop.seen.jobs.get(loop.seen.first_job)
    if first is None:
        return Check(name, Status.UNKNOWN, "attempt 1 was never seen")
    children = [job for job in loop.seen.attempts() if loop.seen.tags.get(str(job["TrainingJobName"]), {}).get(
        TAG_PARENT) == loop.seen.first_job]
    reported = False
    with contextlib.suppress(ClientError, BotoCoreError):
        item = loop.client("dynamodb").get_item(TableName=loop.target.curve_table,
                                                Key={curve_store.PARTITION_KEY: {"S": loop.seen.first_job}})
        reported = curve_store.REPORTED in item.get("Item", {})
    if not children:
        if not reported:
            return Check(name, Status.UNKNOWN, f"attempt 1 ended {first['TrainingJobStatus']} without a divergence "
                         "report (the tiny recipe did not overfit this time), so no relaunch to check",
                         "rerun `o2v verify`; if it repeats, report the attempt's validation curve")
        return Check(name, Status.FAILED, f"the judge reported {loop.seen.first_job}'s divergence but no attempt 2 "
                     "was started", "look at the retrain launcher's log group and the RetrainOnDivergence rule's "
                     "dead-letter queue")
    child = children[0]
    if _dropout(child) <= _dropout(first):
        return Check(name, Status.FAILED, f"{child['TrainingJobName']} has dropout {_dropout(child)}, not more than "
                     f"attempt 1's {_dropout(first)}", "report it: the retrain policy did not raise dropout")
    how = "stopped" if first["TrainingJobStatus"] == "Stopped" else f"left to finish ({first['TrainingJobStatus']})"
    return Check(name, Status.PASSED, f"attempt 1 {how}; {child['TrainingJobName']} dropout {_dropout(first)} -> "
                 f"{_dropout(child)}")


def promotion_check(loop: LoopChecks) -> Check:
    name = "promotion of the best attempt"
    record = served_record(loop.client("ssm"), loop.target.serving_parameter)
    if record is None or not is_verify_job(loop.target.deployment, record.get("trainingJobName")):
        events = ", ".join(sorted(loop.seen.kinds())) or "none"
        return Check(name, Status.FAILED, f"the served-model record {loop.target.serving_parameter} names no attempt "
                     f"of this run (announcements: {events})", "look at the promoter's log group")
    return Check(name, Status.PASSED, f"{record['trainingJobName']} promoted ({record.get('metricName')} "
                 f"{record.get('metricValue')})")


def endpoint_check(loop: LoopChecks) -> Check:
    name = "endpoint serves the promoted model"
    record = served_record(loop.client("ssm"), loop.target.serving_parameter) or {}
    sagemaker = loop.client("sagemaker")
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=loop.target.endpoint_name)
        config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    except (ClientError, BotoCoreError) as error:
        return Check(name, Status.FAILED, f"{loop.target.endpoint_name}: {aws_error(error)}",
                     "look at the promoter's log group and /aws/sagemaker/Endpoints/<endpoint>")
    if endpoint["EndpointStatus"] != "InService":
        return Check(name, Status.FAILED, f"{loop.target.endpoint_name} is {endpoint['EndpointStatus']}: "
                     f"{endpoint.get('FailureReason', '')}", "look at /aws/sagemaker/Endpoints/<endpoint>")
    served = model.get("PrimaryContainer", {}).get("ModelDataUrl")
    if record.get("modelDataUrl") and served != record["modelDataUrl"]:
        return Check(name, Status.FAILED, f"the endpoint serves {served}, the record names {record['modelDataUrl']}",
                     "the reconciler repairs this within its schedule; rerun if it persists")
    return Check(name, Status.PASSED, f"{loop.target.endpoint_name} InService with {served}")


def embed_check(loop: LoopChecks) -> Check:
    """``o2v embed --endpoint`` as a user types it: the vocabulary found from the endpoint alone."""
    from training.cli import main

    name = "o2v embed --endpoint"
    out, err = io.StringIO(), io.StringIO()
    argv = ["embed", *EXAMPLE_SENTENCES, "--endpoint", loop.target.endpoint_name, "--region", loop.target.region]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    lines = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    sizes = [len(line.get("embedding", [])) for line in lines]
    if code != 0 or len(lines) != len(EXAMPLE_SENTENCES):
        return Check(name, Status.FAILED, f"exit {code}: {err.getvalue().strip()[-300:]}",
                     "run the same `o2v embed` by hand to see the whole error")
    if any(size != loop.enc_dim for size in sizes):
        return Check(name, Status.FAILED, f"embeddings of {sizes} values, not enc_dim {loop.enc_dim}",
                     "report it: the served model is not the one trained")
    return Check(name, Status.PASSED, f"{len(lines)} sentences -> {loop.enc_dim} values each "
                 f"(`o2v embed {' '.join(repr(s) for s in EXAMPLE_SENTENCES)} --endpoint {loop.target.endpoint_name}`)")


def announcement_check(loop: LoopChecks) -> Check:
    name = "announcements reach the operators' topic"
    kinds = loop.seen.kinds()
    if MODEL_PROMOTED not in kinds:
        return Check(name, Status.FAILED, f"the subscriber received {', '.join(sorted(kinds)) or 'nothing'}, no "
                     f"{MODEL_PROMOTED}", "look at the NotifyOperators rule's FailedInvocations and its dead-letter "
                     "queue; the message key must let events.amazonaws.com use it (docs/verification.md)")
    return Check(name, Status.PASSED, f"received {', '.join(sorted(kinds))} through {loop.verify_run.queue_name}")


def queues_check(loop: LoopChecks) -> Check:
    """Each dead-letter and witness queue answers, and no dead-letter queue holds an event."""
    name = "witness and dead-letter queues"
    sqs = loop.client("sqs")
    found, full = [], []
    for logical, url in sorted(loop.target.queues.items()):
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"]
        except (ClientError, BotoCoreError) as error:
            return Check(name, Status.FAILED, f"{logical}: {aws_error(error)}",
                         "allow sqs:GetQueueAttributes on the stacks' queues")
        depth = int(attributes.get("ApproximateNumberOfMessages", "0"))
        found.append(logical)
        if depth and "itness" not in logical:
            full.append(f"{logical} ({depth})")
    if not found:
        return Check(name, Status.UNKNOWN, "the stacks list no queue")
    if full:
        return Check(name, Status.FAILED, f"events in dead-letter queue(s): {', '.join(full)}",
                     "read them with `aws sqs receive-message --queue-url <url>`; each carries the error")
    return Check(name, Status.PASSED, f"{len(found)} queues reachable, none holds a dead letter")


RESULT_CHECKS = (curve_store_check, divergence_check, promotion_check, endpoint_check, embed_check,
                 announcement_check, queues_check)
