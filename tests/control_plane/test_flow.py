"""The whole loop against a moto server: a diverging job is stopped and reported once, the rule
routes the event, and the retrain launcher starts attempt 2 with more dropout and nothing else
changed."""

from __future__ import annotations

from typing import Any

import pytest
from control_plane.handlers import divergence_monitor, finished_job_evaluator, retrain_launcher
from o2v_core.events import SOURCE, VALIDATION_LOSS_DIVERGED, ValidationLossDiverged, parse_event
from o2v_core.naming import TAG_ATTEMPT, TAG_PARENT, job_name

from tests.support import moto_ext, sagemaker_fake
from tests.support.cloud import (
    BASE_HYPERPARAMETERS,
    DEPLOYMENT,
    DIVERGING,
    PATIENT,
    Cloud,
    epoch_lines,
    log_header,
)
from tests.support.lambda_context import lambda_context

SCHEDULED = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
LINEAGE = "stsb-baseline"
# Fields of DescribeTrainingJob that differ between two jobs by nature, not by copying.
PER_JOB_FIELDS = {
    "TrainingJobName", "TrainingJobArn", "HyperParameters", "CreationTime", "LastModifiedTime",
    "TrainingStartTime", "TrainingEndTime", "TrainingJobStatus", "SecondaryStatus",
    "SecondaryStatusTransitions", "ModelArtifacts", "FinalMetricDataList", "CheckpointConfig",
    "TrainingTimeInSeconds", "BillableTimeInSeconds", "FailureReason",
}


def run_monitor_each_epoch(cloud: Cloud, job: str) -> int:
    """Write the log one epoch at a time, running the monitor after each (its 1-minute schedule)."""
    cloud.write_log(job, log_header(job))
    for index, point in enumerate(DIVERGING):
        cloud.write_log(job, epoch_lines([point], "mean_squared_error"))
        report = divergence_monitor.handler(SCHEDULED, lambda_context())
        assert report["errors"] == []
        if report["diverged"]:
            assert report["diverged"] == [job]
            return index
    raise AssertionError("the monitor never fired")


def test_diverging_job_is_stopped_reported_once_and_retrained(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)  # 2 epochs left > 1: stop
    parent = cloud.create_job(LINEAGE, hyperparameters=PATIENT)

    fired_at = run_monitor_each_epoch(cloud, parent)

    # The first run after the decisive metric line acts: epochs 5-7 are the first three in a row
    # above the (smoothed) minimum by more than 5 %, so it fires on the run after epoch 7's line.
    assert DIVERGING[fired_at][0] == 7
    described = cloud.sm.describe_training_job(TrainingJobName=parent)
    assert described["TrainingJobStatus"] == "Stopped"
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 1
    assert cloud.tags(parent)["o2v:diverged"] == "validation_rise epoch 7"

    # The RetrainOnDivergence rule (the pattern from o2v_core.events.rules()) routed one event.
    delivered = cloud.delivered("retrain_launcher")
    assert len(delivered) == 1
    event = delivered[0]
    assert event["source"] == SOURCE and event["detail-type"] == VALIDATION_LOSS_DIVERGED
    diverged = parse_event(event, ValidationLossDiverged)
    assert (diverged.trainingJobName, diverged.lineage, diverged.attempt) == (parent, "stsb-baseline", 1)
    assert diverged.metricName == "validation:mean_squared_error"
    assert diverged.stoppedJob is True and diverged.epochsSaved == 2
    assert diverged.decision.reason == "validation_rise"
    assert (diverged.decision.best_epoch, diverged.decision.best_value) == (4, 0.095)
    assert (diverged.decision.detected_at_epoch, diverged.decision.last_value) == (7, 0.121)

    # Neither another monitor run nor SageMaker's "Stopped" state change reports it again.
    assert divergence_monitor.handler(SCHEDULED, lambda_context())["diverged"] == []
    cloud.put_on_default_bus(cloud.sagemaker_state_change(parent))
    finished = cloud.delivered("finished_job_evaluator")
    assert len(finished) == 1, "the FinishedTrainingJob rule must match SageMaker's Stopped event"
    assert finished_job_evaluator.handler(finished[0], lambda_context())["action"] == "already_reported"
    assert cloud.delivered("retrain_launcher") == []
    assert cloud.delivered("promoter") == []

    outcome = retrain_launcher.handler(event, lambda_context())

    child = job_name(DEPLOYMENT, LINEAGE, 2)
    assert outcome == {"action": "launched", "parent": parent, "child": child, "detail": "dropout 0.2 -> 0.3"}
    assert cloud.training_jobs() == sorted([parent, child])
    assert_child_copies_parent(cloud, parent, child)


