"""``o2v verify`` on bad input: a clear message naming the missing piece and the command that
fixes it, exit 2, and nothing created. The clean-up that a later run does of an interrupted run's
leftovers. And the real path of the checks that only an account settles, each reading what moto
answers as AWS would. CloudFormation, CloudWatch, Logs, SQS, SNS, S3, SSM, DynamoDB and SageMaker
are moto.

AWS behaviour relied on: DescribeStacks of a stack that does not exist answers ValidationError
(CloudFormation API reference, DescribeStacks); the physical id of an ``AWS::SQS::Queue`` is its
URL (CloudFormation, AWS::SQS::Queue "Ref"); ``/aws/sagemaker/TrainingJobs`` takes at most two
subscription filters (PutSubscriptionFilter; reference 11f).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from o2v_core import resource_names as rn
from o2v_core.settings import settings_from_cdk_json

from tests.training.test_preflight import ServiceQuotas, quota, subscription_filter
from tests.training.test_preflight import session as moto_session  # noqa: F401  (the fixture it builds on)
from training.cli import main
from training.preflight.log_slots import our_filter_names
from training.preflight.quotas import endpoint_quota_name, training_quota_name
from training.preflight.report import Check, Status
from training.verify.account_checks import POINTS, AccountPoint
from training.verify.loop_checks import LoopChecks
from training.verify.plan import TRAINING_INSTANCE_TYPE, make_plan
from training.verify.run_tag import VerifyRun, clean_up
from training.verify.runner import VerifyOptions, run_verify
from training.verify.target import VerifyInputError, read_target

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account id
DEV = settings_from_cdk_json(REPO_ROOT / "cdk.json", "dev")
DATASETS, ARTIFACTS = "o2v-dev-datasets", "o2v-dev-artifacts"


@pytest.fixture
def account(moto_session: boto3.Session) -> boto3.Session:  # noqa: F811  (pytest passes the fixture)
    """``o2v preflight``'s moto account (credentials, region, ``mock_aws``)."""
    return moto_session


def _stack(account: boto3.Session, name: str, outputs: dict[str, str], queues: tuple[str, ...] = ()) -> None:
    resources: dict[str, Any] = {queue: {"Type": "AWS::SQS::Queue"} for queue in queues} or {
        "Placeholder": {"Type": "AWS::SNS::Topic"}}
    template = {"Resources": resources, "Outputs": {key: {"Value": value} for key, value in outputs.items()}}
    account.client("cloudformation").create_stack(StackName=name, TemplateBody=json.dumps(template))


def deploy(account: boto3.Session, *, drop: str | None = None) -> str:
    """The three stacks' outputs as this version writes them (``drop``: one left out); the topic ARN."""
    topic = account.client("sns").create_topic(Name="o2v-dev-notifications")["TopicArn"]
    for bucket in (DATASETS, ARTIFACTS):
        account.client("s3").create_bucket(Bucket=bucket)
    data = {rn.OUTPUT_DATASET_BUCKET: DATASETS, rn.OUTPUT_ARTIFACT_BUCKET: ARTIFACTS,
            rn.OUTPUT_TRAINING_OUTPUT_URI: f"s3://{ARTIFACTS}/training-jobs/"}
    training = {rn.OUTPUT_TRAINING_ROLE: f"arn:aws:iam::{ACCOUNT}:role/o2v-dev-training",
                rn.OUTPUT_NOTIFICATION_TOPIC: topic, rn.OUTPUT_EVENT_BUS: rn.event_bus_name("o2v-dev")}
    serving = {rn.OUTPUT_ENDPOINT_NAME: rn.endpoint_name("o2v-dev"),
               rn.OUTPUT_SERVING_MODEL_PARAMETER: rn.serving_model_parameter("o2v-dev"),
               rn.OUTPUT_ROLLBACK_ALARMS: "o2v-dev-invocation-errors,o2v-dev-latency"}
    for name, outputs, queues in ((rn.data_stack_name("o2v-dev"), data, ()),
                                  (rn.training_stack_name("o2v-dev"), training, ("RuleDeadLetters",)),
                                  (rn.serving_stack_name("o2v-dev"), serving, ("AnnouncementWitnessQueue",))):
        _stack(account, name, {key: value for key, value in outputs.items() if key != drop}, queues)
    return topic


