"""The metric-line judge's per-job curve store: one DynamoDB table per deployment.

Layout (key, time to live, what an item holds) is ``o2v_core.curve_store``'s; the name is
``o2v_core.resource_names.job_curve_table_name``. On-demand billing: the load follows the number
of metric lines, a few per job-epoch, with no capacity to plan. Encrypted with the data key, as
the queues, topic and log groups are (the functions' ``UseDataKey`` grant lets DynamoDB decrypt on
their behalf: https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/encryption.usagenotes.html).
Point-in-time recovery is on (cdk-nag AwsSolutions-DDB3), with the stack's removal policy.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct
from o2v_core import curve_store
from o2v_core.resource_names import job_curve_table_name


class JobCurveStore(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, deployment: str, key: kms.IKey, removal_policy: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.table = dynamodb.Table(
            self,
            "Table",
            table_name=job_curve_table_name(deployment),
            partition_key=dynamodb.Attribute(name=curve_store.PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            time_to_live_attribute=curve_store.TTL_ATTRIBUTE,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal_policy,
        )
