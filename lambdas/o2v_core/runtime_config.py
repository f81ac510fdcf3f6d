"""The control plane's deployment-wide values, and the environment-variable codec of all settings.

:class:`ControlPlaneConfig` holds every value the stacks (or local mode) know about one
deployment's control plane. No handler reads it: each function gets only its own typed settings
(:mod:`o2v_core.function_settings`), built from it by :func:`o2v_core.function_settings.function_environment`,
the one builder that the stacks and local mode both call. Variable names are defined here
(``PREFIX`` + the field name, upper case) and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Self

PREFIX = "O2V_"


class ConfigError(ValueError):
    """A runtime setting is missing or malformed; the message names the variable."""


class EnvironmentCodec:
    """Dataclass settings that travel as ``O2V_<FIELD>`` environment variables (str, bool, int, float)."""

    def to_env(self) -> dict[str, str]:
        env = {}
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            env[PREFIX + item.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def variable_names(cls) -> frozenset[str]:
        """The environment variables this class reads."""
        return frozenset(PREFIX + item.name.upper() for item in fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        """Read this class's fields (and only those) from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for item in fields(cls):  # type: ignore[arg-type]
            key = PREFIX + item.name.upper()
            if key not in env:
                if item.default is not MISSING:
                    continue
                raise ConfigError(f"environment variable {key} is not set")
            kwargs[item.name] = _parse(key, env[key], item.type)
        return cls(**kwargs)


def _parse(key: str, raw: str, kind: object) -> object:
    if kind in ("bool", bool):
        if raw.lower() not in ("true", "false"):
            raise ConfigError(f"environment variable {key} must be true or false, got {raw!r}")
        return raw.lower() == "true"
    if kind in ("int", int):
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {key} must be an integer, got {raw!r}") from None
    if kind in ("float", float):
        try:
            return float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {key} must be a number, got {raw!r}") from None
    return raw


@dataclass(frozen=True)
class ControlPlaneConfig(EnvironmentCodec):
    deployment: str
    event_bus_name: str
    notification_topic_arn: str
    training_role_arn: str
    # JSON documents, parsed by o2v_core.detector.DetectorConfig / o2v_core.retrain_policy.RetrainPolicy.
    detector_config: str = "{}"
    retrain_policy: str = "{}"
    stop_on_divergence: bool = True
    finish_diverged_within_epochs: int = 2  # o2v_core.early_stopping.choose_stop
    # Promotion (serving). Empty until the serving stack is deployed.
    endpoint_name: str = ""
    serving_model_parameter: str = ""
    model_role_arn: str = ""
    image_uri: str = ""
    promotion_margin: float = 0.0
    endpoint_instance_type: str = "ml.m5.large"
    artifact_bucket: str = ""
    # The WitnessAnnouncements rule's queue (o2v_core.events.ANNOUNCEMENT_WITNESS), read by the
    # reconciler only; empty where no function reads it.
    announcement_witness_queue_url: str = ""
    # Comma-separated CloudWatch alarm names that roll a blue/green endpoint update back.
    rollback_alarm_names: str = ""
    # The promoter's endpoint: instances of a new endpoint config, and the target-tracking
    # autoscaling the reconciler keeps registered (docs/promotion.md, "Who owns what").
    # endpoint_max_capacity 0: no autoscaling.
    endpoint_min_capacity: int = 1
    endpoint_max_capacity: int = 0
    endpoint_target_invocations: int = 0  # InvocationsPerInstance per minute, the target value
    # What the promoter's endpoint configs carry when it creates the first endpoint (with an
    # endpoint in place, it copies KmsKeyId and DataCaptureConfig from the live endpoint config).
    # The serving stack passes them (the data key, the data-capture prefix); empty: none.
    endpoint_kms_key_arn: str = ""  # storage-volume key; empty for instance types with local NVMe storage
    data_capture_s3_uri: str = ""  # empty: no DataCaptureConfig
    data_capture_sampling_percentage: int = 0  # 0-100; 0 keeps the config with capture disabled
    data_capture_kms_key_arn: str = ""
