"""Custom resource: create SageMaker's training log group when it is absent; never delete it.

On a fresh account and region ``/aws/sagemaker/TrainingJobs`` does not exist until the first
training job logs, and a subscription filter on a missing group fails the deployment
(PutSubscriptionFilter: ResourceNotFoundException). Creating it ahead is what SageMaker would do
itself; an existing group is left exactly as it is. The group is shared by every training job of
the account, so deleting the stack never deletes it. Shipped as inline Lambda code (CloudFormation's
ZipFile, boto3 only); the import of ``run`` is replaced by its module's text
(inline_custom_resource.inline_code), which answers CloudFormation whatever happens.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from stacks.constructs.custom_resource_response import run


def ensure_log_group(logs: Any, name: str) -> str:
    """'created', or 'exists' (SageMaker or an operator made it: left untouched)."""
    try:
        logs.create_log_group(logGroupName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceAlreadyExistsException":
            return "exists"
        raise
    return "created"


def on_event(event: dict[str, Any], logs: Any) -> str:
    if event["RequestType"] in ("Create", "Update"):
        return ensure_log_group(logs, event["ResourceProperties"]["LogGroupName"])
    return "retained"  # the account's group: other jobs and deployments use it


def handler(event: dict[str, Any], context: Any) -> None:
    run(event, on_event, "logs", "LogGroupName")
