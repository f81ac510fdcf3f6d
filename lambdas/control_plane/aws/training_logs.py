"""A training job's ``#quality_metric`` lines from CloudWatch Logs.

Built-in algorithms write them to log group ``/aws/sagemaker/TrainingJobs``, one stream per
instance named ``<TrainingJobName>/algo-<n>-<epoch seconds>``. This is the per-epoch source that
works for Object2Vec without MetricDefinitions. Streams are found with DescribeLogStreams and the
prefix ``<job>/`` (so job ``x-a1`` never reads ``x-a10``'s streams), then read with
FilterLogEvents and the quoted term ``"#quality_metric"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError
from o2v_core.metric_lines import FILTER_PATTERN
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

MAX_STREAMS_PER_FILTER = 100  # FilterLogEvents.logStreamNames: at most 100


class TrainingLogs:
    def __init__(self, client: CloudWatchLogsClient | None = None, log_group: str = TRAINING_JOB_LOG_GROUP) -> None:
        self._given = client
        self.log_group = log_group

    @property
    def _logs(self) -> CloudWatchLogsClient:
        return self._given or clients.logs()

    def stream_names(self, job_name: str) -> list[str]:
        names: list[str] = []
        try:
            for page in self._logs.get_paginator("describe_log_streams").paginate(
                logGroupName=self.log_group, logStreamNamePrefix=f"{job_name}/"
            ):
                names.extend(stream["logStreamName"] for stream in page.get("logStreams", []))
        except ClientError as error:
            if clients.error_code(error) == "ResourceNotFoundException":
                return []  # no job has logged yet in this account and region
            raise
        return sorted(names)

    def metric_lines(self, job_name: str) -> list[str]:
        """Every ``#quality_metric`` message of the job, in time order per stream."""
        streams = self.stream_names(job_name)
        found: list[tuple[str, int, str]] = []
        for start in range(0, len(streams), MAX_STREAMS_PER_FILTER):
            batch = streams[start:start + MAX_STREAMS_PER_FILTER]
            for page in self._logs.get_paginator("filter_log_events").paginate(
                logGroupName=self.log_group, logStreamNames=batch, filterPattern=FILTER_PATTERN
            ):
                found.extend(
                    (event.get("logStreamName", ""), event.get("timestamp", 0), event.get("message", ""))
                    for event in page.get("events", [])
                )
        found.sort(key=lambda item: (item[0], item[1]))  # stable: same-millisecond lines keep log order
        return [message for _, _, message in found]
