"""IAM condition blocks that bound what the control plane may create, and whom SageMaker acts for.

Condition keys are those the Service Authorization Reference lists for each action (checked
against the definitions bundled with ``parliament`` 1.6.3, ``iam_definition.json``):

* ``sagemaker:CreateTrainingJob``: ``sagemaker:InstanceTypes`` (ArrayOfString),
  ``sagemaker:MaxRuntimeInSeconds`` (Numeric), ``sagemaker:NetworkIsolation`` (Bool),
  ``sagemaker:OutputKmsKey`` (ARN). There is **no** key for the output S3 path: where a job
  writes is bounded by the training role instead, whose only ``s3:PutObject`` is below the
  artifact bucket's training-output prefix (``TrainingExecutionRole``); the output *key* is
  bounded here, to the data key.
* ``sagemaker:CreateModel``: ``sagemaker:NetworkIsolation``.
* ``sagemaker:CreateEndpointConfig``: ``sagemaker:InstanceTypes``.
* ``events:PutEvents``: ``events:source`` and ``events:detail-type`` (per entry).

A Bool or Numeric condition on a key the request lacks does not match, so a request without
``EnableNetworkIsolation`` or ``StoppingCondition`` is denied. ``ForAllValues`` on an absent
array key *does* match (IAM docs, "Multivalued context keys"), hence the extra ``Null`` test.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws


@dataclass(frozen=True)
class TrainingJobLimits:
    """What a CreateTrainingJob of the control plane may ask for (from the configured settings)."""

    instance_types: tuple[str, ...]
    max_runtime_seconds: int
    output_key_arn: str


def _instance_types(instance_types: Sequence[str]) -> dict[str, dict[str, object]]:
    return {
        "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": list(instance_types)},
        "Null": {"sagemaker:InstanceTypes": "false"},
    }


def network_isolated() -> dict[str, dict[str, object]]:
    return {"Bool": {"sagemaker:NetworkIsolation": "true"}}


def training_job_conditions(limits: TrainingJobLimits) -> dict[str, dict[str, object]]:
    conditions = {**network_isolated(), **_instance_types(limits.instance_types)}
    conditions["NumericLessThanEquals"] = {"sagemaker:MaxRuntimeInSeconds": limits.max_runtime_seconds}
    conditions["ArnEquals"] = {"sagemaker:OutputKmsKey": limits.output_key_arn}
    return conditions


def endpoint_config_conditions(instance_types: Sequence[str]) -> dict[str, dict[str, object]]:
    return _instance_types(instance_types)


def put_events_conditions(source: str, detail_types: Sequence[str]) -> dict[str, dict[str, object]]:
    if not detail_types:
        raise ValueError("a function that puts events must say which detail types (FunctionSpec.emits)")
    return {"StringEquals": {"events:source": [source], "events:detail-type": list(detail_types)}}


def sagemaker_source_conditions() -> dict[str, dict[str, object]]:
    """Trust-policy conditions against the cross-service confused deputy: SageMaker may assume the
    role only on behalf of this account's resources in this region (the pattern AWS documents in
    https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html)."""
    return {
        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:{Aws.PARTITION}:sagemaker:{Aws.REGION}:{Aws.ACCOUNT_ID}:*"},
    }
