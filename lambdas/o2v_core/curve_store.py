"""The per-job curve store: what the metric-line judge keeps of each job between two deliveries.

Defined once (stdlib only): the table's key and attribute names, how a delivered line becomes an
attribute, and how the stored item becomes the lines a curve is built from. The stacks
(``stacks/constructs/job_curve_store.py``) and local mode create the table from
:data:`PARTITION_KEY` and :data:`TTL_ATTRIBUTE`; :mod:`control_plane.aws.curve_store` reads and
writes it.

One item per training job (partition key :data:`PARTITION_KEY` = the job name):

* each ``#quality_metric`` line delivered for the job is one attribute ``l<hash>`` whose value
  is ``[timestamp, log stream, message]``. The name is a hash of those three, so a duplicate
  delivery (Lambda's at-least-once asynchronous invocation, a retried batch) sets the same
  attribute to the same value, and lines arriving out of order simply fill in: the curve is
  rebuilt from every stored line sorted by (stream, timestamp), exactly as
  :class:`control_plane.aws.training_logs.TrainingLogs` orders what it reads from the logs;
* ``meta``: what the judge learned once from SageMaker on the job's first line (ARN, tags, the
  hyperparameters it judges with), so later lines need no SageMaker call;
* ``reported``: set once the job's divergence was reported (by the judge; the others tag the job);
* ``heard`` (epoch seconds of the last delivery) and ``swept`` (of the last safety-net sweep):
  the safety net skips jobs heard from recently and sweeps the others, least recently seen first;
* :data:`TTL_ATTRIBUTE` (epoch seconds): DynamoDB's time to live deletes a job's item
  :data:`RETENTION_DAYS` after its last update, so the table holds only running and recent jobs.

Size: DynamoDB items are at most 400 KB
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html, "Item size");
a line takes about 150 bytes, so about 2,500 lines, 1,200 epochs of one host's train and
validation lines. A job past that fails its UpdateItem (ValidationException): the delivery ends
in the on-failure queue, alarmed, and the safety net, which reads the logs, still judges it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PARTITION_KEY = "job"
TTL_ATTRIBUTE = "expires"
RETENTION_DAYS = 30
LINE_PREFIX = "l"
META = "meta"
REPORTED = "reported"
HEARD = "heard"
SWEPT = "swept"
# UpdateItem expressions are at most 4 KB ("Expression parameters", same quota page): each line
# adds about 16 characters ("#l12 = :l12, "), so a batch is written in chunks of this many lines.
LINES_PER_UPDATE = 100
MESSAGE_CHARS = 400  # a metric line is ~100 characters; a longer one is garbled anyway
# Hyperparameters the judge needs between deliveries (the metric name, the stop-or-finish choice).
JUDGED_HYPERPARAMETERS = ("output_layer", "early_stopping_patience", "early_stopping_tolerance", "epochs")


@dataclass(frozen=True)
class StoredLine:
    timestamp: int
    stream: str
    message: str

    @property
    def attribute(self) -> str:
        digest = hashlib.sha256(f"{self.stream}\n{self.timestamp}\n{self.message}".encode()).hexdigest()
        return f"{LINE_PREFIX}{digest[:20]}"  # 80 bits: no two lines of one job collide in practice


@dataclass(frozen=True)
class JobMeta:
    """What SageMaker said about the job on its first delivered line."""

    arn: str
    tags: Mapping[str, str]
    hyperparameters: Mapping[str, str]


@dataclass(frozen=True)
class JobRecord:
    """One job's item: its stored lines in log order, and what the judge noted about it."""

    job: str
    lines: tuple[StoredLine, ...] = ()
    meta: JobMeta | None = None
    reported: str = ""
    heard: float = 0.0
    swept: float = 0.0

    @property
    def messages(self) -> list[str]:
        return [line.message for line in self.lines]

    @property
    def last_seen(self) -> float:
        """When anyone last looked at the job: a delivery or a sweep (0: never)."""
        return max(self.heard, self.swept)


def in_log_order(lines: Iterable[StoredLine]) -> tuple[StoredLine, ...]:
    """Per stream, by timestamp (stable for same-millisecond lines of one stream, by message)."""
    return tuple(sorted(set(lines), key=lambda line: (line.stream, line.timestamp, line.message)))


def trimmed(message: str) -> str:
    """The part of a log line the curve needs: from ``#quality_metric`` on (the service's
    ``[date INFO thread]`` prefix dropped), at most :data:`MESSAGE_CHARS` characters."""
    start = message.find("#quality_metric")
    return (message[start:] if start >= 0 else message)[:MESSAGE_CHARS]
