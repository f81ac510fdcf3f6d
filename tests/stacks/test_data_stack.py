"""Data stack: the key and the buckets, their protection and their retention per environment."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from tests.stacks.conftest import Synthesized

# Pinned here, not imported from the stack: a refactor that would replace a bucket or the key
# (a new logical ID) must fail this test.
STATEFUL = {
    "DataKey": "AWS::KMS::Key",
    "MessageKey": "AWS::KMS::Key",
    "AccessLogBucket": "AWS::S3::Bucket",
    "DatasetBucket": "AWS::S3::Bucket",
    "ArtifactBucket": "AWS::S3::Bucket",
}
KMS_BUCKETS = ("DatasetBucket", "ArtifactBucket")


def test_stateful_logical_ids_are_pinned(synthesized: Synthesized) -> None:
    resources = synthesized.template_json("data")["Resources"]
    stateful = {
        logical_id: resource["Type"]
        for logical_id, resource in resources.items()
        if resource["Type"] in ("AWS::KMS::Key", "AWS::S3::Bucket")
    }
    assert stateful == STATEFUL


def test_key_rotates(synthesized: Synthesized) -> None:
    key = synthesized.template_json("data")["Resources"]["DataKey"]
    assert key["Properties"]["EnableKeyRotation"] is True


def test_every_bucket_blocks_public_access_and_is_versioned(synthesized: Synthesized) -> None:
    for logical_id, bucket in synthesized.resources("data", "AWS::S3::Bucket").items():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        noncurrent = [
            rule for rule in props["LifecycleConfiguration"]["Rules"] if "NoncurrentVersionExpiration" in rule
        ]
        assert noncurrent and noncurrent[0]["Status"] == "Enabled", logical_id
        assert noncurrent[0]["NoncurrentVersionExpiration"]["NoncurrentDays"] == (
            synthesized.settings.noncurrent_version_expiration_days
        )


def test_data_buckets_are_encrypted_with_the_key(synthesized: Synthesized) -> None:
    buckets = synthesized.resources("data", "AWS::S3::Bucket")
    for logical_id in KMS_BUCKETS:
        (rule,) = buckets[logical_id]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
        }


def test_access_log_bucket_uses_sse_s3_because_s3_cannot_deliver_logs_to_sse_kms(synthesized: Synthesized) -> None:
    bucket = synthesized.resources("data", "AWS::S3::Bucket")["AccessLogBucket"]
    (rule,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


def test_data_buckets_log_access_to_the_log_bucket(synthesized: Synthesized) -> None:
    buckets = synthesized.resources("data", "AWS::S3::Bucket")
    prefixes = set()
    for logical_id in KMS_BUCKETS:
        logging = buckets[logical_id]["Properties"]["LoggingConfiguration"]
        assert logging["DestinationBucketName"] == {"Ref": "AccessLogBucket"}
        prefixes.add(logging["LogFilePrefix"])
    assert len(prefixes) == len(KMS_BUCKETS)  # one prefix per bucket


def _bucket_policy_of(synthesized: Synthesized, bucket_logical_id: str) -> dict[str, Any]:
    for policy in synthesized.resources("data", "AWS::S3::BucketPolicy").values():
        if policy["Properties"]["Bucket"] == {"Ref": bucket_logical_id}:
            document: dict[str, Any] = policy["Properties"]["PolicyDocument"]
            return document
    raise AssertionError(f"{bucket_logical_id} has no bucket policy")


def test_every_bucket_denies_requests_without_tls(synthesized: Synthesized) -> None:
    for logical_id in STATEFUL:
        if STATEFUL[logical_id] != "AWS::S3::Bucket":
            continue
        statements = _bucket_policy_of(synthesized, logical_id)["Statement"]
        deny_plain_http = [
            s
            for s in statements
            if s["Effect"] == "Deny"
            and s["Action"] == "s3:*"
            and s["Principal"] == {"AWS": "*"}
            and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        ]
        assert deny_plain_http, logical_id
        resources = deny_plain_http[0]["Resource"]
        assert {"Fn::GetAtt": [logical_id, "Arn"]} in resources  # the bucket and its objects


# prod keeps them except when their own creation rolls back (RetainExceptOnCreate: reference 11c,
# tests/stacks/test_deletion_policies.py); a replacement keeps the old one.
@pytest.mark.parametrize(
    ("env_name", "deletion", "replacement"), [("dev", "Delete", "Delete"), ("prod", "RetainExceptOnCreate", "Retain")]
)
def test_retention_follows_the_environment(
    env_name: str, deletion: str, replacement: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(env_name)
    resources = synthesized.template_json("data")["Resources"]
    for logical_id in STATEFUL:
        assert resources[logical_id]["DeletionPolicy"] == deletion, logical_id
        assert resources[logical_id]["UpdateReplacePolicy"] == replacement, logical_id


def test_dev_buckets_empty_themselves_on_delete_and_prod_buckets_never_do(dev: Synthesized, prod: Synthesized) -> None:
    dev_template = dev.template("data")
    dev_template.resource_count_is("Custom::S3AutoDeleteObjects", 3)
    for bucket in ("AccessLogBucket", *KMS_BUCKETS):
        dev_template.has_resource_properties("Custom::S3AutoDeleteObjects", {"BucketName": {"Ref": bucket}})
    prod.template("data").resource_count_is("Custom::S3AutoDeleteObjects", 0)
    assert prod.template_json("data")["Resources"]["DataKey"]["Properties"]["PendingWindowInDays"] == 30


def test_outputs_name_the_buckets_and_the_key(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("data")["Outputs"]
    stack = synthesized.stack_name("data")
    assert outputs["DatasetBucketName"]["Value"] == {"Ref": "DatasetBucket"}
    assert outputs["ArtifactBucketName"]["Value"] == {"Ref": "ArtifactBucket"}
    assert outputs["AccessLogBucketName"]["Value"] == {"Ref": "AccessLogBucket"}
    assert outputs["DataKeyArn"]["Value"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert outputs["DataKeyArn"]["Export"] == {"Name": f"{stack}:DataKeyArn"}
    assert outputs["DatasetS3Uri"]["Value"] == {"Fn::Join": ["", ["s3://", {"Ref": "DatasetBucket"}, "/datasets/"]]}
    synthesized.template("data").has_output("TrainingOutputS3Uri", {"Value": Match.any_value()})
