"""cdk-nag acknowledgments, always on one construct and always with a reason.

IAM5 findings name each wildcard resource the way cdk-nag flattens it
(``utils/flatten-cfn-reference`` in cdk-nag 3); :func:`flatten_cfn_reference` is a port of it, so
an acknowledgment is computed from the very ARN the policy grants, never retyped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import Construct


def acknowledge(construct: Construct, rule_id: str, reason: str) -> None:
    if len(reason) < 40:
        raise ValueError(f"acknowledging {rule_id} on {construct.node.path}: give a real reason, not {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def flatten_cfn_reference(node: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in a finding id."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(flatten_cfn_reference(item) for item in items)
        if "Fn::Sub" in node:
            return flatten_cfn_reference(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{flatten_cfn_reference(resource)}.{flatten_cfn_reference(attribute)}>"
        if "Fn::ImportValue" in node:
            return flatten_cfn_reference(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{flatten_cfn_reference(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))


def wildcard_resource_findings(scope: Construct, resources: Iterable[str]) -> list[str]:
    """The AwsSolutions-IAM5 finding ids that these resources raise (those with a wildcard)."""
    stack = Stack.of(scope)
    flat = (flatten_cfn_reference(stack.resolve(resource)) for resource in resources)
    return [f"AwsSolutions-IAM5[Resource::{item}]" for item in flat if "*" in item]


class WildcardAcknowledgments:
    """Collects one reason per wildcard grant and acknowledges each finding once, on one construct."""

    def __init__(self, construct: Construct) -> None:
        self.construct = construct
        self.reasons: dict[str, list[str]] = {}

    def add(self, resources: Iterable[str], reason: str) -> None:
        for finding in wildcard_resource_findings(self.construct, resources):
            self.reasons.setdefault(finding, [])
            if reason not in self.reasons[finding]:
                self.reasons[finding].append(reason)

    def apply(self) -> None:
        for finding, reasons in self.reasons.items():
            acknowledge(self.construct, finding, " ".join(reasons))


CHECKOV_METADATA_KEY = "checkov"


def checkov_skip(construct: Construct, check_id: str, reason: str) -> None:
    """Skip one checkov check on the construct's CloudFormation resource, with the reason.

    Checkov reads ``Metadata: {checkov: {skip: [{id, comment}]}}`` on a CloudFormation resource
    (https://www.checkov.io/2.Basics/Suppressing%20and%20Skipping%20Policies.html, "CloudFormation").
    """
    from aws_cdk import CfnResource

    if len(reason) < 40:
        raise ValueError(f"skipping {check_id} on {construct.node.path}: give a real reason, not {reason!r}")
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise TypeError(f"{construct.node.path} has no CloudFormation resource to carry a checkov skip")
    metadata = resource.get_metadata(CHECKOV_METADATA_KEY) or {"skip": []}
    skips = [entry for entry in metadata["skip"] if entry["id"] != check_id]
    resource.add_metadata(CHECKOV_METADATA_KEY, {"skip": [*skips, {"id": check_id, "comment": reason}]})


NO_VPC_REASON = (
    "The project's functions call only AWS APIs (SageMaker, EventBridge, SNS, SSM, CloudWatch, S3) "
    "over TLS and reach nothing inside a VPC; a VPC would add NAT or endpoints for no isolation gained."
)
NO_RESERVED_CONCURRENCY_REASON = (
    "Reserving concurrency takes it from the account's unreserved pool (accounts start with 10, "
    "which cannot be reserved); events are handled idempotently, so bursts need no cap."
)


def skip_lambda_checks(function: Construct, dlq_reason: str) -> None:
    """Checkov's Lambda checks this project answers by design, each with its reason."""
    checkov_skip(function, "CKV_AWS_116", dlq_reason)
    checkov_skip(function, "CKV_AWS_117", NO_VPC_REASON)
    checkov_skip(function, "CKV_AWS_115", NO_RESERVED_CONCURRENCY_REASON)
