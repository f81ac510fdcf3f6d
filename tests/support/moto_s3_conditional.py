"""Make moto 5.2.5's conditional PutObject atomic, as S3's is.

S3: a PutObject with ``If-None-Match: *`` writes the object only if no object has that key;
otherwise it answers ``412 Precondition Failed``; of concurrent conditional writes of one key,
one succeeds and the others get 412 (or ``409 ConditionalRequestConflict``, to be retried)
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html, and the
``IfNoneMatch`` member of PutObjectRequest in botocore's s3 service model).

moto honours the header (``S3Response.put_object`` raises ``PreconditionFailed`` when the key
exists), but checks and writes in two steps with no lock: two requests served by two server
threads at the same moment can both pass the check and both "create" the object. That is a gap
of the fake, not of S3; this patch serializes conditional PutObject requests so the check and
the write are one step, which is what S3 guarantees. It changes nothing else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.s3.responses import S3Response

_LOCK = threading.RLock()  # re-entrant: two moto servers of one process may both install it


@contextmanager
def installed() -> Iterator[None]:
    original = S3Response.put_object

    def put_object(self: S3Response) -> Any:
        if self.headers.get("If-None-Match") is None and self.headers.get("If-Match") is None:
            return original(self)
        with _LOCK:
            return original(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]
    try:
        yield
    finally:
        S3Response.put_object = original  # type: ignore[method-assign]
