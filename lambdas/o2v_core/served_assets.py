"""Where a served model's vocabulary lives, found from the training job alone.

Object2Vec tokenizes nothing itself: callers send token ids, so whoever embeds text needs the
vocabulary the model was trained with. SageMaker's built-in Object2Vec reads it from the job's
``auxiliary`` channel (reference section 2 and 10: the vocabulary files for pretrained embeddings
are given "in the auxiliary channel"; `o2v launch` always sends the dataset's ``auxiliary/``
prefix, which holds ``vocab.json`` and ``tokenizer.json`` from `o2v prepare`). So the job's own
DescribeTrainingJob answer names the vocabulary; no tag has to be set at launch. The promoter
records it with the served model, and `o2v embed --endpoint NAME` follows the same path from the
endpoint name.

Stdlib only: the promoter (Lambda) and the CLI both import it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

AUXILIARY_CHANNEL = "auxiliary"
VOCAB_FILE = "vocab.json"  # training.data.vocab.VOCAB_FILE; checked equal by tests/training/test_embed_endpoint.py
TOKENIZER_FILE = "tokenizer.json"  # training.data.tokenizer.TOKENIZER_FILE; same check
# The promoter's tags on the endpoint configs and models it creates (control_plane.logic.promotion).
TAG_TRAINING_JOB = "o2v:training-job"
TAG_VOCAB = "o2v:vocab"  # on the served model: the S3 URI of the job's vocab.json


def auxiliary_prefix(description: Mapping[str, Any]) -> str | None:
    """The S3 prefix of the job's ``auxiliary`` channel, ending in '/', or None without one."""
    for channel in description.get("InputDataConfig") or []:
        if channel.get("ChannelName") != AUXILIARY_CHANNEL:
            continue
        uri = str(((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri") or "")
        if uri.startswith("s3://"):
            return uri if uri.endswith("/") else uri + "/"
    return None


def vocab_uri(description: Mapping[str, Any]) -> str | None:
    """The S3 URI of the vocabulary a training job was trained with (its auxiliary channel)."""
    prefix = auxiliary_prefix(description)
    return prefix + VOCAB_FILE if prefix else None


def job_name_from_artifact(model_data_url: str) -> str | None:
    """The training job whose output a model.tar.gz URI is, by SageMaker's output layout
    ``{S3OutputPath}/{TrainingJobName}/output/model.tar.gz`` (DescribeTrainingJob's
    ModelArtifacts.S3ModelArtifacts; "Amazon SageMaker stores model artifacts ... in the S3 location
    that you specify in OutputDataConfig", docs.aws.amazon.com/sagemaker/latest/dg/how-it-works-training.html).
    A guess from the layout only: callers confirm it by describing that job and comparing its
    S3ModelArtifacts with the URI."""
    parts = model_data_url.rstrip("/").split("/")
    if len(parts) < 4 or parts[-1] != "model.tar.gz" or parts[-2] != "output":
        return None
    return parts[-3] or None


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty. ValueError for anything else."""
    match = re.fullmatch(r"s3://([^/]+)/?(.*)", uri)
    if not match:
        raise ValueError(f"{uri!r} is not an s3:// URI")
    return match.group(1), match.group(2)
