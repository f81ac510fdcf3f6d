"""Serving stack: what does not depend on the served model (the model role, the image, the alarms,
promotion). The endpoint and its scaling belong to the promoter and the reconciler
(tests/stacks/test_promotion.py checks no template has them; docs/promotion.md, "Who owns what")."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX
from o2v_core.served_assets import job_name_from_artifact, split_s3_uri

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


def test_both_roles_that_may_evaluate_the_rollback_alarms_may_describe_them(synthesized: Synthesized) -> None:
    """Deployment guardrails: "Ensure that your IAM execution role has permission to perform the
    cloudwatch:DescribeAlarms action on the auto-rollback alarms you specify" (reference 10f). Whether
    that is the caller of UpdateEndpoint (the promoter) or the models' execution role no source
    settles, so both have it, on exactly the endpoint config's rollback alarms."""
    alarm_ids = sorted(
        logical_id for logical_id, alarm in synthesized.resources("serving", "AWS::CloudWatch::Alarm").items()
        if alarm["Properties"].get("Namespace") == "AWS/SageMaker"  # the endpoint's rollback alarms
    )  # fmt: skip
    assert len(alarm_ids) == 2
    roles = synthesized.resources("serving", "AWS::IAM::Role")
    model_role = next(
        r for r in roles.values()
        if r["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "sagemaker.amazonaws.com"}
    )  # fmt: skip
    statement = statements_by_sid(inline_policy(model_role))["ReadRollbackAlarms"]
    assert as_list(statement["Action"]) == ["cloudwatch:DescribeAlarms"]
    assert sorted(r["Fn::GetAtt"][0] for r in as_list(statement["Resource"])) == alarm_ids
    promoter_roles = [
        statements_by_sid(inline_policy(r)) for r in roles.values()
        if "ReadRollbackAlarms" in str(r) and r is not model_role
    ]  # fmt: skip
    assert promoter_roles  # the promoter's and the reconciler's (tests/stacks/test_promotion.py pins the ARNs)


def test_the_readmes_model_url_is_one_the_model_role_may_read() -> None:
    """Issue 24 item 8: the hand-set model URL lies below the prefix ReadModelArtifacts allows, in
    SageMaker's output layout (o2v_core.served_assets.job_name_from_artifact)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    urls = re.findall(r"--value (s3://\S+model\.tar\.gz)", readme)
    for url in urls:  # none once the promoter alone sets the served model
        _, key = split_s3_uri(url)
        assert key.startswith(TRAINING_OUTPUT_PREFIX), url
        assert job_name_from_artifact(url), url
