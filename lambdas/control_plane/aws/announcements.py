"""The announcement ledger: one create-only S3 object per notification that must go out once.

Before a handler puts an operator-facing event that must not repeat (``ModelPromoted`` for one
served-model change, ``RetrainingExhausted`` for one lineage, ``ModelRolledBack`` for one rejected
deployment), it *claims* the announcement: a PutObject with ``If-None-Match: *`` of the event's
PutEvents entry at ``announcements/claimed/<key>`` in the artifact bucket. S3 writes the object
only if no object has that key, and of concurrent conditional writes of one key exactly one
succeeds; the others get ``412 Precondition Failed`` (or ``409 ConditionalRequestConflict``, to
be retried) (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). Only
the claimant puts the event, then writes ``announcements/sent/<key>``.

A claim without its ``sent`` object is ambiguous: its claimant died before PutEvents, or after
EventBridge accepted the event and before the ``sent`` write. The WitnessAnnouncements rule
(o2v_core.events) copies every announcement put into an SQS queue, the *witness*: an event that
was put is in it, one that was not is not. The reconciler first confirms what the witness holds
(:meth:`witnessed`, then ``sent`` and :meth:`forget`), then puts the stored entry of each claim
still unconfirmed after its grace period (:meth:`stale_claims`). docs/guarantees.md says which
window remains.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError
from o2v_core.s3_layout import ANNOUNCEMENTS_PREFIX

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

CLAIMED = "claimed/"
SENT = "sent/"
# 412: the key exists (someone else claimed it). 409: a concurrent conditional write of the same
# key was in flight; S3 says to retry, and the retry then answers 412 or succeeds.
_TAKEN = "PreconditionFailed"
_CONFLICT = "ConditionalRequestConflict"
_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class Claim:
    key: str
    entry: dict[str, str]  # the PutEvents entry, as the claimant would have put it
    claimed_at: datetime


@dataclass(frozen=True)
class Witnessed:
    receipt: str  # the witness queue's receipt handle, for :meth:`Announcements.forget`
    event: dict[str, Any]  # the event as EventBridge delivered it (detail-type, detail, ...)


class Announcements:
    def __init__(
        self, bucket: str, deployment: str, client: S3Client | None = None, *, witness_queue_url: str = ""
    ) -> None:
        if not bucket:
            raise ValueError("the announcement ledger needs the artifact bucket (O2V_ARTIFACT_BUCKET)")
        self.bucket = bucket
        self.prefix = f"{ANNOUNCEMENTS_PREFIX}{deployment}/"
        self.witness_queue_url = witness_queue_url
        self._given = client

    @property
    def _s3(self) -> S3Client:
        return self._given or cast("S3Client", clients.client("s3"))

    @property
    def _sqs(self) -> SQSClient:
        return cast("SQSClient", clients.client("sqs"))

    def claim(self, key: str, entry: Mapping[str, str]) -> bool:
        """True when this caller now owns the announcement ``key``; False when another did already."""
        body = json.dumps(entry, sort_keys=True).encode()
        for _ in range(_CONFLICT_RETRIES):
            try:
                self._s3.put_object(
                    Bucket=self.bucket, Key=self._key(CLAIMED, key), Body=body, IfNoneMatch="*",
                    ContentType="application/json",
                )
                return True
            except ClientError as error:
                code = clients.error_code(error)
                if code == _TAKEN:
                    return False
                if code != _CONFLICT:
                    raise
        raise RuntimeError(f"announcement {key!r}: S3 kept answering {_CONFLICT}")

    def mark_sent(self, key: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self._key(SENT, key), Body=b"")

    def stale_claims(self, before: datetime, limit: int) -> list[Claim]:
        """Claims made before ``before`` whose event was never confirmed put, oldest first."""
        sent = {key for key, _ in self._list(SENT)}
        stale = sorted(
            ((key, when) for key, when in self._list(CLAIMED) if key not in sent and when < before),
            key=lambda item: item[1],
        )
        found = []
        for key, when in stale[:limit]:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(CLAIMED, key))["Body"].read()
            found.append(Claim(key, json.loads(body), when))
        return found

    def witnessed(self, limit: int) -> list[Witnessed]:
        """Up to ``limit`` announcements the witness queue holds (each one was put)."""
        if not self.witness_queue_url:
            raise ValueError("the reconciler needs the witness queue (O2V_ANNOUNCEMENT_WITNESS_QUEUE_URL)")
        found: list[Witnessed] = []
        while len(found) < limit:
            answer = self._sqs.receive_message(
                QueueUrl=self.witness_queue_url, MaxNumberOfMessages=min(10, limit - len(found)), WaitTimeSeconds=0,
            )
            messages = answer.get("Messages", [])
            if not messages:
                break
            found.extend(Witnessed(m["ReceiptHandle"], json.loads(m["Body"])) for m in messages)
        return found

    def forget(self, witnessed: Witnessed) -> None:
        """Delete a witnessed announcement once its ``sent`` object exists (a repeat is harmless)."""
        self._sqs.delete_message(QueueUrl=self.witness_queue_url, ReceiptHandle=witnessed.receipt)

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}{key}"

    def _list(self, kind: str) -> Iterator[tuple[str, datetime]]:
        start = f"{self.prefix}{kind}"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                yield item["Key"][len(start):], item["LastModified"]
