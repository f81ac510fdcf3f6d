"""The fake cloud the control-plane tests run against, over HTTP: the SageMaker fake
(tests/support/sagemaker_fake.py) and a moto server for the other services, set up the way the training
stack sets up AWS (project bus, the rules from ``o2v_core.events.rules()``, one SQS
queue standing in for each rule's target), plus realistic Object2Vec training jobs and logs."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from o2v_core.events import (
    ANNOUNCEMENT_WITNESS,
    SAGEMAKER_SOURCE,
    SOURCE,
    TRAINING_JOB_STATE_CHANGE,
    Detail,
    to_detail,
)
from o2v_core.metric_lines import format_line
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP, event_bus_name
from o2v_core.runtime_config import ControlPlaneConfig

from local_aws.deployment import create_buckets, wire_control_plane

# A realistic request and its parts, re-exported under the tests' names for them.
from local_aws.sagemaker.job_requests import BASE_HYPERPARAMETERS as BASE_HYPERPARAMETERS
from local_aws.sagemaker.job_requests import DEPLOYMENT as DEPLOYMENT
from local_aws.sagemaker.job_requests import IMAGE as IMAGE
from local_aws.sagemaker.job_requests import KMS_KEY as KMS_KEY
from local_aws.sagemaker.job_requests import PATIENT as PATIENT
from local_aws.sagemaker.job_requests import ROLE as ROLE
from local_aws.sagemaker.job_requests import job_request as job_request
from tests.support import moto_ext, sagemaker_fake

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sqs import SQSClient

BUS = event_bus_name(DEPLOYMENT)
ARTIFACT_BUCKET = "o2v-dev-artifacts"  # also the announcement ledger's (control_plane.aws.announcements)
# A regression curve that improves, bottoms out at epoch 4 and then climbs: the detector's
# default config fires at epoch 7 (epochs 5, 6, 7 all more than 5 % above the smoothed minimum,
# 0.1 = the median of epochs 2-4).
DIVERGING = [(0, 0.2, 0.21), (1, 0.15, 0.14), (2, 0.12, 0.1), (3, 0.1, 0.08), (4, 0.095, 0.06),
             (5, 0.106, 0.045), (6, 0.112, 0.035), (7, 0.121, 0.027), (8, 0.132, 0.02)]
HEALTHY = [(0, 0.2, 0.21), (1, 0.15, 0.14), (2, 0.12, 0.11), (3, 0.1, 0.095), (4, 0.092, 0.088),
           (5, 0.088, 0.083), (6, 0.086, 0.08)]


def as_delivered(detail: Detail) -> dict[str, Any]:
    """The event as EventBridge hands it to a target (a Lambda function, or an SQS queue here)."""
    return {
        "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": detail.detail_type,
        "source": SOURCE, "account": sagemaker_fake.ACCOUNT, "time": "2026-11-26T10:00:00Z",
        "region": sagemaker_fake.REGION, "resources": [], "detail": to_detail(detail),
    }


def log_header(job: str) -> list[str]:
    return [
        "Docker entrypoint called with argument(s): train",
        "[11/26/2026 09:40:01 INFO 139921880303424] Reading default configuration from "
        "/opt/amazon/lib/python3.8/site-packages/algorithm/default-input.json",
        f"[11/26/2026 09:40:01 INFO 139921880303424] Final configuration: {{'dropout': '0.2', 'job': '{job}'}}",
    ]


def epoch_lines(points: Sequence[tuple[int, float, float | None]], metric: str) -> list[str]:
    """Per-epoch lines in the style of SageMaker's Object2Vec container: train, then validation."""
    lines = []
    for epoch, validation, train in points:
        stamp = f"[11/26/2026 09:{41 + epoch:02d}:07 INFO 139921880303424]"
        lines.append(f"{stamp} Epoch: {epoch}, batches: 90, num_examples: 5749, 2512.4 samples/sec")
        if train is not None:
            lines.append(f"{stamp} {format_line('train', metric, train, epoch=epoch)}")
        lines.append(f"{stamp} {format_line('validation', metric, validation, epoch=epoch)}")
    return lines


