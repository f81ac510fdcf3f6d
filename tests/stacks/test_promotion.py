"""Promotion wiring: served-model record, promoter, its rule and IAM, endpoint alarms; no stack-owned endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError
from o2v_core.events import ANNOUNCEMENT_WITNESS, rules
from o2v_core.functions import FUNCTIONS, PROMOTER, RECONCILER, SERVING_FUNCTIONS
from o2v_core.naming import job_prefix

from stacks.app_builder import WiringError, check_wiring
from stacks.constructs import serving_model_record_handler as record_handler
from stacks.constructs.inline_custom_resource import inline_code
from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list, imported, inline_policy, joined, statements_by_sid


def serving(synthesized: Synthesized, cfn_type: str) -> dict[str, dict[str, Any]]:
    return synthesized.resources("serving", cfn_type)


def only(synthesized: Synthesized, cfn_type: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = serving(synthesized, cfn_type).items()
    return logical_id, resource["Properties"]


def legacy_url_parameter(synthesized: Synthesized) -> str:
    return f"/o2v/{synthesized.settings.deployment}/serving-model-data-url"


def record_parameter(synthesized: Synthesized) -> str:
    return f"/o2v/{synthesized.settings.deployment}/serving-model"


def ssm_arn(name: str) -> dict[str, Any]:
    return joined(
        "arn:", {"Ref": "AWS::Partition"}, ":ssm:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":parameter{name}",
    )  # fmt: skip


def sagemaker_arn(resource: str) -> dict[str, Any]:
    return joined(
        "arn:", {"Ref": "AWS::Partition"}, ":sagemaker:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":{resource}",
    )  # fmt: skip


def alarm_ids(synthesized: Synthesized) -> dict[str, str]:
    return {
        props["Properties"]["MetricName"]: logical_id
        for logical_id, props in serving(synthesized, "AWS::CloudWatch::Alarm").items()
        if props["Properties"].get("Namespace") == "AWS/SageMaker"  # not the rules' math alarms
    }


# -- the served-model record --------------------------------------------------------------------


SERVED_MODEL_TYPES = (
    "AWS::SageMaker::Model",
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
)


def test_no_stack_decides_which_model_is_served(synthesized: Synthesized) -> None:
    """The promoter and the reconciler own the endpoint (docs/promotion.md, "Who owns what"): no
    template has a SageMaker model, endpoint config, endpoint or scalable target, nor a dynamic
    reference, which CloudFormation would not re-read on update (reference 11c)."""
    for role in ("data", "training", "serving"):
        for cfn_type in SERVED_MODEL_TYPES:
            assert not synthesized.resources(role, cfn_type), (role, cfn_type)
        assert "{{resolve:" not in json.dumps(synthesized.template_json(role)), role


def test_no_stack_owns_the_records_value(synthesized: Synthesized) -> None:
    for role in ("data", "training", "serving"):
        assert not synthesized.resources(role, "AWS::SSM::Parameter"), role


@pytest.mark.parametrize(("env_name", "delete"), [("dev", "true"), ("prod", "false")])
def test_data_stack_only_deletes_the_record_with_dev_data(
    env_name: str, delete: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(env_name)
    (record,) = synthesized.resources("data", "Custom::ServingModelRecord").values()
    props = record["Properties"]
    # The physical ID older versions used, so upgrading does not replace the resource.
    assert props["ParameterName"] == legacy_url_parameter(synthesized)
    assert "InitialModelDataUrl" not in props  # create and update set nothing
    assert props["DeleteOnStackDelete"] == delete
    assert props["AlsoDelete"] == [record_parameter(synthesized)]
    function_id = props["ServiceToken"]["Fn::GetAtt"][0]
    function = synthesized.resources("data", "AWS::Lambda::Function")[function_id]["Properties"]
    assert function["Runtime"] == "python3.13" and function["Handler"] == "index.handler"
    assert function["Code"]["ZipFile"] == inline_code(Path(record_handler.__file__))
    assert len(function["Code"]["ZipFile"]) < 4096  # CloudFormation's limit for inline code
    role_id = function["Role"]["Fn::GetAtt"][0]
    statements = statements_by_sid(inline_policy(synthesized.resources("data", "AWS::IAM::Role")[role_id]))
    manage = statements["ManageServingRecord"]
    assert sorted(manage["Action"]) == ["ssm:DeleteParameter", "ssm:GetParameter"]
    assert sorted(map(repr, manage["Resource"])) == sorted(
        map(repr, [ssm_arn(legacy_url_parameter(synthesized)), ssm_arn(record_parameter(synthesized))])
    )


class FakeSsm:
    """Just enough of the SSM client for the handler."""

    def __init__(self, values: dict[str, str], *, race: bool = False) -> None:
        self.values = values
        self.race = race
        self.puts: list[tuple[str, str, bool]] = []
        self.deleted: list[str] = []

    @staticmethod
    def _error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, "op")

    def get_parameter(self, Name: str) -> dict[str, Any]:
        if Name not in self.values:
            raise self._error("ParameterNotFound")
        return {"Parameter": {"Name": Name, "Value": self.values[Name]}}

    def put_parameter(self, Name: str, Value: str, Type: str, Overwrite: bool) -> None:
        self.puts.append((Name, Value, Overwrite))
        if self.race or (Name in self.values and not Overwrite):
            raise self._error("ParameterAlreadyExists")
        self.values[Name] = Value

    def delete_parameter(self, Name: str) -> None:
        if Name not in self.values:
            raise self._error("ParameterNotFound")
        self.deleted.append(Name)
        del self.values[Name]


URL = "/o2v/t/serving-model-data-url"


def event(request_type: str, initial: str = "", delete: str = "false") -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResourceProperties": {
            "ParameterName": URL,
            "InitialModelDataUrl": initial,
            "DeleteOnStackDelete": delete,
            "AlsoDelete": ["/o2v/t/serving-model"],
        },
    }


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_record_is_created_from_config_when_absent(request_type: str) -> None:
    ssm = FakeSsm({})
    assert record_handler.on_event(event(request_type, "s3://b/first.tar.gz"), ssm) == "created"
    assert ssm.values == {URL: "s3://b/first.tar.gz"}
    assert ssm.puts == [(URL, "s3://b/first.tar.gz", False)]  # never with Overwrite


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_a_promoted_model_is_never_overwritten(request_type: str) -> None:
    ssm = FakeSsm({URL: "s3://b/promoted.tar.gz"})
    assert record_handler.on_event(event(request_type, "s3://b/first.tar.gz"), ssm) == "kept"
    assert ssm.values == {URL: "s3://b/promoted.tar.gz"}
    assert ssm.puts == []


def test_a_promotion_racing_the_bootstrap_wins() -> None:
    ssm = FakeSsm({}, race=True)
    assert record_handler.on_event(event("Create", "s3://b/first.tar.gz"), ssm) == "kept"


def test_without_config_nothing_is_created() -> None:
    ssm = FakeSsm({})
    assert record_handler.on_event(event("Create"), ssm) == "missing"
    assert ssm.puts == []


def test_delete_keeps_the_record_unless_the_data_goes_too() -> None:
    ssm = FakeSsm({URL: "s3://b/m.tar.gz", "/o2v/t/serving-model": "{}"})
    assert record_handler.on_event(event("Delete"), ssm) == "retained"
    assert ssm.deleted == []
    assert record_handler.on_event(event("Delete", delete="true"), ssm) == "deleted"
    assert sorted(ssm.deleted) == ["/o2v/t/serving-model", URL]
    assert record_handler.on_event(event("Delete", delete="true"), ssm) == "deleted"  # already gone: fine


# -- the endpoint alarms (keyed by the endpoint name) --------------------------------------------------


def test_endpoint_alarms_watch_5xx_and_latency_and_notify(synthesized: Synthesized) -> None:
    topic = imported(synthesized.stack_name("training"), "NotificationTopicArn")
    endpoint = f"{synthesized.settings.deployment}-embeddings"
    dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]
    alarms = serving(synthesized, "AWS::CloudWatch::Alarm")
    errors = alarms[alarm_ids(synthesized)["Invocation5XXErrors"]]["Properties"]
    latency = alarms[alarm_ids(synthesized)["ModelLatency"]]["Properties"]
    for alarm in (errors, latency):
        assert alarm["Dimensions"] == dimensions
        assert alarm["AlarmActions"] == [topic]
    assert errors["Statistic"] == "Sum" and errors["Threshold"] == 1
    assert latency["Threshold"] == synthesized.settings.serving.max_model_latency_ms * 1000  # microseconds


# -- the promoter -------------------------------------------------------------------------------------


def serving_function(synthesized: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    ((logical_id, resource),) = [
        (lid, r) for lid, r in serving(synthesized, "AWS::Lambda::Function").items()
        if r["Properties"]["Handler"] == handler
    ]
    return logical_id, resource["Properties"]


def promoter(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    return serving_function(synthesized, PROMOTER.handler)


def test_promoter_is_the_promoter_spec_with_the_promotion_env(synthesized: Synthesized) -> None:
    _, function = promoter(synthesized)
    settings = synthesized.settings
    env = function["Environment"]["Variables"]
    alarms = alarm_ids(synthesized)
    assert function["Handler"] == PROMOTER.handler
    assert function["Timeout"] == PROMOTER.timeout_seconds
    # Exactly its own settings (o2v_core.function_settings); the reconciler's add the detector and policy.
    assert set(env) == PROMOTER.settings.variable_names() | {"POWERTOOLS_SERVICE_NAME"}
    reconciler_env = serving_function(synthesized, RECONCILER.handler)[1]["Environment"]["Variables"]
    assert set(reconciler_env) == RECONCILER.settings.variable_names() | {"POWERTOOLS_SERVICE_NAME"}
    assert reconciler_env["O2V_DETECTOR_CONFIG"] == settings.detector.to_json()
    assert env["O2V_ENDPOINT_NAME"] == f"{settings.deployment}-embeddings"
    assert env["O2V_SERVING_MODEL_PARAMETER"] == record_parameter(synthesized)
    assert env["O2V_ENDPOINT_INSTANCE_TYPE"] == settings.serving.instance_type
    assert int(env["O2V_ENDPOINT_MIN_CAPACITY"]) == settings.serving.min_capacity
    assert int(env["O2V_ENDPOINT_MAX_CAPACITY"]) == settings.serving.max_capacity
    assert int(env["O2V_ENDPOINT_TARGET_INVOCATIONS"]) == settings.serving.target_invocations_per_instance
    assert float(env["O2V_PROMOTION_MARGIN"]) == settings.promotion_margin
    assert env["O2V_ROLLBACK_ALARM_NAMES"] == joined(
        {"Ref": alarms["Invocation5XXErrors"]}, ",", {"Ref": alarms["ModelLatency"]}
    )
    assert env["O2V_EVENT_BUS_NAME"] == imported(synthesized.stack_name("training"), "EventBusName")
    assert env["O2V_MODEL_ROLE_ARN"]["Fn::GetAtt"][0].startswith("ModelExecutionRole")


def test_promoter_permissions_are_scoped_to_this_deployment(synthesized: Synthesized) -> None:
    _, function = promoter(synthesized)
    role = serving(synthesized, "AWS::IAM::Role")[function["Role"]["Fn::GetAtt"][0]]
    grants = statements_by_sid(inline_policy(role))
    prefix = job_prefix(synthesized.settings.deployment)
    endpoint = sagemaker_arn(f"endpoint/{synthesized.settings.deployment}-embeddings")
    models = sagemaker_arn(f"model/{prefix}*")
    configs = sagemaker_arn(f"endpoint-config/{prefix}*")
    key = imported(synthesized.stack_name("data"), "DataKeyArn")
    rollback_alarm_arns = [
        joined("arn:", {"Ref": "AWS::Partition"}, ":cloudwatch:", {"Ref": "AWS::Region"}, ":",
               {"Ref": "AWS::AccountId"}, ":alarm:", {"Ref": alarm_id})
        for alarm_id in (alarm_ids(synthesized)["Invocation5XXErrors"], alarm_ids(synthesized)["ModelLatency"])
    ]
    expected: dict[str, tuple[list[str], list[Any]]] = {
        "CreateModels": (["sagemaker:CreateModel"], [models]),
        "CreateEndpointConfigs": (["sagemaker:CreateEndpointConfig"], [configs]),
        # The live config: always one the promoter created (no stack creates one).
        "ReadLiveEndpointConfig": (["sagemaker:DescribeEndpointConfig"], [configs]),
        "GrantDataKeyToSageMaker": (["kms:CreateGrant"], [key]),
        "DescribeDataKey": (["kms:DescribeKey"], [key]),
        # Authorized on the endpoint and the endpoint config (Service Authorization Reference).
        "DeployToTheEndpoint": (["sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint"], [endpoint, configs]),
        "ReadTheEndpoint": (["sagemaker:DescribeEndpoint"], [endpoint]),
        # Blue/green auto-rollback reads the rollback alarms (deployment-guardrails-configuration.html).
        "ReadRollbackAlarms": (["cloudwatch:DescribeAlarms"], rollback_alarm_arns),
        "ReadTrainingJobs": (
            ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
            [sagemaker_arn(f"training-job/{prefix}*")],
        ),
        # o2v:promotion=decided/deferred on the job, once the decision's event is put.
        "TagTrainingJobDecision": (["sagemaker:AddTags"], [sagemaker_arn(f"training-job/{prefix}*")]),
        "ReadWriteServingRecord": (
            ["ssm:GetParameter", "ssm:PutParameter"],
            [ssm_arn(record_parameter(synthesized))],
        ),
        # Before an update that changes the instance type (reference 11d); scalable targets have
        # generated IDs, so the conditions, not the ARN, keep it to SageMaker variants.
        "DescribeScaling": (["application-autoscaling:DescribeScalableTargets"], ["*"]),
        "ScaleTheEndpoint": (
            ["application-autoscaling:DeregisterScalableTarget"],
            [joined("arn:", {"Ref": "AWS::Partition"}, ":application-autoscaling:", {"Ref": "AWS::Region"}, ":",
                    {"Ref": "AWS::AccountId"}, ":scalable-target/*")],
        ),
        "PutProjectEvents": (["events:PutEvents"], [imported(synthesized.stack_name("training"), "EventBusArn")]),
    }
    for sid, (actions, resources) in expected.items():
        assert sorted(as_list(grants[sid]["Action"])) == actions, sid
        assert sorted(map(repr, as_list(grants[sid]["Resource"]))) == sorted(map(repr, resources)), sid
    assert sorted(map(str, as_list(grants["TagWhatItCreates"]["Resource"]))) == sorted(
        map(str, [models, configs, endpoint])
    )
    assert grants["GrantDataKeyToSageMaker"]["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": True}}
    pass_role = grants["PassModelRole"]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("ModelExecutionRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    assert grants["ScaleTheEndpoint"]["Condition"] == {"StringEquals": {
        "application-autoscaling:service-namespace": "sagemaker",
        "application-autoscaling:scalable-dimension": "sagemaker:variant:DesiredInstanceCount",
    }}
    granted = {action for statement in grants.values() for action in as_list(statement["Action"])}
    assert "sagemaker:CreateTrainingJob" not in granted and not any("*" in action for action in granted)
    assert role["Properties"]["Path"] == f"/o2v/{synthesized.settings.deployment}/"  # may put events


@pytest.mark.parametrize("env_name", ["dev", "prod"])
def test_promoters_first_config_encrypts_with_the_data_key(env_name: str, request: pytest.FixtureRequest) -> None:
    """With no endpoint to copy from, the promoter builds KmsKeyId and DataCaptureConfig from its
    environment: the data key for EBS volumes, none for local NVMe storage (SageMaker rejects a
    storage-volume key there), and data capture to the artifact bucket with the data key."""
    synthesized: Synthesized = request.getfixturevalue(env_name)
    _, function = promoter(synthesized)
    env = function["Environment"]["Variables"]
    data = synthesized.stack_name("data")
    key = imported(data, "DataKeyArn")
    local_storage = synthesized.settings.serving.instance_has_local_storage
    assert local_storage == (env_name == "prod")  # dev serves on ml.m5 (EBS), prod on ml.g5 (local NVMe)
    assert env["O2V_ENDPOINT_KMS_KEY_ARN"] == ("" if local_storage else key)
    percentage = int(env["O2V_DATA_CAPTURE_SAMPLING_PERCENTAGE"])
    assert percentage == synthesized.settings.serving.data_capture_sampling_percentage
    assert env["O2V_DATA_CAPTURE_S3_URI"] == joined("s3://", imported(data, "ArtifactBucketName"), "/data-capture/")
    assert env["O2V_DATA_CAPTURE_KMS_KEY_ARN"] == key


def test_promote_on_success_rule_targets_the_promoter(synthesized: Synthesized) -> None:
    (spec,) = [s for s in rules(synthesized.settings.deployment) if s.target == PROMOTER.function_id]
    function_id, _ = promoter(synthesized)
    (rule,) = [r["Properties"] for r in serving(synthesized, "AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern") == spec.pattern]
    assert rule["EventBusName"] == imported(synthesized.stack_name("training"), "EventBusName")
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert "DeadLetterConfig" in target and target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    configs = serving(synthesized, "AWS::Lambda::EventInvokeConfig").values()
    (invoke_config,) = [c for c in configs if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert "OnFailure" in invoke_config["Properties"]["DestinationConfig"]


def test_the_announcement_witness_rule_fills_the_queue_only_the_reconciler_reads(synthesized: Synthesized) -> None:
    """control_plane.aws.announcements: a copy of each announcement put, for the reconciler."""
    (spec,) = [s for s in rules(synthesized.settings.deployment) if s.target == ANNOUNCEMENT_WITNESS]
    (rule,) = [r["Properties"] for r in serving(synthesized, "AWS::Events::Rule").values()
               if r["Properties"].get("EventPattern") == spec.pattern]
    assert rule["EventBusName"] == imported(synthesized.stack_name("training"), "EventBusName")
    (target,) = rule["Targets"]
    queue_id = target["Arn"]["Fn::GetAtt"][0]
    queue = serving(synthesized, "AWS::SQS::Queue")[queue_id]["Properties"]
    assert "KmsMasterKeyId" in queue and "DeadLetterConfig" in target
    (policy,) = [p["Properties"] for p in serving(synthesized, "AWS::SQS::QueuePolicy").values()
                 if {"Ref": queue_id} in p["Properties"]["Queues"]]
    (send,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Action"] == "sqs:SendMessage"]
    assert send["Principal"] == {"Service": "events.amazonaws.com"} and "aws:SourceArn" in json.dumps(send)
    _, function = serving_function(synthesized, RECONCILER.handler)
    assert function["Environment"]["Variables"]["O2V_ANNOUNCEMENT_WITNESS_QUEUE_URL"] == {"Ref": queue_id}
    readers = [
        role for role in serving(synthesized, "AWS::IAM::Role").values()
        if "sqs:ReceiveMessage" in json.dumps(role["Properties"].get("Policies", []))
    ]
    assert len(readers) == 1  # the reconciler's


# -- wiring across stacks ----------------------------------------------------------------------------


def test_every_rule_spec_is_wired_exactly_once_across_the_stacks(synthesized: Synthesized) -> None:
    patterns = [
        rule["Properties"]["EventPattern"]
        for role in ("training", "serving")
        for rule in synthesized.resources(role, "AWS::Events::Rule").values()
        if "EventPattern" in rule["Properties"]
    ]
    expected = [spec.pattern for spec in rules(synthesized.settings.deployment)]

    def canonical(pattern: dict[str, Any]) -> str:
        return json.dumps(pattern, sort_keys=True)

    assert sorted(map(canonical, patterns)) == sorted(map(canonical, expected))


def test_check_wiring_refuses_a_missing_rule_or_function() -> None:
    all_rules = {spec.rule_id: None for spec in rules("o2v-t")}
    training_functions = {spec.function_id: None for spec in FUNCTIONS if spec not in SERVING_FUNCTIONS}
    promotion = SimpleNamespace(
        rules={"PromoteOnSuccess": None}, functions={spec.function_id: None for spec in SERVING_FUNCTIONS}
    )

    def stacks(training_rules: dict[str, None], functions: dict[str, None]) -> tuple[Any, Any]:
        training = SimpleNamespace(control_plane=SimpleNamespace(rules=training_rules, functions=functions))
        return cast(Any, training), cast(Any, SimpleNamespace(promotion=promotion))

    complete = {k: v for k, v in all_rules.items() if k != "PromoteOnSuccess"}
    check_wiring("o2v-t", *stacks(complete, training_functions))
    with pytest.raises(WiringError, match="rules wired"):
        check_wiring(
            "o2v-t", *stacks({k: v for k, v in complete.items() if k != "NotifyOperators"}, training_functions)
        )
    with pytest.raises(WiringError, match="functions deployed"):
        check_wiring("o2v-t", *stacks(complete, {"divergence_monitor": None}))


def test_outputs_name_the_endpoint_promoter_and_record(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("serving")["Outputs"]
    function_id, _ = promoter(synthesized)
    assert outputs["PromoterFunctionName"]["Value"] == {"Ref": function_id}
    assert "ServingModelDataUrlParameterName" not in outputs  # nothing reads a URL parameter any more
    assert outputs["EndpointName"]["Value"] == f"{synthesized.settings.deployment}-embeddings"
    assert outputs["ServingModelParameterName"]["Value"] == record_parameter(synthesized)
    training = synthesized.template_json("training")["Outputs"]
    for name in ("TrainingRoleArn", "EventBusName", "EventBusArn", "NotificationTopicArn"):
        assert training[name]["Export"] == {"Name": f"{synthesized.stack_name('training')}:{name}"}


# -- the reconciler ----------------------------------------------------------------------------------


def test_reconciler_runs_on_its_schedule_with_the_promotion_env_a_dlq_and_an_alarm(synthesized: Synthesized) -> None:
    function_id, function = serving_function(synthesized, RECONCILER.handler)
    _, promoter_function = promoter(synthesized)
    assert function["Timeout"] == RECONCILER.timeout_seconds
    def settings(env: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in env.items() if key.startswith("O2V_")}

    # The promoter's settings, plus the detector and the retrain policy (it redoes their steps).
    reconciler_only = RECONCILER.settings.variable_names() - PROMOTER.settings.variable_names()
    assert reconciler_only == {"O2V_DETECTOR_CONFIG", "O2V_RETRAIN_POLICY", "O2V_ANNOUNCEMENT_WITNESS_QUEUE_URL"}
    shared = {key: value for key, value in settings(function["Environment"]["Variables"]).items()
              if key not in reconciler_only}
    assert shared == settings(promoter_function["Environment"]["Variables"])
    (schedule,) = [r["Properties"] for r in serving(synthesized, "AWS::Events::Rule").values()
                   if "ScheduleExpression" in r["Properties"]]
    assert schedule["ScheduleExpression"] == RECONCILER.schedule
    (target,) = schedule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} and "DeadLetterConfig" in target
    configs = serving(synthesized, "AWS::Lambda::EventInvokeConfig").values()
    (invoke_config,) = [c for c in configs if c["Properties"]["FunctionName"] == {"Ref": function_id}]
    assert "OnFailure" in invoke_config["Properties"]["DestinationConfig"]
    watched = [
        a["Properties"] for a in serving(synthesized, "AWS::CloudWatch::Alarm").values()
        if json.dumps(a["Properties"]).count(function_id)
    ]
    assert watched, "no alarm watches the reconciler's errors"


def test_reconciler_may_do_what_its_repairs_call_and_read_what_the_endpoint_serves(synthesized: Synthesized) -> None:
    _, function = serving_function(synthesized, RECONCILER.handler)
    role = serving(synthesized, "AWS::IAM::Role")[function["Role"]["Fn::GetAtt"][0]]
    grants = statements_by_sid(inline_policy(role))
    granted = {action for statement in grants.values() for action in as_list(statement["Action"])}
    # The evaluator's, the launcher's and the promoter's steps, and DescribeModel for the record.
    needed = {
        "sagemaker:ListTrainingJobs", "sagemaker:DescribeTrainingJob", "sagemaker:ListTags", "sagemaker:AddTags",
        "sagemaker:CreateTrainingJob", "iam:PassRole", "logs:DescribeLogStreams", "logs:FilterLogEvents",
        "events:PutEvents", "sagemaker:DescribeEndpoint", "sagemaker:DescribeEndpointConfig",
        "sagemaker:DescribeModel", "sagemaker:CreateModel", "sagemaker:CreateEndpointConfig",
        "sagemaker:UpdateEndpoint", "sagemaker:CreateEndpoint", "ssm:GetParameter", "ssm:PutParameter",
        # Its autoscaling step (control_plane.aws.autoscaling), and the service-linked role Application
        # Auto Scaling creates on the first registration in an account (application-auto-scaling-service-linked-roles).
        "application-autoscaling:DescribeScalableTargets", "application-autoscaling:DescribeScalingPolicies",
        "application-autoscaling:RegisterScalableTarget", "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:DeregisterScalableTarget", "iam:CreateServiceLinkedRole",
    }
    assert needed <= granted, needed - granted
    assert "sagemaker:StopTrainingJob" not in granted and "sagemaker:DeleteTags" not in granted
    assert not any("*" in action for action in granted)
