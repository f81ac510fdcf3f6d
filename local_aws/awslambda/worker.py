"""A warm local "Lambda container" for one control-plane function.

Run as ``python -m local_aws.awslambda.worker --function <function_id>`` with the
function's environment (``ControlPlaneConfig.to_env()``, the Lambda runtime variables and the
``AWS_ENDPOINT_URL*`` of the local services). It imports the handler by the dotted path in
:data:`o2v_core.functions.FUNCTIONS`, exactly as Lambda does, then answers invocations: one JSON
line on stdin (``{"requestId", "event", "deadlineMs"}``) gives one JSON line on stdout, either
``{"ok": true, "result": ...}`` or Lambda's error shape ``{"ok": false, "errorType",
"errorMessage", "stackTrace"}``. Whatever the handler prints or logs goes to stderr, which the
event pump forwards to the local log group ``/aws/lambda/<function name>``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any

from o2v_core.functions import FUNCTIONS


class LambdaContext:
    """The attributes and method of AWS Lambda's Python context object."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        region = os.environ.get("AWS_REGION", "us-east-1")
        account = os.environ.get("O2V_LOCAL_ACCOUNT", "123456789012")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", f"/aws/lambda/{self.function_name}")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_aws.awslambda.worker", description=__doc__)
    parser.add_argument("--function", required=True, choices=[spec.function_id for spec in FUNCTIONS])
    args = parser.parse_args(argv)
    spec = next(spec for spec in FUNCTIONS if spec.function_id == args.function)

    # Keep the protocol channel to ourselves: the handler's prints go to stderr.
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    try:
        handler = getattr(importlib.import_module(spec.module), spec.attribute)
        init_error: dict[str, Any] | None = None
    except Exception as error:  # Lambda reports an init error on every invocation
        init_error = _error_shape(error)
        print(f"INIT_REPORT {spec.handler}: {init_error['errorType']}: {init_error['errorMessage']}", file=sys.stderr)

    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        request_id = request["requestId"]
        print(f"START RequestId: {request_id} Version: $LATEST", file=sys.stderr, flush=True)
        started = time.monotonic()
        if init_error is not None:
            reply = {"ok": False, **init_error}
        else:
            try:
                result = handler(request["event"], LambdaContext(request_id, int(request["deadlineMs"])))
                reply = {"ok": True, "result": _jsonable(result)}
            except Exception as error:
                traceback.print_exc()
                reply = {"ok": False, **_error_shape(error)}
        elapsed = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}\nREPORT RequestId: {request_id}\tDuration: {elapsed:.2f} ms",
              file=sys.stderr, flush=True)
        protocol.write(json.dumps({"requestId": request_id, **reply}) + "\n")
    return 0


def _error_shape(error: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(type(error), error, error.__traceback__),
    }


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


if __name__ == "__main__":
    raise SystemExit(main())
