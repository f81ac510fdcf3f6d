"""One typed, validated settings object, read from the ``cdk.json`` context.

The one home of the environment's settings: the CDK app (``app.py``, ``stacks/``), the CLI and
local mode (``training/``) and the bench all read ``cdk.json`` through :func:`read_cdk_context`
and :func:`load_settings` here. Standard library only, like the rest of ``o2v_core``.

``cdk.json`` holds every environment under ``environments``; ``-c env=NAME`` picks one
(default: the context value ``env``). Every error names the key and the allowed values, so a
bad config fails ``cdk synth`` before anything reaches CloudFormation.

Object2Vec hyperparameters are validated with :mod:`o2v_core.hyperparameters`, the one place
that lists their names and ranges.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from o2v_core import hyperparameters
from o2v_core.config_check import ConfigFieldError
from o2v_core.detector import DetectorConfig
from o2v_core.naming import NamingError, job_prefix
from o2v_core.retrain_policy import RetrainPolicy

RemovalPolicyName = Literal["retain", "destroy"]
_T = TypeVar("_T")

# Object2Vec "supports P2, P3, G4dn, and G5 GPU instance families for training and inference"
# (shared/reference/object2vec.md section 5); CPU inference is supported too (the SDK's
# integration test deploys a CPU endpoint). Training here is GPU only.
GPU_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.p2.xlarge", "ml.p2.8xlarge", "ml.p2.16xlarge",
    "ml.p3.2xlarge", "ml.p3.8xlarge", "ml.p3.16xlarge",
    "ml.g4dn.xlarge", "ml.g4dn.2xlarge", "ml.g4dn.4xlarge", "ml.g4dn.8xlarge", "ml.g4dn.12xlarge",
    "ml.g4dn.16xlarge",
    "ml.g5.xlarge", "ml.g5.2xlarge", "ml.g5.4xlarge", "ml.g5.8xlarge", "ml.g5.12xlarge", "ml.g5.16xlarge",
    "ml.g5.24xlarge", "ml.g5.48xlarge",
)  # fmt: skip
CPU_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.m5.large", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge", "ml.m5.12xlarge", "ml.m5.24xlarge",
    "ml.c5.large", "ml.c5.xlarge", "ml.c5.2xlarge", "ml.c5.4xlarge", "ml.c5.9xlarge", "ml.c5.18xlarge",
)  # fmt: skip
TRAINING_INSTANCE_TYPES = GPU_INSTANCE_TYPES
ENDPOINT_INSTANCE_TYPES = CPU_INSTANCE_TYPES + GPU_INSTANCE_TYPES
# Families with local NVMe instance storage: SageMaker rejects an endpoint config's KmsKeyId
# for them (the instance store is encrypted by the hardware instead).
INSTANCE_STORAGE_FAMILIES: tuple[str, ...] = ("g4dn", "g5")

# Values CloudWatch Logs accepts for RetentionInDays.
LOG_RETENTION_DAYS: tuple[int, ...] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
REMOVAL_POLICIES: tuple[str, ...] = ("retain", "destroy")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_ACCOUNT = re.compile(r"^\d{12}$")


class SettingsError(ValueError):
    """The cdk.json context is invalid; the message names the key and the allowed values."""


@dataclass(frozen=True)
class TrainingSettings:
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int


@dataclass(frozen=True)
class ServingSettings:
    instance_type: str
    min_capacity: int
    max_capacity: int
    target_invocations_per_instance: int
    data_capture_sampling_percentage: int
    # Captured requests and responses (users' text) expire this many days after capture.
    data_capture_expiration_days: int
    # Rollback alarm threshold of a blue/green update: average ModelLatency above this rolls back.
    max_model_latency_ms: int

    @property
    def instance_has_local_storage(self) -> bool:
        return self.instance_type.split(".")[1] in INSTANCE_STORAGE_FAMILIES


@dataclass(frozen=True)
class Settings:
    env_name: str
    deployment: str
    region: str | None
    account: str | None
    removal_policy: RemovalPolicyName
    noncurrent_version_expiration_days: int
    log_retention_days: int
    training: TrainingSettings
    serving: ServingSettings
    hyperparameters: Mapping[str, hyperparameters.Value]
    # Retrain bounds (max attempts, dropout step and cap) and detector thresholds, parsed by
    # their owners in o2v_core; the handlers receive them back as JSON.
    retrain_policy: RetrainPolicy
    detector: DetectorConfig
    stop_on_divergence: bool
    # A diverged job whose own early stopping ends it within this many more epochs is left to finish
    # (its artifact holds its best epoch, a promotion candidate); o2v_core.early_stopping.choose_stop.
    finish_diverged_within_epochs: int
    promotion_margin: float
    notification_email: str | None

    @property
    def retain_data(self) -> bool:
        return self.removal_policy == "retain"

    @property
    def hyperparameters_json(self) -> str:
        """First-attempt hyperparameters in CreateTrainingJob's string form."""
        return json.dumps(hyperparameters.to_sagemaker(self.hyperparameters), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Loading


def read_cdk_context(path: Path) -> dict[str, Any]:
    """The ``context`` block of cdk.json at ``path``, as the CDK CLI hands it to the app."""
    try:
        context = json.loads(path.read_text(encoding="utf-8"))["context"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as error:
        raise SettingsError(f"cannot read the settings in {path}: {error}") from None
    if not isinstance(context, dict):
        raise SettingsError(f"cannot read the settings in {path}: 'context' must be a JSON object")
    return context


def settings_from_cdk_json(path: Path, env_name: str | None = None) -> Settings:
    """The validated settings of ``env_name`` (default: cdk.json's own ``env``) in cdk.json at ``path``."""
    context = read_cdk_context(path)
    if env_name is not None:
        context = {**context, "env": env_name}
    return load_settings(context.get)


def load_settings(get_context: Callable[[str], Any]) -> Settings:
    """Read and validate the environment picked by the ``env`` context value.

    ``get_context`` is ``app.node.try_get_context``.
    """
    environments = get_context("environments")
    if not isinstance(environments, Mapping) or not environments:
        raise SettingsError("cdk.json context 'environments' must be an object with one entry per environment")
    env_name = get_context("env")
    if env_name is None:
        raise SettingsError(f"context 'env' is not set; allowed: {', '.join(sorted(environments))} (use -c env=NAME)")
    if env_name not in environments:
        raise SettingsError(f"context 'env' is {env_name!r}; allowed: {', '.join(sorted(environments))}")
    return parse_environment(str(env_name), environments[env_name])


def parse_environment(env_name: str, raw: object) -> Settings:
    """Validate one entry of ``environments``."""
    top = _Section(f"environments.{env_name}", raw)
    deployment = top.string("deployment")
    try:
        job_prefix(deployment)
    except NamingError as error:
        raise SettingsError(f"{top.key('deployment')}: {error}") from None
    region = top.optional_string("region", pattern=_REGION, allowed="an AWS region name such as eu-west-1")
    account = top.optional_string("account", pattern=_ACCOUNT, allowed="a 12-digit AWS account id")
    removal = top.choice("removal_policy", REMOVAL_POLICIES)
    training = _parse_training(top.section("training"))
    serving = _parse_serving(top.section("serving"))
    first_hyperparameters = _parse_hyperparameters(top.key("hyperparameters"), top.mapping("hyperparameters"))
    retrain_policy = _parse_retrain_policy(
        top.key("retrain_policy"), top.mapping("retrain_policy"), first_hyperparameters
    )
    detector = _parse_config(top.key("detector"), top.mapping("detector"), DetectorConfig.from_mapping)
    _check_detector_fits_early_stopping(top.key("detector"), detector, first_hyperparameters)
    settings = Settings(
        env_name=env_name,
        deployment=deployment,
        region=region,
        account=account,
        removal_policy="retain" if removal == "retain" else "destroy",
        noncurrent_version_expiration_days=top.integer("noncurrent_version_expiration_days", 1, 3650),
        log_retention_days=top.one_of_ints("log_retention_days", LOG_RETENTION_DAYS),
        training=training,
        serving=serving,
        hyperparameters=first_hyperparameters,
        retrain_policy=retrain_policy,
        detector=detector,
        stop_on_divergence=top.boolean("stop_on_divergence"),
        finish_diverged_within_epochs=top.integer("finish_diverged_within_epochs", 0, 100),
        promotion_margin=top.number("promotion_margin", 0.0, 1.0e9),
        notification_email=top.optional_string("notification_email", pattern=_EMAIL, allowed="an email address"),
    )
    top.finish()
    return settings


def _check_detector_fits_early_stopping(
    where: str, detector: DetectorConfig, first_hyperparameters: dict[str, hyperparameters.Value]
) -> None:
    # Object2Vec ends a job after early_stopping_patience epochs without improvement; a detector
    # that needs more epochs of rise than that could never fire, and nothing would be retrained.
    default = hyperparameters.SCHEMA["early_stopping_patience"].default
    early_stopping = first_hyperparameters.get("early_stopping_patience", default)
    assert isinstance(early_stopping, int)
    if detector.patience > early_stopping:
        raise SettingsError(
            f"{where}.patience: {detector.patience} is more than hyperparameters.early_stopping_patience "
            f"({early_stopping}); allowed: int in [1, {early_stopping}] (the job stops itself before a longer "
            "rise can be seen), or raise early_stopping_patience"
        )


def _parse_training(section: _Section) -> TrainingSettings:
    training = TrainingSettings(
        instance_type=section.choice("instance_type", TRAINING_INSTANCE_TYPES),
        volume_size_gb=section.integer("volume_size_gb", 1, 16_384),
        max_runtime_seconds=section.integer("max_runtime_seconds", 1, 28 * 24 * 3600),
    )
    section.finish()
    return training


def _parse_serving(section: _Section) -> ServingSettings:
    min_capacity = section.integer("min_capacity", 1, 100)
    max_capacity = section.integer("max_capacity", 1, 100)
    if max_capacity < min_capacity:
        raise SettingsError(
            f"{section.key('max_capacity')}: {max_capacity} is below min_capacity {min_capacity}; "
            f"allowed: an integer in [{min_capacity}, 100]"
        )
    serving = ServingSettings(
        instance_type=section.choice("instance_type", ENDPOINT_INSTANCE_TYPES),
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        target_invocations_per_instance=section.integer("target_invocations_per_instance", 1, 1_000_000),
        data_capture_sampling_percentage=section.integer("data_capture_sampling_percentage", 0, 100),
        data_capture_expiration_days=section.integer("data_capture_expiration_days", 1, 3650),
        max_model_latency_ms=section.integer("max_model_latency_ms", 1, 60_000),
    )
    if "initial_model_data_url" in section.raw:
        raise SettingsError(
            f"{section.key('initial_model_data_url')}: no longer used; remove it. No stack serves a model: "
            "the first promoted training job creates the endpoint (docs/promotion.md, 'Who owns what')"
        )
    section.finish()
    return serving


def _parse_hyperparameters(where: str, raw: Mapping[str, Any]) -> dict[str, hyperparameters.Value]:
    return _parse_config(where, raw, lambda values: hyperparameters.validate(values, where=f"cdk.json {where}"))


def _parse_config(where: str, raw: Mapping[str, Any], parse: Callable[[Mapping[str, object]], _T]) -> _T:
    """Parse one config object with its owner's parser; its field error becomes the cdk.json key path."""
    try:
        return parse(raw)
    except ConfigFieldError as error:
        raise SettingsError(f"{where}.{error.field}: {error}") from None


def _parse_retrain_policy(
    where: str, raw: Mapping[str, Any], first: Mapping[str, hyperparameters.Value]
) -> RetrainPolicy:
    policy = _parse_config(where, raw, RetrainPolicy.from_mapping)
    dropout = hyperparameters.SCHEMA["dropout"]
    first_dropout = float(first.get("dropout", dropout.default or 0.0))
    if policy.dropout_cap < first_dropout:
        raise SettingsError(
            f"{where}.dropout_cap: {policy.dropout_cap:g} is below the first attempt's dropout {first_dropout:g} "
            f"(hyperparameters.dropout), so no retrain could add dropout; allowed: a number >= {first_dropout:g}"
        )
    return policy


# ---------------------------------------------------------------------------------------------
# A checked view of one JSON object


class _Section:
    """Reads keys of one context object; every error names the full key path."""

    def __init__(self, path: str, raw: object) -> None:
        if not isinstance(raw, Mapping):
            raise SettingsError(f"{path}: must be a JSON object, got {type(raw).__name__}")
        self.path = path
        self.raw: Mapping[str, Any] = raw
        self.read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}"

    def required(self, name: str) -> Any:
        self.read.add(name)
        if name not in self.raw:
            raise SettingsError(f"{self.key(name)} is missing")
        return self.raw[name]

    def optional(self, name: str) -> Any:
        self.read.add(name)
        return self.raw.get(name)

    def section(self, name: str) -> _Section:
        return _Section(self.key(name), self.required(name))

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self.required(name)
        if not isinstance(value, Mapping):
            raise SettingsError(f"{self.key(name)}: must be a JSON object, got {type(value).__name__}")
        return value

    def string(self, name: str) -> str:
        value = self.required(name)
        if not isinstance(value, str) or not value:
            raise SettingsError(f"{self.key(name)}: {value!r} is not valid; allowed: a non-empty string")
        return value

    def optional_string(self, name: str, *, pattern: re.Pattern[str], allowed: str) -> str | None:
        value = self.optional(name)
        if value is None:
            return None
        if not isinstance(value, str) or not pattern.match(value):
            raise SettingsError(f"{self.key(name)}: {value!r} is not valid; allowed: {allowed} or null")
        return value

    def choice(self, name: str, options: tuple[str, ...]) -> str:
        value = self.required(name)
        if value not in options:
            raise SettingsError(f"{self.key(name)}: {value!r} is not allowed; allowed: {', '.join(options)}")
        return str(value)

    def boolean(self, name: str) -> bool:
        value = self.required(name)
        if not isinstance(value, bool):
            raise SettingsError(f"{self.key(name)}: {value!r} is not valid; allowed: true or false")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.required(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise SettingsError(f"{self.key(name)}: {value!r} is not valid; allowed: an integer in [{low}, {high}]")
        return value

    def one_of_ints(self, name: str, options: tuple[int, ...]) -> int:
        value = self.required(name)
        if isinstance(value, bool) or value not in options:
            raise SettingsError(
                f"{self.key(name)}: {value!r} is not allowed; allowed: {', '.join(str(o) for o in options)}"
            )
        return int(value)

    def number(self, name: str, low: float, high: float) -> float:
        value = self.required(name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise SettingsError(f"{self.key(name)}: {value!r} is not valid; allowed: a number in [{low}, {high}]")
        return float(value)

    def finish(self) -> None:
        """Reject keys nobody reads: a typo must not silently fall back to a default."""
        unknown = sorted(set(self.raw) - self.read)
        if unknown:
            raise SettingsError(
                f"{self.path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(self.read))}"
            )
