"""The vocabulary and tokenizer of the model a SageMaker endpoint serves, from its name alone.

`o2v embed --endpoint NAME` needs the vocabulary the served model was trained with
(Object2Vec's inference contract takes token ids). The path, every step a documented SageMaker
answer (o2v_core.served_assets says why the auxiliary channel holds it):

  DescribeEndpoint -> EndpointConfigName
  DescribeEndpointConfig -> the variant's ModelName
  ListTags on the config: ``o2v:training-job`` (configs the promoter created), else
  DescribeModel -> ModelDataUrl -> the job by SageMaker's output layout, confirmed by
  DescribeTrainingJob's ModelArtifacts.S3ModelArtifacts (the stack's own config, deployed from a URL)
  DescribeTrainingJob -> the ``auxiliary`` channel's S3 prefix and the encoder's hyperparameters
  S3 GetObject -> ``vocab.json`` (required) and ``tokenizer.json`` (optional)

Every step that finds nothing raises :class:`EndpointAssetsError` naming the step and what to pass
instead (``--vocab``). The same calls run against local mode's SageMaker API and moto.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from o2v_core.served_assets import (
    TAG_TRAINING_JOB,
    TOKENIZER_FILE,
    auxiliary_prefix,
    job_name_from_artifact,
    split_s3_uri,
)

from training.data.tokenizer import Tokenizer
from training.data.vocab import VOCAB_FILE, Vocab

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient


class EndpointAssetsError(Exception):
    """The served model's vocabulary could not be found; the message names the step."""


@dataclass(frozen=True)
class EndpointAssets:
    training_job: str
    vocab_uri: str
    vocab: Vocab
    tokenizer: Tokenizer | None
    hyperparameters: dict[str, str]

    def encoder_limits(self, side: str) -> tuple[int | None, int | None]:
        """(vocab_size, max_seq_len) of encoder ``in0``/``in1``; enc1 inherits enc0's (reference 10e)."""
        def number(key: str) -> int | None:
            value = self.hyperparameters.get(key)
            return int(value) if value is not None and value.isdigit() else None

        prefix = "enc1" if side == "in1" and self.hyperparameters.get("enc1_network", "enc0") != "enc0" else "enc0"
        return number(f"{prefix}_vocab_size"), number(f"{prefix}_max_seq_len")


def _served_config(sagemaker: SageMakerClient, endpoint: str) -> Any:
    described = _call(f"DescribeEndpoint({endpoint})", lambda: sagemaker.describe_endpoint(EndpointName=endpoint))
    config_name = described["EndpointConfigName"]
    return _call(f"DescribeEndpointConfig({config_name})",
                 lambda: sagemaker.describe_endpoint_config(EndpointConfigName=config_name))


def served_model(sagemaker: SageMakerClient, endpoint: str) -> str:
    """The SageMaker model the endpoint's variant serves (a batch transform job runs the same model)."""
    config = _served_config(sagemaker, endpoint)
    variants = config.get("ProductionVariants") or []
    if not variants:
        raise EndpointAssetsError(f"endpoint config {config['EndpointConfigName']} has no production variant")
    return str(variants[0]["ModelName"])


def served_job(sagemaker: SageMakerClient, endpoint: str) -> str:
    """The training job whose model the endpoint serves."""
    config = _served_config(sagemaker, endpoint)
    config_name = config["EndpointConfigName"]
    tags = _call(f"ListTags({config_name})", lambda: sagemaker.list_tags(ResourceArn=config["EndpointConfigArn"]))
    for tag in tags.get("Tags", []):
        if tag.get("Key") == TAG_TRAINING_JOB and tag.get("Value"):
            return str(tag["Value"])
    variants = config.get("ProductionVariants") or []
    if not variants:
        raise EndpointAssetsError(f"endpoint config {config_name} has no production variant")
    model_name = variants[0]["ModelName"]
    model = _call(f"DescribeModel({model_name})", lambda: sagemaker.describe_model(ModelName=model_name))
    url = str((model.get("PrimaryContainer") or {}).get("ModelDataUrl") or "")
    job = job_name_from_artifact(url)
    if job is not None:
        described_job = _optional(lambda: sagemaker.describe_training_job(TrainingJobName=job))
        if described_job is not None and described_job.get("ModelArtifacts", {}).get("S3ModelArtifacts") == url:
            return job
    raise EndpointAssetsError(
        f"endpoint {endpoint} serves {url or 'a model without ModelDataUrl'}, which is no training job's output "
        "that this account describes: pass --vocab (and --tokenizer)"
    )


def endpoint_assets(sagemaker: SageMakerClient, s3: S3Client, endpoint: str) -> EndpointAssets:
    return job_assets(sagemaker, s3, served_job(sagemaker, endpoint), served_by=endpoint)


def job_assets(sagemaker: SageMakerClient, s3: S3Client, job: str, *, served_by: str | None = None) -> EndpointAssets:
    """The vocabulary, tokenizer and hyperparameters of training job ``job`` (its auxiliary channel)."""
    description = _call(f"DescribeTrainingJob({job})", lambda: sagemaker.describe_training_job(TrainingJobName=job))
    prefix = auxiliary_prefix(description)
    if prefix is None:
        where = f" (served by {served_by})" if served_by else ""
        raise EndpointAssetsError(
            f"training job {job}{where} has no auxiliary channel, so no vocabulary: pass --vocab"
        )
    vocab_text = _read(s3, prefix + VOCAB_FILE)
    if vocab_text is None:
        raise EndpointAssetsError(f"{prefix}{VOCAB_FILE} (training job {job}'s auxiliary channel) does not exist")
    tokenizer_text = _read(s3, prefix + TOKENIZER_FILE)
    try:
        vocab = Vocab.from_json(json.loads(vocab_text), where=prefix + VOCAB_FILE)
        tokenizer = (Tokenizer.from_json(json.loads(tokenizer_text), where=prefix + TOKENIZER_FILE)
                     if tokenizer_text is not None else None)
    except (ValueError, TypeError, KeyError) as error:
        raise EndpointAssetsError(f"{prefix}: unreadable vocabulary or tokenizer: {error}") from None
    hyperparameters = {str(k): str(v) for k, v in (description.get("HyperParameters") or {}).items()}
    return EndpointAssets(job, prefix + VOCAB_FILE, vocab, tokenizer, hyperparameters)


def _read(s3: S3Client, uri: str) -> str | None:
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
            return None
        raise EndpointAssetsError(f"GetObject {uri}: {error}") from None
    except BotoCoreError as error:
        raise EndpointAssetsError(f"GetObject {uri}: {error}") from None
    return bytes(body).decode("utf-8")


def _call(step: str, call: Any) -> Any:
    try:
        return call()
    except (ClientError, BotoCoreError) as error:
        raise EndpointAssetsError(f"{step}: {error}") from None


def _optional(call: Any) -> Any:
    try:
        return call()
    except ClientError:
        return None
