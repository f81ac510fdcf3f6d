"""Small helpers to read IAM policies out of synthesized templates."""

from __future__ import annotations

from typing import Any


def imported(stack: str, output: str) -> dict[str, str]:
    return {"Fn::ImportValue": f"{stack}:{output}"}


def joined(*parts: Any) -> dict[str, Any]:
    return {"Fn::Join": ["", list(parts)]}


def arn(service: str, rest: str, *, region: bool = True, account: bool = True) -> dict[str, Any]:
    """``arn:${Partition}:{service}:${Region}:${Account}:{rest}`` as CDK renders it."""
    return joined(
        "arn:",
        {"Ref": "AWS::Partition"},
        f":{service}:",
        *([{"Ref": "AWS::Region"}] if region else []),
        ":",
        *([{"Ref": "AWS::AccountId"}] if account else []),
        f":{rest}",
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements_by_sid(policy_document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    statements = policy_document["Statement"]
    by_sid = {statement["Sid"]: statement for statement in statements}
    assert len(by_sid) == len(statements), "every statement needs its own Sid"
    return by_sid


def inline_policy(role: dict[str, Any]) -> dict[str, Any]:
    (policy,) = role["Properties"]["Policies"]
    document: dict[str, Any] = policy["PolicyDocument"]
    return document
