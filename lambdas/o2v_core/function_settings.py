"""Each control-plane function's own typed settings, and the one builder of its environment.

A function's environment holds exactly the fields of its settings class, so a handler can read
nothing it does not use. :func:`function_environment` builds it from the deployment-wide
:class:`~o2v_core.runtime_config.ControlPlaneConfig`; the stacks (``ControlPlaneFunction``) and
local mode (its event pump) both call it, and each handler reads its class with ``from_env()``.
Which class a function uses is part of its spec (``o2v_core.functions.FunctionSpec.settings``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Self

from o2v_core.runtime_config import ControlPlaneConfig, EnvironmentSettings
from o2v_core.settings import Settings


class FromDeployment(EnvironmentSettings):
    @classmethod
    def from_config(cls, config: ControlPlaneConfig) -> Self:
        """This function's fields, taken from the deployment's values."""
        return cls(**{item.name: getattr(config, item.name) for item in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class JudgeSettings(FromDeployment):
    """The metric-line judge's and the safety-net monitor's: judge a running job, maybe stop it."""

    deployment: str
    event_bus_name: str
    detector_config: str = "{}"  # JSON, o2v_core.detector.DetectorConfig
    stop_on_divergence: bool = True
    finish_diverged_within_epochs: int = 2  # o2v_core.early_stopping.choose_stop


@dataclass(frozen=True)
class EvaluatorSettings(FromDeployment):
    """The finished-job evaluator's: judge a finished job's whole curve."""

    deployment: str
    event_bus_name: str
    detector_config: str = "{}"


@dataclass(frozen=True)
class LauncherSettings(FromDeployment):
    """The retrain launcher's: the next attempt's recipe."""

    deployment: str
    event_bus_name: str
    retrain_policy: str = "{}"  # JSON, o2v_core.retrain_policy.RetrainPolicy
    artifact_bucket: str = ""  # the announcement ledger's (control_plane.aws.announcements)


@dataclass(frozen=True)
class PromoterSettings(FromDeployment):
    """The promoter's; ``control_plane.logic.promotion.PromotionSettings`` checks them at cold start
    and names the variable of any that is missing or out of range."""

    deployment: str
    event_bus_name: str
    training_role_arn: str = ""  # provenance: only this role's jobs are promotable
    artifact_bucket: str = ""  # provenance: only artifacts below its training prefix
    endpoint_name: str = ""
    serving_model_parameter: str = ""
    serving_model_data_url_parameter: str = ""
    model_role_arn: str = ""
    image_uri: str = ""
    promotion_margin: float = 0.0
    endpoint_instance_type: str = "ml.m5.large"
    rollback_alarm_names: str = ""  # comma-separated
    endpoint_kms_key_arn: str = ""
    data_capture_s3_uri: str = ""
    data_capture_sampling_percentage: int = 0
    data_capture_kms_key_arn: str = ""


@dataclass(frozen=True)
class ReconcilerSettings(PromoterSettings):
    """The reconciler's: it redoes the evaluator's, the launcher's and the promoter's steps."""

    detector_config: str = "{}"
    retrain_policy: str = "{}"
    announcement_witness_queue_url: str = ""  # the WitnessAnnouncements rule's queue


def function_environment(settings: type[FromDeployment], config: ControlPlaneConfig) -> dict[str, str]:
    """The ``O2V_*`` variables of one function: its settings class's fields, from the deployment."""
    return settings.from_config(config).to_env()


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
        **resources,  # type: ignore[arg-type]
    )
