"""The metric-line judge against a moto server: a subscription delivery (Base64 GZIP JSON, as
CloudWatch Logs sends it: o2v_core.log_subscription cites the format) judges only the job that
logged, fires on the same epoch as the monitor, and costs nothing for lines it need not judge."""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections import Counter
from typing import Any

import boto3
import pytest
from control_plane.handlers import divergence_monitor, metric_line_judge
from o2v_core.log_subscription import (
    CONTROL_MESSAGE,
    DATA_MESSAGE,
    LogBatch,
    LogEvent,
    MalformedDelivery,
    decode,
    encode,
)
from o2v_core.naming import job_name
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP as LOG_GROUP
from o2v_core.resource_names import job_curve_table_name

from tests.support import sagemaker_fake
from tests.support.cloud import DIVERGING, PATIENT, Cloud, epoch_lines, log_header
from tests.support.lambda_context import lambda_context

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def delivery(job: str, lines: list[str], *, message_type: str = DATA_MESSAGE) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return encode(LogBatch(
        owner=sagemaker_fake.ACCOUNT, log_group=LOG_GROUP, log_stream=f"{job}/algo-1-1764150000",
        subscription_filters=("dev-metric-line-judge",), message_type=message_type,
        log_events=tuple(LogEvent(str(index), now, line) for index, line in enumerate(lines)),
    ))


def test_payload_round_trips_in_the_documented_encoding() -> None:
    event = delivery("dev-x-a1", ["#quality_metric: host=algo-1, epoch=0, validation cross_entropy <loss>=0.5"])
    document = json.loads(gzip.decompress(base64.b64decode(event["awslogs"]["data"])))
    assert set(document) == {"owner", "logGroup", "logStream", "subscriptionFilters", "messageType", "logEvents"}
    assert set(document["logEvents"][0]) == {"id", "timestamp", "message"}
    assert decode(event).log_stream == "dev-x-a1/algo-1-1764150000"


@pytest.mark.parametrize("event", [{}, {"awslogs": {"data": "not base64!"}},
                                   {"awslogs": {"data": base64.b64encode(gzip.compress(b"[1]")).decode()}}])
def test_a_broken_delivery_is_refused_by_name(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedDelivery, match="awslogs"):
        decode(event)


def test_judge_fires_on_the_line_of_the_decisive_epoch(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)  # 2 epochs left > 1: stop
    job = cloud.create_job("stsb-baseline", hyperparameters=PATIENT)
    cloud.write_log(job, log_header(job))
    results = []
    for point in DIVERGING:
        lines = epoch_lines([point], "mean_squared_error")
        cloud.write_log(job, lines)
        results.append(metric_line_judge.handler(delivery(job, lines), lambda_context()))
        if results[-1]["verdict"] == "diverged":
            break
    verdicts = [result["verdict"] for result in results]
    # The same epoch the every-minute monitor fires on (test_flow): epoch 7, judged on its own line.
    assert verdicts == ["checked"] * 7 + ["diverged"]
    assert results[-1]["choice"] == "stopped, 2 epochs saved"
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Stopped"
    assert len(cloud.delivered("retrain_launcher")) == 1
    # Per line one UpdateItem on the curve store and no CloudWatch Logs call; SageMaker is asked on
    # the job's first line (what judging needs, kept in the store) and on the divergence only.
    assert aws_calls["FilterLogEvents"] == aws_calls["DescribeLogStreams"] == aws_calls["ListTrainingJobs"] == 0
    assert aws_calls["DescribeTrainingJob"] == aws_calls["ListTags"] == 2
    assert aws_calls["UpdateItem"] == len(verdicts) + 2  # + remember the job, + mark it reported
    # A later line of the stopped job, and the safety net, report nothing twice.
    later = delivery(job, epoch_lines([DIVERGING[-1]], "mean_squared_error"))
    verdict = metric_line_judge.handler(later, lambda_context())["verdict"]
    assert verdict in ("not_running", "already_reported", "stopped_again")
    assert divergence_monitor.handler(SCHEDULED, lambda_context())["diverged"] == []
    assert len(cloud.delivered("retrain_launcher")) == 0


VALIDATION_LINE = "#quality_metric: host=algo-1, epoch=3, validation mean_squared_error <loss>=9.0"
TRAIN_LINE = "#quality_metric: host=algo-1, epoch=3, train mean_squared_error <loss>=0.1"
FINAL_TEST_LINE = "#quality_metric: host=algo-1, test mean_squared_error <loss>=0.2"


