"""``o2v embed --corpus ... --endpoint NAME | --training-job NAME``: the corpus through SageMaker Batch Transform.

1. **The model.** ``--endpoint``: the model its variant serves, and the vocabulary the way ``o2v
   embed --endpoint`` finds it (training/serving/endpoint_assets.py: the served training job's
   auxiliary channel). ``--training-job``: a new SageMaker model from the job's
   ``ModelArtifacts.S3ModelArtifacts``, the serving image and the serving stack's model role
   (CreateModel), and the job's own vocabulary.
2. **The input.** The corpus (training/bulk/corpus.py) is tokenized with ``o2v embed``'s own
   tokenizer into Object2Vec request lines, ``{"in0": [ids]}`` (reference 4b), written as objects of
   :data:`~o2v_core.bulk_transform.RECORDS_PER_OBJECT` lines under
   ``s3://<dataset bucket>/bulk-embeddings/input/<job>/`` (so several instances share the work: SageMaker
   deals input objects to instances). A sentence with no known token gets no request line; the
   local record index (one small JSON line per record, on disk, so memory stays flat) keeps its
   place and its documented outcome.
3. **The job.** CreateTransformJob with the documented Object2Vec embedding settings and this
   project's defaults (o2v_core/bulk_transform.py says how they are sized), then
   DescribeTransformJob until it ends, with progress (parts written so far, elapsed time).
4. **The join.** Each ``part-NNNNN.jsonl.out`` holds one ``{"embeddings": [...]}`` line per request
   line, in order (``AssembleWith`` ``Line``; blank lines are skipped, a count that differs is an
   error): :func:`joined_lines` yields one output line per corpus record, in input order.

A job that does not complete raises :class:`TransformError` naming the job, SageMaker's
``FailureReason``, the input parts that have no output (their S3 URIs and the corpus lines they
hold) and the job's log group; nothing is yielded, so nothing partial is written as complete.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core import bulk_transform as defaults
from o2v_core.resource_names import (
    OUTPUT_DATA_KEY,
    OUTPUT_DATASET_BUCKET,
    OUTPUT_MODEL_ROLE,
    OUTPUT_SERVING_IMAGE,
    TRANSFORM_JOB_LOG_GROUP,
    data_stack_name,
    serving_stack_name,
)

from training.bulk.corpus import NO_KNOWN_TOKEN, Corpus, corpus_encoder, record_key, record_token_ids
from training.bulk.output import PartedOutput
from training.progress import Progress
from training.serving.endpoint_assets import EndpointAssets, EndpointAssetsError, job_assets, served_job, served_model

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

FINISHED = ("Completed", "Failed", "Stopped")  # TransformJobStatus (botocore's service model)


class TransformError(RuntimeError):
    """The transform job could not run or did not complete; the message says where and what to read."""


@dataclass(frozen=True)
class TransformTarget:
    """Where the job's data goes and what a new model needs (the deployed stacks' outputs)."""

    deployment: str
    bucket: str  # the dataset bucket
    kms_key_arn: str | None = None  # the data key: the job encrypts its output with it
    model_role_arn: str | None = None  # --training-job: the serving stack's model role
    image_uri: str | None = None  # --training-job: the serving stack's Object2Vec image


@dataclass(frozen=True)
class TransformOptions:
    instance_type: str = defaults.DEFAULT_INSTANCE_TYPE
    instance_count: int = defaults.DEFAULT_INSTANCE_COUNT
    records_per_object: int = defaults.RECORDS_PER_OBJECT
    poll_seconds: float = 30.0
    side: str = "in0"


@dataclass
class Part:
    """One input object: its S3 URI and the corpus lines it holds (for messages)."""

    uri: str
    requests: int = 0
    first: str = ""
    last: str = ""


@dataclass
class PreparedInput:
    job: str
    input_uri: str
    output_uri: str
    index: Path  # one JSON line per record: [record key, part number or -1 (no known token)]
    parts: list[Part] = field(default_factory=list)
    records: int = 0


def resolve_model(sagemaker: SageMakerClient, s3: S3Client, *, endpoint: str | None, training_job: str | None,
                  target: TransformTarget, job: str) -> tuple[str, EndpointAssets]:
    """(the SageMaker model the job runs, the vocabulary and hyperparameters it was trained with)."""
    try:
        if endpoint:
            model = served_model(sagemaker, endpoint)
            return model, job_assets(sagemaker, s3, served_job(sagemaker, endpoint), served_by=endpoint)
        if not training_job:
            raise TransformError("a transform job needs --endpoint NAME or --training-job NAME")
        assets = job_assets(sagemaker, s3, training_job)
    except EndpointAssetsError as error:
        raise TransformError(str(error)) from None
    role, image = target.model_role_arn, target.image_uri
    if not role or not image:
        raise TransformError("--training-job needs the serving stack's model role and image (deploy the "
                             "serving stack, or pass --endpoint)")
    artifact = sagemaker.describe_training_job(TrainingJobName=training_job).get("ModelArtifacts", {})
    url = artifact.get("S3ModelArtifacts")
    if not url:
        raise TransformError(f"training job {training_job} has no model artifact")
    model = job  # one model per transform job, named after it (CreateModel's name pattern is the job's)
    _aws(f"CreateModel({model})", lambda: sagemaker.create_model(
        ModelName=model, ExecutionRoleArn=role,
        PrimaryContainer={"Image": image, "ModelDataUrl": str(url), "Environment": dict(defaults.ENVIRONMENT)},
        Tags=[{"Key": "o2v:deployment", "Value": target.deployment},
              {"Key": "o2v:training-job", "Value": training_job}]))
    return model, assets


def prepare_input(s3: S3Client, corpus: Corpus, assets: EndpointAssets, target: TransformTarget, job: str,
                  workdir: Path, options: TransformOptions, progress: Progress) -> PreparedInput:
    """Tokenize the corpus into request objects under the job's input prefix; index every record."""
    vocab_size, max_seq_len = assets.encoder_limits(options.side)
    encoder = corpus_encoder(assets.vocab, assets.tokenizer, vocab_size, max_seq_len, where=f"the model of {job}")
    input_key = f"{defaults.BULK_INPUT_PREFIX}{job}/"
    prepared = PreparedInput(job, f"s3://{target.bucket}/{input_key}",
                             f"s3://{target.bucket}/{defaults.BULK_OUTPUT_PREFIX}{job}/", workdir / "index.jsonl")
    lines: list[bytes] = []

    def flush() -> None:
        part = prepared.parts[-1]
        extra = {"SSEKMSKeyId": target.kms_key_arn, "ServerSideEncryption": "aws:kms"} if target.kms_key_arn else {}
        key = part.uri.split("/", 3)[3]
        _aws(f"PutObject({part.uri})", lambda: s3.put_object(Bucket=target.bucket, Key=key, Body=b"".join(lines),
                                                            **extra))  # type: ignore[arg-type]
        lines.clear()

    with prepared.index.open("w", encoding="utf-8") as index:
        for record in corpus.records():
            prepared.records += 1
            ids = record_token_ids(encoder, record)
            if ids is None:
                index.write(json.dumps([record_key(record), -1]) + "\n")
                continue
            if not prepared.parts or prepared.parts[-1].requests >= options.records_per_object:
                if lines:
                    flush()
                uri = f"s3://{target.bucket}/{input_key}{defaults.part_name(len(prepared.parts))}"
                prepared.parts.append(Part(uri, first=f"{record.source}:{record.line}"))
            part = prepared.parts[-1]
            part.requests += 1
            part.last = f"{record.source}:{record.line}"
            lines.append(json.dumps({options.side: ids}).encode() + b"\n")
            index.write(json.dumps([record_key(record), len(prepared.parts) - 1]) + "\n")
            progress.update(f"tokenized {prepared.records} sentences into {len(prepared.parts)} part(s)")
    if lines:
        flush()
    progress.update(f"tokenized {prepared.records} sentences into {len(prepared.parts)} part(s) under "
                    f"{prepared.input_uri}", force=True)
    return prepared


