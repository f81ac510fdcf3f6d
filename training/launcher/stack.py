"""The deployed training stack's CloudFormation outputs, read in one place.

The stack (``stacks/``) publishes these ``CfnOutput`` keys; ``o2v launch`` and
``o2v prepare --upload`` read them with ``describe_stacks``. If the stack renames an output,
change it here only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

OUTPUT_DEPLOYMENT = "DeploymentName"
OUTPUT_TRAINING_ROLE = "TrainingRoleArn"
OUTPUT_DATASET_BUCKET = "DatasetBucketName"
OUTPUT_ARTIFACT_BUCKET = "ArtifactBucketName"
OUTPUT_EVENT_BUS = "EventBusName"
REQUIRED_OUTPUTS = (OUTPUT_DEPLOYMENT, OUTPUT_TRAINING_ROLE, OUTPUT_DATASET_BUCKET, OUTPUT_ARTIFACT_BUCKET,
                    OUTPUT_EVENT_BUS)


class StackError(ValueError):
    """The stack is missing, or lacks an output the launcher needs."""


@dataclass(frozen=True)
class StackOutputs:
    stack_name: str
    deployment: str
    training_role_arn: str
    dataset_bucket: str
    artifact_bucket: str
    event_bus_name: str


def aws_session(region: str | None = None) -> boto3.Session:
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if not session.region_name:
        raise StackError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    return session


def raw_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as error:
        raise StackError(f"stack {stack_name!r}: {error}") from None
    if not stacks:
        raise StackError(f"stack {stack_name!r} not found")
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])
            if "OutputKey" in item and "OutputValue" in item}


def read_outputs(cloudformation: CloudFormationClient, stack_name: str) -> StackOutputs:
    outputs = raw_outputs(cloudformation, stack_name)
    missing = [key for key in REQUIRED_OUTPUTS if not outputs.get(key)]
    if missing:
        raise StackError(
            f"stack {stack_name!r} has no output(s) {', '.join(missing)}; found {', '.join(sorted(outputs)) or 'none'}"
        )
    return StackOutputs(
        stack_name=stack_name,
        deployment=outputs[OUTPUT_DEPLOYMENT],
        training_role_arn=outputs[OUTPUT_TRAINING_ROLE],
        dataset_bucket=outputs[OUTPUT_DATASET_BUCKET],
        artifact_bucket=outputs[OUTPUT_ARTIFACT_BUCKET],
        event_bus_name=outputs[OUTPUT_EVENT_BUS],
    )


def dataset_bucket(session: boto3.Session, stack_name: str) -> str:
    outputs = raw_outputs(session.client("cloudformation"), stack_name)
    if not outputs.get(OUTPUT_DATASET_BUCKET):
        raise StackError(f"stack {stack_name!r} has no output {OUTPUT_DATASET_BUCKET}")
    return outputs[OUTPUT_DATASET_BUCKET]
