"""The custom resource that makes sure SageMaker's training log group exists, against moto's Logs.

A subscription filter on a missing group fails the deployment (PutSubscriptionFilter answers
ResourceNotFoundException: https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutSubscriptionFilter.html),
and a fresh account has no ``/aws/sagemaker/TrainingJobs`` until its first training job logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from stacks.constructs import training_log_group_handler as handler


@pytest.fixture
def logs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("logs", region_name="us-east-1")


def event(request_type: str) -> dict[str, Any]:
    return {"RequestType": request_type, "ResourceProperties": {"LogGroupName": TRAINING_JOB_LOG_GROUP}}


def group_names(logs: Any) -> list[str]:
    return [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]]


def test_without_the_group_a_subscription_filter_cannot_be_created(logs: Any) -> None:
    """The failure the custom resource exists to prevent (moto follows the API reference here)."""
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        logs.put_subscription_filter(
            logGroupName=TRAINING_JOB_LOG_GROUP, filterName="f", filterPattern='"#quality_metric"',
            destinationArn="arn:aws:lambda:us-east-1:123456789012:function:judge",
        )


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_missing_group_is_created(logs: Any, request_type: str) -> None:
    assert handler.on_event(event(request_type), logs) == "created"
    assert group_names(logs) == [TRAINING_JOB_LOG_GROUP]


def test_an_existing_group_is_left_as_it_is(logs: Any) -> None:
    logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    logs.put_retention_policy(logGroupName=TRAINING_JOB_LOG_GROUP, retentionInDays=30)
    assert handler.on_event(event("Create"), logs) == "exists"
    (group,) = logs.describe_log_groups()["logGroups"]
    assert group["retentionInDays"] == 30


def test_deleting_the_stack_never_deletes_the_accounts_group(logs: Any) -> None:
    logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    assert handler.on_event(event("Delete"), logs) == "retained"
    assert group_names(logs) == [TRAINING_JOB_LOG_GROUP]


class _Denied:
    """A Logs client whose CreateLogGroup is denied (the role lacks the grant, or an SCP forbids it)."""

    def create_log_group(self, logGroupName: str) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "CreateLogGroup")


def test_any_other_error_fails_the_deployment() -> None:
    with pytest.raises(ClientError, match="AccessDenied"):
        handler.on_event(event("Create"), _Denied())
