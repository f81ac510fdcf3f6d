"""boto3 clients for the control plane: created lazily and plainly, cached per environment.

Always plain ``boto3.client(service)``: local mode and the tests point them at local services
with ``AWS_ENDPOINT_URL_<SERVICE>`` / ``AWS_ENDPOINT_URL``, never with code branches. A client
is cached for as long as the variables that shape it (endpoint, region, credentials, retry
settings) stay the same, so warm Lambda invocations reuse it and a process that switches
endpoints (tests, local mode) never talks to a stale one. Creation is serialized because
boto3's default session is not thread-safe.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sagemaker import SageMakerClient

_SHAPING_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_RETRY_MODE",
    "AWS_MAX_ATTEMPTS",
)
RETRY_MODE = "adaptive"
# The first call and 4 retries. A throttled retry waits rand(0, 1) * 2**i s (i = 0, 1, 2, 3), so at
# most 15 s per call (botocore.retries.standard.ExponentialBackoff); a call still throttled after
# that fails the invocation, which Lambda retries and then keeps in the on-failure queue.
MAX_ATTEMPTS = 5
_lock = threading.Lock()
_cache: dict[tuple[str, ...], Any] = {}


def client(service: str) -> Any:
    endpoint_variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    key = (service, *(os.environ.get(name, "") for name in (endpoint_variable, *_SHAPING_VARIABLES)))
    with _lock:
        if key not in _cache:
            _cache[key] = boto3.client(service, config=retry_config())  # type: ignore[call-overload]
        return _cache[key]


def retry_config() -> Config:
    """Adaptive retries; ``AWS_RETRY_MODE`` / ``AWS_MAX_ATTEMPTS`` still override (tests, operators).

    ``total_max_attempts`` counts the first call, as ``AWS_MAX_ATTEMPTS`` does; botocore's
    ``max_attempts`` would count only the retries
    (https://boto3.amazonaws.com/v1/documentation/api/latest/guide/retries.html).
    """
    mode = os.environ.get("AWS_RETRY_MODE") or RETRY_MODE
    attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or MAX_ATTEMPTS)
    return Config(retries={"mode": mode, "total_max_attempts": attempts})  # type: ignore[arg-type]


def sagemaker() -> SageMakerClient:
    return cast("SageMakerClient", client("sagemaker"))


def logs() -> CloudWatchLogsClient:
    return cast("CloudWatchLogsClient", client("logs"))


def dynamodb() -> DynamoDBClient:
    return cast("DynamoDBClient", client("dynamodb"))


def events() -> EventBridgeClient:
    return cast("EventBridgeClient", client("events"))


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", ""))


def not_found(error: ClientError) -> bool:
    """SageMaker's "no such resource": ValidationException (or ResourceNotFound) whose message says
    "Could not find ..." (endpoints, endpoint configs) or "... not found" (training jobs)."""
    message = error_message(error).lower()
    return error_code(error) in ("ValidationException", "ResourceNotFound") and (
        "not found" in message or "could not find" in message
    )


def already_exists(error: ClientError) -> bool:
    """SageMaker's duplicate name: ResourceInUse, or ValidationException "Cannot create already existing ..."."""
    code = error_code(error)
    return code in ("ResourceInUse", "ResourceInUseException") or (
        code == "ValidationException" and "already exist" in error_message(error).lower()
    )
