"""Start attempt 1 of a lineage on a deployed stack, with the SageMaker Python SDK v3.

:func:`plan_launch` gathers everything from its single source: the role, buckets, key and
bus from the stacks' outputs (:mod:`training.launcher.stack`; or a :class:`StackOutputs` given
by the caller, as ``o2v demo`` does for its local stand-ins), the image from
``sagemaker.core.image_uris``, the dataset's channels and sizes from its manifest in S3, the
job name and tags from ``o2v_core.naming``, and hyperparameters validated by
``o2v_core.hyperparameters``. :func:`submit` hands the plan to the SDK's ``ModelTrainer``.

Every AWS call goes through the given boto3 session and the SDK, so the endpoints are boto3's
(``AWS_ENDPOINT_URL*``); there is no local-mode branch here.

Hyperparameters, later layers winning: the training stack's ``FirstAttemptHyperparameters``,
the dataset manifest (``enc*_max_seq_len``, ``enc*_vocab_size``, ``output_layer``,
``num_classes``), ``--config``, ``--hp``. Only these explicit values are sent; SageMaker fills
in the documented defaults.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import ClientError
from o2v_core.hyperparameters import to_sagemaker, validate, validate_partial
from o2v_core.naming import Lineage, job_name, sanitize_lineage
from o2v_core.resource_names import OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS

from training.data.upload import channel_uri, manifest_key
from training.launcher.stack import StackOutputs, read_outputs

DEFAULT_INSTANCE_TYPE = "ml.m5.2xlarge"  # the developer guide's CPU starting point for Object2Vec
CHANNEL_CONTENT_TYPES = {
    "train": "application/jsonlines",
    "validation": "application/jsonlines",
    "test": "application/jsonlines",
    "auxiliary": "application/json",
}


class LaunchError(ValueError):
    """The launch cannot go ahead; the message says what to fix."""


@dataclass(frozen=True)
class LaunchPlan:
    job_name: str
    lineage: Lineage
    region: str
    image_uri: str
    role_arn: str
    hyperparameters: dict[str, str]
    channels: dict[str, str]
    output_path: str
    kms_key_arn: str | None
    instance_type: str
    volume_size_gb: int
    max_runtime_seconds: int
    event_bus_name: str | None
    stack: StackOutputs
    tags: dict[str, str]  # the lineage's tags and any extra ones
    sources: list[str] = field(default_factory=list)

    @property
    def console_url(self) -> str:
        return (f"https://{self.region}.console.aws.amazon.com/sagemaker/home?region={self.region}"
                f"#/jobs/{self.job_name}")

    def summary(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "console": self.console_url,
            "image": self.image_uri,
            "role": self.role_arn,
            "instance_type": self.instance_type,
            "channels": self.channels,
            "output": self.output_path,
            "tags": self.tags,
            "hyperparameters": self.hyperparameters,
            "hyperparameter_sources": self.sources,
            "event_bus": self.event_bus_name,
        }


def read_manifest(s3: Any, bucket: str, dataset: str) -> dict[str, Any]:
    key = manifest_key(dataset)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as error:
        raise LaunchError(f"dataset {dataset!r}: s3://{bucket}/{key} is not readable ({error}); "
                          f"upload it with `o2v prepare ... --upload --name {dataset}`") from None
    try:
        manifest = json.loads(body)
    except json.JSONDecodeError:
        raise LaunchError(f"s3://{bucket}/{key} is not JSON") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("hyperparameters"), dict):
        raise LaunchError(f"s3://{bucket}/{key} is not a manifest written by `o2v prepare`")
    return manifest


def training_image(region: str) -> str:
    """The Object2Vec algorithm image of ``region``, from the SDK's table (the stacks use the same)."""
    from sagemaker.core import image_uris

    return str(image_uris.retrieve("object2vec", region))


