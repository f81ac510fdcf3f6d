"""CloudWatch Logs subscription deliveries to Lambda: the payload, decoded and encoded. Defined once.

CloudWatch Logs invokes a subscribed function asynchronously with ``{"awslogs": {"data": ...}}``
where ``data`` is Base64 of GZIP of a JSON document ("When log events are sent to the receiving
service, they are Base64 encoded and compressed with the GZIP format", PutSubscriptionFilter,
https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutSubscriptionFilter.html)
with the fields ``owner``, ``logGroup``, ``logStream``, ``subscriptionFilters``, ``messageType``
(``DATA_MESSAGE``, or ``CONTROL_MESSAGE`` for the reachability check CloudWatch Logs sends) and
``logEvents`` (``id``, ``timestamp``, ``message``), as in the example of Powertools' schema
(https://docs.aws.amazon.com/powertools/typescript/2.16.0/api/types/_aws-lambda-powertools_parser.types.CloudWatchLogsEvent.html).

The metric-line judge decodes with :func:`decode`; local mode's delivery and the tests encode
with :func:`encode`, so both sides follow the one documented format.

Standard library only (ships in the Lambda asset).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DATA_MESSAGE = "DATA_MESSAGE"
CONTROL_MESSAGE = "CONTROL_MESSAGE"


class MalformedDelivery(ValueError):
    """The event is not a CloudWatch Logs subscription delivery; the message says what is wrong."""


@dataclass(frozen=True)
class LogEvent:
    id: str
    timestamp: int
    message: str


@dataclass(frozen=True)
class LogBatch:
    owner: str
    log_group: str
    log_stream: str
    subscription_filters: tuple[str, ...]
    message_type: str
    log_events: tuple[LogEvent, ...] = field(default=())

    def as_json(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "logGroup": self.log_group,
            "logStream": self.log_stream,
            "subscriptionFilters": list(self.subscription_filters),
            "messageType": self.message_type,
            "logEvents": [{"id": e.id, "timestamp": e.timestamp, "message": e.message} for e in self.log_events],
        }


def encode(batch: LogBatch) -> dict[str, Any]:
    """The Lambda event CloudWatch Logs sends for ``batch``."""
    raw = gzip.compress(json.dumps(batch.as_json()).encode("utf-8"))
    return {"awslogs": {"data": base64.b64encode(raw).decode("ascii")}}


def decode(event: Mapping[str, Any]) -> LogBatch:
    """The batch in a subscription delivery; :class:`MalformedDelivery` names the broken part."""
    awslogs = event.get("awslogs")
    if not isinstance(awslogs, Mapping) or not isinstance(awslogs.get("data"), str):
        raise MalformedDelivery("field 'awslogs.data': missing; not a CloudWatch Logs subscription delivery")
    try:
        document = json.loads(gzip.decompress(base64.b64decode(awslogs["data"], validate=True)))
    except (binascii.Error, OSError, EOFError, ValueError) as error:
        raise MalformedDelivery(f"field 'awslogs.data': not Base64 of GZIP of JSON ({error})") from None
    if not isinstance(document, Mapping):
        raise MalformedDelivery("field 'awslogs.data': the JSON is not an object")
    try:
        events: Sequence[Mapping[str, Any]] = document.get("logEvents") or []
        return LogBatch(
            owner=str(document.get("owner", "")),
            log_group=str(document["logGroup"]),
            log_stream=str(document["logStream"]),
            subscription_filters=tuple(str(name) for name in document.get("subscriptionFilters") or []),
            message_type=str(document["messageType"]),
            log_events=tuple(LogEvent(str(e.get("id", "")), int(e["timestamp"]), str(e["message"])) for e in events),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise MalformedDelivery(f"field 'awslogs.data': {type(error).__name__}: {error} in the delivery") from None
