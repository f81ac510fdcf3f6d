"""Data access for the endpoint's autoscaling: Application Auto Scaling's scalable target and its
target-tracking policy on the promoter's endpoint variant.

The promoter and the reconciler own the endpoint, so they own its scaling too (docs/promotion.md,
"Who owns what"). No ``RoleARN`` is ever passed: Application Auto Scaling then creates and uses its
service-linked role ``AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint`` itself, where
naming that role before it exists fails with "Unable to assume IAM role"
(``../shared/reference/object2vec.md`` section 11d).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal, cast

from botocore.exceptions import ClientError
from o2v_core.endpoint_deployment import Scaling, scalable_resource_id

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_application_autoscaling import ApplicationAutoScalingClient
    from mypy_boto3_application_autoscaling.type_defs import TargetTrackingScalingPolicyConfigurationTypeDef

NAMESPACE: Final[Literal["sagemaker"]] = "sagemaker"
DIMENSION: Final[Literal["sagemaker:variant:DesiredInstanceCount"]] = "sagemaker:variant:DesiredInstanceCount"
POLICY_NAME = "InvocationsPerInstance"
PREDEFINED_METRIC = "SageMakerVariantInvocationsPerInstance"


__all__ = ["DIMENSION", "NAMESPACE", "POLICY_NAME", "EndpointAutoscaling", "Scaling"]


class EndpointAutoscaling:
    def __init__(self, client: ApplicationAutoScalingClient | None = None) -> None:
        self._given = client

    @property
    def _aas(self) -> ApplicationAutoScalingClient:
        return self._given or cast("ApplicationAutoScalingClient", clients.client("application-autoscaling"))

    def registered(self, endpoint_name: str) -> bool:
        """Whether the variant has a scalable target (DescribeScalableTargets)."""
        return bool(self._targets(endpoint_name))

    def _targets(self, endpoint_name: str) -> list[Any]:
        return list(self._aas.describe_scalable_targets(
            ServiceNamespace=NAMESPACE, ResourceIds=[scalable_resource_id(endpoint_name)], ScalableDimension=DIMENSION
        )["ScalableTargets"])

    def current(self, endpoint_name: str) -> Scaling | None:
        """The registered target and its target-tracking policy; None when no target is registered.

        A target without our policy reads as target value 0 (never equal to a configured one)."""
        rid = scalable_resource_id(endpoint_name)
        targets = self._targets(endpoint_name)
        if not targets:
            return None
        policies = self._aas.describe_scaling_policies(
            ServiceNamespace=NAMESPACE, ResourceId=rid, ScalableDimension=DIMENSION, PolicyNames=[POLICY_NAME]
        )["ScalingPolicies"]
        target_value = 0.0
        for policy in policies:
            if "TargetTrackingScalingPolicyConfiguration" in policy:
                target_value = float(policy["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        return Scaling(targets[0]["MinCapacity"], targets[0]["MaxCapacity"], target_value)

    def apply(self, endpoint_name: str, scaling: Scaling) -> None:
        """Register (or update) the scalable target, then put (or update) the target-tracking policy.

        Both calls create or update in place (RegisterScalableTarget, PutScalingPolicy), so a
        repeat after a crash between them completes what the first began."""
        rid = scalable_resource_id(endpoint_name)
        self._aas.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            MinCapacity=scaling.min_capacity,
            MaxCapacity=scaling.max_capacity,
        )
        self._aas.put_scaling_policy(
            PolicyName=POLICY_NAME,
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration=cast("TargetTrackingScalingPolicyConfigurationTypeDef", {
                "TargetValue": scaling.target_invocations,
                "PredefinedMetricSpecification": {"PredefinedMetricType": PREDEFINED_METRIC},
            }),
        )

    def deregister(self, endpoint_name: str) -> bool:
        """Deregister the variant's scalable target (its policies go with it); False when none was.

        Described first, so that no error code decides it; one deregistered meanwhile answers
        ObjectNotFoundException (botocore model, DeregisterScalableTarget)."""
        if not self.registered(endpoint_name):
            return False
        try:
            self._aas.deregister_scalable_target(
                ServiceNamespace=NAMESPACE, ResourceId=scalable_resource_id(endpoint_name), ScalableDimension=DIMENSION
            )
        except ClientError as error:
            if clients.error_code(error) == "ObjectNotFoundException":
                return False
            raise
        return True
