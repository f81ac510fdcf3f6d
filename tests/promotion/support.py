"""Test support for promotion: the emulated account's constants, views and event builders."""

from __future__ import annotations

import functools
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import boto3
from o2v_core.events import ANNOUNCEMENT_WITNESS, SOURCE, TRAINING_SUCCEEDED, TrainingSucceeded, rules, to_detail
from o2v_core.naming import Lineage, job_name, tag_list
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX, event_bus_name
from o2v_core.runtime_config import ControlPlaneConfig

from local_aws.events.rules import rule_queue_name
from tests.support import sagemaker_fake

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient
DEPLOYMENT = "demo"
BUS = event_bus_name(DEPLOYMENT)
ENDPOINT = "demo-embeddings"
PARAMETER = "/o2v/demo/serving-model"
KEY_ARN = f"arn:aws:kms:us-east-1:{sagemaker_fake.ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
CAPTURE_URI = "s3://demo-artifacts/data-capture/"
IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
ALARMS = ("demo-embeddings-5xx", "demo-embeddings-latency")
METRIC = "validation:mean_squared_error"
# The WitnessAnnouncements rule's queue, as local mode's deployment names it (the fixture creates it;
# moto finds a queue by the URL's last part).
WITNESS_QUEUE = rule_queue_name(
    DEPLOYMENT, next(spec.rule_id for spec in rules(DEPLOYMENT) if spec.target == ANNOUNCEMENT_WITNESS))

CONFIG = ControlPlaneConfig(
    deployment=DEPLOYMENT,
    event_bus_name=BUS,
    notification_topic_arn=f"arn:aws:sns:us-east-1:{sagemaker_fake.ACCOUNT}:demo-notifications",
    training_role_arn=f"arn:aws:iam::{sagemaker_fake.ACCOUNT}:role/demo-training",
    endpoint_name=ENDPOINT,
    serving_model_parameter=PARAMETER,
    model_role_arn=f"arn:aws:iam::{sagemaker_fake.ACCOUNT}:role/demo-model",
    image_uri=IMAGE,
    promotion_margin=0.0,
    endpoint_instance_type="ml.m5.large",
    artifact_bucket="demo-artifacts",
    announcement_witness_queue_url=f"https://sqs.us-east-1.amazonaws.com/{sagemaker_fake.ACCOUNT}/{WITNESS_QUEUE}",
    rollback_alarm_names=" , ".join(ALARMS),
    endpoint_min_capacity=1,
    endpoint_max_capacity=3,
    endpoint_target_invocations=100,
    endpoint_kms_key_arn=KEY_ARN,
    data_capture_s3_uri=CAPTURE_URI,
    data_capture_sampling_percentage=20,
    data_capture_kms_key_arn=KEY_ARN,
)


@functools.cache
def client_of(service: str, url: str) -> Any:
    """The tests' own client of ``service`` at ``url``, made once (a client takes longer to make
    than most calls take to answer; the fault matrices would otherwise spend a tenth of their
    time making clients)."""
    return boto3.client(service, endpoint_url=url, region_name=sagemaker_fake.REGION)  # type: ignore[call-overload]