def _created_nothing(account: boto3.Session) -> None:
    assert account.client("sqs").list_queues(QueueNamePrefix="o2v-dev-verify-").get("QueueUrls", []) == []
    assert account.client("s3").list_objects_v2(Bucket=DATASETS).get("KeyCount", 0) == 0
    assert account.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def _verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", "--env", "dev", "--yes", "--cdk-json", str(REPO_ROOT / "cdk.json")])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _verify_with_quotas(account: boto3.Session, training: float, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """The run with Service Quotas answered by botocore's Stubber (moto has no ListServiceQuotas)."""
    quotas = ServiceQuotas().applied([
        quota(training_quota_name(TRAINING_INSTANCE_TYPE), training, "L-TRAIN001"),
        quota(endpoint_quota_name(DEV.serving.instance_type), 2 * DEV.serving.max_capacity, "L-ENDPT001")])

    def client(service: str, region: str) -> Any:
        if service == "service-quotas":
            return quotas.client
        return account.client(service, region_name=region)  # type: ignore[call-overload]

    quotas.stubber.activate()
    options = VerifyOptions(env_name="dev", yes=True)
    try:
        code = run_verify(DEV, options, clients=client)
    except VerifyInputError as error:  # what `o2v verify` prints as "error: ..." with exit 2
        code, message = 2, str(error)
    else:
        message = ""
    captured = capsys.readouterr()
    return code, captured.out + message


