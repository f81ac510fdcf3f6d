"""Security hardening: network isolation, confused-deputy conditions and cost guardrails.

The condition keys asserted here are those the Service Authorization Reference lists for each
action (stacks/guardrails.py cites them); these tests pin that the stacks use them, with the
values from the configured settings and the event table, never retyped.
"""

from __future__ import annotations

import copy
from typing import Any

from o2v_core import s3_layout
from o2v_core.events import SOURCE
from o2v_core.functions import FUNCTIONS
from o2v_core.resource_names import OUTPUT_DATA_KEY, function_log_group_name, log_group_prefix
from o2v_core.settings import read_cdk_context

from stacks.app_builder import CDK_JSON, Deployment, build_app
from stacks.training_stack import NO_SUBSCRIBER_WARNING_ID
from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import arn, imported, inline_policy, statements_by_sid


def _role_statements(synthesized: Synthesized, stack: str, sid: str) -> dict[str, dict[str, Any]]:
    """{role logical id: its statement ``sid``} for every role of ``stack`` that has one."""
    found = {}
    for logical_id, role in synthesized.resources(stack, "AWS::IAM::Role").items():
        if "Policies" not in role["Properties"]:
            continue
        statements = statements_by_sid(inline_policy(role))
        if sid in statements:
            found[logical_id] = statements[sid]
    return found


def _every(synthesized: Synthesized, sid: str) -> dict[str, dict[str, Any]]:
    """{role logical id: its statement ``sid``} over both stacks (the promoter and the reconciler
    share the promoter's grants; the launcher and the reconciler the launcher's)."""
    found = {**_role_statements(synthesized, "training", sid), **_role_statements(synthesized, "serving", sid)}
    assert found, f"no role has a {sid} statement"
    return found


# Every model is the promoter's (no stack has one; tests/stacks/test_promotion.py): it creates
# them network-isolated (tests/promotion/test_promoter.py), and may create no other kind (below).
def test_promoter_may_create_only_network_isolated_models(synthesized: Synthesized) -> None:
    for role, statement in _every(synthesized, "CreateModels").items():
        assert statement["Condition"] == {"Bool": {"sagemaker:NetworkIsolation": "true"}}, role


def test_launcher_may_create_only_isolated_jobs_within_the_configured_limits(synthesized: Synthesized) -> None:
    training = synthesized.settings.training
    statements = _every(synthesized, "CreateTrainingJobs")
    assert len(statements) == 2  # the launcher's and the reconciler's
    for role, statement in statements.items():
        assert statement["Condition"] == {
            "Bool": {"sagemaker:NetworkIsolation": "true"},
            "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [training.instance_type]},
            # ForAllValues matches a request without the key; the Null test refuses that.
            "Null": {"sagemaker:InstanceTypes": "false"},
            "NumericLessThanEquals": {"sagemaker:MaxRuntimeInSeconds": training.max_runtime_seconds},
            "ArnEquals": {"sagemaker:OutputKmsKey": imported(synthesized.stack_name("data"), OUTPUT_DATA_KEY)},
        }, role


def test_promoter_may_create_endpoint_configs_on_the_configured_instance_type_only(synthesized: Synthesized) -> None:
    for role, statement in _every(synthesized, "CreateEndpointConfigs").items():
        assert statement["Condition"] == {
            "ForAllValues:StringEquals": {"sagemaker:InstanceTypes": [synthesized.settings.serving.instance_type]},
            "Null": {"sagemaker:InstanceTypes": "false"},
        }, role


