"""Where things live inside the buckets; the role policies and the stack outputs both use it."""

from __future__ import annotations

from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX

# Dataset bucket: {DATASET_PREFIX}{lineage}/{train,validation,test,auxiliary}/...
DATASET_PREFIX = "datasets/"
# Artifact bucket: SageMaker's OutputDataConfig.S3OutputPath, and endpoint data capture.
__all__ = ["TRAINING_OUTPUT_PREFIX"]  # defined with the other names the Lambdas share
DATA_CAPTURE_PREFIX = "data-capture/"
# Artifact bucket: the control plane's announcement ledger ({prefix}{deployment}/claimed|sent/{key};
# control_plane.aws.announcements), so that an operator notification is put once.
ANNOUNCEMENTS_PREFIX = "control-plane/announcements/"
# Access-log bucket: one prefix per logged bucket.
DATASET_ACCESS_LOG_PREFIX = "datasets/"
ARTIFACT_ACCESS_LOG_PREFIX = "artifacts/"


def s3_uri(bucket_name: str, prefix: str) -> str:
    return f"s3://{bucket_name}/{prefix}"


def objects_arn(bucket_arn: str, prefix: str) -> str:
    return f"{bucket_arn}/{prefix}*"
