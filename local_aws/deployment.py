"""The local "deployment": what the three stacks would create, named as the stacks name it.

:func:`deploy` creates the data stack's buckets, the training stack's roles, notification topic and
curve store table, and the control plane's settings through the stacks' own builder
(``o2v_core.function_settings.deployment_config``); the rules come with the event pump
(:func:`local_aws.events.rules.wire_rules`, which the tests use too).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from o2v_core import resource_names
from o2v_core.function_settings import deployment_config
from o2v_core.runtime_config import ControlPlaneConfig
from o2v_core.settings import Settings

from local_aws.curve_table import ensure_curve_table
from local_aws.events.rules import RuleRoute, wire_rules

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

# SageMaker assumes the training and model roles (the stacks' trust policy).
_SAGEMAKER_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


@dataclass(frozen=True)
class LocalNames:
    """Names of what the stacks would create, as the stacks name them.

    The bus, endpoint and SSM parameter names come from ``o2v_core.resource_names``, as in the
    stacks. Buckets and the topic get local names.
    """

    deployment: str

    @property
    def event_bus(self) -> str:
        return resource_names.event_bus_name(self.deployment)

    @property
    def dataset_bucket(self) -> str:
        return f"{self.deployment}-datasets-local"

    @property
    def artifact_bucket(self) -> str:
        return f"{self.deployment}-artifacts-local"

    @property
    def endpoint(self) -> str:
        return resource_names.endpoint_name(self.deployment)

    @property
    def serving_parameter(self) -> str:
        return resource_names.serving_model_parameter(self.deployment)

    @property
    def topic(self) -> str:
        return f"{self.deployment}-notifications"


@dataclass(frozen=True)
class LocalDeployment:
    """What :func:`deploy` created: the control plane's settings and the two roles."""

    config: ControlPlaneConfig
    training_role_arn: str
    model_role_arn: str


def create_buckets(s3: S3Client, buckets: Iterable[str]) -> None:
    """The data stack's buckets (datasets, artifacts: also the announcement ledger's)."""
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)


def create_roles(iam: Any, deployment: str) -> tuple[str, str]:  # Any: no IAM stubs in the venv
    """The training stack's training role and the serving stack's model role; their ARNs."""
    training_role, model_role = (
        iam.create_role(RoleName=f"{deployment}-{kind}", AssumeRolePolicyDocument=_SAGEMAKER_TRUST)["Role"]["Arn"]
        for kind in ("training", "model")
    )
    return training_role, model_role


def create_topic(sns: SNSClient, name: str) -> str:
    """The training stack's notification topic (operators subscribe to it); its ARN."""
    return sns.create_topic(Name=name)["TopicArn"]


def wire_control_plane(
    events: EventBridgeClient, sqs: SQSClient, dynamodb: DynamoDBClient, deployment: str, event_bus_name: str,
    targets: Collection[str] | None = None,
) -> list[RuleRoute]:
    """The training stack's control plane on the local services: the metric-line judge's curve store
    table, the project bus and the rules of ``o2v_core.events.rules()`` (those whose target is in
    ``targets``, where given: a caller that invokes the handlers itself wires none), each delivering
    to a queue of its own; the routes, in ``rules()`` order."""
    ensure_curve_table(dynamodb, deployment)
    return wire_rules(events, sqs, deployment, event_bus_name, targets)


def deploy(session: Any, settings: Settings, names: LocalNames, image_uri: str) -> LocalDeployment:
    """Create the buckets, the training and model roles and the SNS topic in the local services, and
    the control plane's settings, as the stacks would (the curve store table, bus and rules come with
    the event pump, through :func:`wire_control_plane`). ``image_uri``: the training image the
    stacks' settings name."""
    create_buckets(session.client("s3"), (names.dataset_bucket, names.artifact_bucket))
    training_role, model_role = create_roles(session.client("iam"), settings.deployment)
    topic = create_topic(session.client("sns"), names.topic)
    # The same builder as the stacks': what comes from cdk.json is derived there, once.
    config = deployment_config(
        settings,
        event_bus_name=names.event_bus,
        notification_topic_arn=topic,
        training_role_arn=training_role,
        endpoint_name=names.endpoint,
        serving_model_parameter=names.serving_parameter,
        model_role_arn=model_role,
        image_uri=image_uri,
        artifact_bucket=names.artifact_bucket,
    )
    return LocalDeployment(config, training_role, model_role)