def test_sagemaker_roles_trust_sagemaker_only_for_this_account(synthesized: Synthesized) -> None:
    trusted = 0
    for stack in ("training", "serving"):
        for logical_id, role in synthesized.resources(stack, "AWS::IAM::Role").items():
            (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
            if statement["Principal"] != {"Service": "sagemaker.amazonaws.com"}:
                continue
            trusted += 1
            assert statement["Condition"] == {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": arn("sagemaker", "*")},
            }, logical_id
    assert trusted == 2  # the training role and the model role


def test_topic_accepts_events_only_from_its_own_rules_of_this_account(synthesized: Synthesized) -> None:
    (policy,) = synthesized.resources("training", "AWS::SNS::TopicPolicy").values()
    rules = {
        logical_id
        for logical_id, rule in synthesized.resources("training", "AWS::Events::Rule").items()
        if any("Topic" in str(target["Arn"]) for target in rule["Properties"]["Targets"])
    }
    assert rules
    allowed_rules = set()
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if statement["Effect"] != "Allow":
            continue
        condition = statement.get("Condition", {})
        assert condition.get("StringEquals", {}).get("aws:SourceAccount") == {"Ref": "AWS::AccountId"}, statement
        if statement["Principal"] == {"Service": "events.amazonaws.com"}:
            allowed_rules.add(condition["ArnEquals"]["aws:SourceArn"]["Fn::GetAtt"][0])
    assert allowed_rules == rules


def test_each_function_may_put_only_the_events_it_emits(synthesized: Synthesized) -> None:
    by_function = {}
    for stack in ("training", "serving"):
        for logical_id, statement in _role_statements(synthesized, stack, "PutProjectEvents").items():
            by_function[logical_id] = statement["Condition"]
    for spec in FUNCTIONS:
        key = next(logical_id for logical_id in by_function if spec.function_id.replace("_", "") in logical_id)
        assert by_function[key] == {
            "StringEquals": {"events:source": [SOURCE], "events:detail-type": list(spec.emits)}
        }, spec.function_id
    assert len(by_function) == len(FUNCTIONS)


def _lambda_log_groups(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Every log group of every stack, with the stack it is in."""
    found = {}
    for stack in ("data", "training", "serving"):
        for logical_id, group in synthesized.resources(stack, "AWS::Logs::LogGroup").items():
            found[f"{stack}/{logical_id}"] = group["Properties"]
    return found


def test_every_log_group_is_encrypted_with_the_data_key_below_the_deployment_prefix(
    synthesized: Synthesized,
) -> None:
    groups = _lambda_log_groups(synthesized)
    # Four control-plane functions (one per spec) and the served-model record's handler, at least.
    assert len(groups) >= len(FUNCTIONS) + 1
    prefix = log_group_prefix(synthesized.settings.deployment)
    for where, properties in groups.items():
        assert properties["LogGroupName"].startswith(prefix), where
        key = properties["KmsKeyId"]
        if where.startswith("data/"):
            assert key == {"Fn::GetAtt": ["DataKey", "Arn"]}, where
        else:
            assert key == imported(synthesized.stack_name("data"), OUTPUT_DATA_KEY), where
    for spec in FUNCTIONS:
        name = function_log_group_name(synthesized.settings.deployment, spec.function_id)
        assert name in {properties["LogGroupName"] for properties in groups.values()}, spec.function_id


def test_key_lets_cloudwatch_logs_encrypt_only_this_deployments_groups(synthesized: Synthesized) -> None:
    key = synthesized.resources("data", "AWS::KMS::Key")["DataKey"]
    (statement,) = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "AllowLogGroupsOfThisDeployment"
    ]
    assert statement["Principal"] == {
        "Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"}, ".amazonaws.com"]]}
    }
    prefix = log_group_prefix(synthesized.settings.deployment)
    assert statement["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": arn("logs", f"log-group:{prefix}*")}
    }
    assert "kms:Encrypt" in statement["Action"] and "kms:CreateGrant" not in statement["Action"]


def test_captured_inference_data_expires_after_the_configured_days(synthesized: Synthesized) -> None:
    bucket = synthesized.resources("data", "AWS::S3::Bucket")["ArtifactBucket"]
    rules = {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["ExpireDataCapture"] == {
        "Id": "ExpireDataCapture",
        "Prefix": s3_layout.DATA_CAPTURE_PREFIX,
        "ExpirationInDays": synthesized.settings.serving.data_capture_expiration_days,
        "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
        "Status": "Enabled",
    }
    datasets = synthesized.resources("data", "AWS::S3::Bucket")["DatasetBucket"]
    assert "ExpireDataCapture" not in {rule["Id"] for rule in datasets["Properties"]["LifecycleConfiguration"]["Rules"]}


def _warnings(deployment: Deployment) -> list[str]:
    return [
        str(entry.data)
        for construct in deployment.training.node.find_all()
        for entry in construct.node.metadata
        if entry.type == "aws:cdk:warning"
    ]


def test_retained_environment_without_a_subscriber_warns_at_synth(prod: Synthesized, dev: Synthesized) -> None:
    assert prod.settings.retain_data and prod.settings.notification_email is None
    (warning,) = [w for w in _warnings(prod.deployment) if NO_SUBSCRIBER_WARNING_ID in w]
    assert "environments.prod.notification_email" in warning and "reach nobody" in warning
    assert not dev.settings.retain_data
    assert not [w for w in _warnings(dev.deployment) if NO_SUBSCRIBER_WARNING_ID in w]


def test_a_subscriber_silences_the_warning() -> None:
    environments = copy.deepcopy(read_cdk_context(CDK_JSON)["environments"])
    environments["prod"]["notification_email"] = "ops@example.com"
    deployment = build_app("prod", context={"environments": environments})
    assert not [w for w in _warnings(deployment) if NO_SUBSCRIBER_WARNING_ID in w]