def transform_request(prepared: PreparedInput, model: str, target: TransformTarget,
                      options: TransformOptions) -> dict[str, Any]:
    """CreateTransformJob's request: the documented Object2Vec embedding transform (reference 4b, 11g)."""
    output: dict[str, Any] = {"S3OutputPath": prepared.output_uri, "Accept": defaults.JSON_LINES,
                              "AssembleWith": "Line"}
    if target.kms_key_arn:
        output["KmsKeyId"] = target.kms_key_arn
    return {
        "TransformJobName": prepared.job,
        "ModelName": model,
        "MaxConcurrentTransforms": defaults.MAX_CONCURRENT_TRANSFORMS,
        "MaxPayloadInMB": defaults.MAX_PAYLOAD_MB,
        "BatchStrategy": defaults.BATCH_STRATEGY,
        "Environment": dict(defaults.ENVIRONMENT),
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": prepared.input_uri}},
            "ContentType": defaults.JSON_LINES,
            "SplitType": "Line",
        },
        "TransformOutput": output,
        "TransformResources": {"InstanceType": options.instance_type, "InstanceCount": options.instance_count},
        "Tags": [{"Key": "o2v:deployment", "Value": target.deployment}],
    }


def wait(sagemaker: SageMakerClient, s3: S3Client, prepared: PreparedInput, options: TransformOptions,
         progress: Progress, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """DescribeTransformJob until the job ends; progress names the parts whose output exists. Polls
    after 1, 2, 4, ... seconds, then every ``poll_seconds``: a short job is seen ending soon, a long one
    costs few calls."""
    started = time.monotonic()
    delay = 1.0
    while True:
        described: dict[str, Any] = _aws(f"DescribeTransformJob({prepared.job})", lambda: dict(
            sagemaker.describe_transform_job(TransformJobName=prepared.job)))
        status = described["TransformJobStatus"]
        done = len(_outputs(s3, prepared))
        progress.update(f"{prepared.job}: {status}, {done}/{len(prepared.parts)} part(s) written, "
                        f"{time.monotonic() - started:.0f} s", force=status in FINISHED)
        if status in FINISHED:
            return described
        sleep(delay)
        delay = min(delay * 2, options.poll_seconds)


def _outputs(s3: S3Client, prepared: PreparedInput) -> dict[str, str]:
    """The output objects that exist: input part name -> output key."""
    bucket, prefix = prepared.output_uri[len("s3://"):].split("/", 1)
    found: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if name.endswith(defaults.OUTPUT_SUFFIX):
                found[name[: -len(defaults.OUTPUT_SUFFIX)]] = item["Key"]
    return found


def failure_message(described: dict[str, Any], prepared: PreparedInput, outputs: dict[str, str]) -> str:
    """What a user needs after a job that did not complete: why, which records, where the logs are."""
    status = described["TransformJobStatus"]
    missing = [part for part in prepared.parts if part.uri.rsplit("/", 1)[-1] not in outputs]
    lines = [f"transform job {prepared.job} {status.lower()}: {described.get('FailureReason') or status}",
             f"{len(missing)} of {len(prepared.parts)} input part(s) have no output, so no embedding was written:"]
    lines += [f"  {part.uri} ({part.requests} sentences, {part.first} to {part.last})" for part in missing[:20]]
    if len(missing) > 20:
        lines.append(f"  ... and {len(missing) - 20} more under {prepared.input_uri}")
    lines.append(f"the job's logs: CloudWatch Logs group {TRANSFORM_JOB_LOG_GROUP}, streams {prepared.job}/* "
                 "(data-log streams name each failed object and the container's message)")
    return "\n".join(lines)


def joined_lines(s3: S3Client, prepared: PreparedInput, outputs: dict[str, str]) -> Iterator[dict[str, Any]]:
    """One output line per corpus record, in input order: the record's key and its embedding."""
    bucket = prepared.output_uri[len("s3://"):].split("/", 1)[0]
    current: tuple[int, Iterator[bytes]] | None = None
    with prepared.index.open(encoding="utf-8") as index:
        for number, raw in enumerate(index, start=1):
            key, part_number = json.loads(raw)
            if part_number < 0:
                yield {**key, "embedding": None, "error": NO_KNOWN_TOKEN}
                continue
            if current is None or current[0] != part_number:
                if current is not None:
                    _expect_end(current[1], prepared.parts[current[0]])
                part = prepared.parts[part_number]
                body = s3.get_object(Bucket=bucket, Key=outputs[part.uri.rsplit("/", 1)[-1]])["Body"]
                current = (part_number, (line for line in body.iter_lines() if line.strip()))
            line = next(current[1], None)
            if line is None:
                raise TransformError(f"{prepared.parts[part_number].uri}{defaults.OUTPUT_SUFFIX} ends before "
                                     f"record {number}: fewer embeddings than request lines")
            yield {**key, "embedding": _embedding(line, prepared.parts[part_number].uri)}
    if current is not None:
        _expect_end(current[1], prepared.parts[current[0]])


def _expect_end(lines: Iterator[bytes], part: Part) -> None:
    if next(lines, None) is not None:
        raise TransformError(f"{part.uri}{defaults.OUTPUT_SUFFIX} has more embeddings than its "
                             f"{part.requests} request lines")


def _embedding(line: bytes, uri: str) -> list[float]:
    try:
        value = json.loads(line)["embeddings"]
    except (ValueError, KeyError, TypeError):
        raise TransformError(f"{uri}{defaults.OUTPUT_SUFFIX}: not an embeddings line: {line[:200]!r}") from None
    if not isinstance(value, list):
        raise TransformError(f"{uri}{defaults.OUTPUT_SUFFIX}: 'embeddings' is not a list")
    return value


def target_from_stacks(cloudformation: CloudFormationClient, deployment: str) -> TransformTarget:
    """The dataset bucket and data key (data stack), and the model role and image (serving stack)."""
    from training.launcher.stack import StackError, raw_outputs

    try:
        data = raw_outputs(cloudformation, data_stack_name(deployment))
        serving = raw_outputs(cloudformation, serving_stack_name(deployment))
    except StackError as error:
        raise TransformError(f"{error} (deploy the stacks of {deployment} first)") from None
    if not data.get(OUTPUT_DATASET_BUCKET):
        raise TransformError(f"stack {data_stack_name(deployment)} has no output {OUTPUT_DATASET_BUCKET}")
    return TransformTarget(deployment, data[OUTPUT_DATASET_BUCKET], data.get(OUTPUT_DATA_KEY) or None,
                           serving.get(OUTPUT_MODEL_ROLE) or None, serving.get(OUTPUT_SERVING_IMAGE) or None)


def write_parts(output: PartedOutput, lines: Iterator[dict[str, Any]], part_records: int) -> int:
    """The joined lines through ``o2v embed --corpus``'s writer (training/bulk/output.py): parts of
    ``part_records`` lines, then one atomic publish. Returns the number of lines."""
    count = 0
    index = 0
    while True:
        chunk = list(itertools.islice(lines, part_records))
        if not chunk:
            break
        output.write_part(index, (json.dumps(line) + "\n" for line in chunk))
        count += len(chunk)
        index += 1
    output.publish(index)
    return count


def run_transform(sagemaker: SageMakerClient, s3: S3Client, corpus: Corpus, target: TransformTarget, *,
                  write: Callable[[Iterator[dict[str, Any]]], None], endpoint: str | None = None,
                  training_job: str | None = None, options: TransformOptions | None = None,
                  stream: TextIO | None = None, job_name: str | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> str:
    """Embed ``corpus`` with a transform job; ``write`` receives the joined lines only after the job
    completed. Returns the job's name."""
    options = options or TransformOptions()
    job = job_name or defaults.transform_job_name(target.deployment)
    progress = Progress("o2v embed", stream=stream)
    model, assets = resolve_model(sagemaker, s3, endpoint=endpoint, training_job=training_job, target=target, job=job)
    with tempfile.TemporaryDirectory(prefix="o2v-transform-") as workdir:
        prepared = prepare_input(s3, corpus, assets, target, job, Path(workdir), options, progress)
        if not prepared.parts:
            write(joined_lines(s3, prepared, {}))  # no sentence with a known token: nothing to transform
            return job
        _aws(f"CreateTransformJob({job})",
             lambda: sagemaker.create_transform_job(**transform_request(prepared, model, target, options)))
        progress.update(f"started transform job {job} on {options.instance_count} x {options.instance_type}",
                        force=True)
        try:
            described = wait(sagemaker, s3, prepared, options, progress, sleep)
        except KeyboardInterrupt:
            with contextlib.suppress(ClientError, BotoCoreError):
                sagemaker.stop_transform_job(TransformJobName=job)  # an interrupted run pays for nothing more
            raise
        outputs = _outputs(s3, prepared)
        if described["TransformJobStatus"] != "Completed":
            raise TransformError(failure_message(described, prepared, outputs))
        write(joined_lines(s3, prepared, outputs))
    return job


def _aws(step: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        raise TransformError(f"{step}: {error}") from None
