"""`o2v embed --corpus ... --endpoint NAME` through SageMaker Batch Transform (training/bulk/transform.py).

Against the tests' SageMaker fake (scripted: the job moves when the test says) and moto: the
request the job is created with, the input objects, the join, and a job that fails half-way.
The same path against local mode's running servers is tests/training/test_bulk_transform_local.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from o2v_core import bulk_transform
from o2v_core.resource_names import TRANSFORM_JOB_LOG_GROUP

from tests.support import sagemaker_fake as fake
from tests.support.aws_calls import attributed_to
from training.bulk.corpus import NO_KNOWN_TOKEN, Corpus
from training.bulk.transform import TransformError, TransformOptions, TransformTarget, run_transform
from training.data.tokenizer import Tokenizer

IMAGE = "382416733822.dkr.ecr.us-east-1.amazonaws.com/object2vec:1"
VOCAB = {"<pad>": 0, "<unk>": 1, "a": 2, "man": 3, "plays": 4, "the": 5, "flute": 6}
JOB = "o2v-dev--embed-20261207-000000"
SERVED_JOB = "o2v-dev--sts-a1"


def clients(moto_endpoint: str, sagemaker_url: str) -> tuple[Any, Any]:
    common = {"region_name": fake.REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return (boto3.client("sagemaker", endpoint_url=sagemaker_url, **common),  # type: ignore[call-overload]
            boto3.client("s3", endpoint_url=moto_endpoint, **common))  # type: ignore[call-overload]


@pytest.fixture
def served(sagemaker_fake: str, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """An endpoint serving a model of a training job whose auxiliary channel holds the vocabulary.

    The CLI's calls in the tests below are recorded as the caller policy's (tests/stacks/test_iam_calls.py)."""
    monkeypatch.setenv("O2V_DEPLOYMENT", "o2v-dev")
    sagemaker, s3 = clients(moto_endpoint, sagemaker_fake)
    for bucket in ("bulk-data", "bulk-artifacts"):
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="bulk-data", Key="datasets/sts/auxiliary/vocab.json", Body=json.dumps(VOCAB).encode())
    s3.put_object(Bucket="bulk-data", Key="datasets/sts/auxiliary/tokenizer.json",
                  Body=json.dumps(Tokenizer().to_json()).encode())
    sagemaker.create_training_job(
        TrainingJobName=SERVED_JOB, AlgorithmSpecification={"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        RoleArn=f"arn:aws:iam::{fake.ACCOUNT}:role/training",
        InputDataConfig=[{"ChannelName": "auxiliary", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://bulk-data/datasets/sts/auxiliary/"}}}],
        OutputDataConfig={"S3OutputPath": "s3://bulk-artifacts/training-jobs/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 600}, HyperParameters={"enc0_max_seq_len": "10",
                                                                          "enc0_vocab_size": "7"})
    sagemaker.create_model(ModelName="o2v-dev--m-sts-a1", ExecutionRoleArn=f"arn:aws:iam::{fake.ACCOUNT}:role/model",
                           PrimaryContainer={"Image": IMAGE, "ModelDataUrl":
                                             f"s3://bulk-artifacts/training-jobs/{SERVED_JOB}/output/model.tar.gz"})
    sagemaker.create_endpoint_config(EndpointConfigName="o2v-dev--c-sts-a1", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "o2v-dev--m-sts-a1", "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large"}], Tags=[{"Key": "o2v:training-job", "Value": SERVED_JOB}])
    sagemaker.create_endpoint(EndpointName="o2v-dev-embeddings", EndpointConfigName="o2v-dev--c-sts-a1")
    fake.settle()
    yield sagemaker, s3


def as_sagemaker(work: Callable[[], None]) -> None:
    """Run what SageMaker itself does in a thread of its own: the CLI's recorded calls (the IAM check's
    attribution, a context variable) do not cross threads."""
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def corpus_file(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.txt"
    path.write_text("A man plays the flute.\nzzz qqq\nThe man plays.\nA flute.\nthe the\n", encoding="utf-8")
    return path


TARGET = TransformTarget(deployment="o2v-dev", bucket="bulk-data",
                         kms_key_arn=f"arn:aws:kms:us-east-1:{fake.ACCOUNT}:key/1234")


def test_the_job_is_created_with_the_documented_embedding_transform_and_the_corpus_in_parts(
        served: tuple[Any, Any], tmp_path: Path) -> None:
    sagemaker, s3 = served
    written: list[dict[str, Any]] = []

    def complete(seconds: float) -> None:
        as_sagemaker(finish)

    def finish() -> None:  # SageMaker finishes the job: one .out per input part
        prefix = f"{bulk_transform.BULK_INPUT_PREFIX}{JOB}/"
        for item in s3.list_objects_v2(Bucket="bulk-data", Prefix=prefix)["Contents"]:
            lines = s3.get_object(Bucket="bulk-data", Key=item["Key"])["Body"].read().splitlines()
            name = item["Key"].rsplit("/", 1)[-1]
            answers = b"".join(json.dumps({"embeddings": [float(len(json.loads(line)["in0"])), 0.5]}).encode()
                               + b"\n\n" for line in lines)  # a doubled newline: blank lines are skipped
            s3.put_object(Bucket="bulk-data", Key=f"{bulk_transform.BULK_OUTPUT_PREFIX}{JOB}/{name}.out",
                          Body=answers)
        fake.set_transform_status(JOB, "Completed")

    with attributed_to(bulk_transform.CALLER_POLICY):
        run_transform(sagemaker, s3, Corpus.open(str(corpus_file(tmp_path))), TARGET, endpoint="o2v-dev-embeddings",
                      write=lambda lines: written.extend(lines), options=TransformOptions(records_per_object=2),
                      job_name=JOB, sleep=complete)

    described = sagemaker.describe_transform_job(TransformJobName=JOB)
    assert described["ModelName"] == "o2v-dev--m-sts-a1"  # the model the endpoint serves
    assert described["Environment"] == {"INFERENCE_PREFERRED_MODE": "embedding"}  # reference 4b, 11g
    assert described["TransformInput"]["ContentType"] == "application/jsonlines"
    assert described["TransformInput"]["SplitType"] == "Line"
    assert described["TransformOutput"]["Accept"] == "application/jsonlines"
    assert described["TransformOutput"]["KmsKeyId"] == TARGET.kms_key_arn
    assert (described["BatchStrategy"], described["MaxPayloadInMB"], described["MaxConcurrentTransforms"]) == (
        "MultiRecord", 1, 2)  # reference 4d's example
    assert described["TransformResources"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 1}
    parts = s3.list_objects_v2(Bucket="bulk-data", Prefix=f"{bulk_transform.BULK_INPUT_PREFIX}{JOB}/")["Contents"]
    assert [item["Key"].rsplit("/", 1)[-1] for item in parts] == ["part-00000.jsonl", "part-00001.jsonl"]
    first = s3.get_object(Bucket="bulk-data", Key=parts[0]["Key"])["Body"].read().decode().splitlines()
    # o2v embed's tokenizer and vocabulary ("." is no token of it: <unk>, id 1); "zzz qqq" has no known token
    assert first == ['{"in0": [2, 3, 4, 5, 6, 1]}', '{"in0": [5, 3, 4, 1]}']

    assert [line.get("text") for line in written] == ["A man plays the flute.", "zzz qqq", "The man plays.",
                                                      "A flute.", "the the"]
    assert [line["embedding"] for line in written] == [[6.0, 0.5], None, [4.0, 0.5], [3.0, 0.5], [2.0, 0.5]]
    assert written[1]["error"] == NO_KNOWN_TOKEN  # a documented per-record outcome, no request line


def test_a_job_that_fails_half_way_names_the_failed_records_and_writes_nothing(
        served: tuple[Any, Any], tmp_path: Path) -> None:
    sagemaker, s3 = served
    job = JOB.replace("000000", "000001")  # moto's bucket outlives the test: a job name of its own
    written: list[dict[str, Any]] = []

    def fail(seconds: float) -> None:
        as_sagemaker(fail_half_way)

    def fail_half_way() -> None:  # the first part succeeded; the second did not (no .out)
        s3.put_object(Bucket="bulk-data", Key=f"{bulk_transform.BULK_OUTPUT_PREFIX}{job}/part-00000.jsonl.out",
                      Body=b'{"embeddings": [1.0]}\n{"embeddings": [1.0]}\n')
        fake.set_transform_status(job, "Failed", "ClientError: See job logs for more information")

    # The stack's own endpoint config has no o2v:training-job tag: the job is found through the model's URL.
    config_arn = sagemaker.describe_endpoint_config(EndpointConfigName="o2v-dev--c-sts-a1")["EndpointConfigArn"]
    sagemaker.delete_tags(ResourceArn=config_arn, TagKeys=["o2v:training-job"])
    with pytest.raises(TransformError) as raised, attributed_to(bulk_transform.CALLER_POLICY):
        run_transform(sagemaker, s3, Corpus.open(str(corpus_file(tmp_path))), TARGET, endpoint="o2v-dev-embeddings",
                      write=lambda lines: written.extend(lines), options=TransformOptions(records_per_object=2),
                      job_name=job, sleep=fail)

    message = str(raised.value)
    assert f"transform job {job} failed: ClientError: See job logs" in message
    assert f"s3://bulk-data/{bulk_transform.BULK_INPUT_PREFIX}{job}/part-00001.jsonl" in message
    assert "part-00000.jsonl (" not in message  # the part that has its output is not named
    assert f"{corpus_file(tmp_path)}:4 to {corpus_file(tmp_path)}:5" in message  # the corpus lines it held
    assert TRANSFORM_JOB_LOG_GROUP in message
    assert written == []  # nothing partial is presented as complete


def test_a_missing_vocabulary_or_model_is_named(served: tuple[Any, Any], tmp_path: Path) -> None:
    sagemaker, s3 = served
    with pytest.raises(TransformError, match="no-such-endpoint"):
        run_transform(sagemaker, s3, Corpus.open(str(corpus_file(tmp_path))), TARGET, endpoint="no-such-endpoint",
                      write=lambda lines: None, job_name=JOB)
    with pytest.raises(TransformError, match="model role and image"):
        run_transform(sagemaker, s3, Corpus.open(str(corpus_file(tmp_path))), TARGET, training_job=SERVED_JOB,
                      write=lambda lines: None, job_name=JOB)


def test_a_training_job_s_model_is_created_with_the_model_role_and_an_interrupt_stops_the_job(
        served: tuple[Any, Any], tmp_path: Path) -> None:
    sagemaker, s3 = served
    job = JOB.replace("000000", "000002")
    target = TransformTarget(deployment="o2v-dev", bucket="bulk-data", model_role_arn=f"arn:aws:iam::{fake.ACCOUNT}:"
                             "role/o2v-dev-model", image_uri=IMAGE)

    def interrupt(seconds: float) -> None:  # Ctrl-C while waiting: the job is stopped, not left running
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt), attributed_to(bulk_transform.CALLER_POLICY):
        run_transform(sagemaker, s3, Corpus.open(str(corpus_file(tmp_path))), target, training_job=SERVED_JOB,
                      write=lambda lines: None, job_name=job, sleep=interrupt)

    model = sagemaker.describe_model(ModelName=job)
    assert model["ExecutionRoleArn"] == target.model_role_arn
    assert model["PrimaryContainer"]["ModelDataUrl"] == (
        f"s3://bulk-artifacts/training-jobs/{SERVED_JOB}/output/model.tar.gz")  # the job's ModelArtifacts
    assert model["PrimaryContainer"]["Environment"] == {"INFERENCE_PREFERRED_MODE": "embedding"}
    described = sagemaker.describe_transform_job(TransformJobName=job)
    assert described["ModelName"] == job and described["TransformJobStatus"] == "Stopped"


@pytest.mark.parametrize(("arguments", "words"), [
    (["--endpoint", "o2v-dev-embeddings"], "needs --deployment"),
    (["--endpoint", "o2v-dev-embeddings", "--deployment", "o2v-dev", "--model", "model.tar.gz"], "not both"),
    (["--training-job", SERVED_JOB, "--deployment", "o2v-dev", "--instance-count", "0"], "--instance-count"),
])
def test_the_command_names_what_is_missing_before_any_aws_call(
        tmp_path: Path, arguments: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    from training import cli

    code = cli.main(["embed", "--corpus", str(corpus_file(tmp_path)), "--out", str(tmp_path / "out.jsonl"),
                     *arguments])
    assert code == 2 and words in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
