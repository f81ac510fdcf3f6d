"""cdk.json context -> one validated Settings object; bad config names the key and allowed values."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from o2v_core import hyperparameters
from o2v_core.settings import (
    ENDPOINT_INSTANCE_TYPES,
    GPU_INSTANCE_TYPES,
    Settings,
    SettingsError,
    load_settings,
    parse_environment,
    read_cdk_context,
)

from stacks.app_builder import CDK_JSON, REPO_ROOT


def context() -> dict[str, Any]:
    return copy.deepcopy(read_cdk_context(CDK_JSON))


def settings_for(env_name: str, edit: Callable[[dict[str, Any]], None] | None = None) -> Settings:
    ctx = context()
    if edit is not None:
        edit(ctx["environments"][env_name])
    return parse_environment(env_name, ctx["environments"][env_name])


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_every_configured_environment_is_valid(env_name: str) -> None:
    settings = settings_for(env_name)
    assert settings.env_name == env_name
    assert settings.training.instance_type in GPU_INSTANCE_TYPES
    assert settings.serving.min_capacity <= settings.serving.max_capacity
    # hyperparameters come back parsed by the shared schema, not re-listed here
    assert settings.hyperparameters == hyperparameters.validate(context()["environments"][env_name]["hyperparameters"])


def test_dev_destroys_and_prod_retains() -> None:
    assert settings_for("dev").removal_policy == "destroy"
    assert settings_for("prod").removal_policy == "retain"


def test_default_training_instance_is_a_current_gpu_type() -> None:
    assert settings_for("prod").training.instance_type == "ml.g5.xlarge"


def test_env_is_chosen_by_context_and_unknown_env_names_the_allowed_ones() -> None:
    ctx = context()
    ctx["env"] = "prod"
    assert load_settings(ctx.get).deployment == ctx["environments"]["prod"]["deployment"]
    ctx["env"] = "staging"
    with pytest.raises(SettingsError, match=r"'env' is 'staging'; allowed: dev, prod"):
        load_settings(ctx.get)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda e: e["training"].update(instance_type="ml.t3.medium"),
            r"environments\.dev\.training\.instance_type: 'ml\.t3\.medium' is not allowed; allowed: ml\.p2\.xlarge, ",
        ),
        (
            lambda e: e["training"].update(instance_type="ml.m5.large"),  # CPU: not for GPU training
            r"training\.instance_type: 'ml\.m5\.large' is not allowed; allowed: .*ml\.g5\.xlarge",
        ),
        (
            lambda e: e["serving"].update(instance_type="ml.inf2.xlarge"),
            r"serving\.instance_type: 'ml\.inf2\.xlarge' is not allowed; allowed: ml\.m5\.large, ",
        ),
        (
            lambda e: e["serving"].update(min_capacity=3, max_capacity=2),
            r"serving\.max_capacity: 2 is below min_capacity 3; allowed: an integer in \[3, 100\]",
        ),
        (
            lambda e: e["serving"].update(min_capacity=0),
            r"serving\.min_capacity: 0 is not valid; allowed: an integer in \[1, 100\]",
        ),
        (
            lambda e: e["serving"].update(data_capture_expiration_days=0),
            r"serving\.data_capture_expiration_days: 0 is not valid; allowed: an integer in \[1, 3650\]",
        ),
        (
            lambda e: e["serving"].pop("data_capture_expiration_days"),
            r"environments\.dev\.serving\.data_capture_expiration_days is missing",
        ),
        (
            lambda e: e.update(removal_policy="snapshot"),
            r"removal_policy: 'snapshot' is not allowed; allowed: retain, destroy",
        ),
        (lambda e: e.update(deployment="O2V_Dev"), r"deployment: deployment name 'O2V_Dev': use 1-24 lowercase"),
        (lambda e: e.update(log_retention_days=10), r"log_retention_days: 10 is not allowed; allowed: 1, 3, 5, 7, 14"),
        (lambda e: e.update(notification_email="ops"), r"notification_email: 'ops' is not valid; allowed: an email"),
        (  # no stack serves a configured artifact: the first promotion creates the endpoint (issue 24)
            lambda e: e["serving"].update(initial_model_data_url="s3://bucket/model.tar.gz"),
            r"serving\.initial_model_data_url: no longer used; remove it\. No stack serves a model",
        ),
        (
            lambda e: e["hyperparameters"].update(dropout=1.5),
            r"hyperparameters\.dropout: .*allowed: float in \[0\.0, 1\.0\]",
        ),
        (lambda e: e["hyperparameters"].update(drop_out=0.1), r"hyperparameters\.drop_out: .*unknown.*known names"),
        (lambda e: e["hyperparameters"].pop("enc0_vocab_size"), r"hyperparameters\.enc0_vocab_size: .*is required"),
        (
            lambda e: e["retrain_policy"].update(max_attempts=0),
            r"retrain_policy\.max_attempts: .*allowed: int in \[1, 20\]",
        ),
        (
            lambda e: e["retrain_policy"].update(max_dropout=0.5),
            r"retrain_policy\.max_dropout: .*unknown; known fields",
        ),
        (
            lambda e: e["retrain_policy"].update(on_no_improvement="pause"),
            r"retrain_policy\.on_no_improvement: .*'pause' is not one of 'stop', 'weight_decay', 'smaller_step'",
        ),
        (
            lambda e: e["retrain_policy"].update(on_no_improvement="weight_decay"),
            r"retrain_policy\.weight_decay_step: .*must be above 0 when on_no_improvement is 'weight_decay'",
        ),
        (lambda e: e["detector"].update(patience=0), r"detector\.patience: .*out of range"),
        (lambda e: e["training"].pop("volume_size_gb"), r"environments\.dev\.training\.volume_size_gb is missing"),
        (lambda e: e["serving"].update(instance_typ="ml.m5.large"), r"serving: unknown key\(s\) instance_typ; known: "),
        (
            lambda e: e.update(stop_on_divergence="yes"),
            r"stop_on_divergence: 'yes' is not valid; allowed: true or false",
        ),
        (
            lambda e: e.update(finish_diverged_within_epochs=-1),
            r"finish_diverged_within_epochs: -1 is not valid; allowed: an integer in \[0, 100\]",
        ),
        (
            lambda e: e.pop("finish_diverged_within_epochs"),
            r"environments\.dev\.finish_diverged_within_epochs is missing",
        ),
    ],
)
def test_bad_config_names_the_key_and_the_allowed_values(edit: Callable[[dict[str, Any]], None], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        settings_for("dev", edit)


def test_dropout_cap_below_the_first_attempts_dropout_is_rejected() -> None:
    def edit(env: dict[str, Any]) -> None:
        env["hyperparameters"]["dropout"] = 0.6
        env["retrain_policy"]["dropout_cap"] = 0.5

    with pytest.raises(
        SettingsError, match=r"retrain_policy\.dropout_cap: 0\.5 is below the first attempt's dropout 0\.6"
    ):
        settings_for("dev", edit)


@pytest.mark.parametrize("instance_type", ENDPOINT_INSTANCE_TYPES)
def test_only_nvme_instance_families_count_as_local_storage(instance_type: str) -> None:
    # SageMaker refuses an endpoint config KmsKeyId for instances with local NVMe storage.
    def edit(env: dict[str, Any]) -> None:
        env["serving"]["instance_type"] = instance_type

    nvme = instance_type.startswith(("ml.g4dn.", "ml.g5."))
    assert settings_for("dev", edit).serving.instance_has_local_storage is nvme


def test_app_py_fails_synth_with_the_message(tmp_path: Path) -> None:
    """The CDK CLI passes context through CDK_CONTEXT_JSON; a bad value stops app.py at once."""
    ctx = context()
    ctx["env"] = "prod"
    ctx["environments"]["prod"]["serving"]["instance_type"] = "ml.t2.medium"
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(ctx), "CDK_OUTDIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert (
        "environments.prod.serving.instance_type: 'ml.t2.medium' is not allowed; allowed: ml.m5.large" in result.stderr
    )


def test_a_detector_patience_longer_than_object2vec_early_stopping_is_rejected() -> None:
    # The job would stop itself before the detector could see the rise: nothing would be retrained.
    def edit(env: dict[str, Any]) -> None:
        env["detector"]["patience"] = 4
        env["hyperparameters"]["early_stopping_patience"] = 3

    message = r"detector\.patience: 4 is more than hyperparameters\.early_stopping_patience"
    with pytest.raises(SettingsError, match=message):
        settings_for("dev", edit)

    def raised(env: dict[str, Any]) -> None:
        edit(env)
        env["hyperparameters"]["early_stopping_patience"] = 5

    assert settings_for("dev", raised).detector.patience == 4
