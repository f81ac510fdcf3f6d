"""The control plane's runtime settings, passed to every handler as environment variables.

The CDK stacks build the Lambda environment with :meth:`ControlPlaneConfig.to_env`; local mode
sets the same variables for its event pump; handlers read them with
:meth:`ControlPlaneConfig.from_env`. Variable names are defined here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields

PREFIX = "O2V_"


class ConfigError(ValueError):
    """A runtime setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class ControlPlaneConfig:
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
    # Comma-separated CloudWatch alarm names that roll a blue/green endpoint update back.
    rollback_alarm_names: str = ""
    # SSM String parameter holding only the served model's ModelDataUrl: the serving stack reads it
    # with a CloudFormation dynamic reference, so a redeploy serves the promoted artifact.
    serving_model_data_url_parameter: str = ""
    # What the promoter's endpoint configs carry when it creates the first endpoint (with an
    # endpoint in place, it copies KmsKeyId and DataCaptureConfig from the live endpoint config).
    # The serving stack passes the values its own endpoint config uses; empty: none.
    endpoint_kms_key_arn: str = ""  # storage-volume key; empty for instance types with local NVMe storage
    data_capture_s3_uri: str = ""  # empty: no DataCaptureConfig
    data_capture_sampling_percentage: int = 0  # 0-100; 0 keeps the config with capture disabled
    data_capture_kms_key_arn: str = ""

    def to_env(self) -> dict[str, str]:
        env = {}
        for item in fields(self):
            value = getattr(self, item.name)
            env[PREFIX + item.name.upper()] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ControlPlaneConfig:
        env = os.environ if environ is None else environ
        kwargs: dict[str, object] = {}
        for item in fields(cls):
            key = PREFIX + item.name.upper()
            if key not in env:
                if item.default is not MISSING:
                    continue
                raise ConfigError(f"environment variable {key} is not set")
            raw = env[key]
            if item.type in ("bool", bool):
                if raw.lower() not in ("true", "false"):
                    raise ConfigError(f"environment variable {key} must be true or false, got {raw!r}")
                kwargs[item.name] = raw.lower() == "true"
            elif item.type in ("int", int):
                try:
                    kwargs[item.name] = int(raw)
                except ValueError:
                    raise ConfigError(f"environment variable {key} must be an integer, got {raw!r}") from None
            elif item.type in ("float", float):
                try:
                    kwargs[item.name] = float(raw)
                except ValueError:
                    raise ConfigError(f"environment variable {key} must be a number, got {raw!r}") from None
            else:
                kwargs[item.name] = raw
        return cls(**kwargs)  # type: ignore[arg-type]