def assert_child_copies_parent(cloud: Cloud, parent: str, child: str) -> None:
    before: dict[str, Any] = dict(cloud.sm.describe_training_job(TrainingJobName=parent))
    after: dict[str, Any] = dict(cloud.sm.describe_training_job(TrainingJobName=child))
    copied = {key for key in before if key not in PER_JOB_FIELDS and key != "ResponseMetadata"}
    # Everything the issue names is among the compared fields, so this is not vacuous.
    assert copied >= {
        "AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
        "VpcConfig", "StoppingCondition", "EnableManagedSpotTraining", "EnableNetworkIsolation",
        "EnableInterContainerTrafficEncryption",
    }
    for key in sorted(copied):
        assert after.get(key) == before[key], key
    assert after["AlgorithmSpecification"]["MetricDefinitions"] == before["AlgorithmSpecification"]["MetricDefinitions"]
    assert after["OutputDataConfig"]["KmsKeyId"] == before["OutputDataConfig"]["KmsKeyId"]

    # Checkpoints: same settings, but the child's own prefix (never resume the diverged parent).
    assert after["CheckpointConfig"]["LocalPath"] == before["CheckpointConfig"]["LocalPath"]
    assert after["CheckpointConfig"]["S3Uri"] == before["CheckpointConfig"]["S3Uri"].replace(parent, child)

    # Only dropout changed among the hyperparameters.
    expected = {**before["HyperParameters"], "dropout": "0.3"}
    assert after["HyperParameters"] == expected

    # Tags: the parent's, with the lineage advanced; the parent's marker tag is not inherited.
    parent_tags, child_tags = cloud.tags(parent), cloud.tags(child)
    assert child_tags[TAG_ATTEMPT] == "2" and child_tags[TAG_PARENT] == parent
    assert "o2v:diverged" not in child_tags and "o2v:best-value" not in child_tags
    # The lineage's best so far travels on the child, for the policy's next decision (issue 29).
    assert parent_tags["o2v:best-value"] == "0.095"
    assert (child_tags["o2v:lineage-best-value"], child_tags["o2v:lineage-best-job"]) == ("0.095", parent)
    unchanged: dict[str, Any] = {
        key: value for key, value in parent_tags.items()
        if key not in (TAG_ATTEMPT, TAG_PARENT, "o2v:diverged", "o2v:evaluated", "o2v:best-value")
    }
    assert {key: child_tags[key] for key in unchanged} == unchanged


def test_monitor_leaves_healthy_and_foreign_jobs_alone(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.cloud import HEALTHY

    cloud.use_config(monkeypatch)
    healthy = cloud.create_job("healthy-run")
    cloud.write_log(healthy, log_header(healthy) + epoch_lines(HEALTHY, "mean_squared_error"))
    # Same name prefix, but tagged for another deployment: not ours, never touched.
    foreign = cloud.create_job("foreign-run", extra_tags={"o2v:deployment": "dev-other"})
    cloud.write_log(foreign, log_header(foreign) + epoch_lines(DIVERGING, "mean_squared_error"))
    # Another deployment's job (another prefix) with a diverging curve.
    other = cloud.create_job("other", deployment="prod")
    cloud.write_log(other, log_header(other) + epoch_lines(DIVERGING, "mean_squared_error"))

    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert report["checked"] == [healthy]
    assert report["skipped"] == [foreign]
    assert report["diverged"] == [] and report["errors"] == []
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 0
    assert cloud.delivered("retrain_launcher") == []
    assert {cloud.sm.describe_training_job(TrainingJobName=n)["TrainingJobStatus"] for n in (healthy, foreign, other)} \
        == {"InProgress"}


def test_monitor_without_stopping_reports_once_and_leaves_the_job_running(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch, stop_on_divergence=False)
    job = cloud.create_job(LINEAGE)
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING, "mean_squared_error"))

    first = divergence_monitor.handler(SCHEDULED, lambda_context())
    second = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert first["diverged"] == [job] and second["diverged"] == []
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "InProgress"
    events = cloud.delivered("retrain_launcher")
    assert len(events) == 1 and events[0]["detail"]["stoppedJob"] is False


def test_a_failed_put_events_sets_no_marker_so_the_next_run_reports(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch)
    job = cloud.create_job(LINEAGE)
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING, "mean_squared_error"))
    moto_ext.FAULTS.put_events_failures = 1

    with pytest.raises(RuntimeError, match="PutEvents rejected ValidationLossDiverged"):
        divergence_monitor.handler(SCHEDULED, lambda_context())

    assert "o2v:diverged" not in cloud.tags(job)
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "InProgress"
    assert divergence_monitor.handler(SCHEDULED, lambda_context())["diverged"] == [job]
    assert len(cloud.delivered("retrain_launcher")) == 1



def test_a_diverged_job_still_running_is_stopped_again_but_not_reported_again(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """E.g. StopTrainingJob failed after the event went out: the next run only retries the stop."""
    cloud.use_config(monkeypatch, finish_diverged_within_epochs=1)
    job = cloud.create_job(LINEAGE, hyperparameters=PATIENT, extra_tags={"o2v:diverged": "validation_rise epoch 7"})
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING[:8], "mean_squared_error"))

    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert report["stopped_again"] == [job] and report["diverged"] == []
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Stopped"
    assert cloud.delivered("retrain_launcher") == []


