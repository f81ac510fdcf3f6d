"""The deployed stacks' CloudFormation outputs, read in one place.

``stacks/app_builder.py`` deploys ``<deployment>-data`` and ``<deployment>-training``. Their
names and ``CfnOutput`` keys come from ``o2v_core.resource_names``, which the stacks use too;
this module says which of them the launcher needs. ``o2v launch`` and ``o2v prepare --upload``
read them with ``describe_stacks``; ``o2v demo`` builds :class:`StackOutputs` itself, with what
it created in place of the stacks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.resource_names import (
    OUTPUT_ARTIFACT_BUCKET,
    OUTPUT_DATA_KEY,
    OUTPUT_DATASET_BUCKET,
    OUTPUT_EVENT_BUS,
    OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS,
    OUTPUT_INSTANCE_TYPE,
    OUTPUT_TRAINING_OUTPUT_URI,
    OUTPUT_TRAINING_ROLE,
    data_stack_name,
    training_stack_name,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

# The outputs the launcher reads (their keys are defined in o2v_core.resource_names, with the stacks').
DATA_REQUIRED = (OUTPUT_DATASET_BUCKET, OUTPUT_ARTIFACT_BUCKET, OUTPUT_TRAINING_OUTPUT_URI)
DATA_OPTIONAL = (OUTPUT_DATA_KEY,)
TRAINING_REQUIRED = (OUTPUT_TRAINING_ROLE,)
TRAINING_OPTIONAL = (OUTPUT_INSTANCE_TYPE, OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS, OUTPUT_EVENT_BUS)


class StackError(ValueError):
    """A stack is missing, or lacks an output that is needed."""


@dataclass(frozen=True)
class StackOutputs:
    """What a launch needs from the deployed stacks (:func:`read_outputs`), or from what stands in
    for them (``o2v demo``)."""

    deployment: str
    training_role_arn: str
    dataset_bucket: str
    artifact_bucket: str
    training_output_uri: str
    kms_key_arn: str | None
    instance_type: str | None
    first_attempt_hyperparameters: dict[str, Any]
    event_bus_name: str | None
    origin: str = "the given stack outputs"  # where they came from, for messages


def aws_session(region: str | None = None) -> boto3.Session:
    session = boto3.Session(region_name=region) if region else boto3.Session()
    if not session.region_name:
        raise StackError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    return session


def raw_outputs(cloudformation: CloudFormationClient, stack_name: str) -> dict[str, str]:
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except (ClientError, BotoCoreError) as error:
        raise StackError(f"stack {stack_name!r}: {error}") from None
    if not stacks:
        raise StackError(f"stack {stack_name!r} not found")
    return {item["OutputKey"]: item["OutputValue"] for item in stacks[0].get("Outputs", [])
            if "OutputKey" in item and "OutputValue" in item}


def _require(outputs: dict[str, str], keys: tuple[str, ...], stack_name: str) -> None:
    missing = [key for key in keys if not outputs.get(key)]
    if missing:
        found = ", ".join(sorted(outputs)) or "none"
        raise StackError(f"stack {stack_name!r} has no output(s) {', '.join(missing)}; found {found}")


def read_outputs(cloudformation: CloudFormationClient, deployment: str) -> StackOutputs:
    data_name, training_name = data_stack_name(deployment), training_stack_name(deployment)
    data = raw_outputs(cloudformation, data_name)
    training = raw_outputs(cloudformation, training_name)
    _require(data, DATA_REQUIRED, data_name)
    _require(training, TRAINING_REQUIRED, training_name)
    first_attempt: dict[str, Any] = {}
    if training.get(OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS):
        try:
            first_attempt = json.loads(training[OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS])
        except json.JSONDecodeError:
            raise StackError(f"stack {training_name!r}: output {OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS} "
                             "is not a JSON object") from None
    return StackOutputs(
        deployment=deployment,
        training_role_arn=training[OUTPUT_TRAINING_ROLE],
        dataset_bucket=data[OUTPUT_DATASET_BUCKET],
        artifact_bucket=data[OUTPUT_ARTIFACT_BUCKET],
        training_output_uri=data[OUTPUT_TRAINING_OUTPUT_URI],
        kms_key_arn=data.get(OUTPUT_DATA_KEY) or None,
        instance_type=training.get(OUTPUT_INSTANCE_TYPE) or None,
        first_attempt_hyperparameters=first_attempt,
        event_bus_name=training.get(OUTPUT_EVENT_BUS) or None,
        origin=f"stack {training_name}",
    )


def dataset_bucket(session: boto3.Session, deployment: str) -> str:
    name = data_stack_name(deployment)
    outputs = raw_outputs(session.client("cloudformation"), name)
    _require(outputs, (OUTPUT_DATASET_BUCKET,), name)
    return outputs[OUTPUT_DATASET_BUCKET]
