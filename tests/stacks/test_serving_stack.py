"""Serving stack: model, endpoint config (KMS, data capture), endpoint and autoscaling."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from o2v_core.resource_names import TRAINING_OUTPUT_PREFIX
from o2v_core.served_assets import job_name_from_artifact, split_s3_uri

from tests.stacks.conftest import Synthesized
from tests.stacks.iam_helpers import as_list, imported, inline_policy, joined, statements_by_sid

MAPPING = "Object2VecImageByRegion"


def only(synthesized: Synthesized, cfn_type: str) -> dict[str, Any]:
    (resource,) = synthesized.resources("serving", cfn_type).values()
    props: dict[str, Any] = resource["Properties"]
    return props


def test_model_runs_the_object2vec_image_in_embedding_mode(synthesized: Synthesized) -> None:
    container = only(synthesized, "AWS::SageMaker::Model")["PrimaryContainer"]
    assert container["Image"] == {"Fn::FindInMap": [MAPPING, {"Ref": "AWS::Region"}, "ImageUri"]}


def test_endpoint_config_uses_configured_instance_and_capacity(synthesized: Synthesized) -> None:
    (variant,) = only(synthesized, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["InstanceType"] == synthesized.settings.serving.instance_type
    assert variant["InitialInstanceCount"] == synthesized.settings.serving.min_capacity


def test_endpoint_config_encrypts_the_volume_with_the_key_on_ebs_instances(dev: Synthesized) -> None:
    assert not dev.settings.serving.instance_has_local_storage  # dev serves on an EBS-backed CPU instance
    config = only(dev, "AWS::SageMaker::EndpointConfig")
    assert config["KmsKeyId"] == imported(dev.stack_name("data"), "DataKeyArn")


def test_endpoint_config_leaves_nvme_instances_to_hardware_encryption(prod: Synthesized) -> None:
    assert prod.settings.serving.instance_has_local_storage  # prod serves on ml.g5 (local NVMe)
    assert "KmsKeyId" not in only(prod, "AWS::SageMaker::EndpointConfig")


def test_data_capture_goes_to_the_artifact_bucket_encrypted_with_the_key(synthesized: Synthesized) -> None:
    capture = only(synthesized, "AWS::SageMaker::EndpointConfig")["DataCaptureConfig"]
    data = synthesized.stack_name("data")
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == synthesized.settings.serving.data_capture_sampling_percentage
    assert capture["DestinationS3Uri"] == joined("s3://", imported(data, "ArtifactBucketName"), "/data-capture/")
    assert capture["KmsKeyId"] == imported(data, "DataKeyArn")
    assert sorted(option["CaptureMode"] for option in capture["CaptureOptions"]) == ["Input", "Output"]


def test_endpoint_is_named_for_the_deployment(synthesized: Synthesized) -> None:
    endpoint = only(synthesized, "AWS::SageMaker::Endpoint")
    assert endpoint["EndpointName"] == f"{synthesized.settings.deployment}-embeddings"
    (config_id,) = synthesized.resources("serving", "AWS::SageMaker::EndpointConfig")
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}


def test_autoscaling_tracks_invocations_between_the_configured_bounds(synthesized: Synthesized) -> None:
    serving = synthesized.settings.serving
    target = only(synthesized, "AWS::ApplicationAutoScaling::ScalableTarget")
    (endpoint_id,) = synthesized.resources("serving", "AWS::SageMaker::Endpoint")
    assert target["MinCapacity"] == serving.min_capacity
    assert target["MaxCapacity"] == serving.max_capacity
    assert target["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert target["ServiceNamespace"] == "sagemaker"
    assert target["RoleARN"] == joined(
        "arn:", {"Ref": "AWS::Partition"}, ":iam::", {"Ref": "AWS::AccountId"},
        ":role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
    )  # fmt: skip
    trusted = [
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        for role in synthesized.resources("serving", "AWS::IAM::Role").values()
    ]
    assert {"Service": "application-autoscaling.amazonaws.com"} not in trusted  # no extra, empty role
    assert target["ResourceId"] == joined(
        "endpoint/", {"Fn::GetAtt": [endpoint_id, "EndpointName"]}, "/variant/AllTraffic"
    )
    policy = only(synthesized, "AWS::ApplicationAutoScaling::ScalingPolicy")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == serving.target_invocations_per_instance
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }


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


def test_outputs_name_the_endpoint(synthesized: Synthesized) -> None:
    outputs = synthesized.template_json("serving")["Outputs"]
    (endpoint_id,) = synthesized.resources("serving", "AWS::SageMaker::Endpoint")
    assert outputs["EndpointName"]["Value"] == {"Fn::GetAtt": [endpoint_id, "EndpointName"]}


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
