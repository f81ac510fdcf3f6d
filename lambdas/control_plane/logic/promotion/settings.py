"""The promoter's settings, checked once at cold start: a bad value names its environment variable."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

from o2v_core.endpoint_deployment import MAX_ROLLBACK_ALARMS, data_capture_config
from o2v_core.function_settings import PromoterSettings
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX
from o2v_core.runtime_config import PREFIX, ConfigError

from control_plane.aws.autoscaling import Scaling
from control_plane.aws.serving import EndpointConfigSettings


@dataclass(frozen=True)
class PromotionSettings:
    deployment: str
    endpoint_name: str
    serving_model_parameter: str
    model_role_arn: str
    image_uri: str
    margin: float
    instance_type: str
    event_bus_name: str
    rollback_alarm_names: tuple[str, ...]
    instance_count: int = 1  # a new endpoint config's InitialInstanceCount (the minimum capacity)
    # The variant's autoscaling, which the reconciler keeps registered; None: no autoscaling.
    scaling: Scaling | None = None
    # Provenance: only jobs that ran as this role, with an artifact below this S3 prefix.
    training_role_arn: str = ""
    training_output_uri: str = ""
    # KmsKeyId and DataCaptureConfig of the first endpoint's config (later ones copy the live config's).
    first_endpoint_config: EndpointConfigSettings = dataclasses.field(default_factory=EndpointConfigSettings)

    @classmethod
    def from_config(cls, config: PromoterSettings) -> PromotionSettings:
        """Check the promotion settings; raises ConfigError naming the environment variable."""

        def env(field: str) -> str:
            return PREFIX + field.upper()

        required = (
            "endpoint_name",
            "serving_model_parameter",
            "model_role_arn",
            "image_uri",
            "endpoint_instance_type",
            "training_role_arn",
            "artifact_bucket",
        )
        for field in required:
            if not getattr(config, field):
                raise ConfigError(f"environment variable {env(field)} must be set for the promoter")
        margin = config.promotion_margin
        if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
            raise ConfigError(
                f"environment variable {env('promotion_margin')} must be a relative margin in [0, 1), got {margin!r}"
            )
        alarms = tuple(name.strip() for name in config.rollback_alarm_names.split(",") if name.strip())
        if len(alarms) > MAX_ROLLBACK_ALARMS:
            raise ConfigError(
                f"environment variable {env('rollback_alarm_names')} names {len(alarms)} alarms; "
                f"SageMaker accepts at most {MAX_ROLLBACK_ALARMS}"
            )
        percentage = config.data_capture_sampling_percentage
        if not 0 <= percentage <= 100:
            raise ConfigError(
                f"environment variable {env('data_capture_sampling_percentage')} must be in [0, 100], got {percentage}"
            )
        if percentage and not config.data_capture_s3_uri:
            raise ConfigError(
                f"environment variable {env('data_capture_s3_uri')} must be set when "
                f"{env('data_capture_sampling_percentage')} is {percentage}"
            )
        scaling = _scaling(config, env)
        capture = (
            data_capture_config(config.data_capture_s3_uri, percentage, config.data_capture_kms_key_arn or None)
            if config.data_capture_s3_uri
            else None
        )
        return cls(
            deployment=config.deployment,
            endpoint_name=config.endpoint_name,
            serving_model_parameter=config.serving_model_parameter,
            model_role_arn=config.model_role_arn,
            image_uri=config.image_uri,
            margin=margin,
            instance_type=config.endpoint_instance_type,
            event_bus_name=config.event_bus_name,
            rollback_alarm_names=alarms,
            instance_count=config.endpoint_min_capacity,
            scaling=scaling,
            training_role_arn=config.training_role_arn,
            training_output_uri=f"s3://{config.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}",
            first_endpoint_config=EndpointConfigSettings(config.endpoint_kms_key_arn or None, capture),
        )


def _scaling(config: PromoterSettings, env: Callable[[str], str]) -> Scaling | None:
    """The autoscaling settings, checked: None when the maximum capacity is 0 (no autoscaling)."""
    low, high, target = config.endpoint_min_capacity, config.endpoint_max_capacity, config.endpoint_target_invocations
    if low < 1:
        raise ConfigError(f"environment variable {env('endpoint_min_capacity')} must be at least 1, got {low}")
    if high == 0:
        return None
    if high < low:
        raise ConfigError(
            f"environment variable {env('endpoint_max_capacity')} must be 0 (no autoscaling) or at least "
            f"{env('endpoint_min_capacity')} ({low}), got {high}"
        )
    if target <= 0:
        raise ConfigError(
            f"environment variable {env('endpoint_target_invocations')} must be positive when "
            f"{env('endpoint_max_capacity')} is {high}, got {target}"
        )
    return Scaling(min_capacity=low, max_capacity=high, target_invocations=float(target))
