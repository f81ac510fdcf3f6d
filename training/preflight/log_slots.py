"""Whether SageMaker's training log group has a free subscription-filter slot for this deployment.

"Each log group can have up to two subscription filters associated with it" (PutSubscriptionFilter,
CloudWatch Logs API reference; ``o2v_core.aws_quotas.SUBSCRIPTION_FILTERS_PER_LOG_GROUP``), and
``/aws/sagemaker/TrainingJobs`` is shared by every training job in the account and region, so
other tools' filters may already hold the slots (reference 11f). The stack adds the filters of the
function specs subscribed to that group (``o2v_core.functions``), each named by
``LogSubscription.filter_name``: a filter of that name is ours already (a redeploy updates it in
place: "If you are updating an existing filter, you must specify the correct name in filterName",
same page) and takes no new slot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.aws_quotas import SUBSCRIPTION_FILTERS_PER_LOG_GROUP
from o2v_core.functions import FUNCTIONS
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from training.preflight.report import Check, Status, could_not_tell, error_code

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

LOG_FILTER_SLOTS = "training log subscription slots"


def our_filter_names(deployment: str, log_group: str = TRAINING_JOB_LOG_GROUP) -> frozenset[str]:
    """The subscription filters this deployment's stack puts on ``log_group``."""
    return frozenset(
        spec.subscription.filter_name(deployment, spec.function_id)
        for spec in FUNCTIONS
        if spec.subscription is not None and spec.subscription.log_group == log_group
    )


def log_filter_slot_check(logs: CloudWatchLogsClient, deployment: str) -> Check:
    ours = our_filter_names(deployment)
    group = TRAINING_JOB_LOG_GROUP
    try:
        existing = {
            str(f.get("filterName")): str(f.get("destinationArn", "?"))
            for page in logs.get_paginator("describe_subscription_filters").paginate(logGroupName=group)
            for f in page.get("subscriptionFilters", [])
        }
    except ClientError as error:
        # No group yet (a fresh account before its first training job): DescribeSubscriptionFilters
        # answers ResourceNotFoundException (its modelled error, botocore `logs` model); the training
        # stack creates the group when absent (stacks/constructs/log_subscriptions.py), empty.
        if error_code(error) == "ResourceNotFoundException":
            return Check(LOG_FILTER_SLOTS, Status.PASSED,
                         f"{group} does not exist yet; the training stack creates it with no filters")
        return could_not_tell(LOG_FILTER_SLOTS, error, f"logs:DescribeSubscriptionFilters on {group}")
    except BotoCoreError as error:
        return could_not_tell(LOG_FILTER_SLOTS, error, f"logs:DescribeSubscriptionFilters on {group}")
    others = {name: arn for name, arn in existing.items() if name not in ours}
    needed = len(ours)
    free = SUBSCRIPTION_FILTERS_PER_LOG_GROUP - len(others)
    mine = ", ".join(sorted(ours))
    if needed <= free:
        held = f"; other filters: {', '.join(sorted(others))}" if others else ""
        return Check(LOG_FILTER_SLOTS, Status.PASSED,
                     f"{group} has room for {mine} ({len(others)} of {SUBSCRIPTION_FILTERS_PER_LOG_GROUP} "
                     f"slots held by other filters{held})")
    listed = "; ".join(f"{name} -> {arn}" for name, arn in sorted(others.items()))
    delete = " or ".join(f"`aws logs delete-subscription-filter --log-group-name {group} --filter-name {name}`"
                         for name in sorted(others))
    return Check(LOG_FILTER_SLOTS, Status.FAILED,
                 f"{group} allows {SUBSCRIPTION_FILTERS_PER_LOG_GROUP} subscription filters and other filters "
                 f"hold {len(others)} ({listed}); the training stack adds {mine}",
                 f"free a slot: {delete} (after moving that tool to an account-level subscription policy, "
                 "PutAccountPolicy, which takes no slot)")
