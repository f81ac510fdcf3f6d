"""SageMaker training jobs: list, describe, tag, stop, create. Thin boto3 data access.

AWS answers become small values: "not found" becomes ``None``, "already exists" (SageMaker's
``ResourceInUse`` for a duplicate job name) becomes ``False`` from :meth:`create`, and "not in
progress" from StopTrainingJob becomes ``False`` from :meth:`stop`. Every other error (throttling,
``ResourceLimitExceeded``, access denied) propagates, so Lambda's retries and the DLQ take over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import ClientError
from o2v_core.naming import tag_dict, tag_list
from o2v_core.served_assets import vocab_uri

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

IN_PROGRESS: Final[Literal["InProgress"]] = "InProgress"


@dataclass(frozen=True)
class TrainingJob:
    """A described training job with its tags: DescribeTrainingJob's answer and ListTags'."""

    name: str
    arn: str
    description: Mapping[str, Any]
    tags: Mapping[str, str]

    @property
    def status(self) -> str:
        return str(self.description.get("TrainingJobStatus", ""))

    @property
    def hyperparameters(self) -> dict[str, str]:
        return {str(key): str(value) for key, value in (self.description.get("HyperParameters") or {}).items()}

    @property
    def model_data_url(self) -> str | None:
        return (self.description.get("ModelArtifacts") or {}).get("S3ModelArtifacts") or None

    @property
    def vocab_uri(self) -> str | None:
        """Its auxiliary channel's vocab.json (o2v_core.served_assets)."""
        return vocab_uri(self.description)

    @property
    def validation_data(self) -> str | None:
        """The S3Uri of the job's ``validation`` channel, or None."""
        for channel in self.description.get("InputDataConfig") or []:
            if channel.get("ChannelName") == "validation":
                uri = ((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
                return str(uri) if uri else None
        return None

    @property
    def role_arn(self) -> str:
        return str(self.description.get("RoleArn", ""))


@dataclass(frozen=True)
class JobSummary:
    name: str
    arn: str


@dataclass(frozen=True)
class RecentJob:
    name: str
    arn: str
    status: str
    last_modified: datetime


class TrainingJobs:
    """Data access for this deployment's training jobs."""

    def __init__(self, client: SageMakerClient | None = None) -> None:
        self._given = client

    @property
    def _sm(self) -> SageMakerClient:
        return self._given or clients.sagemaker()

    def in_progress(self, prefix: str) -> list[JobSummary]:
        """In-progress jobs whose name starts with ``prefix`` (ListTrainingJobs, every page)."""
        jobs: list[JobSummary] = []
        for page in self._sm.get_paginator("list_training_jobs").paginate(
            StatusEquals=IN_PROGRESS, NameContains=prefix
        ):
            for summary in page.get("TrainingJobSummaries", []):
                if summary["TrainingJobName"].startswith(prefix):
                    jobs.append(JobSummary(summary["TrainingJobName"], summary["TrainingJobArn"]))
        return jobs

    def recent(self, prefix: str, *, since: datetime, limit: int) -> list[RecentJob]:
        """This deployment's jobs created after ``since``, newest first, at most ``limit``."""
        found: list[RecentJob] = []
        pages = self._sm.get_paginator("list_training_jobs").paginate(
            NameContains=prefix, CreationTimeAfter=since, SortBy="CreationTime", SortOrder="Descending"
        )
        for page in pages:
            for summary in page.get("TrainingJobSummaries", []):
                if summary["TrainingJobName"].startswith(prefix):
                    found.append(RecentJob(summary["TrainingJobName"], summary["TrainingJobArn"],
                                           summary["TrainingJobStatus"], summary["LastModifiedTime"]))
                if len(found) >= limit:
                    return found
        return found

    def describe(self, name: str) -> dict[str, Any] | None:
        """DescribeTrainingJob's answer, or None when no such job exists."""
        try:
            return dict(self._sm.describe_training_job(TrainingJobName=name))
        except ClientError as error:
            if clients.not_found(error):
                return None
            raise

    def tags(self, arn: str) -> dict[str, str]:
        tags: dict[str, str] = {}
        for page in self._sm.get_paginator("list_tags").paginate(ResourceArn=arn):
            tags.update(tag_dict([{"Key": tag["Key"], "Value": tag["Value"]} for tag in page.get("Tags", [])]))
        return tags

    def add_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        self._sm.add_tags(ResourceArn=arn, Tags=tag_list(tags))  # type: ignore[arg-type]

    def stop(self, name: str) -> bool:
        """Stop a running job. False when it is no longer in progress (nothing to stop)."""
        try:
            self._sm.stop_training_job(TrainingJobName=name)
        except ClientError as error:
            if clients.error_code(error) == "ValidationException":
                description = self.describe(name)
                if description is None or description.get("TrainingJobStatus") != IN_PROGRESS:
                    return False
            raise
        return True

    def create(self, request: Mapping[str, Any]) -> bool:
        """CreateTrainingJob. False when a job of that name already exists (ResourceInUse)."""
        try:
            self._sm.create_training_job(**request)
        except ClientError as error:
            if clients.already_exists(error):
                return False
            raise
        return True
