"""Operators hear about failures: EventBridge can deliver to the topic and queues, and a rule that
cannot deliver raises an alarm (issue 24 item 1).

AWS rules these tests hold the templates to, with their sources:

* SNS Developer Guide, sns-key-management.html (reference 11b): "Adding the aws:SourceAccount and
  aws:SourceArn to a AWS KMS policy is not supported for EventBridge-to-encrypted topics." A key
  statement for events.amazonaws.com with either condition stops every delivery to the topic.
* Whether EventBridge's deliveries to a KMS-encrypted SQS queue (and SNS's to a subscription's
  dead-letter queue) carry aws:SourceAccount to KMS: no AWS source (11b, unconfirmed;
  docs/verification.md). The key of every such queue must allow the service without it.
* CloudWatch alarms to an encrypted topic work with aws:SourceAccount on the key (11b, AWS MDAA).
* EventBridge metrics ("Monitoring Amazon EventBridge",
  https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-monitoring.html): FailedInvocations and
  InvocationsFailedToBeSentToDlq in AWS/Events; "Metrics that specify only the RuleName dimension
  refer to the default event bus. Metrics that specify both the EventBusName and RuleName dimensions
  refer to a custom event bus."
"""

from __future__ import annotations

from typing import Any

import pytest
from o2v_core.events import rules

from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list

SOURCE_CONDITION_KEYS = ("aws:SourceAccount", "aws:SourceArn")
DELIVERY_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey"}
CONSUMERS = ("training", "serving")


def key_resource(synthesized: Synthesized, reference: Any, role: str) -> tuple[str, dict[str, Any]]:
    """The data stack's key behind a KmsMasterKeyId (an import of its export, or a GetAtt there)."""
    data = synthesized.template_json("data")
    if "Fn::ImportValue" in reference:
        exports = {
            output["Export"]["Name"]: output["Value"] for output in data["Outputs"].values() if "Export" in output
        }
        reference = exports[reference["Fn::ImportValue"]]
    assert role == "data" or "Fn::GetAtt" in reference, reference
    logical_id = reference["Fn::GetAtt"][0]
    return logical_id, data["Resources"][logical_id]


def allows_unconditioned(key: dict[str, Any], service: str) -> bool:
    """Whether the key policy lets ``service`` encrypt and decrypt with no source condition."""
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principals = as_list(statement.get("Principal", {}).get("Service", []))
        if statement["Effect"] != "Allow" or service not in principals:
            continue
        if not set(as_list(statement["Action"])) >= DELIVERY_ACTIONS:
            continue
        conditions = statement.get("Condition", {})
        if not any(key_name in block for block in conditions.values() for key_name in SOURCE_CONDITION_KEYS):
            return True
    return False


def test_eventbridge_may_encrypt_for_the_topic_without_source_conditions(synthesized: Synthesized) -> None:
    (topic,) = synthesized.resources("training", "AWS::SNS::Topic").values()
    logical_id, key = key_resource(synthesized, topic["Properties"]["KmsMasterKeyId"], "training")
    assert allows_unconditioned(key, "events.amazonaws.com"), (
        f"{logical_id}: SNS does not support aws:SourceAccount/aws:SourceArn on the key for EventBridge (11b)"
    )


@pytest.mark.parametrize("stack", CONSUMERS)
def test_every_queue_accepts_eventbridge_and_sns_deliveries_whatever_kms_is_told(
    synthesized: Synthesized, stack: str
) -> None:
    queues = synthesized.resources(stack, "AWS::SQS::Queue")
    assert queues
    for queue_id, queue in queues.items():
        logical_id, key = key_resource(synthesized, queue["Properties"]["KmsMasterKeyId"], stack)
        for service in ("events.amazonaws.com", "sns.amazonaws.com"):
            assert allows_unconditioned(key, service), f"{stack}/{queue_id} ({logical_id}): {service}"


