"""The per-job curve store in DynamoDB (layout: :mod:`o2v_core.curve_store`). Thin data access.

Each delivery is one UpdateItem that sets the delivered lines and returns the whole item
(``ReturnValues=ALL_NEW``), so the judge has the job's curve so far without a CloudWatch Logs
call. Setting an attribute to the value it has is harmless, so duplicate and out-of-order
deliveries need no condition. Errors (throttling past the retries, an item past 400 KB)
propagate: Lambda retries the delivery, then keeps it in the on-failure queue.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from o2v_core import curve_store as layout
from o2v_core.curve_store import JobMeta, JobRecord, StoredLine

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_KEYS = 100  # BatchGetItem: at most 100 items per call
UNPROCESSED_ROUNDS = 5  # BatchGetItem may leave keys unprocessed under load; asked again, then given up


class CurveStore:
    def __init__(self, table: str, client: DynamoDBClient | None = None,
                 clock: Any = time.time) -> None:
        self.table = table
        self._given = client
        self._clock = clock

    @property
    def _db(self) -> DynamoDBClient:
        return self._given or clients.dynamodb()

    def add_lines(self, job: str, lines: Sequence[StoredLine]) -> JobRecord:
        """Store the delivered lines (one UpdateItem per :data:`~o2v_core.curve_store.LINES_PER_UPDATE`
        lines) and return the job's whole item after it."""
        now = self._clock()
        chunks = [lines[start:start + layout.LINES_PER_UPDATE]
                  for start in range(0, len(lines), layout.LINES_PER_UPDATE)] or [[]]
        item: Mapping[str, Any] = {}
        for chunk in chunks:
            names = {"#h": layout.HEARD, "#t": layout.TTL_ATTRIBUTE}
            values: dict[str, Any] = {":h": _number(now), ":t": _number(_expiry(now))}
            parts = ["#h = :h", "#t = :t"]
            for index, line in enumerate(chunk):
                names[f"#l{index}"] = line.attribute
                values[f":l{index}"] = {"L": [_number(line.timestamp), {"S": line.stream}, {"S": line.message}]}
                parts.append(f"#l{index} = :l{index}")
            answer = self._db.update_item(
                TableName=self.table, Key=_key(job), UpdateExpression="SET " + ", ".join(parts),
                ExpressionAttributeNames=names, ExpressionAttributeValues=values, ReturnValues="ALL_NEW",
            )
            item = answer.get("Attributes", {})
        return record_from_item(job, item)

    def remember(self, job: str, meta: JobMeta) -> None:
        """Keep what SageMaker said about the job, so its later lines need no SageMaker call."""
        value = {"M": {"arn": {"S": meta.arn}, "tags": _string_map(meta.tags),
                       "hyperparameters": _string_map(meta.hyperparameters)}}
        self._set(job, layout.META, value)

    def mark_reported(self, job: str, verdict: str) -> None:
        self._set(job, layout.REPORTED, {"S": verdict})

    def mark_swept(self, job: str) -> None:
        self._set(job, layout.SWEPT, _number(self._clock()))

    def records(self, jobs: Iterable[str]) -> dict[str, JobRecord]:
        """The stored items of ``jobs`` (BatchGetItem, 100 keys a call); jobs never stored are absent."""
        wanted = list(dict.fromkeys(jobs))
        found: dict[str, JobRecord] = {}
        for start in range(0, len(wanted), BATCH_GET_KEYS):
            keys: list[Any] = [_key(job) for job in wanted[start:start + BATCH_GET_KEYS]]
            for round_ in range(UNPROCESSED_ROUNDS):
                answer: Mapping[str, Any] = self._db.batch_get_item(RequestItems={self.table: {"Keys": keys}})
                for item in answer.get("Responses", {}).get(self.table, []):
                    job = item[layout.PARTITION_KEY]["S"]
                    found[job] = record_from_item(job, item)
                keys = list(answer.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", []))
                if not keys:
                    break
                time.sleep(0.05 * 2 ** round_)  # DynamoDB's advice: back off before asking again
        return found

    def _set(self, job: str, attribute: str, value: Mapping[str, Any]) -> None:
        now = self._clock()
        self._db.update_item(
            TableName=self.table, Key=_key(job), UpdateExpression="SET #a = :a, #t = :t",
            ExpressionAttributeNames={"#a": attribute, "#t": layout.TTL_ATTRIBUTE},
            ExpressionAttributeValues={":a": value, ":t": _number(_expiry(now))},  # type: ignore[dict-item]
        )


def record_from_item(job: str, item: Mapping[str, Any]) -> JobRecord:
    lines = []
    for name, value in item.items():
        if name.startswith(layout.LINE_PREFIX) and "L" in value:
            timestamp, stream, message = value["L"]
            lines.append(StoredLine(int(timestamp["N"]), stream["S"], message["S"]))
    meta = None
    if layout.META in item:
        fields = item[layout.META]["M"]
        meta = JobMeta(fields["arn"]["S"], _strings(fields.get("tags")), _strings(fields.get("hyperparameters")))
    return JobRecord(
        job=job,
        lines=layout.in_log_order(lines),
        meta=meta,
        reported=str(item.get(layout.REPORTED, {}).get("S", "")),
        heard=float(item.get(layout.HEARD, {}).get("N", 0)),
        swept=float(item.get(layout.SWEPT, {}).get("N", 0)),
    )


def _key(job: str) -> dict[str, Any]:
    return {layout.PARTITION_KEY: {"S": job}}


def _number(value: float) -> dict[str, str]:
    return {"N": repr(round(value, 3)) if isinstance(value, float) else str(value)}


def _expiry(now: float) -> int:
    return int(now) + layout.RETENTION_DAYS * 86_400


def _string_map(values: Mapping[str, str]) -> dict[str, Any]:
    return {"M": {str(key): {"S": str(value)} for key, value in values.items()}}


def _strings(value: Mapping[str, Any] | None) -> dict[str, str]:
    return {key: str(item["S"]) for key, item in ((value or {}).get("M") or {}).items()}
