"""SageMaker instance quotas the deploy and the first training job need, read from Service Quotas.

A fresh account often has 0 instances of quota for the training type and even for the endpoint
type (reference 11f). Service Quotas reports them per account and region under service code
``sagemaker``, named ``<instance type> for training job usage`` and ``<instance type> for
endpoint usage`` (11f). ListServiceQuotas lists the applied values, but "if the applied quota value
is not available for a quota, the quota is not retrieved"; ListAWSDefaultServiceQuotas lists the
defaults (both: botocore ``service-quotas`` service model). So a name is looked up in the applied
values first and in the defaults after, both paged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.endpoint_deployment import FLEETS_DURING_UPDATE, instances_during_update
from o2v_core.settings import Settings

from training.preflight.report import Check, Status, could_not_tell

SERVICE_CODE = "sagemaker"
TRAINING_QUOTA = "training instance quota"
ENDPOINT_QUOTA = "endpoint instance quota"
# One instance per training job (training/launcher/launch.py and the retrain launcher's request).
TRAINING_INSTANCES_PER_JOB = 1


def training_quota_name(instance_type: str) -> str:
    return f"{instance_type} for training job usage"


def endpoint_quota_name(instance_type: str) -> str:
    return f"{instance_type} for endpoint usage"


@dataclass(frozen=True)
class Quota:
    name: str
    code: str
    value: float
    adjustable: bool
    applied: bool  # False: only AWS's default was listed; the account's applied value was not


class QuotaNotFound(LookupError):
    pass


class SageMakerQuotas:
    """Finds SageMaker quotas by name; each listing is read at most once (the two checks share them)."""

    def __init__(self, service_quotas: Any) -> None:
        self._client = service_quotas
        self._listings: dict[str, dict[str, dict[str, Any]] | ClientError | BotoCoreError] = {}

    def _listing(self, operation: str) -> dict[str, dict[str, Any]]:
        if operation not in self._listings:
            try:
                self._listings[operation] = {str(quota.get("QuotaName")): quota for quota in self._pages(operation)}
            except (ClientError, BotoCoreError) as error:  # a denied listing is denied for both checks
                self._listings[operation] = error
        listing = self._listings[operation]
        if isinstance(listing, (ClientError, BotoCoreError)):
            raise listing
        return listing

    def _pages(self, operation: str) -> Iterator[dict[str, Any]]:
        for page in self._client.get_paginator(operation).paginate(ServiceCode=SERVICE_CODE):
            yield from page.get("Quotas", [])

    def find(self, name: str) -> Quota:
        """The applied value of the quota named ``name``, else its default; raises QuotaNotFound,
        ClientError or BotoCoreError."""
        for operation, applied in (("list_service_quotas", True), ("list_aws_default_service_quotas", False)):
            found = self._listing(operation).get(name)
            if found is not None:
                return Quota(name=name, code=str(found.get("QuotaCode", "")), value=float(found.get("Value", 0.0)),
                             adjustable=bool(found.get("Adjustable", True)), applied=applied)
        raise QuotaNotFound(name)


def increase_command(quota: Quota, desired: int, region: str) -> str:
    return (f"aws service-quotas request-service-quota-increase --service-code {SERVICE_CODE} "
            f"--quota-code {quota.code} --desired-value {desired} --region {region}")


def _quota_check(check_name: str, quotas: SageMakerQuotas, quota_name: str, required: int, why: str,
                 setting: str, region: str) -> Check:
    permission = "servicequotas:ListServiceQuotas and servicequotas:ListAWSDefaultServiceQuotas"
    try:
        quota = quotas.find(quota_name)
    except QuotaNotFound:
        return Check(check_name, Status.UNKNOWN,
                     f"no SageMaker quota named '{quota_name}' in region {region}",
                     f"look it up in the Service Quotas console (Amazon SageMaker); if the region does not "
                     f"offer the type, change {setting} in cdk.json")
    except (ClientError, BotoCoreError) as error:
        return could_not_tell(check_name, error, permission)
    value = int(quota.value)
    where = "" if quota.applied else " (AWS default; the account's applied value is not listed)"
    if value >= required:
        shared = "; other endpoints and jobs of this type in the account draw on it too"
        return Check(check_name, Status.PASSED, f"'{quota_name}' is {value}{where}, {why} need {required}{shared}")
    detail = f"'{quota_name}' is {value}{where}, {why} need {required}"
    if not quota.adjustable:
        return Check(check_name, Status.FAILED, f"{detail}; the quota is not adjustable",
                     f"choose another instance type in {setting} in cdk.json")
    return Check(check_name, Status.FAILED, detail,
                 f"`{increase_command(quota, required, region)}` (or the Service Quotas console)")


def quota_checks(service_quotas: Any, settings: Settings, region: str) -> list[Check]:
    quotas = SageMakerQuotas(service_quotas)
    env = f"environments.{settings.env_name}"
    serving = settings.serving
    return [
        _quota_check(TRAINING_QUOTA, quotas, training_quota_name(settings.training.instance_type),
                     TRAINING_INSTANCES_PER_JOB, "training jobs", f"{env}.training.instance_type", region),
        _quota_check(ENDPOINT_QUOTA, quotas, endpoint_quota_name(serving.instance_type),
                     instances_during_update(serving.max_capacity),
                     f"blue/green updates ({FLEETS_DURING_UPDATE} fleets x max_capacity {serving.max_capacity})",
                     f"{env}.serving.instance_type", region),
    ]