def test_alarms_may_still_publish_under_their_source_account(synthesized: Synthesized) -> None:
    (topic,) = synthesized.resources("training", "AWS::SNS::Topic").values()
    _, key = key_resource(synthesized, topic["Properties"]["KmsMasterKeyId"], "training")
    (statement,) = [
        s for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "cloudwatch.amazonaws.com" in as_list(s.get("Principal", {}).get("Service", []))
    ]  # fmt: skip
    assert set(as_list(statement["Action"])) == DELIVERY_ACTIONS
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_the_data_key_lets_no_message_delivering_service_use_it(synthesized: Synthesized) -> None:
    """Datasets and artifacts never share a key with a relaxed service statement."""
    key = synthesized.template_json("data")["Resources"]["DataKey"]
    services = {
        service
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        for service in as_list(statement.get("Principal", {}).get("Service", []))
        if isinstance(service, str)  # the regional logs principal is a Fn::Join
    }
    assert services.isdisjoint({"events.amazonaws.com", "sns.amazonaws.com", "cloudwatch.amazonaws.com"})


def _alarmed_rules(synthesized: Synthesized, stack: str) -> dict[str, dict[str, Any]]:
    """Rule logical ID -> the metrics (by name) of the alarm that watches its deliveries."""
    watched: dict[str, dict[str, Any]] = {}
    topic_arn = {"Ref": next(iter(synthesized.resources("training", "AWS::SNS::Topic")))}
    for alarm in synthesized.resources(stack, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        stats = [m["MetricStat"]["Metric"] for m in properties.get("Metrics", []) if "MetricStat" in m]
        if not stats or stats[0]["Namespace"] != "AWS/Events":
            continue
        (expression,) = [m for m in properties["Metrics"] if "Expression" in m]
        assert expression["ReturnData"] is True
        assert properties["Threshold"] == 1
        assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        if stack == "training":
            assert properties["AlarmActions"] == [topic_arn]
        else:
            assert properties["AlarmActions"] == [synthesized_topic_import(synthesized)]
        by_name = {metric["MetricName"]: metric for metric in stats}
        dimensions = {d["Name"]: d["Value"] for d in next(iter(by_name.values()))["Dimensions"]}
        watched[dimensions["RuleName"]["Ref"]] = {"metrics": by_name, "dimensions": dimensions}
    return watched


def synthesized_topic_import(synthesized: Synthesized) -> dict[str, str]:
    return {"Fn::ImportValue": f"{synthesized.stack_name('training')}:NotificationTopicArn"}


@pytest.mark.parametrize("stack", CONSUMERS)
def test_every_rule_with_a_target_alarms_on_failed_deliveries(synthesized: Synthesized, stack: str) -> None:
    rules_with_targets = {
        logical_id: rule
        for logical_id, rule in synthesized.resources(stack, "AWS::Events::Rule").items()
        if rule["Properties"].get("Targets")
    }
    assert rules_with_targets
    watched = _alarmed_rules(synthesized, stack)
    assert set(watched) == set(rules_with_targets)
    for logical_id, rule in rules_with_targets.items():
        metrics, dimensions = watched[logical_id]["metrics"], watched[logical_id]["dimensions"]
        assert set(metrics) == {"FailedInvocations", "InvocationsFailedToBeSentToDlq"}, logical_id
        bus = rule["Properties"].get("EventBusName")
        if bus is None:  # the default bus: RuleName only
            assert set(dimensions) == {"RuleName"}, logical_id
        else:  # a custom bus: EventBusName and RuleName
            assert dimensions["EventBusName"] == bus, logical_id


def test_every_rule_spec_is_watched_once_across_the_stacks(synthesized: Synthesized) -> None:
    watched = sum(len(_alarmed_rules(synthesized, stack)) for stack in CONSUMERS)
    scheduled = sum(
        1 for stack in CONSUMERS for rule in synthesized.resources(stack, "AWS::Events::Rule").values()
        if "ScheduleExpression" in rule["Properties"]
    )  # fmt: skip
    assert watched == len(rules(synthesized.settings.deployment)) + scheduled
