"""Bulk embedding with SageMaker Batch Transform in the templates (issue 27): the model role may run
the transform jobs, the operators hear of every job's end, and the deploy output names the policy.

The caller's policy is checked against the CLI's recorded calls in tests/stacks/test_iam_calls.py.
"""

from __future__ import annotations

import json
from typing import Any

from o2v_core import bulk_transform
from o2v_core.events import transform_job_finished_pattern
from o2v_core.resource_names import OUTPUT_BULK_EMBEDDING_POLICY, TRANSFORM_JOB_LOG_GROUP

from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list


def text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def model_role_statements(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    roles = synthesized.resources("serving", "AWS::IAM::Role")
    (role,) = [role for logical_id, role in roles.items() if logical_id.startswith("ModelExecutionRole")]
    return {statement["Sid"]: statement for policy in role["Properties"]["Policies"]
            for statement in policy["PolicyDocument"]["Statement"]}


def test_the_model_role_reads_only_the_input_prefix_and_writes_only_the_output_prefix(
        synthesized: Synthesized) -> None:
    """A transform job runs as its model's ExecutionRoleArn (CreateModel's documentation)."""
    statements = model_role_statements(synthesized)
    assert as_list(statements["ReadTransformInput"]["Action"]) == ["s3:GetObject"]
    assert text(statements["ReadTransformInput"]["Resource"]).endswith(f'/{bulk_transform.BULK_INPUT_PREFIX}*"]]}}')
    assert as_list(statements["WriteTransformOutput"]["Action"]) == ["s3:PutObject"]
    assert text(statements["WriteTransformOutput"]["Resource"]).endswith(
        f'/{bulk_transform.BULK_OUTPUT_PREFIX}*"]]}}')
    assert statements["ListTransformInput"]["Condition"] == {
        "StringLike": {"s3:prefix": [f"{bulk_transform.BULK_INPUT_PREFIX}*"]}}
    prefix = bulk_transform.transform_job_prefix(synthesized.settings.deployment)
    assert f"{TRANSFORM_JOB_LOG_GROUP}:log-stream:{prefix}*" in text(statements["WriteTransformLogs"]["Resource"])
    assert "UseDataKey" in statements  # the job's output is encrypted with the data key (KmsKeyId)


def test_the_end_of_every_transform_job_reaches_the_operators_topic_from_this_rule_only(
        synthesized: Synthesized) -> None:
    rules = synthesized.resources("training", "AWS::Events::Rule")
    (rule_id, rule) = next((logical_id, rule) for logical_id, rule in rules.items()
                           if "AnnounceTransformJobEnd" in logical_id)
    deployment = synthesized.settings.deployment
    assert rule["Properties"]["EventPattern"] == transform_job_finished_pattern(deployment)
    assert "EventBusName" not in rule["Properties"]  # SageMaker's events arrive on the default bus
    (target,) = rule["Properties"]["Targets"]
    topics = synthesized.resources("training", "AWS::SNS::Topic")
    assert text(target["Arn"]) in {text({"Ref": logical_id}) for logical_id in topics}
    assert "DeadLetterConfig" in target  # failed deliveries are kept, and alarmed on (test_notifications)
    policies = synthesized.resources("training", "AWS::SNS::TopicPolicy")
    allowed = [statement for policy in policies.values()
               for statement in policy["Properties"]["PolicyDocument"]["Statement"]
               if statement.get("Sid") == "AllowRuleAnnounceTransformJobEnd"]
    assert len(allowed) == 1 and text(allowed[0]["Condition"]).count(rule_id) == 1


def test_the_deploy_output_names_the_policy_a_user_attaches(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("serving")["Outputs"]
    output = outputs[OUTPUT_BULK_EMBEDDING_POLICY]
    assert "o2v embed --corpus" in output["Description"]
    assert text(output["Value"]).startswith('{"Ref": "' + bulk_transform.CALLER_POLICY)
