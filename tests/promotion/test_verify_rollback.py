"""``o2v verify``'s rollback check (training/verify/rollback.py) on its real path: the run launches
its candidate with the launcher, replaces the completed candidate's artifact, and watches the
promoter, the bake and the reconciler through boto3 alone. SageMaker is the scripted fake (the
test decides, as SageMaker would, when the job ends, whether the update settles or rolls back:
"If any of the alarms trip during the baking period, SageMaker initiates a complete rollback",
https://docs.aws.amazon.com/sagemaker/latest/dg/deployment-guardrails-configuration.html); every
other service is the session's moto server. CloudWatch does not evaluate alarms in moto, so the
test sets the 5xx alarm's state as CloudWatch would once the candidate's 5xx answers reach its
threshold (SetAlarmState, CloudWatch API reference). EventBridge's SNS target is played by
forwarding the promoter's and reconciler's events to the topic (EventBridge user guide, "Amazon SNS
as a target": the whole event is the message). The promoter and the reconciler are the real ones.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest
from control_plane.handlers.promoter import handler
from o2v_core.events import MODEL_PROMOTED
from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX, job_curve_table_name
from o2v_core.settings import settings_from_cdk_json

from tests.promotion.support import ALARMS, BUS, CONFIG, DEPLOYMENT, ENDPOINT, PARAMETER, Aws, succeeded
from tests.promotion.test_promoter_faults import reconcile
from tests.support import sagemaker_fake
from tests.support.lambda_context import lambda_context
from training.launcher.stack import StackOutputs
from training.preflight.report import Check, Status
from training.verify.loop_checks import LoopChecks
from training.verify.plan import make_plan
from training.verify.rollback import RollbackObservation, RollbackProbe, judge, unservable_archive
from training.verify.run_tag import VerifyRun, clean_up
from training.verify.runner import prepare_tiny_dataset
from training.verify.target import Target

REPO_ROOT = Path(__file__).resolve().parents[2]
DATASETS = "demo-datasets"
PROBE_ERRORS: list[BaseException] = []  # the running probe's exception, if any


def _until(what: str, done: Callable[[], bool], tick: Callable[[], None], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tick()
        if PROBE_ERRORS:
            raise AssertionError(f"the rollback check raised while waiting for {what}") from PROBE_ERRORS[0]
        if done():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Run:
    """The verify run's side (its loop and probe, in a thread) and the account's (the test)."""

    def __init__(self, aws: Aws, tmp_path: Path, shared_data: Path) -> None:
        self.aws = aws
        s3, sns = aws.client("s3"), aws.client("sns")
        s3.create_bucket(Bucket=DATASETS)
        topic = sns.create_topic(Name=CONFIG.notification_topic_arn.rsplit(":", 1)[1])["TopicArn"]
        launch = StackOutputs(deployment=DEPLOYMENT, training_role_arn=CONFIG.training_role_arn,
                              dataset_bucket=DATASETS, artifact_bucket=CONFIG.artifact_bucket,
                              training_output_uri=f"s3://{CONFIG.artifact_bucket}/{TRAINING_OUTPUT_PREFIX}",
                              kms_key_arn=None, instance_type=None, first_attempt_hyperparameters={},
                              event_bus_name=BUS)
        self.target = Target(deployment=DEPLOYMENT, region=sagemaker_fake.REGION, launch=launch, topic_arn=topic,
                             endpoint_name=ENDPOINT, serving_parameter=PARAMETER,
                             curve_table=job_curve_table_name(DEPLOYMENT), rollback_alarms=ALARMS)
        for alarm in ALARMS:  # the serving stack's alarms (stacks/constructs/endpoint_alarms.py)
            aws.client("cloudwatch").put_metric_alarm(
                AlarmName=alarm, Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Statistic="Sum",
                Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT},
                            {"Name": "VariantName", "Value": "AllTraffic"}],
                Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching")
        settings = settings_from_cdk_json(REPO_ROOT / "cdk.json", "dev")
        plan = make_plan(VerifyRun.new(DEPLOYMENT), self.target, settings, local=False)
        data = prepare_tiny_dataset(shared_data / "stsbenchmark", tmp_path / "data")
        self.progress: list[str] = []
        self.loop = LoopChecks(boto3.session.Session(region_name=sagemaker_fake.REGION), plan, data, timeout=1,
                               poll_seconds=0.05, progress=self.progress.append, best_epoch_artifact=False)
        assert self.loop.subscribe().status is Status.PASSED
        assert self.loop.upload().status is Status.PASSED
        self.result: list[Check] = []
        self.errors = PROBE_ERRORS
        self.errors.clear()

    def forward_events(self) -> None:
        """EventBridge's SNS target: every event on the bus, published whole to the operators' topic."""
        for event in self.aws.events():
            self.aws.client("sns").publish(TopicArn=self.target.topic_arn, Message=json.dumps(event))

    def serve_first_attempt(self) -> str:
        """Attempt 1 of the run, launched by the launcher, completed, promoted, InService."""
        assert self.loop.launch().status is Status.PASSED
        job = self.loop.seen.first_job
        sagemaker_fake.set_status(job, "Completed")
        artifact = self.aws.model_artifact(job)
        bucket, _, key = artifact.removeprefix("s3://").partition("/")
        self.aws.client("s3").put_object(Bucket=bucket, Key=key, Body=b"a model")
        event = succeeded(job, artifact=artifact, best=0.5, lineage=self.loop.verify_run.lineage)
        assert handler(event, lambda_context())["outcome"] == MODEL_PROMOTED
        sagemaker_fake.settle()
        self.forward_events()
        return job

    def start_probe(self) -> tuple[RollbackProbe, threading.Thread]:
        probe = RollbackProbe(self.loop)
        probe.invocation_seconds = 0.02
        def check() -> None:
            try:
                self.result.append(probe.run())
            except BaseException as error:  # the test's failure names it, not a silent thread
                self.errors.append(error)
                raise

        thread = threading.Thread(target=check, daemon=True)
        thread.start()
        return probe, thread

    def candidate(self) -> str:
        names = [item["TrainingJobName"] for item in self.aws.sagemaker.list_training_jobs(
            NameContains="-rb-")["TrainingJobSummaries"]]
        return names[0] if names else ""

    def complete_and_promote_candidate(self, best: float = 0.4) -> str:
        """The candidate ends; once the run replaced its artifact, the promoter deploys it (Updating)."""
        _until("the candidate's launch", lambda: bool(self.candidate()), self.forward_events)
        job = self.candidate()
        sagemaker_fake.set_status(job, "Completed")
        artifact = self.aws.model_artifact(job)
        bucket, _, key = artifact.removeprefix("s3://").partition("/")

        def replaced() -> bool:
            try:
                body: bytes = self.aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
            except self.aws.client("s3").exceptions.NoSuchKey:
                return False
            return body == unservable_archive()

        _until("the run to replace the candidate's artifact", lambda: replaced() or bool(self.result),
               self.forward_events)
        assert not self.result, self.result
        event = succeeded(job, artifact=artifact, best=best, lineage=self.loop.verify_run.lineage + "-rb")
        outcome = handler(event, lambda_context())
        self.forward_events()
        return str(outcome["outcome"])

    def finish(self, thread: threading.Thread) -> Check:
        _until("the rollback check's verdict", lambda: bool(self.result), self.forward_events)
        thread.join(5)
        return self.result[0]


@pytest.fixture
def run(aws: Aws, tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", aws.sagemaker_url)  # InvokeEndpoint: the fake too
    return Run(aws, tmp_path, shared_data)


def _answered(probe: RollbackProbe) -> bool:
    return sum(probe.seen.answers.values()) > 0


def test_a_tripped_alarm_rolls_the_candidate_back_and_the_record_and_model_rolled_back_say_so(run: Run) -> None:
    first = run.serve_first_attempt()
    previous_config = run.aws.record()["endpointConfigName"]  # type: ignore[index]
    probe, thread = run.start_probe()
    assert run.complete_and_promote_candidate() == MODEL_PROMOTED
    _until("invocations during the bake", lambda: _answered(probe), run.forward_events)
    run.aws.client("cloudwatch").set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM",
                                                 StateReason="Threshold Crossed: 1 datapoint [12.0] >= 1.0")
    _until("the run to see the alarm", lambda: bool(probe.seen.alarm_trips), run.forward_events)
    sagemaker_fake.roll_back()  # SageMaker: the alarm tripped during the bake
    _until("the bake's end", lambda: bool(probe.seen.endpoint_after), run.forward_events)
    reconcile()  # the reconciler's next run (every 5 minutes)
    check = run.finish(thread)
    assert check.status is Status.PASSED, check
    assert f"the record names {first} again" in check.detail
    assert f"InService on {previous_config}" in check.detail and f"{ALARMS[0]} -> ALARM" in check.detail
    assert "the blue/green deployment was rolled back or failed" in check.detail  # ModelRolledBack's reason
    assert any("replaced with an archive that holds no model" in line for line in run.progress)


def test_a_tripped_alarm_that_does_not_roll_back_fails_with_what_aws_did(run: Run) -> None:
    run.serve_first_attempt()
    probe, thread = run.start_probe()
    assert run.complete_and_promote_candidate() == MODEL_PROMOTED
    _until("invocations during the bake", lambda: _answered(probe), run.forward_events)
    run.aws.client("cloudwatch").set_alarm_state(AlarmName=ALARMS[0], StateValue="ALARM", StateReason="5xx")
    _until("the run to see the alarm", lambda: bool(probe.seen.alarm_trips), run.forward_events)
    sagemaker_fake.settle()  # SageMaker kept the candidate although the alarm tripped
    check = run.finish(thread)
    assert check.status is Status.FAILED, check
    assert "the endpoint kept the failing candidate" in check.detail and "cloudwatch:DescribeAlarms" in str(
        check.remedy)


def test_a_candidate_the_promoter_skips_could_not_tell_and_leaves_nothing_behind(run: Run) -> None:
    run.serve_first_attempt()
    _, thread = run.start_probe()
    assert run.complete_and_promote_candidate(best=0.9) != MODEL_PROMOTED  # worse than the served 0.5
    check = run.finish(thread)
    assert check.status is Status.UNKNOWN and "was not deployed (skipped: not better by the margin" in check.detail
    done = clean_up(run.loop.session, run.target)
    assert not any(item["TrainingJobStatus"] == "InProgress" for item in run.aws.sagemaker.list_training_jobs(
        NameContains="verify-")["TrainingJobSummaries"])
    assert any("training-jobs/demo--verify-" in item for item in done.removed), done
    assert run.aws.sagemaker.list_models(NameContains="verify-")["Models"] == [], done


def _went_back(**changes: object) -> RollbackObservation:
    observed = RollbackObservation(
        previous_config="demo--c-verify-1-a2", previous_job="demo--verify-1-a2", candidate_job="demo--verify-1-rb-a1",
        candidate_config="demo--c-verify-1-rb-a1", promotion="promoted",
        endpoint_after={"EndpointStatus": "InService", "EndpointConfigName": "demo--c-verify-1-a2"},
        record_job="demo--verify-1-a2", rolled_back={"reason": "rolled back or failed"})
    for key, value in changes.items():
        setattr(observed, key, value)
    return observed


def test_a_failed_update_that_went_back_without_an_alarm_leaves_the_role_question_open() -> None:
    """The container refused the archive at its health check: SageMaker kept the old fleet before any bake."""
    failed = {"EndpointStatus": "InService", "EndpointConfigName": "demo--c-verify-1-a2",
              "FailureReason": "The primary container for production variant AllTraffic did not pass the ping check"}
    check = judge(_went_back(endpoint_after=failed))
    assert check.status is Status.UNKNOWN and "because the update failed before the bake" in check.detail
    assert "did not pass the ping check" in check.detail  # what AWS said is recorded for the user to report


def test_an_endpoint_back_on_the_old_model_without_the_reconcilers_repair_fails() -> None:
    check = judge(_went_back(alarm_trips=["demo-embeddings-5xx -> ALARM at now"], rolled_back=None,
                             record_job="demo--verify-1-rb-a1"))
    assert check.status is Status.FAILED and "the record names demo--verify-1-rb-a1 and no ModelRolledBack" in (
        check.detail)
    assert "reconciler" in str(check.remedy)


def test_5xx_answers_with_no_alarm_and_no_rollback_fail_naming_the_alarms_metric() -> None:
    kept = {"EndpointStatus": "InService", "EndpointConfigName": "demo--c-verify-1-rb-a1"}
    check = judge(_went_back(endpoint_after=kept, answers=Counter({"5xx": 40})))
    assert check.status is Status.FAILED and "no rollback alarm went to ALARM" in check.detail
    assert "40 5xx" in check.detail


def test_the_candidates_archive_is_a_valid_model_tar_gz_that_holds_no_model_and_never_changes() -> None:
    import io
    import tarfile

    first = unservable_archive()
    time.sleep(1.1)  # gzip's header carries a time: the run and a later look must see the same bytes
    assert unservable_archive() == first
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as archive:
        assert archive.getnames() == ["NOT-A-MODEL.txt"]
