"""The tests' SageMaker fake (the local SageMaker API, scripted; tests/support/sagemaker_fake.py), over HTTP.

Each rule it applies, with its source: botocore's ``sagemaker`` service model (operation and
member documentation, modelled errors) or an AWS page, named at the assertion. The test-control
surface (set_status, settle, roll_back, FAULTS, CALLS, SERVING_LOG) is what tests script.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from o2v_core.builtin_algorithms import METRIC_OVERRIDE_MESSAGE, builtin_metric_definitions

from tests.support import sagemaker_fake as fake

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
ROLE = f"arn:aws:iam::{fake.ACCOUNT}:role/training"


@pytest.fixture
def sm(sagemaker_fake: str) -> SageMakerClient:
    client: SageMakerClient = boto3.client(
        "sagemaker", endpoint_url=sagemaker_fake, region_name=fake.REGION, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    return client


def job(name: str, **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/models/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "Tags": [{"Key": "o2v:lineage", "Value": "sts"}],
    }
    request.update(changes)
    return request


def code(raised: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def test_a_job_stays_in_progress_until_the_test_moves_it(sm: SageMakerClient) -> None:
    """ModelArtifacts is a required member of DescribeTrainingJob's answer (reference 10d), always there."""
    sm.create_training_job(**job("dev--sts-a1"))
    described = sm.describe_training_job(TrainingJobName="dev--sts-a1")
    assert (described["TrainingJobStatus"], described["SecondaryStatus"]) == ("InProgress", "Starting")
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == "s3://bucket/models/dev--sts-a1/output/model.tar.gz"
    fake.set_status("dev--sts-a1", "Completed")
    described = sm.describe_training_job(TrainingJobName="dev--sts-a1")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["ModelArtifacts"]["S3ModelArtifacts"] == "s3://bucket/models/dev--sts-a1/output/model.tar.gz"
    fake.set_status("dev--sts-a1", "Failed", failure_reason="AlgorithmError: boom")
    assert sm.describe_training_job(TrainingJobName="dev--sts-a1")["FailureReason"] == "AlgorithmError: boom"


def test_job_names_are_unique_resource_in_use(sm: SageMakerClient) -> None:
    """"Training job names must be unique within an AWS account and region" (TrainingJobName in the
    service model); ResourceInUse is one of CreateTrainingJob's modelled errors."""
    sm.create_training_job(**job("dev--sts-a1"))
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**job("dev--sts-a1"))
    assert code(raised)[0] == "ResourceInUse"


def test_describe_gives_the_built_in_metric_definitions_and_create_refuses_caller_supplied_ones(
    sm: SageMakerClient,
) -> None:
    """Reference section 10a."""
    sm.create_training_job(**job("dev--sts-a1"))
    specification = sm.describe_training_job(TrainingJobName="dev--sts-a1")["AlgorithmSpecification"]
    assert specification["MetricDefinitions"] == builtin_metric_definitions("object2vec")
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**job("dev--sts-a2", AlgorithmSpecification=specification))
    assert code(raised) == ("ValidationException", METRIC_OVERRIDE_MESSAGE)


def test_stop_goes_stopping_then_stopped_and_refuses_a_job_not_in_progress(sm: SageMakerClient) -> None:
    """StopTrainingJob's documentation: "SageMaker changes the status of the job to Stopping. After
    SageMaker stops the job, it sets the status to Stopped"."""
    sm.create_training_job(**job("dev--sts-a1"))
    sm.stop_training_job(TrainingJobName="dev--sts-a1")
    described = sm.describe_training_job(TrainingJobName="dev--sts-a1")
    assert described["TrainingJobStatus"] == "Stopped"
    assert [item["Status"] for item in described["SecondaryStatusTransitions"]][-2:] == ["Stopping", "Stopped"]
    with pytest.raises(ClientError) as raised:
        sm.stop_training_job(TrainingJobName="dev--sts-a1")
    assert code(raised)[0] == "ValidationException"
    assert fake.CALLS["StopTrainingJob"] == 2


def test_scripted_faults_are_consumed_one_per_call(sm: SageMakerClient) -> None:
    fake.FAULTS.create_training_job = [fake.ThrottlingException, fake.ResourceLimitExceeded]
    for expected in ("ThrottlingException", "ResourceLimitExceeded"):
        with pytest.raises(ClientError) as raised:
            sm.create_training_job(**job("dev--sts-a1"))
        assert code(raised)[0] == expected
    sm.create_training_job(**job("dev--sts-a1"))
    assert fake.CALLS["CreateTrainingJob"] == 3


def test_a_concurrent_creator_wins_the_name_and_the_caller_gets_resource_in_use(sm: SageMakerClient) -> None:
    fake.FAULTS.lose_create_race = True
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**job("dev--sts-a1"))
    assert code(raised)[0] == "ResourceInUse"
    assert sm.describe_training_job(TrainingJobName="dev--sts-a1")["TrainingJobStatus"] == "InProgress"


def test_list_training_jobs_filters_and_pages(sm: SageMakerClient) -> None:
    """NameContains: "returns only training jobs whose name contains the specified string";
    StatusEquals: "only training jobs with a specific status"; NextToken when truncated (the
    ListTrainingJobs member documentation)."""
    for index in range(12):
        sm.create_training_job(**job(f"dev--sts-a{index + 1}"))
    sm.create_training_job(**job("prod--sts-a1"))
    fake.set_status("dev--sts-a3", "Completed")
    pages = list(sm.get_paginator("list_training_jobs").paginate(NameContains="dev--"))
    assert len(pages) == 2
    assert sum(len(page["TrainingJobSummaries"]) for page in pages) == 12
    completed = sm.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert [summary["TrainingJobName"] for summary in completed] == ["dev--sts-a3"]


