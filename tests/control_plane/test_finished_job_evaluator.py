"""The finished-job evaluator against a moto server. SageMaker's state-change events are put on
the default bus and routed by the FinishedTrainingJob rule (o2v_core.events.rules()), so the
pattern is exercised too."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from control_plane.handlers import finished_job_evaluator
from control_plane.logic.evaluator import classify_failure
from o2v_core.events import (
    TRAINING_FAILED,
    TRAINING_SUCCEEDED,
    VALIDATION_LOSS_DIVERGED,
    MalformedEvent,
    TrainingFailed,
    TrainingSucceeded,
    parse_event,
)

from tests.support import sagemaker_fake
from tests.support.cloud import BASE_HYPERPARAMETERS, DIVERGING, HEALTHY, Cloud, epoch_lines, log_header
from tests.support.lambda_context import lambda_context

SOFTMAX = {**BASE_HYPERPARAMETERS, "output_layer": "softmax", "num_classes": "3"}


def finish(cloud: Cloud, job: str) -> dict[str, Any]:
    """SageMaker's state change for the job, through the default bus and the rule, as delivered."""
    cloud.put_on_default_bus(cloud.sagemaker_state_change(job))
    delivered = cloud.delivered("finished_job_evaluator")
    assert len(delivered) == 1, f"the FinishedTrainingJob rule did not route {job}'s event"
    return delivered[0]


def test_a_healthy_completed_job_succeeds_with_its_artifact(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("cls", status="Completed", hyperparameters=SOFTMAX)
    # A softmax job logs cross_entropy (watched) and accuracy (a score, ignored) per epoch.
    lines = log_header(job) + epoch_lines(HEALTHY, "cross_entropy")
    accuracy = [(epoch, 1 - validation, None) for epoch, validation, _ in HEALTHY]
    lines += epoch_lines(accuracy, "accuracy")
    cloud.write_log(job, lines)

    result = finished_job_evaluator.handler(finish(cloud, job), lambda_context())

    assert result["action"] == "succeeded"
    routed = cloud.delivered("promoter")  # the PromoteOnSuccess rule's target
    assert len(routed) == 1 and routed[0]["detail-type"] == TRAINING_SUCCEEDED
    succeeded = parse_event(routed[0], TrainingSucceeded)
    described = cloud.sm.describe_training_job(TrainingJobName=job)
    assert succeeded.modelArtifact == described["ModelArtifacts"]["S3ModelArtifacts"]
    assert succeeded.metricName == "validation:cross_entropy"
    assert (succeeded.bestEpoch, succeeded.bestValue, succeeded.finalValue) == (6, 0.086, 0.086)
    assert (succeeded.lineage, succeeded.attempt, succeeded.trainingJobStatus) == ("cls", 1, "Completed")
    assert cloud.delivered("retrain_launcher") == [] and cloud.delivered("notifications") == []


def test_a_job_stopped_by_someone_else_is_judged_like_a_completed_one(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("manual-stop", status="Stopped")
    cloud.write_log(job, log_header(job) + epoch_lines(HEALTHY[:3], "mean_squared_error"))

    assert finished_job_evaluator.handler(finish(cloud, job), lambda_context())["action"] == "succeeded"
    succeeded = parse_event(cloud.delivered("promoter")[0], TrainingSucceeded)
    assert succeeded.trainingJobStatus == "Stopped"  # the promoter decides what a stopped job may serve


def test_a_job_that_diverged_between_checks_is_reported_once(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("fast", status="Completed")
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING, "mean_squared_error"))
    event = finish(cloud, job)

    first = finished_job_evaluator.handler(event, lambda_context())
    duplicate = finished_job_evaluator.handler(event, lambda_context())  # SageMaker may send an event twice

    # Reported once: a reason to retrain ...
    routed = cloud.delivered("retrain_launcher")
    assert len(routed) == 1 and routed[0]["detail-type"] == VALIDATION_LOSS_DIVERGED
    assert routed[0]["detail"]["stoppedJob"] is False and routed[0]["detail"]["epochsSaved"] == 0
    assert routed[0]["detail"]["decision"]["detected_at_epoch"] == 7
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 0
    # ... and, Completed (its artifact holds its best epoch, reference 10d), a promotion candidate
    # on its best value. The duplicate offers it again (the promoter absorbs duplicates).
    assert first["action"] == duplicate["action"] == "diverged_candidate"
    offered = cloud.delivered("promoter")
    assert [event["detail"]["trainingJobName"] for event in offered] == [job, job]
    assert offered[0]["detail"]["diverged"] is True
    assert (offered[0]["detail"]["bestValue"], offered[0]["detail"]["bestEpoch"]) == (0.095, 4)
    assert cloud.tags(job)["o2v:evaluated"] == "diverged_candidate"


def test_a_stopped_diverged_job_without_its_best_epoch_is_not_offered(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whether a stopped Object2Vec job keeps its best epoch is unconfirmed (reference 10d).
    cloud.use_config(monkeypatch)
    job = cloud.create_job("fast", status="Stopped")
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING, "mean_squared_error"))

    result = finished_job_evaluator.handler(finish(cloud, job), lambda_context())

    assert result["action"] == "diverged"
    assert len(cloud.delivered("retrain_launcher")) == 1
    assert cloud.delivered("promoter") == []
    assert cloud.tags(job)["o2v:evaluated"] == "diverged"