@dataclass
class Cloud:
    endpoint: str
    deployment: str = DEPLOYMENT
    queues: dict[str, str] = field(default_factory=dict)  # rule target -> queue URL

    def __post_init__(self) -> None:
        self.sm: SageMakerClient = boto3.client("sagemaker")
        self.logs: CloudWatchLogsClient = boto3.client("logs")
        self.events: EventBridgeClient = boto3.client("events")
        self.sqs: SQSClient = boto3.client("sqs")

    # -- control-plane wiring ---------------------------------------------------------------

    def config(self, **overrides: Any) -> ControlPlaneConfig:
        values: dict[str, Any] = {
            "deployment": self.deployment,
            "event_bus_name": BUS,
            "notification_topic_arn":
                f"arn:aws:sns:{sagemaker_fake.REGION}:{sagemaker_fake.ACCOUNT}:o2v-dev-notifications",
            "training_role_arn": ROLE,
            "artifact_bucket": ARTIFACT_BUCKET,
            "announcement_witness_queue_url": self.queues.get(ANNOUNCEMENT_WITNESS, ""),
        }
        values.update(overrides)
        return ControlPlaneConfig(**values)

    def use_config(self, monkeypatch: pytest.MonkeyPatch, **overrides: Any) -> ControlPlaneConfig:
        config = self.config(**overrides)
        for key, value in config.to_env().items():
            monkeypatch.setenv(key, value)
        return config

    def wire_rules(self) -> None:
        """The project bus and every rule of ``rules()``, as local mode wires them (each target replaced
        by an SQS queue, the event delivered as Lambda receives it); the judge's curve store table; and
        the artifact bucket (the data stack's): local mode's deployment (local_aws.deployment)."""
        create_buckets(boto3.client("s3"), [ARTIFACT_BUCKET])
        for route in wire_control_plane(self.events, self.sqs, boto3.client("dynamodb"), self.deployment, BUS):
            # The first rule of each target (the notifications topic has two: NotifyOperators, and
            # AnnounceTransformJobEnd for SageMaker's transform-job events, which no test here puts).
            self.queues.setdefault(route.spec.target, route.queue_url)

    def delivered(self, target: str) -> list[dict[str, Any]]:
        """Every event the rules delivered to ``target`` since the last call (the queue is drained)."""
        found: list[dict[str, Any]] = []
        while True:
            answer = self.sqs.receive_message(QueueUrl=self.queues[target], MaxNumberOfMessages=10)
            messages = answer.get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queues[target], ReceiptHandle=message["ReceiptHandle"])

    def sagemaker_state_change(self, name: str) -> dict[str, Any]:
        """The event SageMaker puts on the default bus for a job, built from DescribeTrainingJob."""
        job = self.sm.describe_training_job(TrainingJobName=name)
        detail = {
            "TrainingJobName": name,
            "TrainingJobArn": job["TrainingJobArn"],
            "TrainingJobStatus": job["TrainingJobStatus"],
            "SecondaryStatus": job["SecondaryStatus"],
            "HyperParameters": job.get("HyperParameters", {}),
            "ModelArtifacts": job.get("ModelArtifacts", {}),
            "Tags": {},
        }
        if "FailureReason" in job:
            detail["FailureReason"] = job["FailureReason"]
        return {
            "version": "0", "id": "844e2571-85d4-695f-b930-0153b71dcb42",
            "detail-type": TRAINING_JOB_STATE_CHANGE, "source": SAGEMAKER_SOURCE,
            "account": sagemaker_fake.ACCOUNT, "time": "2026-11-26T10:00:00Z", "region": sagemaker_fake.REGION,
            "resources": [job["TrainingJobArn"]], "detail": detail,
        }

    def put_on_default_bus(self, event: Mapping[str, Any]) -> None:
        """Put a SageMaker-shaped event on the default bus, as SageMaker does."""
        self.events.put_events(Entries=[{
            "Source": event["source"], "DetailType": event["detail-type"],
            "Detail": json.dumps(event["detail"]), "Resources": list(event["resources"]),
        }])

    # -- training jobs ------------------------------------------------------------------------

    def job_request(self, lineage: str, attempt: int = 1, **kwargs: Any) -> dict[str, Any]:
        return job_request(lineage, attempt, **{"deployment": self.deployment, **kwargs})

    def create_job(
        self, lineage: str, attempt: int = 1, *, status: str = "InProgress", failure_reason: str | None = None,
        **kwargs: Any,
    ) -> str:
        request = self.job_request(lineage, attempt, **kwargs)
        self.sm.create_training_job(**request)
        # SageMaker decides when a job moves on; in the fake, the test does.
        sagemaker_fake.set_status(request["TrainingJobName"], status, failure_reason=failure_reason)
        return str(request["TrainingJobName"])

    def write_log(self, job: str, lines: Sequence[str], *, host: str = "algo-1") -> None:
        """Append lines to the job's CloudWatch Logs stream, as the training container does."""
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
        stream = f"{job}/{host}-1764150000"
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_stream(logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream)
        now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days
        answer = self.logs.put_log_events(
            logGroupName=TRAINING_JOB_LOG_GROUP, logStreamName=stream,
            logEvents=[{"timestamp": now, "message": line} for line in lines],
        )
        assert "rejectedLogEventsInfo" not in answer, answer

    def training_jobs(self) -> list[str]:
        pages = self.sm.get_paginator("list_training_jobs").paginate()
        return sorted(summary["TrainingJobName"] for page in pages for summary in page["TrainingJobSummaries"])

    def tags(self, name: str) -> dict[str, str]:
        arn = self.sm.describe_training_job(TrainingJobName=name)["TrainingJobArn"]
        return {tag["Key"]: tag["Value"] for tag in self.sm.list_tags(ResourceArn=arn)["Tags"]}

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass
        moto_ext.reset()
        sagemaker_fake.reset()

