"""The announcement ledger: one create-only S3 object per notification that must go out once.

Before a handler puts an operator-facing event that must not repeat (``ModelPromoted`` for one
served-model change, ``RetrainingExhausted`` for one lineage, ``ModelRolledBack`` for one rejected
deployment), it *claims* the announcement: a PutObject with ``If-None-Match: *`` of the event's
PutEvents entry at ``announcements/claimed/<key>`` in the artifact bucket. S3 writes the object
only if no object has that key, and of concurrent conditional writes of one key exactly one
succeeds; the others get ``412 Precondition Failed`` (or ``409 ConditionalRequestConflict``, to
be retried) (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html). Only
the claimant puts the event, then writes ``announcements/sent/<key>``. A claim without its
``sent`` object, older than the reconciler's grace period, is an announcement whose claimant died
before or during PutEvents: the reconciler puts the stored entry (:meth:`stale_claims`).
docs/guarantees.md says which windows remain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from botocore.exceptions import ClientError
from o2v_core.s3_layout import ANNOUNCEMENTS_PREFIX

from control_plane.aws import clients

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

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


class Announcements:
    def __init__(self, bucket: str, deployment: str, client: S3Client | None = None) -> None:
        if not bucket:
            raise ValueError("the announcement ledger needs the artifact bucket (O2V_ARTIFACT_BUCKET)")
        self.bucket = bucket
        self.prefix = f"{ANNOUNCEMENTS_PREFIX}{deployment}/"
        self._given = client

    @property
    def _s3(self) -> S3Client:
        return self._given or cast("S3Client", clients.client("s3"))

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

    def _key(self, kind: str, key: str) -> str:
        return f"{self.prefix}{kind}{key}"

    def _list(self, kind: str) -> Iterator[tuple[str, datetime]]:
        start = f"{self.prefix}{kind}"
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                yield item["Key"][len(start):], item["LastModified"]