@pytest.mark.parametrize(("job", "lines", "message_type", "verdict"), [
    (job_name("other", "stsb-baseline", 1), [VALIDATION_LINE], DATA_MESSAGE, "other_deployment"),
    # deployment "dev-x" shares the text "dev-" with "dev", but not its prefix "dev--"
    (job_name("dev-x", "stsb-baseline", 1), [VALIDATION_LINE], DATA_MESSAGE, "other_deployment"),
    (job_name("dev", "stsb-baseline", 1), [FINAL_TEST_LINE], DATA_MESSAGE, "no_epoch_line"),
    (job_name("dev", "stsb-baseline", 1), ["CWL CONTROL MESSAGE: Checking health of destination Lambda."],
     CONTROL_MESSAGE, "control_message"),
])
def test_lines_it_need_not_judge_cost_no_aws_call(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str],
    job: str, lines: list[str], message_type: str, verdict: str,
) -> None:
    cloud.use_config(monkeypatch)
    result = metric_line_judge.handler(delivery(job, lines, message_type=message_type), lambda_context())
    assert result == {"job": job, "verdict": verdict}
    assert sum(aws_calls.values()) == 0


def test_monitor_defers_jobs_instead_of_running_into_its_timeout(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("stsb-baseline")
    report = divergence_monitor.handler(SCHEDULED, lambda_context(timeout_seconds=1))  # 1 s left
    assert report["deferred"] == [job] and report["checked"] == []
    assert aws_calls["DescribeTrainingJob"] == 0 and aws_calls["FilterLogEvents"] == 0


def test_train_lines_without_a_validation_line_are_stored_not_dropped(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, aws_calls: Counter[str]
) -> None:
    """The generalization-gap rule needs each epoch's train loss, which often arrives in a batch of
    its own (issue 24 item 8): stored with one UpdateItem; judged when its validation line comes."""
    cloud.use_config(monkeypatch)
    job = cloud.create_job("stsb-baseline")
    result = metric_line_judge.handler(delivery(job, [TRAIN_LINE]), lambda_context())
    assert result == {"job": job, "verdict": "stored_train_lines"}
    assert aws_calls["UpdateItem"] == 1 and aws_calls["DescribeTrainingJob"] == 0
    result = metric_line_judge.handler(delivery(job, [VALIDATION_LINE]), lambda_context())
    assert result["verdict"] == "checked"
    item = boto3.client("dynamodb").scan(TableName=job_curve_table_name(cloud.deployment))["Items"]
    assert sum(TRAIN_LINE in json.dumps(entry) for entry in item) == 1


# Validation drifts up 1.5-3 % (under the rise rule's 5 %) while train keeps falling: only the
# generalization-gap rule fires, at epoch 9 (tests/core/test_detector.py, same curves).
GAP_VALIDATION = [0.9, 0.7, 0.6, 0.55, 0.53, 0.52, 0.52, 0.528, 0.533, 0.536, 0.54]
GAP_TRAIN = [0.9, 0.68, 0.56, 0.5, 0.47, 0.45, 0.43, 0.41, 0.39, 0.37, 0.35]


@pytest.mark.parametrize("train_first", [True, False])
def test_the_generalization_gap_rule_fires_on_the_push_path_with_train_lines_in_their_own_batches(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, train_first: bool
) -> None:
    cloud.use_config(monkeypatch, detector_config='{"use_generalization_gap": true}', stop_on_divergence=False)
    job = cloud.create_job("stsb-baseline", hyperparameters=PATIENT)
    verdicts = []
    for epoch, (validation, train) in enumerate(zip(GAP_VALIDATION, GAP_TRAIN, strict=True)):
        lines = epoch_lines([(epoch, validation, train)], "mean_squared_error")
        train_lines = [line for line in lines if " train " in line]
        validation_lines = [line for line in lines if " train " not in line]
        for batch in ([train_lines, validation_lines] if train_first else [validation_lines, train_lines]):
            cloud.write_log(job, batch)
            verdicts.append(metric_line_judge.handler(delivery(job, batch), lambda_context())["verdict"])
        if "diverged" in verdicts:
            break
    assert "diverged" in verdicts
    (report,) = cloud.delivered("retrain_launcher")
    assert "generalization_gap" in json.dumps(report)
