"""The local SageMaker API speaks SageMaker's protocol and emits SageMaker's events (no training).

Starts the real local services (moto server + local SageMaker API, as ``o2v demo`` does) and
talks to them with plain boto3 through ``AWS_ENDPOINT_URL*``. A job whose input channel is empty
fails while downloading, so these checks need no trainer and take seconds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from o2v_core.events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE, training_job_finished_pattern

from local_aws import procs
from local_aws.services import LocalServices

pytestmark = pytest.mark.timeout(120)


class Local:
    def __init__(self, services: LocalServices) -> None:
        env = services.environment({})
        self.env = env
        self.kwargs = {"region_name": env["AWS_DEFAULT_REGION"], "aws_access_key_id": "testing",
                       "aws_secret_access_key": "testing"}

    def client(self, service: str) -> Any:
        variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
        return boto3.client(service, endpoint_url=self.env.get(variable, self.env["AWS_ENDPOINT_URL"]),  # type: ignore[call-overload]
                            **self.kwargs)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    services = LocalServices(tmp_path_factory.mktemp("local-sagemaker"))
    services.start()
    groups = services.process_groups()
    try:
        yield Local(services)
    finally:
        services.stop()
        assert [group for group in groups if procs.group_alive(group)] == []


def _request(name: str, bucket: str) -> dict[str, Any]:
    return {
        "TrainingJobName": name,
        "HyperParameters": {"enc0_max_seq_len": "10", "enc0_vocab_size": "100", "dropout": "0.0"},
        "AlgorithmSpecification": {"TrainingImage": "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1",
                                   "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "InputDataConfig": [{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/empty/train/",
            "S3DataDistributionType": "FullyReplicated"}}}],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket}/out/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Tags": [{"Key": "o2v:lineage", "Value": "t"}],
    }


def _queue_for_pattern(local: Local, pattern: dict[str, Any], name: str) -> str:
    sqs, events = local.client("sqs"), local.client("events")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def _wait_for(local: Local, name: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    sagemaker = local.client("sagemaker")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job: dict[str, Any] = sagemaker.describe_training_job(TrainingJobName=name)
        if job["TrainingJobStatus"] in statuses:
            return job
        time.sleep(0.2)
    pytest.fail(f"{name} never reached {statuses}")


def test_a_failed_job_emits_state_changes_in_the_documented_shape(local: Local) -> None:
    local.client("s3").create_bucket(Bucket="data")
    everything = _queue_for_pattern(local, {"source": [SAGEMAKER_SOURCE]}, "all-changes")
    # The project's own rule pattern (FinishedTrainingJob) must match the finished event.
    finished = _queue_for_pattern(local, training_job_finished_pattern("o2v-dev"), "finished")
    sagemaker = local.client("sagemaker")
    arn = sagemaker.create_training_job(**_request("o2v-dev--shape-a1", "data"))["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:training-job/o2v-dev--shape-a1"

    job = _wait_for(local, "o2v-dev--shape-a1", ("Failed",))
    assert job["FailureReason"].startswith("ClientError: ") and "no objects found" in job["FailureReason"]

    sqs = local.client("sqs")
    bodies = [json.loads(message["Body"]) for message in
              sqs.receive_message(QueueUrl=everything, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]]
    statuses = [(body["detail"]["TrainingJobStatus"], body["detail"]["SecondaryStatus"]) for body in bodies]
    assert statuses[0] == ("InProgress", "Starting") and statuses[-1] == ("Failed", "Failed")
    last = bodies[-1]
    assert last["source"] == SAGEMAKER_SOURCE and last["detail-type"] == TRAINING_JOB_STATE_CHANGE
    assert last["resources"] == [arn]
    detail = last["detail"]
    assert detail["TrainingJobArn"] == arn
    assert detail["Tags"] == {"o2v:lineage": "t"}
    assert detail["HyperParameters"]["dropout"] == "0.0"
    assert detail["FailureReason"] == job["FailureReason"]
    for key in ("CreationTime", "LastModifiedTime", "TrainingEndTime"):
        assert detail[key].isdigit(), key  # epoch milliseconds, as a string
    for key in ("AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
                "StoppingCondition", "SecondaryStatusTransitions", "VpcConfig"):
        assert key in detail, key

    matched = sqs.receive_message(QueueUrl=finished, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    assert [json.loads(message["Body"])["detail"]["TrainingJobStatus"] for message in matched] == ["Failed"]


def test_sagemaker_errors_and_listing(local: Local) -> None:
    sagemaker = local.client("sagemaker")
    local.client("s3").create_bucket(Bucket="data2")
    sagemaker.create_training_job(**_request("o2v-dev--list-a1", "data2"))
    with pytest.raises(ClientError) as duplicate:
        sagemaker.create_training_job(**_request("o2v-dev--list-a1", "data2"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as missing:
        sagemaker.describe_training_job(TrainingJobName="o2v-dev--nothing-a1")
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    _wait_for(local, "o2v-dev--list-a1", ("Failed",))
    with pytest.raises(ClientError) as not_running:
        sagemaker.stop_training_job(TrainingJobName="o2v-dev--list-a1")
    assert not_running.value.response["Error"]["Code"] == "ValidationException"

    names = [item["TrainingJobName"] for item in sagemaker.get_paginator("list_training_jobs").paginate(
        NameContains="o2v-dev--", StatusEquals="Failed", PaginationConfig={"PageSize": 1}).build_full_result()[
        "TrainingJobSummaries"]]
    assert "o2v-dev--list-a1" in names
    assert sagemaker.list_training_jobs(StatusEquals="InProgress", NameContains="list")["TrainingJobSummaries"] == []
    arn = sagemaker.describe_training_job(TrainingJobName="o2v-dev--list-a1")["TrainingJobArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "extra", "Value": "1"}])
    assert {tag["Key"]: tag["Value"] for tag in sagemaker.list_tags(ResourceArn=arn)["Tags"]} == {
        "o2v:lineage": "t", "extra": "1"}

    runtime = local.client("sagemaker-runtime")
    with pytest.raises(ClientError) as no_endpoint:
        runtime.invoke_endpoint(EndpointName="nothing", Body=b"{}", ContentType="application/json")
    assert no_endpoint.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(ClientError) as no_config:
        sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="missing")
    assert "Could not find endpoint configuration" in no_config.value.response["Error"]["Message"]


def test_calls_are_logged_with_the_callers_user_agent(local: Local) -> None:
    client = boto3.client("sagemaker", endpoint_url=local.env["AWS_ENDPOINT_URL_SAGEMAKER"],  # type: ignore[call-overload]
                          config=Config(user_agent_extra="app/some_function"), **local.kwargs)
    client.list_training_jobs()
    state_dir = Path(local.env["AWS_CONFIG_FILE"]).parent / "sagemaker"
    calls = [json.loads(line) for line in (state_dir / "api-calls.jsonl").read_text().splitlines()]
    assert any(call["operation"] == "ListTrainingJobs" and "app/some_function" in call["userAgent"].split()
               for call in calls)


def test_the_sdk_request_members_are_accepted_and_what_cannot_run_locally_is_refused(local: Local) -> None:
    """The SageMaker Python SDK adds each channel's InputMode and OutputDataConfig.CompressionType."""
    local.client("s3").create_bucket(Bucket="data3")
    sagemaker = local.client("sagemaker")
    request = _request("o2v-dev-sdk-a1", "data3")
    request["InputDataConfig"][0]["InputMode"] = "File"
    request["OutputDataConfig"]["CompressionType"] = "GZIP"
    sagemaker.create_training_job(**request)
    job = sagemaker.describe_training_job(TrainingJobName="o2v-dev-sdk-a1")
    assert job["InputDataConfig"][0]["InputMode"] == "File"
    assert job["OutputDataConfig"]["CompressionType"] == "GZIP"

    refused = _request("o2v-dev-pipe-a1", "data3")
    refused["InputDataConfig"][0]["InputMode"] = "Pipe"
    refused["OutputDataConfig"]["CompressionType"] = "NONE"
    refused["ResourceConfig"]["InstanceCount"] = 2
    with pytest.raises(ClientError) as error:
        sagemaker.create_training_job(**refused)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    message = error.value.response["Error"]["Message"]
    assert "InputDataConfig[train].InputMode Pipe" in message
    assert "InstanceCount 2" in message and "CompressionType NONE" in message
    with pytest.raises(ClientError):
        sagemaker.describe_training_job(TrainingJobName="o2v-dev-pipe-a1")
