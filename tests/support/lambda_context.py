"""A Lambda context object for tests that call a handler directly, as the Lambda runtime passes
one (docs.aws.amazon.com/lambda/latest/dg/python-context.html): local mode's own, so both agree.
Powertools' Logger reads its attributes (function name, memory, ARN, request id)."""

from __future__ import annotations

import time
import uuid

from local_aws.awslambda.worker import LambdaContext


def lambda_context(timeout_seconds: int = 60) -> LambdaContext:
    return LambdaContext(str(uuid.uuid4()), int(time.time() * 1000) + timeout_seconds * 1000)
