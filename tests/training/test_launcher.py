"""o2v launch: stack outputs, dataset manifest, lineage name and tags, SDK v3 request.

SageMaker is the tests' one SageMaker stand-in (``tests/support/sagemaker_fake.py``: the local SageMaker
API, which checks every request against the whole botocore contract and reference section 10a, as
AWS does); CloudFormation, IAM and S3 are moto's in-process mock.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from o2v_core import resource_names as names
from o2v_core.hyperparameters import HyperparameterError
from o2v_core.naming import TAG_BEST_EPOCH_ARTIFACT, Lineage, job_name
from o2v_core.resource_names import data_stack_name, training_stack_name
from sagemaker.core import image_uris

from tests.support import sagemaker_fake
from training.cli import main
from training.data.upload import upload_dataset
from training.launcher.launch import LaunchError, build_request, plan_launch, submit
from training.launcher.stack import StackError, StackOutputs

REGION = "us-east-1"
DEPLOYMENT = "o2v-dev"
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def _stack(cloudformation: object, name: str, outputs: dict[str, str]) -> None:
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": f"{name}-q"}}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))  # type: ignore[attr-defined]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, sagemaker_fake: str) -> Iterator[boto3.Session]:
    """moto for everything but SageMaker; SageMaker requests go over HTTP to the fake, whose URL
    (``AWS_ENDPOINT_URL_SAGEMAKER``) matches none of moto's endpoints, so mock_aws lets them pass."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@pytest.fixture
def deployed(aws: boto3.Session, stsb_dataset: Path) -> boto3.Session:
    """The two stacks' outputs (as stacks/ publishes them), the buckets and the uploaded dataset."""
    role = aws.client("iam").create_role(RoleName="o2v-dev-training", AssumeRolePolicyDocument=json.dumps(TRUST))
    s3 = aws.client("s3")
    for bucket in ("o2v-dev-datasets", "o2v-dev-artifacts"):
        s3.create_bucket(Bucket=bucket)
    cloudformation = aws.client("cloudformation")
    _stack(cloudformation, data_stack_name(DEPLOYMENT), {
        names.OUTPUT_DATASET_BUCKET: "o2v-dev-datasets",
        names.OUTPUT_ARTIFACT_BUCKET: "o2v-dev-artifacts",
        names.OUTPUT_DATA_KEY: f"arn:aws:kms:{REGION}:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        names.OUTPUT_TRAINING_OUTPUT_URI: "s3://o2v-dev-artifacts/training-jobs/",
    })
    _stack(cloudformation, training_stack_name(DEPLOYMENT), {
        names.OUTPUT_TRAINING_ROLE: role["Role"]["Arn"],
        names.OUTPUT_INSTANCE_TYPE: "ml.m5.2xlarge",
        names.OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS: json.dumps({"enc0_network": "bilstm", "enc0_vocab_size": 30000,
                                                                "enc0_max_seq_len": 50, "dropout": 0.0, "epochs": 20}),
        names.OUTPUT_EVENT_BUS: "o2v-dev-events",
    })
    upload_dataset(s3, stsb_dataset, "o2v-dev-datasets", "stsb")
    return aws


def test_plan_reads_stack_manifest_and_overrides(deployed: boto3.Session, stsb_dataset: Path) -> None:
    manifest = json.loads((stsb_dataset / "manifest.json").read_text())["hyperparameters"]
    plan = plan_launch(deployed, deployment=DEPLOYMENT, lineage="STS-B baseline", dataset="stsb",
                       layers=[("--hp", {"dropout": "0.1", "enc_dim": "128"})])
    assert plan.job_name == job_name(DEPLOYMENT, "STS-B baseline", 1) == "o2v-dev--sts-b-baseline-a1"
    assert plan.lineage.tags() == Lineage(DEPLOYMENT, "sts-b-baseline", 1, None).tags()
    assert plan.image_uri == image_uris.retrieve("object2vec", REGION)
    assert plan.role_arn.endswith(":role/o2v-dev-training")
    assert plan.event_bus_name == "o2v-dev-events"
    assert plan.hyperparameters == {
        "enc0_network": "bilstm",  # from the stack's first-attempt hyperparameters
        "enc0_vocab_size": str(manifest["enc0_vocab_size"]),  # the dataset wins over the stack
        "enc0_max_seq_len": str(manifest["enc0_max_seq_len"]),
        "enc1_vocab_size": str(manifest["enc1_vocab_size"]),
        "enc1_max_seq_len": str(manifest["enc1_max_seq_len"]),
        "output_layer": "mean_squared_error",
        "dropout": "0.1",  # --hp wins over both
        "enc_dim": "128",
        "epochs": "20",
    }
    assert plan.channels == {split: f"s3://o2v-dev-datasets/datasets/stsb/{split}/"
                             for split in ("train", "validation", "test", "auxiliary")}
    assert plan.console_url == ("https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1"
                                "#/jobs/o2v-dev--sts-b-baseline-a1")


