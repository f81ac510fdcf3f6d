"""Bad input, caught before anything is created (exit 2): no credentials, the stacks not deployed
or deployed by another version, no training quota for the verify instance type, the metric-line
judge's subscription filter missing because the log group's two slots are held by others.

The reads are ``o2v preflight``'s where they apply (:mod:`training.preflight`): the identity, the
quota (for ml.m5.2xlarge, the verify run's type) and the subscription-filter slots.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP
from o2v_core.settings import Settings

from training.preflight.account import IdentityError, caller_identity, identity_check, resolve_region
from training.preflight.log_slots import log_filter_slot_check, our_filter_names
from training.preflight.quotas import quota_checks
from training.preflight.report import Check, Status
from training.preflight.runner import ClientFactory
from training.verify.output import Output
from training.verify.plan import TRAINING_INSTANCE_TYPE
from training.verify.target import Target, VerifyInputError, deploy_fix, read_target

SUBSCRIPTION = "metric-line subscription"


def subscription_in_place(logs: Any, settings: Settings) -> str:
    """Our filters are on SageMaker's training log group; else why not, and the fix (VerifyInputError)."""
    ours = our_filter_names(settings.deployment)
    try:
        existing = {str(item.get("filterName")) for page in logs.get_paginator("describe_subscription_filters")
                    .paginate(logGroupName=TRAINING_JOB_LOG_GROUP) for item in page.get("subscriptionFilters", [])}
    except (ClientError, BotoCoreError) as error:
        raise VerifyInputError(f"cannot read the subscription filters of {TRAINING_JOB_LOG_GROUP} ({error}); fix: "
                               f"allow logs:DescribeSubscriptionFilters, or {deploy_fix(settings.env_name)}") from None
    missing = sorted(ours - existing)
    if not missing:
        return f"{', '.join(sorted(ours))} on {TRAINING_JOB_LOG_GROUP}"
    slots = log_filter_slot_check(logs, settings.deployment)
    if slots.status is Status.FAILED:
        raise VerifyInputError(f"the metric-line judge's subscription filter {', '.join(missing)} is missing: "
                               f"{slots.detail}; fix: {slots.remedy}, then {deploy_fix(settings.env_name)}")
    raise VerifyInputError(f"the metric-line judge's subscription filter {', '.join(missing)} is missing from "
                           f"{TRAINING_JOB_LOG_GROUP}; fix: {deploy_fix(settings.env_name)}")


def account_target(settings: Settings, region_flag: str | None, output: Output,
                   clients: ClientFactory | None = None) -> tuple[Any, Target]:
    """The session and the deployed target, or :class:`VerifyInputError` naming the missing piece.

    ``clients`` makes the clients of the reads after the identity, as in ``run_preflight`` (tests
    answer Service Quotas with botocore's Stubber: moto has no ListServiceQuotas)."""
    try:
        session = boto3.Session()
    except ProfileNotFound as error:
        raise VerifyInputError(f"{error}: pick a profile from ~/.aws/config, or unset AWS_PROFILE") from None
    try:
        region = resolve_region(region_flag, settings.region, session)
        identity = caller_identity(session, region)
    except IdentityError as error:
        raise VerifyInputError(str(error)) from None
    check = identity_check(identity, settings.account)
    if check.status is Status.FAILED:
        raise VerifyInputError(f"{check.detail}; fix: {check.remedy}")
    output.check(check)

    def client(service: str) -> Any:
        if clients is not None:
            return clients(service, region)
        return session.client(service, region_name=region)  # type: ignore[call-overload]

    target = read_target(client("cloudformation"), settings.deployment,
                         settings.env_name, region)
    output.check(Check("stacks", Status.PASSED, f"{target.origin} (this version's outputs)"))
    filters = subscription_in_place(client("logs"), settings)
    output.check(Check(SUBSCRIPTION, Status.PASSED, filters))
    verify_settings = dataclasses.replace(
        settings, training=dataclasses.replace(settings.training, instance_type=TRAINING_INSTANCE_TYPE))
    for quota in quota_checks(client("service-quotas"), verify_settings, region):
        if quota.status is Status.FAILED:
            raise VerifyInputError(f"{quota.detail}; fix: {quota.remedy}")
        output.check(quota)
    return session, target
