"""``o2v prepare --upload``: put a prepared dataset into the dataset bucket.

S3 layout, read by the stacks and the launcher::

    s3://<dataset-bucket>/datasets/<name>/train/train.jsonl
    s3://<dataset-bucket>/datasets/<name>/validation/validation.jsonl
    s3://<dataset-bucket>/datasets/<name>/test/test.jsonl
    s3://<dataset-bucket>/datasets/<name>/auxiliary/vocab.json
    s3://<dataset-bucket>/datasets/<name>/auxiliary/tokenizer.json
    s3://<dataset-bucket>/datasets/<name>/manifest.json

The manifest is uploaded last, so a dataset whose manifest exists is complete.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from o2v_core.s3_layout import DATASET_PREFIX

from training.data.prepare import MANIFEST_FILE, SPLITS, load_manifest

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHANNELS = (*SPLITS, "auxiliary")
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"dataset name {name!r}: use 1-63 lowercase letters, digits, '.', '_' and '-'")
    return name


def dataset_prefix(name: str) -> str:
    return f"{DATASET_PREFIX.rstrip('/')}/{check_name(name)}"


def channel_uri(bucket: str, name: str, channel: str) -> str:
    """The S3 prefix of one channel, as a training job's InputDataConfig names it."""
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r}: allowed {', '.join(CHANNELS)}")
    return f"s3://{bucket}/{dataset_prefix(name)}/{channel}/"


def manifest_key(name: str) -> str:
    return f"{dataset_prefix(name)}/{MANIFEST_FILE}"


def upload_dataset(s3: S3Client, dataset: Path, bucket: str, name: str) -> list[str]:
    """Upload every channel file, then the manifest; return the S3 URIs written."""
    load_manifest(dataset)  # refuse anything that is not a complete prepared dataset
    prefix = dataset_prefix(name)
    written = []
    for channel in CHANNELS:
        folder = dataset / channel
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file():
                key = f"{prefix}/{channel}/{path.name}"
                s3.upload_file(str(path), bucket, key)
                written.append(f"s3://{bucket}/{key}")
    s3.upload_file(str(dataset / MANIFEST_FILE), bucket, manifest_key(name))
    written.append(f"s3://{bucket}/{manifest_key(name)}")
    return written
