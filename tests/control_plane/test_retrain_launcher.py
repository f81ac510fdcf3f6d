"""The retrain launcher against the SageMaker fake: idempotence, errors that must propagate, malformed
events, exhaustion."""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.model import StructureShape
from botocore.stub import Stubber
from botocore.validate import ParamValidator
from control_plane.aws.announcements import Announcements
from control_plane.aws.event_bus import EventBus
from control_plane.aws.training_jobs import TrainingJobs
from control_plane.handlers import retrain_launcher
from control_plane.logic.announce import Announcer
from control_plane.logic.jobs import lineage_of, load_job
from control_plane.logic.retrain import (
    COPIED_FIELDS,
    NOT_COPIED_FIELDS,
    build_child_request,
    child_tags,
    continue_lineage,
    lineage_best,
)
from o2v_core.builtin_algorithms import builtin_metric_definitions
from o2v_core.events import (
    RETRAINING_EXHAUSTED,
    DivergenceDecisionDetail,
    MalformedEvent,
    RetrainingExhausted,
    ValidationLossDiverged,
    parse_event,
)
from o2v_core.naming import Lineage, job_name
from o2v_core.retrain_policy import RetrainPolicy

from tests.support import sagemaker_fake
from tests.support.cloud import (
    ARTIFACT_BUCKET,
    BASE_HYPERPARAMETERS,
    BUS,
    DEPLOYMENT,
    IMAGE,
    Cloud,
    as_delivered,
    job_request,
)
from tests.support.lambda_context import lambda_context

LINEAGE = "stsb-baseline"
DECISION = DivergenceDecisionDetail(True, "validation_rise", 4, 0.095, 7, 0.121)


def diverged_event(parent: str, attempt: int = 1, **changes: Any) -> dict[str, Any]:
    detail = ValidationLossDiverged(
        deployment=DEPLOYMENT, trainingJobName=parent, lineage=LINEAGE, attempt=attempt,
        metricName="validation:mean_squared_error", stoppedJob=True, decision=DECISION,
    )
    return as_delivered(dataclasses.replace(detail, **changes))


def stopped_parent(cloud: Cloud, attempt: int = 1, **kwargs: Any) -> str:
    parent = None if attempt == 1 else job_name(DEPLOYMENT, LINEAGE, attempt - 1)
    return cloud.create_job(LINEAGE, attempt, status="Stopped", parent=parent, **kwargs)


# ---------------------------------------------------------------------------------------------
# Idempotence


def test_fifty_concurrent_duplicate_deliveries_start_exactly_one_job(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    """50 deliveries of one event, in 50 threads released together against the SageMaker fake.

    What this proves: every delivery succeeds (none raises, so none lands in the DLQ), exactly one
    reports "launched", and exactly one job exists with attempt 2's hyperparameters. It relies on
    SageMaker's unique job names (ResourceInUse), which the SageMaker fake enforces as AWS does;
    the next test forces the race path deterministically.
    """
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    event = diverged_event(parent)
    start = threading.Barrier(50)

    def deliver(_: int) -> dict[str, Any]:
        start.wait()
        return retrain_launcher.handler(json.loads(json.dumps(event)), lambda_context())

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(deliver, range(50)))

    child = job_name(DEPLOYMENT, LINEAGE, 2)
    actions = [outcome["action"] for outcome in outcomes]
    assert actions.count("launched") == 1, actions
    assert actions.count("already_launched") == 49
    assert {outcome["child"] for outcome in outcomes} == {child}
    assert cloud.training_jobs() == sorted([parent, child])
    assert 1 <= sagemaker_fake.CALLS["CreateTrainingJob"] - 1 <= 50  # minus the parent's own creation
    assert cloud.sm.describe_training_job(TrainingJobName=child)["HyperParameters"]["dropout"] == "0.3"


