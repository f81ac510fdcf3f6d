"""The promoter handler end to end against a moto server: decisions, deployments, duplicates."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError
from control_plane.aws.serving import ServingRecordError
from control_plane.handlers.promoter import handler
from control_plane.logic.promotion import EndpointBusy, serving_name
from o2v_core.events import MODEL_PROMOTED, PROMOTION_SKIPPED, MalformedEvent
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT, TAG_VOCAB
from o2v_core.runtime_config import ConfigError

from tests.promotion import moto_serving
from tests.promotion.support import ALARMS, DEPLOYMENT, ENDPOINT, IMAGE, METRIC, PARAMETER, Aws, succeeded


def promote(aws: Aws, job: str, best: float, **kwargs: Any) -> dict[str, object]:
    return handler(succeeded(job, artifact=aws.model_artifact(job), best=best, **kwargs), None)


def serve_first_model(aws: Aws, value: float = 0.5) -> str:
    """A served model: the first job creates the endpoint, which then becomes InService."""
    job = aws.training_job("sts", 1)
    assert promote(aws, job, value)["outcome"] == MODEL_PROMOTED
    moto_serving.settle()
    aws.events()
    return job


def only_event(aws: Aws) -> dict[str, Any]:
    events = aws.events()
    assert len(events) == 1, events
    return events[0]


# ---------------------------------------------------------------------------------------------
# First model, better, worse, equal


def test_first_model_creates_the_endpoint_and_the_record(aws: Aws) -> None:
    job = aws.training_job("sts", 1, tags={TAG_VOCAB: "s3://demo-artifacts/vocab/sts.json"})
    artifact = aws.model_artifact(job)

    result = handler(succeeded(job, artifact=artifact, best=0.41), None)

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
    model_tags = {t["Key"]: t["Value"] for t in aws.sagemaker.list_tags(ResourceArn=model["ModelArn"])["Tags"]}
    assert model_tags[TAG_VOCAB] == "s3://demo-artifacts/vocab/sts.json"
    assert model_tags["o2v:deployment"] == DEPLOYMENT
    assert model_tags["o2v:lineage"] == "sts"
    variants = aws.sagemaker.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    assert [(v["ModelName"], v["InstanceType"]) for v in variants] == [(model_name, "ml.m5.large")]

    assert aws.record() == {
        "modelDataUrl": artifact,
        "trainingJobName": job,
        "metricName": METRIC,
        "metricValue": 0.41,
        "modelName": model_name,
        "endpointConfigName": config_name,
        "vocab": "s3://demo-artifacts/vocab/sts.json",
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
    assert "vocab" not in record  # no o2v:vocab tag: the vocab travels inside model.tar.gz
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


def test_untagged_completed_job_is_judged_by_its_final_value(aws: Aws) -> None:
    serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)

    result = promote(aws, job, 0.3, final=0.52)  # best epoch beats 0.5, the artifact (last epoch) does not

    assert result["outcome"] == PROMOTION_SKIPPED
    assert result["candidateValue"] == 0.52


# ---------------------------------------------------------------------------------------------
# Duplicates


def test_sequential_duplicate_is_skipped_as_already_serving(aws: Aws) -> None:
    job = aws.training_job("sts", 1)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.5)

    first, second = handler(event, None), handler(event, None)

    assert (first["outcome"], second["outcome"]) == (MODEL_PROMOTED, PROMOTION_SKIPPED)
    assert second["reason"] == "already serving"
    assert len(aws.log.endpoint_creates) == 1
    assert [e["detail-type"] for e in aws.events()] == [MODEL_PROMOTED, PROMOTION_SKIPPED]


def test_retry_after_a_crash_before_the_record_repairs_it_without_a_second_deployment(aws: Aws) -> None:
    serve_first_model(aws, 0.5)
    job = aws.training_job("sts", 2)
    event = succeeded(job, artifact=aws.model_artifact(job), best=0.4)
    handler(event, None)
    aws.ssm.delete_parameter(Name=PARAMETER)  # as if the first run died after UpdateEndpoint
    aws.events()

    result = handler(event, None)

    assert result["outcome"] == PROMOTION_SKIPPED
    assert str(result["reason"]).startswith("already deploying (Updating)")
    assert len(aws.log.endpoint_updates) == 1
    record = aws.record()
    assert record is not None and record["trainingJobName"] == job


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
        return handler(event, None)

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


def test_endpoint_busy_with_another_model_raises_for_a_retry(aws: Aws) -> None:
    serve_first_model(aws, 0.5)
    promote(aws, aws.training_job("sts", 2), 0.45)  # endpoint now Updating to attempt 2
    aws.events()
    later = aws.training_job("other", 1)
    aws.ssm.put_parameter(Name=PARAMETER, Value="{}", Type="String", Overwrite=True)  # record lost

    with pytest.raises(EndpointBusy, match="Updating"):
        promote(aws, later, 0.3, lineage="other")

    assert len(aws.log.endpoint_updates) == 1
    assert aws.events() == []


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
        handler(event, None)

    assert aws.events() == []
    assert aws.log.endpoint_creates == []


def test_corrupt_serving_record_raises_naming_the_parameter(aws: Aws) -> None:
    aws.ssm.put_parameter(Name=PARAMETER, Value='{"trainingJobName": "x"}', Type="String")

    with pytest.raises(ServingRecordError, match=f"{PARAMETER}.*'modelDataUrl'"):
        handler(_valid_event(aws), None)


def test_missing_endpoint_setting_raises_naming_the_variable(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("O2V_ENDPOINT_NAME")

    with pytest.raises(ConfigError, match="O2V_ENDPOINT_NAME"):
        handler(_valid_event(aws), None)
