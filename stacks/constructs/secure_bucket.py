"""S3 buckets that block public access, enforce TLS, keep versions for a while and log access."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import CfnResource, Duration, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.constructs.data_key import pin_logical_id
from stacks.nag import checkov_skip, skip_lambda_checks


def _lifecycle(noncurrent_days: int) -> list[s3.LifecycleRule]:
    return [
        s3.LifecycleRule(
            id="ExpireNoncurrentVersions",
            noncurrent_version_expiration=Duration.days(noncurrent_days),
            abort_incomplete_multipart_upload_after=Duration.days(7),
        )
    ]


def expire_prefix(rule_id: str, prefix: str, days: int) -> s3.LifecycleRule:
    """Objects below ``prefix`` expire ``days`` after creation; the noncurrent version that
    expiry leaves behind (the bucket is versioned) is removed one day later, so the data is gone
    rather than hidden."""
    return s3.LifecycleRule(
        id=rule_id, prefix=prefix, expiration=Duration.days(days), noncurrent_version_expiration=Duration.days(1)
    )


class AccessLogBucket(Construct):
    """Destination of the server access logs of every other bucket.

    It logs no access of its own: logging into itself would log its own deliveries without end
    (cdk-nag's AwsSolutions-S1 accepts a bucket that receives other buckets' access logs).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logical_id: str,
        removal_policy: RemovalPolicy,
        noncurrent_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # S3 delivers server access logs only to buckets whose default encryption is SSE-S3;
            # SSE-KMS on a log destination makes delivery fail, so this bucket alone uses S3 keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=_lifecycle(noncurrent_days),
            removal_policy=removal_policy,
            auto_delete_objects=destroy,
        )
        pin_logical_id(self.bucket, logical_id)
        checkov_skip(
            self.bucket,
            "CKV_AWS_18",
            "This bucket is the access-log destination of the other buckets; logging its own access into "
            "itself would log each log delivery without end (cdk-nag's S1 accepts it for the same reason).",
        )


class SecureBucket(Construct):
    """A KMS-encrypted, versioned, TLS-only, private bucket that logs access."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        logical_id: str,
        key: kms.IKey,
        access_logs: s3.IBucket,
        access_log_prefix: str,
        removal_policy: RemovalPolicy,
        noncurrent_days: int,
        expiring_prefixes: Sequence[s3.LifecycleRule] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            versioned=True,
            lifecycle_rules=[*_lifecycle(noncurrent_days), *expiring_prefixes],
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=access_log_prefix,
            removal_policy=removal_policy,
            auto_delete_objects=removal_policy == RemovalPolicy.DESTROY,
        )
        pin_logical_id(self.bucket, logical_id)


AUTO_DELETE_PROVIDER_ID = "Custom::S3AutoDeleteObjectsCustomResourceProvider"


def drop_redundant_provider_dependency(stack: Stack) -> None:
    """CDK's auto-delete provider declares DependsOn on the role it already references by GetAtt.

    cfn-lint reports that as W3005; the GetAtt alone orders the two resources.
    """
    provider = stack.node.try_find_child(AUTO_DELETE_PROVIDER_ID)
    if provider is None:
        return
    handler = provider.node.try_find_child("Handler")
    role = provider.node.try_find_child("Role")
    if isinstance(handler, CfnResource) and isinstance(role, CfnResource):
        handler.remove_resource_dependency(role)
    if isinstance(handler, CfnResource):
        skip_lambda_checks(
            handler,
            "CDK's auto-delete handler runs only as a CloudFormation custom resource, which waits for its "
            "answer; a failure fails the stack operation visibly, so a dead-letter queue would keep nothing.",
        )
