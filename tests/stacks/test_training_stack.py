"""Training stack: the SageMaker execution role (exact permissions) and the Object2Vec image."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from o2v_core.naming import job_prefix
from sagemaker.core import image_uris

from stacks.constructs.object2vec_image import Object2VecImage, UnsupportedRegionError, sdk_images
from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import arn, as_list, imported, inline_policy, joined, statements_by_sid

SAGEMAKER_TRUST = {
    "Statement": [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            # Confused-deputy guard: SageMaker acting for this account's resources only.
            "Condition": {
                "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                "ArnLike": {"aws:SourceArn": arn("sagemaker", "*")},
            },
        }
    ],
    "Version": "2012-10-17",
}
MAPPING = "Object2VecImageByRegion"


def training_role(synthesized: Synthesized) -> dict[str, Any]:
    roles = synthesized.resources("training", "AWS::IAM::Role")
    (role,) = [r for r in roles.values() if r["Properties"]["AssumeRolePolicyDocument"] == SAGEMAKER_TRUST]
    return role


def logs_arn(rest: str) -> dict[str, Any]:
    return joined(
        "arn:", {"Ref": "AWS::Partition"}, ":logs:", {"Ref": "AWS::Region"}, ":", {"Ref": "AWS::AccountId"}, f":{rest}"
    )


def expected_statements(synthesized: Synthesized) -> dict[str, tuple[list[str], list[Any], dict[str, Any] | None]]:
    data = synthesized.stack_name("data")
    prefix = job_prefix(synthesized.settings.deployment)
    repository = joined(
        "arn:", {"Ref": "AWS::Partition"}, ":ecr:", {"Ref": "AWS::Region"}, ":",
        {"Fn::FindInMap": [MAPPING, {"Ref": "AWS::Region"}, "RegistryAccount"]}, ":repository/object2vec",
    )  # fmt: skip
    return {
        "ReadDatasets": (["s3:GetObject"], [joined(imported(data, "DatasetBucketArn"), "/datasets/*")], None),
        "ListDatasets": (
            ["s3:ListBucket"],
            [imported(data, "DatasetBucketArn")],
            {"StringLike": {"s3:prefix": ["datasets/*"]}},
        ),
        "WriteArtifacts": (["s3:PutObject"], [joined(imported(data, "ArtifactBucketArn"), "/training-jobs/*")], None),
        "UseDataKey": (["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [imported(data, "DataKeyArn")], None),
        "PullObject2VecImage": (
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [repository],
            None,
        ),
        "GetRegistryToken": (["ecr:GetAuthorizationToken"], ["*"], None),
        "CreateTrainingLogGroup": (
            ["logs:CreateLogGroup", "logs:DescribeLogStreams"],
            [logs_arn("log-group:/aws/sagemaker/TrainingJobs:*")],
            None,
        ),
        "WriteTrainingLogs": (
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            [logs_arn(f"log-group:/aws/sagemaker/TrainingJobs:log-stream:{prefix}*")],
            None,
        ),
        "PutTrainingMetrics": (
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": "/aws/sagemaker/TrainingJobs"}},
        ),
    }


def test_training_role_has_exactly_the_needed_permissions(synthesized: Synthesized) -> None:
    role = training_role(synthesized)
    statements = statements_by_sid(inline_policy(role))
    expected = expected_statements(synthesized)
    assert set(statements) == set(expected)
    for sid, (actions, resources, condition) in expected.items():
        statement = statements[sid]
        assert statement["Effect"] == "Allow", sid
        assert sorted(as_list(statement["Action"])) == actions, sid
        assert as_list(statement["Resource"]) == resources, sid
        assert statement.get("Condition") == condition, sid


def test_training_role_has_no_managed_policies_and_no_wildcard_actions(synthesized: Synthesized) -> None:
    role = training_role(synthesized)
    assert "ManagedPolicyArns" not in role["Properties"]
    for statement in inline_policy(role)["Statement"]:
        assert not any("*" in action for action in as_list(statement["Action"])), statement
    assert not synthesized.resources("training", "AWS::IAM::ManagedPolicy")


def test_image_mapping_covers_every_commercial_region_of_the_sdk(synthesized: Synthesized) -> None:
    mapping = synthesized.template_json("training")["Mappings"][MAPPING]
    config = image_uris.config_for_framework("object2vec")
    sdk_regions = {region for version in config["versions"].values() for region in version["registries"]}
    commercial = {r for r in sdk_regions if not r.startswith(("cn-", "us-gov-", "us-iso"))}
    assert set(mapping) == commercial
    for region, entry in mapping.items():
        uri = image_uris.retrieve("object2vec", region)
        assert entry == {"ImageUri": uri, "RegistryAccount": uri.split(".", 1)[0]}, region
    assert mapping["us-east-1"]["ImageUri"] == "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"


def test_outputs_name_role_image_and_first_attempt(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("training")["Outputs"]
    assert outputs["TrainingRoleArn"]["Value"]["Fn::GetAtt"][1] == "Arn"
    assert outputs["Object2VecImageUri"]["Value"] == {"Fn::FindInMap": [MAPPING, {"Ref": "AWS::Region"}, "ImageUri"]}
    assert outputs["TrainingInstanceType"]["Value"] == synthesized.settings.training.instance_type
    assert outputs["TrainingJobPrefix"]["Value"] == job_prefix(synthesized.settings.deployment)
    assert outputs["FirstAttemptHyperparameters"]["Value"] == synthesized.settings.hyperparameters_json


def test_a_stack_with_a_concrete_region_gets_the_sdk_uri_without_a_mapping() -> None:
    app = App()
    stack = Stack(app, "Pinned", env=Environment(region="eu-west-1"))
    image = Object2VecImage(stack, "Image")
    assert image.image_uri == image_uris.retrieve("object2vec", "eu-west-1")
    assert Object2VecImage.MAPPING_ID not in [child.node.id for child in stack.node.children]


def test_a_region_without_an_image_fails_synth_with_the_allowed_regions() -> None:
    stack = Stack(App(), "Nowhere", env=Environment(region="xx-nowhere-1"))
    with pytest.raises(UnsupportedRegionError, match=r"'xx-nowhere-1' has no Object2Vec image.*allowed: af-south-1"):
        Object2VecImage(stack, "Image")


def test_sdk_table_is_read_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("synth must not open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    sdk_images.cache_clear()
    assert sdk_images()["us-west-2"].registry_account == "174872318107"
