"""How the embedding endpoint takes a new model: the blue/green policy and the data capture config.

Used by the promoter (``control_plane.logic.promotion``: its UpdateEndpoint and its first endpoint
config), which owns the endpoint, and by the serving stack's alarms (the variant's name).
Standard library only; the boto3 request shapes are type stubs, imported for type checking only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DataCaptureConfigTypeDef, DeploymentConfigTypeDef

VARIANT_NAME = "AllTraffic"  # the one production variant of every endpoint config the promoter creates


def scalable_resource_id(endpoint_name: str) -> str:
    """The variant's ResourceId, as Application Auto Scaling names SageMaker variants."""
    return f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}"

MAX_ROLLBACK_ALARMS = 10  # AutoRollbackConfig.Alarms: 1-10 items

# Blue/green: provision the new fleet, shift all traffic at once, watch the rollback alarms for
# the baking period, then terminate the old fleet.
BAKE_SECONDS = 600
MAX_DEPLOYMENT_SECONDS = 3600
# "SageMaker creates a new fleet during the deployment while maintaining the old fleet" (botocore
# `sagemaker` service model, BlueGreenUpdatePolicy; reference 11f): during an update the endpoint
# holds two fleets, each as large as the autoscaled variant may be, and the account's
# "<instance type> for endpoint usage" quota must cover both (`o2v preflight` checks it).
FLEETS_DURING_UPDATE = 2


@dataclass(frozen=True)
class Scaling:
    """What the variant's scaling is: capacity bounds and the InvocationsPerInstance target."""

    min_capacity: int
    max_capacity: int
    target_invocations: float


def instances_during_update(max_capacity: int) -> int:
    """Endpoint instances a blue/green update may hold at once, old and new fleet together."""
    return FLEETS_DURING_UPDATE * max_capacity

# Data capture: requests and responses, JSON bodies captured as JSON.
DATA_CAPTURE_MODES: tuple[Literal["Input", "Output"], ...] = ("Input", "Output")
DATA_CAPTURE_JSON_CONTENT_TYPES = ("application/json", "application/jsonlines")


def deployment_config(alarm_names: tuple[str, ...]) -> DeploymentConfigTypeDef:
    """UpdateEndpoint's blue/green policy, with auto-rollback on the configured alarms."""
    config: DeploymentConfigTypeDef = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": BAKE_SECONDS},
            "TerminationWaitInSeconds": 0,
            "MaximumExecutionTimeoutInSeconds": MAX_DEPLOYMENT_SECONDS,
        }
    }
    if alarm_names:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarm_names]}
    return config


def data_capture_config(
    destination_s3_uri: str, sampling_percentage: int, kms_key_id: str | None
) -> DataCaptureConfigTypeDef:
    """The first endpoint's DataCaptureConfig: requests and responses, JSON as JSON; off at 0 %."""
    config: DataCaptureConfigTypeDef = {
        "EnableCapture": sampling_percentage > 0,
        "InitialSamplingPercentage": sampling_percentage,
        "DestinationS3Uri": destination_s3_uri,
        "CaptureOptions": [{"CaptureMode": mode} for mode in DATA_CAPTURE_MODES],
        "CaptureContentTypeHeader": {"JsonContentTypes": list(DATA_CAPTURE_JSON_CONTENT_TYPES)},
    }
    if kms_key_id:
        config["KmsKeyId"] = kms_key_id
    return config
