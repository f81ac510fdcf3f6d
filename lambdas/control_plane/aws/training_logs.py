"""A training job's ``#quality_metric`` lines from CloudWatch Logs.

Built-in algorithms write them to log group ``/aws/sagemaker/TrainingJobs``, one stream per
instance named ``<TrainingJobName>/algo-<n>-<epoch seconds>``. This is the per-epoch source that
works for Object2Vec without MetricDefinitions. Streams are found with DescribeLogStreams and the
prefix ``<job>/`` (so job ``x-a1`` never reads ``x-a10``'s streams), then read with
FilterLogEvents and the quoted term ``"#quality_metric"``.

A :class:`Pacer` (the safety net's) spaces each API's calls to a fixed rate, so a sweep over many
jobs takes a fixed share of the account's quota instead of bursting into it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError
from o2v_core.metric_lines import FILTER_PATTERN
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

T = TypeVar("T", bound=Mapping[str, Any])
MAX_STREAMS_PER_FILTER = 100  # FilterLogEvents.logStreamNames: at most 100


class Pacer:
    """At most ``per_second`` calls per second of each API: a call waits for its slot."""

    def __init__(self, per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if per_second <= 0:
            raise ValueError(f"pace must be > 0 calls per second, got {per_second}")
        self.interval = 1.0 / per_second
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, api: str) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(api, now))
            self._next[api] = slot + self.interval
        if slot > now:
            self._sleep(slot - now)


class TrainingLogs:
    def __init__(self, client: CloudWatchLogsClient | None = None, log_group: str = TRAINING_JOB_LOG_GROUP,
                 pacer: Pacer | None = None) -> None:
        self._given = client
        self.log_group = log_group
        self.pacer = pacer

    def _pace(self, api: str) -> None:
        if self.pacer is not None:
            self.pacer.wait(api)

    @property
    def _logs(self) -> CloudWatchLogsClient:
        return self._given or clients.logs()

    def stream_names(self, job_name: str) -> list[str]:
        names: list[str] = []
        try:
            for page in self._paced("DescribeLogStreams", self._logs.get_paginator("describe_log_streams").paginate(
                logGroupName=self.log_group, logStreamNamePrefix=f"{job_name}/"
            )):
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
            for page in self._paced("FilterLogEvents", self._logs.get_paginator("filter_log_events").paginate(
                logGroupName=self.log_group, logStreamNames=batch, filterPattern=FILTER_PATTERN
            )):
                found.extend(
                    (event.get("logStreamName", ""), event.get("timestamp", 0), event.get("message", ""))
                    for event in page.get("events", [])
                )
        found.sort(key=lambda item: (item[0], item[1]))  # stable: same-millisecond lines keep log order
        return [message for _, _, message in found]

    def _paced(self, api: str, pages: Iterable[T]) -> Iterator[T]:
        """Each page is one call: wait for its slot before the first, and before each further page."""
        self._pace(api)
        for page in pages:
            yield page
            if page.get("nextToken"):
                self._pace(api)
