"""The customer-managed KMS key that encrypts every dataset, artifact, queue and topic."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct
from o2v_core.resource_names import log_group_prefix

# The doc's Encrypt*, Decrypt*, ReEncrypt*, GenerateDataKey*, Describe*, spelled out.
LOGS_KEY_ACTIONS = [
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
]
MESSAGE_DELIVERY_SERVICES = ("events.amazonaws.com", "cloudwatch.amazonaws.com", "sns.amazonaws.com")


class DataKey(Construct):
    """A rotating key; retained in prod so that a stack deletion can't orphan encrypted data."""

    LOGICAL_ID = "DataKey"

    def __init__(self, scope: Construct, construct_id: str, *, deployment: str, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            description=f"Object2Vec {deployment}: datasets, artifacts, data capture and control-plane messages",
            enable_key_rotation=True,
            removal_policy=removal_policy,
            pending_window=Duration.days(7 if removal_policy == RemovalPolicy.DESTROY else 30),
        )
        # Pinned: a refactor of the construct tree must never replace the key.
        pin_logical_id(self.key, self.LOGICAL_ID)
        # The control plane's queues and topic are encrypted with this key. The services that
        # deliver into them (EventBridge to rule DLQs and the topic, CloudWatch alarms and SNS
        # subscriptions' DLQs) encrypt with it on this account's behalf, and only for this account.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowMessageDeliveryByAwsServices",
                principals=[iam.ServicePrincipal(service) for service in MESSAGE_DELIVERY_SERVICES],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        # CloudWatch Logs encrypts this deployment's Lambda log groups with the key, and only
        # those: the encryption context names the group (AWS doc
        # https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowLogGroupsOfThisDeployment",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=LOGS_KEY_ACTIONS,
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:"
                        f"{Aws.ACCOUNT_ID}:log-group:{log_group_prefix(deployment)}*"
                    }
                },
            )
        )


def pin_logical_id(construct: Construct, logical_id: str) -> None:
    """Fix a stateful resource's logical ID independently of where it sits in the tree."""
    from aws_cdk import CfnElement

    child = construct.node.default_child
    if not isinstance(child, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    child.override_logical_id(logical_id)
