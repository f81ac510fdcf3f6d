"""Run an inline custom resource's ``on_event`` and always answer CloudFormation (stdlib only).

Why not ``cfnresponse``: CloudFormation injects it only for the exact module-level statement
``import cfnresponse`` in ZipFile code (reference 11c; cfn-lambda-function-code-cfnresponsemodule),
and a handler that crashes before answering holds the stack until the custom resource's
ServiceTimeout. So the answer is sent here, with urllib: every exception (a missing property, a
failed ``import boto3``, an AWS error) ends in a FAILED answer. ``inline_custom_resource.inline_code``
puts this module's text in place of the handler's import of it; no ``from __future__`` here, since
that must open the file. Response format: "Custom resource response objects" (CloudFormation User
Guide, crpg-ref-responses): a PUT of JSON to the pre-signed ResponseURL, at most 4096 bytes.
"""
import json
import urllib.request
from collections.abc import Callable
from typing import Any

MAX_REASON = 1000  # keeps the whole answer well under CloudFormation's 4096-byte limit


def respond(event: dict[str, Any], status: str, physical_id: str, data: dict[str, str], reason: str) -> None:
    body = json.dumps({
        "Status": status,
        "Reason": reason[:MAX_REASON] or status,
        "PhysicalResourceId": physical_id,
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "Data": data,
    }).encode()
    # Content-Type empty: the pre-signed S3 URL was signed without one.
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""})
    with urllib.request.urlopen(request, timeout=20) as answer:
        answer.read()


def run(event: dict[str, Any], on_event: Callable[[dict[str, Any], Any], str], service: str, id_key: str) -> None:
    """Answer SUCCESS with ``{"Status": on_event(...)}``, or FAILED with the error, whatever fails."""
    physical_id = str(event.get("PhysicalResourceId") or event.get("LogicalResourceId") or "unknown")
    try:
        physical_id = str(event["ResourceProperties"][id_key])
        import boto3

        status = on_event(event, boto3.client(service))  # type: ignore[call-overload]
    except BaseException as error:  # anything at all must still answer FAILED
        print(f"FAILED: {error!r}")
        respond(event, "FAILED", physical_id, {}, f"{type(error).__name__}: {error}")
        return
    respond(event, "SUCCESS", physical_id, {"Status": status}, "")
