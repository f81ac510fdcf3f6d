"""Training stack's retraining control plane: bus, rules, functions, retries, IAM scope, alarms."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from o2v_core import business_metrics
from o2v_core.early_stopping import STOP_CHOICE_LOG_MESSAGE
from o2v_core.events import ANNOUNCEMENT_WITNESS, rules
from o2v_core.function_settings import LauncherSettings
from o2v_core.functions import (
    DIVERGENCE_MONITOR,
    FUNCTIONS,
    METRIC_LINE_JUDGE,
    PROMOTER,
    RETRAIN_LAUNCHER,
    SERVING_FUNCTIONS,
)
from o2v_core.metric_lines import FILTER_PATTERN
from o2v_core.naming import job_prefix
from o2v_core.resource_names import TRAINING_JOB_LOG_GROUP

from stacks.constructs import training_log_group_handler as log_group_handler
from stacks.constructs.inline_custom_resource import inline_code
from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list, imported, inline_policy, joined, statements_by_sid

TRAINING_SPECS = [spec for spec in FUNCTIONS if spec not in SERVING_FUNCTIONS]


def resources(synthesized: Synthesized, cfn_type: str) -> dict[str, dict[str, Any]]:
    return synthesized.resources("training", cfn_type)


def only_id(synthesized: Synthesized, cfn_type: str) -> str:
    (logical_id,) = resources(synthesized, cfn_type)
    return logical_id


def function_ids(synthesized: Synthesized) -> dict[str, str]:
    """function_id -> logical ID, found by the handler string of each spec."""
    by_handler = {r["Properties"]["Handler"]: lid for lid, r in resources(synthesized, "AWS::Lambda::Function").items()}
    return {spec.function_id: by_handler[spec.handler] for spec in TRAINING_SPECS}


def queue_id(synthesized: Synthesized, construct: str) -> str:
    (logical_id,) = [lid for lid in resources(synthesized, "AWS::SQS::Queue") if construct in lid]
    return logical_id


def function_role(synthesized: Synthesized, function_id: str) -> dict[str, Any]:
    function = resources(synthesized, "AWS::Lambda::Function")[function_ids(synthesized)[function_id]]
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    role: dict[str, Any] = resources(synthesized, "AWS::IAM::Role")[role_id]
    return role


# -- rules ----------------------------------------------------------------------------------------


def test_one_rule_per_spec_with_the_exact_pattern_bus_and_target(synthesized: Synthesized) -> None:
    rule_resources = resources(synthesized, "AWS::Events::Rule")
    bus_id = only_id(synthesized, "AWS::Events::EventBus")
    functions = function_ids(synthesized)
    topic_id = only_id(synthesized, "AWS::SNS::Topic")
    pattern_rules = {lid: r for lid, r in rule_resources.items() if "EventPattern" in r["Properties"]}
    # The promoter and the announcement witness are the serving stack's (tests/stacks/test_promotion.py).
    serving = (PROMOTER.function_id, ANNOUNCEMENT_WITNESS)
    specs = [s for s in rules(synthesized.settings.deployment) if s.target not in serving]
    assert len(pattern_rules) == len(specs)
    for spec in specs:
        (rule,) = [r["Properties"] for lid, r in pattern_rules.items() if spec.rule_id in lid]
        assert rule["EventPattern"] == spec.pattern, spec.rule_id
        if spec.bus == "project":
            assert rule["EventBusName"] == {"Ref": bus_id}, spec.rule_id
        else:
            assert "EventBusName" not in rule, spec.rule_id  # the account's default bus
        (target,) = rule["Targets"]
        expected = (
            {"Ref": topic_id} if spec.target == "notifications" else {"Fn::GetAtt": [functions[spec.target], "Arn"]}
        )
        assert target["Arn"] == expected, spec.rule_id


def test_every_rule_target_retries_then_dead_letters(synthesized: Synthesized) -> None:
    dlq = queue_id(synthesized, "RuleTargetDlq")
    for logical_id, rule in resources(synthesized, "AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq, "Arn"]}}, logical_id
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0, logical_id


def test_divergence_monitor_runs_on_its_spec_schedule(synthesized: Synthesized) -> None:
    scheduled = [
        r["Properties"]
        for r in resources(synthesized, "AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    (rule,) = scheduled
    assert rule["ScheduleExpression"] == DIVERGENCE_MONITOR.schedule
    monitor = function_ids(synthesized)[DIVERGENCE_MONITOR.function_id]
    assert rule["Targets"][0]["Arn"] == {"Fn::GetAtt": [monitor, "Arn"]}


def test_metric_line_judge_is_subscribed_to_the_training_log_group(synthesized: Synthesized) -> None:
    subscription = METRIC_LINE_JUDGE.subscription
    assert subscription is not None and subscription.log_group == TRAINING_JOB_LOG_GROUP
    (resource,) = resources(synthesized, "AWS::Logs::SubscriptionFilter").values()
    props = resource["Properties"]
    judge = function_ids(synthesized)[METRIC_LINE_JUDGE.function_id]
    assert props["LogGroupName"] == TRAINING_JOB_LOG_GROUP
    assert props["FilterPattern"] == FILTER_PATTERN == '"#quality_metric"'
    assert props["FilterName"] == f"{synthesized.settings.deployment}-metric-line-judge"
    assert props["DestinationArn"] == {"Fn::GetAtt": [judge, "Arn"]}
    # Only CloudWatch Logs, for this group of this account, may invoke the judge.
    (permission_id, permission), = [
        (lid, r) for lid, r in resources(synthesized, "AWS::Lambda::Permission").items()
        if r["Properties"]["Principal"] == "logs.amazonaws.com"
    ]
    assert permission["Properties"]["FunctionName"] == {"Fn::GetAtt": [judge, "Arn"]}
    assert permission["Properties"]["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission["Properties"]["SourceArn"] == joined(
        "arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":log-group:{TRAINING_JOB_LOG_GROUP}:*",
    )  # fmt: skip
    # The filter waits for the permission and for the group to exist (a fresh account has none).
    (group_id, group), = resources(synthesized, "Custom::ExistingLogGroup").items()
    assert group["Properties"]["LogGroupName"] == TRAINING_JOB_LOG_GROUP
    assert {permission_id, group_id} <= set(resource["DependsOn"])
    assert group.get("DeletionPolicy", "Delete") == "Delete"  # the handler never deletes the group itself


def test_log_group_custom_resource_may_only_create_that_group(synthesized: Synthesized) -> None:
    (group,) = resources(synthesized, "Custom::ExistingLogGroup").values()
    function = resources(synthesized, "AWS::Lambda::Function")[group["Properties"]["ServiceToken"]["Fn::GetAtt"][0]]
    assert function["Properties"]["Code"]["ZipFile"] == inline_code(Path(log_group_handler.__file__))
    assert len(function["Properties"]["Code"]["ZipFile"]) < 4096  # CloudFormation's limit for inline code
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = statements_by_sid(inline_policy(resources(synthesized, "AWS::IAM::Role")[role_id]))
    assert statements["CreateSubscribedLogGroups"]["Action"] == "logs:CreateLogGroup"
    assert statements["CreateSubscribedLogGroups"]["Resource"] == joined(
        "arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":log-group:{TRAINING_JOB_LOG_GROUP}:*",
    )  # fmt: skip


# -- functions ------------------------------------------------------------------------------------


def test_functions_come_from_the_specs(synthesized: Synthesized) -> None:
    functions = resources(synthesized, "AWS::Lambda::Function")
    # the specs' functions, and the custom resource that makes sure the subscribed log group exists
    assert len(functions) == len(TRAINING_SPECS) + 1
    for spec in TRAINING_SPECS:
        props = functions[function_ids(synthesized)[spec.function_id]]["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["Timeout"] == spec.timeout_seconds
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "Layers" not in props  # Powertools is in the asset (tests/stacks/test_lambda_asset.py)


def test_each_function_environment_holds_exactly_its_own_settings(synthesized: Synthesized) -> None:
    """No function gets a variable its handler does not read (o2v_core.function_settings)."""
    functions = resources(synthesized, "AWS::Lambda::Function")
    for spec in (spec for spec in FUNCTIONS if spec not in SERVING_FUNCTIONS):
        env = functions[function_ids(synthesized)[spec.function_id]]["Properties"]["Environment"]["Variables"]
        assert set(env) == spec.settings.variable_names() | {"POWERTOOLS_SERVICE_NAME"}, spec.function_id
    assert "O2V_NOTIFICATION_TOPIC_ARN" not in env  # read by no handler: SNS is a rule target


def test_launcher_environment_carries_the_settings(synthesized: Synthesized) -> None:
    settings = synthesized.settings
    env = resources(synthesized, "AWS::Lambda::Function")[function_ids(synthesized)["retrain_launcher"]]["Properties"][
        "Environment"
    ]["Variables"]
    config = LauncherSettings.from_env({k: v for k, v in env.items() if isinstance(v, str)} | {
        "O2V_EVENT_BUS_NAME": "x",
    })  # fmt: skip
    assert config.deployment == settings.deployment
    assert config.retrain_policy == settings.retrain_policy.to_json()
    assert env["O2V_EVENT_BUS_NAME"] == {"Ref": only_id(synthesized, "AWS::Events::EventBus")}
    judge = resources(synthesized, "AWS::Lambda::Function")[function_ids(synthesized)["metric_line_judge"]]
    judge_env = judge["Properties"]["Environment"]["Variables"]
    assert judge_env["O2V_DETECTOR_CONFIG"] == settings.detector.to_json()
    assert judge_env["O2V_STOP_ON_DIVERGENCE"] == str(settings.stop_on_divergence).lower()
    assert judge_env["O2V_FINISH_DIVERGED_WITHIN_EPOCHS"] == "2"


def test_code_asset_is_the_lambdas_directory_without_caches(synthesized: Synthesized) -> None:
    manifest = json.loads((synthesized.outdir / f"{synthesized.stack_name('training')}.assets.json").read_text())
    sources = [asset["source"] for asset in manifest["files"].values() if asset["source"].get("packaging") == "zip"]
    (source,) = sources
    staged = synthesized.outdir / source["path"]
    assert (staged / "o2v_core" / "events.py").exists()
    assert (staged / "control_plane" / "handlers").is_dir()
    assert not list(Path(staged).rglob("__pycache__"))


def test_async_invocations_retry_then_go_to_the_failure_queue(synthesized: Synthesized) -> None:
    failure_queue = queue_id(synthesized, "AsyncFailureQueue")
    configs = resources(synthesized, "AWS::Lambda::EventInvokeConfig").values()
    targets = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in configs}
    assert set(targets) == set(function_ids(synthesized).values())
    for props in targets.values():
        assert props["MaximumRetryAttempts"] == 2
        assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": [failure_queue, "Arn"]}


# -- queues, topic, bus ----------------------------------------------------------------------------


def _tls_only(policy: dict[str, Any]) -> bool:
    return any(
        s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_queues_and_topic_are_tls_only(synthesized: Synthesized) -> None:
    # Which key encrypts them, and what its policy allows: tests/stacks/test_notifications.py.
    for policy in resources(synthesized, "AWS::SQS::QueuePolicy").values():
        assert _tls_only(policy["Properties"]["PolicyDocument"])
    (topic_policy,) = resources(synthesized, "AWS::SNS::TopicPolicy").values()
    assert _tls_only(topic_policy["Properties"]["PolicyDocument"])


def test_only_this_deployments_roles_may_put_events_on_the_bus(synthesized: Synthesized) -> None:
    deployment = synthesized.settings.deployment
    roles = joined("arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"}, f":role/o2v/{deployment}/*")
    statements = {
        p["Properties"]["Statement"]["Effect"]: p["Properties"]["Statement"]
        for p in resources(synthesized, "AWS::Events::EventBusPolicy").values()
    }
    assert statements["Allow"]["Condition"] == {"ArnLike": {"aws:PrincipalArn": roles}}
    assert statements["Deny"]["Principal"] == {"AWS": "*"}
    assert statements["Deny"]["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": roles}}
    for statement in statements.values():
        assert statement["Action"] == "events:PutEvents"
    for function_id in function_ids(synthesized):
        assert function_role(synthesized, function_id)["Properties"]["Path"] == f"/o2v/{deployment}/"


def test_bus_is_archived_for_replay(synthesized: Synthesized) -> None:
    (archive,) = resources(synthesized, "AWS::Events::Archive").values()
    bus_id = only_id(synthesized, "AWS::Events::EventBus")
    assert archive["Properties"]["SourceArn"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert "KmsKeyIdentifier" not in archive["Properties"]


# -- least privilege -----------------------------------------------------------------------------


def _grants(synthesized: Synthesized, function_id: str) -> dict[str, dict[str, Any]]:
    return statements_by_sid(inline_policy(function_role(synthesized, function_id)))


def _jobs_arn(synthesized: Synthesized) -> dict[str, Any]:
    prefix = job_prefix(synthesized.settings.deployment)
    return joined(
        "arn:", {"Ref": "AWS::Partition"}, ":sagemaker:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
        f":training-job/{prefix}*",
    )  # fmt: skip


def test_training_job_actions_are_scoped_to_the_job_prefix(synthesized: Synthesized) -> None:
    jobs = _jobs_arn(synthesized)
    for function_id in function_ids(synthesized):
        for sid, statement in _grants(synthesized, function_id).items():
            actions = as_list(statement["Action"])
            sagemaker = [a for a in actions if a.startswith("sagemaker:") and a != "sagemaker:ListTrainingJobs"]
            if sagemaker:
                assert as_list(statement["Resource"]) == [jobs], (function_id, sid)
            if "sagemaker:ListTrainingJobs" in actions:
                assert actions == ["sagemaker:ListTrainingJobs"], (function_id, sid)
                assert statement["Resource"] == "*"
            assert not any("*" in action for action in actions), (function_id, sid)


def test_only_the_launcher_creates_jobs_and_passes_only_the_training_role(synthesized: Synthesized) -> None:
    for function_id in function_ids(synthesized):
        grants = _grants(synthesized, function_id)
        creates = "CreateTrainingJobs" in grants
        assert creates is (function_id == RETRAIN_LAUNCHER.function_id)
        assert ("PassTrainingRole" in grants) is creates
    launcher = _grants(synthesized, RETRAIN_LAUNCHER.function_id)
    assert as_list(launcher["CreateTrainingJobs"]["Action"]) == ["sagemaker:CreateTrainingJob"]
    pass_role = launcher["PassTrainingRole"]
    assert pass_role["Action"] == "iam:PassRole"
    assert pass_role["Resource"]["Fn::GetAtt"][1] == "Arn"
    assert pass_role["Resource"]["Fn::GetAtt"][0].startswith("TrainingExecutionRole")
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


def test_monitor_has_exactly_its_permissions(synthesized: Synthesized) -> None:
    grants = _grants(synthesized, DIVERGENCE_MONITOR.function_id)
    logs = {"ReadTrainingLogs": "log-group:/aws/sagemaker/TrainingJobs:*"}
    actions = {sid: sorted(as_list(s["Action"])) for sid, s in grants.items()}
    assert actions == {
        "WriteOwnLogs": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "SendAsyncFailures": ["sqs:SendMessage"],
        "UseDataKey": ["kms:Decrypt", "kms:GenerateDataKey"],
        "UseMessageKey": ["kms:Decrypt", "kms:GenerateDataKey"],
        "WriteTraces": ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
        "ListTrainingJobs": ["sagemaker:ListTrainingJobs"],
        "ReadTrainingJobs": ["sagemaker:DescribeTrainingJob", "sagemaker:ListTags"],
        "TagTrainingJobs": ["sagemaker:AddTags"],
        "StopTrainingJobs": ["sagemaker:StopTrainingJob"],
        "ReadTrainingLogs": ["logs:DescribeLogStreams", "logs:FilterLogEvents"],
        "TriageByJobCurves": ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"],
        "PutProjectEvents": ["events:PutEvents"],
    }
    (table_id,) = synthesized.resources("training", "AWS::DynamoDB::Table")
    assert grants["TriageByJobCurves"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}  # its own table only
    judge = _grants(synthesized, METRIC_LINE_JUDGE.function_id)
    assert sorted(as_list(judge["StoreJobCurves"]["Action"])) == ["dynamodb:UpdateItem"]
    assert judge["StoreJobCurves"]["Resource"] == {"Fn::GetAtt": [table_id, "Arn"]}
    assert "ReadTrainingLogs" not in judge  # the judge reads no log
    for sid, rest in logs.items():
        assert grants[sid]["Resource"] == joined(
            "arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"},
            f":{rest}",
        )  # fmt: skip
    bus_id = only_id(synthesized, "AWS::Events::EventBus")
    assert grants["PutProjectEvents"]["Resource"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert grants["UseDataKey"]["Resource"] == imported(synthesized.stack_name("data"), "DataKeyArn")
    assert grants["UseMessageKey"]["Resource"] == imported(synthesized.stack_name("data"), "MessageKeyArn")


# -- alarms, dashboard, outputs -----------------------------------------------------------------------


def test_alarms_on_every_failure_queue_and_function_notify_the_topic(synthesized: Synthesized) -> None:
    topic = {"Ref": only_id(synthesized, "AWS::SNS::Topic")}
    alarms = [a["Properties"] for a in resources(synthesized, "AWS::CloudWatch::Alarm").values()]
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic]
    queue_alarms = [a for a in alarms if a.get("MetricName") == "ApproximateNumberOfMessagesVisible"]
    error_alarms = [a for a in alarms if a.get("MetricName") == "Errors"]
    # (and one per rule on its failed deliveries: tests/stacks/test_notifications.py)
    assert len(queue_alarms) == len(resources(synthesized, "AWS::SQS::Queue"))
    assert len(error_alarms) == len(TRAINING_SPECS)
    for alarm in [*queue_alarms, *error_alarms]:
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"


def _dashboard_body(synthesized: Synthesized) -> str:
    (dashboard,) = resources(synthesized, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


def test_dashboard_shows_validation_loss_per_attempt_business_metrics_and_dlqs(synthesized: Synthesized) -> None:
    body = _dashboard_body(synthesized)
    deployment = synthesized.settings.deployment
    search = (
        "SEARCH('{/aws/sagemaker/TrainingJobs,TrainingJobName} "
        f"MetricName=\"validation:mean_squared_error\" TrainingJobName={deployment}', 'Average', 60)"
    )
    assert json.dumps(search)[1:-1] in body  # JSON-escaped inside the dashboard body
    assert "{/aws/sagemaker/TrainingJobs,TrainingJobName}" in body
    assert "validation:mean_squared_error" in body
    assert f"TrainingJobName={deployment}" in body
    assert "Invocations" not in body  # invocation counts also count runs that did nothing
    graphed = [name for _, names in business_metrics.DASHBOARD_GROUPS for name in names]
    assert set(graphed) >= {*business_metrics.METRIC_OF_EVENT.values(), business_metrics.ATTEMPTS_LAUNCHED,
                            business_metrics.RECONCILER_REPAIRS}
    for name in graphed:  # each as [namespace, metric, dimension, deployment]
        metric = [business_metrics.NAMESPACE, name, business_metrics.DIMENSION, deployment]
        assert json.dumps(metric, separators=(",", ":"))[1:-1] in body
    # Epochs saved: a Logs Insights table over the monitor's own log group, summing the field the
    # monitor logs with each stop-or-finish choice.
    assert "Epochs saved by stopping diverged jobs" in body and "sum(epochsSaved)" in body
    assert f'filter message = \\"{STOP_CHOICE_LOG_MESSAGE}\\"' in body
    assert body.count("ApproximateNumberOfMessagesVisible") >= len(resources(synthesized, "AWS::SQS::Queue"))


def test_outputs_name_bus_topic_and_functions(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("training")["Outputs"]
    bus_id = only_id(synthesized, "AWS::Events::EventBus")
    assert outputs["EventBusName"]["Value"] == {"Ref": bus_id}
    assert outputs["EventBusArn"]["Value"] == {"Fn::GetAtt": [bus_id, "Arn"]}
    assert outputs["NotificationTopicArn"]["Value"] == {"Ref": only_id(synthesized, "AWS::SNS::Topic")}
    for function_id, logical_id in function_ids(synthesized).items():
        name = "".join(part.capitalize() for part in function_id.split("_")) + "FunctionName"
        assert outputs[name]["Value"] == {"Ref": logical_id}


@pytest.mark.parametrize("email", [None, "ops@example.com"])
def test_email_subscription_is_optional_and_dead_letters(email: str | None) -> None:
    from aws_cdk import App, Stack
    from aws_cdk import aws_kms as kms
    from aws_cdk.assertions import Template

    from stacks.constructs.notification_topic import NotificationTopic

    stack = Stack(App(), "Topic")
    key = kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:eu-west-1:111122223333:key/abc")
    NotificationTopic(stack, "Notifications", deployment="o2v-test", key=key, email=email)
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::SNS::Subscription", 0 if email is None else 1)
    if email is not None:
        subscription = next(iter(template.find_resources("AWS::SNS::Subscription").values()))["Properties"]
        assert subscription["Protocol"] == "email"
        assert subscription["Endpoint"] == email
        assert "deadLetterTargetArn" in subscription["RedrivePolicy"]
