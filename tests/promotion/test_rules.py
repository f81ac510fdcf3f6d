"""The promotion rules on their own: margin, metric direction, status, names, settings, record format."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Literal

import pytest
from control_plane.aws.serving_record import ServingRecord, ServingRecordError
from control_plane.logic.promotion import (
    compare,
    serving_name,
    status_veto,
)
from hypothesis import given
from hypothesis import strategies as st
from o2v_core.endpoint_deployment import Scaling, data_capture_config, deployment_config
from o2v_core.function_settings import PromoterSettings
from o2v_core.functions import PROMOTER
from o2v_core.naming import JOB_NAME_PATTERN, MAX_JOB_NAME, TAG_BEST_EPOCH_ARTIFACT, job_name, job_prefix
from o2v_core.runtime_config import ConfigError, ControlPlaneConfig

from tests.promotion.support import CONFIG

LOSS = "validation:cross_entropy"
SCORE = "validation:accuracy"


def served(value: float, metric: str = LOSS) -> ServingRecord:
    return ServingRecord(
        modelDataUrl="s3://b/m.tar.gz",
        trainingJobName="demo-sts-a1",
        metricName=metric,
        metricValue=value,
        modelName="demo-m-sts-a1",
        endpointConfigName="demo-c-sts-a1",
    )


@pytest.mark.parametrize(
    ("candidate", "metric", "serving", "margin", "promote"),
    [
        (0.49, LOSS, 0.5, 0.0, True),  # any strict improvement of a loss
        (0.5, LOSS, 0.5, 0.0, False),  # equal is not better
        (0.46, LOSS, 0.5, 0.1, False),  # needs < 0.45
        (0.44, LOSS, 0.5, 0.1, True),
        (0.81, SCORE, 0.8, 0.0, True),  # accuracy: higher is better
        (0.79, SCORE, 0.8, 0.0, False),
        (0.85, SCORE, 0.8, 0.1, False),  # needs > 0.88
        (-0.2, LOSS, -0.1, 0.5, True),  # relative to |served| even for negative values
    ],
)
def test_margin_is_relative_and_follows_the_metric_direction(
    candidate: float, metric: str, serving: float, margin: float, promote: bool
) -> None:
    assert compare(candidate, metric, served(serving, metric), margin).promote is promote


def test_first_model_needs_only_a_finite_value() -> None:
    assert compare(0.9, LOSS, None, 0.1).promote
    assert not compare(math.nan, LOSS, None, 0.0).promote
    assert not compare(math.inf, LOSS, served(0.5), 0.0).promote


def test_different_metrics_are_not_compared() -> None:
    verdict = compare(0.1, "validation:mean_squared_error", served(0.5, LOSS), 0.0)
    assert not verdict.promote
    assert "not comparable" in verdict.reason


def test_status_rule() -> None:
    assert status_veto("Completed", {}) is None
    assert status_veto("Stopped", {TAG_BEST_EPOCH_ARTIFACT: "true"}) is None
    assert status_veto("Stopped", {TAG_BEST_EPOCH_ARTIFACT: "TRUE"}) is None
    assert TAG_BEST_EPOCH_ARTIFACT in str(status_veto("Stopped", {}))
    assert TAG_BEST_EPOCH_ARTIFACT in str(status_veto("Stopped", {TAG_BEST_EPOCH_ARTIFACT: "false"}))
    for status in ("Failed", "InProgress", "Stopping"):
        assert status_veto(status, {TAG_BEST_EPOCH_ARTIFACT: "true"}) is not None


@given(
    lineage=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=80).filter(
        lambda s: any(c.isalnum() for c in s)
    ),
    attempt=st.integers(min_value=1, max_value=999),
    deployment=st.sampled_from(["demo", "p", "a-very-long-deployment-x"]),
)
def test_serving_names_are_valid_deterministic_and_prefixed(lineage: str, attempt: int, deployment: str) -> None:
    job = job_name(deployment, lineage, attempt)
    kinds: tuple[Literal["model", "config"], ...] = ("model", "config")
    for kind in kinds:
        name = serving_name(deployment, job, kind)
        assert name == serving_name(deployment, job, kind)
        assert name.startswith(job_prefix(deployment))
        assert len(name) <= MAX_JOB_NAME
        assert JOB_NAME_PATTERN.match(name), name


def test_long_job_names_that_share_a_prefix_get_distinct_names() -> None:
    first = job_name("a-very-long-deployment-x", "l" * 60, 1)
    second = job_name("a-very-long-deployment-x", "l" * 60, 2)
    assert serving_name("a-very-long-deployment-x", first, "model") != serving_name(
        "a-very-long-deployment-x", second, "model"
    )


def test_blue_green_without_alarms_has_no_rollback_section() -> None:
    config = deployment_config(())
    assert "AutoRollbackConfiguration" not in config
    assert config["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"endpoint_name": ""}, "O2V_ENDPOINT_NAME"),
        ({"serving_model_parameter": ""}, "O2V_SERVING_MODEL_PARAMETER"),
        ({"model_role_arn": ""}, "O2V_MODEL_ROLE_ARN"),
        ({"image_uri": ""}, "O2V_IMAGE_URI"),
        ({"promotion_margin": 1.0}, "O2V_PROMOTION_MARGIN"),
        ({"promotion_margin": -0.1}, "O2V_PROMOTION_MARGIN"),
        ({"rollback_alarm_names": ",".join(f"a{i}" for i in range(11))}, "O2V_ROLLBACK_ALARM_NAMES"),
        ({"data_capture_sampling_percentage": 101}, "O2V_DATA_CAPTURE_SAMPLING_PERCENTAGE"),
        ({"data_capture_sampling_percentage": -1}, "O2V_DATA_CAPTURE_SAMPLING_PERCENTAGE"),
        ({"data_capture_s3_uri": ""}, "O2V_DATA_CAPTURE_S3_URI"),
        ({"endpoint_min_capacity": 0}, "O2V_ENDPOINT_MIN_CAPACITY"),
        ({"endpoint_min_capacity": 4, "endpoint_max_capacity": 3}, "O2V_ENDPOINT_MAX_CAPACITY"),
        ({"endpoint_target_invocations": 0}, "O2V_ENDPOINT_TARGET_INVOCATIONS"),
    ],
)
def test_settings_errors_name_the_variable(change: dict[str, object], variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        PromoterSettings.from_config(replace(CONFIG, **change))  # type: ignore[arg-type]


def test_first_endpoint_settings_round_trip_through_the_environment() -> None:
    # What the promoter's Lambda environment holds (the stacks' and local mode's one builder).
    settings = PromoterSettings.from_env(PROMOTER.environment(CONFIG))
    assert settings.endpoint_min_capacity == CONFIG.endpoint_min_capacity
    assert settings.scaling == Scaling(CONFIG.endpoint_min_capacity, CONFIG.endpoint_max_capacity,
                                       float(CONFIG.endpoint_target_invocations))
    capture = data_capture_config(CONFIG.data_capture_s3_uri, 20, CONFIG.data_capture_kms_key_arn)
    assert (settings.endpoint_kms_key_arn, settings.first_data_capture) == (CONFIG.endpoint_kms_key_arn, capture)
    with pytest.raises(ConfigError, match="O2V_DATA_CAPTURE_SAMPLING_PERCENTAGE must be an integer"):
        ControlPlaneConfig.from_env(CONFIG.to_env() | {"O2V_DATA_CAPTURE_SAMPLING_PERCENTAGE": "12.5"})


def test_without_capture_or_key_settings_the_first_config_has_neither() -> None:
    bare = replace(CONFIG, endpoint_kms_key_arn="", data_capture_s3_uri="", data_capture_sampling_percentage=0)
    settings = PromoterSettings.from_config(bare)
    assert (settings.endpoint_kms_key_arn, settings.first_data_capture) == ("", None)


def test_data_capture_at_zero_percent_is_configured_but_off() -> None:
    config = data_capture_config("s3://b/capture/", 0, None)
    assert (config["EnableCapture"], config["InitialSamplingPercentage"], "KmsKeyId" in config) == (False, 0, False)


def test_alarm_names_are_split_and_trimmed() -> None:
    spaced = replace(CONFIG, rollback_alarm_names=" a, ,b ")
    settings = PromoterSettings.from_config(spaced)
    assert settings.rollback_alarms == ("a", "b")


def test_record_round_trips_and_placeholder_means_nothing_served() -> None:
    record = replace(served(0.5), vocab="s3://b/vocab.json")
    assert ServingRecord.from_json(record.to_json(), where="p") == record
    assert "vocab" not in served(0.5).to_json()
    assert ServingRecord.from_json("{}", where="p") is None


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"modelDataUrl": "s3://b/m"}', "'trainingJobName'"),
        (served(0.5).to_json().replace("0.5", '"low"'), "'metricValue'"),
        (served(0.5).to_json()[:-1] + ',"vocab":""}', "'vocab'"),
    ],
)
def test_bad_records_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ServingRecordError, match=field):
        ServingRecord.from_json(text, where="SSM parameter '/o2v/demo/serving-model'")
