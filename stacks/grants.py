"""Roles built from explicit grants: every statement has a Sid, every wildcard a reason.

CDK's ``grant*`` helpers add wildcard actions (``kms:GenerateDataKey*``, ``s3:GetObject*``); the
roles here list exact actions instead, so tests can pin them and cdk-nag has little to say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.nag import WildcardAcknowledgments

KEY_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey"]


@dataclass(frozen=True)
class Grant:
    """One policy statement, and why its wildcard resources (if any) are as narrow as they get."""

    statement: iam.PolicyStatement
    wildcard_reason: str | None = None


def allow(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    *,
    conditions: dict[str, dict[str, object]] | None = None,
    wildcard_reason: str | None = None,
) -> Grant:
    statement = iam.PolicyStatement(sid=sid, actions=list(actions), resources=list(resources), conditions=conditions)
    return Grant(statement, wildcard_reason)


def function_basics(log_group_arn: str) -> list[Grant]:
    """What every function of ours needs: write its own log group and its X-Ray traces."""
    return [
        allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [log_group_arn]),
        allow(
            "WriteTraces",
            ["xray:PutTelemetryRecords", "xray:PutTraceSegments"],
            ["*"],
            wildcard_reason="X-Ray's PutTraceSegments and PutTelemetryRecords support no resource-level permissions.",
        ),
    ]


def log_group_arn(name: str, suffix: str = "") -> str:
    return f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{name}{suffix}"


def _check_grants(grants: Sequence[Grant]) -> None:
    for grant in grants:
        if any("*" in action for action in grant.statement.actions):
            raise ValueError(f"{grant.statement.sid}: list exact actions, not {grant.statement.actions}")


def _acknowledge(construct: Construct, grants: Sequence[Grant]) -> None:
    acknowledgments = WildcardAcknowledgments(construct)
    for grant in grants:
        resources = grant.statement.resources
        if grant.wildcard_reason is not None:
            acknowledgments.add(resources, grant.wildcard_reason)
        elif any("*" in resource for resource in resources):
            raise ValueError(f"{grant.statement.sid}: wildcard resource without a reason")
    acknowledgments.apply()


def managed_policy_with_grants(scope: Construct, construct_id: str, *, description: str,
                               grants: Sequence[Grant]) -> iam.ManagedPolicy:
    """A customer managed policy (for people and their CI, who attach it) built like a role's."""
    _check_grants(grants)
    policy = iam.ManagedPolicy(scope, construct_id, description=description,
                               statements=[grant.statement for grant in grants])
    _acknowledge(policy, grants)
    return policy


def role_with_grants(
    scope: Construct,
    construct_id: str,
    *,
    assumed_by: iam.IPrincipal,
    description: str,
    policy_name: str,
    grants: Sequence[Grant],
    path: str | None = None,
) -> iam.Role:
    """A role with one inline policy; each wildcard resource acknowledged once, with its reasons."""
    _check_grants(grants)
    role = iam.Role(
        scope,
        construct_id,
        assumed_by=assumed_by,
        description=description,
        path=path,
        inline_policies={policy_name: iam.PolicyDocument(statements=[grant.statement for grant in grants])},
    )
    _acknowledge(role, grants)
    return role
