"""The project's EventBridge rules on the local EventBridge: the one wiring every caller uses.

Every caller creates the rules through :func:`local_aws.deployment.wire_control_plane`: the event pump
(:mod:`local_aws.events.pump`, for ``o2v demo``), the control-plane and promotion tests, and the bench. Each rule is one
:class:`o2v_core.events.RuleSpec` of ``rules(deployment)``, on the bus and with the pattern the CDK
stacks deploy. Its target is an SQS queue (moto delivers rules to SQS; it cannot invoke a Lambda
function or publish to SNS), and the target's input transformer writes the whole event as
EventBridge hands it to Lambda, ``account`` included (moto's own SQS delivery leaves ``account``
out).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from o2v_core.events import RuleSpec, rules

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

# EventBridge's full event, as Lambda receives it (see the module docstring).
_INPUT_PATHS = {name: f"$.{name}" for name in
                ("id", "detail-type", "source", "account", "time", "region", "resources", "detail")}
_INPUT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
    '"account": "<account>", "time": "<time>", "region": "<region>", "resources": <resources>, '
    '"detail": <detail>}'
)


@dataclass(frozen=True)
class RuleRoute:
    """One rule as created: its spec, its name, its bus, and the queue its target delivers to."""

    spec: RuleSpec
    rule_name: str
    queue_url: str
    bus_name: str


def rule_queue_name(deployment: str, rule_id: str) -> str:
    """The SQS queue standing in for the target of rule ``rule_id``."""
    return f"{deployment}-local-{rule_id}"


def wire_rules(
    events: EventBridgeClient, sqs: SQSClient, deployment: str, event_bus_name: str,
    targets: Collection[str] | None = None,
) -> list[RuleRoute]:
    """Create the project bus ``event_bus_name`` (beside the default bus) and every rule of
    ``rules(deployment)`` (only those whose target is in ``targets``, where given), each delivering to
    a queue of its own; the routes, in ``rules()`` order."""
    with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
        events.create_event_bus(Name=event_bus_name)
    routes = []
    for spec in rules(deployment):
        if targets is not None and spec.target not in targets:
            continue
        bus = "default" if spec.bus == "default" else event_bus_name
        rule_name = f"{deployment}-{spec.rule_id}"
        queue_url = sqs.create_queue(QueueName=rule_queue_name(deployment, spec.rule_id))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        events.put_rule(Name=rule_name, EventBusName=bus, EventPattern=json.dumps(spec.pattern),
                        State="ENABLED", Description=spec.description)
        events.put_targets(Rule=rule_name, EventBusName=bus, Targets=[{
            "Id": spec.target, "Arn": queue_arn,
            "InputTransformer": {"InputPathsMap": _INPUT_PATHS, "InputTemplate": _INPUT_TEMPLATE},
        }])
        routes.append(RuleRoute(spec, rule_name, queue_url, bus))
    return routes
