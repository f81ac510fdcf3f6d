"""A batch transform job of the local SageMaker API as SageMaker describes it: DescribeTransformJob's
answer, ListTransformJobs' summary, and the "SageMaker Transform Job State Change" event.

Sources:

* DescribeTransformJob and TransformJobSummary: their shapes in botocore's sagemaker service model
  (the required members ``TransformJobName``, ``TransformJobArn``, ``TransformJobStatus``,
  ``ModelName``, ``TransformInput``, ``TransformResources``, ``CreationTime``; the request's other
  members echoed back).
* The event: the SageMaker developer guide, automating-sagemaker-with-eventbridge.html, section
  "SageMaker transform job state change": source ``aws.sagemaker``, the job's ARN in
  ``resources``, a detail with the job's description, ``FailureReason`` "if the value of
  TransformJobStatus is Failed", times as ISO 8601 strings (``"2018-10-06T12:26:13Z"``, unlike the
  training job event's epoch milliseconds) and ``Tags`` as a map.

What moves a job through its states is :mod:`local_aws.sagemaker.transform_jobs`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from o2v_core.events import SAGEMAKER_SOURCE, TRANSFORM_JOB_STATE_CHANGE

# TransformJobStatus (botocore's service model): InProgress, Completed, Failed, Stopping, Stopped.
FINISHED = ("Completed", "Failed", "Stopped")
# Members of CreateTransformJob's request that DescribeTransformJob answers with as they were sent.
ECHOED = ("ModelName", "MaxConcurrentTransforms", "ModelClientConfig", "MaxPayloadInMB", "BatchStrategy",
          "Environment", "TransformInput", "TransformOutput", "DataCaptureConfig", "TransformResources",
          "DataProcessing", "ExperimentConfig")


def iso_time(value: float) -> str:
    return datetime.fromtimestamp(value, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class TransformJob:
    """One transform job: its SageMaker description and what stops it."""

    request: dict[str, Any]
    arn: str
    created: float = field(default_factory=time.time)
    status: str = "InProgress"
    failure_reason: str | None = None
    started: float | None = None
    ended: float | None = None
    modified: float = field(default_factory=time.time)
    stop_requested: threading.Event = field(default_factory=threading.Event)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        name: str = self.request["TransformJobName"]
        return name

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "TransformJobStatus": self.status,
            "CreationTime": self.created,
            **{key: json.loads(json.dumps(self.request[key])) for key in ECHOED if key in self.request},
        }
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.started is not None:
            out["TransformStartTime"] = self.started
        if self.ended is not None:
            out["TransformEndTime"] = self.ended
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "TransformJobStatus": self.status,
        }
        if self.ended is not None:
            out["TransformEndTime"] = self.ended
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        return out

    def event_detail(self) -> dict[str, Any]:
        """The ``detail`` of SageMaker's transform job state-change event (module docstring)."""
        detail = self.describe()
        for key in ("CreationTime", "TransformStartTime", "TransformEndTime"):
            if key in detail:
                detail[key] = iso_time(detail[key])
        detail["Tags"] = dict(self.tags)
        return detail


def state_change_entry(job: TransformJob) -> dict[str, Any]:
    """The ``PutEvents`` entry SageMaker would send for ``job``'s current state (default bus)."""
    return {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": TRANSFORM_JOB_STATE_CHANGE,
        "Detail": json.dumps(job.event_detail()),
        "Resources": [job.arn],
    }
