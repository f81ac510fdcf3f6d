"""Stateful resources: the key, the dataset and artifact buckets, and their access logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from constructs import Construct
from o2v_core import resource_names as names
from o2v_core import s3_layout
from o2v_core.settings import Settings

from stacks.constructs.data_key import DataKey, MessageKey
from stacks.constructs.secure_bucket import (
    AccessLogBucket,
    SecureBucket,
    drop_redundant_provider_dependency,
    expire_prefix,
)
from stacks.constructs.serving_model_record import ServingModelRecord
from stacks.removal import removal_policy


@dataclass(frozen=True)
class DataRefs:
    """The data stack's exports, imported by name in the stacks that use them.

    Named exports (rather than CDK's generated cross-stack references) keep every ARN readable
    in the templates and in cdk-nag finding ids, and block deleting the data stack while a
    consumer stack still uses it.
    """

    key_arn: str
    message_key_arn: str  # the operators' topic and the control plane's queues (MessageKey)
    dataset_bucket_name: str
    dataset_bucket_arn: str
    artifact_bucket_name: str
    artifact_bucket_arn: str


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(settings.retain_data)
        noncurrent_days = settings.noncurrent_version_expiration_days

        self.key = DataKey(self, "DataKey", deployment=settings.deployment, removal_policy=removal).key
        self.message_key = MessageKey(
            self, "MessageKey", deployment=settings.deployment, removal_policy=removal
        ).key
        self.access_logs = AccessLogBucket(
            self, "AccessLogs", logical_id="AccessLogBucket", removal_policy=removal, noncurrent_days=noncurrent_days
        ).bucket
        self.datasets = SecureBucket(
            self,
            "Datasets",
            logical_id="DatasetBucket",
            key=self.key,
            access_logs=self.access_logs,
            access_log_prefix=s3_layout.DATASET_ACCESS_LOG_PREFIX,
            removal_policy=removal,
            noncurrent_days=noncurrent_days,
        ).bucket
        self.artifacts = SecureBucket(
            self,
            "Artifacts",
            logical_id="ArtifactBucket",
            key=self.key,
            access_logs=self.access_logs,
            access_log_prefix=s3_layout.ARTIFACT_ACCESS_LOG_PREFIX,
            removal_policy=removal,
            noncurrent_days=noncurrent_days,
            # Data capture holds users' text: it expires after the configured number of days.
            expiring_prefixes=[
                expire_prefix(
                    "ExpireDataCapture", s3_layout.DATA_CAPTURE_PREFIX, settings.serving.data_capture_expiration_days
                )
            ],
        ).bucket

        drop_redundant_provider_dependency(self)
        self.serving_record = ServingModelRecord(
            self,
            "ServingModelRecord",
            deployment=settings.deployment,
            removal_policy=removal,
            log_retention_days=settings.log_retention_days,
            key_arn=self.key.key_arn,
        )

        exports = {
            names.OUTPUT_DATA_KEY: (self.key.key_arn, "KMS key of datasets, artifacts and data capture"),
            names.OUTPUT_MESSAGE_KEY: (self.message_key.key_arn, "KMS key of the operators' topic and the queues"),
            names.OUTPUT_DATASET_BUCKET: (
                self.datasets.bucket_name,
                "Bucket for the train/validation/test/auxiliary channels",
            ),
            names.OUTPUT_DATASET_BUCKET_ARN: (self.datasets.bucket_arn, "ARN of the dataset bucket"),
            names.OUTPUT_ARTIFACT_BUCKET: (
                self.artifacts.bucket_name,
                "Bucket for training artifacts and data capture",
            ),
            names.OUTPUT_ARTIFACT_BUCKET_ARN: (self.artifacts.bucket_arn, "ARN of the artifact bucket"),
        }
        for name, (value, description) in exports.items():
            CfnOutput(self, name, value=value, description=description, export_name=self.export_name(name))
        outputs = {
            names.OUTPUT_DATASET_URI: (
                s3_layout.s3_uri(self.datasets.bucket_name, s3_layout.DATASET_PREFIX),
                "Upload each lineage's channels under this prefix",
            ),
            names.OUTPUT_TRAINING_OUTPUT_URI: (
                s3_layout.s3_uri(self.artifacts.bucket_name, s3_layout.TRAINING_OUTPUT_PREFIX),
                "S3OutputPath for training jobs",
            ),
            names.OUTPUT_DATA_CAPTURE_URI: (
                s3_layout.s3_uri(self.artifacts.bucket_name, s3_layout.DATA_CAPTURE_PREFIX),
                "Where the endpoint's data capture lands",
            ),
            names.OUTPUT_ACCESS_LOG_BUCKET: (self.access_logs.bucket_name, "Server access logs of the other buckets"),
            names.OUTPUT_SERVING_MODEL_PARAMETER: (
                self.serving_record.record_parameter,
                "The promoter's served-model record",
            ),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)

    def export_name(self, output: str) -> str:
        return f"{self.stack_name}:{output}"

    def refs(self) -> DataRefs:
        """Import tokens for a consumer stack (which must also ``add_dependency`` on this one)."""

        def imported(output: str) -> str:
            return Fn.import_value(self.export_name(output))

        return DataRefs(
            key_arn=imported(names.OUTPUT_DATA_KEY),
            message_key_arn=imported(names.OUTPUT_MESSAGE_KEY),
            dataset_bucket_name=imported(names.OUTPUT_DATASET_BUCKET),
            dataset_bucket_arn=imported(names.OUTPUT_DATASET_BUCKET_ARN),
            artifact_bucket_name=imported(names.OUTPUT_ARTIFACT_BUCKET),
            artifact_bucket_arn=imported(names.OUTPUT_ARTIFACT_BUCKET_ARN),
        )
