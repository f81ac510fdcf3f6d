"""The one rule wiring (local_aws/events/rules.py), which the event pump and these tests share:
every rule of ``o2v_core.events.rules()`` on its bus, delivering the event as EventBridge hands it to
a Lambda function (the input transformer puts back the ``account`` moto's SQS delivery leaves out)."""

from __future__ import annotations

import json

from o2v_core.events import rules
from o2v_core.resource_names import event_bus_name

from tests.support import sagemaker_fake as fake
from tests.support.cloud import BUS, DEPLOYMENT, Cloud

LAMBDA_EVENT_KEYS = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def test_the_tests_wire_the_rules_the_pump_wires_on_the_stacks_bus(cloud: Cloud) -> None:
    assert event_bus_name(DEPLOYMENT) == BUS
    for spec in rules(DEPLOYMENT):
        bus = "default" if spec.bus == "default" else BUS
        rule = cloud.events.describe_rule(Name=f"{DEPLOYMENT}-{spec.rule_id}", EventBusName=bus)
        assert json.loads(rule["EventPattern"]) == spec.pattern
        targets = cloud.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        assert [target["Id"] for target in targets] == [spec.target]
        assert "InputTransformer" in targets[0]


def test_a_delivered_event_has_every_member_lambda_receives(cloud: Cloud) -> None:
    job = cloud.create_job("wiring", status="Completed")
    cloud.put_on_default_bus(cloud.sagemaker_state_change(job))

    delivered = cloud.delivered("finished_job_evaluator")

    assert len(delivered) == 1
    event = delivered[0]
    assert set(event) == LAMBDA_EVENT_KEYS
    assert event["account"] == fake.ACCOUNT
    assert event["detail"]["TrainingJobName"] == job