def test_by_default_a_diverged_job_its_own_early_stopping_ends_soon_is_left_to_finish(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next attempt starts at once; the diverged job keeps its best epoch (reference 10d)."""
    config = cloud.use_config(monkeypatch)
    assert config.finish_diverged_within_epochs == 2
    patient = cloud.create_job(LINEAGE, hyperparameters=PATIENT)  # its own rule ends it in 2 epochs
    cloud.write_log(patient, log_header(patient) + epoch_lines(DIVERGING[:8], "mean_squared_error"))
    # Patience 3: its own rule already ended it at epoch 7 (bad count 4 > 3); stopping saves nothing.
    ending = cloud.create_job("ending")
    cloud.write_log(ending, log_header(ending) + epoch_lines(DIVERGING[:8], "mean_squared_error"))

    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert sorted(report["diverged"]) == sorted([patient, ending]) and report["epochs_saved"] == []
    assert sorted(report["left_to_finish"]) == sorted([
        f"{patient}: left to finish: its own early stopping or budget ends it within 2 epoch(s), at most 2 are "
        "paid to keep its best model",
        f"{ending}: left to finish: its own early stopping or budget ends it within 0 epoch(s), at most 2 are "
        "paid to keep its best model",
    ])
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 0
    events = cloud.delivered("retrain_launcher")  # the next attempts launch now, not when these end
    assert {event["detail"]["trainingJobName"] for event in events} == {patient, ending}
    assert all(event["detail"]["stoppedJob"] is False and event["detail"]["epochsSaved"] == 0 for event in events)

    # A later run, still within the 2 epochs: still left alone, never reported twice.
    cloud.write_log(patient, epoch_lines(DIVERGING[8:], "mean_squared_error"))
    again = divergence_monitor.handler(SCHEDULED, lambda_context())
    assert again["diverged"] == [] and again["stopped_again"] == []
    assert sagemaker_fake.CALLS["StopTrainingJob"] == 0


def test_a_diverged_job_that_would_run_on_past_the_limit_is_stopped_on_a_later_run(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A good epoch resets Object2Vec's bad count: the job would then pay more than the limit."""
    cloud.use_config(monkeypatch)
    job = cloud.create_job(LINEAGE, hyperparameters=PATIENT)
    cloud.write_log(job, log_header(job) + epoch_lines(DIVERGING[:8], "mean_squared_error"))
    assert divergence_monitor.handler(SCHEDULED, lambda_context())["diverged"] == [job]

    # Epoch 8 beats the previous 5 epochs' minimum (0.095) by 0.015: good, the count resets.
    cloud.write_log(job, epoch_lines([(8, 0.08, 0.02)], "mean_squared_error"))
    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert report["stopped_again"] == [job] and report["epochs_saved"] == [f"{job}: stopped, 6 epochs saved"]
    assert cloud.sm.describe_training_job(TrainingJobName=job)["TrainingJobStatus"] == "Stopped"
    assert len(cloud.delivered("retrain_launcher")) == 1


def test_a_garbled_metric_line_is_skipped_and_the_rest_of_the_curve_still_decides(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 14: one garbled value used to make the job unjudgeable; the monitor errored every minute."""
    cloud.use_config(monkeypatch)
    garbled = cloud.create_job("garbled")
    lines = log_header(garbled) + epoch_lines(DIVERGING, "mean_squared_error")
    lines.insert(len(log_header(garbled)) + 2,
                 "#quality_metric: host=algo-1, epoch=0, validation mean_squared_error <loss>=O.2")
    cloud.write_log(garbled, lines)
    softmax = cloud.create_job(
        "softmax", hyperparameters={**BASE_HYPERPARAMETERS, "output_layer": "softmax", "num_classes": "3"}
    )
    cloud.write_log(softmax, log_header(softmax) + epoch_lines(DIVERGING, "cross_entropy"))

    report = divergence_monitor.handler(SCHEDULED, lambda_context())

    assert report["errors"] == [] and sorted(report["diverged"]) == sorted([garbled, softmax])
    events = cloud.delivered("retrain_launcher")
    assert sorted(event["detail"]["trainingJobName"] for event in events) == sorted([garbled, softmax])
    note = "skipped 1 garbled #quality_metric line(s): CloudWatch Logs of dev--garbled-a1, #quality_metric line:2"
    assert any(record.levelname == "WARNING" and note in record.getMessage() for record in caplog.records)
    explained = [getattr(record, "explanation", "") for record in caplog.records
                 if getattr(record, "job", None) == garbled and record.getMessage() == "validation loss diverged"]
    assert len(explained) == 1 and note in explained[0] and "metric value 'O.2' is not a number" in explained[0]