def test_losing_the_create_race_is_success_not_a_second_job(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The DescribeTrainingJob pre-check finds no child; a concurrent launcher creates it just
    before our CreateTrainingJob, which gets ResourceInUse: "already launched"."""
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    sagemaker_fake.FAULTS.lose_create_race = True

    outcome = retrain_launcher.handler(diverged_event(parent), lambda_context())

    assert outcome["action"] == "already_launched"
    assert outcome["detail"] == "CreateTrainingJob: ResourceInUse"
    assert cloud.training_jobs() == sorted([parent, job_name(DEPLOYMENT, LINEAGE, 2)])


def test_a_redelivery_after_the_child_exists_starts_nothing(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    assert retrain_launcher.handler(diverged_event(parent), lambda_context())["action"] == "launched"
    calls = sagemaker_fake.CALLS["CreateTrainingJob"]

    assert retrain_launcher.handler(diverged_event(parent), lambda_context())["action"] == "already_launched"
    assert sagemaker_fake.CALLS["CreateTrainingJob"] == calls


# ---------------------------------------------------------------------------------------------
# AWS errors propagate (Lambda retries, then the DLQ)


def test_throttling_is_retried_by_the_sdk_then_raised(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sagemaker_fake.FAULTS.create_training_job = [sagemaker_fake.ThrottlingException, sagemaker_fake.ThrottlingException]
    before = sagemaker_fake.CALLS["CreateTrainingJob"]

    with pytest.raises(ClientError) as raised:
        retrain_launcher.handler(diverged_event(parent), lambda_context())

    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    assert sagemaker_fake.CALLS["CreateTrainingJob"] - before == 2  # the SDK retried once, then gave up
    assert cloud.training_jobs() == [parent]


def test_a_single_throttle_is_absorbed_by_the_sdk_retry(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    monkeypatch.setenv("AWS_RETRY_MODE", "standard")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    sagemaker_fake.FAULTS.create_training_job = [sagemaker_fake.ThrottlingException]

    assert retrain_launcher.handler(diverged_event(parent), lambda_context())["action"] == "launched"


def test_resource_limit_exceeded_raises_and_starts_nothing(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    sagemaker_fake.FAULTS.create_training_job = [sagemaker_fake.ResourceLimitExceeded]

    with pytest.raises(ClientError) as raised:
        retrain_launcher.handler(diverged_event(parent), lambda_context())

    assert raised.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert cloud.training_jobs() == [parent]


def test_create_errors_seen_through_stubber() -> None:
    """The data-access layer on a real client with botocore's Stubber: only "already exists"
    answers mean False; a throttle or an unrelated ValidationException raises."""
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    jobs = TrainingJobs(client)
    request = {"TrainingJobName": "dev--x-a2", "AlgorithmSpecification": {"TrainingInputMode": "File"},
               "RoleArn": "arn:aws:iam::123456789012:role/r", "OutputDataConfig": {"S3OutputPath": "s3://b/p"},
               "ResourceConfig": {"VolumeSizeInGB": 1}, "StoppingCondition": {"MaxRuntimeInSeconds": 60}}
    with Stubber(client) as stub:
        stub.add_client_error("create_training_job", "ResourceInUse", "exists", expected_params=request)
        stub.add_client_error("create_training_job", "ValidationException",
                              "Training job names must be unique ... already exists", expected_params=request)
        stub.add_client_error("create_training_job", "ThrottlingException", "Rate exceeded", expected_params=request)
        stub.add_client_error("create_training_job", "ValidationException", "bad subnet", expected_params=request)
        assert jobs.create(request) is False
        assert jobs.create(request) is False
        with pytest.raises(ClientError, match="ThrottlingException"):
            jobs.create(request)
        with pytest.raises(ClientError, match="bad subnet"):
            jobs.create(request)
        stub.assert_no_pending_responses()


# ---------------------------------------------------------------------------------------------
# Malformed events: raise (DLQ), name the field, start nothing


def _malformed_cases(parent: str) -> list[tuple[str, dict[str, Any], str]]:
    good = diverged_event(parent)

    def edit(path: list[str], value: Any = None, *, delete: bool = False) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(json.dumps(good))
        target: dict[str, Any] = event
        for key in path[:-1]:
            target = target[key]
        if delete:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return event

    return [
        ("missing field", edit(["detail", "attempt"], delete=True), "detail.attempt"),
        ("wrong type", edit(["detail", "attempt"], "1"), "detail.attempt"),
        ("wrong type, nested", edit(["detail", "decision", "diverged"], "yes"), "detail.decision.diverged"),
        ("non-numeric metric", edit(["detail", "decision", "best_value"], "0.09x"), "detail.decision.best_value"),
        ("no detail", edit(["detail"], delete=True), "detail"),
        ("unknown detail-type", edit(["detail-type"], "ValidationLossExploded"), "detail-type"),
        ("wrong source", edit(["source"], "aws.sagemaker"), "source"),
        ("another deployment's event", edit(["detail", "deployment"], "prod"), "detail.deployment"),
        ("another deployment's job", edit(["detail", "trainingJobName"], "prod-stsb-baseline-a1"),
         "detail.trainingJobName"),
        ("no such job", edit(["detail", "trainingJobName"], "dev--ghost-a1"), "detail.trainingJobName"),
        ("lineage differs from the job's tags", edit(["detail", "lineage"], "other"), "detail.lineage"),
        ("attempt differs from the job's tags", edit(["detail", "attempt"], 2), "detail.attempt"),
    ]


def test_malformed_events_raise_name_the_field_and_start_no_job(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, log_records: Callable[[], list[dict[str, Any]]]
) -> None:
    cloud.use_config(monkeypatch)
    parent = stopped_parent(cloud)
    for case, event, field in _malformed_cases(parent):
        log_records()
        with pytest.raises(MalformedEvent) as raised:
            retrain_launcher.handler(event, lambda_context())
        assert f"'{field}'" in str(raised.value), (case, str(raised.value))
        logged = log_records()
        errors = [entry for entry in logged if entry["level"] == "ERROR"]
        assert len(errors) == 1 and f"'{field}'" in errors[0]["error"], (case, logged)
    assert cloud.training_jobs() == [parent]
    assert cloud.delivered("notifications") == []


def test_a_job_without_lineage_tags_is_refused(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    request = cloud.job_request(LINEAGE)
    request["Tags"] = [tag for tag in request["Tags"] if tag["Key"] != "o2v:attempt"]
    cloud.sm.create_training_job(**request)

    with pytest.raises(MalformedEvent, match="'o2v:attempt'"):
        retrain_launcher.handler(diverged_event(request["TrainingJobName"]), lambda_context())
    assert cloud.training_jobs() == [request["TrainingJobName"]]


# ---------------------------------------------------------------------------------------------
# Bounds


def test_max_attempts_reached_notifies_operators_and_starts_nothing(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch, retrain_policy='{"max_attempts": 4}')
    parent = stopped_parent(cloud, attempt=4, hyperparameters={**BASE_HYPERPARAMETERS, "dropout": "0.4"})

    outcome = retrain_launcher.handler(diverged_event(parent, attempt=4), lambda_context())
    again = retrain_launcher.handler(diverged_event(parent, attempt=4), lambda_context())

    assert outcome["action"] == "exhausted" and outcome["child"] is None
    assert again["action"] == "already_exhausted"
    assert cloud.training_jobs() == [parent]
    notified = cloud.delivered("notifications")  # the NotifyOperators rule's target (SNS in AWS)
    assert len(notified) == 1 and notified[0]["detail-type"] == RETRAINING_EXHAUSTED
    exhausted = parse_event(notified[0], RetrainingExhausted)
    assert (exhausted.lineage, exhausted.lastTrainingJobName, exhausted.attempts) == (LINEAGE, parent, 4)
    assert "max_attempts=4" in exhausted.reason


def test_dropout_at_its_cap_is_exhausted_too(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch, retrain_policy='{"dropout_cap": 0.4}')
    parent = stopped_parent(cloud, attempt=2, hyperparameters={**BASE_HYPERPARAMETERS, "dropout": "0.4"})

    assert retrain_launcher.handler(diverged_event(parent, attempt=2), lambda_context())["action"] == "exhausted"
    notified = cloud.delivered("notifications")
    assert "dropout_cap=0.4" in notified[0]["detail"]["reason"]
    assert cloud.training_jobs() == [parent]


def test_the_policy_comes_from_config(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch, retrain_policy='{"dropout_step": [0.25], "weight_decay_step": 0.001, '
                                                 '"weight_decay_cap": 0.01}')
    parent = stopped_parent(cloud)
    retrain_launcher.handler(diverged_event(parent), lambda_context())
    child = cloud.sm.describe_training_job(TrainingJobName=job_name(DEPLOYMENT, LINEAGE, 2))
    assert child["HyperParameters"]["dropout"] == "0.45"
    assert child["HyperParameters"]["weight_decay"] == "0.001"


# ---------------------------------------------------------------------------------------------
# The CreateTrainingJob request


def _shape(operation: str, which: str) -> StructureShape:
    model = boto3.client("sagemaker", region_name="us-east-1").meta.service_model.operation_model(operation)
    shape = model.input_shape if which == "input" else model.output_shape
    assert isinstance(shape, StructureShape)
    return shape


def test_copied_fields_are_every_describe_field_that_create_accepts() -> None:
    create = set(_shape("CreateTrainingJob", "input").members)
    describe = set(_shape("DescribeTrainingJob", "output").members)
    assert not set(COPIED_FIELDS) & set(NOT_COPIED_FIELDS)
    assert set(COPIED_FIELDS) | set(NOT_COPIED_FIELDS) == (create & describe) - {"TrainingJobName", "HyperParameters"}


def test_a_built_in_parent_relaunches_without_sagemakers_metric_definitions_or_debugger() -> None:
    """Defect: the parent's AlgorithmSpecification as DescribeTrainingJob returns it carries
    SageMaker's own MetricDefinitions, which CreateTrainingJob refuses for a built-in image
    (reference section 10a); Debugger/Profiler settings are never carried over (section 10f)."""
    described: dict[str, Any] = {
        **job_request(LINEAGE),
        "DebugHookConfig": {"S3OutputPath": "s3://o2v-dev-artifacts/debug/"},
        "DebugRuleConfigurations": [{"RuleConfigurationName": "Overfit", "RuleEvaluatorImage": IMAGE}],
        "ProfilerConfig": {"S3OutputPath": "s3://o2v-dev-artifacts/profiler/"},
        "ProfilerRuleConfigurations": [{"RuleConfigurationName": "ProfilerReport", "RuleEvaluatorImage": IMAGE}],
    }
    described["AlgorithmSpecification"]["MetricDefinitions"] = builtin_metric_definitions("object2vec")
    request = build_child_request(described, name="dev--x-a2", hyperparameters={"dropout": "0.3"}, tags={})
    assert "MetricDefinitions" not in request["AlgorithmSpecification"]
    assert request["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert not set(request) & set(NOT_COPIED_FIELDS)


def test_a_custom_image_keeps_the_users_metric_definitions() -> None:
    described: dict[str, Any] = job_request(LINEAGE)
    custom = [{"Name": "validation:loss", "Regex": "loss=(\\S+)"}]
    described["AlgorithmSpecification"] = {
        "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1",
        "TrainingInputMode": "File", "MetricDefinitions": custom,
    }
    request = build_child_request(described, name="dev--x-a2", hyperparameters={}, tags={})
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == custom


def test_child_request_from_a_full_describe_is_valid_and_complete() -> None:
    """A DescribeTrainingJob answer with every optional setting (more than the SageMaker fake echoes) becomes a
    CreateTrainingJob request that botocore's own validator accepts."""
    parent = "dev--stsb-baseline-a1"
    child = "dev--stsb-baseline-a2"
    described: dict[str, Any] = {
        **job_request(LINEAGE),
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{parent}",
        "TrainingJobStatus": "Stopped", "SecondaryStatus": "Stopped",
        "ModelArtifacts": {"S3ModelArtifacts": f"s3://o2v-dev-artifacts/models/{parent}/output/model.tar.gz"},
        "Environment": {"O2V_TRACE": "1"},
        "RetryStrategy": {"MaximumRetryAttempts": 2},
        "TensorBoardOutputConfig": {"S3OutputPath": "s3://o2v-dev-artifacts/tensorboard/"},
        "ExperimentConfig": {"ExperimentName": "stsb"},
        "FinalMetricDataList": [],
        "EnableNetworkIsolation": False,  # a parent launched without isolation
    }
    del described["Tags"]
    parent_tags = {"team": "search", "aws:cloudformation:stack-name": "x", "o2v:diverged": "validation_rise epoch 7",
                   **Lineage(DEPLOYMENT, LINEAGE, 1, None).tags()}
    tags = child_tags(parent_tags, Lineage(DEPLOYMENT, LINEAGE, 2, parent).tags())
    request = build_child_request(described, name=child, hyperparameters={"dropout": "0.3"}, tags=tags)

    report = ParamValidator().validate(request, _shape("CreateTrainingJob", "input"))
    assert not report.has_errors(), report.generate_report()
    for key in ("Environment", "RetryStrategy", "TensorBoardOutputConfig", "ExperimentConfig",
                "VpcConfig", "CheckpointConfig", "EnableManagedSpotTraining", "StoppingCondition"):
        assert key in request, key
    assert request["CheckpointConfig"]["S3Uri"].endswith(f"/checkpoints/{child}/")
    # Isolated even though the parent was not: the launcher's CreateTrainingJob permission requires it.
    assert request["EnableNetworkIsolation"] is True
    assert {tag["Key"] for tag in request["Tags"]} == {"team", "o2v:deployment", "o2v:lineage", "o2v:attempt",
                                                       "o2v:parent"}


def test_a_long_lineage_still_gives_a_valid_distinct_child_name(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch)
    lineage = "stsb-" + "very-long-experiment-name-" * 3
    parent = cloud.create_job(lineage, status="Stopped")
    event = diverged_event(parent, lineage=lineage)

    outcome = retrain_launcher.handler(event, lambda_context())

    child = outcome["child"]
    assert outcome["action"] == "launched" and child is not None
    assert len(parent) == len(child) == 63 and child.endswith("-a2") and child != parent
    assert cloud.tags(child)["o2v:lineage"] == lineage  # the full id lives in the tag


# ---------------------------------------------------------------------------------------------
# A knob that stopped helping (issue 29): the launcher compares a relaunch with the lineage's best


def _diverged_with_best(parent: str, attempt: int, best: float) -> dict[str, Any]:
    return diverged_event(parent, attempt=attempt, decision=dataclasses.replace(DECISION, best_value=best))


def _walk_to_attempt_3(cloud: Cloud) -> tuple[str, str, str]:
    """Attempt 1 diverges (best 1.43): attempt 2 (dropout 0.1) starts; it diverges with a better best (1.30):
    attempt 3 (dropout 0.2) starts. Returns the three job names."""
    first = stopped_parent(cloud, hyperparameters={**BASE_HYPERPARAMETERS, "dropout": "0.0"})
    assert retrain_launcher.handler(_diverged_with_best(first, 1, 1.43), lambda_context())["action"] == "launched"
    second = job_name(DEPLOYMENT, LINEAGE, 2)
    sagemaker_fake.set_status(second, "Stopped")
    assert retrain_launcher.handler(_diverged_with_best(second, 2, 1.30), lambda_context())["action"] == "launched"
    third = job_name(DEPLOYMENT, LINEAGE, 3)
    sagemaker_fake.set_status(third, "Stopped")
    return first, second, third


def test_the_first_relaunch_always_happens_and_carries_the_lineages_best(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch)
    first, second, third = _walk_to_attempt_3(cloud)
    assert cloud.tags(second)["o2v:lineage-best-value"] == "1.43"
    assert cloud.tags(second)["o2v:lineage-best-job"] == first
    # attempt 2 helped: its best is the lineage's best now, and the knob rose again
    assert cloud.tags(third)["o2v:lineage-best-value"] == "1.3"
    assert cloud.tags(third)["o2v:lineage-best-job"] == second
    assert cloud.sm.describe_training_job(TrainingJobName=third)["HyperParameters"]["dropout"] == "0.2"


def test_a_relaunch_that_did_not_help_stops_the_lineage_and_says_why(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    cloud.use_config(monkeypatch)
    _, second, third = _walk_to_attempt_3(cloud)

    outcome = retrain_launcher.handler(_diverged_with_best(third, 3, 1.39), lambda_context())

    assert outcome["action"] == "exhausted" and outcome["child"] is None
    assert job_name(DEPLOYMENT, LINEAGE, 4) not in cloud.training_jobs()
    exhausted = parse_event(cloud.delivered("notifications")[0], RetrainingExhausted)
    assert exhausted.stoppedBecause == "no_improvement"
    assert (exhausted.bestTrainingJobName, exhausted.bestValue) == (second, 1.3)
    assert "did not beat the lineage's best 1.3" in exhausted.reason


def test_keep_raising_restores_the_old_schedule(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    cloud.use_config(monkeypatch, retrain_policy='{"on_no_improvement": "keep_raising"}')
    _, _, third = _walk_to_attempt_3(cloud)
    assert retrain_launcher.handler(_diverged_with_best(third, 3, 1.39), lambda_context())["action"] == "launched"
    fourth = cloud.sm.describe_training_job(TrainingJobName=job_name(DEPLOYMENT, LINEAGE, 4))
    assert fourth["HyperParameters"]["dropout"] == "0.3"


@pytest.mark.parametrize(("policy", "changed"), [
    ('{"on_no_improvement": "smaller_step"}', {"dropout": "0.15"}),
    ('{"on_no_improvement": "weight_decay", "weight_decay_step": 0.001, "weight_decay_cap": 0.01}',
     {"dropout": "0.1", "weight_decay": "0.001"}),
])
def test_the_other_choices_start_from_the_best_attempts_settings(
    cloud: Cloud, monkeypatch: pytest.MonkeyPatch, policy: str, changed: dict[str, str]
) -> None:
    cloud.use_config(monkeypatch, retrain_policy=policy)
    _, second, third = _walk_to_attempt_3(cloud)
    assert retrain_launcher.handler(_diverged_with_best(third, 3, 1.39), lambda_context())["action"] == "launched"
    fourth = job_name(DEPLOYMENT, LINEAGE, 4)
    hps = cloud.sm.describe_training_job(TrainingJobName=fourth)["HyperParameters"]
    assert {key: hps.get(key) for key in changed} == changed
    assert cloud.tags(fourth)["o2v:lineage-best-job"] == second  # attempt 3 did not take the lead
    # ... and when that attempt does not help either, the lineage stops
    sagemaker_fake.set_status(fourth, "Stopped")
    assert retrain_launcher.handler(_diverged_with_best(fourth, 4, 1.35), lambda_context())["action"] == "exhausted"


def test_the_reconciler_path_reads_the_parents_best_from_its_tag(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler continues a diverged job without its event: the o2v:best-value tag (set with
    o2v:diverged) stands in for the event's best value."""
    cloud.use_config(monkeypatch)
    _, second, third = _walk_to_attempt_3(cloud)
    arn = cloud.sm.describe_training_job(TrainingJobName=third)["TrainingJobArn"]
    cloud.sm.add_tags(ResourceArn=arn, Tags=[{"Key": "o2v:diverged", "Value": "validation_rise epoch 7"},
                                             {"Key": "o2v:best-value", "Value": "1.39"}])
    jobs = TrainingJobs()
    parent = load_job(jobs, third, field="test")
    announcer = Announcer(EventBus(BUS), Announcements(ARTIFACT_BUCKET, DEPLOYMENT))

    outcome = continue_lineage(parent, lineage_of(parent, DEPLOYMENT), DEPLOYMENT, jobs=jobs, announcer=announcer,
                               policy=RetrainPolicy())

    assert outcome.action == "exhausted" and "did not beat the lineage's best 1.3" in outcome.detail
    assert lineage_best(parent, RetrainPolicy(), jobs, parent_best=None).best_job == second
