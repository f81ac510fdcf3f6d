"""Serving stack: what does not depend on the served model (the model role, the image, the alarms,
promotion). The endpoint and its scaling belong to the promoter and the reconciler
(tests/stacks/test_promotion.py checks no template has them; docs/promotion.md, "Who owns what")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list, imported, inline_policy, joined, statements_by_sid


def role_arn_properties(value: Any) -> Iterator[Any]:
    """Every ``RoleARN`` property value anywhere in a template fragment."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "RoleARN":
                yield item
            yield from role_arn_properties(item)
    elif isinstance(value, list):
        for item in value:
            yield from role_arn_properties(item)


def test_no_resource_names_the_autoscaling_service_linked_role(synthesized: Synthesized) -> None:
    """Naming AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint as a RoleARN before it exists
    fails with "Unable to assume IAM role" (reference 11d): the reconciler registers the scalable
    target without one, and may only create that role (its iam:CreateServiceLinkedRole grant)."""
    for role in ("data", "training", "serving"):
        resources = synthesized.template_json(role)["Resources"]
        named = [v for v in role_arn_properties(resources) if "ApplicationAutoScaling" in json.dumps(v)]
        assert not named, role
    trusted = [
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        for role in synthesized.resources("serving", "AWS::IAM::Role").values()
    ]
    assert {"Service": "application-autoscaling.amazonaws.com"} not in trusted  # no role of our own for it


def test_model_role_reads_artifacts_and_writes_data_capture_only(synthesized: Synthesized) -> None:
    (role,) = [
        r
        for r in synthesized.resources("serving", "AWS::IAM::Role").values()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "sagemaker.amazonaws.com"}
    ]
    statements = statements_by_sid(inline_policy(role))
    data = synthesized.stack_name("data")
    assert as_list(statements["ReadModelArtifacts"]["Action"]) == ["s3:GetObject"]
    assert joined(imported(data, "ArtifactBucketArn"), "/training-jobs/*") in as_list(
        statements["ReadModelArtifacts"]["Resource"]
    )
    assert as_list(statements["WriteDataCapture"]["Action"]) == ["s3:PutObject"]
    assert as_list(statements["WriteDataCapture"]["Resource"]) == [
        joined(imported(data, "ArtifactBucketArn"), "/data-capture/*")
    ]
    assert as_list(statements["UseDataKey"]["Resource"]) == [imported(data, "DataKeyArn")]
    for statement in statements.values():
        assert not any("*" in action for action in as_list(statement["Action"]))
    assert "ManagedPolicyArns" not in role["Properties"]


def test_outputs_name_the_endpoint_the_promoter_creates(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("serving")["Outputs"]
    assert outputs["EndpointName"]["Value"] == f"{synthesized.settings.deployment}-embeddings"

