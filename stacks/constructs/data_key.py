"""The customer-managed KMS keys: the data key (datasets, artifacts, data capture, tables, logs) and
the message key (the control plane's topic and queues, into which AWS services deliver)."""

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
# Services that deliver into the topic and queues encrypted with the message key, on no caller's
# role: they need the key policy itself to let them encrypt (kms:GenerateDataKey) and decrypt.
UNCONDITIONED_DELIVERY_SERVICES = ("events.amazonaws.com", "sns.amazonaws.com")
ALARM_DELIVERY_SERVICE = "cloudwatch.amazonaws.com"
DELIVERY_KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


def rotating_key(scope: Construct, logical_id: str, *, description: str, removal_policy: RemovalPolicy) -> kms.Key:
    """A key that rotates yearly, with a pinned logical ID: a refactor of the construct tree must never
    replace a key."""
    key = kms.Key(
        scope,
        "Key",
        description=description,
        enable_key_rotation=True,
        removal_policy=removal_policy,
        pending_window=Duration.days(7 if removal_policy == RemovalPolicy.DESTROY else 30),
    )
    pin_logical_id(key, logical_id)
    return key


class DataKey(Construct):
    """A rotating key; retained in prod so that a stack deletion can't orphan encrypted data.

    No AWS service principal may use it on its own: the services that deliver messages use the
    :class:`MessageKey`, so no statement here is ever relaxed for them."""

    LOGICAL_ID = "DataKey"

    def __init__(self, scope: Construct, construct_id: str, *, deployment: str, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = rotating_key(
            self,
            self.LOGICAL_ID,
            description=f"Object2Vec {deployment}: datasets, artifacts, data capture, tables and logs",
            removal_policy=removal_policy,
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


class MessageKey(Construct):
    """A rotating key for the operators' topic and every queue of the control plane only.

    EventBridge delivers into the topic (NotifyOperators), the witness queue and the rule-target
    dead-letter queues; SNS into the email subscription's dead-letter queue; CloudWatch alarms into
    the topic. The SNS Developer Guide (sns-key-management.html) says: "Adding the aws:SourceAccount
    and aws:SourceArn to a AWS KMS policy is not supported for EventBridge-to-encrypted topics"
    (reference 11b): a key statement for events.amazonaws.com with those conditions silently stops
    every notification. Whether EventBridge's deliveries to an encrypted SQS queue, or SNS's to a
    subscription DLQ, carry aws:SourceAccount to KMS no AWS source says (11b: unconfirmed;
    docs/verification.md). So this key lets events.amazonaws.com and sns.amazonaws.com use it with
    no source condition, which works in either case. SQS-managed SSE would spare the queues a key
    policy, but the topic needs a customer-managed key anyway (the policy of an AWS managed key such
    as aws/sns cannot be changed to name events.amazonaws.com: KMS Developer Guide, "AWS managed
    keys"), and one key for all of them keeps one rule.

    What bounds the confused deputy instead: the topic and queue policies let EventBridge publish or
    send only for this deployment's own rules of this account (aws:SourceArn on the resource policy,
    stacks/constructs/event_rules.py), and this key encrypts nothing but these messages (never the
    datasets, artifacts or logs, which stay on the :class:`DataKey`). CloudWatch alarms are documented
    to work with aws:SourceAccount on the key (11b, AWS MDAA grantCloudWatchAlarmsTopicAccess), so
    that statement keeps it.
    """

    LOGICAL_ID = "MessageKey"

    def __init__(self, scope: Construct, construct_id: str, *, deployment: str, removal_policy: RemovalPolicy) -> None:
        super().__init__(scope, construct_id)
        self.key = rotating_key(
            self,
            self.LOGICAL_ID,
            description=f"Object2Vec {deployment}: operators' topic and the control plane's queues",
            removal_policy=removal_policy,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowDeliveryByEventBridgeAndSns",
                principals=[iam.ServicePrincipal(service) for service in UNCONDITIONED_DELIVERY_SERVICES],
                actions=DELIVERY_KEY_ACTIONS,
                resources=["*"],
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal(ALARM_DELIVERY_SERVICE)],
                actions=DELIVERY_KEY_ACTIONS,
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )


def pin_logical_id(construct: Construct, logical_id: str) -> None:
    """Fix a stateful resource's logical ID independently of where it sits in the tree."""
    from aws_cdk import CfnElement

    child = construct.node.default_child
    if not isinstance(child, CfnElement):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to pin")
    child.override_logical_id(logical_id)
