"""Each control-plane function's own typed settings, and the one builder of its environment.

A function's environment holds exactly the fields of its settings class, so a handler can read
nothing it does not use. :func:`function_environment` builds it from the deployment-wide
:class:`~o2v_core.runtime_config.ControlPlaneConfig`; the stacks (``ControlPlaneFunction``) and
local mode (its event pump) both call it, and each handler reads its class with ``from_env()``.
Which class a function uses is part of its spec (``o2v_core.functions.FunctionSpec.settings``).
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import TYPE_CHECKING, Any, Self

from o2v_core.endpoint_deployment import MAX_ROLLBACK_ALARMS, Scaling, data_capture_config
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX
from o2v_core.runtime_config import PREFIX, ConfigError, ControlPlaneConfig, EnvironmentCodec
from o2v_core.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.type_defs import DataCaptureConfigTypeDef


def deployment_default(name: str) -> Any:
    """``ControlPlaneConfig``'s default for ``name``: a function's settings default to the
    deployment's, defined once there."""
    default = next(item.default for item in fields(ControlPlaneConfig) if item.name == name)
    if default is MISSING:
        raise TypeError(f"ControlPlaneConfig.{name} has no default")
    return default


class FromDeployment(EnvironmentCodec):
    @classmethod
    def from_config(cls, config: ControlPlaneConfig) -> Self:
        """This function's fields, taken from the deployment's values."""
        return cls(**{item.name: getattr(config, item.name) for item in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class JudgeSettings(FromDeployment):
    """The metric-line judge's and the safety-net monitor's: judge a running job, maybe stop it."""

    deployment: str
    event_bus_name: str
    detector_config: str = deployment_default("detector_config")  # JSON, detector.DetectorConfig
    stop_on_divergence: bool = deployment_default("stop_on_divergence")
    finish_diverged_within_epochs: int = deployment_default("finish_diverged_within_epochs")  # choose_stop


@dataclass(frozen=True)
class EvaluatorSettings(FromDeployment):
    """The finished-job evaluator's: judge a finished job's whole curve."""

    deployment: str
    event_bus_name: str
    detector_config: str = deployment_default("detector_config")


@dataclass(frozen=True)
class LauncherSettings(FromDeployment):
    """The retrain launcher's: the next attempt's recipe."""

    deployment: str
    event_bus_name: str
    retrain_policy: str = deployment_default("retrain_policy")  # JSON, retrain_policy.RetrainPolicy
    artifact_bucket: str = deployment_default("artifact_bucket")  # the announcement ledger's


@dataclass(frozen=True)
class PromoterSettings(FromDeployment):
    """The promoter's, checked when built (at cold start, by ``from_env``): a value that is missing
    or out of range raises :class:`ConfigError` naming its environment variable."""

    deployment: str
    event_bus_name: str
    # Provenance: only this role's jobs are promotable. Required by the deployment (no default
    # there); empty here only so that the promoter's cold-start check can name it when missing.
    training_role_arn: str = ""
    artifact_bucket: str = deployment_default("artifact_bucket")  # provenance: only artifacts below its training prefix
    endpoint_name: str = deployment_default("endpoint_name")
    serving_model_parameter: str = deployment_default("serving_model_parameter")
    model_role_arn: str = deployment_default("model_role_arn")
    image_uri: str = deployment_default("image_uri")
    promotion_margin: float = deployment_default("promotion_margin")
    endpoint_instance_type: str = deployment_default("endpoint_instance_type")
    endpoint_min_capacity: int = deployment_default("endpoint_min_capacity")
    endpoint_max_capacity: int = deployment_default("endpoint_max_capacity")
    endpoint_target_invocations: int = deployment_default("endpoint_target_invocations")
    rollback_alarm_names: str = deployment_default("rollback_alarm_names")  # comma-separated
    endpoint_kms_key_arn: str = deployment_default("endpoint_kms_key_arn")
    data_capture_s3_uri: str = deployment_default("data_capture_s3_uri")
    data_capture_sampling_percentage: int = deployment_default("data_capture_sampling_percentage")
    data_capture_kms_key_arn: str = deployment_default("data_capture_kms_key_arn")

    def __post_init__(self) -> None:
        required = (
            "endpoint_name",
            "serving_model_parameter",
            "model_role_arn",
            "image_uri",
            "endpoint_instance_type",
            "training_role_arn",
            "artifact_bucket",
        )
        for name in required:
            if not getattr(self, name):
                raise ConfigError(f"environment variable {_variable(name)} must be set for the promoter")
        margin = self.promotion_margin
        if not (math.isfinite(margin) and 0.0 <= margin < 1.0):
            raise ConfigError(
                f"environment variable {_variable('promotion_margin')} must be a relative margin in [0, 1), "
                f"got {margin!r}"
            )
        if len(self.rollback_alarms) > MAX_ROLLBACK_ALARMS:
            raise ConfigError(
                f"environment variable {_variable('rollback_alarm_names')} names {len(self.rollback_alarms)} "
                f"alarms; SageMaker accepts at most {MAX_ROLLBACK_ALARMS}"
            )
        percentage = self.data_capture_sampling_percentage
        if not 0 <= percentage <= 100:
            raise ConfigError(
                f"environment variable {_variable('data_capture_sampling_percentage')} must be in [0, 100], "
                f"got {percentage}"
            )
        if percentage and not self.data_capture_s3_uri:
            raise ConfigError(
                f"environment variable {_variable('data_capture_s3_uri')} must be set when "
                f"{_variable('data_capture_sampling_percentage')} is {percentage}"
            )
        self._check_scaling()

    def _check_scaling(self) -> None:
        low, high, target = self.endpoint_min_capacity, self.endpoint_max_capacity, self.endpoint_target_invocations
        if low < 1:
            raise ConfigError(
                f"environment variable {_variable('endpoint_min_capacity')} must be at least 1, got {low}"
            )
        if high == 0:
            return
        if high < low:
            raise ConfigError(
                f"environment variable {_variable('endpoint_max_capacity')} must be 0 (no autoscaling) or at least "
                f"{_variable('endpoint_min_capacity')} ({low}), got {high}"
            )
        if target <= 0:
            raise ConfigError(
                f"environment variable {_variable('endpoint_target_invocations')} must be positive when "
                f"{_variable('endpoint_max_capacity')} is {high}, got {target}"
            )

    @property
    def rollback_alarms(self) -> tuple[str, ...]:
        """The rollback alarms' names, split and trimmed."""
        return tuple(name.strip() for name in self.rollback_alarm_names.split(",") if name.strip())

    @property
    def scaling(self) -> Scaling | None:
        """The variant's autoscaling, which the reconciler keeps registered; None: no autoscaling."""
        if self.endpoint_max_capacity == 0:
            return None
        return Scaling(self.endpoint_min_capacity, self.endpoint_max_capacity, float(self.endpoint_target_invocations))

    @property
    def training_output_uri(self) -> str:
        """Provenance: only artifacts below this S3 prefix (where the training role writes) serve."""
        return f"s3://{self.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}"

    @property
    def first_data_capture(self) -> DataCaptureConfigTypeDef | None:
        """The first endpoint config's DataCaptureConfig (later ones copy the live config's); None: none."""
        if not self.data_capture_s3_uri:
            return None
        return data_capture_config(
            self.data_capture_s3_uri, self.data_capture_sampling_percentage, self.data_capture_kms_key_arn or None
        )


def _variable(field: str) -> str:
    return PREFIX + field.upper()


@dataclass(frozen=True)
class ReconcilerSettings(PromoterSettings):
    """The reconciler's: it redoes the evaluator's, the launcher's and the promoter's steps."""

    detector_config: str = deployment_default("detector_config")
    retrain_policy: str = deployment_default("retrain_policy")
    # The WitnessAnnouncements rule's queue.
    announcement_witness_queue_url: str = deployment_default("announcement_witness_queue_url")


def function_environment(settings: type[FromDeployment], config: ControlPlaneConfig) -> dict[str, str]:
    """The ``O2V_*`` variables of one function: its settings class's fields, from the deployment.

    Built without checking them: a function checks its own settings when it starts (``from_env``),
    so a deployment whose serving half is not there yet still synthesizes."""
    return {
        key: value
        for key, value in config.to_env().items()
        if key in settings.variable_names()
    }


def deployment_config(
    settings: Settings,
    *,
    event_bus_name: str,
    notification_topic_arn: str,
    training_role_arn: str,
    **resources: str | int,
) -> ControlPlaneConfig:
    """The deployment's values: those that come from ``cdk.json`` (``settings``) derived here, once,
    for the training stack, the serving stack and local mode; ``resources`` are the names and ARNs
    each of them knows (the serving stack knows the endpoint and its data capture, the training stack
    and local mode do not)."""
    return ControlPlaneConfig(
        deployment=settings.deployment,
        event_bus_name=event_bus_name,
        notification_topic_arn=notification_topic_arn,
        training_role_arn=training_role_arn,
        detector_config=settings.detector.to_json(),
        retrain_policy=settings.retrain_policy.to_json(),
        stop_on_divergence=settings.stop_on_divergence,
        finish_diverged_within_epochs=settings.finish_diverged_within_epochs,
        promotion_margin=settings.promotion_margin,
        endpoint_instance_type=settings.serving.instance_type,
        endpoint_min_capacity=settings.serving.min_capacity,
        endpoint_max_capacity=settings.serving.max_capacity,
        endpoint_target_invocations=settings.serving.target_invocations_per_instance,
        **resources,  # type: ignore[arg-type]
    )