@pytest.mark.parametrize(
    ("reason", "category"),
    [
        ("CapacityError: Unable to provision requested ML compute capacity. Please retry using a different ML "
         "instance type.", "capacity"),
        ("AlgorithmError: Loss became nan at epoch 6; training aborted", "algorithm_error"),
        ("ClientError: Unable to download data from channel 'validation': AccessDenied", "client_error"),
        ("InternalServerError: We encountered an internal error. Please try again.", "internal_error"),
        ("Something nobody has seen before", "unknown"),
    ],
)
def test_failures_notify_operators_and_are_never_overfitting(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, reason: str, category: str
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("broken", status="Failed", failure_reason=reason)
    # Even with a curve that diverged before the failure, a failed job is not retrained.
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING, "mean_squared_error"))

    assert finished_job_evaluator.handler(finish(cloud, job), lambda_context()) == {
        "job": job, "action": "failed", "detail": category,
    }
    notified = cloud.delivered("notifications")  # NotifyOperators -> SNS in AWS
    assert len(notified) == 1 and notified[0]["detail-type"] == TRAINING_FAILED
    failed = parse_event(notified[0], TrainingFailed)
    assert (failed.category, failed.failureReason) == (category, reason)
    assert cloud.delivered("retrain_launcher") == []
    assert "o2v:diverged" not in cloud.tags(job)


def test_a_job_without_validation_metrics_cannot_be_judged(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("no-validation", status="Completed")
    cloud.write_log(job, [*log_header(job), "#quality_metric: host=algo-1, test mean_squared_error <loss>=0.1"])

    assert finished_job_evaluator.handler(finish(cloud, job), lambda_context())["detail"] == "no_validation_metric"
    assert parse_event(cloud.delivered("notifications")[0], TrainingFailed).category == "no_validation_metric"


def test_the_rule_only_routes_this_deployments_finished_jobs(cloud: Cloud) -> None:
    running = cloud.create_job("running")
    other = cloud.create_job("other", status="Completed", deployment="prod")
    for job in (running, other):
        cloud.put_on_default_bus(cloud.sagemaker_state_change(job))
    assert cloud.delivered("finished_job_evaluator") == []


def _event(cloud: Cloud, job: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(json.dumps(cloud.sagemaker_state_change(job)))
    return event


def test_malformed_events_raise_and_name_the_field(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job("ok", status="Completed")
    cloud.write_log(job, log_header(job) + epoch_lines(HEALTHY, "mean_squared_error"))
    foreign = cloud.create_job("foreign", status="Completed", extra_tags={"o2v:deployment": "dev-other"})
    running = cloud.create_job("running")

    cases: list[tuple[str, dict[str, Any], str]] = []
    event = _event(cloud, job)
    event["source"] = "object2vec.retraining"
    cases.append(("wrong source", event, "'source'"))
    event = _event(cloud, job)
    event["detail-type"] = "SageMaker Endpoint State Change"
    cases.append(("unknown detail-type", event, "'detail-type'"))
    event = _event(cloud, job)
    del event["detail"]["TrainingJobName"]
    cases.append(("missing name", event, "'detail.TrainingJobName'"))
    event = _event(cloud, job)
    event["detail"]["TrainingJobName"] = 42
    cases.append(("wrong type", event, "'detail.TrainingJobName'"))
    event = _event(cloud, job)
    event["detail"]["TrainingJobName"] = "prod-ok-a1"
    cases.append(("another deployment's job (prefix)", event, "another deployment"))
    cases.append(("another deployment's job (tag)", _event(cloud, foreign), "belongs to deployment 'dev-other'"))
    cases.append(("not finished", _event(cloud, running), "'detail.TrainingJobStatus'"))
    event = _event(cloud, job)
    event["detail"]["TrainingJobName"] = "dev--ghost-a1"
    cases.append(("no such job", event, "'detail.TrainingJobName'"))

    for case, bad, expected in cases:
        log_records()
        with pytest.raises(MalformedEvent) as raised:
            finished_job_evaluator.handler(bad, lambda_context())
        assert expected in str(raised.value), (case, str(raised.value))
        errors = [entry for entry in log_records() if entry["level"] == "ERROR"]
        assert len(errors) == 1 and expected in errors[0]["error"], case
    for target in ("promoter", "retrain_launcher", "notifications"):
        assert cloud.delivered(target) == []


def test_a_garbled_metric_line_is_skipped_counted_and_named(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: a garbled value used to raise, so the event ended in the DLQ; now the curve decides."""
    cloud.use_config(monkeypatch)
    job = cloud.create_job("corrupt", status="Completed")
    lines = log_header(job) + epoch_lines(HEALTHY, "mean_squared_error")
    lines.append("#quality_metric: host=algo-1, epoch=7, validation mean_squared_error <loss>=0.08x")
    lines.append("#quality_metric: host=algo-1, epoch=8, validation mean_squared_error <loss>=")  # cut off
    cloud.write_log(job, lines)

    result = finished_job_evaluator.handler(finish(cloud, job), lambda_context())

    assert result["action"] == "succeeded"
    assert len(cloud.delivered("promoter")) == 1
    logged = caplog.text
    assert "metric value '0.08x' is not a number" in logged and "skipped 2 garbled" in logged


def test_failure_categories() -> None:
    assert classify_failure("ResourceLimitExceeded: The account-level service limit ...") == "capacity"
    assert classify_failure("InsufficientCapacityError: ...") == "capacity"
    assert classify_failure("") == "unknown"
