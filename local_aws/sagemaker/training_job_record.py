"""A training job of the local SageMaker API as SageMaker describes it: DescribeTrainingJob's
answer, ListTrainingJobs' summary, and the "SageMaker Training Job State Change" event's detail
(reference section 8a: times as epoch-millisecond strings, tags as a map).

What moves a job through its lifecycle is :mod:`local_aws.sagemaker.training_jobs`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o2v_core.events import SAGEMAKER_SOURCE, TRAINING_JOB_STATE_CHANGE

from local_aws.sagemaker.contract import described_algorithm_specification


def epoch_ms(value: float | None) -> str | None:
    return None if value is None else str(int(value * 1000))


@dataclass
class TrainingJob:
    """One training job: its SageMaker description and the runner that drives it."""

    request: dict[str, Any]
    arn: str
    root: Path
    created: float = field(default_factory=time.time)
    status: str = "InProgress"
    secondary: str = "Starting"
    failure_reason: str | None = None
    started: float | None = None
    ended: float | None = None
    modified: float = field(default_factory=time.time)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    final_metrics: dict[str, tuple[float, float]] = field(default_factory=dict)
    model_artifact: str | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = "Stopped"
    process: subprocess.Popen[bytes] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        name: str = self.request["TrainingJobName"]
        return name

    def describe(self) -> dict[str, Any]:
        req = self.request
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
            "HyperParameters": dict(req.get("HyperParameters", {})),
            "AlgorithmSpecification": described_algorithm_specification(req.get("AlgorithmSpecification", {})),
            "RoleArn": req["RoleArn"],
            "InputDataConfig": list(req.get("InputDataConfig", [])),
            "OutputDataConfig": dict(req["OutputDataConfig"]),
            "ResourceConfig": dict(req.get("ResourceConfig", {})),
            "StoppingCondition": dict(req.get("StoppingCondition", {"MaxRuntimeInSeconds": 86400})),
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "SecondaryStatusTransitions": [dict(item) for item in self.transitions],
            "FinalMetricDataList": [
                {"MetricName": name, "Value": value, "Timestamp": stamp}
                for name, (value, stamp) in sorted(self.final_metrics.items())
            ],
            "EnableNetworkIsolation": bool(req.get("EnableNetworkIsolation", False)),
            "EnableInterContainerTrafficEncryption": bool(req.get("EnableInterContainerTrafficEncryption", False)),
            "EnableManagedSpotTraining": bool(req.get("EnableManagedSpotTraining", False)),
        }
        for key in ("VpcConfig", "CheckpointConfig", "Environment", "RetryStrategy", "ExperimentConfig"):
            if key in req:
                out[key] = req[key]
        if self.model_artifact:
            out["ModelArtifacts"] = {"S3ModelArtifacts": self.model_artifact}
        if self.failure_reason:
            out["FailureReason"] = self.failure_reason
        if self.started is not None:
            out["TrainingStartTime"] = self.started
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
            seconds = max(1, int(self.ended - (self.started or self.created)))
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        return out

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "TrainingJobName": self.name,
            "TrainingJobArn": self.arn,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
            "TrainingJobStatus": self.status,
            "SecondaryStatus": self.secondary,
        }
        if self.ended is not None:
            out["TrainingEndTime"] = self.ended
        return out

    def event_detail(self) -> dict[str, Any]:
        """The ``detail`` of SageMaker's state-change event (reference section 8a)."""
        detail = self.describe()
        for key in ("CreationTime", "TrainingStartTime", "TrainingEndTime", "LastModifiedTime"):
            if key in detail:
                detail[key] = epoch_ms(detail[key])
        detail["SecondaryStatusTransitions"] = [
            {key: (epoch_ms(value) if key.endswith("Time") else value) for key, value in item.items()}
            for item in self.transitions
        ]
        detail["FinalMetricDataList"] = [
            {**item, "Timestamp": epoch_ms(item["Timestamp"])} for item in detail["FinalMetricDataList"]
        ]
        detail.setdefault("VpcConfig", {})
        detail["Tags"] = dict(self.tags)
        return detail


def state_change_entry(job: TrainingJob, region: str) -> dict[str, Any]:
    """The ``PutEvents`` entry SageMaker would send for ``job``'s current state."""
    return {
        "Source": SAGEMAKER_SOURCE,
        "DetailType": TRAINING_JOB_STATE_CHANGE,
        "Detail": json.dumps(job.event_detail()),
        "Resources": [job.arn],
    }
