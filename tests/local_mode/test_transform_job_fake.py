"""Batch transform jobs in the tests' SageMaker fake (scripted, over HTTP): contract, rules, states.

Each rule's source is named in ``local_aws/sagemaker/transform_jobs.py`` and at the assertion:
botocore's ``sagemaker`` service model (shapes, member and operation documentation) and the
SageMaker developer guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support import sagemaker_fake as fake

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
ROLE = f"arn:aws:iam::{fake.ACCOUNT}:role/model"


@pytest.fixture
def sm(sagemaker_fake: str) -> SageMakerClient:
    client: SageMakerClient = boto3.client(
        "sagemaker", endpoint_url=sagemaker_fake, region_name=fake.REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    client.create_model(ModelName="dev-model", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bucket/out/job/output/model.tar.gz"})
    return client


def request(name: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TransformJobName": name,
        "ModelName": "dev-model",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": 6,
        "Environment": {"INFERENCE_PREFERRED_MODE": "embedding"},
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
                           "ContentType": "application/jsonlines", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": "s3://bucket/out/", "Accept": "application/jsonlines",
                            "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2},
        "Tags": [{"Key": "o2v:deployment", "Value": "dev"}],
    }
    body.update(changes)
    return body


def error(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    details = raised.value.response["Error"]
    return str(details["Code"]), str(details["Message"])


@pytest.mark.parametrize(("changes", "member"), [
    ({"TransformJobName": "bad_name"}, "transformJobName"),  # pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
    ({"BatchStrategy": "Everything"}, "batchStrategy"),  # enum MultiRecord | SingleRecord
    ({"TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 0}},
     "transformResources.instanceCount"),  # TransformInstanceCount min 1
    ({"TransformOutput": {"Accept": "application/jsonlines"}}, "transformOutput.s3OutputPath"),  # required
    ({"Environment": {f"K{index}": "v" for index in range(17)}}, "environment"),  # TransformEnvironmentMap max 16
])
def test_a_request_the_service_model_refuses_names_the_member(sm: SageMakerClient, changes: dict[str, Any],
                                                               member: str) -> None:
    unchecked = boto3.client(  # botocore's client checks only required members, types and minimums: skip them
        "sagemaker", endpoint_url=sm.meta.endpoint_url, region_name=fake.REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(parameter_validation=False,
                                                       retries={"mode": "standard", "total_max_attempts": 1}))
    with pytest.raises(ClientError) as raised:
        unchecked.create_transform_job(**request("dev--embed-1", **changes))
    code, message = error(raised)
    assert code == "ValidationException" and f"'{member}'" in message


@pytest.mark.parametrize(("changes", "words"), [
    ({"MaxPayloadInMB": 101}, "cannot be greater than 100"),  # MaxPayloadInMB's documentation
    ({"MaxConcurrentTransforms": 20, "MaxPayloadInMB": 6}, "cannot exceed 100"),  # the product, same page
    ({"TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in/"}},
                         "SplitType": "None"}}, "SplitType"),  # BatchStrategy needs a SplitType
    ({"ModelName": "no-such-model"}, "Could not find model"),  # "must be the name of an existing ... model"
])
def test_the_documented_rules_beyond_the_service_model(sm: SageMakerClient, changes: dict[str, Any],
                                                       words: str) -> None:
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(**request("dev--embed-1", **changes))
    code, message = error(raised)
    assert code == "ValidationException" and words in message


def test_states_names_listing_and_tags(sm: SageMakerClient) -> None:
    arn = sm.create_transform_job(**request("dev--embed-1"))["TransformJobArn"]
    assert arn == f"arn:aws:sagemaker:{fake.REGION}:{fake.ACCOUNT}:transform-job/dev--embed-1"
    described = sm.describe_transform_job(TransformJobName="dev--embed-1")
    assert described["TransformJobStatus"] == "InProgress"
    assert described["Environment"] == {"INFERENCE_PREFERRED_MODE": "embedding"}
    assert described["TransformResources"]["InstanceCount"] == 2
    # "The name must be unique within an Amazon Web Services Region in an Amazon Web Services account."
    with pytest.raises(ClientError) as raised:
        sm.create_transform_job(**request("dev--embed-1"))
    assert error(raised)[0] == "ResourceInUse"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "o2v:deployment", "Value": "dev"}]

    sm.create_transform_job(**request("dev--embed-2"))
    fake.set_transform_status("dev--embed-1", "Failed", "ClientError: See job logs for more information")
    failed = sm.describe_transform_job(TransformJobName="dev--embed-1")
    assert failed["TransformJobStatus"] == "Failed" and failed["FailureReason"].startswith("ClientError")
    assert "TransformEndTime" in failed
    # ListTransformJobs: SortBy CreationTime, SortOrder Descending by default (the request's documentation).
    names = [item["TransformJobName"] for item in sm.list_transform_jobs()["TransformJobSummaries"]]
    assert names == ["dev--embed-2", "dev--embed-1"]
    failed_only = sm.list_transform_jobs(StatusEquals="Failed")["TransformJobSummaries"]
    assert [item["TransformJobName"] for item in failed_only] == ["dev--embed-1"]


def test_stop_goes_stopping_then_stopped_and_a_finished_job_cannot_be_stopped(sm: SageMakerClient) -> None:
    sm.create_transform_job(**request("dev--embed-1"))
    sm.stop_transform_job(TransformJobName="dev--embed-1")  # Stopping -> Stopped (StopTransformJob's docs)
    assert sm.describe_transform_job(TransformJobName="dev--embed-1")["TransformJobStatus"] == "Stopped"
    with pytest.raises(ClientError) as raised:
        sm.stop_transform_job(TransformJobName="dev--embed-1")
    assert error(raised)[0] == "ValidationException"
    with pytest.raises(ClientError) as raised:
        sm.describe_transform_job(TransformJobName="dev--nothing")
    assert error(raised)[0] == "ValidationException"