def test_without_credentials_it_says_so_and_exits_2(tmp_path: Path) -> None:
    """The README's command in a clean shell with no AWS credentials or configuration."""
    env = {"PATH": f"{REPO_ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(["bash", "-c", "o2v verify --env dev --yes"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "o2v verify: error: no AWS credentials found" in done.stderr
    assert "aws configure" in done.stderr


def test_stacks_not_deployed_name_the_stack_and_the_deploy_command(account: boto3.Session,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    account.client("s3").create_bucket(Bucket=DATASETS)
    code, output = _verify(capsys)
    assert code == 2, output
    assert "stack o2v-dev-training is not deployed here" in output
    assert "fix: `cdk deploy --all -c env=dev`" in output
    _created_nothing(account)


@pytest.mark.parametrize("missing", [rn.OUTPUT_ROLLBACK_ALARMS, rn.OUTPUT_NOTIFICATION_TOPIC])
def test_stacks_of_another_version_name_the_missing_output(account: boto3.Session, missing: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    deploy(account, drop=missing)
    code, output = _verify(capsys)
    assert code == 2, output
    assert f"lacks output(s) {missing}: it was deployed by another version of this project" in output
    assert "cdk deploy --all -c env=dev" in output
    _created_nothing(account)


def test_a_full_subscription_filter_slot_names_the_filters_and_how_to_free_one(
        account: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    deploy(account)
    subscription_filter(account, "other-tool-a")
    subscription_filter(account, "other-tool-b")
    code, output = _verify(capsys)
    assert code == 2, output
    (ours,) = our_filter_names("o2v-dev")
    assert f"subscription filter {ours} is missing" in output
    assert "other-tool-a" in output and "other-tool-b" in output
    assert "aws logs delete-subscription-filter" in output and "cdk deploy --all -c env=dev" in output
    _created_nothing(account)


def test_an_endpoint_serving_another_model_is_never_replaced(account: boto3.Session,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    deploy(account)
    (ours,) = our_filter_names("o2v-dev")
    subscription_filter(account, ours)
    account.client("ssm").put_parameter(Name=rn.serving_model_parameter("o2v-dev"), Type="String",
                                        Value=json.dumps({"trainingJobName": "o2v-dev--stsb-a3"}))
    code, output = _verify_with_quotas(account, 1, capsys)
    assert code == 2, output
    assert "serves o2v-dev--stsb-a3; verify would replace it" in output
    _created_nothing(account)


def test_no_training_quota_for_the_verify_type_asks_for_the_increase(account: boto3.Session,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    deploy(account)
    (ours,) = our_filter_names("o2v-dev")
    subscription_filter(account, ours)
    code, output = _verify_with_quotas(account, 0, capsys)
    assert code == 2, output
    assert f"{training_quota_name(TRAINING_INSTANCE_TYPE)}" in output
    assert "aws service-quotas request-service-quota-increase" in output
    _created_nothing(account)


def test_the_target_reads_the_stacks_outputs_and_their_queues(account: boto3.Session) -> None:
    topic = deploy(account)
    target = read_target(account.client("cloudformation"), "o2v-dev", "dev", REGION)
    assert target.topic_arn == topic and target.launch.dataset_bucket == DATASETS
    assert target.rollback_alarms == ("o2v-dev-invocation-errors", "o2v-dev-latency")
    assert set(target.queues) == {"RuleDeadLetters", "AnnouncementWitnessQueue"}
    assert all(url.startswith("https://") or url.startswith("http") for url in target.queues.values())


def test_a_later_run_removes_the_leftovers_of_an_interrupted_one_and_nothing_else(account: boto3.Session) -> None:
    topic = deploy(account)
    target = read_target(account.client("cloudformation"), "o2v-dev", "dev", REGION)
    sqs, s3, ssm = account.client("sqs"), account.client("s3"), account.client("ssm")
    url = sqs.create_queue(QueueName="o2v-dev-verify-1206235959")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    account.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for key in ("datasets/verify-1206235959/train/train.jsonl", "datasets/stsb/train/train.jsonl"):
        s3.put_object(Bucket=DATASETS, Key=key, Body=b"{}")
    ssm.put_parameter(Name=target.serving_parameter, Type="String",
                      Value=json.dumps({"trainingJobName": "o2v-dev--verify-1206235959-a1"}))

    done = clean_up(account, target)

    assert sqs.list_queues(QueueNamePrefix="o2v-dev-verify-").get("QueueUrls", []) == []
    assert account.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=DATASETS)["Contents"]]
    assert keys == ["datasets/stsb/train/train.jsonl"]  # the user's dataset stays
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=target.serving_parameter)
    assert any("SQS queue" in item for item in done.removed) and done.failed == []


def test_keep_leaves_the_served_verify_model_and_its_record(account: boto3.Session) -> None:
    deploy(account)
    target = read_target(account.client("cloudformation"), "o2v-dev", "dev", REGION)
    ssm = account.client("ssm")
    ssm.put_parameter(Name=target.serving_parameter, Type="String",
                      Value=json.dumps({"trainingJobName": "o2v-dev--verify-1206235959-a1"}))
    done = clean_up(account, target, keep_endpoint=True)
    assert json.loads(ssm.get_parameter(Name=target.serving_parameter)["Parameter"]["Value"])
    assert done.kept and "--keep" in done.kept[0] and not any("record" in item for item in done.removed)


def test_help_explains_the_checks_the_clean_up_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    text = capsys.readouterr().out
    for words in ("ml.m5.2xlarge", "--local", "--keep", "--yes", "o2v:verify-run", "Exit status", "could not tell"):
        assert words in text, words


# ---------------------------------------------------------------------------------------------
# The points only a real account settles: their real path, against moto


def _loop(account: boto3.Session, tmp_path: Path) -> LoopChecks:
    deploy(account)
    target = read_target(account.client("cloudformation"), "o2v-dev", "dev", REGION)
    plan = make_plan(VerifyRun.new("o2v-dev"), target, DEV, local=False)
    return LoopChecks(account, plan, tmp_path, timeout=1, poll_seconds=0, progress=print, best_epoch_artifact=False)


def _point(name: str) -> AccountPoint:
    (point,) = [point for point in POINTS if point.name == name]
    return point


def test_every_point_of_the_docs_has_a_named_check() -> None:
    docs = (REPO_ROOT / "docs" / "verification.md").read_text(encoding="utf-8")
    for point in POINTS:
        assert f"`{point.name}`" in docs, f"docs/verification.md does not map {point.name!r}"


def test_a_stopped_attempt_records_whether_object2vec_saved_a_model(account: boto3.Session, tmp_path: Path) -> None:
    loop = _loop(account, tmp_path)
    uri = f"s3://{ARTIFACTS}/training-jobs/o2v-dev--verify-1-a1/output/model.tar.gz"
    account.client("s3").put_object(Bucket=ARTIFACTS, Key=uri.split("/", 3)[3], Body=b"x" * 10)
    loop.seen.jobs["o2v-dev--verify-1-a1"] = {"TrainingJobName": "o2v-dev--verify-1-a1", "TrainingJobStatus": "Stopped",
                                              "ModelArtifacts": {"S3ModelArtifacts": uri}}
    check = _point("Object2Vec saves a model on StopTrainingJob").run(loop, {})
    assert check.status is Status.PASSED and f"{uri} (10 bytes)" in check.detail


def test_the_rollback_check_needs_the_alarms_and_a_served_model_of_the_run(account: boto3.Session,
                                                                           tmp_path: Path) -> None:
    loop = _loop(account, tmp_path)
    point = _point("blue/green rollback on a tripped alarm")
    missing = point.run(loop, {})
    assert missing.status is Status.FAILED
    assert "o2v-dev-invocation-errors, o2v-dev-latency do not exist" in missing.detail
    for alarm in loop.target.rollback_alarms:
        account.client("cloudwatch").put_metric_alarm(
            AlarmName=alarm, MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum",
            Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
    account.client("sagemaker").create_model(ModelName="m", ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/model",
                                             PrimaryContainer={"Image": "object2vec:1"})
    account.client("sagemaker").create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}])
    account.client("sagemaker").create_endpoint(EndpointName=loop.target.endpoint_name, EndpointConfigName="c")
    unserved = point.run(loop, {})  # the promotion check did not pass: no candidate is launched
    assert unserved.status is Status.UNKNOWN and "no model of this run was served" in unserved.detail
    assert account.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_the_custom_resources_point_reads_the_stacks_status(account: boto3.Session, tmp_path: Path) -> None:
    check = _point("the inline custom resources answered CloudFormation").run(_loop(account, tmp_path), {})
    assert check.status is Status.PASSED and "o2v-dev-serving CREATE_COMPLETE" in check.detail


def test_the_delivery_point_follows_the_announcement_check(account: boto3.Session, tmp_path: Path) -> None:
    loop = _loop(account, tmp_path)
    point = _point("EventBridge and SNS deliver into the encrypted topic and queues")
    passed = Check("announcements reach the operators' topic", Status.PASSED, "received ModelPromoted")
    assert point.run(loop, {passed.name: passed}).status is Status.PASSED
    failed = Check(passed.name, Status.FAILED, "nothing")
    assert point.run(loop, {failed.name: failed}).status is Status.FAILED


def test_in_local_mode_every_point_could_not_tell(account: boto3.Session, tmp_path: Path) -> None:
    loop = _loop(account, tmp_path)
    local = dataclasses.replace(loop.plan, target=dataclasses.replace(loop.target, local=True))
    loop = LoopChecks(account, local, tmp_path, timeout=1, poll_seconds=0, progress=print, best_epoch_artifact=True)
    for point in POINTS:
        check = point.run(loop, {})
        assert check.status is Status.UNKNOWN and check.detail.startswith("local mode: "), check


def test_the_loop_settles_without_announcements_once_nothing_changes(account: boto3.Session, tmp_path: Path) -> None:
    """A broken announcement path must not hold the run until its timeout: its own check reports it."""
    loop = _loop(account, tmp_path)
    assert loop.subscribe().status is Status.PASSED
    job = f"o2v-dev--{loop.verify_run.lineage}-a1"
    account.client("sagemaker").create_training_job(
        TrainingJobName=job, RoleArn=loop.target.launch.training_role_arn,
        AlgorithmSpecification={"TrainingImage": "object2vec:1", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": loop.target.launch.training_output_uri},
        ResourceConfig={"InstanceType": "ml.m5.2xlarge", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60}, HyperParameters={"dropout": "0.0"})
    loop.timeout, loop.idle_seconds = 30, 0.0
    settled = loop.wait()
    assert settled.status is Status.PASSED and "1 attempt(s)" in settled.detail, settled
    delivery = _point("EventBridge and SNS deliver into the encrypted topic and queues")
    assert delivery.run(loop, {}).status is Status.FAILED


def test_an_accounts_plan_names_the_rollback_candidate_and_counts_it_in_the_bound(account: boto3.Session,
                                                                                 tmp_path: Path) -> None:
    from training.verify.plan import (
        MAX_RUNTIME_SECONDS,
        ROLLBACK_BAKE_SECONDS,
        ROLLBACK_DECISION_SECONDS,
        ROLLBACK_RECORD_SECONDS,
    )

    plan = _loop(account, tmp_path).plan
    text = "\n".join(plan.lines())
    assert f"one more training job o2v-dev--{plan.run.lineage}-rb-a1 " in text and "holds no model" in text
    assert plan.training_hours == (DEV.retrain_policy.max_attempts + 1) * MAX_RUNTIME_SECONDS / 3600
    rollback = MAX_RUNTIME_SECONDS + ROLLBACK_DECISION_SECONDS + ROLLBACK_BAKE_SECONDS + ROLLBACK_RECORD_SECONDS
    assert plan.max_minutes == (plan.max_attempts * MAX_RUNTIME_SECONDS + rollback) / 60 + 60
    assert f"at most {plan.max_minutes:.0f} minutes" in text