def test_sdk_request_and_created_job(deployed: boto3.Session) -> None:
    plan = plan_launch(deployed, deployment=DEPLOYMENT, lineage="stsb-1", dataset="stsb", layers=[])
    request = build_request(deployed, plan)
    assert request["training_job_name"] == "o2v-dev--stsb-1-a1"  # exact: no SDK timestamp suffix
    assert request["enable_network_isolation"] is True  # the control plane relaunches only isolated jobs
    arn = submit(deployed, plan)
    assert arn.endswith(":training-job/o2v-dev--stsb-1-a1")
    # The SDK's request reached the contract-checking fake (not moto) and was accepted.
    assert sagemaker_fake.CALLS["CreateTrainingJob"] == 1
    sagemaker = deployed.client("sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName="o2v-dev--stsb-1-a1")
    assert job["AlgorithmSpecification"]["TrainingImage"] == image_uris.retrieve("object2vec", REGION)
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["RoleArn"] == plan.role_arn
    assert job["EnableNetworkIsolation"] is True
    assert job["HyperParameters"] == plan.hyperparameters
    channels = {item["ChannelName"]: (item["DataSource"]["S3DataSource"]["S3Uri"], item["ContentType"])
                for item in job["InputDataConfig"]}
    assert channels == {
        "train": ("s3://o2v-dev-datasets/datasets/stsb/train/", "application/jsonlines"),
        "validation": ("s3://o2v-dev-datasets/datasets/stsb/validation/", "application/jsonlines"),
        "test": ("s3://o2v-dev-datasets/datasets/stsb/test/", "application/jsonlines"),
        "auxiliary": ("s3://o2v-dev-datasets/datasets/stsb/auxiliary/", "application/json"),
    }
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://o2v-dev-artifacts/training-jobs/"
    assert job["OutputDataConfig"]["KmsKeyId"].startswith("arn:aws:kms:")
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    tags = {item["Key"]: item["Value"] for item in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {"o2v:deployment": DEPLOYMENT, "o2v:lineage": "stsb-1", "o2v:attempt": "1"}
    assert Lineage.from_tags(tags).job_name() == "o2v-dev--stsb-1-a1"


def test_cli_prints_job_name_and_console_link(deployed: boto3.Session, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hp.json"
    config.write_text(json.dumps({"hyperparameters": {"enc0_network": "hcnn", "mini_batch_size": 64}}))
    args = ["launch", "--deployment", DEPLOYMENT, "--dataset", "stsb", "--lineage", "cli", "--config", str(config),
            "--hp", "epochs=5"]
    assert main([*args, "--dry-run"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] and planned["hyperparameters"]["enc0_network"] == "hcnn"
    assert planned["hyperparameters"]["epochs"] == "5"
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "started o2v-dev--cli-a1" in out
    assert "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/o2v-dev--cli-a1" in out
    assert deployed.client("sagemaker").describe_training_job(TrainingJobName="o2v-dev--cli-a1")


def test_bad_hyperparameters_are_rejected_with_the_range(deployed: boto3.Session) -> None:
    with pytest.raises(HyperparameterError, match=r"'dropout': 1\.5 is out of range; allowed: float in \[0\.0, 1\.0\] "
                                                  r"\(in --hp\)"):
        plan_launch(deployed, deployment=DEPLOYMENT, lineage="x", dataset="stsb", layers=[("--hp", {"dropout": 1.5})])
    with pytest.raises(HyperparameterError, match=r"unknown in cfg\.json"):
        plan_launch(deployed, deployment=DEPLOYMENT, lineage="x", dataset="stsb", layers=[("cfg.json", {"lr": 1})])


def test_missing_dataset_stack_or_output(deployed: boto3.Session) -> None:
    with pytest.raises(LaunchError, match=r"dataset 'other': s3://o2v-dev-datasets/datasets/other/manifest\.json"):
        plan_launch(deployed, deployment=DEPLOYMENT, lineage="x", dataset="other", layers=[])
    with pytest.raises(StackError, match="o2v-prod-data"):
        plan_launch(deployed, deployment="o2v-prod", lineage="x", dataset="stsb", layers=[])
    _stack(deployed.client("cloudformation"), "o2v-test-data", {"DatasetBucketName": "b"})
    _stack(deployed.client("cloudformation"), "o2v-test-training", {"TrainingRoleArn": "arn:aws:iam::1:role/r"})
    with pytest.raises(StackError, match=r"'o2v-test-data' has no output\(s\) ArtifactBucketName, "
                                         r"TrainingOutputS3Uri; found DatasetBucketName"):
        plan_launch(deployed, deployment="o2v-test", lineage="x", dataset="stsb", layers=[])


def test_relaunching_the_same_attempt_is_refused(deployed: boto3.Session) -> None:
    plan = plan_launch(deployed, deployment=DEPLOYMENT, lineage="twice", dataset="stsb", layers=[])
    submit(deployed, plan)
    with pytest.raises(LaunchError, match="o2v-dev--twice-a1 already exists: lineage 'twice' was launched before"):
        submit(deployed, plan)
    jobs = deployed.client("sagemaker").list_training_jobs(NameContains="twice")["TrainingJobSummaries"]
    assert [job["TrainingJobName"] for job in jobs] == ["o2v-dev--twice-a1"]


def test_prepare_upload_to_the_deployments_dataset_bucket(deployed: boto3.Session, stsb_slice: dict[str, Path],
                                                          tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "stsb-small"
    assert main(["prepare", "--train", str(stsb_slice["train"]), "--validation", str(stsb_slice["validation"]),
                 "--out", str(out), "--upload", "--deployment", DEPLOYMENT, "--name", "stsb-small", "--quiet"]) == 0
    uploaded = json.loads(capsys.readouterr().out)["uploaded"]
    assert uploaded[-1] == "s3://o2v-dev-datasets/datasets/stsb-small/manifest.json"
    plan = plan_launch(deployed, deployment=DEPLOYMENT, lineage="small", dataset="stsb-small", layers=[])
    assert set(plan.channels) == {"train", "validation", "auxiliary"}  # no test split was prepared
    assert main(["prepare", "--train", str(stsb_slice["train"]), "--out", str(tmp_path / "x"), "--upload",
                 "--quiet"]) == 2
    assert "--upload needs --bucket or --deployment" in capsys.readouterr().err


def test_given_stack_outputs_replace_cloudformation_and_extra_tags_are_added(
        aws: boto3.Session, stsb_dataset: Path) -> None:
    """``o2v demo``'s path: no stack is deployed; the caller hands over the outputs."""
    role = aws.client("iam").create_role(RoleName="local-training", AssumeRolePolicyDocument=json.dumps(TRUST))
    s3 = aws.client("s3")
    for bucket in ("local-datasets", "local-artifacts"):
        s3.create_bucket(Bucket=bucket)
    upload_dataset(s3, stsb_dataset, "local-datasets", "stsb")
    stack = StackOutputs(deployment="o2v-local", training_role_arn=role["Role"]["Arn"], dataset_bucket="local-datasets",
                         artifact_bucket="local-artifacts", training_output_uri="s3://local-artifacts/training-jobs/",
                         kms_key_arn=None, instance_type="ml.m5.large", first_attempt_hyperparameters={"epochs": 3},
                         event_bus_name="o2v-local-control-plane", origin="a stand-in")
    assert aws.client("cloudformation").describe_stacks()["Stacks"] == []
    plan = plan_launch(aws, deployment="o2v-local", lineage="given", dataset="stsb", stack=stack,
                       layers=[("overrides", {"dropout": 0.0})], tags={TAG_BEST_EPOCH_ARTIFACT: "true"},
                       volume_size_gb=5, max_runtime_seconds=600)
    assert plan.sources[0] == "output FirstAttemptHyperparameters of a stand-in"
    assert plan.hyperparameters["epochs"] == "3" and plan.hyperparameters["dropout"] == "0.0"
    assert plan.summary()["tags"][TAG_BEST_EPOCH_ARTIFACT] == "true"
    arn = submit(aws, plan)
    sagemaker = aws.client("sagemaker")
    job = sagemaker.describe_training_job(TrainingJobName="o2v-local--given-a1")
    assert job["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5}
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 600
    assert "KmsKeyId" not in job["OutputDataConfig"]
    tags = {item["Key"]: item["Value"] for item in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags == {**Lineage("o2v-local", "given", 1, None).tags(), TAG_BEST_EPOCH_ARTIFACT: "true"}


def test_given_stack_outputs_and_tags_are_checked(deployed: boto3.Session) -> None:
    plan = plan_launch(deployed, deployment=DEPLOYMENT, lineage="x", dataset="stsb", layers=[])
    with pytest.raises(LaunchError, match="deployment 'o2v-dev''s, not 'o2v-prod''s"):
        plan_launch(deployed, deployment="o2v-prod", lineage="x", dataset="stsb", layers=[], stack=plan.stack)
    with pytest.raises(LaunchError, match="o2v:attempt belong to the lineage"):
        plan_launch(deployed, deployment=DEPLOYMENT, lineage="x", dataset="stsb", layers=[], tags={"o2v:attempt": "2"})
