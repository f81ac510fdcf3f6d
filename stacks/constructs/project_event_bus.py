"""The deployment's own event bus: only its control-plane roles may put events; all are archived."""

from __future__ import annotations

from aws_cdk import Aws, CfnResource, Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct
from o2v_core.resource_names import event_bus_name


def control_plane_role_path(deployment: str) -> str:
    """Every role allowed to put events on the project bus lives under this IAM path."""
    return f"/o2v/{deployment}/"


def control_plane_role_arn_pattern(deployment: str) -> str:
    return f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:role{control_plane_role_path(deployment)}*"


class ProjectEventBus(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, deployment: str, archive_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(
            self, "Bus", event_bus_name=event_bus_name(deployment), description=f"Object2Vec {deployment} retraining"
        )
        roles = control_plane_role_arn_pattern(deployment)
        # Same-account principals with events:PutEvents in an identity policy could otherwise
        # publish here too, so the allow for this deployment's roles comes with a deny for everyone else.
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ControlPlaneRolesMayPutEvents",
                principals=[iam.AccountPrincipal(Aws.ACCOUNT_ID)],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"ArnLike": {"aws:PrincipalArn": roles}},
            )
        )
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NobodyElseMayPutEvents",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"ArnNotLike": {"aws:PrincipalArn": roles}},
            )
        )
        # Every event of the bus is archived, so a fixed handler can replay what it missed.
        self.archive = self.bus.archive(
            "Archive",
            description=f"Every event of the {deployment} control plane, for replay",
            event_pattern=events.EventPattern(account=[Aws.ACCOUNT_ID]),
            retention=Duration.days(archive_retention_days),
        )
        # CDK renders an empty KmsKeyIdentifier when none is given; without it the archive uses
        # EventBridge's own key, which is what an empty value is meant to say.
        archive = self.archive.node.default_child
        assert isinstance(archive, CfnResource)
        archive.add_property_deletion_override("KmsKeyIdentifier")
