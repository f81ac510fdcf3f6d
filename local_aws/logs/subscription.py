"""CloudWatch Logs subscription filters, delivered by the local Logs the way AWS delivers them.

moto stores subscription filters but cannot invoke a Lambda function with them (it would run the
function in Docker, and it ignores the filter pattern), so local mode plays CloudWatch Logs' part
for every function spec with a ``subscription`` (``o2v_core.functions``), the same specs the
training stack deploys as ``AWS::Logs::SubscriptionFilter``:

* it makes sure the log group exists, as the stack's custom resource does;
* it reads the group's new events that match the filter pattern (FilterLogEvents with the spec's
  pattern, moto's own implementation of the pattern syntax), every ``poll_interval`` seconds;
* it hands them over as AWS does: one delivery per log stream, whose ``awslogs.data`` is Base64
  of GZIP of the JSON document with ``owner``, ``logGroup``, ``logStream``,
  ``subscriptionFilters``, ``messageType`` ``DATA_MESSAGE`` and the ``logEvents`` batch (``id``,
  ``timestamp``, ``message``), built by :func:`o2v_core.log_subscription.encode`, the encoder the
  tests check against the documented format
  (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/SubscriptionFilters.html#LambdaFunctionExample:
  "The data attribute in the Lambda record is Base64 encoded and compressed with the gzip format").

CloudWatch Logs invokes a Lambda destination asynchronously
(https://docs.aws.amazon.com/lambda/latest/dg/services-cloudwatchlogs.html), so the pump invokes
each delivery with Lambda's asynchronous retries and dead-letter queue, as for a rule's target.

Events are read back over a short look-back window and de-duplicated by event id, so a line
flushed late by its writer (an older timestamp than lines already read) is still delivered, once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from o2v_core.functions import FunctionSpec, LogSubscription
from o2v_core.log_subscription import DATA_MESSAGE, LogBatch, LogEvent

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

LOOKBACK_MS = 30_000  # how far back each read starts before the newest line already delivered


@dataclass
class SubscriptionReader:
    """New matching events of one subscription's log group, batched per stream as AWS batches them."""

    spec: FunctionSpec
    deployment: str
    logs: CloudWatchLogsClient
    account: str
    since_ms: int = 0  # the newest timestamp delivered so far
    _seen: dict[str, int] = field(default_factory=dict)  # event id -> timestamp, inside the look-back

    @property
    def subscription(self) -> LogSubscription:
        assert self.spec.subscription is not None, f"{self.spec.function_id} has no subscription"
        return self.spec.subscription

    @property
    def filter_name(self) -> str:
        return self.subscription.filter_name(self.deployment, self.spec.function_id)

    def ensure_log_group(self) -> None:
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=self.subscription.log_group)

    def _matching(self) -> Iterator[dict[str, Any]]:
        start = max(0, self.since_ms - LOOKBACK_MS)
        for page in self.logs.get_paginator("filter_log_events").paginate(
            logGroupName=self.subscription.log_group, filterPattern=self.subscription.filter_pattern, startTime=start
        ):
            yield from page.get("events", [])  # type: ignore[misc]

    def read(self) -> list[LogBatch]:
        """The batches to deliver now: each new matching event once, grouped by stream, in log order."""
        by_stream: dict[str, list[LogEvent]] = {}
        for event in self._matching():
            event_id, timestamp = str(event.get("eventId", "")), int(event.get("timestamp", 0))
            if event_id in self._seen:
                continue
            self._seen[event_id] = timestamp
            by_stream.setdefault(str(event.get("logStreamName", "")), []).append(
                LogEvent(event_id, timestamp, str(event.get("message", "")))
            )
            self.since_ms = max(self.since_ms, timestamp)
        horizon = self.since_ms - LOOKBACK_MS
        self._seen = {key: stamp for key, stamp in self._seen.items() if stamp >= horizon}
        return [
            LogBatch(
                owner=self.account,
                log_group=self.subscription.log_group,
                log_stream=stream,
                subscription_filters=(self.filter_name,),
                message_type=DATA_MESSAGE,
                log_events=tuple(sorted(events, key=lambda e: e.timestamp)),
            )
            for stream, events in by_stream.items()
        ]

