"""Run every preflight check against one boto3 session and collect the report."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import boto3
from o2v_core.settings import Settings

from training.preflight.account import (
    CREDENTIALS,
    DEFAULT_TOOLKIT_STACK,
    IdentityError,
    bootstrap_check,
    bootstrap_qualifier,
    caller_identity,
    identity_check,
    resolve_region,
)
from training.preflight.log_slots import log_filter_slot_check
from training.preflight.quotas import quota_checks
from training.preflight.report import Check, Report, Status

NOTIFICATIONS = "operator notifications"
# A boto3 client of the named service in the given region (default: the session's ``client``).
ClientFactory = Callable[[str, str], Any]


def notification_check(settings: Settings) -> Check:
    """An environment that keeps its data (prod) should tell a person when the loop needs one."""
    key = f"environments.{settings.env_name}.notification_email"
    if settings.notification_email:
        return Check(NOTIFICATIONS, Status.PASSED, f"emails go to {settings.notification_email} "
                     "(the address must confirm the SNS subscription once)")
    if settings.retain_data:
        return Check(NOTIFICATIONS, Status.WARNING,
                     f"{key} is not set in an environment that retains its data: failed trainings, exhausted "
                     "retries, promotions and rollbacks reach the SNS topic but no person",
                     f"set {key} in cdk.json (or subscribe to the stack's NotificationTopicArn yourself)")
    return Check(NOTIFICATIONS, Status.PASSED, f"{key} not set (optional where data is destroyed)")


def run_preflight(session: boto3.Session, settings: Settings, context: Mapping[str, Any], *,
                  region: str | None = None, toolkit_stack: str = DEFAULT_TOOLKIT_STACK,
                  clients: ClientFactory | None = None) -> Report:
    """Every check, read-only; ``context`` is cdk.json's context (for the bootstrap qualifier).

    ``clients`` makes the clients of the checks after the identity (tests hand in clients that
    botocore's Stubber answers where moto lacks the API)."""
    report = Report(environment=settings.env_name, deployment=settings.deployment)
    try:
        report.region = resolve_region(region, settings.region, session)
        identity = caller_identity(session, report.region)
    except IdentityError as error:
        report.add(Check(CREDENTIALS, Status.FAILED, str(error)))
        report.bad_input = True
        return report
    report.account = identity.account
    first = identity_check(identity, settings.account)
    report.add(first)
    if first.status is Status.FAILED:  # every other read would look at the wrong account
        return report

    def client(service: str) -> Any:
        if clients is not None:
            return clients(service, identity.region)
        return session.client(service, region_name=identity.region)  # type: ignore[call-overload]

    report.add(bootstrap_check(client("ssm"), client("cloudformation"), identity,
                               bootstrap_qualifier(context), toolkit_stack))
    for check in quota_checks(client("service-quotas"), settings, identity.region):
        report.add(check)
    report.add(log_filter_slot_check(client("logs"), settings.deployment))
    report.add(notification_check(settings))
    return report
