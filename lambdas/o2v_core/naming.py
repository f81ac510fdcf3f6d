"""Training-job names and lineage tags, defined once.

A lineage is one user request ("train a model on this data") and its retrain attempts.
Attempt ``n`` of lineage ``L`` in deployment ``D`` is always named ``{prefix}{L}-a{n}``, so a
relaunch of the same attempt collides with the existing job (``ResourceInUse``) instead of
starting a second one.

The prefix is ``D--``: the deployment name, then :data:`PREFIX_SEPARATOR`, which no deployment
name and no lineage id contains. So no deployment's prefix starts another's jobs: ``o2v--``
does not match ``o2v-dev--...`` (with a plain ``-``, deployment ``o2v``'s prefix ``o2v-`` would
cover every job of ``o2v-dev``; reference section 10f). The rules' ``prefix`` patterns, the IAM
ARN wildcards and the monitor's name filter all use this one prefix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# SageMaker's TrainingJobName: 1-63 chars, ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (botocore's sagemaker
# service-2 model, shape TrainingJobName). Its ``-*`` is what allows the ``--`` of PREFIX_SEPARATOR.
JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_JOB_NAME = 63

TAG_DEPLOYMENT = "o2v:deployment"
TAG_LINEAGE = "o2v:lineage"
TAG_ATTEMPT = "o2v:attempt"
TAG_PARENT = "o2v:parent"
LINEAGE_TAG_KEYS = (TAG_DEPLOYMENT, TAG_LINEAGE, TAG_ATTEMPT, TAG_PARENT)
# Model tags, set by the launcher on attempt 1 and copied to every later attempt.
TAG_BEST_EPOCH_ARTIFACT = "o2v:artifact-holds-best-epoch"  # "true": model.tar.gz holds the best epoch
# `o2v verify`: the run that created a resource (training jobs inherit it from attempt 1, as the
# retrain launcher copies the parent's other tags), so a later run finds and removes the leftovers.
TAG_VERIFY_RUN = "o2v:verify-run"

# Object2Vec's inference container serves encoder embeddings preferentially in this mode
# (shared/reference/object2vec.md section 4d); the serving stack and the promoter both set it.
INFERENCE_ENVIRONMENT = {"INFERENCE_PREFERRED_MODE": "embedding"}


class NamingError(ValueError):
    """A deployment, lineage or job name does not fit the naming scheme."""


PREFIX_SEPARATOR = "--"


def job_prefix(deployment: str) -> str:
    """Every training job of a deployment starts with this prefix (IAM and rules scope on it)."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?", deployment) or PREFIX_SEPARATOR in deployment:
        raise NamingError(
            f"deployment name {deployment!r}: use 1-24 lowercase letters, digits and single inner hyphens "
            f"({PREFIX_SEPARATOR!r} is reserved: it ends the job-name prefix)"
        )
    return f"{deployment}{PREFIX_SEPARATOR}"


def sanitize_lineage(raw: str) -> str:
    """Turn any user text into a lineage id usable inside a job name."""
    cleaned = re.sub(r"[^a-zA-Z0-9]+", "-", raw).strip("-").lower()
    if not cleaned:
        raise NamingError(f"lineage {raw!r} has no letters or digits")
    return cleaned


def job_name(deployment: str, lineage: str, attempt: int) -> str:
    """The deterministic name of ``attempt`` (1-based) of ``lineage``; at most 63 characters."""
    if attempt < 1:
        raise NamingError(f"attempt must be >= 1, got {attempt}")
    prefix = job_prefix(deployment)
    suffix = f"-a{attempt}"
    room = MAX_JOB_NAME - len(prefix) - len(suffix)
    body = sanitize_lineage(lineage)[:room].rstrip("-")
    name = f"{prefix}{body}{suffix}"
    if not JOB_NAME_PATTERN.match(name):
        raise NamingError(f"job name {name!r} does not match SageMaker's pattern")
    return name


@dataclass(frozen=True)
class Lineage:
    """Where a training job sits in its lineage, read from its tags."""

    deployment: str
    lineage: str
    attempt: int
    parent: str | None

    def tags(self) -> dict[str, str]:
        tags = {TAG_DEPLOYMENT: self.deployment, TAG_LINEAGE: self.lineage, TAG_ATTEMPT: str(self.attempt)}
        if self.parent:
            tags[TAG_PARENT] = self.parent
        return tags

    def job_name(self) -> str:
        return job_name(self.deployment, self.lineage, self.attempt)

    def next_attempt(self, parent_job_name: str) -> Lineage:
        return Lineage(self.deployment, self.lineage, self.attempt + 1, parent_job_name)

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> Lineage:
        """Read lineage tags; raises :class:`NamingError` naming the missing or bad tag."""
        for key in (TAG_DEPLOYMENT, TAG_LINEAGE, TAG_ATTEMPT):
            if key not in tags:
                raise NamingError(f"training job has no {key!r} tag; it was not started by this project")
        try:
            attempt = int(tags[TAG_ATTEMPT])
        except ValueError:
            raise NamingError(f"tag {TAG_ATTEMPT!r} is {tags[TAG_ATTEMPT]!r}, not an integer") from None
        return cls(tags[TAG_DEPLOYMENT], tags[TAG_LINEAGE], attempt, tags.get(TAG_PARENT) or None)


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """SageMaker's ``[{"Key":..., "Value":...}]`` form."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_dict(tags: list[Mapping[str, str]] | Mapping[str, str] | None) -> dict[str, str]:
    """Accept either tag form (API lists, or the dict in EventBridge's job event)."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(key): str(value) for key, value in tags.items()}
    return {str(item["Key"]): str(item["Value"]) for item in tags}
