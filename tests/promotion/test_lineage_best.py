"""The loop keeps every attempt's best model: the endpoint ends up serving the lineage's best
attempt, even when that is the one that overfitted.

Facts relied on (``../shared/reference/object2vec.md``): a Completed Object2Vec job, early-stopped
or not, serializes its best validation epoch (section 10d); its early stopping stops when the bad
count exceeds the patience (10c). The evaluator, the promoter and the SageMaker, Logs, SSM and
EventBridge calls are the real ones, against the moto server.
"""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

from control_plane.handlers import finished_job_evaluator, promoter
from o2v_core.events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, TRAINING_SUCCEEDED, VALIDATION_LOSS_DIVERGED
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from tests.promotion.support import PARAMETER, Aws
from tests.support import sagemaker_fake
from tests.support.cloud import DIVERGING, epoch_lines, log_header
from tests.support.lambda_context import lambda_context

VALIDATION = "s3://demo-data/datasets/sts/validation/"
# Healthy, but its best (0.1) is worse than the overfitted attempt 1's best epoch (0.095).
STEADY = [(0, 0.2, 0.21), (1, 0.15, 0.14), (2, 0.12, 0.11), (3, 0.11, 0.1), (4, 0.105, 0.09), (5, 0.1, 0.085)]


def write_log(aws: Aws, job: str, points: list[tuple[int, float, float]]) -> None:
    logs = aws.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    stream = f"{job}/algo-1-1764150000"
    logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    now = int(datetime.now(UTC).timestamp() * 1000)
    lines = log_header(job) + epoch_lines(points, "cross_entropy")  # output_layer softmax (the default)
    logs.put_log_events(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": line} for line in lines])


def finished(aws: Aws, job: str) -> dict[str, Any]:
    """SageMaker's state change for the job, as the FinishedTrainingJob rule delivers it."""
    status = aws.sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]
    return {"version": "0", "source": SAGEMAKER_SOURCE, "detail-type": TRAINING_JOB_STATE_CHANGE,
            "detail": {"TrainingJobName": job, "TrainingJobStatus": status}}


def test_the_endpoint_serves_the_lineages_best_attempt_even_when_it_is_the_one_that_overfitted(aws: Aws) -> None:
    # Attempt 1 overfitted (best epoch 4: 0.095, rising after it) and its own early stopping
    # (patience 3) ended it at epoch 7: Completed. Attempt 2, launched as soon as the divergence
    # was seen, happens to end first.
    first = aws.training_job("sts", 1, validation=VALIDATION)
    write_log(aws, first, DIVERGING[:8])
    second = aws.training_job("sts", 2, validation=VALIDATION)
    write_log(aws, second, STEADY)

    decisions = []
    for job in (second, first):  # the order they end in
        finished_job_evaluator.handler(finished(aws, job), lambda_context())
        for event in aws.events():
            if event["detail-type"] == TRAINING_SUCCEEDED:
                decisions.append(promoter.handler(event, lambda_context()))
                sagemaker_fake.settle()  # the blue/green bake ends

    assert [(item["trainingJobName"], item["outcome"]) for item in decisions] == [
        (second, "ModelPromoted"), (first, "ModelPromoted")]
    assert decisions[1]["candidateValue"] == 0.095 and decisions[1]["previousValue"] == 0.1
    record = json.loads(aws.client("ssm").get_parameter(Name=PARAMETER)["Parameter"]["Value"])
    assert record["trainingJobName"] == first and record["validationData"] == VALIDATION
    assert aws.tags_of_job(first)["o2v:evaluated"] == "diverged_candidate"


def test_an_overfitted_attempt_is_a_reason_to_retrain_and_a_candidate(aws: Aws) -> None:
    first = aws.training_job("sts", 1, validation=VALIDATION)
    write_log(aws, first, DIVERGING[:8])

    result = finished_job_evaluator.handler(finished(aws, first), lambda_context())

    assert result["action"] == "diverged_candidate"
    events = {event["detail-type"]: event["detail"] for event in aws.events()}
    assert set(events) == {VALIDATION_LOSS_DIVERGED, TRAINING_SUCCEEDED}
    assert events[TRAINING_SUCCEEDED]["diverged"] is True and events[TRAINING_SUCCEEDED]["bestValue"] == 0.095
