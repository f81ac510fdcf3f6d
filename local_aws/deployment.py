"""The local "deployment": what the three stacks would create, named as the stacks name it.

:func:`deploy` creates the data stack's buckets, the training stack's roles, notification topic and
curve store table, and the control plane's settings through the stacks' own builder
(``o2v_core.function_settings.deployment_config``); the rules come with the event pump
(:func:`local_aws.events.rules.wire_rules`, which the tests use too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from o2v_core import resource_names
from o2v_core.function_settings import deployment_config
from o2v_core.runtime_config import ControlPlaneConfig
from o2v_core.settings import Settings

from local_aws.curve_table import ensure_curve_table


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


def deploy(session: Any, settings: Settings, names: LocalNames, image_uri: str) -> LocalDeployment:
    """Create the buckets, the training and model roles, the SNS topic and the curve store table in
    the local services, and the control plane's settings, as the stacks would (the rules come with
    the event pump). ``image_uri``: the training image the stacks' settings name."""
    s3, iam, sns = session.client("s3"), session.client("iam"), session.client("sns")
    deployment = settings.deployment
    for bucket in (names.dataset_bucket, names.artifact_bucket):
        s3.create_bucket(Bucket=bucket)
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    training_role, model_role = (
        iam.create_role(RoleName=f"{deployment}-{kind}", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        for kind in ("training", "model")
    )
    topic = sns.create_topic(Name=names.topic)["TopicArn"]
    ensure_curve_table(session.client("dynamodb"), deployment)  # the metric-line judge's curve store
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
