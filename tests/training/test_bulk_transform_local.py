"""Local mode's batch transform, end to end: the local SageMaker API runs the inference server over
local S3 as SageMaker runs a transform job (local_aws/sagemaker/transform_jobs.py cites each rule).

Real processes (moto server, local SageMaker API, one inference server per instance) and a real
model trained on the STS-B slice: ``o2v embed --corpus ... --endpoint NAME`` joins the job's
output back to the corpus, and each embedding equals what ``o2v embed --endpoint NAME`` (the
real-time path, InvokeEndpoint) returns for the same sentence. A record the server rejects fails
its object and the job, with SageMaker's outcome: only the other objects' output, a data log naming
the object, and the state-change events the operators' rule matches.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from o2v_core import bulk_transform
from o2v_core.events import SAGEMAKER_SOURCE, TRANSFORM_JOB_STATE_CHANGE, transform_job_finished_pattern
from o2v_core.resource_names import (
    OUTPUT_DATASET_BUCKET,
    OUTPUT_ENDPOINT_NAME,
    TRANSFORM_JOB_LOG_GROUP,
    data_stack_name,
    serving_stack_name,
)

from local_aws import procs
from local_aws.services import LocalServices
from tests.training.conftest import manifest_hyperparameters
from training import cli
from training.bulk.corpus import Corpus
from training.bulk.transform import TransformOptions, TransformTarget, run_transform

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
ENDPOINT = "o2v-dev-embeddings"
SERVED_JOB = "o2v-dev--sts-a1"
SENTENCES = ["A man is playing a flute.", "A man plays the flute.", "A plane is taking off.",
             "Two dogs run on the grass.", "A woman is slicing an onion.", "The cat sleeps.", "Someone is cooking."]


class Local:
    def __init__(self, services: LocalServices) -> None:
        self.env = services.environment({})

    def client(self, service: str) -> Any:
        variable = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
        return boto3.client(service, endpoint_url=self.env.get(variable, self.env["AWS_ENDPOINT_URL"]),  # type: ignore[call-overload]
                            region_name=self.env["AWS_DEFAULT_REGION"], aws_access_key_id="testing",
                            aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, served_model: Path, stsb_dataset: Path) -> Iterator[Local]:
    """Local mode with an endpoint serving ``served_model``, whose training job's auxiliary channel
    holds the vocabulary (a job that failed while downloading: DescribeTrainingJob still answers
    with its channels and hyperparameters, which is all the vocabulary lookup reads)."""
    services = LocalServices(tmp_path_factory.mktemp("local-transform"))
    services.start()
    groups = services.process_groups()
    try:
        local = Local(services)
        s3, sagemaker = local.client("s3"), local.client("sagemaker")
        s3.create_bucket(Bucket="data")
        for name in ("vocab.json", "tokenizer.json"):
            s3.upload_file(str(stsb_dataset / "auxiliary" / name), "data", f"datasets/sts/auxiliary/{name}")
        artifact = f"training-jobs/{SERVED_JOB}/output/model.tar.gz"
        s3.upload_file(str(served_model), "data", artifact)
        hyperparameters = {key: str(value) for key, value in manifest_hyperparameters(stsb_dataset).items()}
        sagemaker.create_training_job(
            TrainingJobName=SERVED_JOB, HyperParameters=hyperparameters,
            AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
            RoleArn="arn:aws:iam::123456789012:role/training",
            InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://data/empty/"}}},
                {"ChannelName": "auxiliary", "DataSource": {"S3DataSource": {
                    "S3DataType": "S3Prefix", "S3Uri": "s3://data/datasets/sts/auxiliary/"}}}],
            OutputDataConfig={"S3OutputPath": "s3://data/training-jobs/"},
            ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            StoppingCondition={"MaxRuntimeInSeconds": 600})
        sagemaker.create_model(ModelName="o2v-dev-model-1", ExecutionRoleArn="arn:aws:iam::123456789012:role/model",
                               PrimaryContainer={"Image": IMAGE, "ModelDataUrl": f"s3://data/{artifact}",
                                                 "Environment": {"INFERENCE_PREFERRED_MODE": "embedding"}})
        sagemaker.create_endpoint_config(EndpointConfigName="o2v-dev-config-1", ProductionVariants=[{
            "VariantName": "AllTraffic", "ModelName": "o2v-dev-model-1", "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}], Tags=[{"Key": "o2v:training-job", "Value": SERVED_JOB}])
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="o2v-dev-config-1")
        deadline = time.monotonic() + 120
        while sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
            assert time.monotonic() < deadline, "the endpoint never came into service"
            time.sleep(0.5)
        yield local
    finally:
        services.stop()
        assert [group for group in groups if procs.group_alive(group)] == []


def queue_for(local: Local, pattern: dict[str, Any], name: str) -> str:
    sqs, events = local.client("sqs"), local.client("events")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, Targets=[{"Id": "q", "Arn": arn}])
    return url


def received(local: Local, url: str) -> list[dict[str, Any]]:
    """Every message the queue holds (until a 2-second wait brings none), oldest first."""
    sqs, bodies = local.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages"):
        bodies += [json.loads(message["Body"]) for message in messages]
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                                                        for index, message in enumerate(messages)])
    return sorted(bodies, key=lambda body: str(body["time"]))


def test_the_transform_job_s_output_joined_to_the_corpus_equals_the_endpoint_s_embeddings(
        local: Local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    finished = queue_for(local, transform_job_finished_pattern("o2v-dev"), "transform-finished")
    for key, value in local.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    assert cli.main(["embed", *SENTENCES, "--endpoint", ENDPOINT]) == 0  # the real-time path, as the README runs it
    realtime = [json.loads(line)["embedding"] for line in capsys.readouterr().out.splitlines()]

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    # The command as the README shows it: the stacks' outputs name the bucket (a stand-in stack here).
    cloudformation = local.client("cloudformation")
    for stack, outputs in ((data_stack_name("o2v-dev"), {OUTPUT_DATASET_BUCKET: "data"}),
                           (serving_stack_name("o2v-dev"), {OUTPUT_ENDPOINT_NAME: ENDPOINT})):
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps({
            "Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
            "Outputs": {key: {"Value": value} for key, value in outputs.items()}}))
    out = tmp_path / "embeddings.jsonl"
    assert cli.main(["embed", "--corpus", str(corpus), "--out", str(out), "--endpoint", ENDPOINT,
                     "--deployment", "o2v-dev", "--instance-count", "2"]) == 0
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["text"] for line in lines] == SENTENCES
    for mine, theirs in zip((line["embedding"] for line in lines), realtime, strict=True):
        assert mine == pytest.approx(theirs, abs=1e-5)
    assert cli.main(["embed", "--corpus", str(corpus), "--out", str(out), "--endpoint", ENDPOINT,
                     "--deployment", "o2v-dev"]) == 2  # an existing output is refused before a job starts
    assert "already exists" in capsys.readouterr().err

    # Several input objects over two instances (the library call, with small objects).
    written: list[dict[str, Any]] = []
    sagemaker, s3 = local.client("sagemaker"), local.client("s3")
    job = run_transform(sagemaker, s3, Corpus.open(str(corpus), s3=s3), TransformTarget("o2v-dev", "data"),
                        endpoint=ENDPOINT, write=lambda lines: written.extend(lines), job_name="o2v-dev--embed-1",
                        options=TransformOptions(instance_count=2, records_per_object=3, poll_seconds=0.5))

    assert [line["text"] for line in written] == SENTENCES
    for mine, theirs in zip((line["embedding"] for line in written), realtime, strict=True):
        assert mine == pytest.approx(theirs, abs=1e-5)
    outputs = s3.list_objects_v2(Bucket="data", Prefix=f"{bulk_transform.BULK_OUTPUT_PREFIX}{job}/")["Contents"]
    assert sorted(item["Key"].rsplit("/", 1)[-1] for item in outputs) == [
        "part-00000.jsonl.out", "part-00001.jsonl.out", "part-00002.jsonl.out"]  # 7 sentences, 3 per part
    # Two instances, each with its own server and logs (objects dealt by key).
    streams = local.client("logs").describe_log_streams(logGroupName=TRANSFORM_JOB_LOG_GROUP,
                                                        logStreamNamePrefix=f"{job}/")["logStreams"]
    assert len([stream for stream in streams if stream["logStreamName"].endswith("/data-log")]) == 2
    events = received(local, finished)
    assert [event["detail"]["TransformJobStatus"] for event in events] == ["Completed", "Completed"]
    assert events[0]["detail-type"] == TRANSFORM_JOB_STATE_CHANGE and events[0]["source"] == SAGEMAKER_SOURCE


def test_a_record_the_server_rejects_fails_the_job_and_only_the_other_objects_have_output(local: Local) -> None:
    everything = queue_for(local, {"source": [SAGEMAKER_SOURCE], "detail-type": [TRANSFORM_JOB_STATE_CHANGE]},
                           "transform-changes")
    s3, sagemaker = local.client("s3"), local.client("sagemaker")
    s3.put_object(Bucket="data", Key="bad/input/a.jsonl", Body=b'{"in0": [5, 6, 7]}\n{"in0": [8]}\n')
    s3.put_object(Bucket="data", Key="bad/input/b.jsonl", Body=b'{"in0": [5, 6]}\n{"in0": "not ids"}\n')
    name = "o2v-dev--embed-bad"
    arn = sagemaker.create_transform_job(
        TransformJobName=name, ModelName="o2v-dev-model-1", BatchStrategy="SingleRecord",
        Environment={"INFERENCE_PREFERRED_MODE": "embedding"},
        TransformInput={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://data/bad/input/"}},
                        "ContentType": "application/jsonlines", "SplitType": "Line"},
        TransformOutput={"S3OutputPath": "s3://data/bad/output/", "Accept": "application/jsonlines",
                         "AssembleWith": "Line"},
        TransformResources={"InstanceType": "ml.c5.xlarge", "InstanceCount": 1},
        Tags=[{"Key": "o2v:deployment", "Value": "o2v-dev"}])["TransformJobArn"]
    deadline = time.monotonic() + 120
    while (described := sagemaker.describe_transform_job(TransformJobName=name))["TransformJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.5)

    assert described["TransformJobStatus"] == "Failed"
    assert described["FailureReason"] == "ClientError: See job logs for more information"
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="data", Prefix="bad/output/").get("Contents", [])]
    assert keys == ["bad/output/a.jsonl.out"]  # "uploads only the output for successfully processed objects"
    lines = s3.get_object(Bucket="data", Key=keys[0])["Body"].read().decode().splitlines()
    assert [len(json.loads(line)["embeddings"]) for line in lines] == [24, 24]  # enc_dim of served_model
    logs = local.client("logs")
    stream = next(item["logStreamName"] for item in logs.describe_log_streams(
        logGroupName=TRANSFORM_JOB_LOG_GROUP, logStreamNamePrefix=f"{name}/")["logStreams"]
        if item["logStreamName"].endswith("/data-log"))
    deadline = time.monotonic() + 10
    text = ""
    while "ClientError: 400" not in text and time.monotonic() < deadline:
        time.sleep(0.3)
        text = "\n".join(event["message"] for event in logs.get_log_events(
            logGroupName=TRANSFORM_JOB_LOG_GROUP, logStreamName=stream)["events"])
    assert "data/bad/input/b.jsonl: ClientError: 400" in text
    events = received(local, everything)
    assert [event["detail"]["TransformJobStatus"] for event in events] == ["InProgress", "Failed"]
    last = events[-1]
    assert last["resources"] == [arn]
    assert last["detail"]["FailureReason"] == described["FailureReason"]
    assert last["detail"]["Tags"] == {"o2v:deployment": "o2v-dev"}
    assert last["detail"]["CreationTime"].endswith("Z")  # ISO 8601, as the documented example