def plan_launch(
    session: boto3.Session,
    *,
    deployment: str,
    lineage: str,
    dataset: str,
    layers: Sequence[tuple[str, Mapping[str, Any]]],
    instance_type: str | None = None,
    volume_size_gb: int = 30,
    max_runtime_seconds: int = 86_400,
    stack: StackOutputs | None = None,
    tags: Mapping[str, str] | None = None,
) -> LaunchPlan:
    """Plan attempt 1 of ``lineage`` on ``dataset``.

    ``stack``: the stacks' outputs, when the caller has them; otherwise they are read with
    CloudFormation DescribeStacks. ``tags``: extra job tags, beside the lineage's (which they may
    not replace). ``layers``: hyperparameters over the stack's and the dataset's, later winning.
    """
    region = session.region_name
    if not region:
        raise LaunchError("no AWS region: pass --region or set AWS_DEFAULT_REGION")
    name = job_name(deployment, lineage, 1)
    if stack is None:
        stack = read_outputs(session.client("cloudformation"), deployment)
    elif stack.deployment != deployment:
        raise LaunchError(f"the stack outputs are deployment {stack.deployment!r}'s, not {deployment!r}'s")
    job_lineage = Lineage(deployment, sanitize_lineage(lineage), 1, None)
    job_tags = job_lineage.tags()
    clashes = sorted(set(tags or {}) & set(job_tags))
    if clashes:
        raise LaunchError(f"tag(s) {', '.join(clashes)} belong to the lineage; the launcher sets them")
    job_tags.update(tags or {})
    manifest = read_manifest(session.client("s3"), stack.dataset_bucket, dataset)
    manifest_uri = f"s3://{stack.dataset_bucket}/{manifest_key(dataset)}"
    all_layers = [
        (f"output {OUTPUT_FIRST_ATTEMPT_HYPERPARAMETERS} of {stack.origin}", stack.first_attempt_hyperparameters),
        (manifest_uri, manifest["hyperparameters"]),
        *layers,
    ]
    merged: dict[str, Any] = {}
    for where, values in all_layers:
        merged.update(validate_partial(values, where=where))
    hyperparameters = validate(merged, where=" + ".join(where for where, _ in all_layers))
    channels = {split: channel_uri(stack.dataset_bucket, dataset, split)
                for split in ("train", "validation", "test") if split in manifest.get("splits", {})}
    channels["auxiliary"] = channel_uri(stack.dataset_bucket, dataset, "auxiliary")
    if "train" not in channels:
        raise LaunchError(f"{manifest_uri}: the dataset has no train split")
    if volume_size_gb < 1 or max_runtime_seconds < 1:
        raise LaunchError("--volume-size and --max-runtime must be positive")
    return LaunchPlan(
        job_name=name,
        lineage=job_lineage,
        region=region,
        image_uri=training_image(region),
        role_arn=stack.training_role_arn,
        hyperparameters=to_sagemaker(hyperparameters),
        channels=channels,
        output_path=stack.training_output_uri,
        kms_key_arn=stack.kms_key_arn,
        instance_type=instance_type or stack.instance_type or DEFAULT_INSTANCE_TYPE,
        volume_size_gb=volume_size_gb,
        max_runtime_seconds=max_runtime_seconds,
        event_bus_name=stack.event_bus_name,
        stack=stack,
        tags=job_tags,
        sources=[where for where, _ in all_layers],
    )


@contextlib.contextmanager
def _role_validation(enabled: bool) -> Iterator[None]:
    """The SDK validates the role with iam:SimulatePrincipalPolicy unless told not to. The role
    is the stack's own training role, so that check is opt-in here (``--validate-role``)."""
    key = "SAGEMAKER_VALIDATE_ROLE"
    previous = os.environ.get(key)
    os.environ[key] = "true" if enabled else "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def build_request(session: boto3.Session, plan: LaunchPlan, *, validate_role: bool = False) -> dict[str, Any]:
    """The SDK's CreateTrainingJob request for ``plan`` (SageMaker Core shapes, snake_case)."""
    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.training.configs import Compute, InputData, Networking, OutputDataConfig, StoppingCondition
    from sagemaker.train import ModelTrainer

    with _role_validation(validate_role):
        trainer = ModelTrainer(
            sagemaker_session=Session(boto_session=session, default_bucket=plan.stack.artifact_bucket),
            role=plan.role_arn,
            training_image=plan.image_uri,
            base_job_name=plan.job_name,
            compute=Compute(instance_type=plan.instance_type, instance_count=1, volume_size_in_gb=plan.volume_size_gb),
            stopping_condition=StoppingCondition(max_runtime_in_seconds=plan.max_runtime_seconds),
            # Object2Vec makes no outbound calls; the control plane's CreateTrainingJob permission
            # requires sagemaker:NetworkIsolation, so a relaunched attempt is isolated too.
            networking=Networking(enable_network_isolation=True),
            output_data_config=OutputDataConfig(s3_output_path=plan.output_path, kms_key_id=plan.kms_key_arn,
                                                compression_type="GZIP"),
            hyperparameters=plan.hyperparameters,
            input_data_config=[
                InputData(channel_name=channel, data_source=uri, content_type=CHANNEL_CONTENT_TYPES[channel])
                for channel, uri in plan.channels.items()
            ],
            tags=[{"key": key, "value": value} for key, value in plan.tags.items()],
        )
        request: dict[str, Any] = trainer._create_training_job_args()
    # ModelTrainer appends a timestamp to base_job_name; the lineage scheme needs the exact name,
    # so that relaunching the same attempt collides (ResourceInUse) instead of starting a twin.
    request["training_job_name"] = plan.job_name
    return request


def _exists(session: boto3.Session, name: str) -> bool:
    try:
        session.client("sagemaker").describe_training_job(TrainingJobName=name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("ValidationException", "ResourceNotFound"):
            return False
        raise
    return True


def _already_launched(plan: LaunchPlan) -> LaunchError:
    return LaunchError(
        f"training job {plan.job_name} already exists: lineage {plan.lineage.lineage!r} was launched before; "
        "its retries are the control plane's job. Pick a new --lineage."
    )


def submit(session: boto3.Session, plan: LaunchPlan, *, validate_role: bool = False) -> str:
    """Create the training job (without waiting); returns its ARN.

    An existing job of the same name is refused up front; a race with another launcher is still
    caught, by SageMaker's ResourceInUse."""
    from sagemaker.core.resources import TrainingJob

    if _exists(session, plan.job_name):
        raise _already_launched(plan)
    request = build_request(session, plan, validate_role=validate_role)
    try:
        job = TrainingJob.create(session=session, **request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceInUse":
            raise _already_launched(plan) from None
        raise
    return str(job.training_job_arn)
