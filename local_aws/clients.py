"""What the local services share: SageMaker-style errors, the boto3 clients of the local (moto)
services, S3 URIs, List* paging, tags, and the batching forwarder into the local CloudWatch Logs."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from o2v_core import served_assets

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client


class ApiError(Exception):
    """An error the API returns to the caller: SageMaker's error code and message."""

    def __init__(self, code: str, message: str, status: int = 400, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.fields = fields or {}  # the error shape's other members (ModelError's OriginalStatusCode, ...)


@dataclass
class Clients:
    """boto3 clients for the local (moto) services, shared by all jobs and endpoints."""

    s3: S3Client
    logs: CloudWatchLogsClient
    cloudwatch: CloudWatchClient
    events: EventBridgeClient
    account: str
    region: str


def split_s3_uri(uri: str) -> tuple[str, str]:
    try:
        return served_assets.split_s3_uri(uri)
    except ValueError as error:
        raise ApiError("ValidationException", str(error)) from None


class LogForwarder:
    """Buffers lines for one log stream of the local CloudWatch Logs and flushes them in batches."""

    def __init__(self, clients: Clients, group: str, stream: str, *, interval: float = 0.25) -> None:
        self._clients = clients
        self.group = group
        self.stream = stream
        self._pending: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._interval = interval
        self._stop = threading.Event()
        with contextlib.suppress(clients.logs.exceptions.ResourceAlreadyExistsException):
            clients.logs.create_log_group(logGroupName=group)
        with contextlib.suppress(clients.logs.exceptions.ResourceAlreadyExistsException):
            clients.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self._thread = threading.Thread(target=self._run, name=f"logs:{stream}", daemon=True)
        self._thread.start()

    def add(self, message: str) -> None:
        # PutLogEvents refuses an event whose message is empty (InputLogEvent.message has "min": 1
        # in the botocore service model, logs/2014-03-28): one blank line used to lose its whole
        # batch. Blank lines stay in the local log file; CloudWatch gets the others.
        if not message:
            return
        with self._lock:
            self._pending.append({"timestamp": int(time.time() * 1000), "message": message})

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        for start in range(0, len(batch), 1000):
            try:
                self._clients.logs.put_log_events(
                    logGroupName=self.group, logStreamName=self.stream, logEvents=batch[start : start + 1000]  # type: ignore[arg-type]
                )
            except Exception as error:  # the job goes on; the local log file keeps every line
                print(f"local logs: could not put {len(batch)} lines to {self.stream}: {error}", file=sys.stderr)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()


class ListedJob(Protocol):
    """What List*Jobs filters and sorts on: a training or a transform job."""

    @property
    def name(self) -> str: ...

    status: str
    created: float
    modified: float


JobT = TypeVar("JobT", bound=ListedJob)


def select_jobs(jobs: list[JobT], params: Mapping[str, Any], *, default_order: str) -> list[JobT]:
    """ListTrainingJobs' and ListTransformJobs' filters (StatusEquals, NameContains, the four time
    bounds) and sort (SortBy Name | CreationTime | Status, default CreationTime; SortOrder)."""
    if "StatusEquals" in params:
        jobs = [job for job in jobs if job.status == params["StatusEquals"]]
    if "NameContains" in params:
        jobs = [job for job in jobs if params["NameContains"].lower() in job.name.lower()]
    for key, attribute, after in (("CreationTimeAfter", "created", True), ("CreationTimeBefore", "created", False),
                                  ("LastModifiedTimeAfter", "modified", True),
                                  ("LastModifiedTimeBefore", "modified", False)):
        if key in params:
            bound = _timestamp(params[key])
            jobs = [job for job in jobs if (getattr(job, attribute) > bound) == after]
    keys: dict[str, Callable[[JobT], Any]] = {
        "Name": lambda job: job.name, "CreationTime": lambda job: job.created, "Status": lambda job: job.status}
    descending = params.get("SortOrder", default_order) != "Ascending"
    return sorted(jobs, key=keys.get(params.get("SortBy", "CreationTime"), keys["CreationTime"]), reverse=descending)


def _timestamp(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def page(items: list[Any], params: Mapping[str, Any], key: str, default_size: int) -> dict[str, Any]:
    """One page of a List* answer: ``MaxResults`` items from ``NextToken`` on, and the next token.

    The token is opaque to callers (botocore's paginators pass it back unchanged), so an offset
    will do. ``default_size`` when the request has no MaxResults: ListEndpoints documents 10 ("This
    value defaults to 10"); where an operation documents none, 10 as well, and no caller of ours
    depends on it (they page until no NextToken comes back).
    """
    start = int(params.get("NextToken") or 0)
    size = int(params.get("MaxResults") or default_size)
    result: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        result["NextToken"] = str(start + size)
    return result


def tags_dict(tags: list[Mapping[str, str]] | None) -> dict[str, str]:
    return {item["Key"]: item["Value"] for item in tags or []}
