"""The subscription path end to end through local mode: a diverging job's epoch line in the local
Logs -> the local Logs' subscription delivery (Base64 GZIP JSON, one stream's ``logEvents`` batch)
-> the metric-line judge in its Lambda worker, on the curve store (the local DynamoDB table the pump
creates, as the stack does) -> StopTrainingJob and ValidationLossDiverged on the
project bus -> the RetrainOnDivergence rule.

The pump runs as ``o2v demo`` runs it (rules, workers, subscription delivery) against the
SageMaker fake (``tests/support/sagemaker_fake.py``, the local SageMaker API, scripted) and a moto server. Its
schedules are slowed to one local hour per minute, so the safety-net monitor never runs: whatever
is detected here, the judge detected.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from control_plane.aws.curve_store import CurveStore
from o2v_core.events import VALIDATION_LOSS_DIVERGED
from o2v_core.functions import METRIC_LINE_JUDGE
from o2v_core.log_subscription import DATA_MESSAGE, decode
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP, job_curve_table_name

from local_aws.clients import Clients
from local_aws.deployment import create_topic
from local_aws.events.pump import SCHEDULE, SUBSCRIPTION, Delivery, EventPump
from local_aws.logs.subscription import SubscriptionReader
from tests.control_plane.conftest import cloud  # noqa: F401  (the fakes' fixture; moto_endpoint is in tests/conftest.py)
from tests.support import sagemaker_fake
from tests.support.cloud import DIVERGING, PATIENT, Cloud, epoch_lines, log_header

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def pump(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[EventPump]:  # noqa: F811
    config = cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)  # PATIENT jobs: 2 epochs left > 1
    sns = boto3.client("sns")
    create_topic(sns, config.notification_topic_arn.rsplit(":", 1)[1])  # the pump wires the rest
    clients = Clients(s3=boto3.client("s3"), logs=boto3.client("logs"), cloudwatch=boto3.client("cloudwatch"),
                      events=cloud.events, account=sagemaker_fake.ACCOUNT, region=sagemaker_fake.REGION)
    env = {key: value for key, value in os.environ.items() if not key.startswith("O2V_")}
    pump = EventPump(config, env=env, clients=clients, sqs=cloud.sqs, events=cloud.events, sns=sns, run_dir=tmp_path,
                     minute_seconds=3600.0, subscription_poll_seconds=0.2, retry_delays=(0.5, 1.0))
    pump.setup()
    pump.start()
    try:
        yield pump
    finally:
        pump.stop()


def wait_for(condition: Callable[[], list[Delivery]], what: str, timeout: float = 60.0) -> list[Delivery]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_diverging_epoch_line_becomes_validation_loss_diverged_through_the_judge(
    cloud: Cloud, pump: EventPump,  # noqa: F811
) -> None:
    job = cloud.create_job("stsb-baseline", hyperparameters=PATIENT)
    cloud.write_log(job, log_header(job))  # no #quality_metric line: nothing is delivered for it

    def judged() -> list[Delivery]:
        return [d for d in pump.deliveries() if d.rule_id == SUBSCRIPTION and d.log_stream and
                d.log_stream.startswith(f"{job}/")]

    verdicts: list[str] = []
    for point in DIVERGING:  # one epoch at a time, as a job logs one epoch per minute
        cloud.write_log(job, epoch_lines([point], "mean_squared_error"))
        delivery = wait_for(lambda: judged()[len(verdicts):], f"the delivery of epoch {point[0]}")[0]
        assert delivery.ok, delivery.error
        verdicts.append(delivery.result["verdict"])
        if verdicts[-1] == "diverged":
            break
    # The same epoch the monitor fires on (tests/control_plane/test_flow.py), judged on its own line.
    assert verdicts == ["checked"] * 7 + ["diverged"]
    # Judged on the curve store the pump created on the local DynamoDB, as the stack's table:
    # every delivered metric line of epochs 0-7 is in the job's item, marked reported.
    stored = CurveStore(job_curve_table_name(cloud.deployment), boto3.client("dynamodb")).records([job])[job]
    assert len(stored.lines) == 2 * 8 and stored.reported == "diverged"
    assert stored.meta is not None and stored.meta.hyperparameters["early_stopping_patience"] == "5"

    # What the judge was handed is what CloudWatch Logs hands a Lambda destination.
    batch = decode(judged()[-1].event)
    assert batch.message_type == DATA_MESSAGE and batch.owner == sagemaker_fake.ACCOUNT
    assert batch.log_group == TRAINING_JOB_LOG_GROUP and batch.log_stream == f"{job}/algo-1-1764150000"
    subscription = METRIC_LINE_JUDGE.subscription
    assert subscription is not None
    assert batch.subscription_filters == (subscription.filter_name(cloud.deployment, METRIC_LINE_JUDGE.function_id),)
    # only the filter pattern's lines: the epoch's train and validation lines, not its "Epoch:" line
    decisive = epoch_lines([DIVERGING[7]], "mean_squared_error")
    assert [event.message for event in batch.log_events] == [line for line in decisive if "#quality_metric" in line]

    # The judge's event went through the project bus to the retrain launcher's rule.
    retrains = wait_for(lambda: [d for d in pump.deliveries() if d.rule_id == "RetrainOnDivergence"],
                        "the RetrainOnDivergence delivery")
    assert retrains[0].event["detail-type"] == VALIDATION_LOSS_DIVERGED
    assert retrains[0].event["detail"]["trainingJobName"] == job
    assert retrains[0].event["detail"]["decision"]["detected_at_epoch"] == 7
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] in ("Stopping", "Stopped")
    assert [d for d in pump.deliveries() if d.rule_id == SCHEDULE] == []  # the monitor never ran


def test_each_matching_line_is_delivered_once_even_when_flushed_late(cloud: Cloud) -> None:  # noqa: F811
    reader = SubscriptionReader(METRIC_LINE_JUDGE, cloud.deployment, cloud.logs, sagemaker_fake.ACCOUNT)
    reader.ensure_log_group()
    stream = "dev--x-a1/algo-1-1764150000"
    cloud.logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)

    def put(stamp: int, *messages: str) -> None:
        cloud.logs.put_log_events(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream,
                                  logEvents=[{"timestamp": stamp, "message": m} for m in messages])

    put(now, "#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=0.2", "Epoch: 0")
    (first,) = reader.read()
    assert [e.message for e in first.log_events] == [
        "#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=0.2"]
    put(now - 5_000, "#quality_metric: host=algo-1, epoch=1, train mean_squared_error <loss>=0.1")  # a late flush
    (late,) = reader.read()
    assert [e.message for e in late.log_events] == [
        "#quality_metric: host=algo-1, epoch=1, train mean_squared_error <loss>=0.1"]
    assert reader.read() == []
