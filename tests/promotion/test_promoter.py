"""The promoter handler end to end against the SageMaker fake and a moto server: decisions, deployments, duplicates."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane.aws.serving_record import ServingRecordError
from control_plane.handlers.promoter import handler
from control_plane.logic.promotion import serving_name
from o2v_core.endpoint_deployment import data_capture_config
from o2v_core.events import MODEL_PROMOTED, PROMOTION_SKIPPED, MalformedEvent
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT
from o2v_core.runtime_config import ConfigError
from o2v_core.served_assets import TAG_VOCAB

from tests.promotion.promoting import only_event, promote, serve_first_model
from tests.promotion.support import (
    ALARMS,
    CAPTURE_URI,
    DEPLOYMENT,
    ENDPOINT,
    IMAGE,
    KEY_ARN,
    METRIC,
    PARAMETER,
    Aws,
    succeeded,
)
from tests.support import sagemaker_fake
from tests.support.lambda_context import lambda_context

# ---------------------------------------------------------------------------------------------
# First model, better, worse, equal


def test_first_model_creates_the_endpoint_and_the_record(aws: Aws) -> None:
    job = aws.training_job("sts", 1, auxiliary="s3://demo-data/datasets/sts/auxiliary/")
    artifact = aws.model_artifact(job)

    result = handler(succeeded(job, artifact=artifact, best=0.41), lambda_context())

    model_name = serving_name(DEPLOYMENT, job, "model")
    config_name = serving_name(DEPLOYMENT, job, "config")
    assert result["outcome"] == MODEL_PROMOTED
    endpoint = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "Creating"
    assert endpoint["EndpointConfigName"] == config_name
    assert aws.log.endpoint_creates == [(ENDPOINT, config_name)]
    assert aws.log.endpoint_updates == []

    model = aws.sagemaker.describe_model(ModelName=model_name)
    assert model["PrimaryContainer"]["Image"] == IMAGE
    assert model["PrimaryContainer"]["ModelDataUrl"] == artifact
    assert model["ExecutionRoleArn"].endswith(":role/demo-model")
    assert model["PrimaryContainer"]["Environment"] == {"INFERENCE_PREFERRED_MODE": "embedding"}
    assert model["EnableNetworkIsolation"] is True  # the promoter's CreateModel permission requires it
    model_tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert model_tags[TAG_VOCAB] == "s3://demo-data/datasets/sts/auxiliary/vocab.json"  # its auxiliary channel
    assert model_tags["o2v:deployment"] == DEPLOYMENT
    assert model_tags["o2v:lineage"] == "sts"
    variants = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert [(v["ModelName"], v["InstanceType"]) for v in variants] == [(model_name, "ml.m5.large")]
    # No endpoint yet, so no live config to copy: KMS key and data capture come from the settings.
    assert aws.config_settings(config_name) == (KEY_ARN, data_capture_config(CAPTURE_URI, 20, KEY_ARN))

    assert aws.record() == {
        "modelDataUrl": artifact,
        "trainingJobName": job,
        "metricName": METRIC,
        "metricValue": 0.41,
        "modelName": model_name,
        "endpointConfigName": config_name,
        "vocab": "s3://demo-data/datasets/sts/auxiliary/vocab.json",
    }
    event = only_event(aws)
    assert event["detail-type"] == MODEL_PROMOTED
    assert event["detail"] == {
        "deployment": DEPLOYMENT,
        "trainingJobName": job,
        "endpointName": ENDPOINT,
        "modelName": model_name,
        "candidateValue": 0.41,
        "previousValue": None,
        "metricName": METRIC,
    }


def test_better_attempt_is_promoted_blue_green_with_rollback_alarms(aws: Aws) -> None:
    first = serve_first_model(aws, 0.5)
    better = aws.training_job("sts", 2)

    result = promote(aws, better, 0.45)

    config_name = serving_name(DEPLOYMENT, better, "config")
    assert result["outcome"] == MODEL_PROMOTED
    assert [(name, config) for name, config, _ in aws.log.endpoint_updates] == [(ENDPOINT, config_name)]
    endpoint = aws.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "Updating"
    assert endpoint["EndpointConfigName"] == serving_name(DEPLOYMENT, first, "config")  # blue still serves
    assert endpoint["PendingDeploymentSummary"]["EndpointConfigName"] == config_name
    policy = endpoint["LastDeploymentConfig"]
    assert policy["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]["Type"] == "ALL_AT_ONCE"
    assert [a["AlarmName"] for a in policy["AutoRollbackConfiguration"]["Alarms"]] == list(ALARMS)
    assert aws.log.retained_variant_properties == [True]  # autoscaled count and data capture stay
    record = aws.record()
    assert record is not None
    assert (record["trainingJobName"], record["metricValue"]) == (better, 0.45)
    assert "vocab" not in record  # no auxiliary channel: the vocab travels inside model.tar.gz
    assert record["modelDataUrl"] == aws.model_artifact(better)
    detail = only_event(aws)["detail"]
    assert (detail["candidateValue"], detail["previousValue"]) == (0.45, 0.5)


@pytest.mark.parametrize("value", [0.5, 0.55], ids=["equal", "worse"])
def test_equal_or_worse_attempt_is_skipped(aws: Aws, value: float) -> None:
    first = serve_first_model(aws, 0.5)
    other = aws.training_job("sts", 2)

    result = promote(aws, other, value)

    assert result["outcome"] == PROMOTION_SKIPPED
    assert "not better by the margin" in str(result["reason"])
    assert aws.log.endpoint_updates == []
    with pytest.raises(ClientError, match="Could not find model"):
        aws.sagemaker.describe_model(ModelName=serving_name(DEPLOYMENT, other, "model"))
    record = aws.record()
    assert record is not None and record["trainingJobName"] == first
    event = only_event(aws)
    assert event["detail-type"] == PROMOTION_SKIPPED
    assert (event["detail"]["candidateValue"], event["detail"]["servingValue"]) == (value, 0.5)


def test_margin_is_relative_to_the_served_value(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2V_PROMOTION_MARGIN", "0.1")  # a loss must drop below 0.5 * 0.9 = 0.45
    serve_first_model(aws, 0.5)
    close = aws.training_job("sts", 2)
    clear = aws.training_job("sts", 3)

    assert promote(aws, close, 0.46)["outcome"] == PROMOTION_SKIPPED
    assert promote(aws, clear, 0.44)["outcome"] == MODEL_PROMOTED


def test_every_decision_is_logged_with_its_numbers(aws: Aws, caplog: pytest.LogCaptureFixture) -> None:
    serve_first_model(aws, 0.5)
    caplog.clear()
    promote(aws, aws.training_job("sts", 2), 0.6)

    decision = next(r for r in caplog.records if r.getMessage() == "promotion decision")
    numbers = {key: getattr(decision, key) for key in ("decision", "candidateValue", "servingValue", "margin")}
    assert numbers == {"decision": PROMOTION_SKIPPED, "candidateValue": 0.6, "servingValue": 0.5, "margin": 0.0}


# ---------------------------------------------------------------------------------------------
# Failed and diverged (stopped) attempts


def test_failed_job_is_skipped(aws: Aws) -> None:
    job = aws.training_job("sts", 1, status="Failed")

    result = promote(aws, job, 0.1)

    assert result["outcome"] == PROMOTION_SKIPPED
    assert "'Failed'" in str(result["reason"])
    assert aws.log.endpoint_creates == []
    assert aws.record() is None
    assert only_event(aws)["detail-type"] == PROMOTION_SKIPPED


@pytest.mark.parametrize(
    ("job_settings", "reason"),
    [
        (
            {"role_arn": f"arn:aws:iam::{sagemaker_fake.ACCOUNT}:role/someone-else"},
            "ran with role 'arn:aws:iam::123456789012:role/someone-else', not this deployment's training role",
        ),
        ({"output_path": "s3://demo-artifacts/elsewhere/"}, "is not below s3://demo-artifacts/training-jobs/"),
        ({"output_path": "s3://other-bucket/training-jobs/"}, "is not below s3://demo-artifacts/training-jobs/"),
    ],
)
def test_a_job_of_another_role_or_artifact_location_is_skipped(
    aws: Aws, job_settings: dict[str, str], reason: str
) -> None:
    job = aws.training_job("sts", 1, **job_settings)  # type: ignore[arg-type]

    result = promote(aws, job, 0.1)

    assert result["outcome"] == PROMOTION_SKIPPED
    assert reason in str(result["reason"])
    assert aws.log.endpoint_creates == []
    assert aws.record() is None
    assert only_event(aws)["detail-type"] == PROMOTION_SKIPPED


def test_stopped_diverged_job_is_skipped_without_the_best_epoch_tag(aws: Aws) -> None:
    serve_first_model(aws, 0.5)
    stopped = aws.training_job("sts", 2, status="Stopped")

    result = promote(aws, stopped, 0.2, final=0.3, status="Stopped")

    assert result["outcome"] == PROMOTION_SKIPPED
    assert TAG_BEST_EPOCH_ARTIFACT in str(result["reason"])
    assert aws.log.endpoint_updates == []


def test_stopped_job_whose_artifact_holds_the_best_epoch_is_promoted_on_its_best_value(aws: Aws) -> None:
    serve_first_model(aws, 0.5)
    stopped = aws.training_job("sts", 2, status="Stopped", tags={TAG_BEST_EPOCH_ARTIFACT: "true"})

    result = promote(aws, stopped, 0.3, final=0.9, status="Stopped")

    assert result["outcome"] == MODEL_PROMOTED
    assert result["candidateValue"] == 0.3


def test_a_completed_job_is_judged_by_its_best_value(aws: Aws) -> None:
    # Reference section 10d: a Completed Object2Vec job serializes its best validation epoch
    # ("Best model based on epoch M"), early-stopped or not, so its number is the best value.
    serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)

    result = promote(aws, job, 0.3, final=0.52)  # the last epoch is worse than the served 0.5

    assert result["outcome"] == MODEL_PROMOTED
    assert result["candidateValue"] == 0.3


def test_a_candidate_validated_on_another_dataset_is_skipped_naming_both_datasets(aws: Aws) -> None:
    served_data, other_data = "s3://demo-data/datasets/sts/validation/", "s3://demo-data/datasets/sick/validation/"
    first = aws.training_job("sts", 1, validation=served_data)
    assert promote(aws, first, 0.5)["outcome"] == MODEL_PROMOTED
    sagemaker_fake.settle()
    other = aws.training_job("sick", 1, validation=other_data)

    result = promote(aws, other, 0.1)  # a far lower loss, on other data: says nothing

    assert result["outcome"] == PROMOTION_SKIPPED
    assert served_data in str(result["reason"]) and other_data in str(result["reason"])
    assert aws.log.endpoint_updates == []


def test_a_candidate_validated_on_the_same_data_is_compared(aws: Aws) -> None:
    data = "s3://demo-data/datasets/sts/validation/"
    first = aws.training_job("sts", 1, validation=data)
    assert promote(aws, first, 0.5)["outcome"] == MODEL_PROMOTED
    sagemaker_fake.settle()

    result = promote(aws, aws.training_job("sts", 2, validation=data), 0.4)

    assert result["outcome"] == MODEL_PROMOTED


# ---------------------------------------------------------------------------------------------
# Duplicates


def test_sequential_duplicate_is_skipped_as_already_serving(aws: Aws) -> None:
    job = aws.training_job("sts", 1)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.5)

    first, second = handler(event, lambda_context()), handler(event, lambda_context())

    assert (first["outcome"], second["outcome"]) == (MODEL_PROMOTED, PROMOTION_SKIPPED)
    assert second["reason"] == "already serving"
    assert len(aws.log.endpoint_creates) == 1
    assert [e["detail-type"] for e in aws.events()] == [MODEL_PROMOTED, PROMOTION_SKIPPED]


def test_retry_after_a_crash_before_the_record_deploys_nothing_twice_and_leaves_the_record_to_the_reconciler(
    aws: Aws,
) -> None:
    serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    handler(event, lambda_context())
    aws.ssm.delete_parameter(Name=PARAMETER)  # as if the first run died after UpdateEndpoint
    aws.events()

    result = handler(event, lambda_context())

    assert result["outcome"] == PROMOTION_SKIPPED
    assert str(result["reason"]).startswith("already deploying (Updating)")
    assert len(aws.log.endpoint_updates) == 1
    # Concurrent duplicates cannot tell who deployed, so none of them writes the record or
    # announces; the reconciler does both once the endpoint serves the config
    # (tests/control_plane/test_reconciler.py).
    assert aws.record() is None


@pytest.mark.parametrize("endpoint_exists", [False, True], ids=["first-endpoint", "update"])
def test_concurrent_duplicates_promote_once(aws: Aws, endpoint_exists: bool) -> None:
    if endpoint_exists:
        serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    copies = 8
    barrier = threading.Barrier(copies)

    def invoke(_: int) -> dict[str, object]:
        barrier.wait()
        return handler(event, lambda_context())

    with ThreadPoolExecutor(max_workers=copies) as pool:
        results = list(pool.map(invoke, range(copies)))

    outcomes = sorted(str(r["outcome"]) for r in results)
    assert outcomes == [MODEL_PROMOTED] + [PROMOTION_SKIPPED] * (copies - 1)
    deployments = aws.log.endpoint_updates if endpoint_exists else aws.log.endpoint_creates
    assert len(deployments) == 1
    assert deployments[0][1] == serving_name(DEPLOYMENT, job, "config")
    events = aws.events()
    assert sum(e["detail-type"] == MODEL_PROMOTED for e in events) == 1
    record = aws.record()
    assert record is not None and record["trainingJobName"] == job


def test_endpoint_busy_with_another_model_defers_the_candidate(aws: Aws) -> None:
    """The bake (10 minutes) outlasts Lambda's retries (about 3 minutes): deferring, not raising,
    keeps the candidate out of the DLQ; the reconciler decides it once the endpoint is free."""
    serve_first_model(aws, 0.5)
    promote(aws, aws.training_job("sts", 2), 0.45)  # endpoint now Updating to attempt 2
    aws.events()
    later = aws.training_job("other", 1)

    result = promote(aws, later, 0.3, lineage="other")

    assert result["outcome"] == PROMOTION_SKIPPED
    assert str(result["reason"]).startswith("deferred: endpoint") and "Updating" in str(result["reason"])
    assert len(aws.log.endpoint_updates) == 1
    assert aws.tags_of_job(later)["o2v:promotion"] == "deferred"
    assert [e["detail-type"] for e in aws.events()] == [PROMOTION_SKIPPED]


def test_a_record_that_does_not_name_the_served_config_defers_instead_of_comparing(aws: Aws) -> None:
    """A stale record (a rollback, or a lost record write) is no yardstick: a worse model must not
    replace the better one the endpoint really serves."""
    serve_first_model(aws, 0.5)
    aws.ssm.put_parameter(Name=PARAMETER, Value=json.dumps({**(aws.record() or {}),
                          "endpointConfigName": "dev-c-gone", "metricValue": 9.0}), Type="String", Overwrite=True)
    job = aws.training_job("sts", 2)

    result = promote(aws, job, 0.45)

    assert result["outcome"] == PROMOTION_SKIPPED and str(result["reason"]).startswith("deferred: the record names")
    assert aws.log.endpoint_updates == []


# ---------------------------------------------------------------------------------------------
# Malformed events and bad settings raise (-> DLQ), naming the field


def _valid_event(aws: Aws) -> dict[str, Any]:
    job = aws.training_job("sts", 1)
    return succeeded(job, artifact=aws.model_artifact(job), best=0.5)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda e: e["detail"].pop("bestValue"), "detail.bestValue"),
        (lambda e: e["detail"].update(bestValue="low"), "detail.bestValue"),
        (lambda e: e["detail"].update(trainingJobName=""), "detail.trainingJobName"),
        (lambda e: e.update({"detail-type": "TrainingFailed"}), "detail-type"),
        (lambda e: e.update(source="aws.sagemaker"), "source"),
        (lambda e: e.update(detail=None), "detail"),
        (lambda e: e["detail"].update(deployment="prod"), "detail.deployment"),
        (lambda e: e["detail"].update(trainingJobName="someone-elses-job"), "detail.trainingJobName"),
    ],
    ids=["missing", "wrong-type", "empty", "detail-type", "source", "no-detail", "deployment", "foreign-job"],
)
def test_malformed_event_raises_naming_the_field(aws: Aws, mutate: Any, field: str) -> None:
    event = _valid_event(aws)
    mutate(event)

    with pytest.raises(MalformedEvent, match=f"'{field}'"):
        handler(event, lambda_context())

    assert aws.events() == []
    assert aws.log.endpoint_creates == []


def test_corrupt_serving_record_raises_naming_the_parameter(aws: Aws) -> None:
    aws.ssm.put_parameter(Name=PARAMETER, Value='{"trainingJobName": "x"}', Type="String")

    with pytest.raises(ServingRecordError, match=f"{PARAMETER}.*'modelDataUrl'"):
        handler(_valid_event(aws), lambda_context())


def test_missing_endpoint_setting_raises_naming_the_variable(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O2V_ENDPOINT_NAME")

    with pytest.raises(ConfigError, match="O2V_ENDPOINT_NAME"):
        handler(_valid_event(aws), lambda_context())
