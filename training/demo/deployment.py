"""The local "deployment": what the stacks would create, named as the stacks name it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from o2v_core import resource_names, s3_layout
from o2v_core.function_settings import deployment_config
from o2v_core.runtime_config import ControlPlaneConfig
from o2v_core.settings import Settings, settings_from_cdk_json

from training.demo.options import REPO_ROOT
from training.launcher.launch import training_image
from training.launcher.stack import StackOutputs


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

    def stack_outputs(self, settings: Settings, training_role_arn: str) -> StackOutputs:
        """What ``o2v launch`` would read from the data and training stacks' outputs."""
        return StackOutputs(
            deployment=self.deployment,
            training_role_arn=training_role_arn,
            dataset_bucket=self.dataset_bucket,
            artifact_bucket=self.artifact_bucket,
            training_output_uri=s3_layout.s3_uri(self.artifact_bucket, s3_layout.TRAINING_OUTPUT_PREFIX),
            kms_key_arn=None,  # the local buckets have no KMS key
            instance_type=settings.training.instance_type,
            first_attempt_hyperparameters=json.loads(settings.hyperparameters_json),
            event_bus_name=self.event_bus,
            origin=f"the local stand-in for stack {resource_names.training_stack_name(self.deployment)}",
        )


def load_settings(env_name: str) -> Settings:
    return settings_from_cdk_json(REPO_ROOT / "cdk.json", env_name)


@dataclass(frozen=True)
class LocalDeployment:
    """What :func:`deploy` created: the control plane's settings and the two roles."""

    config: ControlPlaneConfig
    training_role_arn: str
    model_role_arn: str


def deploy(session: Any, settings: Settings, names: LocalNames, region: str) -> LocalDeployment:
    """Create the buckets, the training and model roles and the SNS topic in the local services,
    and the control plane's settings, as the stacks would (the rules come with the event pump)."""
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
    # The same builder as the stacks': what comes from cdk.json is derived there, once.
    config = deployment_config(
        settings,
        event_bus_name=names.event_bus,
        notification_topic_arn=topic,
        training_role_arn=training_role,
        endpoint_name=names.endpoint,
        serving_model_parameter=names.serving_parameter,
        model_role_arn=model_role,
        image_uri=training_image(region),
        artifact_bucket=names.artifact_bucket,
    )
    return LocalDeployment(config, training_role, model_role)
