"""What ``o2v launch`` would read from the stacks, for the local deployment (:mod:`local_aws.deployment`)."""

from __future__ import annotations

import json

from o2v_core import resource_names, s3_layout
from o2v_core.settings import Settings, settings_from_cdk_json

from local_aws.deployment import LocalNames
from training.demo.options import REPO_ROOT
from training.launcher.stack import StackOutputs


def load_settings(env_name: str) -> Settings:
    return settings_from_cdk_json(REPO_ROOT / "cdk.json", env_name)


def stack_outputs(names: LocalNames, settings: Settings, training_role_arn: str) -> StackOutputs:
    """What ``o2v launch`` would read from the data and training stacks' outputs."""
    return StackOutputs(
        deployment=names.deployment,
        training_role_arn=training_role_arn,
        dataset_bucket=names.dataset_bucket,
        artifact_bucket=names.artifact_bucket,
        training_output_uri=s3_layout.s3_uri(names.artifact_bucket, s3_layout.TRAINING_OUTPUT_PREFIX),
        kms_key_arn=None,  # the local buckets have no KMS key
        instance_type=settings.training.instance_type,
        first_attempt_hyperparameters=json.loads(settings.hyperparameters_json),
        event_bus_name=names.event_bus,
        origin=f"the local stand-in for stack {resource_names.training_stack_name(names.deployment)}",
    )