@dataclass
class Aws:
    """The emulated account, seen through plain boto3 clients."""

    url: str  # the moto server
    sagemaker_url: str  # the SageMaker fake
    log: sagemaker_fake.ServingLog
    queue_url: str

    def client(self, service: str) -> Any:
        return client_of(service, self.sagemaker_url if service == "sagemaker" else self.url)

    @property
    def sagemaker(self) -> SageMakerClient:
        client: SageMakerClient = self.client("sagemaker")
        return client

    @property
    def ssm(self) -> SSMClient:
        client: SSMClient = self.client("ssm")
        return client

    def events(self) -> list[dict[str, Any]]:
        """Every event the promoter put on the project bus since the last call (via a rule -> SQS)."""
        sqs: SQSClient = self.client("sqs")
        received: list[dict[str, Any]] = []
        while True:
            answer = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def parameter(self, name: str) -> str | None:
        try:
            value: str = self.ssm.get_parameter(Name=name)["Parameter"]["Value"]
        except self.ssm.exceptions.ParameterNotFound:
            return None
        return value

    def record(self) -> dict[str, Any] | None:
        value = self.parameter(PARAMETER)
        if value is None:
            return None
        parsed: dict[str, Any] = json.loads(value)
        return parsed

    def scaling(self) -> tuple[int, int, float] | None:
        """The endpoint variant's scalable target and target value (moto's Application Auto Scaling)."""
        aas = self.client("application-autoscaling")
        rid = f"endpoint/{ENDPOINT}/variant/AllTraffic"
        targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[rid])["ScalableTargets"]
        if not targets:
            return None
        (policy,) = aas.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=rid)["ScalingPolicies"]
        value = float(policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        return targets[0]["MinCapacity"], targets[0]["MaxCapacity"], value

    def config_settings(self, config_name: str) -> tuple[str | None, dict[str, Any] | None]:
        """KmsKeyId and DataCaptureConfig of an endpoint config (None where it has none)."""
        config = self.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)
        return config.get("KmsKeyId") or None, cast(dict[str, Any], config.get("DataCaptureConfig")) or None

    def training_job(
        self,
        lineage: str,
        attempt: int,
        *,
        status: str = "Completed",
        tags: dict[str, str] | None = None,
        auxiliary: str | None = None,
        validation: str | None = None,
        role_arn: str = CONFIG.training_role_arn,
        output_path: str = f"s3://{CONFIG.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}",
        hyperparameters: dict[str, str] | None = None,
    ) -> str:
        """A finished training job of this deployment, with lineage tags (and extra tags), and an
        ``auxiliary`` channel at that S3 prefix when given (as `o2v launch` sends), and a
        ``validation`` channel with that S3 URI when given."""
        name = job_name(DEPLOYMENT, lineage, attempt)
        all_tags = Lineage(DEPLOYMENT, lineage, attempt, None).tags() | (tags or {})
        channels: dict[str, Any] = {}
        inputs: list[dict[str, Any]] = []
        if auxiliary is not None:
            inputs.append({
                "ChannelName": "auxiliary",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": auxiliary}},
            })
        if validation:
            inputs.append({"ChannelName": "validation", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": validation, "S3DataDistributionType": "FullyReplicated"}}})
        if inputs:
            channels["InputDataConfig"] = inputs
        if hyperparameters:
            channels["HyperParameters"] = hyperparameters
        self.sagemaker.create_training_job(
            TrainingJobName=name,
            **channels,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn=role_arn,
            OutputDataConfig={"S3OutputPath": output_path},
            ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
            StoppingCondition={"MaxRuntimeInSeconds": 3600},
            Tags=[{"Key": t["Key"], "Value": t["Value"]} for t in tag_list(all_tags)],
        )
        sagemaker_fake.set_status(name, status)  # SageMaker decides when a job ends; here the test does
        return name

    def tags_of_job(self, name: str) -> dict[str, str]:
        arn = self.sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
        return {t["Key"]: t["Value"] for t in self.sagemaker.list_tags(ResourceArn=arn)["Tags"]}

    def model_artifact(self, name: str) -> str:
        artifact: str = self.sagemaker.describe_training_job(TrainingJobName=name)["ModelArtifacts"]["S3ModelArtifacts"]
        return artifact


def succeeded(
    job: str,
    *,
    artifact: str,
    best: float,
    final: float | None = None,
    status: str = "Completed",
    metric: str = METRIC,
    lineage: str = "sts",
    attempt: int = 1,
) -> dict[str, Any]:
    """An EventBridge-shaped ``TrainingSucceeded`` event, as Lambda receives it."""
    detail = TrainingSucceeded(
        deployment=DEPLOYMENT,
        trainingJobName=job,
        lineage=lineage,
        attempt=attempt,
        metricName=metric,
        bestValue=best,
        bestEpoch=3,
        finalValue=best if final is None else final,
        modelArtifact=artifact,
        trainingJobStatus=status,
    )
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": TRAINING_SUCCEEDED,
        "source": SOURCE,
        "account": sagemaker_fake.ACCOUNT,
        "time": "2026-11-26T09:00:00Z",
        "region": sagemaker_fake.REGION,
        "resources": [],
        "detail": to_detail(detail),
    }
