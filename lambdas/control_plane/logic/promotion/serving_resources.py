"""Names and tags of what the promoter creates: deterministic per training job, so a duplicate
event creates nothing twice, and tagged so the reconciler can rebuild the record from the endpoint."""

from __future__ import annotations

import hashlib
from typing import Literal

from o2v_core.naming import MAX_JOB_NAME, job_prefix
from o2v_core.served_assets import TAG_TRAINING_JOB

# What a promoted endpoint config serves, so the reconciler can rebuild the record from the endpoint
# (with o2v_core.served_assets.TAG_TRAINING_JOB, which `o2v embed --endpoint` reads too).
TAG_METRIC_NAME = "o2v:metric-name"
TAG_METRIC_VALUE = "o2v:metric-value"
TAG_VALIDATION_DATA = "o2v:validation-data"


def serving_name(deployment: str, job_name: str, kind: Literal["model", "config"]) -> str:
    """Deterministic model / endpoint-config name for a job: ``{deployment}-m-...`` / ``{deployment}-c-...``.

    Duplicate events for one job produce the same name, so SageMaker refuses the second create.
    Names longer than 63 characters are cut and end in 8 hex digits of the job name's SHA-256.
    """
    prefix = job_prefix(deployment)
    if not job_name.startswith(prefix):
        raise ValueError(f"training job {job_name!r} does not start with {prefix!r}")
    head = f"{prefix}{'m' if kind == 'model' else 'c'}-"
    body = job_name[len(prefix):]
    if len(head) + len(body) <= MAX_JOB_NAME:
        return head + body
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    room = MAX_JOB_NAME - len(head) - len(digest) - 1
    return f"{head}{body[:room].rstrip('-')}-{digest}"


def served_model_tags(
    job_name: str, metric_name: str, value: float, validation_data: str | None = None
) -> dict[str, str]:
    """The endpoint config's tags that let the reconciler rebuild the record from the endpoint."""
    tags = {TAG_TRAINING_JOB: job_name, TAG_METRIC_NAME: metric_name, TAG_METRIC_VALUE: repr(value)}
    if validation_data:
        tags[TAG_VALIDATION_DATA] = validation_data
    return tags
