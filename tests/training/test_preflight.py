"""`o2v preflight`: each condition a first deploy meets in a real account (reference 11f), read-only.

AWS answers through moto (STS, SSM, CloudFormation, CloudWatch Logs) where moto follows the API
reference. moto 5.2 implements no ListServiceQuotas and lists default quotas only for the `vpc`
service (moto/servicequotas/models.py), so Service Quotas answers through botocore's Stubber, which
checks each request and each response against the `service-quotas` service model; every stubbed
error code is one the service model defines (asserted in :func:`access_denied`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from o2v_core.functions import METRIC_LINE_JUDGE
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP
from o2v_core.settings import read_cdk_context, settings_from_cdk_json

from training.cli import main
from training.preflight.account import (
    BOOTSTRAP,
    CREDENTIALS,
    DEFAULT_QUALIFIER,
    QUALIFIER_CONTEXT_KEY,
    bootstrap_version_parameter,
)
from training.preflight.log_slots import LOG_FILTER_SLOTS, our_filter_names
from training.preflight.quotas import ENDPOINT_QUOTA, TRAINING_QUOTA, endpoint_quota_name, training_quota_name
from training.preflight.report import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_PASSED, Report, Status
from training.preflight.runner import NOTIFICATIONS, run_preflight

REPO_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = REPO_ROOT / "cdk.json"
REGION = "us-east-1"
MOTO_ACCOUNT = "123456789012"  # moto's default account id (moto docs, "Multi-account support")
DEV = settings_from_cdk_json(CDK_JSON, "dev")
PROD = settings_from_cdk_json(CDK_JSON, "prod")
TRAINING_CODE = "L-TRAIN001"  # test codes: real ones have this form (L-, then 8 characters)
ENDPOINT_CODE = "L-ENDPT001"


# ---------------------------------------------------------------------------------------------
# AWS as the tests set it up


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def bootstrap(session: boto3.Session, version: str = "30", qualifier: str = DEFAULT_QUALIFIER) -> None:
    """What `cdk bootstrap` leaves that the templates read: the version parameter."""
    session.client("ssm").put_parameter(Name=bootstrap_version_parameter(qualifier), Value=version, Type="String")


def subscription_filter(session: boto3.Session, name: str) -> None:
    """A filter on SageMaker's training log group, delivering to a Kinesis stream (moto checks it exists)."""
    logs = session.client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=TRAINING_JOB_LOG_GROUP)
    kinesis = session.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    logs.put_subscription_filter(logGroupName=TRAINING_JOB_LOG_GROUP, filterName=name, filterPattern="",
                                 destinationArn=arn, roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/cwl-to-kinesis")


def quota(name: str, value: float, code: str, adjustable: bool = True) -> dict[str, Any]:
    """One entry of ListServiceQuotas / ListAWSDefaultServiceQuotas (ServiceQuota shape)."""
    return {"ServiceCode": "sagemaker", "ServiceName": "Amazon SageMaker", "QuotaCode": code, "QuotaName": name,
            "Value": float(value), "Unit": "None", "Adjustable": adjustable, "GlobalQuota": False}


def quotas_for(settings: Any, training: float, endpoint: float) -> list[dict[str, Any]]:
    return [quota(training_quota_name(settings.training.instance_type), training, TRAINING_CODE),
            quota(endpoint_quota_name(settings.serving.instance_type), endpoint, ENDPOINT_CODE)]


class ServiceQuotas:
    """A real service-quotas client whose answers botocore's Stubber gives, page by page."""

    def __init__(self) -> None:
        self.client = boto3.client("service-quotas", region_name=REGION,
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.stubber = Stubber(self.client)

    def listing(self, operation: str, pages: list[list[dict[str, Any]]]) -> ServiceQuotas:
        for number, page in enumerate(pages):
            params: dict[str, Any] = {"ServiceCode": "sagemaker"}
            response: dict[str, Any] = {"Quotas": page}
            if number:
                params["NextToken"] = f"page-{number}"
            if number < len(pages) - 1:
                response["NextToken"] = f"page-{number + 1}"
            self.stubber.add_response(operation, response, params)
        return self

    def applied(self, *pages: list[dict[str, Any]]) -> ServiceQuotas:
        return self.listing("list_service_quotas", list(pages))

    def defaults(self, *pages: list[dict[str, Any]]) -> ServiceQuotas:
        return self.listing("list_aws_default_service_quotas", list(pages))

    def denied(self) -> ServiceQuotas:
        access_denied(self.stubber, self.client, "list_service_quotas")
        return self


def access_denied(stubber: Stubber, client: Any, method: str, code: str = "AccessDeniedException") -> None:
    """Stub the answer to a caller whose policy lacks the action. The code is the service model's own
    error shape (service-quotas: a modelled error of the operation; logs and ssm: a shape of their
    models), except CloudFormation (query protocol), which answers `AccessDenied` (as in
    scopely-devops/skew#81: "An error occurred (AccessDenied) when calling the DescribeStacks operation")."""
    if code == "AccessDeniedException":
        assert code in client.meta.service_model.shape_names
    stubber.add_client_error(method, service_error_code=code, http_status_code=400,
                             service_message="User is not authorized to perform this action")


def preflight(session: boto3.Session, quotas: ServiceQuotas, settings: Any = DEV,
              context: dict[str, Any] | None = None, **stubbed: Any) -> Report:
    """run_preflight against moto, with the given Stubber-answered clients in place of moto's."""
    clients = {"service-quotas": quotas.client, **stubbed}

    def client(service: str, region: str) -> Any:
        return clients.get(service) or session.client(service, region_name=region)  # type: ignore[call-overload]

    quotas.stubber.activate()
    report = run_preflight(session, settings, context if context is not None else read_cdk_context(CDK_JSON),
                           clients=client)
    quotas.stubber.assert_no_pending_responses()
    return report


def line(report: Report, name: str) -> Any:
    (found,) = [check for check in report.checks if check.name == name]
    return found


def ready(session: boto3.Session) -> ServiceQuotas:
    """An account where everything passes for dev: bootstrapped, 1 training and 4 endpoint instances."""
    bootstrap(session)
    return ServiceQuotas().applied(quotas_for(DEV, training=1, endpoint=2 * DEV.serving.max_capacity))


# ---------------------------------------------------------------------------------------------
# All passing, and each failing condition


def test_a_ready_account_passes_every_check_and_exits_0(session: boto3.Session) -> None:
    report = preflight(session, ready(session))
    assert [check.name for check in report.checks] == [
        CREDENTIALS, BOOTSTRAP, TRAINING_QUOTA, ENDPOINT_QUOTA, LOG_FILTER_SLOTS, NOTIFICATIONS]
    assert {check.status for check in report.checks} == {Status.PASSED}, report.text()
    assert report.exit_code() == EXIT_PASSED
    assert (report.account, report.region) == (MOTO_ACCOUNT, REGION)
    text = report.text()
    assert text.splitlines()[-1].endswith("ready for `cdk deploy` (exit 0)")
    assert len(text.splitlines()) == len(report.checks) + 2  # header, one line per check, summary


def readme_preflight_command() -> str:
    """The preflight line of the README's "Deploy to AWS" block, without its comment."""
    section = (REPO_ROOT / "README.md").read_text(encoding="utf-8").split("## Deploy to AWS", 1)[1]
    (command,) = [text.split("#", 1)[0].strip() for text in section.splitlines() if text.startswith("o2v preflight")]
    return command


def test_without_credentials_it_says_so_and_exits_2(tmp_path: Path) -> None:
    """The README's command as written, in a clean shell with no AWS credentials or configuration."""
    assert readme_preflight_command() == "o2v preflight --env dev"
    env = {"PATH": f"{REPO_ROOT / '.venv' / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path),
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_DEFAULT_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true"}  # no instance role to find
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run(["bash", "-c", readme_preflight_command()], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_BAD_INPUT, done.stderr
    assert "failed         credentials and region: no AWS credentials found" in done.stdout
    assert "aws configure" in done.stdout


def test_without_a_region_it_says_where_to_set_one_and_exits_2(session: boto3.Session,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    report = run_preflight(boto3.Session(), DEV, {})
    assert report.exit_code() == EXIT_BAD_INPUT
    assert "no AWS region" in line(report, CREDENTIALS).detail


def test_an_account_that_is_not_bootstrapped_fails_with_the_bootstrap_command(session: boto3.Session) -> None:
    quotas = ServiceQuotas().applied(quotas_for(DEV, 1, 4))
    report = preflight(session, quotas)
    check = line(report, BOOTSTRAP)
    assert check.status is Status.FAILED
    assert f"SSM parameter /cdk-bootstrap/{DEFAULT_QUALIFIER}/version not found" in check.detail
    assert check.remedy == f"run `cdk bootstrap aws://{MOTO_ACCOUNT}/{REGION}`"
    assert report.exit_code() == EXIT_FAILED


def test_a_customised_qualifier_is_read_from_cdk_json(session: boto3.Session) -> None:
    bootstrap(session, qualifier="custom42")  # only the custom qualifier's parameter exists
    context = {**read_cdk_context(CDK_JSON), QUALIFIER_CONTEXT_KEY: "custom42"}
    report = preflight(session, ServiceQuotas().applied(quotas_for(DEV, 1, 4)), context=context)
    assert line(report, BOOTSTRAP).status is Status.PASSED
    assert "/cdk-bootstrap/custom42/version" in line(report, BOOTSTRAP).detail


def test_a_bootstrap_older_than_the_templates_require_fails(session: boto3.Session) -> None:
    bootstrap(session, version="5")  # aws-cdk-lib's MIN_BOOTSTRAP_STACK_VERSION is 6
    report = preflight(session, ServiceQuotas().applied(quotas_for(DEV, 1, 4)))
    assert line(report, BOOTSTRAP).status is Status.FAILED
    assert "older than 6" in line(report, BOOTSTRAP).detail


def test_zero_training_quota_fails_with_the_increase_request(session: boto3.Session) -> None:
    bootstrap(session)
    report = preflight(session, ServiceQuotas().applied(quotas_for(DEV, training=0, endpoint=4)))
    check = line(report, TRAINING_QUOTA)
    assert check.status is Status.FAILED
    assert "'ml.g5.xlarge for training job usage' is 0" in check.detail
    assert (f"aws service-quotas request-service-quota-increase --service-code sagemaker "
            f"--quota-code {TRAINING_CODE} --desired-value 1 --region {REGION}") in check.remedy
    assert line(report, ENDPOINT_QUOTA).status is Status.PASSED
    assert report.exit_code() == EXIT_FAILED


@pytest.mark.parametrize(("value", "status"), [(3, Status.FAILED), (4, Status.PASSED)])
def test_endpoint_quota_must_cover_two_fleets_of_max_capacity(session: boto3.Session, value: int,
                                                              status: Status) -> None:
    """Blue/green keeps the old fleet while it creates the new one (botocore BlueGreenUpdatePolicy; 11f):
    dev's max_capacity 2 needs 4."""
    assert DEV.serving.max_capacity == 2
    bootstrap(session)
    report = preflight(session, ServiceQuotas().applied(quotas_for(DEV, training=1, endpoint=value)))
    check = line(report, ENDPOINT_QUOTA)
    assert check.status is status
    assert "'ml.m5.large for endpoint usage'" in check.detail and "need 4" in check.detail
    if status is Status.FAILED:
        assert f"--quota-code {ENDPOINT_CODE} --desired-value 4" in check.remedy


def test_quotas_are_found_by_name_on_any_page(session: boto3.Session) -> None:
    bootstrap(session)
    filler = [quota(f"ml.c5.{n}xlarge for endpoint usage", 2, f"L-FILL{n:04d}") for n in range(3)]
    training, endpoint = quotas_for(DEV, 1, 4)
    report = preflight(session, ServiceQuotas().applied(filler, [training], filler, [endpoint]))
    assert line(report, TRAINING_QUOTA).status is Status.PASSED
    assert line(report, ENDPOINT_QUOTA).status is Status.PASSED


def test_a_quota_without_an_applied_value_falls_back_to_the_default(session: boto3.Session) -> None:
    """ListServiceQuotas omits a quota with no applied value (its documentation, service-quotas model)."""
    bootstrap(session)
    training, endpoint = quotas_for(DEV, 1, 0)
    report = preflight(session, ServiceQuotas().applied([training]).defaults([training, endpoint]))
    check = line(report, ENDPOINT_QUOTA)
    assert check.status is Status.FAILED
    assert "AWS default; the account's applied value is not listed" in check.detail


def test_a_quota_listed_nowhere_could_not_be_told(session: boto3.Session) -> None:
    bootstrap(session)
    training, _ = quotas_for(DEV, 1, 4)
    report = preflight(session, ServiceQuotas().applied([training]).defaults([training]))
    check = line(report, ENDPOINT_QUOTA)
    assert check.status is Status.UNKNOWN
    assert "environments.dev.serving.instance_type" in check.remedy
    assert report.exit_code() == EXIT_PASSED and report.exit_code(strict=True) == EXIT_FAILED


def test_a_quota_that_is_not_adjustable_asks_for_another_instance_type(session: boto3.Session) -> None:
    bootstrap(session)
    training, endpoint = quotas_for(DEV, 1, 4)
    training = {**training, "Value": 0.0, "Adjustable": False}
    report = preflight(session, ServiceQuotas().applied([training, endpoint]))
    check = line(report, TRAINING_QUOTA)
    assert check.status is Status.FAILED
    assert check.remedy == "choose another instance type in environments.dev.training.instance_type in cdk.json"


def test_both_filter_slots_taken_by_other_tools_fails_and_names_them(session: boto3.Session) -> None:
    """At most two subscription filters per log group (PutSubscriptionFilter, API reference; moto
    refuses a third with LimitExceededException as the API reference says)."""
    subscription_filter(session, "siem-forwarder")
    subscription_filter(session, "o2v-prod-metric-line-judge")  # another deployment's is not ours
    report = preflight(session, ready(session))
    check = line(report, LOG_FILTER_SLOTS)
    assert check.status is Status.FAILED
    assert "siem-forwarder" in check.detail and "o2v-prod-metric-line-judge" in check.detail
    assert (f"`aws logs delete-subscription-filter --log-group-name {TRAINING_JOB_LOG_GROUP} "
            "--filter-name siem-forwarder`") in check.remedy
    assert report.exit_code() == EXIT_FAILED


def test_our_own_filter_takes_no_new_slot(session: boto3.Session) -> None:
    ours = METRIC_LINE_JUDGE.subscription.filter_name(DEV.deployment, METRIC_LINE_JUDGE.function_id)  # type: ignore[union-attr]
    assert our_filter_names(DEV.deployment) == {ours}
    subscription_filter(session, "siem-forwarder")
    subscription_filter(session, ours)  # a redeploy: the stack updates it in place
    report = preflight(session, ready(session))
    assert line(report, LOG_FILTER_SLOTS).status is Status.PASSED


def test_one_other_filter_leaves_a_slot(session: boto3.Session) -> None:
    subscription_filter(session, "siem-forwarder")
    report = preflight(session, ready(session))
    assert line(report, LOG_FILTER_SLOTS).status is Status.PASSED
    assert "1 of 2 slots held by other filters" in line(report, LOG_FILTER_SLOTS).detail


def test_no_training_log_group_yet_passes(session: boto3.Session) -> None:
    report = preflight(session, ready(session))
    assert "does not exist yet" in line(report, LOG_FILTER_SLOTS).detail


def test_access_denied_could_not_tell_and_names_the_permission(session: boto3.Session) -> None:
    bootstrap(session)
    logs = session.client("logs")
    logs_stub = Stubber(logs)
    access_denied(logs_stub, logs, "describe_subscription_filters")
    ssm = session.client("ssm")
    ssm_stub = Stubber(ssm)
    access_denied(ssm_stub, ssm, "get_parameter")
    cloudformation = session.client("cloudformation")
    cloudformation_stub = Stubber(cloudformation)
    access_denied(cloudformation_stub, cloudformation, "describe_stacks", code="AccessDenied")
    with logs_stub, ssm_stub, cloudformation_stub:
        report = preflight(session, ServiceQuotas().denied(), logs=logs, ssm=ssm, cloudformation=cloudformation)
    for name, permission in [(BOOTSTRAP, "ssm:GetParameter"), (TRAINING_QUOTA, "servicequotas:ListServiceQuotas"),
                             (ENDPOINT_QUOTA, "servicequotas:ListServiceQuotas"),
                             (LOG_FILTER_SLOTS, "logs:DescribeSubscriptionFilters")]:
        check = line(report, name)
        assert check.status is Status.UNKNOWN, check
        assert check.detail.startswith(f"access denied to {permission}")
    assert report.exit_code() == EXIT_PASSED  # nothing known to fail ...
    assert report.exit_code(strict=True) == EXIT_FAILED  # ... unless the user asks for certainty
    assert "confirm the checks that could not tell by hand" in report.summary()


def test_a_denied_parameter_falls_back_to_the_bootstrap_stack(session: boto3.Session) -> None:
    session.client("cloudformation").create_stack(StackName="CDKToolkit", TemplateBody=json.dumps({
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BootstrapVersion": {"Value": "30"}}}))
    ssm = session.client("ssm")
    with Stubber(ssm) as ssm_stub:
        access_denied(ssm_stub, ssm, "get_parameter")
        report = preflight(session, ServiceQuotas().applied(quotas_for(DEV, 1, 4)), ssm=ssm)
    check = line(report, BOOTSTRAP)
    assert check.status is Status.PASSED
    assert "stack CDKToolkit is CREATE_COMPLETE, output BootstrapVersion" in check.detail


def test_credentials_for_another_account_than_cdk_json_pins_fail_before_any_other_read(
        session: boto3.Session) -> None:
    pinned = dataclasses.replace(DEV, account="210987654321")
    report = run_preflight(session, pinned, {})
    assert [check.status for check in report.checks] == [Status.FAILED]
    assert "cdk.json pins account 210987654321" in report.checks[0].detail
    assert report.exit_code() == EXIT_FAILED


def test_prod_without_a_notification_email_warns_without_failing(session: boto3.Session) -> None:
    bootstrap(session)
    quotas = ServiceQuotas().applied(quotas_for(PROD, 1, 2 * PROD.serving.max_capacity))
    report = preflight(session, quotas, settings=PROD)
    check = line(report, NOTIFICATIONS)
    assert check.status is Status.WARNING
    assert "environments.prod.notification_email" in check.remedy
    assert report.exit_code() == EXIT_PASSED


# ---------------------------------------------------------------------------------------------
# The command


class StubbedQuotasSession(boto3.Session):
    """A real boto3 session (moto answers it) whose service-quotas client botocore's Stubber answers."""

    quotas: ServiceQuotas

    def client(self, service_name: str, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if service_name == "service-quotas":
            return self.quotas.client
        return super().client(service_name, *args, **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("endpoint_quota", "code"), [(4, EXIT_PASSED), (1, EXIT_FAILED)])
def test_the_command_exits_0_when_ready_and_1_when_a_check_fails(
        session: boto3.Session, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        endpoint_quota: int, code: int) -> None:
    bootstrap(session)
    StubbedQuotasSession.quotas = ServiceQuotas().applied(quotas_for(DEV, 1, endpoint_quota))
    StubbedQuotasSession.quotas.stubber.activate()
    monkeypatch.setattr(boto3, "Session", StubbedQuotasSession)
    assert main(["preflight", "--env", "dev", "--cdk-json", str(CDK_JSON), "--json"]) == code
    printed = json.loads(capsys.readouterr().out)
    assert printed["exit_code"] == code and printed["account"] == MOTO_ACCOUNT
    assert {c["check"]: c["status"] for c in printed["checks"]}[ENDPOINT_QUOTA] == (
        "passed" if code == EXIT_PASSED else "failed")


def test_bad_settings_exit_2_naming_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["preflight", "--env", "staging", "--cdk-json", str(CDK_JSON)]) == EXIT_BAD_INPUT
    assert "'staging'; allowed: dev, prod" in capsys.readouterr().err


def test_help_explains_every_check_and_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["preflight", "--help"])
    text = capsys.readouterr().out
    for phrase in ("for training job usage", "for endpoint usage", "2 x max_capacity", "/cdk-bootstrap/",
                   "subscription filters", "Exit status", "could not tell", "Example"):
        assert phrase in text
