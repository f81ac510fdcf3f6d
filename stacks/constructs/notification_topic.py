"""The operators' SNS topic: KMS-encrypted, TLS-only, with an optional email subscription."""

from __future__ import annotations

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.secure_queue import FailureQueue


class NotificationTopic(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: str, key: kms.IKey, email: str | None
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"Object2Vec {deployment} retraining",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic policy replaces SNS's default one, so CloudWatch alarms of this account are
        # allowed explicitly (EventBridge rule targets add their own statement).
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        self.subscription_dlq: sqs.IQueue | None = None
        if email is not None:
            self.subscription_dlq = FailureQueue(
                self, "EmailDlq", key=key, purpose="dead-letter queue of the email subscription"
            ).queue
            self.topic.add_subscription(subscriptions.EmailSubscription(email, dead_letter_queue=self.subscription_dlq))