def test_tags_of_a_job(sm: SageMakerClient) -> None:
    arn = sm.create_training_job(**job("dev--sts-a1"))["TrainingJobArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "o2v:evaluated", "Value": "healthy"}])
    tags = {tag["Key"]: tag["Value"] for tag in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"o2v:lineage": "sts", "o2v:evaluated": "healthy"}


def _serving(sm: SageMakerClient, suffix: str) -> str:
    sm.create_model(ModelName=f"m-{suffix}", ExecutionRoleArn=ROLE, EnableNetworkIsolation=True,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://bucket/{suffix}/model.tar.gz"})
    sm.create_endpoint_config(
        EndpointConfigName=f"c-{suffix}", KmsKeyId="alias/serving",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": f"m-{suffix}", "InitialInstanceCount": 1,
                             "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0}],
    )
    return f"c-{suffix}"


def test_create_refuses_an_existing_name_with_sagemakers_message(sm: SageMakerClient) -> None:
    _serving(sm, "a")
    with pytest.raises(ClientError) as raised:
        sm.create_model(ModelName="m-a", ExecutionRoleArn=ROLE,
                        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bucket/a/model.tar.gz"})
    arn = f"arn:aws:sagemaker:{fake.REGION}:{fake.ACCOUNT}:model/m-a"
    assert code(raised) == ("ValidationException", f'Cannot create already existing model "{arn}".')
    assert sm.describe_model(ModelName="m-a")["EnableNetworkIsolation"] is True
    assert sm.describe_endpoint_config(EndpointConfigName="c-a")["KmsKeyId"] == "alias/serving"


def test_an_endpoint_is_creating_then_updating_until_settled_and_refuses_an_update_meanwhile(
    sm: SageMakerClient,
) -> None:
    """CreateEndpoint / UpdateEndpoint documentation: Creating (Updating), then InService; an update
    of an endpoint that is not InService is refused ("Cannot update in-progress endpoint")."""
    sm.create_endpoint(EndpointName="e", EndpointConfigName=_serving(sm, "a"))
    described = sm.describe_endpoint(EndpointName="e")
    assert described["EndpointStatus"] == "Creating"
    assert described["PendingDeploymentSummary"]["EndpointConfigName"] == "c-a"
    with pytest.raises(ClientError) as raised:
        sm.update_endpoint(EndpointName="e", EndpointConfigName=_serving(sm, "b"))
    assert code(raised)[0] == "ValidationException" and "in-progress" in code(raised)[1]
    fake.settle()
    described = sm.describe_endpoint(EndpointName="e")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "c-a")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    deployment: Any = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE",
                                                                            "WaitIntervalInSeconds": 0}}}
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c-b", DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName="e")["EndpointStatus"] == "Updating"
    fake.settle()
    described = sm.describe_endpoint(EndpointName="e")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "c-b")
    assert described["LastDeploymentConfig"] == deployment
    assert fake.SERVING_LOG.endpoint_creates == [("e", "c-a")]
    assert [(name, config) for name, config, _ in fake.SERVING_LOG.endpoint_updates] == [("e", "c-b")]


def test_roll_back_returns_the_endpoint_to_its_former_config(sm: SageMakerClient) -> None:
    """"SageMaker initiates a complete rollback to the old endpoint" when an alarm trips during the
    bake (https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html)."""
    sm.create_endpoint(EndpointName="e", EndpointConfigName=_serving(sm, "a"))
    fake.settle()
    sm.update_endpoint(EndpointName="e", EndpointConfigName=_serving(sm, "b"))
    fake.roll_back()
    described = sm.describe_endpoint(EndpointName="e")
    assert (described["EndpointStatus"], described["EndpointConfigName"]) == ("InService", "c-a")
    assert "PendingDeploymentSummary" not in described


@pytest.mark.parametrize(("retain", "count"), [(True, 1), (False, 3)])
def test_retain_all_variant_properties_keeps_the_instance_count(sm: SageMakerClient, retain: bool, count: int) -> None:
    """UpdateEndpoint's RetainAllVariantProperties: "To retain the variant properties of an endpoint
    when updating it, set RetainAllVariantProperties to true ... The default is false"."""
    sm.create_endpoint(EndpointName="e", EndpointConfigName=_serving(sm, "a"))
    fake.settle()
    sm.create_model(ModelName="m-b", ExecutionRoleArn=ROLE,
                    PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://bucket/b/model.tar.gz"})
    sm.create_endpoint_config(EndpointConfigName="c-b", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m-b", "InitialInstanceCount": 3, "InstanceType": "ml.m5.large"}])
    sm.update_endpoint(EndpointName="e", EndpointConfigName="c-b", RetainAllVariantProperties=retain)
    fake.settle()
    assert sm.describe_endpoint(EndpointName="e")["ProductionVariants"][0]["CurrentInstanceCount"] == count
    assert fake.SERVING_LOG.retained_variant_properties == [retain]


def test_the_fake_checks_the_whole_request_contract(sm: SageMakerClient) -> None:
    """A 64-character name: TrainingJobName has max 63 in the service model (botocore's client does
    not check maximums; tests/local_mode/test_sagemaker_contract.py has the other rules)."""
    with pytest.raises(ClientError) as raised:
        sm.create_training_job(**job("a" * 64))
    assert code(raised)[0] == "ValidationException" and "less than or equal to 63" in code(raised)[1]
