"""Lambda log groups: named below the deployment's prefix, encrypted with the data key, retained.

CloudWatch Logs encrypts with a customer-managed key only when the key policy allows the regional
logs principal, for the group's ARN as encryption context (DataKey.allow_log_groups; AWS doc
https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct
from o2v_core.resource_names import function_log_group_name


def encrypted_log_group(
    scope: Construct,
    construct_id: str,
    *,
    deployment: str,
    function_id: str,
    key_arn: str,
    retention_days: int,
    removal_policy: RemovalPolicy,
) -> logs.LogGroup:
    log_group = logs.LogGroup(
        scope,
        construct_id,
        log_group_name=function_log_group_name(deployment, function_id),
        encryption_key=kms.Key.from_key_arn(scope, f"{construct_id}Key", key_arn),
        removal_policy=removal_policy,
    )
    cfn = log_group.node.default_child
    assert isinstance(cfn, logs.CfnLogGroup)
    # Set on the CloudFormation resource: LogGroup's own enum lacks some values CloudWatch accepts.
    cfn.retention_in_days = retention_days
    return log_group
